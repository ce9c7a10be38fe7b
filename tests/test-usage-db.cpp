// The usage log: every column round-trips, seq continues across reopen and pruning, the hash
// chain catches edits, deletions and insertions made behind its back with plain SQL, retention
// keeps it verifiable, v1 files upgrade in place, and newer or foreign files are left alone.
#include "usage-db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using hearth::usage_db;
using hearth::usage_db_error;
using hearth::usage_row;

namespace {

// A fresh directory per test, removed afterwards.
class UsageDb : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("hearth-usage-" + std::to_string(::getpid()) + "-" + info->name());
        fs::remove_all(dir_);
        path_ = (dir_ / "state" / "usage.db").string();
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;     // scratch directory for this test
    std::string path_; // the database file inside it (its parent does not exist yet)
};

constexpr int64_t day_us = 86400LL * 1000000;
constexpr int64_t t0 = 1700000000LL * 1000000;  // 2023-11-14T22:13:20Z

usage_row make_row(int i, int64_t finished) {
    usage_row r;
    r.request_id = "req-" + std::to_string(i);
    r.client = (i % 2) ? "kitchen" : "office";
    r.service = (i % 3) ? "chat" : "command";
    r.priority = (i % 4) ? "interactive" : "batch";
    r.model = "smol";
    r.worker = "w" + std::to_string(i % 2);
    r.received_us = finished - 1000 * (i + 1);
    r.started_us = r.received_us + 10;
    r.first_token_us = r.received_us + 20;
    r.finished_us = finished;
    r.prompt_tokens = 10 + i;
    r.completion_tokens = 100 + i;
    r.status = (i % 5 == 4) ? "timeout" : "ok";
    r.filter_verdict = (i % 6 == 5) ? "filtered" : "allowed";
    r.filter_rule = (i % 6 == 5) ? "no-unlock" : "";
    return r;
}

// Appends n rows finishing one second apart from `start`, in one group commit.
std::vector<usage_row> add_rows(usage_db& db, int first, int n, int64_t start) {
    std::vector<usage_row> rows;
    for (int i = first; i < first + n; ++i) rows.push_back(make_row(i, start + int64_t{i} * 1000000));
    db.append(rows);
    return rows;
}

void sql(sqlite3* db, const std::string& s) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, s.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    ASSERT_EQ(rc, SQLITE_OK) << s << ": " << msg;
}

std::string file_bytes(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const usage_db_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_F(UsageDb, EveryColumnRoundTrips) {
    usage_db db(path_);
    EXPECT_EQ(db.version(), usage_db::schema_version);
    EXPECT_EQ(fs::status(dir_ / "state").permissions() & fs::perms::all, fs::perms::owner_all);
    std::vector<usage_row> rows = {make_row(5, t0)};
    rows[0].request_id = std::string("id\0with nul", 11);
    rows[0].client = "k\xc3\xa9y";
    rows[0].prompt_tokens = 2147483647;
    db.append(rows);
    EXPECT_EQ(rows[0].seq, 1);
    EXPECT_EQ(rows[0].prev_hash, std::string(64, '0'));
    EXPECT_EQ(rows[0].row_hash, usage_db::row_hash_of(rows[0], rows[0].prev_hash));
    auto back = db.rows(0, t0 + 1);
    ASSERT_EQ(back.size(), 1u);
    const usage_row& a = rows[0];
    const usage_row& b = back[0];
    EXPECT_EQ(b.seq, a.seq);
    EXPECT_EQ(b.request_id, a.request_id);
    EXPECT_EQ(b.client, a.client);
    EXPECT_EQ(b.service, a.service);
    EXPECT_EQ(b.priority, a.priority);
    EXPECT_EQ(b.model, a.model);
    EXPECT_EQ(b.worker, a.worker);
    EXPECT_EQ(b.received_us, a.received_us);
    EXPECT_EQ(b.started_us, a.started_us);
    EXPECT_EQ(b.first_token_us, a.first_token_us);
    EXPECT_EQ(b.finished_us, a.finished_us);
    EXPECT_EQ(b.prompt_tokens, a.prompt_tokens);
    EXPECT_EQ(b.completion_tokens, a.completion_tokens);
    EXPECT_EQ(b.status, a.status);
    EXPECT_EQ(b.filter_verdict, "filtered");
    EXPECT_EQ(b.filter_rule, "no-unlock");
    EXPECT_EQ(b.prev_hash, a.prev_hash);
    EXPECT_EQ(b.row_hash, a.row_hash);
    EXPECT_TRUE(db.verify().ok);
}

TEST_F(UsageDb, HashCoversEveryFieldUnambiguously) {
    usage_row r = make_row(1, t0);
    const std::string prev(64, 'a');
    const std::string h = usage_db::row_hash_of(r, prev);
    EXPECT_EQ(h.size(), 64u);
    EXPECT_NE(usage_db::row_hash_of(r, std::string(64, 'b')), h);
    // Moving a character from one field to the next must change the hash.
    usage_row s = r;
    s.client = r.client + r.service.substr(0, 1);
    s.service = r.service.substr(1);
    EXPECT_NE(usage_db::row_hash_of(s, prev), h);
    usage_row t = r;
    t.seq = r.seq + 1;
    EXPECT_NE(usage_db::row_hash_of(t, prev), h);
    usage_row u = r;
    u.completion_tokens += 1;
    EXPECT_NE(usage_db::row_hash_of(u, prev), h);
}

TEST_F(UsageDb, SeqContinuesAcrossReopen) {
    {
        usage_db db(path_);
        auto r = add_rows(db, 0, 3, t0);
        EXPECT_EQ(r.back().seq, 3);
    }
    usage_db db(path_, false);
    auto r = add_rows(db, 3, 2, t0);
    EXPECT_EQ(r.front().seq, 4);
    EXPECT_EQ(r.back().seq, 5);
    auto all = db.rows(0, t0 + day_us);
    ASSERT_EQ(all.size(), 5u);
    EXPECT_EQ(all[3].prev_hash, all[2].row_hash);
    auto v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 5);
    std::vector<usage_row> none;
    db.append(none);
    EXPECT_EQ(db.rows(0, t0 + day_us).size(), 5u);
}

