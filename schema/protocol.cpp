// The hearth wire codec (protocol version 1, see protocol.md). Decoding treats every body as
// hostile: the size is checked before msgpack sees it, msgpack runs under limits derived from
// decode_limits, and each field is read from the msgpack object tree by hand, so a wrong type or
// an out-of-range number becomes a protocol_error naming the field instead of an exception from
// deep inside a conversion.
#include "protocol.h"

#include "byte-size.h"

#include "wire-codec.h"

#include <array>

namespace hearth::wire {

using namespace codec;

// ---------------------------------------------------------------- names

namespace {

constexpr std::array<std::string_view, 12> command_names = {
    "REQUEST", "CANCEL", "STATUS", "HEARTBEAT", "ACCEPTED", "PARTIAL", "FINAL", "ERROR", "READY", "DISCONNECT",
    "BATCH", "AUDIT",
};

constexpr std::array<std::string_view, 15> error_code_names = {
    "bad_request", "bad_version", "unknown_service", "too_large", "queue_full",
    "quota_exceeded", "unauthorized", "no_worker", "worker_lost", "timeout",
    "cancelled", "filtered", "overloaded", "unsupported", "internal",
};

}  // namespace

std::string_view command_name(command c) {
    const auto i = static_cast<size_t>(c);
    if (i >= 1 && i <= command_names.size()) return command_names[i - 1];
    return "UNKNOWN";
}

std::optional<command> command_from_byte(uint8_t b) {
    if (b >= 1 && b <= command_names.size()) return static_cast<command>(b);
    return std::nullopt;
}

std::string_view error_code_name(error_code c) {
    const auto i = static_cast<size_t>(c);
    if (i < error_code_names.size()) return error_code_names[i];
    return "internal";
}

std::optional<error_code> error_code_from_name(std::string_view s) {
    for (size_t i = 0; i < error_code_names.size(); ++i) {
        if (error_code_names[i] == s) return static_cast<error_code>(i);
    }
    return std::nullopt;
}

std::string_view priority_name(priority p) { return p == priority::batch ? "batch" : "interactive"; }

// ---------------------------------------------------------------- envelope


std::string header_frame() {
    std::string h(protocol_tag);
    h.push_back('/');
    h.append(std::to_string(protocol_version));
    return h;
}

envelope envelope_parse(const std::vector<std::string_view>& frames) {
    if (frames.size() != 3) {
        std::string m = "not a hearth message: expected 3 frames (header, command, body), got ";
        m.append(std::to_string(frames.size()));
        fail(error_code::bad_request, m);
    }
    const std::string_view header = frames[0];
    const size_t tag_len = protocol_tag.size();
    const bool tagged = header.size() <= max_header_bytes && header.size() > tag_len + 1 &&
                        header.substr(0, tag_len) == protocol_tag && header[tag_len] == '/';
    std::string_view digits = tagged ? header.substr(tag_len + 1) : std::string_view{};
    for (char c : digits) {
        if (c < '0' || c > '9') digits = {};
    }
    if (digits.empty()) {
        std::string m = "not a hearth message: header '";
        m.append(printable(header));
        m.append("' is not 'hearth/<version>'");
        fail(error_code::bad_request, m);
    }
    // Leading zeros are tolerated; more than 9 significant digits cannot be version 1 anyway.
    while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
    long version = -1;
    if (digits.size() <= 9) version = std::stol(std::string(digits));
    if (version != protocol_version) {
        std::string m = "protocol version ";
        m.append(digits);
        m.append(" is not supported: this peer speaks protocol version ");
        m.append(std::to_string(protocol_version));
        fail(error_code::bad_version, m);
    }
    if (frames[1].size() != 1) {
        std::string m = "command frame must be 1 byte, got ";
        m.append(std::to_string(frames[1].size()));
        fail(error_code::bad_request, m);
    }
    const auto byte = static_cast<uint8_t>(frames[1][0]);
    const auto cmd = command_from_byte(byte);
    if (!cmd) {
        std::string m = "unknown command ";
        m.append(std::to_string(byte));
        fail(error_code::bad_request, m);
    }
    return envelope{*cmd, frames[2]};
}

// ---------------------------------------------------------------- encoding


std::string encode(const request& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    request_write(pk, m);
    return finish(buf);
}

void codec::request_write(packer& pk, const request& m) {
    pk.pack_map((m.seed ? 17 : 16) + (m.schema.empty() ? 0 : 1));
    put(pk, "id", m.id);
    put(pk, "service", m.service);
    put(pk, "prompt", m.prompt);
    put_key(pk, "messages");
    pk.pack_array(static_cast<uint32_t>(m.messages.size()));
    for (const auto& t : m.messages) {
        pk.pack_map(2);
        put(pk, "role", t.role);
        put(pk, "content", t.content);
    }
    put(pk, "max_tokens", m.max_tokens);
    put(pk, "temperature", m.temperature);
    put(pk, "top_k", m.top_k);
    put(pk, "top_p", m.top_p);
    put(pk, "min_p", m.min_p);
    put(pk, "repeat_penalty", m.repeat_penalty);
    if (m.seed) put(pk, "seed", *m.seed);
    put(pk, "stop", m.stop);
    put(pk, "priority", std::string(priority_name(m.prio)));
    put(pk, "deadline_ms", m.deadline_ms);
    put(pk, "stream", m.stream);
    put(pk, "resume_text", m.resume_text);
    put(pk, "resume_tokens", m.resume_tokens);
    if (!m.schema.empty()) put(pk, "schema", m.schema);
}

std::string encode(const cancel& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(2);
    put(pk, "id", m.id);
    put(pk, "reason", m.reason);
    return finish(buf);
}

namespace {

std::string percent_of(uint64_t part, uint64_t whole) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.0f%%)", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
    return buf;
}

