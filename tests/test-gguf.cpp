// GGUF reader and writer: the shared models, a writer round trip, and hostile files that must
// each fail with a clean gguf_error (CI runs this under ASan, so a read out of bounds fails too).
#include "gguf-writer.h"
#include "gguf.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

namespace {

using hearth::gguf_error;
using hearth::gguf_file;
using hearth::gguf_value_type;
using hearth::gguf_writer;
using hearth::tensor_type;
using bytes = std::vector<uint8_t>;

constexpr uint32_t t_u8 = 0, t_u32 = 4, t_i32 = 5, t_bool = 7, t_string = 8, t_array = 9, t_u64 = 10;

// Builds GGUF bytes by hand, so tests can say exactly what is wrong with a file.
struct raw {
    bytes b;
    raw& u32(uint32_t v) { return put(&v, 4); }
    raw& u64(uint64_t v) { return put(&v, 8); }
    raw& u8(uint8_t v) { return put(&v, 1); }
    raw& str(std::string_view s) {
        u64(s.size());
        return put(s.data(), s.size());
    }
    raw& put(const void* p, size_t n) {
        const auto* c = static_cast<const uint8_t*>(p);
        b.insert(b.end(), c, c + n);
        return *this;
    }
    raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        put("GGUF", 4).u32(version).u64(n_tensors);
        return u64(n_kv);
    }
    raw& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(t_u32).u32(v); }
    raw& kv_str(std::string_view key, std::string_view v) { return str(key).u32(t_string).str(v); }
    raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(ne.size()));
        for (uint64_t d : ne) u64(d);
        return u32(type).u64(offset);
    }
    raw& pad(size_t align = 32) {
        while (b.size() % align) b.push_back(0);
        return *this;
    }
    raw& zeros(size_t n) {
        b.resize(b.size() + n, 0);
        return *this;
    }
};

// The error message of parsing `b`, or "" when it parses. Copies into an exact-size buffer so
// ASan sees any read past the end.
std::string parse_error(const bytes& b, size_t n = SIZE_MAX) {
    const bytes exact(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(std::min(n, b.size())));
    try {
        gguf_file::from_memory(exact.data(), exact.size(), "test.gguf");
        return "";
    } catch (const gguf_error& e) {
        return e.what();
    }
}

#define EXPECT_GGUF_ERROR(b, needle)                                                     \
    do {                                                                                 \
        const std::string msg_ = parse_error(b);                                         \
        EXPECT_FALSE(msg_.empty()) << "parsed, but should fail with: " << (needle);      \
        EXPECT_NE(msg_.find(needle), std::string::npos) << "message: " << msg_;          \
        EXPECT_EQ(msg_.rfind("test.gguf: ", 0), 0u) << "message lacks the file: " << msg_; \
    } while (0)

// A small valid file with one F32 tensor of 8 elements: header, 2 keys, 1 tensor.
raw minimal(uint32_t version = 3) {
    raw r;
    r.header(1, 2, version).kv_str("general.architecture", "llama").kv_u32("llama.block_count", 2);
    r.tensor("w", {8}, 0, 0).pad().zeros(32);
    return r;
}

