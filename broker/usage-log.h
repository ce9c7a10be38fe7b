// The broker's usage log writer: a thread that owns the SQLite connection (usage rows and batch
// jobs). The broker's loop hands it work and never waits on disk: rows are committed in groups,
// batch operations run as tasks in the order they were handed over, and the loop learns what is
// done through an inproc socket it polls, so it can release a request's FINAL only after its row
// is committed and acknowledge a batch only after it is stored. A second thread with its own
// connection answers audit queries, so a long report never holds up a commit (WAL lets it read
// while the writer writes).
#pragma once

#include "batch-store.h"
#include "usage-db.h"

#include <zmq.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hearth {

// Work for the writer thread against the batch tables; what it finds goes wherever the task's
// captures point (the broker reads it only after the task's answer came back).
using log_task = std::function<void(batch_store&)>;
// A read-only query for the reader thread (audit reports).
using log_query = std::function<void(usage_db&)>;

// The end of a task.
struct log_answer {
    uint64_t token = 0;                    // as given to run()
    bool ok = false;                       // false: the task threw
    std::string error;                     // what it threw, for the log and the client
};

// What the broker's loop learns in one drain().
struct log_events {
    std::vector<uint64_t> committed;       // tokens of rows now durable
    std::vector<log_answer> answers;       // tasks that ended, in order
};

class usage_log {
public:
    // Opens (and migrates) the database now, so a bad file fails the broker's start, and reads the
    // batch jobs a previous broker left unfinished (take_unfinished()). background_checkpoints:
    // the reader thread checkpoints the WAL so that no commit does (false: SQLite's automatic
    // checkpoints inside commits, kept for the benchmark's comparison).
    usage_log(const std::string& db_path, zmq::context_t& zctx, bool background_checkpoints = true);
    ~usage_log();  // commits what is queued, then stops
    usage_log(const usage_log&) = delete;
    usage_log& operator=(const usage_log&) = delete;

    // Queues a row; `token` (non-zero) comes back in drain().committed once the row is durable.
    // Token 0: nobody waits for it.
    void submit(usage_row row, uint64_t token);
    // A batch job's row with its result: both are committed in one transaction or neither is.
    void submit(usage_row row, job_outcome outcome, uint64_t token);
    // Queues a worker event (written with the next commit; nobody waits for it).
    void submit(worker_event event);
    // Runs task on the writer thread after everything handed over before it; its answer (token
    // non-zero) comes back in drain().answers.
    void run(log_task task, uint64_t token);
    // Runs query on the reader thread (its own connection, never behind a commit); its answer
    // (token non-zero) comes back in drain().answers like a task's.
    void read(log_query query, uint64_t token);
    // The socket the broker polls: readable when something is done.
    zmq::socket_t& notify_socket() { return notify_in_; }
    // What is done since the last call (reads what the socket holds, never blocks).
    log_events drain();
    // Batch jobs without a result at open, oldest first (once; empty afterwards).
    std::vector<pending_job> take_unfinished() { return std::move(unfinished_); }

    uint64_t rows_written() const { return rows_written_.load(); }
    const std::string& path() const { return path_; }

private:
    // One unit of work, in hand-over order.
    struct item {
        usage_row row;                     // a row to append (unless task is set)
        std::optional<job_outcome> outcome;  // a batch job's result that goes with the row
        log_task task;                     // set: a task instead of a row
        uint64_t token = 0;                // reported back when done (0: not)
        std::optional<worker_event> event; // set: a worker event instead of a row or task
    };
    void writer_loop();
    void reader_loop();
    // Appends consecutive rows (with their outcomes) in one transaction, retrying on failure;
    // false only when stopping with them still unwritten.
    bool rows_write(std::vector<usage_row>& rows, const std::vector<job_outcome>& outcomes);
    // Writes worker events; on failure logs them as lost (they are diagnostics, never worth a stall).
    void events_write(std::vector<worker_event>& events);

    std::string path_;                     // the database file
    std::unique_ptr<usage_db> db_;         // used by the writer thread only, after construction
    std::unique_ptr<batch_store> batches_; // on db_'s connection, writer thread only
    std::vector<pending_job> unfinished_;  // read at open for the broker
    std::string notify_endpoint_;          // inproc link writer -> broker
    zmq::context_t& zctx_;
    zmq::socket_t notify_in_;              // broker side (PULL; the writer and the reader PUSH)
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<item> queue_;              // guarded by mu_
    bool stop_ = false;                    // guarded by mu_
    std::atomic<uint64_t> rows_written_{0};
    std::unique_ptr<usage_db> reader_db_;  // the reader thread's connection (also the checkpointer)
    bool background_checkpoints_;          // the reader thread checkpoints (the writer's automatic ones are off)
    uint64_t checkpointed_rows_ = 0;       // reader thread: rows_written_ at its last checkpoint
    std::vector<std::pair<log_query, uint64_t>> reads_;  // guarded by mu_: queries not yet run
    std::condition_variable reader_cv_;    // reads_ has work, or stop_
    std::thread writer_;
    std::thread reader_;
};

}  // namespace hearth
