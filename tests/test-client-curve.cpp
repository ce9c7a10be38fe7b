// The client library and the `hearth` CLI against a CURVE broker: an in-process ROUTER that is a
// CURVE server, with a ZAP handler admitting one client key (what hearth-broker's allowlist does),
// so that the client's key handling and its refused-handshake message are checked without the
// broker binary.
#include "client.h"
#include "curve-keys.h"
#include "fake-broker.h"
#include "transport.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zmq.h>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace fs = std::filesystem;
namespace wire = hearth::wire;
using hearth::test::quote;
using hearth::test::run;
using wire::command;
using clock_type = std::chrono::steady_clock;

// Key pairs for the tests, written once into this process's own key directory.
struct key_set {
    fs::path dir;                        // key directory (also $XDG_CONFIG_HOME/hearth/keys)
    hearth::curve_keypair broker;        // the CURVE server's pair
    hearth::curve_keypair allowed;       // the one client key the ZAP handler admits
    hearth::curve_keypair stranger;      // a well-formed key the handler does not know
    hearth::curve_keypair impostor;      // a pair whose public key is not the server's
    std::string file(const std::string& name, const char* ext) const { return (dir / (name + ext)).string(); }
};

const key_set& keys() {
    static const key_set k = [] {
        key_set s;
        std::string name = "hearth-client-curve-";  // by append: gcc 12 -Wrestrict on "lit" + std::string
        name.append(std::to_string(::getpid()));
        const fs::path config_home = fs::temp_directory_path() / name;
        s.dir = config_home / "hearth" / "keys";
        // Key NAMEs resolve in $XDG_CONFIG_HOME/hearth/keys, here and in the hearth binaries run.
        ::setenv("XDG_CONFIG_HOME", config_home.c_str(), 1);
        s.broker = hearth::curve_keypair_generate("broker");
        s.allowed = hearth::curve_keypair_generate("allowed");
        s.stranger = hearth::curve_keypair_generate("stranger");
        s.impostor = hearth::curve_keypair_generate("impostor");
        for (const auto* k : {&s.broker, &s.allowed, &s.stranger, &s.impostor}) hearth::curve_keypair_write(s.dir.string(), *k, true);
        return s;
    }();
    // Removes the keys when the test program ends.
    static const struct dir_remover {
        fs::path path;                   // $XDG_CONFIG_HOME of this process
        ~dir_remover() {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
    } remover{k.dir.parent_path().parent_path()};
    return k;
}

bool curve_available() { return zmq_has("curve") != 0; }

// A CURVE ROUTER on tcp://127.0.0.1 with a ZAP handler admitting keys().allowed only. Answers
// each REQUEST with a FINAL "ok:<prompt>" and each STATUS with an empty STATUS reply.
class curve_broker {
public:
    curve_broker() : zap_(ctx_, zmq::socket_type::rep), sock_(ctx_, zmq::socket_type::router) {
        // The handler must be bound before the first handshake, in the server socket's context.
        zap_.set(zmq::sockopt::linger, 0);
        zap_.bind("inproc://zeromq.zap.01");
        wire::socket_setup(sock_);
        sock_.set(zmq::sockopt::curve_server, 1);
        sock_.set(zmq::sockopt::curve_secretkey, keys().broker.secret_z85);
        sock_.set(zmq::sockopt::zap_domain, "hearth-test");
        sock_.bind("tcp://127.0.0.1:*");
        endpoint = sock_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { loop(); });
    }
    ~curve_broker() {
        stop_ = true;
        thread_.join();
    }
    curve_broker(const curve_broker&) = delete;
    curve_broker& operator=(const curve_broker&) = delete;

    int admitted() const { return admitted_.load(); }
    int refused() const { return refused_.load(); }
    int requests() const { return requests_.load(); }

    std::string endpoint;  // tcp://127.0.0.1:PORT

private:
    void zap_answer() {
        std::vector<zmq::message_t> req;
        while (zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) {
            auto text = [&](size_t i) { return i < req.size() ? req[i].to_string() : std::string(); };
            std::string key;
            if (req.size() >= 7 && req[6].size() == 32) {
                char z85[41] = {};
                zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
                key = z85;
            }
            const bool ok = text(0) == "1.0" && text(5) == "CURVE" && key == keys().allowed.public_z85;
            (ok ? admitted_ : refused_)++;
            const std::string reply[] = {"1.0", text(1), ok ? "200" : "400", ok ? "OK" : "not allowed", ok ? "allowed" : "", ""};
            for (size_t i = 0; i < 6; ++i) zap_.send(zmq::buffer(reply[i]), i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
            req.clear();
        }
    }
    void loop() {
        while (!stop_) {
            zmq::pollitem_t items[] = {{zap_.handle(), 0, ZMQ_POLLIN, 0}, {sock_.handle(), 0, ZMQ_POLLIN, 0}};
            zmq::poll(items, 2, std::chrono::milliseconds(10));
            zap_answer();
            wire::frames f;
            while (wire::message_recv(sock_, f)) {
                const std::string rid(f.routing_id());
                const auto env = wire::envelope_parse(f.views(1));
                if (env.cmd == command::request) {
                    ++requests_;
                    const wire::request r = wire::decode_request(env.body);
                    wire::final_reply fr;
                    fr.id = r.id;
                    fr.text = "ok:" + r.prompt;
                    fr.finish_reason = "stop";
                    wire::message_send(sock_, rid, command::final, wire::encode(fr));
                } else if (env.cmd == command::status) {
                    wire::status_reply s;
                    s.uptime_s = 7;
                    wire::message_send(sock_, rid, command::status, wire::encode(s));
                }
            }
        }
    }

    zmq::context_t ctx_{1};              // its own: the ZAP handler serves this context's sockets only
    zmq::socket_t zap_;                  // REP on inproc://zeromq.zap.01
    zmq::socket_t sock_;                 // the CURVE server ROUTER
    std::thread thread_;                 // runs loop()
    std::atomic<bool> stop_{false};      // set by the destructor
    std::atomic<int> admitted_{0};       // ZAP requests answered 200
    std::atomic<int> refused_{0};        // ZAP requests answered 400
    std::atomic<int> requests_{0};       // REQUESTs that got through
};

hearth::client_options options_for(const curve_broker& b, const std::string& key, const std::string& broker_key) {
    hearth::client_options o;
    o.endpoint = b.endpoint;
    o.heartbeat_ms = 200;
    o.broker_timeout_ms = 1500;
    o.curve_secret_key = key;
    o.broker_public_key = broker_key;
    return o;
}

wire::request request_make(const std::string& prompt) {
    wire::request r;
    r.service = "complete";
    r.prompt = prompt;
    r.max_tokens = 4;
    return r;
}

const char* const kRefusedHint = "or it refused this client's key";

// Keys are made (and $XDG_CONFIG_HOME set) first thing, before any test starts a thread.
#define REQUIRE_CURVE()                                             \
    if (!curve_available()) GTEST_SKIP() << "libzmq without CURVE"; \
    (void)keys()

TEST(client_curve, allowed_key_gets_through) {
    REQUIRE_CURVE();
    curve_broker b;
    // Client key by file, broker key as Z85 text.
    hearth::client c(options_for(b, keys().file("allowed", ".key"), keys().broker.public_z85));
    const hearth::client_result res = c.call(request_make("hi"));
    ASSERT_TRUE(res.ok) << res.transport_message << res.error.message;
    EXPECT_EQ(res.final.text, "ok:hi");
    EXPECT_EQ(b.requests(), 1);
    EXPECT_GE(b.admitted(), 1);
    EXPECT_EQ(b.refused(), 0);
}

TEST(client_curve, key_names_and_pub_files_resolve) {
    REQUIRE_CURVE();
    curve_broker b;
    // A key NAME (in $XDG_CONFIG_HOME/hearth/keys) and the broker's .pub file.
    hearth::client c(options_for(b, "allowed", keys().file("broker", ".pub")));
    std::string err;
    const auto s = c.status(3000, &err);
    ASSERT_TRUE(s.has_value()) << err;
    EXPECT_EQ(s->uptime_s, 7.0);
}

TEST(client_curve, unknown_client_key_fails_with_hint) {
    REQUIRE_CURVE();
    curve_broker b;
    hearth::client c(options_for(b, keys().file("stranger", ".key"), keys().broker.public_z85));
    const auto start = clock_type::now();
    const hearth::client_result res = c.call(request_make("hi"));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    EXPECT_FALSE(res.ok);
    ASSERT_TRUE(res.transport_failed);
    EXPECT_NE(res.transport_message.find("no answer from the broker"), std::string::npos) << res.transport_message;
    EXPECT_NE(res.transport_message.find(kRefusedHint), std::string::npos) << res.transport_message;
    EXPECT_LT(took, 4000);
    EXPECT_EQ(b.requests(), 0);
    EXPECT_GE(b.refused(), 1);  // the handshake reached the ZAP handler and was turned down
    EXPECT_EQ(b.admitted(), 0);
}

TEST(client_curve, wrong_server_key_fails_with_hint) {
    REQUIRE_CURVE();
    curve_broker b;
    hearth::client c(options_for(b, keys().file("allowed", ".key"), keys().impostor.public_z85));
    const auto start = clock_type::now();
    const hearth::client_result res = c.call(request_make("hi"));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    ASSERT_TRUE(res.transport_failed);
    EXPECT_NE(res.transport_message.find(kRefusedHint), std::string::npos) << res.transport_message;
    EXPECT_LT(took, 4000);
    EXPECT_EQ(b.requests(), 0);
    EXPECT_EQ(b.admitted(), 0);  // the server could not even open the client's HELLO
}

TEST(client_curve, status_timeout_has_hint_too) {
    REQUIRE_CURVE();
    curve_broker b;
    hearth::client c(options_for(b, keys().file("stranger", ".key"), keys().broker.public_z85));
    std::string err;
    EXPECT_FALSE(c.status(500, &err).has_value());
    EXPECT_NE(err.find(kRefusedHint), std::string::npos) << err;
}

TEST(client_curve, plain_client_has_no_hint) {
    // Without CURVE, silence means no broker: the key hint would only mislead.
    hearth::client_options o;
    o.endpoint = "tcp://127.0.0.1:1";
    o.broker_timeout_ms = 300;
    hearth::client c(o);
    const hearth::client_result res = c.call(request_make("hi"));
    ASSERT_TRUE(res.transport_failed);
    EXPECT_EQ(res.transport_message.find(kRefusedHint), std::string::npos) << res.transport_message;
}

TEST(client_curve, bad_key_options_are_invalid_arguments) {
    REQUIRE_CURVE();
    const std::string ep = "tcp://127.0.0.1:1";
    auto opts = [&](const std::string& key, const std::string& broker_key) {
        hearth::client_options o;
        o.endpoint = ep;
        o.curve_secret_key = key;
        o.broker_public_key = broker_key;
        return o;
    };
    auto message_of = [](const hearth::client_options& o) -> std::string {
        try {
            hearth::client c(o);
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(no exception)";
    };
    // Only one of the two.
    std::string m = message_of(opts(keys().file("allowed", ".key"), ""));
    EXPECT_NE(m.find("needs both --key (this side's key) and --broker-key (the broker's public key)"), std::string::npos) << m;
    m = message_of(opts("", keys().broker.public_z85));
    EXPECT_NE(m.find("needs both"), std::string::npos) << m;
    // A missing key file: the message names it.
    const std::string missing = (keys().dir / "nobody.key").string();
    m = message_of(opts(missing, keys().broker.public_z85));
    EXPECT_NE(m.find(missing), std::string::npos) << m;
    // A .pub file has no secret.
    m = message_of(opts(keys().file("allowed", ".pub"), keys().broker.public_z85));
    EXPECT_NE(m.find("no secret key"), std::string::npos) << m;
    // A broker key that is neither Z85 nor a file.
    m = message_of(opts(keys().file("allowed", ".key"), "/no/such/broker.pub"));
    EXPECT_NE(m.find("/no/such/broker.pub"), std::string::npos) << m;
    // Neither: a plain client, no exception.
    EXPECT_NO_THROW(hearth::client c(opts("", "")));
}

TEST(client_curve, cli_bad_key_files_exit_2) {
    REQUIRE_CURVE();
    const std::string ep = "--endpoint tcp://127.0.0.1:1 --broker-timeout 300 ";
    const std::string missing = (keys().dir / "nobody.key").string();
    auto r = run(ep + "--key " + quote(missing) + " --broker-key " + quote(keys().broker.public_z85) + " status");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    // Only one of the two.
    r = run(ep + "--key " + quote(keys().file("allowed", ".key")) + " ask hi");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("--broker-key"), std::string::npos) << r.err;
    // Global options after the subcommand name too.
    r = run(ep + "status --broker-key /no/such/broker.pub --key allowed");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("/no/such/broker.pub"), std::string::npos) << r.err;
}

TEST(client_curve, cli_connects_with_keys) {
    REQUIRE_CURVE();
    curve_broker b;
    auto r = run("--endpoint " + quote(b.endpoint) + " --broker-timeout 3000 --key allowed --broker-key " +
                 quote(keys().file("broker", ".pub")) + " ask --no-stream hello");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok:hello\n");
    // An unknown key: exit 1 with the hint on stderr.
    r = run("--endpoint " + quote(b.endpoint) + " --broker-timeout 800 --key stranger --broker-key " + quote(keys().broker.public_z85) +
            " ask hello");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(kRefusedHint), std::string::npos) << r.err;
}

TEST(client_curve, help_lists_key_options) {
    const auto r = run("--help");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--key"), std::string::npos);
    EXPECT_NE(r.out.find("--broker-key"), std::string::npos);
}

}  // namespace
