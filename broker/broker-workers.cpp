// The broker's worker side: READY, heartbeats, the replies a worker streams back for the jobs it
// runs, and what happens when a worker is lost.
#include "broker.h"

#include "transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <string>

namespace hearth {

void broker::on_worker(const wire::frames& f) {
    const std::string wid(f.routing_id());
    const std::optional<std::string> key_name = worker_key_name(f.parts.back());
    if (!key_name) {
        // Admitted, then taken off the allowlist (SIGHUP): it serves no more.
        refusal_log("broker: refused worker " + peer_name(wid) + ": its key is no longer on the allowlist");
        if (workers_.find(wid)) worker_lost(wid, "key taken off the allowlist");
        send_worker(wid, wire::command::disconnect, wire::encode(wire::disconnect{"this worker's key is no longer on the broker's allowlist"}));
        return;
    }
    wire::envelope env;
    try {
        env = wire::envelope_parse(f.views(1));
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: malformed message from worker {}: {}", peer_name(wid), e.what());
        send_worker_error(wid, e.code(), e.what());
        return;
    }
    try {
        if (env.cmd == wire::command::ready) {
            worker_ready(wid, env.body, *key_name);
            return;
        }
        worker_entry* w = workers_.find(wid);
        if (!w) {
            // Not registered (we restarted, or it was declared dead): it must introduce itself.
            if (env.cmd != wire::command::disconnect)
                send_worker(wid, wire::command::disconnect, wire::encode(wire::disconnect{"unknown worker: send READY"}));
            return;
        }
        w->last_seen = broker_clock::now();
        switch (env.cmd) {
        case wire::command::heartbeat: worker_heartbeat(*w, env.body); break;
        case wire::command::partial: worker_partial(*w, env.body); break;
        case wire::command::final: worker_final(*w, env.body); break;
        case wire::command::error: worker_error(*w, env.body); break;
        case wire::command::disconnect: worker_lost(wid, "said goodbye"); break;
        default: {
            std::string msg = "command ";
            msg.append(wire::command_name(env.cmd)).append(" is not one a worker sends");
            spdlog::warn("broker: worker {}: {}", w->name, msg);
            send_worker_error(wid, wire::error_code::bad_request, msg);
        }
        }
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: bad {} from worker {}: {}", wire::command_name(env.cmd), peer_name(wid), e.what());
        send_worker_error(wid, e.code(), e.what());
    }
}

void broker::worker_ready(const std::string& wid, std::string_view body, const std::string& key_name) {
    wire::ready r = wire::decode_ready(body, limits_);
    if (r.services.empty() || r.slots < 1 || r.slots > 1024) throw wire::protocol_error(wire::error_code::bad_request, "READY needs services and 1..1024 slots");
    worker_entry w;
    w.routing_id = wid;
    w.name = r.worker.empty() ? peer_name(wid) : r.worker;
    w.model = r.model;
    w.services = r.services;
    w.slots = r.slots;
    w.n_ctx = r.n_ctx;
    w.reported_free = r.slots;
    w.last_seen = broker_clock::now();
    std::string svcs;
    for (const auto& s : w.services) svcs.append(svcs.empty() ? "" : ",").append(s);
    // Under CURVE the key says who it is; the name in READY is only what it calls itself.
    const std::string key = key_name.empty() || key_name == w.name ? std::string() : " (key '" + key_name + "')";
    spdlog::info("broker: worker {}{} ready: model {}, services {}, {} slots", w.name, key, w.model, svcs, w.slots);
    std::set<uint64_t> lost = workers_.add(std::move(w));
    worker_entry& added = *workers_.find(wid);
    worker_event_log(added, "ready", "", r.memory ? wire::memory_report_describe(*r.memory) : std::string());
    worker_guard(added, r.guard, r.memory);
    // A worker that says READY again has forgotten what it ran.
    for (uint64_t key : lost) {
        auto it = jobs_.find(key);
        if (it == jobs_.end()) continue;
        it->second.worker.clear();
        if (it->second.ended_for_client) job_erase(key);
        else {
            spdlog::warn("broker: worker re-registered; request {} goes back to the queue", it->second.req.id);
            queue_.push_front(it->second.req.service, it->second.req.prio, key);
        }
    }
    send_worker(wid, wire::command::heartbeat, wire::encode_empty());
}

void broker::worker_heartbeat(worker_entry& w, std::string_view body) {
    wire::heartbeat hb = wire::decode_heartbeat(body, limits_);
    w.reported_free = hb.free_slots;
    worker_guard(w, hb.guard, std::move(hb.memory));
}

void broker::worker_partial(worker_entry& w, std::string_view body) {
    wire::partial p = wire::decode_partial(body, limits_);
    job* j = job_find(w.routing_id, p.id, nullptr);
    if (!j || j->ended_for_client) return;
    if (!j->first_token) j->first_token = broker_clock::now();
    j->delivered.append(p.text);
    j->delivered_tokens += p.tokens;
    if (!j->req.stream) return;
    p.id = j->req.id;
    send_client(j->client, wire::command::partial, wire::encode(p));
}

void broker::worker_final(worker_entry& w, std::string_view body) {
    wire::final_reply fr = wire::decode_final(body, limits_);
    uint64_t key = 0;
    job* j = job_find(w.routing_id, fr.id, &key);
    if (!j) return;
    if (!j->ended_for_client) {
        const auto now = broker_clock::now();
        // A re-dispatched request continued after the text earlier workers delivered.
        if (j->resumed_chars > 0) fr.text.insert(0, j->delivered, 0, j->resumed_chars);
        fr.id = j->req.id;
        fr.use.queue_ms = ms_between(j->received, j->dispatched);
        fr.use.ttft_ms = j->first_token ? ms_between(j->received, *j->first_token) : ms_between(j->received, now);
        fr.use.total_ms = ms_between(j->received, now);
        fr.use.worker = w.name;
        if (fr.use.model.empty()) fr.use.model = w.model;
        if (j->req.service == "command" && !command_output(*j, fr, key)) return;
        ++served_;
        if (!j->batch.empty()) {
            // A batch job's result is recorded with its row; nobody waits on a socket for it.
            log_job(*j, "ok", 0, &fr);
            job_erase(key);
            return;
        }
        // The FINAL waits for its usage row's commit (group commit keeps that short).
        log_job(*j, "ok", key, &fr);
        const std::string client = j->client;
        job_erase(key);
        if (log_) held_[key] = held_final{client, fr.id, wire::encode(fr)};
        else send_client(client, wire::command::final, wire::encode(fr));
        return;
    }
    job_erase(key);
}

void broker::worker_error(worker_entry& w, std::string_view body) {
    wire::error_reply e = wire::decode_error(body, limits_);
    uint64_t key = 0;
    job* j = e.id.empty() ? nullptr : job_find(w.routing_id, e.id, &key);
    if (!j) {
        if (!e.id.empty()) spdlog::debug("broker: worker {} error for unknown request {}: {}", w.name, e.id, e.message);
        else spdlog::warn("broker: worker {} reports: {}: {}", w.name, wire::error_code_name(e.code), e.message);
        return;
    }
    if (e.code == wire::error_code::overloaded && job_requeue_overloaded(*j, key, w)) return;
    if (!j->ended_for_client) {
        e.id = j->req.id;
        const std::string client = j->client;
        log_job(*j, std::string(wire::error_code_name(e.code)), 0, nullptr, e.message);
        j->ended_for_client = true;
        job_erase(key);
        if (!client.empty()) send_client(client, wire::command::error, wire::encode(e));
        return;
    }
    job_erase(key);
}

void broker::worker_lost(const std::string& wid, const char* why) {
    worker_entry* w = workers_.find(wid);
    if (!w) return;
    if (w->assigned.empty() && std::string_view(why) == "said goodbye") spdlog::info("broker: worker {} left", w->name);
    else spdlog::warn("broker: worker {} lost ({}); {} request(s) in flight", w->name, why, w->assigned.size());
    const bool left = std::string_view(why) == "said goodbye";
    worker_event_log(*w, left ? "left" : "lost", "", left ? std::string() : std::string(why));
    std::set<uint64_t> lost = workers_.remove(wid);
    for (uint64_t key : lost) {
        auto it = jobs_.find(key);
        if (it == jobs_.end()) continue;
        job& j = it->second;
        j.worker.clear();
        if (j.ended_for_client) {
            job_erase(key);
        } else if (j.attempts < 2 && (!j.batch.empty() || workers_.count_serving(j.req.service) > 0)) {
            // (A batch job waits for a worker however long it takes.)
            spdlog::info("broker: request {} re-dispatched after its worker was lost ({} chars already delivered)", j.req.id, j.delivered.size());
            queue_.push_front(j.req.service, j.req.prio, key);
        } else {
            job_fail(j, wire::error_code::worker_lost,
                     j.attempts < 2 ? "its worker was lost and no other worker serves '" + j.req.service + "'" : "its worker was lost twice");
        }
    }
}

}  // namespace hearth
