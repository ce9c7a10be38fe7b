// Block layouts, quantiser error bounds, half-float conversion, and agreement of the AVX2 kernels
// with the scalar reference for every weight type the engine computes with.
#include "quants.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace hearth {
namespace {

using bytes = std::vector<uint8_t>;

uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float float_of(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

std::vector<float> random_floats(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = dist(rng);
    return v;
}

int64_t block_size(tensor_type t) { return tensor_type_get_info(t).block_size; }

bytes quantized(tensor_type t, const std::vector<float>& x) {
    bytes out(tensor_type_row_bytes(t, static_cast<int64_t>(x.size())));
    quantize_row(t, x.data(), out.data(), static_cast<int64_t>(x.size()));
    return out;
}

std::vector<float> dequantized(tensor_type t, const bytes& b, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t, b.data(), out.data(), n);
    return out;
}

// Restores the SIMD level a test changed.
struct simd_guard {
    simd_level saved = quants_simd();
    ~simd_guard() { quants_set_simd(saved); }
};

bool have_avx2() { return quants_simd_detected() == simd_level::avx2; }

const tensor_type weight_types[] = {
    tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q4_0, tensor_type::q4_1,
    tensor_type::q5_0, tensor_type::q5_1, tensor_type::q8_0, tensor_type::q4_k, tensor_type::q5_k,
    tensor_type::q6_k,
};

std::string name_of(tensor_type t) { return std::string(tensor_type_get_info(t).name); }

// ---- half floats --------------------------------------------------------------------------

TEST(Fp16, KnownValues) {
    EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(1.0f), 0x3c00);
    EXPECT_EQ(fp32_to_fp16(-2.0f), 0xc000);
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bff);                  // largest finite
    EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7bff);                 // just under the tie
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);                  // tie with an odd mantissa: up, to inf
    EXPECT_EQ(fp32_to_fp16(1e30f), 0x7c00);
    EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);     // tie: to even (zero)
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25) * 1.01f), 0x0001);
    EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);     // 1.5 units: tie to even 2
    EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);     // 2.5 units: tie to even 2
    EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);  // rounds up into normal
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even stays
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie, odd goes up
    EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
    EXPECT_EQ(fp32_to_fp16(float_of(0x00000001)), 0x0000);     // float subnormal
    const uint16_t nan = fp32_to_fp16(NAN);
    EXPECT_EQ(nan & 0x7c00, 0x7c00);
    EXPECT_NE(nan & 0x03ff, 0);
    EXPECT_NE(fp32_to_fp16(float_of(0x7f800001)) & 0x0200, 0);  // signalling NaN comes out quiet

    EXPECT_EQ(fp16_to_fp32(0x3c00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0x7bff), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x03ff), std::ldexp(1023.0f, -24));
    EXPECT_EQ(fp16_to_fp32(0x8000), 0.0f);
    EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
    EXPECT_EQ(fp16_to_fp32(0xfc00), -INFINITY);
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7e00)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7c01)));
}

TEST(Fp16, EveryHalfRoundTrips) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_fp32(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            EXPECT_EQ((h & 0x7c00), 0x7c00u);
            EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
            continue;
        }
        ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
    }
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t hardware_fp16(float f) {
    return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hardware_fp32(uint16_t h) { return _cvtsh_ss(h); }
#endif

TEST(Fp16, MatchesF16cOnRandomBits) {
#if defined(__x86_64__)
    if (!have_avx2()) GTEST_SKIP() << "no AVX2/FMA/F16C on this CPU or in this build";
    std::mt19937 rng(7);
    for (int i = 0; i < 2000000; ++i) {
        // Bias towards the interesting exponent range (subnormal half up to overflow).
        uint32_t u = rng();
        if (i % 2) u = (u & 0x807fffffu) | ((100u + (u >> 23) % 50u) << 23);
        const float f = float_of(u);
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_fp16(f), hardware_fp16(f)) << std::hex << u;
    }
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float a = fp16_to_fp32(static_cast<uint16_t>(h)), b = hardware_fp32(static_cast<uint16_t>(h));
        if (std::isnan(a)) {
            EXPECT_TRUE(std::isnan(b));
            continue;
        }
        ASSERT_EQ(bits_of(a), bits_of(b)) << std::hex << h;
    }
