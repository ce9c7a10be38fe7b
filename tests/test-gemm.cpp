// The register-tiled batch products agree with the per-(row, token) dot kernel for every tile
// shape, edge tiles included, on AVX2 and (when the CPU has it) AVX512-VNNI.
#include "quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace hearth;

struct restore_simd {
    simd_level level = quants_simd();
    bool vnni = quants_vnni();
    ~restore_simd() {
        quants_set_simd(level);
        quants_set_vnni(vnni);
    }
};

void check_gemm_matches_vec_dot(bool vnni) {
    restore_simd restore;
    quants_set_simd(simd_level::avx2);
    quants_set_vnni(vnni);
    const gemm_fn gemm = quants_get_gemm(tensor_type::q8_0);
    ASSERT_NE(gemm, nullptr);
    const vec_dot_fn dot = quants_get_vec_dot(tensor_type::q8_0);
    std::mt19937 rng(42);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const int64_t n = 96;  // three blocks
    const size_t row_bytes = tensor_type_row_bytes(tensor_type::q8_0, n);
    for (int64_t nr : {1, 3, 4, 5, 8, 9, 16, 17}) {
        for (int64_t nt : {2, 3, 4, 5, 7, 8, 9, 13}) {
            std::vector<uint8_t> w(static_cast<size_t>(nr) * row_bytes), x(static_cast<size_t>(nt) * row_bytes);
            std::vector<float> row(static_cast<size_t>(n));
            for (int64_t r = 0; r < nr; ++r) {
                for (float& v : row) v = dist(rng);
                if (r == 0) row[5] = -50.0f;  // a weight of -128 after quantisation
                quantize_row(tensor_type::q8_0, row.data(), w.data() + r * row_bytes, n);
            }
            for (int64_t t = 0; t < nt; ++t) {
                for (float& v : row) v = dist(rng);
                quants_from_float(tensor_type::q8_0, row.data(), x.data() + t * row_bytes, n);
            }
            const int64_t lds = nr + 3;  // a stride wider than the tile, as matmuls use
            std::vector<float> got(static_cast<size_t>(nt * lds), -999.0f);
            gemm(n, w.data(), row_bytes, nr, x.data(), row_bytes, nt, got.data(), lds);
            for (int64_t t = 0; t < nt; ++t) {
                for (int64_t r = 0; r < nr; ++r) {
                    float want = 0;
                    dot(n, &want, w.data() + r * row_bytes, x.data() + t * row_bytes);
                    EXPECT_NEAR(got[static_cast<size_t>(t * lds + r)], want, 1e-4f * (1.0f + std::fabs(want)))
                        << "nr " << nr << " nt " << nt << " r " << r << " t " << t << (vnni ? " vnni" : " avx2");
                }
                for (int64_t r = nr; r < lds; ++r) EXPECT_EQ(got[static_cast<size_t>(t * lds + r)], -999.0f) << "wrote past the tile";
            }
        }
    }
}

TEST(gemm, avx2_tiles_match_vec_dot) {
    if (quants_simd_detected() != simd_level::avx2) GTEST_SKIP() << "no AVX2 on this CPU";
    check_gemm_matches_vec_dot(false);
}

TEST(gemm, vnni_tiles_match_vec_dot) {
    if (!quants_vnni_detected()) GTEST_SKIP() << "no AVX512-VNNI on this CPU or build";
    check_gemm_matches_vec_dot(true);
}

TEST(gemm, none_without_simd_or_for_other_types) {
    restore_simd restore;
    quants_set_simd(simd_level::scalar);
    EXPECT_EQ(quants_get_gemm(tensor_type::q8_0), nullptr);
    quants_set_simd(quants_simd_detected());
    EXPECT_EQ(quants_get_gemm(tensor_type::q4_k), nullptr);
}

}  // namespace
