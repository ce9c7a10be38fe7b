// AVX2/FMA/F16C kernels for the non-K types: the activation quantisers and the dot products the
// matmuls spend their time in. Compiled with -mavx2 -mfma -mf16c and called only after the
// run-time check in quants.cpp. The integer parts are exact; only the order in which the float
// per-block terms are summed differs from the scalar reference.
#include "quants-impl.h"

#include <immintrin.h>

#include <cstring>

namespace hearth::detail {

namespace {

constexpr int qk = 32;

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t f2h(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

inline float hsum_ps(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

inline int hsum_epi32(__m256i v) {
    __m128i lo = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, _MM_SHUFFLE(1, 0, 3, 2)));
    lo = _mm_add_epi32(lo, _mm_shuffle_epi32(lo, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(lo);
}

// Signed int8 x signed int8 over 32 lanes, as 8 float partial sums. maddubs wants one unsigned
// operand, so |x| is paired with y carrying x's sign. |x| = 128 (a weight of -128) still reads
// right as unsigned, and activations from the quantisers are within [-127, 127], so the int16
// pair sums stay below 2 * 128 * 127 < 32767: no saturation.
inline __m256 dot_s8_ps(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Unsigned x (at most 31) times signed y: no sign juggling needed.
inline __m256 dot_u8_ps(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(x, y);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// 16 bytes of packed nibbles to 32 bytes 0..15: low nibbles are elements 0..15, high 16..31.
// A broadcast load and a per-lane shift (0 low, 4 high) spare the cross-lane insert.
inline __m256i unpack_nibbles(const uint8_t* qs) {
    const __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    return _mm256_and_si256(_mm256_srlv_epi64(t, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0f));
}

// The 32 bits of qh spread to 32 bytes: byte j is 0xff when bit j is set, else 0.
inline __m256i spread_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, sizeof bits);
    // Byte j takes source byte j/8 (shuffles stay inside 128-bit lanes, so each lane holds all 4).
    const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), pick);
    const __m256i mask = _mm256_set1_epi64x(0x8040201008040201LL);  // byte j keeps bit j % 8
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
}

inline __m256i load32(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Per-block terms of each integer kernel: acc + d * (8 integer partial sums as float).
inline __m256 dot_block_q8_0(const block_q8_0& a, const block_q8_0& b, __m256 d, __m256 acc) {
    return _mm256_fmadd_ps(d, dot_s8_ps(load32(a.qs), load32(b.qs)), acc);
}

// (q - 8) * y summed in pairs is maddubs(q, y) - maddubs(8, y): one op fewer than the sign trick
// (both are exact in int16: at most 2 * 15 * 127 and 2 * 8 * 128).
inline __m256 dot_block_q4_0(const block_q4_0& a, const block_q8_0& b, __m256 d, __m256 acc) {
    const __m256i y = load32(b.qs);
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(unpack_nibbles(a.qs), y),
                                         _mm256_maddubs_epi16(_mm256_set1_epi8(8), y));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1))), acc);
}

inline __m256 dot_block_q5_0(const block_q5_0& a, const block_q8_0& b, __m256 d, __m256 acc) {
    // (q | h<<4) - 16 is q - 16 where the bit is clear, i.e. q | 0xf0 as int8; q where it is set.
    const __m256i high = _mm256_andnot_si256(spread_bits(a.qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    const __m256i qx = _mm256_or_si256(unpack_nibbles(a.qs), high);
    return _mm256_fmadd_ps(d, dot_s8_ps(qx, load32(b.qs)), acc);
}

inline __m256 dot_block_q4_1(const block_q4_1& a, const block_q8_1& b, __m256 d, __m256 acc) {
    return _mm256_fmadd_ps(d, dot_u8_ps(unpack_nibbles(a.qs), load32(b.qs)), acc);
}

inline __m256 dot_block_q5_1(const block_q5_1& a, const block_q8_1& b, __m256 d, __m256 acc) {
    const __m256i high = _mm256_and_si256(spread_bits(a.qh), _mm256_set1_epi8(0x10));
    const __m256i qx = _mm256_or_si256(unpack_nibbles(a.qs), high);
    return _mm256_fmadd_ps(d, dot_u8_ps(qx, load32(b.qs)), acc);
}

// Four consecutive fp16 fields (at a stride of one block) to floats. The halves are gathered in
// a general-purpose register: integer ALUs are idle in these loops, the vector ports are not.
template <typename B, uint16_t B::*Field>
inline __m128 halves4(const B* p) {
    const uint64_t v = static_cast<uint64_t>(p[0].*Field) | static_cast<uint64_t>(p[1].*Field) << 16 |
                       static_cast<uint64_t>(p[2].*Field) << 32 | static_cast<uint64_t>(p[3].*Field) << 48;
    return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(v)));
}

// Two such fields; the upper two floats come out zero.
template <typename B, uint16_t B::*Field>
inline __m128 halves2(const B* p) {
    const uint32_t v = static_cast<uint32_t>(p[0].*Field) | static_cast<uint32_t>(p[1].*Field) << 16;
    return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(v)));
}

