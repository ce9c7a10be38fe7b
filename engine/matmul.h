// Weight-times-activations products, called by every thread of an OpenMP parallel region
// (they use orphaned `omp for` loops, so the caller opens the region once per forward pass).
#pragma once

#include "model.h"

#include <cstdint>

namespace hearth {

// One output of a fused matmul: y (n_tokens, ldy) gets x (n_tokens, n_in) times w^T.
struct matmul_out {
    const weight* w;
    float* y;
    int64_t ldy;
};

// Bytes of scratch matmul_run needs for n_tokens rows of n_in inputs, whatever the weights' types.
size_t matmul_scratch_bytes(int64_t n_tokens, int64_t n_in);

// Computes every output in outs from the same input x (n_tokens, n_in): the activations are
// converted once per dot type (two types at most, for mixed-type files), then all the weights'
// rows are shared out among the threads. Must be called by all threads of the enclosing region.
void matmul_run(const matmul_out* outs, int n_outs, const float* x, int64_t n_tokens, int64_t n_in, uint8_t* scratch);

}  // namespace hearth
