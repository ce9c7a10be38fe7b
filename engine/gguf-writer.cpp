#include "gguf-writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace hearth {

namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));  // GGUF is little-endian, like every host this builds for
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> encode(T v) {
    std::vector<uint8_t> out;
    put(out, v);
    return out;
}

size_t element_size(gguf_value_type t) { return gguf_value_type_size(t); }

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Appends to a byte vector.
struct vector_sink {
    std::vector<uint8_t>& out;
    void write(const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); }
};

// Writes to a FILE, remembering the first failure.
struct file_sink {
    std::FILE* f;
    bool ok = true;
    void write(const uint8_t* p, size_t n) {
        if (ok && n && std::fwrite(p, 1, n, f) != n) ok = false;
    }
};

}  // namespace

void gguf_writer::add_entry(const std::string& key, gguf_value_type type, std::vector<uint8_t> value) {
    if (key.empty()) throw gguf_error("gguf_writer: empty key");
    for (const auto& e : entries_) {
        if (e.key == key) throw gguf_error("gguf_writer: key '" + key + "' is already set");
    }
    entries_.push_back({key, type, std::move(value)});
}

void gguf_writer::set_u8(const std::string& key, uint8_t v) { add_entry(key, gguf_value_type::uint8, encode(v)); }
void gguf_writer::set_i8(const std::string& key, int8_t v) { add_entry(key, gguf_value_type::int8, encode(v)); }
void gguf_writer::set_u16(const std::string& key, uint16_t v) { add_entry(key, gguf_value_type::uint16, encode(v)); }
void gguf_writer::set_i16(const std::string& key, int16_t v) { add_entry(key, gguf_value_type::int16, encode(v)); }
void gguf_writer::set_i32(const std::string& key, int32_t v) { add_entry(key, gguf_value_type::int32, encode(v)); }
void gguf_writer::set_u64(const std::string& key, uint64_t v) { add_entry(key, gguf_value_type::uint64, encode(v)); }
void gguf_writer::set_i64(const std::string& key, int64_t v) { add_entry(key, gguf_value_type::int64, encode(v)); }
void gguf_writer::set_f32(const std::string& key, float v) { add_entry(key, gguf_value_type::float32, encode(v)); }
void gguf_writer::set_f64(const std::string& key, double v) { add_entry(key, gguf_value_type::float64, encode(v)); }

void gguf_writer::set_u32(const std::string& key, uint32_t v) {
    if (key == "general.alignment") {
        if (v == 0 || (v & (v - 1)) != 0) {
            throw gguf_error("gguf_writer: alignment " + std::to_string(v) + " is not a non-zero power of two");
        }
        if (!tensors_.empty()) throw gguf_error("gguf_writer: set the alignment before adding tensors");
    }
    add_entry(key, gguf_value_type::uint32, encode(v));
    if (key == "general.alignment") alignment_ = v;
}

void gguf_writer::set_bool(const std::string& key, bool v) {
    add_entry(key, gguf_value_type::boolean, encode<uint8_t>(v ? 1 : 0));
}

void gguf_writer::set_string(const std::string& key, std::string_view v) {
    std::vector<uint8_t> out;
    put_string(out, v);
    add_entry(key, gguf_value_type::string, std::move(out));
}

void gguf_writer::set_string_array(const std::string& key, const std::vector<std::string>& v) {
    std::vector<uint8_t> out;
    put<uint32_t>(out, static_cast<uint32_t>(gguf_value_type::string));
    put<uint64_t>(out, v.size());
    for (const auto& s : v) put_string(out, s);
    add_entry(key, gguf_value_type::array, std::move(out));
}

void gguf_writer::set_f32_array(const std::string& key, const std::vector<float>& v) {
    set_array(key, gguf_value_type::float32, v.data(), v.size());
}

void gguf_writer::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    set_array(key, gguf_value_type::int32, v.data(), v.size());
}

void gguf_writer::set_array(const std::string& key, gguf_value_type elem, const void* data, size_t count) {
    const size_t esize = element_size(elem);
    if (esize == 0) {
        throw gguf_error("gguf_writer: set_array takes fixed-size element types, not " +
                         std::string(gguf_value_type_name(elem)));
    }
    std::vector<uint8_t> out;
    put<uint32_t>(out, static_cast<uint32_t>(elem));
    put<uint64_t>(out, count);
    const auto* p = static_cast<const uint8_t*>(data);
    if (count) out.insert(out.end(), p, p + count * esize);
    add_entry(key, gguf_value_type::array, std::move(out));
}

