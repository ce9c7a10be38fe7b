// Tokenizers against llama.cpp's reference output: every tokenizer__*.json case (ids in three
// modes, pieces, detokenized text) and the prompt tokens of every generation reference.
#include "gguf-writer.h"
#include "gguf.h"
#include "test-util.h"
#include "vocab-unicode.h"
#include "vocab.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <filesystem>
#include <map>
#include <set>

namespace {

using hearth::token_id;
using hearth::vocab;
using nlohmann::json;

std::string to_hex(const std::string& s) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

std::string show(const std::vector<token_id>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(ids[i]);
    }
    s += ']';
    return s;
}

struct loaded {
    std::unique_ptr<hearth::gguf_file> file;
    std::unique_ptr<vocab> v;
};

// Each file is loaded once per test executable (loading dominates the run time under ASan).
const loaded& load(const std::string& model_file) {
    static std::map<std::string, loaded> cache;
    auto it = cache.find(model_file);
    if (it == cache.end()) {
        loaded l;
        l.file = hearth::gguf_file::open(hearth::test::model_path(model_file));
        l.v = vocab::from_gguf(*l.file);
        it = cache.emplace(model_file, std::move(l)).first;
    }
    return it->second;
}

std::vector<std::string> tokenizer_references() {
    std::vector<std::string> out;
    const std::string dir = hearth::test::shared_dir() + "/reference/visible";
    if (!std::filesystem::exists(dir)) return out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("tokenizer__", 0) == 0 && e.path().extension() == ".json") out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
}

class tokenizer_reference : public ::testing::TestWithParam<std::string> {};

TEST_P(tokenizer_reference, matches_llama_cpp) {
    const std::string ref_path = hearth::test::reference_path(GetParam());
    if (!hearth::test::require_file(ref_path)) GTEST_SKIP() << ref_path;
    const json ref = hearth::test::read_json(ref_path);
    const std::string model_file = ref.at("vocab_file");
    if (!hearth::test::require_file(hearth::test::model_path(model_file))) GTEST_SKIP() << model_file;
    const loaded& l = load(model_file);
    const vocab& v = *l.v;

    EXPECT_EQ(v.n_tokens(), ref.at("n_vocab").get<int>());
    EXPECT_EQ(v.add_bos(), ref.at("add_bos").get<bool>());
    EXPECT_EQ(v.add_eos(), ref.at("add_eos").get<bool>());
    EXPECT_EQ(v.bos(), ref.at("bos_token").get<int>());
    EXPECT_EQ(v.eos(), ref.at("eos_token").get<int>());
    EXPECT_EQ(v.kind() == hearth::vocab_kind::spm ? "SPM" : "BPE", ref.at("vocab_type").get<std::string>());

    int n_cases = 0, n_passed = 0;
    for (const json& c : ref.at("cases")) {
        const std::string text = hearth::test::hex_to_bytes(c.at("text_hex"));
        const auto ids = c.at("ids").get<std::vector<token_id>>();
        const auto ids_special = c.at("ids_add_special").get<std::vector<token_id>>();
        const auto ids_parse = c.at("ids_add_special_parse_special").get<std::vector<token_id>>();
        const auto got = v.tokenize(text, false, false);
        const auto got_special = v.tokenize(text, true, false);
        const auto got_parse = v.tokenize(text, true, true);
        bool ok = true;
        auto check = [&](bool cond, const std::string& what) {
            if (!cond) {
                ok = false;
                ADD_FAILURE() << model_file << " text '" << c.at("text").get<std::string>() << "': " << what;
            }
        };
        check(got == ids, "ids " + show(got) + " want " + show(ids));
        check(got_special == ids_special, "ids_add_special " + show(got_special) + " want " + show(ids_special));
        check(got_parse == ids_parse, "ids_add_special_parse_special " + show(got_parse) + " want " + show(ids_parse));
        const auto pieces_hex = c.at("pieces_hex").get<std::vector<std::string>>();
        check(pieces_hex.size() == ids.size(), "pieces count");
        for (size_t i = 0; i < ids.size() && i < pieces_hex.size(); ++i) {
            const std::string piece = to_hex(v.token_to_piece(ids[i], true));
            check(piece == pieces_hex[i], std::string("piece of ").append(std::to_string(ids[i])).append(" = ").append(piece).append(" want ").append(pieces_hex[i]));
        }
        const std::string detok = to_hex(v.detokenize(ids, true));
        check(detok == c.at("detokenized_hex").get<std::string>(),
              "detokenized " + detok + " want " + c.at("detokenized_hex").get<std::string>());
        ++n_cases;
        n_passed += ok;
    }
    std::printf("%s: %d/%d cases match\n", GetParam().c_str(), n_passed, n_cases);
    EXPECT_GT(n_cases, 0);
}

