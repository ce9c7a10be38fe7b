// WATCHDOG=1 to systemd from hearth-broker and hearth-worker, at most every half WatchdogSec: their
// loops tick far more often than the watchdog needs, and a ping per tick would wake PID 1 for
// nothing. Silent when the unit has no watchdog or there is no systemd at all.
#pragma once

#include <chrono>

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

}  // namespace hearth
