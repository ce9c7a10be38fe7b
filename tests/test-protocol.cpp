// Wire codec: round trips of every message, defaults, forward compatibility (unknown fields),
// every required-field and wrong-type error, the envelope and request_validate. Hostile bodies
// (limits, random bytes) are in test-protocol-limits.cpp; both build odd bodies by hand
// (protocol-test-util.h).
#include "protocol-test-util.h"
#include "protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace w = hearth::wire;
using namespace hearth::test::wire_body;

namespace {

// ---------------------------------------------------------------- names and round trips

TEST(Protocol, NamesRoundTrip) {
    EXPECT_EQ(w::header_frame(), "hearth/1");
    for (int b = 0; b < 256; ++b) {
        const auto c = w::command_from_byte(static_cast<uint8_t>(b));
        EXPECT_EQ(c.has_value(), b >= 1 && b <= 12) << b;
        if (c) {
            EXPECT_EQ(static_cast<int>(*c), b);
        }
    }
    EXPECT_EQ(w::command_name(w::command::request), "REQUEST");
    EXPECT_EQ(w::command_name(w::command::disconnect), "DISCONNECT");
    EXPECT_EQ(w::command_name(w::command::final), "FINAL");
    const std::vector<std::string> codes = {"bad_request", "bad_version", "unknown_service", "too_large",
                                            "queue_full", "quota_exceeded", "unauthorized", "no_worker",
                                            "worker_lost", "timeout", "cancelled", "filtered",
                                            "overloaded", "unsupported", "internal"};
    for (size_t i = 0; i < codes.size(); ++i) {
        EXPECT_EQ(w::error_code_name(static_cast<w::error_code>(i)), codes[i]);
        EXPECT_EQ(w::error_code_from_name(codes[i]), static_cast<w::error_code>(i));
    }
    EXPECT_FALSE(w::error_code_from_name("Timeout").has_value());
    EXPECT_FALSE(w::error_code_from_name("").has_value());
    EXPECT_EQ(w::priority_name(w::priority::interactive), "interactive");
    EXPECT_EQ(w::priority_name(w::priority::batch), "batch");
}

TEST(Protocol, RequestRoundTrip) {
    const auto r = full_request();
    const auto body = w::encode(r);
    EXPECT_EQ(body, w::encode(r)) << "encoding must be deterministic";
    const auto d = w::decode_request(body);
    EXPECT_EQ(d.id, r.id);
    EXPECT_EQ(d.service, r.service);
    EXPECT_EQ(d.prompt, r.prompt);
    ASSERT_EQ(d.messages.size(), r.messages.size());
    for (size_t i = 0; i < r.messages.size(); ++i) {
        EXPECT_EQ(d.messages[i].role, r.messages[i].role);
        EXPECT_EQ(d.messages[i].content, r.messages[i].content);
    }
    EXPECT_EQ(d.max_tokens, r.max_tokens);
    EXPECT_EQ(d.temperature, r.temperature);
    EXPECT_EQ(d.top_k, r.top_k);
    EXPECT_EQ(d.top_p, r.top_p);
    EXPECT_EQ(d.min_p, r.min_p);
    EXPECT_EQ(d.repeat_penalty, r.repeat_penalty);
    EXPECT_EQ(d.seed, r.seed);
    EXPECT_EQ(d.stop, r.stop);
    EXPECT_EQ(d.prio, r.prio);
    EXPECT_EQ(d.deadline_ms, r.deadline_ms);
    EXPECT_EQ(d.stream, r.stream);
    EXPECT_EQ(d.resume_text, r.resume_text);
    EXPECT_EQ(d.resume_tokens, r.resume_tokens);
    EXPECT_NO_THROW(w::request_validate(d));

    w::request plain;
    plain.id = "x";
    plain.service = "complete";
    const auto p = w::decode_request(w::encode(plain));
    EXPECT_FALSE(p.seed.has_value());
    EXPECT_EQ(p.prio, w::priority::interactive);
    EXPECT_TRUE(p.stream);
}

TEST(Protocol, SmallMessagesRoundTrip) {
    const auto c = w::decode_cancel(w::encode(w::cancel{"c1", "timeout"}));
    EXPECT_EQ(c.id, "c1");
    EXPECT_EQ(c.reason, "timeout");

    w::heartbeat hb;
    hb.pending = {"a", "b"};
    hb.unknown = {"c"};
    hb.free_slots = 3;
    hb.guard = "throttled";
    hb.running = {"d", "e", "f"};
    const auto h = w::decode_heartbeat(w::encode(hb));
    EXPECT_EQ(h.pending, hb.pending);
    EXPECT_EQ(h.unknown, hb.unknown);
    EXPECT_EQ(h.free_slots, 3);
    EXPECT_EQ(h.guard, "throttled");
    EXPECT_EQ(h.running, hb.running);

    EXPECT_FALSE(h.memory) << "absent unless a worker sends it";
    hb.memory = w::memory_report{"RSS 600 MiB > budget 512 MiB", 0, 8ull << 30, 3ull << 30, 1.5, -1, 5ull << 20, UINT64_MAX,
                                 600ull << 20, 512ull << 20};
    const auto hm = w::decode_heartbeat(w::encode(hb));
    ASSERT_TRUE(hm.memory);
    EXPECT_EQ(hm.memory->reason, hb.memory->reason);
    EXPECT_EQ(hm.memory->slots_now, 0);
    EXPECT_EQ(hm.memory->mem_total, 8ull << 30);
    EXPECT_EQ(hm.memory->mem_available, 3ull << 30);
    EXPECT_EQ(hm.memory->psi_some, 1.5);
    EXPECT_EQ(hm.memory->psi_full, -1);
    EXPECT_EQ(hm.memory->cgroup_current, 5ull << 20);
    EXPECT_EQ(hm.memory->cgroup_limit, UINT64_MAX);
    EXPECT_EQ(hm.memory->rss, 600ull << 20);
    EXPECT_EQ(hm.memory->budget, 512ull << 20);
    EXPECT_EQ(w::memory_report_describe(*hm.memory),
              "RSS 600 MiB of budget 512 MiB (117%), MemAvailable 3 GiB of 8 GiB (38%), PSI some 1.5 full 0.0, cgroup 5 MiB of no limit");
    EXPECT_EQ(w::memory_report_describe(w::memory_report{}), "") << "unknown readings are left out";

    const auto a = w::decode_accepted(w::encode(w::accepted{"a1", 7, 12, {}}));
    EXPECT_EQ(a.id, "a1");
    EXPECT_EQ(a.position, 7u);
    EXPECT_EQ(a.queue_depth, 12u);
    EXPECT_EQ(a.note, "");
    EXPECT_EQ(w::decode_accepted(w::encode(w::accepted{"a2", 1, 1, "every worker is critical"})).note, "every worker is critical");

    const auto p = w::decode_partial(w::encode(w::partial{"p1", "h\xc3\xa9llo", 3}));
    EXPECT_EQ(p.id, "p1");
    EXPECT_EQ(p.text, "h\xc3\xa9llo");
    EXPECT_EQ(p.tokens, 3);

    const auto e = w::decode_error(w::encode(w::error_reply{"e1", w::error_code::quota_exceeded, "slow down", 1500}));
    EXPECT_EQ(e.id, "e1");
    EXPECT_EQ(e.code, w::error_code::quota_exceeded);
    EXPECT_EQ(e.message, "slow down");
    EXPECT_EQ(e.retry_after_ms, 1500u);
    EXPECT_NE(w::encode(w::error_reply{"", w::error_code::queue_full, "", 0}).find("queue_full"), std::string::npos)
        << "codes travel as their names";

    w::ready rd;
    rd.worker = "box:42";
    rd.model = "smollm2.gguf";
    rd.services = {"complete", "chat", "command"};
    rd.slots = 4;
    rd.n_ctx = 2048;
    rd.guard = "critical";
    rd.memory = w::memory_report{};
    rd.memory->rss = 12345;
    const auto r = w::decode_ready(w::encode(rd));
    ASSERT_TRUE(r.memory);
    EXPECT_EQ(r.memory->rss, 12345u);
    EXPECT_EQ(r.memory->slots_now, -1);
    EXPECT_EQ(r.worker, rd.worker);
    EXPECT_EQ(r.model, rd.model);
    EXPECT_EQ(r.services, rd.services);
    EXPECT_EQ(r.slots, 4);
    EXPECT_EQ(r.n_ctx, 2048);
    EXPECT_EQ(r.guard, "critical");

    EXPECT_EQ(w::decode_disconnect(w::encode(w::disconnect{"unknown worker"})).reason, "unknown worker");
    EXPECT_EQ(w::encode_empty(), std::string("\x80", 1));
    EXPECT_NO_THROW(w::decode_empty(w::encode_empty()));
    EXPECT_NO_THROW(w::decode_empty(w::encode(rd))) << "any map is an empty message's body";
}

TEST(Protocol, FinalAndStatusRoundTrip) {
    w::final_reply f;
    f.id = "f1";
    f.text = "The lights are on.";
    f.finish_reason = "stop";
    f.use = {12, 5, 1.5, 20.25, 80.125, 61.5, "box:42", "smollm2"};
    const auto d = w::decode_final(w::encode(f));
    EXPECT_EQ(d.id, "f1");
    EXPECT_EQ(d.text, f.text);
    EXPECT_EQ(d.finish_reason, "stop");
    EXPECT_EQ(d.use.prompt_tokens, 12);
    EXPECT_EQ(d.use.completion_tokens, 5);
    EXPECT_EQ(d.use.queue_ms, 1.5);
    EXPECT_EQ(d.use.ttft_ms, 20.25);
    EXPECT_EQ(d.use.total_ms, 80.125);
    EXPECT_EQ(d.use.tokens_per_s, 61.5);
    EXPECT_EQ(d.use.worker, "box:42");
    EXPECT_EQ(d.use.model, "smollm2");

    w::status_reply s;
    s.services = {{"chat", 3, 1, 2, 1, 0, 1, "every worker serving 'chat' is critical"}, {"complete", 0, 9, 0, 2, 1, 0, ""}};
    s.workers = {{"box:1", "m1", {"chat", "complete"}, 4, 2, "ok", 120.5, std::nullopt},
                 {"box:2", "m2", {}, 1, 0, "throttled", 3, w::memory_report{"RSS over 90% of budget", 1, 0, 0, -1, -1, 0, 0, 7, 8}}};
    s.uptime_s = 3600.5;
    s.served = 1ull << 40;
    const auto t = w::decode_status(w::encode(s));
    ASSERT_EQ(t.services.size(), 2u);
    EXPECT_EQ(t.services[1].name, "complete");
    EXPECT_EQ(t.services[0].interactive, 3u);
    EXPECT_EQ(t.services[1].batch, 9u);
    EXPECT_EQ(t.services[0].running, 2u);
    EXPECT_EQ(t.services[1].workers, 2u);
    ASSERT_EQ(t.workers.size(), 2u);
    EXPECT_EQ(t.workers[0].id, "box:1");
    EXPECT_EQ(t.workers[0].model, "m1");
    EXPECT_EQ(t.workers[0].services, (std::vector<std::string>{"chat", "complete"}));
    EXPECT_EQ(t.workers[0].slots, 4);
    EXPECT_EQ(t.workers[0].busy, 2);
    EXPECT_EQ(t.workers[1].guard, "throttled");
    EXPECT_FALSE(t.workers[0].memory);
    ASSERT_TRUE(t.workers[1].memory);
    EXPECT_EQ(t.workers[1].memory->reason, "RSS over 90% of budget");
    EXPECT_EQ(t.workers[1].memory->slots_now, 1);
    EXPECT_EQ(t.workers[1].memory->budget, 8u);
    EXPECT_EQ(t.services[0].critical, 1u);
    EXPECT_EQ(t.services[1].throttled, 1u);
    EXPECT_EQ(t.services[0].note, "every worker serving 'chat' is critical");
    EXPECT_EQ(t.workers[0].last_seen_ms, 120.5);
    EXPECT_EQ(t.uptime_s, 3600.5);
    EXPECT_EQ(t.served, 1ull << 40);
    EXPECT_TRUE(w::decode_status(w::encode(w::status_reply{})).workers.empty());
}

// Field names as protocol.md documents them, written by hand (wide integer and float forms).
TEST(Protocol, HandWrittenBodiesUseDocumentedNames) {
    const auto r = w::decode_request(M({{"id", S("h1")}, {"service", S("chat")},
                                        {"messages", A({M({{"role", S("user")}, {"content", S("hi")}})})},
                                        {"max_tokens", U(7)}, {"temperature", U(1)}, {"top_k", I(-3)},
                                        {"top_p", F(0.5)}, {"min_p", I(0)}, {"repeat_penalty", F(1.25)},
                                        {"seed", U(9)}, {"stop", A({S("END")})}, {"priority", S("batch")},
                                        {"deadline_ms", U(500)}, {"stream", B(false)},
                                        {"resume_text", S("ab")}, {"resume_tokens", U(1)}}));
    EXPECT_EQ(r.messages.at(0).content, "hi");
    EXPECT_EQ(r.max_tokens, 7);
    EXPECT_EQ(r.temperature, 1.0f) << "an integer is a valid float";
    EXPECT_EQ(r.top_k, -3);
    EXPECT_EQ(r.top_p, 0.5f);
    EXPECT_EQ(r.repeat_penalty, 1.25f);
    EXPECT_EQ(r.seed, 9u);
    EXPECT_EQ(r.prio, w::priority::batch);
    EXPECT_EQ(r.deadline_ms, 500u);
    EXPECT_FALSE(r.stream);
    EXPECT_EQ(r.resume_tokens, 1);

    const auto f = w::decode_final(M({{"id", S("f")}, {"usage", M({{"prompt_tokens", U(3)}, {"ttft_ms", U(4)},
                                                                    {"worker", S("w")}})}}));
    EXPECT_EQ(f.use.prompt_tokens, 3);
    EXPECT_EQ(f.use.ttft_ms, 4.0);
    EXPECT_EQ(f.use.worker, "w");
    EXPECT_EQ(f.use.completion_tokens, 0);
}

TEST(Protocol, DefaultsAndNull) {
    const auto r = w::decode_request(M(minimal("request")));
    const w::request def;
    EXPECT_EQ(r.max_tokens, def.max_tokens);
    EXPECT_EQ(r.temperature, def.temperature);
    EXPECT_EQ(r.top_k, def.top_k);
    EXPECT_EQ(r.top_p, def.top_p);
    EXPECT_EQ(r.min_p, def.min_p);
    EXPECT_EQ(r.repeat_penalty, def.repeat_penalty);
    EXPECT_FALSE(r.seed.has_value());
    EXPECT_TRUE(r.stop.empty());
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.prio, w::priority::interactive);
    EXPECT_EQ(r.deadline_ms, 0u);
    EXPECT_TRUE(r.stream);
    // nil means "absent": the default, or a missing required field.
    EXPECT_FALSE(w::decode_request(M(with(minimal("request"), "seed", NIL))).seed.has_value());
    EXPECT_EQ(w::decode_request(M(with(minimal("request"), "max_tokens", NIL))).max_tokens, 256);
    EXPECT_PROTOCOL_ERROR(w::decode_request(M(with(minimal("request"), "id", NIL))), w::error_code::bad_request,
                          "'id'");

