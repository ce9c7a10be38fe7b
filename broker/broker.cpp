#include "broker.h"

#include "transport.h"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <random>
#include <vector>

namespace hearth {

namespace {

using std::chrono::milliseconds;

std::string random_instance() {
    std::random_device rd;
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(hex[rd() & 15]);
    return s;
}

std::string last_endpoint(const zmq::socket_t& s) { return s.get(zmq::sockopt::last_endpoint); }

// True when a broker answers STATUS at an ipc endpoint whose socket file exists: binding it
// again would silently steal the path from a running broker.
bool ipc_endpoint_served(zmq::context_t& zctx, const std::string& endpoint) {
    const std::string prefix = "ipc://";
    if (endpoint.compare(0, prefix.size(), prefix) != 0) return false;
    struct stat st {};
    if (stat(endpoint.c_str() + prefix.size(), &st) != 0) return false;
    zmq::socket_t probe(zctx, zmq::socket_type::dealer);
    wire::socket_setup(probe);
    probe.connect(endpoint);
    if (!wire::message_send(probe, {}, wire::command::status, wire::encode_empty())) return false;
    zmq::pollitem_t item{probe.handle(), 0, ZMQ_POLLIN, 0};
    return wire::poll_interruptible(&item, 1, milliseconds(300)) > 0;
}

}  // namespace

double ms_between(broker_clock::time_point a, broker_clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string peer_name(std::string_view id) {
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < id.size() && i < 4; ++i) {
        s.push_back(hex[static_cast<uint8_t>(id[i]) >> 4]);
        s.push_back(hex[static_cast<uint8_t>(id[i]) & 15]);
    }
    return s;
}

broker::broker(const config& cfg, zmq::context_t& zctx)
    : cfg_(cfg),
      front_(zctx, zmq::socket_type::router),
      back_(zctx, zmq::socket_type::router),
      queue_(cfg.broker.queue_interactive, cfg.broker.queue_batch),
      instance_(random_instance()),
      started_(broker_clock::now()),
      hb_(cfg.broker.heartbeat_ms) {
    // Room for the largest request we answer too_large rather than drop the connection over.
    const int64_t max_msg = std::max<int64_t>({wire::default_max_message_bytes, 2ll * cfg.broker.max_request_bytes + 4096,
                                               int64_t{cfg.broker.max_batch_bytes} + 4096});
    for (zmq::socket_t* s : {&front_, &back_}) {
        wire::socket_setup(*s, max_msg);
        // Sends to a peer that is gone fail (EHOSTUNREACH) instead of vanishing silently, and a
        // reconnecting client with the same routing id takes its place.
        s->set(zmq::sockopt::router_mandatory, 1);
        s->set(zmq::sockopt::router_handover, 1);
    }
    limits_.max_body_bytes = static_cast<size_t>(max_msg);
    batch_limits_ = limits_;
    batch_limits_.max_array = std::max<size_t>(limits_.max_array, cfg.broker.max_batch_jobs);
    if (ipc_endpoint_served(zctx, cfg.broker.client_endpoint))
        throw std::runtime_error("another hearth-broker is already serving " + cfg.broker.client_endpoint);
    security_setup(zctx);  // CURVE and its ZAP handler must be in place before the first connection
    config_prepare_endpoint(cfg.broker.client_endpoint);
    config_prepare_endpoint(cfg.broker.worker_endpoint);
    front_.bind(cfg.broker.client_endpoint);
    back_.bind(cfg.broker.worker_endpoint);
    next_tick_ = broker_clock::now() + hb_;
    wall_offset_us_ = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
                      std::chrono::duration_cast<std::chrono::microseconds>(broker_clock::now().time_since_epoch()).count();
    whitelist_reload();
    if (cfg.broker.usage_db != "off") {
        log_ = std::make_unique<usage_log>(cfg.broker.usage_db, zctx);
        batch_restore(log_->take_unfinished());
    } else {
        spdlog::warn("broker: usage_db = \"off\": no usage log, no audit trail, no batches");
    }
}

std::string broker::client_endpoint() const { return last_endpoint(front_); }
std::string broker::worker_endpoint() const { return last_endpoint(back_); }

void broker::run(const std::atomic<bool>& stop, std::atomic<bool>* reload) {
    spdlog::info("broker: clients on {}, workers on {}, heartbeat {} ms x {}", client_endpoint(), worker_endpoint(),
                 cfg_.broker.heartbeat_ms, cfg_.broker.liveness);
    // Only sockets that exist are polled (a null entry would poll file descriptor 0).
    zmq::pollitem_t items[4] = {{front_.handle(), 0, ZMQ_POLLIN, 0}, {back_.handle(), 0, ZMQ_POLLIN, 0}};
    int n_items = 2;
    const int log_item = log_ ? n_items++ : -1;
    if (log_) items[log_item] = {log_->notify_socket().handle(), 0, ZMQ_POLLIN, 0};
    const int zap_item = zap_ ? n_items++ : -1;
    if (zap_) items[zap_item] = {zap_->handle(), 0, ZMQ_POLLIN, 0};
    wire::frames f;
    while (!stop.load()) {
        if (reload && reload->exchange(false)) {
            whitelist_reload();
            allowlist_reload();
        }
        const auto now = broker_clock::now();
        const auto wake = std::min(next_tick_, next_deadline_);
        const auto wait = std::max<milliseconds>(milliseconds(0), std::chrono::ceil<milliseconds>(wake - now));
        for (zmq::pollitem_t& it : items) it.revents = 0;
        wire::poll_interruptible(items, n_items, std::min(wait, milliseconds(100)));
        if (zap_item >= 0 && (items[zap_item].revents & ZMQ_POLLIN)) on_zap();  // a handshake waits on it
        if (log_item >= 0 && (items[log_item].revents & ZMQ_POLLIN)) on_log_events();
        // Bounded batches per socket so that neither side can starve the other; a socket poll
        // did not flag is not asked (each failed receive is a system call or two).
        if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < 256 && wire::message_recv(back_, f); ++i) on_worker(f);
        if (items[0].revents & ZMQ_POLLIN)
            for (int i = 0; i < 256 && wire::message_recv(front_, f); ++i) on_client(f);
        const auto after = broker_clock::now();
        if (after >= next_tick_) tick();
        else if (after >= next_deadline_) expire_deadlines(after);  // before dispatch: an expired request never starts
        dispatch();
    }
    // Workers drop what they run for us (a restarted broker would not know it) and reconnect.
    const std::string bye = wire::encode(wire::disconnect{"broker stopping"});
    for (const auto& [wid, w] : workers_.all()) send_worker(wid, wire::command::disconnect, bye);
    // FINALs whose rows are still being committed go out before we leave.
    const auto until = broker_clock::now() + std::chrono::seconds(5);
    while (log_ && !held_.empty() && broker_clock::now() < until) {
        zmq::pollitem_t li{log_->notify_socket().handle(), 0, ZMQ_POLLIN, 0};
        wire::poll_interruptible(&li, 1, milliseconds(50));
        on_log_events();
    }
    spdlog::info("broker: stopped ({} requests served, {} usage rows written)", served_, log_ ? log_->rows_written() : 0);
}

