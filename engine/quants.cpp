// Scalar reference kernels for the non-K types, half-float conversion, and the run-time choice
// between these and the AVX2 kernels. Block layouts and scale choices follow ggml bit for bit,
// so GGUF files written by llama.cpp read back as llama.cpp reads them.
#include "quants-impl.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#if defined(HEARTH_HAVE_AVX2)
#include <cpuid.h>
#endif

namespace hearth {

// ---- half floats --------------------------------------------------------------------------

namespace {

inline uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

inline float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        // Zero or subnormal: mant * 2^-24 is exact in float.
        const float v = static_cast<float>(mant) * 0x1p-24f;
        return bits_float(sign | float_bits(v));
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));  // inf, NaN keeps payload
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t u = float_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // quiet NaN
    // 65520 is the tie between 65504 (odd mantissa) and 65536, so it and above round to inf.
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
    if (a >= 0x38800000u) {  // normal half
        uint32_t h = (a - (112u << 23)) >> 13;
        const uint32_t rem = a & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
        return static_cast<uint16_t>(sign | h);
    }
    // Subnormal half (or zero): the result counts units of 2^-24.
    const uint32_t e = a >> 23;
    if (e < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself is a tie to even zero)
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // q == 0x400 is the smallest normal: right
    return static_cast<uint16_t>(sign | q);
}

float bf16_to_fp32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
    const uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

namespace detail {

namespace {

constexpr int qk = 32;  // block size of every non-K quant type

inline float h2f(uint16_t h) { return fp16_to_fp32(h); }

inline uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;  // little-endian hosts only, as GGUF files are
}

inline void store_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }

// Value of largest magnitude in a block, with its sign (the 4/5-bit symmetric quantisers map it
// to the code -8 / -16 exactly, so the full code range is used on the far side).
inline float signed_absmax(const float* x, float* amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < qk; ++j) {
        const float a = std::fabs(x[j]);
        if (a > amax) {
            amax = a;
            max = x[j];
        }
    }
    *amax_out = amax;
    return max;
}

inline void min_max(const float* x, float* mn, float* mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < qk; ++j) {
        lo = std::min(lo, x[j]);
        hi = std::max(hi, x[j]);
    }
    *mn = lo;
    *mx = hi;
}

}  // namespace

// ---- dequantize ---------------------------------------------------------------------------

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < qk / 2; ++j) {
            dst[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
            dst[j + qk / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < qk / 2; ++j) {
            dst[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
            dst[j + qk / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d);
        const uint32_t qh = load_u32(b[i].qh);  // bit j is the 5th bit of element j
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = static_cast<float>(lo - 16) * d;
            dst[j + qk / 2] = static_cast<float>(hi - 16) * d;
        }
    }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        const uint32_t qh = load_u32(b[i].qh);
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            dst[j] = static_cast<float>(lo) * d + m;
            dst[j + qk / 2] = static_cast<float>(hi) * d + m;
        }
    }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < qk; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
    const auto* b = static_cast<const block_q8_1*>(src);
    for (int64_t i = 0; i < n / qk; ++i, dst += qk) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < qk; ++j) dst[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

// ---- quantize -----------------------------------------------------------------------------

void quantize_row_f16(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

// The 4/5-bit quantisers round as ggml's do: truncation after adding an offset of +0.5 (the
// values are non-negative there), so ties go up.
void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q4_0*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float amax;
        const float max = signed_absmax(src, &amax);
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = std::min(15, static_cast<int>(src[j] * id + 8.5f));
            const int hi = std::min(15, static_cast<int>(src[j + qk / 2] * id + 8.5f));
            y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q4_1*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float mn, mx;
        min_max(src, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(mn);
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = std::min(15, static_cast<int>((src[j] - mn) * id + 0.5f));
            const int hi = std::min(15, static_cast<int>((src[j + qk / 2] - mn) * id + 0.5f));
            y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

// Stores the 5-bit codes of elements j and j + 16 of a Q5_0/Q5_1 block: low four bits as the
// nibbles of qs[j], fifth bits as bits j and j + 16 of qh.
namespace {
void q5_pack(uint8_t* qs, uint32_t& qh, int j, int lo, int hi) {
    qs[j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
    qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + qk / 2);
}
}  // namespace

void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q5_0*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float amax;
        const float max = signed_absmax(src, &amax);
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            q5_pack(y[i].qs, qh, j, std::min(31, static_cast<int>(src[j] * id + 16.5f)),
                    std::min(31, static_cast<int>(src[j + qk / 2] * id + 16.5f)));
        }
        store_u32(y[i].qh, qh);
    }
}

