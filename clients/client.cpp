#include "client.h"

#include "curve-keys.h"
#include "transport.h"

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace hearth {

namespace {

using clock = std::chrono::steady_clock;

int ms_until(clock::time_point t, clock::time_point now) {
    if (t <= now) return 0;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
    return static_cast<int>(std::min<long long>(ms, 1 << 30));
}

std::string seconds_text(uint32_t ms) {
    char buf[32];
    if (ms % 1000 == 0) std::snprintf(buf, sizeof buf, "%u", ms / 1000);
    else std::snprintf(buf, sizeof buf, "%.1f", ms / 1000.0);
    return buf;
}

wire::error_reply error_make(const std::string& id, wire::error_code code, const std::string& message) {
    wire::error_reply e;
    e.id = id;
    e.code = code;
    e.message = message;
    return e;
}

}  // namespace

std::string request_id_random() {
    thread_local std::mt19937_64 rng{std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32)};
    static const char hex[] = "0123456789abcdef";
    std::string id;
    for (int half = 0; half < 2; ++half) {
        uint64_t v = rng();
        for (int i = 0; i < 16; ++i, v >>= 4) id += hex[v & 15];
    }
    return id;
}

std::optional<curve_client_keys> client_curve_keys_load(const client_options& o) {
    try {
        return curve_client_keys_load(o.curve_secret_key, o.broker_public_key, "--key", "--broker-key");
    } catch (const key_error& e) {
        throw std::invalid_argument(e.what());
    }
}

client::client(const client_options& o) : opt_(o), ctx_(1), sock_(ctx_, zmq::socket_type::dealer) {
    sock_.set(zmq::sockopt::routing_id, wire::routing_id_random());
    wire::socket_setup(sock_);
    if (const std::optional<curve_client_keys> k = client_curve_keys_load(opt_)) {
        try {
            sock_.set(zmq::sockopt::curve_serverkey, k->server_z85);
            sock_.set(zmq::sockopt::curve_publickey, k->public_z85);
            sock_.set(zmq::sockopt::curve_secretkey, k->secret_z85);
        } catch (const zmq::error_t& e) {
            // libzmq built without CURVE (EINVAL) is the likely cause.
            throw std::invalid_argument(std::string("cannot use CURVE keys: ").append(e.what()));
        }
        curve_ = true;
    }
    try {
        sock_.connect(opt_.endpoint);
    } catch (const zmq::error_t& e) {
        std::string m = "bad broker endpoint '";
        m.append(opt_.endpoint).append("': ").append(e.what());
        throw std::invalid_argument(m);
    }
    last_recv_ = last_heartbeat_ = clock::now();
}

client::~client() = default;

std::string client::submit(wire::request r) {
    if (r.id.empty()) r.id = request_id_random();
    const std::string id = r.id;
    const auto now = clock::now();
    // Silence while nothing was pending says nothing about the broker: start counting now.
    if (pending_.empty()) last_recv_ = last_heartbeat_ = now;
    // A send that cannot be queued is not lost: the next heartbeat lists the id, the broker calls it
    // unknown and the request goes out again.
    (void)wire::message_send(sock_, "", wire::command::request, wire::encode(r));
    pending_request p;
    p.req = std::move(r);
    pending_[id] = std::move(p);
    return id;
}

bool client::cancel(const std::string& id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return false;
    it->second.cancelled = true;
    wire::cancel c;
    c.id = id;
    return wire::message_send(sock_, "", wire::command::cancel, wire::encode(c));
}

size_t client::pending() const {
    size_t n = pending_.size();
    for (const client_event& ev : events_) n += ev.ends;
    return n;
}

std::string client::no_answer_message(uint32_t ms) const {
    std::string m = "no answer from the broker at ";
    m.append(opt_.endpoint).append(" for ").append(seconds_text(ms));
    m.append(" s; is hearth-broker running?");
    // A refused CURVE handshake is silent on the client's side: ZeroMQ just keeps retrying.
    if (curve_)
        m.append(" (or it refused this client's key: check that your key is on the broker's allowlist and that --broker-key is the broker's public key)");
    return m;
}

std::string client::silent_message() const { return no_answer_message(opt_.broker_timeout_ms); }

void client::push_transport(const std::string& message) {
    client_event ev;
    ev.ends = pending_.size();
    pending_.clear();
    ev.cmd = wire::command::error;
    ev.transport_failed = true;
    ev.transport_message = message;
    ev.error = error_make("", wire::error_code::internal, message);
    events_.push_back(std::move(ev));
}

