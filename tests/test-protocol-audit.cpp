// AUDIT messages of the wire codec: round trips of calls and replies (groups, rows, verify),
// validation, and a wrong-typed nested field named in the error.
#include "protocol-audit.h"

#include <gtest/gtest.h>

namespace w = hearth::wire;

TEST(ProtocolAudit, CallRoundTripAndValidate) {
    w::audit_call c;
    c.id = "a1";
    c.op = w::audit_op::rows;
    c.from_us = 5;
    c.to_us = 10;
    c.after_finished_us = 7;
    c.after_seq = 3;
    c.limit = 100;
    const w::audit_call d = w::decode_audit_call(w::encode(c));
    EXPECT_EQ(d.id, "a1");
    EXPECT_EQ(d.op, w::audit_op::rows);
    EXPECT_EQ(d.from_us, 5);
    EXPECT_EQ(d.to_us, 10);
    EXPECT_EQ(d.after_finished_us, 7);
    EXPECT_EQ(d.after_seq, 3);
    EXPECT_EQ(d.limit, 100u);
    EXPECT_NO_THROW(w::audit_call_validate(d));

    w::audit_call dflt;
    dflt.id = "x";
    const w::audit_call e = w::decode_audit_call(w::encode(dflt));
    EXPECT_EQ(e.to_us, std::numeric_limits<int64_t>::max());
    EXPECT_EQ(e.after_finished_us, std::numeric_limits<int64_t>::min());
    EXPECT_EQ(e.top, 10u);

    w::audit_call bad = d;
    bad.from_us = 10;
    EXPECT_THROW(w::audit_call_validate(bad), w::protocol_error);
    bad = d;
    bad.top = 0;
    EXPECT_THROW(w::audit_call_validate(bad), w::protocol_error);
    bad = d;
    bad.id.clear();
    EXPECT_THROW(w::audit_call_validate(bad), w::protocol_error);
    EXPECT_EQ(w::command_name(w::command::audit), "AUDIT");
}

TEST(ProtocolAudit, ReplyRoundTrip) {
    w::audit_reply r;
    r.id = "a1";
    r.op = w::audit_op::summary;
    r.db = "/var/lib/hearth/usage.db";
    r.by_client = {{"local", 3, 30, 40, 1, 0}, {"kitchen", 1, 5, 6, 0, 1}};
    r.by_service = {{"complete", 4, 35, 46, 1, 1}};
    r.by_day = {{"2026-11-23", 4, 35, 46, 1, 1}};
    hearth::usage_row row;
    row.seq = 9;
    row.request_id = "req-9";
    row.client = "local";
    row.service = "complete";
    row.priority = "batch";
    row.model = "m";
    row.worker = "w1";
    row.received_us = 1;
    row.started_us = 2;
    row.first_token_us = 3;
    row.finished_us = 4;
    row.prompt_tokens = 5;
    row.completion_tokens = 6;
    row.status = "timeout";
    row.filter_verdict = "filtered";
    row.filter_rule = "deny:unlock";
    r.slowest = {row};
    r.rows = {row, row};
    r.more = true;
    r.verify.ok = false;
    r.verify.rows_checked = 17;
    r.verify.first_bad_seq = 12;
    r.verify.problem = "row 12 was edited";
    const w::audit_reply d = w::decode_audit_reply(w::encode(r));
    EXPECT_EQ(d.db, r.db);
    ASSERT_EQ(d.by_client.size(), 2u);
    EXPECT_EQ(d.by_client[1].key, "kitchen");
    EXPECT_EQ(d.by_client[1].filtered, 1);
    EXPECT_EQ(d.by_client[0].completion_tokens, 40);
    ASSERT_EQ(d.slowest.size(), 1u);
    const auto& s = d.slowest[0];
    EXPECT_EQ(s.seq, 9);
    EXPECT_EQ(s.request_id, "req-9");
    EXPECT_EQ(s.priority, "batch");
    EXPECT_EQ(s.first_token_us, 3);
    EXPECT_EQ(s.completion_tokens, 6);
    EXPECT_EQ(s.filter_rule, "deny:unlock");
    EXPECT_EQ(d.rows.size(), 2u);
    EXPECT_TRUE(d.more);
    EXPECT_FALSE(d.verify.ok);
    EXPECT_EQ(d.verify.rows_checked, 17);
    EXPECT_EQ(d.verify.first_bad_seq, 12);
    EXPECT_EQ(d.verify.problem, "row 12 was edited");
}

TEST(ProtocolAudit, NestedErrorsNamed) {
    w::audit_reply r;
    r.id = "a";
    r.by_day = {{"2026-11-23", 1, 2, 3, 0, 0}};
    std::string body = w::encode(r);
    const size_t at = body.find("requests");
    ASSERT_NE(at, std::string::npos);
    // The value after "requests" is the positive fixint 1; make it a string of length 1 ("\xa1" + byte).
    const size_t v = at + 8;
    ASSERT_EQ(static_cast<uint8_t>(body[v]), 1u);
    body[v] = static_cast<char>(0xa1);
    body.insert(v + 1, "x");
    try {
        (void)w::decode_audit_reply(body);
        FAIL() << "decoded";
    } catch (const w::protocol_error& e) {
        EXPECT_NE(std::string(e.what()).find("by_day[0].requests"), std::string::npos) << e.what();
    }
}
