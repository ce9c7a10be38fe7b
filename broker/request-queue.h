// The broker's waiting lines: per service, one FIFO per priority (interactive before batch), each
// bounded. Holds request keys only; the broker keeps the requests themselves.
#pragma once

#include "protocol.h"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace hearth {

class request_queue {
public:
    request_queue(uint32_t max_interactive, uint32_t max_batch);

    // Appends a request; returns its 1-based position among the service's waiting requests
    // (interactive ones first), or nullopt when that priority's line is full.
    std::optional<uint32_t> push(const std::string& service, wire::priority prio, uint64_t key);
    // Puts a request back at the head of its line (re-dispatch after a worker died): it has waited
    // already. Never refused: it held a place before.
    void push_front(const std::string& service, wire::priority prio, uint64_t key);
    // The next request of a service (interactive first), without removing it.
    std::optional<uint64_t> peek(const std::string& service) const;
    void pop(const std::string& service);
    bool remove(const std::string& service, wire::priority prio, uint64_t key);
    std::optional<uint32_t> position(const std::string& service, wire::priority prio, uint64_t key) const;

    uint32_t depth(const std::string& service, wire::priority prio) const;
    uint32_t depth(const std::string& service) const;
    // Services with at least one waiting request.
    template <typename F> void for_each_waiting(F&& f) const {
        for (const auto& [name, lines] : lines_)
            if (!lines.interactive.empty() || !lines.batch.empty()) f(name);
    }

private:
    struct service_lines {
        std::deque<uint64_t> interactive;  // FIFO of keys
        std::deque<uint64_t> batch;        // FIFO of keys, served only when interactive is empty
    };
    std::deque<uint64_t>& line(const std::string& service, wire::priority prio);
    const service_lines* find(const std::string& service) const;

    uint32_t max_interactive_;             // bound of each service's interactive line
    uint32_t max_batch_;                   // bound of each service's batch line
    std::map<std::string, service_lines> lines_;  // by service name
};

}  // namespace hearth
