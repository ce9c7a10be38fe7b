// The client library and the `hearth` CLI against a fake broker: a ROUTER socket on an ipc://
// endpoint served from a thread of this test, speaking the protocol with the real codec, with a
// scripted reaction per test (drop a request, answer unknown to heartbeats, send garbage...).
#include "client.h"
#include "fake-broker.h"
#include "test-util.h"
#include "transport.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace wire = hearth::wire;
using hearth::test::endpoint_fresh;
using hearth::test::fake_broker;
using hearth::test::hearth_bin;
using hearth::test::quote;
using hearth::test::run;
using hearth::test::temp_dir;
using nlohmann::json;
using wire::command;

wire::accepted accepted_make(const std::string& id, uint32_t pos, uint32_t depth) {
    wire::accepted a;
    a.id = id;
    a.position = pos;
    a.queue_depth = depth;
    return a;
}
wire::partial partial_make(const std::string& id, const std::string& text) {
    wire::partial p;
    p.id = id;
    p.text = text;
    p.tokens = 1;
    return p;
}
wire::final_reply final_make(const std::string& id, const std::string& text) {
    wire::final_reply f;
    f.id = id;
    f.text = text;
    f.finish_reason = "stop";
    f.use.prompt_tokens = 3;
    f.use.completion_tokens = 2;
    f.use.worker = "fake";
    f.use.model = "none";
    return f;
}
wire::error_reply error_make(const std::string& id, wire::error_code c, const std::string& msg) {
    wire::error_reply e;
    e.id = id;
    e.code = c;
    e.message = msg;
    return e;
}

// Answers a REQUEST with ACCEPTED, the given PARTIALs and a FINAL of their concatenation.
void stream_reply(fake_broker& b, const std::string& rid, const std::string& id, const std::vector<std::string>& parts) {
    b.send(rid, command::accepted, wire::encode(accepted_make(id, 2, 5)));
    std::string all;
    for (const auto& p : parts) {
        b.send(rid, command::partial, wire::encode(partial_make(id, p)));
        all += p;
    }
    b.send(rid, command::final, wire::encode(final_make(id, all)));
}

// Heartbeats are answered with "nothing unknown" unless a test says otherwise.
void heartbeat_ok(fake_broker& b, const std::string& rid) { b.send(rid, command::heartbeat, wire::encode(wire::heartbeat{})); }

hearth::client_options options_for(const fake_broker& b) {
    hearth::client_options o;
    o.endpoint = b.endpoint;
    o.heartbeat_ms = 50;
    o.broker_timeout_ms = 3000;
    return o;
}

wire::request request_make(const std::string& prompt) {
    wire::request r;
    r.service = "complete";
    r.prompt = prompt;
    return r;
}

// ---------------------------------------------------------------- library

TEST(client, call_streams_partials_then_final) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::request) stream_reply(b, rid, wire::decode_request(body).id, {"Hel", "lo", " world"});
        if (c == command::heartbeat) heartbeat_ok(b, rid);
    });
    hearth::client cl(options_for(b));
    std::vector<std::string> parts;
    uint32_t position = 0;
    auto res = cl.call(
        request_make("hi"), [&](const wire::partial& p) { parts.push_back(p.text); },
        [&](const wire::accepted& a) {
            EXPECT_TRUE(parts.empty()) << "ACCEPTED comes before any PARTIAL";
            position = a.position;
        });
    ASSERT_TRUE(res.ok) << res.transport_message << res.error.message;
    EXPECT_EQ(parts, (std::vector<std::string>{"Hel", "lo", " world"}));
    EXPECT_EQ(res.final.text, "Hello world");
    EXPECT_EQ(res.final.use.worker, "fake");
    EXPECT_EQ(position, 2u);
    EXPECT_EQ(res.position, 2u);
    EXPECT_EQ(res.queue_depth, 5u);
    EXPECT_EQ(res.resubmissions, 0);
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].prompt, "hi");
    EXPECT_EQ(reqs[0].id.size(), 32u) << "an id is assigned when none is given";
    EXPECT_EQ(res.final.id, reqs[0].id);
    EXPECT_EQ(cl.pending(), 0u);
}

