// Register-tiled Q8_0 x Q8_0 products for batches (prompt processing): a tile of RM weight rows
// times RN activation rows keeps RM*RN accumulators in registers, so each weight block is loaded
// and made unsigned once for RN tokens and each activation block once for RM rows. Included by
// gemm-avx2.cpp and gemm-vnni.cpp, which supply the int8 dot step for their instruction set.
#pragma once

#include "quants.h"

#include <immintrin.h>

#include <algorithm>

namespace hearth::detail {

inline float gemm_hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

// The AVX2 tile: |w| as unsigned times x carrying w's sign (|w| = 128, from w = -128, reads right
// as unsigned; activations stay within [-127, 127]). Dot turns (u8, s8) into 8 int32 sums.
template <typename Dot>
struct gemm_q8_0_sign_tile {
    template <int RM, int RN>
    static void tile(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* s, int64_t lds) {
        __m256 acc[RM][RN];
        for (int r = 0; r < RM; ++r)
            for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            __m256i xv[RN];
            __m256 dx[RN];
            for (int t = 0; t < RN; ++t) {
                const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x + t * x_stride) + b;
                xv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs));
                dx[t] = _mm256_set1_ps(_cvtsh_ss(xb->d));
            }
            for (int r = 0; r < RM; ++r) {
                const block_q8_0* wb = reinterpret_cast<const block_q8_0*>(w + r * w_stride) + b;
                const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qs));
                const __m256i aw = _mm256_sign_epi8(wv, wv);
                const __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d));
                for (int t = 0; t < RN; ++t) {
                    const __m256i p = Dot::dot(aw, _mm256_sign_epi8(xv[t], wv));
                    acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dx[t]), dw, acc[r][t]);
                }
            }
        }
        for (int r = 0; r < RM; ++r)
            for (int t = 0; t < RN; ++t) s[t * lds + r] = gemm_hsum(acc[r][t]);
    }
};

// Four tokens' int32 sums for one row and block, reduced with two hadds into one vector
// [t0 t1 t2 t3 | t0 t1 t2 t3] (low and high 128-bit halves), so the float conversion and the
// scaling cost one operation per four (row, token) pairs instead of one per pair.
inline __m256i gemm_reduce4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
}

// Folds an accumulator laid out as gemm_reduce4 into s[t * lds] for the four tokens.
inline void gemm_store4(__m256 acc, float* s, int64_t lds) {
    alignas(16) float out[4];
    _mm_store_ps(out, _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)));
    for (int t = 0; t < 4; ++t) s[t * lds] = out[t];
}

// The per-block scales of four tokens, as gemm_reduce4 lays them out.
inline __m256 gemm_scales4(const uint8_t* x, size_t x_stride, int64_t b) {
    float d[4];
    for (int t = 0; t < 4; ++t) d[t] = _cvtsh_ss((reinterpret_cast<const block_q8_0*>(x + t * x_stride) + b)->d);
    const __m128 v = _mm_loadu_ps(d);
    return _mm256_set_m128(v, v);
}

// Tiles of RM rows by exactly four tokens; Pair supplies prepare(x block) once per token and
// block, row(w block) once per row and block, dot(row, prepared x) -> 8 int32 per pair, and,
// when Pair::corrected, correction(prepared x of four tokens): a term every row's reduced sums
// subtract, computed once per block.
template <typename Pair>
struct gemm_q8_0_tile4 {
    template <int RM>
    static void tile(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* s, int64_t lds) {
        __m256 acc[RM];
        for (int r = 0; r < RM; ++r) acc[r] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            __m256i xp[4];
            for (int t = 0; t < 4; ++t) {
                const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x + t * x_stride) + b;
                xp[t] = Pair::prepare(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs)));
            }
            const __m256 dx = gemm_scales4(x, x_stride, b);
            __m256i corr = _mm256_setzero_si256();
            if constexpr (Pair::corrected) corr = Pair::correction(xp);
            for (int r = 0; r < RM; ++r) {
                const block_q8_0* wb = reinterpret_cast<const block_q8_0*>(w + r * w_stride) + b;
                const typename Pair::row_t row = Pair::row(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qs)));
                __m256i p = gemm_reduce4(Pair::dot(row, xp[0]), Pair::dot(row, xp[1]), Pair::dot(row, xp[2]), Pair::dot(row, xp[3]));
                if constexpr (Pair::corrected) p = _mm256_sub_epi32(p, corr);
                // Broadcast the half first, then convert: no scalar insert on the way.
                const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(wb->d)));
                acc[r] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dx), dw, acc[r]);
            }
        }
        for (int r = 0; r < RM; ++r) gemm_store4(acc[r], s + r, lds);
    }
};

