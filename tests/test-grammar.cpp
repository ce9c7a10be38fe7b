// Grammar-constrained decoding: the JSON-schema subset accepts exactly the texts it should (checked
// value by value against brute force where the set is small), the token mask agrees with accepting
// each token (real and synthetic vocabularies, byte fallback, split UTF-8), bad schemas name the
// JSON pointer of the problem, and random sampling from random-weight models under the command
// schema always yields valid commands that end because the grammar completed.
#include "context.h"
#include "grammar.h"
#include "model.h"
#include "sampler.h"
#include "test-util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

using hearth::grammar;
using hearth::grammar_error;
using hearth::grammar_from_json_schema;
using hearth::grammar_matcher;
using hearth::grammar_vocab;
using hearth::token_id;

namespace {

const char* const command_schema =
    R"({"oneOf":[{"type":"object","properties":{"device":{"const":"light.kitchen"},"action":{"const":"set_brightness"},"args":{"type":"object","properties":{"brightness":{"type":"integer","minimum":0,"maximum":100}},"required":["brightness"]}},"required":["device","action","args"]},{"type":"object","properties":{"device":{"const":"light.kitchen"},"action":{"const":"turn_on"}},"required":["device","action"]},{"type":"object","properties":{"device":{"const":"climate.thermostat"},"action":{"const":"set_temperature"},"args":{"type":"object","properties":{"temperature":{"type":"number","minimum":10,"maximum":30,"multipleOf":0.5}},"required":["temperature"]}},"required":["device","action","args"]},{"type":"object","properties":{"error":{"const":"unsupported"}},"required":["error"]}]})";

std::shared_ptr<const grammar> compile(const std::string& schema) { return grammar_from_json_schema(schema); }

// The JSON pointer a bad schema's error names ("<no error>" when it compiles).
std::string error_path(const std::string& schema) {
    try {
        grammar_from_json_schema(schema);
    } catch (const grammar_error& e) {
        EXPECT_NE(std::string(e.what()), "");
        return e.path();
    }
    return "<no error>";
}

// Independent check of a command against the command schema: canonical compact JSON, keys in order.
bool valid_command(const std::string& text) {
    using ojson = nlohmann::ordered_json;
    ojson j;
    try {
        j = ojson::parse(text);
    } catch (...) {
        return false;
    }
    if (j.dump() != text || !j.is_object()) return false;
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    if (keys == std::vector<std::string>{"error"}) return j["error"] == "unsupported";
    if (keys == std::vector<std::string>{"device", "action"}) return j["device"] == "light.kitchen" && j["action"] == "turn_on";
    if (keys != std::vector<std::string>{"device", "action", "args"} || !j["args"].is_object() || j["args"].size() != 1) return false;
    const ojson& args = j["args"];
    if (j["device"] == "light.kitchen" && j["action"] == "set_brightness") {
        return args.contains("brightness") && args["brightness"].is_number_integer() && args["brightness"].get<int64_t>() >= 0 &&
               args["brightness"].get<int64_t>() <= 100;
    }
    if (j["device"] == "climate.thermostat" && j["action"] == "set_temperature" && args.contains("temperature") && args["temperature"].is_number()) {
        const double t = args["temperature"].get<double>();
        return t >= 10 && t <= 30 && std::fabs(t * 2 - std::round(t * 2)) < 1e-9;
    }
    return false;
}

TEST(Grammar, CommandSchemaAcceptsExactlyCompactCommands) {
    auto g = compile(command_schema);
    EXPECT_TRUE(g->matches(R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30}})"));
    EXPECT_TRUE(g->matches(R"({"device":"light.kitchen","action":"turn_on"})"));
    EXPECT_TRUE(g->matches(R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})"));
    EXPECT_TRUE(g->matches(R"({"error":"unsupported"})"));
    EXPECT_FALSE(g->matches(R"({"device": "light.kitchen","action":"turn_on"})"));
    EXPECT_FALSE(g->matches(R"({"action":"turn_on","device":"light.kitchen"})"));
    EXPECT_FALSE(g->matches(R"({"device":"light.kitchen","action":"turn_on","args":{}})"));
    EXPECT_FALSE(g->matches(R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":101}})"));
    EXPECT_FALSE(g->matches(R"({"device":"light.kitchen","action":"set_brightness"})"));
    EXPECT_FALSE(g->matches(R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.0}})"));
    EXPECT_FALSE(g->matches(R"({"error":"unsupported"} )"));
    EXPECT_FALSE(g->matches(""));
}

