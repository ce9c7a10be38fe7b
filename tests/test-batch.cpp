// Durable batch jobs through the real bus: hearth-broker, hearth-worker and the `hearth batch`
// commands as child processes, the usage database read back with SQLite. The central test kills
// the broker with SIGKILL twice (right after a submit was acknowledged, and in the middle of the
// run) and checks that every job finishes with exactly one result and one usage row, and that
// the results are the texts the same requests give on their own.
#include "batch-store.h"
#include "bus-harness.h"
#include "protocol-batch.h"
#include "test-util.h"
#include "usage-db.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <thread>

using hearth::test::bus_fixture;
using hearth::test::command_result;
using hearth::test::command_run;
using hearth::test::raw_client;
using hearth::test::request_make;
namespace wire = hearth::wire;
using nlohmann::json;

namespace {

const char* k_model = "stories260K-f32.gguf";
const std::vector<std::string> k_prompts = {"Once upon a time", "The cat", "Lily was", "One day, a little",
                                            "Tom and Sue", "The sun"};

std::string hearth_bin() { return hearth::test::binary_dir() + "/clients/hearth"; }

command_result hearth_run(const bus_fixture& bus, std::vector<std::string> args, const std::string& input = "",
                          int timeout_ms = 60000) {
    args.insert(args.begin(), hearth_bin());
    args.push_back("--config");
    args.push_back(bus.config_path());
    return command_run(args, input, timeout_ms);
}

std::string file_write(const bus_fixture& bus, const std::string& name, const std::string& text) {
    const std::string path = bus.dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
}

// n jobs over the prompts above, greedy, `tokens` each; ids on even lines only (the others get
// their line number).
std::string jobs_jsonl(size_t n, int tokens) {
    std::string out;
    for (size_t i = 0; i < n; ++i) {
        json j = {{"prompt", k_prompts[i % k_prompts.size()]}, {"max_tokens", tokens}, {"temperature", 0}};
        if (i % 2 == 0) j["id"] = "job-" + std::to_string(i);
        out += j.dump() + "\n";
    }
    return out;
}

std::string expected_id(size_t i) { return i % 2 == 0 ? "job-" + std::to_string(i) : std::to_string(i + 1); }

// Status through the wire, straight from a raw client (nullopt: no answer).
std::optional<wire::batch_reply> batch_status(raw_client& c, const std::string& batch, int timeout_ms = 3000) {
    wire::batch_call call;
    call.id = "st-" + std::to_string(std::rand());
    call.op = wire::batch_op::status;
    call.batch = batch;
    c.send(wire::command::batch, wire::encode(call));
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < until) {
        auto m = c.recv(200);
        if (!m || m->cmd != wire::command::batch) continue;
        auto r = wire::decode_batch_reply(m->body);
        if (r.id == call.id) return r;
    }
    return std::nullopt;
}

// The greedy texts of each prompt at `tokens`, asked one by one as interactive requests.
std::map<std::string, std::string> reference_texts(raw_client& c, int tokens) {
    std::map<std::string, std::string> out;
    for (size_t i = 0; i < k_prompts.size(); ++i) {
        auto o = c.call(request_make("ref-" + std::to_string(i), k_prompts[i], tokens));
        EXPECT_TRUE(o.final) << (o.error ? o.error->message : "no reply");
        if (o.final) out[k_prompts[i]] = o.final->text;
    }
    return out;
}

std::string db_path(const bus_fixture& bus) { return bus.dir() + "/state/usage.db"; }

// Usage rows of one batch, by request id ("<batch>/<job id>").
std::vector<hearth::usage_row> batch_rows(const bus_fixture& bus, const std::string& batch) {
    hearth::usage_db db(db_path(bus), false);
    std::vector<hearth::usage_row> out;
    for (auto& r : db.rows(0, INT64_MAX))
        if (r.request_id.rfind(batch + "/", 0) == 0) out.push_back(std::move(r));
    return out;
}

