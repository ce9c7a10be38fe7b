// Chat templates: detection from the real Jinja sources models ship, and exact rendered strings.
#include "chat-template.h"
#include "gguf.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using hearth::chat_message;
using hearth::chat_template_apply;
using hearth::chat_template_detect;
using hearth::chat_template_kind;

namespace {

// tokenizer_config.json "chat_template" of the models named (Jinja escapes decoded once, as they
// are stored in GGUF tokenizer.chat_template).
const std::string smollm2_instruct =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const std::string qwen2_instruct =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

const std::string tinyllama_chat =  // Zephyr's template
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

const std::string llama2_chat =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
    "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";

const std::string llama3_instruct =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}";

// Mistral-7B-Instruct-v0.1 / Mixtral-8x7B-Instruct-v0.1 as first published.
const std::string mistral_instruct_old =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}";

// Mistral's later "v1" template for Mistral-7B-Instruct-v0.2 (with the optional system message).
const std::string mistral_instruct_v1 =
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the "
    "exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n";

// Mistral-Large-Instruct-2411 ("v7"): still [INST], rendered as mistral.
const std::string mistral_v7 =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + "
    "message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
    "message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant roles are "
    "supported!') }}{% endif %}{% endfor %}";

// Templates of formats hearth does not render: detection must not claim them.
const std::string phi3_small =
    "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + "
    "'<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}"
    "{% endif %}";
const std::string gemma_it =
    "{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
    "{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
    "'<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
const std::string phi4 =
    "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + "
    "message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + "
    "message['content'] + '<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}"
    "{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}";

const std::vector<chat_message> conversation = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};
const std::vector<chat_message> single_user = {{"user", "Hello"}};

std::string apply(chat_template_kind kind, const std::vector<chat_message>& messages, bool gen = true) {
    return chat_template_apply(kind, messages, gen, "<s>", "</s>");
}

}  // namespace

TEST(ChatTemplateDetect, RealTemplates) {
    EXPECT_EQ(chat_template_detect(smollm2_instruct), chat_template_kind::chatml);
    EXPECT_EQ(chat_template_detect(qwen2_instruct), chat_template_kind::chatml);
    EXPECT_EQ(chat_template_detect(tinyllama_chat), chat_template_kind::zephyr);
    EXPECT_EQ(chat_template_detect(llama2_chat), chat_template_kind::llama2);
    EXPECT_EQ(chat_template_detect(llama3_instruct), chat_template_kind::llama3);
    EXPECT_EQ(chat_template_detect(mistral_instruct_old), chat_template_kind::mistral);
    EXPECT_EQ(chat_template_detect(mistral_instruct_v1), chat_template_kind::mistral);
    EXPECT_EQ(chat_template_detect(mistral_v7), chat_template_kind::mistral);
}

TEST(ChatTemplateDetect, UnknownIsNullopt) {
    EXPECT_EQ(chat_template_detect(""), std::nullopt);
    EXPECT_EQ(chat_template_detect("{{ messages[0]['content'] }}"), std::nullopt);
    EXPECT_EQ(chat_template_detect(phi3_small), std::nullopt);
    EXPECT_EQ(chat_template_detect(gemma_it), std::nullopt);
    EXPECT_EQ(chat_template_detect(phi4), std::nullopt);
}

TEST(ChatTemplateDetect, BareNameIsAccepted) {
    EXPECT_EQ(chat_template_detect("llama3"), chat_template_kind::llama3);
    EXPECT_EQ(chat_template_detect("zephyr"), chat_template_kind::zephyr);
}

TEST(ChatTemplateName, RoundTrips) {
    for (auto kind : {chat_template_kind::chatml, chat_template_kind::llama2, chat_template_kind::llama3,
                      chat_template_kind::zephyr, chat_template_kind::mistral}) {
        const auto name = hearth::chat_template_name(kind);
        EXPECT_FALSE(name.empty());
        EXPECT_EQ(hearth::chat_template_from_name(name), kind) << name;
    }
    EXPECT_EQ(hearth::chat_template_name(chat_template_kind::chatml), "chatml");
    EXPECT_EQ(hearth::chat_template_name(chat_template_kind::mistral), "mistral");
    EXPECT_EQ(hearth::chat_template_from_name("mistral-v1"), chat_template_kind::mistral);
    EXPECT_EQ(hearth::chat_template_from_name("ChatML"), std::nullopt);
    EXPECT_EQ(hearth::chat_template_from_name("gemma"), std::nullopt);
    EXPECT_EQ(hearth::chat_template_from_name(""), std::nullopt);
}