#else
    GTEST_SKIP() << "not x86-64";
#endif
}

TEST(Bf16, KnownValues) {
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(fp32_to_bf16(float_of(0x3f808000)), 0x3f80);  // tie, even stays
    EXPECT_EQ(fp32_to_bf16(float_of(0x3f818000)), 0x3f82);  // tie, odd goes up
    EXPECT_EQ(fp32_to_bf16(float_of(0x3f808001)), 0x3f81);
    EXPECT_EQ(fp32_to_bf16(float_of(0x3f807fff)), 0x3f80);
    EXPECT_EQ(fp32_to_bf16(float_of(0x7f7fffff)), 0x7f80);  // FLT_MAX rounds to inf
    EXPECT_EQ(fp32_to_bf16(INFINITY), 0x7f80);
    EXPECT_EQ(fp32_to_bf16(-INFINITY), 0xff80);
    EXPECT_EQ(fp32_to_bf16(float_of(0x00018000)), 0x0002);  // subnormals round too, not flushed
    EXPECT_EQ(fp32_to_bf16(float_of(0x00008000)), 0x0000);
    EXPECT_EQ(fp32_to_bf16(float_of(0x7f800001)), 0x7fc0);  // signalling NaN made quiet, not inf
    EXPECT_EQ(fp32_to_bf16(float_of(0xffc00000)), 0xffc0);
    EXPECT_EQ(bf16_to_fp32(0x3f80), 1.0f);
    EXPECT_EQ(bf16_to_fp32(0xc040), -3.0f);
    EXPECT_TRUE(std::isnan(bf16_to_fp32(0x7fc0)));
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = bf16_to_fp32(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_bf16(f), h);
    }
}

// ---- exact layouts ------------------------------------------------------------------------