TEST_F(UsageDb, OpenWithoutCreateOfMissingFileFails) {
    std::string e = error_of([&] { usage_db db(path_, false); });
    EXPECT_NE(e.find(path_), std::string::npos) << e;
    EXPECT_FALSE(fs::exists(path_));
}

TEST_F(UsageDb, EditedRowIsReported) {
    usage_db db(path_);
    add_rows(db, 0, 20, t0);
    sql(db.handle(), "UPDATE usage SET completion_tokens = 1 WHERE seq = 17");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 17);
    EXPECT_EQ(v.problem, "row 17 was edited");
}

TEST_F(UsageDb, EditedAndRehashedRowIsReported) {
    usage_db db(path_);
    auto rows = add_rows(db, 0, 20, t0);
    usage_row r = rows[6];  // seq 7
    r.client = "someone-else";
    std::string h = usage_db::row_hash_of(r, r.prev_hash);
    sql(db.handle(), "UPDATE usage SET client = 'someone-else', row_hash = '" + h + "' WHERE seq = 7");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 7);
    EXPECT_NE(v.problem.find("row 7 was edited"), std::string::npos) << v.problem;
}

TEST_F(UsageDb, DeletedMiddleRowIsReported) {
    usage_db db(path_);
    add_rows(db, 0, 20, t0);
    sql(db.handle(), "DELETE FROM usage WHERE seq = 18");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 18);
    EXPECT_EQ(v.problem, "row 18 is missing (deleted)");
}

// A chain alone cannot see its own tail cut off; the head recorded in chain_anchor can, unless
// it is rewritten too (documented in usage.md).
TEST_F(UsageDb, DeletedTailIsReportedAgainstTheHead) {
    usage_db db(path_);
    add_rows(db, 0, 20, t0);
    sql(db.handle(), "DELETE FROM usage WHERE seq >= 19");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 19);
    EXPECT_EQ(v.problem, "row 19 is missing (deleted)");
    // Appending afterwards does not paper over the gap.
    add_rows(db, 20, 1, t0);
    v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 19);
}

