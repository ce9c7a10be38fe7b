#include "context.h"

#include "matmul.h"
#include "ops.h"
#include "quants.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace hearth {

namespace {
// Batches up to this many tokens are decode steps, whose thread count the tuner chooses.
constexpr int64_t tuned_batch_max = 16;

size_t kv_elt_bytes_for(const model_params& mp) { return mp.exact ? sizeof(float) : sizeof(uint16_t); }

// Bytes of one sequence's K (or V) cache over all layers, before page padding.
size_t kv_seq_bytes(const model_hparams& hp, const model_params& mp, int32_t n_ctx) {
    const size_t kv_dim = static_cast<size_t>(hp.n_head_kv) * static_cast<size_t>(hp.head_dim);
    return static_cast<size_t>(hp.n_layer) * static_cast<size_t>(n_ctx) * kv_dim * kv_elt_bytes_for(mp);
}
}  // namespace

size_t context::kv_bytes_for(const model_hparams& hp, const model_params& mp, int32_t n_ctx, int32_t n_seq_max) {
    if (n_ctx <= 0) n_ctx = std::min(hp.n_ctx_train, 4096);
    return 2 * static_cast<size_t>(std::max(n_seq_max, 0)) * page_memory::round_up(kv_seq_bytes(hp, mp, n_ctx));
}

context::context(const hearth::model& m, const context_params& params)
    : model_(m), params_(params), tuner_(params.adapt_threads ? (params.n_threads > 0 ? params.n_threads : omp_get_max_threads()) : 1) {
    const model_hparams& hp = m.hparams();
    if (params_.n_seq_max < 1) throw std::invalid_argument("n_seq_max must be at least 1");
    if (params_.n_batch < 1) throw std::invalid_argument("n_batch must be at least 1");
    n_ctx_ = params_.n_ctx > 0 ? params_.n_ctx : std::min(hp.n_ctx_train, 4096);
    kv_f32_ = m.params().exact;
    kv_elt_bytes_ = kv_elt_bytes_for(m.params());
    seq_len_.assign(static_cast<size_t>(params_.n_seq_max), 0);
    // Each sequence starts on a page boundary, so seq_release can return all of it.
    kv_seq_stride_ = page_memory::round_up(kv_seq_bytes(hp, m.params(), n_ctx_));
    kv_token_bytes_ = 2 * static_cast<size_t>(hp.n_layer) * static_cast<size_t>(hp.n_head_kv) * static_cast<size_t>(hp.head_dim) * kv_elt_bytes_;
    const size_t bytes = static_cast<size_t>(params_.n_seq_max) * kv_seq_stride_;
    k_cache_ = page_memory(bytes);
    v_cache_ = page_memory(bytes);
}

context::~context() = default;

int32_t context::n_threads() const { return params_.n_threads > 0 ? params_.n_threads : omp_get_max_threads(); }

void context::seq_clear(int32_t seq) {
    if (seq < 0 || seq >= params_.n_seq_max) throw std::invalid_argument("sequence id out of range");
    seq_len_[static_cast<size_t>(seq)] = 0;
}

void context::seq_release(int32_t seq) {
    seq_clear(seq);
    const size_t off = static_cast<size_t>(seq) * kv_seq_stride_;
    k_cache_.release(off, kv_seq_stride_);
    v_cache_.release(off, kv_seq_stride_);
}

int32_t context::seq_length(int32_t seq) const {
    if (seq < 0 || seq >= params_.n_seq_max) throw std::invalid_argument("sequence id out of range");
    return seq_len_[static_cast<size_t>(seq)];
}

const float* context::logits(size_t i) const {
    if (i >= logits_row_.size() || logits_row_[i] < 0) throw std::invalid_argument("no logits were requested for batch entry " + std::to_string(i));
    return logits_.data() + static_cast<size_t>(logits_row_[i]) * static_cast<size_t>(model_.hparams().n_vocab);
}

