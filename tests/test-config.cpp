// hearth.toml: defaults from the environment, validation messages, round trip, file lookup order
// and the ipc directory helper.
#include "config.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using hearth::config;
using hearth::config_error;
using hearth::config_parse;

namespace hearth {
// Field by field, so that EXPECT_EQ can compare limits and the maps holding them.
bool operator==(const quota_limits& a, const quota_limits& b) {
    return a.requests_per_minute == b.requests_per_minute && a.tokens_per_day == b.tokens_per_day &&
           a.max_queued == b.max_queued;
}
std::ostream& operator<<(std::ostream& os, const quota_limits& q) {
    return os << "{rpm " << q.requests_per_minute << ", tokens/day " << q.tokens_per_day << ", queued " << q.max_queued << "}";
}
}  // namespace hearth

namespace {

// Saves the variables the configuration reads, clears them, and restores them at the end, so a
// test sees only what it sets and the developer's own environment never leaks in.
class env_scope {
public:
    env_scope() {
        for (const char* name : kNames) {
            if (const char* v = std::getenv(name)) saved_[name] = v;
            ::unsetenv(name);
        }
    }
    ~env_scope() {
        for (const char* name : kNames) {
            auto it = saved_.find(name);
            if (it == saved_.end()) ::unsetenv(name);
            else ::setenv(name, it->second.c_str(), 1);
        }
    }
    void set(const char* name, const std::string& v) { ::setenv(name, v.c_str(), 1); }
    void unset(const char* name) { ::unsetenv(name); }

private:
    static constexpr const char* kNames[] = {"RUNTIME_DIRECTORY", "STATE_DIRECTORY", "XDG_RUNTIME_DIR",
                                             "XDG_STATE_HOME",    "XDG_CONFIG_HOME", "HEARTH_CONFIG",
                                             "HOME"};
    std::map<std::string, std::string> saved_;  // the values before the test
};

// A fresh directory per test, removed afterwards.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "hearth-config-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }
    std::string sub(const std::string& rel) const { return std::string(path_).append("/").append(rel); }

private:
    std::string path_;  // absolute, made by mkdtemp
};

