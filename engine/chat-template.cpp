// Hand-written renderers for the chat formats hearth recognises. Each one reproduces what the
// model's own Jinja template (as Hugging Face renders it) produces, with one deliberate change:
// the BOS text that some templates put at the very start is left out, because the caller
// tokenizes the result with add_special=true, which already adds BOS where the vocabulary asks
// for it; writing it here as well would give a double BOS (llama.cpp makes the same choice).
// BOS text inside the conversation (Llama 2 opens every later turn with it) is kept.
//
// Formats, for system S, user U1, assistant A, user U2 and a generation prompt:
//   chatml   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n...<|im_start|>assistant\n
//            (no default system prompt is invented, unlike SmolLM2's and Qwen2's templates)
//   llama3   <|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>...<|start_header_id|>assistant
//            <|end_header_id|>\n\n   (contents trimmed, as Meta's template does)
//   llama2   [INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A </s><s>[INST] U2 [/INST]
//            (Llama-2-chat: user and assistant texts stripped; the generation prompt adds nothing)
//   mistral  " [INST] S\n\nU1 [/INST] A</s> [INST] U2 [/INST]" — Mistral's "v1" template
//            (llama.cpp's "mistral-v1", the official template of Mistral-7B-Instruct v0.1/v0.2);
//            it has no system role, so system text joins the next user message.
//   zephyr   <|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA</s>\n...<|assistant|>\n
//            (TinyLlama-Chat / Zephyr; </s> is the vocabulary's eos text)
#include "chat-template.h"

#include <array>
#include <utility>

