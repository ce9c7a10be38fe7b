// K-quants: hand-built blocks with known values, round-trip error, scalar/AVX2 agreement, dots
// against dequantised rows, and tensors quantised by llama.cpp compared with their F32 originals.
#include "gguf.h"
#include "quants.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <string>
#include <vector>

namespace hearth {
namespace {

constexpr uint16_t half_one = 0x3C00;   // 1.0
constexpr uint16_t half_half = 0x3800;  // 0.5

// Restores the SIMD level a test changed.
class simd_guard {
public:
    simd_guard() : saved_(quants_simd()) {}
    ~simd_guard() { quants_set_simd(saved_); }
    simd_guard(const simd_guard&) = delete;
    simd_guard& operator=(const simd_guard&) = delete;

private:
    simd_level saved_;
};

bool have_avx2() { return quants_simd_detected() == simd_level::avx2; }

std::vector<float> random_floats(size_t n, uint32_t seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, sigma);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<uint8_t> quantize(tensor_type t, const std::vector<float>& x) {
    std::vector<uint8_t> out(tensor_type_row_bytes(t, static_cast<int64_t>(x.size())));
    quantize_row(t, x.data(), out.data(), static_cast<int64_t>(x.size()));
    return out;
}

std::vector<float> dequantize(tensor_type t, const void* src, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t, src, out.data(), n);
    return out;
}

// sqrt(mean((a-b)^2)) / sqrt(mean(b^2))
double relative_rms_error(const std::vector<float>& a, const std::vector<float>& b) {
    double err = 0.0, ref = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        err += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
        ref += static_cast<double>(b[i]) * b[i];
    }
    return std::sqrt(err / ref);
}

