#include "gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace hearth {

namespace {

constexpr uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t max_dims = 4;             // ggml's GGML_MAX_DIMS
constexpr uint64_t default_alignment = 32;
// Counts are already bounded by the file size, but a count alone never reserves more than this:
// vectors grow only as the file's bytes are actually consumed.
constexpr uint64_t max_reserve = 4096;

size_t reserve_for(uint64_t count) { return static_cast<size_t>(std::min(count, max_reserve)); }

// Smallest encodings, used to bound counts by the bytes left before anything is allocated:
// a key is a u64 length, at least one byte, a u32 type and at least a one-byte value; a tensor
// info is a u64 length, at least one name byte, n_dims, one dimension, the type and the offset.
constexpr uint64_t min_kv_bytes = 8 + 1 + 4 + 1;
constexpr uint64_t min_tensor_info_bytes = 8 + 1 + 4 + 8 + 4 + 8;

size_t value_type_size(uint32_t t) { return gguf_value_type_size(static_cast<gguf_value_type>(t)); }

bool value_type_known(uint32_t t) { return t <= static_cast<uint32_t>(gguf_value_type::float64); }

bool is_integer_type(gguf_value_type t) {
    switch (t) {
        case gguf_value_type::uint8:
        case gguf_value_type::int8:
        case gguf_value_type::uint16:
        case gguf_value_type::int16:
        case gguf_value_type::uint32:
        case gguf_value_type::int32:
        case gguf_value_type::uint64:
        case gguf_value_type::int64: return true;
        default: return false;
    }
}

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);  // GGUF aligns nothing in the header: never dereference directly
    return v;
}

// Reads one element of an integer type into (signed value, unsigned value, which ones are valid).
struct wide_int {
    int64_t i64 = 0;
    uint64_t u64 = 0;
    bool fits_i64 = false;
    bool fits_u64 = false;
};

wide_int load_integer(gguf_value_type t, const uint8_t* p) {
    wide_int w;
    auto set_signed = [&w](int64_t v) {
        w.i64 = v;
        w.fits_i64 = true;
        if (v >= 0) {
            w.u64 = static_cast<uint64_t>(v);
            w.fits_u64 = true;
        }
    };
    auto set_unsigned = [&w](uint64_t v) {
        w.u64 = v;
        w.fits_u64 = true;
        if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            w.i64 = static_cast<int64_t>(v);
            w.fits_i64 = true;
        }
    };
    switch (t) {
        case gguf_value_type::uint8: set_unsigned(load<uint8_t>(p)); break;
        case gguf_value_type::int8: set_signed(load<int8_t>(p)); break;
        case gguf_value_type::uint16: set_unsigned(load<uint16_t>(p)); break;
        case gguf_value_type::int16: set_signed(load<int16_t>(p)); break;
        case gguf_value_type::uint32: set_unsigned(load<uint32_t>(p)); break;
        case gguf_value_type::int32: set_signed(load<int32_t>(p)); break;
        case gguf_value_type::uint64: set_unsigned(load<uint64_t>(p)); break;
        case gguf_value_type::int64: set_signed(load<int64_t>(p)); break;
        default: break;
    }
    return w;
}

std::string quoted(std::string_view s) {
    // Names come from the file: keep messages printable and short whatever they hold.
    std::string out = "'";
    size_t n = 0;
    for (char c : s) {
        if (++n > 80) {
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        }
    }
    return out + "'";
}

// Where the parser is, for error messages; formatted only when something fails.
struct location {
    const char* section = "header";
    uint64_t index = 0;
    bool has_index = false;
    std::string_view name;
    bool has_name = false;
    uint64_t element = 0;
    bool has_element = false;

    std::string describe() const {
        // Appended piece by piece: gcc 12 warns falsely (-Wrestrict) on "lit" + std::string&&.
        std::string s = section;
        if (has_index) s.append(" ").append(std::to_string(index));
        if (has_name) s.append(" (").append(quoted(name)).append(")");
        if (has_element) s.append(" element ").append(std::to_string(element));
        return s;
    }
};

// A bounds-checked cursor over the buffer. Every read checks the bytes it needs first.
class cursor {
public:
    cursor(const uint8_t* base, size_t size, const std::string& label) : base_(base), size_(size), label_(label) {}

    location where;

