// Per-type kernels behind quants.h, shared between quants.cpp (scalar reference, dispatch),
// quants-k.cpp (K-quants, scalar), and the *-avx2.cpp files (compiled with -mavx2 -mfma -mf16c,
// called only when the CPU has them). Not part of the engine's interface.
#pragma once

#include "quants.h"

namespace hearth::detail {

// ---- scalar reference (any CPU) ----------------------------------------------------------
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q8_1(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k(const void* src, float* dst, int64_t n);
void dequantize_row_q5_k(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k(const void* src, float* dst, int64_t n);
void dequantize_row_q8_k(const void* src, float* dst, int64_t n);

void quantize_row_f16(const float* src, void* dst, int64_t n);
void quantize_row_bf16(const float* src, void* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_1(const float* src, void* dst, int64_t n);
void quantize_row_q5_0(const float* src, void* dst, int64_t n);
void quantize_row_q5_1(const float* src, void* dst, int64_t n);
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q8_1(const float* src, void* dst, int64_t n);
void quantize_row_q4_k(const float* src, void* dst, int64_t n);
void quantize_row_q5_k(const float* src, void* dst, int64_t n);
void quantize_row_q6_k(const float* src, void* dst, int64_t n);
void quantize_row_q8_k(const float* src, void* dst, int64_t n);

void vec_dot_f32_f32(int64_t n, float* s, const void* w, const void* x);
void vec_dot_f16_f32(int64_t n, float* s, const void* w, const void* x);
void vec_dot_bf16_f32(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_k_q8_k(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_k_q8_k(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q6_k_q8_k(int64_t n, float* s, const void* w, const void* x);

// ---- AVX2/FMA/F16C (defined only when HEARTH_HAVE_AVX2) ------------------------------------
void quantize_row_q8_0_avx2(const float* src, void* dst, int64_t n);
void quantize_row_q8_1_avx2(const float* src, void* dst, int64_t n);
void quantize_row_q8_k_avx2(const float* src, void* dst, int64_t n);

void vec_dot_f32_f32_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_f16_f32_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_bf16_f32_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_1_q8_1_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_1_q8_1_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q8_0_q8_0_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q4_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q5_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x);
void vec_dot_q6_k_q8_k_avx2(int64_t n, float* s, const void* w, const void* x);

// ---- tiled batch products (gemm-avx2.cpp, gemm-vnni.cpp) -------------------------------------
void gemm_q8_0_q8_0_avx2(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s,
                         int64_t lds);
void gemm_q8_0_q8_0_vnni(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt, float* s,
                         int64_t lds);

}  // namespace hearth::detail
