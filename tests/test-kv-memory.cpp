// KV cache memory: reserved address space costs nothing until written, released sequences give
// their pages back without disturbing others, and the pre-load estimate sizes what a load would.
#include "context.h"
#include "generator.h"
#include "model.h"
#include "page-memory.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using hearth::test::model_path;

const char* const synth = "synth-llama-spm-f32.gguf";

#define REQUIRE_MODEL(file) \
    if (!hearth::test::require_file(model_path(file))) GTEST_SKIP() << model_path(file)

// Resident anonymous memory of this process in bytes (RssAnon of /proc/self/status): the part of
// VmRSS that KV pages land in, without the model file's mapped pages that decoding touches.
int64_t rss_anon() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("RssAnon:", 0) == 0) return std::stoll(line.substr(8)) * 1024;
    }
    ADD_FAILURE() << "no RssAnon in /proc/self/status";
    return 0;
}

std::vector<hearth::token_id> tokens_for(int32_t seq, int32_t n, int32_t n_vocab) {
    std::vector<hearth::token_id> t(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (seq * 131 + i * 17 + 3) % n_vocab;
    return t;
}

// Decodes n tokens of sequence seq from its current length in one batch, logits for the last.
const float* feed(hearth::context& c, int32_t seq, const std::vector<hearth::token_id>& toks) {
    hearth::batch b;
    const int32_t start = c.seq_length(seq);
    for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], start + static_cast<int32_t>(i), seq, i + 1 == toks.size());
    c.decode(b);
    return c.logits(b.size() - 1);
}

