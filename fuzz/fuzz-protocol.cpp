// libFuzzer target for the wire codec: any frames must either parse or throw protocol_error, and
// every body must either decode or throw protocol_error, whatever the envelope said. Anything
// else escaping (another exception, a sanitizer report, a huge allocation) is a bug.
//
// Input format: byte 0 mod 5 is the number of frames; then each frame but the last is a 2-byte
// little-endian length and that many bytes (cut short at the end of the input); the last frame is
// the rest of the input. The seeds in corpus/protocol/ are one valid message of each kind (and a
// "hearth/2" one) written this way from bodies made by the codec's encoders.
#include "protocol-audit.h"
#include "protocol-batch.h"
#include "protocol.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace {

namespace w = hearth::wire;

volatile size_t g_sink;

std::vector<std::string_view> frames_split(const uint8_t* data, size_t size) {
    std::vector<std::string_view> frames;
    if (size == 0) return frames;
    const size_t count = data[0] % 5;
    const char* p = reinterpret_cast<const char*>(data) + 1;
    size_t left = size - 1;
    for (size_t i = 0; i < count; ++i) {
        if (i + 1 == count) {
            frames.emplace_back(p, left);
            break;
        }
        size_t n = 0;
        if (left >= 2) {
            n = static_cast<size_t>(static_cast<uint8_t>(p[0])) | (static_cast<size_t>(static_cast<uint8_t>(p[1])) << 8);
            p += 2;
            left -= 2;
        } else {
            left = 0;
        }
        if (n > left) n = left;
        frames.emplace_back(p, n);
        p += n;
        left -= n;
    }
    return frames;
}

template <typename F>
void try_decode(F&& f) {
    try {
        f();
    } catch (const w::protocol_error& e) {
        g_sink = g_sink + static_cast<size_t>(e.code()) + std::string_view(e.what()).size();
    }
}

// A decoded request must also survive validation and re-encoding (an accepted request is
// forwarded to a worker as it was decoded).
void request_check(std::string_view body) {
    const auto r = w::decode_request(body);
    try {
        w::request_validate(r);
    } catch (const w::protocol_error&) {
    }
    const auto again = w::decode_request(w::encode(r));
    if (again.id != r.id || again.stop != r.stop || again.messages.size() != r.messages.size()) __builtin_trap();
}

// A batch call likewise: validated, and its jobs survive re-encoding.
void batch_check(std::string_view body, const w::decode_limits& lim) {
    const auto c = w::decode_batch_call(body, lim);
    try {
        w::batch_call_validate(c);
    } catch (const w::protocol_error&) {
    }
    const auto again = w::decode_batch_call(w::encode(c), lim);
    if (again.id != c.id || again.jobs.size() != c.jobs.size() || again.batch != c.batch) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto frames = frames_split(data, size);
    try {
        const auto env = w::envelope_parse(frames);
        g_sink = g_sink + static_cast<size_t>(env.cmd) + w::command_name(env.cmd).size();
    } catch (const w::protocol_error&) {
    }

    // Every decoder on the last frame (the body when there are three), whatever the command.
    const std::string_view body = frames.empty() ? std::string_view{} : frames.back();
    try_decode([&] { request_check(body); });
    try_decode([&] { g_sink = g_sink + w::decode_cancel(body).id.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_heartbeat(body).pending.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_accepted(body).position; });
    try_decode([&] { g_sink = g_sink + w::decode_partial(body).text.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_final(body).use.model.size(); });
    try_decode([&] { g_sink = g_sink + w::error_code_name(w::decode_error(body).code).size(); });
    try_decode([&] { g_sink = g_sink + w::decode_ready(body).services.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_disconnect(body).reason.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_status(body).workers.size(); });
    try_decode([&] { w::decode_empty(body); });
    try_decode([&] { batch_check(body, w::decode_limits{}); });
    try_decode([&] { g_sink = g_sink + w::decode_batch_reply(body).jobs.size(); });
    try_decode([&] {
        const auto a = w::decode_audit_call(body);
        try {
            w::audit_call_validate(a);
        } catch (const w::protocol_error&) {
        }
        g_sink = g_sink + a.id.size();
    });
    try_decode([&] { g_sink = g_sink + w::decode_audit_reply(body).rows.size(); });
    // Tight limits reach the limit checks with small inputs.
    w::decode_limits tight;
    tight.max_body_bytes = 512;
    tight.max_str_bytes = 16;
    tight.max_array = 4;
    tight.max_map = 6;
    tight.max_depth = 3;
    try_decode([&] { g_sink = g_sink + w::decode_request(body, tight).prompt.size(); });
    try_decode([&] { g_sink = g_sink + w::decode_status(body, tight).services.size(); });
    try_decode([&] { batch_check(body, tight); });
    return 0;
}
