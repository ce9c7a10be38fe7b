// Loading the tokenizer from GGUF metadata, special-token handling and detokenization, following
// llama.cpp (llama-vocab.cpp) so that token ids match its output exactly.
#include "vocab-impl.h"

#include "gguf.h"

#include <algorithm>
#include <cctype>

namespace hearth {

namespace {

const char* const key_model = "tokenizer.ggml.model";
const char* const key_tokens = "tokenizer.ggml.tokens";

uint32_t attr_from_type(int32_t type) {
    switch (static_cast<token_kind>(type)) {
        case token_kind::unknown: return attr_unknown;
        case token_kind::unused: return attr_unused;
        case token_kind::normal: return attr_normal;
        case token_kind::control: return attr_control;
        case token_kind::user_defined: return attr_user_defined;
        case token_kind::byte: return attr_byte;
        default: return attr_undefined;
    }
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// SentencePiece's visible space U+2581 back to ' '.
std::string unescape_spaces(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (i + 2 < s.size() && s[i] == '\xE2' && s[i + 1] == '\x96' && s[i + 2] == '\x81') {
            out.push_back(' ');
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::string escape_spaces(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    for (char c : s) {
        if (c == ' ') out += "\xE2\x96\x81";
        else out.push_back(c);
    }
    return out;
}

// GPT-2 byte alphabet back to bytes; llama.cpp marks characters outside it inline.
std::string decode_byte_level(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (uint32_t cpt : unicode::cpts_from_utf8(text)) {
        std::string utf8;
        unicode::cpt_append_utf8(cpt, utf8);
        const int b = unicode::utf8_to_byte(utf8);
        if (b >= 0) {
            out.push_back(static_cast<char>(b));
            continue;
        }
        out += "[UNK_BYTE_0x";
        for (char c : utf8) {
            out.push_back(hex[static_cast<uint8_t>(c) >> 4]);
            out.push_back(hex[static_cast<uint8_t>(c) & 15]);
        }
        out.append(text);
        out.push_back(']');
    }
    return out;
}

template <typename T, typename F>
T read_key(const char* key, F&& get) {
    try {
        return get();
    } catch (const gguf_error& e) {
        throw vocab_error(std::string(key) + ": " + e.what());
    }
}

}  // namespace

vocab::vocab() : impl_(std::make_unique<impl>()) {}
vocab::~vocab() = default;

std::unique_ptr<vocab> vocab::from_gguf(const gguf_file& file) {
    std::unique_ptr<vocab> v(new vocab());
    impl& d = *v->impl_;

    const auto model = read_key<std::optional<std::string_view>>(key_model, [&] { return file.get_string(key_model); });
    if (!model) throw vocab_error(std::string(key_model) + ": missing (the file has no tokenizer)");
    d.model_name = std::string(*model);
    if (d.model_name == "llama") d.kind = vocab_kind::spm;
    else if (d.model_name == "gpt2") d.kind = vocab_kind::bpe;
    else throw vocab_error(std::string(key_model) + ": unsupported tokenizer model '" + d.model_name + "'");

    const char* key_pre = "tokenizer.ggml.pre";
    const auto pre = read_key<std::optional<std::string_view>>(key_pre, [&] { return file.get_string(key_pre); });
    d.pre_name = pre ? std::string(*pre) : "default";

    const auto texts = read_key<std::optional<std::vector<std::string_view>>>(
        key_tokens, [&] { return file.get_string_array(key_tokens); });
    if (!texts || texts->empty()) throw vocab_error(std::string(key_tokens) + ": missing or empty");
    if (texts->size() > static_cast<size_t>(INT32_MAX)) throw vocab_error(std::string(key_tokens) + ": too many tokens");
    const size_t n = texts->size();

    const char* key_scores = "tokenizer.ggml.scores";
    const auto scores = read_key<std::optional<std::vector<float>>>(key_scores, [&] { return file.get_f32_array(key_scores); });
    if (scores && scores->size() != n) {
        throw vocab_error(std::string(key_scores) + ": " + std::to_string(scores->size()) + " scores for " +
                          std::to_string(n) + " tokens");
    }
    const char* key_types = "tokenizer.ggml.token_type";
    const auto types = read_key<std::optional<std::vector<int32_t>>>(key_types, [&] { return file.get_i32_array(key_types); });
    if (types && types->size() != n) {
        throw vocab_error(std::string(key_types) + ": " + std::to_string(types->size()) + " types for " +
                          std::to_string(n) + " tokens");
    }

    d.tokens.resize(n);
    d.text_to_id.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        auto& t = d.tokens[i];
        t.text = (*texts)[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string((*texts)[i]);
        t.score = scores ? (*scores)[i] : 0.0f;
        const int32_t type = types ? (*types)[i] : static_cast<int32_t>(token_kind::normal);
        t.type = type >= 0 && type <= 6 ? static_cast<token_kind>(type) : token_kind::undefined;
        t.attr = attr_from_type(type);
        d.text_to_id[t.text] = static_cast<token_id>(i);
    }

    if (d.kind == vocab_kind::bpe) {
        const char* key_merges = "tokenizer.ggml.merges";
        const auto merges = read_key<std::optional<std::vector<std::string_view>>>(
            key_merges, [&] { return file.get_string_array(key_merges); });
        if (!merges) throw vocab_error(std::string(key_merges) + ": missing (required by a gpt2 tokenizer)");
        d.merge_rank.reserve(merges->size() * 2);
        for (size_t i = 0; i < merges->size(); ++i) {
            const std::string_view m = (*merges)[i];
            if (m.find(' ', 1) == std::string_view::npos) {
                throw vocab_error(std::string(key_merges) + ": entry " + std::to_string(i) + " is not 'left right'");
            }
            d.merge_rank.try_emplace(std::string(m), static_cast<int32_t>(i));
        }
        try {
            d.pre = unicode::pre_tokenizer_for(pre ? *pre : std::string_view());
        } catch (const std::runtime_error& e) {
            throw vocab_error(std::string(key_pre) + ": " + e.what());
        }
        d.bos = d.eos = 11;  // llama.cpp's defaults for gpt2 files without the keys
        d.add_bos = d.pre.add_bos_default;
        d.add_space_prefix = false;
    } else {
        d.bos = 1;
        d.eos = 2;
        d.unk = 0;
        d.add_bos = true;
        d.add_space_prefix = true;
        d.pre.clean_spaces = false;
    }

    // Special ids: out-of-range values are ignored (llama.cpp warns and keeps its default).
    auto read_id = [&](const char* key, token_id& id) {
        const auto value = read_key<std::optional<int64_t>>(key, [&] { return file.get_int(key); });
        if (value && *value >= 0 && static_cast<uint64_t>(*value) < n) id = static_cast<token_id>(*value);
    };
    read_id("tokenizer.ggml.bos_token_id", d.bos);
    read_id("tokenizer.ggml.eos_token_id", d.eos);
    read_id("tokenizer.ggml.eot_token_id", d.eot);
    read_id("tokenizer.ggml.unknown_token_id", d.unk);
    read_id("tokenizer.ggml.padding_token_id", d.pad);
    for (token_id* id : {&d.bos, &d.eos, &d.unk}) {
        if (*id >= static_cast<token_id>(n)) *id = -1;
    }
    auto read_flag = [&](const char* key, bool& flag) {
        const auto value = read_key<std::optional<bool>>(key, [&] { return file.get_bool(key); });
        if (value) flag = *value;
    };
    read_flag("tokenizer.ggml.add_bos_token", d.add_bos);
    read_flag("tokenizer.ggml.add_eos_token", d.add_eos);
    read_flag("tokenizer.ggml.add_space_prefix", d.add_space_prefix);
    if (d.add_bos && d.bos < 0) throw vocab_error("tokenizer.ggml.add_bos_token: set, but there is no BOS token");
    if (d.add_eos && d.eos < 0) throw vocab_error("tokenizer.ggml.add_eos_token: set, but there is no EOS token");

    // End-of-generation tokens are recognised by their text, as llama.cpp does; they become control
    // tokens (so that plain text never produces them). The first name in this order is the EOT.
    static const char* const eog_names[] = {"<|eot_id|>", "<|im_end|>",       "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|end_of_text|>", "<EOT>",   "_<EOT>",
                                            "<end_of_utterance>", "<|eom_id|>"};
    for (const char* name : eog_names) {
        const token_id id = d.lookup(name);
        if (id < 0) continue;
        if (d.eot < 0 && std::string_view(name) != "<|eom_id|>") d.eot = id;
        d.eog.push_back(id);
        auto& t = d.tokens[id];
        if (!(t.attr & attr_control)) {
            t.attr = attr_control;
            t.type = token_kind::control;
        }
    }
    if (d.eot < 0) {
        const token_id id = d.lookup("<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");  // DeepSeek
        if (id >= 0) d.eot = id;
    }
    if (d.eos >= 0) d.eog.push_back(d.eos);
    if (d.eot >= 0) d.eog.push_back(d.eot);
    std::sort(d.eog.begin(), d.eog.end());
    d.eog.erase(std::unique(d.eog.begin(), d.eog.end()), d.eog.end());

    for (size_t i = 0; i < n; ++i) {
        if (d.tokens[i].attr & (attr_control | attr_user_defined | attr_unknown)) {
            d.special_cache.push_back(static_cast<token_id>(i));
        }
    }
    std::stable_sort(d.special_cache.begin(), d.special_cache.end(), [&](token_id a, token_id b) {
        return d.tokens[a].text.size() > d.tokens[b].text.size();
    });
    for (token_id id : d.special_cache) {
        const std::string& t = d.tokens[id].text;
        d.special_first[static_cast<uint8_t>(t[0])] = true;
        if (std::find(d.special_lengths.begin(), d.special_lengths.end(), t.size()) == d.special_lengths.end()) {
            d.special_lengths.push_back(t.size());
        }
    }

    // Per-model token attributes llama.cpp adds by name: phi-3 strips whitespace after its special
    // tokens (except <unk>, <s>, <|endoftext|>); jina-v2 strips it before <mask>.
    const auto name = read_key<std::optional<std::string_view>>("general.name", [&] { return file.get_string("general.name"); });
    const std::string lname = to_lower(name ? *name : std::string_view());
    if (d.pre_name.find("jina-v2-") != std::string::npos) {
        const token_id mask = d.lookup("<mask>");
        if (mask >= 0) d.tokens[mask].attr |= attr_lstrip;
    } else if (lname.find("phi-3") != std::string::npos || lname.find("phi3") != std::string::npos) {
        for (token_id id : d.special_cache) d.tokens[id].attr |= attr_rstrip;
        if (token_id id = d.lookup("</s>"); id >= 0) d.tokens[id].attr |= attr_rstrip;
        for (const char* plain : {"<unk>", "<s>", "<|endoftext|>"}) {
            if (token_id id = d.lookup(plain); id >= 0) d.tokens[id].attr &= ~attr_rstrip;
        }
    }

    d.pieces.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const auto& t = d.tokens[i];
        std::string& piece = d.pieces[i];
        if (t.attr & (attr_unknown | attr_control | attr_user_defined)) {
            piece = t.text;
        } else if (t.attr & attr_normal) {
            piece = d.kind == vocab_kind::spm ? unescape_spaces(t.text) : decode_byte_level(t.text);
        } else if ((t.attr & attr_byte) && d.kind == vocab_kind::spm) {
            // "<0xNN>"
            unsigned value = 0;
            for (size_t k = 3; k < t.text.size() && std::isxdigit(static_cast<unsigned char>(t.text[k])); ++k) {
                const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(t.text[k])));
                value = value * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10);
            }
            piece.assign(1, static_cast<char>(value & 0xFF));
        }
    }
    return v;
}