INSTANTIATE_TEST_SUITE_P(all, tokenizer_reference, ::testing::ValuesIn(tokenizer_references()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                             std::string name = info.param.substr(11, info.param.size() - 11 - 5);
                             for (char& c : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return name;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(tokenizer_reference);

// One top-level field of a generation reference, cut out without parsing the (large) logits: the
// value is a string of hex digits or a flat array of integers.
json reference_field(const std::string& doc, const std::string& key) {
    const size_t at = doc.find("\"" + key + "\"");
    if (at == std::string::npos) return json();
    size_t begin = doc.find_first_of("\"[", doc.find(':', at) + 1);
    if (begin == std::string::npos) return json();
    const size_t end = doc.find(doc[begin] == '"' ? '"' : ']', begin + 1);
    if (end == std::string::npos) return json();
    return json::parse(doc.substr(begin, end + 1 - begin));
}

TEST(tokenizer, generation_prompts_match) {
    const std::string index_path = hearth::test::reference_path("index.json");
    if (!hearth::test::require_file(index_path)) GTEST_SKIP() << index_path;
    const json index = hearth::test::read_json(index_path);
    int n = 0, passed = 0, n_generated = 0;
    for (const json& g : index.at("generation")) {
        for (const char* key : {"file"}) {
            if (!g.contains(key)) continue;
            const std::string ref_path = hearth::test::reference_path(g.at(key));
            if (!std::filesystem::exists(ref_path)) continue;
            const std::string model_file = g.at("model");
            if (!hearth::test::require_file(hearth::test::model_path(model_file))) continue;
            const vocab& v = *load(model_file).v;
            const std::string doc = hearth::test::read_file_bytes(ref_path);
            const json prompt_hex = reference_field(doc, "prompt_hex");
            const json prompt_tokens = reference_field(doc, "prompt_tokens");
            ASSERT_TRUE(prompt_hex.is_string() && prompt_tokens.is_array()) << ref_path;
            const std::string prompt = hearth::test::hex_to_bytes(prompt_hex.get<std::string>());
            const auto want = prompt_tokens.get<std::vector<token_id>>();
            const auto got = v.tokenize(prompt, true, true);
            ++n;
            if (got == want) ++passed;
            else ADD_FAILURE() << g.at(key).get<std::string>() << ": " << show(got) << " want " << show(want);
            const json gen = reference_field(doc, "generated_tokens");
            const json gen_hex = reference_field(doc, "generated_text_hex");
            if (gen.is_array() && gen_hex.is_string()) {
                std::string text;
                for (token_id id : gen.get<std::vector<token_id>>()) text += v.token_to_piece(id, false);
                EXPECT_EQ(to_hex(text), gen_hex.get<std::string>()) << g.at(key).get<std::string>();
                ++n_generated;
            }
        }
    }
    std::printf("generation prompts: %d/%d match; generated texts checked: %d\n", passed, n, n_generated);
    EXPECT_GT(n, 0);
}

// The vocabulary-only files have no tensors and still load; the metadata matches llama.cpp's.
TEST(tokenizer, vocab_only_files_and_specials) {
    for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-phi-3.gguf"}) {
        if (!hearth::test::require_file(hearth::test::model_path(f))) GTEST_SKIP() << f;
    }
    const loaded& spm = load("ggml-vocab-llama-spm.gguf");
    EXPECT_TRUE(spm.file->tensors().empty());
    EXPECT_EQ(spm.v->kind(), hearth::vocab_kind::spm);
    EXPECT_EQ(spm.v->model_name(), "llama");
    EXPECT_TRUE(spm.v->is_eog(2));
    EXPECT_FALSE(spm.v->is_eog(1));
    EXPECT_TRUE(spm.v->is_control(1));
    EXPECT_EQ(spm.v->kind_of(13), hearth::token_kind::byte);
    EXPECT_EQ(spm.v->token_to_piece(13), "\n");
    EXPECT_EQ(spm.v->token_to_piece(1, true), "<s>");
    EXPECT_EQ(spm.v->token_to_piece(1, false), "");
    EXPECT_EQ(spm.v->find("\xE2\x96\x81Hello"), std::optional<token_id>(15043));
    EXPECT_FALSE(spm.v->find("no such token here").has_value());

    const loaded& gpt2 = load("ggml-vocab-gpt-2.gguf");
    EXPECT_EQ(gpt2.v->kind(), hearth::vocab_kind::bpe);
    EXPECT_EQ(gpt2.v->pre_name(), "gpt-2");
    EXPECT_EQ(gpt2.v->eot(), 50256);
    EXPECT_TRUE(gpt2.v->is_eog(50256));
    EXPECT_EQ(gpt2.v->token_to_piece(220), " ");

    const loaded& phi3 = load("ggml-vocab-phi-3.gguf");
    const auto end = phi3.v->find("<|end|>");
    ASSERT_TRUE(end.has_value());
    EXPECT_TRUE(phi3.v->is_eog(*end));
    EXPECT_TRUE(phi3.v->is_eog(32000));
    // rstrip: whitespace after <|end|> is dropped before tokenizing the rest
    EXPECT_EQ(phi3.v->tokenize("<|end|>  \n hi", false, true), phi3.v->tokenize("<|end|>hi", false, true));
}

TEST(tokenizer, synthetic_chatml_and_edge_inputs) {
    for (const char* f : {"synth-qwen2-f32.gguf", "hearth-cmd-f32.gguf", "stories260K-f32.gguf"}) {
        if (!hearth::test::require_file(hearth::test::model_path(f))) GTEST_SKIP() << f;
    }
    const loaded& qwen = load("synth-qwen2-f32.gguf");
    EXPECT_EQ(qwen.v->tokenize("<|im_start|>user", false, true).front(), 4094);
    EXPECT_NE(qwen.v->tokenize("<|im_start|>user", false, false).front(), 4094);
    EXPECT_TRUE(qwen.v->is_eog(4095));
    EXPECT_EQ(qwen.v->eot(), 4095);

    const loaded& cmd = load("hearth-cmd-f32.gguf");
    const auto ids = cmd.v->tokenize("<|im_start|>user\nturn on the lights<|im_end|>\n", true, true);
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(ids[1], 3);
    EXPECT_TRUE(cmd.v->is_eog(4));
    EXPECT_EQ(cmd.v->detokenize(cmd.v->tokenize("turn on the lights", false, false)), "turn on the lights");

    // invalid UTF-8, NUL bytes and lone continuation bytes never crash and round-trip via bytes
    const loaded& st = load("stories260K-f32.gguf");
    const std::string odd("a\xFF\x80\xE6\x97 \0b\xF0\x9F", 10);
    const auto odd_ids = st.v->tokenize(odd, false, false);
    EXPECT_FALSE(odd_ids.empty());
    EXPECT_EQ(st.v->detokenize(odd_ids), odd);
    const auto q_ids = qwen.v->tokenize(odd, false, false);
    EXPECT_FALSE(q_ids.empty());
}

// A 4 KB prompt must tokenize in well under 10 ms, adversarial shapes included (one 4 KB word,
// text full of special-token prefixes).
TEST(tokenizer, speed_4kb_prompt) {
    std::string mixed;
    const std::string unit = "The quick brown fox, 1234 jumps over the lazy dog! Café naïve 日本語 🙂<|endoftext|>\n";
    while (mixed.size() < 4096) mixed += unit;
    std::string brackets;
    while (brackets.size() < 4096) brackets += "<|end<s></<|user|";
    const std::string prompts[] = {mixed, std::string(4096, 'a'), brackets, std::string(4096, ' ')};
    for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-phi-3.gguf"}) {
        if (!hearth::test::require_file(hearth::test::model_path(f))) GTEST_SKIP() << f;
        const loaded& l = load(f);
        for (size_t p = 0; p < std::size(prompts); ++p) {
            l.v->tokenize(prompts[p], true, true);  // warm the class cache
            const auto t0 = std::chrono::steady_clock::now();
            const int reps = 5;
            size_t n = 0;
            for (int i = 0; i < reps; ++i) n += l.v->tokenize(prompts[p], true, true).size();
            const double ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
            std::printf("%s: 4 KB prompt %zu -> %zu tokens in %.3f ms\n", f, p, n / reps, ms);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
            EXPECT_LT(ms, 10.0) << f << " prompt " << p;  // only meaningful in an optimised, uninstrumented build
#endif
        }
    }
}

// Byte-level words back to the bytes they stand for.
std::string words_to_bytes(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        for (uint32_t cpt : hearth::unicode::cpts_from_utf8(w)) {
            std::string u;
            hearth::unicode::cpt_append_utf8(cpt, u);
            const int b = hearth::unicode::utf8_to_byte(u);
            EXPECT_GE(b, 0) << "not a byte-level character in word " << w;
            out.push_back(static_cast<char>(b));
        }
    }
    return out;
}

