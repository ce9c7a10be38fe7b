// The systemd units (systemd/*.service.in, configured by CMake) pass `systemd-analyze verify` and
// keep the directives deployment relies on; hearth-broker and hearth-worker speak sd_notify
// (READY, WATCHDOG, STOPPING) to a NOTIFY_SOCKET the test binds.
#include "bus-harness.h"
#include "config.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using hearth::test::binary_dir;
using hearth::test::child_process;
using hearth::test::command_run;
using steady = std::chrono::steady_clock;

// Units as `cmake --install` ships them (ExecStart= names the install bindir).
std::string installed_unit(const std::string& name) { return binary_dir() + "/systemd/" + name; }
// The same units naming the programs in this build tree, which `systemd-analyze verify` needs.
std::string build_tree_unit(const std::string& name) { return binary_dir() + "/systemd/test/" + name; }

// A program on PATH (or in /usr/bin, /bin), as an absolute path; "" when absent.
std::string program_find(const std::string& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path.append(":/usr/bin:/bin");
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        if (dir.empty()) continue;
        std::string p = dir;
        p.append("/").append(name);
        if (access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// Directive name -> every value it is given, from every section (comments and blanks skipped).
std::multimap<std::string, std::string> unit_read(const std::string& path) {
    std::multimap<std::string, std::string> out;
    std::ifstream f(path);
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        out.emplace(line.substr(0, eq), line.substr(eq + 1));
    }
    return out;
}

// The single value of `key`; fails the test when it is missing or given twice.
std::string unit_value(const std::multimap<std::string, std::string>& u, const std::string& key) {
    EXPECT_EQ(u.count(key), 1u) << key;
    auto it = u.find(key);
    return it == u.end() ? std::string() : it->second;
}

bool unit_has(const std::multimap<std::string, std::string>& u, const std::string& key, const std::string& value) {
    auto [lo, hi] = u.equal_range(key);
    for (auto it = lo; it != hi; ++it) {
        std::stringstream ss(it->second);
        std::string word;
        while (ss >> word)
            if (word == value) return true;
    }
    return false;
}

// "30s", "10min", "2min 30s" (the forms the units use) in seconds; -1 when unreadable.
double seconds_of(const std::string& v) {
    std::stringstream ss(v);
    std::string part;
    double total = 0;
    while (ss >> part) {
        size_t used = 0;
        double n = 0;
        try {
            n = std::stod(part, &used);
        } catch (const std::exception&) {
            return -1;
        }
        const std::string unit = part.substr(used);
        if (unit == "s" || unit.empty()) total += n;
        else if (unit == "min") total += n * 60;
        else if (unit == "ms") total += n / 1000;
        else return -1;
    }
    return total;
}

// A unix datagram socket standing in for systemd's notification socket.
class notify_socket {
public:
    notify_socket() {
        std::string tmpl = (fs::temp_directory_path() / "hearth-notify-XXXXXX").string();
        dir_ = mkdtemp(tmpl.data());
        path_ = dir_ + "/notify.sock";
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            ADD_FAILURE() << "cannot bind " << path_ << ": " << std::strerror(errno);
    }
    ~notify_socket() {
        if (fd_ >= 0) close(fd_);
        fs::remove_all(dir_);
    }
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;

    const std::string& path() const { return path_; }
    // The next datagram, or "" after timeout_ms.
    std::string next(int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0) return "";
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
    // Datagrams until one contains `what` (returned) or timeout_ms passes ("").
    std::string wait_for(const std::string& what, int timeout_ms) {
        const auto until = steady::now() + std::chrono::milliseconds(timeout_ms);
        while (steady::now() < until) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
            std::string m = next(static_cast<int>(std::max<long>(left, 1)));
            seen_.append(m).append("|");
            if (m.find(what) != std::string::npos) return m;
        }
        return "";
    }
    // How many datagrams containing `what` arrive within ms.
    int count_for(const std::string& what, int ms) {
        int n = 0;
        const auto until = steady::now() + std::chrono::milliseconds(ms);
        while (steady::now() < until) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now()).count();
            std::string m = next(static_cast<int>(std::max<long>(left, 1)));
            seen_.append(m).append("|");
            if (m.find(what) != std::string::npos) ++n;
        }
        return n;
    }
    const std::string& seen() const { return seen_; }  // everything received, for failure messages

