// Wire codec against hostile bodies: size claims refused before any allocation, container,
// nesting, string and body limits, and random or mangled bytes through every decoder.
#include "protocol-test-util.h"
#include "protocol.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace w = hearth::wire;
using namespace hearth::test::wire_body;

namespace {

// ---------------------------------------------------------------- limits

TEST(Protocol, HugeClaimedSizesFailFast) {
    const auto start = std::chrono::steady_clock::now();
    // 8 bytes: an array header claiming 2^32-1 elements; a map claiming as many pairs; a string
    // and a binary claiming 4 GiB. None may allocate for the claim.
    const std::string arr("\xdd\xff\xff\xff\xff\x00\x00\x00", 8);
    const std::string map("\xdf\xff\xff\xff\xff\x00\x00\x00", 8);
    const std::string str("\xdb\xff\xff\xff\xff\x00\x00\x00", 8);
    const std::string bin("\xc6\xff\xff\xff\xff\x00\x00\x00", 8);
    const std::string ext("\xc9\xff\xff\xff\xff\x01\x00\x00", 8);
    // msgpack checks container claims against the limits at the header; string, binary and ext
    // claims it checks only once their bytes have arrived, so here they are merely truncated.
    for (const auto& [name, decode] : all_decoders()) {
        SCOPED_TRACE(name);
        EXPECT_PROTOCOL_ERROR(decode(arr, {}), w::error_code::too_large, "array");
        EXPECT_PROTOCOL_ERROR(decode(map, {}), w::error_code::too_large, "map");
        EXPECT_PROTOCOL_ERROR(decode(str, {}), w::error_code::bad_request, "not MessagePack");
        EXPECT_PROTOCOL_ERROR(decode(bin, {}), w::error_code::bad_request, "not MessagePack");
        EXPECT_PROTOCOL_ERROR(decode(ext, {}), w::error_code::bad_request, "not MessagePack");
    }
    // The same claims nested inside a valid-looking request.
    EXPECT_PROTOCOL_ERROR(w::decode_request(cat("\x83", S("id"), S("a"), S("service"), S("b"), S("stop"),
                                                std::string("\xdd\xff\xff\xff\xff", 5))),
                          w::error_code::too_large, "array");
    EXPECT_PROTOCOL_ERROR(w::decode_request(cat("\x81", S("prompt"), std::string("\xdb\x7f\xff\xff\xff", 5))),
                          w::error_code::bad_request, "not MessagePack");
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(ms, 2000) << "hostile size claims must be refused without work proportional to the claim";
}

TEST(Protocol, ContainerLimits) {
    w::decode_limits lim;
    // Arrays: exactly max_array is fine, one more is too large.
    std::vector<std::string> stops(lim.max_array, S("s"));
    EXPECT_EQ(w::decode_request(M(with(minimal("request"), "stop", A(stops))), lim).stop.size(), lim.max_array);
    stops.push_back(S("s"));
    EXPECT_PROTOCOL_ERROR(w::decode_request(M(with(minimal("request"), "stop", A(stops))), lim),
                          w::error_code::too_large, "array");
    // Maps: max_map pairs are fine (unknown keys), one more is too large.
    kvs many = minimal("request");
    while (many.size() < lim.max_map) many.emplace_back(cat("k", std::to_string(many.size())), U(1));
    EXPECT_NO_THROW(w::decode_request(M(many), lim));
    many.emplace_back("one_more", U(1));
    EXPECT_PROTOCOL_ERROR(w::decode_request(M(many), lim), w::error_code::too_large, "map");
    // A claimed array within the limit but without its elements is only truncated.
    EXPECT_PROTOCOL_ERROR(w::decode_request(cat("\x81", S("stop"), "\xdd", be(4000, 4))), w::error_code::bad_request,
                          "not MessagePack");
}

TEST(Protocol, NestingLimit) {
    const w::decode_limits lim;
    // The body map is level 1; an unknown field holding nested arrays adds one level each.
    auto nested = [](size_t levels) {
        std::string v = NIL;
        for (size_t i = 0; i < levels; ++i) v = A({v});
        return M(with(minimal("cancel"), "deep", v));
    };
    EXPECT_NO_THROW(w::decode_cancel(nested(lim.max_depth - 1), lim));
    EXPECT_PROTOCOL_ERROR(w::decode_cancel(nested(lim.max_depth), lim), w::error_code::too_large, "nested");
    // Deep nesting far past the limit: refused before the recursion gets deep.
    std::string deep = cat("\x81", S("deep"), std::string(100000, '\x91'), NIL);
    EXPECT_PROTOCOL_ERROR(w::decode_cancel(deep, lim), w::error_code::too_large, "nested");
    std::string deep_maps = std::string(100000, '\x81');
    EXPECT_PROTOCOL_ERROR(w::decode_empty(deep_maps, lim), w::error_code::too_large, "nested");
}

TEST(Protocol, StringAndBodyLimits) {
    w::decode_limits lim;
    lim.max_str_bytes = 16;
    EXPECT_EQ(w::decode_partial(M({{"id", S("p")}, {"text", S(std::string(16, 'a'))}}), lim).text.size(), 16u);
    EXPECT_PROTOCOL_ERROR(w::decode_partial(M({{"id", S("p")}, {"text", S(std::string(17, 'a'))}}), lim),
                          w::error_code::too_large, "string");
    const std::string bin17 = cat("\xc6", be(17, 4), std::string(17, 'b'));
    EXPECT_PROTOCOL_ERROR(w::decode_partial(M({{"id", S("p")}, {"blob", bin17}}), lim), w::error_code::too_large,
                          "binary");
    // Keys count as strings too.
    EXPECT_PROTOCOL_ERROR(w::decode_partial(M({{"id", S("p")}, {std::string(17, 'k'), U(1)}}), lim),
                          w::error_code::too_large, "string");

    // The whole body is checked before msgpack sees it, even when it is valid.
    w::decode_limits small;
    small.max_body_bytes = 64;
    const auto body = M({{"id", S("p")}, {"text", S(std::string(40, 'a'))}});
    ASSERT_GT(body.size(), 64u);
    EXPECT_PROTOCOL_ERROR(w::decode_partial(body, small), w::error_code::too_large, "limit of 64");
    small.max_body_bytes = body.size();
    EXPECT_NO_THROW(w::decode_partial(body, small));
    // Default limit: one byte over 16 MiB of garbage is refused as too large, not parsed.
    const std::string big((16u << 20) + 1, '\xc1');
    EXPECT_PROTOCOL_ERROR(w::decode_request(big), w::error_code::too_large, "exceeds");
}

// ---------------------------------------------------------------- garbage

TEST(Protocol, RandomBytesNeverCrash) {
    std::mt19937_64 rng(12345);
    std::vector<std::string> seeds = {w::encode(full_request()), w::encode(w::final_reply{}),
                                      w::encode(w::status_reply{{{"chat", 1, 2, 3, 4, 1, 1, "n"}}, {{"w", "m", {"chat"}, 1, 1, "ok", 2, w::memory_report{}}}, 1, 2}),
                                      w::encode(w::heartbeat{{"a"}, {"b"}, 1, "ok", {"c"}, w::memory_report{}}),
                                      w::encode(w::ready{"w", "m", {"chat"}, 1, 2, "ok", w::memory_report{}}),
                                      w::encode(w::error_reply{"e", w::error_code::timeout, "m", 1})};
    size_t rejected = 0, accepted = 0;
    auto run_all = [&](const std::string& body) {
        for (const auto& [name, decode] : all_decoders()) {
            try {
                decode(body, {});
                ++accepted;
            } catch (const w::protocol_error&) {
                ++rejected;
            }
        }
        try {
            (void)w::envelope_parse({body.substr(0, body.size() / 3), body.substr(body.size() / 3, 1), body});
        } catch (const w::protocol_error&) {
        }
    };
    for (int i = 0; i < 1200; ++i) {
        std::string body(rng() % 64, '\0');
        for (auto& c : body) c = static_cast<char>(rng());
        if (i % 2 == 0 && !body.empty()) body[0] = static_cast<char>(0x80 | (rng() % 16));  // a fixmap, often
        run_all(body);
    }
    // Valid bodies with a few bytes changed, truncated or extended: deeper into the decoders.
    for (int i = 0; i < 1200; ++i) {
        std::string body = seeds[rng() % seeds.size()];
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < edits; ++k) body[rng() % body.size()] = static_cast<char>(rng());
        if (rng() % 4 == 0) body.resize(rng() % (body.size() + 8));
        run_all(body);
    }
    EXPECT_GT(rejected, 0u);
    EXPECT_GT(accepted, 0u);
}

}  // namespace