double dot_double(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0.0;
    for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

float vec_dot_at(simd_level level, tensor_type w_type, int64_t n, const void* w, const void* x) {
    quants_set_simd(level);
    float s = NAN;
    quants_get_vec_dot(w_type)(n, &s, w, x);
    return s;
}

std::vector<uint8_t> q8_k_at(simd_level level, const std::vector<float>& x) {
    quants_set_simd(level);
    std::vector<uint8_t> out(tensor_type_row_bytes(tensor_type::q8_k, static_cast<int64_t>(x.size())));
    quants_get_from_float(tensor_type::q8_k)(x.data(), out.data(), static_cast<int64_t>(x.size()));
    return out;
}

// ---- hand-built blocks -------------------------------------------------------------------

// Sub-block scales and mins chosen so that every 6-bit field uses its top bits somewhere.
constexpr int hand_sc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
constexpr int hand_m[8] = {0, 1, 63, 4, 20, 40, 60, 7};
// The same eight pairs packed by hand: bytes 0..3 scales 0..3 (+ top bits of scales 4..7),
// bytes 4..7 mins 0..3 (+ top bits of mins 4..7), bytes 8..11 low nibbles of scale|min 4..7.
constexpr uint8_t hand_packed[12] = {0x41, 0x82, 0xC3, 0x3F, 0x40, 0x81, 0xFF, 0x04, 0x41, 0x81, 0xC0, 0x75};

int hand_level(int e, int nmax) { return (e * 7 + e / 32) % (nmax + 1); }

TEST(QuantsK, HandBuiltQ4K) {
    block_q4_k blk{};
    blk.d = half_one;
    blk.dmin = half_half;
    std::memcpy(blk.scales, hand_packed, sizeof hand_packed);
    for (int e = 0; e < qk_k; ++e) {
        const int j = e / 32, l = e % 32;
        blk.qs[32 * (j / 2) + l] |= static_cast<uint8_t>(hand_level(e, 15) << (4 * (j % 2)));
    }
    std::vector<float> y = dequantize(tensor_type::q4_k, &blk, qk_k);
    for (int e = 0; e < qk_k; ++e) {
        const int j = e / 32;
        EXPECT_EQ(y[e], 1.0f * hand_sc[j] * hand_level(e, 15) - 0.5f * hand_m[j]) << "element " << e;
    }
    // Literal spot checks independent of the loop above: qs[1] holds elements 1 and 33.
    blk.qs[1] = 0xA3;
    blk.qs[96 + 5] = 0xE0;  // element 197 (sub-block 6, low nibble) and 229 (sub-block 7, high)
    y = dequantize(tensor_type::q4_k, &blk, qk_k);
    EXPECT_EQ(y[1], 3.0f);           // 1*3 - 0.5*0
    EXPECT_EQ(y[33], 19.5f);         // 2*10 - 0.5*1
    EXPECT_EQ(y[197], -30.0f);       // 48*0 - 0.5*60
    EXPECT_EQ(y[229], 66.5f);        // 5*14 - 0.5*7
}

TEST(QuantsK, HandBuiltQ5K) {
    block_q5_k blk{};
    blk.d = half_one;
    blk.dmin = half_half;
    std::memcpy(blk.scales, hand_packed, sizeof hand_packed);
    for (int e = 0; e < qk_k; ++e) {
        const int j = e / 32, l = e % 32, v = hand_level(e, 31);
        blk.qs[32 * (j / 2) + l] |= static_cast<uint8_t>((v & 15) << (4 * (j % 2)));
        blk.qh[l] |= static_cast<uint8_t>((v >> 4) << j);
    }
    std::vector<float> y = dequantize(tensor_type::q5_k, &blk, qk_k);
    for (int e = 0; e < qk_k; ++e) {
        const int j = e / 32;
        EXPECT_EQ(y[e], 1.0f * hand_sc[j] * hand_level(e, 31) - 0.5f * hand_m[j]) << "element " << e;
    }
    blk.qs[1] = 0xA3;   // elements 1 (sub-block 0) and 33 (sub-block 1)
    blk.qs[33] = 0x5F;  // elements 65 (sub-block 2) and 97 (sub-block 3)
    blk.qh[1] = 0x06;   // fifth bits for sub-blocks 1 and 2 of position 1: elements 33 and 65
    y = dequantize(tensor_type::q5_k, &blk, qk_k);
    EXPECT_EQ(y[1], 3.0f);      // 1*3 - 0.5*0
    EXPECT_EQ(y[33], 51.5f);    // 2*(10+16) - 0.5*1
    EXPECT_EQ(y[65], 61.5f);    // 3*(15+16) - 0.5*63
    EXPECT_EQ(y[97], 313.0f);   // 63*5 - 0.5*4
}

TEST(QuantsK, HandBuiltQ6K) {
    block_q6_k blk{};
    blk.d = half_half;
    const int8_t sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 127, -128, 11, 12, 13, 14, 15, 16};
    std::memcpy(blk.scales, sc, sizeof sc);
    blk.ql[0] = 0x5A;
    blk.ql[32] = 0xC3;
    blk.qh[0] = 0xE4;  // 2-bit fields 0, 1, 2, 3 for quarters 0..3
    blk.ql[64] = 0x0F;
    blk.qh[32] = 0x03;
    // Everything else: level 0 (value -32).
    const std::vector<float> y = dequantize(tensor_type::q6_k, &blk, qk_k);
    EXPECT_EQ(y[0], 0.5f * 1 * (10 - 32));         // ql[0] low | qh bits 0-1
    EXPECT_EQ(y[32], 0.5f * 3 * (19 - 32));        // ql[32] low | qh bits 2-3 (=1)
    EXPECT_EQ(y[64], 0.5f * 5 * (37 - 32));        // ql[0] high | qh bits 4-5 (=2)
    EXPECT_EQ(y[96], 0.5f * 7 * (60 - 32));        // ql[32] high | qh bits 6-7 (=3)
    EXPECT_EQ(y[128], 0.5f * 127 * (63 - 32));     // second half: ql[64], qh[32], scales[8]
    EXPECT_EQ(y[1], 0.5f * 1 * -32);
    EXPECT_EQ(y[16], 0.5f * -2 * -32);             // values 16..31 use scales[1]
    EXPECT_EQ(y[144], 0.5f * -128 * -32);          // scales[9]
    EXPECT_EQ(y[255], 0.5f * 16 * -32);
}

