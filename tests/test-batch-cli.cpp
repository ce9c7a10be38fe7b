// `hearth batch` (clients/cli-batch.cpp) against a fake broker holding one batch: what each
// subcommand sends, prints and exits with, including wait through a silent broker and SIGINT.
#include "fake-broker.h"
#include "protocol-batch.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace wire = hearth::wire;
using hearth::test::fake_broker;
using hearth::test::hearth_bin;
using hearth::test::quote;
using hearth::test::run;
using hearth::test::temp_dir;
using nlohmann::json;
using wire::command;

wire::error_reply error_make(const std::string& id, wire::error_code c, const std::string& msg) {
    wire::error_reply e;
    e.id = id;
    e.code = c;
    e.message = msg;
    return e;
}

const std::string batch_id = "0123456789abcdef";

// A broker holding one batch (batch_id): submit records the jobs; status answers from a script of
// counts, one entry per poll (the last repeats), leaving the polls in `dropped` unanswered as a
// restarting broker would; results hands out five jobs in pages of two.
struct batch_script {
    std::mutex mu;                               // the broker thread writes, the test reads
    std::vector<wire::request> jobs;             // the last submit's
    std::vector<wire::batch_reply> polls;        // status replies in order
    size_t polls_seen = 0;                       // status calls so far
    std::vector<size_t> dropped;                 // 0-based status calls not answered
    std::vector<uint32_t> froms;                 // results calls' from
    std::string submit_error;                    // non-empty: submit is refused with this bad_request
};

wire::batch_reply counts_make(uint32_t total, uint32_t queued, uint32_t running, uint32_t done, uint32_t failed, uint32_t cancelled) {
    wire::batch_reply r;
    r.op = wire::batch_op::status;
    r.batch = batch_id;
    r.total = total;
    r.queued = queued;
    r.running = running;
    r.done = done;
    r.failed = failed;
    r.cancelled = cancelled;
    r.created_us = 1700000000000000;
    return r;
}

fake_broker::handler batch_broker(std::shared_ptr<batch_script> s) {
    return [s](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c != command::batch) return;
        const wire::batch_call call = wire::decode_batch_call(body);
        std::lock_guard<std::mutex> lk(s->mu);
        if (call.op != wire::batch_op::submit && call.batch != batch_id)
            return b.send(rid, command::error, wire::encode(error_make(call.id, wire::error_code::bad_request, "no batch '" + call.batch + "'")));
        wire::batch_reply r = counts_make(5, 0, 0, 0, 0, 0);
        switch (call.op) {
        case wire::batch_op::submit:
            if (!s->submit_error.empty())
                return b.send(rid, command::error, wire::encode(error_make(call.id, wire::error_code::bad_request, s->submit_error)));
            s->jobs = call.jobs;
            r.total = r.queued = static_cast<uint32_t>(call.jobs.size());
            break;
        case wire::batch_op::status: {
            const size_t n = s->polls_seen++;
            if (std::find(s->dropped.begin(), s->dropped.end(), n) != s->dropped.end()) return;
            if (!s->polls.empty()) r = s->polls[std::min(n, s->polls.size() - 1)];
            break;
        }
        case wire::batch_op::results: {
            s->froms.push_back(call.from);
            const std::vector<wire::batch_job> all = {
                {0, "a", "done", "alpha", "", "", 1},
                {1, "b", "failed", "half", "worker_lost", "worker died", 2},
                {2, "c", "done", std::string("bad \xff utf8"), "", "", 3},
                {3, "d", "cancelled", "", "", "", 4},
                {4, "e", "queued", "", "", "", 0},
            };
            for (uint32_t i = call.from; i < all.size() && i < call.from + 2; ++i) r.jobs.push_back(all[i]);
            r.next = call.from + 2 < all.size() ? int64_t{call.from} + 2 : -1;
            break;
        }
        case wire::batch_op::cancel:
            r.stopped = 3;
            r.cancelled = 3;
            r.batch_cancelled = true;
            break;
        }
        r.id = call.id;
        r.op = call.op;
        b.send(rid, command::batch, wire::encode(r));
    };
}

std::string file_write(const std::string& name, const std::string& text) {
    const fs::path p = temp_dir() / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
}

