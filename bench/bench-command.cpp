// The `command` service's speed: the fast path and the output filter in-process (per utterance),
// and end to end through a real hearth-broker and hearth-worker on the trained command model, one
// request at a time, split by who answered (fast path or the model under its grammar). The
// grammar mask's own cost per token is bench-grammar's.
#include "client.h"
#include "command-match.h"
#include "command.h"
#include "config.h"
#include "whitelist.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using bench_clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// A child process, SIGTERM then SIGKILL on the way out.
struct child {
    pid_t pid = -1;  // -1: none
    child(std::vector<std::string> args, const fs::path& log) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        if (pid < 0) throw std::runtime_error("cannot start " + args[0]);
    }
    ~child() {
        if (pid <= 0) return;
        kill(pid, SIGTERM);
        for (int i = 0; i < 300; ++i) {
            if (waitpid(pid, nullptr, WNOHANG) == pid) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

struct options {
    std::string model;                       // the command model
    std::string visible;                     // the utterances
    std::string whitelist;                   // the demo whitelist
    int rounds = 20;                         // in-process passes over the utterances
    int threads = 1;                         // the worker's engine threads
};

}  // namespace

int main(int argc, char** argv) {
    const std::string shared = std::getenv("HEARTH_SHARED") ? std::getenv("HEARTH_SHARED") : HEARTH_SHARED_DEFAULT;
    options o;
    o.model = shared + "/models/hearth-cmd-q8_0.gguf";
    o.visible = shared + "/models/hearth-cmd-visible.jsonl";
    o.whitelist = std::string(HEARTH_SOURCE_DIR) + "/schema/demo-home.whitelist.toml";
    CLI::App app{"bench-command: the command service's fast path, output filter, and end-to-end latency by path"};
    app.add_option("--model", o.model, "command model (GGUF)")->capture_default_str();
    app.add_option("--visible", o.visible, "utterances, JSONL with a \"text\" field")->capture_default_str();
    app.add_option("--whitelist", o.whitelist, "whitelist file")->capture_default_str();
    app.add_option("--rounds", o.rounds, "in-process passes over the utterances")->capture_default_str();
    app.add_option("--threads", o.threads, "worker engine threads")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    std::vector<std::string> texts;
    {
        std::ifstream in(o.visible);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) texts.push_back(nlohmann::json::parse(line)["text"]);
    }
    if (texts.empty()) {
        std::fprintf(stderr, "bench-command: no utterances in %s\n", o.visible.c_str());
        return 1;
    }
    const hearth::whitelist wl = hearth::whitelist_load(o.whitelist);
    const hearth::command_matcher fast(wl);

    // In-process: the fast path, hits and misses apart, and the output filter on its answers.
    std::vector<double> hit_us, miss_us, check_us;
    std::vector<std::string> answers;
    size_t hits = 0;
    for (int round = 0; round < o.rounds; ++round) {
        for (const std::string& t : texts) {
            const auto t0 = bench_clock::now();
            auto m = fast.match("local", t);
            const double us = std::chrono::duration<double, std::micro>(bench_clock::now() - t0).count();
            (m ? hit_us : miss_us).push_back(us);
            if (round == 0 && m) {
                ++hits;
                answers.push_back(*m);
            }
        }
        for (const std::string& a : answers) {
            const auto t0 = bench_clock::now();
            (void)hearth::command_check(wl, "local", a);
            check_us.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() - t0).count());
        }
    }
    std::printf("%zu utterances, %d rounds in-process; the fast path answers %zu\n\n", texts.size(), o.rounds, hits);
    std::printf("| in-process | calls | mean us | p50 us | p99 us |\n|---|--:|--:|--:|--:|\n");
    std::printf("| fast path, matched | %zu | %.1f | %.1f | %.1f |\n", hit_us.size(), mean(hit_us), percentile(hit_us, 0.5), percentile(hit_us, 0.99));
    std::printf("| fast path, not matched | %zu | %.1f | %.1f | %.1f |\n", miss_us.size(), mean(miss_us), percentile(miss_us, 0.5),
                percentile(miss_us, 0.99));
    std::printf("| output filter (command_check) | %zu | %.1f | %.1f | %.1f |\n\n", check_us.size(), mean(check_us), percentile(check_us, 0.5),
                percentile(check_us, 0.99));

    // End to end through real processes.
    const fs::path self = fs::canonical("/proc/self/exe").parent_path();
    const fs::path dir = fs::temp_directory_path() / ("hearth-bench-command-" + std::to_string(getpid()));
    fs::create_directories(dir);
    hearth::config cfg = hearth::config_defaults();
    cfg.runtime_dir = (dir / "run").string();
    cfg.state_dir = (dir / "state").string();
    cfg.broker.client_endpoint = "ipc://" + (dir / "run" / "client.sock").string();
    cfg.broker.worker_endpoint = "ipc://" + (dir / "run" / "worker.sock").string();
    cfg.broker.usage_db = (dir / "state" / "usage.db").string();
    cfg.broker.whitelist = o.whitelist;
    cfg.worker.broker_endpoint = cfg.broker.worker_endpoint;
    cfg.worker.services = {"command"};
    cfg.worker.slots = 1;
    cfg.worker.threads = static_cast<uint32_t>(o.threads);
    cfg.log_level = "warn";
    std::ofstream(dir / "hearth.toml") << hearth::config_to_toml(cfg);
    std::vector<double> fast_ms, model_ms;
    {
        child broker({(self / ".." / "broker" / "hearth-broker").string(), "--config", (dir / "hearth.toml").string()}, dir / "broker.log");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        child worker({(self / ".." / "workers" / "hearth-worker").string(), "--config", (dir / "hearth.toml").string(), "-m", o.model},
                     dir / "worker.log");
        hearth::client_options co;
        co.endpoint = cfg.broker.client_endpoint;
        hearth::client c(co);
        for (int i = 0; i < 100; ++i) {  // until the worker is in
            std::string err;
            auto s = c.status(1000, &err);
            if (s && !s->workers.empty()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        for (int warm = 0; warm < 2; ++warm)
            for (const std::string& t : texts) {
                hearth::wire::request r;
                r.service = "command";
                r.prompt = t;
                r.temperature = 0;
                r.max_tokens = 128;
                r.stream = false;
                const auto t0 = bench_clock::now();
                const auto res = c.call(r);
                const double ms = std::chrono::duration<double, std::milli>(bench_clock::now() - t0).count();
                if (res.transport_failed) {
                    std::fprintf(stderr, "bench-command: %s (logs in %s)\n", res.transport_message.c_str(), dir.c_str());
                    return 1;
                }
                if (warm == 0) continue;  // the first pass warms caches and the grammar
                (res.ok && res.final.use.model == "fast-path" ? fast_ms : model_ms).push_back(ms);
            }
    }
    std::printf("| end to end (hearth::client -> broker -> %s) | requests | mean ms | p50 ms | p90 ms | p99 ms |\n", "worker");
    std::printf("|---|--:|--:|--:|--:|--:|\n");
    std::printf("| answered by the fast path | %zu | %.3f | %.3f | %.3f | %.3f |\n", fast_ms.size(), mean(fast_ms), percentile(fast_ms, 0.5),
                percentile(fast_ms, 0.9), percentile(fast_ms, 0.99));
    std::printf("| by the model under the grammar (or refused after it) | %zu | %.3f | %.3f | %.3f | %.3f |\n", model_ms.size(), mean(model_ms),
                percentile(model_ms, 0.5), percentile(model_ms, 0.9), percentile(model_ms, 0.99));
    fs::remove_all(dir);
    return 0;
}
