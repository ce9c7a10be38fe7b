// The resource guard end to end, with real processes (issue 7): two workers whose memory readings
// come from directories this test writes (worker.guard_root), each with a real memory budget. The
// test pushes one past its budget and checks that the state reaches the broker, that the request it
// was running and every new one complete on the other worker, that a client whose request can only
// wait is told why, that the worker returns to service when its budget allows, and that every
// transition is in the usage database. The shared models are a few MiB, far too small to move a
// worker's real RSS past a budget on cue, hence the written readings; the budget, the guard, the
// heartbeat, the routing and the recovery are the real ones.
#include "bus-harness.h"
#include "test-util.h"
#include "usage-db.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace fs = std::filesystem;
using hearth::test::bus_fixture;
using hearth::test::raw_client;
using hearth::test::busy_worker;
using hearth::test::first_partial;
using hearth::test::request_make;
namespace wire = hearth::wire;

namespace {

constexpr uint64_t MiB = 1024 * 1024;
const char* k_slow_model = "synth-llama-spm-f32.gguf";  // long streams: a request is still running when pushed

// A directory standing in for "/" for one worker's guard: healthy system memory and no pressure,
// so that only the RSS written here against the worker's budget decides its state.
class fake_proc {
public:
    explicit fake_proc(const std::string& dir) : root_(dir) {
        write("proc/meminfo", "MemTotal:       16777216 kB\nMemFree:        12000000 kB\nMemAvailable:   12582912 kB\n");
        write("proc/pressure/memory",
              "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        write("proc/self/cgroup", "0::/hearth.slice\n");
        write("sys/fs/cgroup/hearth.slice/memory.current", "104857600\n");
        write("sys/fs/cgroup/hearth.slice/memory.max", "max\n");
        rss(100 * MiB);
    }
    const std::string& root() const { return root_; }
    // The worker's VmRSS as its guard will read it next.
    void psi_full(double pct) {
        write("proc/pressure/memory", "some avg10=" + std::to_string(pct + 10) + " avg60=0.00 avg300=0.00 total=0\nfull avg10=" +
                                          std::to_string(pct) + " avg60=0.00 avg300=0.00 total=0\n");
    }
    void rss(uint64_t bytes) {
        write("proc/self/status", "Name:\thearth-worker\nVmRSS:\t" + std::to_string(bytes / 1024) + " kB\n");
    }

private:
    // Written whole and renamed into place: the worker never reads half a file.
    void write(const std::string& rel, const std::string& text) {
        const fs::path p = fs::path(root_) / rel;
        fs::create_directories(p.parent_path());
        const fs::path tmp = p.string() + ".tmp";
        std::ofstream(tmp, std::ios::binary) << text;
        fs::rename(tmp, p);
    }
    std::string root_;  // the directory
};



// The worker's entry in STATUS once its guard reads `state` (nullopt on timeout).
std::optional<wire::worker_status> wait_guard(raw_client& c, const std::string& name, const std::string& state, int timeout_ms = 10000) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < until) {
        if (auto s = c.status(2000))
            for (const auto& w : s->workers)
                if (w.id == name && w.guard == state) return w;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
}

const wire::service_status* service_of(const wire::status_reply& s, const std::string& name) {
    for (const auto& sv : s.services)
        if (sv.name == name) return &sv;
    return nullptr;
}

// The broker and workers w1 and w2 on the slow model, each with `slots` slots, its guard's readings
// from r1 / r2 and a 512 MiB budget; false when they did not all come up.
bool start_guarded(bus_fixture& bus, const std::string& model, const fake_proc& r1, const fake_proc& r2, int slots = 1) {
    bus.broker_start();
    bus.worker_start("w1", model, {"--slots", std::to_string(slots), "--guard-root", r1.root(), "--memory-budget", "512M"});
    bus.worker_start("w2", model, {"--slots", std::to_string(slots), "--guard-root", r2.root(), "--memory-budget", "512M"});
    return bus.wait_workers(2);
}

}  // namespace