TEST(client, error_reply_ends_the_call) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c != command::request) return;
        auto e = error_make(wire::decode_request(body).id, wire::error_code::queue_full, "the interactive queue of complete is full");
        e.retry_after_ms = 250;
        b.send(rid, command::error, wire::encode(e));
    });
    hearth::client cl(options_for(b));
    wire::request r = request_make("x");
    r.id = "my-id";
    auto res = cl.call(r);
    EXPECT_FALSE(res.ok);
    EXPECT_FALSE(res.transport_failed);
    EXPECT_EQ(res.error.code, wire::error_code::queue_full);
    EXPECT_EQ(res.error.id, "my-id");
    EXPECT_EQ(res.error.retry_after_ms, 250u);
    EXPECT_NE(res.error.message.find("full"), std::string::npos);
}

TEST(client, cancel_sends_cancel_and_ends_with_cancelled) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::request) {
            const auto id = wire::decode_request(body).id;
            b.send(rid, command::accepted, wire::encode(accepted_make(id, 0, 0)));
            b.send(rid, command::partial, wire::encode(partial_make(id, "part")));
        } else if (c == command::cancel) {
            b.send(rid, command::error, wire::encode(error_make(wire::decode_cancel(body).id, wire::error_code::cancelled, "cancelled by the client")));
        } else if (c == command::heartbeat) {
            heartbeat_ok(b, rid);
        }
    });
    hearth::client cl(options_for(b));
    const std::string id = cl.submit(request_make("long"));
    auto ev = cl.next(3000);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->cmd, command::accepted);
    ev = cl.next(3000);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->cmd, command::partial);
    EXPECT_EQ(ev->partial.text, "part");
    EXPECT_TRUE(cl.cancel(id));
    EXPECT_FALSE(cl.cancel("not-pending"));
    ev = cl.next(3000);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->cmd, command::error);
    EXPECT_EQ(ev->id, id);
    EXPECT_EQ(ev->error.code, wire::error_code::cancelled);
    EXPECT_EQ(cl.pending(), 0u);
    const auto cancels = b.bodies(command::cancel);
    ASSERT_EQ(cancels.size(), 1u);
    EXPECT_EQ(wire::decode_cancel(cancels[0]).id, id);
}

TEST(client, many_requests_at_once_are_told_apart) {
    // Answers every request only after the third arrived, in reverse order.
    auto held = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    fake_broker b([held](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::heartbeat) heartbeat_ok(b, rid);
        if (c != command::request) return;
        const auto r = wire::decode_request(body);
        held->emplace_back(rid, r.id);
        if (held->size() < 3) return;
        for (auto it = held->rbegin(); it != held->rend(); ++it)
            b.send(it->first, command::final, wire::encode(final_make(it->second, "re:" + it->second)));
    });
    hearth::client cl(options_for(b));
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        wire::request r = request_make("p");
        r.id = "req-" + std::to_string(i);
        ids.push_back(cl.submit(r));
    }
    EXPECT_EQ(ids[1], "req-1");
    EXPECT_EQ(cl.pending(), 3u);
    std::vector<std::string> order;
    while (cl.pending()) {
        auto ev = cl.next(3000);
        ASSERT_TRUE(ev);
        ASSERT_EQ(ev->cmd, command::final);
        EXPECT_EQ(ev->final.text, "re:" + ev->id);
        order.push_back(ev->id);
    }
    EXPECT_EQ(order, (std::vector<std::string>{"req-2", "req-1", "req-0"}));
    EXPECT_FALSE(cl.next(50)) << "nothing more once all ended";
}