vocab_kind vocab::kind() const { return impl_->kind; }
std::string_view vocab::model_name() const { return impl_->model_name; }
std::string_view vocab::pre_name() const { return impl_->pre_name; }
int32_t vocab::n_tokens() const { return static_cast<int32_t>(impl_->tokens.size()); }
token_id vocab::bos() const { return impl_->bos; }
token_id vocab::eos() const { return impl_->eos; }
token_id vocab::eot() const { return impl_->eot; }
bool vocab::add_bos() const { return impl_->add_bos; }
bool vocab::add_eos() const { return impl_->add_eos; }

bool vocab::is_eog(token_id id) const { return std::binary_search(impl_->eog.begin(), impl_->eog.end(), id); }

bool vocab::is_control(token_id id) const {
    return id >= 0 && id < n_tokens() && (impl_->tokens[id].attr & attr_control);
}

token_kind vocab::kind_of(token_id id) const {
    if (id < 0 || id >= n_tokens()) throw vocab_error("token id " + std::to_string(id) + " out of range");
    return impl_->tokens[id].type;
}

const std::string& vocab::text_of(token_id id) const {
    if (id < 0 || id >= n_tokens()) throw vocab_error("token id " + std::to_string(id) + " out of range");
    return impl_->tokens[id].text;
}