// ------------------------------------------------------------------ sending

bool broker::send_client(const std::string& client, wire::command c, const std::string& body) {
    if (wire::message_send(front_, client, c, body)) return true;
    spdlog::warn("broker: client {} gone or not reading; ending its requests", peer_name(client));
    client_gone(client);
    return false;
}

bool broker::send_worker(const std::string& wid, wire::command c, const std::string& body) {
    return wire::message_send(back_, wid, c, body);
}

void broker::send_worker_error(const std::string& wid, wire::error_code code, const std::string& message) {
    wire::error_reply e;
    e.code = code;
    e.message = message;
    send_worker(wid, wire::command::error, wire::encode(e));
}

void broker::send_client_error(const std::string& client, const std::string& id, wire::error_code code, const std::string& message,
                               uint32_t retry_after_ms) {
    send_client(client, wire::command::error, wire::encode(wire::error_reply{id, code, message, retry_after_ms}));
}

std::string broker::job_wire_id(uint64_t key) const {
    std::string s = instance_;
    s.push_back('-');
    s.append(std::to_string(key));
    return s;
}

// ------------------------------------------------------------------ usage log

int64_t broker::wall_us(broker_clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() + wall_offset_us_;
}

void broker::log_refusal(const std::string& client, const wire::request& r, wire::error_code code, const std::string& rule) {
    usage_row row;
    row.request_id = r.id;
    row.client = identity_of(client);
    row.service = r.service;
    row.priority = std::string(wire::priority_name(r.prio));
    row.received_us = row.finished_us = wall_us(broker_clock::now());
    row.status = std::string(wire::error_code_name(code));
    if (!rule.empty()) {
        row.filter_verdict = "filtered";
        row.filter_rule = rule;
    }
    if (log_) log_->submit(std::move(row), 0);
}