// Rows in tiles of four by four tokens; leftover tokens (nt % 4) through Edge's RM x RN tiles.
template <typename Pair, typename Edge, int RM = 4>
inline void gemm_q8_0_by4(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s,
                          int64_t lds);

template <typename Tile, int RM, int RN>
inline void gemm_q8_0_edge(int rm, int rn, int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* s, int64_t lds) {
    if constexpr (RM > 1) {
        if (rm < RM) return gemm_q8_0_edge<Tile, RM - 1, RN>(rm, rn, nb, w, ws, x, xs, s, lds);
    }
    if constexpr (RN > 1) {
        if (rn < RN) return gemm_q8_0_edge<Tile, RM, RN - 1>(rm, rn, nb, w, ws, x, xs, s, lds);
    }
    Tile::template tile<RM, RN>(nb, w, ws, x, xs, s, lds);
}

// s[t * lds + r] = dot(w row r, x row t) for r < nr, t < nt, rows of n elements, in tiles of
// RM rows by RN tokens.
template <typename Tile, int RM, int RN>
inline void gemm_q8_0(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s, int64_t lds) {
    const int64_t nb = n / 32;
    const uint8_t* wp = static_cast<const uint8_t*>(w);
    const uint8_t* xp = static_cast<const uint8_t*>(x);
    for (int64_t t0 = 0; t0 < nt; t0 += RN) {
        const int tn = static_cast<int>(std::min<int64_t>(RN, nt - t0));
        for (int64_t r0 = 0; r0 < nr; r0 += RM) {
            const int tm = static_cast<int>(std::min<int64_t>(RM, nr - r0));
            gemm_q8_0_edge<Tile, RM, RN>(tm, tn, nb, wp + r0 * w_stride, w_stride, xp + t0 * x_stride, x_stride, s + t0 * lds + r0, lds);
        }
    }
}

template <typename Pair, typename Edge, int RM>
inline void gemm_q8_0_by4(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s,
                          int64_t lds) {
    const int64_t nb = n / 32;
    const uint8_t* wp = static_cast<const uint8_t*>(w);
    const uint8_t* xp = static_cast<const uint8_t*>(x);
    const int64_t nt4 = nt - nt % 4;
    for (int64_t t0 = 0; t0 < nt4; t0 += 4) {
        int64_t r0 = 0;
        for (; r0 + RM <= nr; r0 += RM) {
            gemm_q8_0_tile4<Pair>::template tile<RM>(nb, wp + r0 * w_stride, w_stride, xp + t0 * x_stride, x_stride, s + t0 * lds + r0, lds);
        }
        for (; r0 < nr; ++r0) {
            gemm_q8_0_tile4<Pair>::template tile<1>(nb, wp + r0 * w_stride, w_stride, xp + t0 * x_stride, x_stride, s + t0 * lds + r0, lds);
        }
    }
    if (nt4 < nt) {
        gemm_q8_0<Edge, 4, 3>(n, w, w_stride, nr, xp + nt4 * x_stride, x_stride, nt - nt4, s + nt4 * lds, lds);
    }
}

}  // namespace hearth::detail
