// hearth-broker: the message broker between clients and workers.
#include "broker.h"
#include "config.h"
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
#include <iostream>

namespace {

using hearth::watchdog_pinger;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int) { g_stop.store(true); }
void on_hangup(int) { g_reload.store(true); }

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hearth-broker: queues requests from hearth clients and dispatches them to hearth workers"};
    std::string config_path, client_ep, worker_ep, log_level, whitelist_path;
    bool print_config = false;
    app.add_option("-c,--config", config_path, "configuration file (default: $HEARTH_CONFIG, ~/.config/hearth/hearth.toml, /etc/hearth/hearth.toml)");
    app.add_option("--client-endpoint", client_ep, "where clients connect (overrides broker.client_endpoint)");
    app.add_option("--worker-endpoint", worker_ep, "where workers connect (overrides broker.worker_endpoint)");
    app.add_option("--whitelist", whitelist_path, "safety whitelist file (overrides broker.whitelist; SIGHUP reloads it)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off (overrides log_level)");
    app.add_flag("--print-config", print_config, "print the effective configuration as TOML and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    hearth::config cfg;
    try {
        cfg = hearth::config_load(config_path);
        if (!client_ep.empty()) cfg.broker.client_endpoint = client_ep;
        if (!worker_ep.empty()) cfg.broker.worker_endpoint = worker_ep;
        if (!log_level.empty()) cfg.log_level = log_level;
        if (!whitelist_path.empty()) cfg.broker.whitelist = whitelist_path;
    } catch (const hearth::config_error& e) {
        std::fprintf(stderr, "hearth-broker: %s\n", e.what());
        return 2;
    }
    if (print_config) {
        std::cout << hearth::config_to_toml(cfg);
        return 0;
    }
    auto logger = spdlog::stderr_color_mt("hearth-broker");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGHUP, on_hangup);
    try {
        zmq::context_t zctx;
        watchdog_pinger pinger;  // before the broker: its on_tick refers to it
        hearth::broker b(cfg, zctx);
        if (!cfg.source.empty()) spdlog::info("broker: configuration from {}", cfg.source);
        // Both sockets are bound: workers and clients started after us (After=) can connect.
        std::string ready = "READY=1\nSTATUS=serving clients on ";
        ready.append(b.client_endpoint()).append(", workers on ").append(b.worker_endpoint());
        sd_notify(0, ready.c_str());
        pinger.tick();
        b.on_tick = [&pinger] { pinger.tick(); };
        b.run(g_stop, &g_reload);
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    } catch (const zmq::error_t& e) {
        spdlog::error("cannot serve on {} / {}: {}", cfg.broker.client_endpoint, cfg.broker.worker_endpoint, e.what());
        return 1;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    return 0;
}
