// BATCH codec: the same bounded decoding as the other messages (wire-codec.h). A submit's jobs are
// request maps read by the REQUEST decoder itself, so a job means exactly what a request means.
#include "protocol-batch.h"

#include "wire-codec.h"

#include <array>
#include <set>

namespace hearth::wire {

using namespace codec;

namespace {

constexpr std::array<std::string_view, 4> op_names = {"submit", "status", "results", "cancel"};

batch_op op_read(const fields& f) {
    const auto* v = f.need("op");
    if (v->type == msgpack::type::STR) {
        if (auto op = batch_op_from_name(std::string_view(v->via.str.ptr, v->via.str.size))) return *op;
    }
    fail_field("op", "expected \"submit\", \"status\", \"results\" or \"cancel\"");
}

}  // namespace

std::string_view batch_op_name(batch_op op) { return op_names[static_cast<size_t>(op)]; }

std::optional<batch_op> batch_op_from_name(std::string_view s) {
    for (size_t i = 0; i < op_names.size(); ++i)
        if (op_names[i] == s) return static_cast<batch_op>(i);
    return std::nullopt;
}

std::string encode(const batch_call& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(6);
    put(pk, "id", m.id);
    put(pk, "op", std::string(batch_op_name(m.op)));
    put(pk, "batch", m.batch);
    put_key(pk, "jobs");
    pk.pack_array(static_cast<uint32_t>(m.jobs.size()));
    for (const auto& r : m.jobs) request_write(pk, r);
    put(pk, "from", m.from);
    put(pk, "limit", m.limit);
    return finish(buf);
}

std::string encode(const batch_reply& m) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(14);
    put(pk, "id", m.id);
    put(pk, "op", std::string(batch_op_name(m.op)));
    put(pk, "batch", m.batch);
    put(pk, "total", m.total);
    put(pk, "queued", m.queued);
    put(pk, "running", m.running);
    put(pk, "done", m.done);
    put(pk, "failed", m.failed);
    put(pk, "cancelled", m.cancelled);
    put(pk, "batch_cancelled", m.batch_cancelled);
    put(pk, "created_us", m.created_us);
    put(pk, "stopped", m.stopped);
    put_key(pk, "jobs");
    pk.pack_array(static_cast<uint32_t>(m.jobs.size()));
    for (const auto& j : m.jobs) {
        pk.pack_map(7);
        put(pk, "idx", j.idx);
        put(pk, "id", j.id);
        put(pk, "state", j.state);
        put(pk, "text", j.text);
        put(pk, "error", j.error);
        put(pk, "message", j.message);
        put(pk, "finished_us", j.finished_us);
    }
    put(pk, "next", m.next);
    return finish(buf);
}

batch_call decode_batch_call(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    batch_call c;
    f.str("id", c.id, true);
    c.op = op_read(f);
    f.str("batch", c.batch);
    if (const auto* a = f.array("jobs", "maps")) {
        c.jobs.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) c.jobs.push_back(request_read(f.nested("jobs", a->ptr[i], i)));
    }
    f.integer("from", c.from);
    f.integer("limit", c.limit);
    return c;
}

batch_reply decode_batch_reply(std::string_view body, const decode_limits& lim) {
    const auto h = body_unpack(body, lim);
    const fields f(h.get(), "");
    batch_reply r;
    f.str("id", r.id, true);
    r.op = op_read(f);
    f.str("batch", r.batch);
    f.integer("total", r.total);
    f.integer("queued", r.queued);
    f.integer("running", r.running);
    f.integer("done", r.done);
    f.integer("failed", r.failed);
    f.integer("cancelled", r.cancelled);
    f.boolean("batch_cancelled", r.batch_cancelled);
    f.integer("created_us", r.created_us);
    f.integer("stopped", r.stopped);
    if (const auto* a = f.array("jobs", "maps")) {
        r.jobs.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) {
            const fields g = f.nested("jobs", a->ptr[i], i);
            batch_job j;
            g.integer("idx", j.idx, true);
            g.str("id", j.id, true);
            g.str("state", j.state, true);
            g.str("text", j.text);
            g.str("error", j.error);
            g.str("message", j.message);
            g.integer("finished_us", j.finished_us);
            r.jobs.push_back(std::move(j));
        }
    }
    f.integer("next", r.next);
    return r;
}

bool batch_id_valid(std::string_view s) {
    if (s.size() != 16) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

void batch_call_validate(const batch_call& c) {
    if (c.id.empty() || c.id.size() > 128) fail_field("id", "must be 1..128 bytes");
    if (c.op != batch_op::submit) {
        if (!batch_id_valid(c.batch)) fail_field("batch", "must be a batch id (16 hex digits)");
        return;
    }
    if (c.jobs.empty()) fail_field("jobs", "a batch needs at least one job");
    std::set<std::string_view> ids;
    for (size_t i = 0; i < c.jobs.size(); ++i) {
        std::string where = "jobs[";
        where.append(std::to_string(i)).append("]");
        try {
            request_validate(c.jobs[i]);
        } catch (const protocol_error& e) {
            where.append(": ").append(e.what());
            fail(e.code(), where);
        }
        if (!ids.insert(c.jobs[i].id).second) {
            where.append(": field 'id': '").append(printable(c.jobs[i].id)).append("' is used by an earlier job");
            fail(error_code::bad_request, where);
        }
    }
}

}  // namespace hearth::wire