private:
    std::string dir_;   // private directory holding the socket
    std::string path_;  // the socket's path (NOTIFY_SOCKET)
    int fd_ = -1;       // the bound socket
    std::string seen_;  // every datagram received, '|'-separated
};

// Sets the notification environment for children started while it lives (they inherit it).
class notify_env {
public:
    notify_env(const std::string& socket, const char* watchdog_usec) {
        setenv("NOTIFY_SOCKET", socket.c_str(), 1);
        if (watchdog_usec) setenv("WATCHDOG_USEC", watchdog_usec, 1);
        else unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
    }
    ~notify_env() {
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
    }
    notify_env(const notify_env&) = delete;
    notify_env& operator=(const notify_env&) = delete;
};

std::string file_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST(systemd_units, verify_passes_without_warnings) {
    const std::string analyze = program_find("systemd-analyze");
    if (analyze.empty()) {
        if (hearth::test::in_ci()) FAIL() << "systemd-analyze is missing (Debian package systemd; scripts/install-deps.sh)";
        GTEST_SKIP() << "systemd-analyze is missing (Debian package systemd)";
    }
    const std::string broker = build_tree_unit("hearth-broker.service");
    const std::string worker = build_tree_unit("hearth-worker@.service");
    ASSERT_TRUE(fs::exists(broker)) << broker << " (configured by systemd/CMakeLists.txt)";
    ASSERT_TRUE(fs::exists(worker)) << worker;
    ASSERT_EQ(access((binary_dir() + "/broker/hearth-broker").c_str(), X_OK), 0) << "build hearth-broker first";
    ASSERT_EQ(access((binary_dir() + "/workers/hearth-worker").c_str(), X_OK), 0) << "build hearth-worker first";

    // Unknown keys and bad values only warn (exit 0): any stderr output is a failure too.
    auto r = command_run({analyze, "verify", "--man=no", broker, worker});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "") << "systemd-analyze verify warned";

    // The check has teeth: a broken copy is reported.
    std::string tmpl = (fs::temp_directory_path() / "hearth-units-XXXXXX").string();
    const std::string dir = mkdtemp(tmpl.data());
    std::string text = file_text(broker);
    const auto at = text.find("Type=notify");
    ASSERT_NE(at, std::string::npos);
    text.replace(at, 11, "Type=notifyy\nWatchdogSecs=30s");
    std::ofstream(dir + "/hearth-broker.service") << text;
    auto bad = command_run({analyze, "verify", "--man=no", dir + "/hearth-broker.service"});
    fs::remove_all(dir);
    EXPECT_NE(bad.err, "") << "a broken unit passed verify silently";
}

TEST(systemd_units, cmake_install_puts_everything_in_fhs_places) {
    // Staged with DESTDIR (as a package build does), so nothing outside the temporary directory
    // is touched; the layout below it is the one `sudo cmake --install` makes.
    std::string tmpl = (fs::temp_directory_path() / "hearth-install-XXXXXX").string();
    const std::string stage = mkdtemp(tmpl.data());
    ::setenv("DESTDIR", stage.c_str(), 1);
    auto r = command_run({HEARTH_CMAKE_COMMAND, "--install", binary_dir()}, "", 120000);
    ::unsetenv("DESTDIR");
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const std::string root = stage + HEARTH_INSTALL_PREFIX;
    for (const char* bin : {"hearth-broker", "hearth-worker", "hearth"}) {
        const std::string p = root + "/bin/" + bin;
        EXPECT_EQ(access(p.c_str(), X_OK), 0) << p << " not installed\n" << r.out;
    }
    for (const char* f : {"lib/systemd/system/hearth-broker.service", "lib/systemd/system/hearth-worker@.service",
                          "lib/sysusers.d/hearth.conf", "share/doc/hearth/examples/hearth.example.toml",
                          "share/doc/hearth/examples/demo-home.whitelist.toml", "share/doc/hearth/README.md"})
        EXPECT_TRUE(fs::is_regular_file(root + "/" + f)) << f << " not installed\n" << r.out;
    // The installed broker unit runs the installed program, and nothing is written to /etc.
    const auto b = unit_read(root + "/lib/systemd/system/hearth-broker.service");
    EXPECT_EQ(unit_value(b, "ExecStart"), std::string(HEARTH_INSTALL_PREFIX) + "/bin/hearth-broker --config /etc/hearth/hearth.toml");
    EXPECT_FALSE(fs::exists(stage + "/etc")) << "cmake --install must not create or overwrite /etc/hearth";
    fs::remove_all(stage);
}