TEST(hearth_cli, batch_submit_prints_the_id_and_applies_flag_defaults) {
    auto s = std::make_shared<batch_script>();
    fake_broker b(batch_broker(s));
    const std::string file = file_write("jobs.jsonl", "{\"prompt\":\"one\"}\n\n{\"id\":\"x\",\"prompt\":\"two\",\"max_tokens\":4,\"service\":\"complete\"}\n");
    const std::string ep = "--endpoint " + quote(b.endpoint) + " ";
    auto r = run(ep + "batch submit -n 9 --temp 0 -s 3 --service command " + quote(file));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, batch_id + "\n");
    EXPECT_EQ(r.err, "");
    {
        std::lock_guard<std::mutex> lk(s->mu);
        ASSERT_EQ(s->jobs.size(), 2u);
        EXPECT_EQ(s->jobs[0].id, "1");
        EXPECT_EQ(s->jobs[0].service, "command");
        EXPECT_EQ(s->jobs[0].max_tokens, 9);
        EXPECT_EQ(s->jobs[0].temperature, 0.0f);
        ASSERT_TRUE(s->jobs[0].seed.has_value());
        EXPECT_EQ(*s->jobs[0].seed, 3u);
        EXPECT_EQ(s->jobs[0].top_k, wire::request{}.top_k) << "flags not given keep the wire defaults";
        EXPECT_EQ(s->jobs[0].prio, wire::priority::batch);
        EXPECT_FALSE(s->jobs[0].stream);
        EXPECT_EQ(s->jobs[1].id, "x");
        EXPECT_EQ(s->jobs[1].service, "complete");
        EXPECT_EQ(s->jobs[1].max_tokens, 4);
    }
    r = run(ep + "--json -v batch submit -", "{\"prompt\":\"from stdin\"}\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["batch"], batch_id);
    EXPECT_EQ(j["total"], 1);
    EXPECT_NE(r.err.find("stored 1 jobs"), std::string::npos) << r.err;
}

TEST(hearth_cli, batch_submit_bad_file_sends_nothing) {
    auto s = std::make_shared<batch_script>();
    fake_broker b(batch_broker(s));
    const std::string file = file_write("bad.jsonl", "{\"prompt\":\"ok\"}\n{\"promt\":\"typo\"}\n{\"prompt\":\"x\",\"temperature\":-1}\n");
    const std::string ep = "--endpoint " + quote(b.endpoint) + " ";
    auto r = run(ep + "batch submit " + quote(file));
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, file + ":2: unknown field 'promt' (did you mean 'prompt'?)\n" + file +
                         ":3: field 'temperature': must be in [0, 100], got -1\nhearth: 2 errors in " + file + "; nothing was sent\n");
    r = run(ep + "batch submit " + quote(file + ".missing"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
    r = run(ep + "batch submit -", "");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("<stdin>: no jobs"), std::string::npos) << r.err;
    EXPECT_EQ(b.count(command::batch), 0u);
}

TEST(hearth_cli, batch_submit_refusal_names_the_line) {
    auto s = std::make_shared<batch_script>();
    s->submit_error = "jobs[1]: field 'prompt': longer than this broker takes";
    fake_broker b(batch_broker(s));
    const std::string file = file_write("refused.jsonl", "{\"prompt\":\"a\"}\n\n{\"prompt\":\"b\"}\n");
    auto r = run("--endpoint " + quote(b.endpoint) + " batch submit " + quote(file));
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "hearth: bad_request: " + file + ":3: field 'prompt': longer than this broker takes\n");
}

TEST(hearth_cli, batch_status_cancel_and_bad_ids) {
    auto s = std::make_shared<batch_script>();
    s->polls = {counts_make(40, 27, 2, 12, 1, 0)};
    fake_broker b(batch_broker(s));
    const std::string ep = "--endpoint " + quote(b.endpoint) + " ";
    auto r = run(ep + "batch status " + batch_id);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "batch " + batch_id + ": 12/40 done, 1 failed, 0 cancelled, 27 queued (2 running)\n");
    r = run(ep + "batch status --json " + batch_id);
    EXPECT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["batch"], batch_id);
    EXPECT_EQ(j["total"], 40);
    EXPECT_EQ(j["queued"], 27);
    EXPECT_EQ(j["running"], 2);
    EXPECT_EQ(j["done"], 12);
    EXPECT_EQ(j["failed"], 1);
    EXPECT_EQ(j["batch_cancelled"], false);
    EXPECT_EQ(j["created_us"], 1700000000000000);
    r = run(ep + "batch cancel " + batch_id);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "batch " + batch_id + " cancelled: 3 queued jobs stopped\n");
    r = run(ep + "--json batch cancel " + batch_id);
    EXPECT_EQ(r.status, 0) << r.err;
    j = json::parse(r.out);
    EXPECT_EQ(j["stopped"], 3);
    EXPECT_EQ(j["batch_cancelled"], true);
    r = run(ep + "batch status fedcba9876543210");
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(r.err, "hearth: bad_request: no batch 'fedcba9876543210'\n");
    const size_t calls = b.count(command::batch);
    for (const char* bad : {"batch status 123", "batch cancel 0123456789ABCDEF", "batch results ../etc", "batch wait", "batch", "batch frob x"}) {
        SCOPED_TRACE(bad);
        r = run(ep + bad);
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("hearth: ", 0), 0u) << r.err;
    }
    EXPECT_EQ(b.count(command::batch), calls) << "bad ids never reach the broker";
    r = run(ep + "batch status 0123456789abcdex");
    EXPECT_NE(r.err.find("bad batch id"), std::string::npos) << r.err;
}