void put_memory(packer& pk, const memory_report& m) {
    put_key(pk, "memory");
    pk.pack_map(10);
    put(pk, "reason", m.reason);
    put(pk, "slots_now", m.slots_now);
    put(pk, "mem_total", m.mem_total);
    put(pk, "mem_available", m.mem_available);
    put(pk, "psi_some", m.psi_some);
    put(pk, "psi_full", m.psi_full);
    put(pk, "cgroup_current", m.cgroup_current);
    put(pk, "cgroup_limit", m.cgroup_limit);
    put(pk, "rss", m.rss);
    put(pk, "budget", m.budget);
}

void read_memory(const fields& f, std::optional<memory_report>& out) {
    const auto* v = f.find("memory");
    if (!v) return;
    const fields g = f.nested("memory", *v);
    memory_report m;
    g.str("reason", m.reason);
    g.integer("slots_now", m.slots_now);
    g.integer("mem_total", m.mem_total);
    g.integer("mem_available", m.mem_available);
    g.real("psi_some", m.psi_some);
    g.real("psi_full", m.psi_full);
    g.integer("cgroup_current", m.cgroup_current);
    g.integer("cgroup_limit", m.cgroup_limit);
    g.integer("rss", m.rss);
    g.integer("budget", m.budget);
    out = std::move(m);
}

}  // namespace

std::string memory_report_describe(const memory_report& m) {
    std::string s;
    auto sep = [&] {
        if (!s.empty()) s.append(", ");
    };
    if (m.rss) {
        s.append("RSS ").append(byte_size_format(m.rss));
        if (m.budget) s.append(" of budget ").append(byte_size_format(m.budget)).append(percent_of(m.rss, m.budget));
    }
    if (m.mem_available && m.mem_total) {
        sep();
        s.append("MemAvailable ").append(byte_size_format(m.mem_available)).append(" of ").append(byte_size_format(m.mem_total));
        s.append(percent_of(m.mem_available, m.mem_total));
    }
    if (m.psi_some >= 0 || m.psi_full >= 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "PSI some %.1f full %.1f", std::max(0.0, m.psi_some), std::max(0.0, m.psi_full));
        sep();
        s.append(buf);
    }
    if (m.cgroup_current) {
        sep();
        s.append("cgroup ").append(byte_size_format(m.cgroup_current)).append(" of ");
        if (m.cgroup_limit == UINT64_MAX || m.cgroup_limit == 0) s.append("no limit");
        else s.append(byte_size_format(m.cgroup_limit));
    }
    return s;
}

