#include "bus-harness.h"

#include "test-util.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace hearth::test {

namespace {

using clock_type = std::chrono::steady_clock;

std::vector<char*> argv_of(const std::vector<std::string>& argv) {
    std::vector<char*> v;
    for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
    v.push_back(nullptr);
    return v;
}

int status_of(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st); }

}  // namespace

// ------------------------------------------------------------------ child_process

child_process::child_process(const std::vector<std::string>& argv, const std::string& log_path) : log_(log_path) {
    auto args = argv_of(argv);
    pid_ = fork();
    if (pid_ == 0) {
        int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        execv(args[0], args.data());
        _exit(127);
    }
}

child_process::~child_process() {
    if (pid_ > 0) kill_hard();
}

child_process::child_process(child_process&& o) noexcept : pid_(o.pid_), log_(std::move(o.log_)) { o.pid_ = -1; }

child_process& child_process::operator=(child_process&& o) noexcept {
    if (this != &o) {
        if (pid_ > 0) kill_hard();
        pid_ = o.pid_;
        log_ = std::move(o.log_);
        o.pid_ = -1;
    }
    return *this;
}

bool child_process::running() {
    if (pid_ <= 0) return false;
    int st = 0;
    return waitpid(pid_, &st, WNOHANG) == 0;
}

void child_process::kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
}

int child_process::stop(int sig, int timeout_ms) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    int st = 0;
    while (clock_type::now() < until) {
        pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            return status_of(st);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_hard();
    return -SIGKILL;
}