TEST(Grammar, IntegerZeroToHundredExactly) {
    auto g = compile(R"({"type":"integer","minimum":0,"maximum":100})");
    for (int v = 0; v <= 100; ++v) EXPECT_TRUE(g->matches(std::to_string(v))) << v;
    for (const char* bad : {"101", "00", "007", "-1", "-0", "+5", "", "1000", "5.0", "1e2", "010"}) EXPECT_FALSE(g->matches(bad)) << bad;
}

// Every range against brute force over a window, leading zeros and "-0" included as candidates.
TEST(Grammar, IntegerRangesMatchBruteForce) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> bound(-1200, 1200);
    for (int iter = 0; iter < 60; ++iter) {
        int lo = bound(rng), hi = bound(rng);
        if (lo > hi) std::swap(lo, hi);
        if (iter % 10 == 0) hi = lo;  // single values
        const std::string schema = std::string(R"({"type":"integer","minimum":)").append(std::to_string(lo)).append(R"(,"maximum":)").append(std::to_string(hi)).append("}");
        auto g = compile(schema);
        for (int v = -1300; v <= 1300; v += (v > -20 && v < 20) ? 1 : 7) {
            EXPECT_EQ(g->matches(std::to_string(v)), v >= lo && v <= hi) << schema << " " << v;
        }
        for (int v : {lo, hi}) {
            std::string padded = v < 0 ? "-0" : "0";
            padded.append(std::to_string(std::abs(v)));
            EXPECT_FALSE(g->matches(padded)) << schema << " " << padded;
        }
        EXPECT_FALSE(g->matches("-0"));
    }
    auto neg = compile(R"({"type":"integer","maximum":-3})");
    for (const char* ok : {"-3", "-4", "-10", "-1000000000000"}) EXPECT_TRUE(neg->matches(ok)) << ok;
    for (const char* bad : {"-2", "0", "3", "-0", "-03"}) EXPECT_FALSE(neg->matches(bad)) << bad;
    auto open = compile(R"({"type":"integer","exclusiveMinimum":99})");
    EXPECT_TRUE(open->matches("100"));
    EXPECT_TRUE(open->matches("123456789012"));
    EXPECT_FALSE(open->matches("99"));
    EXPECT_FALSE(open->matches("0100"));
    auto any = compile(R"({"type":"integer"})");
    for (const char* ok : {"0", "-1", "42", "-9223372036854775808"}) EXPECT_TRUE(any->matches(ok)) << ok;
    for (const char* bad : {"-0", "01", "1.5", "-"}) EXPECT_FALSE(any->matches(bad)) << bad;
}

TEST(Grammar, NumberMultipleOfEnumeratesShortestForms) {
    auto g = compile(R"({"type":"number","minimum":10,"maximum":30,"multipleOf":0.5})");
    int accepted = 0;
    for (int k = 0; k <= 40; ++k) {
        char buf[32];
        const double v = 10 + 0.5 * k;
        if (v == std::floor(v)) std::snprintf(buf, sizeof buf, "%d", static_cast<int>(v));
        else std::snprintf(buf, sizeof buf, "%.1f", v);
        EXPECT_TRUE(g->matches(buf)) << buf;
        accepted += g->matches(buf);
    }
    EXPECT_EQ(accepted, 41);
    for (const char* bad : {"21.0", "30.5", "9.5", "21.50", "2.15e1", "21.25", "010", "10.", "31"}) EXPECT_FALSE(g->matches(bad)) << bad;
    auto tenth = compile(R"({"type":"number","minimum":-1,"maximum":1,"multipleOf":0.1})");
    for (const char* ok : {"-1", "-0.9", "0", "0.3", "0.7", "1"}) EXPECT_TRUE(tenth->matches(ok)) << ok;
    for (const char* bad : {"-0", "0.30000000000000004", "1.1", "0.35"}) EXPECT_FALSE(tenth->matches(bad)) << bad;
    EXPECT_NE(error_path(R"({"type":"number","minimum":0,"maximum":1000,"multipleOf":0.01})"), "<no error>");
}