const std::vector<std::string> split_samples = {
    "Hello world", " Hello  world ", "Hello world   ", "multiple   spaces    between  words",
    "line one\nline two\n\nline four\n", "tab\tseparated\tvalues\r\nwindows", "1234567 12 1",
    "Order 66 costs $1,234.56 (approx. 3.14%)", "don't won't I'm we've they'll it's DON'T I'M",
    "Caf\xC3\xA9 d\xC3\xA9j\xC3\xA0 vu \xE2\x80\x94 na\xC3\xAFve", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E 123",
    "emoji \xF0\x9F\x99\x82\xF0\x9F\x91\x8D and", "{\"device\":\"light\"} <|im_start|>", "   ", "\n\n\n", "a", "x  \n  y",
    "\xC2\xA0nbsp\xE3\x80\x80ideo", "end with space ", "'", "'s", "!!! ???", "\xE2\x85\xA0\xE2\x85\xA1 roman"};

// llama.cpp's hand-written GPT-2 and Llama-3 splitters agree with the regexes they stand for.
TEST(tokenizer, custom_splitters_match_their_regexes) {
    using hearth::unicode::make_splitter;
    const auto gpt2 = make_splitter({"gpt2"});
    const auto gpt2_re = make_splitter({"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"});
    const auto llama3 = make_splitter({"llama3"});
    const auto llama3_re = make_splitter(
        {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
         "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"});
    for (const std::string& s : split_samples) {
        const auto a = gpt2->split(s);
        EXPECT_EQ(a, gpt2_re->split(s)) << "gpt2: '" << s << "'";
        EXPECT_EQ(words_to_bytes(a), s);
        const auto b = llama3->split(s);
        EXPECT_EQ(b, llama3_re->split(s)) << "llama3: '" << s << "'";
        EXPECT_EQ(words_to_bytes(b), s);
    }
    // known llama.cpp splits
    EXPECT_EQ(gpt2->split("Hello world   "), (std::vector<std::string>{"Hello", "\xC4\xA0world", "\xC4\xA0\xC4\xA0\xC4\xA0"}));
    EXPECT_EQ(llama3->split("1234567"), (std::vector<std::string>{"123", "456", "7"}));
    EXPECT_EQ(gpt2->split("a  b"), (std::vector<std::string>{"a", "\xC4\xA0", "\xC4\xA0" "b"}));
}