void write_file(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The config_error message for text, or "" when it parses.
std::string parse_error(const std::string& text) {
    try {
        config_parse(text, "t.toml");
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

void expect_equal(const config& a, const config& b) {
    EXPECT_EQ(a.runtime_dir, b.runtime_dir);
    EXPECT_EQ(a.state_dir, b.state_dir);
    EXPECT_EQ(a.log_level, b.log_level);
    EXPECT_EQ(a.broker.client_endpoint, b.broker.client_endpoint);
    EXPECT_EQ(a.broker.worker_endpoint, b.broker.worker_endpoint);
    EXPECT_EQ(a.broker.queue_interactive, b.broker.queue_interactive);
    EXPECT_EQ(a.broker.queue_batch, b.broker.queue_batch);
    EXPECT_EQ(a.broker.max_request_bytes, b.broker.max_request_bytes);
    EXPECT_EQ(a.broker.heartbeat_ms, b.broker.heartbeat_ms);
    EXPECT_EQ(a.broker.liveness, b.broker.liveness);
    EXPECT_EQ(a.broker.no_worker_ms, b.broker.no_worker_ms);
    EXPECT_EQ(a.broker.services, b.broker.services);
    EXPECT_EQ(a.broker.usage_db, b.broker.usage_db);
    EXPECT_EQ(a.worker.broker_endpoint, b.worker.broker_endpoint);
    EXPECT_EQ(a.worker.model, b.worker.model);
    EXPECT_EQ(a.worker.name, b.worker.name);
    EXPECT_EQ(a.worker.services, b.worker.services);
    EXPECT_EQ(a.worker.slots, b.worker.slots);
    EXPECT_EQ(a.worker.threads, b.worker.threads);
    EXPECT_EQ(a.worker.ctx_size, b.worker.ctx_size);
    EXPECT_EQ(a.worker.batch_size, b.worker.batch_size);
    EXPECT_EQ(a.worker.reconnect_min_ms, b.worker.reconnect_min_ms);
    EXPECT_EQ(a.worker.reconnect_max_ms, b.worker.reconnect_max_ms);
    EXPECT_EQ(a.client.broker_endpoint, b.client.broker_endpoint);
    EXPECT_EQ(a.client.timeout_ms, b.client.timeout_ms);
    EXPECT_EQ(a.broker.queue_bytes, b.broker.queue_bytes);
    EXPECT_EQ(a.worker.memory_budget, b.worker.memory_budget);
    EXPECT_EQ(a.worker.guard_interval_ms, b.worker.guard_interval_ms);
    EXPECT_EQ(a.worker.guard_root, b.worker.guard_root);
    EXPECT_EQ(a.worker.guard_throttle_available, b.worker.guard_throttle_available);
    EXPECT_EQ(a.worker.guard_critical_available, b.worker.guard_critical_available);
    EXPECT_EQ(a.worker.guard_psi_some_throttle, b.worker.guard_psi_some_throttle);
    EXPECT_EQ(a.worker.guard_psi_full_critical, b.worker.guard_psi_full_critical);
    EXPECT_EQ(a.worker.guard_budget_throttle, b.worker.guard_budget_throttle);
    EXPECT_EQ(a.worker.guard_budget_critical, b.worker.guard_budget_critical);
    EXPECT_EQ(a.worker.guard_recover_samples, b.worker.guard_recover_samples);
    EXPECT_EQ(a.broker.whitelist, b.broker.whitelist);
    EXPECT_EQ(a.broker.curve_secret_key, b.broker.curve_secret_key);
    EXPECT_EQ(a.broker.allowlist, b.broker.allowlist);
    EXPECT_EQ(a.broker.insecure_lan, b.broker.insecure_lan);
    EXPECT_EQ(a.broker.quota, b.broker.quota);
    EXPECT_EQ(a.broker.quota_roles, b.broker.quota_roles);
    EXPECT_EQ(a.broker.quota_clients, b.broker.quota_clients);
    EXPECT_EQ(a.worker.curve_secret_key, b.worker.curve_secret_key);
    EXPECT_EQ(a.worker.broker_public_key, b.worker.broker_public_key);
    EXPECT_EQ(a.client.curve_secret_key, b.client.curve_secret_key);
    EXPECT_EQ(a.client.broker_public_key, b.client.broker_public_key);
}

fs::path schema_dir() { return fs::path(__FILE__).parent_path() / ".." / "schema"; }

}  // namespace

TEST(Config, DefaultsWithoutFile) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/run/user/4242");
    env.set("XDG_STATE_HOME", "/home/u/.st");
    env.set("HOME", "/home/u");
    const config c = hearth::config_defaults();
    EXPECT_EQ(c.source, "");
    EXPECT_EQ(c.runtime_dir, "/run/user/4242/hearth");
    EXPECT_EQ(c.state_dir, "/home/u/.st/hearth");
    EXPECT_EQ(c.log_level, "info");
    EXPECT_EQ(c.broker.client_endpoint, "ipc:///run/user/4242/hearth/client.sock");
    EXPECT_EQ(c.broker.worker_endpoint, "ipc:///run/user/4242/hearth/worker.sock");
    EXPECT_EQ(c.worker.broker_endpoint, c.broker.worker_endpoint);
    EXPECT_EQ(c.client.broker_endpoint, c.broker.client_endpoint);
    EXPECT_EQ(c.broker.queue_interactive, 64u);
    EXPECT_EQ(c.broker.liveness, 3u);
    EXPECT_EQ(c.worker.slots, 4u);
    EXPECT_EQ(c.worker.model, "");
    const std::string pid_suffix = std::string(":").append(std::to_string(::getpid()));
    ASSERT_GT(c.worker.name.size(), pid_suffix.size());
    EXPECT_EQ(c.worker.name.substr(c.worker.name.size() - pid_suffix.size()), pid_suffix);
    // An empty file is the same as no file.
    config empty = config_parse("", "empty.toml");
    EXPECT_EQ(empty.source, "empty.toml");
    expect_equal(empty, c);
}

TEST(Config, DirectoryPrecedence) {
    env_scope env;
    env.set("HOME", "/home/u");
    // Nothing set: /run/hearth for root, a per-uid directory otherwise.
    const std::string fallback =
        ::geteuid() == 0 ? std::string("/run/hearth") : std::string("/tmp/hearth-").append(std::to_string(::geteuid()));
    EXPECT_EQ(hearth::config_defaults().runtime_dir, fallback);
    EXPECT_EQ(hearth::config_defaults().state_dir, "/home/u/.local/state/hearth");
    // XDG wins over the fallback, systemd's variables win over XDG (first entry of a list).
    env.set("XDG_RUNTIME_DIR", "/x/run/");
    env.set("XDG_STATE_HOME", "/x/state");
    EXPECT_EQ(hearth::config_defaults().runtime_dir, "/x/run/hearth");
    EXPECT_EQ(hearth::config_defaults().state_dir, "/x/state/hearth");
    env.set("RUNTIME_DIRECTORY", "/run/hearth-sd:/run/other");
    env.set("STATE_DIRECTORY", "/var/lib/hearth");
    EXPECT_EQ(hearth::config_defaults().runtime_dir, "/run/hearth-sd");
    EXPECT_EQ(hearth::config_defaults().state_dir, "/var/lib/hearth");
    EXPECT_EQ(hearth::config_defaults().broker.client_endpoint, "ipc:///run/hearth-sd/client.sock");
    // A relative XDG value is invalid by the XDG spec and ignored.
    env.unset("RUNTIME_DIRECTORY");
    env.set("XDG_RUNTIME_DIR", "relative/run");
    EXPECT_EQ(hearth::config_defaults().runtime_dir, fallback);
}

TEST(Config, TwoXdgDirectoriesDoNotCollide) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/tmp/a");
    const config a = hearth::config_defaults();
    env.set("XDG_RUNTIME_DIR", "/tmp/b");
    const config b = hearth::config_defaults();
    EXPECT_NE(a.broker.client_endpoint, b.broker.client_endpoint);
    EXPECT_NE(a.broker.worker_endpoint, b.broker.worker_endpoint);
    EXPECT_NE(a.client.broker_endpoint, b.client.broker_endpoint);
    EXPECT_NE(a.worker.broker_endpoint, b.worker.broker_endpoint);
}

TEST(Config, EndpointDefaultsFollowOverrides) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/tmp/a");
    env.set("HOME", "/home/u");
    // Moving runtime_dir moves every ipc endpoint.
    config c = config_parse("runtime_dir = \"/srv/h\"\nstate_dir = \"~/data\"\n", "t.toml");
    EXPECT_EQ(c.runtime_dir, "/srv/h");
    EXPECT_EQ(c.state_dir, "/home/u/data");
    EXPECT_EQ(c.broker.client_endpoint, "ipc:///srv/h/client.sock");
    EXPECT_EQ(c.worker.broker_endpoint, "ipc:///srv/h/worker.sock");
    EXPECT_EQ(c.client.broker_endpoint, "ipc:///srv/h/client.sock");
    // Setting only the broker's endpoints moves workers and clients too (key order irrelevant).
    c = config_parse("[client]\ntimeout_ms = 5\n[worker]\nslots = 2\n"
                     "[broker]\nclient_endpoint = \"tcp://127.0.0.1:5555\"\nworker_endpoint = \"tcp://127.0.0.1:5556\"\n",
                     "t.toml");
    EXPECT_EQ(c.client.broker_endpoint, "tcp://127.0.0.1:5555");
    EXPECT_EQ(c.worker.broker_endpoint, "tcp://127.0.0.1:5556");
    // An explicit worker/client endpoint is kept.
    c = config_parse("[broker]\nworker_endpoint = \"tcp://*:5556\"\n[worker]\nbroker_endpoint = \"tcp://hub:5556\"\n"
                     "model = \"~/m/x.gguf\"\n",
                     "t.toml");
    EXPECT_EQ(c.broker.worker_endpoint, "tcp://*:5556");
    EXPECT_EQ(c.worker.broker_endpoint, "tcp://hub:5556");
    EXPECT_EQ(c.worker.model, "/home/u/m/x.gguf");
}

