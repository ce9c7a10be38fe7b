// Sampler: greedy ties, determinism per seed, and that each filter keeps exactly the tokens it
// should with the frequencies of the renormalised distribution.
#include "sampler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <vector>

using hearth::sampler;
using hearth::sampler_params;

namespace {

// Timing limits only mean something in an optimised build without sanitizers.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
constexpr bool timing_is_meaningful = true;
#else
constexpr bool timing_is_meaningful = false;
#endif

// Only the named filter on: temperature 1, no top-k/top-p/min-p, no penalty.
sampler_params plain(uint64_t seed = 1) {
    sampler_params p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

sampler_params greedy_params() {
    sampler_params p = plain();
    p.temperature = 0.0f;
    return p;
}

// Logits whose softmax at temperature 1 is exactly probs (up to float rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) {
        l.push_back(static_cast<float>(std::log(p)));
    }
    return l;
}

// Frequency of each token over n draws.
std::map<int32_t, double> frequencies(sampler& s, const std::vector<float>& logits, int n,
                                      const std::vector<bool>* allowed = nullptr) {
    std::map<int32_t, double> f;
    for (int i = 0; i < n; ++i) {
        f[s.sample(logits.data(), static_cast<int32_t>(logits.size()), allowed)] += 1.0 / n;
    }
    return f;
}

std::vector<float> random_logits(int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<float> l(static_cast<size_t>(n));
    for (auto& x : l) {
        x = static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53 * 20.0 - 10.0);
    }
    return l;
}

}  // namespace

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTie) {
    sampler s(greedy_params());
    const std::vector<float> a = {1.0f, 5.0f, 3.0f, 5.0f, -2.0f};
    EXPECT_EQ(s.sample(a.data(), 5), 1);
    const std::vector<float> b = {-3.0f, -1.0f, -1.0f, -7.0f};
    EXPECT_EQ(s.sample(b.data(), 4), 1);
    const std::vector<float> c = {0.0f, 0.0f, 0.0f};
    EXPECT_EQ(s.sample(c.data(), 3), 0);
    sampler_params neg = greedy_params();
    neg.temperature = -1.0f;
    sampler s2(neg);
    EXPECT_EQ(s2.sample(a.data(), 5), 1);
    // NaN never wins.
    const std::vector<float> d = {NAN, 2.0f, NAN, 3.0f};
    EXPECT_EQ(s.sample(d.data(), 4), 3);
}

TEST(Sampler, GreedyIgnoresSeedAndOtherFilters) {
    const auto l = random_logits(1000, 7);
    int32_t best = 0;
    for (int32_t i = 1; i < 1000; ++i) {
        if (l[i] > l[best]) best = i;
    }
    for (uint64_t seed : {0ull, 1ull, 99ull}) {
        sampler_params p;  // defaults: top-k, top-p, min-p on
        p.temperature = 0.0f;
        p.seed = seed;
        sampler s(p);
        for (int rep = 0; rep < 5; ++rep) {
            EXPECT_EQ(s.sample(l.data(), 1000), best);
        }
    }
}

TEST(Sampler, MaskExcludesTokensAndAllMaskedReturnsMinusOne) {
    const std::vector<float> l = {1.0f, 5.0f, 3.0f, 5.0f, 0.0f};
    std::vector<bool> allowed = {true, false, true, false, true};
    sampler g(greedy_params());
    EXPECT_EQ(g.sample(l.data(), 5, &allowed), 2);

    sampler_params p = plain(3);
    p.temperature = 2.0f;
    sampler s(p);
    const auto f = frequencies(s, l, 2000, &allowed);
    for (const auto& [id, freq] : f) {
        EXPECT_TRUE(id == 0 || id == 2 || id == 4) << id;
    }
    EXPECT_GT(f.count(0) + f.count(2) + f.count(4), 2u);  // all three allowed tokens do occur

    std::vector<bool> none(5, false);
    EXPECT_EQ(g.sample(l.data(), 5, &none), -1);
    EXPECT_EQ(s.sample(l.data(), 5, &none), -1);

    std::vector<bool> wrong_size(4, true);
    EXPECT_THROW(s.sample(l.data(), 5, &wrong_size), std::invalid_argument);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedsDiffer) {
    const auto l = random_logits(200, 11);
    sampler_params p;  // library defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05
    p.temperature = 1.5f;
    p.min_p = 0.0f;
    p.seed = 1234;
    sampler a(p), b(p);
    p.seed = 1235;
    sampler c(p);
    std::vector<int32_t> sa, sb, sc;
    for (int i = 0; i < 300; ++i) {
        sa.push_back(a.sample(l.data(), 200));
        sb.push_back(b.sample(l.data(), 200));
        sc.push_back(c.sample(l.data(), 200));
    }
    EXPECT_EQ(sa, sb);
    EXPECT_NE(sa, sc);
    EXPECT_GT(std::set<int32_t>(sa.begin(), sa.end()).size(), 5u);
    // reset() restarts the seeded sequence.
    a.reset();
    for (int i = 0; i < 300; ++i) {
        ASSERT_EQ(a.sample(l.data(), 200), sa[i]) << i;
    }
}

