// Quota windows (broker/quota-book): limits hit, and reset when their minute or UTC day is over.
#include "quota-book.h"

#include <gtest/gtest.h>

using hearth::quota_book;
using hearth::quota_limits;
using namespace std::chrono_literals;

namespace {

// 2026-11-23 23:59:30 UTC: half a minute before the day's tokens reset.
const quota_book::wall k_late = quota_book::wall(std::chrono::sys_days(std::chrono::year{2026} / 11 / 23)) + 23h + 59min + 30s;

}  // namespace

TEST(quota_book, requests_per_minute_resets_after_the_minute) {
    quota_book b;
    quota_limits q;
    q.requests_per_minute = 2;
    const quota_book::steady t0{};
    uint32_t retry = 0;
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(b.refusal("alice", q, 1, 0, t0 + 1s, k_late, &retry), "");
        b.charge("alice", 1, t0 + 1s);
    }
    const std::string m = b.refusal("alice", q, 1, 0, t0 + 21s, k_late, &retry);
    EXPECT_NE(m.find("2 of 2 requests this minute"), std::string::npos) << m;
    EXPECT_EQ(retry, 40000u);  // the window opened at t0 + 1s
    EXPECT_EQ(b.refusal("bob", q, 1, 0, t0 + 21s, k_late, &retry), "") << "another client's count";
    EXPECT_EQ(b.refusal("alice", q, 1, 0, t0 + 61s, k_late, &retry), "") << "the minute is over";
    b.charge("alice", 1, t0 + 61s);
    // A batch counts every job.
    EXPECT_NE(b.refusal("alice", q, 2, 0, t0 + 62s, k_late, &retry), "");
    EXPECT_EQ(b.refusal("alice", q, 1, 0, t0 + 62s, k_late, &retry), "");
}

TEST(quota_book, tokens_per_day_reset_at_utc_midnight) {
    quota_book b;
    quota_limits q;
    q.tokens_per_day = 100;
    uint32_t retry = 0;
    const quota_book::steady t0{};
    b.tokens("alice", 60, k_late);
    EXPECT_EQ(b.refusal("alice", q, 1, 0, t0, k_late, &retry), "") << "60 of 100 used";
    b.tokens("alice", 60, k_late);
    EXPECT_EQ(b.tokens_today("alice", k_late), 120u);
    const std::string m = b.refusal("alice", q, 1, 0, t0, k_late, &retry);
    EXPECT_NE(m.find("120 of 100 tokens today"), std::string::npos) << m;
    EXPECT_EQ(retry, 30000u);  // 23:59:30 -> 00:00:00
    EXPECT_EQ(b.refusal("alice", q, 1, 0, t0, k_late + 31s, &retry), "") << "a new UTC day";
    EXPECT_EQ(b.tokens_today("alice", k_late + 31s), 0u);
}

TEST(quota_book, max_queued_counts_what_is_live_and_no_limit_is_no_limit) {
    quota_book b;
    quota_limits q;
    q.max_queued = 3;
    uint32_t retry = 0;
    EXPECT_EQ(b.refusal("alice", q, 1, 2, {}, k_late, &retry), "");
    const std::string m = b.refusal("alice", q, 2, 2, {}, k_late, &retry);
    EXPECT_NE(m.find("max_queued = 3"), std::string::npos) << m;
    EXPECT_GT(retry, 0u);
    quota_limits none;
    for (int i = 0; i < 1000; ++i) b.charge("alice", 1, {});
    b.tokens("alice", 1u << 30, k_late);
    EXPECT_EQ(b.refusal("alice", none, 100, 100000, {}, k_late, &retry), "");
}

TEST(quota_book, a_batch_larger_than_a_limit_is_told_to_split_with_no_retry_time) {
    quota_book b;
    quota_limits q;
    q.max_queued = 5;
    q.requests_per_minute = 8;
    uint32_t retry = 123;
    std::string m = b.refusal("alice", q, 6, 0, {}, k_late, &retry);
    EXPECT_NE(m.find("can never fit max_queued = 5"), std::string::npos) << m;
    EXPECT_NE(m.find("split it into batches of at most 5"), std::string::npos) << m;
    EXPECT_EQ(retry, 0u) << "waiting would not help";
    q.max_queued = 0;
    m = b.refusal("alice", q, 9, 0, {}, k_late, &retry);
    EXPECT_NE(m.find("can never fit requests_per_minute = 8"), std::string::npos) << m;
    EXPECT_EQ(b.refusal("alice", q, 8, 0, {}, k_late, &retry), "") << "a batch exactly at the limit fits";
}