void broker::refuse(const std::string& client, const wire::request& r, wire::error_code code, const std::string& message,
                    const std::string& rule) {
    log_refusal(client, r, code, rule);
    send_client_error(client, r.id, code, message);
}

void broker::log_job(const job& j, const std::string& status, uint64_t token, const wire::final_reply* fin,
                     const std::string& message) {
    usage_row row;
    row.request_id = j.batch.empty() ? j.req.id : j.batch + "/" + j.req.id;
    row.client = j.owner;
    row.service = j.req.service;
    row.priority = std::string(wire::priority_name(j.req.prio));
    if (fin) {
        row.model = fin->use.model;
        row.worker = fin->use.worker;
        row.prompt_tokens = fin->use.prompt_tokens;
        row.completion_tokens = fin->use.completion_tokens;
    } else {
        row.completion_tokens = j.delivered_tokens;
        if (!j.worker.empty()) {
            if (auto it = workers_.all().find(j.worker); it != workers_.all().end()) {
                row.model = it->second.model;
                row.worker = it->second.name;
            }
        }
    }
    row.received_us = wall_us(j.received);
    if (j.attempts > 0) row.started_us = wall_us(j.dispatched);
    if (j.first_token) row.first_token_us = wall_us(*j.first_token);
    row.finished_us = wall_us(broker_clock::now());
    row.status = status;
    row.filter_verdict = j.filter_verdict;
    row.filter_rule = j.filter_rule;
    // Every request that ran counts against tokens_per_day, however it ended: a client must not
    // be able to stream most of an answer and cancel to go uncounted.
    quota_tokens(j.owner, static_cast<uint64_t>(std::max<int64_t>(0, row.prompt_tokens)) +
                              static_cast<uint64_t>(std::max<int64_t>(0, row.completion_tokens)));
    if (!log_) return;
    // A batch job cancelled with its batch has its state already (cancelled); any other end is
    // its result, committed with the row.
    if (j.batch.empty() || status == "cancelled") {
        log_->submit(std::move(row), token);
        return;
    }
    job_outcome o;
    o.batch_id = j.batch;
    o.idx = j.batch_idx;
    o.state = status == "ok" ? "done" : "failed";
    o.text = fin ? fin->text : j.delivered;
    if (o.state == "failed") {
        o.error_code = status;
        o.error_message = message;
    }
    o.finished_us = row.finished_us;
    log_->submit(std::move(row), std::move(o), token);
}

void broker::on_log_events() {
    if (!log_) return;
    log_events ev = log_->drain();
    for (uint64_t key : ev.committed) {
        auto it = held_.find(key);
        if (it == held_.end()) continue;
        held_final h = std::move(it->second);
        held_.erase(it);
        send_client(h.client, wire::command::final, h.body);
    }
    for (const log_answer& a : ev.answers) {
        auto it = log_calls_.find(a.token);
        if (it == log_calls_.end()) continue;
        auto then = std::move(it->second);
        log_calls_.erase(it);
        then(a);
    }
}

// ------------------------------------------------------------------ clients

