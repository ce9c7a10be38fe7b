// The forward pass's bookkeeping: batched prompts equal token-by-token decoding, sequences that
// share a batch do not see each other, bad batches change nothing, thread counts agree.
#include "context.h"
#include "model.h"
#include "quants.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <memory>

namespace {

using hearth::test::model_path;

std::unique_ptr<hearth::model> load(const std::string& file, bool exact = false) {
    hearth::model_params p;
    p.exact = exact;
    return hearth::model::load(model_path(file), p);
}

float max_abs_diff(const float* a, const float* b, int32_t n) {
    float m = 0;
    for (int32_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

const std::vector<int32_t> tokens_a = {1, 403, 407, 263, 931, 29892, 727, 471};
const std::vector<int32_t> tokens_b = {1, 365, 2354, 322, 4335, 3512};

class context_test : public ::testing::TestWithParam<std::string> {};

TEST_P(context_test, batched_prompt_equals_token_by_token) {
    if (!hearth::test::require_file(model_path(GetParam()))) GTEST_SKIP();
    auto m = load(GetParam(), true);
    const int32_t nv = m->hparams().n_vocab;
    hearth::context batched(*m, {.n_ctx = 64});
    hearth::context stepped(*m, {.n_ctx = 64});
    hearth::batch all;
    std::vector<int32_t> toks = tokens_b;
    for (int32_t& t : toks) t %= nv;
    for (size_t i = 0; i < toks.size(); ++i) all.add(toks[i], static_cast<int32_t>(i), 0, true);
    batched.decode(all);
    for (size_t i = 0; i < toks.size(); ++i) {
        hearth::batch one;
        one.add(toks[i], static_cast<int32_t>(i), 0, true);
        stepped.decode(one);
        EXPECT_LT(max_abs_diff(batched.logits(i), stepped.logits(0), nv), 1e-4f) << "position " << i;
    }
    EXPECT_EQ(batched.seq_length(0), static_cast<int32_t>(toks.size()));
}

TEST_P(context_test, sequences_in_one_batch_are_independent) {
    if (!hearth::test::require_file(model_path(GetParam()))) GTEST_SKIP();
    auto m = load(GetParam());
    const int32_t nv = m->hparams().n_vocab;
    // Alone: each sequence in its own context.
    std::vector<std::vector<float>> alone;
    for (const auto* toks : {&tokens_a, &tokens_b}) {
        hearth::context c(*m, {.n_ctx = 64});
        hearth::batch b;
        for (size_t i = 0; i < toks->size(); ++i) b.add((*toks)[i] % nv, static_cast<int32_t>(i), 0, i + 1 == toks->size());
        c.decode(b);
        alone.emplace_back(c.logits(toks->size() - 1), c.logits(toks->size() - 1) + nv);
    }
    // Together: interleaved in one batch, as continuous batching does.
    hearth::context c(*m, {.n_ctx = 64, .n_seq_max = 2});
    hearth::batch b;
    size_t last_a = 0, last_b = 0;
    for (size_t i = 0; i < std::max(tokens_a.size(), tokens_b.size()); ++i) {
        if (i < tokens_a.size()) {
            last_a = b.size();
            b.add(tokens_a[i] % nv, static_cast<int32_t>(i), 0, i + 1 == tokens_a.size());
        }
        if (i < tokens_b.size()) {
            last_b = b.size();
            b.add(tokens_b[i] % nv, static_cast<int32_t>(i), 1, i + 1 == tokens_b.size());
        }
    }
    c.decode(b);
    EXPECT_LT(max_abs_diff(c.logits(last_a), alone[0].data(), nv), 1e-3f);
    EXPECT_LT(max_abs_diff(c.logits(last_b), alone[1].data(), nv), 1e-3f);
}

TEST_P(context_test, one_and_two_threads_agree) {
    if (!hearth::test::require_file(model_path(GetParam()))) GTEST_SKIP();
    auto m = load(GetParam());
    const int32_t nv = m->hparams().n_vocab;
    std::vector<float> first;
    for (int32_t threads : {1, 2}) {
        hearth::context c(*m, {.n_ctx = 64, .n_threads = threads});
        hearth::batch b;
        for (size_t i = 0; i < tokens_a.size(); ++i) b.add(tokens_a[i] % nv, static_cast<int32_t>(i), 0, true);
        c.decode(b);
        const float* l = c.logits(tokens_a.size() - 1);
        if (first.empty()) first.assign(l, l + nv);
        else EXPECT_EQ(max_abs_diff(l, first.data(), nv), 0.0f);
    }
}

INSTANTIATE_TEST_SUITE_P(models, context_test,
                         ::testing::Values("stories260K-f32.gguf", "synth-qwen2-q8_0.gguf", "synth-llama-bpe-q4_k_m.gguf"),
                         [](const auto& info) {
                             std::string n = info.param;
                             for (char& ch : n) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return n;
                         });

TEST(context, bad_batches_are_refused_and_change_nothing) {
    if (!hearth::test::require_file(model_path("stories260K-f32.gguf"))) GTEST_SKIP();
    auto m = load("stories260K-f32.gguf");
    hearth::context c(*m, {.n_ctx = 8});
    hearth::batch b;
    b.add(1, 0, 0, true);
    c.decode(b);
    ASSERT_EQ(c.seq_length(0), 1);

    hearth::batch gap;
    gap.add(5, 2, 0, true);  // position 1 is missing
    EXPECT_THROW(c.decode(gap), std::invalid_argument);
    hearth::batch bad_token;
    bad_token.add(m->hparams().n_vocab, 1, 0, true);
    EXPECT_THROW(c.decode(bad_token), std::invalid_argument);
    hearth::batch bad_seq;
    bad_seq.add(5, 0, 3, true);
    EXPECT_THROW(c.decode(bad_seq), std::invalid_argument);
    EXPECT_EQ(c.seq_length(0), 1);

    hearth::batch full;
    for (int32_t p = 1; p < 9; ++p) full.add(5, p, 0, false);
    EXPECT_THROW(c.decode(full), std::length_error);
    EXPECT_EQ(c.seq_length(0), 1);
    EXPECT_THROW(c.logits(5), std::invalid_argument);

    c.seq_clear(0);
    EXPECT_EQ(c.seq_length(0), 0);
    hearth::batch again;
    again.add(1, 0, 0, true);
    EXPECT_NO_THROW(c.decode(again));
}

// Files may give q, k and v different types (per-tensor overrides): here Q4_K, F32 and Q8_0,
// three activation formats in one fused matmul. Default mode must run and agree with exact math.
TEST(context, q_k_v_of_three_types) {
    const std::string src = model_path("synth-llama-spm-q4_k_m.gguf");
    if (!hearth::test::require_file(src)) GTEST_SKIP();
    const std::string dst = std::filesystem::temp_directory_path() / ("hearth-mixed-" + std::to_string(::getpid()) + ".gguf");
    hearth::test::copy_gguf(src, dst, "", [](hearth::gguf_writer& w, const hearth::gguf_tensor& t) {
        const std::string name(t.name);
        const hearth::tensor_type to = name == "blk.0.attn_k.weight" ? hearth::tensor_type::f32
                                       : name == "blk.0.attn_v.weight" ? hearth::tensor_type::q8_0
                                                                        : t.type;
        if (to == t.type) return false;
        std::vector<float> f(static_cast<size_t>(t.n_elements()));
        const int64_t n = t.ne[0];
        for (int64_t r = 0; r < t.n_rows(); ++r) {
            hearth::dequantize_row(t.type, t.data + r * hearth::tensor_type_row_bytes(t.type, n), f.data() + r * n, n);
        }
        std::vector<uint8_t> q(hearth::tensor_type_row_bytes(to, n) * static_cast<size_t>(t.n_rows()));
        for (int64_t r = 0; r < t.n_rows(); ++r) {
            hearth::quantize_row(to, f.data() + r * n, q.data() + r * hearth::tensor_type_row_bytes(to, n), n);
        }
        w.add_tensor(name, to, t.ne, q.data(), q.size());
        return true;
    });
    auto fast = hearth::model::load(dst);
    auto exact = hearth::model::load(dst, {.exact = true});
    std::filesystem::remove(dst);
    const int32_t nv = fast->hparams().n_vocab;
    std::vector<std::vector<float>> logits;
    for (const hearth::model* m : {fast.get(), exact.get()}) {
        hearth::context c(*m, {.n_ctx = 64});
        hearth::batch b;
        for (size_t i = 0; i < tokens_a.size(); ++i) b.add(tokens_a[i] % nv, static_cast<int32_t>(i), 0, true);
        c.decode(b);
        logits.emplace_back(c.logits(tokens_a.size() - 1), c.logits(tokens_a.size() - 1) + nv);
    }
    EXPECT_LT(max_abs_diff(logits[0].data(), logits[1].data(), nv), 0.6f);  // the Q8 activation tolerance
}

TEST(context, long_prompt_is_split_into_chunks) {
    if (!hearth::test::require_file(model_path("stories260K-f32.gguf"))) GTEST_SKIP();
    auto m = load("stories260K-f32.gguf", true);
    const int32_t nv = m->hparams().n_vocab;
    hearth::context whole(*m, {.n_ctx = 64});
    hearth::context chunked(*m, {.n_ctx = 64, .n_batch = 3});
    hearth::batch b;
    for (size_t i = 0; i < tokens_a.size(); ++i) b.add(tokens_a[i] % nv, static_cast<int32_t>(i), 0, i % 2 == 1);
    whole.decode(b);
    chunked.decode(b);
    for (size_t i = 1; i < tokens_a.size(); i += 2) EXPECT_LT(max_abs_diff(whole.logits(i), chunked.logits(i), nv), 1e-4f);
}

}  // namespace