TEST(Config, EveryValidationErrorNamesKeyAndLine) {
    env_scope env;
    struct bad_case {
        std::string text;   // the file
        std::string where;  // "t.toml:<line>: <key>"
        std::string what;   // part of the explanation
    };
    const std::vector<bad_case> cases = {
        {"[broker]\n\nliveness = \"3\"\n", "t.toml:3: broker.liveness", "expected an integer, got string"},
        {"[broker]\nliveness = 0\n", "t.toml:2: broker.liveness", "out of range 1..100"},
        {"[broker]\nliveness = 101\n", "t.toml:2: broker.liveness", "1..100"},
        {"[broker]\nheartbeat_ms = 9\n", "t.toml:2: broker.heartbeat_ms", "10..60000"},
        {"[broker]\nheartbeat_ms = 1.5\n", "t.toml:2: broker.heartbeat_ms", "got float"},
        {"[broker]\nqueue_interactive = 0\n", "t.toml:2: broker.queue_interactive", "1..1000000"},
        {"[broker]\nqueue_batch = 1000001\n", "t.toml:2: broker.queue_batch", "1..1000000"},
        {"[broker]\nmax_request_bytes = 1023\n", "t.toml:2: broker.max_request_bytes", "out of range"},
        {"[broker]\nmax_request_bytes = 15728641\n", "t.toml:2: broker.max_request_bytes", "out of range"},
        {"[broker]\nno_worker_ms = -1\n", "t.toml:2: broker.no_worker_ms", "out of range"},
        {"[broker]\nno_worker_ms = 86400001\n", "t.toml:2: broker.no_worker_ms", "out of range"},
        {"[broker]\nservices = []\n", "t.toml:2: broker.services", "at least one"},
        {"[broker]\nservices = \"chat\"\n", "t.toml:2: broker.services", "expected an array of strings"},
        {"[broker]\nservices = [\"chat\",\n  \"Chat\"]\n", "t.toml:3: broker.services[1]", "not a service name"},
        {"[broker]\nservices = [\"chat\", \"chat\"]\n", "t.toml:2: broker.services[1]", "listed twice"},
        {"[broker]\nservices = [\"chat\", 3]\n", "t.toml:2: broker.services[1]", "expected a string"},
        {"[broker]\nservices = [\"" + std::string(33, 'a') + "\"]\n", "t.toml:2: broker.services[0]",
         "not a service name"},
        {"[broker]\nclient_endpoint = \"/tmp/x.sock\"\n", "t.toml:2: broker.client_endpoint", "ipc://, tcp://"},
        {"[broker]\nworker_endpoint = \"tcp://\"\n", "t.toml:2: broker.worker_endpoint", "no address"},
        {"[worker]\nbroker_endpoint = \"udp://x\"\n", "t.toml:2: worker.broker_endpoint", "must start with"},
        {"[client]\nbroker_endpoint = 5\n", "t.toml:2: client.broker_endpoint", "expected a string, got integer"},
        {"[worker]\nslots = 0\n", "t.toml:2: worker.slots", "1..64"},
        {"[worker]\nslots = 65\n", "t.toml:2: worker.slots", "1..64"},
        {"[worker]\nthreads = 1025\n", "t.toml:2: worker.threads", "0..1024"},
        {"[worker]\nctx_size = 15\n", "t.toml:2: worker.ctx_size", "16..131072"},
        {"[worker]\nbatch_size = 8193\n", "t.toml:2: worker.batch_size", "1..8192"},
        {"[worker]\nreconnect_min_ms = 0\n", "t.toml:2: worker.reconnect_min_ms", "1..600000"},
        {"[worker]\nreconnect_max_ms = 600001\n", "t.toml:2: worker.reconnect_max_ms", "1..600000"},
        {"[worker]\nreconnect_min_ms = 200\nreconnect_max_ms = 100\n", "t.toml:3: worker.reconnect_min_ms",
         "must not exceed"},
        {"[worker]\nreconnect_min_ms = 6000\n", "t.toml:2: worker.reconnect_min_ms", "must not exceed"},
        {"[worker]\nname = \"\"\n", "t.toml:2: worker.name", "must not be empty"},
        {"[worker]\nmodel = true\n", "t.toml:2: worker.model", "got boolean"},
        {"[worker]\nservices = [\"chat\", \"a b\"]\n", "t.toml:2: worker.services[1]", "not a service name"},
        {"[client]\ntimeout_ms = 86400001\n", "t.toml:2: client.timeout_ms", "0..86400000"},
        {"log_level = \"verbose\"\n", "t.toml:1: log_level", "trace, debug, info, warn, error, off"},
        {"log_level = 1\n", "t.toml:1: log_level", "expected a string"},
        {"runtime_dir = \"relative/dir\"\n", "t.toml:1: runtime_dir", "absolute"},
        {"state_dir = \"\"\n", "t.toml:1: state_dir", "must not be empty"},
        {"broker = 3\n", "t.toml:1: broker", "expected a table, got integer"},
        {"[worker]\nmemory_budget = \"12Q\"\n", "t.toml:2: worker.memory_budget", "invalid memory size '12Q'"},
        {"[worker]\nmemory_budget = -5\n", "t.toml:2: worker.memory_budget", "must not be negative"},
        {"[worker]\nmemory_budget = \"100K\"\n", "t.toml:2: worker.memory_budget", "below the least useful value, 1 MiB"},
        {"[worker]\nmemory_budget = true\n", "t.toml:2: worker.memory_budget", "expected bytes or a size"},
        {"[worker]\nguard_interval_ms = 5\n", "t.toml:2: worker.guard_interval_ms", "10..600000"},
        {"[worker]\nguard_root = \"fake\"\n", "t.toml:2: worker.guard_root", "absolute"},
        {"[worker]\nguard_throttle_available = 1.5\n", "t.toml:2: worker.guard_throttle_available", "out of range 0..1"},
        {"[worker]\nguard_psi_some_throttle = \"20\"\n", "t.toml:2: worker.guard_psi_some_throttle", "expected a number, got string"},
        {"[worker]\nguard_critical_available = 0.2\n", "t.toml:2: worker.guard_critical_available", "must be below"},
        {"[worker]\nguard_budget_throttle = 0.8\nguard_budget_critical = 0.8\n", "t.toml:3: worker.guard_budget_critical",
         "must be above"},
        {"[worker]\nguard_recover_samples = 0\n", "t.toml:2: worker.guard_recover_samples", "1..1000"},
        {"[broker]\nqueue_bytes = 0\n", "t.toml:2: broker.queue_bytes", "must not be 0"},
        {"[broker]\nqueue_bytes = \"1K\"\n", "t.toml:2: broker.queue_bytes", "below the least useful value"},
    };
    for (const auto& bc : cases) {
        const std::string msg = parse_error(bc.text);
        EXPECT_NE(msg.find(bc.where), std::string::npos) << bc.text << "\n-> " << msg;
        EXPECT_NE(msg.find(bc.what), std::string::npos) << bc.text << "\n-> " << msg;
    }
    // Boundary values are accepted.
    const config ok = config_parse(
        "[broker]\nliveness = 100\nheartbeat_ms = 10\nmax_request_bytes = 1024\nno_worker_ms = 0\n"
        "services = [\"a_b-9\"]\n[worker]\nslots = 64\nthreads = 0\nctx_size = 131072\nbatch_size = 1\n"
        "reconnect_min_ms = 600000\nreconnect_max_ms = 600000\n[client]\ntimeout_ms = 86400000\n",
        "t.toml");
    EXPECT_EQ(ok.broker.liveness, 100u);
    EXPECT_EQ(ok.broker.max_request_bytes, 1024u);
    EXPECT_EQ(ok.worker.ctx_size, 131072u);
    EXPECT_EQ(ok.client.timeout_ms, 86400000u);
}