TEST(client, heartbeat_unknown_resubmits_a_request_that_streamed_nothing) {
    // A "restarted" broker: the first REQUEST is lost; heartbeats listing it get it called unknown.
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        static thread_local int seen = 0;
        if (c == command::request) {
            if (seen++ == 0) return;
            stream_reply(b, rid, wire::decode_request(body).id, {"again"});
        } else if (c == command::heartbeat) {
            wire::heartbeat in = wire::decode_heartbeat(body), out;
            if (seen == 1) out.unknown = in.pending;
            b.send(rid, command::heartbeat, wire::encode(out));
        }
    });
    hearth::client cl(options_for(b));
    wire::request r = request_make("resume me");
    r.id = "stable-id";
    auto res = cl.call(r);
    ASSERT_TRUE(res.ok) << res.transport_message << res.error.message;
    EXPECT_EQ(res.final.text, "again");
    EXPECT_EQ(res.resubmissions, 1);
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].id, "stable-id");
    EXPECT_EQ(reqs[1].id, "stable-id");
    EXPECT_EQ(reqs[1].prompt, "resume me");
    EXPECT_GE(b.count(command::heartbeat), 1u);
}

TEST(client, heartbeat_unknown_after_partial_fails_worker_lost) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::request) {
            b.send(rid, command::partial, wire::encode(partial_make(wire::decode_request(body).id, "half")));
        } else if (c == command::heartbeat) {
            wire::heartbeat in = wire::decode_heartbeat(body), out;
            out.unknown = in.pending;
            b.send(rid, command::heartbeat, wire::encode(out));
        }
    });
    hearth::client cl(options_for(b));
    std::string got;
    auto res = cl.call(request_make("x"), [&](const wire::partial& p) { got += p.text; });
    EXPECT_FALSE(res.ok);
    EXPECT_FALSE(res.transport_failed);
    EXPECT_EQ(got, "half");
    EXPECT_EQ(res.error.code, wire::error_code::worker_lost);
    EXPECT_EQ(res.error.message, "the broker restarted while streaming");
    EXPECT_EQ(b.count(command::request), 1u) << "text was delivered: never started over";
}

TEST(client, silent_broker_is_a_transport_failure) {
    hearth::client_options o;
    o.endpoint = endpoint_fresh();  // nobody binds it
    o.heartbeat_ms = 50;
    o.broker_timeout_ms = 300;
    hearth::client cl(o);
    const auto t0 = std::chrono::steady_clock::now();
    auto res = cl.call(request_make("anyone?"));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_FALSE(res.ok);
    EXPECT_TRUE(res.transport_failed);
    EXPECT_NE(res.transport_message.find("no answer from the broker at " + o.endpoint + " for 0.3 s"), std::string::npos) << res.transport_message;
    EXPECT_NE(res.transport_message.find("is hearth-broker running?"), std::string::npos);
    EXPECT_GE(s, 0.25);
    EXPECT_LT(s, 2.0);
    std::string err;
    EXPECT_FALSE(cl.status(200, &err));
    EXPECT_NE(err.find("no answer from the broker"), std::string::npos) << err;
}

TEST(client, whole_call_timeout_cancels_and_fails_timeout) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::request) b.send(rid, command::accepted, wire::encode(accepted_make(wire::decode_request(body).id, 1, 1)));
        if (c == command::heartbeat) heartbeat_ok(b, rid);
        if (c == command::cancel)
            b.send(rid, command::error, wire::encode(error_make(wire::decode_cancel(body).id, wire::error_code::cancelled, "cancelled")));
    });
    auto o = options_for(b);
    o.timeout_ms = 300;
    hearth::client cl(o);
    auto res = cl.call(request_make("slow"));
    EXPECT_FALSE(res.ok);
    EXPECT_FALSE(res.transport_failed);
    EXPECT_TRUE(res.accepted);
    EXPECT_EQ(res.error.code, wire::error_code::timeout);
    EXPECT_EQ(b.count(command::cancel), 1u);
    EXPECT_EQ(cl.pending(), 0u);
}

