#include "ops.h"

#include "quants.h"

#include <algorithm>
#include <cmath>

namespace hearth {

namespace {
#if HEARTH_HAVE_AVX2
bool use_avx2() { return quants_simd() == simd_level::avx2; }
#endif
}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope_angles(float* cos_sin, int32_t head_dim, int32_t pos, float freq_base, float freq_scale) {
    for (int32_t i = 0; i < head_dim / 2; ++i) {
        const double theta = static_cast<double>(pos) * freq_scale * std::pow(static_cast<double>(freq_base), -2.0 * i / head_dim);
        cos_sin[2 * i] = static_cast<float>(std::cos(theta));
        cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta));
    }
}

void rope_apply(float* v, int32_t n_heads, int32_t head_dim, const float* cos_sin, bool neox) {
    const int32_t half = head_dim / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        float* x = v + static_cast<int64_t>(h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const int32_t a = neox ? i : 2 * i;
            const int32_t b = neox ? i + half : 2 * i + 1;
            const float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

float dot_f32(const float* a, const float* b, int64_t n) {
#if HEARTH_HAVE_AVX2
    if (use_avx2()) return detail::dot_f32_avx2(a, b, n);
#endif
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
    return sum;
}

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
#if HEARTH_HAVE_AVX2
    if (use_avx2()) return detail::dot_f16_f32_avx2(a, b, n);
#endif
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(a[i]) * b[i];
    return sum;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
#if HEARTH_HAVE_AVX2
    if (use_avx2()) return detail::axpy_f32_avx2(a, x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
#if HEARTH_HAVE_AVX2
    if (use_avx2()) return detail::axpy_f16_avx2(a, x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
#if HEARTH_HAVE_AVX2
    if (use_avx2()) return detail::f32_to_f16_row_avx2(x, y, n);
#endif
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void softmax(float* x, int64_t n) {
    const float max = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

}  // namespace hearth