TEST_F(UsageDb, ForgedRowsAreReported) {
    usage_db db(path_);
    auto rows = add_rows(db, 0, 10, t0);
    // A well-formed forgery after the last row: seq, prev_hash and row_hash all computed right.
    usage_row f = rows.back();
    f.seq = 11;
    f.client = "forger";
    f.prev_hash = rows.back().row_hash;
    f.row_hash = usage_db::row_hash_of(f, f.prev_hash);
    sql(db.handle(),
        "INSERT INTO usage (seq, request_id, client, service, priority, model, worker, received_us, started_us,"
        " first_token_us, finished_us, prompt_tokens, completion_tokens, status, filter_verdict, filter_rule,"
        " prev_hash, row_hash) SELECT 11, request_id, 'forger', service, priority, model, worker, received_us,"
        " started_us, first_token_us, finished_us, prompt_tokens, completion_tokens, status, filter_verdict,"
        " filter_rule, '" + f.prev_hash + "', '" + f.row_hash + "' FROM usage WHERE seq = 10");
    ASSERT_EQ(db.rows(0, t0 + day_us).back().row_hash, usage_db::row_hash_of(f, f.prev_hash));
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 11);
    EXPECT_EQ(v.problem, "row 11 was inserted (after the chain head)");
}

TEST_F(UsageDb, RowForgedBeforeTheAnchorIsReported) {
    usage_db db(path_);
    add_rows(db, 0, 10, t0);
    EXPECT_EQ(db.prune_before(t0 + 5000000), 5);  // rows 1..5 finished before t0+5s
    sql(db.handle(), "INSERT INTO usage SELECT 3, request_id, client, service, priority, model, worker,"
                     " received_us, started_us, first_token_us, finished_us, prompt_tokens,"
                     " completion_tokens, status, filter_verdict, filter_rule, prev_hash, row_hash"
                     " FROM usage WHERE seq = 6");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 3);
    EXPECT_NE(v.problem.find("row 3 was inserted"), std::string::npos) << v.problem;
}

TEST_F(UsageDb, PruneRemovesOnlyAPrefixAndKeepsTheChain) {
    usage_db db(path_);
    add_rows(db, 0, 10, t0);  // row i (seq i+1) finishes at t0 + i s
    // An old row after newer ones in the chain is kept: pruning stops at the first newer row.
    std::vector<usage_row> more = {make_row(10, t0 + 1000000)};  // seq 11, old
    db.append(more);
    EXPECT_EQ(db.prune_before(t0 + 3500000), 4);  // seq 1..4 (finished t0+0..3 s)
    auto v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 7);
    auto left = db.rows(0, t0 + day_us);
    ASSERT_EQ(left.size(), 7u);
    EXPECT_EQ(left.front().seq, 11);  // the old row 11 stays: rows 5..10 after it in the chain are newer
    EXPECT_EQ(db.prune_before(t0 + 3500000), 0);
    // Everything old goes, anchor and head meet, and seq still continues.
    EXPECT_EQ(db.prune_before(t0 + day_us), 7);
    EXPECT_TRUE(db.rows(0, t0 + day_us).empty());
    EXPECT_TRUE(db.verify().ok) << db.verify().problem;
    auto r = add_rows(db, 20, 1, t0 + day_us);
    EXPECT_EQ(r[0].seq, 12);
    v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 1);
}

TEST_F(UsageDb, SeqContinuesAfterPruneAndReopen) {
    {
        usage_db db(path_);
        add_rows(db, 0, 5, t0);
        EXPECT_EQ(db.prune_before(t0 + day_us), 5);
    }
    usage_db db(path_);
    auto r = add_rows(db, 5, 1, t0 + day_us);
    EXPECT_EQ(r[0].seq, 6);
    EXPECT_TRUE(db.verify().ok);
    sql(db.handle(), "UPDATE chain_anchor SET anchor_hash = '" + std::string(64, '1') + "'");
    auto v = db.verify();
    EXPECT_FALSE(v.ok);
    EXPECT_EQ(v.first_bad_seq, 6);
}

