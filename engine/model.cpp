#include "model.h"

#include "context.h"
#include "matmul.h"
#include "quants.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace hearth {

namespace {

std::string arch_key(const std::string& arch, const char* suffix) { return arch + "." + suffix; }

// The hyperparameters in a file's metadata, checked (n_vocab comes from the tensors: read_n_vocab).
model_hparams read_hparams(const gguf_file& f) {
    model_hparams hp;
    const std::string& path = f.path();
    auto arch = f.get_string("general.architecture");
    if (!arch) throw model_error(path + ": general.architecture is missing (is this a model file?)");
    hp.arch_name = std::string(*arch);
    if (hp.arch_name == "llama") {
        hp.arch = model_arch::llama;
    } else if (hp.arch_name == "qwen2") {
        hp.arch = model_arch::qwen2;
        hp.rope_neox = true;
    } else {
        throw model_error(path + ": unsupported architecture '" + hp.arch_name + "' (supported: llama, qwen2)");
    }
    if (auto name = f.get_string("general.name")) hp.name = std::string(*name);

    const std::string& a = hp.arch_name;
    auto need_u = [&](const char* suffix) -> int32_t {
        auto v = f.get_uint(arch_key(a, suffix));
        if (!v) throw model_error(path + ": " + arch_key(a, suffix) + " is missing");
        if (*v == 0 || *v > (1u << 24)) throw model_error(path + ": " + arch_key(a, suffix) + " = " + std::to_string(*v) + " is out of range");
        return static_cast<int32_t>(*v);
    };
    hp.n_embd = need_u("embedding_length");
    hp.n_layer = need_u("block_count");
    hp.n_ff = need_u("feed_forward_length");
    hp.n_head = need_u("attention.head_count");
    hp.n_ctx_train = need_u("context_length");
    hp.n_head_kv = f.find(arch_key(a, "attention.head_count_kv")) ? need_u("attention.head_count_kv") : hp.n_head;
    hp.head_dim = hp.n_embd / hp.n_head;
    if (f.find(arch_key(a, "attention.key_length"))) hp.head_dim = need_u("attention.key_length");
    if (f.find(arch_key(a, "attention.value_length")) && need_u("attention.value_length") != hp.head_dim) {
        throw model_error(path + ": attention.value_length differs from key_length (not supported)");
    }
    if (hp.n_head % hp.n_head_kv != 0) {
        throw model_error(path + ": head_count " + std::to_string(hp.n_head) + " is not a multiple of head_count_kv " +
                          std::to_string(hp.n_head_kv));
    }
    if (hp.head_dim <= 0 || hp.head_dim % 2 != 0) {
        throw model_error(path + ": head dimension " + std::to_string(hp.head_dim) + " must be positive and even (RoPE)");
    }
    if (auto rot = f.get_uint(arch_key(a, "rope.dimension_count")); rot && static_cast<int64_t>(*rot) != hp.head_dim) {
        throw model_error(path + ": partial RoPE (rope.dimension_count " + std::to_string(*rot) + " of " +
                          std::to_string(hp.head_dim) + ") is not supported");
    }
    if (auto eps = f.get_float(arch_key(a, "attention.layer_norm_rms_epsilon"))) hp.rms_eps = static_cast<float>(*eps);
    if (auto base = f.get_float(arch_key(a, "rope.freq_base"))) hp.rope_freq_base = static_cast<float>(*base);
    if (auto type = f.get_string(arch_key(a, "rope.scaling.type")); type && *type != "none") {
        if (*type != "linear") throw model_error(path + ": RoPE scaling '" + std::string(*type) + "' is not supported");
        if (auto factor = f.get_float(arch_key(a, "rope.scaling.factor")); factor && *factor > 0) {
            hp.rope_freq_scale = static_cast<float>(1.0 / *factor);
        }
    }
    if (f.find_tensor("rope_freqs.weight")) throw model_error(path + ": rope_freqs (Llama 3.1 RoPE scaling) is not supported");
    return hp;
}

// The vocabulary size: token_embd's rows.
int32_t read_n_vocab(const gguf_file& f) {
    const gguf_tensor* embd = f.find_tensor("token_embd.weight");
    if (!embd) throw model_error(f.path() + ": tensor 'token_embd.weight' is missing");
    if (embd->ne.size() != 2) throw model_error(f.path() + ": token_embd.weight must be 2-D");
    return static_cast<int32_t>(embd->ne[1]);
}



}  // namespace

