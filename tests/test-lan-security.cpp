// The broker on the LAN (design section 8), with real processes over tcp on 127.0.0.1 and CURVE:
// only keys on the allowlist get in (and nothing of a refused peer is queued or logged), a key's
// name is its identity, clients cannot touch each other's requests, batches or audit rows, quotas
// are enforced, and a LAN address without CURVE is refused.
#include "bus-harness.h"
#include "curve-keys.h"
#include "protocol-audit.h"
#include "protocol-batch.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

using hearth::test::bus_fixture;
using hearth::curve_client_keys;
using hearth::test::raw_client;
using hearth::test::request_make;
namespace wire = hearth::wire;

namespace {

const char* k_model = "stories260K-f32.gguf";

// A free tcp port on 127.0.0.1 (the kernel picks; the broker binds it right after).
int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t n = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    const int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Keys, an allowlist, and a broker + worker speaking CURVE over tcp.
struct lan {
    std::string keys_dir;
    hearth::curve_keypair server, alice, bob, carol, root, w1, stranger;
    std::string client_ep, worker_ep;
    std::unique_ptr<bus_fixture> bus;

    int worker_port = 0;

    // worker_host: the address the worker endpoint binds ("0.0.0.0" for the network namespace test).
    explicit lan(const std::string& broker_extra = "", const std::string& worker_host = "127.0.0.1") {
        client_ep = "tcp://127.0.0.1:" + std::to_string(free_port());
        worker_port = free_port();
        worker_ep = "tcp://" + worker_host + ":" + std::to_string(worker_port);
        server = hearth::curve_keypair_generate("broker");
        alice = hearth::curve_keypair_generate("alice");
        bob = hearth::curve_keypair_generate("bob");
        carol = hearth::curve_keypair_generate("carol");
        root = hearth::curve_keypair_generate("root");
        w1 = hearth::curve_keypair_generate("w1");
        stranger = hearth::curve_keypair_generate("stranger");
        // The fixture's directory holds the keys too: written after it exists.
        bus = std::make_unique<bus_fixture>(broker_toml(broker_extra), worker_toml());
        keys_dir = bus->dir() + "/keys";
        for (const auto* k : {&server, &alice, &bob, &carol, &root, &w1, &stranger}) hearth::curve_keypair_write(keys_dir, *k, false);
        std::ofstream allow(bus->dir() + "/allowlist");
        allow << "# name key role\n"
              << "alice " << alice.public_z85 << " client\n"
              << "bob " << bob.public_z85 << " client\n"
              << "carol " << carol.public_z85 << " client\n"
              << "root " << root.public_z85 << " admin\n"
              << "w1 " << w1.public_z85 << " worker\n";
    }
    std::string broker_toml(const std::string& extra) const {
        std::string t = "client_endpoint = \"" + client_ep + "\"\nworker_endpoint = \"" + worker_ep + "\"\n";
        t += "curve_secret_key = \"KEYS/broker.key\"\nallowlist = \"DIR/allowlist\"\n" + extra;
        return t;
    }
    std::string worker_toml() const { return "curve_secret_key = \"KEYS/w1.key\"\nbroker_public_key = \"KEYS/broker.pub\"\n"; }
    // The fixture wrote the TOML before its directory was known to us: fill in the paths.
    void config_fix() {
        std::string t = slurp(bus->config_path());
        for (auto [from, to] : {std::pair<std::string, std::string>{"KEYS/", keys_dir + "/"}, {"DIR/", bus->dir() + "/"}})
            for (size_t p; (p = t.find(from)) != std::string::npos;) t.replace(p, from.size(), to);
        std::ofstream(bus->config_path()) << t;
    }
    curve_client_keys keys_of(const hearth::curve_keypair& k) const { return {k.public_z85, k.secret_z85, server.public_z85}; }
    raw_client client(const hearth::curve_keypair& k) const { return raw_client(client_ep, keys_of(k)); }
    // Broker + one worker; true once the worker shows in STATUS (asked as root).
    bool start(const std::string& model) {
        config_fix();
        bus->broker_start();
        bus->worker_start("w1", model);
        raw_client c = client(root);
        for (int i = 0; i < 100; ++i) {
            auto s = c.status(500);
            if (s && s->workers.size() == 1) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }
};

// The `ip` program (iproute2), for command_run, which takes a path; "" when there is none.
std::string ip_program() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
        if (::access(p, X_OK) == 0) return p;
    return "";
}

// A network namespace joined to this one by a veth pair (host 10.213.N.1/30, namespace
// 10.213.N.2/30), made when running as root and removed at the end; `why` says why not otherwise.
struct netns_link {
    std::string ip;                        // path of the ip program
    std::string ns, host_if, ns_if, host_ip, why;
    bool ok = false;