std::string encode(const heartbeat& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(m.memory ? 6 : 5);
    put(pk, "pending", m.pending);
    put(pk, "unknown", m.unknown);
    put(pk, "free_slots", m.free_slots);
    put(pk, "guard", m.guard);
    put(pk, "running", m.running);
    if (m.memory) put_memory(pk, *m.memory);
    return finish(buf);
}

std::string encode(const accepted& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(m.note.empty() ? 3 : 4);
    put(pk, "id", m.id);
    put(pk, "position", m.position);
    put(pk, "queue_depth", m.queue_depth);
    if (!m.note.empty()) put(pk, "note", m.note);
    return finish(buf);
}

std::string encode(const partial& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(3);
    put(pk, "id", m.id);
    put(pk, "text", m.text);
    put(pk, "tokens", m.tokens);
    return finish(buf);
}

std::string encode(const final_reply& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(4);
    put(pk, "id", m.id);
    put(pk, "text", m.text);
    put(pk, "finish_reason", m.finish_reason);
    put_key(pk, "usage");
    pk.pack_map(8);
    put(pk, "prompt_tokens", m.use.prompt_tokens);
    put(pk, "completion_tokens", m.use.completion_tokens);
    put(pk, "queue_ms", m.use.queue_ms);
    put(pk, "ttft_ms", m.use.ttft_ms);
    put(pk, "total_ms", m.use.total_ms);
    put(pk, "tokens_per_s", m.use.tokens_per_s);
    put(pk, "worker", m.use.worker);
    put(pk, "model", m.use.model);
    return finish(buf);
}

std::string encode(const error_reply& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(4);
    put(pk, "id", m.id);
    put(pk, "code", std::string(error_code_name(m.code)));
    put(pk, "message", m.message);
    put(pk, "retry_after_ms", m.retry_after_ms);
    return finish(buf);
}

std::string encode(const ready& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(m.memory ? 7 : 6);
    put(pk, "worker", m.worker);
    put(pk, "model", m.model);
    put(pk, "services", m.services);
    put(pk, "slots", m.slots);
    put(pk, "n_ctx", m.n_ctx);
    put(pk, "guard", m.guard);
    if (m.memory) put_memory(pk, *m.memory);
    return finish(buf);
}

std::string encode(const disconnect& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(1);
    put(pk, "reason", m.reason);
    return finish(buf);
}

std::string encode(const status_reply& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(4);
    put_key(pk, "services");
    pk.pack_array(static_cast<uint32_t>(m.services.size()));
    for (const auto& s : m.services) {
        pk.pack_map(8);
        put(pk, "name", s.name);
        put(pk, "interactive", s.interactive);
        put(pk, "batch", s.batch);
        put(pk, "running", s.running);
        put(pk, "workers", s.workers);
        put(pk, "throttled", s.throttled);
        put(pk, "critical", s.critical);
        put(pk, "note", s.note);
    }
    put_key(pk, "workers");
    pk.pack_array(static_cast<uint32_t>(m.workers.size()));
    for (const auto& w : m.workers) {
        pk.pack_map(w.memory ? 8 : 7);
        put(pk, "id", w.id);
        put(pk, "model", w.model);
        put(pk, "services", w.services);
        put(pk, "slots", w.slots);
        put(pk, "busy", w.busy);
        put(pk, "guard", w.guard);
        put(pk, "last_seen_ms", w.last_seen_ms);
        if (w.memory) put_memory(pk, *w.memory);
    }
    put(pk, "uptime_s", m.uptime_s);
    put(pk, "served", m.served);
    return finish(buf);
}

std::string encode_empty() {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(0);
    return finish(buf);
}

// ---------------------------------------------------------------- decoding


request decode_request(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    return request_read(fields(h.get(), ""));
}