std::unique_ptr<model> model::load(const std::string& path, const model_params& params) {
    std::unique_ptr<model> m(new model());
    m->params_ = params;
    m->file_ = gguf_file::open(path);
    m->hparams_ = read_hparams(*m->file_);
    m->vocab_ = vocab::from_gguf(*m->file_);
    m->load_weights();
    if (m->vocab_->n_tokens() != m->hparams_.n_vocab) {
        throw model_error(path + ": the vocabulary has " + std::to_string(m->vocab_->n_tokens()) +
                          " tokens but token_embd.weight has " + std::to_string(m->hparams_.n_vocab) + " rows");
    }
    return m;
}

weight model::take_weight(const std::string& name, int64_t n_in, int64_t n_out) {
    const gguf_tensor* t = file_->find_tensor(name);
    const std::string& path = file_->path();
    if (!t) throw model_error(path + ": tensor '" + name + "' is missing");
    if (t->ne.size() != 2 || t->ne[0] != n_in || t->ne[1] != n_out) {
        std::string shape;
        for (size_t i = 0; i < t->ne.size(); ++i) {
            if (i) shape += 'x';
            shape += std::to_string(t->ne[i]);
        }
        throw model_error(path + ": tensor '" + name + "' has shape " + shape + ", expected " + std::to_string(n_in) + "x" +
                          std::to_string(n_out));
    }
    const tensor_type_info& info = tensor_type_get_info(t->type);
    if (!info.computable) {
        throw model_error(path + ": tensor '" + name + "' has type " + std::string(info.name) +
                          ", which this engine does not support (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)");
    }
    weight w;
    w.type = t->type;
    w.data = t->data;
    w.n_in = n_in;
    w.n_out = n_out;
    w.row_bytes = tensor_type_row_bytes(t->type, n_in);
    w.name = name;
    if (params_.exact && w.type != tensor_type::f32) {
        std::vector<uint8_t>& buf = owned_.emplace_back(static_cast<size_t>(n_in * n_out) * sizeof(float));
        float* dst = reinterpret_cast<float*>(buf.data());
        for (int64_t r = 0; r < n_out; ++r) dequantize_row(w.type, w.row(r), dst + r * n_in, n_in);
        w.type = tensor_type::f32;
        w.data = buf.data();
        w.row_bytes = static_cast<size_t>(n_in) * sizeof(float);
    }
    return w;
}

std::vector<float> model::take_vector(const std::string& name, int64_t n, bool required) {
    const gguf_tensor* t = file_->find_tensor(name);
    if (!t) {
        if (required) throw model_error(file_->path() + ": tensor '" + name + "' is missing");
        return {};
    }
    if (t->ne.size() != 1 || t->ne[0] != n) {
        throw model_error(file_->path() + ": tensor '" + name + "' should be a vector of " + std::to_string(n));
    }
    if (!tensor_type_get_info(t->type).computable) {
        throw model_error(file_->path() + ": tensor '" + name + "' has unsupported type " +
                          std::string(tensor_type_get_info(t->type).name));
    }
    std::vector<float> v(static_cast<size_t>(n));
    dequantize_row(t->type, t->data, v.data(), n);
    return v;
}

