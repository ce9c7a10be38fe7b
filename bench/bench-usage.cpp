// bench-usage: what the usage log costs. (a) usage_db::append alone, at several rows per
// transaction (the group size the writer thread gets when requests finish together); (b) the
// broker's writer thread (usage_log) driven the way the broker drives it, from one thread that
// submits rows with tokens and waits on the notify socket: as fast as a bounded window of rows in
// flight allows, and at fixed offered rates. submit -> committed is exactly how long the broker
// holds a request's FINAL.
#include "usage-db.h"
#include "usage-log.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <zmq.hpp>

#include <poll.h>
#include <stdlib.h>
#include <sys/statfs.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;

double seconds_between(bench_clock::time_point a, bench_clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string loadavg_read() {
    std::ifstream f("/proc/loadavg");
    std::string s;
    std::getline(f, s);
    return s;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)];
}

// A row as the broker writes it for a finished chat request: the same fields filled, strings of
// the usual lengths (a client id of 20 characters, a model file name, a worker name).
hearth::usage_row row_make(uint64_t n) {
    hearth::usage_row r;
    char id[32];
    std::snprintf(id, sizeof id, "req-%016llx", static_cast<unsigned long long>(n * 0x9e3779b97f4a7c15ULL));
    r.request_id = id;
    r.client = "local";
    r.service = (n % 4 == 0) ? "complete" : "chat";
    r.priority = (n % 8 == 0) ? "batch" : "interactive";
    r.model = "smollm2-135m-instruct-q8_0";
    r.worker = "worker-" + std::to_string(n % 2);
    const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    r.received_us = now - 1500000;
    r.started_us = now - 1499000;
    r.first_token_us = now - 1400000;
    r.finished_us = now;
    r.prompt_tokens = static_cast<int32_t>(20 + n % 200);
    r.completion_tokens = static_cast<int32_t>(1 + n % 256);
    r.status = (n % 50 == 0) ? "cancelled" : "ok";
    r.filter_verdict = "allowed";
    return r;
}

// A fresh directory under `parent`, removed with everything in it when this goes away.
struct temp_dir {
    fs::path path;                         // the directory

    explicit temp_dir(const fs::path& parent) {
        std::string tmpl = (parent / "bench-usage-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory under " + parent.string());
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

// The file system type, so a table measured on tmpfs is not mistaken for one on a disk.
std::string fs_type_of(const fs::path& p) {
    struct statfs s {};
    if (statfs(p.c_str(), &s) != 0) return "unknown";
    switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994UL: return "tmpfs";
    case 0xEF53UL: return "ext4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794c7630UL: return "overlayfs";
    default: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
        return buf;
    }
    }
}

// ------------------------------------------------------------------ (a) usage_db::append

struct append_result {
    std::string synchronous;               // the PRAGMA synchronous in force (normal, as shipped; full)
    int group = 0;                         // rows per append (transaction)
    double seconds = 0;                    // measured
    uint64_t rows = 0;                     // appended in the window
    double rows_per_s = 0;
    double commits_per_s = 0;
    double p50_us = 0, p99_us = 0;         // per append call (one transaction)
};

