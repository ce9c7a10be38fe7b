// A fake hearth broker for the client tests: a ROUTER socket on an ipc:// endpoint served from a
// thread of the test, speaking the protocol with the real codec and reacting as each test scripts
// it; and running the `hearth` binary against it. Shared by test-client and test-batch-cli.
#pragma once

#include "test-util.h"
#include "transport.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace hearth::test {

namespace fs = std::filesystem;
using wire::command;

inline fs::path temp_dir() {
    static fs::path dir = [] {
        std::string name = "hearth-fake-broker-";  // by append: gcc 12 -Wrestrict on "lit" + std::string
        name.append(std::to_string(::getpid()));
        fs::path d = fs::temp_directory_path() / name;
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

inline std::string endpoint_fresh() {
    static std::atomic<int> n{0};
    std::string e = "ipc://";
    std::string name = "b";  // built by append: gcc 12 warns (-Wrestrict) on "lit" + std::string
    name.append(std::to_string(n++)).append(".sock");
    e.append((temp_dir() / name).string());
    return e;
}

// A ROUTER speaking hearth/1; handle() runs on the broker's thread for each well-formed message.
class fake_broker {
public:
    using handler = std::function<void(fake_broker&, const std::string& rid, command, std::string_view body)>;

    explicit fake_broker(handler h) : endpoint(endpoint_fresh()), handle_(std::move(h)), sock_(ctx_, zmq::socket_type::router) {
        wire::socket_setup(sock_);
        sock_.bind(endpoint);
        thread_ = std::thread([this] { loop(); });
    }
    ~fake_broker() {
        stop_ = true;
        thread_.join();
    }

    // Broker-thread only (from a handler).
    void send(const std::string& rid, command c, const std::string& body) { wire::message_send(sock_, rid, c, body); }
    void send_raw(const std::string& rid, const std::vector<std::string>& frames) {
        sock_.send(zmq::buffer(rid), zmq::send_flags::sndmore);
        for (size_t i = 0; i < frames.size(); ++i)
            sock_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }

    size_t count(command c) {
        std::lock_guard<std::mutex> lk(mu_);
        size_t n = 0;
        for (const auto& m : log_) n += m.first == c;
        return n;
    }
    std::vector<std::string> bodies(command c) {
        std::lock_guard<std::mutex> lk(mu_);
        std::vector<std::string> v;
        for (const auto& m : log_)
            if (m.first == c) v.push_back(m.second);
        return v;
    }
    std::vector<wire::request> requests() {
        std::vector<wire::request> v;
        for (const auto& b : bodies(command::request)) v.push_back(wire::decode_request(b));
        return v;
    }
    // Waits (up to 5 s) until at least n messages of kind c arrived.
    bool wait_for(command c, size_t n) {
        for (int i = 0; i < 500; ++i) {
            if (count(c) >= n) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }

    const std::string endpoint;  // ipc:// in this test's temp dir

private:
    void loop() {
        while (!stop_) {
            zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(10));
            wire::frames f;
            while (wire::message_recv(sock_, f)) {
                const std::string rid(f.routing_id());
                const auto env = wire::envelope_parse(f.views(1));
                {
                    std::lock_guard<std::mutex> lk(mu_);
                    log_.emplace_back(env.cmd, std::string(env.body));
                }
                if (handle_) handle_(*this, rid, env.cmd, env.body);
            }
        }
    }

    handler handle_;                                      // the test's script
    zmq::context_t ctx_{1};                               // its own, so the client's cannot hide its faults
    zmq::socket_t sock_;                                  // ROUTER bound to endpoint
    std::thread thread_;                                  // runs loop()
    std::atomic<bool> stop_{false};                       // set by the destructor
    std::mutex mu_;                                       // guards log_ (broker thread writes, test reads)
    std::vector<std::pair<command, std::string>> log_;    // every message received: command and body
};

// ---------------------------------------------------------------- the hearth binary

struct run_result {
    int status = -1;                     // exit status; -1 when it did not exit normally
    std::string out;                     // all of stdout
    std::string err;                     // all of stderr
};

inline std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        if (c == '\'') q.append("'\\''");
        else q += c;
    }
    q += "'";
    return q;
}

inline std::string hearth_bin() { return hearth::test::binary_dir() + "/clients/hearth"; }

inline run_result run(const std::string& args, const std::string& stdin_text = "") {
    const fs::path in = temp_dir() / "in", out = temp_dir() / "out", err = temp_dir() / "err";
    std::ofstream(in, std::ios::binary) << stdin_text;
    std::string cmd = quote(hearth_bin());
    cmd.append(" ").append(args).append(" <").append(quote(in)).append(" >").append(quote(out)).append(" 2>").append(quote(err));
    const int rc = std::system(cmd.c_str());
    run_result r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = hearth::test::read_file_bytes(out);
    r.err = hearth::test::read_file_bytes(err);
    return r;
}

}  // namespace hearth::test
