// Token sampling. The pipeline and its order follow llama.cpp's common sampler: repetition
// penalty, grammar mask, top-k, temperature, softmax, top-p, min-p, draw. Everything that decides
// which tokens survive uses a total order (logit descending, then id ascending), so the result never
// depends on how the standard library happens to implement nth_element or partial_sort.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace hearth {

namespace {

// Strict weak order used for every selection: larger logit first, lower id first among equals.
struct by_logit_desc {
    template <typename C>
    bool operator()(const C& a, const C& b) const {
        if (a.logit != b.logit) {
            return a.logit > b.logit;
        }
        return a.id < b.id;
    }
};

// llama.cpp's repetition rule: shrink positive logits, grow negative ones, so the token always
// becomes less likely whatever the sign.
float penalize(float logit, float penalty) {
    return logit <= 0.0f ? logit * penalty : logit / penalty;
}

// 53 random bits scaled into [0, 1): identical on every standard library, unlike
// std::uniform_real_distribution whose algorithm is unspecified.
double uniform_01(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

sampler::sampler(const sampler_params& params) : params_(params), rng_(params.seed) {}

void sampler::reset() {
    recent_.clear();
    rng_.seed(params_.seed);
}

void sampler::accept(int32_t token) {
    // repeat_last_n <= 0 keeps no history (llama.cpp's -1 "whole context" is not supported: the
    // sampler does not know the context size).
    if (params_.repeat_last_n <= 0) {
        return;
    }
    recent_.push_back(token);
    while (recent_.size() > static_cast<size_t>(params_.repeat_last_n)) {
        recent_.pop_front();
    }
}

int32_t sampler::sample(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed) {
    if (logits == nullptr || n_vocab <= 0) {
        throw std::invalid_argument("sampler: no logits to sample from");
    }
    if (allowed != nullptr && allowed->size() != static_cast<size_t>(n_vocab)) {
        throw std::invalid_argument("sampler: allowed mask has " + std::to_string(allowed->size()) +
                                    " entries for a vocabulary of " + std::to_string(n_vocab));
    }
    const bool greedy = !(params_.temperature > 0.0f);

    // Distinct recent tokens inside the vocabulary, ascending: each is penalised once, however
    // often it occurred.
    penalized_.clear();
    if (params_.repeat_penalty != 1.0f && params_.repeat_penalty > 0.0f) {
        for (const int32_t t : recent_) {
            if (t >= 0 && t < n_vocab) {
                penalized_.push_back(t);
            }
        }
        std::sort(penalized_.begin(), penalized_.end());
        penalized_.erase(std::unique(penalized_.begin(), penalized_.end()), penalized_.end());
    }

    // Greedy is the best single candidate, so it shares the top-k scan with k = 1 (ties go to the
    // lowest id there too). Otherwise a top-k below the vocabulary size selects while scanning, and
    // without one every candidate is copied.
    const int32_t k = greedy ? 1 : params_.top_k;
    if (k > 0 && k < n_vocab) {
        select_top_k(logits, n_vocab, allowed, k);
    } else {
        collect_all(logits, n_vocab, allowed);
    }
    if (candidates_.empty()) {
        return -1;
    }
    if (greedy) {
        return candidates_[0].id;
    }
    return draw();
}

// Keeps the k best candidates (by_logit_desc) in candidates_, sorted. A heap whose front is the
// worst kept candidate: most logits fail the single comparison against it, so a 150k vocabulary
// costs one pass and a few hundred heap updates, not a sort.
void sampler::select_top_k(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed, int32_t k) {
    candidates_.clear();
    candidates_.reserve(static_cast<size_t>(k));
    const by_logit_desc better{};
    const auto full = static_cast<size_t>(k);
    float worst = 0.0f;  // logit of the heap's front once the heap is full
    auto offer = [&](int32_t i, float l) {
        if (candidates_.size() == full) {
            // Ids arrive in ascending order, so an equal logit loses to the kept one: strict >.
            if (!(l > worst)) {
                return;
            }
            std::pop_heap(candidates_.begin(), candidates_.end(), better);
            candidates_.back() = candidate{i, l, 0.0f};
        } else if (std::isnan(l)) {
            return;
        } else {
            candidates_.push_back(candidate{i, l, 0.0f});
        }
        std::push_heap(candidates_.begin(), candidates_.end(), better);
        worst = candidates_.front().logit;
    };
    // Raw logits between the penalised ids; the loop without a mask is the hot one.
    auto scan = [&](int32_t begin, int32_t end) {
        if (allowed == nullptr) {
            for (int32_t i = begin; i < end; ++i) {
                offer(i, logits[i]);
            }
        } else {
            for (int32_t i = begin; i < end; ++i) {
                if ((*allowed)[i]) {
                    offer(i, logits[i]);
                }
            }
        }
    };
    int32_t pos = 0;
    for (const int32_t t : penalized_) {
        scan(pos, t);
        if (allowed == nullptr || (*allowed)[t]) {
            offer(t, penalize(logits[t], params_.repeat_penalty));
        }
        pos = t + 1;
    }
    scan(pos, n_vocab);
    std::sort_heap(candidates_.begin(), candidates_.end(), better);
    sorted_ = candidates_.size();
}

// Every allowed, non-NaN candidate, penalised, in id order.
void sampler::collect_all(const float* logits, int32_t n_vocab, const std::vector<bool>* allowed) {
    candidates_.resize(static_cast<size_t>(n_vocab));
    size_t n = 0;
    size_t next_penalized = 0;
    for (int32_t i = 0; i < n_vocab; ++i) {
        float l = logits[i];
        if (next_penalized < penalized_.size() && penalized_[next_penalized] == i) {
            l = penalize(l, params_.repeat_penalty);
            ++next_penalized;
        }
        if ((allowed != nullptr && !(*allowed)[i]) || std::isnan(l)) {
            continue;
        }
        candidates_[n++] = candidate{i, l, 0.0f};
    }
    candidates_.resize(n);
    sorted_ = 0;
}

// Sorts candidates_ (by_logit_desc) on at least [0, want).
void sampler::sort_prefix(size_t want) {
    want = std::min(want, candidates_.size());
    if (want <= sorted_) {
        return;
    }
    if (want == candidates_.size()) {
        std::sort(candidates_.begin(), candidates_.end(), by_logit_desc{});
    } else {
        std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(want),
                          candidates_.end(), by_logit_desc{});
    }
    sorted_ = want;
}

// Temperature, softmax, top-p, min-p and the draw over the non-empty candidates_.
int32_t sampler::draw() {
    float max_logit = -std::numeric_limits<float>::infinity();
    for (const candidate& c : candidates_) {
        max_logit = std::max(max_logit, c.logit);
    }
    // One random number per sampled token, whatever the path, so sequences stay aligned.
    const double u = uniform_01(rng_);
    if (!(max_logit > -std::numeric_limits<float>::infinity())) {
        // Every survivor is -inf: there is no distribution, so take the lowest id.
        int32_t id = candidates_[0].id;
        for (const candidate& c : candidates_) {
            id = std::min(id, c.id);
        }
        return id;
    }

    // p is exp((l - max) / T): the best token has p = 1 and `total` is the softmax normaliser.
    // Infinite logits or temperature would make inf - inf or -inf * 0: those get p = 0, and an
    // infinite best logit shares all the probability with its equals.
    const float inv_t = 1.0f / params_.temperature;
    const bool infinite_max = std::isinf(max_logit);
    double total = 0.0;
    for (candidate& c : candidates_) {
        if (infinite_max) {
            c.p = c.logit == max_logit ? 1.0f : 0.0f;
        } else {
            const float x = (c.logit - max_logit) * inv_t;
            c.p = std::isnan(x) ? 0.0f : std::exp(x);
        }
        total += c.p;
    }

    // Top-p and min-p each keep a prefix of the sorted order, and the result of applying them in
    // turn (top-p, renormalise, min-p) is the shorter prefix: min-p compares with p_max, which
    // renormalising does not change. So min-p runs first as an O(n) filter, which leaves only a
    // small set to sort for top-p, whose sums still use the full normaliser.
    if (params_.min_p > 0.0f) {
        // Clamped so that the best token always stays.
        const float threshold = std::min(params_.min_p, 1.0f);
        size_t n = 0;
        for (const candidate& c : candidates_) {
            if (c.p >= threshold) {
                candidates_[n++] = c;
            }
        }
        // The filter is stable and removes a suffix of the sorted order, so whatever survives
        // of the sorted prefix is still the sorted prefix.
        sorted_ = std::min(sorted_, n);
        candidates_.resize(n);
    }
    if (params_.top_p < 1.0f) {
        // Smallest prefix whose probability reaches top_p (at least one token), sorting only as
        // far as needed, in geometrically growing steps.
        const double target = static_cast<double>(params_.top_p) * total;
        double cum = 0.0;
        size_t keep = candidates_.size();
        size_t i = 0;
        size_t want = 64;
        while (i < keep) {
            sort_prefix(want);
            for (; i < sorted_; ++i) {
                if (i > 0 && cum >= target) {
                    keep = i;
                    break;
                }
                cum += candidates_[i].p;
            }
            want *= 4;
        }
        candidates_.resize(keep);
    }

    double kept_total = 0.0;
    for (const candidate& c : candidates_) {
        kept_total += c.p;
    }
    const double target = u * kept_total;
    double acc = 0.0;
    for (const candidate& c : candidates_) {
        acc += c.p;
        if (target < acc) {
            return c.id;
        }
    }
    // Rounding left target at the very end: the last token with any probability.
    for (size_t i = candidates_.size(); i-- > 0;) {
        if (candidates_[i].p > 0.0f) {
            return candidates_[i].id;
        }
    }
    return candidates_[0].id;
}

}  // namespace hearth
