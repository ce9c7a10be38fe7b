#include "thread-tuner.h"

#include <algorithm>

namespace hearth {

thread_tuner::thread_tuner(int32_t max_threads) : max_(std::max(1, max_threads)), current_(max_) {}

int32_t thread_tuner::pick() const { return probing_ > 0 ? other() : current_; }

void thread_tuner::record(int32_t threads, double seconds_per_token) {
    if (max_ == 1) return;
    if (probing_ == 0) {
        if (threads != current_) return;
        // A sudden slow step (a core just taken away) probes at once instead of waiting.
        const bool slow = ema_ > 0.0 && since_probe_ >= 2 && seconds_per_token > spike * ema_;
        ema_ = ema_ > 0.0 ? 0.8 * ema_ + 0.2 * seconds_per_token : seconds_per_token;
        if (slow) interval_ = probe_first;
        if (++since_probe_ >= interval_ || slow) {
            since_probe_ = 0;
            probing_ = probe_steps;
            probe_sum_ = 0.0;
            probe_count_ = 0;
        }
        return;
    }
    if (threads != other()) return;
    // The first probe step pays for waking or parking threads: not counted.
    if (probing_ < probe_steps) {
        probe_sum_ += seconds_per_token;
        ++probe_count_;
    }
    if (--probing_ == 0 && probe_count_ > 0) {
        const double probe = probe_sum_ / probe_count_;
        if (probe < switch_margin * ema_) {
            current_ = other();
            ema_ = probe;
            interval_ = probe_first;
        } else {
            interval_ = std::min(interval_ * 2, probe_max);  // confirmed: probe less often
        }
    }
}

}  // namespace hearth
