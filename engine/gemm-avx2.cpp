// Tiled Q8_0 products with AVX2 (maddubs + madd); see gemm-tile.h.
#include "gemm-tile.h"
#include "quants-impl.h"

namespace hearth::detail {

namespace {
struct dot_avx2 {
    static __m256i dot(__m256i u, __m256i s) { return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)); }
};
// |w| and w per row; x as loaded; the pair is maddubs(|w|, x with w's sign) summed to int32.
struct sign_pair {
    static constexpr bool corrected = false;
    struct row_t {
        __m256i w;
        __m256i aw;
    };
    static __m256i prepare(__m256i x) { return x; }
    static row_t row(__m256i w) { return {w, _mm256_sign_epi8(w, w)}; }
    static __m256i dot(const row_t& r, __m256i x) { return dot_avx2::dot(r.aw, _mm256_sign_epi8(x, r.w)); }
    static __m256i correction(const __m256i*) { return _mm256_setzero_si256(); }
};

}  // namespace

void gemm_q8_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s, int64_t lds) {
    gemm_q8_0_by4<sign_pair, gemm_q8_0_sign_tile<dot_avx2>>(n, w, w_stride, nr, x, x_stride, nt, s, lds);
}

}  // namespace hearth::detail