void model::load_weights() {
    const model_hparams& hp = hparams_;
    hparams_.n_vocab = read_n_vocab(*file_);
    token_embd_ = take_weight("token_embd.weight", hp.n_embd, hp.n_vocab);
    output_norm_ = take_vector("output_norm.weight", hp.n_embd, true);
    hparams_.tied_output = file_->find_tensor("output.weight") == nullptr;
    if (!hparams_.tied_output) output_ = take_weight("output.weight", hp.n_embd, hp.n_vocab);

    const int64_t q_dim = static_cast<int64_t>(hp.n_head) * hp.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(hp.n_head_kv) * hp.head_dim;
    layers_.resize(static_cast<size_t>(hp.n_layer));
    for (int32_t i = 0; i < hp.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        layer_weights& l = layers_[static_cast<size_t>(i)];
        l.attn_norm = take_vector(p + "attn_norm.weight", hp.n_embd, true);
        l.wq = take_weight(p + "attn_q.weight", hp.n_embd, q_dim);
        l.wk = take_weight(p + "attn_k.weight", hp.n_embd, kv_dim);
        l.wv = take_weight(p + "attn_v.weight", hp.n_embd, kv_dim);
        l.wo = take_weight(p + "attn_output.weight", q_dim, hp.n_embd);
        const bool need_bias = hp.arch == model_arch::qwen2;
        l.bq = take_vector(p + "attn_q.bias", q_dim, need_bias);
        l.bk = take_vector(p + "attn_k.bias", kv_dim, need_bias);
        l.bv = take_vector(p + "attn_v.bias", kv_dim, need_bias);
        l.ffn_norm = take_vector(p + "ffn_norm.weight", hp.n_embd, true);
        l.w_gate = take_weight(p + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        l.w_up = take_weight(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
        l.w_down = take_weight(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
    }
}

std::optional<std::string> model::chat_template_source() const {
    if (auto s = file_->get_string("tokenizer.chat_template")) return std::string(*s);
    return std::nullopt;
}

uint64_t model::weight_bytes() const {
    auto bytes = [](const weight& w) { return static_cast<uint64_t>(w.row_bytes) * static_cast<uint64_t>(w.n_out); };
    uint64_t total = bytes(output()) + token_embd_.row_bytes;
    for (const layer_weights& l : layers_) {
        total += bytes(l.wq) + bytes(l.wk) + bytes(l.wv) + bytes(l.wo) + bytes(l.w_gate) + bytes(l.w_up) + bytes(l.w_down);
    }
    return total;
}

std::vector<std::pair<std::string, uint64_t>> model::tensor_type_bytes() const {
    std::map<std::string, uint64_t> by_type;
    for (const gguf_tensor& t : file_->tensors()) by_type[std::string(tensor_type_get_info(t.type).name)] += t.nbytes;
    return {by_type.begin(), by_type.end()};
}

model_footprint model_footprint_estimate(const std::string& path, int32_t n_ctx, int32_t n_seq, int32_t n_batch, const model_params& params) {
    const std::unique_ptr<gguf_file> f = gguf_file::open(path);
    model_hparams hp = read_hparams(*f);
    hp.n_vocab = read_n_vocab(*f);
    model_footprint fp;
    fp.file_bytes = f->file_size();
    // Positions: context's default for n_ctx <= 0, generator's capping otherwise.
    fp.n_ctx = n_ctx <= 0 ? std::min(hp.n_ctx_train, 4096) : std::max(std::min(n_ctx, hp.n_ctx_train), 16);
    n_seq = std::max(n_seq, 1);
    n_batch = std::max(n_batch, 1);

    for (const gguf_tensor& t : f->tensors()) {
        if (t.ne.size() == 1) {
            fp.weight_bytes += t.nbytes + static_cast<uint64_t>(t.n_elements()) * sizeof(float);  // mapped, and copied to F32
        } else if (params.exact && t.type != tensor_type::f32) {
            fp.weight_bytes += static_cast<uint64_t>(t.n_elements()) * sizeof(float);  // the mapped original is only read once
        } else {
            fp.weight_bytes += t.nbytes;
        }
    }
    fp.kv_bytes = context::kv_bytes_for(hp, params, fp.n_ctx, n_seq);

    // The scratch context::ensure_scratch and decode grow to (floats unless noted).
    const uint64_t q_dim = static_cast<uint64_t>(hp.n_head) * static_cast<uint64_t>(hp.head_dim);
    const uint64_t kv_dim = static_cast<uint64_t>(hp.n_head_kv) * static_cast<uint64_t>(hp.head_dim);
    const uint64_t embd = static_cast<uint64_t>(hp.n_embd);
    const uint64_t per_token = embd + std::max(embd, q_dim) + q_dim + 2 * kv_dim + q_dim + static_cast<uint64_t>(hp.head_dim) +
                               2 * static_cast<uint64_t>(hp.n_ff);
    const uint64_t nb = static_cast<uint64_t>(n_batch);
    fp.scratch_bytes = nb * per_token * sizeof(float);
    fp.scratch_bytes += matmul_scratch_bytes(n_batch, std::max<int64_t>({hp.n_embd, hp.n_ff, static_cast<int64_t>(q_dim)}));
    fp.scratch_bytes += static_cast<uint64_t>(omp_get_max_threads()) * static_cast<uint64_t>(fp.n_ctx) * sizeof(float);
    fp.scratch_bytes += std::min<uint64_t>(nb, static_cast<uint64_t>(n_seq)) * static_cast<uint64_t>(hp.n_vocab) * sizeof(float);
    return fp;
}

}  // namespace hearth