// Each garbage reply must end the call as a transport failure, not a crash or a hang.
TEST(client, malformed_replies_are_transport_failures) {
    const std::vector<std::vector<std::string>> garbage = {
        {wire::header_frame(), std::string(1, char(command::final)), "\xc1\xff\x00garbage"},   // not MessagePack
        {wire::header_frame(), std::string(1, char(command::final)), "\x93\x01\x02\x03"},      // an array, not a map
        {"hearth/99", std::string(1, char(command::final)), wire::encode(final_make("x", "y"))},  // other version
        {"nonsense", std::string(1, char(command::final)), ""},                               // no header
        {wire::header_frame(), std::string(1, char(200)), ""},                                 // unknown command
        {wire::header_frame(), std::string(1, char(command::partial))},                         // two frames
        {wire::header_frame(), std::string(1, char(command::partial)), "\x81\xa2id\x05"},     // id of the wrong type
    };
    for (size_t i = 0; i < garbage.size(); ++i) {
        SCOPED_TRACE(i);
        const auto frames = garbage[i];
        fake_broker b([frames](fake_broker& b, const std::string& rid, command c, std::string_view) {
            if (c == command::request) b.send_raw(rid, frames);
        });
        hearth::client cl(options_for(b));
        auto res = cl.call(request_make("x"));
        EXPECT_FALSE(res.ok);
        EXPECT_TRUE(res.transport_failed);
        EXPECT_NE(res.transport_message.find("malformed reply from the broker"), std::string::npos) << res.transport_message;
        EXPECT_EQ(cl.pending(), 0u);
    }
}

TEST(client, status_round_trip) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view) {
        if (c != command::status) return;
        wire::status_reply s;
        s.services.push_back({"complete", 2, 7, 1, 1, 0, 0, {}});
        wire::worker_status w;
        w.id = "w1";
        w.model = "m.gguf";
        w.services = {"complete", "chat"};
        w.slots = 4;
        w.busy = 1;
        w.guard = "ok";
        w.last_seen_ms = 120;
        s.workers.push_back(w);
        s.uptime_s = 12;
        s.served = 42;
        b.send(rid, command::status, wire::encode(s));
    });
    hearth::client cl(options_for(b));
    std::string err;
    auto s = cl.status(3000, &err);
    ASSERT_TRUE(s) << err;
    ASSERT_EQ(s->services.size(), 1u);
    EXPECT_EQ(s->services[0].batch, 7u);
    ASSERT_EQ(s->workers.size(), 1u);
    EXPECT_EQ(s->workers[0].services.size(), 2u);
    EXPECT_EQ(s->served, 42u);
}

// ---------------------------------------------------------------- BATCH calls

wire::batch_reply batch_reply_make(const std::string& id, wire::batch_op op, uint32_t total) {
    wire::batch_reply r;
    r.id = id;
    r.op = op;
    r.batch = "0123456789abcdef";
    r.total = total;
    r.queued = total;
    return r;
}

TEST(client, batch_returns_the_reply_with_its_id_and_drops_a_stale_one) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c != command::batch) return;
        const wire::batch_call call = wire::decode_batch_call(body);
        // The late answer to some earlier call comes first: it must not be taken for this one.
        b.send(rid, command::batch, wire::encode(batch_reply_make("an-earlier-call", call.op, 999)));
        b.send(rid, command::batch, wire::encode(batch_reply_make(call.id, call.op, static_cast<uint32_t>(call.jobs.size()))));
    });
    hearth::client cl(options_for(b));
    wire::batch_call call;
    call.op = wire::batch_op::submit;
    call.jobs = {request_make("a"), request_make("b")};
    call.jobs[0].id = "j0";
    call.jobs[1].id = "j1";
    const hearth::batch_result res = cl.batch(call, 3000);
    ASSERT_TRUE(res.ok) << res.transport_message << res.error.message;
    EXPECT_FALSE(res.transport_failed);
    EXPECT_EQ(res.reply.total, 2u);
    EXPECT_EQ(res.reply.op, wire::batch_op::submit);
    EXPECT_EQ(res.reply.batch, "0123456789abcdef");
    const auto sent = b.bodies(command::batch);
    ASSERT_EQ(sent.size(), 1u);
    const wire::batch_call got = wire::decode_batch_call(sent[0]);
    EXPECT_EQ(got.id.size(), 32u) << "an id is assigned when none is given";
    EXPECT_EQ(res.reply.id, got.id);
    ASSERT_EQ(got.jobs.size(), 2u);
    EXPECT_EQ(got.jobs[1].prompt, "b");
}

