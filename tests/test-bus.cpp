// The bus end to end with real processes and sockets: hearth-broker, hearth-worker(s) on a real
// model, clients speaking the protocol (raw, so that bad input can be sent too) and the hearth CLI.
#include "bus-harness.h"
#include "test-util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <thread>

using hearth::test::bus_fixture;
using hearth::test::raw_client;
using hearth::test::request_make;
namespace wire = hearth::wire;

namespace {

const char* k_model = "stories260K-f32.gguf";

// prefix + decimal n (built with append: gcc 12's -Wrestrict misfires on "lit" + std::string).
std::string numbered(const char* prefix, int n) {
    std::string s = prefix;
    s.append(std::to_string(n));
    return s;
}

// Two workers of two slots each on the stories model.
class bus_two_workers : public ::testing::Test {
protected:
    void SetUp() override {
        model_ = hearth::test::model_path(k_model);
        if (!hearth::test::require_file(model_)) GTEST_SKIP() << model_;
        bus_ = std::make_unique<bus_fixture>("max_request_bytes = 4096\n");
        bus_->broker_start();
        bus_->worker_start("w1", model_);
        bus_->worker_start("w2", model_);
        ASSERT_TRUE(bus_->wait_workers(2)) << bus_->logs();
    }
    std::string model_;
    std::unique_ptr<bus_fixture> bus_;
};

// One worker with one slot and short queues, for ordering and backpressure.
class bus_one_slot : public ::testing::Test {
protected:
    void SetUp() override {
        model_ = hearth::test::model_path("synth-llama-spm-f32.gguf");
        if (!hearth::test::require_file(model_)) GTEST_SKIP() << model_;
        bus_ = std::make_unique<bus_fixture>("queue_interactive = 3\nqueue_batch = 3\n");
        bus_->broker_start();
        bus_->worker_start("w1", model_, {"--slots", "1"});
        ASSERT_TRUE(bus_->wait_workers(1)) << bus_->logs();
    }
    // A request that keeps the only slot busy for a while.
    wire::request long_request(const std::string& id) { return request_make(id, "Once upon a time", 400); }
    std::string model_;
    std::unique_ptr<bus_fixture> bus_;
};

}  // namespace

TEST_F(bus_two_workers, status_lists_workers_and_services) {
    raw_client c(bus_->client_endpoint());
    auto s = c.status();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->workers.size(), 2u);
    std::set<std::string> names;
    for (const auto& w : s->workers) {
        names.insert(w.id);
        EXPECT_EQ(w.model, "stories260K-f32");
        EXPECT_EQ(w.slots, 2);
        EXPECT_EQ(w.guard, "ok");
        EXPECT_LT(w.last_seen_ms, 1000.0);
    }
    EXPECT_EQ(names, (std::set<std::string>{"w1", "w2"}));
    bool complete = false;
    for (const auto& sv : s->services)
        if (sv.name == "complete") complete = sv.workers == 2;
    EXPECT_TRUE(complete);
}

TEST_F(bus_two_workers, one_request_streams_and_finishes) {
    raw_client c(bus_->client_endpoint());
    auto o = c.call(request_make("a", "Once upon a time", 24));
    ASSERT_TRUE(o.final) << (o.error ? o.error->message : "no reply") << bus_->logs();
    ASSERT_TRUE(o.accepted);
    EXPECT_EQ(o.accepted->position, 0u);  // a free worker took it at once
    EXPECT_FALSE(o.partials.empty());
    EXPECT_EQ(o.streamed(), o.final->text);
    EXPECT_EQ(o.final->use.completion_tokens, 24);
    EXPECT_GT(o.final->use.prompt_tokens, 0);
    EXPECT_EQ(o.final->finish_reason, "length");
    EXPECT_TRUE(o.final->use.worker == "w1" || o.final->use.worker == "w2");
    EXPECT_EQ(o.final->use.model, "stories260K-f32");
    EXPECT_GT(o.final->use.total_ms, 0.0);
    EXPECT_GE(o.final->use.total_ms, o.final->use.ttft_ms);
}