TEST(Layout, Q4_0) {
    block_q4_0 b{};
    b.d = fp32_to_fp16(0.5f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float out[32];
    dequantize_row(tensor_type::q4_0, &b, out, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(out[j], (j - 8) * 0.5f) << j;            // low nibbles: elements 0..15
        EXPECT_EQ(out[16 + j], (7 - j) * 0.5f) << j;       // high nibbles: elements 16..31
    }
}

TEST(Layout, Q4_1) {
    block_q4_1 b{};
    b.d = fp32_to_fp16(0.25f);
    b.m = fp32_to_fp16(-1.5f);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    float out[32];
    dequantize_row(tensor_type::q4_1, &b, out, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(out[j], j * 0.25f - 1.5f);
        EXPECT_EQ(out[16 + j], (15 - j) * 0.25f - 1.5f);
    }
}

TEST(Layout, Q5_0AndQ5_1) {
    // Element j has fifth bit (qh bit j) set for odd j; nibbles j % 16.
    const uint32_t qh = 0xaaaaaaaau;
    block_q5_0 b0{};
    block_q5_1 b1{};
    b0.d = fp32_to_fp16(2.0f);
    b1.d = fp32_to_fp16(2.0f);
    b1.m = fp32_to_fp16(3.0f);
    std::memcpy(b0.qh, &qh, 4);
    std::memcpy(b1.qh, &qh, 4);
    for (int j = 0; j < 16; ++j) {
        b0.qs[j] = b1.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    }
    float o0[32], o1[32];
    dequantize_row(tensor_type::q5_0, &b0, o0, 32);
    dequantize_row(tensor_type::q5_1, &b1, o1, 32);
    for (int j = 0; j < 32; ++j) {
        const int nib = j < 16 ? j : 15 - (j - 16);
        const int q = nib | ((j & 1) << 4);
        EXPECT_EQ(o0[j], (q - 16) * 2.0f) << j;
        EXPECT_EQ(o1[j], q * 2.0f + 3.0f) << j;
    }
}

TEST(Layout, Q8_0AndQ8_1) {
    block_q8_0 b{};
    block_q8_1 c{};
    b.d = c.d = fp32_to_fp16(0.125f);
    for (int j = 0; j < 32; ++j) b.qs[j] = c.qs[j] = static_cast<int8_t>(j * 8 - 128);
    float o0[32], o1[32];
    dequantize_row(tensor_type::q8_0, &b, o0, 32);
    dequantize_row(tensor_type::q8_1, &c, o1, 32);
    for (int j = 0; j < 32; ++j) {
        EXPECT_EQ(o0[j], (j * 8 - 128) * 0.125f);
        EXPECT_EQ(o1[j], o0[j]);
    }
}

TEST(Layout, QuantiserScaleChoices) {
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 16.0f;  // -16 has the max magnitude
    {
        const bytes q = quantized(tensor_type::q4_0, x);
        block_q4_0 b;
        std::memcpy(&b, q.data(), sizeof b);
        EXPECT_EQ(fp16_to_fp32(b.d), 2.0f);  // max / -8 with max = -16
        EXPECT_EQ(b.qs[0] & 0x0f, 0);        // -16 is the code 0 exactly
        EXPECT_EQ(b.qs[15] >> 4, 15);        // +15 -> 7.5 + 8.5 = 16, clamped to 15
    }
    {
        const bytes q = quantized(tensor_type::q5_0, x);
        block_q5_0 b;
        std::memcpy(&b, q.data(), sizeof b);
        EXPECT_EQ(fp16_to_fp32(b.d), 1.0f);  // max / -16
        const std::vector<float> back = dequantized(tensor_type::q5_0, q, 32);
        for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[j]) << j;  // integers -16..15: exact
    }
    {
        const bytes q = quantized(tensor_type::q4_1, x);
        block_q4_1 b;
        std::memcpy(&b, q.data(), sizeof b);
        EXPECT_EQ(fp16_to_fp32(b.m), -16.0f);
        EXPECT_EQ(b.d, fp32_to_fp16(31.0f / 15.0f));  // (max - min) / 15
    }
    {
        const bytes q = quantized(tensor_type::q8_0, x);
        block_q8_0 b;
        std::memcpy(&b, q.data(), sizeof b);
        EXPECT_EQ(b.d, fp32_to_fp16(16.0f / 127.0f));
        EXPECT_EQ(b.qs[0], -127);
        EXPECT_EQ(b.qs[16], 0);
    }
    {
        const bytes q = quantized(tensor_type::q8_1, x);
        block_q8_1 b;
        std::memcpy(&b, q.data(), sizeof b);
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += b.qs[j];
        EXPECT_EQ(b.s, fp32_to_fp16(static_cast<float>(sum) * (16.0f / 127.0f)));
    }
    const std::vector<float> zeros(32, 0.0f);  // d = 0 must not divide by zero
    for (tensor_type t : {tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                          tensor_type::q8_0, tensor_type::q8_1}) {
        const std::vector<float> back = dequantized(t, quantized(t, zeros), 32);
        for (float v : back) EXPECT_EQ(v, 0.0f) << name_of(t);
    }
}

// ---- round trips --------------------------------------------------------------------------

struct bound {
    tensor_type type;
    double max_err_in_d;  // max |err| per block, in units of the block's d
    double rms_rel;       // RMS error / RMS value on uniform(-1, 1) data (a step / sqrt(12) expected)
};

// Scale d is stored in fp16 after the codes were chosen with the exact d: adds |q| * d * 2^-11.
const bound bounds[] = {
    {tensor_type::q4_0, 1.0 + 8.0 / 2048, 0.075},   // code +8 clamps to 7: up to a whole step
    {tensor_type::q4_1, 0.5 + 15.0 / 2048, 0.075},
    {tensor_type::q5_0, 1.0 + 16.0 / 2048, 0.04},
    {tensor_type::q5_1, 0.5 + 31.0 / 2048, 0.04},
    {tensor_type::q8_0, 0.5 + 127.0 / 2048, 0.005},
    {tensor_type::q8_1, 0.5 + 127.0 / 2048, 0.005},
};