std::optional<token_id> vocab::find(std::string_view text) const {
    const token_id id = impl_->lookup(text);
    if (id < 0) return std::nullopt;
    return id;
}

namespace {

struct fragment {
    token_id id = -1;  // >= 0: a special token; otherwise text[offset, offset + length)
    size_t offset = 0;
    size_t length = 0;
};

bool is_space_byte(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool is_special_candidate(const vocab::impl& d, token_id id, bool parse_special) {
    const uint32_t attr = d.tokens[id].attr;
    if (!(attr & (attr_control | attr_user_defined | attr_unknown))) return false;
    return parse_special || !(attr & (attr_control | attr_unknown));
}

// llama.cpp's tokenizer_st_partition: for each special token, longest first, cut every text
// fragment at each of its occurrences (leftmost first), honouring lstrip/rstrip.
std::vector<fragment> partition(const vocab::impl& d, std::string_view text, bool parse_special) {
    std::vector<fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});

    // Only special tokens that occur somewhere in the text can cut it; finding those by lookup at
    // each plausible start keeps vocabularies with thousands of special tokens fast.
    std::vector<token_id> present;
    for (size_t i = 0; i < text.size(); ++i) {
        if (!d.special_first[static_cast<uint8_t>(text[i])]) continue;
        for (size_t len : d.special_lengths) {
            if (len > text.size() - i) continue;
            const token_id id = d.lookup(text.substr(i, len));
            if (id >= 0 && is_special_candidate(d, id, parse_special)) present.push_back(id);
        }
    }
    if (present.empty()) return frags;
    std::sort(present.begin(), present.end());
    present.erase(std::unique(present.begin(), present.end()), present.end());

