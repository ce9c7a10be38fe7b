// Real-process fixtures for the bus tests: a temporary directory with a configuration file,
// hearth-broker and hearth-worker started as child processes, and a raw protocol client (a
// DEALER speaking the codec directly, so tests can send anything, bad frames included).
#pragma once

#include "curve-keys.h"
#include "protocol.h"
#include "transport.h"

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hearth::test {

// A child process; killed (SIGKILL) and reaped when destroyed.
class child_process {
public:
    child_process() = default;
    child_process(const std::vector<std::string>& argv, const std::string& log_path);
    ~child_process();
    child_process(child_process&& o) noexcept;
    child_process& operator=(child_process&& o) noexcept;

    pid_t pid() const { return pid_; }
    bool running();
    void kill_hard();                       // SIGKILL, then reap
    int stop(int sig = 15, int timeout_ms = 5000);  // signal, wait; exit status (or -signal), SIGKILL after timeout
    const std::string& log_path() const { return log_; }

private:
    pid_t pid_ = -1;                        // -1 when none
    std::string log_;                       // stdout+stderr of the child
};

// Runs a command to completion: exit status, stdout; stdin from `input`.
struct command_result {
    int status = -1;                        // exit code, or -signal
    std::string out;                        // stdout
    std::string err;                        // stderr
};
command_result command_run(const std::vector<std::string>& argv, const std::string& input = "", int timeout_ms = 60000);

// A temporary hearth installation: directory, configuration, processes.
class bus_fixture {
public:
    // extra_toml is appended to the generated configuration ([broker]/[worker] keys go in
    // broker_toml / worker_toml so they land in the right table).
    explicit bus_fixture(const std::string& broker_toml = "", const std::string& worker_toml = "");
    ~bus_fixture();

    const std::string& dir() const { return dir_; }
    const std::string& config_path() const { return config_; }
    std::string client_endpoint() const;

    void broker_start();
    void broker_kill();                     // SIGKILL
    child_process& broker() { return broker_; }
    // Starts a worker named `name` with extra command-line arguments; returns its index.
    size_t worker_start(const std::string& name, const std::string& model, const std::vector<std::string>& extra = {});
    child_process& worker(size_t i) { return workers_.at(i); }
    std::string worker_name(size_t i) const { return worker_names_.at(i); }
    // Waits until STATUS shows `n` workers; false on timeout.
    bool wait_workers(size_t n, int timeout_ms = 10000);
    std::string logs() const;               // every log, for failure messages

private:
    std::string dir_;
    std::string config_;
    child_process broker_;
    std::vector<child_process> workers_;
    std::vector<std::string> worker_names_;
};

// One received message.
struct raw_message {
    wire::command cmd;
    std::string body;
};

// A DEALER to the broker's client endpoint that speaks frames directly.

class raw_client {
public:
    explicit raw_client(const std::string& endpoint);
    raw_client(const std::string& endpoint, const curve_client_keys& keys);  // over CURVE
    zmq::socket_t& socket() { return sock_; }
    void send(wire::command c, const std::string& body);
    void send_frames(const std::vector<std::string>& frames);  // anything at all
    std::optional<raw_message> recv(int timeout_ms);
    // Sends REQUEST and collects messages for its id until FINAL or ERROR (or timeout).
    struct outcome {
        std::optional<wire::accepted> accepted;        // the latest
        std::vector<wire::accepted> accepted_all;      // every ACCEPTED, in order (a note can change)
        std::vector<wire::partial> partials;
        std::optional<wire::final_reply> final;
        std::optional<wire::error_reply> error;
        std::string streamed() const;
    };
    outcome call(const wire::request& r, int timeout_ms = 30000);
    // Collects until FINAL/ERROR for the given id.
    outcome wait(const std::string& id, int timeout_ms = 30000);
    std::optional<wire::status_reply> status(int timeout_ms = 5000);
    // Sends a HEARTBEAT naming `pending` and returns the broker's answer (other messages are kept).
    std::optional<wire::heartbeat> heartbeat(const std::vector<std::string>& pending, int timeout_ms = 5000);

private:
    void absorb(const raw_message& m);
    zmq::context_t ctx_;
    zmq::socket_t sock_;
    std::map<std::string, outcome> outcomes_;  // by request id, as messages arrive
};

// Waits for the first PARTIAL of `id` and returns its text; "<timeout>" or "<ended>" (a FINAL or
// ERROR came first) otherwise.
std::string first_partial(raw_client& c, const std::string& id, int timeout_ms = 10000);
// The name of a worker STATUS shows busy ("" when none shows up within about a second).
std::string busy_worker(raw_client& c);

wire::request request_make(const std::string& id, const std::string& prompt, int max_tokens, float temperature = 0.0f);

}  // namespace hearth::test