// Every pre-tokenizer name hearth knows compiles and splits losslessly.
TEST(tokenizer, every_pre_tokenizer_splits_losslessly) {
    const char* names[] = {"default", "", "llama3", "llama-bpe", "dbrx", "smaug-bpe", "chatglm-bpe", "deepseek-coder",
                           "deepseek-v3", "falcon", "starcoder", "smollm", "command-r", "gpt-2", "olmo", "qwen2",
                           "stablelm2", "deepseek-r1-qwen", "poro-chat", "bloom", "viking", "tekken", "gpt-4o",
                           "llama4", "seed-coder", "no-such-pre"};
    for (const char* name : names) {
        hearth::unicode::pre_tokenizer p;
        ASSERT_NO_THROW(p = hearth::unicode::pre_tokenizer_for(name)) << name;
        ASSERT_TRUE(p.split) << name;
        EXPECT_EQ(p.known, std::string(name) != "no-such-pre") << name;
        for (const std::string& s : split_samples) {
            const auto words = p.split->split(s);
            EXPECT_EQ(words_to_bytes(words), s) << name << ": '" << s << "'";
            for (const auto& w : words) EXPECT_FALSE(w.empty()) << name;
        }
    }
    // qwen2 splits digits one by one, llama3 in threes, gpt-2 not at all
    EXPECT_EQ(hearth::unicode::pre_tokenizer_for("qwen2").split->split("2024").size(), 4u);
    EXPECT_EQ(hearth::unicode::pre_tokenizer_for("llama3").split->split("2024").size(), 2u);
    EXPECT_EQ(hearth::unicode::pre_tokenizer_for("gpt-2").split->split("2024").size(), 1u);
}