bool client::pump(int wait_ms) {
    zmq_pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    const int rc = zmq_poll(&item, 1, wait_ms);
    if (rc <= 0) return false;  // timeout, or EINTR: the caller looks at its interrupt flag
    bool got = false;
    wire::frames f;
    for (;;) {
        try {
            if (!wire::message_recv(sock_, f)) break;
        } catch (const zmq::error_t& e) {
            if (e.num() == EINTR) break;
            throw;
        }
        got = true;
        last_recv_ = clock::now();
        handle(f.views());
    }
    return got;
}

void client::handle(const std::vector<std::string_view>& frames) {
    wire::command cmd;
    std::string what;
    try {
        const wire::envelope env = wire::envelope_parse(frames);
        cmd = env.cmd;
        switch (cmd) {
        case wire::command::accepted: {
            wire::accepted a = wire::decode_accepted(env.body);
            if (!pending_.count(a.id)) return;  // a late reply to a request already over
            client_event ev;
            ev.cmd = cmd;
            ev.id = a.id;
            ev.accepted = std::move(a);
            events_.push_back(std::move(ev));
            return;
        }
        case wire::command::partial: {
            wire::partial p = wire::decode_partial(env.body);
            auto it = pending_.find(p.id);
            if (it == pending_.end()) return;
            it->second.streamed = true;
            client_event ev;
            ev.cmd = cmd;
            ev.id = p.id;
            ev.partial = std::move(p);
            events_.push_back(std::move(ev));
            return;
        }
        case wire::command::final: {
            wire::final_reply fr = wire::decode_final(env.body);
            auto it = pending_.find(fr.id);
            if (it == pending_.end()) return;
            client_event ev;
            ev.resubmissions = it->second.resubmissions;
            ev.ends = 1;
            pending_.erase(it);
            ev.cmd = cmd;
            ev.id = fr.id;
            ev.final = std::move(fr);
            events_.push_back(std::move(ev));
            return;
        }
        case wire::command::error: {
            wire::error_reply er = wire::decode_error(env.body);
            if (!query_wait_.empty() && (er.id == query_wait_ || (er.id.empty() && pending_.empty()))) {
                query_error_ = std::move(er);
                return;
            }
            // An ERROR without an id (the broker could not read ours) can only mean the one pending.
            if (er.id.empty() && pending_.size() == 1) er.id = pending_.begin()->first;
            if (er.id.empty() && pending_.empty()) {
                // Nothing waits but possibly a STATUS query the broker refused.
                status_error_.assign(wire::error_code_name(er.code)).append(": ").append(er.message);
                return;
            }
            client_event ev;
            if (!er.id.empty()) {
                auto it = pending_.find(er.id);
                if (it == pending_.end()) return;
                ev.resubmissions = it->second.resubmissions;
                ev.ends = 1;
                pending_.erase(it);
            }
            ev.cmd = cmd;
            ev.id = er.id;
            ev.error = std::move(er);
            events_.push_back(std::move(ev));
            return;
        }
        case wire::command::status:
            status_ = wire::decode_status(env.body);
            return;
        case wire::command::batch:
        case wire::command::audit: {
            const std::string id = cmd == wire::command::batch ? wire::decode_batch_reply(env.body).id : wire::decode_audit_reply(env.body).id;
            // Another id is the late answer to an earlier call the caller already gave up on.
            if (!query_wait_.empty() && cmd == query_cmd_ && id == query_wait_) query_reply_ = std::string(env.body);
            return;
        }
        case wire::command::heartbeat:
            on_heartbeat(wire::decode_heartbeat(env.body));
            return;
        default:
            return;  // nothing else is meant for clients; a newer broker's extras are not fatal
        }
    } catch (const wire::protocol_error& e) {
        what = e.what();
    } catch (const std::exception& e) {
        what = e.what();
    }
    // The broker speaks something we cannot read: no reply we wait for can be trusted to come.
    std::string m = "malformed reply from the broker at ";
    m.append(opt_.endpoint).append(": ").append(what);
    status_error_ = m;
    if (!query_wait_.empty()) query_broken_ = m;
    for (const auto& [id, p] : pending_) {
        wire::cancel c;
        c.id = id;
        (void)wire::message_send(sock_, "", wire::command::cancel, wire::encode(c));
    }
    push_transport(m);
}

void client::on_heartbeat(const wire::heartbeat& hb) {
    for (const std::string& id : hb.unknown) {
        auto it = pending_.find(id);
        if (it == pending_.end()) continue;  // its FINAL overtook our heartbeat
        pending_request& p = it->second;
        wire::error_reply er;
        if (p.cancelled) {
            er = error_make(id, wire::error_code::cancelled, "cancelled");
        } else if (p.streamed) {
            // Starting over would repeat text the caller already has.
            er = error_make(id, wire::error_code::worker_lost, "the broker restarted while streaming");
        } else {
            ++p.resubmissions;
            (void)wire::message_send(sock_, "", wire::command::request, wire::encode(p.req));
            continue;
        }
        client_event ev;
        ev.resubmissions = p.resubmissions;
        ev.ends = 1;
        pending_.erase(it);
        ev.cmd = wire::command::error;
        ev.id = id;
        ev.error = std::move(er);
        events_.push_back(std::move(ev));
    }
}

