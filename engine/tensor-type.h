// Tensor element types as GGUF numbers them (ggml's type ids), with their block geometry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hearth {

// The numeric values are the on-disk ids; never renumber.
enum class tensor_type : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    // 4 and 5 were Q4_2/Q4_3, removed from ggml; ids stay reserved.
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    iq2_xxs = 16,
    iq2_xs = 17,
    iq3_xxs = 18,
    iq1_s = 19,
    iq4_nl = 20,
    iq3_s = 21,
    iq2_s = 22,
    iq4_xs = 23,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    iq1_m = 29,
    bf16 = 30,
    // 31-33 were Q4_0_4_4 etc., removed; 34/35 TQ1_0/TQ2_0.
    tq1_0 = 34,
    tq2_0 = 35,
};

struct tensor_type_info {
    std::string_view name;  // "Q4_K", as llama.cpp prints it; empty for an unknown id
    int64_t block_size;     // elements per block; 0 for an unknown id
    size_t block_bytes;     // bytes per block
    bool computable;        // the engine can dequantise it and take dot products with it
};

// Geometry of a type id read from a file; unknown ids give block_size 0.
const tensor_type_info& tensor_type_get_info(uint32_t id);
inline const tensor_type_info& tensor_type_get_info(tensor_type t) {
    return tensor_type_get_info(static_cast<uint32_t>(t));
}

// Bytes taken by a row of n elements; n must be a multiple of the block size.
inline size_t tensor_type_row_bytes(tensor_type t, int64_t n) {
    const tensor_type_info& info = tensor_type_get_info(t);
    return static_cast<size_t>(n / info.block_size) * info.block_bytes;
}

}  // namespace hearth
