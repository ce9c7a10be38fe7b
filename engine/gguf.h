// GGUF v2/v3 reader over a read-only mmap. Every count, offset, size, alignment and type is checked
// against the file before it is used, so a truncated or hostile file gives a gguf_error naming the
// problem, never a crash or a read out of bounds.
#pragma once

#include "tensor-type.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

class gguf_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Metadata value types as GGUF numbers them.
enum class gguf_value_type : uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};

std::string_view gguf_value_type_name(gguf_value_type t);
// Bytes of one value of a fixed-size type; 0 for string, array and unknown ids.
size_t gguf_value_type_size(gguf_value_type t);

// One metadata key/value. Strings point into the mapping; numeric arrays are left in place
// (GGUF does not align them) and copied out by the typed getters of gguf_file.
struct gguf_kv {
    std::string_view key;
    gguf_value_type type = gguf_value_type::uint8;
    // Scalars, widened: integers in i64/u64 (both set when the value fits), floats in f64.
    int64_t i64 = 0;
    uint64_t u64 = 0;
    double f64 = 0.0;
    bool boolean = false;
    std::string_view str;
    // Arrays: element type, count, and the raw bytes of the elements (strings: see strings).
    gguf_value_type array_type = gguf_value_type::uint8;
    uint64_t array_count = 0;
    const uint8_t* array_data = nullptr;
    std::vector<std::string_view> strings;  // array of strings, in order
};

struct gguf_tensor {
    std::string_view name;
    std::vector<int64_t> ne;  // dimensions, ne[0] is the contiguous one (row length)
    tensor_type type = tensor_type::f32;
    uint64_t offset = 0;           // from the start of the data section, as in the file
    const uint8_t* data = nullptr;  // into the mapping, already bounds-checked
    uint64_t nbytes = 0;

    int64_t n_elements() const;
    int64_t n_rows() const { return ne.empty() || ne[0] == 0 ? 0 : n_elements() / ne[0]; }
};

class gguf_file {
public:
    // Maps and validates a file. Throws gguf_error ("<path>: <what is wrong>").
    static std::unique_ptr<gguf_file> open(const std::string& path);
    // Validates a buffer the caller keeps alive (fuzzing, tests). Throws gguf_error.
    static std::unique_ptr<gguf_file> from_memory(const uint8_t* data, size_t size, std::string label = "<memory>");

    ~gguf_file();
    gguf_file(const gguf_file&) = delete;
    gguf_file& operator=(const gguf_file&) = delete;

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    size_t file_size() const { return size_; }
    uint64_t data_offset() const { return data_offset_; }  // where the tensor data section starts

    const std::vector<gguf_kv>& metadata() const { return kvs_; }
    const gguf_kv* find(std::string_view key) const;

    // Typed getters: nullopt when the key is absent; gguf_error naming the key when it has an
    // incompatible type or an out-of-range value.
    std::optional<std::string_view> get_string(std::string_view key) const;
    std::optional<uint64_t> get_uint(std::string_view key) const;  // any non-negative integer type
    std::optional<int64_t> get_int(std::string_view key) const;    // any integer type that fits
    std::optional<double> get_float(std::string_view key) const;   // float32/float64 (or integer)
    std::optional<bool> get_bool(std::string_view key) const;
    std::optional<std::vector<std::string_view>> get_string_array(std::string_view key) const;
    std::optional<std::vector<float>> get_f32_array(std::string_view key) const;
    std::optional<std::vector<int32_t>> get_i32_array(std::string_view key) const;  // any int type that fits

    const std::vector<gguf_tensor>& tensors() const { return tensors_; }
    const gguf_tensor* find_tensor(std::string_view name) const;

private:
    gguf_file() = default;
    void parse();
    [[noreturn]] void fail(const std::string& what) const;

    std::string path_;
    const uint8_t* base_ = nullptr;  // start of the mapping or buffer
    size_t size_ = 0;                // bytes in it
    void* mapping_ = nullptr;        // non-null when we own an mmap
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<gguf_kv> kvs_;
    std::vector<gguf_tensor> tensors_;
};

}  // namespace hearth
