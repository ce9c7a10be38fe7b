// The JSON-schema front end: compiles the subset described in grammar.h into grammar_rules that
// accept exactly the compact JSON texts of the schema.
#include "grammar.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>

namespace hearth {

namespace {

using json = nlohmann::ordered_json;  // keeps "properties" in document order: that is the key order
using symbols = std::vector<grammar_symbol>;

constexpr size_t max_enumerated = 10000;       // multipleOf values we are willing to list
constexpr int64_t max_unrolled = 100000;       // maxLength / maxItems we are willing to unroll
constexpr double frac_scale = 1e6;             // numbers without multipleOf: 6 fraction digits
constexpr double max_scaled = 9e15;            // |bound| * 1e6 must stay exact in a double
constexpr int max_depth = 64;                  // schema nesting (compile and match recurse on it)

std::string escape_pointer(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~') out.append("~0");
        else if (c == '/') out.append("~1");
        else out.push_back(c);
    }
    return out;
}

std::string child_path(const std::string& path, const std::string& key) {
    std::string out = path;
    out.push_back('/');
    out.append(escape_pointer(key));
    return out;
}

// The shortest fixed-point text of a double ("21", "21.5", "0.1").
std::string shortest_fixed(double v) {
    char buf[400];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    std::string s(buf, r.ptr);
    if (s == "-0") s.erase(0, 1);  // (not s = "0": gcc 12 -Wrestrict misfires on that at -O2)
    return s;
}

size_t fraction_digits(double v) {
    const std::string s = shortest_fixed(v);
    const size_t dot = s.find('.');
    return dot == std::string::npos ? 0 : s.size() - dot - 1;
}

// Rounds a bound scaled by 1e6 up (ceil) or down (floor), treating values within float noise of
// an integer as that integer (0.1 * 1e6 is 100000.00000000001, and means 100000).
int64_t scale_bound(double x, bool up) {
    const double s = x * frac_scale;
    const double r = std::nearbyint(s);
    if (std::fabs(s - r) <= 1e-6 * std::max(1.0, std::fabs(s))) return static_cast<int64_t>(r);
    return static_cast<int64_t>(up ? std::ceil(s) : std::floor(s));
}

// A const/enum value's text: compact JSON, floats in shortest fixed form (30.0 -> "30").
std::string value_text(const json& v) {
    if (v.is_number_float()) return shortest_fixed(v.get<double>());
    return v.dump();
}

class schema_compiler {
public:
    grammar_rules g;  // what is being built

    uint32_t compile(const json& s, const std::string& path);

private:
    std::map<std::array<uint64_t, 4>, uint32_t> class_ids_;  // one id per distinct byte class
    std::optional<uint32_t> char_rule_;                       // one JSON string character, built once
    std::optional<uint32_t> digits_rule_;                     // [0-9]*, built once
    int depth_ = 0;                                           // current schema nesting

    grammar_symbol cls(const byte_class& c) {
        auto [it, fresh] = class_ids_.emplace(c.bits, static_cast<uint32_t>(g.classes.size()));
        if (fresh) g.classes.push_back(c);
        return {false, it->second};
    }
    grammar_symbol byte(uint8_t b) { return cls(byte_class::single(b)); }
    grammar_symbol range(uint8_t lo, uint8_t hi) { return cls(byte_class::range(lo, hi)); }
    static grammar_symbol ref(uint32_t r) { return {true, r}; }
    uint32_t new_rule() {
        if (g.rules.size() >= (1u << 20)) throw grammar_error("", "schema makes too many grammar rules");
        g.rules.emplace_back();
        return static_cast<uint32_t>(g.rules.size() - 1);
    }
    void alt(uint32_t r, symbols seq) { g.rules[r].push_back(std::move(seq)); }
    void append_literal(symbols& seq, std::string_view text) {
        for (char c : text) seq.push_back(byte(static_cast<uint8_t>(c)));
    }
    uint32_t literal_rule(std::string_view text) {
        const uint32_t r = new_rule();
        symbols seq;
        append_literal(seq, text);
        alt(r, std::move(seq));
        return r;
    }