TEST(Grammar, NumberRangeWithoutMultipleOf) {
    auto g = compile(R"({"type":"number","minimum":-1.5,"maximum":2.25})");
    for (const char* ok : {"0", "-1.5", "-1.500000", "2.25", "2.250", "-0.000001", "1.999999", "0.5", "-1", "2"}) EXPECT_TRUE(g->matches(ok)) << ok;
    for (const char* bad : {"2.250001", "-1.500001", "3", "-2", "1e0", "0.1234567", "01", "-0", "2.", ".5", "+1"}) EXPECT_FALSE(g->matches(bad)) << bad;
    // Brute force on a grid of thousandths.
    auto h = compile(R"({"type":"number","minimum":0.125,"maximum":3.5})");
    for (int k = -500; k <= 4000; k += 3) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", k / 1000.0);
        std::string t = buf;
        if (t == "-0.000") continue;
        EXPECT_EQ(h->matches(t), k >= 125 && k <= 3500) << t;
    }
    auto open = compile(R"({"type":"number","minimum":5})");
    EXPECT_TRUE(open->matches("123456.5"));
    EXPECT_FALSE(open->matches("4.999999"));
}

TEST(Grammar, ConstEnumBooleanNull) {
    auto g = compile(R"({"anyOf":[{"const":"a\"b"},{"const":30.0},{"enum":[1,"x",true,null,2.5]},{"type":"boolean"},{"type":"null"}]})");
    for (const char* ok : {R"("a\"b")", "30", "1", R"("x")", "true", "null", "2.5", "false"}) EXPECT_TRUE(g->matches(ok)) << ok;
    for (const char* bad : {"30.0", R"("a"b")", "2.50", "True", "nul", R"("y")"}) EXPECT_FALSE(g->matches(bad)) << bad;
}

TEST(Grammar, StringEscapesUtf8AndLength) {
    auto g = compile(R"({"type":"string"})");
    for (const char* ok : {R"("")", R"("a\"b\\c\/\b\f\n\r\t")", R"("\u00e9\u00E9")", R"("\uD83D\uDE00")", "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""}) {
        EXPECT_TRUE(g->matches(ok)) << ok;
    }
    for (const char* bad : {"\"a\x01\"", R"("\x")", R"("\u12G4")", R"("\uD800")", R"("\uDC00")", "\"\xC0\x80\"", "\"\xED\xA0\x80\"", "\"abc", "abc"}) {
        EXPECT_FALSE(g->matches(bad)) << bad;
    }
    auto s = compile(R"({"type":"string","minLength":2,"maxLength":3})");
    EXPECT_FALSE(s->matches(R"("a")"));
    EXPECT_TRUE(s->matches(R"("ab")"));
    EXPECT_TRUE(s->matches(R"("\u00e9b\n")"));
    EXPECT_TRUE(s->matches("\"\xC3\xA9\xC3\xA9\xC3\xA9\""));
    EXPECT_FALSE(s->matches(R"("abcd")"));
}

TEST(Grammar, NestedObjectsAndOptionalProperties) {
    auto g = compile(R"({"type":"object","title":"t","properties":{"a":{"type":"integer","minimum":1,"maximum":3},
        "b":{"type":"object","properties":{"x":{"type":"boolean"},"y":{"type":"null"}},"required":["y"]},
        "c":{"type":"string","maxLength":2}},"required":["b"],"additionalProperties":false})");
    for (const char* ok : {R"({"b":{"y":null}})", R"({"a":2,"b":{"x":true,"y":null}})", R"({"b":{"y":null},"c":"hi"})",
                           R"({"a":1,"b":{"y":null},"c":""})"}) {
        EXPECT_TRUE(g->matches(ok)) << ok;
    }
    for (const char* bad : {R"({})", R"({"a":1})", R"({"b":{"y":null},"a":1})", R"({"b":{"x":true}})", R"({"b":{"y":null},})",
                            R"({,"b":{"y":null}})", R"({"b":{"y":null},"d":1})", R"({"a":4,"b":{"y":null}})"}) {
        EXPECT_FALSE(g->matches(bad)) << bad;
    }
    auto empty = compile(R"({"type":"object"})");
    EXPECT_TRUE(empty->matches("{}"));
    EXPECT_FALSE(empty->matches(R"({"a":1})"));
}

