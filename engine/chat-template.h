// Chat templates recognised from tokenizer.chat_template: the common fixed formats, rendered
// by hand (no Jinja engine).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

enum class chat_template_kind { chatml, llama2, llama3, zephyr, mistral };

struct chat_message {
    std::string role;     // "system", "user" or "assistant"
    std::string content;
};

class chat_template_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string_view chat_template_name(chat_template_kind kind);
// Parses "chatml", "llama2" ... (for --chat-template overrides).
std::optional<chat_template_kind> chat_template_from_name(std::string_view name);
// Recognises a Jinja template source by its distinctive markers; nullopt when it is none of ours.
std::optional<chat_template_kind> chat_template_detect(std::string_view jinja_source);

// Renders messages as the template would, ending with the assistant's opening when
// add_generation_prompt. bos/eos are the vocabulary's token texts (some templates spell them).
// Throws chat_template_error on a role the template cannot express.
std::string chat_template_apply(chat_template_kind kind, const std::vector<chat_message>& messages,
                                bool add_generation_prompt, std::string_view bos_text, std::string_view eos_text);

}  // namespace hearth
