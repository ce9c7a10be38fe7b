// The broker's batches: BATCH calls from clients, and the backlog of batch jobs. The batch tables
// belong to the usage log's writer thread, so every read and write here is a task handed to it
// (log_call); the loop goes on serving and finishes the call when the task's answer comes back.
// A submit is acknowledged only after its transaction committed, and a job's result is committed
// with its usage row (log_job), so a broker killed at any moment re-runs exactly the jobs that
// have no result.
#include "broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hearth {

namespace {

// A results page stays well under what a client's socket and decoder accept.
constexpr uint32_t kResultsPageJobs = 1000;
constexpr size_t kResultsPageBytes = 4u << 20;

// What a status/results/cancel task found, for the loop to answer with.
struct batch_found {
    std::optional<batch_status> status;    // nullopt: no such batch for this client
    std::vector<job_result> jobs;          // results: the page
    int64_t stopped = 0;                   // cancel: jobs it stopped
};

std::string no_batch(const std::string& id) {
    std::string m = "no batch '";
    m.append(id).append("' (unknown, or submitted by another client)");
    return m;
}

}  // namespace

uint64_t broker::log_then(std::function<void(const log_answer&)> then) {
    const uint64_t token = next_key_++;
    log_calls_.emplace(token, std::move(then));
    return token;
}

void broker::log_call(log_task task, std::function<void(const log_answer&)> then) { log_->run(std::move(task), log_then(std::move(then))); }

uint32_t broker::batch_running(const std::string& batch) const {
    uint32_t n = 0;
    for (const auto& [key, j] : jobs_)
        if (j.batch == batch && !j.worker.empty()) ++n;
    return n;
}

void broker::client_batch(const std::string& client, std::string_view body) {
    wire::batch_call c;
    try {
        c = wire::decode_batch_call(body, batch_limits_);
        if (body.size() > cfg_.broker.max_batch_bytes) {
            std::string m = "batch of ";
            m.append(std::to_string(body.size())).append(" bytes is over the limit of ").append(std::to_string(cfg_.broker.max_batch_bytes));
            throw wire::protocol_error(wire::error_code::too_large, m);
        }
        wire::batch_call_validate(c);
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: bad BATCH from client: {}", e.what());
        send_client_error(client, c.id, e.code(), e.what());
        return;
    }
    if (!log_) {
        send_client_error(client, c.id, wire::error_code::unsupported, "batches need the usage database (broker.usage_db is \"off\")");
        return;
    }
    if (c.op == wire::batch_op::submit) batch_submit(client, std::move(c));
    else batch_query(client, c);
}

