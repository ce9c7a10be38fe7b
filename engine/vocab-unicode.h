// UTF-8 and pre-tokenizer helpers of the tokenizers (internal to vocab*.cpp). Decoding follows
// llama.cpp's lenient rules (no overlong or surrogate checks, an invalid byte becomes U+FFFD) so that
// byte sequences split and encode exactly as it does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::unicode {

// Byte length a UTF-8 sequence announces by its first byte (1 for continuation and invalid bytes).
size_t utf8_len(uint8_t first);

// Lenient decode: an invalid or truncated sequence yields U+FFFD and consumes one byte.
std::vector<uint32_t> cpts_from_utf8(std::string_view text);
void cpt_append_utf8(uint32_t cpt, std::string& out);

// GPT-2's byte-level alphabet: each byte as a printable code point (UTF-8 encoded), and back.
const std::string& byte_to_utf8(uint8_t byte);
// -1 when the UTF-8 text is not one of the 256 byte characters.
int utf8_to_byte(std::string_view text);

// How a pre-tokenizer splits text into words before BPE merges.
class splitter {
public:
    virtual ~splitter() = default;
    // Returns the words, each already mapped to the byte-level alphabet.
    virtual std::vector<std::string> split(std::string_view text) const = 0;
};

// Applies the stages in order, each splitting the pieces the previous one left: "gpt2" and
// "llama3" are llama.cpp's hand-written GPT-2/Llama-3 splitters, anything else a PCRE2 pattern.
// Throws std::runtime_error when a pattern does not compile.
std::unique_ptr<splitter> make_splitter(const std::vector<std::string>& stages);

// What a tokenizer.ggml.pre name means to llama.cpp: how to split, whether detokenize cleans
// spaces before punctuation, whether whole words in the vocabulary skip the merges.
struct pre_tokenizer {
    std::unique_ptr<splitter> split;
    bool clean_spaces = true;
    bool ignore_merges = false;
    bool add_bos_default = false;  // llama.cpp's add_bos when the file has no add_bos key
    bool known = true;             // false: the name was not recognised and GPT-2's rules are used
};

pre_tokenizer pre_tokenizer_for(std::string_view pre);

}  // namespace hearth::unicode
