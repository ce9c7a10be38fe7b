#include "worker.h"

#include "byte-size.h"
#include "curve-keys.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <stdexcept>

namespace hearth {

namespace {

using std::chrono::milliseconds;

std::string_view view_of(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

}  // namespace

guard_options guard_options_from(const worker_config& w) {
    guard_options o;
    o.root = w.guard_root;
    o.interval_ms = static_cast<int>(w.guard_interval_ms);
    o.memory_budget = w.memory_budget;
    o.throttle_fraction = w.guard_throttle_available;
    o.critical_fraction = w.guard_critical_available;
    o.psi_some_throttle = w.guard_psi_some_throttle;
    o.psi_full_critical = w.guard_psi_full_critical;
    o.budget_throttle = w.guard_budget_throttle;
    o.budget_critical = w.guard_budget_critical;
    o.recover_samples = static_cast<int>(w.guard_recover_samples);
    return o;
}

std::optional<curve_client_keys> worker_curve_keys_load(const worker_config& w) {
    try {
        return curve_client_keys_load(w.curve_secret_key, w.broker_public_key, "worker.curve_secret_key",
                                      "worker.broker_public_key");
    } catch (const key_error& e) {
        throw std::invalid_argument(e.what());
    }
}

worker::worker(const config& cfg, const model& m, std::string model_name, zmq::context_t& zctx)
    : cfg_(cfg),
      model_(m),
      model_name_(std::move(model_name)),
      zctx_(zctx),
      pipe_endpoint_("inproc://hearth-worker-" + std::to_string(reinterpret_cast<uintptr_t>(this))),
      curve_(worker_curve_keys_load(cfg.worker)),
      pipe_in_(zctx, zmq::socket_type::pair),
      backoff_(cfg.worker.reconnect_min_ms),
      hb_(cfg.broker.heartbeat_ms),
      guard_(guard_options_from(cfg.worker)) {
    pipe_in_.set(zmq::sockopt::linger, 0);
    pipe_in_.set(zmq::sockopt::rcvhwm, 0);
    pipe_in_.bind(pipe_endpoint_);
    guard_.poll();  // READY carries the first readings
    next_sample_ = clock::now() + milliseconds(cfg_.worker.guard_interval_ms);
    engine_thread_ = std::thread([this] { engine_loop(); });
}

worker::~worker() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        engine_stop_ = true;
    }
    cv_.notify_all();
    if (engine_thread_.joinable()) engine_thread_.join();
}

// ------------------------------------------------------------------ engine thread

void worker::engine_post(engine_command c) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        inbox_.push_back(std::move(c));
    }
    cv_.notify_one();
}

void worker::on_engine_event(zmq::socket_t& out, const generation_event& ev) {
    std::string body;
    wire::command cmd = wire::command::partial;
    switch (ev.type) {
    case generation_event::kind::partial:
        body = wire::encode(wire::partial{ev.id, ev.text, ev.tokens});
        break;
    case generation_event::kind::final: {
        cmd = wire::command::final;
        wire::final_reply f;
        f.id = ev.id;
        f.text = ev.text;
        f.finish_reason = ev.finish_reason;
        f.use.prompt_tokens = ev.prompt_tokens;
        f.use.completion_tokens = ev.completion_tokens;
        f.use.ttft_ms = ev.ttft_ms;
        f.use.total_ms = ev.ttft_ms + ev.gen_ms;
        f.use.tokens_per_s = ev.tokens_per_s;
        f.use.model = model_name_;
        body = wire::encode(f);
        break;
    }
    case generation_event::kind::error: {
        cmd = wire::command::error;
        wire::error_reply e;
        e.id = ev.id;
        e.code = wire::error_code_from_name(ev.code).value_or(wire::error_code::internal);
        e.message = ev.message;
        body = wire::encode(e);
        break;
    }
    }
    const uint8_t c = static_cast<uint8_t>(cmd);
    out.send(zmq::buffer(&c, 1), zmq::send_flags::sndmore);
    out.send(zmq::buffer(ev.id), zmq::send_flags::sndmore);
    out.send(zmq::buffer(body), zmq::send_flags::none);
}