void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q5_1*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float mn, mx;
        min_max(src, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(mn);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            q5_pack(y[i].qs, qh, j, std::min(31, static_cast<int>((src[j] - mn) * id + 0.5f)),
                    std::min(31, static_cast<int>((src[j + qk / 2] - mn) * id + 0.5f)));
        }
        store_u32(y[i].qh, qh);
    }
}

// Q8 rounds to nearest even (nearbyint in the default mode), the same operation the AVX2
// quantiser's cvtps2dq does, so both paths give identical blocks; ggml's roundf differs only
// at exact ties.
void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float amax = 0.0f;
        for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyint(src[j] * id));
    }
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, src += qk) {
        float amax = 0.0f;
        for (int j = 0; j < qk; ++j) amax = std::max(amax, std::fabs(src[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < qk; ++j) {
            const int q = static_cast<int>(std::nearbyint(src[j] * id));
            y[i].qs[j] = static_cast<int8_t>(q);
            sum += q;
        }
        y[i].d = fp32_to_fp16(d);
        y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
}

// ---- dot products -------------------------------------------------------------------------
// The float products are summed in double: this is the reference the SIMD kernels are checked
// against, not a hot path.

void vec_dot_f32_f32(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const float*>(w);
    const auto* b = static_cast<const float*>(x);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
    *s = static_cast<float>(sum);
}

void vec_dot_f16_f32(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const uint16_t*>(w);
    const auto* b = static_cast<const float*>(x);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(a[i])) * b[i];
    *s = static_cast<float>(sum);
}

void vec_dot_bf16_f32(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const uint16_t*>(w);
    const auto* b = static_cast<const float*>(x);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(a[i])) * b[i];
    *s = static_cast<float>(sum);
}

void vec_dot_q4_0_q8_0(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const block_q4_0*>(w);
    const auto* b = static_cast<const block_q8_0*>(x);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk; ++i) {
        int sumi = 0;
        for (int j = 0; j < qk / 2; ++j) {
            sumi += ((a[i].qs[j] & 0x0f) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + qk / 2];
        }
        sum += static_cast<float>(sumi) * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

void vec_dot_q4_1_q8_1(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const block_q4_1*>(w);
    const auto* b = static_cast<const block_q8_1*>(x);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk; ++i) {
        int sumi = 0;
        for (int j = 0; j < qk / 2; ++j) {
            sumi += (a[i].qs[j] & 0x0f) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + qk / 2];
        }
        // sum(q*d + m) * y = d * sum(q*y) + m * sum(y), and the q8_1 block carries sum(y).
        sum += static_cast<float>(sumi) * (h2f(a[i].d) * h2f(b[i].d)) + h2f(a[i].m) * h2f(b[i].s);
    }
    *s = sum;
}

