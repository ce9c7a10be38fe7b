// Who may talk to the broker and how much (design section 8). Local by default: an ipc socket needs
// no keys (its directory's permissions say who may connect) and everyone on it is "local", the
// box's operator, with admin rights; a plain loopback tcp endpoint is "local" too, without them.
// With broker.curve_secret_key every tcp endpoint, loopback included, speaks CURVE: libzmq asks our
// ZAP handler about every handshake, we admit only keys on the allowlist (workers on the worker
// endpoint, clients and admins on the client endpoint), and the key's name becomes the connection's
// identity: the usage log, whitelist permissions, batch ownership and quotas all go by it. A LAN
// endpoint without CURVE is refused unless broker.insecure_lan says otherwise.
#include "broker.h"

#include "curve-keys.h"

#include <spdlog/spdlog.h>

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

namespace hearth {

namespace {

const char* const kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by the ZAP RFC (27/ZAP)
const char* const kClientDomain = "hearth-clients";
const char* const kWorkerDomain = "hearth-workers";
constexpr auto kRefusalLogEvery = std::chrono::seconds(60);  // a refused key retries every reconnect
constexpr size_t kPeersMax = 4096;                           // routing ids remembered before pruning
constexpr uint32_t kRefusalLinesPerMinute = 30;              // a new key per handshake must not flood the log

bool endpoint_tcp(const std::string& ep) { return ep.rfind("tcp://", 0) == 0; }

std::string frame_text(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

}  // namespace

void broker::security_setup(zmq::context_t& zctx) {
    const broker_config& b = cfg_.broker;
    front_ipc_ = b.client_endpoint.rfind("ipc://", 0) == 0;
    if (b.curve_secret_key.empty()) {
        for (const std::string* ep : {&b.client_endpoint, &b.worker_endpoint}) {
            if (endpoint_is_local(*ep)) continue;
            if (!b.insecure_lan) {
                std::string m = "refusing to serve ";
                m.append(*ep).append(" without CURVE: it is reachable from the network. Make a key pair (hearth keygen broker),"
                                     " set broker.curve_secret_key and broker.allowlist, or set broker.insecure_lan = true"
                                     " to serve it in the clear");
                throw config_error(m);
            }
            spdlog::warn("broker: serving {} WITHOUT CURVE (broker.insecure_lan = true): anyone on the network can submit"
                         " requests, read results and pose as a worker", *ep);
        }
        return;
    }
    curve_keypair server;
    try {
        server = curve_keypair_read(curve_key_file_resolve(b.curve_secret_key));
    } catch (const key_error& e) {
        throw config_error(std::string("broker.curve_secret_key: ") + e.what());
    }
    if (server.secret_z85.empty()) throw config_error("broker.curve_secret_key: " + b.curve_secret_key + " holds no secret key (a .pub file?)");
    allowlist_ = std::make_shared<const allowlist>(allowlist::load(b.allowlist));
    try {
        zap_.emplace(zctx, zmq::socket_type::rep);
        zap_->set(zmq::sockopt::linger, 0);
        zap_->bind(kZapEndpoint);
        // ipc sockets stay plain: the runtime directory's permissions already say who is local.
        for (auto [sock, ep, domain] : {std::tuple{&front_, &b.client_endpoint, kClientDomain}, std::tuple{&back_, &b.worker_endpoint, kWorkerDomain}}) {
            if (!endpoint_tcp(*ep)) continue;
            sock->set(zmq::sockopt::curve_server, 1);
            sock->set(zmq::sockopt::curve_secretkey, server.secret_z85);
            sock->set(zmq::sockopt::zap_domain, domain);
            if (sock == &back_) worker_curve_ = true;
            if (sock == &front_) {
                client_curve_ = true;
                // A second connection with a routing id in use must not take over its replies:
                // with keys, that could be another client's stream.
                sock->set(zmq::sockopt::router_handover, 0);
            }
        }
    } catch (const zmq::error_t& e) {
        std::string m = "cannot set up CURVE: ";
        m.append(e.what());
        if (e.num() == EINVAL) m.append(" (is libzmq built without CURVE? zmq_has(\"curve\") says so)");
        if (e.num() == EADDRINUSE) m.append(" (another ZAP handler is bound in this process)");
        throw config_error(m);
    }
    spdlog::info("broker: CURVE on tcp endpoints with key {} (public {}), {} keys allowed", server.name, server.public_z85,
                 allowlist_->entries().size());
}

void broker::allowlist_reload() {
    if (!allowlist_) return;
    try {
        allowlist_ = std::make_shared<const allowlist>(allowlist::load(cfg_.broker.allowlist));
        spdlog::info("broker: allowlist {} reloaded: {} keys (removed keys are refused from their next message)", cfg_.broker.allowlist,
                     allowlist_->entries().size());
    } catch (const std::exception& e) {
        spdlog::error("broker: allowlist not reloaded, keeping the previous one: {}", e.what());
    }
}

void broker::on_zap() {
    for (;;) {
        wire::frames f;
        if (!wire::message_recv(*zap_, f)) return;
        const std::vector<zmq::message_t>& req = f.parts;
        // version, request id, domain, address, routing id, mechanism, credentials...
        std::string status = "400", text = "not on the allowlist", user;
        const std::string version = req.size() > 0 ? frame_text(req[0]) : "";
        const std::string request_id = req.size() > 1 ? frame_text(req[1]) : "";
        const std::string domain = req.size() > 2 ? frame_text(req[2]) : "";
        const std::string address = req.size() > 3 ? frame_text(req[3]) : "";
        const std::string mechanism = req.size() > 5 ? frame_text(req[5]) : "";
        std::string key;
        if (req.size() >= 7 && mechanism == "CURVE" && req[6].size() == 32) {
            char z85[41] = {};
            zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
            key = z85;
        }
        const allowlist_entry* e = key.empty() || !allowlist_ ? nullptr : allowlist_->find_key(key);
        const bool wants_worker = domain == kWorkerDomain;
        if (version != "1.0" || mechanism != "CURVE") {
            text = "CURVE required";
        } else if (e && (e->role == key_role::worker) == wants_worker) {
            status = "200";
            text = "OK";
            // The key, not the name: peer_note looks it up on every message, so a key taken off
            // the allowlist stops working at once, and a name given to another key means nothing.
            user = key;
        } else if (e) {
            text = "role not allowed here";
        }
        if (status != "200") {
            const auto now = broker_clock::now();
            auto& last = refused_logged_[key + domain];
            if (last == broker_clock::time_point{} || now - last >= kRefusalLogEvery) {
                last = now;
                const char* where = wants_worker ? "worker" : "client";
                std::string line = "broker: refused key ";
                line.append(key.empty() ? "(none)" : key);
                if (e) line.append(" ('").append(e->name).append("', role ").append(key_role_name(e->role)).append(")");
                line.append(" from ").append(address).append(" on the ").append(where).append(" endpoint: ");
                if (e) line.append(wants_worker ? "only workers connect here" : "workers connect to the worker endpoint");
                else line.append(text);
                refusal_log(line);
            }
            if (refused_logged_.size() > kPeersMax) refused_logged_.clear();
        }
        const std::string reply[] = {"1.0", request_id, status, text, user, ""};
        for (size_t i = 0; i < 6; ++i)
            zap_->send(zmq::buffer(reply[i]), i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

void broker::refusal_log(const std::string& line) {
    const auto now = broker_clock::now();
    if (now - refusal_window_ >= std::chrono::minutes(1)) {
        if (refusals_quiet_ > 0)
            spdlog::warn("broker: {} more refusals in the last minute were not logged (at most {} lines a minute)", refusals_quiet_,
                         kRefusalLinesPerMinute);
        refusal_window_ = now;
        refusals_logged_ = refusals_quiet_ = 0;
    }
    if (refusals_logged_ >= kRefusalLinesPerMinute) {
        ++refusals_quiet_;
        return;
    }
    ++refusals_logged_;
    spdlog::warn("{}", line);
}

bool broker::peer_note(const std::string& client, const zmq::message_t& part) {
    peer who;
    if (client_curve_) {
        const char* uid = zmq_msg_gets(const_cast<zmq_msg_t*>(part.handle()), "User-Id");
        if (!uid || !*uid) {
            spdlog::warn("broker: message from client {} without a CURVE identity dropped", peer_name(client));
            return false;
        }
        who.key = uid;
        const allowlist_entry* e = allowlist_ ? allowlist_->find_key(who.key) : nullptr;
        if (!e) {
            // Admitted, then taken off the allowlist (SIGHUP): refused from now on.
            refusal_log("broker: refused key " + who.key + " from client " + peer_name(client) +
                        ": no longer on the allowlist (connection admitted before the reload)");
            send_client_error(client, "", wire::error_code::unauthorized, "this key is no longer on the broker's allowlist");
            return false;
        }
        who.identity = e->name;
        who.role = e->role;
    } else {
        who.identity = "local";
        // The box's operator on ipc (the socket's permissions vouch for it); plain tcp proves nothing.
        who.role = front_ipc_ ? key_role::admin : key_role::client;
    }
    auto it = peers_.find(client);
    if (it != peers_.end() && (it->second.key != who.key || it->second.identity != who.identity)) {
        // Another key now owns this routing id: the old connection is gone. Its requests must
        // not stream to the newcomer.
        spdlog::warn("broker: routing id {} passed from '{}' to '{}'; ending the old connection's requests", peer_name(client),
                     it->second.identity, who.identity);
        client_gone(client);
    }
    if (it == peers_.end() && peers_.size() >= kPeersMax) {
        // Forget connections with nothing in flight (they say who they are again with their next
        // message). One pass over the jobs, not one per peer.
        std::unordered_set<std::string> live;
        for (const auto& [key, j] : jobs_) live.insert(j.client);
        for (const auto& [key, h] : held_) live.insert(h.client);
        std::erase_if(peers_, [&](const auto& kv) { return !live.count(kv.first); });
    }
    peers_[client] = std::move(who);
    return true;
}

std::optional<std::string> broker::worker_key_name(const zmq::message_t& part) const {
    if (!worker_curve_) return std::string();
    const char* uid = zmq_msg_gets(const_cast<zmq_msg_t*>(part.handle()), "User-Id");
    const allowlist_entry* e = uid && allowlist_ ? allowlist_->find_key(uid) : nullptr;
    if (!e || e->role != key_role::worker) return std::nullopt;
    return e->name;
}

std::string broker::identity_of(const std::string& client) const {
    auto it = peers_.find(client);
    return it == peers_.end() ? std::string(client_curve_ ? "" : "local") : it->second.identity;
}

bool broker::admin(const std::string& client) const {
    auto it = peers_.find(client);
    return it != peers_.end() && it->second.role == key_role::admin;
}

quota_limits broker::quota_of(const std::string& identity) const {
    // By name, not by connection: a batch job runs long after its connection may be gone. A name
    // is one key on the allowlist, so this is the role peer_note found for the connection too.
    const allowlist_entry* e = allowlist_ ? allowlist_->find_name(identity) : nullptr;
    const key_role role = e ? e->role : identity == "local" && front_ipc_ ? key_role::admin : key_role::client;
    return quota_for(cfg_.broker, identity, std::string(key_role_name(role)));
}

std::string broker::quota_refusal(const std::string& client, uint32_t jobs, uint32_t* retry_ms) {
    const std::string who = identity_of(client);
    const quota_limits q = quota_of(who);
    if (q.requests_per_minute == 0 && q.tokens_per_day == 0 && q.max_queued == 0) return "";
    uint64_t live = 0;
    if (q.max_queued > 0) {  // a scan, but only for identities with this limit
        if (auto pending = quota_pending_.find(who); pending != quota_pending_.end()) live += pending->second;
        for (const auto& [key, j] : jobs_) live += j.owner == who && !j.ended_for_client;
        for (const auto& [service, waiting] : backlog_)
            for (const backlog_job& b : waiting) live += b.owner == who;
        if (auto parked = parked_owners_.find(who); parked != parked_owners_.end()) live += parked->second;
    }
    return quotas_.refusal(who, q, jobs, live, broker_clock::now(), std::chrono::system_clock::now(), retry_ms);
}

void broker::quota_charge(const std::string& client, uint32_t jobs) { quotas_.charge(identity_of(client), jobs, broker_clock::now()); }

bool broker::tokens_used_up(const std::string& owner) const {
    const uint64_t limit = quota_of(owner).tokens_per_day;
    return limit > 0 && quotas_.tokens_today(owner, std::chrono::system_clock::now()) >= limit;
}

void broker::backlog_park(const std::string& service) {
    std::deque<backlog_job>& from = backlog_[service];
    const std::string owner = from.front().owner;
    if (parked_owners_[owner]++ == 0)
        spdlog::info("broker: batch jobs of '{}' wait for 00:00 UTC: its tokens_per_day is used up", owner);
    backlog_parked_[service].push_back(std::move(from.front()));
    from.pop_front();
}

void broker::backlog_unpark() {
    std::vector<std::string> free;
    for (const auto& [owner, n] : parked_owners_)
        if (!tokens_used_up(owner)) free.push_back(owner);
    if (free.empty()) return;
    for (auto& [service, parked] : backlog_parked_) {
        // Back to the head of the backlog, where they were, in their order.
        std::deque<backlog_job> back, stay;
        for (backlog_job& b : parked)
            (std::find(free.begin(), free.end(), b.owner) != free.end() ? back : stay).push_back(std::move(b));
        parked = std::move(stay);
        std::deque<backlog_job>& to = backlog_[service];
        to.insert(to.begin(), std::make_move_iterator(back.begin()), std::make_move_iterator(back.end()));
    }
    std::erase_if(backlog_parked_, [](const auto& kv) { return kv.second.empty(); });
    for (const auto& owner : free) {
        spdlog::info("broker: batch jobs of '{}' run again: a new day for its tokens_per_day", owner);
        parked_owners_.erase(owner);
    }
}

void broker::quota_tokens(const std::string& owner, uint64_t tokens) { quotas_.tokens(owner, tokens, std::chrono::system_clock::now()); }

}  // namespace hearth
