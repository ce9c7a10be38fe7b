// K-quants (Q4_K, Q5_K, Q6_K weights; Q8_K activations): scalar reference code. The block layouts
// are ggml's, bit for bit; the quantisers choose their scales with a small search of their own and
// need not reproduce ggml's bytes, only valid blocks with a small error.
#include "quants-impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hearth::detail {

namespace {

// Round half to even through the float mantissa: exact for |v| < 2^22, defined (no UB) for any
// input, including NaN, which a float-to-int cast is not. Matches _mm256_round_ps(nearest).
inline int round_nearest(float v) {
    v = std::min(std::max(v, -4194303.0f), 4194303.0f);
    const float t = v + 12582912.0f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
    int32_t i = 0;
    std::memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

// The 12 scale bytes of Q4_K/Q5_K hold eight 6-bit scales and eight 6-bit mins: sub-blocks 0..3
// use the low 6 bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 keep their low 4 bits
// in the nibbles of bytes 8..11 and their top 2 bits in the spare top bits of bytes 0..7.
inline void scale_min_unpack(const uint8_t* q, int j, int& sc, int& m) {
    if (j < 4) {
        sc = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void scale_min_pack(uint8_t* q, const uint8_t* sc, const uint8_t* m) {
    std::memset(q, 0, k_scale_size);
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            q[j] = sc[j];
            q[j + 4] = m[j];
        } else {
            q[j + 4] = static_cast<uint8_t>((sc[j] & 0x0F) | ((m[j] & 0x0F) << 4));
            q[j - 4] = static_cast<uint8_t>(q[j - 4] | ((sc[j] >> 4) << 6));
            q[j] = static_cast<uint8_t>(q[j] | ((m[j] >> 4) << 6));
        }
    }
}

// Fits x ~ a*L - b over one sub-block, L in [0, nmax], a >= 0, b >= 0 (the format subtracts a
// non-negative min). Tries a few grid spacings around the naive (max-min)/nmax and keeps the one
// whose least-squares refit leaves the smallest squared error.
void fit_scale_min(const float* x, int n, int nmax, float& scale, float& min) {
    float lo = x[0];
    float hi = x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    lo = std::min(lo, 0.0f);  // a positive offset cannot be expressed
    scale = 0.0f;
    min = -lo;
    if (!(hi > lo)) {
        return;
    }
    float best_err = INFINITY;
    for (int step = -8; step <= 8; ++step) {
        const float iscale = (static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / (hi - lo);
        float sl = 0.0f, sl2 = 0.0f, sx = 0.0f, sxl = 0.0f;
        int l_buf[32];
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(round_nearest(iscale * (x[i] - lo)), 0, nmax);
            l_buf[i] = l;
            const float fl = static_cast<float>(l);
            sl += fl;
            sl2 += fl * fl;
            sx += x[i];
            sxl += x[i] * fl;
        }
        const float fn = static_cast<float>(n);
        const float det = fn * sl2 - sl * sl;
        float a = 0.0f, b = 0.0f;  // x ~ a*l + b
        if (det > 0.0f) {
            a = (fn * sxl - sl * sx) / det;
            b = (sl2 * sx - sl * sxl) / det;
        }
        if (b > 0.0f || det <= 0.0f) {
            b = 0.0f;
            a = sl2 > 0.0f ? sxl / sl2 : 0.0f;
        }
        a = std::max(a, 0.0f);
        float err = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float e = a * static_cast<float>(l_buf[i]) + b - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            scale = a;
            min = -b;
        }
    }
}

// Fits x ~ a*L over 16 values, L in [-32, 31]; the sign of a is free, so the value of largest
// magnitude can take the extra negative level.
float fit_scale_signed(const float* x, int n) {
    float amax = 0.0f, vmax = 0.0f;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            vmax = x[i];
        }
    }
    if (amax == 0.0f) {
        return 0.0f;
    }
    float best_err = INFINITY, best = 0.0f;
    for (int step = -8; step <= 8; ++step) {
        const float iscale = -(32.0f + 0.1f * static_cast<float>(step)) / vmax;
        float sxl = 0.0f, sl2 = 0.0f;
        int l_buf[16];
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(round_nearest(iscale * x[i]), -32, 31);
            l_buf[i] = l;
            sxl += x[i] * static_cast<float>(l);
            sl2 += static_cast<float>(l * l);
        }
        if (sl2 <= 0.0f) {
            continue;
        }
        const float a = sxl / sl2;
        float err = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float e = a * static_cast<float>(l_buf[i]) - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best = a;
        }
    }
    return best;
}