TEST(Grammar, ArraysWithItemCounts) {
    auto g = compile(R"({"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":1,"maxItems":3})");
    for (const char* ok : {"[1]", "[1,2]", "[0,9,5]"}) EXPECT_TRUE(g->matches(ok)) << ok;
    for (const char* bad : {"[]", "[1,2,3,4]", "[1,]", "[,1]", "[10]", "[1 ,2]"}) EXPECT_FALSE(g->matches(bad)) << bad;
    auto open = compile(R"({"type":"array","items":{"enum":["a","b"]},"minItems":2})");
    EXPECT_FALSE(open->matches(R"(["a"])"));
    EXPECT_TRUE(open->matches(R"(["a","b","a","a","b"])"));
    auto any = compile(R"({"type":"array","items":{"type":"null"}})");
    EXPECT_TRUE(any->matches("[]"));
    EXPECT_TRUE(any->matches("[null,null]"));
    auto none = compile(R"({"type":["array","null"],"items":{"type":"null"},"maxItems":0})");
    EXPECT_TRUE(none->matches("[]"));
    EXPECT_TRUE(none->matches("null"));
    EXPECT_FALSE(none->matches("[null]"));
}

TEST(Grammar, BadSchemasNameThePath) {
    EXPECT_EQ(error_path(R"({"type":"string","pattern":"x"})"), "/pattern");
    EXPECT_EQ(error_path(R"({"oneOf":[{"type":"null"},{"type":"object","properties":{"a":{"$ref":"#/x"}}}]})"), "/oneOf/1/properties/a/$ref");
    EXPECT_EQ(error_path(R"({"type":"foo"})"), "/type");
    EXPECT_EQ(error_path(R"({"type":"object","properties":{"a/b":{"type":"integer","maxLength":3}}})"), "/properties/a~1b/maxLength");
    EXPECT_EQ(error_path(R"({"type":"object","properties":{"a":{"type":"null"}},"required":["b"]})"), "/required/0");
    EXPECT_EQ(error_path(R"({"type":"object","additionalProperties":true})"), "/additionalProperties");
    EXPECT_EQ(error_path(R"({"type":"array"})"), "");
    EXPECT_EQ(error_path(R"({"anyOf":[{}]})"), "/anyOf/0");
    EXPECT_EQ(error_path(R"({"type":"number","multipleOf":0.5})"), "/multipleOf");
    EXPECT_EQ(error_path(R"({"type":"integer","minimum":5,"maximum":4})"), "");
    EXPECT_EQ(error_path(R"({"oneOf":[]})"), "/oneOf");
    EXPECT_EQ(error_path(R"({"const":1,"maximum":3})"), "/maximum");
    EXPECT_EQ(error_path(R"({"type":"string","maxLength":-1})"), "/maxLength");
    std::string deep;
    for (int i = 0; i < 200; ++i) deep.append(R"({"anyOf":[)");
    deep.append(R"({"type":"null"})");
    for (int i = 0; i < 200; ++i) deep.append("]}");
    EXPECT_NE(error_path(deep), "<no error>");
    EXPECT_THROW(grammar_from_json_schema("{"), grammar_error);
    EXPECT_THROW(grammar_from_json_schema("true"), grammar_error);
    EXPECT_THROW(grammar_from_json_schema("{}"), grammar_error);
}

TEST(Grammar, LeftRecursionIsRejected) {
    hearth::grammar_rules r;
    r.classes.push_back(hearth::byte_class::single('a'));
    r.rules.resize(2);
    r.rules[0].push_back({{true, 1}, {false, 0}});  // 0 ::= 1 "a"
    r.rules[1].push_back({});                        // 1 ::= "" | 0
    r.rules[1].push_back({{true, 0}});
    EXPECT_THROW(grammar{r}, grammar_error);
    r.rules[1].pop_back();
    grammar ok(r);
    EXPECT_TRUE(ok.matches("a"));
    EXPECT_FALSE(ok.matches("aa"));
}

// ---- token level ----

struct loaded_vocab {
    std::unique_ptr<hearth::gguf_file> file;  // the vocab points into its mapping
    std::unique_ptr<hearth::vocab> v;         // the tokenizer
};

loaded_vocab load_vocab(const std::string& path) {
    loaded_vocab l;
    l.file = hearth::gguf_file::open(path);
    l.v = hearth::vocab::from_gguf(*l.file);
    return l;
}

// The tokens of `text` as the model would produce them after an assistant header.
std::vector<token_id> output_tokens(const hearth::vocab& v, const std::string& text) {
    const std::string prompt = "<|im_start|>assistant\n";
    const auto head = v.tokenize(prompt, false, true);
    auto all = v.tokenize(prompt + text, false, true);
    EXPECT_TRUE(std::equal(head.begin(), head.end(), all.begin()));
    return {all.begin() + static_cast<std::ptrdiff_t>(head.size()), all.end()};
}

// Checks the mask against running each token's piece through the grammar's stack sets directly
// (no trie, no transition cache), in the matcher's current state.
void expect_mask_sound(const grammar_matcher& m, const hearth::vocab& v) {
    std::vector<uint8_t> mask;
    m.allowed(mask);
    ASSERT_EQ(mask.size(), static_cast<size_t>(v.n_tokens()));
    const grammar& g = m.rules();
    std::vector<grammar::stack> cur, next;
    for (token_id t = 0; t < v.n_tokens(); ++t) {
        bool ok;
        if (v.is_eog(t)) {
            ok = m.complete();
        } else if (v.is_control(t) || v.kind_of(t) == hearth::token_kind::unknown || v.kind_of(t) == hearth::token_kind::unused) {
            ok = false;
        } else {
            const std::string piece = v.token_to_piece(t);
            cur = m.stacks();
            ok = !piece.empty();
            for (size_t i = 0; ok && i < piece.size(); ++i) {
                g.advance(cur, static_cast<uint8_t>(piece[i]), next);
                ok = !next.empty();
                cur.swap(next);
            }
        }
        ASSERT_EQ(mask[static_cast<size_t>(t)] != 0, ok) << "token " << t << " '" << v.token_to_piece(t) << "'";
    }
    // accept() agrees with the mask on a sample of tokens, and a refused token changes nothing.
    grammar_matcher copy = m;
    for (token_id t = 0; t < v.n_tokens(); t += 97) {
        const bool ok = copy.accept(t);
        ASSERT_EQ(ok, mask[static_cast<size_t>(t)] != 0) << t;
        if (ok) copy = m;
        ASSERT_EQ(copy.stacks(), m.stacks());
    }
}

// sound_every: check the whole mask against per-token accepts every that many tokens (and at the end).
void check_outputs(const std::string& model_file, const std::string& schema, const std::vector<std::string>& outputs, size_t sound_every = 7) {
    const std::string path = hearth::test::model_path(model_file);
    if (!hearth::test::require_file(path)) GTEST_SKIP() << path;
    auto lv = load_vocab(path);
    const hearth::vocab& v = *lv.v;
    auto gv = grammar_vocab::get(v);
    EXPECT_EQ(gv, grammar_vocab::get(v));  // cached
    grammar_matcher m(compile(schema), gv);
    std::vector<uint8_t> mask;
    for (const auto& text : outputs) {
        m.reset();
        const auto toks = output_tokens(v, text);
        ASSERT_FALSE(toks.empty());
        std::string seen;
        for (size_t i = 0; i < toks.size(); ++i) {
            if (i % sound_every == 0) expect_mask_sound(m, v);
            m.allowed(mask);
            ASSERT_TRUE(mask[static_cast<size_t>(toks[i])]) << text << " token " << i << " '" << v.token_to_piece(toks[i]) << "'";
            EXPECT_FALSE(m.complete());
            ASSERT_TRUE(m.accept(toks[i]));
            seen += v.token_to_piece(toks[i]);
        }
        EXPECT_EQ(seen, text);
        EXPECT_TRUE(m.complete());
        expect_mask_sound(m, v);
        m.allowed(mask);
        const token_id end = v.eot() >= 0 ? v.eot() : v.eos();
        EXPECT_TRUE(mask[static_cast<size_t>(end)]);
    }
    // A wrong token leaves the state as it was.
    m.reset();
    const auto bad = output_tokens(v, "[");
    EXPECT_FALSE(m.accept(bad[0]));
    EXPECT_FALSE(m.accept(v.eos()));
    const auto good = output_tokens(v, outputs[0]);
    EXPECT_TRUE(m.accept(good[0]));
}

TEST(GrammarTokens, CommandVocabAcceptsValidOutputs) {
    check_outputs("hearth-cmd-q8_0.gguf", command_schema,
                  {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30}})",
                   R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":100}})",
                   R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})",
                   R"({"device":"light.kitchen","action":"turn_on"})", R"({"error":"unsupported"})"});
}

