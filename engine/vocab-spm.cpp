// SentencePiece-style tokenization as llama.cpp's llm_tokenizer_spm does it: start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the best-scoring vocabulary
// entry, then emit each symbol as its token or, when it is a character outside the vocabulary, as
// byte tokens. (llama.cpp also records merges to re-split symbols, but every merged symbol is a
// vocabulary entry, so that path never runs and is left out here.)
#include "vocab-impl.h"

#include <queue>

namespace hearth {

namespace {

struct spm_symbol {
    int prev = -1;
    int next = -1;
    size_t offset = 0;  // into the text
    size_t n = 0;       // bytes; 0 once merged into its left neighbour
};

struct spm_bigram {
    int left = 0;
    int right = 0;
    float score = 0.0f;
    size_t size = 0;
};

// Highest score first; on a tie the leftmost pair.
struct spm_bigram_order {
    bool operator()(const spm_bigram& a, const spm_bigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

class spm_session {
public:
    spm_session(const vocab::impl& v, std::string_view text) : v_(v), text_(text) {}

    void run(std::vector<token_id>& out) {
        for (size_t offs = 0; offs < text_.size();) {
            spm_symbol s;
            s.offset = offs;
            s.n = std::min(unicode::utf8_len(static_cast<uint8_t>(text_[offs])), text_.size() - offs);
            offs += s.n;
            s.prev = static_cast<int>(symbols_.size()) - 1;
            s.next = offs == text_.size() ? -1 : static_cast<int>(symbols_.size()) + 1;
            symbols_.push_back(s);
        }
        for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add(i - 1, i);

        while (!queue_.empty()) {
            const spm_bigram b = queue_.top();
            queue_.pop();
            spm_symbol& l = symbols_[b.left];
            spm_symbol& r = symbols_[b.right];
            if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
            l.n += r.n;
            r.n = 0;
            l.next = r.next;
            if (r.next >= 0) symbols_[r.next].prev = b.left;
            try_add(l.prev, b.left);
            try_add(b.left, l.next);
        }
        if (symbols_.empty()) return;
        for (int i = 0; i != -1; i = symbols_[i].next) emit(symbols_[i].offset, symbols_[i].n, out);
    }

private:
    std::string_view sv(size_t offset, size_t n) const { return text_.substr(offset, n); }

    void try_add(int left, int right) {
        if (left < 0 || right < 0) return;
        const std::string_view s = sv(symbols_[left].offset, symbols_[left].n + symbols_[right].n);
        const token_id id = v_.lookup(s);
        if (id < 0) return;
        queue_.push({left, right, v_.tokens[id].score, s.size()});
    }

    void emit(size_t offset, size_t n, std::vector<token_id>& out) const {
        const std::string_view s = sv(offset, n);
        const token_id id = v_.lookup(s);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
        for (char c : s) out.push_back(v_.spm_byte_token(static_cast<uint8_t>(c)));
    }

    const vocab::impl& v_;
    std::string_view text_;
    std::vector<spm_symbol> symbols_;
    std::priority_queue<spm_bigram, std::vector<spm_bigram>, spm_bigram_order> queue_;
};

}  // namespace

void vocab::impl::spm_tokenize(std::string_view text, std::vector<token_id>& out) const {
    spm_session(*this, text).run(out);
}

token_id vocab::impl::spm_byte_token(uint8_t byte) const {
    static constexpr char hex[] = "0123456789ABCDEF";
    const char name[6] = {'<', '0', 'x', hex[byte >> 4], hex[byte & 15], '>'};
    token_id id = lookup(std::string_view(name, 6));
    if (id >= 0) return id;
    id = lookup(std::string_view(reinterpret_cast<const char*>(&byte), 1));
    // llama.cpp aborts here; the unknown token (or nothing) is the safe choice
    return id >= 0 ? id : unk;
}

}  // namespace hearth
