// Pieces of the MessagePack codec shared by the files of the wire protocol (protocol.cpp,
// protocol-batch.cpp): bounded unpacking, field readers that name the field in every error, and
// the packing helpers. Internal to schema/: nothing outside the codec includes it.
#pragma once

#include "protocol.h"

#include <msgpack.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace hearth::wire::codec {


// Peer bytes end up in error messages and logs: keep them printable and short.
inline std::string printable(std::string_view s, size_t max = 40) {
    std::string out;
    for (size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out.append(hex);
        }
    }
    if (s.size() > max) out.append("...");
    return out;
}

[[noreturn]] inline void fail(error_code code, const std::string& what) { throw protocol_error(code, what); }

// Joins pieces with append (gcc 12 warns falsely about "literal" + std::string chains).
template <typename... P>
std::string cat(const P&... pieces) {
    std::string s;
    (s.append(pieces), ...);
    return s;
}



using packer = msgpack::packer<msgpack::sbuffer>;

inline void put_key(packer& pk, std::string_view k) {
    pk.pack_str(static_cast<uint32_t>(k.size()));
    pk.pack_str_body(k.data(), static_cast<uint32_t>(k.size()));
}

// msgpack's adaptors pick the wire form from the C++ type: str for strings, an array of str for
// string vectors, float32 for float, float64 for double, the shortest integer form for integers.
template <typename T>
void put(packer& pk, std::string_view k, const T& v) {
    put_key(pk, k);
    pk.pack(v);
}

inline std::string finish(const msgpack::sbuffer& buf) { return std::string(buf.data(), buf.size()); }



[[noreturn]] inline void fail_field(const std::string& name, std::string_view what) {
    std::string m = "field '";
    m.append(name);
    m.append("': ");
    m.append(what);
    fail(error_code::bad_request, m);
}

// Unpacks a whole body under the limits; the returned handle owns the object tree.
inline msgpack::object_handle body_unpack(std::string_view body, const decode_limits& lim) {
    if (body.size() > lim.max_body_bytes) {
        std::string m = "body of ";
        m.append(std::to_string(body.size()));
        m.append(" bytes exceeds the limit of ");
        m.append(std::to_string(lim.max_body_bytes));
        fail(error_code::too_large, m);
    }
    const msgpack::unpack_limit limit(lim.max_array, lim.max_map, lim.max_str_bytes, lim.max_str_bytes,
                                      lim.max_str_bytes, lim.max_depth);
    size_t off = 0;
    msgpack::object_handle h;
    try {
        h = msgpack::unpack(body.data(), body.size(), off, nullptr, nullptr, limit);
    } catch (const msgpack::array_size_overflow&) {
        fail(error_code::too_large, cat("body has an array of more than ", std::to_string(lim.max_array), " elements"));
    } catch (const msgpack::map_size_overflow&) {
        fail(error_code::too_large, cat("body has a map of more than ", std::to_string(lim.max_map), " pairs"));
    } catch (const msgpack::depth_size_overflow&) {
        fail(error_code::too_large, cat("body is nested deeper than ", std::to_string(lim.max_depth), " levels"));
    } catch (const msgpack::size_overflow&) {
        fail(error_code::too_large,
             cat("body has a string or binary of more than ", std::to_string(lim.max_str_bytes), " bytes"));
    } catch (const msgpack::insufficient_bytes&) {
        fail(error_code::bad_request, "body is not MessagePack: it ends in the middle of a value");
    } catch (const msgpack::unpack_error& e) {
        std::string m = "body is not MessagePack: ";
        m.append(e.what());
        fail(error_code::bad_request, m);
    }
    if (off != body.size()) {
        std::string m = "body has ";
        m.append(std::to_string(body.size() - off));
        m.append(" bytes after the map");
        fail(error_code::bad_request, m);
    }
    if (h.get().type != msgpack::type::MAP) fail(error_code::bad_request, "body must be a MessagePack map");
    return h;
}

// One decoded map and the path of its fields in error messages ("messages[2].role").
struct fields {
    const msgpack::object_map& map;  // pairs of the msgpack map
    std::string prefix;              // prepended to field names in errors; empty at the top

    fields(const msgpack::object& o, std::string p) : map(o.via.map), prefix(std::move(p)) {
        for (uint32_t i = 0; i < map.size; ++i) {
            if (map.ptr[i].key.type == msgpack::type::STR) continue;
            std::string m = "map keys must be strings";
            if (!prefix.empty()) m.append(cat(" (in '", prefix.substr(0, prefix.size() - 1), "')"));
            fail(error_code::bad_request, m);
        }
    }

    std::string name(std::string_view key) const {
        std::string n = prefix;
        n.append(printable(key));
        return n;
    }