// The draw is defined independently of the standard library: u = (next mt19937_64 output >> 11)
// * 2^-53, then the first token (in id order when no filter reorders) whose cumulative
// probability exceeds u * total. Recompute that here and compare.
TEST(Sampler, DrawIsThePortableFormula) {
    const std::vector<double> probs = {0.1, 0.2, 0.3, 0.15, 0.25};
    const auto l = logits_of(probs);
    sampler s(plain(42));
    std::mt19937_64 rng(42);
    // softmax exactly as the sampler does it: exp(l - max) in float, summed in double
    float mx = l[0];
    for (float x : l) mx = std::max(mx, x);
    std::vector<float> w;
    double total = 0.0;
    for (float x : l) {
        w.push_back(std::exp(x - mx));
        total += w.back();
    }
    for (int i = 0; i < 500; ++i) {
        const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
        double acc = 0.0;
        int32_t expect = -1;
        for (int32_t t = 0; t < 5; ++t) {
            acc += w[t];
            if (u < acc) {
                expect = t;
                break;
            }
        }
        ASSERT_EQ(s.sample(l.data(), 5), expect) << i;
    }
}

TEST(Sampler, TopKOneEqualsGreedy) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
        auto l = random_logits(500, seed + 100);
        l[17] = l[3] = 50.0f;  // a tie at the top: the lower id must win, as in greedy
        sampler_params p = plain(seed);
        p.top_k = 1;
        p.temperature = 5.0f;
        sampler s(p);
        sampler g(greedy_params());
        EXPECT_EQ(s.sample(l.data(), 500), 3);
        EXPECT_EQ(g.sample(l.data(), 500), 3);
        l[3] = 0.0f;
        EXPECT_EQ(s.sample(l.data(), 500), g.sample(l.data(), 500));
    }
}

TEST(Sampler, TopKKeepsTheKBest) {
    const std::vector<double> probs = {0.05, 0.3, 0.1, 0.25, 0.2, 0.1};
    sampler_params p = plain(5);
    p.top_k = 3;  // keeps 1, 3, 4 -> 0.3/0.75, 0.25/0.75, 0.2/0.75
    sampler s(p);
    const auto f = frequencies(s, logits_of(probs), 20000);
    EXPECT_EQ(f.size(), 3u);
    EXPECT_NEAR(f.count(1) ? f.at(1) : 0.0, 0.4, 0.02);
    EXPECT_NEAR(f.count(3) ? f.at(3) : 0.0, 1.0 / 3.0, 0.02);
    EXPECT_NEAR(f.count(4) ? f.at(4) : 0.0, 0.8 / 3.0, 0.02);

    // A tie at the cut: the lower ids stay, with and without a mask, and a penalised token that
    // falls below the cut is dropped.
    const std::vector<float> l = {3.0f, 5.0f, 3.0f, 3.0f, 3.0f};
    p.top_k = 2;
    sampler t(p);
    auto g = frequencies(t, l, 2000);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(g.count(1) + g.count(0), 2u);
    std::vector<bool> allowed = {false, true, true, true, true};
    g = frequencies(t, l, 2000, &allowed);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(g.count(1) + g.count(2), 2u);
    sampler_params pp = p;
    pp.repeat_penalty = 1.1f;
    sampler u(pp);
    u.accept(0);
    g = frequencies(u, l, 2000);
    ASSERT_EQ(g.size(), 2u);
    EXPECT_EQ(g.count(1) + g.count(2), 2u);
}