    netns_link() {
        if (::geteuid() != 0) {
            why = "needs root to make a network namespace and a veth pair (ip netns, ip link); run the suite as root to include it";
            return;
        }
        ip = ip_program();
        if (ip.empty()) {
            why = "no `ip` program (iproute2; scripts/install-deps.sh installs it)";
            return;
        }
        const std::string id = std::to_string(::getpid());
        ns = "hearth-t" + id;
        host_if = "hth" + id + "h";
        ns_if = "hth" + id + "n";
        const std::string net = "10.213." + std::to_string(::getpid() % 250) + ".";
        host_ip = net + "1";
        const std::vector<std::vector<std::string>> steps = {
            {ip, "netns", "add", ns},
            {ip, "link", "add", host_if, "type", "veth", "peer", "name", ns_if},
            {ip, "link", "set", ns_if, "netns", ns},
            {ip, "addr", "add", host_ip + "/30", "dev", host_if},
            {ip, "link", "set", host_if, "up"},
            {ip, "netns", "exec", ns, ip, "addr", "add", net + "2/30", "dev", ns_if},
            {ip, "netns", "exec", ns, ip, "link", "set", ns_if, "up"},
            {ip, "netns", "exec", ns, ip, "link", "set", "lo", "up"},
        };
        for (const auto& argv : steps) {
            const auto r = hearth::test::command_run(argv, "", 10000);
            if (r.status != 0) {
                why = "cannot make the network namespace: '";
                for (const auto& a : argv) why.append(a).append(" ");
                why.append("' failed: ").append(r.err);
                return;
            }
        }
        ok = true;
    }
    ~netns_link() {
        // Removing the namespace removes the veth pair with it.
        if (!ns.empty()) hearth::test::command_run({ip, "netns", "del", ns}, "", 10000);
        if (!host_if.empty()) hearth::test::command_run({ip, "link", "del", host_if}, "", 10000);
    }
    netns_link(const netns_link&) = delete;
    netns_link& operator=(const netns_link&) = delete;
    // Takes the namespace's side of the link down: its packets go nowhere, as with a pulled cable.
    bool cut() { return hearth::test::command_run({ip, "netns", "exec", ns, ip, "link", "set", ns_if, "down"}, "", 10000).status == 0; }
};

// Nothing at all comes back within `ms` (a refused CURVE handshake never reaches the broker).
bool silent(raw_client& c, int ms) { return !c.recv(ms).has_value(); }

std::vector<hearth::usage_row> audit_rows(raw_client& c, const std::string& call_id, std::optional<wire::error_reply>* error = nullptr) {
    wire::audit_call a;
    a.id = call_id;
    a.op = wire::audit_op::rows;
    c.send(wire::command::audit, wire::encode(a));
    for (int i = 0; i < 50; ++i) {
        auto m = c.recv(5000);
        if (!m) break;
        if (m->cmd == wire::command::audit) return wire::decode_audit_reply(m->body).rows;
        if (m->cmd == wire::command::error && error) {
            *error = wire::decode_error(m->body);
            break;
        }
    }
    return {};
}

std::optional<wire::batch_reply> batch_call(raw_client& c, const wire::batch_call& b, std::optional<wire::error_reply>* error) {
    c.send(wire::command::batch, wire::encode(b));
    for (int i = 0; i < 50; ++i) {
        auto m = c.recv(5000);
        if (!m) break;
        if (m->cmd == wire::command::batch) return wire::decode_batch_reply(m->body);
        if (m->cmd == wire::command::error) {
            if (error) *error = wire::decode_error(m->body);
            break;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST(lan_security, allowed_keys_work_and_strangers_get_nothing_queued) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l;
    ASSERT_TRUE(l.start(model)) << l.bus->logs();

    // An allowed client is served, and its key name is its identity in the usage log.
    raw_client alice = l.client(l.alice);
    auto ok = alice.call(request_make("a1", "Once upon a time", 8), 15000);
    ASSERT_TRUE(ok.final) << (ok.error ? ok.error->message : "no reply") << l.bus->logs();

    // Refused: a key not on the allowlist, the right key with the wrong server key, no CURVE.
    raw_client stranger = l.client(l.stranger);
    curve_client_keys wrong_server = l.keys_of(l.alice);
    wrong_server.server_z85 = l.stranger.public_z85;
    raw_client impostor(l.client_ep, wrong_server);
    raw_client plain(l.client_ep);
    for (raw_client* c : {&stranger, &impostor, &plain}) c->send(wire::command::request, wire::encode(request_make("x1", "Once upon a time", 8)));
    for (raw_client* c : {&stranger, &impostor, &plain}) EXPECT_TRUE(silent(*c, 1500)) << "a refused peer got an answer";

    raw_client root = l.client(l.root);
    auto st = root.status(5000);
    ASSERT_TRUE(st);
    for (const auto& s : st->services) EXPECT_EQ(s.interactive + s.batch + s.running, 0u) << s.name;
    // Only alice's request made a row; root (admin) sees it under her name.
    auto rows = audit_rows(root, "r1");
    ASSERT_EQ(rows.size(), 1u) << l.bus->logs();
    EXPECT_EQ(rows[0].client, "alice");
    EXPECT_EQ(rows[0].request_id, "a1");
    const std::string log = slurp(l.bus->dir() + "/broker.log");
    EXPECT_NE(log.find("refused key " + l.stranger.public_z85), std::string::npos) << log;
    // The wrong-server-key client is not logged by key: its HELLO is sealed for another server, so
    // the handshake fails before its key could be read (nor does it reach the ZAP handler).
}

TEST(lan_security, worker_needs_an_allowed_worker_key) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l;
    ASSERT_TRUE(l.start(model)) << l.bus->logs();
    // A second worker with a client's key (alice.key): the handshake is refused, it never shows up.
    std::string t = slurp(l.bus->config_path());
    const std::string other = l.bus->dir() + "/other.toml";
    for (size_t p; (p = t.find("/w1.key")) != std::string::npos;) t.replace(p, 7, "/alice.key");
    std::ofstream(other) << t;
    hearth::test::child_process w2({hearth::test::binary_dir() + "/workers/hearth-worker", "--config", other, "-m", model, "--name", "w2"},
                                   l.bus->dir() + "/worker-w2.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    raw_client root = l.client(l.root);
    auto st = root.status(5000);
    ASSERT_TRUE(st);
    ASSERT_EQ(st->workers.size(), 1u);
    EXPECT_EQ(st->workers[0].id, "w1");
    const std::string log = slurp(l.bus->dir() + "/broker.log");
    EXPECT_NE(log.find("refused key " + l.alice.public_z85 + " ('alice', role client)"), std::string::npos) << log;
}

TEST(lan_security, clients_cannot_touch_each_others_requests_batches_or_rows) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l;
    ASSERT_TRUE(l.start(model)) << l.bus->logs();
    raw_client alice = l.client(l.alice);
    raw_client bob = l.client(l.bob);
    raw_client root = l.client(l.root);

    // Bob cancels alice's request id: it is not his, so it does not exist for him.
    alice.send(wire::command::request, wire::encode(request_make("shared-id", "Once upon a time", 100)));
    wire::cancel cancel;
    cancel.id = "shared-id";
    bob.send(wire::command::cancel, wire::encode(cancel));
    auto bob_reply = bob.recv(5000);
    ASSERT_TRUE(bob_reply);
    ASSERT_EQ(bob_reply->cmd, wire::command::error);
    EXPECT_EQ(wire::decode_error(bob_reply->body).code, wire::error_code::bad_request);
    auto a = alice.wait("shared-id", 20000);
    ASSERT_TRUE(a.final) << (a.error ? a.error->message : "no reply") << l.bus->logs();

    // Alice's batch: bob can neither read, fetch nor cancel it; root (admin) can read it.
    wire::batch_call submit;
    submit.id = "b1";
    submit.op = wire::batch_op::submit;
    submit.jobs = {request_make("j0", "Once upon a time", 4), request_make("j1", "Once upon a time", 4)};
    std::optional<wire::error_reply> err;
    auto made = batch_call(alice, submit, &err);
    ASSERT_TRUE(made) << (err ? err->message : "no reply");
    for (wire::batch_op op : {wire::batch_op::status, wire::batch_op::results, wire::batch_op::cancel}) {
        wire::batch_call q;
        q.id = "q";
        q.op = op;
        q.batch = made->batch;
        err.reset();
        EXPECT_FALSE(batch_call(bob, q, &err)) << wire::batch_op_name(op);
        ASSERT_TRUE(err) << wire::batch_op_name(op);
        EXPECT_NE(err->message.find("another client"), std::string::npos) << err->message;
    }
    wire::batch_call q;
    q.id = "q";
    q.op = wire::batch_op::status;
    q.batch = made->batch;
    auto seen = batch_call(root, q, &err);
    ASSERT_TRUE(seen) << (err ? err->message : "");
    EXPECT_EQ(seen->total, 2u);

    // Audit: bob's rows are his only (none yet); he may not verify; root reads everyone's.
    ASSERT_TRUE(bob.call(request_make("b-own", "Once upon a time", 4), 15000).final);
    auto bob_rows = audit_rows(bob, "ra");
    ASSERT_FALSE(bob_rows.empty());
    for (const auto& r : bob_rows) EXPECT_EQ(r.client, "bob") << r.request_id;
    wire::audit_call v;
    v.id = "v";
    v.op = wire::audit_op::verify;
    bob.send(wire::command::audit, wire::encode(v));
    auto vr = bob.recv(5000);
    ASSERT_TRUE(vr);
    ASSERT_EQ(vr->cmd, wire::command::error);
    EXPECT_EQ(wire::decode_error(vr->body).code, wire::error_code::unauthorized);
    bool saw_alice = false;
    for (const auto& r : audit_rows(root, "rr")) saw_alice |= r.client == "alice";
    EXPECT_TRUE(saw_alice);
}

TEST(lan_security, quotas_are_hit_and_reset) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l("[broker.quota.client.alice]\nrequests_per_minute = 3\nmax_queued = 1\n[broker.quota.client.bob]\ntokens_per_day = 10\n"
          "[broker.quota.client.carol]\ntokens_per_day = 1\n");
    ASSERT_TRUE(l.start(model)) << l.bus->logs();
    raw_client alice = l.client(l.alice);

    // max_queued = 1: a second request while the first runs is refused; once it ends, one fits again.
    alice.send(wire::command::request, wire::encode(request_make("q1", "Once upon a time", 100)));
    auto second = alice.call(request_make("q2", "Once upon a time", 4), 10000);
    ASSERT_TRUE(second.error) << "second request accepted past max_queued";
    EXPECT_EQ(second.error->code, wire::error_code::quota_exceeded);
    EXPECT_GT(second.error->retry_after_ms, 0u);
    ASSERT_TRUE(alice.wait("q1", 20000).final);
    ASSERT_TRUE(alice.call(request_make("q3", "Once upon a time", 4), 10000).final) << "max_queued did not free up";

    // requests_per_minute = 3: q1 and q3 were accepted, q2 was not; one more, then refused until
    // the minute is over (the window itself is tested in test-quota-book).
    ASSERT_TRUE(alice.call(request_make("q4", "Once upon a time", 4), 10000).final);
    auto fifth = alice.call(request_make("q5", "Once upon a time", 4), 10000);
    ASSERT_TRUE(fifth.error);
    EXPECT_EQ(fifth.error->code, wire::error_code::quota_exceeded);
    EXPECT_GT(fifth.error->retry_after_ms, 0u);
    EXPECT_LE(fifth.error->retry_after_ms, 60000u);
    EXPECT_NE(fifth.error->message.find("requests this minute"), std::string::npos) << fifth.error->message;

    // tokens_per_day = 10 for bob: the first request uses more, the next is refused until 00:00 UTC.
    raw_client bob = l.client(l.bob);
    ASSERT_TRUE(bob.call(request_make("t1", "Once upon a time", 16), 10000).final);
    auto over = bob.call(request_make("t2", "Once upon a time", 4), 10000);
    ASSERT_TRUE(over.error);
    EXPECT_EQ(over.error->code, wire::error_code::quota_exceeded);
    EXPECT_GT(over.error->retry_after_ms, 0u);
    EXPECT_LE(over.error->retry_after_ms, 24u * 3600 * 1000);
    EXPECT_NE(over.error->message.find("tokens today"), std::string::npos) << over.error->message;
    // A request cancelled mid-stream still counts what it used: carol cannot dodge her quota so.
    raw_client carol = l.client(l.carol);
    carol.send(wire::command::request, wire::encode(request_make("c1", "Once upon a time", 100)));
    ASSERT_NE(hearth::test::first_partial(carol, "c1"), "<timeout>");
    wire::cancel stop;
    stop.id = "c1";
    carol.send(wire::command::cancel, wire::encode(stop));
    auto cut = carol.wait("c1", 10000);
    ASSERT_TRUE(cut.error) << "c1 finished before its cancel arrived";
    EXPECT_EQ(cut.error->code, wire::error_code::cancelled);
    auto after = carol.call(request_make("c2", "Once upon a time", 4), 10000);
    ASSERT_TRUE(after.error) << "the cancelled request's tokens were not counted";
    EXPECT_EQ(after.error->code, wire::error_code::quota_exceeded);

    // Other clients are not affected, and refusals are in the audit trail.
    raw_client root = l.client(l.root);
    ASSERT_TRUE(root.call(request_make("r1", "Once upon a time", 4), 10000).final);
    int refused = 0;
    for (const auto& r : audit_rows(root, "rows")) refused += r.status == "quota_exceeded";
    EXPECT_EQ(refused, 4);
}

TEST(lan_security, lan_address_without_curve_is_refused_unless_insecure_lan) {
    bus_fixture bus("client_endpoint = \"tcp://0.0.0.0:" + std::to_string(free_port()) + "\"\n");
    auto r = hearth::test::command_run({hearth::test::binary_dir() + "/broker/hearth-broker", "--config", bus.config_path()}, "", 10000);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("without CURVE"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("insecure_lan"), std::string::npos) << r.err;

    bus_fixture open("client_endpoint = \"tcp://0.0.0.0:" + std::to_string(free_port()) + "\"\ninsecure_lan = true\n");
    open.broker_start();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(open.broker().running()) << open.logs();
    EXPECT_NE(slurp(open.dir() + "/broker.log").find("WITHOUT CURVE"), std::string::npos) << open.logs();
}

TEST(lan_security, worker_in_another_network_namespace_serves_and_its_cut_link_means_redispatch) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    netns_link net;
    if (!net.ok) GTEST_SKIP() << net.why;
    // The worker endpoint on every address (so the namespace can reach it): CURVE is required there.
    lan l("", "0.0.0.0");
    l.config_fix();
    l.bus->broker_start();
    const std::string worker_bin = hearth::test::binary_dir() + "/workers/hearth-worker";
    const std::string port = std::to_string(l.worker_port);
    hearth::test::child_process far({net.ip, "netns", "exec", net.ns, worker_bin, "--config", l.bus->config_path(), "-m", model,
                                     "--name", "far", "--endpoint", "tcp://" + net.host_ip + ":" + port},
                                    l.bus->dir() + "/worker-far.log");
    raw_client root = l.client(l.root);
    bool joined = false;
    for (int i = 0; i < 200 && !joined; ++i) {
        auto st = root.status(500);
        joined = st && st->workers.size() == 1 && st->workers[0].id == "far";
        if (!joined) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_TRUE(joined) << l.bus->logs();

    raw_client alice = l.client(l.alice);
    auto served = alice.call(request_make("n1", "Once upon a time", 8), 15000);
    ASSERT_TRUE(served.final) << (served.error ? served.error->message : "no reply") << l.bus->logs();
    EXPECT_EQ(served.final->use.worker, "far");

    // Pull the cable, then ask: the broker still thinks `far` is alive and gives it the request;
    // after missed heartbeats it declares it lost and the request goes to a worker on this side.
    ASSERT_TRUE(net.cut());
    alice.send(wire::command::request, wire::encode(request_make("n2", "Once upon a time", 8)));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hearth::test::child_process near({worker_bin, "--config", l.bus->config_path(), "-m", model, "--name", "near",
                                      "--endpoint", "tcp://127.0.0.1:" + port},
                                     l.bus->dir() + "/worker-near.log");
    auto redone = alice.wait("n2", 20000);
    ASSERT_TRUE(redone.final) << (redone.error ? redone.error->message : "no reply") << l.bus->logs();
    EXPECT_EQ(redone.final->use.worker, "near");
    const std::string log = slurp(l.bus->dir() + "/broker.log");
    EXPECT_NE(log.find("request n2 -> worker far (attempt 1)"), std::string::npos) << log;
    EXPECT_NE(log.find("worker far lost (missed heartbeats)"), std::string::npos) << log;
    EXPECT_NE(log.find("request n2 -> worker near (attempt 2)"), std::string::npos) << log;
}

TEST(lan_security, a_key_taken_off_the_allowlist_is_refused_at_once) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l;
    ASSERT_TRUE(l.start(model)) << l.bus->logs();
    raw_client bob = l.client(l.bob);
    ASSERT_TRUE(bob.call(request_make("before", "Once upon a time", 4), 15000).final);