    // The value of a key; nil counts as absent, so clients may send null for "default". A key we
    // read may appear only once: a repeated one could show one value to a filter and another to
    // the component that acts on it. (Scanning every pair per lookup keeps this linear per field.)
    const msgpack::object* find(std::string_view key) const {
        const msgpack::object* found = nullptr;
        for (uint32_t i = 0; i < map.size; ++i) {
            const auto& k = map.ptr[i].key;
            if (std::string_view(k.via.str.ptr, k.via.str.size) != key) continue;
            if (found) fail_field(name(key), "appears more than once");
            found = &map.ptr[i].val;
        }
        return found && found->type == msgpack::type::NIL ? nullptr : found;
    }

    const msgpack::object* need(std::string_view key) const {
        const auto* v = find(key);
        if (!v) {
            std::string m = "missing required field '";
            m.append(name(key));
            m.append("'");
            fail(error_code::bad_request, m);
        }
        return v;
    }

    const msgpack::object* get(std::string_view key, bool required) const {
        return required ? need(key) : find(key);
    }

    void str(std::string_view key, std::string& out, bool required = false) const {
        const auto* v = get(key, required);
        if (!v) return;
        if (v->type != msgpack::type::STR) fail_field(name(key), "expected a string");
        out.assign(v->via.str.ptr, v->via.str.size);
    }

    template <typename T>
    void integer(std::string_view key, T& out, bool required = false) const {
        static_assert(std::is_integral_v<T>);
        const auto* v = get(key, required);
        if (!v) return;
        if (v->type == msgpack::type::POSITIVE_INTEGER) {
            if (v->via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max())) range_fail<T>(key);
            out = static_cast<T>(v->via.u64);
        } else if (v->type == msgpack::type::NEGATIVE_INTEGER) {
            if constexpr (std::is_unsigned_v<T>) {
                range_fail<T>(key);
            } else {
                if (v->via.i64 < static_cast<int64_t>(std::numeric_limits<T>::min())) range_fail<T>(key);
                out = static_cast<T>(v->via.i64);
            }
        } else {
            fail_field(name(key), "expected an integer");
        }
    }

    template <typename T>
    [[noreturn]] void range_fail(std::string_view key) const {
        std::string m = "integer out of range ";
        m.append(std::to_string(std::numeric_limits<T>::min()));
        m.append("..");
        m.append(std::to_string(std::numeric_limits<T>::max()));
        fail_field(name(key), m);
    }

    // Floats accept any msgpack number; NaN and infinities are refused so that range checks
    // downstream (which NaN would slip through) stay meaningful.
    template <typename T>
    void real(std::string_view key, T& out, bool required = false) const {
        static_assert(std::is_floating_point_v<T>);
        const auto* v = get(key, required);
        if (!v) return;
        double d = 0;
        switch (v->type) {
            case msgpack::type::FLOAT32:
            case msgpack::type::FLOAT64: d = v->via.f64; break;
            case msgpack::type::POSITIVE_INTEGER: d = static_cast<double>(v->via.u64); break;
            case msgpack::type::NEGATIVE_INTEGER: d = static_cast<double>(v->via.i64); break;
            default: fail_field(name(key), "expected a number");
        }
        if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
            fail_field(name(key), "expected a finite number");
        }
        out = static_cast<T>(d);
    }

    void boolean(std::string_view key, bool& out, bool required = false) const {
        const auto* v = get(key, required);
        if (!v) return;
        if (v->type != msgpack::type::BOOLEAN) fail_field(name(key), "expected true or false");
        out = v->via.boolean;
    }

    // An array; returns nullptr when absent.
    const msgpack::object_array* array(std::string_view key, std::string_view of, bool required = false) const {
        const auto* v = get(key, required);
        if (!v) return nullptr;
        if (v->type != msgpack::type::ARRAY) {
            std::string m = "expected an array of ";
            m.append(of);
            fail_field(name(key), m);
        }
        return &v->via.array;
    }

    void strings(std::string_view key, std::vector<std::string>& out, bool required = false) const {
        const auto* a = array(key, "strings", required);
        if (!a) return;
        out.clear();
        out.reserve(a->size);
        for (uint32_t i = 0; i < a->size; ++i) {
            const auto& e = a->ptr[i];
            if (e.type != msgpack::type::STR) {
                fail_field(element(key, i), "expected a string");
            }
            out.emplace_back(e.via.str.ptr, e.via.str.size);
        }
    }

    std::string element(std::string_view key, uint32_t i) const {
        std::string n = name(key);
        n.push_back('[');
        n.append(std::to_string(i));
        n.push_back(']');
        return n;
    }

    // The fields of a map element of an array (or of a nested map when i is negative).
    fields nested(std::string_view key, const msgpack::object& o, int64_t i = -1) const {
        std::string n = i < 0 ? name(key) : element(key, static_cast<uint32_t>(i));
        if (o.type != msgpack::type::MAP) fail_field(n, "expected a map");
        n.push_back('.');
        return fields(o, std::move(n));
    }
};


// A request's fields from a decoded map (the body of REQUEST, or one job of a BATCH submit), and
// its pairs written into a packer (the map header included).
request request_read(const fields& f);
void request_write(packer& pk, const request& m);

}  // namespace hearth::wire::codec