    std::vector<fragment> next;
    for (token_id sid : d.special_cache) {
        if (!std::binary_search(present.begin(), present.end(), sid)) continue;
        const auto& tok = d.tokens[sid];
        const std::string_view st = tok.text;
        // quick reject: no text fragment contains it
        bool any = false;
        for (const auto& f : frags) {
            if (f.id < 0 && text.substr(f.offset, f.length).find(st) != std::string_view::npos) {
                any = true;
                break;
            }
        }
        if (!any) continue;
        next.clear();
        for (const auto& f : frags) {
            if (f.id >= 0) {
                next.push_back(f);
                continue;
            }
            size_t base = f.offset;
            size_t len = f.length;
            while (len > 0) {
                const size_t match = text.substr(0, base + len).find(st, base);
                if (match == std::string_view::npos) break;
                if (match > base) {
                    size_t left_len = match - base;
                    if (tok.attr & attr_lstrip) {
                        while (left_len > 0 && is_space_byte(text[base + left_len - 1])) --left_len;
                    }
                    if (left_len > 0) next.push_back({-1, base, left_len});
                }
                next.push_back({sid, 0, 0});
                size_t right = match + st.size();
                size_t right_len = base + len - right;
                if (tok.attr & attr_rstrip) {
                    while (right_len > 0 && is_space_byte(text[right])) {
                        ++right;
                        --right_len;
                    }
                }
                base = right;
                len = right_len;
            }
            if (len > 0) next.push_back({-1, base, len});
        }
        frags.swap(next);
    }
    return frags;
}

}  // namespace

