// The broker's side of memory pressure (design section 7). Workers report their resource guard's
// state in READY and every HEARTBEAT: a throttled worker gets new work only when no ok worker can
// take it, and only as many requests as it says it starts now; a critical one gets none. Clients
// whose queued requests wait because of that are told so in a fresh ACCEPTED instead of being left
// to wonder. The broker bounds its own memory too: the requests it holds (queued, running, batch
// backlog) may not grow past broker.queue_bytes; past it new work is refused `overloaded`.
#include "broker.h"

#include "byte-size.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hearth {

namespace {

bool guard_state_known(const std::string& s) { return s == "ok" || s == "throttled" || s == "critical"; }

// How long a client should wait before trying again after an overloaded refusal.
constexpr uint32_t retry_after_overloaded_ms = 2000;

}  // namespace

uint64_t broker::request_bytes(const wire::request& r) {
    // The texts dominate; 512 covers the struct, the maps' nodes and the small fields.
    uint64_t n = 512 + r.id.size() + r.service.size() + r.prompt.size() + r.schema.size() + r.resume_text.size();
    for (const auto& t : r.messages) n += 64 + t.role.size() + t.content.size();
    for (const auto& s : r.stop) n += 32 + s.size();
    return n;
}

std::string broker::budget_refusal(uint64_t more) const {
    if (held_bytes_ + more <= cfg_.broker.queue_bytes) return "";
    std::string m = "the broker holds ";
    m.append(byte_size_format(held_bytes_)).append(" of waiting and running requests; ");
    m.append(byte_size_format(more)).append(" more would pass its budget of ");
    m.append(byte_size_format(cfg_.broker.queue_bytes)).append(" (broker.queue_bytes); try again later");
    return m;
}

void broker::worker_event_log(const worker_entry& w, const char* event, const std::string& previous, const std::string& detail) {
    if (!log_) return;
    worker_event e;
    e.ts_us = wall_us(broker_clock::now());
    e.worker = w.name;
    e.model = w.model;
    e.event = event;
    e.state = w.guard;
    e.previous = previous;
    e.detail = detail;
    log_->submit(std::move(e));
}

void broker::worker_guard(worker_entry& w, const std::string& state, std::optional<wire::memory_report> memory) {
    const std::string next = state.empty() ? "ok" : state;
    if (!guard_state_known(next))
        throw wire::protocol_error(wire::error_code::bad_request, "guard '" + next.substr(0, 32) + "' is not ok, throttled or critical");
    w.memory = std::move(memory);
    w.slots_now = w.memory ? w.memory->slots_now : -1;
    if (next == w.guard) return;
    const std::string previous = w.guard;
    w.guard = next;
    std::string detail = w.memory ? w.memory->reason : std::string();
    const std::string readings = w.memory ? wire::memory_report_describe(*w.memory) : std::string();
    if (!readings.empty()) detail.append(detail.empty() ? "" : "; ").append(readings);
    if (next == "ok") spdlog::info("broker: worker {} is back to ok (was {}){}{}", w.name, previous, detail.empty() ? "" : ": ", detail);
    else spdlog::warn("broker: worker {} guard {} -> {}: {}", w.name, previous, next, detail.empty() ? "no readings" : detail);
    worker_event_log(w, "guard", previous, detail);
    notes_refresh();
}

std::string broker::guard_note(const std::string& service) const {
    uint32_t serving = 0, critical = 0, throttled = 0;
    for (const auto& [id, w] : workers_.all()) {
        if (!w.serves(service)) continue;
        ++serving;
        if (w.guard == "critical") ++critical;
        else if (w.guard == "throttled") ++throttled;
    }
    if (serving == 0) return "";
    std::string m;
    if (critical == serving) {
        m.append("every worker serving '").append(service).append("' is critical (low on memory) and takes no new work;");
        m.append(" the request waits for one to recover");
    } else if (critical + throttled == serving) {
        m.append("the workers serving '").append(service).append("' are throttled (low on memory) and run fewer requests at once");
    }
    return m;
}

void broker::notes_refresh() {
    std::map<std::string, std::string> notes;  // by service, computed once per refresh
    for (auto& [key, j] : jobs_) {
        if (!j.worker.empty() || j.ended_for_client || !j.batch.empty()) continue;
        auto n = notes.find(j.req.service);
        if (n == notes.end()) n = notes.emplace(j.req.service, guard_note(j.req.service)).first;
        if (n->second == j.note) continue;
        j.note = n->second;
        send_client(j.client, wire::command::accepted, wire::encode(accepted_for(j)));
    }
}

void broker::send_overloaded(const std::string& client, const std::string& id, const std::string& why) {
    send_client_error(client, id, wire::error_code::overloaded, why, retry_after_overloaded_ms);
}

void broker::expire_starved(broker_clock::time_point now) {
    // Requests whose every worker is critical: waited as long as for no worker at all.
    std::vector<uint64_t> starved;
    for (const auto& [key, j] : jobs_) {
        if (!j.ended_for_client && j.batch.empty() && j.worker.empty() && workers_.count_serving(j.req.service) > 0 &&
            workers_.count_usable(j.req.service) == 0 && now - j.received >= std::chrono::milliseconds(cfg_.broker.no_worker_ms))
            starved.push_back(key);
    }
    for (uint64_t key : starved) {
        auto it = jobs_.find(key);
        if (it != jobs_.end())
            job_fail(it->second, wire::error_code::overloaded,
                     "every worker serving '" + it->second.req.service + "' stayed critical (low on memory); try again later");
    }
}

bool broker::job_requeue_overloaded(job& j, uint64_t key, worker_entry& w) {
    if (j.ended_for_client || j.overloaded >= 3) return false;
    ++j.overloaded;
    --j.attempts;  // the worker refused it for memory: not an attempt that counts toward worker_lost
    w.assigned.erase(key);
    j.worker.clear();
    spdlog::info("broker: worker {} handed request {} back (overloaded; {} chars already delivered); it waits for another worker",
                 w.name, j.req.id, j.delivered.size());
    queue_.push_front(j.req.service, j.req.prio, key);
    return true;
}

}  // namespace hearth