TEST(Config, SeveralErrorsAreReportedTogetherInLineOrder) {
    env_scope env;
    const std::string msg = parse_error("[worker]\nslots = 0\n[broker]\nliveness = 0\nheartbeat = 5\n");
    const size_t a = msg.find("t.toml:2: worker.slots");
    const size_t b = msg.find("t.toml:4: broker.liveness");
    const size_t c = msg.find("t.toml:5: unknown key 'broker.heartbeat'");
    ASSERT_NE(a, std::string::npos) << msg;
    ASSERT_NE(b, std::string::npos) << msg;
    ASSERT_NE(c, std::string::npos) << msg;
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
}

TEST(Config, UnknownKeysAreErrors) {
    env_scope env;
    std::string msg = parse_error("log_level = \"info\"\n\n[broker]\nliveness = 3\nheartbeat_msx = 5\n");
    EXPECT_NE(msg.find("t.toml:5: unknown key 'broker.heartbeat_msx' (did you mean 'broker.heartbeat_ms'?)"),
              std::string::npos)
        << msg;
    msg = parse_error("loglevel = \"info\"\n");
    EXPECT_NE(msg.find("t.toml:1: unknown key 'loglevel' (did you mean 'log_level'?)"), std::string::npos) << msg;
    msg = parse_error("\n[brokers]\nliveness = 3\n");
    EXPECT_NE(msg.find("t.toml:2: unknown key 'brokers'"), std::string::npos) << msg;
    msg = parse_error("[worker.extra]\nx = 1\n");
    EXPECT_NE(msg.find("unknown key 'worker.extra'"), std::string::npos) << msg;
    msg = parse_error("[client]\ncompletely_different = 1\n");
    EXPECT_NE(msg.find("t.toml:2: unknown key 'client.completely_different'"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("did you mean"), std::string::npos) << msg;
}

TEST(Config, SyntaxErrorsNameLineAndColumn) {
    env_scope env;
    std::string msg = parse_error("[broker]\nliveness = = 3\n");
    EXPECT_EQ(msg.rfind("t.toml:2:", 0), 0u) << msg;
    EXPECT_NE(msg.find("t.toml:2:12: "), std::string::npos) << msg;
    msg = parse_error("[broker]\nliveness = 3\nliveness = 4\n");  // duplicate key
    EXPECT_EQ(msg.rfind("t.toml:3:", 0), 0u) << msg;
    msg = parse_error("[broker\n");
    EXPECT_EQ(msg.rfind("t.toml:1:", 0), 0u) << msg;
}

TEST(Config, RoundTripThroughToml) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/tmp/rt");
    // Defaults round-trip.
    const config d = hearth::config_defaults();
    expect_equal(config_parse(hearth::config_to_toml(d), "printed.toml"), d);
    // So does a configuration where every value differs from its default, strings needing escapes
    // included.
    config c = config_parse(
        "log_level = \"debug\"\nruntime_dir = \"/srv/run dir\"\nstate_dir = \"/srv/st\"\n"
        "[broker]\nclient_endpoint = \"tcp://0.0.0.0:7000\"\nworker_endpoint = \"inproc://w\"\n"
        "queue_interactive = 5\nqueue_batch = 6\nmax_request_bytes = 2048\nheartbeat_ms = 250\nliveness = 7\n"
        "no_worker_ms = 0\nservices = [\"x\", \"y-z\"]\nqueue_bytes = \"64M\"\n"
        "[worker]\nbroker_endpoint = \"tcp://h:7001\"\nmodel = \"/m/\\\"q\\\"\\\\ \\u00e9\\t.gguf\"\n"
        "name = \"box #1\"\nservices = [\"command\"]\nslots = 9\nthreads = 3\nctx_size = 512\nbatch_size = 33\n"
        "reconnect_min_ms = 7\nreconnect_max_ms = 70\n"
        "memory_budget = \"1.5G\"\nguard_interval_ms = 250\nguard_root = \"/tmp/fake root\"\n"
        "guard_throttle_available = 0.3\nguard_critical_available = 0.1\nguard_psi_some_throttle = 33.5\n"
        "guard_psi_full_critical = 12\nguard_budget_throttle = 0.85\nguard_budget_critical = 1.05\nguard_recover_samples = 7\n"
        "[client]\nbroker_endpoint = \"ipc:///tmp/c.sock\"\ntimeout_ms = 1234\n",
        "in.toml");
    EXPECT_EQ(c.worker.model, "/m/\"q\"\\ \xc3\xa9\t.gguf");
    EXPECT_EQ(c.worker.memory_budget, 1536ull << 20);
    EXPECT_EQ(c.worker.guard_psi_full_critical, 12.0);
    EXPECT_EQ(c.worker.guard_root, "/tmp/fake root");
    const std::string text = hearth::config_to_toml(c);
    const config back = config_parse(text, "printed.toml");
    expect_equal(back, c);
    EXPECT_NE(back.broker.client_endpoint, d.broker.client_endpoint);
    // Printed once more, the text is stable.
    const std::string again = hearth::config_to_toml(back);
    EXPECT_EQ(again.substr(again.find('\n')), text.substr(text.find('\n')));
    // A source name with a newline must not break the printed file.
    c.source = "evil\nliveness = 1";
    expect_equal(config_parse(hearth::config_to_toml(c), "printed.toml"), c);
}