TEST(ChatTemplateApply, ChatML) {
    EXPECT_EQ(apply(chat_template_kind::chatml, conversation),
              "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
              "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
              "<|im_start|>assistant\n");
    EXPECT_EQ(apply(chat_template_kind::chatml, single_user), "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(apply(chat_template_kind::chatml, single_user, false), "<|im_start|>user\nHello<|im_end|>\n");
    // Content is passed through untouched (the template does not trim).
    EXPECT_EQ(apply(chat_template_kind::chatml, {{"user", "  x \n"}}, false), "<|im_start|>user\n  x \n<|im_end|>\n");
}

TEST(ChatTemplateApply, Llama3) {
    EXPECT_EQ(apply(chat_template_kind::llama3, conversation),
              "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(apply(chat_template_kind::llama3, single_user),
              "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    // Meta's template trims every message; BOS is the tokenizer's job, never in the text.
    EXPECT_EQ(chat_template_apply(chat_template_kind::llama3, {{"user", "\n  Hello \t"}}, false, "<|begin_of_text|>",
                                  "<|end_of_text|>"),
              "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
}

TEST(ChatTemplateApply, Llama2) {
    EXPECT_EQ(apply(chat_template_kind::llama2, conversation),
              "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are you "
              "[/INST]");
    EXPECT_EQ(apply(chat_template_kind::llama2, single_user), "[INST] Hello [/INST]");
    // The template strips each turn's text; the first turn's text starts with the <<SYS>> block,
    // so the system text and the start of the first user text keep their spaces.
    EXPECT_EQ(apply(chat_template_kind::llama2,
                    {{"system", " S "}, {"user", " U \n"}, {"assistant", "  A  "}, {"user", "\tV"}}),
              "[INST] <<SYS>>\n S \n<</SYS>>\n\n U [/INST] A </s><s>[INST] V [/INST]");
    EXPECT_EQ(apply(chat_template_kind::llama2, {{"user", " U "}}), "[INST] U [/INST]");
    // bos/eos come from the vocabulary.
    EXPECT_EQ(chat_template_apply(chat_template_kind::llama2, {{"user", "a"}, {"assistant", "b"}, {"user", "c"}}, true,
                                  "<BOS>", "<EOS>"),
              "[INST] a [/INST] b <EOS><BOS>[INST] c [/INST]");
}

TEST(ChatTemplateApply, Mistral) {
    // Mistral's "v1" spacing; the system message joins the first user message.
    EXPECT_EQ(apply(chat_template_kind::mistral, conversation),
              " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]");
    EXPECT_EQ(apply(chat_template_kind::mistral, single_user), " [INST] Hello [/INST]");
    EXPECT_EQ(apply(chat_template_kind::mistral, {{"user", "a"}, {"assistant", "b"}}, false), " [INST] a [/INST] b</s>");
}

TEST(ChatTemplateApply, Zephyr) {
    EXPECT_EQ(apply(chat_template_kind::zephyr, conversation),
              "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n"
              "<|user|>\nWho are you</s>\n<|assistant|>\n");
    EXPECT_EQ(apply(chat_template_kind::zephyr, single_user), "<|user|>\nHello</s>\n<|assistant|>\n");
    EXPECT_EQ(apply(chat_template_kind::zephyr, single_user, false), "<|user|>\nHello</s>\n");
}

TEST(ChatTemplateApply, UnknownRoleThrows) {
    for (auto kind : {chat_template_kind::chatml, chat_template_kind::llama2, chat_template_kind::llama3,
                      chat_template_kind::zephyr, chat_template_kind::mistral}) {
        EXPECT_THROW(apply(kind, {{"user", "a"}, {"tool", "b"}}), hearth::chat_template_error)
            << hearth::chat_template_name(kind);
        EXPECT_THROW(apply(kind, {{"", "a"}}), hearth::chat_template_error);
    }
}

TEST(ChatTemplateApply, EmptyConversation) {
    EXPECT_EQ(apply(chat_template_kind::chatml, {}), "<|im_start|>assistant\n");
    EXPECT_EQ(apply(chat_template_kind::llama2, {}), "");
    EXPECT_EQ(apply(chat_template_kind::zephyr, {}), "");
}

// The synthetic models carry a ChatML template; the ChatML reference prompt is what it renders.
TEST(ChatTemplateGguf, SyntheticModelIsChatML) {
    const std::string path = hearth::test::model_path("synth-llama-spm-f32.gguf");
    if (!hearth::test::require_file(path)) GTEST_SKIP() << path;
    const auto file = hearth::gguf_file::open(path);
    const auto src = file->get_string("tokenizer.chat_template");
    ASSERT_TRUE(src.has_value());
    EXPECT_EQ(chat_template_detect(*src), chat_template_kind::chatml);

    const std::string ref = hearth::test::reference_path("synth-llama-spm-f32__chatml.json");
    if (!hearth::test::require_file(ref)) GTEST_SKIP() << ref;
    const auto json = hearth::test::read_json(ref);
    EXPECT_EQ(chat_template_apply(chat_template_kind::chatml, {{"user", "Turn on the kitchen light"}}, true, "<s>", "</s>"),
              json.at("prompt").get<std::string>());
}