    uint32_t literal_set(std::vector<std::string> texts);
    uint32_t trie_rule(const std::vector<std::string>& texts, size_t begin, size_t end, size_t depth);
    uint32_t char_rule();
    uint32_t digits_rule();
    void nonneg_alts(uint32_t r, const symbols& prefix, uint64_t lo, std::optional<uint64_t> hi);
    void decimal_alts(uint32_t r, const symbols& prefix, int64_t lo, std::optional<int64_t> hi);
    uint32_t fraction_rule(std::map<int, uint32_t>& memo, const std::string& lo, const std::string& hi, int i, bool tl, bool th);

    uint32_t compile_typed(const json& s, const std::string& type, const std::string& path);
    uint32_t compile_object(const json& s, const std::string& path);
    uint32_t compile_string(const json& s, const std::string& path);
    uint32_t compile_integer(const json& s, const std::string& path);
    uint32_t compile_number(const json& s, const std::string& path);
    uint32_t compile_array(const json& s, const std::string& path);
};

// A set of literal texts as a prefix tree of rules: the alternatives alive at once stay few even
// for thousands of values, since texts sharing a prefix share its rules.
uint32_t schema_compiler::literal_set(std::vector<std::string> texts) {
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    return trie_rule(texts, 0, texts.size(), 0);
}

uint32_t schema_compiler::trie_rule(const std::vector<std::string>& texts, size_t begin, size_t end, size_t depth) {
    const uint32_t r = new_rule();
    size_t i = begin;
    if (i < end && texts[i].size() == depth) {
        alt(r, {});
        ++i;
    }
    while (i < end) {
        const char b = texts[i][depth];
        size_t j = i + 1;
        while (j < end && texts[j][depth] == b) ++j;
        const uint32_t child = trie_rule(texts, i, j, depth + 1);
        alt(r, {byte(static_cast<uint8_t>(b)), ref(child)});
        i = j;
    }
    return r;
}

// One character inside a JSON string: valid UTF-8 other than '"', '\' and controls, or an escape
// (a \u escape of a surrogate only as a high-low pair, which JSON parsers require).
uint32_t schema_compiler::char_rule() {
    if (char_rule_) return *char_rule_;
    const uint32_t r = new_rule();
    char_rule_ = r;
    byte_class plain = byte_class::range(0x20, 0x7F);
    plain.bits[0] &= ~(uint64_t{1} << '"');
    plain.bits[1] &= ~(uint64_t{1} << ('\\' - 64));
    const grammar_symbol cont = range(0x80, 0xBF);
    alt(r, {cls(plain)});
    alt(r, {range(0xC2, 0xDF), cont});
    alt(r, {byte(0xE0), range(0xA0, 0xBF), cont});
    byte_class e3 = byte_class::range(0xE1, 0xEC);
    e3.add(0xEE);
    e3.add(0xEF);
    alt(r, {cls(e3), cont, cont});
    alt(r, {byte(0xED), range(0x80, 0x9F), cont});
    alt(r, {byte(0xF0), range(0x90, 0xBF), cont, cont});
    alt(r, {range(0xF1, 0xF3), cont, cont, cont});
    alt(r, {byte(0xF4), range(0x80, 0x8F), cont, cont});
    byte_class simple;
    for (char c : std::string_view("\"\\/bfnrt")) simple.add(static_cast<uint8_t>(c));
    alt(r, {byte('\\'), cls(simple)});
    byte_class hex = byte_class::range('0', '9');
    hex.add_range('a', 'f');
    hex.add_range('A', 'F');
    const grammar_symbol h = cls(hex);
    byte_class not_d = byte_class::range('0', '9');  // first hex digit of a non-surrogate
    not_d.add_range('a', 'c');
    not_d.add_range('A', 'C');
    not_d.add_range('e', 'f');
    not_d.add_range('E', 'F');
    byte_class d = byte_class::single('d');
    d.add('D');
    byte_class high = byte_class::range('8', '9');  // D800-DBFF
    high.add_range('a', 'b');
    high.add_range('A', 'B');
    byte_class low = byte_class::range('c', 'f');   // DC00-DFFF
    low.add_range('C', 'F');
    const grammar_symbol bs = byte('\\'), u = byte('u');
    alt(r, {bs, u, cls(not_d), h, h, h});
    alt(r, {bs, u, cls(d), range('0', '7'), h, h});
    alt(r, {bs, u, cls(d), cls(high), h, h, bs, u, cls(d), cls(low), h, h});
    return r;
}

uint32_t schema_compiler::digits_rule() {
    if (digits_rule_) return *digits_rule_;
    const uint32_t r = new_rule();
    digits_rule_ = r;
    alt(r, {});
    alt(r, {range('0', '9'), ref(r)});
    return r;
}

// Digit-class sequences for the numbers of one length between lo and hi (same length, lo <= hi):
// the classic numeric-range split into a tight prefix, a free middle and a tight suffix.
void digit_patterns(std::string_view lo, std::string_view hi, std::vector<std::pair<char, char>>& prefix,
                    std::vector<std::vector<std::pair<char, char>>>& out) {
    const size_t n = lo.size();
    if (n == 0) {
        out.push_back(prefix);
        return;
    }
    const size_t base = prefix.size();
    if (lo[0] == hi[0]) {
        prefix.emplace_back(lo[0], lo[0]);
        digit_patterns(lo.substr(1), hi.substr(1), prefix, out);
        prefix.resize(base);
        return;
    }
    const bool lo_zero = lo.find_first_not_of('0', 1) == std::string_view::npos;
    const bool hi_nine = hi.find_first_not_of('9', 1) == std::string_view::npos;
    const std::string nines(n - 1, '9'), zeros(n - 1, '0');
    if (!lo_zero) {
        prefix.emplace_back(lo[0], lo[0]);
        digit_patterns(lo.substr(1), nines, prefix, out);
        prefix.resize(base);
    }
    const char a = lo_zero ? lo[0] : static_cast<char>(lo[0] + 1);
    const char b = hi_nine ? hi[0] : static_cast<char>(hi[0] - 1);
    if (a <= b) {
        prefix.emplace_back(a, b);
        for (size_t k = 1; k < n; ++k) prefix.emplace_back('0', '9');
        out.push_back(prefix);
        prefix.resize(base);
    }
    if (!hi_nine) {
        prefix.emplace_back(hi[0], hi[0]);
        digit_patterns(zeros, hi.substr(1), prefix, out);
        prefix.resize(base);
    }
}

// Adds to r one alternative (prefix + digits) per digit pattern of the canonical integers in
// [lo, hi] (hi unset: no upper bound).
void schema_compiler::nonneg_alts(uint32_t r, const symbols& prefix, uint64_t lo, std::optional<uint64_t> hi) {
    if (hi && *hi < lo) return;
    const std::string los = std::to_string(lo);
    const size_t max_len = hi ? std::to_string(*hi).size() : los.size();
    std::vector<std::vector<std::pair<char, char>>> patterns;
    std::vector<std::pair<char, char>> scratch;
    uint64_t pow = 1;  // 10^(len-1)
    for (size_t len = 1; len <= max_len; ++len, pow *= 10) {
        const uint64_t first = len == 1 ? 0 : pow;
        const uint64_t last = len >= 20 ? std::numeric_limits<uint64_t>::max() : pow * 10 - 1;
        const uint64_t a = std::max(lo, first);
        const uint64_t b = hi ? std::min(*hi, last) : last;
        if (a > b) continue;
        digit_patterns(std::to_string(a), std::to_string(b), scratch, patterns);
        if (len >= 20) break;
    }
    for (const auto& p : patterns) {
        symbols seq = prefix;
        for (auto [a, b] : p) seq.push_back(range(static_cast<uint8_t>(a), static_cast<uint8_t>(b)));
        alt(r, std::move(seq));
    }
    if (!hi) {
        // Longer than any bound: a nonzero digit, then at least as many digits as lo has.
        symbols seq = prefix;
        seq.push_back(range('1', '9'));
        for (size_t k = 0; k < los.size(); ++k) seq.push_back(range('0', '9'));
        seq.push_back(ref(digits_rule()));
        alt(r, std::move(seq));
    }
}

// Fraction digits (1 to 6 after the '.') whose value, padded with zeros, is >= lo (while tl) and
// <= hi (while th); lo and hi are the 6-digit fractions of the bounds.
uint32_t schema_compiler::fraction_rule(std::map<int, uint32_t>& memo, const std::string& lo, const std::string& hi, int i, bool tl,
                                        bool th) {
    const int key = i * 4 + (tl ? 2 : 0) + (th ? 1 : 0);
    if (auto it = memo.find(key); it != memo.end()) return it->second;
    const uint32_t r = new_rule();
    memo[key] = r;
    const auto iu = static_cast<size_t>(i);
    if (i > 0 && (!tl || lo.find_first_not_of('0', iu) == std::string::npos)) alt(r, {});
    if (i == 6) return r;
    // Digits grouped by whether they keep each bound tight.
    std::map<int, byte_class> groups;
    for (char d = '0'; d <= '9'; ++d) {
        if (tl && d < lo[iu]) continue;
        if (th && d > hi[iu]) continue;
        const int k = ((tl && d == lo[iu]) ? 2 : 0) | ((th && d == hi[iu]) ? 1 : 0);
        groups[k].add(static_cast<uint8_t>(d));
    }
    for (const auto& [k, c] : groups) {
        const uint32_t next = fraction_rule(memo, lo, hi, i + 1, (k & 2) != 0, (k & 1) != 0);
        alt(r, {cls(c), ref(next)});
    }
    return r;
}

// Decimal texts (integer part, then optionally '.' and 1-6 digits) whose value times 1e6 lies in
// [lo, hi] (lo >= 0; hi unset: unbounded), each alternative starting with prefix.
void schema_compiler::decimal_alts(uint32_t r, const symbols& prefix, int64_t lo, std::optional<int64_t> hi) {
    if (hi && *hi < lo) return;
    const auto scale = static_cast<int64_t>(frac_scale);
    auto frac_text = [](int64_t f) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(f));
        return std::string(buf);
    };
    const int64_t lo_i = lo / scale, lo_f = lo % scale;
    const std::string lo_s = frac_text(lo_f);
    const std::string hi_s = hi ? frac_text(*hi % scale) : std::string("999999");
    std::map<int, uint32_t> memo;
    auto with_int = [&](symbols seq, bool plain_ok, bool tl, bool th) {
        if (plain_ok) alt(r, seq);
        seq.push_back(byte('.'));
        seq.push_back(ref(fraction_rule(memo, lo_s, hi_s, 0, tl, th)));
        alt(r, std::move(seq));
    };
    auto literal_int = [&](int64_t v) {
        symbols seq = prefix;
        append_literal(seq, std::to_string(v));
        return seq;
    };
    if (hi && *hi / scale == lo_i) {
        with_int(literal_int(lo_i), lo_f == 0, true, true);
        return;
    }
    with_int(literal_int(lo_i), lo_f == 0, true, false);
    // Integer parts strictly between the bounds' take any fraction.
    const uint32_t middle = new_rule();
    nonneg_alts(middle, {}, static_cast<uint64_t>(lo_i + 1), hi ? std::optional<uint64_t>(static_cast<uint64_t>(*hi / scale - 1)) : std::nullopt);
    if (!g.rules[middle].empty()) {
        symbols seq = prefix;
        seq.push_back(ref(middle));
        with_int(seq, true, false, false);
    }
    if (hi) with_int(literal_int(*hi / scale), true, false, true);
}