TEST_F(UsageDb, MigratesAVersion1FileInPlace) {
    usage_db::create_at_version(path_, 1);
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
        for (int i = 1; i <= 4; ++i) {
            std::string ins = "INSERT INTO usage (seq, request_id, client, service, priority, model, worker, received_us,"
                              " started_us, first_token_us, finished_us, prompt_tokens, completion_tokens, status)"
                              " VALUES (";
            ins.append(std::to_string(i)).append(", 'old-").append(std::to_string(i));
            ins.append("', 'garage', 'chat', 'batch', 'm1', 'w', 1, 2, 3, ");
            ins.append(std::to_string(t0 + i)).append(", 7, 8, 'ok')");
            sql(raw, ins);
        }
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        EXPECT_EQ(sqlite3_column_int(st, 0), 1);
        sqlite3_finalize(st);
        sqlite3_close(raw);
    }
    usage_db db(path_, false);
    EXPECT_EQ(db.version(), usage_db::schema_version);
    auto rows = db.rows(0, t0 + day_us);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[0].request_id, "old-1");
    EXPECT_EQ(rows[3].client, "garage");
    EXPECT_EQ(rows[3].completion_tokens, 8);
    EXPECT_EQ(rows[3].filter_verdict, "");
    EXPECT_EQ(rows[0].prev_hash, std::string(64, '0'));
    auto v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 4);
    auto more = add_rows(db, 0, 2, t0 + 10);
    EXPECT_EQ(more[0].seq, 5);
    EXPECT_EQ(more[0].prev_hash, rows[3].row_hash);
    EXPECT_TRUE(db.verify().ok);
    sql(db.handle(), "UPDATE usage SET status = 'ok ' WHERE seq = 2");
    EXPECT_EQ(db.verify().first_bad_seq, 2);
}

TEST_F(UsageDb, NewerFileIsRefusedUntouched) {
    fs::create_directories(fs::path(path_).parent_path());
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
        sql(raw, std::string("CREATE TABLE usage (x); PRAGMA user_version = ").append(std::to_string(usage_db::schema_version + 1)));
        sqlite3_close(raw);
    }
    const std::string before = file_bytes(path_);
    std::string e = error_of([&] { usage_db db(path_); });
    EXPECT_NE(e.find(path_), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("version ").append(std::to_string(usage_db::schema_version + 1))), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("version ").append(std::to_string(usage_db::schema_version))), std::string::npos) << e;
    EXPECT_EQ(file_bytes(path_), before);
    EXPECT_FALSE(fs::exists(path_ + "-wal"));
}

TEST_F(UsageDb, ForeignFilesAreRefused) {
    fs::create_directories(fs::path(path_).parent_path());
    {
        std::ofstream out(path_, std::ios::binary);
        out << "this is not a database, it is a long enough text file to have a header ............"
               "...................................................................................";
    }
    const std::string before = file_bytes(path_);
    std::string e = error_of([&] { usage_db db(path_); });
    EXPECT_NE(e.find(path_), std::string::npos) << e;
    EXPECT_EQ(file_bytes(path_), before);

    // An SQLite file of some other program: no schema version, but tables.
    std::string other = (dir_ / "other.db").string();
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(other.c_str(), &raw), SQLITE_OK);
        sql(raw, "CREATE TABLE notes (x)");
        sqlite3_close(raw);
    }
    e = error_of([&] { usage_db db(other); });
    EXPECT_NE(e.find(other), std::string::npos) << e;
    EXPECT_NE(e.find("not a hearth usage database"), std::string::npos) << e;
}