void broker::on_client(const wire::frames& f) {
    const std::string client(f.routing_id());
    if (!peer_note(client, f.parts.back())) return;
    wire::envelope env;
    try {
        env = wire::envelope_parse(f.views(1));
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: malformed message from client {}: {}", peer_name(client), e.what());
        send_client_error(client, "", e.code(), e.what());
        return;
    }
    try {
        switch (env.cmd) {
        case wire::command::request: client_request(client, env.body); break;
        case wire::command::cancel: client_cancel(client, env.body); break;
        case wire::command::status: client_status(client); break;
        case wire::command::heartbeat: client_heartbeat(client, env.body); break;
        case wire::command::batch: client_batch(client, env.body); break;
        case wire::command::audit: client_audit(client, env.body); break;
        default: {
            std::string msg = "command ";
            msg.append(wire::command_name(env.cmd));
            msg.append(" is not one a client sends");
            spdlog::warn("broker: client {}: {}", peer_name(client), msg);
            send_client_error(client, "", wire::error_code::bad_request, msg);
        }
        }
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: bad {} from client {}: {}", wire::command_name(env.cmd), peer_name(client), e.what());
        if (env.cmd == wire::command::request) log_refusal(client, wire::request{}, e.code());
        send_client_error(client, "", e.code(), e.what());
    }
}

void broker::client_request(const std::string& client, std::string_view body) {
    wire::request r = wire::decode_request(body, limits_);
    if (body.size() > cfg_.broker.max_request_bytes) {
        std::string msg = "request of ";
        msg.append(std::to_string(body.size())).append(" bytes is over the limit of ").append(std::to_string(cfg_.broker.max_request_bytes));
        refuse(client, r, wire::error_code::too_large, msg);
        return;
    }
    try {
        wire::request_validate(r);
    } catch (const wire::protocol_error& e) {
        refuse(client, r, e.code(), e.what());
        return;
    }
    const auto& known = cfg_.broker.services;
    if (std::find(known.begin(), known.end(), r.service) == known.end()) {
        std::string msg = "unknown service '";
        msg.append(r.service).append("' (this broker serves:");
        for (const auto& s : known) msg.append(" ").append(s);
        msg.append(")");
        refuse(client, r, wire::error_code::unknown_service, msg);
        return;
    }
    if (const std::string rule = input_refusal(client, r); !rule.empty()) {
        refuse(client, r, wire::error_code::filtered, "refused by the input filter: " + rule, rule);
        return;
    }
    // The same id again (a client that resubmits after missing our reply): answer where it is.
    if (auto it = by_client_id_.find({client, r.id}); it != by_client_id_.end()) {
        send_client(client, wire::command::accepted, wire::encode(accepted_for(jobs_.at(it->second))));
        return;
    }
    uint32_t retry_ms = 0;
    if (std::string why = quota_refusal(client, 1, &retry_ms); !why.empty()) {
        spdlog::info("broker: request {} from {} refused: {}", r.id, identity_of(client), why);
        log_refusal(client, r, wire::error_code::quota_exceeded);
        send_client_error(client, r.id, wire::error_code::quota_exceeded, why, retry_ms);
        return;
    }
    if (r.service == "command" && command_prepare(client, r)) {  // answered by the fast path (or refused)
        quota_charge(client, 1);
        return;
    }
    const uint64_t bytes = request_bytes(r);
    if (std::string why = budget_refusal(bytes); !why.empty()) {
        spdlog::warn("broker: request {} from {} refused: {}", r.id, peer_name(client), why);
        log_refusal(client, r, wire::error_code::overloaded);
        send_overloaded(client, r.id, why);
        return;
    }
    if (cfg_.broker.no_worker_ms == 0 && workers_.count_serving(r.service) == 0) {
        refuse(client, r, wire::error_code::no_worker, "no worker serves '" + r.service + "' now");
        return;
    }
    const uint64_t key = next_key_++;
    auto pos = queue_.push(r.service, r.prio, key);
    if (!pos) {
        std::string msg = "the ";
        msg.append(wire::priority_name(r.prio)).append(" queue of '").append(r.service).append("' is full (")
            .append(std::to_string(r.prio == wire::priority::interactive ? cfg_.broker.queue_interactive : cfg_.broker.queue_batch))
            .append(" waiting); try again later");
        refuse(client, r, wire::error_code::queue_full, msg);
        return;
    }
    job j;
    j.key = key;
    j.client = client;
    j.owner = identity_of(client);
    j.received = broker_clock::now();
    if (r.deadline_ms > 0) {
        j.deadline = j.received + milliseconds(r.deadline_ms);
        next_deadline_ = std::min(next_deadline_, *j.deadline);
    }
    j.bytes = bytes;
    j.note = guard_note(r.service);
    j.req = std::move(r);
    by_client_id_[{client, j.req.id}] = key;
    held_bytes_ += bytes;
    quota_charge(client, 1);
    jobs_.emplace(key, std::move(j));
    // Dispatch before answering, so the answer says whether it waits at all.
    dispatch();
    auto it = jobs_.find(key);
    if (it == jobs_.end()) return;  // already ended (its worker could not be reached and no other)
    const wire::accepted a = accepted_for(it->second);
    spdlog::debug("broker: request {} from {} for {} accepted at position {}", a.id, peer_name(client), it->second.req.service, a.position);
    send_client(client, wire::command::accepted, wire::encode(a));
}