TEST(systemd_units, build_tree_copies_run_the_built_programs) {
    const auto b = unit_read(build_tree_unit("hearth-broker.service"));
    const auto w = unit_read(build_tree_unit("hearth-worker@.service"));
    EXPECT_EQ(unit_value(b, "ExecStart"), binary_dir() + "/broker/hearth-broker --config /etc/hearth/hearth.toml");
    EXPECT_EQ(unit_value(w, "ExecStart"), binary_dir() + "/workers/hearth-worker --config /etc/hearth/worker-%i.toml");
}

TEST(systemd_units, broker_unit_has_the_required_directives) {
    const std::string path = installed_unit("hearth-broker.service");
    ASSERT_TRUE(fs::exists(path)) << path;
    const auto u = unit_read(path);
    const std::string exec = unit_value(u, "ExecStart");
    ASSERT_FALSE(exec.empty());
    EXPECT_EQ(exec.front(), '/') << exec;
    EXPECT_NE(exec.find("/hearth-broker --config /etc/hearth/hearth.toml"), std::string::npos) << exec;
    EXPECT_EQ(exec.find('@'), std::string::npos) << "unsubstituted @VAR@: " << exec;
    EXPECT_EQ(unit_value(u, "Type"), "notify");
    EXPECT_EQ(unit_value(u, "Restart"), "on-failure");
    EXPECT_TRUE(unit_has(u, "RestartPreventExitStatus", "2"));
    EXPECT_EQ(unit_value(u, "User"), "hearth");
    EXPECT_EQ(unit_value(u, "RuntimeDirectory"), "hearth");
    EXPECT_EQ(unit_value(u, "StateDirectory"), "hearth");
    EXPECT_EQ(unit_value(u, "ProtectSystem"), "strict");
    EXPECT_EQ(unit_value(u, "ProtectHome"), "yes");
    EXPECT_EQ(unit_value(u, "NoNewPrivileges"), "yes");
    EXPECT_EQ(unit_value(u, "PrivateTmp"), "yes");
    EXPECT_EQ(unit_value(u, "WantedBy"), "multi-user.target");
    // The loop pings from its heartbeat tick at most every WatchdogSec/2: the default heartbeat
    // must fit many times into that.
    const double watchdog = seconds_of(unit_value(u, "WatchdogSec"));
    EXPECT_GE(watchdog * 1000, 10.0 * hearth::broker_config{}.heartbeat_ms) << "WatchdogSec too close to heartbeat_ms";
    EXPECT_GE(seconds_of(unit_value(u, "TimeoutStartSec")), 10);
}