// Four blocks per step into independent accumulators so the FMA chains overlap, their four scale
// products computed in one vector; one horizontal sum at the end. Rows of 576 (18 blocks) are
// common, so the 1-block tail matters too. With_min adds the m * sum(y) terms of the q*_1 types.
template <typename WB, typename XB, __m256 (*Block)(const WB&, const XB&, __m256, __m256), bool with_min>
inline float dot_blocks(int64_t n, const void* w, const void* x) {
    const auto* a = static_cast<const WB*>(w);
    const auto* b = static_cast<const XB*>(x);
    const int64_t nb = n / qk;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    __m128 acc_min = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const __m128 d4 = _mm_mul_ps(halves4<WB, &WB::d>(a + i), halves4<XB, &XB::d>(b + i));
        const __m256 d8 = _mm256_set_m128(d4, d4);
        acc0 = Block(a[i + 0], b[i + 0], _mm256_permute_ps(d8, 0x00), acc0);
        acc1 = Block(a[i + 1], b[i + 1], _mm256_permute_ps(d8, 0x55), acc1);
        acc2 = Block(a[i + 2], b[i + 2], _mm256_permute_ps(d8, 0xaa), acc2);
        acc3 = Block(a[i + 3], b[i + 3], _mm256_permute_ps(d8, 0xff), acc3);
        if constexpr (with_min) {
            acc_min = _mm_fmadd_ps(halves4<WB, &WB::m>(a + i), halves4<XB, &XB::s>(b + i), acc_min);
        }
    }
    float tail_min = 0.0f;
    if (i + 2 <= nb) {  // 576-wide rows end with 2 blocks
        const __m128 d2 = _mm_mul_ps(halves2<WB, &WB::d>(a + i), halves2<XB, &XB::d>(b + i));
        const __m256 d8 = _mm256_set_m128(d2, d2);
        acc0 = Block(a[i + 0], b[i + 0], _mm256_permute_ps(d8, 0x00), acc0);
        acc1 = Block(a[i + 1], b[i + 1], _mm256_permute_ps(d8, 0x55), acc1);
        if constexpr (with_min) {
            acc_min = _mm_fmadd_ps(halves2<WB, &WB::m>(a + i), halves2<XB, &XB::s>(b + i), acc_min);
        }
        i += 2;
    }
    if (i < nb) {
        acc2 = Block(a[i], b[i], _mm256_set1_ps(h2f(a[i].d) * h2f(b[i].d)), acc2);
        if constexpr (with_min) tail_min = h2f(a[i].m) * h2f(b[i].s);
    }
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    if constexpr (with_min) {
        acc_min = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
        acc_min = _mm_add_ss(acc_min, _mm_movehdup_ps(acc_min));
        sum += _mm_cvtss_f32(acc_min) + tail_min;
    }
    return sum;
}

// Float rows: 32 elements per step in four accumulators; `load` widens 8 weights to float.
template <typename T, __m256 (*Load)(const T*), float (*Scalar)(T)>
inline float dot_float_rows(int64_t n, const void* w, const void* x) {
    const auto* a = static_cast<const T*>(w);
    const auto* b = static_cast<const float*>(x);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(Load(a + i + 0), _mm256_loadu_ps(b + i + 0), acc0);
        acc1 = _mm256_fmadd_ps(Load(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(Load(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(Load(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load(a + i), _mm256_loadu_ps(b + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; ++i) sum += Scalar(a[i]) * b[i];
    return sum;
}

inline __m256 load_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 load_bf16(const uint16_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline float scalar_f32(float v) { return v; }
inline float scalar_f16(uint16_t v) { return h2f(v); }
inline float scalar_bf16(uint16_t v) { return bf16_to_fp32(v); }

// One block of 32 floats to int8 with d = amax / 127, rounding to nearest even (cvtps2dq in the
// default MXCSR mode) exactly as the scalar quantiser does. Returns the int8 codes; *d_out gets d.
inline __m256i quantize_block_q8(const float* x, float* d_out) {
    const __m256 v0 = _mm256_loadu_ps(x + 0), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    *d_out = d;
    const __m256 mul = _mm256_set1_ps(id);
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, mul));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, mul));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, mul));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, mul));
    // The packs work per 128-bit lane, leaving 4-element groups in the order 0 2 4 6 1 3 5 7.
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void quantize_row_q8_0_avx2(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float d;
        const __m256i q = quantize_block_q8(src, &d);
        y[i].d = f2h(d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
    }
}

void quantize_row_q8_1_avx2(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float d;
        const __m256i q = quantize_block_q8(src, &d);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
        // Sum of the 32 codes: widen through maddubs with ones (|q| <= 127, no saturation).
        const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
        const int sum = hsum_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
        y[i].d = f2h(d);
        y[i].s = f2h(static_cast<float>(sum) * d);
    }
}

void vec_dot_f32_f32_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_float_rows<float, load_f32, scalar_f32>(n, w, x);
}

void vec_dot_f16_f32_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_float_rows<uint16_t, load_f16, scalar_f16>(n, w, x);
}

void vec_dot_bf16_f32_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_float_rows<uint16_t, load_bf16, scalar_bf16>(n, w, x);
}

void vec_dot_q8_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_blocks<block_q8_0, block_q8_0, dot_block_q8_0, false>(n, w, x);
}

void vec_dot_q4_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_blocks<block_q4_0, block_q8_0, dot_block_q4_0, false>(n, w, x);
}

void vec_dot_q5_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_blocks<block_q5_0, block_q8_0, dot_block_q5_0, false>(n, w, x);
}

void vec_dot_q4_1_q8_1_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_blocks<block_q4_1, block_q8_1, dot_block_q4_1, true>(n, w, x);
}

void vec_dot_q5_1_q8_1_avx2(int64_t n, float* s, const void* w, const void* x) {
    *s = dot_blocks<block_q5_1, block_q8_1, dot_block_q5_1, true>(n, w, x);
}

}  // namespace hearth::detail
