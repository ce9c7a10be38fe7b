#include "vocab-unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <atomic>
#include <stdexcept>

namespace hearth::unicode {

size_t utf8_len(uint8_t first) {
    static constexpr size_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[first >> 4];
}

namespace {

constexpr uint32_t replacement_cpt = 0xFFFD;
constexpr uint32_t max_cpt = 0x110000;

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// One code point at text[pos]; sets len. Same acceptance as llama.cpp (lead byte and continuation
// bits only), so surrogates and overlong forms pass through unchanged.
uint32_t decode_one(std::string_view text, size_t pos, size_t& len) {
    const auto b = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
    const size_t left = text.size() - pos;
    const uint8_t c = b(0);
    len = 1;
    if (!(c & 0x80)) return c;
    if (!(c & 0x40)) return replacement_cpt;
    if (!(c & 0x20)) {
        if (left < 2 || !is_continuation(b(1))) return replacement_cpt;
        len = 2;
        return ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    }
    if (!(c & 0x10)) {
        if (left < 3 || !is_continuation(b(1)) || !is_continuation(b(2))) return replacement_cpt;
        len = 3;
        return ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    }
    if (!(c & 0x08)) {
        if (left < 4 || !is_continuation(b(1)) || !is_continuation(b(2)) || !is_continuation(b(3))) {
            return replacement_cpt;
        }
        len = 4;
        return ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    }
    return replacement_cpt;
}

}  // namespace

std::vector<uint32_t> cpts_from_utf8(std::string_view text) {
    std::vector<uint32_t> out;
    out.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
        size_t len = 1;
        out.push_back(decode_one(text, pos, len));
        pos += len;
    }
    return out;
}

void cpt_append_utf8(uint32_t cpt, std::string& out) {
    if (cpt >= max_cpt) cpt = replacement_cpt;
    if (cpt <= 0x7F) {
        out.push_back(static_cast<char>(cpt));
    } else if (cpt <= 0x7FF) {
        out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0xFFFF) {
        out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    }
}

namespace {

struct byte_tables {
    std::array<std::string, 256> to_utf8;
    std::array<uint32_t, 256> to_cpt{};
};

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to 256 + n.
const byte_tables& bytes() {
    static const byte_tables tables = [] {
        byte_tables t;
        std::array<bool, 256> direct{};
        for (int c = 0x21; c <= 0x7E; ++c) direct[c] = true;
        for (int c = 0xA1; c <= 0xAC; ++c) direct[c] = true;
        for (int c = 0xAE; c <= 0xFF; ++c) direct[c] = true;
        uint32_t n = 0;
        for (int c = 0; c < 256; ++c) {
            t.to_cpt[c] = direct[c] ? static_cast<uint32_t>(c) : 256 + n++;
            cpt_append_utf8(t.to_cpt[c], t.to_utf8[c]);
        }
        return t;
    }();
    return tables;
}

}  // namespace

const std::string& byte_to_utf8(uint8_t byte) { return bytes().to_utf8[byte]; }

int utf8_to_byte(std::string_view text) {
    size_t len = 0;
    if (text.empty()) return -1;
    const uint32_t cpt = decode_one(text, 0, len);
    if (len != text.size()) return -1;
    if (cpt < 256) {
        const bool direct = (cpt >= 0x21 && cpt <= 0x7E) || (cpt >= 0xA1 && cpt <= 0xAC) || (cpt >= 0xAE);
        return direct ? static_cast<int>(cpt) : -1;
    }
    if (cpt < 256 + 68) {
        for (int c = 0; c < 256; ++c) {
            if (bytes().to_cpt[c] == cpt) return c;
        }
    }
    return -1;
}

namespace {

// ---- code point classes ---------------------------------------------------------------------

enum : uint8_t {
    cls_known = 1,
    cls_letter = 2,
    cls_number = 4,
    cls_defined = 8,  // an assigned code point (llama.cpp's flags are all zero otherwise)
    cls_space = 16,
};

bool is_space_cpt(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Unicode categories come from PCRE2's tables; each code point is asked once and remembered.
uint8_t classify_slow(uint32_t cpt) {
    uint8_t cls = cls_known;
    if (is_space_cpt(cpt)) cls |= cls_space;
    if (cpt >= 0xD800 && cpt <= 0xDFFF) return cls | cls_defined;  // surrogates: category Cs
    static pcre2_code* const code = [] {
        int err = 0;
        PCRE2_SIZE off = 0;
        const char* pat = "(\\p{L})|(\\p{N})|(\\p{Cn})";
        pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat), PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &off, nullptr);
        if (!c) throw std::runtime_error("pcre2: cannot compile the category pattern");
        return c;
    }();
    std::string one;
    cpt_append_utf8(cpt, one);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(one.data()), one.size(), 0, 0, md, nullptr);
    bool defined = true;
    if (rc > 0) {
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (rc >= 2 && ov[2] != PCRE2_UNSET) cls |= cls_letter;
        else if (rc >= 3 && ov[4] != PCRE2_UNSET) cls |= cls_number;
        else defined = false;
    }
    pcre2_match_data_free(md);
    return defined ? (cls | cls_defined) : cls;
}

