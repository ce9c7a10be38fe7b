// The decode thread-count tuner: keeps the faster count, probes the other now and then, and
// comes back when the machine frees up.
#include "thread-tuner.h"

#include <gtest/gtest.h>

namespace {

using hearth::thread_tuner;

// Runs n steps, each taking seconds_at(threads) per token; returns the count in force after.
template <typename F>
int32_t run(thread_tuner& t, int n, F seconds_at) {
    for (int i = 0; i < n; ++i) {
        const int32_t threads = t.pick();
        t.record(threads, seconds_at(threads));
    }
    return t.current();
}

TEST(thread_tuner, keeps_all_threads_while_they_are_faster) {
    thread_tuner t(2);
    EXPECT_EQ(t.pick(), 2);
    EXPECT_EQ(run(t, 1000, [](int32_t n) { return n == 2 ? 4e-3 : 6e-3; }), 2);
}

TEST(thread_tuner, falls_back_to_one_thread_when_a_core_is_taken) {
    thread_tuner t(2);
    run(t, 100, [](int32_t n) { return n == 2 ? 4e-3 : 6e-3; });
    // Another process now holds a core: two threads wait at every barrier.
    // The first slow step probes at once: one thread wins within a probe's length.
    const int32_t after = run(t, thread_tuner::probe_steps + 2, [](int32_t n) { return n == 2 ? 40e-3 : 6e-3; });
    EXPECT_EQ(after, 1);
}

TEST(thread_tuner, returns_to_all_threads_when_the_core_is_free_again) {
    thread_tuner t(4);
    run(t, 200, [](int32_t n) { return n == 4 ? 40e-3 : 6e-3; });
    ASSERT_EQ(t.current(), 1);
    EXPECT_EQ(run(t, 200, [](int32_t n) { return n == 4 ? 2e-3 : 6e-3; }), 4);
}

TEST(thread_tuner, small_differences_do_not_flap) {
    thread_tuner t(2);
    int switches = 0;
    int32_t last = t.current();
    for (int i = 0; i < 2000; ++i) {
        const int32_t threads = t.pick();
        t.record(threads, threads == 2 ? 5.0e-3 : 5.2e-3);  // within the 10% margin
        if (t.current() != last) ++switches;
        last = t.current();
    }
    EXPECT_EQ(switches, 0);
    EXPECT_EQ(t.current(), 2);
}

TEST(thread_tuner, probes_grow_rare_while_they_confirm) {
    thread_tuner t(2);
    int probes = 0;
    for (int i = 0; i < 4000; ++i) {
        const int32_t threads = t.pick();
        probes += threads == 1 ? 1 : 0;
        t.record(threads, threads == 2 ? 4e-3 : 6e-3);
    }
    EXPECT_EQ(t.current(), 2);
    // Intervals 16, 32, ... 512: about 10 probes of 5 steps in 4000, not 4000 / 16.
    EXPECT_LE(probes, 15 * thread_tuner::probe_steps);
}

TEST(thread_tuner, one_thread_is_never_probed) {
    thread_tuner t(1);
    for (int i = 0; i < 500; ++i) {
        ASSERT_EQ(t.pick(), 1);
        t.record(1, 1e-3);
    }
}

TEST(thread_tuner, the_first_probe_step_is_not_counted) {
    // A slow first step at the other count (waking threads) must not decide the probe alone.
    thread_tuner t(2);
    run(t, thread_tuner::probe_first - 1, [](int32_t) { return 5e-3; });
    int probe_step = 0;
    const int32_t after = run(t, 50, [&](int32_t n) {
        if (n == 1) return probe_step++ == 0 ? 1.0 : 3e-3;  // first probe step very slow
        return 5e-3;
    });
    EXPECT_EQ(after, 1);
}

}  // namespace
