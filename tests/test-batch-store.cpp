// Durable batch jobs: a stored batch reads back byte for byte, restarts see exactly the queued
// jobs in order, a job gets at most one result, nothing is lost across reopen or SIGKILL, cancel
// stops queued jobs, a v2 file upgrades with its usage chain intact, and usage rows commit
// atomically with job results.
#include "batch-store.h"
#include "usage-db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using hearth::batch_store;
using hearth::job_outcome;
using hearth::usage_db;
using hearth::usage_db_error;
using hearth::usage_row;

namespace {

class BatchStore : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("hearth-batch-" + std::to_string(::getpid()) + "-" + info->name());
        fs::remove_all(dir_);
        path_ = (dir_ / "usage.db").string();
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;     // scratch directory for this test
    std::string path_; // the database file inside it
};

constexpr int64_t t0 = 1700000000LL * 1000000;

using job_list = std::vector<std::pair<std::string, std::string>>;

job_outcome done(const std::string& batch, int64_t idx, const std::string& text, int64_t at = t0 + 5) {
    job_outcome o;
    o.batch_id = batch;
    o.idx = idx;
    o.state = "done";
    o.text = text;
    o.finished_us = at;
    return o;
}

usage_row usage_for(const std::string& id) {
    usage_row r;
    r.request_id = id;
    r.client = "garage";
    r.service = "complete";
    r.priority = "batch";
    r.received_us = t0;
    r.finished_us = t0 + 10;
    r.status = "ok";
    return r;
}

}  // namespace

TEST_F(BatchStore, CreateAndReadBack) {
    usage_db db(path_);
    EXPECT_EQ(db.version(), usage_db::schema_version);
    batch_store bs(db);
    const std::string body_with_nul("\x92\x00\xff body", 8);
    std::string id = bs.create("garage", job_list{{"first", "req-a"}, {"", body_with_nul}, {"third", ""}}, t0);
    ASSERT_EQ(id.size(), 16u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_NE(bs.create("garage", job_list{{"x", "y"}}, t0), id);

    auto st = bs.status(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->client, "garage");
    EXPECT_EQ(st->created_us, t0);
    EXPECT_EQ(st->total, 3);
    EXPECT_EQ(st->queued, 3);
    EXPECT_EQ(st->done + st->failed + st->cancelled, 0);
    EXPECT_FALSE(st->batch_cancelled);

    auto res = bs.results(id);
    ASSERT_TRUE(res.has_value());
    ASSERT_EQ(res->size(), 3u);
    EXPECT_EQ((*res)[0].job_id, "first");
    EXPECT_EQ((*res)[1].job_id, "1");  // no id on the line: its index
    EXPECT_EQ((*res)[2].job_id, "third");
    for (const auto& r : *res) {
        EXPECT_EQ(r.state, "queued");
        EXPECT_EQ(r.text, "");
        EXPECT_EQ(r.finished_us, 0);
    }

    auto pending = bs.unfinished();
    ASSERT_EQ(pending.size(), 4u);
    EXPECT_EQ(pending[1].request, body_with_nul);
    EXPECT_EQ(pending[1].client, "garage");
    EXPECT_EQ(pending[2].request, "");

    EXPECT_FALSE(bs.status("0123456789abcdef").has_value());
    EXPECT_FALSE(bs.results("nope").has_value());
    EXPECT_FALSE(bs.cancel("nope", t0).has_value());
    EXPECT_FALSE(bs.record_result(done("nope", 0, "x")));
}

TEST_F(BatchStore, UnfinishedIsInCreationThenIndexOrder) {
    usage_db db(path_);
    batch_store bs(db);
    // Created later but inserted first: order is by created time, not insertion.
    std::string later = bs.create("b", job_list{{"l0", "L0"}, {"l1", "L1"}}, t0 + 100);
    std::string early = bs.create("a", job_list{{"e0", "E0"}, {"e1", "E1"}, {"e2", "E2"}}, t0);
    std::string same = bs.create("c", job_list{{"s0", "S0"}}, t0 + 100);  // tie: insertion order
    ASSERT_TRUE(bs.record_result(done(early, 1, "ok")));

    auto p = bs.unfinished();
    std::vector<std::string> ids;
    for (const auto& j : p) ids.push_back(j.job_id);
    EXPECT_EQ(ids, (std::vector<std::string>{"e0", "e2", "l0", "l1", "s0"}));
    EXPECT_EQ(p[0].batch_id, early);
    EXPECT_EQ(p[1].idx, 2);
    EXPECT_EQ(p[2].batch_id, later);
    EXPECT_EQ(p[3].request, "L1");
    EXPECT_EQ(p[4].batch_id, same);
    EXPECT_EQ(p[4].created_us, t0 + 100);
}

TEST_F(BatchStore, ResultIsRecordedExactlyOnce) {
    usage_db db(path_);
    batch_store bs(db);
    std::string id = bs.create("a", job_list{{"j0", "r0"}, {"j1", "r1"}}, t0);
    EXPECT_TRUE(bs.record_result(done(id, 0, "first answer", t0 + 7)));
    EXPECT_FALSE(bs.record_result(done(id, 0, "second answer", t0 + 9)));
    job_outcome f;
    f.batch_id = id;
    f.idx = 1;
    f.state = "failed";
    f.text = "partial";
    f.error_code = "timeout";
    f.error_message = "no worker answered";
    f.finished_us = t0 + 8;
    EXPECT_TRUE(bs.record_result(f));
    f.state = "done";
    EXPECT_FALSE(bs.record_result(f));
    EXPECT_FALSE(bs.record_result(done(id, 2, "no such job")));

    auto res = bs.results(id);
    ASSERT_TRUE(res.has_value());
    ASSERT_EQ(res->size(), 2u);
    EXPECT_EQ((*res)[0].state, "done");
    EXPECT_EQ((*res)[0].text, "first answer");
    EXPECT_EQ((*res)[0].finished_us, t0 + 7);
    EXPECT_EQ((*res)[1].state, "failed");
    EXPECT_EQ((*res)[1].text, "partial");
    EXPECT_EQ((*res)[1].error_code, "timeout");
    EXPECT_EQ((*res)[1].error_message, "no worker answered");
    auto st = bs.status(id);
    EXPECT_EQ(st->done, 1);
    EXPECT_EQ(st->failed, 1);
    EXPECT_EQ(st->queued, 0);
    EXPECT_TRUE(bs.unfinished().empty());

    // Only done and failed are results; cancelling goes through cancel().
    std::string id2 = bs.create("a", job_list{{"", "r"}}, t0);
    job_outcome bad = done(id2, 0, "x");
    bad.state = "cancelled";
    EXPECT_THROW(bs.record_result(bad), usage_db_error);
    EXPECT_EQ(bs.results(id2)->at(0).state, "queued");
}

TEST_F(BatchStore, SurvivesReopen) {
    std::string id;
    {
        usage_db db(path_);
        batch_store bs(db);
        id = bs.create("a", job_list{{"j0", "r0"}, {"j1", "r1"}, {"j2", "r2"}}, t0);
        ASSERT_TRUE(bs.record_result(done(id, 1, "kept")));
    }
    usage_db db(path_, false);
    batch_store bs(db);
    auto p = bs.unfinished();
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].idx, 0);
    EXPECT_EQ(p[1].idx, 2);
    EXPECT_EQ(p[1].request, "r2");
    EXPECT_EQ(bs.results(id)->at(1).text, "kept");
    EXPECT_FALSE(bs.record_result(done(id, 1, "again")));
}

