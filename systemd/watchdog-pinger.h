// WATCHDOG=1 to systemd from hearth-broker and hearth-worker, at most every half WatchdogSec: their
// loops tick far more often than the watchdog needs, and a ping per tick would wake PID 1 for
// nothing. Silent when the unit has no watchdog or there is no systemd at all.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace hearth {

class watchdog_pinger {
public:
    watchdog_pinger();                                  // reads WATCHDOG_USEC (sd_watchdog_enabled)
    bool enabled() const { return every_.count() != 0; }
    std::chrono::microseconds every() const { return every_; }
    void tick();                                        // pings when half the interval has passed

private:
    std::chrono::microseconds every_{0};                // half the watchdog interval; 0: no watchdog
    std::chrono::steady_clock::time_point last_{};      // last ping sent (epoch: none yet)
};

// systemd's watchdog runs during start-up too, and loading a large model from an SD card can take
// longer than WatchdogSec: while one of these lives, a thread keeps pinging (TimeoutStartSec still
// bounds a load that hangs). No thread without a watchdog.
class watchdog_pinger_thread {
public:
    explicit watchdog_pinger_thread(watchdog_pinger& p);
    ~watchdog_pinger_thread();
    watchdog_pinger_thread(const watchdog_pinger_thread&) = delete;
    watchdog_pinger_thread& operator=(const watchdog_pinger_thread&) = delete;

private:
    watchdog_pinger& pinger_;           // used only by the thread until it is joined
    std::mutex mutex_;                  // guards done_
    std::condition_variable done_cv_;   // wakes the thread to stop
    bool done_ = false;                 // the work finished (or failed)
    std::thread thread_;                // the pinging thread; not joinable without a watchdog
};

}  // namespace hearth