TEST(QuantsK, Q8KMatchesReferenceRule) {
    std::vector<float> x(qk_k, 0.0f);
    for (int i = 0; i < qk_k; ++i) x[i] = static_cast<float>(i % 17) * 0.1f - 0.8f;
    x[5] = -2.0f;
    x[200] = 1.5f;
    simd_guard guard;
    for (simd_level level : {simd_level::scalar, simd_level::avx2}) {
        if (level == simd_level::avx2 && !have_avx2()) continue;
        const std::vector<uint8_t> raw = q8_k_at(level, x);
        block_q8_k blk;
        std::memcpy(&blk, raw.data(), sizeof blk);
        SCOPED_TRACE(simd_level_name(level));
        EXPECT_FLOAT_EQ(blk.d, 2.0f / 127.0f);
        EXPECT_EQ(blk.qs[5], -127);
        EXPECT_EQ(blk.qs[200], static_cast<int8_t>(std::lround(1.5f * 63.5f)));
        for (int g = 0; g < qk_k / 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
            EXPECT_EQ(blk.bsums[g], sum) << "group " << g;
        }
    }
    // A tie in magnitude: the first one decides the sign (-3 at 3 before +3 at 10).
    std::vector<float> t(qk_k, 0.25f);
    t[3] = -3.0f;
    t[10] = 3.0f;
    for (simd_level level : {simd_level::scalar, simd_level::avx2}) {
        if (level == simd_level::avx2 && !have_avx2()) continue;
        const std::vector<uint8_t> raw = q8_k_at(level, t);
        block_q8_k blk;
        std::memcpy(&blk, raw.data(), sizeof blk);
        EXPECT_EQ(blk.qs[3], -127) << simd_level_name(level);
        EXPECT_EQ(blk.qs[10], 127) << simd_level_name(level);
    }
    // An all-zero block quantises to zeros.
    const std::vector<uint8_t> zero = q8_k_at(simd_level::scalar, std::vector<float>(qk_k, 0.0f));
    for (uint8_t byte : zero) EXPECT_EQ(byte, 0);
}

// ---- round trips -------------------------------------------------------------------------

struct round_trip_case {
    tensor_type type;
    double max_rel_rms;
};

TEST(QuantsK, RoundTripError) {
    const std::vector<float> x = random_floats(qk_k * 32, 42);
    // Gaussian data: a plain 4-bit grid with a min gives about 0.1; the scale search must beat it.
    const round_trip_case cases[] = {
        {tensor_type::q4_k, 0.095}, {tensor_type::q5_k, 0.048}, {tensor_type::q6_k, 0.025}, {tensor_type::q8_k, 0.008}};
    for (const round_trip_case& c : cases) {
        const std::vector<uint8_t> q = quantize(c.type, x);
        const std::vector<float> y = dequantize(c.type, q.data(), static_cast<int64_t>(x.size()));
        const double err = relative_rms_error(y, x);
        EXPECT_LT(err, c.max_rel_rms) << tensor_type_get_info(c.type).name;
        EXPECT_GT(err, 0.0) << tensor_type_get_info(c.type).name;  // it did quantise
        std::printf("  %s round trip: relative RMS error %.4f\n", std::string(tensor_type_get_info(c.type).name).c_str(), err);
    }
}

