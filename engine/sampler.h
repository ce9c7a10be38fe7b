// Picks the next token from logits: greedy, or temperature with top-k, top-p, min-p and a
// repetition penalty, from a seeded generator (same seed and inputs, same tokens).
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace hearth {

struct sampler_params {
    float temperature = 0.8f;     // <= 0: greedy (argmax, lowest id wins a tie)
    int32_t top_k = 40;           // <= 0: off
    float top_p = 0.95f;          // >= 1: off
    float min_p = 0.05f;          // <= 0: off; keeps tokens with p >= min_p * p_max
    float repeat_penalty = 1.0f;  // 1: off; > 1 discourages tokens among the last repeat_last_n
    int32_t repeat_last_n = 64;
    uint64_t seed = 0;
};

class sampler {
public:
    explicit sampler(const sampler_params& params);

    // Chooses a token from n_vocab logits. allowed, when given, has n_vocab entries and masks
    // the tokens that may not be chosen (grammar-constrained decoding); returns -1 if none may.
    int32_t sample(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed = nullptr);
    // Records a token of the context (prompt or generated) for the repetition penalty.
    void accept(int32_t token);
    void reset();

    const sampler_params& params() const { return params_; }

private:
    struct candidate {
        int32_t id;
        float logit;
        float p;
    };
    sampler_params params_;
    std::mt19937_64 rng_;
    std::deque<int32_t> recent_;         // last repeat_last_n accepted tokens
    std::vector<candidate> candidates_;  // scratch, reused between calls
    std::vector<int32_t> penalized_;     // scratch: distinct tokens of recent_, ascending
    size_t sorted_ = 0;                  // candidates_[0, sorted_) is in sampling order

    void select_top_k(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed, int32_t k);
    void collect_all(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed);
    void sort_prefix(size_t want);
    int32_t draw();
};

}  // namespace hearth
