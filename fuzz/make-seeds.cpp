// Writes the seed corpus for fuzz-gguf: small valid GGUF files covering every value type, the
// common tensor types, a non-default alignment, a vocabulary-only file and a v2 header.
// Regenerate with: build/fuzz/fuzz/fuzz-make-seeds fuzz/corpus/gguf
// The seeds are named *.bin, not *.gguf, because the repository ignores *.gguf (model files).
#include "gguf-writer.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using hearth::gguf_value_type;
using hearth::gguf_writer;
using hearth::tensor_type;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 31);
    return b;
}

void add(gguf_writer& w, const std::string& name, tensor_type type, std::vector<int64_t> ne) {
    const auto& info = hearth::tensor_type_get_info(type);
    size_t n = static_cast<size_t>(ne[0] / info.block_size) * info.block_bytes;
    for (size_t d = 1; d < ne.size(); ++d) n *= static_cast<size_t>(ne[d]);
    const auto data = pattern(n, static_cast<uint8_t>(name.size()));
    w.add_tensor(name, type, std::move(ne), data.data(), n);
}

void save(const std::string& dir, const std::string& name, const std::vector<uint8_t>& b) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out.flush()) {
        std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
    std::printf("%s: %zu bytes\n", name.c_str(), b.size());
}

std::vector<std::string> tokens(int n) {
    std::vector<std::string> t = {"<unk>", "<s>", "</s>", "<0x0A>", "\xe2\x96\x81the", "a"};
    for (int i = static_cast<int>(t.size()); i < n; ++i) t.push_back("t" + std::to_string(i));
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];

    {
        gguf_writer w;
        w.set_string("general.architecture", "llama");
        add(w, "w", tensor_type::f32, {4});
        const auto b = w.to_bytes();
        save(dir, "minimal.bin", b);
        auto v2 = b;
        v2[4] = 2;  // same layout, version 2
        save(dir, "minimal-v2.bin", v2);
    }
    {
        gguf_writer w;
        w.set_string("general.architecture", "llama");
        w.set_u32("llama.context_length", 128);
        w.set_u32("llama.embedding_length", 32);
        w.set_u32("llama.block_count", 1);
        w.set_u32("llama.attention.head_count", 2);
        w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.set_string("tokenizer.ggml.model", "llama");
        const auto t = tokens(16);
        w.set_string_array("tokenizer.ggml.tokens", t);
        w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(t.size(), -1.0f));
        w.set_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(t.size(), 1));
        w.set_bool("tokenizer.ggml.add_bos_token", true);
        add(w, "token_embd.weight", tensor_type::f16, {32, 16});
        add(w, "blk.0.attn_q.weight", tensor_type::q4_0, {32, 2});
        add(w, "blk.0.attn_k.weight", tensor_type::q8_0, {32, 1});
        add(w, "blk.0.ffn_up.weight", tensor_type::q4_k, {256, 1});
        add(w, "output.weight", tensor_type::q6_k, {256, 1, 1});
        add(w, "output_norm.weight", tensor_type::f32, {32});
        save(dir, "model.bin", w.to_bytes());
    }
    {
        gguf_writer w;
        w.set_alignment(64);
        w.set_u8("t.u8", 7);
        w.set_i8("t.i8", -7);
        w.set_u16("t.u16", 700);
        w.set_i16("t.i16", -700);
        w.set_i32("t.i32", -70000);
        w.set_u64("t.u64", 1ull << 40);
        w.set_i64("t.i64", -(1ll << 40));
        w.set_f64("t.f64", 0.5);
        w.set_string("t.str", "hello");
        const std::vector<uint64_t> u64s{1, 2, 3};
        w.set_array("t.u64s", gguf_value_type::uint64, u64s.data(), u64s.size());
        const std::vector<uint8_t> bools{1, 0, 1};
        w.set_array("t.bools", gguf_value_type::boolean, bools.data(), bools.size());
        add(w, "a", tensor_type::bf16, {8, 2});
        add(w, "b", tensor_type::q5_k, {256});
        add(w, "c", tensor_type::f32, {0, 3});
        add(w, "d", tensor_type::q5_0, {32, 1, 1, 2});
        save(dir, "types-align64.bin", w.to_bytes());
    }
    {
        gguf_writer w;
        w.set_string("general.architecture", "gpt2");
        w.set_string("tokenizer.ggml.model", "gpt2");
        w.set_string("tokenizer.ggml.pre", "gpt-2");
        w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "\xc4\xa0", "\xc4\xa0" "a"});
        w.set_string_array("tokenizer.ggml.merges", {"a b", "\xc4\xa0 a"});
        w.set_u32("tokenizer.ggml.bos_token_id", 0);
        w.set_string("tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
        save(dir, "vocab-only.bin", w.to_bytes());
    }
    {
        gguf_writer w;
        save(dir, "empty.bin", w.to_bytes());
    }
    return 0;
}