const std::set<std::string>& ignored_keywords() {
    static const std::set<std::string> k = {"title", "description", "$comment", "examples", "default", "$schema", "$id", "deprecated",
                                            "readOnly", "writeOnly"};
    return k;
}

const std::set<std::string>& keywords_of(const std::string& type) {
    static const std::map<std::string, std::set<std::string>> k = {
        {"object", {"type", "properties", "required", "additionalProperties"}},
        {"string", {"type", "minLength", "maxLength"}},
        {"integer", {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}},
        {"number", {"type", "minimum", "maximum", "multipleOf"}},
        {"boolean", {"type"}},
        {"null", {"type"}},
        {"array", {"type", "items", "minItems", "maxItems"}},
    };
    static const std::set<std::string> none;
    auto it = k.find(type);
    return it == k.end() ? none : it->second;
}

bool is_known_keyword(const std::string& key) {
    static const std::set<std::string> k = {"type",      "properties", "required", "additionalProperties", "oneOf",    "anyOf",
                                            "const",     "enum",       "minLength", "maxLength",           "minimum",  "maximum",
                                            "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems"};
    return k.count(key) != 0;
}

std::optional<double> number_kw(const json& s, const char* key, const std::string& path) {
    auto it = s.find(key);
    if (it == s.end()) return std::nullopt;
    if (!it->is_number()) throw grammar_error(child_path(path, key), "must be a number");
    const double v = it->get<double>();
    if (!std::isfinite(v)) throw grammar_error(child_path(path, key), "must be finite");
    return v;
}

