// hearth-worker's core: connects to the broker (DEALER), announces its model and services,
// heartbeats, and runs the requests it is given on a generator in a separate engine thread, so
// that heartbeats keep flowing while the engine computes. Reconnects with back-off when the broker
// goes silent.
#pragma once

#include "config.h"
#include "generator.h"
#include "transport.h"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace hearth {

class worker {
public:
    // `m` must outlive the worker. Starts the engine thread.
    worker(const config& cfg, const model& m, std::string model_name, zmq::context_t& zctx);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    // Serves until `stop` becomes true.
    void run(const std::atomic<bool>& stop);

private:
    // What the socket thread asks of the engine thread.
    struct engine_command {
        enum class kind { submit, cancel, cancel_all } type = kind::submit;
        generation_request req;            // submit
        std::string id;                    // cancel
        std::string code;                  // cancel, cancel_all: cancelled or timeout
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
    void send_error(const std::string& id, wire::error_code code, const std::string& message);
    void forget_all(const char* why);

    config cfg_;
    const model& model_;
    std::string model_name_;               // shown in READY and usage
    zmq::context_t& zctx_;
    std::string pipe_endpoint_;            // inproc link between the two threads

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

    // Engine thread state.
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<engine_command> inbox_;     // guarded by mu_
    bool engine_stop_ = false;             // guarded by mu_
    std::thread engine_thread_;
};

}  // namespace hearth