void broker::client_cancel(const std::string& client, std::string_view body) {
    wire::cancel c = wire::decode_cancel(body, limits_);
    auto it = by_client_id_.find({client, c.id});
    if (it == by_client_id_.end()) {
        send_client_error(client, c.id, wire::error_code::bad_request, "no request '" + c.id + "' is waiting or running");
        return;
    }
    job& j = jobs_.at(it->second);
    if (j.ended_for_client) return;
    spdlog::info("broker: request {} cancelled by its client", c.id);
    job_fail(j, wire::error_code::cancelled, "cancelled by the client");
}

void broker::client_heartbeat(const std::string& client, std::string_view body) {
    wire::heartbeat hb = wire::decode_heartbeat(body, limits_);
    wire::heartbeat reply;
    for (const auto& id : hb.pending)
        if (by_client_id_.find({client, id}) == by_client_id_.end() && !final_held(client, id)) reply.unknown.push_back(id);
    send_client(client, wire::command::heartbeat, wire::encode(reply));
}

// A request whose FINAL waits for its usage row is over for the queue but not for its client: calling
// it unknown would make the client resubmit it, or fail it as lost mid-stream.
bool broker::final_held(const std::string& client, const std::string& id) const {
    for (const auto& [key, h] : held_)  // a few at most: those of one group commit
        if (h.client == client && h.id == id) return true;
    return false;
}

void broker::client_status(const std::string& client) {
    wire::status_reply s;
    const auto now = broker_clock::now();
    std::vector<std::string> names = cfg_.broker.services;
    for (const auto& [wid, w] : workers_.all())
        for (const auto& svc : w.services)
            if (std::find(names.begin(), names.end(), svc) == names.end()) names.push_back(svc);
    for (const auto& name : names) {
        wire::service_status ss;
        ss.name = name;
        ss.interactive = queue_.depth(name, wire::priority::interactive);
        ss.batch = queue_.depth(name, wire::priority::batch);
        if (auto b = backlog_.find(name); b != backlog_.end()) ss.batch += static_cast<uint32_t>(b->second.size());
        if (auto b = backlog_parked_.find(name); b != backlog_parked_.end()) ss.batch += static_cast<uint32_t>(b->second.size());
        ss.workers = workers_.count_serving(name);
        for (const auto& [wid, w] : workers_.all()) {
            if (!w.serves(name)) continue;
            if (w.guard == "critical") ++ss.critical;
            else if (w.guard == "throttled") ++ss.throttled;
        }
        if (ss.interactive + ss.batch > 0) ss.note = guard_note(name);
        s.services.push_back(ss);
    }
    for (const auto& [key, j] : jobs_) {
        if (j.worker.empty()) continue;
        for (auto& ss : s.services)
            if (ss.name == j.req.service) ++ss.running;
    }
    for (const auto& [wid, w] : workers_.all()) {
        wire::worker_status ws;
        ws.id = w.name;
        ws.model = w.model;
        ws.services = w.services;
        ws.slots = w.slots;
        ws.busy = w.busy();
        ws.guard = w.guard;
        ws.memory = w.memory;
        ws.last_seen_ms = ms_between(w.last_seen, now);
        s.workers.push_back(ws);
    }
    s.uptime_s = ms_between(started_, now) / 1000.0;
    s.served = served_;
    send_client(client, wire::command::status, wire::encode(s));
}