TEST_F(bus_two_workers, eight_clients_at_once_each_answered_once) {
    // Greedy: every request of the same prompt gives the same text, whichever worker runs it.
    raw_client ref(bus_->client_endpoint());
    std::map<int, std::string> expect;
    for (int p = 0; p < 4; ++p) {
        auto o = ref.call(request_make(numbered("ref", p), numbered("Once upon a time there was ", p), 20));
        ASSERT_TRUE(o.final);
        expect[p] = o.final->text;
    }
    const int n_clients = 8, per_client = 3;
    std::vector<std::thread> threads;
    std::vector<std::string> failures(n_clients);
    std::vector<std::map<std::string, int>> finals(n_clients);
    for (int i = 0; i < n_clients; ++i) {
        threads.emplace_back([&, i] {
            raw_client c(bus_->client_endpoint());
            for (int k = 0; k < per_client; ++k) {
                const int p = (i + k) % 4;
                c.send(wire::command::request, wire::encode(request_make(numbered("q", k), numbered("Once upon a time there was ", p), 20)));
            }
            // Read everything until every request has ended, counting FINALs per id.
            std::map<std::string, std::string> streamed;
            int ended = 0;
            while (ended < per_client) {
                auto m = c.recv(20000);
                if (!m) {
                    failures[i] = "timed out";
                    return;
                }
                if (m->cmd == wire::command::partial) {
                    auto pm = wire::decode_partial(m->body);
                    streamed[pm.id] += pm.text;
                } else if (m->cmd == wire::command::final) {
                    auto f = wire::decode_final(m->body);
                    ++finals[i][f.id];
                    const int k = std::stoi(f.id.substr(1));
                    if (f.text != expect[(i + k) % 4]) failures[i] += "wrong text for " + f.id + "; ";
                    if (streamed[f.id] != f.text) failures[i] += "stream differs for " + f.id + "; ";
                    ++ended;
                } else if (m->cmd == wire::command::error) {
                    failures[i] += "error: " + wire::decode_error(m->body).message + "; ";
                    ++ended;
                }
            }
            // Nothing more may arrive for these ids.
            if (auto extra = c.recv(200)) failures[i] += "an extra message after the finals; ";
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < n_clients; ++i) {
        EXPECT_EQ(failures[i], "") << "client " << i;
        EXPECT_EQ(finals[i].size(), static_cast<size_t>(per_client)) << "client " << i;
        for (const auto& [id, n] : finals[i]) EXPECT_EQ(n, 1) << id;
    }
    // Both workers took part.
    raw_client c(bus_->client_endpoint());
    auto s = c.status();
    ASSERT_TRUE(s);
    EXPECT_GE(s->served, static_cast<uint64_t>(n_clients * per_client + 4));
}

TEST_F(bus_two_workers, chat_service_renders_messages) {
    raw_client c(bus_->client_endpoint());
    wire::request r = request_make("chat1", "", 16);
    r.service = "chat";
    r.messages = {{"system", "You tell stories."}, {"user", "Tell me about a cat."}};
    auto o = c.call(r);
    ASSERT_TRUE(o.final) << (o.error ? o.error->message : "no reply");
    EXPECT_GT(o.final->use.prompt_tokens, 8);
}

TEST_F(bus_two_workers, bad_input_gets_answers_and_the_broker_stays_up) {
    raw_client c(bus_->client_endpoint());
    auto expect_error = [&](wire::error_code code, const std::string& what) {
        auto m = c.recv(3000);
        ASSERT_TRUE(m) << what;
        ASSERT_EQ(m->cmd, wire::command::error) << what;
        auto e = wire::decode_error(m->body);
        EXPECT_EQ(e.code, code) << what << ": " << e.message;
        EXPECT_FALSE(e.message.empty());
    };
    // Unknown service.
    wire::request r = request_make("u1", "hi", 4);
    r.service = "teleport";
    c.send(wire::command::request, wire::encode(r));
    expect_error(wire::error_code::unknown_service, "unknown service");
    // Oversized (the fixture allows 4096 bytes).
    c.send(wire::command::request, wire::encode(request_make("big", std::string(10000, 'a'), 4)));
    expect_error(wire::error_code::too_large, "oversized");
    // Wrong protocol version.
    c.send_frames({"hearth/2", std::string(1, '\x01'), wire::encode(request_make("v2", "hi", 4))});
    expect_error(wire::error_code::bad_version, "version 2");
    // Not our protocol, wrong frame counts, unknown command, garbage body, invalid options.
    c.send_frames({"GET / HTTP/1.1"});
    expect_error(wire::error_code::bad_request, "one frame");
    c.send_frames({"hearth/1", std::string(1, '\x01'), "x", "y"});
    expect_error(wire::error_code::bad_request, "four frames");
    c.send_frames({"hearth/1", std::string(1, '\x77'), wire::encode_empty()});
    expect_error(wire::error_code::bad_request, "unknown command");
    c.send_frames({"hearth/1", std::string(1, '\x01'), "\xdd\xff\xff\xff\xff"});  // array of 2^32 elements
    expect_error(wire::error_code::too_large, "huge array header");
    c.send_frames({"hearth/1", std::string(1, '\x01'), "\xc1garbage"});
    expect_error(wire::error_code::bad_request, "garbage body");
    wire::request bad = request_make("neg", "hi", 4);
    bad.top_p = 7.0f;
    c.send(wire::command::request, wire::encode(bad));
    expect_error(wire::error_code::bad_request, "top_p out of range");
    c.send(wire::command::accepted, wire::encode(wire::accepted{"x", 1, 1, {}}));
    expect_error(wire::error_code::bad_request, "a reply command from a client");
    // A prompt longer than the worker's context: the worker refuses it and the broker relays it.
    std::string story;
    for (int i = 0; i < 200; ++i) story += "the cat sat on the mat. ";
    wire::request longp = request_make("long", story.substr(0, 4000), 4);
    auto o = c.call(longp);
    ASSERT_TRUE(o.error) << "expected too_large";
    EXPECT_EQ(o.error->code, wire::error_code::too_large) << o.error->message;
    // Everyone is still served.
    EXPECT_TRUE(bus_->broker().running());
    auto ok = c.call(request_make("after", "Once upon a time", 8));
    EXPECT_TRUE(ok.final) << (ok.error ? ok.error->message : "no reply");
}

TEST_F(bus_one_slot, interactive_before_batch_fifo_within_priority) {
    raw_client c(bus_->client_endpoint());
    c.send(wire::command::request, wire::encode(long_request("busy")));
    std::vector<std::pair<std::string, wire::priority>> order = {
        {"b1", wire::priority::batch}, {"b2", wire::priority::batch}, {"i1", wire::priority::interactive}, {"i2", wire::priority::interactive}};
    for (const auto& [id, prio] : order) {
        wire::request r = request_make(id, "Once upon a time", 4);
        r.prio = prio;
        c.send(wire::command::request, wire::encode(r));
    }
    std::map<std::string, uint32_t> position;
    std::vector<std::string> finished;
    while (finished.size() < 5) {
        auto m = c.recv(30000);
        ASSERT_TRUE(m) << bus_->logs();
        if (m->cmd == wire::command::accepted) {
            auto a = wire::decode_accepted(m->body);
            position[a.id] = a.position;
        } else if (m->cmd == wire::command::final) {
            finished.push_back(wire::decode_final(m->body).id);
        } else if (m->cmd == wire::command::error) {
            FAIL() << wire::decode_error(m->body).message;
        }
    }
    EXPECT_EQ(position["busy"], 0u);
    EXPECT_EQ(position["b1"], 1u);
    EXPECT_EQ(position["b2"], 2u);
    EXPECT_EQ(position["i1"], 1u);  // ahead of both batch requests
    EXPECT_EQ(position["i2"], 2u);
    EXPECT_EQ(finished, (std::vector<std::string>{"busy", "i1", "i2", "b1", "b2"}));
}

TEST_F(bus_one_slot, full_queue_answers_queue_full_at_once) {
    raw_client c(bus_->client_endpoint());
    c.send(wire::command::request, wire::encode(long_request("busy")));
    for (int i = 0; i < 3; ++i) {
        c.send(wire::command::request, wire::encode(request_make(numbered("w", i), "hi", 2)));
    }
    c.send(wire::command::request, wire::encode(request_make("over", "hi", 2)));
    // The refusal comes before "busy" has finished.
    for (;;) {
        auto m = c.recv(10000);
        ASSERT_TRUE(m);
        ASSERT_NE(m->cmd, wire::command::final) << "queue_full came only after a request finished";
        if (m->cmd == wire::command::error) {
            auto e = wire::decode_error(m->body);
            EXPECT_EQ(e.id, "over");
            EXPECT_EQ(e.code, wire::error_code::queue_full) << e.message;
            break;
        }
    }
    for (const char* id : {"busy", "w0", "w1", "w2"}) {
        auto o = c.wait(id, 30000);
        EXPECT_TRUE(o.final) << id;
    }
}

TEST_F(bus_one_slot, cancel_queued_and_running) {
    raw_client c(bus_->client_endpoint());
    c.send(wire::command::request, wire::encode(long_request("run")));
    c.send(wire::command::request, wire::encode(request_make("queued", "hi", 4)));
    c.send(wire::command::cancel, wire::encode(wire::cancel{"queued", ""}));
    auto q = c.wait("queued", 5000);
    ASSERT_TRUE(q.error);
    EXPECT_EQ(q.error->code, wire::error_code::cancelled);
    // Cancel the running one once it streams.
    for (;;) {
        auto m = c.recv(10000);
        ASSERT_TRUE(m);
        if (m->cmd == wire::command::partial) break;
        ASSERT_NE(m->cmd, wire::command::final);
    }
    c.send(wire::command::cancel, wire::encode(wire::cancel{"run", ""}));
    auto r = c.wait("run", 5000);
    ASSERT_TRUE(r.error) << "no cancel answer";
    EXPECT_EQ(r.error->code, wire::error_code::cancelled);
    EXPECT_FALSE(r.final);
    // The slot is free again: a new request runs at once.
    auto next = c.call(request_make("next", "hi", 4), 10000);
    ASSERT_TRUE(next.final) << (next.error ? next.error->message : "no reply");
}

TEST_F(bus_one_slot, deadlines_time_out_queued_and_running_requests) {
    raw_client c(bus_->client_endpoint());
    wire::request run = long_request("run");
    run.max_tokens = 500;
    run.deadline_ms = 60;
    c.send(wire::command::request, wire::encode(run));
    wire::request queued = request_make("queued", "hi", 4);
    queued.deadline_ms = 20;
    c.send(wire::command::request, wire::encode(queued));
    auto q = c.wait("queued", 5000);
    ASSERT_TRUE(q.error);
    EXPECT_EQ(q.error->code, wire::error_code::timeout);
    auto r = c.wait("run", 10000);
    ASSERT_TRUE(r.error || r.final);
    if (r.error) EXPECT_EQ(r.error->code, wire::error_code::timeout) << r.error->message;
    else ADD_FAILURE() << "the long request finished within its deadline; make it longer";
    auto next = c.call(request_make("next", "hi", 4), 10000);
    ASSERT_TRUE(next.final) << (next.error ? next.error->message : "no reply");
}

// The hearth command line as users run it, eight at once.
TEST_F(bus_two_workers, cli_clients_at_once) {
    const std::string hearth = hearth::test::binary_dir() + "/clients/hearth";
    std::vector<hearth::test::command_result> results(8);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
            results[i] = hearth::test::command_run({hearth, "--config", bus_->config_path(), "--json", "ask", "-n", "12", "--temp", "0",
                                                    i % 2 ? "--priority=batch" : "--priority=interactive", "Once upon a time"});
        });
    }
    for (auto& t : threads) t.join();
    std::string first;
    for (int i = 0; i < 8; ++i) {
        ASSERT_EQ(results[i].status, 0) << results[i].err;
        auto j = nlohmann::json::parse(results[i].out);
        EXPECT_EQ(j["usage"]["completion_tokens"], 12);
        if (i == 0) first = j["text"];
        EXPECT_EQ(j["text"], first);
    }
    // Streaming text mode and chat through the CLI.
    auto ask = hearth::test::command_run({hearth, "--config", bus_->config_path(), "ask", "-n", "12", "--temp", "0", "-"}, "Once upon a time");
    EXPECT_EQ(ask.status, 0) << ask.err;
    EXPECT_EQ(ask.out, first + "\n");
    auto chat = hearth::test::command_run({hearth, "--config", bus_->config_path(), "chat", "-n", "8", "-m", "hello", "-m", "tell me more"});
    EXPECT_EQ(chat.status, 0) << chat.err;
    // Refusals and usage errors have their own exit codes.
    auto refused = hearth::test::command_run({hearth, "--config", bus_->config_path(), "ask", "--service", "teleport", "hi"});
    EXPECT_EQ(refused.status, 3) << refused.err;
    EXPECT_NE(refused.err.find("unknown_service"), std::string::npos) << refused.err;
    auto usage = hearth::test::command_run({hearth, "--config", bus_->config_path(), "ask", "--temp", "hot", "hi"});
    EXPECT_EQ(usage.status, 2);
    auto status = hearth::test::command_run({hearth, "--config", bus_->config_path(), "status", "--json"});
    ASSERT_EQ(status.status, 0) << status.err;
    EXPECT_EQ(nlohmann::json::parse(status.out)["workers"].size(), 2u);
}