// Shared by Q4_K and Q5_K: picks d, dmin and the packed 6-bit scales/mins of one super-block and
// writes the final levels (0..nmax) to levels.
void quantize_super_block_k(const float* x, int nmax, uint16_t& d_out, uint16_t& dmin_out,
                            uint8_t* scales_out, uint8_t* levels) {
    float scales[8], mins[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; ++j) {
        fit_scale_min(x + 32 * j, 32, nmax, scales[j], mins[j]);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    d_out = fp32_to_fp16(max_scale / 63.0f);
    dmin_out = fp32_to_fp16(max_min / 63.0f);
    // Quantise the sub-scales against the half-rounded super scales actually stored.
    const float d = fp16_to_fp32(d_out);
    const float dmin = fp16_to_fp32(dmin_out);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = static_cast<uint8_t>(d > 0.0f ? std::clamp(round_nearest(scales[j] / d), 0, 63) : 0);
        lm[j] = static_cast<uint8_t>(dmin > 0.0f ? std::clamp(round_nearest(mins[j] / dmin), 0, 63) : 0);
    }
    scale_min_pack(scales_out, ls, lm);
    for (int j = 0; j < 8; ++j) {
        const float dj = d * static_cast<float>(ls[j]);
        const float mj = dmin * static_cast<float>(lm[j]);
        for (int i = 0; i < 32; ++i) {
            const int l = dj > 0.0f ? round_nearest((x[32 * j + i] + mj) / dj) : 0;
            levels[32 * j + i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
        }
    }
}

}  // namespace

// ---- dequantisation ------------------------------------------------------------------------

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q4_k*>(src);
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const block_q4_k& blk = blocks[b];
        const float d = fp16_to_fp32(blk.d);
        const float dmin = fp16_to_fp32(blk.dmin);
        const uint8_t* q = blk.qs;
        // Each 32 bytes of qs hold two sub-blocks: low nibbles the first, high nibbles the second.
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc0, m0, sc1, m1;
            scale_min_unpack(blk.scales, j, sc0, m0);
            scale_min_unpack(blk.scales, j + 1, sc1, m1);
            const float d0 = d * static_cast<float>(sc0), o0 = dmin * static_cast<float>(m0);
            const float d1 = d * static_cast<float>(sc1), o1 = dmin * static_cast<float>(m1);
            for (int l = 0; l < 32; ++l) {
                *dst++ = d0 * static_cast<float>(q[l] & 0x0F) - o0;
            }
            for (int l = 0; l < 32; ++l) {
                *dst++ = d1 * static_cast<float>(q[l] >> 4) - o1;
            }
        }
    }
}

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q5_k*>(src);
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const block_q5_k& blk = blocks[b];
        const float d = fp16_to_fp32(blk.d);
        const float dmin = fp16_to_fp32(blk.dmin);
        const uint8_t* q = blk.qs;
        // Sub-block j takes its fifth bit from bit j of qh[l].
        for (int j = 0; j < 8; j += 2, q += 32) {
            int sc0, m0, sc1, m1;
            scale_min_unpack(blk.scales, j, sc0, m0);
            scale_min_unpack(blk.scales, j + 1, sc1, m1);
            const float d0 = d * static_cast<float>(sc0), o0 = dmin * static_cast<float>(m0);
            const float d1 = d * static_cast<float>(sc1), o1 = dmin * static_cast<float>(m1);
            for (int l = 0; l < 32; ++l) {
                const int v = (q[l] & 0x0F) | (((blk.qh[l] >> j) & 1) << 4);
                *dst++ = d0 * static_cast<float>(v) - o0;
            }
            for (int l = 0; l < 32; ++l) {
                const int v = (q[l] >> 4) | (((blk.qh[l] >> (j + 1)) & 1) << 4);
                *dst++ = d1 * static_cast<float>(v) - o1;
            }
        }
    }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q6_k*>(src);
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const block_q6_k& blk = blocks[b];
        const float d = fp16_to_fp32(blk.d);
        // Each half (128 values) uses 64 bytes of ql and 32 of qh: value l + 32*k takes the low or
        // high nibble of ql[l] / ql[l + 32] and bits 2k..2k+1 of qh[l].
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = blk.ql + 64 * h;
            const uint8_t* qh = blk.qh + 32 * h;
            const int8_t* sc = blk.scales + 8 * h;
            float* y = dst + 128 * h;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q0 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q1 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * static_cast<float>(sc[is + 0] * q0);
                y[l + 32] = d * static_cast<float>(sc[is + 2] * q1);
                y[l + 64] = d * static_cast<float>(sc[is + 4] * q2);
                y[l + 96] = d * static_cast<float>(sc[is + 6] * q3);
            }
        }
        dst += qk_k;
    }
}

