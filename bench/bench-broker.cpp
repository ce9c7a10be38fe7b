// bench-broker: what the broker costs per request. In one run and on one transport it measures
// (a) a direct DEALER -> ROUTER round trip to an echo server that answers each REQUEST with a
// FINAL, and (b) the same request through hearth-broker to an echo worker (REQUEST, ACCEPTED,
// FINAL), with 1 client (sequential round trips) and N concurrent clients (one thread and DEALER
// each, one request outstanding each). "broker adds" is p50(broker) - p50(direct). The broker runs
// with its usage log on (a SQLite file in the temp dir; each FINAL waits for its row's group commit),
// off (broker.usage_db = "off"), or both side by side: "logging adds" is p50(on) - p50(off).
#include "broker.h"
#include "config.h"
#include "protocol.h"
#include "transport.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace wire = hearth::wire;
using json = nlohmann::json;
using bench_clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double us_between(bench_clock::time_point a, bench_clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
}

std::string loadavg_read() {
    std::ifstream f("/proc/loadavg");
    std::string s;
    std::getline(f, s);
    return s;
}

// The reply both echo peers build: decoding the request and encoding a FINAL is the per-request
// codec work a real worker does, so the direct path is not cheaper for doing less.
std::string echo_final(std::string_view request_body) {
    const wire::request r = wire::decode_request(request_body);
    wire::final_reply f;
    f.id = r.id;
    f.text = r.prompt;
    f.finish_reason = "stop";
    f.use.prompt_tokens = 1;
    f.use.completion_tokens = 1;
    return wire::encode(f);
}

// ------------------------------------------------------------------ direct echo server

// A ROUTER that answers every REQUEST with a FINAL, in its own context (its own I/O thread, as a
// separate process would have). The socket is bound by the constructor so the port is known.
struct echo_server {
    zmq::context_t ctx{1};                 // separate from the clients' context
    zmq::socket_t sock{ctx, zmq::socket_type::router};  // clients connect here
    std::atomic<bool> stop{false};         // set by the destructor
    std::thread thread;                    // runs serve()

    explicit echo_server(const std::string& endpoint) {
        wire::socket_setup(sock);
        sock.bind(endpoint);
        thread = std::thread([this] { serve(); });
    }
    ~echo_server() {
        stop.store(true);
        thread.join();
    }
    std::string endpoint() const { return sock.get(zmq::sockopt::last_endpoint); }

    void serve() {
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        wire::frames f;
        while (!stop.load()) {
            zmq::poll(&item, 1, milliseconds(100));
            while (wire::message_recv(sock, f)) {
                try {
                    // Routing frames in front of the 3 hearth frames: one from a client, two when
                    // the message came through the relay; all go back in front of the reply.
                    if (f.parts.size() < 4) throw wire::protocol_error(wire::error_code::bad_request, "no routing frames");
                    const size_t hearth_at = f.parts.size() - 3;
                    const wire::envelope env = wire::envelope_parse(f.views(hearth_at));
                    if (env.cmd != wire::command::request) continue;
                    for (size_t i = 0; i + 1 < hearth_at; ++i) sock.send(f.parts[i], zmq::send_flags::sndmore);
                    wire::message_send(sock, f.views()[hearth_at - 1], wire::command::final, echo_final(env.body));
                } catch (const wire::protocol_error& e) {
                    std::fprintf(stderr, "bench-broker: echo server: %s\n", e.what());
                }
            }
        }
    }
};

// ------------------------------------------------------------------ relay

// The least any broker process can cost: zmq_proxy between a ROUTER for clients and a DEALER to
// the echo server, in its own context. No decoding, no ACCEPTED: the extra hops alone.
struct relay {
    zmq::context_t ctx{1};                 // its own I/O thread, as a separate process would have
    zmq::socket_t front{ctx, zmq::socket_type::router};  // clients connect here
    zmq::socket_t back{ctx, zmq::socket_type::dealer};   // connected to the echo server
    zmq::socket_t control{ctx, zmq::socket_type::pair};  // proxy_steerable's control (inside)
    zmq::socket_t command{ctx, zmq::socket_type::pair};  // we send TERMINATE here
    std::thread thread;                    // runs the proxy

