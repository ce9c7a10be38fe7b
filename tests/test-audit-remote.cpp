// `hearth audit` through the broker (AUDIT): a real hearth-broker serving a usage database that
// holds more rows than one page, and the `hearth` binary asking it with --remote. The remote
// summary, CSV and verify must print what the same commands print from the file itself.
#include "bus-harness.h"
#include "test-util.h"
#include "usage-db.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <algorithm>
#include <filesystem>

using hearth::test::bus_fixture;
using hearth::test::command_result;
using hearth::test::command_run;
using nlohmann::json;

namespace {

constexpr int64_t kSec = 1000000;

command_result hearth_run(const bus_fixture& bus, std::vector<std::string> args) {
    args.insert(args.begin(), hearth::test::binary_dir() + "/clients/hearth");
    args.push_back("--config");
    args.push_back(bus.config_path());
    return command_run(args, "", 60000);
}

// 4,500 rows over the last three days: more than two pages of rows (2,000 each).
void rows_fill(const std::string& path) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    hearth::usage_db db(path);
    const int64_t now =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::vector<hearth::usage_row> rows;
    const char* clients[] = {"alice", "bob", "carol"};
    const char* services[] = {"complete", "chat", "command"};
    for (int i = 0; i < 4500; ++i) {
        hearth::usage_row r;
        r.request_id = std::to_string(i);
        r.client = clients[i % 3];
        r.service = services[(i / 3) % 3];
        r.priority = i % 5 ? "interactive" : "batch";
        r.model = "m.gguf";
        r.worker = "w1";
        r.finished_us = now - 3 * 86400 * kSec + static_cast<int64_t>(i) * 50 * kSec;
        r.received_us = r.finished_us - (1000 + (i * 7919) % 90000) * 1000;
        r.prompt_tokens = i % 97;
        r.completion_tokens = i % 31;
        r.status = i % 11 ? "ok" : "timeout";
        rows.push_back(std::move(r));
    }
    db.append(rows);
}

}  // namespace

TEST(audit_remote, broker_answers_what_the_file_says) {
    bus_fixture bus;
    const std::string db = bus.dir() + "/state/usage.db";
    rows_fill(db);
    bus.broker_start();
    // The same configuration names the same file, so --db reads it directly.
    auto local = hearth_run(bus, {"audit", "--json", "--since", "10d", "--db", db});
    auto remote = hearth_run(bus, {"audit", "--json", "--since", "10d", "--remote"});
    ASSERT_EQ(local.status, 0) << local.err;
    ASSERT_EQ(remote.status, 0) << remote.err << bus.logs();
    json l = json::parse(local.out), r = json::parse(remote.out);
    EXPECT_EQ(r["db"], db);
    // The ranges are "10 days back from now", a moment apart.
    for (json* j : {&l, &r})
        for (const char* k : {"from", "from_us"}) j->erase(k);
    EXPECT_EQ(l, r);
    EXPECT_EQ(r["totals"]["requests"], 4500);

    auto lcsv = hearth_run(bus, {"audit", "--csv", "--since", "2020-01-01", "--db", db});
    auto rcsv = hearth_run(bus, {"audit", "--csv", "--since", "2020-01-01", "--remote"});
    ASSERT_EQ(rcsv.status, 0) << rcsv.err;
    EXPECT_EQ(std::count(rcsv.out.begin(), rcsv.out.end(), '\n'), 4501);
    EXPECT_EQ(lcsv.out, rcsv.out);

    auto v = hearth_run(bus, {"audit", "verify", "--remote"});
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("chain intact: 4500 rows"), std::string::npos) << v.out;

    // Prune is for the file's holder only.
    auto p = hearth_run(bus, {"audit", "--remote", "prune", "--older-than", "1d"});
    EXPECT_EQ(p.status, 2) << p.err;

    // --endpoint names a broker: it is asked without --remote.
    auto auto_remote = command_run({hearth::test::binary_dir() + "/clients/hearth", "audit", "verify", "--config", bus.config_path(),
                                    "--endpoint", bus.client_endpoint()},
                                   "", 30000);
    EXPECT_EQ(auto_remote.status, 0) << auto_remote.err;
    EXPECT_NE(auto_remote.out.find("chain intact: 4500 rows"), std::string::npos) << auto_remote.out;
}

TEST(audit_remote, no_broker_and_no_file_is_a_clear_failure) {
    bus_fixture bus;  // nothing started, no database
    auto r = hearth_run(bus, {"audit", "verify", "--broker-timeout", "500"});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_FALSE(r.err.empty());
}
