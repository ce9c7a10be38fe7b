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

watchdog_pinger_thread::watchdog_pinger_thread(watchdog_pinger& p) : pinger_(p) {
    if (!pinger_.enabled()) return;
    thread_ = std::thread([this] {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!done_) {
            pinger_.tick();
            done_cv_.wait_for(lock, pinger_.every() / 4);
        }
    });
}

watchdog_pinger_thread::~watchdog_pinger_thread() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = true;
    }
    done_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

}  // namespace hearth
