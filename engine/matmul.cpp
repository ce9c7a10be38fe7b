#include "matmul.h"

#include "quants.h"

#include <algorithm>
#include <cassert>

namespace hearth {

namespace {

// Rows per work item: enough to amortise the scheduling, few enough to balance two threads on
// the smallest matrices (k/v of a 576-wide model: 192 rows).
constexpr int64_t rows_per_item = 16;
// Activation formats one fused call may need: F32 (read in place), Q8_0, Q8_1 and Q8_K. Files
// may mix them freely across q/k/v (per-tensor type overrides), so room for every one.
constexpr int max_dot_types = 4;
constexpr int max_outs = 8;

}  // namespace

size_t matmul_scratch_bytes(int64_t n_tokens, int64_t n_in) {
    // F32 is read in place; the three quantised formats take at most 292 bytes per 256 elements
    // (Q8_K; Q8_0 34/32, Q8_1 36/32), each row rounded up to whole blocks.
    const size_t row = (static_cast<size_t>(n_in) + 255) / 256 * 292;
    return 3 * static_cast<size_t>(n_tokens) * row + 64;
}

void matmul_run(const matmul_out* outs, int n_outs, const float* x, int64_t n_tokens, int64_t n_in, uint8_t* scratch) {
    // Which converted copy of x each output reads (deterministic: same on every thread).
    assert(n_outs >= 1 && n_outs <= max_outs);
    tensor_type types[max_dot_types];
    const uint8_t* xq[max_dot_types];
    size_t xq_row[max_dot_types];
    int n_types = 0;
    int type_of[max_outs];
    uint8_t* next = scratch;
    for (int o = 0; o < n_outs; ++o) {
        const tensor_type t = quants_vec_dot_type(outs[o].w->type);
        int k = 0;
        while (k < n_types && types[k] != t) ++k;
        if (k == n_types) {
            types[k] = t;
            xq_row[k] = tensor_type_row_bytes(t, n_in);
            if (t == tensor_type::f32) {
                xq[k] = reinterpret_cast<const uint8_t*>(x);  // read the input in place
            } else {
                xq[k] = next;
                next += xq_row[k] * static_cast<size_t>(n_tokens);
            }
            ++n_types;
        }
        type_of[o] = k;
    }

    for (int k = 0; k < n_types; ++k) {
        if (types[k] == tensor_type::f32) continue;
        const from_float_fn convert = quants_get_from_float(types[k]);
        uint8_t* dst = const_cast<uint8_t*>(xq[k]);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < n_tokens; ++t) convert(x + t * n_in, dst + static_cast<size_t>(t) * xq_row[k], n_in);
    }

    int64_t items_of[max_outs];
    vec_dot_fn dot_of[max_outs];
    gemm_fn gemm_of[max_outs];
    int64_t n_items = 0;
    for (int o = 0; o < n_outs; ++o) {
        dot_of[o] = quants_get_vec_dot(outs[o].w->type);
        gemm_of[o] = n_tokens > 1 ? quants_get_gemm(outs[o].w->type) : nullptr;
        items_of[o] = (outs[o].w->n_out + rows_per_item - 1) / rows_per_item;
        n_items += items_of[o];
    }

#pragma omp for schedule(static)
    for (int64_t item = 0; item < n_items; ++item) {
        int o = 0;
        int64_t local = item;
        while (local >= items_of[o]) local -= items_of[o++];
        const weight& w = *outs[o].w;
        const vec_dot_fn dot = dot_of[o];
        const uint8_t* xrows = xq[type_of[o]];
        const size_t xstride = xq_row[type_of[o]];
        const int64_t r0 = local * rows_per_item;
        const int64_t r1 = std::min(r0 + rows_per_item, w.n_out);
        if (gemm_of[o]) {
            // Prompt tokens: one register-tiled pass over these rows for every token.
            gemm_of[o](n_in, w.row(r0), w.row_bytes, r1 - r0, xrows, xstride, n_tokens, outs[o].y + r0, outs[o].ldy);
            continue;
        }
        for (int64_t t = 0; t < n_tokens; ++t) {
            const uint8_t* xt = xrows + static_cast<size_t>(t) * xstride;
            float* yt = outs[o].y + t * outs[o].ldy;
            for (int64_t r = r0; r < r1; ++r) dot(n_in, yt + r, w.row(r), xt);
        }
    }
}

}  // namespace hearth
