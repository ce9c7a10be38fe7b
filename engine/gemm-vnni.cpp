// Tiled Q8_0 products with AVX512-VNNI on 256-bit registers (the EVEX encoding also gives 32
// registers, so 8-row tiles stay in registers); see gemm-tile.h. Compiled with AVX-512 flags and
// called only when the CPU reports avx512vnni and avx512vl.
#include "gemm-tile.h"
#include "quants-impl.h"

namespace hearth::detail {

namespace {

// vpdpbusd multiplies unsigned by signed bytes. Rather than make |w| unsigned and move w's sign
// onto x for every (row, token) pair, x is offset to unsigned once per token and block
// (x + 128), and the 128 * sum(w) that adds is taken off once per row and block: 4 vector
// operations per pair instead of 6.
struct offset_tile {
    template <int RM, int RN>
    static void tile(int64_t nb, const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* s, int64_t lds) {
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        __m256 acc[RM][RN];
        for (int r = 0; r < RM; ++r)
            for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            __m256i xu[RN];
            float dx[RN];  // broadcast from memory at each use: keeps 16 registers enough
            for (int t = 0; t < RN; ++t) {
                const block_q8_0* xb = reinterpret_cast<const block_q8_0*>(x + t * x_stride) + b;
                xu[t] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs)), bias);
                dx[t] = _cvtsh_ss(xb->d);
            }
            for (int r = 0; r < RM; ++r) {
                const block_q8_0* wb = reinterpret_cast<const block_q8_0*>(w + r * w_stride) + b;
                const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qs));
                const __m256 dw = _mm256_set1_ps(_cvtsh_ss(wb->d));
                // -128 * sum(w) per lane: the start value of every pair's sum for this row.
                const __m256i start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, wv));
                for (int t = 0; t < RN; ++t) {
                    const __m256i p = _mm256_dpbusd_epi32(start, xu[t], wv);
                    acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(&dx[t])), dw, acc[r][t]);
                }
            }
        }
        for (int r = 0; r < RM; ++r)
            for (int t = 0; t < RN; ++t) s[t * lds + r] = gemm_hsum(acc[r][t]);
    }
};

// For gemm_q8_0_tile4 the weights are offset instead: w + 128 once per row and block (unsigned),
// x as it is (signed), so each pair is one vpdpbusd from zero. The extra 128 * sum(x) depends
// only on the token and block: reduced like the pairs once per block and subtracted from
// every row's sums.
struct weight_offset_pair {
    static constexpr bool corrected = true;
    using row_t = __m256i;
    static __m256i prepare(__m256i x) { return x; }
    static row_t row(__m256i w) { return _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80))); }
    static __m256i dot(row_t wu, __m256i x) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu, x); }
    static __m256i correction(const __m256i* x) {
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        const __m256i z = _mm256_setzero_si256();
        return gemm_reduce4(_mm256_dpbusd_epi32(z, bias, x[0]), _mm256_dpbusd_epi32(z, bias, x[1]), _mm256_dpbusd_epi32(z, bias, x[2]),
                            _mm256_dpbusd_epi32(z, bias, x[3]));
    }
};

}  // namespace

void gemm_q8_0_q8_0_vnni(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s, int64_t lds) {
    gemm_q8_0_by4<weight_offset_pair, offset_tile, 8>(n, w, w_stride, nr, x, x_stride, nt, s, lds);
}

}  // namespace hearth::detail
