// Quantised block layouts (bit for bit those of GGUF/ggml), conversion to and from F32, and the
// dot products the matmuls are made of. Scalar reference code lives in quants.cpp and
// quants-k.cpp; AVX2/FMA versions in quants-avx2.cpp, chosen at run time (quants_set_simd).
#pragma once

#include "tensor-type.h"

#include <cstddef>
#include <cstdint>

namespace hearth {

// ---- block layouts ------------------------------------------------------------------------
// F16 scale fields are raw IEEE half bits (uint16_t).
constexpr int qk4_0 = 32;
constexpr int qk_k = 256;  // super-block of the K-quants
constexpr int k_scale_size = 12;

struct block_q4_0 { uint16_t d; uint8_t qs[qk4_0 / 2]; };
struct block_q4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
struct block_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct block_q5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[16]; };
struct block_q8_0 { uint16_t d; int8_t qs[32]; };
struct block_q8_1 { uint16_t d; uint16_t s; int8_t qs[32]; };  // s = d * sum(qs)
struct block_q4_k { uint16_t d; uint16_t dmin; uint8_t scales[k_scale_size]; uint8_t qs[qk_k / 2]; };
struct block_q5_k { uint16_t d; uint16_t dmin; uint8_t scales[k_scale_size]; uint8_t qh[qk_k / 8]; uint8_t qs[qk_k / 2]; };
struct block_q6_k { uint8_t ql[qk_k / 2]; uint8_t qh[qk_k / 4]; int8_t scales[qk_k / 16]; uint16_t d; };
struct block_q8_k { float d; int8_t qs[qk_k]; int16_t bsums[qk_k / 16]; };  // activations only

static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q5_0) == 22);
static_assert(sizeof(block_q5_1) == 24 && sizeof(block_q8_0) == 34 && sizeof(block_q8_1) == 36);
static_assert(sizeof(block_q4_k) == 144 && sizeof(block_q5_k) == 176 && sizeof(block_q6_k) == 210);
static_assert(sizeof(block_q8_k) == 292);

// ---- half floats --------------------------------------------------------------------------
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);   // round to nearest even
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);   // round to nearest even, NaN kept quiet

// ---- conversion ---------------------------------------------------------------------------
// n must be a multiple of the type's block size. Defined for every computable type and for
// q8_1/q8_k (the activation types).
void dequantize_row(tensor_type type, const void* src, float* dst, int64_t n);
// Reference quantisers (round to nearest, ggml's scale choices) for every computable type and
// q8_1/q8_k; used for activations, by tests, and by the tool that writes benchmark models.
void quantize_row(tensor_type type, const float* src, void* dst, int64_t n);

// ---- dot products -------------------------------------------------------------------------
// The type activations are converted to before a dot with weights of type w:
// q8_0 for q4_0/q5_0/q8_0, q8_1 for q4_1/q5_1, q8_k for q4_k/q5_k/q6_k, f32 for f32/f16/bf16.
tensor_type quants_vec_dot_type(tensor_type w);

// Converts one activation row of n floats to quants_vec_dot_type(w) (the SIMD path when enabled).
void quants_from_float(tensor_type vec_dot_type, const float* src, void* dst, int64_t n);

// *s = dot(w, x) over n elements: w a row of weights of type w_type, x a row already in
// quants_vec_dot_type(w_type).
void quants_vec_dot(tensor_type w_type, int64_t n, float* s, const void* w, const void* x);

using vec_dot_fn = void (*)(int64_t n, float* s, const void* w, const void* x);
using from_float_fn = void (*)(const float* src, void* dst, int64_t n);
// The kernel now in force for a weight type (hot loops fetch it once, not per row).
vec_dot_fn quants_get_vec_dot(tensor_type w_type);
from_float_fn quants_get_from_float(tensor_type vec_dot_type);

// Batched product for prompts: s[t * lds + r] = dot(w row r, x row t) for r < nr, t < nt, rows of
// n elements, w rows w_stride bytes apart, x rows (in quants_vec_dot_type) x_stride apart.
// Register-tiled so each block is loaded once per tile. nullptr when the type has none at the
// level in force; callers then use the vec_dot kernel per (row, token).
using gemm_fn = void (*)(int64_t n, const void* w, size_t w_stride, int64_t nr, const void* x, size_t x_stride, int64_t nt,
                         float* s, int64_t lds);
gemm_fn quants_get_gemm(tensor_type w_type);

// ---- SIMD selection -----------------------------------------------------------------------
enum class simd_level { scalar, avx2 };
simd_level quants_simd_detected();        // best the CPU and the build support
simd_level quants_simd();                 // in force now
void quants_set_simd(simd_level level);   // clamps to what is detected; tests compare levels
const char* simd_level_name(simd_level level);
// AVX512-VNNI (vpdpbusd on 256-bit registers) for the tiled products, on top of AVX2;
// HEARTH_SIMD=avx2 turns it off.
bool quants_vnni_detected();
bool quants_vnni();                       // in force now (and AVX2 in force)
void quants_set_vnni(bool on);            // clamps to what is detected
// The kernels in force, for reports: "scalar", "avx2" or "avx2+avx512vnni".
const char* quants_kernels_name();

}  // namespace hearth
