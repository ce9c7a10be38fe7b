// Durable batch jobs: the tables `batches` and `batch_jobs` (schema version 3) in the usage
// database, documented in schema/usage.md. A batch is stored in one transaction before the broker
// acknowledges it; each job moves exactly once from queued to done, failed or cancelled, so a
// broker killed and restarted re-queues what unfinished() lists and never records a job twice.
// Storage only: no sockets, no scheduling. The request bodies are opaque bytes here.
#pragma once

#include "usage-db.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

// One job a client submitted, for the broker to run (again, after a restart).
struct pending_job {
    std::string batch_id;                  // the batch it belongs to
    int64_t idx = 0;                       // 0-based position in the submitted file
    std::string job_id;                    // the line's id, or the decimal idx when it had none
    std::string client;                    // the batch's owner (for its usage row and priority)
    std::string request;                   // the encoded wire request body, as submitted
    int64_t created_us = 0;                // when its batch was acknowledged
};

// How a job ended, as the broker's writer thread records it.
struct job_outcome {
    std::string batch_id;                  // which batch
    int64_t idx = 0;                       // which job in it
    std::string state;                     // "done" or "failed" (cancelling is cancel()'s job)
    std::string text;                      // the generated text (partial text for a failure)
    std::string error_code;                // wire error code when failed, else ""
    std::string error_message;             // its human message when failed, else ""
    int64_t finished_us = 0;               // when it ended (Unix epoch microseconds)
};

// A job as results() returns it.
struct job_result {
    int64_t idx = 0;                       // 0-based position in the submitted file
    std::string job_id;                    // the line's id, or the decimal idx
    std::string state;                     // queued, done, failed, cancelled
    std::string text;                      // generated text ("" while queued)
    std::string error_code;                // "" unless failed
    std::string error_message;             // "" unless failed
    int64_t finished_us = 0;               // 0 while queued
};

// Counts for a status request.
struct batch_status {
    std::string client;                    // who submitted it (the broker checks the asker's key)
    int64_t created_us = 0;                // when it was acknowledged
    int64_t total = 0;                     // jobs submitted
    int64_t queued = 0;                    // not run to a result yet
    int64_t done = 0;                      // finished with a result
    int64_t failed = 0;                    // ended with an error
    int64_t cancelled = 0;                 // cancelled before they ran
    bool batch_cancelled = false;          // cancel() was called on it
};

class batch_store {
public:
    // Works on db's connection (same file, same thread): the schema is already at version 3 once
    // db is open. Errors throw usage_db_error naming the file. db must outlive this object.
    explicit batch_store(usage_db& db);

    // Stores a batch and all its jobs (job id, request body) as queued in one transaction and
    // returns its new id (16 random hex digits) once committed: only then may it be acknowledged.
    // An empty job id is stored as the decimal index.
    std::string create(const std::string& client, const std::vector<std::pair<std::string, std::string>>& jobs,
                       int64_t now_us);

    // Every queued job of batches not cancelled, oldest batch first, then by idx: what a
    // restarted broker queues again.
    std::vector<pending_job> unfinished();

    // Records one outcome in its own transaction, only if the job is still queued. False when it
    // is not (already has a result, was cancelled, or no such job): the result is then dropped.
    bool record_result(const job_outcome& outcome);

    // The writer thread's group commit: appends the usage rows (as usage_db::append) and records
    // the outcomes in ONE transaction, so a crash keeps both or neither. Returns, per outcome,
    // whether it was recorded (false as in record_result). A throw (e.g. a state other than
    // done/failed) rolls everything back, leaving rows as they were.
    std::vector<bool> record_results(const std::vector<job_outcome>& outcomes, std::vector<usage_row>& rows);

    // Counts by state; nullopt for an unknown batch id.
    std::optional<batch_status> status(const std::string& batch_id);

    // Jobs in idx order from idx `from`, at most `limit` of them (< 0: all), queued ones included
    // with empty results; nullopt when the batch is unknown.
    std::optional<std::vector<job_result>> results(const std::string& batch_id, int64_t from = 0, int64_t limit = -1);

    // Marks the batch cancelled and its queued jobs cancelled (finished_us = now_us); returns how
    // many jobs that stopped, nullopt when unknown. A job already running gets no result: its
    // later record_result returns false.
    std::optional<int64_t> cancel(const std::string& batch_id, int64_t now_us);

private:
    bool record_in_transaction(const job_outcome& outcome);  // the UPDATE; caller holds the transaction
    usage_db& db_;                         // owns the connection
    std::string path_;                     // the file, for error messages
};

}  // namespace hearth