void broker::batch_submit(const std::string& client, wire::batch_call c) {
    if (c.jobs.size() > cfg_.broker.max_batch_jobs) {
        std::string m = "batch of ";
        m.append(std::to_string(c.jobs.size())).append(" jobs is over the limit of ").append(std::to_string(cfg_.broker.max_batch_jobs));
        send_client_error(client, c.id, wire::error_code::too_large, m);
        return;
    }
    const auto& known = cfg_.broker.services;
    std::vector<std::pair<std::string, std::string>> stored;  // (job id, encoded request)
    stored.reserve(c.jobs.size());
    for (size_t i = 0; i < c.jobs.size(); ++i) {
        wire::request& r = c.jobs[i];
        r.prio = wire::priority::batch;
        r.stream = false;
        r.resume_text.clear();
        r.resume_tokens = 0;
        std::string where = "jobs[";
        where.append(std::to_string(i)).append("]: ");
        if (std::find(known.begin(), known.end(), r.service) == known.end()) {
            send_client_error(client, c.id, wire::error_code::unknown_service, where + "unknown service '" + r.service + "'");
            return;
        }
        if (r.service == "command") {
            // Its answers go through the output filter one by one, interactively; not in batches yet.
            send_client_error(client, c.id, wire::error_code::unsupported, where + "the command service is not available in batches");
            return;
        }
        if (const std::string rule = input_refusal(client, r); !rule.empty()) {
            send_client_error(client, c.id, wire::error_code::filtered, where + "refused by the input filter: " + rule);
            return;
        }
        std::string body = wire::encode(r);
        if (body.size() > cfg_.broker.max_request_bytes) {
            where.append("request of ").append(std::to_string(body.size())).append(" bytes is over the limit of ")
                .append(std::to_string(cfg_.broker.max_request_bytes));
            send_client_error(client, c.id, wire::error_code::too_large, where);
            return;
        }
        stored.emplace_back(r.id, std::move(body));
    }
    uint32_t retry_ms = 0;
    if (std::string why = quota_refusal(client, static_cast<uint32_t>(c.jobs.size()), &retry_ms); !why.empty()) {
        spdlog::info("broker: batch {} from {} refused: {}", c.id, identity_of(client), why);
        send_client_error(client, c.id, wire::error_code::quota_exceeded, why, retry_ms);
        return;
    }
    uint64_t bytes = 0;
    for (const auto& r : c.jobs) bytes += request_bytes(r);
    if (std::string why = budget_refusal(bytes); !why.empty()) {
        spdlog::warn("broker: batch {} refused: {}", c.id, why);
        send_overloaded(client, c.id, why);
        return;
    }
    held_bytes_ += bytes;  // reserved now, so that submissions stored meanwhile cannot all pass
    quota_charge(client, static_cast<uint32_t>(c.jobs.size()));
    const std::string owner = identity_of(client);
    quota_pending_[owner] += c.jobs.size();  // likewise for max_queued
    const int64_t now = wall_us(broker_clock::now());
    auto id = std::make_shared<std::string>();
    log_call([stored = std::move(stored), owner, now, id](batch_store& s) { *id = s.create(owner, stored, now); },
             [this, client, call_id = c.id, jobs = std::move(c.jobs), owner, id, now, bytes](const log_answer& a) mutable {
                 if (auto p = quota_pending_.find(owner); p != quota_pending_.end()) {
                     p->second -= std::min<uint64_t>(p->second, jobs.size());
                     if (p->second == 0) quota_pending_.erase(p);
                 }
                 if (!a.ok) {
                     held_bytes_ -= std::min(held_bytes_, bytes);
                     send_client_error(client, call_id, wire::error_code::internal, "the batch could not be stored: " + a.error);
                     return;
                 }
                 const auto total = static_cast<uint32_t>(jobs.size());
                 for (size_t i = 0; i < jobs.size(); ++i) {
                     const std::string service = jobs[i].service;
                     backlog_[service].push_back(backlog_job{*id, static_cast<int64_t>(i), owner, std::move(jobs[i])});
                 }
                 spdlog::info("broker: batch {} of {} jobs stored for {}", *id, total, owner);
                 wire::batch_reply r;
                 r.id = call_id;
                 r.op = wire::batch_op::submit;
                 r.batch = *id;
                 r.total = r.queued = total;
                 r.created_us = now;
                 send_client(client, wire::command::batch, wire::encode(r));
             });
}

void broker::batch_query(const std::string& client, const wire::batch_call& c) {
    const std::string who = identity_of(client);
    const bool any_owner = admin(client);  // an admin reads and cancels every client's batches
    const std::string batch = c.batch;
    const wire::batch_op op = c.op;
    const uint32_t from = c.from;
    const uint32_t limit = std::min(c.limit == 0 ? kResultsPageJobs : c.limit, kResultsPageJobs);
    const int64_t now = wall_us(broker_clock::now());
    auto found = std::make_shared<batch_found>();
    log_call(
        [=](batch_store& s) {
            found->status = s.status(batch);
            if (!found->status || (found->status->client != who && !any_owner)) {
                found->status.reset();
                return;
            }
            if (op == wire::batch_op::results) {
                found->jobs = s.results(batch, from, limit).value_or(std::vector<job_result>{});
            } else if (op == wire::batch_op::cancel) {
                found->stopped = s.cancel(batch, now).value_or(0);
                found->status = s.status(batch);
            }
        },
        [this, client, call_id = c.id, batch, op, from, found](const log_answer& a) {
            if (!a.ok) {
                send_client_error(client, call_id, wire::error_code::internal, "the batch could not be read: " + a.error);
                return;
            }
            if (!found->status) {
                send_client_error(client, call_id, wire::error_code::bad_request, no_batch(batch));
                return;
            }
            if (op == wire::batch_op::cancel) {
                batch_forget(batch);
                spdlog::info("broker: batch {} cancelled ({} queued jobs stopped)", batch, found->stopped);
            }
            const batch_status& st = *found->status;
            wire::batch_reply r;
            r.id = call_id;
            r.op = op;
            r.batch = batch;
            r.total = static_cast<uint32_t>(st.total);
            r.queued = static_cast<uint32_t>(st.queued);
            r.running = std::min(r.queued, batch_running(batch));
            r.done = static_cast<uint32_t>(st.done);
            r.failed = static_cast<uint32_t>(st.failed);
            r.cancelled = static_cast<uint32_t>(st.cancelled);
            r.batch_cancelled = st.batch_cancelled;
            r.created_us = st.created_us;
            r.stopped = static_cast<uint32_t>(found->stopped);
            size_t bytes = 0;
            for (job_result& jr : found->jobs) {
                bytes += jr.text.size() + jr.error_message.size() + jr.job_id.size() + 64;
                if (!r.jobs.empty() && bytes > kResultsPageBytes) break;  // the rest on the next page
                wire::batch_job j;
                j.idx = static_cast<uint32_t>(jr.idx);
                j.id = std::move(jr.job_id);
                j.state = std::move(jr.state);
                j.text = std::move(jr.text);
                j.error = std::move(jr.error_code);
                j.message = std::move(jr.error_message);
                j.finished_us = jr.finished_us;
                r.jobs.push_back(std::move(j));
            }
            if (op == wire::batch_op::results) {
                const int64_t next = int64_t{from} + static_cast<int64_t>(r.jobs.size());
                r.next = next < st.total && !r.jobs.empty() ? next : -1;
            }
            send_client(client, wire::command::batch, wire::encode(r));
        });
}