TEST(client, batch_only_stale_replies_is_a_transport_failure) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c != command::batch) return;
        b.send(rid, command::batch, wire::encode(batch_reply_make("not-yours", wire::decode_batch_call(body).op, 1)));
        b.send(rid, command::error, wire::encode(error_make("not-yours-either", wire::error_code::bad_request, "stale")));
    });
    hearth::client cl(options_for(b));
    wire::batch_call call;
    call.id = "mine";
    call.batch = "0123456789abcdef";
    const hearth::batch_result res = cl.batch(call, 300);
    EXPECT_FALSE(res.ok);
    EXPECT_TRUE(res.transport_failed);
    EXPECT_EQ(b.count(command::batch), 1u);
}

TEST(client, batch_error_with_its_id_is_returned) {
    fake_broker b([](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c != command::batch) return;
        const wire::batch_call call = wire::decode_batch_call(body);
        b.send(rid, command::error, wire::encode(error_make(call.id, wire::error_code::bad_request, "no batch '" + call.batch + "'")));
    });
    hearth::client cl(options_for(b));
    wire::batch_call call;
    call.id = "q1";
    call.op = wire::batch_op::status;
    call.batch = "fedcba9876543210";
    const hearth::batch_result res = cl.batch(call, 3000);
    EXPECT_FALSE(res.ok);
    EXPECT_FALSE(res.transport_failed);
    EXPECT_EQ(res.error.id, "q1");
    EXPECT_EQ(res.error.code, wire::error_code::bad_request);
    EXPECT_EQ(res.error.message, "no batch 'fedcba9876543210'");
}

TEST(client, batch_silence_is_a_transport_failure) {
    hearth::client_options o;
    o.endpoint = endpoint_fresh();  // nobody binds it
    hearth::client cl(o);
    wire::batch_call call;
    call.batch = "0123456789abcdef";
    const auto t0 = std::chrono::steady_clock::now();
    const hearth::batch_result res = cl.batch(call, 300);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_FALSE(res.ok);
    EXPECT_TRUE(res.transport_failed);
    EXPECT_NE(res.transport_message.find("no answer from the broker at " + o.endpoint + " for 0.3 s"), std::string::npos) << res.transport_message;
    EXPECT_GE(s, 0.25);
    EXPECT_LT(s, 2.0);
}

TEST(client, batch_keeps_replies_of_pending_requests_for_next) {
    // The request is answered only when the BATCH call arrives, so its FINAL lands inside batch().
    auto held = std::make_shared<std::string>();
    fake_broker b([held](fake_broker& b, const std::string& rid, command c, std::string_view body) {
        if (c == command::heartbeat) heartbeat_ok(b, rid);
        if (c == command::request) *held = wire::decode_request(body).id;
        if (c != command::batch) return;
        b.send(rid, command::final, wire::encode(final_make(*held, "kept")));
        b.send(rid, command::batch, wire::encode(batch_reply_make(wire::decode_batch_call(body).id, wire::batch_op::status, 4)));
    });
    hearth::client cl(options_for(b));
    const std::string id = cl.submit(request_make("p"));
    ASSERT_TRUE(b.wait_for(command::request, 1));
    wire::batch_call call;
    call.batch = "0123456789abcdef";
    const hearth::batch_result res = cl.batch(call, 3000);
    ASSERT_TRUE(res.ok) << res.transport_message << res.error.message;
    EXPECT_EQ(res.reply.total, 4u);
    auto ev = cl.next(3000);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->cmd, command::final);
    EXPECT_EQ(ev->id, id);
    EXPECT_EQ(ev->final.text, "kept");
    EXPECT_EQ(cl.pending(), 0u);
}

// ---------------------------------------------------------------- the hearth binary (run(): fake-broker.h)

