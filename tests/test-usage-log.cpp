// The broker's usage log with real processes: one row per request whatever its end, and no row
// lost for a FINAL that was delivered, even when the broker is killed with SIGKILL; and the
// writer's WAL checkpoints happening beside it, not inside its commits.
#include "bus-harness.h"
#include "test-util.h"
#include "usage-db.h"
#include "usage-log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

using hearth::test::bus_fixture;
using hearth::test::raw_client;
using hearth::test::request_make;
namespace wire = hearth::wire;

namespace {

std::map<std::string, hearth::usage_row> rows_by_id(const std::string& db_path) {
    hearth::usage_db db(db_path, false);
    std::map<std::string, hearth::usage_row> out;
    for (auto& r : db.rows(0, INT64_MAX)) out[r.request_id] = r;
    return out;
}

}  // namespace

TEST(usage_log, one_row_per_request_for_every_ending) {
    const std::string model = hearth::test::model_path("synth-llama-spm-f32.gguf");
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    bus.broker_start();
    bus.worker_start("w1", model, {"--slots", "1"});
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    raw_client c(bus.client_endpoint());

    auto ok = c.call(request_make("ok", "Once upon a time", 8));
    ASSERT_TRUE(ok.final);
    wire::request unknown = request_make("unknown", "hi", 4);
    unknown.service = "teleport";
    auto u = c.call(unknown, 5000);
    ASSERT_TRUE(u.error);
    c.send(wire::command::request, wire::encode(request_make("long", "Once upon a time", 480)));
    wire::request late = request_make("late", "hi", 4);
    late.deadline_ms = 20;
    c.send(wire::command::request, wire::encode(late));
    c.send(wire::command::request, wire::encode(request_make("gone", "hi", 4)));
    c.send(wire::command::cancel, wire::encode(wire::cancel{"gone", ""}));
    EXPECT_EQ(c.wait("late", 10000).error->code, wire::error_code::timeout);
    EXPECT_EQ(c.wait("gone", 10000).error->code, wire::error_code::cancelled);
    ASSERT_TRUE(c.wait("long", 20000).final);
    // Stop the broker cleanly so everything is committed, then read the file.
    EXPECT_EQ(bus.broker().stop(), 0) << bus.logs();
    auto rows = rows_by_id(bus.dir() + "/state/usage.db");
    ASSERT_EQ(rows.size(), 5u);
    const auto& r = rows.at("ok");
    EXPECT_EQ(r.status, "ok");
    EXPECT_EQ(r.client, "local");
    EXPECT_EQ(r.service, "complete");
    EXPECT_EQ(r.priority, "interactive");
    EXPECT_EQ(r.worker, "w1");
    EXPECT_EQ(r.model, "synth-llama-spm-f32");
    EXPECT_EQ(r.completion_tokens, 8);
    EXPECT_EQ(r.prompt_tokens, ok.final->use.prompt_tokens);
    EXPECT_GT(r.received_us, 1700000000000000);  // a wall-clock time (after 2023)
    EXPECT_LE(r.received_us, r.started_us);
    EXPECT_LE(r.started_us, r.first_token_us);
    EXPECT_LE(r.first_token_us, r.finished_us);
    EXPECT_EQ(rows.at("unknown").status, "unknown_service");
    EXPECT_EQ(rows.at("late").status, "timeout");
    EXPECT_EQ(rows.at("gone").status, "cancelled");
    EXPECT_EQ(rows.at("long").status, "ok");
    hearth::usage_db db(bus.dir() + "/state/usage.db", false);
    EXPECT_TRUE(db.verify().ok) << db.verify().problem;
}

// Every request whose FINAL reached its client has its row, although the broker is killed
// with SIGKILL while clients keep sending.
TEST(usage_log, sigkill_loses_no_row_of_a_delivered_final) {
    const std::string model = hearth::test::model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    bus_fixture bus;
    bus.broker_start();
    bus.worker_start("w1", model);
    bus.worker_start("w2", model);
    ASSERT_TRUE(bus.wait_workers(2)) << bus.logs();
    const int n_clients = 4;
    std::vector<std::set<std::string>> delivered(n_clients);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < n_clients; ++i) {
        threads.emplace_back([&, i] {
            raw_client c(bus.client_endpoint());
            for (int k = 0; !stop.load(); ++k) {
                std::string id = "c";
                id.append(std::to_string(i)).append("-").append(std::to_string(k));
                auto o = c.call(request_make(id, "Once upon a time", 4), 2000);
                if (o.final) delivered[i].insert(id);
                else if (!o.error) break;  // the broker is gone
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    bus.broker_kill();
    stop = true;
    for (auto& t : threads) t.join();
    auto rows = rows_by_id(bus.dir() + "/state/usage.db");
    size_t total = 0;
    for (const auto& set : delivered) {
        total += set.size();
        for (const auto& id : set) EXPECT_TRUE(rows.count(id)) << "no row for delivered " << id;
    }
    EXPECT_GT(total, 20u) << "too few requests to mean anything";
    hearth::usage_db db(bus.dir() + "/state/usage.db", false);
    auto v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
}

// The writer never checkpoints inside a commit: the reader thread copies the WAL into the database
// beside it. Without that (automatic checkpoints off and nobody else checkpointing) the rows would
// stay in the -wal file and the database file would not grow while the log is open.
TEST(usage_log, wal_is_checkpointed_in_the_background) {
    std::string templ = (std::filesystem::temp_directory_path() / "hearth-usage-ckpt-XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    const std::string dir = templ;
    const std::string path = dir + "/usage.db";
    {
        zmq::context_t zctx(1);
        hearth::usage_log log(path, zctx);
        for (int i = 1; i <= 3000; ++i) {
            hearth::usage_row r;
            r.request_id = std::to_string(i);
            r.client = "local";
            r.service = "complete";
            r.status = "ok";
            r.finished_us = i;
            log.submit(std::move(r), static_cast<uint64_t>(i));
        }
        size_t committed = 0;
        for (int spins = 0; committed < 3000 && spins < 500; ++spins) {
            zmq::pollitem_t item{log.notify_socket().handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(20));
            committed += log.drain().committed.size();
        }
        ASSERT_EQ(committed, 3000u);
        bool grown = false;
        for (int i = 0; i < 50 && !grown; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            grown = std::filesystem::file_size(path) > 200 * 1024;
        }
        EXPECT_TRUE(grown) << "database file is " << std::filesystem::file_size(path) << " bytes with 3000 rows committed";
    }
    hearth::usage_db db(path, false);
    EXPECT_EQ(db.rows(0, INT64_MAX).size(), 3000u);
    EXPECT_TRUE(db.verify().ok);
    std::filesystem::remove_all(dir);
}
