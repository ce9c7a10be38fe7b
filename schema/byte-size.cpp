#include "byte-size.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace hearth {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string quoted(std::string_view s) {
    std::string out = "'";
    out.append(s.substr(0, 60));
    if (s.size() > 60) out.append("...");
    out.append("'");
    return out;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

}  // namespace

uint64_t byte_size_parse(std::string_view text) {
    auto fail = [&]() -> std::invalid_argument {
        std::string m = "invalid memory size ";
        m.append(quoted(text)).append(": expected bytes or a number with K, M, G or T (1024-based), e.g. 512M");
        return std::invalid_argument(m);
    };
    std::string_view s = trim(text);
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    std::size_t int_end = i;
    std::size_t frac_begin = i, frac_end = i;
    if (i < s.size() && s[i] == '.') {
        frac_begin = ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        frac_end = i;
        if (frac_end == frac_begin) throw fail();
    }
    if (int_end == 0) throw fail();
    std::string unit;
    for (char c : trim(s.substr(i))) unit.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    int shift = 0;
    if (unit.empty() || unit == "b") shift = 0;
    else if (unit == "k" || unit == "kib") shift = 10;
    else if (unit == "m" || unit == "mib") shift = 20;
    else if (unit == "g" || unit == "gib") shift = 30;
    else if (unit == "t" || unit == "tib") shift = 40;
    else throw fail();
    auto whole = parse_u64(s.substr(0, int_end));
    if (!whole || *whole > (UINT64_MAX >> shift)) throw fail();
    uint64_t bytes = *whole << shift;
    if (frac_end > frac_begin) {
        if (shift == 0) throw fail();  // a fraction of a byte
        // Up to 12 digits keeps digits << 40 within 64 bits' worth of long double precision needs.
        std::string_view digits = s.substr(frac_begin, std::min<std::size_t>(frac_end - frac_begin, 12));
        auto frac = parse_u64(digits);
        if (!frac) throw fail();
        long double part = static_cast<long double>(*frac) / std::pow(10.0L, static_cast<long double>(digits.size()));
        auto extra = static_cast<uint64_t>(part * static_cast<long double>(uint64_t{1} << shift));
        if (bytes > UINT64_MAX - extra) throw fail();
        bytes += extra;
    }
    return bytes;
}

std::string byte_size_format(uint64_t bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024.0 && u < 6) {
        v /= 1024.0;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    if (std::strcmp(buf, "1024.0") == 0 && u < 6) {
        ++u;
        std::snprintf(buf, sizeof buf, "1.0");
    }
    std::string s = buf;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s.append(" ").append(units[u]);
}

}  // namespace hearth