TEST(GrammarTokens, ByteFallbackAndSplitUtf8) {
    const std::string schema = R"({"type":"object","properties":{"name":{"type":"string","maxLength":8}},"required":["name"]})";
    const std::vector<std::string> outputs = {"{\"name\":\"caf\xC3\xA9\"}", "{\"name\":\"\xE2\x82\xAC\xF0\x9F\x98\x80\\u00e9\\n\"}"};
    check_outputs("hearth-cmd-q8_0.gguf", schema, outputs);
    check_outputs("synth-llama-bpe-q4_0.gguf", schema, outputs);
    check_outputs("synth-llama-spm-q4_0.gguf", schema, outputs);
}

TEST(GrammarTokens, BpeVocabAcceptsValidOutputs) {
    check_outputs("synth-llama-bpe-q4_0.gguf", command_schema,
                  {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":7}})",
                   R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":30}})", R"({"error":"unsupported"})"});
}

TEST(GrammarTokens, LargeVocabularies) {
    const std::vector<std::string> outputs = {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":12.5}})"};
    check_outputs("ggml-vocab-gpt-2.gguf", command_schema, outputs, 1000);
    check_outputs("ggml-vocab-llama-spm.gguf", command_schema, outputs, 1000);
}

// Thousands of distinct states (one per string length) overflow the matcher's cache, which is
// dropped and refilled without changing what is allowed.
TEST(GrammarTokens, StateCacheOverflowKeepsState) {
    const std::string path = hearth::test::model_path("hearth-cmd-q8_0.gguf");
    if (!hearth::test::require_file(path)) GTEST_SKIP() << path;
    auto lv = load_vocab(path);
    grammar_matcher m(compile(R"({"type":"string","maxLength":10000})"), grammar_vocab::get(*lv.v));
    const auto a = output_tokens(*lv.v, "a");
    ASSERT_EQ(a.size(), 1u);
    ASSERT_TRUE(m.accept_bytes("\""));
    static_assert(grammar_matcher::max_states < 10000, "the test must overflow the cache");
    for (int i = 0; i < 9999; ++i) ASSERT_TRUE(m.accept(a[0])) << i;
    std::vector<uint8_t> mask;
    m.allowed(mask);
    EXPECT_TRUE(mask[static_cast<size_t>(a[0])]);
    ASSERT_TRUE(m.accept(a[0]));
    m.allowed(mask);
    EXPECT_FALSE(mask[static_cast<size_t>(a[0])]);
    EXPECT_FALSE(m.accept(a[0]));
    EXPECT_FALSE(m.complete());
    ASSERT_TRUE(m.accept_bytes("\""));
    EXPECT_TRUE(m.complete());
    EXPECT_TRUE(m.finished());
}