std::optional<int64_t> count_kw(const json& s, const char* key, const std::string& path) {
    auto it = s.find(key);
    if (it == s.end()) return std::nullopt;
    if (!it->is_number_integer() || it->get<int64_t>() < 0) throw grammar_error(child_path(path, key), "must be a non-negative integer");
    const int64_t v = it->get<int64_t>();
    if (v > max_unrolled) throw grammar_error(child_path(path, key), "is too large (at most 100000 supported)");
    return v;
}

uint32_t schema_compiler::compile(const json& s, const std::string& path) {
    struct nesting {
        int& d;  // the compiler's depth counter, restored on the way out
        explicit nesting(int& depth) : d(depth) { ++d; }
        ~nesting() { --d; }
    } guard(depth_);
    if (depth_ > max_depth) throw grammar_error(path, "schema is nested too deeply (at most 64 levels)");
    if (s.is_boolean()) throw grammar_error(path, "boolean schemas are not supported");
    if (!s.is_object()) throw grammar_error(path, "a schema must be a JSON object");
    std::vector<std::string> keys;
    for (auto it = s.begin(); it != s.end(); ++it) {
        if (ignored_keywords().count(it.key())) continue;
        if (!is_known_keyword(it.key())) {
            throw grammar_error(child_path(path, it.key()), std::string("unsupported keyword \"").append(it.key()).append("\""));
        }
        keys.push_back(it.key());
    }
    if (keys.empty()) throw grammar_error(path, "schema accepts any value: give a type, const, enum, oneOf or anyOf");
    auto only = [&](std::initializer_list<const char*> allowed, const char* what) {
        for (const auto& k : keys) {
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; })) {
                throw grammar_error(child_path(path, k), std::string("keyword \"").append(k).append("\" cannot be combined with ").append(what));
            }
        }
    };
    for (const char* comb : {"oneOf", "anyOf"}) {
        if (!s.contains(comb)) continue;
        only({comb}, comb);
        const json& alts = s.at(comb);
        const std::string p = child_path(path, comb);
        if (!alts.is_array() || alts.empty()) throw grammar_error(p, "must be a non-empty array of schemas");
        const uint32_t r = new_rule();
        for (size_t i = 0; i < alts.size(); ++i) {
            const uint32_t sub = compile(alts[i], child_path(p, std::to_string(i)));
            alt(r, {ref(sub)});
        }
        return r;
    }
    if (s.contains("const")) {
        only({"const", "type"}, "const");
        return literal_rule(value_text(s.at("const")));
    }
    if (s.contains("enum")) {
        only({"enum", "type"}, "enum");
        const json& values = s.at("enum");
        if (!values.is_array() || values.empty()) throw grammar_error(child_path(path, "enum"), "must be a non-empty array");
        std::vector<std::string> texts;
        for (const auto& v : values) texts.push_back(value_text(v));
        return literal_set(texts);
    }
    if (!s.contains("type")) throw grammar_error(path, "schema needs a type, const, enum, oneOf or anyOf");
    const json& t = s.at("type");
    if (t.is_string()) return compile_typed(s, t.get<std::string>(), path);
    if (!t.is_array() || t.empty()) throw grammar_error(child_path(path, "type"), "must be a type name or a non-empty array of them");
    const uint32_t r = new_rule();
    for (size_t i = 0; i < t.size(); ++i) {
        if (!t[i].is_string()) throw grammar_error(child_path(child_path(path, "type"), std::to_string(i)), "must be a type name");
        alt(r, {ref(compile_typed(s, t[i].get<std::string>(), path))});
    }
    return r;
}

