#include "request-queue.h"

#include <algorithm>

namespace hearth {

request_queue::request_queue(uint32_t max_interactive, uint32_t max_batch)
    : max_interactive_(max_interactive), max_batch_(max_batch) {}

std::deque<uint64_t>& request_queue::line(const std::string& service, wire::priority prio) {
    service_lines& s = lines_[service];
    return prio == wire::priority::interactive ? s.interactive : s.batch;
}

const request_queue::service_lines* request_queue::find(const std::string& service) const {
    auto it = lines_.find(service);
    return it == lines_.end() ? nullptr : &it->second;
}

std::optional<uint32_t> request_queue::push(const std::string& service, wire::priority prio, uint64_t key) {
    std::deque<uint64_t>& l = line(service, prio);
    const uint32_t bound = prio == wire::priority::interactive ? max_interactive_ : max_batch_;
    if (l.size() >= bound) return std::nullopt;
    l.push_back(key);
    return position(service, prio, key);
}

void request_queue::push_front(const std::string& service, wire::priority prio, uint64_t key) {
    line(service, prio).push_front(key);
}

std::optional<uint64_t> request_queue::peek(const std::string& service) const {
    const service_lines* s = find(service);
    if (!s) return std::nullopt;
    if (!s->interactive.empty()) return s->interactive.front();
    if (!s->batch.empty()) return s->batch.front();
    return std::nullopt;
}

void request_queue::pop(const std::string& service) {
    auto it = lines_.find(service);
    if (it == lines_.end()) return;
    if (!it->second.interactive.empty()) it->second.interactive.pop_front();
    else if (!it->second.batch.empty()) it->second.batch.pop_front();
}

bool request_queue::remove(const std::string& service, wire::priority prio, uint64_t key) {
    auto it = lines_.find(service);
    if (it == lines_.end()) return false;
    std::deque<uint64_t>& l = prio == wire::priority::interactive ? it->second.interactive : it->second.batch;
    auto pos = std::find(l.begin(), l.end(), key);
    if (pos == l.end()) return false;
    l.erase(pos);
    return true;
}

std::optional<uint32_t> request_queue::position(const std::string& service, wire::priority prio, uint64_t key) const {
    const service_lines* s = find(service);
    if (!s) return std::nullopt;
    const std::deque<uint64_t>& l = prio == wire::priority::interactive ? s->interactive : s->batch;
    auto pos = std::find(l.begin(), l.end(), key);
    if (pos == l.end()) return std::nullopt;
    const uint32_t ahead = prio == wire::priority::batch ? static_cast<uint32_t>(s->interactive.size()) : 0;
    return ahead + static_cast<uint32_t>(pos - l.begin()) + 1;
}

uint32_t request_queue::depth(const std::string& service, wire::priority prio) const {
    const service_lines* s = find(service);
    if (!s) return 0;
    return static_cast<uint32_t>(prio == wire::priority::interactive ? s->interactive.size() : s->batch.size());
}

uint32_t request_queue::depth(const std::string& service) const {
    return depth(service, wire::priority::interactive) + depth(service, wire::priority::batch);
}

}  // namespace hearth