// ---- random sampling from random-weight models ----

// Generates n outputs under the command schema, several sequences batched; returns how many
// were valid commands that ended with an end-of-generation token the grammar allowed.
int sample_commands(const std::string& model_file, int n, uint64_t seed0, std::set<std::string>& outputs) {
    const std::string path = hearth::test::model_path(model_file);
    if (!hearth::test::require_file(path)) return -1;
    auto m = hearth::model::load(path);
    const hearth::vocab& v = m->vocab();
    const int32_t n_vocab = m->hparams().n_vocab;
    constexpr int n_par = 16;
    hearth::context_params cp;
    cp.n_ctx = 256;
    cp.n_seq_max = n_par;
    cp.n_threads = 1;  // tiny batches: threads would mostly spin (and CI has 2 cores)
    hearth::context ctx(*m, cp);
    auto g = compile(command_schema);
    auto gv = grammar_vocab::get(v);
    const auto prompt = v.tokenize("<|im_start|>user\nturn on the kitchen light<|im_end|>\n<|im_start|>assistant\n", true, true);

    struct slot {
        std::unique_ptr<hearth::sampler> smp;  // its own seeded generator
        std::unique_ptr<grammar_matcher> gm;   // its grammar state
        std::string text;                      // bytes generated so far
        int32_t pos = 0;                       // next position
        bool active = false;                   // generating
    };
    std::vector<slot> slots(n_par);
    int started = 0, valid = 0;
    std::vector<bool> mask;
    hearth::batch b;
    std::vector<int> row_of(n_par, -1);
    auto start = [&](int s) {
        slot& sl = slots[static_cast<size_t>(s)];
        hearth::sampler_params sp;
        sp.temperature = 1.0f + 0.5f * static_cast<float>(started % 3);
        sp.top_k = 0;
        sp.top_p = 1.0f;
        sp.min_p = 0.0f;
        sp.seed = seed0 + static_cast<uint64_t>(started);
        sl.smp = std::make_unique<hearth::sampler>(sp);
        sl.gm = std::make_unique<grammar_matcher>(g, gv);
        sl.text.clear();
        ctx.seq_clear(s);
        for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), s, i + 1 == prompt.size());
        sl.pos = static_cast<int32_t>(prompt.size());
        sl.active = true;
        row_of[static_cast<size_t>(s)] = static_cast<int>(b.size()) - 1;
        ++started;
    };
    for (int s = 0; s < n_par && started < n; ++s) start(s);
    while (b.size() > 0) {
        ctx.decode(b);
        const auto rows = row_of;
        b.clear();
        std::fill(row_of.begin(), row_of.end(), -1);
        for (int s = 0; s < n_par; ++s) {
            slot& sl = slots[static_cast<size_t>(s)];
            if (!sl.active || rows[static_cast<size_t>(s)] < 0) continue;
            sl.gm->allowed(mask);
            const token_id t = sl.smp->sample(ctx.logits(static_cast<size_t>(rows[static_cast<size_t>(s)])), n_vocab, &mask);
            EXPECT_GE(t, 0) << "no token allowed after '" << sl.text << "'";
            bool done = t < 0;
            if (!done && v.is_eog(t)) {
                EXPECT_TRUE(sl.gm->complete());
                EXPECT_TRUE(valid_command(sl.text)) << model_file << ": " << sl.text;
                valid += sl.gm->complete() && valid_command(sl.text);
                outputs.insert(sl.text);
                done = true;
            } else if (!done) {
                EXPECT_TRUE(sl.gm->accept(t));
                sl.text += v.token_to_piece(t);
                if (sl.pos + 1 >= cp.n_ctx) {
                    ADD_FAILURE() << "generation did not end: " << sl.text;
                    done = true;
                } else {
                    b.add(t, sl.pos++, s, true);
                    row_of[static_cast<size_t>(s)] = static_cast<int>(b.size()) - 1;
                }
            }
            if (done) {
                sl.active = false;
                if (started < n) start(s);
            }
        }
    }
    return valid;
}

