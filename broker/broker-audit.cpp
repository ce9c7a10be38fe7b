// AUDIT calls: `hearth audit` from a machine without the database. The queries run on the usage
// log's reader thread (its own connection), so a long report never delays a commit or the loop.
// Local connections and admin keys read every row; any other key reads only its own rows, and only
// an admin may verify the whole chain.
#include "broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hearth {

namespace {

constexpr uint32_t kAuditPageRows = 2000;

}  // namespace

void broker::log_read(log_query query, std::function<void(const log_answer&)> then) { log_->read(std::move(query), log_then(std::move(then))); }

void broker::client_audit(const std::string& client, std::string_view body) {
    wire::audit_call c;
    try {
        c = wire::decode_audit_call(body, limits_);
        wire::audit_call_validate(c);
    } catch (const wire::protocol_error& e) {
        spdlog::warn("broker: bad AUDIT from client: {}", e.what());
        send_client_error(client, c.id, e.code(), e.what());
        return;
    }
    if (!log_) {
        send_client_error(client, c.id, wire::error_code::unsupported, "this broker keeps no usage log (broker.usage_db is \"off\")");
        return;
    }
    // "": every client's rows.
    const bool all = admin(client);
    const std::string only = all ? std::string() : identity_of(client);
    if (!all && only.empty()) {
        send_client_error(client, c.id, wire::error_code::unauthorized, "this connection has no identity to show rows for");
        return;
    }
    if (!all && c.op == wire::audit_op::verify) {
        send_client_error(client, c.id, wire::error_code::unauthorized, "only an admin key may verify the whole usage log ('" + only + "' is not one)");
        return;
    }
    auto reply = std::make_shared<wire::audit_reply>();
    reply->id = c.id;
    reply->op = c.op;
    if (all) reply->db = log_->path();  // where the file lives is the operator's business
    log_read(
        [c, reply, only](usage_db& db) {
            switch (c.op) {
            case wire::audit_op::summary:
                reply->by_client = db.summary(c.from_us, c.to_us, "client", only);
                reply->by_service = db.summary(c.from_us, c.to_us, "service", only);
                reply->by_day = db.summary(c.from_us, c.to_us, "day", only);
                reply->slowest = db.slowest(c.from_us, c.to_us, c.top, only);
                break;
            case wire::audit_op::rows: {
                const uint32_t limit = c.limit == 0 ? kAuditPageRows : std::min(c.limit, kAuditPageRows);
                reply->rows = db.rows(c.from_us, c.to_us, int64_t{limit} + 1, c.after_finished_us, c.after_seq, only);
                reply->more = reply->rows.size() > limit;
                if (reply->more) reply->rows.pop_back();
                break;
            }
            case wire::audit_op::verify: reply->verify = db.verify(); break;
            }
        },
        [this, client, reply](const log_answer& a) {
            if (!a.ok) {
                send_client_error(client, reply->id, wire::error_code::internal, "the usage log could not be read: " + a.error);
                return;
            }
            send_client(client, wire::command::audit, wire::encode(*reply));
        });
}

}  // namespace hearth