// The worker side is just as strict: garbage gets an ERROR, a stranger is told to introduce itself,
// a bad READY is refused, and real workers carry on.
TEST_F(bus_two_workers, bad_worker_frames_get_answers) {
    std::string worker_ep = "ipc://";
    worker_ep.append(bus_->dir()).append("/run/worker.sock");
    raw_client w(worker_ep);
    w.send_frames({"hearth/1", std::string(1, '\x09'), "\xc1"});
    auto m = w.recv(3000);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->cmd, wire::command::error);
    EXPECT_EQ(wire::decode_error(m->body).code, wire::error_code::bad_request);
    w.send_frames({"hearth/9", std::string(1, '\x04'), wire::encode_empty()});
    m = w.recv(3000);
    ASSERT_TRUE(m);
    ASSERT_EQ(m->cmd, wire::command::error);
    EXPECT_EQ(wire::decode_error(m->body).code, wire::error_code::bad_version);
    // A heartbeat from a worker the broker does not know: DISCONNECT, so it sends READY.
    wire::heartbeat hb;
    w.send(wire::command::heartbeat, wire::encode(hb));
    m = w.recv(3000);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->cmd, wire::command::disconnect);
    // READY with no slots is refused and registers nothing.
    wire::ready r;
    r.services = {"complete"};
    r.slots = 0;
    w.send(wire::command::ready, wire::encode(r));
    m = w.recv(3000);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->cmd, wire::command::error);
    raw_client c(bus_->client_endpoint());
    auto s = c.status();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->workers.size(), 2u);
    EXPECT_TRUE(c.call(request_make("still", "Once upon a time", 4)).final);
}