TEST(GrammarSampling, RandomModelsAlwaysProduceValidCommands) {
    const struct {
        const char* file;  // model
        int n;             // generations from it
    } runs[] = {{"synth-llama-spm-q4_0.gguf", 334}, {"synth-llama-bpe-q4_0.gguf", 333}, {"synth-qwen2-q4_0.gguf", 333}};
    // 1000 generations in an optimised build; unoptimised and sanitizer builds (CI's ASan run)
    // decode about 40 times slower, so they sample a twentieth as many.
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
    constexpr int divisor = 1;
#else
    constexpr int divisor = 20;
#endif
    int total = 0, wanted = 0;
    std::set<std::string> outputs;
    for (const auto& r : runs) {
        const int n = r.n / divisor;
        const int valid = sample_commands(r.file, n, 1000, outputs);
        if (valid < 0) GTEST_SKIP() << r.file;
        EXPECT_EQ(valid, n) << r.file;
        total += valid;
        wanted += n;
    }
    EXPECT_EQ(total, wanted);
    EXPECT_GE(wanted, 1000 / divisor - 2);
    // Sampling explored the grammar: every alternative and many argument values came out.
    for (const char* action : {"set_brightness", "turn_on", "set_temperature", "unsupported"}) {
        EXPECT_TRUE(std::any_of(outputs.begin(), outputs.end(), [&](const std::string& o) { return o.find(action) != std::string::npos; })) << action;
    }
    EXPECT_GE(outputs.size(), 40u / divisor);
    if (std::getenv("HEARTH_GRAMMAR_VERBOSE")) {
        for (const auto& o : outputs) std::printf("%s\n", o.c_str());
    }
}

}  // namespace