    const auto h = w::decode_heartbeat(M({}));
    EXPECT_EQ(h.guard, "ok");
    EXPECT_EQ(h.free_slots, 0);
    const auto rd = w::decode_ready(M(minimal("ready")));
    EXPECT_EQ(rd.guard, "ok");
    EXPECT_EQ(rd.n_ctx, 0);
    const auto e = w::decode_error(M(minimal("error")));
    EXPECT_EQ(e.code, w::error_code::timeout);
    EXPECT_TRUE(e.id.empty());
    // A code from a newer peer is kept an error, as internal.
    EXPECT_EQ(w::decode_error(M({{"code", S("brand_new_code")}})).code, w::error_code::internal);
}

TEST(Protocol, UnknownFieldsIgnored) {
    const std::string future = M({{"nested", A({U(1), M({{"x", F(2.5)}}), NIL, B(true)})}});
    for (const auto& [name, decode] : all_decoders()) {
        kvs body = minimal(name);
        body.emplace_back("zz_added_in_1_1", future);
        body.emplace_back("another", S("value"));
        EXPECT_NO_THROW(decode(M(body), {})) << name;
    }
    // Inside nested maps too.
    EXPECT_NO_THROW(w::decode_request(M(with(minimal("request"), "messages",
                                             A({M({{"role", S("user")}, {"content", S("x")}, {"name", U(3)}})})))));
}

