// Micro-benchmark of the vec_dot kernels: GB/s of weight bytes for a matrix-vector product of a
// 576-wide (or 1536-wide) matrix, small enough to stay in cache (compute bound) and large enough
// not to (memory bound). If the in-cache figure is not well above the machine's read bandwidth,
// decode cannot reach the bandwidth roofline whatever the threading.
#include "quants.h"
#include "tensor-type.h"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using hearth::tensor_type;

void bm_vec_dot(benchmark::State& state, tensor_type type, bool simd) {
    const int64_t n_in = state.range(0);
    const int64_t n_rows = state.range(1);
    hearth::quants_set_simd(simd ? hearth::quants_simd_detected() : hearth::simd_level::scalar);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(n_in));
    const size_t row_bytes = hearth::tensor_type_row_bytes(type, n_in);
    std::vector<uint8_t> w(row_bytes * static_cast<size_t>(n_rows));
    for (int64_t r = 0; r < n_rows; ++r) {
        for (auto& x : row) x = dist(rng);
        hearth::quantize_row(type, row.data(), w.data() + static_cast<size_t>(r) * row_bytes, n_in);
    }
    const tensor_type xt = hearth::quants_vec_dot_type(type);
    for (auto& x : row) x = dist(rng) * 50.0f;
    std::vector<uint8_t> xq(hearth::tensor_type_row_bytes(xt, n_in) + 64);
    hearth::quants_from_float(xt, row.data(), xq.data(), n_in);
    std::vector<float> y(static_cast<size_t>(n_rows));
    const hearth::vec_dot_fn dot = hearth::quants_get_vec_dot(type);
    for (auto _ : state) {
        for (int64_t r = 0; r < n_rows; ++r) dot(n_in, &y[static_cast<size_t>(r)], w.data() + static_cast<size_t>(r) * row_bytes, xq.data());
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
    hearth::quants_set_simd(hearth::quants_simd_detected());
}

// (n_in, n_rows): 576x64 and 1536x64 stay in L1/L2; 576x49152 (the tied output matrix) does not.
void shapes(benchmark::internal::Benchmark* b) {
    b->Args({576, 64})->Args({1536, 64})->Args({576, 49152});
}

#define HEARTH_BM(name, type)                                                                               \
    BENCHMARK_CAPTURE(bm_vec_dot, name##_simd, tensor_type::type, true)->Apply(shapes);                     \
    BENCHMARK_CAPTURE(bm_vec_dot, name##_scalar, tensor_type::type, false)->Args({576, 64})

HEARTH_BM(q8_0, q8_0);
HEARTH_BM(q4_0, q4_0);
HEARTH_BM(q5_0, q5_0);
HEARTH_BM(f16, f16);
BENCHMARK_CAPTURE(bm_vec_dot, q4_k_simd, tensor_type::q4_k, true)->Args({1536, 64})->Args({1536, 8192});
BENCHMARK_CAPTURE(bm_vec_dot, q6_k_simd, tensor_type::q6_k, true)->Args({1536, 64})->Args({1536, 8192});

}  // namespace

BENCHMARK_MAIN();
