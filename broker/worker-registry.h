// The workers the broker knows: what each serves, how busy it is, when it was last heard from.
#pragma once

#include "protocol.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace hearth {

using broker_clock = std::chrono::steady_clock;

struct worker_entry {
    std::string routing_id;                // the worker's DEALER identity on the back socket
    std::string name;                      // from READY, for people
    std::string model;                     // from READY
    std::vector<std::string> services;     // from READY
    int32_t slots = 1;                     // requests it runs at once
    int32_t n_ctx = 0;                     // positions per slot
    int32_t reported_free = 0;             // free slots in its last heartbeat (lags our own count)
    std::string guard = "ok";              // ok, throttled, critical
    int32_t slots_now = -1;                // requests it starts now (-1: all its slots; its guard lowers it)
    std::optional<wire::memory_report> memory;  // the readings behind `guard`, from its last heartbeat
    broker_clock::time_point last_seen;    // any message from it
    std::set<uint64_t> assigned;           // request keys dispatched to it and not yet ended

    bool serves(const std::string& service) const;
    int32_t busy() const { return static_cast<int32_t>(assigned.size()); }
    // Slots it takes work into now: none when critical, fewer when its guard says so.
    int32_t usable_slots() const;
};

class worker_registry {
public:
    // Registers (or re-registers, replacing) a worker; returns the old entry's assigned requests
    // when the worker re-sent READY (it lost them).
    std::set<uint64_t> add(worker_entry w);
    worker_entry* find(const std::string& routing_id);
    // Removes a worker and returns what it was running.
    std::set<uint64_t> remove(const std::string& routing_id);

    // The best live worker for a service with a free slot: guard ok before throttled (critical
    // never), then the least loaded; nullptr when none can take it.
    worker_entry* pick(const std::string& service);
    // Live workers that serve a service at all (any load, any guard).
    uint32_t count_serving(const std::string& service) const;
    // Of those, the ones that take new work (guard not critical).
    uint32_t count_usable(const std::string& service) const;
    // Workers not heard from since `cutoff`.
    std::vector<std::string> silent_since(broker_clock::time_point cutoff) const;

    const std::map<std::string, worker_entry>& all() const { return workers_; }

private:
    std::map<std::string, worker_entry> workers_;  // by routing id
};

}  // namespace hearth