// Echoes prompts ("echo:" + prompt, streamed in two parts); chat replies count the messages;
// some prompts make it refuse.
void echo_broker(fake_broker& b, const std::string& rid, command c, std::string_view body) {
    if (c == command::heartbeat) heartbeat_ok(b, rid);
    if (c == command::cancel)
        b.send(rid, command::error, wire::encode(error_make(wire::decode_cancel(body).id, wire::error_code::cancelled, "cancelled")));
    if (c == command::status) {
        wire::status_reply s;
        s.services.push_back({"complete", 1, 2, 3, 4, 0, 0, {}});
        b.send(rid, command::status, wire::encode(s));
    }
    if (c != command::request) return;
    const auto r = wire::decode_request(body);
    if (r.service == "nope") return b.send(rid, command::error, wire::encode(error_make(r.id, wire::error_code::unknown_service, "no service 'nope'")));
    if (r.prompt == "unsafe") return b.send(rid, command::error, wire::encode(error_make(r.id, wire::error_code::filtered, "not on the whitelist")));
    if (r.prompt == "crash") return b.send(rid, command::error, wire::encode(error_make(r.id, wire::error_code::worker_lost, "worker died")));
    if (r.prompt == "hang") return b.send(rid, command::partial, wire::encode(partial_make(r.id, "started")));
    if (r.service == "chat") return stream_reply(b, rid, r.id, {"reply ", std::to_string(r.messages.size())});
    stream_reply(b, rid, r.id, {"echo:", r.prompt});
}

TEST(hearth_cli, ask_streams_and_exits_0) {
    fake_broker b(echo_broker);
    auto r = run("--endpoint " + quote(b.endpoint) + " ask -n 7 --temp 0 --stop END -s 5 --priority batch --deadline 2s --stop '###' 'hello there'");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "echo:hello there\n");
    EXPECT_EQ(r.err, "");
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].service, "complete");
    EXPECT_EQ(reqs[0].max_tokens, 7);
    EXPECT_EQ(reqs[0].temperature, 0.0f);
    EXPECT_EQ(reqs[0].stop, (std::vector<std::string>{"END", "###"}));
    ASSERT_TRUE(reqs[0].seed.has_value());
    EXPECT_EQ(*reqs[0].seed, 5u);
    EXPECT_EQ(reqs[0].prio, wire::priority::batch);
    EXPECT_EQ(reqs[0].deadline_ms, 2000u);
    EXPECT_TRUE(reqs[0].stream);
}

TEST(hearth_cli, ask_json_and_verbose) {
    fake_broker b(echo_broker);
    auto r = run("ask --json --no-stream -v --endpoint " + quote(b.endpoint) + " abc");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["text"], "echo:abc");
    EXPECT_EQ(j["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
    EXPECT_EQ(j["usage"]["worker"], "fake");
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(j["id"], reqs[0].id);
    EXPECT_FALSE(reqs[0].stream);
    EXPECT_NE(r.err.find("prompt 3 tokens, completion 2 tokens"), std::string::npos) << r.err;
}

TEST(hearth_cli, ask_reads_stdin_for_dash) {
    fake_broker b(echo_broker);
    auto r = run("--endpoint " + quote(b.endpoint) + " ask -", "line one\nline two\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "echo:line one\nline two\n\n");
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].prompt, "line one\nline two\n");
}