TEST(page_memory, release_returns_whole_pages_as_zeros) {
    const size_t page = hearth::page_memory::page_size();
    hearth::page_memory pm(8 * page);
    ASSERT_NE(pm.data(), nullptr);
    EXPECT_EQ(pm.size(), 8 * page);
    for (size_t i = 0; i < pm.size(); ++i) EXPECT_EQ(pm.data()[i], 0) << i;  // fresh pages read as zero
    std::memset(pm.data(), 0xAB, pm.size());
    // [page/2, 3.5 pages) holds pages 1 and 2 whole; the halves of pages 0 and 3 stay.
    EXPECT_EQ(pm.release(page / 2, 3 * page), 2 * page);
    for (size_t i = 0; i < pm.size(); ++i) {
        const bool released = i >= page && i < 3 * page;
        ASSERT_EQ(pm.data()[i], released ? 0 : 0xAB) << "byte " << i;
    }
    EXPECT_EQ(pm.release(page / 2, page / 4), 0u);  // no whole page inside
    EXPECT_EQ(pm.release(100 * page, page), 0u);     // past the end
    EXPECT_EQ(pm.release(7 * page, 5 * page), page); // clipped to the reservation
    pm.data()[7 * page] = 1;                         // released pages are usable again
    EXPECT_EQ(pm.data()[7 * page], 1);

    hearth::page_memory moved(std::move(pm));
    EXPECT_EQ(moved.size(), 8 * page);
    EXPECT_EQ(pm.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(pm.data(), nullptr);

    hearth::page_memory empty(0);
    EXPECT_EQ(empty.size(), 0u);
    EXPECT_EQ(empty.release(0, 100), 0u);
    EXPECT_EQ(hearth::page_memory::round_up(1), page);
    EXPECT_EQ(hearth::page_memory::round_up(page), page);
}

TEST(page_memory, impossible_reservation_throws_a_clear_error) {
    try {
        hearth::page_memory pm(std::numeric_limits<size_t>::max() / 2);
        FAIL() << "reserved half the address space";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot reserve"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("for the KV cache"), std::string::npos) << e.what();
    }
}

TEST(page_memory, resident_only_when_written) {
    const size_t bytes = 32u << 20;
    const int64_t before = rss_anon();
    hearth::page_memory pm(bytes);
    EXPECT_LT(rss_anon() - before, static_cast<int64_t>(bytes / 10));
    std::memset(pm.data(), 1, bytes);
    const int64_t written = rss_anon();
    EXPECT_GT(written - before, static_cast<int64_t>(bytes * 7 / 10));
    EXPECT_EQ(pm.release(0, bytes), bytes);
    EXPECT_GT(written - rss_anon(), static_cast<int64_t>(bytes * 7 / 10));
}

TEST(kv_memory, per_token_bytes_follow_the_shape) {
    REQUIRE_MODEL(synth);
    for (bool exact : {false, true}) {
        auto m = hearth::model::load(model_path(synth), {.exact = exact});
        const auto& hp = m->hparams();
        hearth::context c(*m, {.n_ctx = 300, .n_seq_max = 3});
        const size_t elt = exact ? 4 : 2;
        const size_t per_token = 2 * static_cast<size_t>(hp.n_layer) * hp.n_head_kv * hp.head_dim * elt;
        EXPECT_EQ(c.kv_bytes_per_token(), per_token);
        EXPECT_EQ(per_token, exact ? 2048u : 1024u);  // 2 layers, 2 KV heads of 64
        // Each sequence's K and V are padded to whole pages, nothing more.
        const size_t page = hearth::page_memory::page_size();
        EXPECT_GE(c.kv_bytes(), per_token * 300 * 3);
        EXPECT_LT(c.kv_bytes(), per_token * 300 * 3 + 2 * 3 * page);
        EXPECT_EQ(c.kv_bytes() % (2 * page), 0u);
        EXPECT_EQ(c.kv_bytes(), hearth::context::kv_bytes_for(hp, m->params(), 300, 3));
    }
}

TEST(kv_memory, pages_are_resident_only_while_sequences_hold_them) {
    REQUIRE_MODEL(synth);
    // Exact mode keeps the cache in F32: twice the bytes for the same decoding time (this test
    // also runs under ASan).
    auto m = hearth::model::load(model_path(synth), {.exact = true});
    const int32_t nv = m->hparams().n_vocab;
    const int32_t n_seq = 8;
    const int32_t n_ctx = 256;
    const int64_t before = rss_anon();
    hearth::context c(*m, {.n_ctx = n_ctx, .n_seq_max = n_seq, .n_batch = n_ctx, .adapt_threads = false});
    const auto kv = static_cast<int64_t>(c.kv_bytes());
    ASSERT_GE(kv, 4 << 20);
    EXPECT_LT(rss_anon() - before, kv / 10) << "constructing the context made the cache resident";

    // Sequence 0 first, so the scratch a full batch needs is allocated before the baseline.
    feed(c, 0, tokens_for(0, n_ctx, nv));
    const int64_t base = rss_anon();
    for (int32_t s = 1; s < n_seq; ++s) feed(c, s, tokens_for(s, n_ctx, nv));
    const int64_t full = rss_anon();
    const int64_t filled = kv / n_seq * (n_seq - 1);
    EXPECT_GT(full - base, filled * 7 / 10) << "filling " << filled << " bytes of cache";
    EXPECT_LT(full - base, filled * 13 / 10) << "filling " << filled << " bytes of cache";

    for (int32_t s = 0; s < n_seq; ++s) c.seq_release(s);
    for (int32_t s = 0; s < n_seq; ++s) EXPECT_EQ(c.seq_length(s), 0);
    const int64_t released = full - rss_anon();
    EXPECT_GT(released, kv * 7 / 10) << "releasing every sequence";
    EXPECT_LT(released, kv * 13 / 10) << "releasing every sequence";
    std::printf("cache %lld bytes: +%lld filling %d sequences, -%lld releasing all\n", static_cast<long long>(kv),
                static_cast<long long>(full - base), n_seq - 1, static_cast<long long>(released));
    EXPECT_THROW(c.seq_release(n_seq), std::invalid_argument);
    EXPECT_THROW(c.seq_release(-1), std::invalid_argument);

    // Released sequences decode as in a fresh context.
    const auto toks = tokens_for(7, 40, nv);
    const float* again = feed(c, 3, toks);
    std::vector<float> got(again, again + nv);
    hearth::context fresh(*m, {.n_ctx = n_ctx, .n_seq_max = n_seq, .n_batch = n_ctx, .adapt_threads = false});
    const float* want = feed(fresh, 3, toks);
    for (int32_t i = 0; i < nv; ++i) ASSERT_EQ(got[static_cast<size_t>(i)], want[i]) << "logit " << i;
}

TEST(kv_memory, releasing_one_sequence_leaves_the_others_intact) {
    REQUIRE_MODEL(synth);
    auto m = hearth::model::load(model_path(synth));
    const int32_t nv = m->hparams().n_vocab;
    const hearth::context_params cp{.n_ctx = 200, .n_seq_max = 3, .adapt_threads = false};
    const auto a = tokens_for(1, 150, nv);
    const auto b = tokens_for(2, 120, nv);
    const std::vector<hearth::token_id> next = {42};

    hearth::context c(*m, cp);
    feed(c, 0, a);
    feed(c, 1, b);
    feed(c, 2, a);
    c.seq_release(1);  // neighbours on both sides
    const float* l0 = feed(c, 0, next);
    std::vector<float> got0(l0, l0 + nv);
    const float* l2 = feed(c, 2, next);
    std::vector<float> got2(l2, l2 + nv);
    const float* l1 = feed(c, 1, b);
    std::vector<float> got1(l1, l1 + nv);

    hearth::context fresh(*m, cp);
    feed(fresh, 0, a);
    const float* w0 = feed(fresh, 0, next);
    for (int32_t i = 0; i < nv; ++i) ASSERT_EQ(got0[static_cast<size_t>(i)], w0[i]) << "sequence 0, logit " << i;
    const float* w1 = feed(fresh, 1, b);
    for (int32_t i = 0; i < nv; ++i) ASSERT_EQ(got1[static_cast<size_t>(i)], w1[i]) << "sequence 1, logit " << i;
    feed(fresh, 2, a);
    const float* w2 = feed(fresh, 2, next);
    for (int32_t i = 0; i < nv; ++i) ASSERT_EQ(got2[static_cast<size_t>(i)], w2[i]) << "sequence 2, logit " << i;
}

TEST(model_footprint, matches_the_file_and_a_context) {
    REQUIRE_MODEL(synth);
    const std::string path = model_path(synth);
    const auto file_size = std::filesystem::file_size(path);
    const hearth::model_footprint fp = hearth::model_footprint_estimate(path, 300, 3, 64);
    EXPECT_EQ(fp.file_bytes, file_size);
    EXPECT_EQ(fp.n_ctx, 300);
    EXPECT_LE(fp.weight_bytes, file_size);
    EXPECT_GT(fp.weight_bytes, file_size * 9 / 10);  // an F32 file is nearly all weights
    EXPECT_GT(fp.scratch_bytes, 64u * 256 * 4);      // at least the residual stream of 64 tokens
    EXPECT_EQ(fp.total(), fp.weight_bytes + fp.kv_bytes + fp.scratch_bytes);

    auto m = hearth::model::load(path);
    hearth::context c(*m, {.n_ctx = 300, .n_seq_max = 3});
    EXPECT_EQ(fp.kv_bytes, c.kv_bytes());
    hearth::context dflt(*m, {.n_seq_max = 2});
    const auto fp0 = hearth::model_footprint_estimate(path, 0, 2, 64);
    EXPECT_EQ(fp0.n_ctx, dflt.n_ctx());
    EXPECT_EQ(fp0.kv_bytes, dflt.kv_bytes());
    EXPECT_EQ(hearth::model_footprint_estimate(path, 100000, 1, 1).n_ctx, 512);  // capped at training
    EXPECT_EQ(hearth::model_footprint_estimate(path, 4, 1, 1).n_ctx, 16);
    // Twice the sequences, twice the cache.
    EXPECT_EQ(hearth::model_footprint_estimate(path, 300, 6, 64).kv_bytes, 2 * fp.kv_bytes);
}

TEST(model_footprint, exact_mode_counts_f32_copies) {
    const std::string path = model_path("synth-llama-spm-q8_0.gguf");
    if (!hearth::test::require_file(path)) GTEST_SKIP() << path;
    const auto quant = hearth::model_footprint_estimate(path, 128, 1, 16);
    const auto exact = hearth::model_footprint_estimate(path, 128, 1, 16, {.exact = true});
    EXPECT_LE(quant.weight_bytes, quant.file_bytes);
    EXPECT_GT(exact.weight_bytes, 3 * quant.weight_bytes);  // 8.5 bits per weight become 32
    EXPECT_EQ(exact.kv_bytes, 2 * quant.kv_bytes);          // and the cache is F32
}

TEST(model_footprint, agrees_with_the_generator_on_positions_and_cache) {
    REQUIRE_MODEL("stories260K-f32.gguf");
    const std::string path = model_path("stories260K-f32.gguf");
    auto m = hearth::model::load(path);
    // What a worker passes: its ctx_size (beyond this model's 128 positions) and slot count.
    hearth::generator g(*m, {.slots = 3, .n_ctx = 2048, .n_threads = 1}, nullptr);
    const auto fp = hearth::model_footprint_estimate(path, 2048, 3, 256);
    EXPECT_EQ(fp.n_ctx, g.n_ctx());
    EXPECT_EQ(fp.kv_bytes, hearth::context::kv_bytes_for(m->hparams(), m->params(), g.n_ctx(), 3));
    EXPECT_EQ(fp.kv_bytes / 2 / 3, hearth::page_memory::round_up(g.kv_bytes_per_token() / 2 * 128));
}

// The estimate fails as load() does, with the same message.
void expect_same_failure(const std::string& path) {
    std::string load_msg, estimate_msg;
    try {
        hearth::model::load(path);
    } catch (const std::exception& e) {
        load_msg = e.what();
    }
    try {
        hearth::model_footprint_estimate(path, 0, 1, 1);
    } catch (const std::exception& e) {
        estimate_msg = e.what();
    }
    EXPECT_FALSE(load_msg.empty()) << path << " loaded";
    EXPECT_EQ(estimate_msg, load_msg);
}

TEST(model_footprint, bad_files_fail_as_load_does) {
    REQUIRE_MODEL(synth);
    const std::string src = model_path(synth);
    const std::string truncated = (std::filesystem::temp_directory_path() / "hearth-kv-memory-truncated.gguf").string();
    {
        const std::string bytes = hearth::test::read_file_bytes(src);
        std::ofstream out(truncated, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    EXPECT_THROW(hearth::model_footprint_estimate(truncated, 0, 1, 1), hearth::gguf_error);
    expect_same_failure(truncated);
    std::filesystem::remove(truncated);
    EXPECT_THROW(hearth::model_footprint_estimate(truncated, 0, 1, 1), hearth::gguf_error);  // missing file

    // A vocabulary-only file: metadata, but no weights.
    const std::string vocab_only = model_path("ggml-vocab-llama-spm.gguf");
    if (hearth::test::require_file(vocab_only)) expect_same_failure(vocab_only);
}

}  // namespace
