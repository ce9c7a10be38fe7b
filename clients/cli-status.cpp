// hearth status: the broker's queues and workers, as tables or (--json) as one object.
#include "cli.h"

#include <algorithm>
#include <cstdio>

namespace hearth::cli {

namespace {



std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) {
        if (!s.empty()) s += ',';
        s += x;
    }
    return s;
}

std::string seconds(double ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s ago", ms / 1000.0);
    return buf;
}

int status_run(const globals& g) {
    const client_options co = client_options_make(g);
    client c(co);
    std::string err;
    const int wait = g.timeout_ms > 0 ? static_cast<int>(g.timeout_ms) : static_cast<int>(co.broker_timeout_ms);
    const std::optional<wire::status_reply> s = c.status(wait, &err);
    if (!s) {
        if (interrupt_flag().load()) return exit_interrupted;
        // A refusal from the broker comes as "<code>: <message>".
        const size_t colon = err.find(": ");
        if (colon != std::string::npos) {
            if (auto code = wire::error_code_from_name(err.substr(0, colon))) {
                if (g.json) std::printf("%s\n", error_json("", err.substr(0, colon), err.substr(colon + 2)).dump().c_str());
                wire::error_reply e;
                e.code = *code;
                e.message = err.substr(colon + 2);
                return error_print(e);
            }
        }
        if (g.json) std::printf("%s\n", error_json("", "transport", err).dump().c_str());
        return transport_error_print(err);
    }
    if (g.json) {
        std::printf("%s\n", status_json(*s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        return exit_ok;
    }
    table services = {{"SERVICE", "QUEUED-INTERACTIVE", "QUEUED-BATCH", "RUNNING", "WORKERS"}};
    for (const auto& sv : s->services) {
        std::string workers = std::to_string(sv.workers);
        if (sv.throttled || sv.critical) {
            workers.append(" (");
            if (sv.throttled) workers.append(std::to_string(sv.throttled)).append(" throttled");
            if (sv.throttled && sv.critical) workers.append(", ");
            if (sv.critical) workers.append(std::to_string(sv.critical)).append(" critical");
            workers.append(")");
        }
        services.push_back({sv.name, std::to_string(sv.interactive), std::to_string(sv.batch), std::to_string(sv.running), workers});
    }
    table_print(services);
    for (const auto& sv : s->services)
        if (!sv.note.empty()) std::printf("%s: %s\n", sv.name.c_str(), sv.note.c_str());
    std::printf("\n");
    if (s->workers.empty()) {
        std::printf("no workers\n");
    } else {
        table workers = {{"WORKER", "MODEL", "SERVICES", "SLOTS", "GUARD", "LAST-SEEN"}};
        for (const auto& w : s->workers)
            workers.push_back({w.id, w.model, join(w.services), std::to_string(w.busy) + "/" + std::to_string(w.slots), w.guard, seconds(w.last_seen_ms)});
        table_print(workers);
        // The readings behind each guard state, one line per worker (too wide for the table).
        std::printf("\nmemory:\n");
        for (const auto& w : s->workers) {
            std::string line = "  ";
            line.append(w.id).append(": ").append(w.guard);
            if (w.memory && !w.memory->reason.empty()) line.append(" (").append(w.memory->reason).append(")");
            const std::string readings = w.memory ? wire::memory_report_describe(*w.memory) : std::string();
            line.append(readings.empty() ? "; no readings" : "; " + readings);
            std::printf("%s\n", line.c_str());
        }
    }
    std::printf("\nbroker up %.0f s, %llu requests served\n", s->uptime_s, static_cast<unsigned long long>(s->served));
    return exit_ok;
}

}  // namespace

void status_add(CLI::App& app, command_list& cmds) {
    CLI::App* sub = app.add_subcommand("status", "show the broker's queues per service and its workers (slots busy, guard state)");
    cmds.push_back({sub, [](const globals& g) { return status_run(g); }});
}

}  // namespace hearth::cli