void gguf_writer::add_tensor(const std::string& name, tensor_type type, std::vector<int64_t> ne, const void* data,
                             size_t nbytes) {
    const std::string who = "gguf_writer: tensor '" + name + "'";
    if (name.empty()) throw gguf_error("gguf_writer: empty tensor name");
    // llama.cpp refuses names of GGML_MAX_NAME (64) bytes or more; stay loadable there.
    if (name.size() >= 64) throw gguf_error(who + ": name is longer than 63 bytes");
    for (const auto& t : tensors_) {
        if (t.name == name) throw gguf_error(who + " is already added");
    }
    if (ne.empty() || ne.size() > 4) throw gguf_error(who + ": expected 1 to 4 dimensions, got " + std::to_string(ne.size()));
    const tensor_type_info& info = tensor_type_get_info(type);
    if (info.block_size == 0) throw gguf_error(who + ": unknown tensor type");
    for (int64_t d : ne) {
        if (d < 0) throw gguf_error(who + ": negative dimension");
    }
    if (ne[0] % info.block_size != 0) {
        throw gguf_error(who + ": row length " + std::to_string(ne[0]) + " is not a multiple of the block size " +
                         std::to_string(info.block_size));
    }
    uint64_t expected = static_cast<uint64_t>(ne[0] / info.block_size);
    bool overflow = __builtin_mul_overflow(expected, static_cast<uint64_t>(info.block_bytes), &expected);
    for (size_t d = 1; d < ne.size() && !overflow; ++d) {
        overflow = __builtin_mul_overflow(expected, static_cast<uint64_t>(ne[d]), &expected);
    }
    if (overflow) throw gguf_error(who + ": size overflows");
    if (expected != nbytes) {
        throw gguf_error(who + ": data is " + std::to_string(nbytes) + " bytes, expected " + std::to_string(expected) +
                         " for its type and shape");
    }
    uint64_t offset = 0;
    if (!tensors_.empty()) {
        const tensor& last = tensors_.back();
        offset = align_up(last.offset + last.data.size(), alignment_);
    }
    const auto* p = static_cast<const uint8_t*>(data);
    tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(p, p + nbytes), offset});
}

template <typename Sink>
void gguf_writer::emit(Sink& sink) const {
    std::vector<uint8_t> head;
    put<uint32_t>(head, 0x46554747);  // "GGUF"
    put<uint32_t>(head, 3);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, entries_.size());
    for (const auto& e : entries_) {
        put_string(head, e.key);
        put<uint32_t>(head, static_cast<uint32_t>(e.type));
        head.insert(head.end(), e.value.begin(), e.value.end());
    }
    for (const auto& t : tensors_) {
        put_string(head, t.name);
        put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
        for (int64_t d : t.ne) put<uint64_t>(head, static_cast<uint64_t>(d));
        put<uint32_t>(head, static_cast<uint32_t>(t.type));
        put<uint64_t>(head, t.offset);
    }
    head.resize(align_up(head.size(), alignment_), 0);
    sink.write(head.data(), head.size());

    const std::vector<uint8_t> zeros(alignment_, 0);
    uint64_t pos = 0;
    for (const auto& t : tensors_) {
        sink.write(zeros.data(), t.offset - pos);
        sink.write(t.data.data(), t.data.size());
        pos = t.offset + t.data.size();
    }
    // Pad the last tensor too, as llama.cpp does, so files concatenate cleanly.
    sink.write(zeros.data(), align_up(pos, alignment_) - pos);
}

std::vector<uint8_t> gguf_writer::to_bytes() const {
    std::vector<uint8_t> out;
    vector_sink sink{out};
    emit(sink);
    return out;
}

void gguf_writer::write(const std::string& path) const {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) throw gguf_error(path + ": cannot open for writing: " + std::strerror(errno));
    file_sink sink{f.get()};
    emit(sink);
    if (!sink.ok || std::fflush(f.get()) != 0) throw gguf_error(path + ": write failed: " + std::strerror(errno));
    if (std::fclose(f.release()) != 0) throw gguf_error(path + ": close failed: " + std::strerror(errno));
}

}  // namespace hearth