void dequantize_row_q8_k(const void* src, float* dst, int64_t n) {
    const auto* blocks = static_cast<const block_q8_k*>(src);
    for (int64_t b = 0; b < n / qk_k; ++b) {
        for (int i = 0; i < qk_k; ++i) {
            *dst++ = blocks[b].d * static_cast<float>(blocks[b].qs[i]);
        }
    }
}

// ---- quantisation --------------------------------------------------------------------------

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q4_k*>(dst);
    for (int64_t b = 0; b < n / qk_k; ++b, src += qk_k) {
        block_q4_k& blk = blocks[b];
        uint8_t levels[qk_k];
        quantize_super_block_k(src, 15, blk.d, blk.dmin, blk.scales, levels);
        for (int j = 0; j < 4; ++j) {
            for (int l = 0; l < 32; ++l) {
                blk.qs[32 * j + l] = static_cast<uint8_t>(levels[64 * j + l] | (levels[64 * j + 32 + l] << 4));
            }
        }
    }
}

void quantize_row_q5_k(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q5_k*>(dst);
    for (int64_t b = 0; b < n / qk_k; ++b, src += qk_k) {
        block_q5_k& blk = blocks[b];
        uint8_t levels[qk_k];
        quantize_super_block_k(src, 31, blk.d, blk.dmin, blk.scales, levels);
        std::memset(blk.qh, 0, sizeof blk.qh);
        for (int j = 0; j < 4; ++j) {
            for (int l = 0; l < 32; ++l) {
                const int lo = levels[64 * j + l];
                const int hi = levels[64 * j + 32 + l];
                blk.qs[32 * j + l] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
                blk.qh[l] = static_cast<uint8_t>(blk.qh[l] | ((lo >> 4) << (2 * j)) | ((hi >> 4) << (2 * j + 1)));
            }
        }
    }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q6_k*>(dst);
    for (int64_t b = 0; b < n / qk_k; ++b, src += qk_k) {
        block_q6_k& blk = blocks[b];
        std::memset(&blk, 0, sizeof blk);
        float scales[16];
        float max_scale = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < 16; ++j) {
            scales[j] = fit_scale_signed(src + 16 * j, 16);
            if (std::fabs(scales[j]) > max_abs) {
                max_abs = std::fabs(scales[j]);
                max_scale = scales[j];
            }
        }
        uint8_t levels[qk_k];
        std::fill(levels, levels + qk_k, uint8_t{32});  // level 32 is the value 0
        if (max_abs > 0.0f) {
            // The largest sub-scale maps to -128, so the int8 scales use their full range.
            blk.d = fp32_to_fp16(max_scale / -128.0f);
            const float d = fp16_to_fp32(blk.d);
            for (int j = 0; j < 16; ++j) {
                const int sc = d != 0.0f ? std::clamp(round_nearest(scales[j] / d), -128, 127) : 0;
                blk.scales[j] = static_cast<int8_t>(sc);
                const float dj = d * static_cast<float>(sc);
                if (dj == 0.0f) {
                    continue;
                }
                for (int i = 0; i < 16; ++i) {
                    levels[16 * j + i] = static_cast<uint8_t>(std::clamp(round_nearest(src[16 * j + i] / dj), -32, 31) + 32);
                }
            }
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* lv = levels + 128 * h;
            uint8_t* ql = blk.ql + 64 * h;
            uint8_t* qh = blk.qh + 32 * h;
            for (int l = 0; l < 32; ++l) {
                ql[l] = static_cast<uint8_t>((lv[l] & 0x0F) | ((lv[l + 64] & 0x0F) << 4));
                ql[l + 32] = static_cast<uint8_t>((lv[l + 32] & 0x0F) | ((lv[l + 96] & 0x0F) << 4));
                qh[l] = static_cast<uint8_t>((lv[l] >> 4) | ((lv[l + 32] >> 4) << 2) | ((lv[l + 64] >> 4) << 4) |
                                             ((lv[l + 96] >> 4) << 6));
            }
        }
    }
}

