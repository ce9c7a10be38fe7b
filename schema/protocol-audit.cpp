// AUDIT codec, on the shared bounded decoder (wire-codec.h).
#include "protocol-audit.h"

#include "wire-codec.h"

#include <array>

namespace hearth::wire {

using namespace codec;

namespace {

constexpr std::array<std::string_view, 3> op_names = {"summary", "rows", "verify"};

audit_op op_read(const fields& f) {
    const auto* v = f.need("op");
    if (v->type == msgpack::type::STR) {
        if (auto op = audit_op_from_name(std::string_view(v->via.str.ptr, v->via.str.size))) return *op;
    }
    fail_field("op", "expected \"summary\", \"rows\" or \"verify\"");
}

void group_write(packer& pk, const usage_group& g) {
    pk.pack_map(6);
    put(pk, "key", g.key);
    put(pk, "requests", g.requests);
    put(pk, "prompt_tokens", g.prompt_tokens);
    put(pk, "completion_tokens", g.completion_tokens);
    put(pk, "errors", g.errors);
    put(pk, "filtered", g.filtered);
}

usage_group group_read(const fields& g) {
    usage_group u;
    g.str("key", u.key, true);
    g.integer("requests", u.requests);
    g.integer("prompt_tokens", u.prompt_tokens);
    g.integer("completion_tokens", u.completion_tokens);
    g.integer("errors", u.errors);
    g.integer("filtered", u.filtered);
    return u;
}

// The row's content; its hashes stay in the database (verify is its own operation).
void row_write(packer& pk, const usage_row& r) {
    pk.pack_map(16);
    put(pk, "seq", r.seq);
    put(pk, "request_id", r.request_id);
    put(pk, "client", r.client);
    put(pk, "service", r.service);
    put(pk, "priority", r.priority);
    put(pk, "model", r.model);
    put(pk, "worker", r.worker);
    put(pk, "received_us", r.received_us);
    put(pk, "started_us", r.started_us);
    put(pk, "first_token_us", r.first_token_us);
    put(pk, "finished_us", r.finished_us);
    put(pk, "prompt_tokens", r.prompt_tokens);
    put(pk, "completion_tokens", r.completion_tokens);
    put(pk, "status", r.status);
    put(pk, "filter_verdict", r.filter_verdict);
    put(pk, "filter_rule", r.filter_rule);
}

usage_row row_read(const fields& g) {
    usage_row r;
    g.integer("seq", r.seq, true);
    g.str("request_id", r.request_id);
    g.str("client", r.client);
    g.str("service", r.service);
    g.str("priority", r.priority);
    g.str("model", r.model);
    g.str("worker", r.worker);
    g.integer("received_us", r.received_us);
    g.integer("started_us", r.started_us);
    g.integer("first_token_us", r.first_token_us);
    g.integer("finished_us", r.finished_us);
    g.integer("prompt_tokens", r.prompt_tokens);
    g.integer("completion_tokens", r.completion_tokens);
    g.str("status", r.status);
    g.str("filter_verdict", r.filter_verdict);
    g.str("filter_rule", r.filter_rule);
    return r;
}

template <typename T, typename W>
void list_write(packer& pk, std::string_view key, const std::vector<T>& items, W&& write) {
    put_key(pk, key);
    pk.pack_array(static_cast<uint32_t>(items.size()));
    for (const T& it : items) write(pk, it);
}

template <typename T, typename R>
void list_read(const fields& f, std::string_view key, std::vector<T>& out, R&& read) {
    const auto* a = f.array(key, "maps");
    if (!a) return;
    out.reserve(a->size);
    for (uint32_t i = 0; i < a->size; ++i) out.push_back(read(f.nested(key, a->ptr[i], i)));
}

}  // namespace

std::string_view audit_op_name(audit_op op) { return op_names[static_cast<size_t>(op)]; }

std::optional<audit_op> audit_op_from_name(std::string_view s) {
    for (size_t i = 0; i < op_names.size(); ++i)
        if (op_names[i] == s) return static_cast<audit_op>(i);
    return std::nullopt;
}

std::string encode(const audit_call& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(8);
    put(pk, "id", m.id);
    put(pk, "op", std::string(audit_op_name(m.op)));
    put(pk, "from_us", m.from_us);
    put(pk, "to_us", m.to_us);
    put(pk, "top", m.top);
    put(pk, "after_finished_us", m.after_finished_us);
    put(pk, "after_seq", m.after_seq);
    put(pk, "limit", m.limit);
    return finish(buf);
}

std::string encode(const audit_reply& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(10);
    put(pk, "id", m.id);
    put(pk, "op", std::string(audit_op_name(m.op)));
    put(pk, "db", m.db);
    list_write(pk, "by_client", m.by_client, group_write);
    list_write(pk, "by_service", m.by_service, group_write);
    list_write(pk, "by_day", m.by_day, group_write);
    list_write(pk, "slowest", m.slowest, row_write);
    list_write(pk, "rows", m.rows, row_write);
    put(pk, "more", m.more);
    put_key(pk, "verify");
    pk.pack_map(4);
    put(pk, "ok", m.verify.ok);
    put(pk, "rows_checked", m.verify.rows_checked);
    put(pk, "first_bad_seq", m.verify.first_bad_seq);
    put(pk, "problem", m.verify.problem);
    return finish(buf);
}

audit_call decode_audit_call(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    audit_call c;
    f.str("id", c.id, true);
    c.op = op_read(f);
    f.integer("from_us", c.from_us);
    f.integer("to_us", c.to_us);
    f.integer("top", c.top);
    f.integer("after_finished_us", c.after_finished_us);
    f.integer("after_seq", c.after_seq);
    f.integer("limit", c.limit);
    return c;
}

audit_reply decode_audit_reply(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    audit_reply r;
    f.str("id", r.id, true);
    r.op = op_read(f);
    f.str("db", r.db);
    list_read(f, "by_client", r.by_client, group_read);
    list_read(f, "by_service", r.by_service, group_read);
    list_read(f, "by_day", r.by_day, group_read);
    list_read(f, "slowest", r.slowest, row_read);
    list_read(f, "rows", r.rows, row_read);
    f.boolean("more", r.more);
    if (const auto* v = f.find("verify")) {
        const fields g = f.nested("verify", *v);
        g.boolean("ok", r.verify.ok);
        g.integer("rows_checked", r.verify.rows_checked);
        g.integer("first_bad_seq", r.verify.first_bad_seq);
        g.str("problem", r.verify.problem);
    }
    return r;
}

void audit_call_validate(const audit_call& c) {
    if (c.id.empty() || c.id.size() > 128) fail_field("id", "must be 1..128 bytes");
    if (c.from_us >= c.to_us) fail_field("from_us", "must be before to_us");
    if (c.top < 1 || c.top > 1000) fail_field("top", "must be in 1..1000");
}

}  // namespace hearth::wire
