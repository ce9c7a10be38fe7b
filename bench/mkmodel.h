// Writes random-weight GGUF files with the exact shape of a real model, for benchmarks and tests:
// the weights are noise, but every byte the engine reads (and every metadata key llama.cpp needs)
// is laid out as in a real download, so speed measured on them is the speed of the real thing.
#pragma once

#include "tensor-type.h"

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::bench {

// The quantisation recipe, named as llama-quantize names its outputs.
enum class model_ftype { f32, f16, q8_0, q4_0, q4_k_m };

struct model_shape {
    std::string name;        // written as general.name
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t n_ff = 0;
    float rope_freq_base = 10000.0f;
    float rms_eps = 1e-5f;
};

// "smollm2-135m" or "tiny"; throws std::invalid_argument for another name.
model_shape shape_by_name(const std::string& name);
// "q8_0" ... ; throws std::invalid_argument for another name.
model_ftype ftype_by_name(const std::string& name);
const char* ftype_name(model_ftype f);

// The type llama-quantize would give a tensor of this file (name as in GGUF, e.g. "blk.3.ffn_down.weight"),
// including its fallback when K-quants do not fit the row length.
tensor_type tensor_type_for(model_ftype ftype, const model_shape& shape, const std::string& name, int64_t row_len);

struct mkmodel_report {
    uint64_t file_bytes = 0;
    std::vector<std::pair<std::string, int>> type_counts;  // "Q5_0" -> tensors
};

// Builds and writes the file (throws std::runtime_error / gguf_error on failure). Deterministic in
// (shape, ftype, seed) whatever the thread count.
mkmodel_report write_model(const std::string& path, const model_shape& shape, model_ftype ftype, uint64_t seed);

}  // namespace hearth::bench