TEST(RoundTrip, BlockErrorBounds) {
    const int64_t n = 32 * 256;
    const std::vector<float> x = random_floats(n, 11);
    for (const bound& b : bounds) {
        const bytes q = quantized(b.type, x);
        const std::vector<float> y = dequantized(b.type, q, n);
        const size_t block_bytes = tensor_type_get_info(b.type).block_bytes;
        double se = 0, sx = 0;
        for (int64_t blk = 0; blk < n / 32; ++blk) {
            uint16_t dh, mh = 0;
            std::memcpy(&dh, q.data() + blk * block_bytes, 2);
            if (b.type == tensor_type::q4_1 || b.type == tensor_type::q5_1) std::memcpy(&mh, q.data() + blk * block_bytes + 2, 2);
            const double d = std::fabs(fp16_to_fp32(dh)), m = std::fabs(fp16_to_fp32(mh));
            for (int j = 0; j < 32; ++j) {
                const size_t i = static_cast<size_t>(blk * 32 + j);
                const double err = std::fabs(static_cast<double>(x[i]) - y[i]);
                ASSERT_LE(err, b.max_err_in_d * d + m / 2048 + 1e-6) << name_of(b.type) << " element " << i;
                se += err * err;
                sx += static_cast<double>(x[i]) * x[i];
            }
        }
        EXPECT_LE(std::sqrt(se / sx), b.rms_rel) << name_of(b.type);
        EXPECT_GT(std::sqrt(se / sx), b.rms_rel / 50) << name_of(b.type) << ": suspiciously exact";
    }
}

TEST(RoundTrip, HalfTypes) {
    const int64_t n = 1000;  // no block structure: any length
    const std::vector<float> x = random_floats(n, 12, -100.0f, 100.0f);
    for (auto [t, rel] : {std::pair{tensor_type::f16, std::ldexp(1.0, -11)}, std::pair{tensor_type::bf16, std::ldexp(1.0, -8)}}) {
        const std::vector<float> y = dequantized(t, quantized(t, x), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(x[i] - y[i]), rel * std::fabs(x[i])) << name_of(t);
    }
    const std::vector<float> y = dequantized(tensor_type::f32, quantized(tensor_type::f32, x), n);
    EXPECT_EQ(x, y);
}

// ---- dot products -------------------------------------------------------------------------

// Weights quantised from random data, activations converted as the matmul does.
struct dot_case {
    tensor_type w_type;
    int64_t n;
    bytes w;
    bytes x;
    std::vector<float> xf;
};

dot_case make_case(tensor_type t, int64_t n, uint32_t seed) {
    dot_case c{t, n, quantized(t, random_floats(n, seed)), {}, random_floats(n, seed + 1000)};
    const tensor_type vt = quants_vec_dot_type(t);
    c.x.resize(tensor_type_row_bytes(vt, n));
    quants_from_float(vt, c.xf.data(), c.x.data(), n);
    return c;
}

std::vector<int64_t> lengths_for(tensor_type t) {
    if (block_size(t) == 256) return {256, 768, 2816};
    if (block_size(t) == 32) return {32, 96, 160, 576, 4096};
    return {1, 7, 37, 576, 1000, 4096};
}