append_result append_run(const fs::path& parent, int group, const std::string& synchronous, double seconds) {
    temp_dir dir(parent);
    hearth::usage_db db((dir.path / "usage.db").string());
    if (synchronous == "full") {
        // The shipped setting is NORMAL; FULL shows what an fsync per commit would cost.
        if (sqlite3_exec(db.handle(), "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr) != SQLITE_OK)
            throw std::runtime_error("cannot set PRAGMA synchronous = FULL");
    }
    // Rows are made before the clock starts: only the database work is timed.
    std::vector<hearth::usage_row> tmpl;
    for (int i = 0; i < group; ++i) tmpl.push_back(row_make(static_cast<uint64_t>(i)));
    std::vector<hearth::usage_row> rows;
    std::vector<double> lat;
    uint64_t n = 0;
    const auto start = bench_clock::now();
    const auto end = start + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(seconds));
    auto now = start;
    while (now < end) {
        rows = tmpl;  // append fills seq and the hashes: start from clean copies
        const auto t0 = bench_clock::now();
        db.append(rows);
        now = bench_clock::now();
        lat.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
        n += static_cast<uint64_t>(group);
    }
    const double took = seconds_between(start, now);
    std::sort(lat.begin(), lat.end());
    append_result r;
    r.synchronous = synchronous;
    r.group = group;
    r.seconds = took;
    r.rows = n;
    r.rows_per_s = static_cast<double>(n) / took;
    r.commits_per_s = static_cast<double>(lat.size()) / took;
    r.p50_us = percentile(lat, 0.5);
    r.p99_us = percentile(lat, 0.99);
    return r;
}

// ------------------------------------------------------------------ (b) usage_log

struct log_result {
    std::string mode;                      // "max" (closed loop, bounded window) or "rate"
    std::string checkpoint;                // "background" (as shipped) or "inline" (SQLite's, inside commits)
    double offered = 0;                    // rows/s offered (rate mode); 0 for max
    int window = 0;                        // rows in flight at most (max mode)
    double seconds = 0;                    // measured window
    uint64_t submitted = 0;                // in the measured window
    uint64_t committed = 0;                // tokens back in the measured window
    double rows_per_s = 0;                 // committed / seconds
    double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;  // submit -> committed() returned it
    uint64_t backlog_end = 0;              // submitted but not committed when the window closed
};

// Blocks until the notify socket may have commits or `until` passes, with microsecond timeouts:
// zmq::poll counts milliseconds, and a row due 100 us from now would make it spin (stealing the
// writer's core on a 2-core machine) or oversleep. ZMQ_FD is edge-triggered: ZMQ_EVENTS is checked
// first, and committed() reads until the socket is empty, which re-arms it.
void fd_wait(hearth::usage_log& log, bench_clock::time_point until) {
    zmq::socket_t& s = log.notify_socket();
    if (s.get(zmq::sockopt::events) & ZMQ_POLLIN) return;
    const auto left = until - bench_clock::now();
    if (left <= bench_clock::duration::zero()) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    pollfd p{s.get(zmq::sockopt::fd), POLLIN, 0};
    ::ppoll(&p, 1, &ts, nullptr);
}

// One thread submits and collects, as the broker's loop does. rate 0: keep `window` rows in
// flight (as many clients as that, each waiting for its FINAL); otherwise row i is due at
// start + i / rate, whatever the commits do (an open loop: a slow writer shows as backlog).
log_result log_run(const fs::path& parent, double rate, int window, double warmup, double seconds, const std::string& checkpoint) {
    temp_dir dir(parent);
    zmq::context_t zctx(1);
    hearth::usage_log log((dir.path / "usage.db").string(), zctx, checkpoint == "background");

    std::vector<bench_clock::time_point> sent;  // by token - 1
    sent.reserve(static_cast<size_t>(std::max(1.0, (rate > 0 ? rate : 200000.0) * (warmup + seconds) * 1.2)));
    std::vector<double> lat;
    const auto start = bench_clock::now();
    const auto measure_from = start + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(warmup));
    const auto end = measure_from + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(seconds));
    uint64_t in_flight = 0, submitted = 0, committed = 0;

    auto collect = [&](bench_clock::time_point now) {
        for (uint64_t token : log.drain().committed) {
            --in_flight;
            const auto at = sent[token - 1];
            if (at >= measure_from && at < end) lat.push_back(std::chrono::duration<double, std::micro>(now - at).count());
            if (now >= measure_from && now < end) ++committed;
        }
    };

    for (auto now = bench_clock::now(); now < end; now = bench_clock::now()) {
        bench_clock::time_point next_due = end;
        if (rate <= 0) {
            while (in_flight < static_cast<uint64_t>(window)) {
                const auto t = bench_clock::now();
                sent.push_back(t);
                log.submit(row_make(sent.size()), sent.size());
                ++in_flight;
                if (t >= measure_from) ++submitted;
            }
        } else {
            next_due = now;  // unless the loop finds the next row not yet due
            // At most a batch per pass, so commits are still collected when the offered rate is
            // more than this thread can make rows.
            for (int batch = 0; batch < 4096; ++batch) {
                const auto due = start + std::chrono::duration_cast<bench_clock::duration>(
                                             std::chrono::duration<double>(static_cast<double>(sent.size()) / rate));
                if (due > now) {
                    next_due = due;
                    break;
                }
                const auto t = bench_clock::now();
                sent.push_back(t);
                log.submit(row_make(sent.size()), sent.size());
                ++in_flight;
                if (t >= measure_from && t < end) ++submitted;
            }
        }
        collect(bench_clock::now());
        fd_wait(log, std::min(next_due, bench_clock::now() + std::chrono::milliseconds(100)));
        collect(bench_clock::now());
    }
    log_result r;
    r.backlog_end = in_flight;
    // Drain, so the rows sent near the end still get their latency.
    const auto drain_until = bench_clock::now() + std::chrono::seconds(10);
    while (in_flight > 0 && bench_clock::now() < drain_until) {
        fd_wait(log, bench_clock::now() + std::chrono::milliseconds(100));
        collect(bench_clock::now());
    }
    if (in_flight > 0) throw std::runtime_error("the usage log did not commit every row within 10 s of the end");
    std::sort(lat.begin(), lat.end());
    r.mode = rate > 0 ? "rate" : "max";
    r.checkpoint = checkpoint;
    r.offered = rate;
    r.window = rate > 0 ? 0 : window;
    r.seconds = seconds;
    r.submitted = submitted;
    r.committed = committed;
    r.rows_per_s = static_cast<double>(committed) / seconds;
    r.p50_us = percentile(lat, 0.5);
    r.p90_us = percentile(lat, 0.9);
    r.p99_us = percentile(lat, 0.99);
    r.max_us = lat.empty() ? 0 : lat.back();
    if (log.rows_written() != sent.size()) throw std::runtime_error("usage_log::rows_written differs from the rows submitted");
    return r;
}