// Random bytes: no mode crashes, and SentencePiece with byte fallback gives the bytes back.
TEST(tokenizer, random_bytes_round_trip) {
    for (const char* f : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-phi-3.gguf"}) {
        if (!hearth::test::require_file(hearth::test::model_path(f))) GTEST_SKIP() << f;
    }
    const loaded& spm = load("ggml-vocab-llama-spm.gguf");
    const loaded& gpt2 = load("ggml-vocab-gpt-2.gguf");
    const loaded& phi3 = load("ggml-vocab-phi-3.gguf");
    uint64_t state = 0x9E3779B97F4A7C15ull;
    auto next = [&] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    const char* alphabet[] = {"a", "Z", " ", "  ", "\n", "\t", "'s", "1", "<s>", "</s>", "<|end|>", "<|endoftext|>", "\xC3\xA9",
                              "\xE6\x97\xA5", "\xF0\x9F\x99\x82", "\xFF", "\x80", "\xE6", ".", "?"};
    int n_exact = 0;
    for (int iter = 0; iter < 300; ++iter) {
        std::string s;
        const int len = static_cast<int>(next() % 24);
        for (int k = 0; k < len; ++k) {
            if (next() % 4 == 0) s.push_back(static_cast<char>(next() & 0xFF));
            else s += alphabet[next() % (sizeof(alphabet) / sizeof(alphabet[0]))];
        }
        for (const loaded* l : {&spm, &gpt2, &phi3}) {
            for (int mode = 0; mode < 3; ++mode) {
                const auto ids = l->v->tokenize(s, mode > 0, mode > 1);
                for (token_id id : ids) ASSERT_TRUE(id >= 0 && id < l->v->n_tokens());
                (void)l->v->detokenize(ids, mode != 1);
            }
        }
        // exact only for valid UTF-8: a broken sequence swallows the following byte into its symbol
        // (as in llama.cpp), which can split an escaped space
        std::string reencoded;
        for (uint32_t cpt : hearth::unicode::cpts_from_utf8(s)) hearth::unicode::cpt_append_utf8(cpt, reencoded);
        if (reencoded == s) {
            EXPECT_EQ(to_hex(spm.v->detokenize(spm.v->tokenize(s, false, false))), to_hex(s));
            ++n_exact;
        }
    }
    EXPECT_GT(n_exact, 30);
}

// Tiny in-memory vocabularies: the merge order rules themselves, independent of the shared data.
struct tiny_vocab {
    std::vector<uint8_t> bytes;
    std::unique_ptr<hearth::gguf_file> file;
    std::unique_ptr<vocab> v;
};

tiny_vocab make_tiny(const std::function<void(hearth::gguf_writer&)>& fill) {
    hearth::gguf_writer w;
    fill(w);
    tiny_vocab t;
    t.bytes = w.to_bytes();
    t.file = hearth::gguf_file::from_memory(t.bytes.data(), t.bytes.size());
    t.v = vocab::from_gguf(*t.file);
    return t;
}