uint32_t schema_compiler::compile_typed(const json& s, const std::string& type, const std::string& path) {
    if (keywords_of(type).empty()) throw grammar_error(child_path(path, "type"), std::string("unsupported type \"").append(type).append("\""));
    // With "type":[...] each listed type takes the keywords that apply to it and ignores the others'.
    std::set<std::string> allowed;
    const json& t = s.at("type");
    for (const auto& name : t.is_array() ? t : json::array({t})) {
        if (name.is_string()) {
            const auto& k = keywords_of(name.get<std::string>());
            allowed.insert(k.begin(), k.end());
        }
    }
    for (auto it = s.begin(); it != s.end(); ++it) {
        if (ignored_keywords().count(it.key()) || allowed.count(it.key())) continue;
        throw grammar_error(child_path(path, it.key()), std::string("keyword \"").append(it.key()).append("\" is not supported for type ").append(type));
    }
    if (type == "object") return compile_object(s, path);
    if (type == "string") return compile_string(s, path);
    if (type == "integer") return compile_integer(s, path);
    if (type == "number") return compile_number(s, path);
    if (type == "array") return compile_array(s, path);
    if (type == "boolean") return literal_set({"true", "false"});
    return literal_rule("null");
}

uint32_t schema_compiler::compile_object(const json& s, const std::string& path) {
    if (auto it = s.find("additionalProperties"); it != s.end() && !(it->is_boolean() && !it->get<bool>())) {
        throw grammar_error(child_path(path, "additionalProperties"), "only false is supported (no other keys are ever produced)");
    }
    static const json empty = json::object();
    const json& props = s.contains("properties") ? s.at("properties") : empty;
    if (!props.is_object()) throw grammar_error(child_path(path, "properties"), "must be an object");
    std::set<std::string> required;
    if (auto it = s.find("required"); it != s.end()) {
        const std::string rp = child_path(path, "required");
        if (!it->is_array()) throw grammar_error(rp, "must be an array of property names");
        for (size_t i = 0; i < it->size(); ++i) {
            const json& name = (*it)[i];
            if (!name.is_string() || !props.contains(name.get<std::string>())) {
                throw grammar_error(child_path(rp, std::to_string(i)), "must name a property listed in \"properties\"");
            }
            required.insert(name.get<std::string>());
        }
    }
    // Each property's text: "key":value.
    struct prop {
        symbols seq;    // the key literal and the value's rule
        bool required;  // may not be left out
    };
    std::vector<prop> list;
    const std::string pp = child_path(path, "properties");
    for (auto it = props.begin(); it != props.end(); ++it) {
        prop p;
        std::string key = json(it.key()).dump();
        key.push_back(':');
        append_literal(p.seq, key);
        p.seq.push_back(ref(compile(it.value(), child_path(pp, it.key()))));
        p.required = required.count(it.key()) != 0;
        list.push_back(std::move(p));
    }
    // first[i]: properties i.. with none written yet (no comma); rest[i]: after at least one.
    const size_t n = list.size();
    std::vector<uint32_t> first(n + 1), rest(n + 1);
    first[n] = new_rule();
    alt(first[n], {});
    rest[n] = first[n];
    for (size_t i = n; i-- > 0;) {
        rest[i] = new_rule();
        symbols with_comma{byte(',')};
        with_comma.insert(with_comma.end(), list[i].seq.begin(), list[i].seq.end());
        with_comma.push_back(ref(rest[i + 1]));
        alt(rest[i], with_comma);
        if (!list[i].required) alt(rest[i], {ref(rest[i + 1])});
        first[i] = new_rule();
        symbols plain = list[i].seq;
        plain.push_back(ref(rest[i + 1]));
        alt(first[i], plain);
        if (!list[i].required) alt(first[i], {ref(first[i + 1])});
    }
    const uint32_t r = new_rule();
    alt(r, {byte('{'), ref(first[0]), byte('}')});
    return r;
}