    relay(const std::string& endpoint, const std::string& server) {
        wire::socket_setup(front);
        wire::socket_setup(back);
        front.bind(endpoint);
        back.connect(server);
        const std::string ctl = "inproc://relay-control";
        control.bind(ctl);
        command.connect(ctl);
        thread = std::thread([this] {
            zmq::proxy_steerable(zmq::socket_ref(front), zmq::socket_ref(back), zmq::socket_ref(), zmq::socket_ref(control));
        });
    }
    ~relay() {
        command.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
        thread.join();
    }
    std::string endpoint() const { return front.get(zmq::sockopt::last_endpoint); }
};

// ------------------------------------------------------------------ echo worker

// A worker without a model: READY with many slots, heartbeats both ways, and each REQUEST answered
// with `partials` PARTIALs and a FINAL. Runs in its own context (as the worker process would).
struct echo_worker {
    zmq::context_t ctx{1};                 // separate from the clients' context
    zmq::socket_t sock{ctx, zmq::socket_type::dealer};  // to the broker's worker endpoint
    int slots;                             // announced in READY: never the bottleneck
    int partials;                          // PARTIALs before each FINAL
    milliseconds heartbeat;                // the broker's interval: we must keep it
    std::atomic<bool> registered{false};   // the broker answered READY (with a HEARTBEAT)
    std::atomic<bool> stop{false};         // set by the destructor
    std::atomic<uint64_t> served{0};       // FINALs sent
    std::thread thread;                    // runs serve()

    echo_worker(const std::string& endpoint, int slots_, int partials_, milliseconds hb)
        : slots(slots_), partials(partials_), heartbeat(hb) {
        wire::socket_setup(sock);
        sock.set(zmq::sockopt::routing_id, wire::routing_id_random());
        sock.connect(endpoint);
        thread = std::thread([this] { serve(); });
    }
    ~echo_worker() {
        stop.store(true);
        thread.join();
    }

    void send_ready() {
        wire::ready r;
        r.worker = "bench-echo";
        r.model = "echo";
        r.services = {"complete", "chat", "command"};
        r.slots = slots;
        wire::message_send(sock, "", wire::command::ready, wire::encode(r));
    }

    void serve() {
        send_ready();
        zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
        wire::frames f;
        auto next_hb = bench_clock::now() + heartbeat;
        while (!stop.load()) {
            const auto wait = std::chrono::duration_cast<milliseconds>(next_hb - bench_clock::now());
            zmq::poll(&item, 1, std::clamp(wait, milliseconds(0), milliseconds(100)));
            while (wire::message_recv(sock, f)) {
                try {
                    on_message(f);
                } catch (const wire::protocol_error& e) {
                    std::fprintf(stderr, "bench-broker: echo worker: %s\n", e.what());
                }
            }
            if (bench_clock::now() >= next_hb) {
                next_hb = bench_clock::now() + heartbeat;
                wire::heartbeat hb;
                hb.free_slots = slots;  // echo requests end at once: nothing is ever running here
                wire::message_send(sock, "", wire::command::heartbeat, wire::encode(hb));
            }
        }
        wire::message_send(sock, "", wire::command::disconnect, wire::encode(wire::disconnect{"benchmark done"}));
    }

    void on_message(const wire::frames& f) {
        const wire::envelope env = wire::envelope_parse(f.views());
        switch (env.cmd) {
        case wire::command::heartbeat: registered.store(true); break;
        case wire::command::request: {
            if (partials > 0) {
                const wire::request r = wire::decode_request(env.body);
                for (int i = 0; i < partials; ++i)
                    wire::message_send(sock, "", wire::command::partial, wire::encode(wire::partial{r.id, "x", 1}));
            }
            wire::message_send(sock, "", wire::command::final, echo_final(env.body));
            served.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        case wire::command::cancel: {
            const wire::cancel c = wire::decode_cancel(env.body);
            wire::error_reply e;
            e.id = c.id;
            e.code = wire::error_code::cancelled;
            wire::message_send(sock, "", wire::command::error, wire::encode(e));
            break;
        }
        case wire::command::disconnect: send_ready(); break;  // the broker does not know us
        default: break;
        }
    }
};

// ------------------------------------------------------------------ the broker

// hearth-broker as it ships (a child process with a generated configuration), or the same core
// in a thread of this process when no executable is given.
struct broker_under_test {
    pid_t pid = -1;                        // the child, when a process
    std::unique_ptr<zmq::context_t> ctx;   // in-process broker's own context
    std::unique_ptr<hearth::broker> core;  // in-process broker
    std::atomic<bool> stop{false};         // stops the in-process broker
    std::thread thread;                    // runs the in-process broker
    std::string client_ep;                 // where clients connect
    std::string worker_ep;                 // where the worker connects