struct bench_options {
    double seconds = 3.0;                  // measured per case
    double warmup = 0.5;                   // unmeasured, before each usage_log case
    std::vector<int> groups = {1, 16, 256, 4096};  // rows per transaction for (a)
    std::string synchronous = "normal";    // normal, full, both (for (a))
    std::vector<double> rates = {1000, 10000};     // offered rows/s for (b)
    std::vector<int> windows = {16, 4096};         // rows in flight for (b) at full speed
    std::string checkpoint = "both";       // background (as shipped), inline, both (for (b))
    std::string dir;                       // parent of the temporary databases
    bool json_out = false;                 // JSON instead of tables
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench-usage: usage_db::append throughput per group size, and the usage_log writer's rows/s and submit->committed latency"};
    bench_options o;
    app.add_option("--seconds", o.seconds, "measured seconds per case")->check(CLI::Range(0.1, 3600.0));
    app.add_option("--warmup", o.warmup, "unmeasured seconds before each usage_log case")->check(CLI::Range(0.0, 60.0));
    app.add_option("--groups", o.groups, "rows per transaction for the append cases")->check(CLI::Range(1, 1000000));
    app.add_option("--synchronous", o.synchronous, "PRAGMA synchronous for the append cases: normal (as shipped), full, both")
        ->check(CLI::IsMember({"normal", "full", "both"}));
    app.add_option("--rates", o.rates, "offered rows/s for the usage_log cases")->check(CLI::Range(1.0, 10000000.0));
    app.add_option("--windows", o.windows, "rows in flight for the usage_log cases at full speed")->check(CLI::Range(1, 1000000));
    app.add_option("--checkpoint", o.checkpoint, "WAL checkpoints for the usage_log cases: background (as shipped), inline (SQLite's, in the commit), both")
        ->check(CLI::IsMember({"background", "inline", "both"}));
    app.add_option("--dir", o.dir, "where the temporary databases go (default: the system temp directory)");
    app.add_flag("--json", o.json_out, "print JSON instead of tables");
    CLI11_PARSE(app, argc, argv);