TEST(Config, FindOrder) {
    env_scope env;
    temp_dir tmp;
    env.set("HOME", tmp.sub("home"));
    const bool system_file = fs::exists("/etc/hearth/hearth.toml");
    if (!system_file) {
        EXPECT_FALSE(hearth::config_find("").has_value());
    }

    // ~/.config/hearth/hearth.toml when XDG_CONFIG_HOME is unset.
    write_file(tmp.sub("home/.config/hearth/hearth.toml"), "");
    EXPECT_EQ(hearth::config_find(""), tmp.sub("home/.config/hearth/hearth.toml"));
    // XDG_CONFIG_HOME replaces ~/.config; a missing file there falls through to /etc (or nothing).
    env.set("XDG_CONFIG_HOME", tmp.sub("xdg"));
    if (!system_file) {
        EXPECT_FALSE(hearth::config_find("").has_value());
    }
    write_file(tmp.sub("xdg/hearth/hearth.toml"), "");
    EXPECT_EQ(hearth::config_find(""), tmp.sub("xdg/hearth/hearth.toml"));
    // $HEARTH_CONFIG wins over XDG and must exist.
    env.set("HEARTH_CONFIG", tmp.sub("env.toml"));
    try {
        hearth::config_find("");
        ADD_FAILURE() << "missing $HEARTH_CONFIG file accepted";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(tmp.sub("env.toml")), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
    }
    write_file(tmp.sub("env.toml"), "");
    EXPECT_EQ(hearth::config_find(""), tmp.sub("env.toml"));
    // An explicit path wins over everything and must exist.
    EXPECT_THROW(hearth::config_find(tmp.sub("nope.toml")), config_error);
    write_file(tmp.sub("explicit.toml"), "");
    EXPECT_EQ(hearth::config_find(tmp.sub("explicit.toml")), tmp.sub("explicit.toml"));
    EXPECT_THROW(hearth::config_find(tmp.path()), config_error);  // a directory is not a file
}

TEST(Config, LoadReadsFileAndSetsSource) {
    env_scope env;
    temp_dir tmp;
    env.set("HOME", tmp.sub("home"));
    env.set("XDG_RUNTIME_DIR", tmp.sub("run"));
    const std::string path = tmp.sub("h.toml");
    write_file(path, "[broker]\nliveness = 9\n");
    config c = hearth::config_load(path);
    EXPECT_EQ(c.source, path);
    EXPECT_EQ(c.broker.liveness, 9u);
    EXPECT_EQ(c.broker.client_endpoint, std::string("ipc://").append(tmp.sub("run/hearth/client.sock")));
    // Errors from a loaded file carry its path.
    write_file(path, "\n[worker]\nslots = 99\n");
    try {
        hearth::config_load(path);
        ADD_FAILURE() << "bad file accepted";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find(path + ":3: worker.slots"), std::string::npos) << e.what();
    }
    // Found through $HEARTH_CONFIG.
    write_file(path, "log_level = \"warn\"\n");
    env.set("HEARTH_CONFIG", path);
    EXPECT_EQ(hearth::config_load("").log_level, "warn");
    env.unset("HEARTH_CONFIG");
    if (!fs::exists("/etc/hearth/hearth.toml")) {
        c = hearth::config_load("");
        EXPECT_EQ(c.source, "");
        EXPECT_EQ(c.broker.liveness, 3u);
    }
}