request codec::request_read(const fields& f) {
    request r;
    f.str("id", r.id, true);
    f.str("service", r.service, true);
    f.str("prompt", r.prompt);
    if (const auto* a = f.array("messages", "maps")) {
        r.messages.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) {
            const fields t = f.nested("messages", a->ptr[i], i);
            chat_turn turn;
            t.str("role", turn.role, true);
            t.str("content", turn.content, true);
            r.messages.push_back(std::move(turn));
        }
    }
    f.integer("max_tokens", r.max_tokens);
    f.real("temperature", r.temperature);
    f.integer("top_k", r.top_k);
    f.real("top_p", r.top_p);
    f.real("min_p", r.min_p);
    f.real("repeat_penalty", r.repeat_penalty);
    if (f.find("seed")) {
        uint64_t seed = 0;
        f.integer("seed", seed);
        r.seed = seed;
    }
    f.strings("stop", r.stop);
    if (const auto* p = f.find("priority")) {
        if (p->type != msgpack::type::STR) fail_field(f.name("priority"), "expected \"interactive\" or \"batch\"");
        const std::string_view s(p->via.str.ptr, p->via.str.size);
        if (s == "interactive") {
            r.prio = priority::interactive;
        } else if (s == "batch") {
            r.prio = priority::batch;
        } else {
            fail_field(f.name("priority"), "expected \"interactive\" or \"batch\"");
        }
    }
    f.integer("deadline_ms", r.deadline_ms);
    f.boolean("stream", r.stream);
    f.str("resume_text", r.resume_text);
    f.integer("resume_tokens", r.resume_tokens);
    f.str("schema", r.schema);
    return r;
}

cancel decode_cancel(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    cancel c;
    f.str("id", c.id, true);
    f.str("reason", c.reason);
    return c;
}

heartbeat decode_heartbeat(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    heartbeat b;
    f.strings("pending", b.pending);
    f.strings("unknown", b.unknown);
    f.integer("free_slots", b.free_slots);
    f.str("guard", b.guard);
    f.strings("running", b.running);
    read_memory(f, b.memory);
    return b;
}

accepted decode_accepted(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    accepted a;
    f.str("id", a.id, true);
    f.integer("position", a.position);
    f.integer("queue_depth", a.queue_depth);
    f.str("note", a.note);
    return a;
}

partial decode_partial(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    partial p;
    f.str("id", p.id, true);
    f.str("text", p.text);
    f.integer("tokens", p.tokens);
    return p;
}

final_reply decode_final(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    final_reply r;
    f.str("id", r.id, true);
    f.str("text", r.text);
    f.str("finish_reason", r.finish_reason);
    if (const auto* u = f.find("usage")) {
        const fields g = f.nested("usage", *u);
        g.integer("prompt_tokens", r.use.prompt_tokens);
        g.integer("completion_tokens", r.use.completion_tokens);
        g.real("queue_ms", r.use.queue_ms);
        g.real("ttft_ms", r.use.ttft_ms);
        g.real("total_ms", r.use.total_ms);
        g.real("tokens_per_s", r.use.tokens_per_s);
        g.str("worker", r.use.worker);
        g.str("model", r.use.model);
    }
    return r;
}

error_reply decode_error(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    error_reply e;
    f.str("id", e.id);
    std::string code;
    f.str("code", code, true);
    // A code from a newer peer is still an error: internal keeps it one without guessing more.
    e.code = error_code_from_name(code).value_or(error_code::internal);
    f.str("message", e.message);
    f.integer("retry_after_ms", e.retry_after_ms);
    return e;
}

ready decode_ready(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    ready r;
    f.str("worker", r.worker);
    f.str("model", r.model);
    f.strings("services", r.services, true);
    f.integer("slots", r.slots, true);
    f.integer("n_ctx", r.n_ctx);
    f.str("guard", r.guard);
    read_memory(f, r.memory);
    return r;
}

disconnect decode_disconnect(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    disconnect d;
    f.str("reason", d.reason);
    return d;
}