void client::heartbeat_due() {
    if (pending_.empty()) return;
    const auto now = clock::now();
    if (now - last_heartbeat_ < std::chrono::milliseconds(opt_.heartbeat_ms)) return;
    last_heartbeat_ = now;
    wire::heartbeat hb;
    for (const auto& [id, p] : pending_) hb.pending.push_back(id);
    (void)wire::message_send(sock_, "", wire::command::heartbeat, wire::encode(hb));
}

void client::broker_timeout_check() {
    if (pending_.empty() || opt_.broker_timeout_ms == 0) return;
    if (clock::now() - last_recv_ < std::chrono::milliseconds(opt_.broker_timeout_ms)) return;
    push_transport(silent_message());
}

std::optional<client_event> client::next(int timeout_ms) {
    const auto start = clock::now();
    const auto deadline = timeout_ms < 0 ? clock::time_point::max() : start + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (!events_.empty()) {
            client_event ev = std::move(events_.front());
            events_.pop_front();
            return ev;
        }
        heartbeat_due();
        broker_timeout_check();
        if (!events_.empty()) continue;
        const auto now = clock::now();
        if (now >= deadline) return std::nullopt;
        int wait = deadline == clock::time_point::max() ? -1 : ms_until(deadline, now);
        if (!pending_.empty()) {
            const int hb = ms_until(last_heartbeat_ + std::chrono::milliseconds(opt_.heartbeat_ms), now);
            wait = wait < 0 ? hb : std::min(wait, hb);
            if (opt_.broker_timeout_ms) wait = std::min(wait, ms_until(last_recv_ + std::chrono::milliseconds(opt_.broker_timeout_ms), now));
        }
        // A signal normally interrupts the poll; the cap covers one that lands just before it.
        if (opt_.interrupted) wait = wait < 0 ? 100 : std::min(wait, 100);
        pump(wait);
        if (events_.empty() && opt_.interrupted && opt_.interrupted->load()) return std::nullopt;
    }
}

client_result client::call(wire::request r, const std::function<void(const wire::partial&)>& on_partial,
                           const std::function<void(const wire::accepted&)>& on_accepted) {
    client_result res;
    const bool had_others = !pending_.empty();
    const std::string id = submit(std::move(r));
    std::deque<client_event> others;  // replies to submit()ted requests, handed back to next() at the end
    struct restore {
        std::deque<client_event>& from;  // the stash
        std::deque<client_event>& to;    // events_, whose front they go back to, in order
        ~restore() { to.insert(to.begin(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end())); }
    } restore_guard{others, events_};

    const auto start = clock::now();
    const auto give_up = opt_.timeout_ms ? start + std::chrono::milliseconds(opt_.timeout_ms) : clock::time_point::max();
    bool cancel_sent = false;
    clock::time_point cancel_wait_end;
    wire::error_reply local;  // what we tell the caller when we stopped the request ourselves
    for (;;) {
        const auto now = clock::now();
        if (!cancel_sent) {
            const bool interrupted = opt_.interrupted && opt_.interrupted->load();
            if (interrupted || now >= give_up) {
                local = interrupted ? error_make(id, wire::error_code::cancelled, "interrupted")
                                    : error_make(id, wire::error_code::timeout,
                                                 "no reply within " + seconds_text(opt_.timeout_ms) + " s");
                cancel(id);
                cancel_sent = true;
                // The broker's ERROR cancelled is only a courtesy: do not wait long for it.
                cancel_wait_end = now + std::chrono::milliseconds(std::min<uint32_t>(2000, opt_.broker_timeout_ms ? opt_.broker_timeout_ms : 2000));
            }
        } else if (now >= cancel_wait_end) {
            pending_.erase(id);
            res.error = local;
            return res;
        }
        int wait = -1;
        if (cancel_sent) wait = ms_until(cancel_wait_end, now);
        else if (give_up != clock::time_point::max()) wait = ms_until(give_up, now);
        std::optional<client_event> ev = next(wait);
        if (!ev) continue;
        if (ev->transport_failed && (ev->id.empty() || ev->id == id)) {
            if (ev->id.empty() && had_others) {
                others.push_back(*ev);  // the others ended too: next() must say so
                others.back().ends = ev->ends ? ev->ends - 1 : 0;
            }
            res.transport_failed = true;
            res.transport_message = ev->transport_message;
            res.error = ev->error;
            return res;
        }
        if (ev->id != id) {
            others.push_back(std::move(*ev));
            continue;
        }
        res.resubmissions = ev->resubmissions;
        switch (ev->cmd) {
        case wire::command::accepted:
            res.accepted = true;
            res.position = ev->accepted.position;
            res.queue_depth = ev->accepted.queue_depth;
            if (on_accepted) on_accepted(ev->accepted);
            break;
        case wire::command::partial:
            if (on_partial) on_partial(ev->partial);
            break;
        case wire::command::final: {
            res.ok = true;
            res.final = std::move(ev->final);
            return res;
        }
        case wire::command::error:
            res.error = cancel_sent && ev->error.code == wire::error_code::cancelled ? local : std::move(ev->error);
            return res;
        default:
            break;
        }
    }
}