TEST(Config, PrepareEndpointCreatesPrivateDirectory) {
    temp_dir tmp;
    const std::string dir = tmp.sub("a/b");
    hearth::config_prepare_endpoint(std::string("ipc://").append(dir).append("/client.sock"));
    for (const std::string& d : {tmp.sub("a"), dir}) {
        struct stat st {};
        ASSERT_EQ(::stat(d.c_str(), &st), 0) << d;
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << d;
        EXPECT_EQ(st.st_mode & 0777, 0700u) << d;
    }
    // Again: an existing directory is fine.
    EXPECT_NO_THROW(hearth::config_prepare_endpoint(std::string("ipc://").append(dir).append("/worker.sock")));
    // Not ipc: nothing to do.
    EXPECT_NO_THROW(hearth::config_prepare_endpoint("tcp://127.0.0.1:5555"));
    EXPECT_NO_THROW(hearth::config_prepare_endpoint("inproc://x"));
    // A file where the directory should be.
    write_file(tmp.sub("file"), "x");
    try {
        hearth::config_prepare_endpoint(std::string("ipc://").append(tmp.sub("file/sub/s.sock")));
        ADD_FAILURE() << "file in the way accepted";
    } catch (const config_error& e) {
        EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos) << e.what();
    }
    // A socket path longer than sockaddr_un allows.
    EXPECT_THROW(hearth::config_prepare_endpoint(std::string("ipc://").append(tmp.sub(std::string(120, 'x')))),
                 config_error);
}

TEST(Config, ExampleFileParsesToDefaults) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/tmp/ex");
    const fs::path example = schema_dir() / "hearth.example.toml";
    ASSERT_TRUE(fs::exists(example)) << example;
    const config c = config_parse(read_text(example), example.string());
    // Every active line of the example is the built-in default, so the documented defaults match.
    expect_equal(c, hearth::config_defaults());
}

TEST(Config, ReferenceExampleParses) {
    env_scope env;
    const fs::path doc = schema_dir() / "config.md";
    ASSERT_TRUE(fs::exists(doc)) << doc;
    // The complete example in the reference is the ```toml block that contains [client].
    const std::string text = read_text(doc);
    size_t pos = 0;
    bool found = false;
    while ((pos = text.find("```toml\n", pos)) != std::string::npos) {
        const size_t start = pos + 8;
        const size_t end = text.find("```", start);
        ASSERT_NE(end, std::string::npos);
        const std::string block = text.substr(start, end - start);
        pos = end + 3;
        if (block.find("[client]") == std::string::npos) continue;
        found = true;
        EXPECT_NO_THROW(config_parse(block, "config.md")) << parse_error(block);
    }
    EXPECT_TRUE(found);
}

// --- issue 8: CURVE keys, the allowlist and quotas ----------------------------------------------

TEST(ConfigSecurity, DefaultsAreOffAndEmpty) {
    env_scope env;
    const config d = hearth::config_defaults();
    EXPECT_EQ(d.broker.curve_secret_key, "");
    EXPECT_EQ(d.broker.allowlist, "");
    EXPECT_FALSE(d.broker.insecure_lan);
    EXPECT_EQ(d.broker.quota, hearth::quota_limits{});
    EXPECT_EQ(d.broker.quota.requests_per_minute, 0u);
    EXPECT_EQ(d.broker.quota.tokens_per_day, 0u);
    EXPECT_EQ(d.broker.quota.max_queued, 0u);
    EXPECT_TRUE(d.broker.quota_roles.empty());
    EXPECT_TRUE(d.broker.quota_clients.empty());
    EXPECT_EQ(d.worker.curve_secret_key, "");
    EXPECT_EQ(d.worker.broker_public_key, "");
    EXPECT_EQ(d.client.curve_secret_key, "");
    EXPECT_EQ(d.client.broker_public_key, "");
}

TEST(ConfigSecurity, EveryNewKeyIsRead) {
    env_scope env;
    env.set("HOME", "/home/u");
    const config c = config_parse(
        "[broker]\ncurve_secret_key = \"broker\"\nallowlist = \"~/allow.txt\"\ninsecure_lan = true\n"
        // The role and client tables come before [broker.quota]'s own keys in the file on purpose:
        // they must still inherit them.
        "[broker.quota.role.admin]\nmax_queued = 500\n"
        "[broker.quota.client.kitchen-pi]\nrequests_per_minute = 2\ntokens_per_day = 0\n"
        "[broker.quota.client.local]\n"
        "[broker.quota]\nrequests_per_minute = 60\ntokens_per_day = 5000000000\nmax_queued = 20\n"
        "[broker.quota.role.worker]\nrequests_per_minute = 1\ntokens_per_day = 2\nmax_queued = 3\n"
        "[worker]\ncurve_secret_key = \"/etc/hearth/keys/w1.key\"\nbroker_public_key = \"broker\"\n"
        "[client]\ncurve_secret_key = \"~/k/me.key\"\nbroker_public_key = \"L5TskFIZ7}jl9$@NAdjXU44^1W]UD9fLr1V/sZQ5\"\n",
        "t.toml");
    EXPECT_EQ(c.broker.curve_secret_key, "broker");  // a key name stays a name (resolved later)
    EXPECT_EQ(c.broker.allowlist, "/home/u/allow.txt");
    EXPECT_TRUE(c.broker.insecure_lan);
    EXPECT_EQ(c.broker.quota, (hearth::quota_limits{60, 5000000000ull, 20}));
    ASSERT_EQ(c.broker.quota_roles.size(), 2u);
    EXPECT_EQ(c.broker.quota_roles.at("admin"), (hearth::quota_limits{60, 5000000000ull, 500}));
    EXPECT_EQ(c.broker.quota_roles.at("worker"), (hearth::quota_limits{1, 2, 3}));
    ASSERT_EQ(c.broker.quota_clients.size(), 2u);
    EXPECT_EQ(c.broker.quota_clients.at("kitchen-pi"), (hearth::quota_limits{2, 0, 20}));
    EXPECT_EQ(c.broker.quota_clients.at("local"), c.broker.quota);  // an empty table inherits all
    EXPECT_EQ(c.worker.curve_secret_key, "/etc/hearth/keys/w1.key");
    EXPECT_EQ(c.worker.broker_public_key, "broker");
    EXPECT_EQ(c.client.curve_secret_key, "/home/u/k/me.key");
    EXPECT_EQ(c.client.broker_public_key, "L5TskFIZ7}jl9$@NAdjXU44^1W]UD9fLr1V/sZQ5");
    // Neither file is read while parsing: they do not exist here and that is fine.
    EXPECT_FALSE(fs::exists(c.broker.allowlist));
}