    size_t pos() const { return pos_; }
    size_t left() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string& what) const { throw gguf_error(label_ + ": " + what); }

    void need(uint64_t n, const char* what) const {
        if (n > left()) {
            fail("truncated while reading " + where.describe() + " " + what + ": need " + std::to_string(n) +
                 " bytes at offset " + std::to_string(pos_) + ", file has " + std::to_string(size_));
        }
    }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v = load<T>(base_ + pos_);
        pos_ += sizeof(T);
        return v;
    }

    const uint8_t* take(uint64_t n, const char* what) {
        need(n, what);
        const uint8_t* p = base_ + pos_;
        pos_ += static_cast<size_t>(n);
        return p;
    }

    std::string_view read_string(const char* what) {
        const auto len = read<uint64_t>(what);
        if (len > left()) {
            fail("truncated while reading " + where.describe() + " " + what + ": string of " + std::to_string(len) +
                 " bytes at offset " + std::to_string(pos_) + ", file has " + std::to_string(size_));
        }
        if (len == 0) return {};
        const uint8_t* p = take(len, what);
        return {reinterpret_cast<const char*>(p), static_cast<size_t>(len)};
    }

private:
    const uint8_t* base_;
    size_t size_;
    size_t pos_ = 0;
    const std::string& label_;
};

void read_scalar(cursor& c, gguf_kv& kv) {
    const auto t = kv.type;
    if (t == gguf_value_type::string) {
        kv.str = c.read_string("value");
        return;
    }
    const size_t n = value_type_size(static_cast<uint32_t>(t));
    const uint8_t* p = c.take(n, "value");
    if (is_integer_type(t)) {
        const wide_int w = load_integer(t, p);
        kv.i64 = w.i64;
        kv.u64 = w.u64;
    } else if (t == gguf_value_type::float32) {
        kv.f64 = load<float>(p);
    } else if (t == gguf_value_type::float64) {
        kv.f64 = load<double>(p);
    } else if (t == gguf_value_type::boolean) {
        const uint8_t b = *p;
        if (b > 1) c.fail(c.where.describe() + ": boolean value is " + std::to_string(b) + ", expected 0 or 1");
        kv.boolean = b != 0;
    }
}

void read_array(cursor& c, gguf_kv& kv) {
    const auto elem = c.read<uint32_t>("array element type");
    if (elem == static_cast<uint32_t>(gguf_value_type::array)) {
        c.fail(c.where.describe() + ": nested arrays are not supported");
    }
    if (!value_type_known(elem)) {
        c.fail(c.where.describe() + ": unknown array element type " + std::to_string(elem));
    }
    kv.array_type = static_cast<gguf_value_type>(elem);
    kv.array_count = c.read<uint64_t>("array count");

    if (kv.array_type == gguf_value_type::string) {
        // Each string needs at least its 8-byte length, so this bounds the allocation below.
        if (kv.array_count > c.left() / 8) {
            c.fail(c.where.describe() + ": array of " + std::to_string(kv.array_count) +
                   " strings cannot fit in the " + std::to_string(c.left()) + " bytes left at offset " +
                   std::to_string(c.pos()));
        }
        kv.strings.reserve(reserve_for(kv.array_count));
        kv.array_data = nullptr;
        c.where.has_element = true;
        for (uint64_t i = 0; i < kv.array_count; ++i) {
            c.where.element = i;
            kv.strings.push_back(c.read_string("string"));
        }
        c.where.has_element = false;
        return;
    }

    const size_t esize = value_type_size(elem);
    if (kv.array_count > c.left() / esize) {
        c.fail("truncated while reading " + c.where.describe() + ": array of " + std::to_string(kv.array_count) +
               " " + std::string(gguf_value_type_name(kv.array_type)) + " at offset " + std::to_string(c.pos()) +
               " needs more than the " + std::to_string(c.left()) + " bytes left");
    }
    const uint64_t nbytes = kv.array_count * esize;
    kv.array_data = nbytes ? c.take(nbytes, "array data") : nullptr;
    if (kv.array_type == gguf_value_type::boolean) {
        for (uint64_t i = 0; i < kv.array_count; ++i) {
            if (kv.array_data[i] > 1) {
                c.fail(c.where.describe() + " element " + std::to_string(i) + ": boolean value is " +
                       std::to_string(kv.array_data[i]) + ", expected 0 or 1");
            }
        }
    }
}

}  // namespace