// Every value type, arrays and a few tensors of different types.
gguf_writer sample_writer(uint32_t alignment = 32) {
    gguf_writer w;
    if (alignment != 32) w.set_alignment(alignment);
    w.set_string("general.architecture", "llama");
    w.set_u8("t.u8", 200);
    w.set_i8("t.i8", -100);
    w.set_u16("t.u16", 60000);
    w.set_i16("t.i16", -30000);
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", -2000000000);
    w.set_u64("t.u64", 18000000000000000000ull);
    w.set_i64("t.i64", -9000000000000000000ll);
    w.set_f32("t.f32", 1.5f);
    w.set_f64("t.f64", -2.25);
    w.set_bool("t.bool", true);
    w.set_string("t.empty", "");
    w.set_string_array("t.strings", {"a", "", "<0x0A>", "\xe2\x96\x81the"});
    w.set_f32_array("t.f32s", {0.5f, -1.0f, 3.25f});
    w.set_i32_array("t.i32s", {1, -2, 2147483647});
    const std::vector<uint16_t> u16s{1, 2, 65535};
    w.set_array("t.u16s", gguf_value_type::uint16, u16s.data(), u16s.size());
    const std::vector<double> f64s{1.0, 0.125};
    w.set_array("t.f64s", gguf_value_type::float64, f64s.data(), f64s.size());
    w.set_f32_array("t.empty_f32s", {});

    std::vector<float> f32(3 * 5);
    for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.5f;
    w.add_tensor("a.f32", tensor_type::f32, {5, 3}, f32.data(), f32.size() * 4);
    bytes q4(2 * 18);  // Q4_0: 64 elements = 2 blocks of 18 bytes
    for (size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<uint8_t>(i * 7);
    w.add_tensor("b.q4_0", tensor_type::q4_0, {64}, q4.data(), q4.size());
    bytes f16(2 * 3);
    for (size_t i = 0; i < f16.size(); ++i) f16[i] = static_cast<uint8_t>(250 - i);
    w.add_tensor("c.f16", tensor_type::f16, {3}, f16.data(), f16.size());
    bytes qk(144 * 2);  // Q4_K: 512 elements = 2 blocks of 144 bytes
    for (size_t i = 0; i < qk.size(); ++i) qk[i] = static_cast<uint8_t>(i);
    w.add_tensor("d.q4_k", tensor_type::q4_k, {256, 1, 2, 1}, qk.data(), qk.size());
    return w;
}

// ---------------------------------------------------------------------------------------------
// Shared models

std::set<std::string> types_of(const gguf_file& f) {
    std::set<std::string> out;
    for (const auto& t : f.tensors()) out.insert(std::string(hearth::tensor_type_get_info(t.type).name));
    return out;
}

TEST(GgufModels, EverySharedModelOpens) {
    const std::string dir = hearth::test::shared_dir() + "/models";
    if (!hearth::test::require_file(dir)) GTEST_SKIP() << dir;
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".gguf") continue;
        SCOPED_TRACE(entry.path().string());
        std::unique_ptr<gguf_file> f;
        ASSERT_NO_THROW(f = gguf_file::open(entry.path().string()));
        ++n;
        EXPECT_TRUE(f->version() == 2 || f->version() == 3);
        EXPECT_EQ(f->file_size(), std::filesystem::file_size(entry.path()));
        EXPECT_TRUE(f->get_string("general.architecture").has_value());
        EXPECT_EQ(f->data_offset() % f->alignment(), 0u);
        for (const auto& t : f->tensors()) {
            EXPECT_GT(t.n_elements(), 0) << t.name;
            EXPECT_EQ(t.offset % f->alignment(), 0u) << t.name;
            EXPECT_LE(f->data_offset() + t.offset + t.nbytes, f->file_size()) << t.name;
            EXPECT_EQ(t.nbytes, hearth::tensor_type_row_bytes(t.type, t.ne[0]) * static_cast<uint64_t>(t.n_rows()));
            EXPECT_EQ(f->find_tensor(t.name), &t);
        }
    }
    EXPECT_GE(n, 20);
}

TEST(GgufModels, Stories260kFacts) {
    const std::string p = hearth::test::model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(p)) GTEST_SKIP() << p;
    auto f = gguf_file::open(p);
    EXPECT_EQ(f->get_string("general.architecture"), "llama");
    EXPECT_EQ(f->get_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(f->get_uint("llama.block_count"), 5u);
    EXPECT_EQ(f->get_uint("llama.attention.head_count"), 8u);
    EXPECT_EQ(f->get_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(f->get_uint("llama.feed_forward_length"), 172u);
    EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 512u);
    EXPECT_EQ(f->get_f32_array("tokenizer.ggml.scores")->size(), 512u);
    EXPECT_EQ(f->get_i32_array("tokenizer.ggml.token_type")->size(), 512u);
    EXPECT_FALSE(f->get_string("no.such.key").has_value());
    EXPECT_EQ(types_of(*f), std::set<std::string>{"F32"});
    const auto* emb = f->find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->ne, (std::vector<int64_t>{64, 512}));
    EXPECT_EQ(emb->nbytes, 64u * 512u * 4u);
    EXPECT_EQ(emb->n_rows(), 512);
    int blocks = 0;
    for (const auto& t : f->tensors()) {
        if (t.name.ends_with(".attn_q.weight")) ++blocks;
    }
    EXPECT_EQ(blocks, 5);
    // The data really is there: the f32 file's embedding holds finite, non-zero floats.
    float first = 0;
    std::memcpy(&first, emb->data, 4);
    EXPECT_TRUE(std::isfinite(first));
}