TEST(systemd_units, worker_template_has_the_required_directives) {
    const std::string path = installed_unit("hearth-worker@.service");
    ASSERT_TRUE(fs::exists(path)) << path;
    const auto u = unit_read(path);
    const auto broker = unit_read(installed_unit("hearth-broker.service"));
    const std::string exec = unit_value(u, "ExecStart");
    ASSERT_FALSE(exec.empty());
    EXPECT_EQ(exec.front(), '/') << exec;
    EXPECT_NE(exec.find("/hearth-worker --config /etc/hearth/worker-%i.toml"), std::string::npos) << exec;
    EXPECT_EQ(unit_value(u, "Type"), "notify");
    EXPECT_EQ(unit_value(u, "Restart"), "on-failure");
    EXPECT_TRUE(unit_has(u, "RestartPreventExitStatus", "2"));
    EXPECT_TRUE(unit_has(u, "RestartPreventExitStatus", "3")) << "exit 3 (model does not fit) must not restart";
    EXPECT_TRUE(unit_has(u, "After", "hearth-broker.service"));
    EXPECT_TRUE(unit_has(u, "Wants", "hearth-broker.service"));
    EXPECT_EQ(unit_value(u, "ProtectSystem"), "strict");
    EXPECT_EQ(unit_value(u, "ProtectHome"), "yes");
    EXPECT_EQ(unit_value(u, "NoNewPrivileges"), "yes");
    EXPECT_EQ(unit_value(u, "PrivateTmp"), "yes");
    EXPECT_FALSE(unit_value(u, "MemoryMax").empty());
    EXPECT_FALSE(unit_value(u, "MemoryHigh").empty());
    EXPECT_GE(seconds_of(unit_value(u, "WatchdogSec")) * 1000, 10.0 * hearth::broker_config{}.heartbeat_ms);
    EXPECT_GE(seconds_of(unit_value(u, "TimeoutStartSec")), 120) << "too short for a model load";
    // Same user as the broker, so the broker's socket accepts the worker.
    EXPECT_EQ(unit_value(u, "User"), unit_value(broker, "User"));
    // The worker finds the broker's sockets without owning (and removing on stop) its directory.
    EXPECT_EQ(u.count("RuntimeDirectory"), 0u) << "stopping a worker would remove the broker's sockets";
    EXPECT_EQ(u.count("ReadWritePaths"), 0u) << "a bind mount of /run/hearth goes stale when the broker restarts";
    EXPECT_TRUE(unit_has(u, "Environment", "RUNTIME_DIRECTORY=/run/" + unit_value(broker, "RuntimeDirectory")));
}

TEST(systemd_notify, broker_sends_ready_watchdog_and_stopping) {
    notify_socket ns;
    hearth::test::bus_fixture bus;  // heartbeat_ms = 100
    {
        notify_env env(ns.path(), "400000");  // 0.4 s: pings at most every 0.2 s
        bus.broker_start();
    }
    const std::string ready = ns.wait_for("READY=1", 5000);
    ASSERT_NE(ready, "") << ns.seen() << "\n" << bus.logs();
    EXPECT_NE(ready.find("STATUS="), std::string::npos) << ready;
    EXPECT_NE(ready.find(bus.client_endpoint()), std::string::npos) << ready;
    // 1.5 s: about 7 pings; a ping per 100 ms tick (no rate limit) would be about 15.
    const int pings = ns.count_for("WATCHDOG=1", 1500);
    EXPECT_GE(pings, 3) << ns.seen();
    EXPECT_LE(pings, 10) << "not rate-limited to half the watchdog interval: " << ns.seen();
    EXPECT_EQ(bus.broker().stop(SIGTERM), 0) << bus.logs();
    EXPECT_NE(ns.wait_for("STOPPING=1", 2000), "") << ns.seen();
}

TEST(systemd_notify, broker_without_watchdog_sends_no_pings) {
    notify_socket ns;
    hearth::test::bus_fixture bus;
    {
        notify_env env(ns.path(), nullptr);
        bus.broker_start();
    }
    ASSERT_NE(ns.wait_for("READY=1", 5000), "") << ns.seen() << "\n" << bus.logs();
    EXPECT_EQ(ns.count_for("WATCHDOG=1", 600), 0) << ns.seen();
}

TEST(systemd_notify, worker_sends_ready_after_loading_and_pings) {
    const std::string model = hearth::test::model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    notify_socket ns;
    hearth::test::bus_fixture bus;
    bus.broker_start();
    {
        notify_env env(ns.path(), "400000");
        bus.worker_start("w1", model);
    }
    EXPECT_NE(ns.wait_for("STATUS=loading", 5000), "") << ns.seen();
    const std::string ready = ns.wait_for("READY=1", 10000);
    ASSERT_NE(ready, "") << ns.seen() << "\n" << bus.logs();
    EXPECT_NE(ready.find("STATUS="), std::string::npos) << ready;
    EXPECT_GE(ns.count_for("WATCHDOG=1", 1000), 2) << ns.seen();
    EXPECT_EQ(bus.worker(0).stop(SIGTERM), 0) << bus.logs();
    EXPECT_NE(ns.wait_for("STOPPING=1", 2000), "") << ns.seen();
}
