// Internal state of hearth::vocab, shared by vocab.cpp (loading, special tokens, pieces) and the
// two tokenizers (vocab-spm.cpp, vocab-bpe.cpp).
#pragma once

#include "vocab-unicode.h"
#include "vocab.h"

#include <array>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth {

// Token attributes as llama.cpp derives them (a bit set; the file's type plus name-based fixes).
enum token_attr : uint32_t {
    attr_undefined = 0,
    attr_unknown = 1 << 0,
    attr_unused = 1 << 1,
    attr_normal = 1 << 2,
    attr_control = 1 << 3,
    attr_user_defined = 1 << 4,
    attr_byte = 1 << 5,
    attr_lstrip = 1 << 7,
    attr_rstrip = 1 << 8,
};

struct string_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct vocab::impl {
    vocab_kind kind = vocab_kind::spm;
    std::string model_name;
    std::string pre_name;

    struct token {
        std::string text;
        float score = 0.0f;
        token_kind type = token_kind::normal;
        uint32_t attr = attr_normal;
    };
    std::vector<token> tokens;
    std::unordered_map<std::string, token_id, string_hash, std::equal_to<>> text_to_id;

    // BPE merges: "left right" -> rank.
    std::unordered_map<std::string, int32_t, string_hash, std::equal_to<>> merge_rank;
    unicode::pre_tokenizer pre;

    token_id bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
    bool add_bos = false, add_eos = false;
    bool add_space_prefix = false;
    std::vector<token_id> eog;  // sorted

    std::vector<token_id> special_cache;  // control/user-defined/unknown ids, longest text first
    std::array<bool, 256> special_first{};  // bytes a special token's text starts with
    std::vector<size_t> special_lengths;    // distinct text lengths of special tokens
    std::vector<std::string> pieces;      // token_to_piece(id, special=true) for every id

    token_id lookup(std::string_view text) const {
        auto it = text_to_id.find(text);
        return it == text_to_id.end() ? -1 : it->second;
    }
    int32_t rank_of(std::string_view left, std::string_view right) const;

    // Tokenize one raw text fragment (no special tokens inside), appending to out.
    void spm_tokenize(std::string_view text, std::vector<token_id>& out) const;
    void bpe_tokenize(std::string_view text, std::vector<token_id>& out) const;
    token_id spm_byte_token(uint8_t byte) const;
};

}  // namespace hearth