TEST(GgufModels, QuantisedTypes) {
    const std::string km = hearth::test::model_path("synth-llama-spm-q4_k_m.gguf");
    if (!hearth::test::require_file(km)) GTEST_SKIP() << km;
    auto f = gguf_file::open(km);
    const auto types = types_of(*f);
    EXPECT_TRUE(types.count("Q4_K"));
    EXPECT_TRUE(types.count("Q6_K"));
    EXPECT_EQ(hearth::tensor_type_get_info(f->find_tensor("output.weight")->type).name, "Q6_K");

    const std::string q8 = hearth::test::model_path("stories260K-q8_0.gguf");
    if (!hearth::test::require_file(q8)) GTEST_SKIP() << q8;
    auto g = gguf_file::open(q8);
    EXPECT_EQ(g->find_tensor("output.weight")->type, tensor_type::q8_0);
    EXPECT_EQ(g->find_tensor("blk.0.ffn_down.weight")->type, tensor_type::f16);

    const std::string tied = hearth::test::model_path("synth-llama-bpe-f32.gguf");
    if (!hearth::test::require_file(tied)) GTEST_SKIP() << tied;
    EXPECT_EQ(gguf_file::open(tied)->find_tensor("output.weight"), nullptr);
}

TEST(GgufModels, VocabOnlyFiles) {
    const std::pair<const char*, size_t> files[] = {
        {"ggml-vocab-llama-spm.gguf", 32000}, {"ggml-vocab-gpt-2.gguf", 50257}, {"ggml-vocab-phi-3.gguf", 0}};
    for (const auto& [name, n_tokens] : files) {
        const std::string p = hearth::test::model_path(name);
        if (!hearth::test::require_file(p)) GTEST_SKIP() << p;
        SCOPED_TRACE(name);
        auto f = gguf_file::open(p);
        EXPECT_TRUE(f->tensors().empty());
        const auto tokens = f->get_string_array("tokenizer.ggml.tokens");
        ASSERT_TRUE(tokens.has_value());
        if (n_tokens) {
            EXPECT_EQ(tokens->size(), n_tokens);
        }
        EXPECT_GT(tokens->size(), 1000u);
        EXPECT_TRUE(f->get_string("tokenizer.ggml.model").has_value());
    }
}