size_t gguf_value_type_size(gguf_value_type t) {
    switch (t) {
        case gguf_value_type::uint8:
        case gguf_value_type::int8:
        case gguf_value_type::boolean: return 1;
        case gguf_value_type::uint16:
        case gguf_value_type::int16: return 2;
        case gguf_value_type::uint32:
        case gguf_value_type::int32:
        case gguf_value_type::float32: return 4;
        case gguf_value_type::uint64:
        case gguf_value_type::int64:
        case gguf_value_type::float64: return 8;
        case gguf_value_type::string:
        case gguf_value_type::array: return 0;
    }
    return 0;
}

std::string_view gguf_value_type_name(gguf_value_type t) {
    switch (t) {
        case gguf_value_type::uint8: return "uint8";
        case gguf_value_type::int8: return "int8";
        case gguf_value_type::uint16: return "uint16";
        case gguf_value_type::int16: return "int16";
        case gguf_value_type::uint32: return "uint32";
        case gguf_value_type::int32: return "int32";
        case gguf_value_type::float32: return "float32";
        case gguf_value_type::boolean: return "bool";
        case gguf_value_type::string: return "string";
        case gguf_value_type::array: return "array";
        case gguf_value_type::uint64: return "uint64";
        case gguf_value_type::int64: return "int64";
        case gguf_value_type::float64: return "float64";
    }
    return "unknown";
}

int64_t gguf_tensor::n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;  // the reader checked that this product fits
    return n;
}

std::unique_ptr<gguf_file> gguf_file::open(const std::string& path) {
    std::unique_ptr<gguf_file> f(new gguf_file());
    f->path_ = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) f->fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        f->fail(std::string("cannot stat: ") + std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        f->fail("not a regular file");
    }
    if (st.st_size == 0) {
        ::close(fd);
        f->fail("file is empty, not a GGUF file");
    }
    const auto size = static_cast<size_t>(st.st_size);
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (m == MAP_FAILED) f->fail(std::string("cannot mmap: ") + std::strerror(err));
    f->mapping_ = m;
    f->base_ = static_cast<const uint8_t*>(m);
    f->size_ = size;
    f->parse();
    return f;
}

std::unique_ptr<gguf_file> gguf_file::from_memory(const uint8_t* data, size_t size, std::string label) {
    std::unique_ptr<gguf_file> f(new gguf_file());
    f->path_ = std::move(label);
    f->base_ = data;
    f->size_ = data ? size : 0;
    f->parse();
    return f;
}

gguf_file::~gguf_file() {
    if (mapping_) ::munmap(mapping_, size_);
}

void gguf_file::fail(const std::string& what) const { throw gguf_error(path_ + ": " + what); }