TEST(VecDot, TypesAndErrors) {
    EXPECT_EQ(quants_vec_dot_type(tensor_type::f16), tensor_type::f32);
    EXPECT_EQ(quants_vec_dot_type(tensor_type::bf16), tensor_type::f32);
    EXPECT_EQ(quants_vec_dot_type(tensor_type::q5_0), tensor_type::q8_0);
    EXPECT_EQ(quants_vec_dot_type(tensor_type::q5_1), tensor_type::q8_1);
    EXPECT_EQ(quants_vec_dot_type(tensor_type::q6_k), tensor_type::q8_k);
    auto message_of = [](auto&& fn) -> std::string {
        try {
            fn();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "(no exception)";
    };
    float buf[64] = {};
    EXPECT_NE(message_of([] { quants_vec_dot_type(tensor_type::q2_k); }).find("Q2_K"), std::string::npos);
    EXPECT_NE(message_of([&] { dequantize_row(tensor_type::iq4_nl, buf, buf, 32); }).find("IQ4_NL"), std::string::npos);
    EXPECT_NE(message_of([&] { quantize_row(tensor_type::i32, buf, buf, 32); }).find("I32"), std::string::npos);
    EXPECT_NE(message_of([] { quants_get_vec_dot(tensor_type::q8_1); }).find("Q8_1"), std::string::npos);
    EXPECT_NE(message_of([] { quants_get_from_float(static_cast<tensor_type>(99)); }).find("99"), std::string::npos);
}

// vec_dot equals the dot of the dequantised rows up to float rounding, and the float dot of the
// dequantised weights with the original activations up to the activations' quantisation error.
TEST(VecDot, MatchesDequantisedReference) {
    for (simd_level level : {simd_level::scalar, simd_level::avx2}) {
        simd_guard guard;
        quants_set_simd(level);
        if (quants_simd() != level) continue;
        for (tensor_type t : weight_types) {
            const tensor_type vt = quants_vec_dot_type(t);
            for (int64_t n : lengths_for(t)) {
                const dot_case c = make_case(t, n, static_cast<uint32_t>(n));
                const std::vector<float> wd = dequantized(t, c.w, n), xd = dequantized(vt, c.x, n);
                double ref = 0, ref_float_x = 0, mag = 0, xq_err = 0;
                for (int64_t i = 0; i < n; ++i) {
                    ref += static_cast<double>(wd[i]) * xd[i];
                    ref_float_x += static_cast<double>(wd[i]) * c.xf[i];
                    mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
                    xq_err += std::fabs(static_cast<double>(wd[i]) * (c.xf[i] - xd[i]));
                }
                float got = 0;
                quants_vec_dot(t, n, &got, c.w.data(), c.x.data());
                // The q*_1 blocks carry sum(y) * d rounded to fp16: 2^-11 of the min terms.
                const bool has_min = t == tensor_type::q4_1 || t == tensor_type::q5_1;
                const double tol = (has_min ? 2e-3 : 1e-5) * mag + 1e-6;
                EXPECT_NEAR(got, ref, tol) << name_of(t) << " n=" << n << " " << simd_level_name(level);
                EXPECT_NEAR(got, ref_float_x, xq_err + tol) << name_of(t) << " n=" << n;
                EXPECT_GT(mag, 1e-3) << "degenerate case";
            }
        }
    }
}

// Random bytes as weights reach every code (including -128 for Q8_0) and every qh pattern.
bytes random_weight_bytes(tensor_type t, int64_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    bytes w(tensor_type_row_bytes(t, n));
    for (uint8_t& v : w) v = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    const size_t bb = tensor_type_get_info(t).block_bytes;
    auto put_half = [&](size_t off, float v) {
        const uint16_t h = fp32_to_fp16(v);
        std::memcpy(w.data() + off, &h, 2);
    };
    for (size_t b = 0; b < w.size() / bb; ++b) {
        switch (t) {
            case tensor_type::q4_0: case tensor_type::q5_0: case tensor_type::q8_0:
                put_half(b * bb, scale(rng));
                break;
            case tensor_type::q4_1: case tensor_type::q5_1:
            case tensor_type::q4_k: case tensor_type::q5_k:
                put_half(b * bb, scale(rng));
                put_half(b * bb + 2, -scale(rng));
                break;
            case tensor_type::q6_k:
                put_half(b * bb + 208, scale(rng));
                break;
            default:
                break;
        }
    }
    if (t == tensor_type::f32 || t == tensor_type::f16 || t == tensor_type::bf16) {
        const std::vector<float> f = random_floats(n, seed);
        w.assign(tensor_type_row_bytes(t, n), 0);
        quantize_row(t, f.data(), w.data(), n);
    }
    return w;
}

TEST(Simd, ScalarAndAvx2Agree) {
    if (!have_avx2()) GTEST_SKIP() << "CPU or build without AVX2/FMA/F16C: nothing to compare";
    simd_guard guard;
    for (tensor_type t : weight_types) {
        const tensor_type vt = quants_vec_dot_type(t);
        for (int64_t n : lengths_for(t)) {
            const std::vector<float> xf = random_floats(n, static_cast<uint32_t>(n) + 5, -3.0f, 3.0f);
            const size_t xbytes = tensor_type_row_bytes(vt, n);
            bytes xs(xbytes), xv(xbytes);
            quants_set_simd(simd_level::scalar);
            const from_float_fn from_s = quants_get_from_float(vt);
            const vec_dot_fn dot_s = quants_get_vec_dot(t);
            quants_set_simd(simd_level::avx2);
            const from_float_fn from_v = quants_get_from_float(vt);
            const vec_dot_fn dot_v = quants_get_vec_dot(t);
            if (vt == tensor_type::q8_0 || vt == tensor_type::q8_1) {
                EXPECT_NE(from_s, from_v) << "no AVX2 quantiser for " << name_of(vt);
            }
            EXPECT_NE(dot_s, dot_v) << "no AVX2 kernel for " << name_of(t);
            from_s(xf.data(), xs.data(), n);
            from_v(xf.data(), xv.data(), n);
            if (vt == tensor_type::q8_k) {
                // Another file's quantiser: equal within one code after dequantisation.
                const std::vector<float> a = dequantized(vt, xs, n), b = dequantized(vt, xv, n);
                for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], 3.0f / 127 + 1e-6f) << name_of(vt);
            } else {
                ASSERT_EQ(xs, xv) << "from_float " << name_of(vt) << " n=" << n;
            }
            for (int rep = 0; rep < 3; ++rep) {
                const bytes w = rep == 0 ? quantized(t, random_floats(n, static_cast<uint32_t>(n + rep)))
                                         : random_weight_bytes(t, n, static_cast<uint32_t>(n * 7 + rep));
                float a = 0, b = 0;
                dot_s(n, &a, w.data(), xs.data());
                dot_v(n, &b, w.data(), xs.data());
                const std::vector<float> wd = dequantized(t, w, n), xd = dequantized(vt, xs, n);
                double mag = 0;
                for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wd[i]) * xd[i]);
                EXPECT_NEAR(a, b, 1e-5 * mag + 1e-7) << name_of(t) << " n=" << n << " rep=" << rep;
            }
        }
    }
}

