// Resource guard for a worker (design section 7): samples memory readings (MemAvailable, memory
// PSI, the cgroup's usage and limit, the worker's RSS against an optional budget) from a root
// directory and turns them into ok / throttled / critical with hysteresis, so that a worker can bend
// under memory pressure (fewer sequences, no new work) instead of being OOM-killed.
// Self-contained: no sockets, no engine, no threads. The root is configurable so that tests can
// point it at a directory of fake /proc and /sys files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth {

enum class guard_state { ok, throttled, critical };

// "ok", "throttled", "critical".
std::string_view guard_state_name(guard_state s);

// A known cgroup limit that means "no limit" (v2 "max", v1's huge page-rounded LONG_MAX).
inline constexpr uint64_t guard_unlimited = UINT64_MAX;

struct guard_options {
    std::string root = "/";                  // prefix for /proc and /sys paths; tests use a temp dir
    int interval_ms = 1000;                  // how often the owner should sample (the guard keeps no timer)
    uint64_t memory_budget = 0;              // bytes the worker may use (RSS); 0 = no budget
    double throttle_fraction = 0.15;         // available fraction (system or cgroup) below this throttles
    double critical_fraction = 0.05;         // ... below this is critical
    double fraction_margin = 0.05;           // leaving needs the fraction above threshold + this
    double psi_some_throttle = 20.0;         // PSI some avg10 (%) above this throttles
    double psi_full_critical = 10.0;         // PSI full avg10 (%) above this is critical
    double psi_margin = 5.0;                 // leaving needs PSI below threshold - this
    double budget_throttle = 0.9;            // RSS above budget * this throttles
    double budget_critical = 1.0;            // RSS above budget * this is critical
    double budget_margin = 0.1;              // leaving needs RSS below budget * (threshold - this)
    int recover_samples = 3;                 // consecutive clear samples needed to step down one state
    int stale_limit = 30;                    // a reading unknown this many samples in a row is forgotten
};

struct guard_readings {
    std::optional<uint64_t> mem_total;       // bytes, /proc/meminfo MemTotal
    std::optional<uint64_t> mem_available;   // bytes, /proc/meminfo MemAvailable
    std::optional<double> psi_some_avg10;    // %, /proc/pressure/memory "some" line
    std::optional<double> psi_full_avg10;    // %, /proc/pressure/memory "full" line
    int cgroup_version = 0;                  // 1 or 2 once /proc/self/cgroup names a memory cgroup; 0 = unknown
    std::string cgroup_dir;                  // directory the cgroup files were read from (for status)
    std::optional<uint64_t> cgroup_current;  // bytes charged to the cgroup
    std::optional<uint64_t> cgroup_limit;    // bytes; guard_unlimited when the cgroup has no limit
    std::optional<uint64_t> rss;             // bytes, /proc/self/status VmRSS
    uint64_t memory_budget = 0;              // copied from the options so that readings stand alone
    std::string problems;                    // why readings are unknown, "; "-separated; empty when all were read

    // MemAvailable / MemTotal, when both are known and sane.
    std::optional<double> system_fraction() const;
    // (limit - current) / limit, when the cgroup has a known finite limit.
    std::optional<double> cgroup_fraction() const;
};

// Reads every value below options.root. Never throws: what cannot be read is left unknown and
// explained in `problems`.
guard_readings guard_sample(const guard_options& options);

// One line for status and logs, e.g. "MemAvailable 21.8 GiB of 23.5 GiB (93%), PSI some 0.0 full 0.0, ...".
std::string guard_readings_describe(const guard_readings& r);

struct guard_fit {
    bool fits = true;                        // false only when a known limit is too small
    std::optional<uint64_t> available;       // bytes the tightest known limit leaves; unknown = no evidence
    std::string message;                     // why it does not fit, or what it was checked against
};

// Whether a model of `file_bytes` plus a KV cache of `kv_bytes` fits the smallest of MemAvailable,
// the cgroup's headroom and the budget minus the current RSS.
guard_fit guard_fit_check(const guard_readings& r, uint64_t file_bytes, uint64_t kv_bytes);

// Bytes the worker may still take before the tightest known limit reaches its critical line:
// budget * budget_critical - RSS, the cgroup's limit * (1 - critical_fraction) - usage, and
// MemAvailable - MemTotal * critical_fraction (0 when past it). nullopt when no limit is known.
// A critical worker lets running requests finish only while their remaining need fits this.
std::optional<uint64_t> guard_headroom(const guard_readings& r, const guard_options& options);

// The state machine. Entering a worse state is immediate; stepping down one state needs every
// reading to clear the threshold by its margin for `recover_samples` consecutive samples. Unknown
// readings are no evidence: a reading that goes unknown keeps its last value, and such samples do
// not count toward recovery, until it has been unknown for `stale_limit` samples.
// Not thread-safe: one owner samples and reads it.
class resource_guard {
public:
    // Throws std::invalid_argument when the thresholds contradict each other.
    explicit resource_guard(guard_options options = {});

    // Feeds one sample and returns the new state.
    guard_state update(const guard_readings& r);
    // guard_sample(options) then update().
    guard_state poll();

    guard_state state() const { return state_; }
    const guard_readings& last() const { return last_; }
    // What holds the current state, for logs: e.g. "MemAvailable 4% < 5%"; "" when ok.
    std::string reason() const { return reason_; }
    const guard_options& options() const { return options_; }

private:
    // Per reading: the last known value and how long it has been unknown.
    struct signal_memory {
        std::optional<double> value;         // last known value
        int unknown_run = 0;                 // consecutive samples without a value
    };
    enum signal_index { sig_system, sig_cgroup, sig_psi_some, sig_psi_full, sig_rss, sig_count };

    guard_options options_;                  // thresholds, validated in the constructor
    guard_state state_ = guard_state::ok;    // current state
    guard_readings last_;                    // the latest sample
    std::string reason_;                     // see reason()
    std::string cause_;                      // reason_ without the recovery progress
    int clear_run_ = 0;                      // consecutive samples that cleared the current state
    signal_memory signals_[sig_count];       // indexed by signal_index
};

}  // namespace hearth