TEST_F(BatchStore, SurvivesSigkill) {
    // The child acknowledges (through the pipe) only after create/record returned, then dies
    // without closing the database: what it acknowledged must be there.
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(fds[0]);
        usage_db db(path_);
        batch_store bs(db);
        std::string id = bs.create("a", job_list{{"j0", "r0"}, {"j1", "r1"}}, t0);
        bs.record_result(done(id, 0, "before the kill"));
        (void)!::write(fds[1], id.data(), id.size());
        ::kill(::getpid(), SIGKILL);
        ::_exit(1);
    }
    ::close(fds[1]);
    char buf[16];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_EQ(n, 16);
    ASSERT_TRUE(WIFSIGNALED(status));
    std::string id(buf, 16);
    usage_db db(path_, false);
    batch_store bs(db);
    auto p = bs.unfinished();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].batch_id, id);
    EXPECT_EQ(p[0].idx, 1);
    EXPECT_EQ(bs.results(id)->at(0).text, "before the kill");
}

TEST_F(BatchStore, CancelStopsQueuedJobs) {
    usage_db db(path_);
    batch_store bs(db);
    std::string id = bs.create("a", job_list{{"j0", "r0"}, {"j1", "r1"}, {"j2", "r2"}}, t0);
    std::string other = bs.create("b", job_list{{"o0", "r"}}, t0 + 1);
    ASSERT_TRUE(bs.record_result(done(id, 0, "finished first")));
    auto n = bs.cancel(id, t0 + 50);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 2);
    EXPECT_EQ(bs.cancel(id, t0 + 60), 0);  // nothing left to stop

    auto st = bs.status(id);
    EXPECT_TRUE(st->batch_cancelled);
    EXPECT_EQ(st->done, 1);
    EXPECT_EQ(st->cancelled, 2);
    EXPECT_EQ(st->queued, 0);
    auto res = bs.results(id);
    EXPECT_EQ((*res)[0].text, "finished first");
    EXPECT_EQ((*res)[1].state, "cancelled");
    EXPECT_EQ((*res)[2].finished_us, t0 + 50);
    // A job that was running when the batch was cancelled gets no result.
    EXPECT_FALSE(bs.record_result(done(id, 1, "too late")));
    auto p = bs.unfinished();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].batch_id, other);
}