uint32_t schema_compiler::compile_string(const json& s, const std::string& path) {
    const int64_t min_len = count_kw(s, "minLength", path).value_or(0);
    const std::optional<int64_t> max_len = count_kw(s, "maxLength", path);
    if (max_len && *max_len < min_len) throw grammar_error(child_path(path, "maxLength"), "is below minLength");
    const uint32_t c = char_rule();
    // chars[k]: the rest of the string after k characters.
    const int64_t last = max_len ? *max_len : min_len;
    std::vector<uint32_t> chars(static_cast<size_t>(last) + 1);
    for (auto& r : chars) r = new_rule();
    for (int64_t k = 0; k <= last; ++k) {
        const uint32_t r = chars[static_cast<size_t>(k)];
        if (k >= min_len) alt(r, {});
        if (k < last) alt(r, {ref(c), ref(chars[static_cast<size_t>(k) + 1])});
        else if (!max_len) alt(r, {ref(c), ref(r)});
    }
    const uint32_t r = new_rule();
    alt(r, {byte('"'), ref(chars[0]), byte('"')});
    return r;
}

uint32_t schema_compiler::compile_integer(const json& s, const std::string& path) {
    std::optional<double> lo = number_kw(s, "minimum", path), hi = number_kw(s, "maximum", path);
    const std::optional<double> xlo = number_kw(s, "exclusiveMinimum", path), xhi = number_kw(s, "exclusiveMaximum", path);
    constexpr double limit = 9.2e18;
    std::optional<int64_t> a, b;
    auto tighten_lo = [&](double v) {
        if (std::fabs(v) > limit) throw grammar_error(path, "integer bounds beyond 64 bits are not supported");
        const int64_t x = static_cast<int64_t>(v);
        if (!a || x > *a) a = x;
    };
    auto tighten_hi = [&](double v) {
        if (std::fabs(v) > limit) throw grammar_error(path, "integer bounds beyond 64 bits are not supported");
        const int64_t x = static_cast<int64_t>(v);
        if (!b || x < *b) b = x;
    };
    if (lo) tighten_lo(std::ceil(*lo));
    if (xlo) tighten_lo(std::floor(*xlo) + 1);
    if (hi) tighten_hi(std::floor(*hi));
    if (xhi) tighten_hi(std::ceil(*xhi) - 1);
    if (a && b && *a > *b) throw grammar_error(path, "the integer range is empty");
    const uint32_t r = new_rule();
    if (!b || *b >= 0) nonneg_alts(r, {}, a ? static_cast<uint64_t>(std::max<int64_t>(*a, 0)) : 0, b ? std::optional<uint64_t>(static_cast<uint64_t>(*b)) : std::nullopt);
    if (!a || *a < 0) {
        // Magnitudes of the negatives: at least 1 ("-0" is not canonical).
        const uint64_t mlo = (b && *b < 0) ? static_cast<uint64_t>(-(*b + 1)) + 1 : 1;
        const std::optional<uint64_t> mhi = a ? std::optional<uint64_t>(static_cast<uint64_t>(-(*a + 1)) + 1) : std::nullopt;
        nonneg_alts(r, {byte('-')}, mlo, mhi);
    }
    return r;
}