TEST(Sampler, TopPKeepsSmallestSetReachingP) {
    // Sorted: 2 (0.4), 0 (0.3), 3 (0.2), 1 (0.1).
    const std::vector<double> probs = {0.3, 0.1, 0.4, 0.2};
    const auto l = logits_of(probs);
    {
        sampler_params p = plain(9);
        p.top_p = 0.6f;  // 0.4 < 0.6, 0.7 >= 0.6 -> {2, 0}
        sampler s(p);
        const auto f = frequencies(s, l, 20000);
        ASSERT_EQ(f.size(), 2u);
        EXPECT_NEAR(f.at(2), 0.4 / 0.7, 0.02);
        EXPECT_NEAR(f.at(0), 0.3 / 0.7, 0.02);
    }
    {
        sampler_params p = plain(9);
        p.top_p = 0.8f;  // 0.7 < 0.8, 0.9 >= 0.8 -> {2, 0, 3}
        sampler s(p);
        const auto f = frequencies(s, l, 20000);
        ASSERT_EQ(f.size(), 3u);
        EXPECT_EQ(f.count(1), 0u);
        EXPECT_NEAR(f.at(3), 0.2 / 0.9, 0.02);
    }
    {
        sampler_params p = plain(9);
        p.top_p = 0.01f;  // at least one token: the best
        sampler s(p);
        const auto f = frequencies(s, l, 500);
        ASSERT_EQ(f.size(), 1u);
        EXPECT_EQ(f.begin()->first, 2);
    }
}

TEST(Sampler, MinPKeepsTokensNearTheBest) {
    const std::vector<double> probs = {0.3, 0.1, 0.4, 0.2};
    const auto l = logits_of(probs);
    {
        sampler_params p = plain(21);
        p.min_p = 0.4f;  // threshold 0.16: keeps 2, 0, 3
        sampler s(p);
        const auto f = frequencies(s, l, 20000);
        ASSERT_EQ(f.size(), 3u);
        EXPECT_EQ(f.count(1), 0u);
        EXPECT_NEAR(f.at(2), 0.4 / 0.9, 0.02);
        EXPECT_NEAR(f.at(0), 0.3 / 0.9, 0.02);
        EXPECT_NEAR(f.at(3), 0.2 / 0.9, 0.02);
    }
    {
        sampler_params p = plain(21);
        p.min_p = 0.6f;  // threshold 0.24: keeps 2, 0
        sampler s(p);
        const auto f = frequencies(s, l, 5000);
        ASSERT_EQ(f.size(), 2u);
        EXPECT_EQ(f.count(2) + f.count(0), 2u);
    }
    {
        // min-p after top-p: top-p 0.8 keeps {2, 0, 3}; min-p 0.6 then keeps {2, 0}.
        sampler_params p = plain(21);
        p.top_p = 0.8f;
        p.min_p = 0.6f;
        sampler s(p);
        const auto f = frequencies(s, l, 5000);
        ASSERT_EQ(f.size(), 2u);
        EXPECT_EQ(f.count(2) + f.count(0), 2u);
    }
}

TEST(Sampler, CutsOverALargerVocabularyMatchTheirThresholds) {
    // 2000 distinct logits 0, -0.004, ... -7.996 in scrambled order.
    const int n = 2000;
    std::vector<float> l(n);
    for (int i = 0; i < n; ++i) {
        l[i] = -0.004f * static_cast<float>((i * 7919) % n);
    }
    {
        sampler_params p = plain(77);
        p.min_p = std::exp(-1.0f);  // keeps logits >= max - 1: about 251 tokens
        sampler s(p);
        std::set<int32_t> seen;
        for (int i = 0; i < 1500; ++i) {
            const int32_t t = s.sample(l.data(), n);
            ASSERT_GE(l[t], -1.0f - 1e-3f) << t;
            seen.insert(t);
        }
        EXPECT_GT(seen.size(), 200u);
    }
    {
        // The nucleus of 0.5 is the best ~174 tokens: more than the first sorting step holds.
        sampler_params p = plain(78);
        p.top_p = 0.5f;
        sampler s(p);
        std::set<int32_t> seen;
        for (int i = 0; i < 1500; ++i) {
            const int32_t t = s.sample(l.data(), n);
            ASSERT_GE(l[t], -0.004f * 175) << t;
            seen.insert(t);
        }
        EXPECT_GT(seen.size(), 150u);
    }
}

