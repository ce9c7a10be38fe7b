// libFuzzer target for the GGUF reader: any input must either parse or throw gguf_error, and a
// file that parses must be safe to use, so every pointer it hands out is touched here (ASan then
// catches a bounds check the reader missed).
#include "gguf.h"

#include <cstdint>
#include <cstring>
#include <memory>

namespace {

size_t element_size(hearth::gguf_value_type t) {
    using vt = hearth::gguf_value_type;
    switch (t) {
        case vt::uint8:
        case vt::int8:
        case vt::boolean: return 1;
        case vt::uint16:
        case vt::int16: return 2;
        case vt::uint32:
        case vt::int32:
        case vt::float32: return 4;
        case vt::uint64:
        case vt::int64:
        case vt::float64: return 8;
        default: return 0;
    }
}

volatile uint8_t g_sink;

void touch(const void* p, size_t n) {
    if (n == 0) return;
    const auto* b = static_cast<const uint8_t*>(p);
    g_sink = static_cast<uint8_t>(g_sink ^ b[0] ^ b[n - 1]);
}

template <typename F>
void try_get(F&& f) {
    try {
        (void)f();
    } catch (const hearth::gguf_error&) {
        // A type mismatch is a clean, expected outcome.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::unique_ptr<hearth::gguf_file> f;
    try {
        f = hearth::gguf_file::from_memory(data, size, "fuzz.gguf");
    } catch (const hearth::gguf_error&) {
        return 0;
    }

    for (const auto& t : f->tensors()) {
        touch(t.data, t.nbytes);
        touch(t.name.data(), t.name.size());
        if (t.n_elements() < 0 || t.n_rows() < 0) __builtin_trap();
        if (f->find_tensor(t.name) != &t) __builtin_trap();  // names are unique
        if (t.data + t.nbytes > data + size) __builtin_trap();
    }
    for (const auto& kv : f->metadata()) {
        touch(kv.key.data(), kv.key.size());
        touch(kv.str.data(), kv.str.size());
        for (auto s : kv.strings) touch(s.data(), s.size());
        if (kv.type == hearth::gguf_value_type::array && kv.array_type != hearth::gguf_value_type::string) {
            touch(kv.array_data, static_cast<size_t>(kv.array_count) * element_size(kv.array_type));
        }
        if (f->find(kv.key) != &kv) __builtin_trap();  // keys are unique
        try_get([&] { return f->get_string(kv.key); });
        try_get([&] { return f->get_uint(kv.key); });
        try_get([&] { return f->get_int(kv.key); });
        try_get([&] { return f->get_float(kv.key); });
        try_get([&] { return f->get_bool(kv.key); });
        try_get([&] { return f->get_string_array(kv.key); });
        try_get([&] { return f->get_f32_array(kv.key); });
        try_get([&] { return f->get_i32_array(kv.key); });
    }
    if (f->alignment() == 0 || (f->alignment() & (f->alignment() - 1)) != 0) __builtin_trap();
    return 0;
}
