// hearth-worker: hosts one model and serves the broker's requests.
#include "byte-size.h"
#include "config.h"
#include "model.h"
#include "resource-guard.h"
#include "worker.h"
#include "watchdog-pinger.h"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>

namespace {

using hearth::watchdog_pinger;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }


}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hearth-worker: runs a GGUF model and serves requests from hearth-broker"};
    std::string config_path, model_path, endpoint, name, log_level, budget, guard_root;
    std::vector<std::string> services;
    uint32_t slots = 0, threads = 0, ctx = 0;
    app.add_option("-c,--config", config_path, "configuration file (default: $HEARTH_CONFIG, ~/.config/hearth/hearth.toml, /etc/hearth/hearth.toml)");
    app.add_option("-m,--model", model_path, "GGUF model file (overrides worker.model)");
    app.add_option("--endpoint", endpoint, "broker's worker endpoint (overrides worker.broker_endpoint)");
    app.add_option("--name", name, "name shown in hearth status (default host:pid)");
    app.add_option("--services", services, "services to serve (default complete chat)");
    app.add_option("--slots", slots, "requests decoded together (overrides worker.slots)")->check(CLI::Range(1, 64));
    app.add_option("-t,--threads", threads, "engine threads (0: all cores)");
    app.add_option("--ctx-size", ctx, "positions per slot (overrides worker.ctx_size)")->check(CLI::Range(16, 131072));
    app.add_option("--memory-budget", budget, "memory (RSS) this worker may use, e.g. 512M or 2G; 0: none (overrides worker.memory_budget)");
    app.add_option("--guard-root", guard_root, "read /proc and /sys below this directory (tests; overrides worker.guard_root)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
    app.footer("Exit status: 0 stopped, 1 failed, 2 bad usage or configuration, 3 the model does not fit in memory.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    hearth::config cfg;
    try {
        cfg = hearth::config_load(config_path);
    } catch (const hearth::config_error& e) {
        std::fprintf(stderr, "hearth-worker: %s\n", e.what());
        return 2;
    }
    if (!model_path.empty()) cfg.worker.model = model_path;
    if (!endpoint.empty()) cfg.worker.broker_endpoint = endpoint;
    if (!name.empty()) cfg.worker.name = name;
    if (!services.empty()) cfg.worker.services = services;
    if (slots) cfg.worker.slots = slots;
    if (app.count("--threads")) cfg.worker.threads = threads;
    if (ctx) cfg.worker.ctx_size = ctx;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (!guard_root.empty()) cfg.worker.guard_root = guard_root;
    if (!budget.empty()) {
        try {
            cfg.worker.memory_budget = hearth::byte_size_parse(budget);
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "hearth-worker: --memory-budget: %s\n", e.what());
            return 2;
        }
    }
    if (cfg.worker.model.empty()) {
        std::fprintf(stderr, "hearth-worker: no model: give -m FILE or set worker.model in the configuration\n");
        return 2;
    }
    // Bad keys are found now, not after loading the model.
    try {
        (void)hearth::worker_curve_keys_load(cfg.worker);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "hearth-worker: %s\n", e.what());
        return 2;
    }
    auto logger = spdlog::stderr_color_mt("hearth-worker");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);

    watchdog_pinger pinger;
    std::string loading = "STATUS=loading ";
    loading.append(cfg.worker.model);
    sd_notify(0, loading.c_str());
    // Refuse up front what would not fit, rather than be OOM-killed halfway through a request.
    try {
        const hearth::model_footprint fp = hearth::model_footprint_estimate(
            cfg.worker.model, static_cast<int32_t>(cfg.worker.ctx_size), static_cast<int32_t>(cfg.worker.slots),
            static_cast<int32_t>(cfg.worker.batch_size));
        const hearth::guard_readings now = hearth::guard_sample(hearth::guard_options_from(cfg.worker));
        const hearth::guard_fit fit = hearth::guard_fit_check(now, fp.weight_bytes, fp.kv_bytes + fp.scratch_bytes);
        if (!fit.fits) {
            std::fprintf(stderr, "hearth-worker: refusing to load %s: %s. Use a smaller model or quantisation, fewer --slots or a smaller --ctx-size, or raise the limit.\n",
                         cfg.worker.model.c_str(), fit.message.c_str());
            return 3;
        }
        spdlog::info("{}: {}", cfg.worker.model, fit.message);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth-worker: cannot load %s: %s\n", cfg.worker.model.c_str(), e.what());
        return 1;
    }
    std::unique_ptr<hearth::model> model;
    try {
        hearth::watchdog_pinger_thread during_load(pinger);  // loading may outlast WatchdogSec
        model = hearth::model::load(cfg.worker.model);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth-worker: cannot load %s: %s\n", cfg.worker.model.c_str(), e.what());
        return 1;
    }
    try {
        zmq::context_t zctx;
        hearth::worker w(cfg, *model, std::filesystem::path(cfg.worker.model).stem().string(), zctx);
        // The model is in memory and the engine thread runs: the broker may send work.
        std::string ready = "READY=1\nSTATUS=serving ";
        ready.append(cfg.worker.model).append(" to ").append(cfg.worker.broker_endpoint);
        sd_notify(0, ready.c_str());
        w.on_tick = [&pinger] { pinger.tick(); };
        w.run(g_stop);
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    return 0;
}