void gguf_file::parse() {
    cursor c(base_, size_, path_);

    // Header.
    c.where.section = "header";
    const auto magic = c.read<uint32_t>("magic");
    if (magic != gguf_magic) {
        std::string shown;
        for (int i = 0; i < 4; ++i) shown += static_cast<char>((magic >> (8 * i)) & 0xff);
        fail("not a GGUF file (magic is " + quoted(shown) + ", expected 'GGUF')");
    }
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) {
        fail("GGUF version 1 is not supported (it used 32-bit counts; re-convert the model with a current converter)");
    }
    if (version_ != 2 && version_ != 3) {
        if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3) {
            fail("big-endian GGUF files are not supported");
        }
        fail("unsupported GGUF version " + std::to_string(version_) + " (this reader handles versions 2 and 3)");
    }
    const auto n_tensors = c.read<uint64_t>("tensor count");
    const auto n_kv = c.read<uint64_t>("metadata key count");
    // Bound both counts by what could possibly fit, so a hostile count fails here instead of
    // driving a huge allocation or a long loop.
    if (n_kv > c.left() / min_kv_bytes) {
        fail("metadata key count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.left()) +
             " bytes after the header (truncated or corrupt file)");
    }
    if (n_tensors > c.left() / min_tensor_info_bytes) {
        fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(c.left()) +
             " bytes after the header (truncated or corrupt file)");
    }

    // Metadata.
    kvs_.clear();
    kvs_.reserve(reserve_for(n_kv));
    std::unordered_set<std::string_view> keys;
    keys.reserve(reserve_for(n_kv));
    c.where = location{};
    c.where.section = "key";
    c.where.has_index = true;
    for (uint64_t i = 0; i < n_kv; ++i) {
        c.where.index = i;
        c.where.has_name = false;
        gguf_kv kv;
        kv.key = c.read_string("name");
        if (kv.key.empty()) c.fail("key " + std::to_string(i) + " has an empty name");
        c.where.name = kv.key;
        c.where.has_name = true;
        const auto type = c.read<uint32_t>("type");
        if (!value_type_known(type)) c.fail(c.where.describe() + ": unknown value type " + std::to_string(type));
        kv.type = static_cast<gguf_value_type>(type);
        if (!keys.insert(kv.key).second) c.fail("duplicate key " + quoted(kv.key) + " (key " + std::to_string(i) + ")");
        if (kv.type == gguf_value_type::array) {
            read_array(c, kv);
        } else {
            read_scalar(c, kv);
        }
        kvs_.push_back(std::move(kv));
    }

    alignment_ = default_alignment;
    if (const gguf_kv* a = find("general.alignment")) {
        if (a->type != gguf_value_type::uint32) {
            fail("general.alignment has type " + std::string(gguf_value_type_name(a->type)) + ", expected uint32");
        }
        if (a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0) {
            fail("general.alignment is " + std::to_string(a->u64) + ", expected a non-zero power of two");
        }
        alignment_ = a->u64;
    }

    // Tensor infos.
    tensors_.clear();
    tensors_.reserve(reserve_for(n_tensors));
    std::unordered_set<std::string_view> names;
    names.reserve(reserve_for(n_tensors));
    c.where = location{};
    c.where.section = "tensor";
    c.where.has_index = true;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        c.where.index = i;
        c.where.has_name = false;
        gguf_tensor t;
        t.name = c.read_string("name");
        if (t.name.empty()) c.fail("tensor " + std::to_string(i) + " has an empty name");
        c.where.name = t.name;
        c.where.has_name = true;
        const std::string who = "tensor " + quoted(t.name);
        if (!names.insert(t.name).second) c.fail("duplicate tensor name " + quoted(t.name));
        const auto n_dims = c.read<uint32_t>("n_dims");
        if (n_dims < 1 || n_dims > max_dims) {
            c.fail(who + " has " + std::to_string(n_dims) + " dimensions, expected 1 to " + std::to_string(max_dims));
        }
        t.ne.resize(n_dims);
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const auto v = c.read<uint64_t>("dimension");
            if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                c.fail(who + " dimension " + std::to_string(d) + " is negative (" +
                       std::to_string(static_cast<int64_t>(v)) + ")");
            }
            t.ne[d] = static_cast<int64_t>(v);
            if (__builtin_mul_overflow(n_elements, t.ne[d], &n_elements)) {
                c.fail(who + " has too many elements (the product of its dimensions overflows)");
            }
        }
        const auto type_id = c.read<uint32_t>("type");
        const tensor_type_info& info = tensor_type_get_info(type_id);
        if (info.block_size == 0) c.fail(who + " has unknown type id " + std::to_string(type_id));
        t.type = static_cast<tensor_type>(type_id);
        if (t.ne[0] % info.block_size != 0) {
            c.fail(who + " row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                   std::string(info.name) + " block size " + std::to_string(info.block_size));
        }
        uint64_t nbytes = static_cast<uint64_t>(t.ne[0] / info.block_size);
        bool overflow = __builtin_mul_overflow(nbytes, static_cast<uint64_t>(info.block_bytes), &nbytes);
        for (uint32_t d = 1; d < n_dims && !overflow; ++d) {
            overflow = __builtin_mul_overflow(nbytes, static_cast<uint64_t>(t.ne[d]), &nbytes);
        }
        if (overflow) c.fail(who + " data size overflows");
        t.nbytes = nbytes;
        t.offset = c.read<uint64_t>("offset");
        if (t.offset % alignment_ != 0) {
            c.fail(who + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                   std::to_string(alignment_));
        }
        tensors_.push_back(std::move(t));
    }

    // Data section: starts at the next multiple of the alignment after the tensor infos. A file
    // without tensors (a vocabulary-only file) need not carry that padding.
    const uint64_t end_of_infos = c.pos();
    data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
    if (tensors_.empty()) return;
    if (data_offset_ > size_) {
        fail("truncated: the tensor data section starts at offset " + std::to_string(data_offset_) +
             " (after padding to " + std::to_string(alignment_) + " bytes) but the file has " +
             std::to_string(size_) + " bytes");
    }
    const uint64_t avail = size_ - data_offset_;
    for (auto& t : tensors_) {
        if (t.offset > avail || t.nbytes > avail - t.offset) {
            fail("tensor " + quoted(t.name) + " data [offset " + std::to_string(t.offset) + ", " +
                 std::to_string(t.nbytes) + " bytes] runs past the end of the file (its data section has " +
                 std::to_string(avail) + " bytes from offset " + std::to_string(data_offset_) + "; file has " +
                 std::to_string(size_) + " bytes)");
        }
        t.data = base_ + data_offset_ + t.offset;
    }
}