TEST(QuantsK, RoundTripAwkwardBlocks) {
    // All positive (min must stay 0), all negative, constant, zero, and one outlier per block.
    std::vector<float> x;
    for (int i = 0; i < qk_k; ++i) x.push_back(1.0f + static_cast<float>(i % 13));
    for (int i = 0; i < qk_k; ++i) x.push_back(-1.0f - static_cast<float>(i % 11));
    for (int i = 0; i < qk_k; ++i) x.push_back(0.75f);
    for (int i = 0; i < qk_k; ++i) x.push_back(0.0f);
    std::vector<float> g = random_floats(qk_k, 7, 0.01f);
    g[100] = 50.0f;
    x.insert(x.end(), g.begin(), g.end());
    for (tensor_type t : {tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k}) {
        SCOPED_TRACE(std::string(tensor_type_get_info(t).name));
        const std::vector<uint8_t> q = quantize(t, x);
        const std::vector<float> y = dequantize(t, q.data(), static_cast<int64_t>(x.size()));
        for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << i;
        // Blocks 0..2 are easy: within 10% of the largest value everywhere.
        for (size_t i = 0; i < 3 * qk_k; ++i) EXPECT_NEAR(y[i], x[i], 1.3) << i;
        for (size_t i = 3 * qk_k; i < 4 * qk_k; ++i) EXPECT_EQ(y[i], 0.0f) << i;
        EXPECT_NEAR(y[4 * qk_k + 100], 50.0f, 2.0f);
        if (t != tensor_type::q6_k) {
            // Mins are non-negative in the format; the F16 fields must not carry a sign.
            const size_t bytes = tensor_type_get_info(t).block_bytes;
            for (size_t b = 0; b < x.size() / qk_k; ++b) {
                uint16_t d, dmin;
                std::memcpy(&d, q.data() + b * bytes, 2);
                std::memcpy(&dmin, q.data() + b * bytes + 2, 2);
                EXPECT_EQ(d & 0x8000, 0) << "block " << b;
                EXPECT_EQ(dmin & 0x8000, 0) << "block " << b;
            }
        }
    }
}

// ---- dots --------------------------------------------------------------------------------

// Weight blocks of random bytes (every bit pattern of scales, mins and levels) with sane F16
// super-scales, and Q8_K blocks with random levels and matching bsums.
std::vector<uint8_t> random_weight_blocks(tensor_type t, int n_blocks, std::mt19937& rng) {
    const size_t bytes = tensor_type_get_info(t).block_bytes;
    std::vector<uint8_t> out(bytes * n_blocks);
    for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
    for (int b = 0; b < n_blocks; ++b) {
        uint8_t* blk = out.data() + b * bytes;
        const uint16_t d = fp32_to_fp16(std::ldexp(1.0f + (rng() % 100) / 100.0f, -static_cast<int>(rng() % 8)));
        const uint16_t dmin = fp32_to_fp16(std::ldexp(1.0f + (rng() % 100) / 100.0f, -static_cast<int>(rng() % 8)));
        if (t == tensor_type::q6_k) {
            std::memcpy(blk + offsetof(block_q6_k, d), &d, 2);
        } else {
            std::memcpy(blk, &d, 2);
            std::memcpy(blk + 2, &dmin, 2);
        }
    }
    return out;
}

std::vector<uint8_t> random_q8_k_blocks(int n_blocks, std::mt19937& rng, bool extreme) {
    std::vector<block_q8_k> blocks(n_blocks);
    for (block_q8_k& blk : blocks) {
        blk.d = 0.01f + static_cast<float>(rng() % 1000) / 50000.0f;
        for (int i = 0; i < qk_k; ++i) {
            blk.qs[i] = static_cast<int8_t>(extreme ? (rng() % 2 ? 127 : -127) : static_cast<int>(rng() % 255) - 127);
        }
        for (int g = 0; g < qk_k / 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
            blk.bsums[g] = static_cast<int16_t>(sum);
        }
    }
    std::vector<uint8_t> out(sizeof(block_q8_k) * n_blocks);
    std::memcpy(out.data(), blocks.data(), out.size());
    return out;
}

