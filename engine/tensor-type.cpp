#include "tensor-type.h"

#include <array>

namespace hearth {

namespace {

constexpr size_t max_type_id = 40;

constexpr std::array<tensor_type_info, max_type_id> make_table() {
    std::array<tensor_type_info, max_type_id> t{};
    auto set = [&t](tensor_type type, std::string_view name, int64_t block, size_t bytes, bool computable) {
        t[static_cast<size_t>(type)] = tensor_type_info{name, block, bytes, computable};
    };
    // Geometry of every type ggml defines, so the reader can validate sizes even of types the
    // engine cannot compute with (it then refuses them by name at model load).
    set(tensor_type::f32, "F32", 1, 4, true);
    set(tensor_type::f16, "F16", 1, 2, true);
    set(tensor_type::q4_0, "Q4_0", 32, 18, true);
    set(tensor_type::q4_1, "Q4_1", 32, 20, true);
    set(tensor_type::q5_0, "Q5_0", 32, 22, true);
    set(tensor_type::q5_1, "Q5_1", 32, 24, true);
    set(tensor_type::q8_0, "Q8_0", 32, 34, true);
    set(tensor_type::q8_1, "Q8_1", 32, 36, false);
    set(tensor_type::q2_k, "Q2_K", 256, 84, false);
    set(tensor_type::q3_k, "Q3_K", 256, 110, false);
    set(tensor_type::q4_k, "Q4_K", 256, 144, true);
    set(tensor_type::q5_k, "Q5_K", 256, 176, true);
    set(tensor_type::q6_k, "Q6_K", 256, 210, true);
    set(tensor_type::q8_k, "Q8_K", 256, 292, false);
    set(tensor_type::iq2_xxs, "IQ2_XXS", 256, 66, false);
    set(tensor_type::iq2_xs, "IQ2_XS", 256, 74, false);
    set(tensor_type::iq3_xxs, "IQ3_XXS", 256, 98, false);
    set(tensor_type::iq1_s, "IQ1_S", 256, 50, false);
    set(tensor_type::iq4_nl, "IQ4_NL", 32, 18, false);
    set(tensor_type::iq3_s, "IQ3_S", 256, 110, false);
    set(tensor_type::iq2_s, "IQ2_S", 256, 82, false);
    set(tensor_type::iq4_xs, "IQ4_XS", 256, 136, false);
    set(tensor_type::i8, "I8", 1, 1, false);
    set(tensor_type::i16, "I16", 1, 2, false);
    set(tensor_type::i32, "I32", 1, 4, false);
    set(tensor_type::i64, "I64", 1, 8, false);
    set(tensor_type::f64, "F64", 1, 8, false);
    set(tensor_type::iq1_m, "IQ1_M", 256, 56, false);
    set(tensor_type::bf16, "BF16", 1, 2, true);
    set(tensor_type::tq1_0, "TQ1_0", 256, 54, false);
    set(tensor_type::tq2_0, "TQ2_0", 256, 66, false);
    return t;
}

constexpr std::array<tensor_type_info, max_type_id> type_table = make_table();
constexpr tensor_type_info unknown_type{};

}  // namespace

const tensor_type_info& tensor_type_get_info(uint32_t id) {
    return id < max_type_id ? type_table[id] : unknown_type;
}

}  // namespace hearth