    broker_under_test(const hearth::config& cfg, const std::string& executable, const fs::path& dir) {
        if (executable.empty()) {
            ctx = std::make_unique<zmq::context_t>(1);
            core = std::make_unique<hearth::broker>(cfg, *ctx);
            client_ep = core->client_endpoint();
            worker_ep = core->worker_endpoint();
            thread = std::thread([this] { core->run(stop); });
            return;
        }
        const fs::path file = dir / "hearth.toml";
        std::ofstream(file) << hearth::config_to_toml(cfg);
        const std::string file_s = file.string();
        std::vector<char*> argv = {const_cast<char*>(executable.c_str()), const_cast<char*>("--config"),
                                   const_cast<char*>(file_s.c_str()), nullptr};
        if (int rc = posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0) {
            std::string msg = "cannot start ";
            msg.append(executable).append(": ").append(std::strerror(rc));
            throw std::runtime_error(msg);
        }
        client_ep = cfg.broker.client_endpoint;
        worker_ep = cfg.broker.worker_endpoint;
    }
    ~broker_under_test() {
        if (core) {
            stop.store(true);
            thread.join();
            core.reset();
        }
        if (pid > 0) {
            kill(pid, SIGTERM);
            for (int i = 0; i < 300; ++i) {
                if (waitpid(pid, nullptr, WNOHANG) == pid) return;
                std::this_thread::sleep_for(milliseconds(10));
            }
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    // False when the child process has exited (e.g. could not bind).
    bool alive() {
        if (pid <= 0) return true;
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) != pid) return true;
        pid = -1;
        return false;
    }
};

// A loopback TCP port nobody listens on now (the child process cannot report a port 0 back).
int tcp_port_free() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot find a free tcp port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// ------------------------------------------------------------------ clients

struct case_result {
    std::string transport;                 // tcp or ipc
    std::string path;                      // direct, relay or broker
    std::string usage_db;                  // broker only: "on" or "off" (its usage log)
    int clients = 0;                       // concurrent closed-loop clients
    double seconds = 0;                    // measured window
    uint64_t requests = 0;                 // finished in the window
    double rps = 0;                        // requests / seconds
    double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0, mean_us = 0;  // send -> FINAL
};

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(i, sorted.size() - 1)];
}

// One closed-loop client: REQUEST, wait for its FINAL (ACCEPTED and PARTIALs pass by), repeat
// until `end`; records the latency of requests sent inside [measure_from, end).
void client_loop(zmq::context_t& ctx, const std::string& endpoint, const std::string& prompt, bench_clock::time_point measure_from,
                 bench_clock::time_point end, std::vector<double>& samples, std::string& error) {
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    wire::socket_setup(sock);
    sock.set(zmq::sockopt::routing_id, wire::routing_id_random());
    sock.connect(endpoint);
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    wire::frames f;
    wire::request r;
    r.service = "complete";
    r.prompt = prompt;
    r.max_tokens = 1;
    uint64_t n = 0;
    try {
        for (auto sent = bench_clock::now(); sent < end; sent = bench_clock::now()) {
            r.id = "r" + std::to_string(++n);
            if (!wire::message_send(sock, "", wire::command::request, wire::encode(r))) {
                error = "could not queue a REQUEST";
                return;
            }
            bool done = false;
            while (!done) {
                if (!wire::message_recv(sock, f)) {
                    if (zmq::poll(&item, 1, milliseconds(5000)) == 0) {
                        error = "no FINAL within 5 s for request " + r.id;
                        return;
                    }
                    continue;
                }
                const wire::envelope env = wire::envelope_parse(f.views());
                if (env.cmd == wire::command::final) {
                    const wire::final_reply fr = wire::decode_final(env.body);
                    if (fr.id != r.id) {
                        error = "FINAL for '" + fr.id + "' while waiting for '" + r.id + "'";
                        return;
                    }
                    done = true;
                } else if (env.cmd == wire::command::error) {
                    const wire::error_reply e = wire::decode_error(env.body);
                    error = std::string("ERROR ").append(wire::error_code_name(e.code)).append(": ").append(e.message);
                    return;
                }
            }
            if (sent >= measure_from) samples.push_back(us_between(sent, bench_clock::now()));
        }
    } catch (const std::exception& e) {
        error = e.what();
    }
}

