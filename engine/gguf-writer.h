// GGUF v3 writer: metadata and tensors in insertion order, each tensor's data padded to the
// alignment (general.alignment, default 32), as llama.cpp's and gguf-py's writers lay files out.
// Used by tests, fuzz seeds and tools; not on any inference path.
#pragma once

#include "gguf.h"
#include "tensor-type.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

class gguf_writer {
public:
    // Scalars. A key may be set once; setting it again throws gguf_error.
    void set_u8(const std::string& key, uint8_t v);
    void set_i8(const std::string& key, int8_t v);
    void set_u16(const std::string& key, uint16_t v);
    void set_i16(const std::string& key, int16_t v);
    // set_u32("general.alignment", n) also sets the alignment (n must be a power of two).
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_i64(const std::string& key, int64_t v);
    void set_f32(const std::string& key, float v);
    void set_f64(const std::string& key, double v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, std::string_view v);

    // Arrays.
    void set_string_array(const std::string& key, const std::vector<std::string>& v);
    void set_f32_array(const std::string& key, const std::vector<float>& v);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
    // Any fixed-size element type: `count` elements, little-endian, packed at `data`.
    void set_array(const std::string& key, gguf_value_type elem, const void* data, size_t count);

    // Same as set_u32("general.alignment", n).
    void set_alignment(uint32_t n) { set_u32("general.alignment", n); }
    uint32_t alignment() const { return alignment_; }

    // Copies `nbytes` from `data` (the writer owns its copy, so the caller's buffer may go away).
    // ne[0] is the contiguous dimension; 1 to 4 dimensions. Throws gguf_error when the name is empty,
    // over 63 bytes (llama.cpp's limit) or already used, the shape is invalid, or nbytes does not
    // match the type and shape.
    void add_tensor(const std::string& name, tensor_type type, std::vector<int64_t> ne, const void* data,
                    size_t nbytes);

    std::vector<uint8_t> to_bytes() const;
    // Writes the file; throws gguf_error when it cannot.
    void write(const std::string& path) const;

private:
    struct entry {
        std::string key;
        gguf_value_type type;
        std::vector<uint8_t> value;  // the encoded value, as it follows the type in the file
    };
    struct tensor {
        std::string name;
        tensor_type type;
        std::vector<int64_t> ne;
        std::vector<uint8_t> data;
        uint64_t offset;  // within the data section
    };

    void add_entry(const std::string& key, gguf_value_type type, std::vector<uint8_t> value);
    template <typename Sink>
    void emit(Sink& sink) const;

    std::vector<entry> entries_;
    std::vector<tensor> tensors_;
    uint32_t alignment_ = 32;
};

}  // namespace hearth
