// The usage log database: versioned schema with in-place migrations, a SHA-256 hash chain over the
// rows for tamper evidence, retention that keeps the chain verifiable, and the audit queries.
// The layout, the exact hash serialization and what verify can and cannot detect are documented
// in schema/usage.md; keep the two in step.
#include "usage-db.h"

#include "sqlite-util.h"

#include <sodium.h>
#include <sqlite3.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace hearth {
namespace {

namespace fs = std::filesystem;
using sqlite::ensure_sodium;
using sqlite::exec;
using sqlite::fail;
using sqlite::fail_sql;
using sqlite::statement;
using sqlite::transaction;

const std::string genesis_hash(64, '0');

int64_t user_version(sqlite3* db, const std::string& path) {
    statement st(db, path, "PRAGMA user_version");
    return st.step() ? st.int_at(0) : 0;
}

// The select list shared by every query that returns whole rows; read_row follows its order.
#define USAGE_COLUMNS                                                                                   \
    "seq, request_id, client, service, priority, model, worker, received_us, started_us, "             \
    "first_token_us, finished_us, prompt_tokens, completion_tokens, status, filter_verdict, filter_rule, " \
    "prev_hash, row_hash"

usage_row read_row(statement& st) {
    usage_row r;
    r.seq = st.int_at(0);
    r.request_id = st.text_at(1);
    r.client = st.text_at(2);
    r.service = st.text_at(3);
    r.priority = st.text_at(4);
    r.model = st.text_at(5);
    r.worker = st.text_at(6);
    r.received_us = st.int_at(7);
    r.started_us = st.int_at(8);
    r.first_token_us = st.int_at(9);
    r.finished_us = st.int_at(10);
    r.prompt_tokens = static_cast<int32_t>(st.int_at(11));
    r.completion_tokens = static_cast<int32_t>(st.int_at(12));
    r.status = st.text_at(13);
    r.filter_verdict = st.text_at(14);
    r.filter_rule = st.text_at(15);
    r.prev_hash = st.text_at(16);
    r.row_hash = st.text_at(17);
    return r;
}

// Where the verifiable chain starts (after pruned rows) and where it must end (the last row
// appended), so deleting rows at either end is noticed too.
struct chain_ends {
    int64_t anchor_seq = 0;                // seq of the last pruned row (0: none)
    std::string anchor_hash;               // its row_hash, or the genesis hash
    int64_t head_seq = 0;                  // seq of the last appended row
    std::string head_hash;                 // its row_hash
};

chain_ends read_chain_ends(sqlite3* db, const std::string& path) {
    statement st(db, path, "SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM chain_anchor WHERE id = 1");
    if (!st.step()) fail(path, "the chain_anchor row is missing (the file was altered)");
    return chain_ends{st.int_at(0), st.text_at(1), st.int_at(2), st.text_at(3)};
}

// Version 1: the first released layout, one row per request.
void migrate_to_1(sqlite3* db, const std::string& path) {
    exec(db, path,
         "CREATE TABLE usage ("
         " seq INTEGER PRIMARY KEY,"
         " request_id TEXT NOT NULL,"
         " client TEXT NOT NULL,"
         " service TEXT NOT NULL,"
         " priority TEXT NOT NULL,"
         " model TEXT NOT NULL,"
         " worker TEXT NOT NULL,"
         " received_us INTEGER NOT NULL,"
         " started_us INTEGER NOT NULL,"
         " first_token_us INTEGER NOT NULL,"
         " finished_us INTEGER NOT NULL,"
         " prompt_tokens INTEGER NOT NULL,"
         " completion_tokens INTEGER NOT NULL,"
         " status TEXT NOT NULL"
         ") STRICT");
}

// Version 2: filter verdicts, the hash chain with its anchor, and indexes for the audit queries.
// Rows written by version 1 are chained here, in seq order, so an upgraded file verifies.
void migrate_to_2(sqlite3* db, const std::string& path) {
    exec(db, path,
         "ALTER TABLE usage ADD COLUMN filter_verdict TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE usage ADD COLUMN filter_rule TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE usage ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE usage ADD COLUMN row_hash TEXT NOT NULL DEFAULT '';"
         "CREATE TABLE chain_anchor ("
         " id INTEGER PRIMARY KEY CHECK (id = 1),"
         " anchor_seq INTEGER NOT NULL,"
         " anchor_hash TEXT NOT NULL,"
         " head_seq INTEGER NOT NULL,"
         " head_hash TEXT NOT NULL"
         ") STRICT;"
         "CREATE INDEX usage_finished ON usage(finished_us);"
         "CREATE INDEX usage_client ON usage(client);");

    // Rows before the first one present are treated as already pruned; a v1 writer never left
    // gaps, so any later gap is reported by verify as a deletion, which it was.
    int64_t first = 1;
    {
        statement st(db, path, "SELECT MIN(seq) FROM usage");
        if (st.step() && st.int_at(0) > 0) first = st.int_at(0);
    }
    std::string prev = genesis_hash;
    int64_t last_seq = first - 1;
    // In batches, so a large file neither loads whole into memory nor updates under a live scan.
    statement sel(db, path, "SELECT " USAGE_COLUMNS " FROM usage WHERE seq > ? ORDER BY seq LIMIT 1000");
    statement upd(db, path, "UPDATE usage SET prev_hash = ?, row_hash = ? WHERE seq = ?");
    for (;;) {
        std::vector<usage_row> batch;
        sel.reset();
        sel.bind(1, last_seq);
        while (sel.step()) batch.push_back(read_row(sel));
        if (batch.empty()) break;
        for (const usage_row& r : batch) {
            std::string h = usage_db::row_hash_of(r, prev);
            upd.reset();
            upd.bind(1, prev);
            upd.bind(2, h);
            upd.bind(3, r.seq);
            upd.step();
            prev = h;
            last_seq = r.seq;
        }
    }
    statement ins(db, path, "INSERT INTO chain_anchor (id, anchor_seq, anchor_hash, head_seq, head_hash) VALUES (1, ?, ?, ?, ?)");
    ins.bind(1, first - 1);
    ins.bind(2, genesis_hash);
    ins.bind(3, last_seq);
    ins.bind(4, prev);
    ins.step();
}

// Version 3: durable batch jobs (schema/usage.md, "Batch jobs"; used by batch_store). A job row
// is written queued when its batch is acknowledged and moves once to done, failed or cancelled,
// which is what makes a restarted broker run none twice to a recorded result.
void migrate_to_3(sqlite3* db, const std::string& path) {
    exec(db, path,
         "CREATE TABLE batches ("
         " batch_id TEXT PRIMARY KEY NOT NULL,"
         " client TEXT NOT NULL,"
         " created_us INTEGER NOT NULL,"
         " total INTEGER NOT NULL,"
         " cancelled INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1))"
         ") STRICT;"
         "CREATE TABLE batch_jobs ("
         " batch_id TEXT NOT NULL REFERENCES batches(batch_id),"
         " idx INTEGER NOT NULL,"
         " job_id TEXT NOT NULL,"
         " request BLOB NOT NULL,"
         " state TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed', 'cancelled')),"
         " text TEXT NOT NULL DEFAULT '',"
         " error_code TEXT NOT NULL DEFAULT '',"
         " error_message TEXT NOT NULL DEFAULT '',"
         " finished_us INTEGER NOT NULL DEFAULT 0,"
         " PRIMARY KEY (batch_id, idx)"
         ") STRICT, WITHOUT ROWID;"
         "CREATE INDEX batches_created ON batches(created_us);"
         "CREATE INDEX batch_jobs_queued ON batch_jobs(batch_id, idx) WHERE state = 'queued';");
}

// Version 4: worker events (schema/usage.md, "Worker events"): joins, resource-guard transitions
// and losses, so a report can tell why requests slowed or failed at some hour.
void migrate_to_4(sqlite3* db, const std::string& path) {
    exec(db, path,
         "CREATE TABLE worker_events ("
         " id INTEGER PRIMARY KEY,"
         " ts_us INTEGER NOT NULL,"
         " worker TEXT NOT NULL,"
         " model TEXT NOT NULL DEFAULT '',"
         " event TEXT NOT NULL CHECK (event IN ('ready', 'guard', 'left', 'lost')),"
         " state TEXT NOT NULL DEFAULT '',"
         " previous TEXT NOT NULL DEFAULT '',"
         " detail TEXT NOT NULL DEFAULT ''"
         ") STRICT;"
         "CREATE INDEX worker_events_ts ON worker_events(ts_us);");
}

// Applies the migrations from the file's version up to `target`, each in its own transaction
// together with its user_version bump, so a crash leaves the file at a whole version.
void migrate_file(sqlite3* db, const std::string& path, int target) {
    for (;;) {
        transaction tx(db, path, true);
        // Read inside the write lock: another process may have migrated meanwhile.
        int64_t v = user_version(db, path);
        if (v >= target) return;
        if (v == 0) {
            statement st(db, path, "SELECT COUNT(*) FROM sqlite_master");
            if (st.step() && st.int_at(0) > 0)
                fail(path, "not a hearth usage database (user_version 0 but it already has tables)");
        }
        if (v == 0) migrate_to_1(db, path);
        else if (v == 1) migrate_to_2(db, path);
        else if (v == 2) migrate_to_3(db, path);
        else if (v == 3) migrate_to_4(db, path);
        else fail(path, "no migration from version " + std::to_string(v));
        std::string bump = "PRAGMA user_version = ";
        bump.append(std::to_string(v + 1));
        exec(db, path, bump.c_str());
        tx.commit();
    }
}

// mkdir -p, with 0700 for the directories it creates: the log names clients and their usage.
void make_parent_dirs(const std::string& path) {
    fs::path parent = fs::path(path).parent_path();
    if (parent.empty()) return;
    fs::path cur;
    for (const fs::path& part : parent) {
        cur /= part;
        struct stat st {};
        if (::stat(cur.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) {
            std::string what = "cannot create directory ";
            what.append(cur.string()).append(": ").append(std::strerror(errno));
            fail(path, what);
        }
    }
}

sqlite3* open_connection(const std::string& path, bool create) {
    if (create) make_parent_dirs(path);
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
        std::string what = "cannot open: ";
        what.append(db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        fail(path, what);
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    return db;
}

// Reads the version before anything writes: a foreign or newer file must be left as it is
// (even switching it to WAL would change its header).
int64_t checked_version(sqlite3* db, const std::string& path) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        std::string what = "not an SQLite database or unreadable (";
        what.append(sqlite3_errmsg(db)).append(")");
        fail(path, what);
    }
    if (v > usage_db::schema_version) {
        std::string what = "file is at schema version ";
        what.append(std::to_string(v)).append(" but this build knows only up to version ");
        what.append(std::to_string(usage_db::schema_version)).append("; refusing to open it (use a newer hearth)");
        fail(path, what);
    }
    return v;
}

void append_text_field(std::string& out, const std::string& v) {
    out.append(std::to_string(v.size())).push_back(':');
    out.append(v);
}

void append_int_field(std::string& out, int64_t v) { append_text_field(out, std::to_string(v)); }

}  // namespace

