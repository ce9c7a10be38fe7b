// The token side of grammar-constrained decoding: the vocabulary's byte trie (grammar_vocab) and
// the per-sequence state that turns the grammar into a token mask (grammar_matcher).
#include "grammar.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace hearth {

namespace {

// Tokens that can never be part of constrained text: their piece is not what they stand for.
bool excluded(const vocab& v, token_id id) {
    if (v.is_control(id)) return true;
    const token_kind k = v.kind_of(id);
    return k == token_kind::unknown || k == token_kind::unused || k == token_kind::control;
}

// FNV-1a over everything the trie depends on.
uint64_t vocab_fingerprint(const vocab& v) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        for (size_t i = 0; i < n; ++i) {
            h ^= p[i];
            h *= 1099511628211ull;
        }
    };
    const int32_t n = v.n_tokens();
    mix(&n, sizeof n);
    for (token_id id = 0; id < n; ++id) {
        const uint8_t flags = static_cast<uint8_t>((v.is_eog(id) ? 1 : 0) | (excluded(v, id) ? 2 : 0));
        mix(&flags, 1);
        const std::string piece = v.token_to_piece(id, true);
        const auto len = static_cast<uint32_t>(piece.size());
        mix(&len, sizeof len);
        mix(piece.data(), piece.size());
    }
    return h;
}

}  // namespace

grammar_vocab::grammar_vocab(const vocab& v) : n_tokens_(v.n_tokens()) {
    pieces_.resize(static_cast<size_t>(n_tokens_));
    std::vector<token_id> order;
    for (token_id id = 0; id < n_tokens_; ++id) {
        if (v.is_eog(id)) {
            eog_.push_back(id);
            continue;
        }
        if (excluded(v, id)) continue;
        pieces_[static_cast<size_t>(id)] = v.token_to_piece(id, true);
        if (!pieces_[static_cast<size_t>(id)].empty()) order.push_back(id);
    }
    std::sort(order.begin(), order.end(), [this](token_id a, token_id b) {
        const auto& pa = pieces_[static_cast<size_t>(a)];
        const auto& pb = pieces_[static_cast<size_t>(b)];
        return pa != pb ? pa < pb : a < b;
    });
    nodes_.emplace_back();
    build(0, order, 0, order.size(), 0);
    for (const auto& p : pieces_) max_depth_ = std::max(max_depth_, p.size());
}

void grammar_vocab::build(uint32_t at, std::vector<token_id>& order, size_t begin, size_t end, size_t depth) {
    // Sorted order puts the tokens that end at this depth first.
    size_t i = begin;
    nodes_[at].first_token = static_cast<uint32_t>(token_ids_.size());
    while (i < end && pieces_[static_cast<size_t>(order[i])].size() == depth) token_ids_.push_back(order[i++]);
    nodes_[at].n_tokens = static_cast<uint32_t>(token_ids_.size()) - nodes_[at].first_token;
    // Children are laid out together first, then each subtree is filled in.
    std::vector<std::pair<size_t, size_t>> groups;
    while (i < end) {
        const char b = pieces_[static_cast<size_t>(order[i])][depth];
        size_t j = i + 1;
        while (j < end && pieces_[static_cast<size_t>(order[j])][depth] == b) ++j;
        groups.emplace_back(i, j);
        i = j;
    }
    const auto first = static_cast<uint32_t>(nodes_.size());
    nodes_[at].first_child = first;
    nodes_[at].n_children = static_cast<uint32_t>(groups.size());
    for (const auto& g : groups) {
        node n;
        n.byte = static_cast<uint8_t>(pieces_[static_cast<size_t>(order[g.first])][depth]);
        nodes_.push_back(n);
    }
    for (size_t k = 0; k < groups.size(); ++k) build(first + static_cast<uint32_t>(k), order, groups[k].first, groups[k].second, depth + 1);
}

bool grammar_vocab::is_eog(token_id id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

std::shared_ptr<const grammar_vocab> grammar_vocab::get(const vocab& v) {
    static std::mutex mu;
    static std::unordered_map<uint64_t, std::weak_ptr<const grammar_vocab>> cache;
    const uint64_t key = vocab_fingerprint(v);
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end()) {
        if (auto p = it->second.lock()) return p;
    }
    // Drop entries nobody holds any more so the map does not grow with every vocab ever seen.
    for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
    auto p = std::make_shared<const grammar_vocab>(v);
    cache[key] = p;
    return p;
}

grammar_matcher::grammar_matcher(std::shared_ptr<const grammar> g, std::shared_ptr<const grammar_vocab> v)
    : grammar_(std::move(g)), vocab_(std::move(v)) {
    if (!grammar_ || !vocab_) throw grammar_error("", "grammar_matcher needs a grammar and a grammar_vocab");
    reset();
}