void worker::engine_loop() {
    zmq::socket_t out(zctx_, zmq::socket_type::pair);
    out.set(zmq::sockopt::linger, 0);
    out.set(zmq::sockopt::sndhwm, 0);
    out.connect(pipe_endpoint_);
    generator_params gp;
    gp.slots = static_cast<int32_t>(cfg_.worker.slots);
    gp.n_ctx = static_cast<int32_t>(cfg_.worker.ctx_size);
    gp.n_threads = static_cast<int32_t>(cfg_.worker.threads);
    gp.batch_size = static_cast<int32_t>(cfg_.worker.batch_size);
    generator gen(model_, gp, [&](const generation_event& ev) { on_engine_event(out, ev); });
    std::deque<engine_command> todo;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            if (gen.idle()) cv_.wait(lock, [&] { return engine_stop_ || !inbox_.empty(); });
            if (engine_stop_) break;
            todo.swap(inbox_);
        }
        for (auto& c : todo) {
            switch (c.type) {
            case engine_command::kind::submit: gen.submit(std::move(c.req)); break;
            case engine_command::kind::cancel: gen.cancel(c.id, c.code); break;
            case engine_command::kind::cancel_all: gen.cancel_all(c.code); break;
            case engine_command::kind::guard: engine_guard(gen, c); break;
            }
        }
        todo.clear();
        gen.step();
    }
}

void worker::engine_guard(generator& gen, const engine_command& c) {
    gen.set_admit_limit(c.admit);
    if (c.release) {
        const uint64_t freed = gen.release_idle();
        if (freed) spdlog::debug("worker: gave up to {} of idle KV cache back to the system", byte_size_format(freed));
    }
    if (!c.critical) return;
    // Waiting requests go back to the broker for another worker; running ones finish if what they
    // may still write fits the room left before the critical line, smallest need first.
    std::vector<kv_need> needs = gen.kv_needs();
    std::sort(needs.begin(), needs.end(), [](const kv_need& a, const kv_need& b) { return a.bytes < b.bytes; });
    uint64_t used = 0;
    for (const kv_need& n : needs) {
        std::string m = "worker is critical (";
        m.append(c.why.empty() ? "low on memory" : c.why).append(")");
        if (n.waiting) {
            gen.fail(n.id, "overloaded", m.append(" and takes no new work"));
            continue;
        }
        if (!c.headroom || used + n.bytes <= *c.headroom) {
            used += n.bytes;
            continue;
        }
        m.append(": the request may need ").append(byte_size_format(n.bytes)).append(" more and only ");
        m.append(byte_size_format(*c.headroom > used ? *c.headroom - used : 0)).append(" is left");
        gen.fail(n.id, "overloaded", m);
    }
}

// ------------------------------------------------------------------ socket thread

int32_t worker::guard_admit() const {
    const auto slots = static_cast<int32_t>(cfg_.worker.slots);
    switch (guard_.state()) {
    case guard_state::ok: return slots;
    case guard_state::throttled: return std::max(1, slots / 2);
    case guard_state::critical: return 0;
    }
    return slots;
}

wire::memory_report worker::guard_report() const {
    const guard_readings& r = guard_.last();
    wire::memory_report m;
    m.reason = guard_.reason();
    m.slots_now = guard_admit();
    m.mem_total = r.mem_total.value_or(0);
    m.mem_available = r.mem_available.value_or(0);
    m.psi_some = r.psi_some_avg10.value_or(-1);
    m.psi_full = r.psi_full_avg10.value_or(-1);
    m.cgroup_current = r.cgroup_current.value_or(0);
    m.cgroup_limit = r.cgroup_limit.value_or(0);
    m.rss = r.rss.value_or(0);
    m.budget = r.memory_budget;
    return m;
}

void worker::guard_apply() {
    engine_command c;
    c.type = engine_command::kind::guard;
    c.admit = guard_admit();
    c.release = guard_.state() != guard_state::ok;
    c.critical = guard_.state() == guard_state::critical;
    if (c.critical) c.headroom = guard_headroom(guard_.last(), guard_.options());
    c.why = guard_.reason();
    engine_post(std::move(c));
}

void worker::guard_sample_due(clock::time_point now) {
    if (now < next_sample_) return;
    next_sample_ = now + milliseconds(cfg_.worker.guard_interval_ms);
    const guard_state before = guard_.state();
    const guard_state after = guard_.poll();
    if (after == before) {
        // Under pressure, each sample gives back the caches of requests that ended since, and
        // (critical) checks again that running requests still fit: they keep growing.
        if (after != guard_state::ok) guard_apply();
        return;
    }
    const std::string readings = guard_readings_describe(guard_.last());
    if (after == guard_state::ok) spdlog::info("worker: memory back to ok (was {}): {}", guard_state_name(before), readings);
    else spdlog::warn("worker: memory {} -> {}: {}; {}", guard_state_name(before), guard_state_name(after), guard_.reason(), readings);
    guard_apply();
    // The broker hears at once, not at the next heartbeat: it routes by this.
    if (dealer_) {
        send_heartbeat();
        next_heartbeat_ = now + hb_;
    }
}

