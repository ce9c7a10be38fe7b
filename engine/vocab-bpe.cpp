// Byte-level BPE as llama.cpp's llm_tokenizer_bpe does it: the pre-tokenizer splits the text into
// words (already in GPT-2's byte alphabet); inside each word the adjacent pair with the lowest merge
// rank is merged until none is left; each resulting symbol is its token (or its bytes' tokens).
#include "vocab-impl.h"

#include <queue>

namespace hearth {

namespace {

struct bpe_symbol {
    int prev = -1;
    int next = -1;
    size_t offset = 0;
    size_t n = 0;
};

struct bpe_bigram {
    int left = 0;
    int right = 0;
    int32_t rank = 0;
    size_t size = 0;  // bytes of the pair when queued; a pair whose symbols changed since is stale
};

// Lowest rank first; on a tie the leftmost pair.
struct bpe_bigram_order {
    bool operator()(const bpe_bigram& a, const bpe_bigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

}  // namespace

int32_t vocab::impl::rank_of(std::string_view left, std::string_view right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left).push_back(' ');
    key.append(right);
    auto it = merge_rank.find(key);
    return it == merge_rank.end() ? -1 : it->second;
}

void vocab::impl::bpe_tokenize(std::string_view text, std::vector<token_id>& out) const {
    const std::vector<std::string> words = pre.split->split(text);
    std::vector<bpe_symbol> symbols;
    std::priority_queue<bpe_bigram, std::vector<bpe_bigram>, bpe_bigram_order> queue;
    for (const std::string& word : words) {
        if (word.empty()) continue;
        symbols.clear();
        queue = {};
        const std::string_view w = word;
        if (pre.ignore_merges && lookup(w) >= 0) {
            out.push_back(lookup(w));
            continue;
        }
        for (size_t offs = 0; offs < w.size();) {
            bpe_symbol s;
            s.offset = offs;
            s.n = std::min(unicode::utf8_len(static_cast<uint8_t>(w[offs])), w.size() - offs);
            offs += s.n;
            s.prev = static_cast<int>(symbols.size()) - 1;
            s.next = offs == w.size() ? -1 : static_cast<int>(symbols.size()) + 1;
            symbols.push_back(s);
        }
        auto add = [&](int left, int right) {
            if (left < 0 || right < 0) return;
            const bpe_symbol& l = symbols[left];
            const bpe_symbol& r = symbols[right];
            const int32_t rank = rank_of(w.substr(l.offset, l.n), w.substr(r.offset, r.n));
            if (rank < 0) return;
            queue.push({left, right, rank, l.n + r.n});
        };
        for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add(i - 1, i);
        while (!queue.empty()) {
            const bpe_bigram b = queue.top();
            queue.pop();
            bpe_symbol& l = symbols[b.left];
            bpe_symbol& r = symbols[b.right];
            // Symbols only grow and stay adjacent while both live, so an unchanged byte count
            // means the pair still spells the text it was queued with.
            if (l.n == 0 || r.n == 0 || l.next != b.right || l.n + r.n != b.size) continue;
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) symbols[r.next].prev = b.left;
            add(l.prev, b.left);
            add(b.left, l.next);
        }
        for (int i = 0; i != -1; i = symbols[i].next) {
            const std::string_view s = w.substr(symbols[i].offset, symbols[i].n);
            const token_id id = lookup(s);
            if (id >= 0) {
                out.push_back(id);
                continue;
            }
            // no token for the merged text: its single bytes where they are tokens, as llama.cpp
            for (char c : s) {
                const token_id b = lookup(std::string_view(&c, 1));
                if (b >= 0) out.push_back(b);
            }
        }
    }
}

}  // namespace hearth
