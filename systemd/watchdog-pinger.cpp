#include "watchdog-pinger.h"

#include <systemd/sd-daemon.h>

#include <cstdint>

namespace hearth {

watchdog_pinger::watchdog_pinger() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) every_ = std::chrono::microseconds(usec / 2);
}

void watchdog_pinger::tick() {
    if (!enabled()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < every_) return;
    last_ = now;
    sd_notify(0, "WATCHDOG=1");
}

}  // namespace hearth
