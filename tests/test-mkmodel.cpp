// hearth-mkmodel writes loadable, runnable models: each type of the tiny shape is written, loaded
// by hearth::model::load and decoded. The tool's core is compiled in here (the tests link only the
// engine, and the ASan build has no bench/ targets); the command line is tested when it was built.
#include "../bench/mkmodel.cpp"

#include "context.h"
#include "model.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

std::string tool_path() { return hearth::test::binary_dir() + "/bench/hearth-mkmodel"; }

class temp_dir {
public:
    temp_dir() {
        path_ = fs::temp_directory_path() / ("hearth-test-mkmodel-" + std::to_string(::getpid()));
        fs::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

int run_tool(const std::string& args) {
    // Built up by append: gcc 12 warns falsely (-Wrestrict) on "literal" + std::string here.
    std::string cmd = "'";
    cmd.append(tool_path()).append("' ").append(args).append(" > /dev/null 2>&1");
    return std::system(cmd.c_str());
}

class MkModel : public ::testing::TestWithParam<const char*> {};

TEST_P(MkModel, TinyModelLoadsAndDecodes) {
    temp_dir dir;
    const std::string type = GetParam();
    const std::string path = dir.file("tiny-" + type + ".gguf");
    const auto rep = hearth::bench::write_model(path, hearth::bench::shape_by_name("tiny"), hearth::bench::ftype_by_name(type), 7);
    EXPECT_EQ(rep.file_bytes, fs::file_size(path));

    auto m = hearth::model::load(path);
    const hearth::model_hparams& hp = m->hparams();
    EXPECT_EQ(hp.arch_name, "llama");
    EXPECT_EQ(hp.n_embd, 256);
    EXPECT_EQ(hp.n_layer, 2);
    EXPECT_EQ(hp.n_head, 4);
    EXPECT_EQ(hp.n_head_kv, 2);
    EXPECT_EQ(hp.head_dim, 64);
    EXPECT_EQ(hp.n_ff, 512);
    EXPECT_EQ(hp.n_vocab, 4096);
    EXPECT_TRUE(hp.tied_output);
    EXPECT_EQ(m->vocab().n_tokens(), 4096);
    EXPECT_EQ(m->vocab().bos(), 1);
    EXPECT_EQ(m->vocab().eos(), 2);
    ASSERT_TRUE(m->chat_template_source().has_value());

    // llama-quantize's mix for a 256-wide model (K-quants fit every row).
    std::map<std::string, hearth::tensor_type> want;
    if (type == "f32") want = {{"blk.0.attn_q.weight", hearth::tensor_type::f32}, {"token_embd.weight", hearth::tensor_type::f32}};
    if (type == "f16") want = {{"blk.0.attn_q.weight", hearth::tensor_type::f16}, {"token_embd.weight", hearth::tensor_type::f16}};
    if (type == "q8_0") want = {{"blk.1.ffn_down.weight", hearth::tensor_type::q8_0}, {"token_embd.weight", hearth::tensor_type::q8_0}};
    if (type == "q4_0") want = {{"blk.1.ffn_down.weight", hearth::tensor_type::q4_0}, {"token_embd.weight", hearth::tensor_type::q6_k}};
    if (type == "q4_k_m") {
        want = {{"blk.0.attn_v.weight", hearth::tensor_type::q4_k}, {"blk.1.attn_v.weight", hearth::tensor_type::q6_k},
                {"blk.0.ffn_down.weight", hearth::tensor_type::q4_k}, {"blk.1.ffn_down.weight", hearth::tensor_type::q6_k},
                {"token_embd.weight", hearth::tensor_type::q6_k}};
    }
    ASSERT_FALSE(want.empty());
    for (const auto& l : m->layers()) {
        for (const hearth::weight* w : {&l.wq, &l.wv, &l.w_down}) {
            auto it = want.find(w->name);
            if (it != want.end()) {
                EXPECT_EQ(w->type, it->second) << w->name;
            }
        }
    }
    EXPECT_EQ(m->token_embd().type, want["token_embd.weight"]);

    hearth::context_params cp;
    cp.n_ctx = 64;
    cp.n_threads = 1;
    hearth::context ctx(*m, cp);
    hearth::batch b;
    const hearth::token_id prompt[] = {1, 300, 1200, 4095, 57};
    for (int i = 0; i < 5; ++i) b.add(prompt[i], i, 0, i == 4);
    ctx.decode(b);
    const float* logits = ctx.logits(4);
    double sum_sq = 0.0;
    for (int i = 0; i < hp.n_vocab; ++i) {
        ASSERT_TRUE(std::isfinite(logits[i])) << "logit " << i;
        sum_sq += static_cast<double>(logits[i]) * logits[i];
    }
    // Random weights of std 0.02 give logits of std about 0.02 * sqrt(256) = 0.32: neither zero nor huge.
    const double rms = std::sqrt(sum_sq / hp.n_vocab);
    EXPECT_GT(rms, 0.05);
    EXPECT_LT(rms, 5.0);
}

INSTANTIATE_TEST_SUITE_P(Types, MkModel, ::testing::Values("f32", "f16", "q8_0", "q4_0", "q4_k_m"));

TEST(MkModel, SameSeedSameBytesOtherSeedOtherBytes) {
    temp_dir dir;
    const auto shape = hearth::bench::shape_by_name("tiny");
    hearth::bench::write_model(dir.file("a.gguf"), shape, hearth::bench::model_ftype::q4_0, 3);
    hearth::bench::write_model(dir.file("b.gguf"), shape, hearth::bench::model_ftype::q4_0, 3);
    hearth::bench::write_model(dir.file("c.gguf"), shape, hearth::bench::model_ftype::q4_0, 4);
    const std::string a = hearth::test::read_file_bytes(dir.file("a.gguf"));
    EXPECT_EQ(a, hearth::test::read_file_bytes(dir.file("b.gguf")));
    EXPECT_NE(a, hearth::test::read_file_bytes(dir.file("c.gguf")));
}

TEST(MkModel, SmolLM2MixFollowsLlamaQuantizeFallbacks) {
    // 576-wide rows cannot hold K-quant super-blocks: Q4_K -> Q5_0, Q6_K -> Q8_0; ffn_down (1536) keeps K-quants.
    using hearth::tensor_type;
    using hearth::bench::model_ftype;
    const auto s = hearth::bench::shape_by_name("smollm2-135m");
    EXPECT_EQ(s.n_embd, 576);
    EXPECT_EQ(s.n_layer, 30);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "token_embd.weight", 576), tensor_type::q8_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.4.attn_q.weight", 576), tensor_type::q5_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.0.attn_v.weight", 576), tensor_type::q8_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.4.attn_v.weight", 576), tensor_type::q5_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.5.ffn_down.weight", 1536), tensor_type::q6_k);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.4.ffn_down.weight", 1536), tensor_type::q4_k);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, "blk.29.ffn_down.weight", 1536), tensor_type::q6_k);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_0, s, "token_embd.weight", 576), tensor_type::q8_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q4_0, s, "blk.0.ffn_down.weight", 1536), tensor_type::q4_0);
    EXPECT_EQ(hearth::bench::tensor_type_for(model_ftype::q8_0, s, "blk.0.attn_norm.weight", 576), tensor_type::f32);
    int more_bits = 0;
    for (int il = 0; il < s.n_layer; ++il) {
        const std::string name = "blk." + std::to_string(il) + ".ffn_down.weight";
        more_bits += hearth::bench::tensor_type_for(model_ftype::q4_k_m, s, name, 1536) == tensor_type::q6_k;
    }
    EXPECT_EQ(more_bits, 14);
}

TEST(MkModel, RejectsUnknownNames) {
    EXPECT_THROW(hearth::bench::shape_by_name("huge"), std::invalid_argument);
    EXPECT_THROW(hearth::bench::ftype_by_name("q3_k"), std::invalid_argument);
}

TEST(MkModelTool, CommandLineWritesAndRejects) {
    // Built only with -DHEARTH_BENCH=ON; the core is tested above either way.
    if (!fs::exists(tool_path())) GTEST_SKIP() << tool_path() << " not built";
    temp_dir dir;
    EXPECT_EQ(run_tool("--out '" + dir.file("t.gguf") + "' --shape tiny --type q8_0"), 0);
    EXPECT_NO_THROW(hearth::model::load(dir.file("t.gguf")));
    EXPECT_NE(run_tool("--out '" + dir.file("x.gguf") + "' --type q3_k"), 0);
    EXPECT_NE(run_tool("--out '" + dir.file("x.gguf") + "' --shape huge"), 0);
    EXPECT_FALSE(fs::exists(dir.file("x.gguf")));
}

}  // namespace
