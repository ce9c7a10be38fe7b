// K-quant kernels for AVX2/FMA/F16C: Q8_K activation quantisation and the Q4_K/Q5_K/Q6_K dots
// with Q8_K that carry the decode of K-quant models. Integer products use maddubs (unsigned
// weight levels times signed activations, whose pair sums cannot saturate: at most 2*63*127),
// then madd with the sub-block scales; the Q4_K/Q5_K mins and Q6_K's -32 offset are applied once
// per super-block through Q8_K's bsums, so the inner loops have no branches.
#if defined(HEARTH_HAVE_AVX2)

#include "quants-impl.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace hearth::detail {

namespace {

inline float hsum_ps128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hsum_ps(__m256 v) { return hsum_ps128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// Unpacks the 12 scale bytes of Q4_K/Q5_K into eight 6-bit scales (bytes 0..7) and eight 6-bit
// mins (bytes 8..15), word-wise rather than one field at a time.
inline __m128i scale_min_unpack8(const uint8_t* packed) {
    uint32_t w[3];
    std::memcpy(w, packed, 12);
    constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, top2 = 0xc0c0c0c0;
    const uint32_t sc_lo = w[0] & low6;                                   // scales 0..3
    const uint32_t m_lo = w[1] & low6;                                    // mins 0..3
    const uint32_t sc_hi = (w[2] & low4) | ((w[0] & top2) >> 2);         // scales 4..7
    const uint32_t m_hi = ((w[2] >> 4) & low4) | ((w[1] & top2) >> 2);  // mins 4..7
    return _mm_set_epi32(static_cast<int>(m_hi), static_cast<int>(m_lo), static_cast<int>(sc_hi),
                         static_cast<int>(sc_lo));
}

// Shuffle masks that broadcast int16 element k of a 128-bit lane over the whole lane.
inline __m256i word_broadcast_mask(int k) { return _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * k)); }

// m[j] * (bsums[2j] + bsums[2j+1]) summed in pairs of sub-blocks (4 x int32; the caller adds the
// lanes up once per row): the activation sums of each 32-value sub-block weighted by its min.
inline __m128i mins_times_bsums(__m128i mins16, const int16_t* bsums) {
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
    const __m128i pair = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(mins16, pair);
}

// Chunk J (values 64J..64J+63) of a Q5_K block: sub-blocks 2J and 2J+1 take their fifth bit from
// bits 2J and 2J+1 of qh[l], moved to bit 4 with one shift each (16-bit shifts are fine: the
// mask keeps only bit 4 of each byte, which comes from the same byte).
template <int J>
inline __m256i q5_k_step(const uint8_t* q, const int8_t* y, __m256i qh, __m256i scales) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    __m256i h0, h1;
    if constexpr (2 * J <= 4) {
        h0 = _mm256_slli_epi16(qh, 4 - 2 * J);
    } else {
        h0 = _mm256_srli_epi16(qh, 2 * J - 4);
    }
    if constexpr (2 * J + 1 <= 4) {
        h1 = _mm256_slli_epi16(qh, 3 - 2 * J);
    } else {
        h1 = _mm256_srli_epi16(qh, 2 * J - 3);
    }
    const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * J));
    const __m256i lo = _mm256_or_si256(_mm256_and_si256(q4, nibble), _mm256_and_si256(h0, bit4));
    const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4, 4), nibble), _mm256_and_si256(h1, bit4));
    const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * J));
    const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * J + 32));
    const __m256i s0 = _mm256_shuffle_epi8(scales, word_broadcast_mask(2 * J));
    const __m256i s1 = _mm256_shuffle_epi8(scales, word_broadcast_mask(2 * J + 1));
    const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
    const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
    return _mm256_add_epi32(p0, p1);
}

}  // namespace

void quantize_row_q8_k_avx2(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q8_k*>(dst);
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < n / qk_k; ++b, src += qk_k) {
        block_q8_k& blk = blocks[b];
        __m256 vabs = _mm256_setzero_ps();
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        __m256 vmin = _mm256_set1_ps(INFINITY);
        for (int i = 0; i < qk_k; i += 8) {
            const __m256 v = _mm256_loadu_ps(src + i);
            vabs = _mm256_max_ps(vabs, _mm256_andnot_ps(sign_mask, v));
            vmax = _mm256_max_ps(vmax, v);
            vmin = _mm256_min_ps(vmin, v);
        }
        const float amax = hmax_ps(vabs);
        if (amax == 0.0f) {
            std::memset(&blk, 0, sizeof blk);
            continue;
        }
        // The scalar reference takes the first value of largest magnitude; its sign needs that
        // order only when both +amax and -amax occur, so scan only then.
        const bool has_pos = hmax_ps(vmax) == amax;
        const bool has_neg = hmax_ps(_mm256_xor_ps(vmin, sign_mask)) == amax;
        float signed_max = has_pos ? amax : -amax;
        if (has_pos && has_neg) {
            for (int i = 0; i < qk_k; ++i) {
                if (std::fabs(src[i]) == amax) {
                    signed_max = src[i];
                    break;
                }
            }
        }
        const float iscale = -127.0f / signed_max;
        const __m256 vscale = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        for (int i = 0; i < qk_k; i += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; ++k) {
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(src + i + 8 * k), vscale);
                const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), cap);
            }
            // packs interleave 128-bit lanes; the permute puts the 32 values back in order.
            const __m256i q01 = _mm256_packs_epi32(q[0], q[1]);
            const __m256i q23 = _mm256_packs_epi32(q[2], q[3]);
            const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q01, q23), order);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk.qs + i), q8);
        }
        // bsums, 64 values (4 groups of 16) at a time: maddubs(1, q) adds signed byte pairs,
        // madd(1) folds them to sums of 4, and two hadds finish each group of 16.
        for (int i = 0; i < qk_k; i += 64) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + i));
            const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + i + 32));
            const __m256i sa = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, a), ones16);
            const __m256i sc = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, c), ones16);
            // Lane 0 of sa/sc holds groups g and g+2, lane 1 groups g+1 and g+3.
            __m256i h = _mm256_hadd_epi32(sa, sc);
            h = _mm256_hadd_epi32(h, h);  // lane 0: (g, g+2, g, g+2), lane 1: (g+1, g+3, ...)
            const int g = i / 16;
            blk.bsums[g + 0] = static_cast<int16_t>(_mm256_extract_epi32(h, 0));
            blk.bsums[g + 1] = static_cast<int16_t>(_mm256_extract_epi32(h, 4));
            blk.bsums[g + 2] = static_cast<int16_t>(_mm256_extract_epi32(h, 1));
            blk.bsums[g + 3] = static_cast<int16_t>(_mm256_extract_epi32(h, 5));
        }
        blk.d = 1.0f / iscale;
    }
}