TEST(GgufModels, TruncatedRealModelAtSectionBoundaries) {
    const std::string p = hearth::test::model_path("stories260K-q8_0.gguf");
    if (!hearth::test::require_file(p)) GTEST_SKIP() << p;
    const std::string s = hearth::test::read_file_bytes(p);
    const bytes full(s.begin(), s.end());
    auto f = gguf_file::from_memory(full.data(), full.size());
    auto at = [&](const void* q) { return static_cast<size_t>(static_cast<const uint8_t*>(q) - full.data()); };

    std::vector<size_t> cuts = {0, 3, 4, 7, 8, 16, 23, 24};
    const auto& kvs = f->metadata();
    ASSERT_GE(kvs.size(), 3u);
    for (size_t i : {size_t{0}, kvs.size() / 2, kvs.size() - 1}) {
        const size_t key = at(kvs[i].key.data());
        cuts.insert(cuts.end(), {key - 8, key - 1, key + 1, key + kvs[i].key.size(), key + kvs[i].key.size() + 4});
    }
    const auto& ts = f->tensors();
    ASSERT_FALSE(ts.empty());
    const size_t first_info = at(ts.front().name.data()) - 8;
    const size_t last_name = at(ts.back().name.data());
    const size_t end_of_infos = last_name + ts.back().name.size() + 4 + 8 * ts.back().ne.size() + 4 + 8;
    cuts.insert(cuts.end(), {first_info - 1, first_info, first_info + 9, last_name, end_of_infos - 1, end_of_infos});
    uint64_t data_end = 0;
    for (const auto& t : ts) data_end = std::max(data_end, f->data_offset() + t.offset + t.nbytes);
    cuts.insert(cuts.end(), {static_cast<size_t>(f->data_offset()) - 1, static_cast<size_t>(f->data_offset()),
                             static_cast<size_t>(f->data_offset()) + 1, static_cast<size_t>(data_end) - 1});
    for (size_t n : cuts) {
        ASSERT_LT(n, data_end);
        const std::string msg = parse_error(full, n);
        EXPECT_FALSE(msg.empty()) << "truncated to " << n << " bytes but parsed";
    }
    EXPECT_EQ(parse_error(full, static_cast<size_t>(data_end)), "");
    // A message names where the truncation hit.
    EXPECT_NE(parse_error(full, first_info + 9).find("tensor 0"), std::string::npos) << parse_error(full, first_info + 9);
    EXPECT_NE(parse_error(full, data_end - 1).find("runs past the end"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Writer

TEST(GgufWriter, RoundTripsEveryValueType) {
    for (uint32_t alignment : {32u, 64u, 1u}) {
        SCOPED_TRACE(alignment);
        const bytes b = sample_writer(alignment).to_bytes();
        auto f = gguf_file::from_memory(b.data(), b.size());
        EXPECT_EQ(f->version(), 3u);
        EXPECT_EQ(f->alignment(), alignment);
        EXPECT_EQ(f->data_offset() % alignment, 0u);
        EXPECT_EQ(b.size() % alignment, 0u);
        EXPECT_EQ(f->get_string("general.architecture"), "llama");
        EXPECT_EQ(f->get_uint("t.u8"), 200u);
        EXPECT_EQ(f->get_int("t.i8"), -100);
        EXPECT_EQ(f->get_uint("t.u16"), 60000u);
        EXPECT_EQ(f->get_int("t.i16"), -30000);
        EXPECT_EQ(f->get_uint("t.u32"), 4000000000u);
        EXPECT_EQ(f->get_int("t.i32"), -2000000000);
        EXPECT_EQ(f->get_uint("t.u64"), 18000000000000000000ull);
        EXPECT_EQ(f->get_int("t.i64"), -9000000000000000000ll);
        EXPECT_EQ(f->get_float("t.f32"), 1.5);
        EXPECT_EQ(f->get_float("t.f64"), -2.25);
        EXPECT_EQ(f->get_float("t.u8"), 200.0);
        EXPECT_EQ(f->get_bool("t.bool"), true);
        EXPECT_EQ(f->get_string("t.empty"), "");
        EXPECT_EQ(*f->get_string_array("t.strings"),
                  (std::vector<std::string_view>{"a", "", "<0x0A>", "\xe2\x96\x81the"}));
        EXPECT_EQ(*f->get_f32_array("t.f32s"), (std::vector<float>{0.5f, -1.0f, 3.25f}));
        EXPECT_EQ(*f->get_i32_array("t.i32s"), (std::vector<int32_t>{1, -2, 2147483647}));
        EXPECT_EQ(*f->get_i32_array("t.u16s"), (std::vector<int32_t>{1, 2, 65535}));
        EXPECT_EQ(*f->get_f32_array("t.f64s"), (std::vector<float>{1.0f, 0.125f}));
        EXPECT_TRUE(f->get_f32_array("t.empty_f32s")->empty());
        EXPECT_EQ(f->find("t.u16s")->array_type, gguf_value_type::uint16);
        EXPECT_EQ(f->metadata().size(), 19u + (alignment != 32));

        ASSERT_EQ(f->tensors().size(), 4u);
        const auto* a = f->find_tensor("a.f32");
        ASSERT_NE(a, nullptr);
        EXPECT_EQ(a->ne, (std::vector<int64_t>{5, 3}));
        EXPECT_EQ(a->n_elements(), 15);
        EXPECT_EQ(a->n_rows(), 3);
        float v = 0;
        std::memcpy(&v, a->data + 4 * 7, 4);
        EXPECT_EQ(v, 3.5f);
        const auto* q = f->find_tensor("d.q4_k");
        ASSERT_NE(q, nullptr);
        EXPECT_EQ(q->type, tensor_type::q4_k);
        EXPECT_EQ(q->ne, (std::vector<int64_t>{256, 1, 2, 1}));
        EXPECT_EQ(q->nbytes, 288u);
        EXPECT_EQ(q->data[287], static_cast<uint8_t>(287));
        for (const auto& t : f->tensors()) {
            EXPECT_EQ(static_cast<size_t>(t.data - b.data()) % alignment, 0u) << t.name;
        }
        EXPECT_EQ(f->find_tensor("b.q4_0")->data[35], static_cast<uint8_t>(35 * 7));
        EXPECT_EQ(f->find_tensor("c.f16")->data[5], 245);
    }
}

TEST(GgufWriter, WritesAFileThatOpens) {
    const auto path = std::filesystem::temp_directory_path() / ("hearth-test-gguf-" + std::to_string(getpid()) + ".gguf");
    const gguf_writer w = sample_writer();
    w.write(path.string());
    const bytes b = w.to_bytes();
    EXPECT_EQ(std::filesystem::file_size(path), b.size());
    {
        auto f = gguf_file::open(path.string());
        EXPECT_EQ(f->path(), path.string());
        EXPECT_EQ(f->tensors().size(), 4u);
        const auto* t = f->find_tensor("d.q4_k");
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(t->data[100], 100);
        EXPECT_EQ(t->data[287], 287 - 256);
    }
    const std::string on_disk = hearth::test::read_file_bytes(path.string());
    EXPECT_EQ(bytes(on_disk.begin(), on_disk.end()), b);
    std::filesystem::remove(path);
    EXPECT_THROW(w.write("/nonexistent-dir/x.gguf"), gguf_error);
}

TEST(GgufWriter, RefusesMisuse) {
    gguf_writer w;
    w.set_u32("k", 1);
    EXPECT_THROW(w.set_string("k", "again"), gguf_error);
    EXPECT_THROW(w.set_u32("", 1), gguf_error);
    EXPECT_THROW(w.set_alignment(0), gguf_error);
    EXPECT_THROW(w.set_alignment(48), gguf_error);
    EXPECT_THROW(w.set_array("s", gguf_value_type::string, nullptr, 0), gguf_error);
    const std::vector<float> f(8, 0.0f);
    w.add_tensor("t", tensor_type::f32, {8}, f.data(), 32);
    EXPECT_THROW(w.add_tensor("t", tensor_type::f32, {8}, f.data(), 32), gguf_error);
    EXPECT_THROW(w.add_tensor("", tensor_type::f32, {8}, f.data(), 32), gguf_error);
    EXPECT_THROW(w.add_tensor(std::string(64, 'n'), tensor_type::f32, {8}, f.data(), 32), gguf_error);
    w.add_tensor(std::string(63, 'n'), tensor_type::f32, {8}, f.data(), 32);
    EXPECT_THROW(w.add_tensor("u", tensor_type::f32, {8}, f.data(), 31), gguf_error);
    EXPECT_THROW(w.add_tensor("u", tensor_type::f32, {}, f.data(), 0), gguf_error);
    EXPECT_THROW(w.add_tensor("u", tensor_type::f32, {1, 1, 1, 1, 8}, f.data(), 32), gguf_error);
    EXPECT_THROW(w.add_tensor("u", tensor_type::f32, {-8}, f.data(), 32), gguf_error);
    EXPECT_THROW(w.add_tensor("u", tensor_type::q4_0, {16}, f.data(), 9), gguf_error);
    EXPECT_THROW(w.add_tensor("u", static_cast<tensor_type>(4), {8}, f.data(), 8), gguf_error);
    EXPECT_THROW(w.set_alignment(64), gguf_error);  // after a tensor: offsets are already laid out
    EXPECT_EQ(w.alignment(), 32u);
}

// ---------------------------------------------------------------------------------------------
// Hostile files

TEST(GgufHostile, BuilderMakesValidFiles) {
    EXPECT_EQ(parse_error(minimal().b), "");
    const bytes b = minimal(2).b;
    auto f = gguf_file::from_memory(b.data(), b.size());
    EXPECT_EQ(f->version(), 2u);
    EXPECT_EQ(f->get_uint("llama.block_count"), 2u);
    EXPECT_EQ(f->find_tensor("w")->nbytes, 32u);
    EXPECT_EQ(f->data_offset() % 32, 0u);
}

TEST(GgufHostile, MagicAndVersion) {
    raw r = minimal();
    r.b[3] = 'X';
    EXPECT_GGUF_ERROR(r.b, "not a GGUF file");
    EXPECT_GGUF_ERROR(minimal(1).b, "version 1 is not supported");
    EXPECT_GGUF_ERROR(minimal(99).b, "unsupported GGUF version 99");
    EXPECT_GGUF_ERROR(minimal(0x03000000).b, "big-endian");
    EXPECT_GGUF_ERROR(bytes{}, "truncated");
    EXPECT_GGUF_ERROR((bytes{'G', 'G'}), "need 4 bytes at offset 0, file has 2");
    EXPECT_THROW(gguf_file::from_memory(nullptr, 0), gguf_error);
}

TEST(GgufHostile, OpenErrors) {
    EXPECT_THROW(gguf_file::open("/nonexistent/x.gguf"), gguf_error);
    EXPECT_THROW(gguf_file::open("/"), gguf_error);
    const auto path = std::filesystem::temp_directory_path() / ("hearth-test-empty-" + std::to_string(getpid()));
    std::ofstream(path).close();
    try {
        gguf_file::open(path.string());
        ADD_FAILURE() << "empty file opened";
    } catch (const gguf_error& e) {
        EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
    }
    std::filesystem::remove(path);
}

TEST(GgufHostile, TruncationAtEveryByte) {
    const bytes b = sample_writer().to_bytes();
    auto f = gguf_file::from_memory(b.data(), b.size());
    uint64_t data_end = 0;
    for (const auto& t : f->tensors()) data_end = std::max(data_end, f->data_offset() + t.offset + t.nbytes);
    for (size_t n = 0; n < b.size(); ++n) {
        const std::string msg = parse_error(b, n);
        if (n < data_end) {
            EXPECT_FALSE(msg.empty()) << "truncated to " << n << " bytes but parsed";
        } else {
            EXPECT_EQ(msg, "") << n;  // only the last tensor's padding is missing
        }
    }
}

TEST(GgufHostile, HugeCounts) {
    for (uint64_t huge : {uint64_t{1} << 62, uint64_t{1} << 63, ~uint64_t{0}, uint64_t{1000}}) {
        SCOPED_TRACE(huge);
        EXPECT_GGUF_ERROR(raw().header(huge, 0).b, "tensor count");
        EXPECT_GGUF_ERROR(raw().header(0, huge).b, "metadata key count");
        EXPECT_GGUF_ERROR(raw().header(0, 1).u64(huge).put("k", 1).u32(t_u8).u8(0).b, "string of");
        EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_string).u64(huge).zeros(16).b, "string of");
        EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_array).u32(t_u32).u64(huge).zeros(16).b, "array of");
        EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_array).u32(t_string).u64(huge).zeros(16).b, "strings");
        EXPECT_GGUF_ERROR(raw().header(1, 0).u64(huge).zeros(64).b, "string of");
    }
    // The message says where: key index and name.
    EXPECT_GGUF_ERROR(raw().header(0, 2).kv_u32("a", 1).str("tokenizer.ggml.tokens").u32(t_array).u32(t_string).u64(2).str("x").u64(50).b,
                      "key 1 ('tokenizer.ggml.tokens') element 1");
}