// Q8_0 weights of -128 (legal in the format, never written by the quantiser) against the largest
// activations: the maddubs pair sums must not saturate.
TEST(Simd, Q8_0ExtremeCodes) {
    std::vector<block_q8_0> w(4), x(4);
    for (int b = 0; b < 4; ++b) {
        w[b].d = x[b].d = fp32_to_fp16(1.0f);
        for (int j = 0; j < 32; ++j) {
            w[b].qs[j] = -128;
            x[b].qs[j] = static_cast<int8_t>(j % 2 ? -127 : 127);
            if (b == 1) x[b].qs[j] = -127;
        }
    }
    float scalar = 0;
    {
        simd_guard guard;
        quants_set_simd(simd_level::scalar);
        quants_vec_dot(tensor_type::q8_0, 128, &scalar, w.data(), x.data());
        EXPECT_EQ(scalar, 128.0f * 127 * 32);
        if (!have_avx2()) GTEST_SKIP() << "no AVX2";
        quants_set_simd(simd_level::avx2);
        float v = 0;
        quants_vec_dot(tensor_type::q8_0, 128, &v, w.data(), x.data());
        EXPECT_EQ(v, scalar);
    }
}

TEST(Simd, LevelSelection) {
    simd_guard guard;
    quants_set_simd(simd_level::scalar);
    EXPECT_EQ(quants_simd(), simd_level::scalar);
    quants_set_simd(simd_level::avx2);
    EXPECT_EQ(quants_simd(), quants_simd_detected());  // clamped to what the CPU has
    EXPECT_STREQ(simd_level_name(simd_level::scalar), "scalar");
    EXPECT_STREQ(simd_level_name(simd_level::avx2), "avx2");
}

}  // namespace
}  // namespace hearth
