// The tokenizer read from GGUF metadata (tokenizer.ggml.*): SentencePiece-style ("llama", with
// byte fallback) and GPT-2 byte-level BPE ("gpt2", with the pre-tokenizer the file names).
// Behaviour matches llama.cpp token for token (tests compare against its reference output).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

class gguf_file;

class vocab_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using token_id = int32_t;

// tokenizer.ggml.token_type values.
enum class token_kind : int32_t {
    undefined = 0,
    normal = 1,
    unknown = 2,
    control = 3,
    user_defined = 4,
    unused = 5,
    byte = 6,
};

enum class vocab_kind { spm, bpe };

class vocab {
public:
    // Reads the tokenizer of any GGUF file, vocabulary-only files included. Throws vocab_error
    // naming the key when it is missing, malformed or of an unsupported model.
    static std::unique_ptr<vocab> from_gguf(const gguf_file& file);
    ~vocab();

    vocab_kind kind() const;
    std::string_view model_name() const;  // tokenizer.ggml.model ("llama", "gpt2")
    std::string_view pre_name() const;    // tokenizer.ggml.pre, "default" when absent
    int32_t n_tokens() const;

    token_id bos() const;   // -1 when none
    token_id eos() const;   // -1 when none
    token_id eot() const;   // -1 when none (<|im_end|>, <|eot_id|>, <|end|> ...)
    bool add_bos() const;
    bool add_eos() const;
    bool is_eog(token_id id) const;  // end of generation: eos, eot and the file's other enders
    bool is_control(token_id id) const;
    token_kind kind_of(token_id id) const;
    const std::string& text_of(token_id id) const;  // the token's text as stored in the file
    std::optional<token_id> find(std::string_view text) const;

    // add_special: BOS/EOS as the file says. parse_special: control/user-defined token texts in
    // the input become those tokens (what llama-cli does); otherwise only user-defined ones do.
    std::vector<token_id> tokenize(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes a token stands for (SentencePiece's U+2581 as a space, <0xNN> as the byte,
    // GPT-2's byte-level characters as bytes). Control tokens render their text when special.
    std::string token_to_piece(token_id id, bool special = true) const;
    std::string detokenize(const std::vector<token_id>& ids, bool special = true) const;

    // The tokenizer's state, defined in vocab-impl.h for the engine's own tokenizer files.
    struct impl;

private:
    vocab();
    std::unique_ptr<impl> impl_;
};

}  // namespace hearth