void vec_dot_q4_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q4_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const __m128i sm = scale_min_unpack8(wb[b].scales);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));  // 8 x int16, both lanes
        const float dy = xb[b].d;
        const __m128i mb = mins_times_bsums(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm)), xb[b].bsums);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dy * half_to_float(wb[b].dmin)), _mm_cvtepi32_ps(mb), acc_m);

        const uint8_t* q = wb[b].qs;
        const int8_t* y = xb[b].qs;
        __m256i sum = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * j));
            const __m256i lo = _mm256_and_si256(q4, nibble);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), nibble);
            const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j));
            const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 64 * j + 32));
            const __m256i s0 = _mm256_shuffle_epi8(scales, word_broadcast_mask(2 * j));
            const __m256i s1 = _mm256_shuffle_epi8(scales, word_broadcast_mask(2 * j + 1));
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
            sum = _mm256_add_epi32(sum, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * half_to_float(wb[b].d)), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = hsum_ps(acc) - hsum_ps128(acc_m);
}

void vec_dot_q5_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q5_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const __m128i sm = scale_min_unpack8(wb[b].scales);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));  // 8 x int16, both lanes
        const float dy = xb[b].d;
        const __m128i mb = mins_times_bsums(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(sm, sm)), xb[b].bsums);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dy * half_to_float(wb[b].dmin)), _mm_cvtepi32_ps(mb), acc_m);

        const uint8_t* q = wb[b].qs;
        const int8_t* y = xb[b].qs;
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[b].qh));
        __m256i sum = _mm256_setzero_si256();
        sum = _mm256_add_epi32(sum, q5_k_step<0>(q, y, qh, scales));
        sum = _mm256_add_epi32(sum, q5_k_step<1>(q, y, qh, scales));
        sum = _mm256_add_epi32(sum, q5_k_step<2>(q, y, qh, scales));
        sum = _mm256_add_epi32(sum, q5_k_step<3>(q, y, qh, scales));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * half_to_float(wb[b].d)), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = hsum_ps(acc) - hsum_ps128(acc_m);
}

void vec_dot_q6_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q6_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(0x30);
    // Shuffles that put int16 scale 2p in the low 128-bit lane and 2p+1 in the high one, from a
    // register holding scales 0..7 (or 8..15) in both lanes.
    const __m256i pick[4] = {
        _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
        _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
        _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10,
                         11, 10, 11, 10, 11),
        _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14,
                         15, 14, 15, 14, 15, 14, 15, 14, 15),
    };
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const block_q6_k& blk = wb[b];
        // Levels are stored as q+32 (0..63); the -32 comes back as 32 * sum_j sc[j] * bsums[j].
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.scales));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b].bsums));
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);

        __m256i sum = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = blk.ql + 64 * h;
            const int8_t* y = xb[b].qs + 128 * h;
            const __m256i scales =
                _mm256_broadcastsi128_si256(h == 0 ? _mm256_castsi256_si128(sc16) : _mm256_extracti128_si256(sc16, 1));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qh + 32 * h));
            const __m256i la = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            const __m256i lb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            // Quarter k takes nibble k/2 of ql[32*(k%2) + l] and bits 2k, 2k+1 of qh[l].
            const __m256i v0 = _mm256_or_si256(_mm256_and_si256(la, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), two_bits));
            const __m256i v1 = _mm256_or_si256(_mm256_and_si256(lb, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), two_bits));
            const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), nibble), _mm256_and_si256(qh, two_bits));
            const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), nibble),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), two_bits));
            const __m256i v[4] = {v0, v1, v2, v3};
            for (int k = 0; k < 4; ++k) {
                const __m256i yk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + 32 * k));
                const __m256i p = _mm256_maddubs_epi16(v[k], yk);
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick[k])));
            }
        }
        sum = _mm256_sub_epi32(sum, offset);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(xb[b].d * half_to_float(blk.d)), _mm256_cvtepi32_ps(sum), acc);
    }
    *s = hsum_ps(acc);
}

}  // namespace hearth::detail

#endif  // HEARTH_HAVE_AVX2
