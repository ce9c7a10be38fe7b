// hearth-run end to end: the real binary, its JSON outputs against the references, and one
// clear line with a non-zero exit for every kind of bad input.
#include "gguf-writer.h"
#include "gguf.h"
#include "test-util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using hearth::test::model_path;
using hearth::test::read_file_bytes;
using hearth::test::read_json;
using hearth::test::reference_path;
using nlohmann::json;
namespace fs = std::filesystem;

struct run_result {
    int status = -1;
    std::string out;
    std::string err;
};

fs::path temp_dir() {
    static fs::path dir = [] {
        fs::path d = fs::temp_directory_path() / ("hearth-run-test-" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

run_result run(const std::string& args) {
    const fs::path out = temp_dir() / "out", err = temp_dir() / "err";
    const std::string cmd = quote(hearth::test::binary_dir() + "/tools/hearth-run") + " " + args + " >" + quote(out) + " 2>" + quote(err);
    const int rc = std::system(cmd.c_str());
    run_result r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = read_file_bytes(out);
    r.err = read_file_bytes(err);
    return r;
}

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(hearth_run, json_greedy_matches_reference) {
    const std::string m = model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const json ref = read_json(reference_path("stories260K-f32__p1.json"));
    run_result r = run("-m " + quote(m) + " -p " + quote(ref["prompt"]) + " -n 16 --temp 0 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["prompt_tokens"], ref["prompt_tokens"]);
    EXPECT_EQ(j["tokens"], ref["generated_tokens"]);
    EXPECT_EQ(j["text"], ref["generated_text"]);
    EXPECT_GT(j["prefill_tps"].get<double>(), 0.0);
    EXPECT_GT(j["decode_tps"].get<double>(), 0.0);
}

TEST(hearth_run, streams_text_and_reports_timing) {
    const std::string m = model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    run_result r = run("-m " + quote(m) + " -p 'Once upon a time' -n 12 --temp 0");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind(", there was a little girl", 0), 0u) << r.out;
    EXPECT_NE(r.err.find("tok/s"), std::string::npos);
}

TEST(hearth_run, same_seed_same_text) {
    const std::string m = model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const std::string args = "-m " + quote(m) + " -p 'The little dog' -n 24 --temp 1.0 --json --seed ";
    const json a = json::parse(run(args + "7").out), b = json::parse(run(args + "7").out), c = json::parse(run(args + "8").out);
    EXPECT_EQ(a["tokens"], b["tokens"]);
    EXPECT_NE(a["tokens"], c["tokens"]);
}

TEST(hearth_run, tokenize_vocab_only_file) {
    const std::string m = model_path("ggml-vocab-gpt-2.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const json ref = read_json(reference_path("tokenizer__ggml-vocab-gpt-2.json"));
    int checked = 0;
    for (const json& c : ref["cases"]) {
        const std::string text = hearth::test::hex_to_bytes(c["text_hex"]);
        if (text.empty()) continue;
        const fs::path f = temp_dir() / "prompt.txt";
        std::ofstream(f, std::ios::binary) << text;
        run_result r = run("-m " + quote(m) + " -f " + quote(f) + " --tokenize --json");
        ASSERT_EQ(r.status, 0) << r.err;
        const json j = json::parse(r.out);
        EXPECT_EQ(j["tokens"], c["ids_add_special_parse_special"]) << c["text"];
        run_result plain = run("-m " + quote(m) + " -f " + quote(f) + " --tokenize --json --no-bos --no-parse-special");
        EXPECT_EQ(json::parse(plain.out)["tokens"], c["ids"]) << c["text"];
        ++checked;
        if (checked == 6) break;
    }
    EXPECT_EQ(checked, 6);
}

TEST(hearth_run, prompt_file_bytes_are_exact) {
    const std::string m = model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const fs::path f = temp_dir() / "nl.txt";
    std::ofstream(f, std::ios::binary) << "Once upon a time\n";
    const json with_nl = json::parse(run("-m " + quote(m) + " -f " + quote(f) + " --tokenize --json").out);
    const json without = json::parse(run("-m " + quote(m) + " -p 'Once upon a time' --tokenize --json").out);
    EXPECT_EQ(with_nl["tokens"].size(), without["tokens"].size() + 1);
}

TEST(hearth_run, top_logits_teacher_forced_match_reference) {
    const std::string m = model_path("synth-qwen2-q8_0.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const json ref = read_json(reference_path("synth-qwen2-q8_0__p0.json"));
    std::string ids;
    auto append = [&ids](const json& t) {
        if (!ids.empty()) ids.push_back(',');
        ids.append(std::to_string(t.get<int>()));
    };
    for (const json& t : ref["prompt_tokens"]) append(t);
    for (const json& t : ref["generated_tokens"]) append(t);
    run_result r = run("-m " + quote(m) + " --prompt-tokens " + ids + " -n 0 --json --top-logits 20");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    ASSERT_EQ(j["positions"].size(), ref["positions"].size());
    double worst = 0;
    for (size_t p = 0; p < ref["positions"].size(); ++p) {
        const json& mine = j["positions"][p];
        const json& theirs = ref["positions"][p];
        EXPECT_EQ(mine["pos"], theirs["pos"]);
        EXPECT_EQ(mine["top"].size(), 20u);
        worst = std::max(worst, std::fabs(mine["logsumexp"].get<double>() - theirs["logsumexp"].get<double>()));
        // The reference's best token is among our top 3 (tolerance 0.6 on a Q8_0 model).
        bool found = false;
        for (size_t k = 0; k < 3; ++k) found |= mine["top"][k][0] == theirs["top"][0][0];
        EXPECT_TRUE(found) << "position " << p;
    }
    EXPECT_LE(worst, 0.25);
}

TEST(hearth_run, chat_renders_the_models_template) {
    const std::string m = model_path("synth-llama-spm-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    const json ref = read_json(reference_path("synth-llama-spm-f32__chatml.json"));
    run_result r = run("-m " + quote(m) + " --chat -p 'Turn on the kitchen light' -n 0 --json");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["prompt_tokens"], ref["prompt_tokens"]);
}

TEST(hearth_run, info_describes_the_model) {
    const std::string m = model_path("synth-llama-bpe-q4_k_m.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();
    run_result r = run("-m " + quote(m) + " --info --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["architecture"], "llama");
    EXPECT_EQ(j["n_embd"], 256);
    EXPECT_EQ(j["n_head_kv"], 2);
    EXPECT_EQ(j["tied_output"], true);
    EXPECT_EQ(j["chat_template"], "chatml");
    EXPECT_TRUE(j["tensor_bytes"].contains("Q4_K"));
    EXPECT_TRUE(j["tensor_bytes"].contains("Q6_K"));
    run_result text = run("-m " + quote(m) + " --info");
    EXPECT_NE(text.out.find("byte-level BPE"), std::string::npos);
}

// Copies a model, optionally with another architecture name and one tensor turned into I8
// (a type the engine refuses).
void copy_model(const std::string& src, const std::string& dst, const std::string& arch_override, const std::string& retype_tensor) {
    hearth::test::copy_gguf(src, dst, arch_override, [&](hearth::gguf_writer& w, const hearth::gguf_tensor& t) {
        if (std::string(t.name) != retype_tensor) return false;
        std::vector<uint8_t> bytes(static_cast<size_t>(t.n_elements()), 0);  // I8: one byte each
        w.add_tensor(std::string(t.name), hearth::tensor_type::i8, t.ne, bytes.data(), bytes.size());
        return true;
    });
}

TEST(hearth_run, errors_are_one_clear_line) {
    const std::string m = model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(m)) GTEST_SKIP();

    run_result missing = run("-m /nonexistent/model.gguf -p hi");
    EXPECT_EQ(missing.status, 1);
    EXPECT_EQ(count_lines(missing.err), 1u) << missing.err;
    EXPECT_NE(missing.err.find("/nonexistent/model.gguf"), std::string::npos);

    run_result bad_flag = run("-m " + quote(m) + " -p hi --no-such-flag");
    EXPECT_EQ(bad_flag.status, 2);
    EXPECT_EQ(count_lines(bad_flag.err), 1u) << bad_flag.err;

    run_result bad_tokens = run("-m " + quote(m) + " --prompt-tokens 1,x,3");
    EXPECT_NE(bad_tokens.status, 0);
    EXPECT_EQ(count_lines(bad_tokens.err), 1u);

    const fs::path not_gguf = temp_dir() / "not.gguf";
    std::ofstream(not_gguf) << "this is not a model";
    run_result corrupt = run("-m " + quote(not_gguf) + " -p hi");
    EXPECT_EQ(corrupt.status, 1);
    EXPECT_EQ(count_lines(corrupt.err), 1u) << corrupt.err;

    const fs::path arch = temp_dir() / "arch.gguf";
    copy_model(m, arch, "gptneox", "");
    run_result bad_arch = run("-m " + quote(arch) + " -p hi");
    EXPECT_EQ(bad_arch.status, 1);
    EXPECT_NE(bad_arch.err.find("unsupported architecture 'gptneox'"), std::string::npos) << bad_arch.err;
    EXPECT_EQ(count_lines(bad_arch.err), 1u);

    const fs::path type = temp_dir() / "type.gguf";
    copy_model(m, type, "", "blk.0.attn_q.weight");
    run_result bad_type = run("-m " + quote(type) + " -p hi");
    EXPECT_EQ(bad_type.status, 1);
    EXPECT_NE(bad_type.err.find("blk.0.attn_q.weight"), std::string::npos) << bad_type.err;
    EXPECT_NE(bad_type.err.find("I8"), std::string::npos) << bad_type.err;
    EXPECT_EQ(count_lines(bad_type.err), 1u);

    run_result too_long = run("-m " + quote(m) + " -p hi -n 100000");
    EXPECT_EQ(too_long.status, 1);
    EXPECT_NE(too_long.err.find("exceeds the context"), std::string::npos) << too_long.err;
}

}  // namespace
