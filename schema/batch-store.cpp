// Durable batch jobs on the usage database's connection. Every state change is one guarded
// UPDATE (`WHERE state = 'queued'`), so exactly-once does not depend on the broker's memory: the
// row itself says whether a result was already recorded. Tables: migrate_to_3 in usage-db.cpp.
#include "batch-store.h"

#include "sqlite-util.h"

#include <sodium.h>
#include <sqlite3.h>

namespace hearth {
namespace {

using sqlite::fail_sql;
using sqlite::statement;
using sqlite::transaction;

// 64 random bits: unguessable enough that a batch id alone does not let another client find it
// (the broker still checks the key), and collisions are retried anyway.
std::string random_batch_id() {
    unsigned char b[8];
    randombytes_buf(b, sizeof b);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

bool batch_exists(sqlite3* db, const std::string& path, const std::string& id) {
    statement st(db, path, "SELECT 1 FROM batches WHERE batch_id = ?");
    st.bind(1, id);
    return st.step();
}

}  // namespace

batch_store::batch_store(usage_db& db) : db_(db) {
    const char* f = sqlite3_db_filename(db.handle(), "main");
    path_ = f ? f : "";
    sqlite::ensure_sodium();
}

std::string batch_store::create(const std::string& client,
                                const std::vector<std::pair<std::string, std::string>>& jobs, int64_t now_us) {
    sqlite3* db = db_.handle();
    transaction tx(db, path_, true);
    std::string id = random_batch_id();
    while (batch_exists(db, path_, id)) id = random_batch_id();
    statement b(db, path_, "INSERT INTO batches (batch_id, client, created_us, total, cancelled) VALUES (?, ?, ?, ?, 0)");
    b.bind(1, id);
    b.bind(2, client);
    b.bind(3, now_us);
    b.bind(4, static_cast<int64_t>(jobs.size()));
    b.step();
    statement ins(db, path_,
                  "INSERT INTO batch_jobs (batch_id, idx, job_id, request, state) VALUES (?, ?, ?, ?, 'queued')");
    for (size_t i = 0; i < jobs.size(); ++i) {
        ins.reset();
        ins.bind(1, id);
        ins.bind(2, static_cast<int64_t>(i));
        ins.bind(3, jobs[i].first.empty() ? std::to_string(i) : jobs[i].first);
        ins.bind_blob(4, jobs[i].second);
        ins.step();
    }
    tx.commit();
    return id;
}

std::vector<pending_job> batch_store::unfinished() {
    // rowid breaks ties between batches created in the same microsecond: insertion order.
    statement st(db_.handle(), path_,
                 "SELECT j.batch_id, j.idx, j.job_id, b.client, j.request, b.created_us"
                 " FROM batch_jobs j JOIN batches b ON b.batch_id = j.batch_id"
                 " WHERE j.state = 'queued' AND b.cancelled = 0"
                 " ORDER BY b.created_us, b.rowid, j.idx");
    std::vector<pending_job> out;
    while (st.step()) {
        pending_job p;
        p.batch_id = st.text_at(0);
        p.idx = st.int_at(1);
        p.job_id = st.text_at(2);
        p.client = st.text_at(3);
        p.request = st.text_at(4);
        p.created_us = st.int_at(5);
        out.push_back(std::move(p));
    }
    return out;
}

bool batch_store::record_in_transaction(const job_outcome& o) {
    if (o.state != "done" && o.state != "failed") {
        std::string what = "batch ";
        what.append(o.batch_id).append(" job ").append(std::to_string(o.idx));
        what.append(": cannot record state \"").append(o.state).append("\" (use done or failed)");
        std::string msg = "usage db ";
        msg.append(path_).append(": ").append(what);
        throw usage_db_error(msg);
    }
    sqlite3* db = db_.handle();
    statement st(db, path_,
                 "UPDATE batch_jobs SET state = ?, text = ?, error_code = ?, error_message = ?, finished_us = ?"
                 " WHERE batch_id = ? AND idx = ? AND state = 'queued'");
    st.bind(1, o.state);
    st.bind(2, o.text);
    st.bind(3, o.error_code);
    st.bind(4, o.error_message);
    st.bind(5, o.finished_us);
    st.bind(6, o.batch_id);
    st.bind(7, o.idx);
    st.step();
    return sqlite3_changes(db) == 1;
}

bool batch_store::record_result(const job_outcome& outcome) {
    transaction tx(db_.handle(), path_, true);
    bool ok = record_in_transaction(outcome);
    tx.commit();
    return ok;
}

std::vector<bool> batch_store::record_results(const std::vector<job_outcome>& outcomes, std::vector<usage_row>& rows) {
    std::vector<bool> recorded;
    db_.append(rows, [&] {
        recorded.clear();
        for (const job_outcome& o : outcomes) recorded.push_back(record_in_transaction(o));
    });
    return recorded;
}

std::optional<batch_status> batch_store::status(const std::string& batch_id) {
    statement st(db_.handle(), path_,
                 "SELECT b.client, b.created_us, b.total, b.cancelled,"
                 " COALESCE(SUM(j.state = 'queued'), 0), COALESCE(SUM(j.state = 'done'), 0),"
                 " COALESCE(SUM(j.state = 'failed'), 0), COALESCE(SUM(j.state = 'cancelled'), 0)"
                 " FROM batches b LEFT JOIN batch_jobs j ON j.batch_id = b.batch_id"
                 " WHERE b.batch_id = ? GROUP BY b.batch_id");
    st.bind(1, batch_id);
    if (!st.step()) return std::nullopt;
    batch_status s;
    s.client = st.text_at(0);
    s.created_us = st.int_at(1);
    s.total = st.int_at(2);
    s.batch_cancelled = st.int_at(3) != 0;
    s.queued = st.int_at(4);
    s.done = st.int_at(5);
    s.failed = st.int_at(6);
    s.cancelled = st.int_at(7);
    return s;
}

std::optional<std::vector<job_result>> batch_store::results(const std::string& batch_id, int64_t from, int64_t limit) {
    sqlite3* db = db_.handle();
    // One read snapshot, so the existence check and the rows agree.
    transaction snapshot(db, path_, false);  // never committed: a read, rolled back at the end
    if (!batch_exists(db, path_, batch_id)) return std::nullopt;
    statement st(db, path_,
                 "SELECT idx, job_id, state, text, error_code, error_message, finished_us"
                 " FROM batch_jobs WHERE batch_id = ? AND idx >= ? ORDER BY idx LIMIT ?");
    st.bind(1, batch_id);
    st.bind(2, from);
    st.bind(3, limit);
    std::vector<job_result> out;
    while (st.step()) {
        job_result r;
        r.idx = st.int_at(0);
        r.job_id = st.text_at(1);
        r.state = st.text_at(2);
        r.text = st.text_at(3);
        r.error_code = st.text_at(4);
        r.error_message = st.text_at(5);
        r.finished_us = st.int_at(6);
        out.push_back(std::move(r));
    }
    return out;
}

std::optional<int64_t> batch_store::cancel(const std::string& batch_id, int64_t now_us) {
    sqlite3* db = db_.handle();
    transaction tx(db, path_, true);
    if (!batch_exists(db, path_, batch_id)) return std::nullopt;
    {
        statement b(db, path_, "UPDATE batches SET cancelled = 1 WHERE batch_id = ?");
        b.bind(1, batch_id);
        b.step();
    }
    statement j(db, path_,
                "UPDATE batch_jobs SET state = 'cancelled', finished_us = ? WHERE batch_id = ? AND state = 'queued'");
    j.bind(1, now_us);
    j.bind(2, batch_id);
    j.step();
    int64_t n = sqlite3_changes(db);
    tx.commit();
    return n;
}

}  // namespace hearth