TEST(GgufHostile, BadValues) {
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(13).u32(0).zeros(8).b, "unknown value type 13");
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_array).u32(13).u64(1).zeros(8).b, "unknown array element type 13");
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_array).u32(t_array).u64(1).u32(t_u8).u64(1).u8(1).b,
                      "nested arrays");
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_bool).u8(2).zeros(8).b, "boolean");
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("k").u32(t_array).u32(t_bool).u64(2).u8(1).u8(7).zeros(8).b, "boolean");
    EXPECT_GGUF_ERROR(raw().header(0, 1).str("").u32(t_u8).u8(1).zeros(8).b, "empty name");
    EXPECT_GGUF_ERROR(raw().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate key 'k'");
}

TEST(GgufHostile, Alignment) {
    auto with_alignment = [](auto add_key) {
        raw r;
        r.header(1, 1);
        add_key(r);
        r.tensor("w", {8}, 0, 0).pad(64).zeros(64);
        return r.b;
    };
    EXPECT_GGUF_ERROR(with_alignment([](raw& r) { r.kv_u32("general.alignment", 0); }), "power of two");
    EXPECT_GGUF_ERROR(with_alignment([](raw& r) { r.kv_u32("general.alignment", 3); }), "power of two");
    EXPECT_GGUF_ERROR(with_alignment([](raw& r) { r.str("general.alignment").u32(t_u64).u64(32); }), "expected uint32");
    EXPECT_GGUF_ERROR(with_alignment([](raw& r) { r.kv_str("general.alignment", "32"); }), "expected uint32");
    const bytes ok = with_alignment([](raw& r) { r.kv_u32("general.alignment", 64); });
    auto f = gguf_file::from_memory(ok.data(), ok.size());
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->data_offset() % 64, 0u);

    raw mis;
    mis.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {8}, 0, 32).pad(64).zeros(128);
    EXPECT_GGUF_ERROR(mis.b, "tensor 'w' offset 32 is not a multiple of the alignment 64");
    EXPECT_GGUF_ERROR(raw().header(1, 0).tensor("w", {8}, 0, 4).pad().zeros(64).b, "not a multiple of the alignment 32");
}