uint32_t schema_compiler::compile_number(const json& s, const std::string& path) {
    const std::optional<double> lo = number_kw(s, "minimum", path), hi = number_kw(s, "maximum", path);
    const std::optional<double> step = number_kw(s, "multipleOf", path);
    if (lo && hi && *lo > *hi) throw grammar_error(path, "the number range is empty");
    if (step) {
        const std::string sp = child_path(path, "multipleOf");
        if (*step <= 0) throw grammar_error(sp, "must be positive");
        if (!lo || !hi) throw grammar_error(sp, "needs both minimum and maximum (the values are enumerated)");
        const double count = std::floor((*hi - *lo) / *step + 1e-9) + 1;
        if (count > static_cast<double>(max_enumerated)) throw grammar_error(sp, "gives more than 10000 values between minimum and maximum");
        const size_t decimals = std::max(fraction_digits(*lo), fraction_digits(*step));
        if (decimals > 15) throw grammar_error(sp, "has too many fraction digits");
        std::vector<std::string> texts;
        for (size_t k = 0; k < static_cast<size_t>(count); ++k) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(decimals), *lo + static_cast<double>(k) * *step);
            // Trim in the buffer (string edits here trip gcc 12's -Wrestrict false positive).
            size_t len = std::strlen(buf);
            if (std::memchr(buf, '.', len)) {
                while (len > 0 && buf[len - 1] == '0') --len;
                if (len > 0 && buf[len - 1] == '.') --len;
            }
            if (len == 2 && buf[0] == '-' && buf[1] == '0') {
                buf[0] = '0';
                len = 1;
            }
            texts.emplace_back(buf, len);
        }
        return literal_set(texts);
    }
    for (const auto& v : {lo, hi}) {
        if (v && std::fabs(*v) * frac_scale > max_scaled) throw grammar_error(path, "number bounds this large are not supported without multipleOf");
    }
    const uint32_t r = new_rule();
    if (!hi || *hi >= 0) {
        const int64_t a = lo ? std::max<int64_t>(scale_bound(*lo, true), 0) : 0;
        decimal_alts(r, {}, a, hi ? std::optional<int64_t>(scale_bound(*hi, false)) : std::nullopt);
    }
    if (!lo || *lo < 0) {
        const int64_t a = (hi && *hi < 0) ? std::max<int64_t>(scale_bound(-*hi, true), 1) : 1;
        decimal_alts(r, {byte('-')}, a, lo ? std::optional<int64_t>(scale_bound(-*lo, false)) : std::nullopt);
    }
    if (g.rules[r].empty()) throw grammar_error(path, "no number with at most 6 fraction digits lies in the range");
    return r;
}