std::optional<wire::status_reply> client::status(int timeout_ms, std::string* error) {
    status_.reset();
    status_error_.clear();
    auto fail = [&](const std::string& m) -> std::optional<wire::status_reply> {
        if (error) *error = m;
        return std::nullopt;
    };
    if (!wire::message_send(sock_, "", wire::command::status, wire::encode_empty()))
        return fail("cannot send to the broker at " + opt_.endpoint);
    const auto deadline = clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
        if (status_) {
            std::optional<wire::status_reply> s = std::move(status_);
            status_.reset();
            return s;
        }
        if (!status_error_.empty()) return fail(status_error_);
        const auto now = clock::now();
        if (opt_.interrupted && opt_.interrupted->load()) return fail("interrupted");
        if (now >= deadline) {
            return fail(no_answer_message(static_cast<uint32_t>(std::max(timeout_ms, 0))));
        }
        int wait = ms_until(deadline, now);
        if (opt_.interrupted) wait = std::min(wait, 100);
        pump(wait);
    }
}

client::query_answer client::query_wait(wire::command cmd, const std::string& id, const std::string& body, int timeout_ms) {
    query_answer res;
    query_cmd_ = cmd;
    query_wait_ = id;
    query_reply_.reset();
    query_error_.reset();
    query_broken_.clear();
    struct forget {
        client& self;  // query_wait_ must not outlive the call, or a later stray ERROR would land here
        ~forget() {
            self.query_wait_.clear();
            self.query_reply_.reset();
            self.query_error_.reset();
            self.query_broken_.clear();
        }
    } forget_guard{*this};
    if (!wire::message_send(sock_, "", cmd, body)) {
        res.transport_message = "cannot send to the broker at " + opt_.endpoint;
        return res;
    }
    const auto deadline = clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    for (;;) {
        if (query_reply_) {
            res.body = std::move(query_reply_);
            return res;
        }
        if (query_error_) {
            res.error = std::move(query_error_);
            if (res.error->id.empty()) res.error->id = id;
            return res;
        }
        if (!query_broken_.empty()) {
            res.transport_message = query_broken_;
            return res;
        }
        // Requests submit()ted earlier keep their heartbeats while we wait here.
        heartbeat_due();
        const auto now = clock::now();
        if (opt_.interrupted && opt_.interrupted->load()) {
            res.transport_message = "interrupted";
            return res;
        }
        if (now >= deadline) {
            res.transport_message = no_answer_message(static_cast<uint32_t>(std::max(timeout_ms, 0)));
            return res;
        }
        int wait = ms_until(deadline, now);
        if (!pending_.empty()) wait = std::min(wait, ms_until(last_heartbeat_ + std::chrono::milliseconds(opt_.heartbeat_ms), now));
        if (opt_.interrupted) wait = std::min(wait, 100);
        pump(wait);
    }
}

template <typename Reply, typename Decode>
query_result<Reply> client::query_finish(query_answer a, Decode&& decode) {
    query_result<Reply> res;
    if (a.body) {
        // It decoded once already (to read its id), so it decodes again.
        res.reply = decode(*a.body);
        res.ok = true;
    } else if (a.error) {
        res.error = std::move(*a.error);
    } else {
        res.transport_failed = true;
        res.transport_message = std::move(a.transport_message);
    }
    return res;
}

batch_result client::batch(wire::batch_call c, int timeout_ms) {
    if (c.id.empty()) c.id = request_id_random();
    return query_finish<wire::batch_reply>(query_wait(wire::command::batch, c.id, wire::encode(c), timeout_ms),
                                           [](const std::string& b) { return wire::decode_batch_reply(b); });
}

audit_result client::audit(wire::audit_call c, int timeout_ms) {
    if (c.id.empty()) c.id = request_id_random();
    return query_finish<wire::audit_reply>(query_wait(wire::command::audit, c.id, wire::encode(c), timeout_ms),
                                           [](const std::string& b) { return wire::decode_audit_reply(b); });
}

}  // namespace hearth