TEST(GgufHostile, TensorInfos) {
    auto one = [](std::vector<uint64_t> ne, uint32_t type, uint64_t offset = 0, std::string_view name = "blk.0.w") {
        return raw().header(1, 0).tensor(name, std::move(ne), type, offset).pad().zeros(256).b;
    };
    EXPECT_EQ(parse_error(one({8, 8}, 0)), "");
    EXPECT_GGUF_ERROR(one({}, 0), "has 0 dimensions");
    EXPECT_GGUF_ERROR(one({1, 1, 1, 1, 8}, 0), "has 5 dimensions");
    EXPECT_GGUF_ERROR(one({8, ~uint64_t{0}}, 0), "dimension 1 is negative");
    EXPECT_GGUF_ERROR(one({uint64_t{1} << 40, uint64_t{1} << 40}, 0), "overflows");
    EXPECT_GGUF_ERROR(one({uint64_t{1} << 62}, 0), "overflows");  // elements fit, bytes do not
    EXPECT_GGUF_ERROR(one({8}, 99), "unknown type id 99");
    EXPECT_GGUF_ERROR(one({8}, 4), "unknown type id 4");
    EXPECT_GGUF_ERROR(one({33}, 2), "row length 33 is not a multiple of the Q4_0 block size 32");
    EXPECT_GGUF_ERROR(one({8}, 0, 1024), "tensor 'blk.0.w' data [offset 1024, 32 bytes] runs past the end");
    EXPECT_GGUF_ERROR(one({8}, 0, ~uint64_t{0} - 31), "runs past the end");  // offset + nbytes would wrap
    EXPECT_GGUF_ERROR(one({1024}, 0), "runs past the end");
    EXPECT_GGUF_ERROR(one({8}, 0, 0, ""), "empty name");
    EXPECT_GGUF_ERROR(raw().header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().zeros(64).b,
                      "duplicate tensor name 'w'");
    // Tensor infos end, but the data section's padding is cut off.
    raw cut = raw().header(1, 0).tensor("w", {8}, 0, 0);
    EXPECT_GGUF_ERROR(cut.b, "data section starts at offset");
    // Zero-sized tensors are fine, even at the very end.
    const bytes empty = raw().header(1, 0).tensor("w", {0, 4}, 0, 0).pad().b;
    auto f = gguf_file::from_memory(empty.data(), empty.size());
    EXPECT_EQ(f->tensors()[0].nbytes, 0u);
    EXPECT_EQ(f->tensors()[0].n_rows(), 0);
}