const std::string sp = "\xE2\x96\x81";  // SentencePiece's visible space

TEST(tokenizer, tiny_spm_merges_by_score_then_leftmost) {
    auto spm = [&](std::vector<float> scores) {
        return make_tiny([&](hearth::gguf_writer& w) {
            w.set_string("tokenizer.ggml.model", "llama");
            w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", sp, "a", "b", sp + "a", "ab", "zz",
                                                         "<0x43>", "bb", "<|ctl|>", "<ud>"});
            w.set_f32_array("tokenizer.ggml.scores", scores);
            w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 1, 3, 4});
        });
    };
    //                         unk s  /s  ▁  a  b  ▁a  ab zz  C  bb ctl ud
    const auto ab_first = spm({0, 0, 0, 0, 0, 0, -5, -1, -9, 0, -3, 0, 0});
    EXPECT_EQ(ab_first.v->tokenize("ab", false, false), (std::vector<token_id>{3, 7}));  // ▁ + ab, no ▁ab pair left
    EXPECT_EQ(ab_first.v->tokenize("ab", true, false), (std::vector<token_id>{1, 3, 7}));
    const auto sa_first = spm({0, 0, 0, 0, 0, 0, -1, -5, -9, 0, -3, 0, 0});
    EXPECT_EQ(sa_first.v->tokenize("ab", false, false), (std::vector<token_id>{6, 5}));  // ▁a + b
    // equal scores: the leftmost pair wins; "bbb" -> bb + b
    const auto tie = spm({0, 0, 0, 0, 0, 0, -2, -2, -9, 0, -2, 0, 0});
    EXPECT_EQ(tie.v->tokenize("abbb", false, false), (std::vector<token_id>{6, 10, 5}));
    // byte fallback for 'C' (<0x43>), the unknown token for bytes without one
    EXPECT_EQ(tie.v->tokenize("C", false, false), (std::vector<token_id>{3, 9}));
    EXPECT_EQ(tie.v->tokenize("D", false, false), (std::vector<token_id>{3, 0}));
    // control tokens only with parse_special, user-defined always; a space follows each special
    EXPECT_EQ(tie.v->tokenize("<|ctl|>a", false, true), (std::vector<token_id>{11, 6}));
    EXPECT_EQ(tie.v->tokenize("<ud>a", false, false), (std::vector<token_id>{12, 6}));
    EXPECT_EQ(tie.v->token_to_piece(11, false), "");
    EXPECT_EQ(tie.v->token_to_piece(12, false), "<ud>");
    EXPECT_EQ(tie.v->token_to_piece(9), "C");
    EXPECT_EQ(tie.v->detokenize({6, 10, 5}), "abbb");
    EXPECT_EQ(tie.v->eot(), -1);
    EXPECT_TRUE(tie.v->is_eog(2));
}

TEST(tokenizer, tiny_bpe_merges_by_rank) {
    auto bpe = [&](std::vector<std::string> merges, const char* pre) {
        return make_tiny([&](hearth::gguf_writer& w) {
            w.set_string("tokenizer.ggml.model", "gpt2");
            w.set_string("tokenizer.ggml.pre", pre);
            w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "bc", "abc", "\xC4\xA0", "\xC4\xA0" "a", "<|im_end|>"});
            w.set_string_array("tokenizer.ggml.merges", merges);
            w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1, 1, 4});
        });
    };
    const auto ab = bpe({"a b", "b c", "ab c", "\xC4\xA0 a"}, "gpt-2");
    EXPECT_EQ(ab.v->tokenize("abc", false, false), (std::vector<token_id>{5}));
    EXPECT_EQ(ab.v->tokenize("abc a", false, false), (std::vector<token_id>{5, 7}));
    const auto bc = bpe({"b c", "a b", "ab c", "\xC4\xA0 a"}, "gpt-2");
    EXPECT_EQ(bc.v->tokenize("abc", false, false), (std::vector<token_id>{0, 4}));  // bc first blocks ab
    // no BOS without add_bos (BPE default), defaults bos/eos = 11 are out of range here
    EXPECT_EQ(bc.v->bos(), -1);
    EXPECT_FALSE(bc.v->add_bos());
    // <|im_end|> is an end-of-generation token and so becomes control: plain text does not make it
    EXPECT_TRUE(bc.v->is_eog(8));
    EXPECT_TRUE(bc.v->is_control(8));
    EXPECT_EQ(bc.v->eot(), 8);
    EXPECT_NE(bc.v->tokenize("<|im_end|>", false, false), (std::vector<token_id>{8}));
    EXPECT_EQ(bc.v->tokenize("<|im_end|>", false, true), (std::vector<token_id>{8}));
    // a pre-tokenizer name llama.cpp would refuse falls back to GPT-2's rules
    const auto unknown = bpe({"a b", "b c", "ab c", "\xC4\xA0 a"}, "who-knows");
    EXPECT_EQ(unknown.v->tokenize("abc a", false, false), (std::vector<token_id>{5, 7}));
    EXPECT_EQ(unknown.v->pre_name(), "who-knows");
}

