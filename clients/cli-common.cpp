#include "cli.h"

#include "config.h"

#include <csignal>
#include <cstdio>
#include <cstring>

namespace hearth::cli {

const char* const exit_codes_help =
    "Exit codes: 0 ok; 1 failure (worker_lost, timeout, cancelled, internal, no broker answering);\n"
    "2 usage error (bad flags or configuration); 3 refused by the broker (bad_request, bad_version,\n"
    "unknown_service, too_large, queue_full, quota_exceeded, unauthorized, no_worker, overloaded);\n"
    "4 filtered; 5 unsupported; 130 interrupted (SIGINT cancels the running request; a batch keeps running).";

int exit_code_for(wire::error_code c) {
    switch (c) {
    case wire::error_code::bad_request:
    case wire::error_code::bad_version:
    case wire::error_code::unknown_service:
    case wire::error_code::too_large:
    case wire::error_code::queue_full:
    case wire::error_code::quota_exceeded:
    case wire::error_code::unauthorized:
    case wire::error_code::no_worker:
    case wire::error_code::overloaded:
        return exit_refused;
    case wire::error_code::filtered:
        return exit_filtered;
    case wire::error_code::unsupported:
        return exit_unsupported;
    case wire::error_code::worker_lost:
    case wire::error_code::timeout:
    case wire::error_code::cancelled:
    case wire::error_code::internal:
        return exit_failure;
    }
    return exit_failure;
}

client_options client_options_make(const globals& g) {
    config cfg;
    try {
        cfg = config_load(g.config_path);
    } catch (const std::exception& e) {
        throw usage_error(std::string("config: ").append(e.what()));
    }
    client_options o;
    o.endpoint = g.endpoint.empty() ? cfg.client.broker_endpoint : g.endpoint;
    o.heartbeat_ms = cfg.broker.heartbeat_ms ? cfg.broker.heartbeat_ms : 1000;
    o.broker_timeout_ms = static_cast<uint32_t>(g.broker_timeout_ms);
    o.timeout_ms = g.timeout_ms >= 0 ? static_cast<uint32_t>(g.timeout_ms) : cfg.client.timeout_ms;
    o.interrupted = &interrupt_flag();
    if (o.endpoint.empty()) throw usage_error("no broker endpoint (give --endpoint or set client.broker_endpoint)");
    o.curve_secret_key = g.key.empty() ? cfg.client.curve_secret_key : g.key;
    o.broker_public_key = g.broker_key.empty() ? cfg.client.broker_public_key : g.broker_key;
    // Checked here so a bad key file is a usage error whatever the subcommand does with failures.
    try {
        (void)client_curve_keys_load(o);
    } catch (const std::invalid_argument& e) {
        throw usage_error(e.what());
    }
    return o;
}

int error_print(const wire::error_reply& e) {
    std::string line = "hearth: ";
    line.append(wire::error_code_name(e.code)).append(": ").append(e.message);
    if (e.retry_after_ms) line.append(" (retry after ").append(std::to_string(e.retry_after_ms)).append(" ms)");
    std::fprintf(stderr, "%s\n", line.c_str());
    return exit_code_for(e.code);
}

int transport_error_print(const std::string& message) {
    std::fprintf(stderr, "hearth: transport: %s\n", message.c_str());
    return exit_failure;
}

std::atomic<bool>& interrupt_flag() {
    static std::atomic<bool> flag{false};
    return flag;
}

namespace {
extern "C" void on_sigint(int) { interrupt_flag().store(true); }
}  // namespace

void interrupt_install() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    // No SA_RESTART: a blocking poll or read returns at once so the request is cancelled promptly.
    // SA_RESETHAND: a second Ctrl-C ends the process even if the broker never answers the cancel.
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, nullptr);
}

uint32_t duration_parse(const std::string& text) {
    std::string bad = "bad duration '";
    bad.append(text).append("' (examples: 500ms, 30s, 2m; a plain number is ms)");
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        throw usage_error(bad);
    }
    const std::string unit = text.substr(used);
    double scale = 0;
    if (unit.empty() || unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m" || unit == "min") scale = 60000;
    else if (unit == "h") scale = 3600000;
    else throw usage_error(bad);
    const double ms = v * scale;
    if (!(ms >= 0) || ms > 4294967295.0) throw usage_error(bad);
    return static_cast<uint32_t>(ms + 0.5);
}