TEST_F(BatchStore, Version2FileMigratesWithItsUsageChain) {
    usage_db::create_at_version(path_, 2);
    std::vector<usage_row> rows = {usage_for("old-1"), usage_for("old-2")};
    {
        // Appending needs no v3 tables, but a current build migrates on open: write the v2 rows
        // through raw SQL instead, with the chain computed as v2 would.
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
        std::string prev(64, '0');
        for (size_t i = 0; i < rows.size(); ++i) {
            rows[i].seq = static_cast<int64_t>(i) + 1;
            rows[i].prev_hash = prev;
            rows[i].row_hash = usage_db::row_hash_of(rows[i], prev);
            std::string s = "INSERT INTO usage (seq, request_id, client, service, priority, model, worker,"
                            " received_us, started_us, first_token_us, finished_us, prompt_tokens,"
                            " completion_tokens, status, filter_verdict, filter_rule, prev_hash, row_hash) VALUES (";
            s.append(std::to_string(rows[i].seq)).append(", '").append(rows[i].request_id);
            s.append("', 'garage', 'complete', 'batch', '', '', ").append(std::to_string(t0));
            s.append(", 0, 0, ").append(std::to_string(t0 + 10)).append(", 0, 0, 'ok', '', '', '");
            s.append(prev).append("', '").append(rows[i].row_hash).append("')");
            ASSERT_EQ(sqlite3_exec(raw, s.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
            prev = rows[i].row_hash;
        }
        std::string head = "UPDATE chain_anchor SET head_seq = 2, head_hash = '";
        head.append(prev).append("'");
        ASSERT_EQ(sqlite3_exec(raw, head.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(raw, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'batches'", -1, &st, nullptr);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        EXPECT_EQ(sqlite3_column_int(st, 0), 0);  // really a v2 file
        sqlite3_finalize(st);
        sqlite3_close(raw);
    }
    usage_db db(path_, false);
    EXPECT_EQ(db.version(), usage_db::schema_version);
    auto v = db.verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows_checked, 2);
    auto got = db.rows(0, t0 + 100);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].request_id, "old-2");
    batch_store bs(db);
    std::string id = bs.create("a", job_list{{"j", "r"}}, t0);
    EXPECT_EQ(bs.unfinished().size(), 1u);
    EXPECT_TRUE(bs.status(id).has_value());
}

TEST_F(BatchStore, UsageRowsAndResultsCommitTogether) {
    usage_db db(path_);
    batch_store bs(db);
    std::string id = bs.create("a", job_list{{"j0", "r0"}, {"j1", "r1"}, {"j2", "r2"}}, t0);
    ASSERT_TRUE(bs.record_result(done(id, 2, "earlier")));

    std::vector<usage_row> rows = {usage_for("j0"), usage_for("j2")};
    auto rec = bs.record_results({done(id, 0, "zero"), done(id, 2, "duplicate")}, rows);
    EXPECT_EQ(rec, (std::vector<bool>{true, false}));
    EXPECT_EQ(rows[0].seq, 1);
    EXPECT_EQ(rows[1].seq, 2);
    EXPECT_EQ(bs.results(id)->at(0).text, "zero");
    EXPECT_EQ(bs.results(id)->at(2).text, "earlier");
    EXPECT_EQ(db.rows(0, t0 + 100).size(), 2u);

    // The second outcome is refused mid-transaction: the usage row and the first outcome, both
    // already written in that transaction, must be rolled back with it.
    std::vector<usage_row> more = {usage_for("j1")};
    job_outcome bad = done(id, 2, "x");
    bad.state = "finished";
    EXPECT_THROW(bs.record_results({done(id, 1, "one"), bad}, more), usage_db_error);
    EXPECT_EQ(more[0].seq, 0);  // caller's rows untouched, ready to retry
    EXPECT_EQ(db.rows(0, t0 + 100).size(), 2u);
    EXPECT_EQ(bs.results(id)->at(1).state, "queued");
    EXPECT_TRUE(db.verify().ok);

    // Results alone (no usage rows) still commit.
    std::vector<usage_row> none;
    EXPECT_EQ(bs.record_results({done(id, 1, "one")}, none), std::vector<bool>{true});
    EXPECT_EQ(bs.results(id)->at(1).text, "one");
    EXPECT_TRUE(bs.unfinished().empty());
}