void broker::batch_forget(const std::string& batch) {
    for (auto* lists : {&backlog_, &backlog_parked_})
        for (auto& [service, waiting] : *lists)
            waiting.erase(std::remove_if(waiting.begin(), waiting.end(),
                                         [&](const backlog_job& b) {
                                             if (b.batch != batch) return false;
                                             held_bytes_ -= std::min(held_bytes_, request_bytes(b.req));
                                             if (lists == &backlog_parked_) {
                                                 auto o = parked_owners_.find(b.owner);
                                                 if (o != parked_owners_.end() && --o->second == 0) parked_owners_.erase(o);
                                             }
                                             return true;
                                         }),
                          waiting.end());
    std::vector<uint64_t> keys;
    for (const auto& [key, j] : jobs_)
        if (j.batch == batch && !j.ended_for_client) keys.push_back(key);
    for (uint64_t key : keys) {
        auto it = jobs_.find(key);
        if (it != jobs_.end()) job_fail(it->second, wire::error_code::cancelled, "its batch was cancelled");
    }
}

void broker::batch_restore(std::vector<pending_job> pending) {
    if (pending.empty()) return;
    wire::decode_limits lim;
    lim.max_body_bytes = limits_.max_body_bytes;
    size_t restored = 0;
    for (pending_job& p : pending) {
        wire::request r;
        try {
            r = wire::decode_request(p.request, lim);
            r.id = p.job_id;
        } catch (const wire::protocol_error& e) {
            // Cannot happen for what this broker stored; a damaged row fails rather than blocks.
            spdlog::error("broker: batch {} job {} cannot be read back ({}); recording it failed", p.batch_id, p.idx, e.what());
            job bad;
            bad.batch = p.batch_id;
            bad.batch_idx = p.idx;
            bad.owner = p.client;
            bad.req.id = p.job_id;
            bad.req.prio = wire::priority::batch;
            bad.received = broker_clock::now();
            log_job(bad, "internal", 0, nullptr, std::string("stored request unreadable: ") + e.what());
            continue;
        }
        const std::string service = r.service;
        held_bytes_ += request_bytes(r);  // counted, never refused: these were acknowledged
        backlog_[service].push_back(backlog_job{p.batch_id, p.idx, p.client, std::move(r)});
        ++restored;
    }
    spdlog::info("broker: {} unfinished batch job(s) queued again from {}", restored, log_->path());
}

void broker::backlog_dispatch(const std::string& service) {
    auto b = backlog_.find(service);
    if (b == backlog_.end()) return;
    while (!b->second.empty()) {
        worker_entry* w = workers_.pick(service);
        if (!w) return;
        // tokens_per_day holds for batches too: a batch accepted under the limit must not run on
        // past it all night.
        if (tokens_used_up(b->second.front().owner)) {
            backlog_park(service);
            continue;
        }
        backlog_job next = std::move(b->second.front());
        b->second.pop_front();
        job j;
        j.key = next_key_++;
        j.owner = std::move(next.owner);
        j.batch = std::move(next.batch);
        j.batch_idx = next.idx;
        j.req = std::move(next.req);
        j.bytes = request_bytes(j.req);  // already in held_bytes_ since it entered the backlog
        j.received = broker_clock::now();
        if (j.req.deadline_ms > 0) {
            // A job's deadline counts from when it leaves the backlog: a batch may wait all night.
            j.deadline = j.received + std::chrono::milliseconds(j.req.deadline_ms);
            next_deadline_ = std::min(next_deadline_, *j.deadline);
        }
        const uint64_t key = j.key;
        job& placed = jobs_.emplace(key, std::move(j)).first->second;
        if (!dispatch_one(placed, *w)) {
            queue_.push_front(service, placed.req.prio, key);
            const std::string wid = w->routing_id;
            worker_lost(wid, "unreachable");
            return;
        }
    }
}

}  // namespace hearth