TEST(tokenizer, tiny_vocab_errors_name_the_key) {
    auto error_of = [&](const std::function<void(hearth::gguf_writer&)>& fill) -> std::string {
        try {
            make_tiny(fill);
        } catch (const hearth::vocab_error& e) {
            return e.what();
        }
        return "no error";
    };
    EXPECT_NE(error_of([](hearth::gguf_writer& w) {
                  w.set_string("tokenizer.ggml.model", "llama");
                  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
                  w.set_f32_array("tokenizer.ggml.scores", {0.0f});
              }).find("tokenizer.ggml.scores"),
              std::string::npos);
    EXPECT_NE(error_of([](hearth::gguf_writer& w) {
                  w.set_string("tokenizer.ggml.model", "gpt2");
                  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
              }).find("tokenizer.ggml.merges"),
              std::string::npos);
    EXPECT_NE(error_of([](hearth::gguf_writer& w) {
                  w.set_string("tokenizer.ggml.model", "llama");
                  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
                  w.set_i32_array("tokenizer.ggml.token_type", {1});
              }).find("tokenizer.ggml.token_type"),
              std::string::npos);
    EXPECT_NE(error_of([](hearth::gguf_writer& w) {
                  w.set_string("tokenizer.ggml.model", "llama");
                  w.set_string("tokenizer.ggml.tokens", "not an array");
              }).find("tokenizer.ggml.tokens"),
              std::string::npos);
    EXPECT_NE(error_of([](hearth::gguf_writer& w) {
                  w.set_string("tokenizer.ggml.model", "gpt2");
                  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
                  w.set_string_array("tokenizer.ggml.merges", {"a b"});
                  w.set_bool("tokenizer.ggml.add_bos_token", true);
              }).find("add_bos"),
              std::string::npos);
    EXPECT_NE(error_of([](hearth::gguf_writer& w) { w.set_string("tokenizer.ggml.model", "t5"); }).find("t5"),
              std::string::npos);
}

TEST(tokenizer, rejects_bad_metadata) {
    // A GGUF without tokenizer keys: the model's tensors only. Build one in memory.
    std::string buf;
    auto u32 = [&](uint32_t x) { buf.append(reinterpret_cast<const char*>(&x), 4); };
    auto u64 = [&](uint64_t x) { buf.append(reinterpret_cast<const char*>(&x), 8); };
    auto str = [&](const std::string& s) { u64(s.size()); buf += s; };
    buf = "GGUF";
    u32(3);
    u64(0);  // tensors
    u64(1);  // kv
    str("tokenizer.ggml.model");
    u32(8);
    str("bert");
    const auto file = hearth::gguf_file::from_memory(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    EXPECT_THROW(vocab::from_gguf(*file), hearth::vocab_error);

    buf = "GGUF";
    u32(3);
    u64(0);
    u64(1);
    str("general.name");
    u32(8);
    str("x");
    const auto file2 = hearth::gguf_file::from_memory(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    try {
        vocab::from_gguf(*file2);
        ADD_FAILURE() << "no exception";
    } catch (const hearth::vocab_error& e) {
        EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model"), std::string::npos);
    }
}

}  // namespace
