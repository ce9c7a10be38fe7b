// Helpers for the wire codec tests (test-protocol, test-protocol-limits): MessagePack bodies built
// by hand, independent of the codec, so tests can write what the encoder never would; every
// decoder under one signature; the smallest valid body of each message; a request with every
// field set; and EXPECT_PROTOCOL_ERROR.
#pragma once

#include "protocol.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::test::wire_body {

namespace w = hearth::wire;

// A hand-made MessagePack writer.
// Always the widest forms, so it also checks that the decoder accepts every width.

// Joins pieces with append (gcc 12 warns falsely about "literal" + std::string chains).
template <typename... P>
inline std::string cat(const P&... pieces) {
    std::string s;
    (s.append(std::string_view(pieces)), ...);
    return s;
}

inline std::string be(uint64_t v, int bytes) {
    std::string s;
    for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
}
inline std::string S(std::string_view s) { return cat("\xdb", be(s.size(), 4), s); }
inline std::string U(uint64_t v) { return cat("\xcf", be(v, 8)); }
inline std::string I(int64_t v) { return cat("\xd3", be(static_cast<uint64_t>(v), 8)); }
inline std::string F(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    return cat("\xcb", be(bits, 8));
}
inline std::string B(bool b) { return b ? "\xc3" : "\xc2"; }
inline const std::string NIL = "\xc0";
inline std::string A(const std::vector<std::string>& elems) {
    std::string s = cat("\xdd", be(elems.size(), 4));
    for (const auto& e : elems) s += e;
    return s;
}
using kvs = std::vector<std::pair<std::string, std::string>>;
inline std::string M(const kvs& pairs) {
    std::string s = cat("\xdf", be(pairs.size(), 4));
    for (const auto& [k, v] : pairs) s.append(cat(S(k), v));
    return s;
}
inline kvs without(kvs pairs, const std::string& key) {
    std::erase_if(pairs, [&](const auto& p) { return p.first == key; });
    return pairs;
}
inline kvs with(kvs pairs, const std::string& key, const std::string& value) {
    pairs = without(std::move(pairs), key);
    pairs.emplace_back(key, value);
    return pairs;
}

// Runs f and returns the protocol_error it throws; fails the test when it throws nothing.
template <typename F>
w::protocol_error error_of(F&& f) {
    try {
        f();
    } catch (const w::protocol_error& e) {
        return e;
    }
    ADD_FAILURE() << "no protocol_error thrown";
    return w::protocol_error(w::error_code::internal, "none");
}

#define EXPECT_PROTOCOL_ERROR(expr, code_, needle)                                    \
    do {                                                                              \
        const auto e_ = error_of([&] { (void)(expr); });                              \
        EXPECT_EQ(e_.code(), code_) << e_.what();                                     \
        EXPECT_NE(std::string(e_.what()).find(needle), std::string::npos) << e_.what(); \
    } while (0)

// Every decoder under one signature, for the table-driven tests.
using decoder = std::function<void(std::string_view, const w::decode_limits&)>;
inline const std::vector<std::pair<std::string, decoder>>& all_decoders() {
    static const std::vector<std::pair<std::string, decoder>> d = {
        {"request", [](auto b, auto& l) { (void)w::decode_request(b, l); }},
        {"cancel", [](auto b, auto& l) { (void)w::decode_cancel(b, l); }},
        {"heartbeat", [](auto b, auto& l) { (void)w::decode_heartbeat(b, l); }},
        {"accepted", [](auto b, auto& l) { (void)w::decode_accepted(b, l); }},
        {"partial", [](auto b, auto& l) { (void)w::decode_partial(b, l); }},
        {"final", [](auto b, auto& l) { (void)w::decode_final(b, l); }},
        {"error", [](auto b, auto& l) { (void)w::decode_error(b, l); }},
        {"ready", [](auto b, auto& l) { (void)w::decode_ready(b, l); }},
        {"disconnect", [](auto b, auto& l) { (void)w::decode_disconnect(b, l); }},
        {"status", [](auto b, auto& l) { (void)w::decode_status(b, l); }},
        {"empty", [](auto b, auto& l) { w::decode_empty(b, l); }},
    };
    return d;
}
inline const decoder& decoder_of(const std::string& name) {
    for (const auto& [n, d] : all_decoders()) {
        if (n == name) return d;
    }
    throw std::logic_error(cat("no decoder ", name));
}

// The smallest valid body of each message: only its required fields.
inline kvs minimal(const std::string& msg) {
    if (msg == "request") return {{"id", S("r1")}, {"service", S("complete")}};
    if (msg == "cancel" || msg == "accepted" || msg == "partial" || msg == "final") return {{"id", S("r1")}};
    if (msg == "error") return {{"code", S("timeout")}};
    if (msg == "ready") return {{"services", A({S("chat")})}, {"slots", U(2)}};
    return {};
}

inline w::request full_request() {
    w::request r;
    r.id = "req-\xc3\xa9-1";
    r.service = "chat";
    r.prompt = "unused";
    r.messages = {{"system", "be brief"}, {"user", "hi"}, {"assistant", "hello"}, {"user", "lights?"}};
    r.max_tokens = 1000;
    r.temperature = 0.25f;
    r.top_k = -1;
    r.top_p = 0.5f;
    r.min_p = 0.0f;
    r.repeat_penalty = 1.1f;
    r.seed = 0xfedcba9876543210ull;
    r.stop = {"\n\n", "User:"};
    r.prio = w::priority::batch;
    r.deadline_ms = 30000;
    r.stream = false;
    r.resume_text = "Once upon";
    r.resume_tokens = 2;
    return r;
}

}  // namespace hearth::test::wire_body