TEST(hearth_cli, exit_codes) {
    fake_broker b(echo_broker);
    const std::string ep = "--endpoint " + quote(b.endpoint) + " ";
    auto r = run(ep + "ask --service nope hi");
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(r.err, "hearth: unknown_service: no service 'nope'\n");
    r = run(ep + "ask unsafe");
    EXPECT_EQ(r.status, 4) << r.err;
    EXPECT_EQ(r.err, "hearth: filtered: not on the whitelist\n");
    r = run(ep + "--json ask crash");
    EXPECT_EQ(r.status, 1) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["error"]["code"], "worker_lost");
    EXPECT_EQ(j["error"]["message"], "worker died");
    r = run(ep + "--timeout 500 ask hang");
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out, "started\n");
    EXPECT_NE(r.err.find("hearth: timeout: "), std::string::npos) << r.err;
    // usage errors never reach the broker
    const size_t before = b.count(command::request);
    for (const char* bad : {"ask", "ask --bogus x", "ask --temp hot x", "ask --priority urgent x", "ask --deadline soon x", "frobnicate", ""}) {
        SCOPED_TRACE(bad);
        r = run(ep + bad);
        EXPECT_EQ(r.status, 2);
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("hearth: ", 0), 0u) << r.err;
    }
    EXPECT_EQ(b.count(command::request), before);
    r = run("--endpoint not-an-endpoint ask hi");
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err.rfind("hearth: bad broker endpoint 'not-an-endpoint'", 0), 0u) << r.err;
}

TEST(hearth_cli, no_broker_exits_1) {
    const std::string ep = endpoint_fresh();
    auto r = run("--endpoint " + quote(ep) + " --broker-timeout 300 ask hi");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "hearth: transport: no answer from the broker at " + ep + " for 0.3 s; is hearth-broker running?\n");
    r = run("--endpoint " + quote(ep) + " --broker-timeout 300 status --json");
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(json::parse(r.out)["error"]["code"], "transport");
}

TEST(hearth_cli, chat_keeps_the_history) {
    fake_broker b(echo_broker);
    auto r = run("--endpoint " + quote(b.endpoint) + " chat --system 'be brief' -m first -m second -m third");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "reply 2\nreply 4\nreply 6\n");
    const auto reqs = b.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(reqs[0].service, "chat");
    ASSERT_EQ(reqs[2].messages.size(), 6u);
    EXPECT_EQ(reqs[2].messages[0].role, "system");
    EXPECT_EQ(reqs[2].messages[1].content, "first");
    EXPECT_EQ(reqs[2].messages[2].role, "assistant");
    EXPECT_EQ(reqs[2].messages[2].content, "reply 2");
    EXPECT_EQ(reqs[2].messages[5].content, "third");
}

TEST(hearth_cli, chat_from_stdin_with_reset) {
    fake_broker b(echo_broker);
    auto r = run("--endpoint " + quote(b.endpoint) + " chat", "one\n\ntwo\n/reset\nthree\n/quit\nnever\n");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "reply 1\nreply 3\nreply 1\n");
    EXPECT_EQ(b.count(command::request), 3u);
}

TEST(hearth_cli, status_table_and_json) {
    fake_broker b(echo_broker);
    auto r = run("--endpoint " + quote(b.endpoint) + " status");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("SERVICE"), std::string::npos);
    EXPECT_NE(r.out.find("complete"), std::string::npos);
    EXPECT_NE(r.out.find("no workers"), std::string::npos);
    r = run("--endpoint " + quote(b.endpoint) + " status --json");
    EXPECT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["services"][0]["name"], "complete");
    EXPECT_EQ(j["services"][0]["batch"], 2);
    EXPECT_EQ(j["services"][0]["workers"], 4);
}

TEST(hearth_cli, sigint_cancels_the_request_and_exits_130) {
    fake_broker b(echo_broker);
    const fs::path out = temp_dir() / "sigint.out";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const std::string bin = hearth_bin();
    std::vector<std::string> args = {bin, "--endpoint", b.endpoint, "ask", "hang"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    EXPECT_TRUE(b.wait_for(command::request, 1));
    // SIGINT once the reply is streaming (its first PARTIAL was written).
    auto streamed = [&] {
        std::ifstream in(out, std::ios::binary);
        return in && in.peek() != std::ifstream::traits_type::eof();
    };
    for (int i = 0; i < 500 && !streamed(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::kill(pid, SIGINT);
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << WTERMSIG(st);
    EXPECT_EQ(WEXITSTATUS(st), 130);
    EXPECT_EQ(b.count(command::cancel), 1u);
    EXPECT_EQ(hearth::test::read_file_bytes(out), "started\n");
}


}  // namespace
