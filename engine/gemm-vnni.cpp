// Tiled Q8_0 products with AVX-512 VNNI: each 512-bit register holds two consecutive blocks
// (one per 256-bit half), so one vpdpbusd, one conversion and two float operations serve two
// blocks of a (row, token) pair, and the 32 registers hold a 4 x 4 tile of accumulators with
// no horizontal work until the end. Compiled with AVX-512 flags; called only when the CPU
// reports avx512f, avx512bw, avx512vl and avx512vnni.
// GCC 12's own AVX-512 headers trip -W(maybe-)uninitialized on their "undefined" source vectors
// when inlined (a known false positive); nothing of ours is uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "gemm-tile.h"
#include "quants-impl.h"

#include <immintrin.h>

namespace hearth::detail {

namespace {

// The qs of blocks b and b + 1 (or zeros for a missing b + 1).
inline __m512i load_pair(const block_q8_0* blk, bool second) {
    const __m512i lo = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs)));
    if (!second) return lo;
    return _mm512_inserti64x4(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)), 1);
}

// [d_b x 8 | d_b+1 x 8] as floats (0 for a missing b + 1).
inline __m512 scales_pair(const block_q8_0* blk, bool second) {
    const __m128i lo = _mm_set1_epi16(static_cast<short>(blk[0].d));
    const __m128i hi = second ? _mm_set1_epi16(static_cast<short>(blk[1].d)) : _mm_setzero_si128();
    return _mm512_cvtph_ps(_mm256_set_m128i(hi, lo));
}

// x is offset to unsigned (x + 128) once per token and block pair; the 128 * sum(w) that adds
// is the start value of each pair's sum, computed once per row and block pair.
template <int RM, int RN>
void tile(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* s, int64_t lds) {
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const bool second = b + 1 < nb;
        __m512i xu[RN];
        __m512 dx[RN];
        for (int t = 0; t < RN; ++t) {
            const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x + t * x_stride) + b;
            xu[t] = _mm512_xor_si512(load_pair(xb, second), bias);
            dx[t] = scales_pair(xb, second);
        }
        for (int r = 0; r < RM; ++r) {
            const block_q8_0* wb = reinterpret_cast<const block_q8_0*>(w + r * w_stride) + b;
            const __m512i wv = load_pair(wb, second);
            const __m512 dw = scales_pair(wb, second);
            const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, wv));
            for (int t = 0; t < RN; ++t) {
                const __m512i p = _mm512_dpbusd_epi32(start, xu[t], wv);
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p), dx[t]), dw, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) s[t * lds + r] = _mm512_reduce_add_ps(acc[r][t]);
}

struct zmm_tile {
    template <int RM, int RN>
    static void tile(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* s, int64_t lds) {
        hearth::detail::tile<RM, RN>(nb, w, w_stride, x, x_stride, s, lds);
    }
};

}  // namespace

void gemm_q8_0_q8_0_vnni(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s, int64_t lds) {
    gemm_q8_0<zmm_tile, 4, 4>(n, w, w_stride, nr, x, x_stride, nt, s, lds);
}

}  // namespace hearth::detail