TEST(Sampler, RepetitionPenaltyLowersARepeatedToken) {
    {
        // Positive logit divided: 2 / 2 = 1 < 1.5.
        sampler_params p = greedy_params();
        p.repeat_penalty = 2.0f;
        sampler s(p);
        const std::vector<float> l = {2.0f, 1.5f, 0.0f};
        EXPECT_EQ(s.sample(l.data(), 3), 0);
        s.accept(0);
        EXPECT_EQ(s.sample(l.data(), 3), 1);
    }
    {
        // Negative logit multiplied: -1 * 2 = -2 < -1.5.
        sampler_params p = greedy_params();
        p.repeat_penalty = 2.0f;
        sampler s(p);
        const std::vector<float> l = {-1.0f, -1.5f, -9.0f};
        EXPECT_EQ(s.sample(l.data(), 3), 0);
        s.accept(0);
        s.accept(0);  // penalised once however often it occurred: -2, not -4, still above -9
        s.accept(1);
        EXPECT_EQ(s.sample(l.data(), 3), 0);
    }
    {
        // Only the last repeat_last_n tokens count.
        sampler_params p = greedy_params();
        p.repeat_penalty = 2.0f;
        p.repeat_last_n = 2;
        sampler s(p);
        const std::vector<float> l = {2.0f, 1.5f, 0.0f};
        s.accept(0);
        EXPECT_EQ(s.sample(l.data(), 3), 1);
        s.accept(2);
        s.accept(2);
        EXPECT_EQ(s.sample(l.data(), 3), 0);
        s.accept(0);
        s.reset();  // forgets the history
        EXPECT_EQ(s.sample(l.data(), 3), 0);
    }
    {
        // In sampling, the repeated token's frequency drops.
        const std::vector<float> l = {1.0f, 1.0f};
        sampler_params p = plain(8);
        p.repeat_penalty = 1.5f;
        sampler s(p);
        s.accept(0);
        const auto f = frequencies(s, l, 20000);
        const double expect0 = std::exp(1.0 / 1.5) / (std::exp(1.0 / 1.5) + std::exp(1.0));
        EXPECT_NEAR(f.at(0), expect0, 0.02);
    }
}

TEST(Sampler, TemperatureSpreadsTheDistribution) {
    const std::vector<float> l = {0.0f, 1.0f, 2.0f, 3.0f};
    sampler_params cold = plain(4);
    cold.temperature = 0.05f;
    sampler c(cold);
    const auto fc = frequencies(c, l, 2000);
    EXPECT_GT(fc.at(3), 0.99);

    sampler_params hot = plain(4);
    hot.temperature = 100.0f;
    sampler h(hot);
    const auto fh = frequencies(h, l, 20000);
    ASSERT_EQ(fh.size(), 4u);
    for (const auto& [id, freq] : fh) {
        EXPECT_NEAR(freq, 0.25, 0.03) << id;
    }

    sampler_params one = plain(4);
    sampler o(one);
    const auto fo = frequencies(o, l, 20000);
    const double z = 1 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
    EXPECT_NEAR(fo.at(3), std::exp(3.0) / z, 0.02);
    EXPECT_NEAR(fo.at(0), 1.0 / z, 0.01);
}

TEST(Sampler, NegativeInfinityLogitsAreNeverDrawn) {
    const float inf = INFINITY;
    const std::vector<float> l = {-inf, 0.0f, -inf, 0.5f};
    sampler s(plain(6));
    const auto f = frequencies(s, l, 2000);
    EXPECT_EQ(f.count(0) + f.count(2), 0u);
    const std::vector<float> all = {-inf, -inf};
    EXPECT_EQ(s.sample(all.data(), 2), 0);
    // +inf takes everything; an infinite temperature still never draws -inf.
    const std::vector<float> pos = {1.0f, inf, 2.0f};
    EXPECT_EQ(frequencies(s, pos, 200).size(), 1u);
    EXPECT_EQ(s.sample(pos.data(), 3), 1);
    sampler_params hot = plain(6);
    hot.temperature = inf;
    sampler h(hot);
    const auto fh = frequencies(h, l, 2000);
    EXPECT_EQ(fh.count(0) + fh.count(2), 0u);
    EXPECT_EQ(fh.size(), 2u);
}

TEST(Sampler, LargeVocabularyIsFast) {
    // 150k logits, library defaults (top-k 40): well under a millisecond each in Release.
    const int n = 150000;
    const auto l = random_logits(n, 3);
    sampler s(sampler_params{});
    const int reps = timing_is_meaningful ? 200 : 10;
    int32_t sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
        sink += s.sample(l.data(), n);
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::printf("sample(150k, top_k 40): %.3f ms\n", ms);
    EXPECT_GE(sink, 0);
    // Generous: catches an accidental full sort, not scheduler noise.
    if (timing_is_meaningful) {
        EXPECT_LT(ms, 5.0);
    }

    // top-k off, top-p on: the partial sort only grows as far as the nucleus needs.
    sampler_params p;
    p.top_k = 0;
    sampler s2(p);
    const auto t1 = std::chrono::steady_clock::now();
    const int reps2 = timing_is_meaningful ? 20 : 2;
    for (int i = 0; i < reps2; ++i) {
        sink += s2.sample(l.data(), n);
    }
    const double ms2 =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count() / reps2;
    std::printf("sample(150k, top_k off, top_p 0.95, min_p 0.05): %.3f ms\n", ms2);
    if (timing_is_meaningful) {
        EXPECT_LT(ms2, 250.0);
    }
}
