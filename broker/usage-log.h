// The broker's usage log writer: a thread that owns the SQLite connection. The broker's loop hands
// it rows and never waits on disk; rows are committed in groups, and the loop learns which are
// durable through an inproc socket it polls, so it can release each request's FINAL only after
// its row is committed.
#pragma once

#include "usage-db.h"

#include <zmq.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hearth {

class usage_log {
public:
    // Opens (and migrates) the database now, so a bad file fails the broker's start.
    usage_log(const std::string& db_path, zmq::context_t& zctx);
    ~usage_log();  // commits what is queued, then stops
    usage_log(const usage_log&) = delete;
    usage_log& operator=(const usage_log&) = delete;

    // Queues a row; `token` (non-zero) comes back from committed() once the row is durable.
    // Token 0: nobody waits for it.
    void submit(usage_row row, uint64_t token);
    // The socket the broker polls: readable when commits happened.
    zmq::socket_t& notify_socket() { return notify_in_; }
    // Tokens of rows committed since the last call (reads what the socket holds, never blocks).
    std::vector<uint64_t> committed();

    uint64_t rows_written() const { return rows_written_.load(); }
    const std::string& path() const { return path_; }

private:
    void writer_loop();

    std::string path_;                     // the database file
    std::unique_ptr<usage_db> db_;         // used by the writer thread only, after construction
    std::string notify_endpoint_;          // inproc link writer -> broker
    zmq::context_t& zctx_;
    zmq::socket_t notify_in_;              // broker side (PAIR)
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<usage_row> queue_rows_;    // guarded by mu_
    std::vector<uint64_t> queue_tokens_;   // guarded by mu_, parallel to queue_rows_
    bool stop_ = false;                    // guarded by mu_
    std::atomic<uint64_t> rows_written_{0};
    std::thread writer_;
};

}  // namespace hearth