void broker::client_gone(const std::string& client) {
    std::vector<uint64_t> keys;
    for (auto it = by_client_id_.lower_bound({client, std::string()}); it != by_client_id_.end() && it->first.first == client; ++it)
        keys.push_back(it->second);
    for (uint64_t key : keys) {
        auto it = jobs_.find(key);
        if (it == jobs_.end()) continue;
        if (it->second.ended_for_client) continue;
        log_job(it->second, "cancelled", 0, nullptr);
        it->second.ended_for_client = true;  // nobody to tell
        job_fail(it->second, wire::error_code::cancelled, "client gone");
    }
    // Nor may a FINAL waiting for its row's commit go to whoever has this routing id next.
    std::erase_if(held_, [&](const auto& kv) { return kv.second.client == client; });
}

// ------------------------------------------------------------------ jobs

wire::accepted broker::accepted_for(const job& j) const {
    wire::accepted a{j.req.id, 0, queue_.depth(j.req.service), {}};
    if (j.worker.empty()) {
        a.note = j.note;
        a.position = queue_.position(j.req.service, j.req.prio, j.key).value_or(0);
    }
    return a;
}

broker::job* broker::job_find(const std::string& worker_id, const std::string& id, uint64_t* key_out) {
    if (id.size() <= instance_.size() + 1 || id.compare(0, instance_.size(), instance_) != 0 || id[instance_.size()] != '-')
        return nullptr;
    uint64_t key = 0;
    const char* b = id.data() + instance_.size() + 1;
    const char* e = id.data() + id.size();
    auto [p, ec] = std::from_chars(b, e, key);
    if (ec != std::errc() || p != e) return nullptr;
    auto it = jobs_.find(key);
    if (it == jobs_.end() || it->second.worker != worker_id) return nullptr;
    if (key_out) *key_out = key;
    return &it->second;
}

void broker::job_erase(uint64_t key) {
    auto it = jobs_.find(key);
    if (it == jobs_.end()) return;
    job& j = it->second;
    held_bytes_ -= std::min(held_bytes_, j.bytes);
    if (!j.worker.empty()) {
        if (worker_entry* w = workers_.find(j.worker)) w->assigned.erase(key);
    } else {
        queue_.remove(j.req.service, j.req.prio, key);
    }
    if (j.batch.empty()) {
        auto m = by_client_id_.find({j.client, j.req.id});
        if (m != by_client_id_.end() && m->second == key) by_client_id_.erase(m);  // the client may have reused the id
    }
    jobs_.erase(it);
}

void broker::job_fail(job& j, wire::error_code code, const std::string& message) {
    const uint64_t key = j.key;
    if (!j.ended_for_client) {
        j.ended_for_client = true;
        log_job(j, std::string(wire::error_code_name(code)), 0, nullptr, message);
        if (j.batch.empty()) {
            send_client_error(j.client, j.req.id, code, message);
            // send_client may have ended the job already (client gone).
            if (jobs_.find(key) == jobs_.end()) return;
        }
    }
    if (j.worker.empty()) {
        job_erase(key);
        return;
    }
    // Running: the worker must stop; its slot stays counted until it says it did (or dies).
    wire::cancel c{job_wire_id(key), code == wire::error_code::timeout ? "timeout" : "cancelled"};
    if (!send_worker(j.worker, wire::command::cancel, wire::encode(c))) job_erase(key);
    else if (j.batch.empty()) by_client_id_.erase({j.client, j.req.id});  // the client may reuse the id at once
}