void context::ensure_scratch(int64_t n) {
    if (n <= scratch_tokens_) return;
    const model_hparams& hp = model_.hparams();
    const size_t q_dim = static_cast<size_t>(hp.n_head) * hp.head_dim;
    const size_t kv_dim = static_cast<size_t>(hp.n_head_kv) * hp.head_dim;
    const size_t un = static_cast<size_t>(n);
    x_.resize(un * hp.n_embd);
    xb_.resize(un * std::max<size_t>(hp.n_embd, q_dim));
    q_.resize(un * q_dim);
    k_.resize(un * kv_dim);
    v_.resize(un * kv_dim);
    att_.resize(un * q_dim);
    rope_cs_.resize(un * static_cast<size_t>(hp.head_dim));
    gate_.resize(un * hp.n_ff);
    up_.resize(un * hp.n_ff);
    xq_.resize(matmul_scratch_bytes(n, std::max<int64_t>({hp.n_embd, hp.n_ff, static_cast<int64_t>(q_dim)})));
    scratch_tokens_ = n;
}

void context::decode(const batch& b) {
    const size_t n = b.size();
    if (b.pos.size() != n || b.seq.size() != n || b.want_logits.size() != n) throw std::invalid_argument("batch fields differ in length");
    const model_hparams& hp = model_.hparams();
    // Check the whole batch before touching the cache, so a bad batch changes nothing.
    std::vector<int32_t> len = seq_len_;
    size_t n_logits = 0;
    for (size_t i = 0; i < n; ++i) {
        if (b.token[i] < 0 || b.token[i] >= hp.n_vocab) {
            throw std::invalid_argument("token id " + std::to_string(b.token[i]) + " is outside the vocabulary (" + std::to_string(hp.n_vocab) + ")");
        }
        if (b.seq[i] < 0 || b.seq[i] >= params_.n_seq_max) throw std::invalid_argument("sequence id " + std::to_string(b.seq[i]) + " out of range");
        int32_t& l = len[static_cast<size_t>(b.seq[i])];
        if (b.pos[i] != l) {
            throw std::invalid_argument("position " + std::to_string(b.pos[i]) + " does not continue sequence " + std::to_string(b.seq[i]) +
                                        " (next position is " + std::to_string(l) + ")");
        }
        if (l >= n_ctx_) throw std::length_error("context is full (" + std::to_string(n_ctx_) + " positions)");
        ++l;
        n_logits += b.want_logits[i] ? 1 : 0;
    }
    logits_row_.assign(n, -1);
    logits_.resize(n_logits * static_cast<size_t>(hp.n_vocab));
    int64_t row = 0;
    for (size_t i = 0; i < n; ++i) {
        if (b.want_logits[i]) logits_row_[i] = row++;
    }
    for (size_t begin = 0; begin < n; begin += static_cast<size_t>(params_.n_batch)) {
        decode_chunk(b, begin, std::min(n, begin + static_cast<size_t>(params_.n_batch)));
    }
}