usage_db::usage_db(const std::string& path, bool create) : path_(path) {
    ensure_sodium();
    db_ = open_connection(path, create);
    try {
        checked_version(db_, path_);
        exec(db_, path_, "PRAGMA journal_mode = WAL");
        exec(db_, path_, "PRAGMA synchronous = NORMAL");
        migrate();
    } catch (...) {
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw;
    }
}

usage_db::~usage_db() { sqlite3_close_v2(db_); }

int usage_db::version() const { return static_cast<int>(user_version(db_, path_)); }

void usage_db::checkpoint_auto(bool on) { sqlite3_wal_autocheckpoint(db_, on ? 1000 : 0); }

int64_t usage_db::checkpoint_passive() {
    int log_frames = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
    if (rc != SQLITE_OK) return -1;
    return log_frames >= 0 && copied >= 0 ? log_frames - copied : 0;
}

void usage_db::migrate() { migrate_file(db_, path_, schema_version); }

std::string usage_db::row_hash_of(const usage_row& r, const std::string& prev_hash) {
    ensure_sodium();
    std::string s;
    s.reserve(256);
    append_int_field(s, r.seq);
    append_text_field(s, r.request_id);
    append_text_field(s, r.client);
    append_text_field(s, r.service);
    append_text_field(s, r.priority);
    append_text_field(s, r.model);
    append_text_field(s, r.worker);
    append_int_field(s, r.received_us);
    append_int_field(s, r.started_us);
    append_int_field(s, r.first_token_us);
    append_int_field(s, r.finished_us);
    append_int_field(s, r.prompt_tokens);
    append_int_field(s, r.completion_tokens);
    append_text_field(s, r.status);
    append_text_field(s, r.filter_verdict);
    append_text_field(s, r.filter_rule);
    append_text_field(s, prev_hash);
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(s.data()), s.size());
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof digest);
    for (unsigned char b : digest) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 15]);
    }
    return out;
}

