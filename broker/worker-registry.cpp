#include "worker-registry.h"

#include <algorithm>

namespace hearth {

bool worker_entry::serves(const std::string& service) const {
    return std::find(services.begin(), services.end(), service) != services.end();
}

int32_t worker_entry::usable_slots() const {
    if (guard == "critical") return 0;
    return slots_now >= 0 ? std::min(slots, slots_now) : slots;
}

std::set<uint64_t> worker_registry::add(worker_entry w) {
    std::set<uint64_t> lost;
    auto it = workers_.find(w.routing_id);
    if (it != workers_.end()) lost = std::move(it->second.assigned);
    std::string id = w.routing_id;
    workers_[id] = std::move(w);
    return lost;
}

worker_entry* worker_registry::find(const std::string& routing_id) {
    auto it = workers_.find(routing_id);
    return it == workers_.end() ? nullptr : &it->second;
}

std::set<uint64_t> worker_registry::remove(const std::string& routing_id) {
    auto it = workers_.find(routing_id);
    if (it == workers_.end()) return {};
    std::set<uint64_t> lost = std::move(it->second.assigned);
    workers_.erase(it);
    return lost;
}

worker_entry* worker_registry::pick(const std::string& service) {
    worker_entry* best = nullptr;
    auto rank = [](const worker_entry& w) { return w.guard == "ok" ? 0 : 1; };
    for (auto& [id, w] : workers_) {
        if (!w.serves(service) || w.busy() >= w.usable_slots()) continue;
        if (!best) {
            best = &w;
            continue;
        }
        // Lower guard rank first; then the smaller share of slots in use.
        const int rb = rank(*best), rw = rank(w);
        if (rw != rb) {
            if (rw < rb) best = &w;
            continue;
        }
        if (static_cast<int64_t>(w.busy()) * best->usable_slots() < static_cast<int64_t>(best->busy()) * w.usable_slots()) best = &w;
    }
    return best;
}

uint32_t worker_registry::count_serving(const std::string& service) const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_)
        if (w.serves(service)) ++n;
    return n;
}

uint32_t worker_registry::count_usable(const std::string& service) const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_)
        if (w.serves(service) && w.guard != "critical") ++n;
    return n;
}

std::vector<std::string> worker_registry::silent_since(broker_clock::time_point cutoff) const {
    std::vector<std::string> out;
    for (const auto& [id, w] : workers_)
        if (w.last_seen < cutoff) out.push_back(id);
    return out;
}

}  // namespace hearth