const gguf_kv* gguf_file::find(std::string_view key) const {
    for (const auto& kv : kvs_) {
        if (kv.key == key) return &kv;
    }
    return nullptr;
}

const gguf_tensor* gguf_file::find_tensor(std::string_view name) const {
    for (const auto& t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

namespace {

[[noreturn]] void fail_type(const std::string& path, const gguf_kv& kv, const char* expected) {
    std::string got(gguf_value_type_name(kv.type));
    if (kv.type == gguf_value_type::array) got += " of " + std::string(gguf_value_type_name(kv.array_type));
    throw gguf_error(path + ": key " + quoted(kv.key) + " has type " + got + ", expected " + expected);
}

}  // namespace

std::optional<std::string_view> gguf_file::get_string(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type != gguf_value_type::string) fail_type(path_, *kv, "string");
    return kv->str;
}

std::optional<uint64_t> gguf_file::get_uint(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (!is_integer_type(kv->type)) fail_type(path_, *kv, "an integer");
    const bool is_signed = kv->type == gguf_value_type::int8 || kv->type == gguf_value_type::int16 ||
                           kv->type == gguf_value_type::int32 || kv->type == gguf_value_type::int64;
    if (is_signed && kv->i64 < 0) {
        fail("key " + quoted(kv->key) + " is " + std::to_string(kv->i64) + ", expected a non-negative integer");
    }
    return kv->u64;
}

std::optional<int64_t> gguf_file::get_int(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (!is_integer_type(kv->type)) fail_type(path_, *kv, "an integer");
    if (kv->type == gguf_value_type::uint64 && kv->u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("key " + quoted(kv->key) + " is " + std::to_string(kv->u64) + ", too large for a signed 64-bit integer");
    }
    return kv->i64;
}

std::optional<double> gguf_file::get_float(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type == gguf_value_type::float32 || kv->type == gguf_value_type::float64) return kv->f64;
    if (!is_integer_type(kv->type)) fail_type(path_, *kv, "a number");
    if (kv->type == gguf_value_type::uint64) return static_cast<double>(kv->u64);
    return static_cast<double>(kv->i64);
}

std::optional<bool> gguf_file::get_bool(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type != gguf_value_type::boolean) fail_type(path_, *kv, "bool");
    return kv->boolean;
}

std::optional<std::vector<std::string_view>> gguf_file::get_string_array(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type != gguf_value_type::array || kv->array_type != gguf_value_type::string) {
        fail_type(path_, *kv, "array of string");
    }
    return kv->strings;
}

std::optional<std::vector<float>> gguf_file::get_f32_array(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type != gguf_value_type::array ||
        (kv->array_type != gguf_value_type::float32 && kv->array_type != gguf_value_type::float64)) {
        fail_type(path_, *kv, "array of float32");
    }
    std::vector<float> out(static_cast<size_t>(kv->array_count));
    if (kv->array_type == gguf_value_type::float32) {
        if (!out.empty()) std::memcpy(out.data(), kv->array_data, out.size() * sizeof(float));
    } else {
        for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(load<double>(kv->array_data + 8 * i));
    }
    return out;
}

std::optional<std::vector<int32_t>> gguf_file::get_i32_array(std::string_view key) const {
    const gguf_kv* kv = find(key);
    if (!kv) return std::nullopt;
    if (kv->type != gguf_value_type::array || !is_integer_type(kv->array_type)) {
        fail_type(path_, *kv, "array of integers");
    }
    const size_t esize = value_type_size(static_cast<uint32_t>(kv->array_type));
    std::vector<int32_t> out(static_cast<size_t>(kv->array_count));
    if (kv->array_type == gguf_value_type::int32) {
        if (!out.empty()) std::memcpy(out.data(), kv->array_data, out.size() * sizeof(int32_t));
        return out;
    }
    for (size_t i = 0; i < out.size(); ++i) {
        const wide_int w = load_integer(kv->array_type, kv->array_data + esize * i);
        if (!w.fits_i64 || w.i64 < std::numeric_limits<int32_t>::min() || w.i64 > std::numeric_limits<int32_t>::max()) {
            fail("key " + quoted(kv->key) + " element " + std::to_string(i) + " does not fit in a 32-bit integer");
        }
        out[i] = static_cast<int32_t>(w.i64);
    }
    return out;
}

}  // namespace hearth