void context::decode_chunk(const batch& b, size_t begin, size_t end) {
    const hearth::model& m = model_;
    const model_hparams& hp = m.hparams();
    const int64_t nt = static_cast<int64_t>(end - begin);
    ensure_scratch(nt);
    const int64_t n_embd = hp.n_embd;
    const int64_t head_dim = hp.head_dim;
    const int64_t q_dim = static_cast<int64_t>(hp.n_head) * head_dim;
    const int64_t kv_dim = static_cast<int64_t>(hp.n_head_kv) * head_dim;
    const int64_t n_ff = hp.n_ff;
    const int32_t group = hp.n_head / hp.n_head_kv;
    // Sequence-major cache: a layer's part of a sequence lies at seq * seq_stride + il * layer_stride.
    const size_t layer_stride = static_cast<size_t>(n_ctx_) * kv_dim * kv_elt_bytes_;
    const size_t seq_stride = kv_seq_stride_;
    const float att_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

    out_idx_.clear();
    for (size_t i = begin; i < end; ++i) {
        if (b.want_logits[i]) out_idx_.push_back(static_cast<int64_t>(i));
    }
    const int64_t n_out = static_cast<int64_t>(out_idx_.size());
    const int64_t logits_base = n_out ? logits_row_[static_cast<size_t>(out_idx_[0])] : 0;
    if (static_cast<int64_t>(scores_.size()) < static_cast<int64_t>(n_threads()) * n_ctx_) scores_.resize(static_cast<size_t>(n_threads()) * n_ctx_);
    float* rope_cs = rope_cs_.data();

    const bool tuned = params_.adapt_threads && nt <= tuned_batch_max;
    const int32_t threads = tuned ? tuner_.pick() : n_threads();
    const double t_start = tuned ? omp_get_wtime() : 0.0;

    float* x = x_.data();
    float* xb = xb_.data();
    float* q = q_.data();
    float* k = k_.data();
    float* v = v_.data();
    float* att = att_.data();
    float* gate = gate_.data();
    float* up = up_.data();
    uint8_t* xq = xq_.data();

#pragma omp parallel num_threads(threads)
    {
        // Embeddings and RoPE angles, per token.
#pragma omp for schedule(static)
        for (int64_t t = 0; t < nt; ++t) {
            const size_t i = begin + static_cast<size_t>(t);
            const weight& e = m.token_embd();
            dequantize_row(e.type, e.row(b.token[i]), x + t * n_embd, n_embd);
            rope_angles(rope_cs + t * head_dim, static_cast<int32_t>(head_dim), b.pos[i], hp.rope_freq_base, hp.rope_freq_scale);
        }

        for (int32_t il = 0; il < hp.n_layer; ++il) {
            const layer_weights& l = m.layers()[static_cast<size_t>(il)];
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; ++t) rms_norm(x + t * n_embd, l.attn_norm.data(), xb + t * n_embd, n_embd, hp.rms_eps);

            const matmul_out qkv[3] = {{&l.wq, q, q_dim}, {&l.wk, k, kv_dim}, {&l.wv, v, kv_dim}};
            matmul_run(qkv, 3, xb, nt, n_embd, xq);

            // Biases, RoPE, and K/V into the cache of each token's sequence.
            uint8_t* k_layer = k_cache_.data() + static_cast<size_t>(il) * layer_stride;
            uint8_t* v_layer = v_cache_.data() + static_cast<size_t>(il) * layer_stride;
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; ++t) {
                const size_t i = begin + static_cast<size_t>(t);
                float* qt = q + t * q_dim;
                float* kt = k + t * kv_dim;
                float* vt = v + t * kv_dim;
                if (!l.bq.empty()) for (int64_t j = 0; j < q_dim; ++j) qt[j] += l.bq[static_cast<size_t>(j)];
                if (!l.bk.empty()) for (int64_t j = 0; j < kv_dim; ++j) kt[j] += l.bk[static_cast<size_t>(j)];
                if (!l.bv.empty()) for (int64_t j = 0; j < kv_dim; ++j) vt[j] += l.bv[static_cast<size_t>(j)];
                const float* cs = rope_cs + t * head_dim;
                rope_apply(qt, hp.n_head, static_cast<int32_t>(head_dim), cs, hp.rope_neox);
                rope_apply(kt, hp.n_head_kv, static_cast<int32_t>(head_dim), cs, hp.rope_neox);
                const size_t off = static_cast<size_t>(b.seq[i]) * seq_stride + static_cast<size_t>(b.pos[i]) * kv_dim * kv_elt_bytes_;
                if (kv_f32_) {
                    std::copy(kt, kt + kv_dim, reinterpret_cast<float*>(k_layer + off));
                    std::copy(vt, vt + kv_dim, reinterpret_cast<float*>(v_layer + off));
                } else {
                    f32_to_f16_row(kt, reinterpret_cast<uint16_t*>(k_layer + off), kv_dim);
                    f32_to_f16_row(vt, reinterpret_cast<uint16_t*>(v_layer + off), kv_dim);
                }
            }

            // Attention: each (token, head) over its sequence's positions 0..pos.
            float* scores_all = scores_.data();
#pragma omp for schedule(dynamic, 1) collapse(2)
            for (int64_t t = 0; t < nt; ++t) {
                for (int32_t h = 0; h < hp.n_head; ++h) {
                    const size_t i = begin + static_cast<size_t>(t);
                    const int32_t n_pos = b.pos[i] + 1;
                    const int32_t kvh = h / group;
                    const float* qh = q + t * q_dim + static_cast<int64_t>(h) * head_dim;
                    float* out = att + t * q_dim + static_cast<int64_t>(h) * head_dim;
                    float* scores = scores_all + static_cast<size_t>(omp_get_thread_num()) * n_ctx_;
                    const uint8_t* ks = k_layer + static_cast<size_t>(b.seq[i]) * seq_stride + static_cast<size_t>(kvh) * head_dim * kv_elt_bytes_;
                    const uint8_t* vs = v_layer + static_cast<size_t>(b.seq[i]) * seq_stride + static_cast<size_t>(kvh) * head_dim * kv_elt_bytes_;
                    const size_t pos_stride = static_cast<size_t>(kv_dim) * kv_elt_bytes_;
                    for (int32_t p = 0; p < n_pos; ++p) {
                        const uint8_t* kp = ks + static_cast<size_t>(p) * pos_stride;
                        const float s = kv_f32_ ? dot_f32(reinterpret_cast<const float*>(kp), qh, head_dim)
                                                : dot_f16_f32(reinterpret_cast<const uint16_t*>(kp), qh, head_dim);
                        scores[p] = s * att_scale;
                    }
                    softmax(scores, n_pos);
                    std::fill(out, out + head_dim, 0.0f);
                    for (int32_t p = 0; p < n_pos; ++p) {
                        const uint8_t* vp = vs + static_cast<size_t>(p) * pos_stride;
                        if (kv_f32_) axpy_f32(scores[p], reinterpret_cast<const float*>(vp), out, head_dim);
                        else axpy_f16(scores[p], reinterpret_cast<const uint16_t*>(vp), out, head_dim);
                    }
                }
            }

            // Output projection into xb, then the residual.
            const matmul_out wo[1] = {{&l.wo, xb, n_embd}};
            matmul_run(wo, 1, att, nt, q_dim, xq);
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; ++t) {
                float* xt = x + t * n_embd;
                const float* yt = xb + t * n_embd;
                for (int64_t j = 0; j < n_embd; ++j) xt[j] += yt[j];
                rms_norm(xt, l.ffn_norm.data(), xb + t * n_embd, n_embd, hp.rms_eps);
            }

            const matmul_out gu[2] = {{&l.w_gate, gate, n_ff}, {&l.w_up, up, n_ff}};
            matmul_run(gu, 2, xb, nt, n_embd, xq);
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; ++t) swiglu(gate + t * n_ff, up + t * n_ff, n_ff);

            const matmul_out down[1] = {{&l.w_down, xb, n_embd}};
            matmul_run(down, 1, gate, nt, n_ff, xq);
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; ++t) {
                float* xt = x + t * n_embd;
                const float* yt = xb + t * n_embd;
                for (int64_t j = 0; j < n_embd; ++j) xt[j] += yt[j];
            }
        }

        // Final norm of the tokens that want logits, gathered, then the output matmul.
        if (n_out > 0) {
#pragma omp for schedule(static)
            for (int64_t o = 0; o < n_out; ++o) {
                const int64_t t = out_idx_[static_cast<size_t>(o)] - static_cast<int64_t>(begin);
                rms_norm(x + t * n_embd, m.output_norm().data(), xb + o * n_embd, n_embd, hp.rms_eps);
            }
            const matmul_out lo[1] = {{&m.output(), logits_.data() + static_cast<size_t>(logits_base) * hp.n_vocab, hp.n_vocab}};
            matmul_run(lo, 1, xb, n_out, n_embd, xq);
        }
    }

    for (size_t i = begin; i < end; ++i) ++seq_len_[static_cast<size_t>(b.seq[i])];
    if (tuned) tuner_.record(threads, (omp_get_wtime() - t_start) / static_cast<double>(nt));
}

}  // namespace hearth