std::atomic<uint8_t> g_classes[max_cpt];

uint8_t classify(uint32_t cpt) {
    if (cpt >= max_cpt) return cls_known;
    uint8_t cls = g_classes[cpt].load(std::memory_order_relaxed);
    if (!cls) {
        cls = classify_slow(cpt);
        g_classes[cpt].store(cls, std::memory_order_relaxed);
    }
    return cls;
}

// ---- splitting -------------------------------------------------------------------------------

// Words as code point lengths over cpts; each becomes UTF-8, then byte-level characters.
std::vector<std::string> encode_words(const std::vector<uint32_t>& cpts, const std::vector<size_t>& lengths) {
    std::vector<std::string> words;
    words.reserve(lengths.size());
    size_t start = 0;
    std::string utf8;
    for (size_t len : lengths) {
        utf8.clear();
        for (size_t i = start; i < start + len; ++i) cpt_append_utf8(cpts[i], utf8);
        start += len;
        std::string word;
        word.reserve(utf8.size() * 2);
        for (char c : utf8) word += byte_to_utf8(static_cast<uint8_t>(c));
        words.push_back(std::move(word));
    }
    return words;
}

// A stage maps pieces (code point lengths) to finer pieces.
class stage {
public:
    virtual ~stage() = default;
    virtual void run(const std::vector<uint32_t>& cpts, size_t begin, size_t end, std::vector<size_t>& out) const = 0;
};

// Hand-written equivalents of the GPT-2 and Llama-3 patterns, step for step as llama.cpp runs them
// (its behaviour at piece ends and on unassigned code points differs slightly from a regex engine).
class gpt2_stage final : public stage {
public:
    explicit gpt2_stage(bool llama3) : llama3_(llama3) {}

    void run(const std::vector<uint32_t>& cpts, size_t begin, size_t end, std::vector<size_t>& out) const override {
        constexpr uint32_t none = 0xFFFFFFFF;
        auto cpt_at = [&](size_t p) { return p < end ? cpts[p] : none; };
        auto cls_at = [&](size_t p) -> uint8_t { return p < end ? classify(cpts[p]) : 0; };
        auto lower = [&](uint32_t c) { return (llama3_ && c >= 'A' && c <= 'Z') ? c + 32 : c; };
        auto is_l = [](uint8_t c) { return (c & cls_letter) != 0; };
        auto is_n = [](uint8_t c) { return (c & cls_number) != 0; };
        auto is_s = [](uint8_t c) { return (c & cls_space) != 0; };
        auto is_other = [&](uint8_t c) { return !(c & (cls_space | cls_letter | cls_number)) && (c & cls_defined); };
        size_t prev = begin;
        auto emit = [&](size_t to) {
            const size_t n = to - prev;
            if (n > 0) out.push_back(n);
            prev = to;
            return n;
        };
        for (size_t pos = begin; pos < end;) {
            const uint32_t c = cpt_at(pos);
            const uint8_t f = cls_at(pos);
            if (c == '\'' && pos + 1 < end) {  // contractions
                const uint32_t n1 = lower(cpt_at(pos + 1));
                if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                    pos += emit(pos + 2);
                    continue;
                }
                if (pos + 2 < end) {
                    const uint32_t n2 = lower(cpt_at(pos + 2));
                    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                        pos += emit(pos + 3);
                        continue;
                    }
                }
            }
            if (llama3_) {
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(c == '\r' || c == '\n' || is_n(f)) && (is_l(f) || is_l(cls_at(pos + 1)))) {
                    ++pos;
                    while (is_l(cls_at(pos))) ++pos;
                    emit(pos);
                    continue;
                }
                // \p{N}{1,3}
                if (is_n(f)) {
                    size_t ini = pos;
                    while (is_n(cls_at(pos))) {
                        if (++pos - ini >= 3) {
                            emit(pos);
                            ini = pos;
                        }
                    }
                    emit(pos);
                    continue;
                }
                // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (llama.cpp tests the first code point's own class)
                uint8_t f2 = c == ' ' ? cls_at(pos + 1) : f;
                if (!(f2 & (cls_space | cls_letter | cls_number)) && (f & cls_defined)) {
                    pos += (c == ' ');
                    while (is_other(f2)) f2 = cls_at(++pos);
                    while (cpt_at(pos) == '\r' || cpt_at(pos) == '\n') ++pos;
                    emit(pos);
                    continue;
                }
            } else {
                uint8_t f2 = c == ' ' ? cls_at(pos + 1) : f;
                if (is_l(f2)) {  // ' ?\p{L}+'
                    pos += (c == ' ');
                    while (is_l(f2)) f2 = cls_at(++pos);
                    emit(pos);
                    continue;
                }
                if (is_n(f2)) {  // ' ?\p{N}+'
                    pos += (c == ' ');
                    while (is_n(f2)) f2 = cls_at(++pos);
                    emit(pos);
                    continue;
                }
                if (is_other(f2)) {  // ' ?[^\s\p{L}\p{N}]+'
                    pos += (c == ' ');
                    while (is_other(f2)) f2 = cls_at(++pos);
                    emit(pos);
                    continue;
                }
            }
            size_t n_space = 0;
            size_t last_newline_end = 0;
            while (is_s(cls_at(pos + n_space))) {
                const uint32_t c2 = cpt_at(pos + n_space);
                if (c2 == '\r' || c2 == '\n') last_newline_end = pos + n_space + 1;
                ++n_space;
            }
            if (llama3_ && last_newline_end > 0) {  // \s*[\r\n]+
                pos = last_newline_end;
                emit(pos);
                continue;
            }
            if (n_space > 1 && cpt_at(pos + n_space) != none) {  // \s+(?!\S)
                pos += n_space - 1;
                emit(pos);
                continue;
            }
            if (n_space > 0) {  // \s+
                pos += n_space;
                emit(pos);
                continue;
            }
            emit(++pos);  // no match: one code point alone
        }
    }

