// Running a model: the KV cache of each sequence and the forward pass over a batch of tokens.
// All tokens of a batch go through each matmul together (prompt processing is matrix-matrix);
// tokens of different sequences can share a batch (continuous batching).
#pragma once

#include "model.h"
#include "page-memory.h"
#include "thread-tuner.h"

#include <cstdint>
#include <vector>

namespace hearth {

struct context_params {
    int32_t n_ctx = 0;       // positions per sequence; 0: the model's training context, at most 4096
    int32_t n_seq_max = 1;   // sequences that can hold a cache at once
    int32_t n_batch = 512;   // largest batch evaluated in one pass (bigger ones are split)
    int32_t n_threads = 0;   // most threads; 0: OpenMP's default
    // Let decode steps fall back to one thread while that is faster (another process holding a
    // core); see thread-tuner.h. Prompts always use n_threads.
    bool adapt_threads = true;
};

// Tokens to evaluate: token i sits at position pos[i] of sequence seq[i]; logits are kept for
// the entries with want_logits[i] != 0.
struct batch {
    std::vector<token_id> token;
    std::vector<int32_t> pos;
    std::vector<int32_t> seq;
    std::vector<uint8_t> want_logits;

    void add(token_id t, int32_t p, int32_t s, bool logits) {
        token.push_back(t);
        pos.push_back(p);
        seq.push_back(s);
        want_logits.push_back(logits ? 1 : 0);
    }
    void clear() { token.clear(); pos.clear(); seq.clear(); want_logits.clear(); }
    size_t size() const { return token.size(); }
};

class context {
public:
    context(const model& m, const context_params& params = {});
    ~context();
    context(const context&) = delete;
    context& operator=(const context&) = delete;

    // Evaluates a batch. Each sequence's tokens must continue it: the first at pos == seq_length,
    // the next at +1 ... Throws std::invalid_argument for a bad token, position or sequence.
    void decode(const batch& b);
    // Logits (n_vocab) of batch entry i of the last decode; it must have asked for logits.
    const float* logits(size_t i) const;

    void seq_clear(int32_t seq);          // forget a sequence's cache (its pages stay resident, for reuse)
    // Forgets a sequence and returns its cache pages (K and V, every layer) to the OS; the next
    // decode of that sequence faults them back in, zeroed. Throws std::invalid_argument like seq_clear.
    void seq_release(int32_t seq);
    int32_t seq_length(int32_t seq) const;
    // Bytes one position of one sequence takes in the cache: K and V over all layers.
    size_t kv_bytes_per_token() const { return kv_token_bytes_; }
    // K+V bytes reserved for every sequence at full context (address space; only written pages
    // are resident).
    size_t kv_bytes() const { return k_cache_.size() + v_cache_.size(); }
    // What kv_bytes() will be for a context of this model with n_ctx positions (after the
    // n_ctx <= 0 default) and n_seq_max sequences, without building one.
    static size_t kv_bytes_for(const model_hparams& hp, const model_params& mp, int32_t n_ctx, int32_t n_seq_max);
    int32_t n_ctx() const { return n_ctx_; }
    int32_t n_seq_max() const { return params_.n_seq_max; }
    int32_t n_threads() const;
    const hearth::model& model() const { return model_; }

private:
    void decode_chunk(const batch& b, size_t begin, size_t end);
    void ensure_scratch(int64_t n_tokens);

    const hearth::model& model_;
    context_params params_;
    thread_tuner tuner_;                 // thread count of small batches
    int32_t n_ctx_ = 0;
    bool kv_f32_ = false;                // exact mode keeps the cache in F32, else F16
    std::vector<int32_t> seq_len_;       // (n_seq_max)
    // KV cache, sequence-major so one sequence's cache is one range that can be released: per
    // sequence (padded to whole pages), per layer, (n_ctx, n_head_kv * head_dim), F16 bits or F32.
    page_memory k_cache_;
    page_memory v_cache_;
    size_t kv_elt_bytes_ = 2;
    size_t kv_seq_stride_ = 0;     // bytes of one sequence in k_cache_ (and in v_cache_), page multiple
    size_t kv_token_bytes_ = 0;    // K+V bytes of one position over all layers

    // Scratch reused between decodes (grown, never shrunk), in floats unless noted.
    int64_t scratch_tokens_ = 0;
    std::vector<float> x_;        // (n_tokens, n_embd) residual stream
    std::vector<float> xb_;       // (n_tokens, n_embd) normed input of a matmul
    std::vector<float> q_;        // (n_tokens, n_head * head_dim)
    std::vector<float> k_;        // (n_tokens, n_head_kv * head_dim)
    std::vector<float> v_;        // (n_tokens, n_head_kv * head_dim)
    std::vector<float> att_;      // (n_tokens, n_head * head_dim)
    std::vector<float> scores_;   // (threads, n_ctx) softmax rows
    std::vector<float> rope_cs_;  // (n_tokens, head_dim/2 cos-sin pairs)
    std::vector<float> gate_;     // (n_tokens, n_ff)
    std::vector<float> up_;       // (n_tokens, n_ff)
    std::vector<uint8_t> xq_;     // activations converted for the weights' dot type
    std::vector<float> logits_;   // (n_logits, n_vocab)
    std::vector<int64_t> logits_row_;  // batch index -> row in logits_, -1 when none
    std::vector<int64_t> out_idx_;     // batch indices whose logits are computed, in order
};

}  // namespace hearth