TEST(QuantsK, VecDotMatchesDequantisedDot) {
    std::mt19937 rng(1234);
    constexpr int n_blocks = 12;
    constexpr int64_t n = n_blocks * qk_k;
    simd_guard guard;
    for (tensor_type t : {tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k}) {
        ASSERT_EQ(quants_vec_dot_type(t), tensor_type::q8_k);
        for (int trial = 0; trial < 6; ++trial) {
            SCOPED_TRACE(std::string(tensor_type_get_info(t).name) + " trial " + std::to_string(trial));
            const std::vector<uint8_t> w = random_weight_blocks(t, n_blocks, rng);
            const std::vector<uint8_t> x = random_q8_k_blocks(n_blocks, rng, trial >= 4);
            const std::vector<float> wf = dequantize(t, w.data(), n);
            const std::vector<float> xf = dequantize(tensor_type::q8_k, x.data(), n);
            const double expect = dot_double(wf, xf);
            double scale = 0.0;  // sum of |terms|: the tolerance follows the cancellation
            for (int64_t i = 0; i < n; ++i) scale += std::fabs(static_cast<double>(wf[i]) * xf[i]);
            const float scalar = vec_dot_at(simd_level::scalar, t, n, w.data(), x.data());
            EXPECT_NEAR(scalar, expect, 1e-5 * scale + 1e-6);
            if (!have_avx2()) continue;
            const float avx2 = vec_dot_at(simd_level::avx2, t, n, w.data(), x.data());
            EXPECT_NEAR(avx2, expect, 1e-5 * scale + 1e-6);
            EXPECT_NEAR(avx2, scalar, 1e-5 * scale + 1e-6);
        }
    }
    if (!have_avx2()) GTEST_SKIP() << "no AVX2 on this CPU/build: checked the scalar dots only";
}

TEST(QuantsK, ScalarAndAvx2Agree) {
    if (!have_avx2()) GTEST_SKIP() << "no AVX2 on this CPU/build";
    simd_guard guard;
    // Activations: bit-identical Q8_K from both paths, over a few rows with varied scales.
    for (uint32_t seed = 0; seed < 8; ++seed) {
        std::vector<float> x = random_floats(qk_k * 4, 100 + seed, seed % 2 ? 0.001f : 30.0f);
        if (seed == 3) x[77] = -x[77] * 1000.0f;
        const std::vector<uint8_t> a = q8_k_at(simd_level::scalar, x);
        const std::vector<uint8_t> b = q8_k_at(simd_level::avx2, x);
        EXPECT_EQ(a, b) << "seed " << seed;
    }
    // Weights quantised from real-valued rows, dotted with activations from both paths.
    const int64_t n = qk_k * 16;
    const std::vector<float> wf = random_floats(n, 5);
    const std::vector<float> xf = random_floats(n, 6);
    // Relative RMS error of each weight type on Gaussian data (RoundTripError bounds it).
    const std::pair<tensor_type, double> types[] = {
        {tensor_type::q4_k, 0.075}, {tensor_type::q5_k, 0.037}, {tensor_type::q6_k, 0.018}};
    for (const auto& [t, w_err] : types) {
        const std::vector<uint8_t> w = quantize(t, wf);
        const std::vector<uint8_t> x = q8_k_at(simd_level::scalar, xf);
        const float s = vec_dot_at(simd_level::scalar, t, n, w.data(), x.data());
        const float v = vec_dot_at(simd_level::avx2, t, n, w.data(), x.data());
        EXPECT_NEAR(v, s, 1e-4 * std::sqrt(static_cast<double>(n))) << tensor_type_get_info(t).name;
        // And the quantised dot is close to the exact one: the errors are about independent of
        // the other row, so the dot's error is about (w_err + x_err) * sqrt(n); allow 5 sigma.
        const double exact = dot_double(wf, xf);
        EXPECT_NEAR(s, exact, 5.0 * (w_err + 0.007) * std::sqrt(static_cast<double>(n)))
            << tensor_type_get_info(t).name;
    }
}