TEST(GgufHostile, GetterTypeErrors) {
    const bytes b = sample_writer().to_bytes();
    auto f = gguf_file::from_memory(b.data(), b.size(), "s.gguf");
    EXPECT_THROW(f->get_string("t.u32"), gguf_error);
    EXPECT_THROW(f->get_uint("t.i8"), gguf_error);  // negative
    EXPECT_THROW(f->get_uint("t.f32"), gguf_error);
    EXPECT_THROW(f->get_int("t.u64"), gguf_error);  // too large
    EXPECT_THROW(f->get_float("t.strings"), gguf_error);
    EXPECT_THROW(f->get_bool("t.u8"), gguf_error);
    EXPECT_THROW(f->get_string_array("t.f32s"), gguf_error);
    EXPECT_THROW(f->get_f32_array("t.i32s"), gguf_error);
    EXPECT_THROW(f->get_i32_array("t.f32s"), gguf_error);
    EXPECT_FALSE(f->get_i32_array("absent").has_value());
    EXPECT_FALSE(f->get_bool("absent").has_value());
    try {
        f->get_uint("general.architecture");
        ADD_FAILURE();
    } catch (const gguf_error& e) {
        EXPECT_STREQ(e.what(), "s.gguf: key 'general.architecture' has type string, expected an integer");
    }
    gguf_writer w;
    const std::vector<uint64_t> big{1, uint64_t{1} << 40};
    w.set_array("big", gguf_value_type::uint64, big.data(), big.size());
    const bytes wb = w.to_bytes();
    auto g = gguf_file::from_memory(wb.data(), wb.size());
    EXPECT_THROW(g->get_i32_array("big"), gguf_error);
}