void worker::connect() {
    dealer_ = zmq::socket_t(zctx_, zmq::socket_type::dealer);
    wire::socket_setup(dealer_);
    dealer_.set(zmq::sockopt::routing_id, wire::routing_id_random());
    if (curve_) {
        dealer_.set(zmq::sockopt::curve_serverkey, curve_->server_z85);
        dealer_.set(zmq::sockopt::curve_publickey, curve_->public_z85);
        dealer_.set(zmq::sockopt::curve_secretkey, curve_->secret_z85);
    }
    dealer_.connect(cfg_.worker.broker_endpoint);
    last_heard_ = clock::now();
    next_heartbeat_ = last_heard_ + hb_;
    send_ready();
}

void worker::send_ready() {
    wire::ready r;
    r.worker = cfg_.worker.name;
    r.model = model_name_;
    r.services = cfg_.worker.services;
    r.slots = static_cast<int32_t>(cfg_.worker.slots);
    r.n_ctx = static_cast<int32_t>(std::min<int64_t>(cfg_.worker.ctx_size, model_.hparams().n_ctx_train));
    r.guard = guard_state_name(guard_.state());
    r.memory = guard_report();
    wire::message_send(dealer_, {}, wire::command::ready, wire::encode(r));
}

void worker::send_heartbeat() {
    wire::heartbeat hb;
    hb.free_slots = std::max<int32_t>(0, guard_admit() - static_cast<int32_t>(running_.size()));
    hb.guard = guard_state_name(guard_.state());
    hb.memory = guard_report();
    hb.running.assign(running_.begin(), running_.end());
    wire::message_send(dealer_, {}, wire::command::heartbeat, wire::encode(hb));
}

void worker::send_error(const std::string& id, wire::error_code code, const std::string& message) {
    wire::error_reply e;
    e.id = id;
    e.code = code;
    e.message = message;
    wire::message_send(dealer_, {}, wire::command::error, wire::encode(e));
}

void worker::forget_all(const char* why) {
    if (!running_.empty()) spdlog::warn("worker: dropping {} running request(s): {}", running_.size(), why);
    running_.clear();
    engine_command c;
    c.type = engine_command::kind::cancel_all;
    c.code = "cancelled";
    engine_post(std::move(c));
}

void worker::on_request(std::string_view body) {
    wire::request r = wire::decode_request(body);
    const auto& svcs = cfg_.worker.services;
    if (std::find(svcs.begin(), svcs.end(), r.service) == svcs.end() ||
        (r.service != "complete" && r.service != "chat" && r.service != "command")) {
        send_error(r.id, wire::error_code::unsupported, "this worker does not serve '" + r.service + "'");
        return;
    }
    if (running_.count(r.id)) return;  // a duplicate dispatch: the first one answers
    if (guard_.state() == guard_state::critical) {
        // The broker sent it before it heard: hand it back for another worker.
        std::string m = "worker is critical (";
        m.append(guard_.reason().empty() ? "low on memory" : guard_.reason()).append(") and takes no new work");
        send_error(r.id, wire::error_code::overloaded, m);
        return;
    }
    if (running_.size() >= cfg_.worker.slots) {
        send_error(r.id, wire::error_code::overloaded, "all slots of this worker are busy");
        return;
    }
    generation_request g;
    if (!r.schema.empty()) {
        auto it = grammars_.find(r.schema);
        if (it == grammars_.end()) {
            try {
                if (grammars_.size() >= 32) grammars_.clear();  // bounded: schemas are few in practice
                it = grammars_.emplace(r.schema, grammar_from_json_schema(r.schema)).first;
            } catch (const grammar_error& e) {
                std::string m = "schema";
                if (!e.path().empty()) m.append(" at ").append(e.path());
                m.append(": ").append(e.what());
                send_error(r.id, wire::error_code::bad_request, m);
                return;
            }
        }
        g.constraint = it->second;
    } else if (r.service == "command") {
        send_error(r.id, wire::error_code::bad_request, "a command request needs its schema (the broker sets it)");
        return;
    }
    g.id = r.id;
    // A command is one user turn in the model's chat template (the command model is trained so).
    g.chat = r.service == "chat" || r.service == "command";
    if (r.service == "command") g.messages.push_back({"user", r.prompt});
    g.prompt = std::move(r.prompt);
    for (auto& t : r.messages) g.messages.push_back({std::move(t.role), std::move(t.content)});
    g.max_tokens = r.max_tokens;
    g.sampling.temperature = r.temperature;
    g.sampling.top_k = r.top_k;
    g.sampling.top_p = r.top_p;
    g.sampling.min_p = r.min_p;
    g.sampling.repeat_penalty = r.repeat_penalty;
    g.sampling.seed = r.seed ? *r.seed : std::random_device{}();
    g.stop = std::move(r.stop);
    if (r.deadline_ms > 0) g.deadline = clock::now() + milliseconds(r.deadline_ms);
    g.resume_text = std::move(r.resume_text);
    g.resume_tokens = r.resume_tokens;
    running_.insert(g.id);
    spdlog::debug("worker: request {} ({}), {} running", g.id, r.service, running_.size());
    engine_command c;
    c.type = engine_command::kind::submit;
    c.req = std::move(g);
    engine_post(std::move(c));
}