TEST_F(UsageDb, SummaryAndSlowest) {
    usage_db db(path_);
    std::vector<usage_row> rows;
    // Day 1: 3 rows; day 2: 2 rows.
    for (int i = 0; i < 5; ++i) rows.push_back(make_row(i, t0 + (i < 3 ? 0 : day_us) + i));
    rows[1].status = "cancelled";
    rows[2].filter_verdict = "filtered";
    db.append(rows);

    auto by_client = db.summary(0, t0 + 2 * day_us, "client");
    ASSERT_EQ(by_client.size(), 2u);
    EXPECT_EQ(by_client[0].key, "kitchen");  // rows 1, 3
    EXPECT_EQ(by_client[0].requests, 2);
    EXPECT_EQ(by_client[0].prompt_tokens, 11 + 13);
    EXPECT_EQ(by_client[0].completion_tokens, 101 + 103);
    EXPECT_EQ(by_client[0].errors, 1);
    EXPECT_EQ(by_client[0].filtered, 0);
    EXPECT_EQ(by_client[1].key, "office");  // rows 0, 2, 4 (4 is a timeout)
    EXPECT_EQ(by_client[1].requests, 3);
    EXPECT_EQ(by_client[1].errors, 1);
    EXPECT_EQ(by_client[1].filtered, 1);

    auto by_service = db.summary(0, t0 + 2 * day_us, "service");
    ASSERT_EQ(by_service.size(), 2u);
    EXPECT_EQ(by_service[0].key, "chat");     // rows 1, 2, 4
    EXPECT_EQ(by_service[0].requests, 3);
    EXPECT_EQ(by_service[1].key, "command");  // rows 0, 3
    EXPECT_EQ(by_service[1].requests, 2);

    auto by_day = db.summary(0, t0 + 2 * day_us, "day");
    ASSERT_EQ(by_day.size(), 2u);
    EXPECT_EQ(by_day[0].key, "2023-11-14");
    EXPECT_EQ(by_day[0].requests, 3);
    EXPECT_EQ(by_day[1].key, "2023-11-15");
    EXPECT_EQ(by_day[1].requests, 2);

    // The range is half-open and applies to summaries too.
    auto first_day = db.summary(t0, t0 + 3, "day");
    ASSERT_EQ(first_day.size(), 1u);
    EXPECT_EQ(first_day[0].requests, 3);
    EXPECT_TRUE(db.summary(t0 + 3 * day_us, t0 + 4 * day_us, "client").empty());

    std::string e = error_of([&] { db.summary(0, t0, "model; DROP TABLE usage"); });
    EXPECT_NE(e.find("cannot group usage by"), std::string::npos) << e;

    // make_row(i) takes 1000*(i+1) us: row 4 is slowest, then 3.
    auto slow = db.slowest(0, t0 + 2 * day_us, 2);
    ASSERT_EQ(slow.size(), 2u);
    EXPECT_EQ(slow[0].request_id, "req-4");
    EXPECT_EQ(slow[1].request_id, "req-3");
    auto slow_day1 = db.slowest(t0, t0 + day_us, 10);
    ASSERT_EQ(slow_day1.size(), 3u);
    EXPECT_EQ(slow_day1[0].request_id, "req-2");

    auto limited = db.rows(0, t0 + 2 * day_us, 2);
    ASSERT_EQ(limited.size(), 2u);
    EXPECT_EQ(limited[0].request_id, "req-0");
    EXPECT_EQ(limited[1].request_id, "req-1");
}

TEST_F(UsageDb, CreateAtVersionRejectsBadVersions) {
    EXPECT_THROW(usage_db::create_at_version(path_, 0), usage_db_error);
    EXPECT_THROW(usage_db::create_at_version(path_, usage_db::schema_version + 1), usage_db_error);
    usage_db::create_at_version(path_, 2);
    usage_db db(path_, false);
    EXPECT_EQ(db.version(), usage_db::schema_version);
    EXPECT_TRUE(db.verify().ok);
}

TEST_F(UsageDb, WorkerEventsRoundTripAndSurviveMigrationFromVersion3) {
    usage_db::create_at_version(path_, 3);
    {
        usage_db db(path_, false);
        EXPECT_EQ(db.version(), 4) << "a version 3 file gains the worker_events table";
        std::vector<hearth::worker_event> in(3);
        in[0] = {0, t0 + 1, "box:1", "smol", "ready", "ok", "", "RSS 40 MiB"};
        in[1] = {0, t0 + 2, "box:1", "smol", "guard", "critical", "ok", "RSS 600 MiB > budget 512 MiB"};
        in[2] = {0, t0 + 3, "box:1", "smol", "lost", "critical", "", "missed heartbeats"};
        db.events_append(in);
        add_rows(db, 0, 2, t0);
    }
    usage_db db(path_, false);
    const auto out = db.events(t0, t0 + day_us);
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].id, 1);
    EXPECT_EQ(out[1].event, "guard");
    EXPECT_EQ(out[1].state, "critical");
    EXPECT_EQ(out[1].previous, "ok");
    EXPECT_EQ(out[1].detail, "RSS 600 MiB > budget 512 MiB");
    EXPECT_EQ(out[2].ts_us, t0 + 3);
    EXPECT_EQ(db.events(t0 + 2, t0 + 3).size(), 1u) << "the range is half-open";
    EXPECT_EQ(db.events(t0, t0 + day_us, 2).size(), 2u);
    EXPECT_TRUE(db.verify().ok) << "events stay outside the usage rows' chain";
    // The table refuses an event kind it does not know.
    std::vector<hearth::worker_event> bad(1);
    bad[0] = {0, t0 + 4, "box:1", "", "exploded", "", "", ""};
    EXPECT_THROW(db.events_append(bad), usage_db_error);
    EXPECT_EQ(db.events(t0, t0 + day_us).size(), 3u) << "a failed append writes nothing";
}
