// BATCH messages of the wire codec: round trips, the jobs decoded by the REQUEST decoder (errors
// name the job: "jobs[1].max_tokens"), batch_call_validate, and the limits a submit runs under.
#include "protocol-batch.h"

#include <gtest/gtest.h>

#include <string>

namespace w = hearth::wire;

namespace {

w::request job(const std::string& id, const std::string& prompt) {
    w::request r;
    r.id = id;
    r.service = "complete";
    r.prompt = prompt;
    r.max_tokens = 16;
    r.temperature = 0;
    r.prio = w::priority::batch;
    r.stream = false;
    return r;
}

w::batch_call submit_of(std::vector<w::request> jobs) {
    w::batch_call c;
    c.id = "call-1";
    c.op = w::batch_op::submit;
    c.jobs = std::move(jobs);
    return c;
}

std::string validate_error(const w::batch_call& c) {
    try {
        w::batch_call_validate(c);
    } catch (const w::protocol_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(ProtocolBatch, CallRoundTrip) {
    w::request chat;
    chat.id = "b";
    chat.service = "chat";
    chat.messages = {{"system", "be brief"}, {"user", "hi"}};
    chat.seed = 42;
    chat.stop = {"\n", "END"};
    w::batch_call c = submit_of({job("a", "Once upon a time"), chat});
    const w::batch_call d = w::decode_batch_call(w::encode(c));
    EXPECT_EQ(d.id, "call-1");
    EXPECT_EQ(d.op, w::batch_op::submit);
    ASSERT_EQ(d.jobs.size(), 2u);
    EXPECT_EQ(d.jobs[0].prompt, "Once upon a time");
    EXPECT_EQ(d.jobs[0].max_tokens, 16);
    EXPECT_EQ(d.jobs[0].prio, w::priority::batch);
    EXPECT_FALSE(d.jobs[0].stream);
    EXPECT_EQ(d.jobs[1].messages.size(), 2u);
    EXPECT_EQ(d.jobs[1].messages[1].content, "hi");
    EXPECT_EQ(d.jobs[1].seed, std::optional<uint64_t>(42));
    EXPECT_EQ(d.jobs[1].stop, chat.stop);

    w::batch_call q;
    q.id = "q";
    q.op = w::batch_op::results;
    q.batch = "0123456789abcdef";
    q.from = 7;
    q.limit = 3;
    const w::batch_call e = w::decode_batch_call(w::encode(q));
    EXPECT_EQ(e.op, w::batch_op::results);
    EXPECT_EQ(e.batch, q.batch);
    EXPECT_EQ(e.from, 7u);
    EXPECT_EQ(e.limit, 3u);
    EXPECT_TRUE(e.jobs.empty());
}

TEST(ProtocolBatch, ReplyRoundTrip) {
    w::batch_reply r;
    r.id = "q";
    r.op = w::batch_op::results;
    r.batch = "0123456789abcdef";
    r.total = 3;
    r.queued = 1;
    r.running = 1;
    r.done = 1;
    r.failed = 1;
    r.batch_cancelled = true;
    r.created_us = 1234567890123;
    r.stopped = 2;
    r.jobs = {{0, "a", "done", "text", "", "", 5}, {1, "b", "failed", "par", "timeout", "the deadline passed", 6}};
    r.next = 2;
    const w::batch_reply d = w::decode_batch_reply(w::encode(r));
    EXPECT_EQ(d.id, "q");
    EXPECT_EQ(d.op, w::batch_op::results);
    EXPECT_EQ(d.total, 3u);
    EXPECT_EQ(d.queued, 1u);
    EXPECT_EQ(d.running, 1u);
    EXPECT_EQ(d.done, 1u);
    EXPECT_EQ(d.failed, 1u);
    EXPECT_TRUE(d.batch_cancelled);
    EXPECT_EQ(d.created_us, 1234567890123);
    EXPECT_EQ(d.stopped, 2u);
    ASSERT_EQ(d.jobs.size(), 2u);
    EXPECT_EQ(d.jobs[1].error, "timeout");
    EXPECT_EQ(d.jobs[1].message, "the deadline passed");
    EXPECT_EQ(d.jobs[1].text, "par");
    EXPECT_EQ(d.next, 2);
    EXPECT_EQ(w::command_name(w::command::batch), "BATCH");
    EXPECT_EQ(w::command_from_byte(11), w::command::batch);
}

TEST(ProtocolBatch, DecodeErrorsNameTheJob) {
    w::batch_call c = submit_of({job("a", "x"), job("b", "y")});
    w::request bad = job("c", "");
    bad.service = "chat";
    bad.messages = {{"user", "hi"}};
    c.jobs.push_back(bad);
    std::string enc = w::encode(c);
    const std::string key = "role";
    const size_t at = enc.rfind(key);
    ASSERT_NE(at, std::string::npos);
    enc[at] = 'x';  // "xole": the required role is missing in jobs[2].messages[0]
    try {
        (void)w::decode_batch_call(enc);
        FAIL() << "decoded";
    } catch (const w::protocol_error& e) {
        EXPECT_EQ(e.code(), w::error_code::bad_request);
        EXPECT_NE(std::string(e.what()).find("jobs[2].messages[0].role"), std::string::npos) << e.what();
    }
    // An unknown op.
    std::string op = w::encode(c);
    const size_t s = op.find("submit");
    ASSERT_NE(s, std::string::npos);
    op.replace(s, 6, "subm1t");
    try {
        (void)w::decode_batch_call(op);
        FAIL() << "decoded";
    } catch (const w::protocol_error& e) {
        EXPECT_NE(std::string(e.what()).find("'op'"), std::string::npos) << e.what();
    }
}

TEST(ProtocolBatch, Validate) {
    EXPECT_EQ(validate_error(submit_of({job("a", "x"), job("b", "y")})), "");
    EXPECT_NE(validate_error(submit_of({})).find("at least one job"), std::string::npos);
    auto dup = submit_of({job("a", "x"), job("b", "y"), job("a", "z")});
    EXPECT_NE(validate_error(dup).find("jobs[2]: field 'id': 'a' is used by an earlier job"), std::string::npos) << validate_error(dup);
    auto empty_prompt = submit_of({job("a", "x"), job("b", "")});
    EXPECT_NE(validate_error(empty_prompt).find("jobs[1]: field 'prompt'"), std::string::npos) << validate_error(empty_prompt);
    auto hot = submit_of({job("a", "x")});
    hot.jobs[0].temperature = -1;
    EXPECT_NE(validate_error(hot).find("jobs[0]: field 'temperature'"), std::string::npos) << validate_error(hot);
    auto noid = submit_of({job("a", "x")});
    noid.id.clear();
    EXPECT_NE(validate_error(noid).find("field 'id'"), std::string::npos);

    w::batch_call q;
    q.id = "q";
    q.op = w::batch_op::status;
    for (const char* bad : {"", "0123456789abcde", "0123456789abcdeF", "0123456789abcdefa", "../../etc/passwd"}) {
        q.batch = bad;
        EXPECT_NE(validate_error(q).find("field 'batch'"), std::string::npos) << bad;
    }
    q.batch = "0123456789abcdef";
    EXPECT_EQ(validate_error(q), "");
}

TEST(ProtocolBatch, JobCountFollowsTheArrayLimit) {
    std::vector<w::request> jobs;
    for (int i = 0; i < 50; ++i) jobs.push_back(job(std::to_string(i), "p"));
    const std::string body = w::encode(submit_of(jobs));
    w::decode_limits lim;
    lim.max_array = 49;
    try {
        (void)w::decode_batch_call(body, lim);
        FAIL() << "decoded";
    } catch (const w::protocol_error& e) {
        EXPECT_EQ(e.code(), w::error_code::too_large);
    }
    lim.max_array = 50;
    EXPECT_EQ(w::decode_batch_call(body, lim).jobs.size(), 50u);
}
