#include "usage-log.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace hearth {

usage_log::usage_log(const std::string& db_path, zmq::context_t& zctx)
    : path_(db_path),
      db_(std::make_unique<usage_db>(db_path, true)),
      notify_endpoint_("inproc://hearth-usage-log-" + std::to_string(reinterpret_cast<uintptr_t>(this))),
      zctx_(zctx),
      notify_in_(zctx, zmq::socket_type::pair) {
    notify_in_.set(zmq::sockopt::linger, 0);
    notify_in_.set(zmq::sockopt::rcvhwm, 0);
    notify_in_.bind(notify_endpoint_);
    writer_ = std::thread([this] { writer_loop(); });
}

usage_log::~usage_log() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (writer_.joinable()) writer_.join();
}

void usage_log::submit(usage_row row, uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_rows_.push_back(std::move(row));
        queue_tokens_.push_back(token);
    }
    cv_.notify_one();
}

std::vector<uint64_t> usage_log::committed() {
    std::vector<uint64_t> out;
    zmq::message_t m;
    while (notify_in_.recv(m, zmq::recv_flags::dontwait)) {
        const size_t n = m.size() / sizeof(uint64_t);
        const auto* p = static_cast<const uint64_t*>(m.data());
        out.insert(out.end(), p, p + n);
    }
    return out;
}

void usage_log::writer_loop() {
    zmq::socket_t out(zctx_, zmq::socket_type::pair);
    out.set(zmq::sockopt::linger, 0);
    out.set(zmq::sockopt::sndhwm, 0);
    out.connect(notify_endpoint_);
    std::vector<usage_row> rows;
    std::vector<uint64_t> tokens;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait(lock, [&] { return stop_ || !queue_rows_.empty(); });
            if (queue_rows_.empty() && stop_) break;
            // Everything queued goes in one transaction: a group commit.
            rows.swap(queue_rows_);
            tokens.swap(queue_tokens_);
        }
        bool written = false;
        for (int attempt = 0;; ++attempt) {
            try {
                db_->append(rows);
                rows_written_ += rows.size();
                written = true;
                break;
            } catch (const std::exception& e) {
                // Disk full or a locked file: keep the rows and retry; replies wait meanwhile.
                spdlog::error("usage log {}: {} (attempt {}; retrying)", path_, e.what(), attempt + 1);
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 50 << std::min(attempt, 4))));
                std::lock_guard<std::mutex> lock(mu_);
                if (stop_ && attempt >= 3) break;
            }
        }
        // A FINAL goes out only for a row that is on disk: unwritten ones stay held (the client
        // resubmits or times out) rather than answered without their record.
        if (!written) spdlog::error("usage log {}: {} rows could not be written at shutdown", path_, rows.size());
        std::vector<uint64_t> done;
        for (uint64_t t : tokens)
            if (t && written) done.push_back(t);
        if (!done.empty()) out.send(zmq::buffer(done.data(), done.size() * sizeof(uint64_t)), zmq::send_flags::none);
        rows.clear();
        tokens.clear();
    }
}

}  // namespace hearth