case_result clients_run(const std::string& endpoint, int nclients, double warmup_s, double seconds, const std::string& prompt) {
    zmq::context_t ctx(1);  // all clients share one I/O thread, as one client process would
    const auto start = bench_clock::now() + milliseconds(20);
    const auto measure_from = start + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(warmup_s));
    const auto end = measure_from + std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(seconds));
    std::vector<std::vector<double>> samples(static_cast<size_t>(nclients));
    std::vector<std::string> errors(static_cast<size_t>(nclients));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < samples.size(); ++i)
        threads.emplace_back([&, i] { client_loop(ctx, endpoint, prompt, measure_from, end, samples[i], errors[i]); });
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
        if (!e.empty()) throw std::runtime_error("client: " + e);
    std::vector<double> all;
    for (const auto& s : samples) all.insert(all.end(), s.begin(), s.end());
    std::sort(all.begin(), all.end());
    case_result c;
    c.clients = nclients;
    c.seconds = seconds;
    c.requests = all.size();
    c.rps = static_cast<double>(all.size()) / seconds;
    c.p50_us = percentile(all, 0.50);
    c.p90_us = percentile(all, 0.90);
    c.p99_us = percentile(all, 0.99);
    c.max_us = all.empty() ? 0 : all.back();
    double sum = 0;
    for (double v : all) sum += v;
    c.mean_us = all.empty() ? 0 : sum / static_cast<double>(all.size());
    return c;
}

// ------------------------------------------------------------------ one transport

struct bench_options {
    double seconds = 3.0;                  // measured per case
    double warmup = 0.5;                   // unmeasured, before each case
    std::vector<int> clients = {1, 16};    // concurrency levels
    std::string transport = "both";        // tcp, ipc, both
    std::string broker_exe;                // hearth-broker; empty: in-process
    bool in_process = false;               // run the broker core in a thread
    int slots = 64;                        // the echo worker's READY slots
    int partials = 0;                      // PARTIALs before each FINAL
    int prompt_bytes = 16;                 // REQUEST prompt size
    std::string usage_db = "both";         // the broker's usage log: on, off, both (two brokers)
    bool json_out = false;                 // JSON instead of the table
};

std::vector<case_result> transport_run(const std::string& transport, const bench_options& o) {
    char tmpl[] = "/tmp/bench-broker-XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    const fs::path dir(tmpl);
    struct dir_remover {
        fs::path p;  // removed at scope exit, whatever happens
        ~dir_remover() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } remover{dir};

    std::string direct_ep, relay_ep;
    if (transport == "tcp") {
        relay_ep = "tcp://127.0.0.1:*";
        direct_ep = "tcp://127.0.0.1:*";
    } else {
        direct_ep = "ipc://" + (dir / "echo.sock").string();
        relay_ep = "ipc://" + (dir / "relay.sock").string();
    }
    const std::string prompt(static_cast<size_t>(o.prompt_bytes), 'a');

    echo_server direct(direct_ep);
    relay hop(relay_ep, direct.endpoint());

    // One broker (and its echo worker) per usage-log setting, each in a directory of its own, all
    // started before any case so each client count measures them back to back.
    std::vector<std::string> modes;
    if (o.usage_db != "on") modes.push_back("off");
    if (o.usage_db != "off") modes.push_back("on");
    std::vector<std::unique_ptr<broker_under_test>> brokers;
    std::vector<std::unique_ptr<echo_worker>> workers;
    for (const std::string& mode : modes) {
        const fs::path mdir = dir / ("usage-" + mode);
        fs::create_directories(mdir);
        hearth::config cfg = hearth::config_defaults();
        cfg.log_level = "warn";
        cfg.runtime_dir = mdir.string();
        cfg.state_dir = (mdir / "state").string();
        cfg.broker.usage_db = mode == "on" ? (mdir / "state" / "usage.db").string() : std::string("off");
        if (transport == "tcp") {
            const bool child = !o.in_process;
            cfg.broker.client_endpoint = "tcp://127.0.0.1:" + (child ? std::to_string(tcp_port_free()) : std::string("*"));
            cfg.broker.worker_endpoint = "tcp://127.0.0.1:" + (child ? std::to_string(tcp_port_free()) : std::string("*"));
        } else {
            cfg.broker.client_endpoint = "ipc://" + (mdir / "client.sock").string();
            cfg.broker.worker_endpoint = "ipc://" + (mdir / "worker.sock").string();
        }
        brokers.push_back(std::make_unique<broker_under_test>(cfg, o.in_process ? std::string() : o.broker_exe, mdir));
        workers.push_back(std::make_unique<echo_worker>(brokers.back()->worker_ep, o.slots, o.partials, milliseconds(cfg.broker.heartbeat_ms)));
    }
    const auto give_up = bench_clock::now() + std::chrono::seconds(10);
    for (size_t i = 0; i < modes.size(); ++i) {
        while (!workers[i]->registered.load()) {
            if (!brokers[i]->alive()) throw std::runtime_error("hearth-broker exited before the worker could register (see its messages above)");
            if (bench_clock::now() > give_up) throw std::runtime_error("the echo worker was not registered by the broker within 10 s");
            std::this_thread::sleep_for(milliseconds(5));
        }
    }

    std::vector<case_result> out;
    for (int n : o.clients) {
        // All paths back to back, so all see the same machine load.
        std::vector<std::pair<std::string, std::string>> paths = {{"direct", ""}, {"relay", ""}};
        for (const auto& m : modes) paths.emplace_back("broker", m);
        for (size_t k = 0; k < paths.size(); ++k) {
            const auto& [path, mode] = paths[k];
            const std::string ep = path == "direct" ? direct.endpoint() : path == "relay" ? hop.endpoint() : brokers[k - 2]->client_ep;
            case_result c = clients_run(ep, n, o.warmup, o.seconds, prompt);
            c.transport = transport;
            c.path = path;
            c.usage_db = mode;
            out.push_back(c);
            if (!o.json_out)
                std::fprintf(stderr, "  %s %s%s%s %d client(s): %.0f req/s, p50 %.1f us\n", transport.c_str(), path.c_str(),
                             mode.empty() ? "" : ", usage log ", mode.c_str(), n, c.rps, c.p50_us);
        }
    }
    workers.clear();  // before their brokers, so each DISCONNECT still reaches one
    return out;
}