TEST(QuantsK, PublicVecDotUsesActivationType) {
    const int64_t n = qk_k * 2;
    const std::vector<float> wf = random_floats(n, 11);
    const std::vector<float> xf = random_floats(n, 12);
    for (tensor_type t : {tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k}) {
        const std::vector<uint8_t> w = quantize(t, wf);
        std::vector<uint8_t> x(tensor_type_row_bytes(tensor_type::q8_k, n));
        quants_from_float(tensor_type::q8_k, xf.data(), x.data(), n);
        float s = NAN;
        quants_vec_dot(t, n, &s, w.data(), x.data());
        const double expect = dot_double(dequantize(t, w.data(), n), dequantize(tensor_type::q8_k, x.data(), n));
        EXPECT_NEAR(s, expect, 1e-3 * std::fabs(expect) + 1e-3) << tensor_type_get_info(t).name;
    }
}

// ---- tensors quantised by llama.cpp --------------------------------------------------------

struct file_case {
    const char* file;
    tensor_type type;
    double max_rel_rms;
};

TEST(QuantsK, LlamaCppTensorsMatchF32) {
    const std::string f32_path = test::model_path("synth-llama-spm-f32.gguf");
    if (!test::require_file(f32_path)) GTEST_SKIP() << f32_path;
    const auto f32 = gguf_file::open(f32_path);
    const file_case cases[] = {
        {"synth-llama-spm-q4_k_m.gguf", tensor_type::q4_k, 0.10},
        {"synth-llama-spm-q4_k_m.gguf", tensor_type::q6_k, 0.03},
        {"synth-llama-spm-q5_k_m.gguf", tensor_type::q5_k, 0.05},
        {"synth-llama-spm-q6_k.gguf", tensor_type::q6_k, 0.03},
    };
    for (const file_case& c : cases) {
        const std::string path = test::model_path(c.file);
        if (!test::require_file(path)) GTEST_SKIP() << path;
        const auto q = gguf_file::open(path);
        int checked = 0;
        for (const gguf_tensor& t : q->tensors()) {
            if (t.type != c.type || checked >= 3) continue;
            const gguf_tensor* ref = f32->find_tensor(t.name);
            ASSERT_NE(ref, nullptr) << t.name;
            ASSERT_EQ(ref->type, tensor_type::f32);
            ASSERT_EQ(ref->ne, t.ne) << t.name;
            const int64_t n = t.n_elements();
            ASSERT_EQ(t.nbytes, tensor_type_row_bytes(c.type, n));
            const std::vector<float> y = dequantize(c.type, t.data, n);
            std::vector<float> want(static_cast<size_t>(n));
            std::memcpy(want.data(), ref->data, sizeof(float) * want.size());
            const double err = relative_rms_error(y, want);
            EXPECT_LT(err, c.max_rel_rms) << c.file << " " << t.name;
            std::printf("  %s %s (%s): relative RMS error %.4f\n", c.file, std::string(t.name).c_str(),
                        std::string(tensor_type_get_info(c.type).name).c_str(), err);

            // One row's dot through the kernels against the F32 dot of the same row.
            const int64_t row = t.ne[0];
            const std::vector<float> act = random_floats(static_cast<size_t>(row), 99);
            std::vector<uint8_t> xq(tensor_type_row_bytes(tensor_type::q8_k, row));
            quants_from_float(tensor_type::q8_k, act.data(), xq.data(), row);
            float s = NAN;
            quants_vec_dot(c.type, row, &s, t.data, xq.data());
            const std::vector<float> row_f32(want.begin(), want.begin() + row);
            const double exact = dot_double(row_f32, act);
            double rms = 0.0;
            for (float v : row_f32) rms += static_cast<double>(v) * v;
            rms = std::sqrt(rms / static_cast<double>(row));
            EXPECT_NEAR(s, exact, 4.0 * c.max_rel_rms * rms * std::sqrt(static_cast<double>(row)))
                << c.file << " " << t.name;
            ++checked;
        }
        EXPECT_GT(checked, 0) << c.file << " has no tensor of the expected type";
    }
}

}  // namespace
}  // namespace hearth