    // bob's line goes, and his name is given to the stranger's key: bob's open connection must
    // not carry on, and must not become the new 'bob' either.
    std::ofstream(l.bus->dir() + "/allowlist") << "alice " << l.alice.public_z85 << " client\n"
                                              << "bob " << l.stranger.public_z85 << " admin\n"
                                              << "root " << l.root.public_z85 << " admin\n"
                                              << "w1 " << l.w1.public_z85 << " worker\n";
    ASSERT_EQ(::kill(l.bus->broker().pid(), SIGHUP), 0);
    // The refusal carries no id: the broker reads nothing of a message it will not accept.
    bool refused = false;
    for (int i = 0; i < 40 && !refused; ++i) {
        bob.send(wire::command::request, wire::encode(request_make("after" + std::to_string(i), "Once upon a time", 4)));
        for (auto m = bob.recv(5000); m && !refused; m = bob.recv(5000)) {
            if (m->cmd == wire::command::error) refused = wire::decode_error(m->body).code == wire::error_code::unauthorized;
            if (m->cmd == wire::command::final || m->cmd == wire::command::error) break;
        }
        if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(refused) << l.bus->logs();
    EXPECT_NE(slurp(l.bus->dir() + "/broker.log").find("no longer on the allowlist"), std::string::npos);
    raw_client alice = l.client(l.alice);
    EXPECT_TRUE(alice.call(request_make("still", "Once upon a time", 4), 15000).final) << "the others still get in";

    // The worker's key goes too: the broker drops it at its next heartbeat.
    std::ofstream(l.bus->dir() + "/allowlist") << "alice " << l.alice.public_z85 << " client\n"
                                              << "root " << l.root.public_z85 << " admin\n";
    ASSERT_EQ(::kill(l.bus->broker().pid(), SIGHUP), 0);
    raw_client root = l.client(l.root);
    bool dropped = false;
    for (int i = 0; i < 100 && !dropped; ++i) {
        auto st = root.status(1000);
        dropped = st && st->workers.empty();
        if (!dropped) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(dropped) << l.bus->logs();
    EXPECT_NE(slurp(l.bus->dir() + "/broker.log").find("its key is no longer on the allowlist"), std::string::npos);
}

TEST(lan_security, batch_jobs_wait_for_the_next_day_once_tokens_per_day_is_used_up) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    lan l("[broker.quota.client.alice]\ntokens_per_day = 20\n");
    ASSERT_TRUE(l.start(model)) << l.bus->logs();
    raw_client alice = l.client(l.alice);
    wire::batch_call submit;
    submit.id = "b";
    submit.op = wire::batch_op::submit;
    for (int i = 0; i < 6; ++i) submit.jobs.push_back(request_make("j" + std::to_string(i), "Once upon a time", 16));
    std::optional<wire::error_reply> err;
    auto made = batch_call(alice, submit, &err);
    ASSERT_TRUE(made) << (err ? err->message : "no reply");

    // Each job uses about 21 tokens: after the first ones (two slots may start together) the rest
    // wait; they are still queued, not failed.
    wire::batch_call q;
    q.id = "s";
    q.op = wire::batch_op::status;
    q.batch = made->batch;
    std::optional<wire::batch_reply> st;
    for (int i = 0; i < 100; ++i) {
        st = batch_call(alice, q, &err);
        ASSERT_TRUE(st) << (err ? err->message : "no reply");
        if (st->done > 0 && st->running == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // time to start more, were it allowed
    st = batch_call(alice, q, &err);
    ASSERT_TRUE(st);
    EXPECT_GE(st->done, 1u);
    EXPECT_LE(st->done, 2u) << "batch jobs ran on past tokens_per_day";
    EXPECT_EQ(st->failed, 0u);
    EXPECT_EQ(st->queued, st->total - st->done);
    EXPECT_NE(slurp(l.bus->dir() + "/broker.log").find("batch jobs of 'alice' wait for 00:00 UTC"), std::string::npos) << l.bus->logs();
    // STATUS still counts them as waiting batch work; another client's work is not held up.
    raw_client root = l.client(l.root);
    auto s = root.status(5000);
    ASSERT_TRUE(s);
    uint32_t waiting = 0;
    for (const auto& svc : s->services) waiting += svc.batch;
    EXPECT_EQ(waiting, st->queued);
    EXPECT_TRUE(root.call(request_make("r", "Once upon a time", 4), 15000).final);

    // Cancelling the batch takes the waiting jobs away too.
    wire::batch_call c = q;
    c.op = wire::batch_op::cancel;
    auto cancelled = batch_call(alice, c, &err);
    ASSERT_TRUE(cancelled) << (err ? err->message : "no reply");
    s = root.status(5000);
    ASSERT_TRUE(s);
    waiting = 0;
    for (const auto& svc : s->services) waiting += svc.batch;
    EXPECT_EQ(waiting, 0u);
}
