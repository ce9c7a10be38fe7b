// The usage log: one SQLite database (WAL) in the state directory with a row per request,
// hash-chained for tamper evidence, with a versioned schema and in-place migrations (documented
// in schema/usage.md). Used by the broker's log writer thread and by `hearth audit`; no sockets.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace hearth {

class usage_db_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One request's record. Times are Unix epoch microseconds; 0 means "did not happen".
struct usage_row {
    int64_t seq = 0;                       // assigned by append (chain order, 1-based, never reused)
    std::string request_id;                // the client's id
    std::string client;                    // key name, or "local"
    std::string service;
    std::string priority;                  // interactive, batch
    std::string model;
    std::string worker;
    int64_t received_us = 0;
    int64_t started_us = 0;                // dispatched to a worker
    int64_t first_token_us = 0;
    int64_t finished_us = 0;
    int32_t prompt_tokens = 0;
    int32_t completion_tokens = 0;
    std::string status;                    // "ok", or the error code (cancelled, timeout, ...)
    std::string filter_verdict;            // "", "allowed", "filtered"
    std::string filter_rule;               // the rule that fired, when filtered
    std::string prev_hash;                 // hex SHA-256 of the previous row (or the anchor)
    std::string row_hash;                  // hex SHA-256 over this row's content and prev_hash
};

// A worker's life as the broker saw it (schema version 4): it joined, its resource guard changed
// state, it left or was lost. Diagnostics beside the usage rows, outside their hash chain.
struct worker_event {
    int64_t id = 0;                        // assigned by events_append (1-based)
    int64_t ts_us = 0;                     // Unix epoch microseconds
    std::string worker;                    // its name
    std::string model;
    std::string event;                     // "ready", "guard", "left", "lost"
    std::string state;                     // its guard state after the event
    std::string previous;                  // "guard": the state before; else ""
    std::string detail;                    // why (the guard's reason and readings, or how it was lost)
};

struct usage_verify_result {
    bool ok = true;
    int64_t rows_checked = 0;
    int64_t first_bad_seq = 0;             // 0 when ok
    std::string problem;                   // "row 17 was edited", "row 18 is missing (deleted)", "row 9 was inserted" ...
};

// Aggregates for `hearth audit`.
struct usage_group {
    std::string key;                       // client, service or day (YYYY-MM-DD, UTC)
    int64_t requests = 0;
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t errors = 0;                    // status other than ok
    int64_t filtered = 0;
};

class usage_db {
public:
    static constexpr int schema_version = 4;  // what this build writes; older files are migrated

    // Opens (creating the file and its directory when `create`), sets WAL and
    // synchronous=NORMAL, and migrates an older schema in place. Throws usage_db_error naming
    // the file; a file newer than schema_version is refused, never changed.
    explicit usage_db(const std::string& path, bool create = true);
    ~usage_db();
    usage_db(const usage_db&) = delete;
    usage_db& operator=(const usage_db&) = delete;

    int version() const;                   // PRAGMA user_version of the file

    // WAL checkpoints. SQLite runs one inside the commit that crosses 1000 WAL pages, and that
    // commit (with every reply waiting on it) takes the fsync. The broker's writer turns that off
    // and has another connection run passive checkpoints beside it instead.
    void checkpoint_auto(bool on);         // PRAGMA wal_autocheckpoint = 1000 (on) or 0 (off)
    // A passive checkpoint (never waits for, nor blocks, the writer); returns the WAL frames left
    // uncopied, or -1 when it could not run now.
    int64_t checkpoint_passive();

    // Appends rows in one transaction (group commit), filling seq, prev_hash and row_hash; when
    // it returns they are durable (WAL commit). `also`, when given, runs inside that transaction
    // after the rows are inserted (on this connection, e.g. batch_store recording job results),
    // so both commit together or, if either throws, neither does.
    void append(std::vector<usage_row>& rows, const std::function<void()>& also = nullptr);

    // Appends worker events in one transaction.
    void events_append(const std::vector<worker_event>& events);
    // Events with ts_us in [from_us, to_us), oldest first (limit 0: all).
    std::vector<worker_event> events(int64_t from_us, int64_t to_us, int64_t limit = 0);
    // Walks the chain in seq order from the anchor: reports the first edited, inserted or
    // deleted row.
    usage_verify_result verify();
    // Deletes rows finished before cutoff_us, moving the anchor to the last deleted row's hash
    // so the rest still verifies. Returns rows deleted.
    int64_t prune_before(int64_t cutoff_us);

    // Rows with finished_us in [from_us, to_us), oldest first (limit 0: all); with a cursor, only
    // those after the row (after_finished_us, after_seq) in that order: the next page. A non-empty
    // `client` (here and below) keeps only that client's rows: what a non-admin key may read.
    std::vector<usage_row> rows(int64_t from_us, int64_t to_us, int64_t limit = 0, int64_t after_finished_us = INT64_MIN,
                                int64_t after_seq = 0, const std::string& client = "");
    // Aggregates over [from_us, to_us) grouped by "client", "service" or "day".
    std::vector<usage_group> summary(int64_t from_us, int64_t to_us, const std::string& by, const std::string& client = "");
    // Slowest requests (by finished - received) in the range.
    std::vector<usage_row> slowest(int64_t from_us, int64_t to_us, int64_t limit, const std::string& client = "");

    sqlite3* handle() { return db_; }       // for tests (tampering) and migrations

    // The content hash of a row given its predecessor's hash (exposed for tests).
    static std::string row_hash_of(const usage_row& r, const std::string& prev_hash);

    // Test support: creates a file at an older schema version (1 .. schema_version) with no rows.
    static void create_at_version(const std::string& path, int version);

private:
    void migrate();
    sqlite3* db_ = nullptr;                // the connection (one thread at a time)
    std::string path_;                     // for error messages
};

}  // namespace hearth