private:
    bool llama3_;
};

// A regex applied with PCRE2; unmatched gaps stay words of their own, as with llama.cpp's
// std::regex path. \s and \S are rewritten to llama.cpp's whitespace set.
class regex_stage final : public stage {
public:
    explicit regex_stage(const std::string& pattern) {
        const std::string pat = rewrite_spaces(pattern);
        int err = 0;
        PCRE2_SIZE off = 0;
        code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(), PCRE2_UTF | PCRE2_UCP, &err, &off,
                              nullptr);
        if (!code_) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof(msg));
            throw std::runtime_error("pre-tokenizer regex does not compile: " + std::string(reinterpret_cast<char*>(msg)));
        }
    }
    ~regex_stage() override { pcre2_code_free(code_); }
    regex_stage(const regex_stage&) = delete;
    regex_stage& operator=(const regex_stage&) = delete;

    void run(const std::vector<uint32_t>& cpts, size_t begin, size_t end, std::vector<size_t>& out) const override {
        // PCRE2 needs valid UTF-8: code points it rejects (surrogates) stand in as U+FFFD, which
        // belongs to the same classes (neither letter, number nor space).
        std::string text;
        std::vector<size_t> byte_to_cpt;  // (bytes + 1) code point index at each byte offset
        for (size_t i = begin; i < end; ++i) {
            uint32_t c = cpts[i];
            if ((c >= 0xD800 && c <= 0xDFFF) || c >= max_cpt) c = replacement_cpt;
            const size_t before = text.size();
            cpt_append_utf8(c, text);
            byte_to_cpt.insert(byte_to_cpt.end(), text.size() - before, i - begin);
        }
        byte_to_cpt.push_back(end - begin);
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
        size_t last = 0;  // code points consumed so far
        PCRE2_SIZE at = 0;
        uint32_t options = 0;
        while (at <= text.size()) {
            const int rc = pcre2_match(code_, subject, text.size(), at, options, md, nullptr);
            if (rc == PCRE2_ERROR_NOMATCH) {
                if (options == 0) break;
                // an empty match could not be followed by a non-empty one here: step one character
                options = 0;
                if (at >= text.size()) break;
                at += utf8_len(static_cast<uint8_t>(text[at]));
                continue;
            }
            if (rc < 0) break;
            const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
            const size_t m_begin = byte_to_cpt[ov[0]];
            const size_t m_end = byte_to_cpt[ov[1]];
            if (m_begin > last) out.push_back(m_begin - last);
            if (m_end > m_begin) out.push_back(m_end - m_begin);
            last = m_end;
            at = ov[1];
            options = ov[0] == ov[1] ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
        }
        pcre2_match_data_free(md);
        if (end - begin > last) out.push_back(end - begin - last);
    }

private:
    static std::string rewrite_spaces(const std::string& p) {
        static const std::string ws = "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
                                      "\\x{202F}\\x{205F}\\x{3000}";
        std::string out;
        bool in_class = false;
        for (size_t i = 0; i < p.size(); ++i) {
            const char c = p[i];
            if (c == '\\' && i + 1 < p.size()) {
                const char n = p[++i];
                if (n == 's') out += in_class ? ws : "[" + ws + "]";
                else if (n == 'S' && !in_class) out += "[^" + ws + "]";
                else {
                    out += c;
                    out += n;
                }
                continue;
            }
            if (c == '[' && !in_class) in_class = true;
            else if (c == ']' && in_class) in_class = false;
            out += c;
        }
        return out;
    }

    pcre2_code* code_ = nullptr;
};

