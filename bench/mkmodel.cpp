#include "mkmodel.h"

#include "gguf-writer.h"
#include "quants.h"
#include "vocab.h"

#include <omp.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

namespace hearth::bench {

namespace {

constexpr float weight_std = 0.02f;  // typical of trained small llamas: keeps activations O(1)

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in (0, 1): never 0, so log() in Box-Muller is finite.
double uniform01(uint64_t& state) { return (static_cast<double>(splitmix64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

// Fills a row with N(0, std^2) from a stream keyed by (seed, tensor, row): the same bytes whatever
// the thread that draws it.
void fill_normal(float* dst, int64_t n, uint64_t seed, uint64_t tensor_index, uint64_t row) {
    uint64_t state = seed ^ (tensor_index * 0xD1B54A32D192ED03ull) ^ (row * 0x8CB92BA72F3D8DD7ull);
    splitmix64(state);
    for (int64_t i = 0; i < n; i += 2) {
        const double r = std::sqrt(-2.0 * std::log(uniform01(state)));
        const double a = 6.283185307179586 * uniform01(state);
        dst[i] = static_cast<float>(r * std::cos(a)) * weight_std;
        if (i + 1 < n) dst[i + 1] = static_cast<float>(r * std::sin(a)) * weight_std;
    }
}

// llama.cpp's rule for which layers of a Q4_K_M/Q5_K_M file get more bits: the first and last
// eighth of the stack and every third layer between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int layer_of(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    return std::stoi(name.substr(4));
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the others are
// shifted to U+0100 upwards in byte order.
std::string byte_char(int b) {
    static const auto table = [] {
        std::vector<int> cp(256);
        int next = 256;
        for (int i = 0; i < 256; ++i) {
            const bool printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
            cp[static_cast<size_t>(i)] = printable ? i : next++;
        }
        return cp;
    }();
    const int c = table[static_cast<size_t>(b)];
    std::string out;
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
    return out;
}

struct bpe_vocab {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
};

// A self-consistent byte-level BPE vocabulary: 3 control tokens, the 256 byte characters, then
// tokens that each join two earlier ones, with the merge line that makes them. Merged tokens are
// word pieces (letters, optionally after the space mark) so real text tokenises into them.
bpe_vocab make_vocab(int32_t n_vocab, uint64_t seed) {
    bpe_vocab v;
    for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
        v.tokens.emplace_back(s);
        v.types.push_back(static_cast<int32_t>(token_kind::control));
    }
    std::vector<size_t> left_pool;   // "Ġ" and word pieces: may start a merge
    std::vector<size_t> right_pool;  // letter-only pieces: may end one
    for (int b = 0; b < 256; ++b) {
        const size_t id = v.tokens.size();
        v.tokens.push_back(byte_char(b));
        v.types.push_back(static_cast<int32_t>(token_kind::normal));
        const bool letter = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
        if (letter) {
            left_pool.push_back(id);
            right_pool.push_back(id);
        }
        if (b == ' ') left_pool.push_back(id);
    }
    if (n_vocab < static_cast<int32_t>(v.tokens.size())) throw std::invalid_argument("vocabulary too small for the byte tokens");
    std::unordered_set<std::string> seen(v.tokens.begin(), v.tokens.end());
    uint64_t state = seed ^ 0x5851F42D4C957F2Dull;
    // Squaring the uniform favours early (short) pieces, so token lengths grow slowly as in real vocabularies.
    auto pick = [&](const std::vector<size_t>& pool) {
        const double u = uniform01(state);
        return pool[static_cast<size_t>(u * u * static_cast<double>(pool.size()))];
    };
    while (static_cast<int32_t>(v.tokens.size()) < n_vocab) {
        const size_t a = pick(left_pool);
        const size_t b = pick(right_pool);
        std::string joined = v.tokens[a] + v.tokens[b];
        if (!seen.insert(joined).second) continue;
        v.merges.push_back(v.tokens[a] + " " + v.tokens[b]);
        const size_t id = v.tokens.size();
        const bool starts_with_space = joined.rfind(byte_char(' '), 0) == 0;
        v.tokens.push_back(std::move(joined));
        v.types.push_back(static_cast<int32_t>(token_kind::normal));
        left_pool.push_back(id);
        if (!starts_with_space) right_pool.push_back(id);
    }
    return v;
}

uint32_t gguf_file_type(model_ftype f) {
    // llama_ftype numbers (general.file_type).
    switch (f) {
        case model_ftype::f32: return 0;
        case model_ftype::f16: return 1;
        case model_ftype::q4_0: return 2;
        case model_ftype::q8_0: return 7;
        case model_ftype::q4_k_m: return 15;
    }
    return 0;
}

const char* chatml_template =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace

model_shape shape_by_name(const std::string& name) {
    model_shape s;
    if (name == "smollm2-135m") {
        // HuggingFaceTB/SmolLM2-135M: config.json (rope_theta 100000, 8192 positions, tied embeddings).
        s = {"SmolLM2-135M-shaped (random weights)", 49152, 8192, 576, 30, 9, 3, 1536, 100000.0f, 1e-5f};
    } else if (name == "tiny") {
        // Small enough for unit tests; 256 wide, so every K-quant fits every tensor.
        s = {"tiny (random weights)", 4096, 512, 256, 2, 4, 2, 512, 10000.0f, 1e-5f};
    } else {
        throw std::invalid_argument("unknown shape '" + name + "' (smollm2-135m, tiny)");
    }
    return s;
}

model_ftype ftype_by_name(const std::string& name) {
    for (model_ftype f : {model_ftype::f32, model_ftype::f16, model_ftype::q8_0, model_ftype::q4_0, model_ftype::q4_k_m}) {
        if (name == ftype_name(f)) return f;
    }
    throw std::invalid_argument("unknown type '" + name + "' (f32, f16, q8_0, q4_0, q4_k_m)");
}

const char* ftype_name(model_ftype f) {
    switch (f) {
        case model_ftype::f32: return "f32";
        case model_ftype::f16: return "f16";
        case model_ftype::q8_0: return "q8_0";
        case model_ftype::q4_0: return "q4_0";
        case model_ftype::q4_k_m: return "q4_k_m";
    }
    return "?";
}

tensor_type tensor_type_for(model_ftype ftype, const model_shape& shape, const std::string& name, int64_t row_len) {
    if (contains(name, "norm")) return tensor_type::f32;
    // No output.weight: token_embd is also the output matrix, which llama-quantize treats as such.
    const bool is_output = name == "token_embd.weight" || name == "output.weight";
    tensor_type t = tensor_type::f32;
    switch (ftype) {
        case model_ftype::f32: return tensor_type::f32;
        case model_ftype::f16: return tensor_type::f16;
        case model_ftype::q8_0: return tensor_type::q8_0;
        case model_ftype::q4_0: t = is_output ? tensor_type::q6_k : tensor_type::q4_0; break;
        case model_ftype::q4_k_m: {
            t = tensor_type::q4_k;
            const int il = layer_of(name);
            if (is_output) t = tensor_type::q6_k;
            else if ((contains(name, "attn_v.") || contains(name, "ffn_down.")) && use_more_bits(il, shape.n_layer)) t = tensor_type::q6_k;
            break;
        }
    }
    // llama-quantize's fallback when a row is not a whole number of 256-element super-blocks.
    if (row_len % qk_k != 0) {
        if (t == tensor_type::q4_k) t = tensor_type::q5_0;
        else if (t == tensor_type::q6_k) t = tensor_type::q8_0;
    }
    return t;
}

mkmodel_report write_model(const std::string& path, const model_shape& s, model_ftype ftype, uint64_t seed) {
    if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0) throw std::invalid_argument("inconsistent head counts");
    const int64_t head_dim = s.n_embd / s.n_head;
    const int64_t kv_dim = head_dim * s.n_head_kv;

    gguf_writer w;
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", s.name);
    w.set_u32("general.file_type", gguf_file_type(ftype));
    w.set_u32("general.quantization_version", 2);
    w.set_u32("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));
    w.set_u32("llama.context_length", static_cast<uint32_t>(s.n_ctx_train));
    w.set_u32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
    w.set_u32("llama.block_count", static_cast<uint32_t>(s.n_layer));
    w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
    w.set_u32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
    w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
    w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
    w.set_f32("llama.rope.freq_base", s.rope_freq_base);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", s.rms_eps);

    const bpe_vocab v = make_vocab(s.n_vocab, seed);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "smollm");
    w.set_string_array("tokenizer.ggml.tokens", v.tokens);
    w.set_i32_array("tokenizer.ggml.token_type", v.types);
    w.set_string_array("tokenizer.ggml.merges", v.merges);
    // As SmolLM2-Instruct's conversion: <|im_start|> begins, <|im_end|> ends, no BOS added.
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_u32("tokenizer.ggml.padding_token_id", 2);
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    w.set_string("tokenizer.chat_template", chatml_template);

    struct spec {
        std::string name;
        int64_t n_in;   // ne[0]
        int64_t n_out;  // ne[1]; 0 for a vector
    };
    std::vector<spec> specs;
    specs.push_back({"token_embd.weight", s.n_embd, s.n_vocab});
    for (int32_t il = 0; il < s.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        specs.push_back({p + "attn_norm.weight", s.n_embd, 0});
        specs.push_back({p + "attn_q.weight", s.n_embd, s.n_embd});
        specs.push_back({p + "attn_k.weight", s.n_embd, kv_dim});
        specs.push_back({p + "attn_v.weight", s.n_embd, kv_dim});
        specs.push_back({p + "attn_output.weight", s.n_embd, s.n_embd});
        specs.push_back({p + "ffn_norm.weight", s.n_embd, 0});
        specs.push_back({p + "ffn_gate.weight", s.n_embd, s.n_ff});
        specs.push_back({p + "ffn_up.weight", s.n_embd, s.n_ff});
        specs.push_back({p + "ffn_down.weight", s.n_ff, s.n_embd});
    }
    specs.push_back({"output_norm.weight", s.n_embd, 0});

    std::map<std::string, int> counts;
    std::vector<uint8_t> data;
    for (size_t ti = 0; ti < specs.size(); ++ti) {
        const spec& sp = specs[ti];
        if (sp.n_out == 0) {
            // RMS norm gains of 1: the residual stream's scale is set by the random matrices alone.
            const std::vector<float> ones(static_cast<size_t>(sp.n_in), 1.0f);
            w.add_tensor(sp.name, tensor_type::f32, {sp.n_in}, ones.data(), ones.size() * sizeof(float));
            ++counts["F32"];
            continue;
        }
        const tensor_type t = tensor_type_for(ftype, s, sp.name, sp.n_in);
        const size_t row_bytes = tensor_type_row_bytes(t, sp.n_in);
        data.resize(row_bytes * static_cast<size_t>(sp.n_out));
        const int64_t n_rows = sp.n_out;
#pragma omp parallel
        {
            std::vector<float> row(static_cast<size_t>(sp.n_in));
#pragma omp for schedule(static)
            for (int64_t r = 0; r < n_rows; ++r) {
                fill_normal(row.data(), sp.n_in, seed, ti, static_cast<uint64_t>(r));
                quantize_row(t, row.data(), data.data() + static_cast<size_t>(r) * row_bytes, sp.n_in);
            }
        }
        w.add_tensor(sp.name, t, {sp.n_in, sp.n_out}, data.data(), data.size());
        ++counts[std::string(tensor_type_get_info(t).name)];
    }
    w.write(path);

    mkmodel_report rep;
    rep.file_bytes = std::filesystem::file_size(path);
    for (auto& [name, n] : counts) rep.type_counts.emplace_back(name, n);
    return rep;
}

}  // namespace hearth::bench
