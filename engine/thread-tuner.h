// Chooses the thread count of small batches (decode steps). Fork-join parallelism gains from a
// second core only while the OS gives every thread a core: when another process takes one, each
// of the forward pass's barriers waits for a thread that has no core, and two threads become far
// slower than one. The tuner times steps at the count in force and, every so often, a few at the
// other count, and keeps the faster. Results do not depend on the count (each output row is
// computed by one thread), so switching is safe at any step.
#pragma once

#include <cstdint>

namespace hearth {

class thread_tuner {
public:
    explicit thread_tuner(int32_t max_threads);

    int32_t pick() const;                                   // threads for the next step
    void record(int32_t threads, double seconds_per_token);  // how the step that used them went
    int32_t current() const { return current_; }

    static constexpr int32_t probe_first = 16;   // steps before the first probe, and after a switch
    static constexpr int32_t probe_max = 512;    // the interval doubles while probes confirm, up to this
    static constexpr int32_t probe_steps = 5;    // steps timed at the other count (first discarded)
    static constexpr double switch_margin = 0.9;  // the other count must be 10% faster to win
    static constexpr double spike = 3.0;         // a step this many times the average probes at once

private:
    int32_t other() const { return current_ == max_ ? 1 : max_; }

    int32_t max_;              // the most threads allowed; 1 switches the tuner off
    int32_t current_;          // the count in force
    int32_t probing_ = 0;      // probe steps still to run at other()
    int32_t since_probe_ = 0;  // steps at current_ since the last probe
    int32_t interval_ = probe_first;  // steps between probes now
    double ema_ = 0.0;         // seconds per token at current_ (exponential average; 0: none yet)
    double probe_sum_ = 0.0;   // seconds per token summed over the counted probe steps
    int32_t probe_count_ = 0;  // probe steps counted
};

}  // namespace hearth
