// A GGUF model ready to run: hyperparameters, weights (pointers into the mmap, no copies) and
// tokenizer, for the `llama` and `qwen2` architectures.
#pragma once

#include "gguf.h"
#include "tensor-type.h"
#include "vocab.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth {

class model_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class model_arch { llama, qwen2 };

struct model_hparams {
    model_arch arch = model_arch::llama;
    std::string arch_name;    // general.architecture
    std::string name;         // general.name, may be empty
    int32_t n_vocab = 0;
    int32_t n_ctx_train = 0;
    int32_t n_embd = 0;
    int32_t n_layer = 0;
    int32_t n_head = 0;
    int32_t n_head_kv = 0;
    int32_t head_dim = 0;     // n_embd / n_head unless the file says otherwise
    int32_t n_ff = 0;
    float rms_eps = 1e-5f;
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // linear RoPE scaling: positions are multiplied by this
    bool rope_neox = false;        // rotate (i, i + d/2) pairs (qwen2) instead of (2i, 2i+1)
    bool tied_output = false;      // no output.weight: logits use token_embd
};

struct model_params {
    // Dequantise every weight to F32 at load and keep activations and the KV cache in F32: slow,
    // for checks against float64 references.
    bool exact = false;
};

// A 2-D weight (n_out rows of n_in) as stored in the file, or dequantised and owned (exact mode).
struct weight {
    tensor_type type = tensor_type::f32;
    const uint8_t* data = nullptr;  // (n_out, row_bytes)
    int64_t n_in = 0;
    int64_t n_out = 0;
    size_t row_bytes = 0;
    std::string name;

    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
};

struct layer_weights {
    std::vector<float> attn_norm;           // (n_embd)
    weight wq, wk, wv, wo;                  // q: (n_head*head_dim, n_embd) ...
    std::vector<float> bq, bk, bv;          // optional biases (qwen2), empty when absent
    std::vector<float> ffn_norm;            // (n_embd)
    weight w_gate, w_up, w_down;            // gate/up: (n_ff, n_embd), down: (n_embd, n_ff)
};

class model {
public:
    // Opens, validates and maps a model. Throws model_error (or gguf_error / vocab_error) with a
    // message naming the file and what is wrong: missing tensor, wrong shape, unsupported type.
    static std::unique_ptr<model> load(const std::string& path, const model_params& params = {});

    const model_hparams& hparams() const { return hparams_; }
    const model_params& params() const { return params_; }
    const hearth::vocab& vocab() const { return *vocab_; }
    const gguf_file& file() const { return *file_; }
    std::optional<std::string> chat_template_source() const;

    // Bytes of weights a decode step reads (every matmul weight once, plus one embedding row).
    uint64_t weight_bytes() const;
    // A line per tensor type: "Q8_0: 170 tensors, 144.0 MiB".
    std::vector<std::pair<std::string, uint64_t>> tensor_type_bytes() const;

    const weight& token_embd() const { return token_embd_; }
    const weight& output() const { return tied_output_ref(); }
    const std::vector<float>& output_norm() const { return output_norm_; }
    const std::vector<layer_weights>& layers() const { return layers_; }

private:
    model() = default;
    void load_weights();
    weight take_weight(const std::string& name, int64_t n_in, int64_t n_out);
    std::vector<float> take_vector(const std::string& name, int64_t n, bool required);
    const weight& tied_output_ref() const { return hparams_.tied_output ? token_embd_ : output_; }

    std::unique_ptr<gguf_file> file_;
    std::unique_ptr<hearth::vocab> vocab_;
    model_params params_;
    model_hparams hparams_;
    weight token_embd_;
    weight output_;
    std::vector<float> output_norm_;
    std::vector<layer_weights> layers_;
    std::vector<std::vector<uint8_t>> owned_;  // dequantised copies (exact mode)
};

// Memory a model would take, from its file's header and metadata alone: for deciding whether it
// fits before loading it.
struct model_footprint {
    uint64_t file_bytes = 0;     // size of the GGUF file
    uint64_t weight_bytes = 0;   // memory the weights take once touched (tensor data mapped from the file; exact mode: the F32 copies)
    uint64_t kv_bytes = 0;       // K+V cache for n_seq sequences of n_ctx positions (same sizing as context)
    uint64_t scratch_bytes = 0;  // activations/logits scratch for a batch of n_batch tokens (an estimate)
    int32_t n_ctx = 0;           // positions per sequence the estimate assumed (after the capping below)
    uint64_t total() const { return weight_bytes + kv_bytes + scratch_bytes; }
};

// Reads only the GGUF header and metadata (the file is mapped, no weight is touched; the vocabulary
// and tensor shapes are not checked, load() still can refuse a file this accepts).
// n_ctx <= 0: the model's training context capped at 4096 (context's default); else
// max(16, min(n_ctx, training context)), exactly what generator does with generator_params::n_ctx.
// A worker passes generator_params' values: n_ctx = its ctx_size, n_seq = slots, n_batch =
// batch_size; then kv_bytes equals the generator's context's kv_bytes() and n_ctx its n_ctx().
// weight_bytes: every tensor's bytes in the file (mapped, resident once read) plus the F32 copies
// of 1-D tensors (norms, biases); exact mode counts 2-D non-F32 tensors as their F32 copies.
// scratch_bytes: activations of n_batch tokens, attention rows for every core, and logits of
// n_seq tokens (the generator asks for at most one per sequence and step).
// Throws model_error / gguf_error with the same messages load() gives for a bad or truncated file.
model_footprint model_footprint_estimate(const std::string& path, int32_t n_ctx, int32_t n_seq, int32_t n_batch,
                                         const model_params& params = {});

}  // namespace hearth