class staged_splitter final : public splitter {
public:
    explicit staged_splitter(std::vector<std::unique_ptr<stage>> stages) : stages_(std::move(stages)) {}

    std::vector<std::string> split(std::string_view text) const override {
        const std::vector<uint32_t> cpts = cpts_from_utf8(text);
        std::vector<size_t> pieces{cpts.size()};
        for (const auto& st : stages_) {
            std::vector<size_t> finer;
            finer.reserve(pieces.size() * 2);
            size_t start = 0;
            for (size_t len : pieces) {
                st->run(cpts, start, start + len, finer);
                start += len;
            }
            pieces = std::move(finer);
        }
        return encode_words(cpts, pieces);
    }

private:
    std::vector<std::unique_ptr<stage>> stages_;
};

constexpr const char* re_qwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool name_in(std::string_view name, std::initializer_list<std::string_view> names) {
    for (auto n : names) {
        if (name == n) return true;
    }
    return false;
}

}  // namespace

// A stage list: "gpt2" and "llama3" name the hand-written stages, anything else is a regex.
std::unique_ptr<splitter> make_splitter(const std::vector<std::string>& parts) {
    std::vector<std::unique_ptr<stage>> stages;
    for (const std::string& s : parts) {
        if (s == "gpt2") stages.push_back(std::make_unique<gpt2_stage>(false));
        else if (s == "llama3") stages.push_back(std::make_unique<gpt2_stage>(true));
        else stages.push_back(std::make_unique<regex_stage>(s));
    }
    return std::make_unique<staged_splitter>(std::move(stages));
}

pre_tokenizer pre_tokenizer_for(std::string_view pre) {
    pre_tokenizer p;
    if (pre.empty() || pre == "default") {
        p.split = make_splitter({"[\\p{P}\\$\\+<=>\\^~\\|]+", "gpt2", "\\p{N}+", "[0-9][0-9][0-9]"});
    } else if (name_in(pre, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"})) {
        p.split = make_splitter({"llama3"});
        p.ignore_merges = true;
        p.add_bos_default = true;
    } else if (name_in(pre, {"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
        p.split = make_splitter({"llama3"});
    } else if (pre == "deepseek-coder") {
        p.split = make_splitter({"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+",
                                 "\\p{N}"});
        p.clean_spaces = false;
    } else if (pre == "deepseek-v3") {
        p.split = make_splitter({"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
                                 "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
                                 "?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"});
        p.clean_spaces = false;
    } else if (pre == "falcon") {
        p.split = make_splitter({"[\\p{P}\\$\\+<=>\\^~\\|`]+", "gpt2", "[0-9][0-9][0-9]"});
    } else if (name_in(pre, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})) {
        p.split = make_splitter({"\\p{N}", "gpt2"});
        p.clean_spaces = !name_in(pre, {"command-r", "smollm"});
    } else if (name_in(pre, {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                             "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion"})) {
        p.split = make_splitter({"gpt2"});
        p.clean_spaces = pre != "trillion";
    } else if (name_in(pre, {"stablelm2", "qwen2", "deepseek-r1-qwen", "megrez", "hunyuan"})) {
        p.split = make_splitter({re_qwen2});
        p.clean_spaces = !name_in(pre, {"qwen2", "deepseek-r1-qwen"});
    } else if (name_in(pre, {"poro-chat", "bloom", "gpt3-finnish"})) {
        p.split = make_splitter({" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"});
        p.clean_spaces = pre != "poro-chat";
    } else if (pre == "viking") {
        p.split = make_splitter({" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+", "\\p{N}"});
        p.clean_spaces = false;
    } else if (pre == "tekken") {
        p.split = make_splitter({"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=["
                                 "\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
                                 "\\s+(?!\\S)|\\s+"});
        p.clean_spaces = false;
        p.ignore_merges = true;
        p.add_bos_default = true;
    } else if (name_in(pre, {"gpt-4o", "llama4"})) {
        p.split = make_splitter(
            {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'["
             "lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'["
             "vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"});
        p.clean_spaces = false;
    } else if (pre == "seed-coder") {
        p.split = make_splitter({"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| "
                                 "?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"});
        p.clean_spaces = false;
    } else {
        // llama.cpp refuses names it does not know; hearth tokenizes them with GPT-2's rules.
        p.split = make_splitter({"gpt2"});
        p.known = false;
    }
    return p;
}

}  // namespace hearth::unicode