    const fs::path parent = o.dir.empty() ? fs::temp_directory_path() : fs::path(o.dir);
    const std::string load_before = loadavg_read();
    std::vector<append_result> appends;
    std::vector<log_result> logs;
    try {
        std::vector<std::string> syncs;
        if (o.synchronous != "full") syncs.push_back("normal");
        if (o.synchronous != "normal") syncs.push_back("full");
        for (const auto& s : syncs)
            for (int g : o.groups) {
                appends.push_back(append_run(parent, g, s, o.seconds));
                const auto& a = appends.back();
                if (!o.json_out) std::fprintf(stderr, "  append %s group %d: %.0f rows/s\n", s.c_str(), g, a.rows_per_s);
            }
        std::vector<std::string> checkpoints;
        if (o.checkpoint != "inline") checkpoints.push_back("background");
        if (o.checkpoint != "background") checkpoints.push_back("inline");
        for (const auto& c : checkpoints) {
            for (int w : o.windows) {
                logs.push_back(log_run(parent, 0, w, o.warmup, o.seconds, c));
                if (!o.json_out)
                    std::fprintf(stderr, "  usage_log (%s) window %d: %.0f rows/s, p50 %.1f us\n", c.c_str(), w, logs.back().rows_per_s, logs.back().p50_us);
            }
            for (double rate : o.rates) {
                logs.push_back(log_run(parent, rate, 0, o.warmup, o.seconds, c));
                if (!o.json_out)
                    std::fprintf(stderr, "  usage_log (%s) %.0f rows/s offered: %.0f rows/s, p50 %.1f us\n", c.c_str(), rate, logs.back().rows_per_s,
                                 logs.back().p50_us);
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-usage: %s\n", e.what());
        return 1;
    }
    const std::string load_after = loadavg_read();

    if (o.json_out) {
        json j;
        j["dir"] = parent.string();
        j["fs_type"] = fs_type_of(parent);
        j["seconds"] = o.seconds;
        j["warmup"] = o.warmup;
        j["hardware_threads"] = std::thread::hardware_concurrency();
        j["loadavg_before"] = load_before;
        j["loadavg_after"] = load_after;
        json a = json::array();
        for (const auto& x : appends)
            a.push_back({{"synchronous", x.synchronous}, {"group", x.group}, {"seconds", x.seconds}, {"rows", x.rows},
                         {"rows_per_s", x.rows_per_s}, {"commits_per_s", x.commits_per_s}, {"p50_us", x.p50_us}, {"p99_us", x.p99_us}});
        j["append"] = a;
        json l = json::array();
        for (const auto& x : logs)
            l.push_back({{"mode", x.mode}, {"checkpoint", x.checkpoint}, {"offered", x.offered}, {"window", x.window}, {"seconds", x.seconds},
                         {"submitted", x.submitted}, {"committed", x.committed}, {"rows_per_s", x.rows_per_s},
                         {"p50_us", x.p50_us}, {"p90_us", x.p90_us}, {"p99_us", x.p99_us}, {"max_us", x.max_us},
                         {"backlog_end", x.backlog_end}});
        j["usage_log"] = l;
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("databases under %s (%s); %.1f s per case; %u hardware threads\n", parent.c_str(), fs_type_of(parent).c_str(), o.seconds,
                std::thread::hardware_concurrency());
    std::printf("load average before: %s; after: %s\n\n", load_before.c_str(), load_after.c_str());
    std::printf("usage_db::append, one transaction per call:\n\n");
    std::printf("| synchronous | rows/transaction | rows/s | transactions/s | p50 us/transaction | p99 us/transaction |\n");
    std::printf("|---|--:|--:|--:|--:|--:|\n");
    for (const auto& x : appends)
        std::printf("| %s | %d | %.0f | %.0f | %.1f | %.1f |\n", x.synchronous.c_str(), x.group, x.rows_per_s, x.commits_per_s, x.p50_us, x.p99_us);
    std::printf("\nusage_log (writer thread, group commit): submit -> committed, the time a FINAL is held:\n\n");
    std::printf("| checkpoint | load | rows/s committed | p50 us | p90 us | p99 us | max us | in flight at end |\n");
    std::printf("|---|---|--:|--:|--:|--:|--:|--:|\n");
    for (const auto& x : logs) {
        char load[64];
        if (x.mode == "max") std::snprintf(load, sizeof load, "full speed, %d in flight", x.window);
        else std::snprintf(load, sizeof load, "%.0f rows/s offered", x.offered);
        std::printf("| %s | %s | %.0f | %.1f | %.1f | %.1f | %.1f | %llu |\n", x.checkpoint.c_str(), load, x.rows_per_s, x.p50_us, x.p90_us, x.p99_us, x.max_us,
                    static_cast<unsigned long long>(x.backlog_end));
    }
    return 0;
}