void usage_db::append(std::vector<usage_row>& rows, const std::function<void()>& also) {
    if (rows.empty() && !also) return;
    transaction tx(db_, path_, true);
    chain_ends ends = read_chain_ends(db_, path_);
    // Chained on copies and handed back only after COMMIT, so a failed append leaves the
    // caller's rows as they were (ready to retry).
    std::vector<usage_row> out = rows;
    statement ins(db_, path_,
                  "INSERT INTO usage (" USAGE_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (usage_row& r : out) {
        r.seq = ++ends.head_seq;
        r.prev_hash = ends.head_hash;
        r.row_hash = row_hash_of(r, r.prev_hash);
        ends.head_hash = r.row_hash;
        ins.reset();
        ins.bind(1, r.seq);
        ins.bind(2, r.request_id);
        ins.bind(3, r.client);
        ins.bind(4, r.service);
        ins.bind(5, r.priority);
        ins.bind(6, r.model);
        ins.bind(7, r.worker);
        ins.bind(8, r.received_us);
        ins.bind(9, r.started_us);
        ins.bind(10, r.first_token_us);
        ins.bind(11, r.finished_us);
        ins.bind(12, static_cast<int64_t>(r.prompt_tokens));
        ins.bind(13, static_cast<int64_t>(r.completion_tokens));
        ins.bind(14, r.status);
        ins.bind(15, r.filter_verdict);
        ins.bind(16, r.filter_rule);
        ins.bind(17, r.prev_hash);
        ins.bind(18, r.row_hash);
        ins.step();
    }
    statement head(db_, path_, "UPDATE chain_anchor SET head_seq = ?, head_hash = ? WHERE id = 1");
    head.bind(1, ends.head_seq);
    head.bind(2, ends.head_hash);
    head.step();
    if (also) also();
    tx.commit();
    rows = std::move(out);
}

usage_verify_result usage_db::verify() {
    usage_verify_result res;
    auto bad = [&res](int64_t seq, const std::string& problem) {
        res.ok = false;
        res.first_bad_seq = seq;
        res.problem = problem;
        return res;
    };
    auto row_msg = [](int64_t seq, const char* tail) {
        std::string m = "row ";
        m.append(std::to_string(seq)).append(tail);
        return m;
    };
    // One read transaction: a snapshot, so rows appended meanwhile by the broker are not
    // mistaken for insertions.
    transaction tx(db_, path_, false);
    chain_ends ends = read_chain_ends(db_, path_);
    int64_t expected_seq = ends.anchor_seq + 1;
    std::string expected_prev = ends.anchor_hash;
    statement st(db_, path_, "SELECT " USAGE_COLUMNS " FROM usage ORDER BY seq");
    while (st.step()) {
        usage_row r = read_row(st);
        ++res.rows_checked;
        if (r.seq <= ends.anchor_seq) return bad(r.seq, row_msg(r.seq, " was inserted (before the chain anchor)"));
        if (r.seq > expected_seq && expected_seq <= ends.head_seq)
            return bad(expected_seq, row_msg(expected_seq, " is missing (deleted)"));
        if (r.seq > ends.head_seq) return bad(r.seq, row_msg(r.seq, " was inserted (after the chain head)"));
        if (row_hash_of(r, r.prev_hash) != r.row_hash) return bad(r.seq, row_msg(r.seq, " was edited"));
        if (r.prev_hash != expected_prev) {
            if (r.seq == ends.anchor_seq + 1)
                return bad(r.seq, row_msg(r.seq, " does not link to the chain anchor (the anchor or the row was altered)"));
            // Its own hash is intact, so the previous row was most likely edited and rehashed.
            std::string m = row_msg(r.seq - 1, " was edited (its hash was recomputed; row ");
            m.append(std::to_string(r.seq)).append(" no longer links to it)");
            return bad(r.seq - 1, m);
        }
        expected_prev = r.row_hash;
        ++expected_seq;
    }
    if (expected_seq <= ends.head_seq) return bad(expected_seq, row_msg(expected_seq, " is missing (deleted)"));
    if (expected_prev != ends.head_hash) {
        if (ends.head_seq == ends.anchor_seq) return bad(ends.head_seq, "the chain anchor was altered");
        return bad(ends.head_seq, row_msg(ends.head_seq, " was edited (its hash was recomputed)"));
    }
    tx.commit();
    return res;
}

int64_t usage_db::prune_before(int64_t cutoff_us) {
    transaction tx(db_, path_, true);
    int64_t last_seq = 0;
    std::string last_hash;
    int64_t n = 0;
    {
        // Only a prefix of the chain may go: the first row not older than the cutoff stops it,
        // so no hole is left for verify to report.
        statement st(db_, path_, "SELECT seq, row_hash, finished_us FROM usage ORDER BY seq");
        while (st.step() && st.int_at(2) < cutoff_us) {
            last_seq = st.int_at(0);
            last_hash = st.text_at(1);
            ++n;
        }
    }
    if (n == 0) return 0;
    statement del(db_, path_, "DELETE FROM usage WHERE seq <= ?");
    del.bind(1, last_seq);
    del.step();
    statement anchor(db_, path_, "UPDATE chain_anchor SET anchor_seq = ?, anchor_hash = ? WHERE id = 1");
    anchor.bind(1, last_seq);
    anchor.bind(2, last_hash);
    anchor.step();
    tx.commit();
    return n;
}

std::vector<usage_row> usage_db::rows(int64_t from_us, int64_t to_us, int64_t limit, int64_t after_finished_us,
                                      int64_t after_seq, const std::string& client) {
    statement st(db_, path_,
                 "SELECT " USAGE_COLUMNS " FROM usage WHERE finished_us >= ? AND finished_us < ?"
                 " AND (finished_us, seq) > (?, ?) AND (?6 = '' OR client = ?6) ORDER BY finished_us, seq LIMIT ?5");
    st.bind(1, from_us);
    st.bind(2, to_us);
    st.bind(3, after_finished_us);
    st.bind(4, after_seq);
    st.bind(5, limit > 0 ? limit : int64_t{-1});
    st.bind(6, client);
    std::vector<usage_row> out;
    while (st.step()) out.push_back(read_row(st));
    return out;
}

void usage_db::events_append(const std::vector<worker_event>& events) {
    if (events.empty()) return;
    transaction tx(db_, path_, true);
    statement ins(db_, path_,
                  "INSERT INTO worker_events (ts_us, worker, model, event, state, previous, detail) VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (const worker_event& e : events) {
        ins.reset();
        ins.bind(1, e.ts_us);
        ins.bind(2, e.worker);
        ins.bind(3, e.model);
        ins.bind(4, e.event);
        ins.bind(5, e.state);
        ins.bind(6, e.previous);
        ins.bind(7, e.detail);
        ins.step();
    }
    tx.commit();
}

std::vector<worker_event> usage_db::events(int64_t from_us, int64_t to_us, int64_t limit) {
    statement st(db_, path_,
                 "SELECT id, ts_us, worker, model, event, state, previous, detail FROM worker_events"
                 " WHERE ts_us >= ? AND ts_us < ? ORDER BY ts_us, id LIMIT ?");
    st.bind(1, from_us);
    st.bind(2, to_us);
    st.bind(3, limit > 0 ? limit : int64_t{-1});
    std::vector<worker_event> out;
    while (st.step()) {
        worker_event e;
        e.id = st.int_at(0);
        e.ts_us = st.int_at(1);
        e.worker = st.text_at(2);
        e.model = st.text_at(3);
        e.event = st.text_at(4);
        e.state = st.text_at(5);
        e.previous = st.text_at(6);
        e.detail = st.text_at(7);
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<usage_group> usage_db::summary(int64_t from_us, int64_t to_us, const std::string& by, const std::string& client) {
    const char* sql = nullptr;
    // Fixed texts, never the caller's string, go into the SQL.
#define USAGE_SUMMARY(KEY)                                                                       \
    "SELECT " KEY " AS k, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"             \
    " SUM(status <> 'ok'), SUM(filter_verdict = 'filtered') FROM usage"                      \
    " WHERE finished_us >= ?1 AND finished_us < ?2 AND (?3 = '' OR client = ?3) GROUP BY k ORDER BY k"
    if (by == "client") sql = USAGE_SUMMARY("client");
    else if (by == "service") sql = USAGE_SUMMARY("service");
    else if (by == "day") sql = USAGE_SUMMARY("strftime('%Y-%m-%d', finished_us / 1000000, 'unixepoch')");
#undef USAGE_SUMMARY
    else {
        std::string what = "cannot group usage by \"";
        what.append(by).append("\" (use client, service or day)");
        fail(path_, what);
    }
    statement st(db_, path_, sql);
    st.bind(1, from_us);
    st.bind(2, to_us);
    st.bind(3, client);
    std::vector<usage_group> out;
    while (st.step()) {
        usage_group g;
        g.key = st.text_at(0);
        g.requests = st.int_at(1);
        g.prompt_tokens = st.int_at(2);
        g.completion_tokens = st.int_at(3);
        g.errors = st.int_at(4);
        g.filtered = st.int_at(5);
        out.push_back(std::move(g));
    }
    return out;
}

std::vector<usage_row> usage_db::slowest(int64_t from_us, int64_t to_us, int64_t limit, const std::string& client) {
    statement st(db_, path_,
                 "SELECT " USAGE_COLUMNS " FROM usage WHERE finished_us >= ?1 AND finished_us < ?2 AND (?4 = '' OR client = ?4)"
                 " ORDER BY finished_us - received_us DESC, seq LIMIT ?3");
    st.bind(1, from_us);
    st.bind(2, to_us);
    st.bind(3, limit > 0 ? limit : int64_t{-1});
    st.bind(4, client);
    std::vector<usage_row> out;
    while (st.step()) out.push_back(read_row(st));
    return out;
}

void usage_db::create_at_version(const std::string& path, int version) {
    if (version < 1 || version > schema_version) {
        std::string what = "cannot create a file at schema version ";
        what.append(std::to_string(version));
        fail(path, what);
    }
    sqlite3* db = open_connection(path, true);
    try {
        if (checked_version(db, path) != 0) fail(path, "already exists with a schema");
        migrate_file(db, path, version);
    } catch (...) {
        sqlite3_close_v2(db);
        throw;
    }
    sqlite3_close_v2(db);
}

}  // namespace hearth