// ---------------------------------------------------------------- required fields and wrong types

TEST(Protocol, MissingRequiredFieldsNamed) {
    for (const auto& [name, decode] : all_decoders()) {
        for (const auto& [field, value] : minimal(name)) {
            SCOPED_TRACE(cat(name, ".", field));
            EXPECT_PROTOCOL_ERROR(decode(M(without(minimal(name), field)), {}), w::error_code::bad_request,
                                  cat("'", field, "'"));
        }
    }
    EXPECT_PROTOCOL_ERROR(w::decode_request(M(with(minimal("request"), "messages", A({M({{"role", S("user")}})})))),
                          w::error_code::bad_request, "'messages[0].content'");
    EXPECT_PROTOCOL_ERROR(w::decode_status(M({{"workers", A({M({{"model", S("m")}})})}})), w::error_code::bad_request,
                          "'workers[0].id'");
    EXPECT_PROTOCOL_ERROR(w::decode_status(M({{"services", A({M({})})}})), w::error_code::bad_request,
                          "'services[0].name'");
}

struct bad_field {
    std::string message;  // decoder name
    std::string field;    // key to set
    std::string value;    // encoded wrong value
    std::string named;    // what the error must name
    std::string says;     // and what it must say
};

TEST(Protocol, WrongTypesNamed) {
    const std::string str = S("x");
    const std::vector<bad_field> cases = {
        {"request", "id", U(1), "'id'", "expected a string"},
        {"request", "service", A({}), "'service'", "expected a string"},
        {"request", "prompt", B(true), "'prompt'", "expected a string"},
        {"request", "messages", str, "'messages'", "expected an array"},
        {"request", "messages", A({str}), "'messages[0]'", "expected a map"},
        {"request", "messages", A({M({{"role", U(1)}, {"content", str}})}), "'messages[0].role'", "expected a string"},
        {"request", "max_tokens", str, "'max_tokens'", "expected an integer"},
        {"request", "max_tokens", F(1.0), "'max_tokens'", "expected an integer"},
        {"request", "max_tokens", U(1ull << 31), "'max_tokens'", "out of range"},
        {"request", "top_k", I(-(1ll << 31) - 1), "'top_k'", "out of range"},
        {"request", "temperature", str, "'temperature'", "expected a number"},
        {"request", "temperature", F(NAN), "'temperature'", "finite"},
        {"request", "top_p", F(INFINITY), "'top_p'", "finite"},
        {"request", "min_p", F(-INFINITY), "'min_p'", "finite"},
        {"request", "repeat_penalty", F(1e300), "'repeat_penalty'", "finite"},
        {"request", "seed", I(-1), "'seed'", "out of range"},
        {"request", "seed", str, "'seed'", "expected an integer"},
        {"request", "stop", str, "'stop'", "expected an array"},
        {"request", "stop", A({str, U(2)}), "'stop[1]'", "expected a string"},
        {"request", "priority", U(1), "'priority'", "interactive"},
        {"request", "priority", S("urgent"), "'priority'", "batch"},
        {"request", "deadline_ms", I(-1), "'deadline_ms'", "out of range"},
        {"request", "deadline_ms", U(1ull << 32), "'deadline_ms'", "out of range"},
        {"request", "stream", U(1), "'stream'", "expected true or false"},
        {"request", "resume_text", U(1), "'resume_text'", "expected a string"},
        {"request", "resume_tokens", str, "'resume_tokens'", "expected an integer"},
        {"cancel", "id", U(1), "'id'", "expected a string"},
        {"cancel", "reason", U(1), "'reason'", "expected a string"},
        {"heartbeat", "pending", str, "'pending'", "expected an array"},
        {"heartbeat", "unknown", A({NIL}), "'unknown[0]'", "expected a string"},
        {"heartbeat", "free_slots", str, "'free_slots'", "expected an integer"},
        {"heartbeat", "guard", U(0), "'guard'", "expected a string"},
        {"heartbeat", "running", M({}), "'running'", "expected an array"},
        {"heartbeat", "memory", str, "'memory'", "expected a map"},
        {"heartbeat", "memory", M({{"rss", I(-1)}}), "'memory.rss'", "out of range"},
        {"ready", "memory", M({{"psi_some", str}}), "'memory.psi_some'", "expected a number"},
        {"accepted", "note", U(1), "'note'", "expected a string"},
        {"accepted", "id", U(1), "'id'", "expected a string"},
        {"accepted", "position", I(-1), "'position'", "out of range"},
        {"accepted", "queue_depth", str, "'queue_depth'", "expected an integer"},
        {"partial", "text", U(1), "'text'", "expected a string"},
        {"partial", "tokens", F(2.0), "'tokens'", "expected an integer"},
        {"final", "text", U(1), "'text'", "expected a string"},
        {"final", "finish_reason", U(1), "'finish_reason'", "expected a string"},
        {"final", "usage", str, "'usage'", "expected a map"},
        {"final", "usage", M({{"prompt_tokens", str}}), "'usage.prompt_tokens'", "expected an integer"},
        {"final", "usage", M({{"total_ms", str}}), "'usage.total_ms'", "expected a number"},
        {"final", "usage", M({{"tokens_per_s", F(NAN)}}), "'usage.tokens_per_s'", "finite"},
        {"final", "usage", M({{"model", U(1)}}), "'usage.model'", "expected a string"},
        {"error", "code", U(3), "'code'", "expected a string"},
        {"error", "message", U(3), "'message'", "expected a string"},
        {"error", "retry_after_ms", I(-5), "'retry_after_ms'", "out of range"},
        {"ready", "services", str, "'services'", "expected an array"},
        {"ready", "slots", str, "'slots'", "expected an integer"},
        {"ready", "n_ctx", U(1ull << 40), "'n_ctx'", "out of range"},
        {"ready", "worker", U(1), "'worker'", "expected a string"},
        {"disconnect", "reason", U(1), "'reason'", "expected a string"},
        {"status", "services", A({M({{"name", str}, {"batch", I(-1)}})}), "'services[0].batch'", "out of range"},
        {"status", "workers", A({M({{"id", str}, {"last_seen_ms", str}})}), "'workers[0].last_seen_ms'",
         "expected a number"},
        {"status", "workers", A({M({{"id", str}, {"services", A({U(1)})}})}), "'workers[0].services[0]'",
         "expected a string"},
        {"status", "uptime_s", str, "'uptime_s'", "expected a number"},
        {"status", "served", I(-1), "'served'", "out of range"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(cat(c.message, ".", c.field));
        const auto e = error_of([&] { decoder_of(c.message)(M(with(minimal(c.message), c.field, c.value)), {}); });
        EXPECT_EQ(e.code(), w::error_code::bad_request) << e.what();
        const std::string what = e.what();
        EXPECT_NE(what.find(c.named), std::string::npos) << what;
        EXPECT_NE(what.find(c.says), std::string::npos) << what;
    }
    // In range at the edges.
    EXPECT_EQ(w::decode_request(M(with(minimal("request"), "top_k", I(-(1ll << 31))))).top_k, INT32_MIN);
    EXPECT_EQ(w::decode_request(M(with(minimal("request"), "max_tokens", U((1ull << 31) - 1)))).max_tokens,
              INT32_MAX);
    EXPECT_EQ(w::decode_request(M(with(minimal("request"), "seed", U(UINT64_MAX)))).seed, UINT64_MAX);
    EXPECT_EQ(w::decode_final(M({{"id", S("f")}, {"usage", M({{"total_ms", F(1e300)}})}})).use.total_ms, 1e300)
        << "doubles keep their range";
}

TEST(Protocol, MalformedMaps) {
    const auto req = minimal("request");
    // A non-string key, a repeated key, a body that is not a map.
    std::string int_key = cat("\x83", S("id"), S("a"), S("service"), S("chat"), U(1), S("x"));
    EXPECT_PROTOCOL_ERROR(w::decode_request(int_key), w::error_code::bad_request, "keys must be strings");
    EXPECT_PROTOCOL_ERROR(w::decode_request(M({{"id", S("a")}, {"service", S("b")}, {"id", S("c")}})),
                          w::error_code::bad_request, "'id': appears more than once");
    EXPECT_PROTOCOL_ERROR(w::decode_request(A({S("id")})), w::error_code::bad_request, "must be a MessagePack map");
    EXPECT_PROTOCOL_ERROR(w::decode_cancel(S("id")), w::error_code::bad_request, "map");
    EXPECT_PROTOCOL_ERROR(w::decode_empty(""), w::error_code::bad_request, "not MessagePack");
    EXPECT_PROTOCOL_ERROR(w::decode_empty(std::string("\xc1", 1)), w::error_code::bad_request, "not MessagePack");
    // Truncated, and trailing bytes after a valid map.
    const auto body = M(req);
    EXPECT_PROTOCOL_ERROR(w::decode_request(body.substr(0, body.size() - 1)), w::error_code::bad_request,
                          "not MessagePack");
    EXPECT_PROTOCOL_ERROR(w::decode_request(body + '\0'), w::error_code::bad_request, "1 bytes after the map");
    EXPECT_PROTOCOL_ERROR(w::decode_empty(w::encode_empty() + w::encode_empty()), w::error_code::bad_request,
                          "after the map");
}

// ---------------------------------------------------------------- envelope

TEST(Protocol, EnvelopeParses) {
    const std::string header = w::header_frame();
    const std::string body = w::encode_empty();
    for (uint8_t b = 1; b <= 10; ++b) {
        const std::string cmd(1, static_cast<char>(b));
        const auto env = w::envelope_parse({header, cmd, body});
        EXPECT_EQ(static_cast<uint8_t>(env.cmd), b);
        EXPECT_EQ(env.body.data(), body.data()) << "the body is a view of the caller's frame";
        EXPECT_EQ(env.body.size(), body.size());
    }
    EXPECT_EQ(w::envelope_parse({"hearth/01", "\x03", ""}).cmd, w::command::status) << "leading zeros tolerated";
}

TEST(Protocol, EnvelopeErrors) {
    const std::string h = w::header_frame();
    const std::string cmd("\x01", 1);
    const std::string body = w::encode_empty();
    using sv = std::vector<std::string_view>;
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{}), w::error_code::bad_request, "got 0");
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{h}), w::error_code::bad_request, "got 1");
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{h, cmd}), w::error_code::bad_request, "got 2");
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{"peer-id", h, cmd, body}), w::error_code::bad_request, "got 4");
    for (std::string bad : {"heart/1", "HEARTH/1", "hearth1", "hearth/", "hearth/x", "hearth/1a", "hearth/-1",
                            "hearth/ 1", "", "hearth/1/2", "xhearth/1"}) {
        EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{bad, cmd, body}), w::error_code::bad_request,
                              "not a hearth message");
    }
    const std::string long_header = cat("hearth/", std::string(w::max_header_bytes, '1'));
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{long_header, cmd, body}), w::error_code::bad_request,
                          "not a hearth message");
    const std::string binary("\x00\xff\n", 3);
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{binary, cmd, body}), w::error_code::bad_request, "\\x00\\xff\\x0a");

    // Another version: bad_version, naming the version received and the one spoken here.
    const auto e = error_of([&] { w::envelope_parse(sv{"hearth/2", cmd, body}); });
    EXPECT_EQ(e.code(), w::error_code::bad_version);
    EXPECT_NE(std::string(e.what()).find("version 2 "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("version 1"), std::string::npos) << e.what();
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{"hearth/0", cmd, body}), w::error_code::bad_version, "version 0 ");
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{"hearth/99999999999999999999", cmd, body}),
                          w::error_code::bad_version, "99999999999999999999");

    // The command frame: exactly one known byte.
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{h, "", body}), w::error_code::bad_request, "1 byte");
    EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{h, "\x01\x01", body}), w::error_code::bad_request, "1 byte");
    for (int b : {0, 13, 127, 255}) {
        const std::string c(1, static_cast<char>(b));
        EXPECT_PROTOCOL_ERROR(w::envelope_parse(sv{h, c, body}), w::error_code::bad_request, "unknown command");
    }
}

