// `hearth audit`, run as the built binary against a usage database written here with usage_db:
// summary numbers (--json), CSV export, chain verification (and tampering through SQLite),
// retention, and the exit codes for bad input and a missing database.
#include "bus-harness.h"
#include "test-util.h"
#include "usage-db.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace {

using hearth::usage_row;
using json = nlohmann::json;

constexpr int64_t sec = 1000000;
constexpr int64_t day = 86400 * sec;

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string day_of(int64_t us) {
    const std::time_t s = static_cast<std::time_t>(us / sec);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

class audit_test : public ::testing::Test {
protected:
    void SetUp() override {
        std::string templ = (std::filesystem::temp_directory_path() / "hearth-audit-XXXXXX").string();
        ASSERT_NE(mkdtemp(templ.data()), nullptr);
        dir_ = templ;
        db_ = dir_ + "/usage.db";
        // Three recent days at midday UTC (all in the past), plus rows 200 days old for prune.
        const int64_t now = now_us();
        base_ = (now - 3 * day) / day * day + 12 * 3600 * sec;
        int n = 0;
        auto add = [&](std::vector<usage_row>& v, int64_t finished, const std::string& client, const std::string& service, int in, int out,
                       const std::string& status, const std::string& verdict, int64_t latency_ms) {
            usage_row r;
            r.request_id = "req-" + std::to_string(++n);
            r.client = client;
            r.service = service;
            r.priority = "interactive";
            r.model = "m.gguf";
            r.worker = "w1";
            r.received_us = finished - latency_ms * 1000;
            r.started_us = r.received_us + 1000;
            r.first_token_us = status == "ok" ? r.started_us + 1000 : 0;
            r.finished_us = finished;
            r.prompt_tokens = in;
            r.completion_tokens = out;
            r.status = status;
            r.filter_verdict = verdict;
            if (verdict == "filtered") r.filter_rule = "rm-rf";
            v.push_back(r);
        };
        for (int i = 0; i < 4; ++i) add(old_, now - 200 * day + i * sec, "legacy-client", "complete", 5, 5, "ok", "", 100);
        const int64_t d0 = base_, d1 = base_ + day, d2 = base_ + 2 * day;
        add(recent_, d0 + 1 * sec, "alice", "complete", 10, 20, "ok", "", 120);
        add(recent_, d0 + 2 * sec, "bob", "chat", 30, 40, "ok", "allowed", 300);
        add(recent_, d0 + 3 * sec, "alice", "chat", 5, 0, "timeout", "", 9000);  // the slowest
        add(recent_, d1 + 1 * sec, "carol", "command", 7, 0, "filtered", "filtered", 50);
        add(recent_, d1 + 2 * sec, "alice", "complete", 100, 200, "ok", "", 2500);
        add(recent_, d1 + 3 * sec, "bob", "complete", 1, 1, "cancelled", "", 10);
        add(recent_, d2 + 1 * sec, "carol", "command", 8, 12, "ok", "allowed", 700);
        add(recent_, d2 + 2 * sec, "carol", "command", 9, 0, "filtered", "filtered", 40);
        add(recent_, d2 + 3 * sec, "alice", "chat", 50, 60, "ok", "", 1500);
        add(recent_, d2 + 4 * sec, "bob", "chat", 20, 30, "ok", "", 800);
        hearth::usage_db db(db_);
        db.append(old_);  // oldest first, as the broker writes them
        db.append(recent_);
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    static std::string hearth_path() { return hearth::test::binary_dir() + "/clients/hearth"; }

    hearth::test::command_result run(std::vector<std::string> args) const {
        args.insert(args.begin(), hearth_path());
        return hearth::test::command_run(args, "", 30000);
    }
    hearth::test::command_result audit(std::vector<std::string> args) const {
        args.insert(args.begin(), "audit");
        args.push_back("--db");
        args.push_back(db_);
        return run(args);
    }
    json audit_json(std::vector<std::string> args) const {
        args.push_back("--json");
        const auto r = audit(args);
        EXPECT_EQ(r.status, 0) << r.out << r.err;
        return json::parse(r.out);
    }

    void sql(const std::string& statement) const {
        sqlite3* h = nullptr;
        ASSERT_EQ(sqlite3_open(db_.c_str(), &h), SQLITE_OK);
        char* err = nullptr;
        const int rc = sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err);
        const std::string msg = err ? err : "";
        sqlite3_free(err);
        sqlite3_close(h);
        ASSERT_EQ(rc, SQLITE_OK) << statement << ": " << msg;
    }
    // The table that holds the rows (the one with a prompt_tokens column), so the test does not
    // depend on its name.
    std::string table_name() const {
        sqlite3* h = nullptr;
        EXPECT_EQ(sqlite3_open(db_.c_str(), &h), SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        std::string name;
        if (sqlite3_prepare_v2(h, "SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE '%prompt_tokens%'", -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            name = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(h);
        EXPECT_FALSE(name.empty());
        return name;
    }

    std::string dir_;                      // temporary directory, removed after
    std::string db_;                       // dir_/usage.db
    int64_t base_ = 0;                     // midday UTC, three days back
    std::vector<usage_row> old_;           // 200 days old
    std::vector<usage_row> recent_;        // the last three days
};

TEST_F(audit_test, json_summary_matches_the_rows) {
    const json j = audit_json({"--since", "10d"});
    int64_t in = 0, out = 0, errors = 0, filtered = 0;
    std::map<std::string, int64_t> per_client, per_service, per_day, tokens;
    for (const usage_row& r : recent_) {
        in += r.prompt_tokens;
        out += r.completion_tokens;
        errors += r.status != "ok";
        filtered += r.filter_verdict == "filtered";
        ++per_client[r.client];
        ++per_service[r.service];
        ++per_day[day_of(r.finished_us)];
        tokens[r.client] += r.prompt_tokens + r.completion_tokens;
    }
    const json& t = j.at("totals");
    EXPECT_EQ(t.at("requests").get<int64_t>(), static_cast<int64_t>(recent_.size()));
    EXPECT_EQ(t.at("prompt_tokens").get<int64_t>(), in);
    EXPECT_EQ(t.at("completion_tokens").get<int64_t>(), out);
    EXPECT_EQ(t.at("errors").get<int64_t>(), errors);
    EXPECT_EQ(t.at("filtered").get<int64_t>(), filtered);
    auto check = [&](const char* section, const std::map<std::string, int64_t>& want) {
        std::map<std::string, int64_t> got;
        for (const json& g : j.at(section)) got[g.at("key").get<std::string>()] = g.at("requests").get<int64_t>();
        EXPECT_EQ(got, want) << section;
    };
    check("by_client", per_client);
    check("by_service", per_service);
    check("by_day", per_day);
    EXPECT_EQ(per_day.size(), 3u);
    // alice has the most tokens (10+20+5+100+200+50+60 = 445).
    ASSERT_FALSE(j.at("top_clients").empty());
    EXPECT_EQ(j["top_clients"][0].at("key"), "alice");
    EXPECT_EQ(j["top_clients"][0].at("tokens").get<int64_t>(), tokens["alice"]);
    ASSERT_GE(j.at("slowest").size(), 2u);
    EXPECT_EQ(j["slowest"][0].at("id"), "req-7");  // 9000 ms
    EXPECT_NEAR(j["slowest"][0].at("total_ms").get<double>(), 9000.0, 0.01);
    EXPECT_EQ(j["slowest"][0].at("status"), "timeout");
    EXPECT_EQ(j["slowest"][1].at("id"), "req-9");  // 2500 ms

    // --top limits both lists.
    const json t2 = audit_json({"--since", "10d", "--top", "2"});
    EXPECT_EQ(t2.at("top_clients").size(), 2u);
    EXPECT_EQ(t2.at("slowest").size(), 2u);

    // A wider range takes in the old rows too.
    EXPECT_EQ(audit_json({"--since", "365d"}).at("totals").at("requests").get<int64_t>(), static_cast<int64_t>(old_.size() + recent_.size()));
}

TEST_F(audit_test, ranges_by_date_and_iso_time) {
    // [day 1, day 2): only the middle day's rows.
    const json j = audit_json({"--since", day_of(base_ + day), "--until", day_of(base_ + 2 * day)});
    EXPECT_EQ(j.at("totals").at("requests").get<int64_t>(), 3);
    ASSERT_EQ(j.at("by_day").size(), 1u);
    EXPECT_EQ(j["by_day"][0].at("key"), day_of(base_ + day));
    // The same instant written four ways.
    const int64_t want = int64_t{1704067200} * sec;  // 2024-01-01T00:00:00Z
    for (const char* when : {"2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T01:30:00+01:30", "2023-12-31T23:00-01:00"})
        EXPECT_EQ(audit_json({"--since", when}).at("from_us").get<int64_t>(), want) << when;
    const int64_t from = audit_json({"--since", "12h"}).at("from_us").get<int64_t>();
    EXPECT_NEAR(static_cast<double>(now_us() - 12 * 3600 * sec - from), 0.0, 60.0 * sec);
}

TEST_F(audit_test, default_database_comes_from_the_configuration) {
    const std::string cfg = dir_ + "/hearth.toml";
    std::ofstream(cfg) << "state_dir = \"" << dir_ << "\"\n";
    const auto r = run({"--config", cfg, "audit", "--json"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j.at("db"), db_);
    EXPECT_EQ(j.at("totals").at("requests").get<int64_t>(), static_cast<int64_t>(recent_.size()));  // default: last 7 days
}

TEST_F(audit_test, configured_usage_db_path_wins) {
    const std::string cfg = dir_ + "/hearth.toml";
    std::ofstream(cfg) << "state_dir = \"" << dir_ << "\"\n[broker]\nusage_db = \"" << dir_ << "/other.db\"\n";
    // No file here and no broker answering: both are said.
    auto r = run({"--config", cfg, "audit", "verify", "--broker-timeout", "300"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("no broker"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no usage database at " + dir_ + "/other.db"), std::string::npos) << r.err;
    std::ofstream(cfg) << "[broker]\nusage_db = \"off\"\n";
    r = run({"--config", cfg, "audit"});
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("off"), std::string::npos) << r.err;
}

TEST_F(audit_test, table_output) {
    const auto r = audit({});
    ASSERT_EQ(r.status, 0) << r.err;
    for (const char* s : {"requests", "CLIENT", "SERVICE", "DAY", "alice", "carol", "slowest", "req-7", "timeout"})
        EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
    EXPECT_EQ(r.out.find("legacy-client"), std::string::npos) << "a 200-day-old row in the 7-day report\n" << r.out;
}

TEST_F(audit_test, csv_has_a_header_and_one_line_per_request) {
    const auto r = audit({"--since", "10d", "--csv"});
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<std::string> lines;
    size_t p = 0, nl;
    while ((nl = r.out.find('\n', p)) != std::string::npos) {
        lines.push_back(r.out.substr(p, nl - p));
        p = nl + 1;
    }
    EXPECT_EQ(p, r.out.size()) << "last line without a newline";
    ASSERT_EQ(lines.size(), recent_.size() + 1);
    EXPECT_EQ(lines[0].rfind("seq,request_id,client,service,", 0), 0u) << lines[0];
    const size_t columns = static_cast<size_t>(std::count(lines[0].begin(), lines[0].end(), ','));
    std::set<std::string> ids;
    for (size_t i = 1; i < lines.size(); ++i) {
        EXPECT_EQ(static_cast<size_t>(std::count(lines[i].begin(), lines[i].end(), ',')), columns) << lines[i];
        ids.insert(lines[i].substr(lines[i].find(',') + 1, lines[i].find(',', lines[i].find(',') + 1) - lines[i].find(',') - 1));
    }
    for (const usage_row& row : recent_) EXPECT_TRUE(ids.count(row.request_id)) << row.request_id;
    EXPECT_EQ(audit({"--csv", "--json"}).status, 2);
}

TEST_F(audit_test, verify_finds_an_edited_row) {
    const size_t total = old_.size() + recent_.size();
    auto r = audit({"verify"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("chain intact: " + std::to_string(total) + " rows"), std::string::npos) << r.out;

    sql("UPDATE " + table_name() + " SET prompt_tokens = prompt_tokens + 1 WHERE seq = 6");
    r = audit({"verify"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("row 6"), std::string::npos) << r.out;
    r = audit({"verify", "--json"});
    EXPECT_EQ(r.status, 1);
    const json j = json::parse(r.out);
    EXPECT_FALSE(j.at("ok").get<bool>());
    EXPECT_EQ(j.at("first_bad_seq").get<int64_t>(), 6);
}

TEST_F(audit_test, verify_finds_a_deleted_row) {
    sql("DELETE FROM " + table_name() + " WHERE seq = 9");
    const auto r = audit({"verify"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.out.find("row 9"), std::string::npos) << r.out;
}

TEST_F(audit_test, prune_keeps_the_chain_verifiable) {
    auto r = audit({"prune", "--older-than", "90d"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("deleted " + std::to_string(old_.size()) + " rows"), std::string::npos) << r.out;
    r = audit({"verify"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("chain intact: " + std::to_string(recent_.size()) + " rows"), std::string::npos) << r.out;
    EXPECT_EQ(audit_json({"--since", "365d"}).at("totals").at("requests").get<int64_t>(), static_cast<int64_t>(recent_.size()));
    // Nothing more is that old.
    r = audit({"prune", "--older-than", "90d", "--json"});
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(json::parse(r.out).at("deleted").get<int64_t>(), 0);
}

TEST_F(audit_test, bad_input_is_a_usage_error) {
    for (const char* d : {"0d", "-5d", "90x", "abc", "90", "d", "1.5d"}) {
        const auto r = audit({"prune", "--older-than", d});
        EXPECT_EQ(r.status, 2) << d << ": " << r.out << r.err;
    }
    EXPECT_EQ(audit({"prune"}).status, 2);  // --older-than is required
    for (const char* w : {"yesterday", "2026-02-30", "2026-13-01", "2026-01-01T25:00", "5y"}) {
        const auto r = audit({"--since", w});
        EXPECT_EQ(r.status, 2) << w << ": " << r.out << r.err;
    }
    EXPECT_EQ(audit({"--since", "1d", "--until", "2d"}).status, 2);  // empty range
    EXPECT_EQ(audit({"--top", "0"}).status, 2);
    EXPECT_EQ(audit({"verify", "--since", "1d"}).status, 2);
    // Nothing was deleted by any of that.
    EXPECT_EQ(audit_json({"--since", "365d"}).at("totals").at("requests").get<int64_t>(), static_cast<int64_t>(old_.size() + recent_.size()));
}

TEST_F(audit_test, missing_database) {
    const std::string missing = dir_ + "/nope/usage.db";
    for (std::vector<std::string> args : {std::vector<std::string>{"audit"}, {"audit", "verify"}, {"audit", "prune", "--older-than", "1d"}}) {
        args.push_back("--db");
        args.push_back(missing);
        const auto r = run(args);
        EXPECT_EQ(r.status, 1) << r.out << r.err;
        EXPECT_NE(r.err.find("no usage database at " + missing + " (has the broker run?)"), std::string::npos) << r.err;
    }
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/nope"));
}

}  // namespace