uint32_t schema_compiler::compile_array(const json& s, const std::string& path) {
    if (!s.contains("items")) throw grammar_error(path, "arrays need \"items\" (a schema for every element)");
    const uint32_t item = compile(s.at("items"), child_path(path, "items"));
    const int64_t min_items = count_kw(s, "minItems", path).value_or(0);
    const std::optional<int64_t> max_items = count_kw(s, "maxItems", path);
    if (max_items && *max_items < min_items) throw grammar_error(child_path(path, "maxItems"), "is below minItems");
    const uint32_t r = new_rule();
    if (max_items && *max_items == 0) {
        alt(r, {byte('['), byte(']')});
        return r;
    }
    // after[k]: the rest of the array after k >= 1 items.
    const int64_t last = max_items ? *max_items : std::max<int64_t>(min_items, 1);
    std::vector<uint32_t> after(static_cast<size_t>(last) + 1);
    for (int64_t k = 1; k <= last; ++k) after[static_cast<size_t>(k)] = new_rule();
    for (int64_t k = 1; k <= last; ++k) {
        const uint32_t a = after[static_cast<size_t>(k)];
        if (k >= min_items) alt(a, {});
        if (k < last) alt(a, {byte(','), ref(item), ref(after[static_cast<size_t>(k) + 1])});
        else if (!max_items) alt(a, {byte(','), ref(item), ref(a)});
    }
    if (min_items == 0) alt(r, {byte('['), byte(']')});
    alt(r, {byte('['), ref(item), ref(after[1]), byte(']')});
    return r;
}

}  // namespace

grammar_rules grammar_rules_from_json_schema(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        throw grammar_error("", std::string("json schema is not valid JSON: ").append(e.what()));
    }
    schema_compiler c;
    c.g.root = c.compile(doc, "");
    return std::move(c.g);
}

std::shared_ptr<const grammar> grammar_from_json_schema(std::string_view text) {
    return std::make_shared<const grammar>(grammar_rules_from_json_schema(text));
}

}  // namespace hearth