// As ggml's reference: the value of largest magnitude (the first, on a tie) maps to -127.
void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
    auto* blocks = static_cast<block_q8_k*>(dst);
    for (int64_t b = 0; b < n / qk_k; ++b, src += qk_k) {
        block_q8_k& blk = blocks[b];
        float amax = 0.0f, vmax = 0.0f;
        for (int i = 0; i < qk_k; ++i) {
            if (std::fabs(src[i]) > amax) {
                amax = std::fabs(src[i]);
                vmax = src[i];
            }
        }
        if (amax == 0.0f) {
            std::memset(&blk, 0, sizeof blk);
            continue;
        }
        const float iscale = -127.0f / vmax;
        for (int i = 0; i < qk_k; ++i) {
            blk.qs[i] = static_cast<int8_t>(std::min(127, round_nearest(iscale * src[i])));
        }
        for (int g = 0; g < qk_k / 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) {
                sum += blk.qs[16 * g + i];
            }
            blk.bsums[g] = static_cast<int16_t>(sum);
        }
        blk.d = 1.0f / iscale;
    }
}

// ---- dot products --------------------------------------------------------------------------
// Integer sums per super-block, exact; the mins are applied once per block through the bsums.

void vec_dot_q4_k_q8_k(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q4_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const int8_t* y = xb[b].qs;
        int32_t sum_q = 0, sum_m = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            scale_min_unpack(wb[b].scales, j, sc, m);
            const uint8_t* q = wb[b].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            int32_t dot = 0;
            for (int l = 0; l < 32; ++l) {
                dot += ((q[l] >> shift) & 0x0F) * y[32 * j + l];
            }
            sum_q += sc * dot;
            sum_m += m * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
        }
        acc += xb[b].d * (fp16_to_fp32(wb[b].d) * static_cast<float>(sum_q) -
                          fp16_to_fp32(wb[b].dmin) * static_cast<float>(sum_m));
    }
    *s = acc;
}

void vec_dot_q5_k_q8_k(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q5_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const int8_t* y = xb[b].qs;
        int32_t sum_q = 0, sum_m = 0;
        for (int j = 0; j < 8; ++j) {
            int sc, m;
            scale_min_unpack(wb[b].scales, j, sc, m);
            const uint8_t* q = wb[b].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            int32_t dot = 0;
            for (int l = 0; l < 32; ++l) {
                const int v = ((q[l] >> shift) & 0x0F) | (((wb[b].qh[l] >> j) & 1) << 4);
                dot += v * y[32 * j + l];
            }
            sum_q += sc * dot;
            sum_m += m * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
        }
        acc += xb[b].d * (fp16_to_fp32(wb[b].d) * static_cast<float>(sum_q) -
                          fp16_to_fp32(wb[b].dmin) * static_cast<float>(sum_m));
    }
    *s = acc;
}

void vec_dot_q6_k_q8_k(int64_t n, float* s, const void* w, const void* x) {
    const auto* wb = static_cast<const block_q6_k*>(w);
    const auto* xb = static_cast<const block_q8_k*>(x);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / qk_k; ++b) {
        const block_q6_k& blk = wb[b];
        int32_t sum_q = 0;
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = blk.ql + 64 * h;
            const uint8_t* qh = blk.qh + 32 * h;
            const int8_t* y = xb[b].qs + 128 * h;
            // Quarter k covers values 32k..32k+31 of this half: sub-blocks 2k and 2k+1.
            for (int k = 0; k < 4; ++k) {
                const uint8_t* lo = ql + 32 * (k % 2);
                const int shift = 4 * (k / 2);
                for (int half = 0; half < 2; ++half) {
                    int32_t dot = 0;
                    for (int l = 16 * half; l < 16 * half + 16; ++l) {
                        const int v = (((lo[l] >> shift) & 0x0F) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
                        dot += v * y[32 * k + l];
                    }
                    sum_q += blk.scales[8 * h + 2 * k + half] * dot;
                }
            }
        }
        acc += xb[b].d * fp16_to_fp32(blk.d) * static_cast<float>(sum_q);
    }
    *s = acc;
}

}  // namespace hearth::detail