void broker::dispatch() {
    std::vector<std::string> services;
    queue_.for_each_waiting([&](const std::string& s) { services.push_back(s); });
    for (const auto& [service, jobs] : backlog_)
        if (!jobs.empty() && std::find(services.begin(), services.end(), service) == services.end()) services.push_back(service);
    for (const auto& service : services) {
        while (auto key = queue_.peek(service)) {
            worker_entry* w = workers_.pick(service);
            if (!w) break;
            queue_.pop(service);
            job& j = jobs_.at(*key);
            if (!dispatch_one(j, *w)) {
                // The worker is unreachable: it is lost; the job goes back to the head.
                queue_.push_front(service, j.req.prio, j.key);
                const std::string wid = w->routing_id;
                worker_lost(wid, "unreachable");
            }
        }
        // Batch jobs only get slots no queued request wants.
        if (!queue_.peek(service)) backlog_dispatch(service);
    }
}

bool broker::dispatch_one(job& j, worker_entry& w) {
    wire::request r = j.req;
    r.id = job_wire_id(j.key);
    r.resume_text = j.delivered;
    r.resume_tokens = j.delivered_tokens;
    j.resumed_chars = j.delivered.size();
    const auto now = broker_clock::now();
    if (j.deadline) r.deadline_ms = static_cast<uint32_t>(std::max<int64_t>(1, std::chrono::duration_cast<milliseconds>(*j.deadline - now).count()));
    if (!send_worker(w.routing_id, wire::command::request, wire::encode(r))) return false;
    ++j.attempts;
    j.worker = w.routing_id;
    j.dispatched = now;
    w.assigned.insert(j.key);
    spdlog::debug("broker: request {} -> worker {} (attempt {})", j.req.id, w.name, j.attempts);
    return true;
}

// ------------------------------------------------------------------ timers

void broker::expire_deadlines(broker_clock::time_point now) {
    std::vector<uint64_t> expired;
    next_deadline_ = broker_clock::time_point::max();
    for (const auto& [key, j] : jobs_) {
        if (j.ended_for_client || !j.deadline) continue;
        if (now >= *j.deadline) expired.push_back(key);
        else next_deadline_ = std::min(next_deadline_, *j.deadline);
    }
    for (uint64_t key : expired) {
        auto it = jobs_.find(key);
        if (it != jobs_.end()) job_fail(it->second, wire::error_code::timeout, "the deadline passed");
    }
}

void broker::tick() {
    const auto now = broker_clock::now();
    next_tick_ = now + hb_;
    if (on_tick) on_tick();
    // Workers: a heartbeat each interval; silence for `liveness` intervals is death.
    for (const auto& wid : workers_.silent_since(now - hb_ * cfg_.broker.liveness)) worker_lost(wid, "missed heartbeats");
    const std::string hb = wire::encode_empty();
    std::vector<std::string> unreachable;
    for (const auto& [wid, w] : workers_.all())
        if (!send_worker(wid, wire::command::heartbeat, hb)) unreachable.push_back(wid);
    for (const auto& wid : unreachable) worker_lost(wid, "unreachable");
    expire_deadlines(now);
    // Requests no worker can serve.
    std::vector<uint64_t> orphaned;
    for (const auto& [key, j] : jobs_) {
        if (!j.ended_for_client && j.batch.empty() && j.worker.empty() && workers_.count_serving(j.req.service) == 0 &&
            now - j.received >= milliseconds(cfg_.broker.no_worker_ms))
            orphaned.push_back(key);
    }
    for (uint64_t key : orphaned) {
        auto it = jobs_.find(key);
        if (it != jobs_.end()) job_fail(it->second, wire::error_code::no_worker, "no worker serves '" + it->second.req.service + "'");
    }
    expire_starved(now);
    if (!parked_owners_.empty()) backlog_unpark();
}

}  // namespace hearth