std::vector<json> jsonl_parse(const std::string& text) {
    std::vector<json> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        if (nl > pos) out.push_back(json::parse(text.substr(pos, nl - pos)));
        pos = nl + 1;
    }
    return out;
}

}  // namespace

// submit -> wait -> results through the CLI; the results are the texts of the same requests
// asked alone, in submission order, and each job left one usage row.
TEST(batch, submit_wait_results_through_the_cli) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    bus.broker_start();
    bus.worker_start("w1", model);
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    // The minimal line too: a prompt alone (service complete, defaults from the flags).
    const std::string file = file_write(bus, "jobs.jsonl", jobs_jsonl(12, 16) + "{\"prompt\":\"The sun\"}\n");
    auto sub = hearth_run(bus, {"batch", "submit", file, "-n", "16", "--temp", "0"});
    ASSERT_EQ(sub.status, 0) << sub.err << bus.logs();
    ASSERT_EQ(sub.out.size(), 17u) << sub.out;  // the id alone
    const std::string id = sub.out.substr(0, 16);
    EXPECT_TRUE(wire::batch_id_valid(id)) << id;

    auto wait = hearth_run(bus, {"batch", "wait", id, "--interval", "100ms"});
    EXPECT_EQ(wait.status, 0) << wait.out << wait.err;
    EXPECT_NE(wait.out.find("13/13"), std::string::npos) << wait.out;

    auto st = hearth_run(bus, {"batch", "status", id, "--json"});
    ASSERT_EQ(st.status, 0) << st.err;
    auto sj = json::parse(st.out);
    EXPECT_EQ(sj["total"], 13);
    EXPECT_EQ(sj["done"], 13);
    EXPECT_EQ(sj["queued"], 0);

    raw_client c(bus.client_endpoint());
    const auto ref = reference_texts(c, 16);
    auto res = hearth_run(bus, {"batch", "results", id});
    ASSERT_EQ(res.status, 0) << res.err;
    auto lines = jsonl_parse(res.out);
    ASSERT_EQ(lines.size(), 13u) << res.out;
    for (size_t i = 0; i < 12; ++i) {
        EXPECT_EQ(lines[i]["id"], expected_id(i));
        EXPECT_EQ(lines[i]["status"], "done");
        EXPECT_EQ(lines[i]["text"], ref.at(k_prompts[i % k_prompts.size()])) << "job " << i;
    }
    EXPECT_EQ(lines[12]["id"], "13");
    EXPECT_EQ(lines[12]["text"], ref.at("The sun"));

    auto rows = batch_rows(bus, id);
    ASSERT_EQ(rows.size(), 13u);
    std::set<std::string> ids;
    for (const auto& r : rows) {
        ids.insert(r.request_id);
        EXPECT_EQ(r.status, "ok");
        EXPECT_EQ(r.priority, "batch");
        EXPECT_EQ(r.client, "local");
        EXPECT_EQ(r.completion_tokens, 16) << r.request_id;
        EXPECT_EQ(r.worker, "w1");
    }
    EXPECT_EQ(ids.size(), 13u);
    EXPECT_TRUE(hearth::usage_db(db_path(bus), false).verify().ok);
}