status_reply decode_status(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    status_reply s;
    if (const auto* a = f.array("services", "maps")) {
        s.services.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) {
            const fields g = f.nested("services", a->ptr[i], i);
            service_status st;
            g.str("name", st.name, true);
            g.integer("interactive", st.interactive);
            g.integer("batch", st.batch);
            g.integer("running", st.running);
            g.integer("workers", st.workers);
            g.integer("throttled", st.throttled);
            g.integer("critical", st.critical);
            g.str("note", st.note);
            s.services.push_back(std::move(st));
        }
    }
    if (const auto* a = f.array("workers", "maps")) {
        s.workers.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) {
            const fields g = f.nested("workers", a->ptr[i], i);
            worker_status w;
            g.str("id", w.id, true);
            g.str("model", w.model);
            g.strings("services", w.services);
            g.integer("slots", w.slots);
            g.integer("busy", w.busy);
            g.str("guard", w.guard);
            g.real("last_seen_ms", w.last_seen_ms);
            read_memory(g, w.memory);
            s.workers.push_back(std::move(w));
        }
    }
    f.real("uptime_s", s.uptime_s);
    f.integer("served", s.served);
    return s;
}

void decode_empty(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    (void)fields(h.get(), "");  // only the key checks: the STATUS query has no fields yet
}

// ---------------------------------------------------------------- validation

namespace {

[[noreturn]] void range_error(std::string_view field, std::string_view range, double got) {
    char num[48];
    std::snprintf(num, sizeof num, "%g", got);
    std::string m = "must be in ";
    m.append(range);
    m.append(", got ");
    m.append(num);
    fail_field(std::string(field), m);
}

}  // namespace

void request_validate(const request& r) {
    if (r.id.empty() || r.id.size() > 128) fail_field("id", "must be 1..128 bytes");
    for (char c : r.id) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) fail_field("id", "must not contain control characters");
    }
    if (r.service.empty() || r.service.size() > 32) fail_field("service", "must be 1..32 characters");
    for (char c : r.service) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) fail_field("service", "may only contain a-z, 0-9, '_' and '-'");
    }
    if (r.service == "chat") {
        if (r.messages.empty()) fail_field("messages", "required and non-empty for service 'chat'");
        for (size_t i = 0; i < r.messages.size(); ++i) {
            const auto& role = r.messages[i].role;
            if (role != "system" && role != "user" && role != "assistant") {
                std::string n = "messages[";
                n.append(std::to_string(i));
                n.append("].role");
                fail_field(n, "must be system, user or assistant");
            }
        }
    } else if (r.prompt.empty()) {
        std::string m = "required and non-empty for service '";
        m.append(r.service);
        m.append("'");
        fail_field("prompt", m);
    }
    if (r.max_tokens < 0 || r.max_tokens > 65536) range_error("max_tokens", "[0, 65536]", r.max_tokens);
    // Written as !(in range) so that NaN, which compares false with everything, is refused too.
    if (!(r.temperature >= 0 && r.temperature <= 100)) range_error("temperature", "[0, 100]", r.temperature);
    if (!(r.top_p > 0 && r.top_p <= 1)) range_error("top_p", "(0, 1]", r.top_p);
    if (!(r.min_p >= 0 && r.min_p < 1)) range_error("min_p", "[0, 1)", r.min_p);
    if (!(r.repeat_penalty >= 0 && r.repeat_penalty <= 10)) {
        range_error("repeat_penalty", "[0, 10]", r.repeat_penalty);
    }
    if (r.stop.size() > 8) fail_field("stop", "at most 8 stop strings");
    for (size_t i = 0; i < r.stop.size(); ++i) {
        if (r.stop[i].empty() || r.stop[i].size() > 64) {
            std::string n = "stop[";
            n.append(std::to_string(i));
            n.append("]");
            fail_field(n, "must be 1..64 bytes");
        }
    }
    constexpr uint32_t day_ms = 24u * 60 * 60 * 1000;
    if (r.deadline_ms > day_ms) range_error("deadline_ms", "[0, 86400000] (24 hours)", r.deadline_ms);
    if (r.resume_tokens < 0) range_error("resume_tokens", "[0, 2147483647]", r.resume_tokens);
    if (r.schema.size() > max_schema_bytes) fail_field("schema", "must be at most 262144 bytes");
}

}  // namespace hearth::wire
