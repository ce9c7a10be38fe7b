// AUDIT messages of the wire protocol (command 12, schema/protocol.md "Audit"): `hearth audit` on a
// machine without the usage database asks the broker, which runs the same queries on its file and
// answers with the same numbers the local command computes. Rows and groups travel as the usage
// log's own structs (usage-db.h), so both paths print from one shape.
#pragma once

#include "protocol.h"
#include "usage-db.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::wire {

enum class audit_op : uint8_t { summary, rows, verify };
std::string_view audit_op_name(audit_op op);
std::optional<audit_op> audit_op_from_name(std::string_view s);

// AUDIT, client -> broker.
struct audit_call {
    std::string id;                      // required, 1..128 bytes: the reply (or ERROR) carries it back
    audit_op op = audit_op::summary;     // required
    int64_t from_us = 0;                 // summary, rows: rows finished in [from_us, to_us)
    int64_t to_us = std::numeric_limits<int64_t>::max();
    uint32_t top = 10;                   // summary: slowest requests listed (1..1000)
    int64_t after_finished_us = std::numeric_limits<int64_t>::min();  // rows: the cursor (last row of the previous page)
    int64_t after_seq = 0;               // rows: the cursor's seq
    uint32_t limit = 0;                  // rows: at most this many (0 or over 2000: 2000)
};

// AUDIT, broker -> client.
struct audit_reply {
    std::string id;                      // the call's id
    audit_op op = audit_op::summary;     // the call's operation
    std::string db;                      // the database file on the broker's machine
    std::vector<usage_group> by_client;  // summary
    std::vector<usage_group> by_service; // summary
    std::vector<usage_group> by_day;     // summary
    std::vector<usage_row> slowest;      // summary: up to `top`, slowest first
    std::vector<usage_row> rows;         // rows: one page in (finished_us, seq) order
    bool more = false;                   // rows: another page follows (ask again after the last row)
    usage_verify_result verify;          // verify: the chain walk
};

std::string encode(const audit_call& m);
std::string encode(const audit_reply& m);
audit_call decode_audit_call(std::string_view body, const decode_limits& lim = {});
audit_reply decode_audit_reply(std::string_view body, const decode_limits& lim = {});

// The call's id, a range with from_us < to_us, top in 1..1000; throws protocol_error(bad_request).
void audit_call_validate(const audit_call& c);

}  // namespace hearth::wire