// Random byte flips: every parse either succeeds or throws gguf_error; no crash, no other exception.
TEST(GgufHostile, RandomCorruption) {
    const bytes good = sample_writer().to_bytes();
    std::mt19937 rng(20240611);
    int parsed = 0, failed = 0;
    for (int iter = 0; iter < 2000; ++iter) {
        bytes b = good;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) {
            // Half the flips land in the header/metadata, where most of the structure is.
            const size_t limit = (rng() & 1) ? std::min<size_t>(b.size(), 600) : b.size();
            b[rng() % limit] ^= static_cast<uint8_t>(1 + rng() % 255);
        }
        try {
            auto f = gguf_file::from_memory(b.data(), b.size());
            ++parsed;
            unsigned sum = 0;
            for (const auto& t : f->tensors()) {
                if (t.nbytes) sum += t.data[0] + t.data[t.nbytes - 1];
            }
            for (const auto& kv : f->metadata()) {
                sum += static_cast<unsigned>(kv.key.size());
                try {
                    (void)f->get_string(kv.key);
                } catch (const gguf_error&) {
                }
                try {
                    (void)f->get_i32_array(kv.key);
                } catch (const gguf_error&) {
                }
                try {
                    (void)f->get_f32_array(kv.key);
                } catch (const gguf_error&) {
                }
            }
            EXPECT_GE(sum, 0u);
        } catch (const gguf_error&) {
            ++failed;
        }
    }
    // Both outcomes must occur, or the corruption is not exercising the parser.
    EXPECT_GT(parsed, 100);
    EXPECT_GT(failed, 100);
}

}  // namespace
