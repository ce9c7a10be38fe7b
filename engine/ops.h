// Small vector operations of the forward pass (norms, RoPE, attention helpers), with AVX2/F16C
// versions in ops-avx2.cpp chosen by quants_simd().
#pragma once

#include <cstdint>

namespace hearth {

// y = x / sqrt(mean(x^2) + eps) * w, over n elements.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);

// Rotates n_heads vectors of head_dim in place by the angles in cos_sin (head_dim/2 pairs of
// cos, sin). neox pairs element i with i + head_dim/2; otherwise 2i with 2i+1.
void rope_apply(float* v, int32_t n_heads, int32_t head_dim, const float* cos_sin, bool neox);
// cos_sin (head_dim/2 * 2) for a position: angle_i = pos * scale * base^(-2i/head_dim).
void rope_angles(float* cos_sin, int32_t head_dim, int32_t pos, float freq_base, float freq_scale);

float dot_f32(const float* a, const float* b, int64_t n);
float dot_f16_f32(const uint16_t* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);   // y += a * x
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);  // y += a * x
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);
// In place: x = exp(x - max) / sum, over n elements.
void softmax(float* x, int64_t n);
// gate = silu(gate) * up, over n elements.
void swiglu(float* gate, const float* up, int64_t n);

namespace detail {
float dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n);
float dot_f32_avx2(const float* a, const float* b, int64_t n);
void axpy_f32_avx2(float a, const float* x, float* y, int64_t n);
void axpy_f16_avx2(float a, const uint16_t* x, float* y, int64_t n);
void f32_to_f16_row_avx2(const float* x, uint16_t* y, int64_t n);
}  // namespace detail

}  // namespace hearth