// A file with bad lines is refused with their line numbers and nothing is stored; so is one the
// broker refuses (a service it does not serve).
TEST(batch, rejected_files_store_nothing) {
    bus_fixture bus;
    bus.broker_start();
    raw_client c(bus.client_endpoint());
    ASSERT_TRUE(c.status(5000));
    const std::string bad = file_write(bus, "bad.jsonl",
                                       "{\"prompt\":\"a\"}\n"
                                       "\n"
                                       "{\"prompt\":\"b\",\n"
                                       "{\"prompt\":\"c\"}\n"
                                       "{\"prompt\":\"d\",\"temperature\":-1}\n");
    auto r = hearth_run(bus, {"batch", "submit", bad});
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find("bad.jsonl:3"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bad.jsonl:5"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("bad.jsonl:1:"), std::string::npos) << r.err;

    const std::string svc = file_write(bus, "svc.jsonl", "{\"prompt\":\"a\"}\n{\"prompt\":\"b\",\"service\":\"nosuch\"}\n");
    auto s = hearth_run(bus, {"batch", "submit", svc});
    EXPECT_EQ(s.status, 3) << s.err;
    EXPECT_NE(s.err.find("svc.jsonl:2"), std::string::npos) << s.err;
    EXPECT_NE(s.err.find("nosuch"), std::string::npos) << s.err;

    auto unknown = hearth_run(bus, {"batch", "status", "0123456789abcdef"});
    EXPECT_EQ(unknown.status, 3) << unknown.err;
    EXPECT_NE(unknown.err.find("no batch"), std::string::npos) << unknown.err;

    bus.broker().stop();
    hearth::usage_db db(db_path(bus), false);
    hearth::batch_store store(db);
    EXPECT_TRUE(store.unfinished().empty());
    EXPECT_TRUE(db.rows(0, INT64_MAX).empty());
}

// Exactly once across two SIGKILLs of the broker: one right after the submit was acknowledged,
// one in the middle of the run. A `hearth batch wait` started before the second kill rides it out.
TEST(batch, broker_killed_twice_every_job_finishes_once) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    bus.broker_start();
    bus.worker_start("w1", model);
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    const size_t n = 60;
    const int tokens = 64;
    const std::string file = file_write(bus, "jobs.jsonl", jobs_jsonl(n, tokens));
    auto sub = hearth_run(bus, {"batch", "submit", file});
    ASSERT_EQ(sub.status, 0) << sub.err << bus.logs();
    const std::string id = sub.out.substr(0, 16);

    // Kill 1: acknowledged means stored, whatever ran or not.
    bus.broker_kill();
    bus.broker_start();
    ASSERT_TRUE(bus.wait_workers(1, 15000)) << bus.logs();
    raw_client c(bus.client_endpoint());
    std::optional<wire::batch_reply> st = batch_status(c, id);
    ASSERT_TRUE(st) << bus.logs();
    EXPECT_EQ(st->total, n);
    EXPECT_NE(bus.logs().find("unfinished batch job(s) queued again"), std::string::npos);

    // Kill 2: in the middle of the run.
    command_result waited;
    std::thread waiter;
    bool killed_mid = false;
    for (int i = 0; i < 2000; ++i) {
        st = batch_status(c, id);
        ASSERT_TRUE(st) << bus.logs();
        if (st->done >= 5 && !waiter.joinable()) {
            waiter = std::thread([&] { waited = hearth_run(bus, {"batch", "wait", id, "--interval", "100ms"}, "", 90000); });
            std::this_thread::sleep_for(std::chrono::milliseconds(150));
            st = batch_status(c, id);
            ASSERT_TRUE(st);
            if (st->queued > 5) {
                bus.broker_kill();
                killed_mid = true;
            }
            break;
        }
        if (st->queued == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(waiter.joinable()) << "the batch never got going" << bus.logs();
    EXPECT_TRUE(killed_mid) << "the batch finished before the second kill (the model is too fast for this test)";
    if (killed_mid) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        bus.broker_start();
    }
    waiter.join();
    EXPECT_EQ(waited.status, 0) << waited.out << waited.err << bus.logs();

    st = batch_status(c, id, 10000);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->done, n);
    EXPECT_EQ(st->queued, 0u);
    EXPECT_EQ(st->failed, 0u);

    const auto ref = reference_texts(c, tokens);
    auto res = hearth_run(bus, {"batch", "results", id});
    ASSERT_EQ(res.status, 0) << res.err;
    auto lines = jsonl_parse(res.out);
    ASSERT_EQ(lines.size(), n);
    for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(lines[i]["id"], expected_id(i));
        EXPECT_EQ(lines[i]["status"], "done");
        EXPECT_EQ(lines[i]["text"], ref.at(k_prompts[i % k_prompts.size()])) << "job " << i;
    }
    // One usage row per job, all ok: a job cut off by a kill left no row and no result, and ran
    // again; a committed one never ran twice.
    auto rows = batch_rows(bus, id);
    std::map<std::string, int> per_job;
    for (const auto& r : rows) {
        EXPECT_EQ(r.status, "ok") << r.request_id;
        ++per_job[r.request_id];
    }
    EXPECT_EQ(rows.size(), n);
    EXPECT_EQ(per_job.size(), n);
    for (const auto& [rid, count] : per_job) EXPECT_EQ(count, 1) << rid;
    EXPECT_TRUE(hearth::usage_db(db_path(bus), false).verify().ok);
}