std::vector<token_id> vocab::tokenize(std::string_view text, bool add_special, bool parse_special) const {
    const impl& d = *impl_;
    const std::vector<fragment> frags = partition(d, text, parse_special);
    std::vector<token_id> out;
    out.reserve(text.size() / 2 + 4);
    if (add_special && d.add_bos) out.push_back(d.bos);
    if (d.kind == vocab_kind::spm) {
        // a space is prepended to the text and to every text fragment after a special token
        bool prev_special = true;
        for (const auto& f : frags) {
            if (f.id >= 0) {
                out.push_back(f.id);
                prev_special = true;
                continue;
            }
            std::string piece;
            if (d.add_space_prefix && prev_special) piece = " ";
            piece.append(text.substr(f.offset, f.length));
            d.spm_tokenize(escape_spaces(piece), out);
            prev_special = false;
        }
    } else {
        for (const auto& f : frags) {
            if (f.id >= 0) out.push_back(f.id);
            else d.bpe_tokenize(text.substr(f.offset, f.length), out);
        }
    }
    if (add_special && d.add_eos) out.push_back(d.eos);
    return out;
}

std::string vocab::token_to_piece(token_id id, bool special) const {
    if (id < 0 || id >= n_tokens()) return {};
    const auto& t = impl_->tokens[id];
    if (!special && (t.attr & (attr_unknown | attr_control))) return {};
    return impl_->pieces[id];
}

namespace {

// llama.cpp's clean_spaces passes over the detokenized bytes (BPE vocabularies that ask for it):
// no space before ?!., ; " ' " loses its spaces; " 's", " 'm", " 're", " 've" lose the space.
void clean_spaces(std::string& s) {
    auto pass = [&](auto&& step) {
        const size_t total_in = s.size();
        size_t total = total_in ? 1 : 0;
        for (size_t i = 1; i < total_in; ++i) step(i, total, total_in);
        s.resize(total);
    };
    pass([&](size_t& i, size_t& total, size_t) {
        const char x = s[i];
        if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
        s[total++] = x;
    });
    pass([&](size_t& i, size_t& total, size_t total_in) {
        const char x = s[i];
        if (x == '\'' && i + 1 < total_in && s[i - 1] == ' ' && s[i + 1] == ' ') {
            --total;
            s[++i] = '\0';
        }
        s[total++] = x;
    });
    pass([&](size_t& i, size_t& total, size_t total_in) {
        const char x = s[i];
        if (s[i - 1] == ' ' && x == '\'' && i + 1 < total_in) {
            const char x1 = s[i + 1];
            if (x1 == 's' || x1 == 'm') {
                --total;
            } else if (x1 != 't' && x1 != 'd' && i + 2 < total_in) {
                const char x2 = s[i + 2];
                if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
            }
        }
        s[total++] = x;
    });
}

}  // namespace

std::string vocab::detokenize(const std::vector<token_id>& ids, bool special) const {
    std::string out;
    bool remove_space = impl_->add_space_prefix;
    for (token_id id : ids) {
        std::string piece = token_to_piece(id, special);
        if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        // llama.cpp stops stripping after the first token even when it rendered nothing
        remove_space = false;
        out += piece;
    }
    if (impl_->pre.clean_spaces) clean_spaces(out);
    return out;
}

}  // namespace hearth