grammar_matcher::grammar_matcher(const grammar_matcher& other) : grammar_(other.grammar_), vocab_(other.vocab_) {
    current_ = intern(other.states_[static_cast<size_t>(other.current_)].key->first);
}

grammar_matcher& grammar_matcher::operator=(const grammar_matcher& other) {
    if (this != &other) {
        grammar_matcher copy(other);
        *this = std::move(copy);
    }
    return *this;
}

int32_t grammar_matcher::intern(const stack_set& stacks) const {
    auto [it, fresh] = index_.try_emplace(stacks, static_cast<int32_t>(states_.size()));
    if (fresh) {
        state s;
        s.key = it;
        s.complete = grammar::is_complete(stacks);
        states_.push_back(std::move(s));
    }
    return it->second;
}

int32_t grammar_matcher::step(int32_t from, uint8_t b) const {
    {
        const state& s = states_[static_cast<size_t>(from)];
        if (s.dense) {
            const int32_t known = (*s.dense)[b];
            if (known != unknown_state) return known;
        } else {
            for (const auto& [byte, to] : s.sparse) {
                if (byte == b) return to;
            }
        }
    }
    // The key lives in the map's node: intern() may grow states_ but never moves it.
    grammar_->advance(states_[static_cast<size_t>(from)].key->first, b, scratch_);
    const int32_t to = scratch_.empty() ? dead_state : intern(scratch_);
    state& s = states_[static_cast<size_t>(from)];
    if (!s.dense && s.sparse.size() >= sparse_limit) {
        s.dense = std::make_unique<std::array<int32_t, 256>>();
        s.dense->fill(unknown_state);
        for (const auto& [byte, next] : s.sparse) (*s.dense)[byte] = next;
        s.sparse.clear();
        s.sparse.shrink_to_fit();
    }
    if (s.dense) (*s.dense)[b] = to;
    else s.sparse.emplace_back(b, to);
    return to;
}

void grammar_matcher::trim_cache() const {
    if (states_.size() <= max_states) return;
    stack_set keep = states_[static_cast<size_t>(current_)].key->first;
    states_.clear();
    index_.clear();
    current_ = intern(keep);
}

void grammar_matcher::reset() {
    // The cache stays: a matcher reused for the next request starts warm.
    current_ = intern(grammar_->start());
}

bool grammar_matcher::complete() const { return states_[static_cast<size_t>(current_)].complete; }

bool grammar_matcher::finished() const {
    const byte_class next = grammar_->next_bytes(states_[static_cast<size_t>(current_)].key->first);
    return complete() && std::all_of(next.bits.begin(), next.bits.end(), [](uint64_t w) { return w == 0; });
}

void grammar_matcher::walk(uint32_t at, int32_t from, uint8_t* mask) const {
    const auto& nodes = vocab_->nodes();
    const auto& ids = vocab_->token_ids();
    const grammar_vocab::node& n = nodes[at];
    for (uint32_t c = n.first_child; c < n.first_child + n.n_children; ++c) {
        const grammar_vocab::node& child = nodes[c];
        const int32_t to = step(from, child.byte);
        if (to < 0) continue;
        for (uint32_t k = child.first_token; k < child.first_token + child.n_tokens; ++k) mask[ids[k]] = 1;
        if (child.n_children) walk(c, to, mask);
    }
}

void grammar_matcher::allowed(std::vector<uint8_t>& mask) const {
    trim_cache();
    mask.assign(static_cast<size_t>(vocab_->n_tokens()), 0);
    walk(0, current_, mask.data());
    if (complete()) {
        for (token_id id : vocab_->eog_tokens()) mask[static_cast<size_t>(id)] = 1;
    }
}

void grammar_matcher::allowed(std::vector<bool>& mask) const {
    allowed(bytes_mask_);
    mask.assign(bytes_mask_.size(), false);
    for (size_t i = 0; i < bytes_mask_.size(); ++i) {
        if (bytes_mask_[i]) mask[i] = true;
    }
}

bool grammar_matcher::accept_bytes(std::string_view bytes) {
    trim_cache();
    int32_t at = current_;
    for (char c : bytes) {
        at = step(at, static_cast<uint8_t>(c));
        if (at < 0) return false;
    }
    current_ = at;
    return true;
}

bool grammar_matcher::accept(token_id id) {
    if (id < 0 || id >= vocab_->n_tokens()) return false;
    if (vocab_->is_eog(id)) return complete();
    const std::string& piece = vocab_->piece(id);
    if (piece.empty()) return false;
    return accept_bytes(piece);
}

}  // namespace hearth