namespace hearth {

namespace {

constexpr std::array<std::pair<std::string_view, chat_template_kind>, 5> names = {{
    {"chatml", chat_template_kind::chatml},
    {"llama2", chat_template_kind::llama2},
    {"llama3", chat_template_kind::llama3},
    {"zephyr", chat_template_kind::zephyr},
    {"mistral", chat_template_kind::mistral},
}};

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

// Python's str.strip() / Jinja's trim for the ASCII whitespace that matters in prompts.
std::string_view strip(std::string_view s) {
    constexpr std::string_view ws = " \t\n\r\f\v";
    const size_t begin = s.find_first_not_of(ws);
    if (begin == std::string_view::npos) {
        return {};
    }
    const size_t end = s.find_last_not_of(ws);
    return s.substr(begin, end - begin + 1);
}

void check_roles(const std::vector<chat_message>& messages, chat_template_kind kind) {
    for (const chat_message& m : messages) {
        if (m.role != "system" && m.role != "user" && m.role != "assistant") {
            throw chat_template_error("chat template " + std::string(chat_template_name(kind)) +
                                      ": unsupported role \"" + m.role + "\" (expected system, user or assistant)");
        }
    }
}

std::string render_chatml(const std::vector<chat_message>& messages, bool add_generation_prompt) {
    std::string out;
    for (const chat_message& m : messages) {
        out += "<|im_start|>";
        out += m.role;
        out += '\n';
        out += m.content;
        out += "<|im_end|>\n";
    }
    if (add_generation_prompt) {
        out += "<|im_start|>assistant\n";
    }
    return out;
}

std::string render_llama3(const std::vector<chat_message>& messages, bool add_generation_prompt) {
    std::string out;
    for (const chat_message& m : messages) {
        out += "<|start_header_id|>";
        out += m.role;
        out += "<|end_header_id|>\n\n";
        out += strip(m.content);
        out += "<|eot_id|>";
    }
    if (add_generation_prompt) {
        out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    return out;
}

// Llama-2-chat: a leading system message is folded into the first turn inside <<SYS>>; every user
// turn opens with BOS (except the very first, see the top of the file) and the whole turn text,
// <<SYS>> block included, is stripped. A later system message gets a <<SYS>> block of its own,
// as the template's branch for that case writes it.
std::string render_llama2(const std::vector<chat_message>& messages, std::string_view bos_text,
                          std::string_view eos_text) {
    std::string out;
    size_t first = 0;
    std::string system;
    bool has_system = false;
    if (!messages.empty() && messages[0].role == "system") {
        system = messages[0].content;
        has_system = true;
        first = 1;
    }
    for (size_t i = first; i < messages.size(); ++i) {
        const chat_message& m = messages[i];
        std::string content;
        if (i == first && has_system) {
            content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content;
        } else {
            content = m.content;
        }
        if (m.role == "user") {
            if (!out.empty()) {
                out += bos_text;
            }
            out += "[INST] ";
            out += strip(content);
            out += " [/INST]";
        } else if (m.role == "system") {
            out += "<<SYS>>\n";
            out += strip(content);
            out += "\n<</SYS>>\n\n";
        } else {
            out += ' ';
            out += strip(content);
            out += ' ';
            out += eos_text;
        }
    }
    return out;
}

// Mistral "v1": every user turn is " [INST] ... [/INST]" with the leading space, assistant turns
// are " " + text + eos. System text (the template only allows it first; a later one is accepted
// too, as llama.cpp does) is prefixed to the next user message with a blank line.
std::string render_mistral(const std::vector<chat_message>& messages, std::string_view eos_text) {
    std::string out;
    std::string pending_system;
    for (const chat_message& m : messages) {
        if (m.role == "system") {
            pending_system += m.content;
            pending_system += "\n\n";
        } else if (m.role == "user") {
            out += " [INST] ";
            out += pending_system;
            pending_system.clear();
            out += m.content;
            out += " [/INST]";
        } else {
            out += ' ';
            out += m.content;
            out += eos_text;
        }
    }
    if (!pending_system.empty()) {
        // A system message with no user message after it still reaches the model, as an
        // instruction of its own.
        out += " [INST] ";
        out += strip(pending_system);
        out += " [/INST]";
    }
    return out;
}

// Zephyr as TinyLlama-Chat ships it: with trim_blocks only the newline after each expression
// survives, and the generation prompt is written only after the last message.
std::string render_zephyr(const std::vector<chat_message>& messages, bool add_generation_prompt,
                          std::string_view eos_text) {
    std::string out;
    for (const chat_message& m : messages) {
        out += "<|";
        out += m.role;
        out += "|>\n";
        out += m.content;
        out += eos_text;
        out += '\n';
    }
    if (add_generation_prompt && !messages.empty()) {
        out += "<|assistant|>\n";
    }
    return out;
}

}  // namespace

std::string_view chat_template_name(chat_template_kind kind) {
    for (const auto& [name, k] : names) {
        if (k == kind) {
            return name;
        }
    }
    return "unknown";
}

std::optional<chat_template_kind> chat_template_from_name(std::string_view name) {
    for (const auto& [n, k] : names) {
        if (n == name) {
            return k;
        }
    }
    // llama.cpp's names for the variants rendered here, for users who bring them along.
    if (name == "mistral-v1") {
        return chat_template_kind::mistral;
    }
    if (name == "llama2-sys") {
        return chat_template_kind::llama2;
    }
    return std::nullopt;
}

std::optional<chat_template_kind> chat_template_detect(std::string_view src) {
    // A bare name works too, as llama.cpp allows (for --chat-template given a name).
    if (auto by_name = chat_template_from_name(src)) {
        return by_name;
    }
    if (contains(src, "<|im_start|>")) {
        // Phi-4 (<|im_sep|>) and SmolVLM (<end_of_utterance>) reuse the token but not the format.
        if (contains(src, "<|im_sep|>") || contains(src, "<end_of_utterance>")) {
            return std::nullopt;
        }
        return chat_template_kind::chatml;
    }
    if (contains(src, "<|start_header_id|>") && contains(src, "<|end_header_id|>")) {
        return chat_template_kind::llama3;
    }
    if (contains(src, "[INST]")) {
        return contains(src, "<<SYS>>") ? chat_template_kind::llama2 : chat_template_kind::mistral;
    }
    // Zephyr ends each turn with the eos token (spelled eos_token, </s> or <|endoftext|>);
    // Phi-3 (<|end|>) and the GLM family ([gMASK]) use the same role tags differently.
    if (contains(src, "<|user|>") && contains(src, "<|assistant|>") && !contains(src, "<|end|>") &&
        !contains(src, "[gMASK]") &&
        (contains(src, "eos_token") || contains(src, "</s>") || contains(src, "<|endoftext|>"))) {
        return chat_template_kind::zephyr;
    }
    return std::nullopt;
}

std::string chat_template_apply(chat_template_kind kind, const std::vector<chat_message>& messages,
                                bool add_generation_prompt, std::string_view bos_text, std::string_view eos_text) {
    check_roles(messages, kind);
    switch (kind) {
        case chat_template_kind::chatml:
            return render_chatml(messages, add_generation_prompt);
        case chat_template_kind::llama3:
            return render_llama3(messages, add_generation_prompt);
        case chat_template_kind::llama2:
            // The template has no generation prompt: a conversation ending in " [/INST]" is it.
            return render_llama2(messages, bos_text, eos_text);
        case chat_template_kind::mistral:
            return render_mistral(messages, eos_text);
        case chat_template_kind::zephyr:
            return render_zephyr(messages, add_generation_prompt, eos_text);
    }
    throw chat_template_error("chat template: unknown kind");
}

}  // namespace hearth