TEST(ConfigSecurity, BadValuesNameKeyAndLine) {
    env_scope env;
    const std::map<std::string, std::string> cases = {
        {"[broker]\ninsecure_lan = \"yes\"\n", "t.toml:2: broker.insecure_lan: expected true or false, got string"},
        {"[broker]\ninsecure_lan = 1\n", "t.toml:2: broker.insecure_lan: expected true or false, got integer"},
        {"[broker]\nallowlist = 5\n", "t.toml:2: broker.allowlist: expected a string, got integer"},
        {"[broker]\nallowlist = \"\"\n", "t.toml:2: broker.allowlist: must not be empty"},
        {"[broker]\ncurve_secret_key = true\nallowlist = \"a\"\n", "t.toml:2: broker.curve_secret_key: expected a string, got boolean"},
        {"[broker]\ncurve_secret_key = \"broker\"\n",
         "t.toml:2: broker.curve_secret_key: needs broker.allowlist too (the keys that may connect, schema/allowlist.md)"},
        {"[broker]\nquota = 5\n", "t.toml:2: broker.quota: expected a table, got integer"},
        {"[broker.quota]\nrequests_per_minute = -1\n", "t.toml:2: broker.quota.requests_per_minute: -1 is out of range 0..4294967295"},
        {"[broker.quota]\nmax_queued = 4294967296\n", "t.toml:2: broker.quota.max_queued: 4294967296 is out of range 0..4294967295"},
        {"[broker.quota]\ntokens_per_day = -5\n", "t.toml:2: broker.quota.tokens_per_day: -5 must not be negative"},
        {"[broker.quota]\ntokens_per_day = 1.5\n", "t.toml:2: broker.quota.tokens_per_day: expected an integer, got float"},
        {"[broker.quota]\nmax_queued = \"10\"\n", "t.toml:2: broker.quota.max_queued: expected an integer, got string"},
        {"[broker.quota]\nrequests_per_minut = 1\n",
         "t.toml:2: unknown key 'broker.quota.requests_per_minut' (did you mean 'broker.quota.requests_per_minute'?)"},
        {"\n[broker.quota.role.root]\nmax_queued = 1\n", "t.toml:2: broker.quota.role: unknown role 'root' (client, worker or admin)"},
        {"[broker.quota]\nrole = 3\n", "t.toml:2: broker.quota.role: expected a table, got integer"},
        {"[broker.quota.role]\nadmin = 3\n", "t.toml:2: broker.quota.role.admin: expected a table, got integer"},
        {"[broker.quota.role.admin]\nmax_queue = 3\n",
         "t.toml:2: unknown key 'broker.quota.role.admin.max_queue' (did you mean 'broker.quota.role.admin.max_queued'?)"},
        {"[broker.quota.role.client]\ntokens_per_day = \"lots\"\n",
         "t.toml:2: broker.quota.role.client.tokens_per_day: expected an integer, got string"},
        {"[broker.quota.client.\"Kitchen Pi\"]\nmax_queued = 1\n",
         "t.toml:1: broker.quota.client: 'Kitchen Pi' is not a key name (1..64 of a-z, 0-9, '_', '-')"},
        {"[broker.quota.client.pi]\nmax_queued = -2\n", "t.toml:2: broker.quota.client.pi.max_queued: -2 is out of range 0..4294967295"},
        {"[broker.quota.client.pi]\nlimit = 2\n", "t.toml:2: unknown key 'broker.quota.client.pi.limit'"},
        {"[worker]\ncurve_secret_key = 1\n", "t.toml:2: worker.curve_secret_key: expected a string, got integer"},
        {"[worker]\nbroker_public_key = \"\"\n", "t.toml:2: worker.broker_public_key: must not be empty"},
        {"[worker]\nbroker_public_ky = \"x\"\n", "t.toml:2: unknown key 'worker.broker_public_ky' (did you mean 'worker.broker_public_key'?)"},
        {"[client]\ncurve_secret_key = []\n", "t.toml:2: client.curve_secret_key: expected a string, got array"},
        {"[client]\nbroker_public_key = 7\n", "t.toml:2: client.broker_public_key: expected a string, got integer"},
        {"[client]\ncurve_secret_kye = \"x\"\n", "t.toml:2: unknown key 'client.curve_secret_kye' (did you mean 'client.curve_secret_key'?)"},
    };
    for (const auto& [text, want] : cases) EXPECT_EQ(parse_error(text), want) << text;
    // With the allowlist, the key alone is fine; the allowlist alone is fine too (no CURVE yet).
    EXPECT_EQ(parse_error("[broker]\ncurve_secret_key = \"broker\"\nallowlist = \"/etc/hearth/allow.txt\"\n"), "");
    EXPECT_EQ(parse_error("[broker]\nallowlist = \"/etc/hearth/allow.txt\"\n"), "");
}