// Interactive requests go before queued batch jobs: with a long batch running on one worker, a
// request waits at most for a slot, not for the batch.
TEST(batch, interactive_requests_go_first_and_cancel_stops_the_rest) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    bus.broker_start();
    bus.worker_start("w1", model);
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    const size_t n = 200;
    const std::string file = file_write(bus, "jobs.jsonl", jobs_jsonl(n, 100));
    auto sub = hearth_run(bus, {"batch", "submit", file});
    ASSERT_EQ(sub.status, 0) << sub.err;
    const std::string id = sub.out.substr(0, 16);
    raw_client c(bus.client_endpoint());
    for (int i = 0; i < 500; ++i) {
        auto st = batch_status(c, id);
        ASSERT_TRUE(st);
        if (st->done >= 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto o = c.call(request_make("now", "Once upon a time", 8));
    ASSERT_TRUE(o.final) << (o.error ? o.error->message : "no reply");
    ASSERT_TRUE(o.accepted);
    EXPECT_LE(o.accepted->position, 1u);
    auto st = batch_status(c, id);
    ASSERT_TRUE(st);
    EXPECT_GT(st->queued, 10u) << "the interactive request waited for the batch";
    auto s = c.status();
    ASSERT_TRUE(s);
    for (const auto& svc : s->services)
        if (svc.name == "complete") {
            EXPECT_GT(svc.batch, 0u);
        }

    auto can = hearth_run(bus, {"batch", "cancel", id});
    EXPECT_EQ(can.status, 0) << can.err;
    st = batch_status(c, id);
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->batch_cancelled);
    EXPECT_EQ(st->queued, 0u);
    EXPECT_GT(st->cancelled, 0u);
    EXPECT_EQ(st->done + st->failed + st->cancelled, n);
    auto wait = hearth_run(bus, {"batch", "wait", id});
    EXPECT_EQ(wait.status, 1) << wait.out << wait.err;
    // The worker is free again at once: nothing of the batch keeps running.
    bool idle = false;
    for (int i = 0; i < 100 && !idle; ++i) {
        auto ss = c.status();
        idle = ss && !ss->workers.empty() && ss->workers[0].busy == 0;
        if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_TRUE(idle);
    auto res = hearth_run(bus, {"batch", "results", id});
    auto lines = jsonl_parse(res.out);
    ASSERT_EQ(lines.size(), n);
    EXPECT_EQ(lines.back()["status"], "cancelled");
}

// Batch jobs wait for a worker however long it takes (no no_worker failure), then run.
TEST(batch, jobs_wait_for_a_worker) {
    const std::string model = hearth::test::model_path(k_model);
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;  // no_worker_ms = 3000: an interactive request would have failed by then
    bus.broker_start();
    raw_client c(bus.client_endpoint());
    ASSERT_TRUE(c.status(5000));
    const std::string file = file_write(bus, "jobs.jsonl", jobs_jsonl(3, 8));
    auto sub = hearth_run(bus, {"batch", "submit", file});
    ASSERT_EQ(sub.status, 0) << sub.err;
    const std::string id = sub.out.substr(0, 16);
    std::this_thread::sleep_for(std::chrono::milliseconds(3300));
    auto st = batch_status(c, id);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->queued, 3u);
    EXPECT_EQ(st->failed, 0u);
    bus.worker_start("w1", model);
    auto wait = hearth_run(bus, {"batch", "wait", id, "--interval", "100ms"});
    EXPECT_EQ(wait.status, 0) << wait.out << wait.err;
}