TEST(guard_bus, worker_past_its_budget_is_routed_around_and_returns_to_service) {
    const std::string model = hearth::test::model_path(k_slow_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus("", "guard_interval_ms = 50\nguard_recover_samples = 2\n");
    fake_proc r1(bus.dir() + "/root-w1"), r2(bus.dir() + "/root-w2");
    ASSERT_TRUE(start_guarded(bus, model, r1, r2)) << bus.logs();
    raw_client c(bus.client_endpoint());

    // The readings reach the broker with the state.
    auto w1 = wait_guard(c, "w1", "ok");
    ASSERT_TRUE(w1 && w1->memory) << bus.logs();
    EXPECT_EQ(w1->memory->rss, 100 * MiB);
    EXPECT_EQ(w1->memory->budget, 512 * MiB);
    EXPECT_EQ(w1->memory->mem_available, 12ull * 1024 * MiB);
    EXPECT_EQ(w1->memory->slots_now, 1);

    // A long request runs on one worker; the test pushes that worker past its budget.
    c.send(wire::command::request, wire::encode(request_make("long", "Once upon a time", 480)));
    const std::string before = first_partial(c, "long", 20000);
    ASSERT_NE(before, "<timeout>") << bus.logs();
    ASSERT_NE(before, "<ended>") << bus.logs();
    const std::string victim = busy_worker(c);
    ASSERT_FALSE(victim.empty());
    const std::string other = victim == "w1" ? "w2" : "w1";
    fake_proc& pushed = victim == "w1" ? r1 : r2;
    pushed.rss(600 * MiB);

    // Critical: what it ran goes back to the broker and completes on the other worker, with the
    // text already streamed kept (one stream, no repeats).
    auto o = c.wait("long", 60000);
    ASSERT_TRUE(o.final) << (o.error ? o.error->message : "no reply") << bus.logs();
    EXPECT_EQ(o.final->use.worker, other);
    EXPECT_EQ(before + o.streamed(), o.final->text);
    auto crit = wait_guard(c, victim, "critical");
    ASSERT_TRUE(crit && crit->memory) << bus.logs();
    EXPECT_EQ(crit->memory->rss, 600 * MiB);
    EXPECT_EQ(crit->memory->slots_now, 0);
    EXPECT_NE(crit->memory->reason.find("budget"), std::string::npos) << crit->memory->reason;
    {
        auto s = c.status();
        ASSERT_TRUE(s);
        const auto* sv = service_of(*s, "complete");
        ASSERT_NE(sv, nullptr);
        EXPECT_EQ(sv->critical, 1u);
    }
    // `hearth status` shows the state and the readings behind it.
    auto st = hearth::test::command_run({hearth::test::binary_dir() + "/clients/hearth", "--config", bus.config_path(), "status"});
    EXPECT_EQ(st.status, 0) << st.err;
    EXPECT_NE(st.out.find(victim + ": critical"), std::string::npos) << st.out;
    EXPECT_NE(st.out.find("RSS 600 MiB of budget 512 MiB (117%)"), std::string::npos) << st.out;
    EXPECT_NE(st.out.find("1 critical"), std::string::npos) << st.out;

    // New requests all go to the other worker, and complete.
    for (int i = 0; i < 4; ++i) {
        auto n = c.call(request_make("new" + std::to_string(i), "Once upon a time", 4));
        ASSERT_TRUE(n.final) << (n.error ? n.error->message : "no reply") << bus.logs();
        EXPECT_EQ(n.final->use.worker, other);
    }

    // With the other worker gone, a request can only wait: its client is told why.
    bus.worker(other == "w1" ? 0 : 1).kill_hard();
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    c.send(wire::command::request, wire::encode(request_make("held", "Once upon a time", 4)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    {
        auto s = c.status();
        ASSERT_TRUE(s);
        const auto* sv = service_of(*s, "complete");
        ASSERT_NE(sv, nullptr);
        EXPECT_EQ(sv->interactive, 1u) << "the request waits in the queue";
        EXPECT_NE(sv->note.find("critical"), std::string::npos) << sv->note;
    }
    // The budget allows again: the worker steps down to throttled, takes the waiting request (no
    // other worker can), then returns to ok.
    pushed.rss(100 * MiB);
    auto h = c.wait("held", 20000);
    ASSERT_TRUE(h.final) << (h.error ? h.error->message : "no reply") << bus.logs();
    EXPECT_EQ(h.final->use.worker, victim);
    ASSERT_GE(h.accepted_all.size(), 2u);
    EXPECT_NE(h.accepted_all[0].note.find("every worker serving 'complete' is critical"), std::string::npos)
        << h.accepted_all[0].note;
    EXPECT_EQ(h.accepted_all.back().note.find("critical"), std::string::npos) << "a fresh ACCEPTED says it changed";
    auto back = wait_guard(c, victim, "ok");
    ASSERT_TRUE(back) << bus.logs();
    EXPECT_EQ(back->memory->slots_now, 1);
    auto again = c.call(request_make("again", "Once upon a time", 4));
    ASSERT_TRUE(again.final) << bus.logs();
    EXPECT_EQ(again.final->use.worker, victim);

    // Every transition is a worker event in the usage database, in order.
    std::vector<std::string> seen;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < until) {
        seen.clear();
        hearth::usage_db db(bus.dir() + "/state/usage.db", false);
        for (const auto& e : db.events(0, INT64_MAX))
            if (e.worker == victim && e.event == "guard") seen.push_back(e.previous + ">" + e.state);
            else if (e.worker == other && e.event == "lost") seen.push_back("other lost");
        if (seen.size() >= 4) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"ok>critical", "other lost", "critical>throttled", "throttled>ok"}));
}