TEST(ConfigSecurity, RoundTripThroughToml) {
    env_scope env;
    env.set("XDG_RUNTIME_DIR", "/tmp/rt");
    const config c = config_parse(
        "[broker]\nclient_endpoint = \"tcp://0.0.0.0:5555\"\ncurve_secret_key = \"/etc/hearth/keys/broker.key\"\n"
        "allowlist = \"/etc/hearth/allow list.txt\"\ninsecure_lan = true\n"
        "[broker.quota]\nrequests_per_minute = 30\ntokens_per_day = 9000000000\nmax_queued = 7\n"
        "[broker.quota.role.client]\nmax_queued = 2\n[broker.quota.role.admin]\n"
        "[broker.quota.client.kitchen-pi]\ntokens_per_day = 1000\n[broker.quota.client.local]\nrequests_per_minute = 0\n"
        "[worker]\ncurve_secret_key = \"w1\"\nbroker_public_key = \"broker\"\n"
        "[client]\ncurve_secret_key = \"me\"\nbroker_public_key = \"L5TskFIZ7}jl9$@NAdjXU44^1W]UD9fLr1V/sZQ5\"\n",
        "in.toml");
    const std::string text = hearth::config_to_toml(c);
    const config back = config_parse(text, "printed.toml");
    expect_equal(back, c);
    ASSERT_EQ(back.broker.quota_clients.size(), 2u);
    EXPECT_EQ(back.broker.quota_clients.at("kitchen-pi").tokens_per_day, 1000u);
    EXPECT_EQ(back.broker.quota_clients.at("kitchen-pi").requests_per_minute, 30u);
    EXPECT_EQ(back.broker.quota_roles.at("client").max_queued, 2u);
    EXPECT_NE(text.find("[broker.quota.client.kitchen-pi]"), std::string::npos) << text;
    EXPECT_NE(text.find("insecure_lan = true"), std::string::npos) << text;
    const std::string again = hearth::config_to_toml(back);
    EXPECT_EQ(again.substr(again.find('\n')), text.substr(text.find('\n')));
    // Defaults print no key files and round-trip with no CURVE.
    const config d = hearth::config_defaults();
    const std::string dt = hearth::config_to_toml(d);
    EXPECT_EQ(dt.find("curve_secret_key"), std::string::npos) << dt;
    expect_equal(config_parse(dt, "printed.toml"), d);
}

TEST(ConfigSecurity, QuotaForPrefersClientThenRoleThenDefault) {
    hearth::broker_config b;
    b.quota = {10, 100, 1};
    b.quota_roles["admin"] = {20, 200, 2};
    b.quota_clients["anna"] = {30, 300, 3};
    EXPECT_EQ(hearth::quota_for(b, "anna", "admin"), (hearth::quota_limits{30, 300, 3}));   // client entry wins
    EXPECT_EQ(hearth::quota_for(b, "anna", "client"), (hearth::quota_limits{30, 300, 3}));
    EXPECT_EQ(hearth::quota_for(b, "bob", "admin"), (hearth::quota_limits{20, 200, 2}));    // else the role's
    EXPECT_EQ(hearth::quota_for(b, "bob", "client"), (hearth::quota_limits{10, 100, 1}));   // else [broker.quota]
    EXPECT_EQ(hearth::quota_for(b, "local", ""), (hearth::quota_limits{10, 100, 1}));
    EXPECT_EQ(hearth::quota_for(hearth::broker_config{}, "anna", "admin"), hearth::quota_limits{});
}

TEST(ConfigSecurity, OddClientNameIsPrintedAsValidToml) {
    // A name the reader would refuse, set by a program: the printed table name is quoted, so the
    // text still parses as TOML and the name check (not the TOML parser) rejects it.
    env_scope env;
    config odd = hearth::config_defaults();
    odd.broker.quota_clients["Odd Name"] = hearth::quota_limits{1, 2, 3};
    const std::string text = hearth::config_to_toml(odd);
    EXPECT_NE(text.find("[broker.quota.client.\"Odd Name\"]"), std::string::npos) << text;
    EXPECT_NE(parse_error(text).find("broker.quota.client: 'Odd Name' is not a key name"), std::string::npos)
        << parse_error(text);
}

TEST(ConfigSecurity, EndpointIsLocal) {
    const std::map<std::string, bool> table = {
        {"ipc:///run/hearth/client.sock", true},
        {"ipc://@abstract", true},
        {"inproc://broker", true},
        {"tcp://127.0.0.1:5555", true},
        {"tcp://127.1.2.3:5555", true},
        {"tcp://127.0.0.1", true},
        {"tcp://localhost:5555", true},
        {"tcp://LocalHost:5555", true},
        {"tcp://[::1]:5555", true},
        {"tcp://[::1]", true},
        {"tcp://::1:5555", true},
        {"tcp://[::ffff:127.0.0.1]:5555", true},
        {"tcp://127.0.0.1:0;127.0.0.1:5555", true},
        {"tcp://*:5555", false},
        {"tcp://0.0.0.0:5555", false},
        {"tcp://192.168.1.2:5555", false},
        {"tcp://128.0.0.1:5555", false},
        {"tcp://127.0.0.1.evil.example:5555", false},
        {"tcp://localhost.lan:5555", false},
        {"tcp://eth0:5555", false},
        {"tcp://[::]:5555", false},
        {"tcp://[fe80::1]:5555", false},
        {"tcp://[::1:5555", false},
        {"tcp://:5555", false},
        {"tcp://", false},
        {"tcp://192.168.1.2:0;127.0.0.1:5555", false},
        {"tcp://127.0.0.1:0;192.168.1.2:5555", false},
        {"pgm://eth0;239.192.1.1:5555", false},
        {"epgm://eth0;239.192.1.1:5555", false},
        {"udp://127.0.0.1:5555", false},
        {"ws://127.0.0.1:5555", false},
        {"", false},
        {"127.0.0.1:5555", false},
    };
    for (const auto& [ep, local] : table) EXPECT_EQ(hearth::endpoint_is_local(ep), local) << ep;
}