// ---------------------------------------------------------------- request_validate

TEST(Protocol, RequestValidate) {
    w::request ok;
    ok.id = "id-1 with space \xc3\xa9";
    ok.service = "complete";
    ok.prompt = "Once";
    EXPECT_NO_THROW(w::request_validate(ok));
    EXPECT_NO_THROW(w::request_validate(full_request()));

    struct bad {
        std::function<void(w::request&)> edit;  // makes ok invalid
        std::string named;                      // the field the error must name
    };
    const std::vector<bad> cases = {
        {[](auto& r) { r.id.clear(); }, "'id'"},
        {[](auto& r) { r.id = std::string(129, 'a'); }, "'id'"},
        {[](auto& r) { r.id = "a\nb"; }, "'id'"},
        {[](auto& r) { r.id = std::string("a\0b", 3); }, "'id'"},
        {[](auto& r) { r.id = "a\x7f"; }, "'id'"},
        {[](auto& r) { r.service.clear(); }, "'service'"},
        {[](auto& r) { r.service = "Complete"; }, "'service'"},
        {[](auto& r) { r.service = "com plete"; }, "'service'"},
        {[](auto& r) { r.service = std::string(33, 'a'); }, "'service'"},
        {[](auto& r) { r.prompt.clear(); }, "'prompt'"},
        {[](auto& r) { r.service = "chat"; }, "'messages'"},
        {[](auto& r) {
             r.service = "chat";
             r.messages = {{"user", "hi"}, {"robot", "x"}};
         },
         "'messages[1].role'"},
        {[](auto& r) { r.max_tokens = -1; }, "'max_tokens'"},
        {[](auto& r) { r.max_tokens = 65537; }, "'max_tokens'"},
        {[](auto& r) { r.temperature = -0.01f; }, "'temperature'"},
        {[](auto& r) { r.temperature = 100.5f; }, "'temperature'"},
        {[](auto& r) { r.temperature = NAN; }, "'temperature'"},
        {[](auto& r) { r.top_p = 0; }, "'top_p'"},
        {[](auto& r) { r.top_p = 1.01f; }, "'top_p'"},
        {[](auto& r) { r.min_p = 1; }, "'min_p'"},
        {[](auto& r) { r.min_p = -0.5f; }, "'min_p'"},
        {[](auto& r) { r.repeat_penalty = 10.5f; }, "'repeat_penalty'"},
        {[](auto& r) { r.repeat_penalty = -1; }, "'repeat_penalty'"},
        {[](auto& r) { r.stop = std::vector<std::string>(9, "x"); }, "'stop'"},
        {[](auto& r) { r.stop = {"ok", ""}; }, "'stop[1]'"},
        {[](auto& r) { r.stop = {std::string(65, 's')}; }, "'stop[0]'"},
        {[](auto& r) { r.deadline_ms = 24u * 3600 * 1000 + 1; }, "'deadline_ms'"},
        {[](auto& r) { r.resume_tokens = -1; }, "'resume_tokens'"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(i);
        w::request r = ok;
        cases[i].edit(r);
        EXPECT_PROTOCOL_ERROR(w::request_validate(r), w::error_code::bad_request, cases[i].named);
    }
    // The edges of every range are valid.
    w::request edge = ok;
    edge.id = std::string(128, '~');
    edge.service = std::string(32, 'z') ;
    edge.service[0] = '_';
    edge.service[1] = '-';
    edge.service[2] = '9';
    edge.max_tokens = 65536;
    edge.temperature = 100;
    edge.top_p = 1;
    edge.min_p = 0;
    edge.repeat_penalty = 10;
    edge.stop = std::vector<std::string>(8, std::string(64, 's'));
    edge.deadline_ms = 24u * 3600 * 1000;
    EXPECT_NO_THROW(w::request_validate(edge));
    edge.max_tokens = 0;
    edge.temperature = 0;
    edge.repeat_penalty = 0;
    EXPECT_NO_THROW(w::request_validate(edge));
}

}  // namespace