void request_options::add(CLI::App* app) {
    app->add_option("-n,--max-tokens", max_tokens, "tokens to generate at most")->capture_default_str()->check(CLI::Range(0, 1 << 20));
    app->add_option("--temp", temperature, "temperature; 0 = greedy")->capture_default_str()->check(CLI::Range(0.0, 100.0));
    app->add_option("--top-k", top_k, "top-k (0: off)")->capture_default_str()->check(CLI::Range(0, 1 << 24));
    app->add_option("--top-p", top_p, "top-p (1: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
    app->add_option("--min-p", min_p, "min-p (0: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
    app->add_option("--repeat-penalty", repeat_penalty, "repetition penalty (1: off)")->capture_default_str()->check(CLI::Range(0.0, 10.0));
    seed_option = app->add_option("-s,--seed", seed, "random seed (default: random)");
    app->add_option("--stop", stop, "stop generating at this string (repeatable)")->take_all();
    app->add_option("--priority", priority, "interactive or batch")->capture_default_str()->check(CLI::IsMember({"interactive", "batch"}));
    app->add_option("--deadline", deadline, "give up unless done within this (500ms, 30s, 2m; a number is ms)");
    app->add_flag("--no-stream", no_stream, "print the reply only once it is complete");
}

void request_options::apply(wire::request& r) const {
    r.max_tokens = max_tokens;
    r.temperature = temperature;
    r.top_k = top_k;
    r.top_p = top_p;
    r.min_p = min_p;
    r.repeat_penalty = repeat_penalty;
    if (seed_option && seed_option->count()) r.seed = seed;
    r.stop = stop;
    r.prio = priority == "batch" ? wire::priority::batch : wire::priority::interactive;
    r.deadline_ms = deadline.empty() ? 0 : duration_parse(deadline);
    r.stream = !no_stream;
}

nlohmann::json final_json(const wire::final_reply& f) {
    const wire::usage& u = f.use;
    return {{"id", f.id},
            {"text", f.text},
            {"finish_reason", f.finish_reason},
            {"usage",
             {{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"queue_ms", u.queue_ms},
              {"ttft_ms", u.ttft_ms},
              {"total_ms", u.total_ms},
              {"tokens_per_s", u.tokens_per_s},
              {"worker", u.worker},
              {"model", u.model}}}};
}

nlohmann::json error_json(const std::string& id, const std::string& code, const std::string& message, uint32_t retry_after_ms) {
    nlohmann::json e = {{"code", code}, {"message", message}};
    if (retry_after_ms) e["retry_after_ms"] = retry_after_ms;
    return {{"id", id}, {"error", e}};
}

nlohmann::json status_json(const wire::status_reply& s) {
    nlohmann::json services = nlohmann::json::array(), workers = nlohmann::json::array();
    for (const auto& sv : s.services)
        services.push_back({{"name", sv.name}, {"interactive", sv.interactive}, {"batch", sv.batch}, {"running", sv.running}, {"workers", sv.workers},
                            {"throttled", sv.throttled}, {"critical", sv.critical}, {"note", sv.note}});
    for (const auto& w : s.workers) {
        nlohmann::json one = {{"id", w.id}, {"model", w.model}, {"services", w.services}, {"slots", w.slots}, {"busy", w.busy},
                              {"guard", w.guard}, {"last_seen_ms", w.last_seen_ms}};
        if (w.memory) {
            const wire::memory_report& m = *w.memory;
            // Unknown readings are null rather than 0 or -1, so scripts cannot mistake them for values.
            auto bytes = [](uint64_t v) { return v ? nlohmann::json(v) : nlohmann::json(); };
            auto pct = [](double v) { return v >= 0 ? nlohmann::json(v) : nlohmann::json(); };
            one["memory"] = {{"reason", m.reason}, {"slots_now", m.slots_now}, {"mem_total", bytes(m.mem_total)},
                             {"mem_available", bytes(m.mem_available)}, {"psi_some", pct(m.psi_some)}, {"psi_full", pct(m.psi_full)},
                             {"cgroup_current", bytes(m.cgroup_current)},
                             {"cgroup_limit", m.cgroup_limit == UINT64_MAX ? nlohmann::json("max") : bytes(m.cgroup_limit)},
                             {"rss", bytes(m.rss)}, {"budget", bytes(m.budget)}};
        }
        workers.push_back(std::move(one));
    }
    return {{"services", services}, {"workers", workers}, {"uptime_s", s.uptime_s}, {"served", s.served}};
}

namespace {

std::string json_dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

void usage_summary(const client_result& res) {
    const wire::usage& u = res.final.use;
    std::fprintf(stderr,
                 "hearth: %s: prompt %d tokens, completion %d tokens, queue %.0f ms, ttft %.0f ms, total %.0f ms, %.1f tok/s, "
                 "worker %s (%s), finish %s\n",
                 res.final.id.c_str(), u.prompt_tokens, u.completion_tokens, u.queue_ms, u.ttft_ms, u.total_ms, u.tokens_per_s,
                 u.worker.empty() ? "?" : u.worker.c_str(), u.model.empty() ? "?" : u.model.c_str(), res.final.finish_reason.c_str());
}

}  // namespace

int result_print(const globals& g, const client_result& res, const std::string& id, const std::string& streamed) {
    if (res.ok) {
        if (g.json) {
            std::printf("%s\n", json_dump(final_json(res.final)).c_str());
        } else {
            // Whatever the stream did not deliver (no stream, or a resubmission that sent none).
            const std::string& t = res.final.text;
            if (t.size() > streamed.size() && t.compare(0, streamed.size(), streamed) == 0) std::fputs(t.c_str() + streamed.size(), stdout);
            else if (streamed.empty()) std::fputs(t.c_str(), stdout);
            std::fputs("\n", stdout);
        }
        std::fflush(stdout);
        if (g.verbose) usage_summary(res);
        return exit_ok;
    }
    if (!g.json && !streamed.empty()) std::fputs("\n", stdout);  // end the half-written line
    if (interrupt_flag().load()) {
        std::fflush(stdout);
        return exit_interrupted;
    }
    int rc;
    if (res.transport_failed) {
        if (g.json) std::printf("%s\n", json_dump(error_json(id, "transport", res.transport_message)).c_str());
        rc = transport_error_print(res.transport_message);
    } else {
        const std::string code(wire::error_code_name(res.error.code));
        if (g.json) std::printf("%s\n", json_dump(error_json(id, code, res.error.message, res.error.retry_after_ms)).c_str());
        rc = error_print(res.error);
    }
    std::fflush(stdout);
    return rc;
}

void table_print(const table& t) {
    std::vector<size_t> width;
    for (const auto& row : t)
        for (size_t i = 0; i < row.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], row[i].size());
        }
    for (const auto& row : t) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
        }
        std::printf("%s\n", line.c_str());
    }
}

}  // namespace hearth::cli
