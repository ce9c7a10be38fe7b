#include "usage-log.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>

namespace hearth {

namespace {

// Notify messages, one frame each: 'c' + committed tokens (uint64 each), or 'a' + token + ok
// byte + error text for a task's answer.
constexpr char kCommitted = 'c';
constexpr char kAnswer = 'a';

// Runs one task or query and sends its answer (when someone waits for it).
template <typename F>
void answer_send(zmq::socket_t& out, uint64_t token, F&& work, const std::string& path) {
    bool ok = false;
    std::string error;
    try {
        work();
        ok = true;
    } catch (const std::exception& e) {
        error = e.what();
        spdlog::error("usage log {}: {}", path, error);
    }
    if (!token) return;
    std::string msg(1, kAnswer);
    msg.append(reinterpret_cast<const char*>(&token), sizeof token);
    msg.push_back(ok ? 1 : 0);
    msg.append(error);
    out.send(zmq::buffer(msg), zmq::send_flags::none);
}

zmq::socket_t push_connect(zmq::context_t& zctx, const std::string& endpoint) {
    zmq::socket_t out(zctx, zmq::socket_type::push);
    out.set(zmq::sockopt::linger, 0);
    out.set(zmq::sockopt::sndhwm, 0);
    out.connect(endpoint);
    return out;
}

}  // namespace

usage_log::usage_log(const std::string& db_path, zmq::context_t& zctx, bool background_checkpoints)
    : path_(db_path),
      db_(std::make_unique<usage_db>(db_path, true)),
      batches_(std::make_unique<batch_store>(*db_)),
      unfinished_(batches_->unfinished()),
      notify_endpoint_("inproc://hearth-usage-log-" + std::to_string(reinterpret_cast<uintptr_t>(this))),
      zctx_(zctx),
      notify_in_(zctx, zmq::socket_type::pull),
      reader_db_(std::make_unique<usage_db>(db_path, false)),
      background_checkpoints_(background_checkpoints) {
    if (background_checkpoints_) db_->checkpoint_auto(false);
    notify_in_.set(zmq::sockopt::linger, 0);
    notify_in_.set(zmq::sockopt::rcvhwm, 0);
    notify_in_.bind(notify_endpoint_);
    writer_ = std::thread([this] { writer_loop(); });
    reader_ = std::thread([this] { reader_loop(); });
}

usage_log::~usage_log() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    reader_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (reader_.joinable()) reader_.join();
}

void usage_log::submit(usage_row row, uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(item{std::move(row), std::nullopt, nullptr, token, std::nullopt});
    }
    cv_.notify_one();
}

void usage_log::submit(usage_row row, job_outcome outcome, uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(item{std::move(row), std::move(outcome), nullptr, token, std::nullopt});
    }
    cv_.notify_one();
}

void usage_log::submit(worker_event event) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        item it;
        it.event = std::move(event);
        queue_.push_back(std::move(it));
    }
    cv_.notify_one();
}

void usage_log::run(log_task task, uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(item{usage_row{}, std::nullopt, std::move(task), token, std::nullopt});
    }
    cv_.notify_one();
}

void usage_log::read(log_query query, uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        reads_.emplace_back(std::move(query), token);
    }
    reader_cv_.notify_one();
}

log_events usage_log::drain() {
    log_events ev;
    zmq::message_t m;
    while (notify_in_.recv(m, zmq::recv_flags::dontwait)) {
        const char* p = static_cast<const char*>(m.data());
        if (m.size() < 1) continue;
        if (p[0] == kCommitted) {
            const size_t n = (m.size() - 1) / sizeof(uint64_t);
            for (size_t i = 0; i < n; ++i) {
                uint64_t t = 0;
                std::memcpy(&t, p + 1 + i * sizeof t, sizeof t);
                ev.committed.push_back(t);
            }
        } else if (p[0] == kAnswer && m.size() >= 2 + sizeof(uint64_t)) {
            log_answer a;
            std::memcpy(&a.token, p + 1, sizeof a.token);
            a.ok = p[1 + sizeof a.token] != 0;
            a.error.assign(p + 2 + sizeof a.token, m.size() - 2 - sizeof a.token);
            ev.answers.push_back(std::move(a));
        }
    }
    return ev;
}

bool usage_log::rows_write(std::vector<usage_row>& rows, const std::vector<job_outcome>& outcomes) {
    for (int attempt = 0;; ++attempt) {
        try {
            if (outcomes.empty()) db_->append(rows);
            else batches_->record_results(outcomes, rows);
            rows_written_ += rows.size();
            return true;
        } catch (const std::exception& e) {
            // Disk full or a locked file: keep the rows and retry; replies wait meanwhile.
            spdlog::error("usage log {}: {} (attempt {}; retrying)", path_, e.what(), attempt + 1);
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 4))));
            std::lock_guard<std::mutex> lock(mu_);
            if (stop_ && attempt >= 3) return false;
        }
    }
}

void usage_log::events_write(std::vector<worker_event>& events) {
    if (events.empty()) return;
    try {
        db_->events_append(events);
    } catch (const std::exception& e) {
        spdlog::error("usage log {}: {} worker event(s) lost: {}", path_, events.size(), e.what());
    }
    events.clear();
}

void usage_log::reader_loop() {
    zmq::socket_t out = push_connect(zctx_, notify_endpoint_);
    std::vector<std::pair<log_query, uint64_t>> work;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            // Wakes for queries, and a few times a second to checkpoint what the writer committed.
            reader_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_ || !reads_.empty(); });
            if (stop_) break;  // nobody is left to read an answer
            work.swap(reads_);
        }
        if (background_checkpoints_ && rows_written_.load() != checkpointed_rows_) {
            checkpointed_rows_ = rows_written_.load();
            reader_db_->checkpoint_passive();
        }
        for (auto& [query, token] : work) answer_send(out, token, [&] { query(*reader_db_); }, path_);
        work.clear();
    }
}

void usage_log::writer_loop() {
    zmq::socket_t out = push_connect(zctx_, notify_endpoint_);
    std::vector<item> items;
    std::vector<usage_row> rows;
    std::vector<job_outcome> outcomes;
    std::vector<uint64_t> tokens;
    std::vector<worker_event> events;
    std::string msg;
    // Commits the rows gathered so far (one transaction: the group commit) and reports them.
    auto flush = [&] {
        if (rows.empty()) return;
        // A FINAL goes out only for a row that is on disk: unwritten ones stay held (the client
        // resubmits or times out) rather than answered without their record.
        const bool written = rows_write(rows, outcomes);
        if (!written) spdlog::error("usage log {}: {} rows could not be written at shutdown", path_, rows.size());
        msg.assign(1, kCommitted);
        for (uint64_t t : tokens)
            if (t && written) msg.append(reinterpret_cast<const char*>(&t), sizeof t);
        if (msg.size() > 1) out.send(zmq::buffer(msg), zmq::send_flags::none);
        rows.clear();
        outcomes.clear();
        tokens.clear();
    };
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty() && stop_) break;
            items.swap(queue_);
        }
        for (item& it : items) {
            if (it.event) {
                events.push_back(std::move(*it.event));
                continue;
            }
            if (!it.task) {
                rows.push_back(std::move(it.row));
                if (it.outcome) outcomes.push_back(std::move(*it.outcome));
                tokens.push_back(it.token);
                continue;
            }
            flush();  // a task sees everything handed over before it
            answer_send(out, it.token, [&] { it.task(*batches_); }, path_);
        }
        flush();
        events_write(events);
        items.clear();
    }
}

}  // namespace hearth