void worker::on_broker(const wire::frames& f) {
    wire::envelope env;
    try {
        env = wire::envelope_parse(f.views());
    } catch (const wire::protocol_error& e) {
        spdlog::warn("worker: malformed message from the broker: {}", e.what());
        return;
    }
    try {
        switch (env.cmd) {
        case wire::command::request: on_request(env.body); break;
        case wire::command::cancel: {
            wire::cancel c = wire::decode_cancel(env.body);
            if (running_.count(c.id)) {
                engine_command ec;
                ec.type = engine_command::kind::cancel;
                ec.id = c.id;
                ec.code = c.reason == "timeout" ? "timeout" : "cancelled";
                engine_post(std::move(ec));
            }
            break;
        }
        case wire::command::heartbeat: break;
        case wire::command::disconnect: {
            wire::disconnect d = wire::decode_disconnect(env.body);
            spdlog::info("worker: broker says: {}; registering again", d.reason);
            forget_all("the broker does not know them");
            send_ready();
            break;
        }
        case wire::command::error: {
            wire::error_reply e = wire::decode_error(env.body);
            spdlog::warn("worker: broker error: {}: {}", wire::error_code_name(e.code), e.message);
            break;
        }
        default: spdlog::warn("worker: unexpected {} from the broker", wire::command_name(env.cmd));
        }
    } catch (const wire::protocol_error& e) {
        spdlog::warn("worker: bad {} from the broker: {}", wire::command_name(env.cmd), e.what());
    }
}

void worker::run(const std::atomic<bool>& stop) {
    connect();
    spdlog::info("worker {}: model {}, {} slots, broker {}", cfg_.worker.name, model_name_, cfg_.worker.slots, cfg_.worker.broker_endpoint);
    wire::frames f;
    while (!stop.load()) {
        zmq::pollitem_t items[] = {{dealer_.handle(), 0, ZMQ_POLLIN, 0}, {pipe_in_.handle(), 0, ZMQ_POLLIN, 0}};
        const auto now = clock::now();
        const auto wait = std::clamp(std::chrono::duration_cast<milliseconds>(std::min(next_heartbeat_, next_sample_) - now),
                                     milliseconds(0), milliseconds(100));
        wire::poll_interruptible(items, 2, wait);
        while (wire::message_recv(dealer_, f)) {
            last_heard_ = clock::now();
            backoff_ = milliseconds(cfg_.worker.reconnect_min_ms);
            on_broker(f);
        }
        // Engine events: [cmd][id][body]; forwarded only for requests still ours.
        while (wire::message_recv(pipe_in_, f)) {
            if (f.parts.size() != 3 || f.parts[0].size() != 1) continue;
            const auto cmd = static_cast<wire::command>(*static_cast<const uint8_t*>(f.parts[0].data()));
            const std::string id(view_of(f.parts[1]));
            auto it = running_.find(id);
            if (it == running_.end()) continue;
            if (cmd != wire::command::partial) running_.erase(it);
            wire::message_send(dealer_, {}, cmd, view_of(f.parts[2]));
        }
        const auto t = clock::now();
        guard_sample_due(t);
        if (t >= next_heartbeat_) {
            send_heartbeat();
            next_heartbeat_ = t + hb_;
            if (on_tick) on_tick();
        }
        if (t - last_heard_ > hb_ * cfg_.broker.liveness) {
            // A CURVE broker that refuses our key is silent too: ZeroMQ just retries the handshake.
            spdlog::warn("worker: no word from the broker for {} ms; reconnecting in {} ms{}",
                         std::chrono::duration_cast<milliseconds>(t - last_heard_).count(), backoff_.count(),
                         curve_ ? " (if this goes on: is this worker's key on the broker's allowlist with role worker, "
                                  "and worker.broker_public_key the broker's key?)"
                                : "");
            forget_all("lost the broker");
            dealer_.close();
            const auto until = clock::now() + backoff_;
            while (!stop.load() && clock::now() < until) {
                if (on_tick) on_tick();
                zmq::pollitem_t pi[] = {{pipe_in_.handle(), 0, ZMQ_POLLIN, 0}};
                wire::poll_interruptible(pi, 1, milliseconds(20));
                while (wire::message_recv(pipe_in_, f)) {}  // events of dropped requests
            }
            backoff_ = std::min(backoff_ * 2, milliseconds(cfg_.worker.reconnect_max_ms));
            if (stop.load()) break;
            connect();
        }
    }
    if (dealer_) {
        wire::message_send(dealer_, {}, wire::command::disconnect, wire::encode(wire::disconnect{"worker stopping"}));
    }
}

}  // namespace hearth