void vec_dot_q5_0_q8_0(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const block_q5_0*>(w);
    const auto* b = static_cast<const block_q8_0*>(x);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk; ++i) {
        const uint32_t qh = load_u32(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = (a[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (a[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            sumi += (lo - 16) * b[i].qs[j] + (hi - 16) * b[i].qs[j + qk / 2];
        }
        sum += static_cast<float>(sumi) * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

void vec_dot_q5_1_q8_1(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const block_q5_1*>(w);
    const auto* b = static_cast<const block_q8_1*>(x);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk; ++i) {
        const uint32_t qh = load_u32(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const int lo = (a[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
            const int hi = (a[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + qk / 2];
        }
        sum += static_cast<float>(sumi) * (h2f(a[i].d) * h2f(b[i].d)) + h2f(a[i].m) * h2f(b[i].s);
    }
    *s = sum;
}

void vec_dot_q8_0_q8_0(int64_t n, float* s, const void* w, const void* x) {
    const auto* a = static_cast<const block_q8_0*>(w);
    const auto* b = static_cast<const block_q8_0*>(x);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk; ++i) {
        int sumi = 0;
        for (int j = 0; j < qk; ++j) sumi += a[i].qs[j] * b[i].qs[j];
        sum += static_cast<float>(sumi) * (h2f(a[i].d) * h2f(b[i].d));
    }
    *s = sum;
}

}  // namespace detail

// ---- dispatch -----------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_unsupported(const char* what, tensor_type t) {
    const std::string_view name = tensor_type_get_info(t).name;
    throw std::invalid_argument(std::string(what) + ": unsupported tensor type " +
                                (name.empty() ? "id " + std::to_string(static_cast<uint32_t>(t)) : std::string(name)));
}

void copy_row_f32(const float* src, void* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

// -1 until first use, then a simd_level: read on every kernel fetch, so an atomic.
std::atomic<int> g_simd{-1};
// -1 until first use, then 0/1: whether the AVX-VNNI tiled products are in force.
std::atomic<int> g_vnni{-1};

bool vnni_detect() {
#if defined(HEARTH_HAVE_VNNI)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
#else
    return false;
#endif
}

simd_level simd_detect() {
#if defined(HEARTH_HAVE_AVX2)
    __builtin_cpu_init();
    // clang 14 knows no "f16c" feature name, so that bit comes from cpuid leaf 1 directly
    // (the OS support for YMM state is already part of the "avx2" answer).
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return simd_level::avx2;
#endif
    return simd_level::scalar;
}

simd_level simd_now() {
    int v = g_simd.load(std::memory_order_relaxed);
    if (v < 0) {
        simd_level level = quants_simd_detected();
        const char* env = std::getenv("HEARTH_SIMD");
        if (env && std::string_view(env) == "scalar") level = simd_level::scalar;
        v = static_cast<int>(level);
        g_simd.store(v, std::memory_order_relaxed);
    }
    return static_cast<simd_level>(v);
}

}  // namespace

simd_level quants_simd_detected() {
    static const simd_level detected = simd_detect();
    return detected;
}

simd_level quants_simd() { return simd_now(); }

void quants_set_simd(simd_level level) {
    if (level == simd_level::avx2 && quants_simd_detected() != simd_level::avx2) level = simd_level::scalar;
    g_simd.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool quants_vnni_detected() {
    static const bool detected = vnni_detect() && quants_simd_detected() == simd_level::avx2;
    return detected;
}

bool quants_vnni() {
    int v = g_vnni.load(std::memory_order_relaxed);
    if (v < 0) {
        const char* env = std::getenv("HEARTH_SIMD");
        v = quants_vnni_detected() && !(env && (std::string_view(env) == "avx2" || std::string_view(env) == "scalar")) ? 1 : 0;
        g_vnni.store(v, std::memory_order_relaxed);
    }
    return v == 1 && simd_now() == simd_level::avx2;
}

void quants_set_vnni(bool on) { g_vnni.store(on && quants_vnni_detected() ? 1 : 0, std::memory_order_relaxed); }

const char* quants_kernels_name() {
    if (quants_vnni()) return "avx2+avx512vnni";
    return simd_level_name(quants_simd());
}

gemm_fn quants_get_gemm(tensor_type w_type) {
#if defined(HEARTH_HAVE_AVX2)
    if (w_type == tensor_type::q8_0 && simd_now() == simd_level::avx2) {
#if defined(HEARTH_HAVE_VNNI)
        if (quants_vnni()) return detail::gemm_q8_0_q8_0_vnni;
#endif
        return detail::gemm_q8_0_q8_0_avx2;
    }
#endif
    (void)w_type;
    return nullptr;
}

const char* simd_level_name(simd_level level) {
    switch (level) {
        case simd_level::scalar: return "scalar";
        case simd_level::avx2: return "avx2";
    }
    return "unknown";
}

void dequantize_row(tensor_type type, const void* src, float* dst, int64_t n) {
    using namespace detail;
    switch (type) {
        case tensor_type::f32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
        case tensor_type::f16: dequantize_row_f16(src, dst, n); return;
        case tensor_type::bf16: dequantize_row_bf16(src, dst, n); return;
        case tensor_type::q4_0: dequantize_row_q4_0(src, dst, n); return;
        case tensor_type::q4_1: dequantize_row_q4_1(src, dst, n); return;
        case tensor_type::q5_0: dequantize_row_q5_0(src, dst, n); return;
        case tensor_type::q5_1: dequantize_row_q5_1(src, dst, n); return;
        case tensor_type::q8_0: dequantize_row_q8_0(src, dst, n); return;
        case tensor_type::q8_1: dequantize_row_q8_1(src, dst, n); return;
        case tensor_type::q4_k: dequantize_row_q4_k(src, dst, n); return;
        case tensor_type::q5_k: dequantize_row_q5_k(src, dst, n); return;
        case tensor_type::q6_k: dequantize_row_q6_k(src, dst, n); return;
        case tensor_type::q8_k: dequantize_row_q8_k(src, dst, n); return;
        default: throw_unsupported("dequantize_row", type);
    }
}

namespace {

from_float_fn scalar_from_float(tensor_type type) {
    using namespace detail;
    switch (type) {
        case tensor_type::f32: return copy_row_f32;
        case tensor_type::f16: return quantize_row_f16;
        case tensor_type::bf16: return quantize_row_bf16;
        case tensor_type::q4_0: return quantize_row_q4_0;
        case tensor_type::q4_1: return quantize_row_q4_1;
        case tensor_type::q5_0: return quantize_row_q5_0;
        case tensor_type::q5_1: return quantize_row_q5_1;
        case tensor_type::q8_0: return quantize_row_q8_0;
        case tensor_type::q8_1: return quantize_row_q8_1;
        case tensor_type::q4_k: return quantize_row_q4_k;
        case tensor_type::q5_k: return quantize_row_q5_k;
        case tensor_type::q6_k: return quantize_row_q6_k;
        case tensor_type::q8_k: return quantize_row_q8_k;
        default: return nullptr;
    }
}

vec_dot_fn scalar_vec_dot(tensor_type w) {
    using namespace detail;
    switch (w) {
        case tensor_type::f32: return vec_dot_f32_f32;
        case tensor_type::f16: return vec_dot_f16_f32;
        case tensor_type::bf16: return vec_dot_bf16_f32;
        case tensor_type::q4_0: return vec_dot_q4_0_q8_0;
        case tensor_type::q4_1: return vec_dot_q4_1_q8_1;
        case tensor_type::q5_0: return vec_dot_q5_0_q8_0;
        case tensor_type::q5_1: return vec_dot_q5_1_q8_1;
        case tensor_type::q8_0: return vec_dot_q8_0_q8_0;
        case tensor_type::q4_k: return vec_dot_q4_k_q8_k;
        case tensor_type::q5_k: return vec_dot_q5_k_q8_k;
        case tensor_type::q6_k: return vec_dot_q6_k_q8_k;
        default: return nullptr;
    }
}

#if defined(HEARTH_HAVE_AVX2)
from_float_fn avx2_from_float(tensor_type type) {
    using namespace detail;
    switch (type) {
        case tensor_type::q8_0: return quantize_row_q8_0_avx2;
        case tensor_type::q8_1: return quantize_row_q8_1_avx2;
        case tensor_type::q8_k: return quantize_row_q8_k_avx2;
        default: return scalar_from_float(type);
    }
}

vec_dot_fn avx2_vec_dot(tensor_type w) {
    using namespace detail;
    switch (w) {
        case tensor_type::f32: return vec_dot_f32_f32_avx2;
        case tensor_type::f16: return vec_dot_f16_f32_avx2;
        case tensor_type::bf16: return vec_dot_bf16_f32_avx2;
        case tensor_type::q4_0: return vec_dot_q4_0_q8_0_avx2;
        case tensor_type::q4_1: return vec_dot_q4_1_q8_1_avx2;
        case tensor_type::q5_0: return vec_dot_q5_0_q8_0_avx2;
        case tensor_type::q5_1: return vec_dot_q5_1_q8_1_avx2;
        case tensor_type::q8_0: return vec_dot_q8_0_q8_0_avx2;
        case tensor_type::q4_k: return vec_dot_q4_k_q8_k_avx2;
        case tensor_type::q5_k: return vec_dot_q5_k_q8_k_avx2;
        case tensor_type::q6_k: return vec_dot_q6_k_q8_k_avx2;
        default: return nullptr;
    }
}
#endif

}  // namespace

void quantize_row(tensor_type type, const float* src, void* dst, int64_t n) {
    const from_float_fn fn = scalar_from_float(type);
    if (!fn) throw_unsupported("quantize_row", type);
    fn(src, dst, n);
}

tensor_type quants_vec_dot_type(tensor_type w) {
    switch (w) {
        case tensor_type::f32:
        case tensor_type::f16:
        case tensor_type::bf16: return tensor_type::f32;
        case tensor_type::q4_0:
        case tensor_type::q5_0:
        case tensor_type::q8_0: return tensor_type::q8_0;
        case tensor_type::q4_1:
        case tensor_type::q5_1: return tensor_type::q8_1;
        case tensor_type::q4_k:
        case tensor_type::q5_k:
        case tensor_type::q6_k: return tensor_type::q8_k;
        default: throw_unsupported("quants_vec_dot_type", w);
    }
}

from_float_fn quants_get_from_float(tensor_type vec_dot_type) {
    from_float_fn fn = nullptr;
#if defined(HEARTH_HAVE_AVX2)
    if (simd_now() == simd_level::avx2) fn = avx2_from_float(vec_dot_type);
#endif
    if (!fn) fn = scalar_from_float(vec_dot_type);
    if (!fn) throw_unsupported("quants_get_from_float", vec_dot_type);
    return fn;
}

vec_dot_fn quants_get_vec_dot(tensor_type w_type) {
    vec_dot_fn fn = nullptr;
#if defined(HEARTH_HAVE_AVX2)
    if (simd_now() == simd_level::avx2) fn = avx2_vec_dot(w_type);
#endif
    if (!fn) fn = scalar_vec_dot(w_type);
    if (!fn) throw_unsupported("quants_get_vec_dot", w_type);
    return fn;
}

void quants_from_float(tensor_type vec_dot_type, const float* src, void* dst, int64_t n) {
    quants_get_from_float(vec_dot_type)(src, dst, n);
}

void quants_vec_dot(tensor_type w_type, int64_t n, float* s, const void* w, const void* x) {
    quants_get_vec_dot(w_type)(n, s, w, x);
}

}  // namespace hearth
