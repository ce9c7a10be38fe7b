// hearth-worker's core: connects to the broker (DEALER), announces its model and services,
// heartbeats, and runs the requests it is given on a generator in a separate engine thread, so
// that heartbeats keep flowing while the engine computes. Reconnects with back-off when the broker
// goes silent.
#pragma once

#include "config.h"
#include "curve-keys.h"
#include "generator.h"
#include "resource-guard.h"
#include "transport.h"

#include <zmq.hpp>

#include <atomic>
#include <functional>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace hearth {

// The worker's CURVE keys for the broker (worker.curve_secret_key, worker.broker_public_key):
// nullopt when neither is set. Throws std::invalid_argument naming the setting that is wrong.
std::optional<curve_client_keys> worker_curve_keys_load(const worker_config& w);

// The resource guard's options from the worker's configuration (memory_budget, guard_*).
guard_options guard_options_from(const worker_config& w);

class worker {
public:
    // `m` must outlive the worker. Starts the engine thread.
    worker(const config& cfg, const model& m, std::string model_name, zmq::context_t& zctx);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Serves until `stop` becomes true.
    void run(const std::atomic<bool>& stop);
    // Called from the loop at least every heartbeat interval, connected or not: proof the loop is alive
    // (the systemd watchdog).
    std::function<void()> on_tick;

private:
    // What the socket thread asks of the engine thread.
    struct engine_command {
        enum class kind { submit, cancel, cancel_all, guard } type = kind::submit;
        generation_request req;            // submit
        std::string id;                    // cancel
        std::string code;                  // cancel, cancel_all: cancelled or timeout
        int32_t admit = 0;                 // guard: requests that may run at once
        bool release = false;              // guard: give idle KV caches back to the system
        bool critical = false;             // guard: hand back waiting requests, keep running ones that fit `headroom`
        std::optional<uint64_t> headroom;  // guard: bytes left before the critical line (nullopt unknown)
        std::string why;                   // guard: what holds the state, for the overloaded message
    };
    using clock = std::chrono::steady_clock;

    void engine_loop();
    void engine_post(engine_command c);
    void on_engine_event(zmq::socket_t& out, const generation_event& ev);

    void connect();
    void on_broker(const wire::frames& f);
    void on_request(std::string_view body);
    void send_ready();
    void send_heartbeat();
    // Samples memory when due; on a change of state (and each sample while critical) tells the
    // engine what it may run and the broker what state the worker is in.
    void guard_sample_due(clock::time_point now);
    void guard_apply();                    // the guard's state -> engine command
    int32_t guard_admit() const;           // requests that may run at once in the current state
    wire::memory_report guard_report() const;
    void engine_guard(generator& gen, const engine_command& c);  // engine thread
    void send_error(const std::string& id, wire::error_code code, const std::string& message);
    void forget_all(const char* why);

    config cfg_;
    const model& model_;
    std::string model_name_;               // shown in READY and usage
    zmq::context_t& zctx_;
    std::string pipe_endpoint_;            // inproc link between the two threads
    std::optional<curve_client_keys> curve_;  // CURVE keys for the broker; nullopt: plain

    // Socket thread state.
    zmq::socket_t dealer_;                 // to the broker; replaced on reconnect
    zmq::socket_t pipe_in_;                // events from the engine thread: [cmd][id][body]
    std::set<std::string> running_;        // request ids given to the engine and not yet ended
    // Compiled grammars by schema text: the broker sends the same command schema every time.
    std::map<std::string, std::shared_ptr<const grammar>> grammars_;
    clock::time_point last_heard_;         // last message from the broker
    clock::time_point next_heartbeat_;
    std::chrono::milliseconds backoff_;    // wait before the next reconnect
    std::chrono::milliseconds hb_;         // heartbeat interval
    resource_guard guard_;                 // memory state (socket thread)
    clock::time_point next_sample_;        // when the guard samples next

    // Engine thread state.
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<engine_command> inbox_;     // guarded by mu_
    bool engine_stop_ = false;             // guarded by mu_
    std::thread engine_thread_;
};

}  // namespace hearth