TEST(hearth_cli, batch_wait_prints_changes_and_fails_when_jobs_failed) {
    auto s = std::make_shared<batch_script>();
    s->polls = {counts_make(3, 3, 0, 0, 0, 0), counts_make(3, 3, 0, 0, 0, 0), counts_make(3, 1, 1, 2, 0, 0), counts_make(3, 0, 0, 2, 1, 0)};
    fake_broker b(batch_broker(s));
    auto r = run("--endpoint " + quote(b.endpoint) + " batch wait --interval 20ms " + batch_id);
    EXPECT_EQ(r.status, 1) << r.err;
    const std::string p = "batch " + batch_id + ": ";
    EXPECT_EQ(r.out, p + "0/3 done, 0 failed, 0 cancelled, 3 queued (0 running)\n" + p + "2/3 done, 0 failed, 0 cancelled, 1 queued (1 running)\n" +
                         p + "2/3 done, 1 failed, 0 cancelled, 0 queued (0 running)\n" + p + "finished: 2/3 done, 1 failed, 0 cancelled\n");
    EXPECT_NE(r.err.find("1 of 3 jobs did not complete (1 failed, 0 cancelled)"), std::string::npos) << r.err;
    EXPECT_EQ(b.count(command::batch), 4u);
}

TEST(hearth_cli, batch_wait_survives_a_silent_broker) {
    auto s = std::make_shared<batch_script>();
    s->polls = {counts_make(2, 2, 1, 0, 0, 0), counts_make(2, 2, 1, 0, 0, 0), counts_make(2, 2, 1, 0, 0, 0), counts_make(2, 0, 0, 2, 0, 0)};
    s->dropped = {1, 2};
    fake_broker b(batch_broker(s));
    auto r = run("--endpoint " + quote(b.endpoint) + " --broker-timeout 500 batch wait --interval 10ms " + batch_id);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "batch " + batch_id + ": 0/2 done, 0 failed, 0 cancelled, 2 queued (1 running)\n" + "batch " + batch_id +
                         ": 2/2 done, 0 failed, 0 cancelled, 0 queued (0 running)\nbatch " + batch_id + ": all 2 jobs done\n");
    size_t notes = 0;
    for (size_t at = 0; (at = r.err.find("still waiting for batch", at)) != std::string::npos; ++at) ++notes;
    EXPECT_EQ(notes, 1u) << r.err;
    EXPECT_NE(r.err.find("hearth: transport: no answer from the broker"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the broker answers again"), std::string::npos) << r.err;
}

TEST(hearth_cli, batch_wait_gives_up_at_the_timeout) {
    auto s = std::make_shared<batch_script>();
    s->polls = {counts_make(2, 2, 1, 0, 0, 0)};
    fake_broker b(batch_broker(s));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run("--endpoint " + quote(b.endpoint) + " --timeout 400 batch wait --interval 50ms " + batch_id);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("hearth: timeout: batch " + batch_id + " not finished after 400 ms (2 jobs queued); it keeps running"), std::string::npos)
        << r.err;
    EXPECT_GE(secs, 0.35);
    EXPECT_LT(secs, 3.0);
    EXPECT_GE(b.count(command::batch), 3u);
}

TEST(hearth_cli, batch_results_pages_in_order) {
    auto s = std::make_shared<batch_script>();
    fake_broker b(batch_broker(s));
    auto r = run("--endpoint " + quote(b.endpoint) + " batch results " + batch_id);
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<json> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
    ASSERT_EQ(lines.size(), 5u) << r.out;
    EXPECT_EQ(lines[0], json({{"id", "a"}, {"status", "done"}, {"text", "alpha"}}));
    EXPECT_EQ(lines[1], json({{"id", "b"}, {"status", "failed"}, {"text", "half"}, {"error", "worker_lost"}, {"message", "worker died"}}));
    EXPECT_EQ(lines[2]["text"], "bad \xEF\xBF\xBD utf8") << "bad UTF-8 is replaced, never fatal";
    EXPECT_EQ(lines[3]["status"], "cancelled");
    EXPECT_FALSE(lines[3].contains("error"));
    EXPECT_EQ(lines[4]["id"], "e");
    std::lock_guard<std::mutex> lk(s->mu);
    EXPECT_EQ(s->froms, (std::vector<uint32_t>{0, 2, 4}));
}

TEST(hearth_cli, batch_wait_sigint_exits_130_and_leaves_the_batch) {
    auto s = std::make_shared<batch_script>();
    s->polls = {counts_make(2, 2, 1, 0, 0, 0)};
    fake_broker b(batch_broker(s));
    const fs::path err = temp_dir() / "batch-sigint.err";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const std::string bin = hearth_bin();
    std::vector<std::string> args = {bin, "--endpoint", b.endpoint, "batch", "wait", "--interval", "5s", batch_id};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_TRUE(b.wait_for(command::batch, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // now in its 5 s nap
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(pid, SIGINT);
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << WTERMSIG(st);
    EXPECT_EQ(WEXITSTATUS(st), 130);
    EXPECT_LT(secs, 2.0) << "SIGINT must not wait out the interval";
    EXPECT_NE(hearth::test::read_file_bytes(err).find("keeps running"), std::string::npos) << hearth::test::read_file_bytes(err);
    EXPECT_EQ(b.count(command::batch), 1u) << "no cancel: the batch is left alone";
    std::lock_guard<std::mutex> lk(s->mu);
    EXPECT_EQ(s->polls_seen, 1u);
}

}  // namespace