TEST(guard_bus, critical_by_pressure_lets_running_requests_that_fit_finish) {
    const std::string model = hearth::test::model_path(k_slow_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus("", "guard_interval_ms = 50\n");
    fake_proc r1(bus.dir() + "/root-w1"), r2(bus.dir() + "/root-w2");
    ASSERT_TRUE(start_guarded(bus, model, r1, r2)) << bus.logs();
    raw_client c(bus.client_endpoint());
    c.send(wire::command::request, wire::encode(request_make("long", "Once upon a time", 480)));
    ASSERT_NE(first_partial(c, "long", 20000), "<timeout>") << bus.logs();
    const std::string victim = busy_worker(c);
    ASSERT_FALSE(victim.empty());
    // The system thrashes (PSI full 15% > 10%) but the worker's budget has room for what the
    // request may still write: it finishes where it runs, while new work goes elsewhere.
    (victim == "w1" ? r1 : r2).psi_full(15);
    auto crit = wait_guard(c, victim, "critical");
    ASSERT_TRUE(crit && crit->memory) << bus.logs();
    EXPECT_NE(crit->memory->reason.find("PSI"), std::string::npos) << crit->memory->reason;
    auto n = c.call(request_make("new", "Once upon a time", 4));
    ASSERT_TRUE(n.final) << bus.logs();
    EXPECT_NE(n.final->use.worker, victim);
    auto o = c.wait("long", 60000);
    ASSERT_TRUE(o.final) << (o.error ? o.error->message : "no reply") << bus.logs();
    EXPECT_EQ(o.final->use.worker, victim);
}

TEST(guard_bus, throttled_worker_gets_work_only_when_no_other_can_take_it) {
    const std::string model = hearth::test::model_path(k_slow_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus("", "guard_interval_ms = 50\n");
    fake_proc r1(bus.dir() + "/root-w1"), r2(bus.dir() + "/root-w2");
    r1.rss(480 * MiB);  // 94% of its budget: throttled from the start
    ASSERT_TRUE(start_guarded(bus, model, r1, r2, 2)) << bus.logs();  // two slots: throttled runs one
    raw_client c(bus.client_endpoint());
    auto t = wait_guard(c, "w1", "throttled");
    ASSERT_TRUE(t && t->memory) << bus.logs();
    EXPECT_EQ(t->memory->slots_now, 1) << "throttled runs half its slots";
    ASSERT_TRUE(wait_guard(c, "w2", "ok"));
    // One at a time, requests go to the ok worker.
    for (int i = 0; i < 3; ++i) {
        auto n = c.call(request_make("n" + std::to_string(i), "Once upon a time", 4));
        ASSERT_TRUE(n.final) << bus.logs();
        EXPECT_EQ(n.final->use.worker, "w2");
    }
    // With w2's two slots busy, the next request goes to the throttled worker rather than wait.
    c.send(wire::command::request, wire::encode(request_make("busy1", "Once upon a time", 480)));
    c.send(wire::command::request, wire::encode(request_make("busy2", "Once upon a time", 480)));
    c.send(wire::command::request, wire::encode(request_make("spill", "Once upon a time", 4)));
    auto spill = c.wait("spill", 30000);
    ASSERT_TRUE(spill.final) << bus.logs();
    EXPECT_EQ(spill.final->use.worker, "w1");
    EXPECT_TRUE(c.wait("busy1", 60000).final);
    EXPECT_TRUE(c.wait("busy2", 60000).final);
}

TEST(guard_bus, model_too_large_for_the_budget_is_refused_at_load) {
    const std::string model = hearth::test::model_path(k_slow_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    // The real /proc: the 13 MiB model cannot fit a 1 MiB budget, whatever else the machine holds.
    auto r = hearth::test::command_run({hearth::test::binary_dir() + "/workers/hearth-worker", "--config", bus.config_path(), "-m",
                                        model, "--memory-budget", "1M"},
                                       "", 30000);
    EXPECT_EQ(r.status, 3) << r.err;
    EXPECT_NE(r.err.find("refusing to load"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("memory budget 1 MiB"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("model needs"), std::string::npos) << r.err;
    // A bad size is a usage error naming the text.
    auto bad = hearth::test::command_run({hearth::test::binary_dir() + "/workers/hearth-worker", "--config", bus.config_path(), "-m",
                                          model, "--memory-budget", "lots"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("'lots'"), std::string::npos) << bad.err;
}

TEST(guard_bus, broker_refuses_overloaded_past_its_queue_budget) {
    bus_fixture bus("queue_bytes = \"1M\"\n");
    bus.broker_start();
    raw_client c(bus.client_endpoint());
    ASSERT_TRUE(c.status(5000)) << bus.logs();
    // No worker: requests wait, and what they hold counts against the broker's budget.
    wire::request big = request_make("big1", std::string(600 * 1024, 'a'), 4);
    c.send(wire::command::request, wire::encode(big));
    auto m = c.recv(5000);
    ASSERT_TRUE(m && m->cmd == wire::command::accepted) << bus.logs();
    big.id = "big2";
    auto o = c.call(big, 5000);
    ASSERT_TRUE(o.error) << "expected overloaded";
    EXPECT_EQ(o.error->code, wire::error_code::overloaded);
    EXPECT_GT(o.error->retry_after_ms, 0u);
    EXPECT_NE(o.error->message.find("broker.queue_bytes"), std::string::npos) << o.error->message;
    // Small requests still fit; cancelling the big one frees its share.
    auto small = request_make("small", "hi", 4);
    c.send(wire::command::request, wire::encode(small));
    m = c.recv(5000);
    ASSERT_TRUE(m && m->cmd == wire::command::accepted);
    c.send(wire::command::cancel, wire::encode(wire::cancel{"big1", ""}));
    EXPECT_TRUE(c.wait("big1", 5000).error);
    big.id = "big3";
    c.send(wire::command::request, wire::encode(big));
    m = c.recv(5000);
    ASSERT_TRUE(m) << bus.logs();
    EXPECT_EQ(m->cmd, wire::command::accepted);
    // The refusal is in the usage log.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool logged = false;
    while (!logged && std::chrono::steady_clock::now() < until) {
        hearth::usage_db db(bus.dir() + "/state/usage.db", false);
        for (const auto& row : db.rows(0, INT64_MAX))
            if (row.request_id == "big2" && row.status == "overloaded") logged = true;
        if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(logged);
}