// The broker case with the usage log off, same transport and client count.
const case_result* log_off_of(const std::vector<case_result>& all, const case_result& c) {
    for (const auto& d : all)
        if (d.path == "broker" && d.usage_db == "off" && d.transport == c.transport && d.clients == c.clients) return &d;
    return nullptr;
}

// The direct case measured with the same transport and client count.
const case_result* direct_of(const std::vector<case_result>& all, const case_result& c) {
    for (const auto& d : all)
        if (d.path == "direct" && d.transport == c.transport && d.clients == c.clients) return &d;
    return nullptr;
}

std::string broker_default_path(const char* argv0) {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) self = fs::path(argv0);
    const fs::path p = self.parent_path().parent_path() / "broker" / "hearth-broker";
    return fs::exists(p, ec) ? p.string() : std::string();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench-broker: requests/s and latency through hearth-broker with an echo worker, against a direct DEALER-ROUTER round trip"};
    bench_options o;
    app.add_option("--seconds", o.seconds, "measured seconds per case")->check(CLI::Range(0.1, 3600.0));
    app.add_option("--warmup", o.warmup, "unmeasured seconds before each case")->check(CLI::Range(0.0, 60.0));
    app.add_option("--clients", o.clients, "concurrent clients, one case each (e.g. --clients 1 16)")->check(CLI::Range(1, 1024));
    app.add_option("--transport", o.transport, "tcp (127.0.0.1), ipc, or both")->check(CLI::IsMember({"tcp", "ipc", "both"}));
    app.add_option("--broker", o.broker_exe, "hearth-broker executable (default: ../broker/hearth-broker next to this program)");
    app.add_flag("--in-process", o.in_process, "run the broker core in a thread of this process instead of hearth-broker");
    app.add_option("--slots", o.slots, "slots the echo worker announces")->check(CLI::Range(1, 1024));
    app.add_option("--partials", o.partials, "PARTIAL messages the worker sends before each FINAL")->check(CLI::Range(0, 1000));
    app.add_option("--prompt-bytes", o.prompt_bytes, "prompt size of each REQUEST")->check(CLI::Range(1, 65536));
    app.add_option("--usage-db", o.usage_db, "the broker's usage log: on (a file in the temp dir), off, or both (two brokers, side by side)")
        ->check(CLI::IsMember({"on", "off", "both"}));
    app.add_flag("--json", o.json_out, "print JSON instead of a table");
    CLI11_PARSE(app, argc, argv);

    spdlog::set_level(spdlog::level::warn);  // the in-process broker logs like hearth-broker at "warn"
    std::signal(SIGPIPE, SIG_IGN);
    if (!o.in_process && o.broker_exe.empty()) o.broker_exe = broker_default_path(argv[0]);
    if (!o.in_process && o.broker_exe.empty()) {
        std::fprintf(stderr, "bench-broker: hearth-broker not found next to this program; using the broker core in-process\n");
        o.in_process = true;
    }
    std::vector<std::string> transports;
    if (o.transport == "both" || o.transport == "tcp") transports.push_back("tcp");
    if (o.transport == "both" || o.transport == "ipc") transports.push_back("ipc");

    const std::string load_before = loadavg_read();
    std::vector<case_result> results;
    try {
        for (const auto& t : transports) {
            auto r = transport_run(t, o);
            results.insert(results.end(), r.begin(), r.end());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-broker: %s\n", e.what());
        return 1;
    }
    const std::string load_after = loadavg_read();
    const std::string broker_kind = o.in_process ? std::string("in-process") : o.broker_exe;

    if (o.json_out) {
        json j;
        j["broker"] = broker_kind;
        j["seconds"] = o.seconds;
        j["warmup"] = o.warmup;
        j["partials"] = o.partials;
        j["prompt_bytes"] = o.prompt_bytes;
        j["usage_db"] = o.usage_db;
        j["hardware_threads"] = std::thread::hardware_concurrency();
        j["loadavg_before"] = load_before;
        j["loadavg_after"] = load_after;
        json cases = json::array();
        for (size_t i = 0; i < results.size(); ++i) {
            const case_result& c = results[i];
            json x = {{"transport", c.transport}, {"path", c.path},   {"clients", c.clients}, {"seconds", c.seconds},
                      {"requests", c.requests},   {"rps", c.rps},     {"p50_us", c.p50_us},   {"p90_us", c.p90_us},
                      {"p99_us", c.p99_us},       {"max_us", c.max_us}, {"mean_us", c.mean_us}};
            if (const case_result* d = direct_of(results, c); d && d != &c) x["adds_p50_us"] = c.p50_us - d->p50_us;
            if (!c.usage_db.empty()) x["usage_db"] = c.usage_db;
            if (const case_result* d = log_off_of(results, c); d && d != &c) {
                x["logging_adds_p50_us"] = c.p50_us - d->p50_us;
                x["logging_adds_p99_us"] = c.p99_us - d->p99_us;
            }
            cases.push_back(x);
        }
        j["cases"] = cases;
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::printf("broker: %s; usage log %s; worker replies with %d PARTIAL(s) + FINAL; prompt %d bytes; %.1f s per case after %.1f s warm-up\n",
                broker_kind.c_str(), o.usage_db.c_str(), o.partials, o.prompt_bytes, o.seconds, o.warmup);
    std::printf("load average before: %s; after: %s; %u hardware threads\n\n", load_before.c_str(), load_after.c_str(),
                std::thread::hardware_concurrency());
    std::printf("| transport | clients | path | req/s | p50 us | p90 us | p99 us | adds at p50, us |\n");
    std::printf("|---|--:|---|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < results.size(); ++i) {
        const case_result& c = results[i];
        std::string adds;
        if (const case_result* d = direct_of(results, c); d && d != &c) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%+.1f", c.p50_us - d->p50_us);
            adds = buf;
        }
        std::string path = c.path;
        if (!c.usage_db.empty()) path.append(", log ").append(c.usage_db);
        std::printf("| %s | %d | %s | %.0f | %.1f | %.1f | %.1f | %s |\n", c.transport.c_str(), c.clients, path.c_str(), c.rps,
                    c.p50_us, c.p90_us, c.p99_us, adds.c_str());
    }
    if (o.usage_db == "both") {
        std::printf("\nusage log (group commit before FINAL): broker with the log on against the same broker with it off\n\n");
        std::printf("| transport | clients | p50 off | p50 on | logging adds at p50, us | p99 off | p99 on | req/s off | req/s on |\n");
        std::printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (const case_result& c : results) {
            if (c.path != "broker" || c.usage_db != "on") continue;
            const case_result* d = log_off_of(results, c);
            if (!d) continue;
            std::printf("| %s | %d | %.1f | %.1f | %+.1f | %.1f | %.1f | %.0f | %.0f |\n", c.transport.c_str(), c.clients, d->p50_us, c.p50_us,
                        c.p50_us - d->p50_us, d->p99_us, c.p99_us, d->rps, c.rps);
        }
    }
    return 0;
}