command_result command_run(const std::vector<std::string>& argv, const std::string& input, int timeout_ms) {
    int in[2], out[2], err[2];
    if (pipe(in) || pipe(out) || pipe(err)) return {};
    auto args = argv_of(argv);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
        execv(args[0], args.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (!input.empty()) {
        ssize_t n = write(in[1], input.data(), input.size());
        (void)n;
    }
    close(in[1]);
    command_result r;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    char buf[4096];
    while (open_fds > 0 && clock_type::now() < until) {
        if (poll(fds, 2, 100) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) close(f.fd);
    if (open_fds > 0) kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = status_of(st);
    return r;
}

// ------------------------------------------------------------------ bus_fixture

bus_fixture::bus_fixture(const std::string& broker_toml, const std::string& worker_toml) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-bus-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    config_ = dir_ + "/hearth.toml";
    std::ofstream f(config_);
    f << "runtime_dir = \"" << dir_ << "/run\"\n"
      << "state_dir = \"" << dir_ << "/state\"\n"
      << "log_level = \"debug\"\n"
      << "[broker]\nheartbeat_ms = 100\nliveness = 3\nno_worker_ms = 3000\n" << broker_toml << "\n"
      << "[worker]\nslots = 2\nthreads = 1\nctx_size = 512\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n" << worker_toml << "\n";
}

bus_fixture::~bus_fixture() {
    for (auto& w : workers_) w.kill_hard();
    broker_.kill_hard();
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
    else std::fprintf(stderr, "bus_fixture: logs kept in %s\n", dir_.c_str());
}

std::string bus_fixture::client_endpoint() const { return "ipc://" + dir_ + "/run/client.sock"; }

void bus_fixture::broker_start() {
    broker_ = child_process({binary_dir() + "/broker/hearth-broker", "--config", config_}, dir_ + "/broker.log");
}

void bus_fixture::broker_kill() { broker_.kill_hard(); }

size_t bus_fixture::worker_start(const std::string& name, const std::string& model, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {binary_dir() + "/workers/hearth-worker", "--config", config_, "-m", model, "--name", name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    workers_.emplace_back(argv, dir_ + "/worker-" + name + ".log");
    worker_names_.push_back(name);
    return workers_.size() - 1;
}

bool bus_fixture::wait_workers(size_t n, int timeout_ms) {
    raw_client c(client_endpoint());
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    while (clock_type::now() < until) {
        auto s = c.status(500);
        if (s && s->workers.size() == n) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

std::string bus_fixture::logs() const {
    std::ostringstream all;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
        if (e.path().extension() != ".log") continue;
        std::ifstream in(e.path());
        all << "---- " << e.path().filename().string() << "\n" << in.rdbuf();
    }
    return all.str();
}

// ------------------------------------------------------------------ raw_client

raw_client::raw_client(const std::string& endpoint) : sock_(ctx_, zmq::socket_type::dealer) {
    wire::socket_setup(sock_);
    sock_.set(zmq::sockopt::routing_id, wire::routing_id_random());
    sock_.connect(endpoint);
}

raw_client::raw_client(const std::string& endpoint, const curve_client_keys& keys) : sock_(ctx_, zmq::socket_type::dealer) {
    wire::socket_setup(sock_);
    sock_.set(zmq::sockopt::routing_id, wire::routing_id_random());
    sock_.set(zmq::sockopt::curve_serverkey, keys.server_z85);
    sock_.set(zmq::sockopt::curve_publickey, keys.public_z85);
    sock_.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
    sock_.connect(endpoint);
}

void raw_client::send(wire::command c, const std::string& body) {
    const std::string h = wire::header_frame();
    const uint8_t b = static_cast<uint8_t>(c);
    sock_.send(zmq::buffer(h), zmq::send_flags::sndmore);
    sock_.send(zmq::buffer(&b, 1), zmq::send_flags::sndmore);
    sock_.send(zmq::buffer(body), zmq::send_flags::none);
}

void raw_client::send_frames(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i)
        sock_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::optional<raw_message> raw_client::recv(int timeout_ms) {
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return std::nullopt;
    wire::frames f;
    if (!wire::message_recv(sock_, f)) return std::nullopt;
    wire::envelope env = wire::envelope_parse(f.views());
    return raw_message{env.cmd, std::string(env.body)};
}

std::string raw_client::outcome::streamed() const {
    std::string s;
    for (const auto& p : partials) s += p.text;
    return s;
}

void raw_client::absorb(const raw_message& m) {
    switch (m.cmd) {
    case wire::command::accepted: {
        auto a = wire::decode_accepted(m.body);
        outcomes_[a.id].accepted = a;
        outcomes_[a.id].accepted_all.push_back(a);
        break;
    }
    case wire::command::partial: {
        auto p = wire::decode_partial(m.body);
        outcomes_[p.id].partials.push_back(p);
        break;
    }
    case wire::command::final: {
        auto f = wire::decode_final(m.body);
        outcomes_[f.id].final = f;
        break;
    }
    case wire::command::error: {
        auto e = wire::decode_error(m.body);
        outcomes_[e.id].error = e;
        break;
    }
    default: break;
    }
}

raw_client::outcome raw_client::call(const wire::request& r, int timeout_ms) {
    send(wire::command::request, wire::encode(r));
    return wait(r.id, timeout_ms);
}

raw_client::outcome raw_client::wait(const std::string& id, int timeout_ms) {
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto it = outcomes_.find(id);
        if (it != outcomes_.end() && (it->second.final || it->second.error)) {
            outcome o = it->second;
            outcomes_.erase(it);
            return o;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
        if (left <= 0) return outcomes_[id];
        if (auto m = recv(static_cast<int>(left))) absorb(*m);
    }
}

std::optional<wire::status_reply> raw_client::status(int timeout_ms) {
    send(wire::command::status, wire::encode_empty());
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    while (clock_type::now() < until) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
        auto m = recv(static_cast<int>(std::max<int64_t>(1, left)));
        if (!m) return std::nullopt;
        if (m->cmd == wire::command::status) return wire::decode_status(m->body);
        absorb(*m);
    }
    return std::nullopt;
}

std::optional<wire::heartbeat> raw_client::heartbeat(const std::vector<std::string>& pending, int timeout_ms) {
    wire::heartbeat hb;
    hb.pending = pending;
    send(wire::command::heartbeat, wire::encode(hb));
    const auto until = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    while (clock_type::now() < until) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now()).count();
        auto m = recv(static_cast<int>(std::max<int64_t>(1, left)));
        if (!m) return std::nullopt;
        if (m->cmd == wire::command::heartbeat) return wire::decode_heartbeat(m->body);
        absorb(*m);
    }
    return std::nullopt;
}

std::string first_partial(raw_client& c, const std::string& id, int timeout_ms) {
    for (;;) {
        auto m = c.recv(timeout_ms);
        if (!m) return "<timeout>";
        if (m->cmd == wire::command::partial) {
            auto p = wire::decode_partial(m->body);
            if (p.id == id) return p.text;
        }
        if (m->cmd == wire::command::final || m->cmd == wire::command::error) return "<ended>";
    }
}

std::string busy_worker(raw_client& c) {
    for (int i = 0; i < 100; ++i) {
        auto s = c.status(2000);
        if (s)
            for (const auto& w : s->workers)
                if (w.busy > 0) return w.id;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return "";
}

wire::request request_make(const std::string& id, const std::string& prompt, int max_tokens, float temperature) {
    wire::request r;
    r.id = id;
    r.service = "complete";
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    r.temperature = temperature;
    r.seed = 42;
    return r;
}

}  // namespace hearth::test
