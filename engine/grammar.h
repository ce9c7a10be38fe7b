// Grammar-constrained decoding: the output of a generation can only be text a grammar accepts.
//
// Design. A `grammar` is a context-free grammar over BYTES: rules, each a list of alternatives,
// each a sequence of elements that are either a byte class (a 256-bit set) or a reference to a
// rule. It is immutable after construction and shared between threads and sequences. Matching is
// the pushdown "stack set" approach (as in llama.cpp's grammar sampler, written anew here): a stack
// is the list of grammar positions still to match (top = next element); after every byte each
// stack whose top class holds the byte is popped and re-expanded until its top is a byte class again.
// The set of stacks is sorted and deduplicated after each byte, so its size stays bounded by the
// grammar's shape (alternatives that are still alive), not by the length of the text. Left-recursive
// grammars are rejected at construction (their expansion would not terminate).
//
// Tokens: a `grammar_vocab` is built once per tokenizer (cached, shared): every usable token's bytes
// (token_to_piece; SentencePiece <0xNN> byte tokens give their single byte, GPT-2 byte-level pieces
// their raw bytes) in a byte trie. Computing the mask walks the trie alongside the stack set and
// drops a whole subtree as soon as its prefix byte kills every stack, so most tokens are never
// looked at. Each matcher interns the stack sets it meets as states with a lazily filled per-byte
// transition table (a DFA built on demand, bounded, dropped when full), so repeated walks, such as
// inside a free string where every character leads back to the same state, are table lookups. Because matching is byte by byte, a multi-byte UTF-8 character split over several
// tokens is fine: the grammar's state sits between the bytes of the character.
//
// The front end: `grammar_from_json_schema` compiles a subset of JSON Schema into compact JSON
// (no whitespace): object (properties in the listed order, optional ones may be left out, no other
// keys), oneOf/anyOf, const, enum, string (minLength/maxLength, all JSON escapes), integer
// (minimum/maximum/exclusiveMinimum/exclusiveMaximum as exact digit automata, canonical form),
// number (with multipleOf: the enumerated values min + k*m in shortest form, at most 10000; without:
// any value in range, at most 6 fraction digits, no exponent), boolean, null, array (items,
// minItems, maxItems). Anything else is a grammar_error naming the JSON pointer of the problem.
// oneOf is treated as anyOf (an output matching two alternatives is not rejected).
#pragma once

#include "vocab.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// A grammar that cannot be built: bad schema (with the JSON pointer of the offending part),
// left recursion, or a grammar past the size limits.
class grammar_error : public std::runtime_error {
public:
    // path: JSON pointer into the schema ("" for the whole document, or not schema related).
    grammar_error(const std::string& path, const std::string& what);
    const std::string& path() const { return path_; }

private:
    std::string path_;  // where in the schema the problem is, for callers that point at it
};

// A set of bytes, the only kind of terminal: one bit per byte value.
struct byte_class {
    std::array<uint64_t, 4> bits{};  // bit b%64 of word b/64 set: byte b is in the class

    bool has(uint8_t b) const { return (bits[b >> 6] >> (b & 63)) & 1u; }
    void add(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
    void add_range(uint8_t lo, uint8_t hi) {
        for (unsigned b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
    }
    static byte_class single(uint8_t b) {
        byte_class c;
        c.add(b);
        return c;
    }
    static byte_class range(uint8_t lo, uint8_t hi) {
        byte_class c;
        c.add_range(lo, hi);
        return c;
    }
};

// One item of an alternative: a byte class to match or a rule to expand.
struct grammar_symbol {
    bool is_rule = false;   // true: `index` is a rule id; false: `index` is a byte-class id
    uint32_t index = 0;     // into grammar::rules / the class table given to the grammar
};

// The grammar's source form, built by a front end (JSON schema now, a text format later).
struct grammar_rules {
    std::vector<byte_class> classes;                                  // terminals, referenced by id
    std::vector<std::vector<std::vector<grammar_symbol>>> rules;      // rule -> alternatives -> sequence
    uint32_t root = 0;                                                 // the rule the whole text must match
};

// The compiled, immutable grammar. Positions are indices into one flat element array in which each
// alternative is a run of symbols closed by an end marker, so a stack is a vector of positions.
class grammar {
public:
    // Validates (ids in range, no left recursion, size limits) and flattens. Throws grammar_error.
    explicit grammar(const grammar_rules& rules);

    // One flattened element: a byte class, a rule reference, or the end of an alternative.
    struct element {
        enum kind_t : uint8_t { end, chars, rule } kind = end;  // what `index` refers to
        uint32_t index = 0;                                     // class id or rule id
    };
    using stack = std::vector<uint32_t>;  // element positions still to match; back() is matched next

    // The initial stacks (the root expanded until every top is a byte class; empty stack = done).
    const std::vector<stack>& start() const { return start_; }
    // Stacks after consuming byte b from `in` (sorted, deduplicated); `out` is overwritten.
    void advance(const std::vector<stack>& in, uint8_t b, std::vector<stack>& out) const;
    // The union of the bytes any stack of `in` can consume next.
    byte_class next_bytes(const std::vector<stack>& in) const;
    // Whether some stack of `in` has matched the whole grammar.
    static bool is_complete(const std::vector<stack>& in);
    // Whether the whole of `text` is a sentence of the grammar (for tests and validation).
    bool matches(std::string_view text) const;

    size_t n_rules() const { return rule_alts_.size(); }
    size_t n_elements() const { return elements_.size(); }

    // Upper bound of stacks kept at once; past it advance() throws grammar_error rather than grow
    // without limit (schema grammars stay far below: alternatives alive at one point).
    static constexpr size_t max_stacks = 65536;
    // Upper bound of one stack's depth (open nested constructs); past it matching throws.
    static constexpr size_t max_stack_depth = 4096;

private:
    // Pushes onto `out` every expansion of `s` whose top is a byte class (or `s` empty).
    void expand(stack& s, std::vector<stack>& out) const;
    static void dedupe(std::vector<stack>& v);

    std::vector<element> elements_;               // every alternative, each closed by an `end`
    std::vector<byte_class> classes_;             // the terminals
    std::vector<std::vector<uint32_t>> rule_alts_;  // rule -> start position of each alternative
    std::vector<stack> start_;                    // expansion of the root
};

// Compiles the JSON-schema subset described at the top of this file. Throws grammar_error naming
// the JSON pointer of the first unsupported or malformed part.
std::shared_ptr<const grammar> grammar_from_json_schema(std::string_view json);
// The grammar rules only, for front ends that want to combine them.
grammar_rules grammar_rules_from_json_schema(std::string_view json);

// A tokenizer's tokens as a byte trie, for computing masks. Immutable; build it once per vocab
// (grammar_vocab::get caches it) and share it between all matchers of that vocab.
class grammar_vocab {
public:
    explicit grammar_vocab(const vocab& v);

    // The shared instance for v's tokens, built on first use. Keyed by a hash of the pieces and
    // token kinds, so a vocab destroyed and another loaded at the same address is never confused.
    static std::shared_ptr<const grammar_vocab> get(const vocab& v);

    int32_t n_tokens() const { return n_tokens_; }
    // A token's bytes as the grammar sees them (empty for tokens that can never be allowed).
    const std::string& piece(token_id id) const { return pieces_[static_cast<size_t>(id)]; }
    // End-of-generation tokens: allowed exactly when the grammar is complete.
    const std::vector<token_id>& eog_tokens() const { return eog_; }
    bool is_eog(token_id id) const;
    // Length of the longest piece: the deepest the trie walk goes.
    size_t max_depth() const { return max_depth_; }

    // A trie node. Children of a node are contiguous and sorted by byte; tokens ending at a node
    // are contiguous in token_ids_.
    struct node {
        uint32_t first_child = 0;  // index of the first child in nodes_
        uint32_t n_children = 0;   // number of children
        uint32_t first_token = 0;  // index into token_ids_ of the tokens whose piece ends here
        uint32_t n_tokens = 0;     // number of such tokens
        uint8_t byte = 0;          // the byte on the edge from the parent
    };
    const std::vector<node>& nodes() const { return nodes_; }
    const std::vector<token_id>& token_ids() const { return token_ids_; }

private:
    // Lays out the subtree of the tokens order[begin, end) sharing `depth` bytes at nodes_[at].
    void build(uint32_t at, std::vector<token_id>& order, size_t begin, size_t end, size_t depth);

    int32_t n_tokens_ = 0;            // vocabulary size (mask length)
    std::vector<std::string> pieces_; // token -> bytes; empty for control/unknown/unused/empty tokens
    std::vector<token_id> eog_;       // sorted end-of-generation tokens
    std::vector<node> nodes_;         // nodes_[0] is the root (the empty prefix)
    std::vector<token_id> token_ids_; // tokens grouped by the node their piece ends at
    size_t max_depth_ = 0;            // longest piece, sizes the matcher's per-depth scratch
};

// The grammar state of one sequence. Not thread-safe (one per sequence); the grammar and the
// grammar_vocab it points to are shared. Stack sets are interned as states with a lazily filled
// byte transition table, so the trie walk mostly follows cached transitions (inside a string, after
// the first mask, a transition is one table lookup); the cache is bounded and dropped when full.
class grammar_matcher {
public:
    grammar_matcher(std::shared_ptr<const grammar> g, std::shared_ptr<const grammar_vocab> v);
    // A copy has the same state and a cold cache (cached states refer into their own index).
    grammar_matcher(const grammar_matcher& other);
    grammar_matcher& operator=(const grammar_matcher& other);
    grammar_matcher(grammar_matcher&&) noexcept = default;
    grammar_matcher& operator=(grammar_matcher&&) noexcept = default;

    // Fills mask (resized to n_tokens) with 1 for each token that may come next: its whole piece
    // keeps the text a prefix of a sentence; end-of-generation tokens exactly when complete();
    // control, unknown, unused and empty tokens never.
    void allowed(std::vector<uint8_t>& mask) const;
    // The same, in the form sampler::sample takes.
    void allowed(std::vector<bool>& mask) const;
    // Advances by a token. Returns false and leaves the state unchanged when it is not allowed.
    // An end-of-generation token is accepted when complete() and changes nothing.
    bool accept(token_id id);
    // Advances by raw bytes (all or nothing), e.g. text forced into the output.
    bool accept_bytes(std::string_view bytes);
    // Whether the text so far is a whole sentence (generation may end here).
    bool complete() const;
    // Whether no further byte can be accepted (complete and nothing can follow).
    bool finished() const;
    // Back to the start of the grammar (cached transitions are kept: reuse a matcher to stay warm).
    void reset();

    const grammar& rules() const { return *grammar_; }
    // The current stack set (one stack per live parse), for checks and debugging.
    const std::vector<grammar::stack>& stacks() const { return states_[static_cast<size_t>(current_)].key->first; }

    // Cached states past which the cache is dropped at the next allowed()/accept() (a few hundred
    // bytes each, 1 KiB more for the few with a full table). One allowed() adds at most one state
    // per trie node it visits.
    static constexpr size_t max_states = 8192;

private:
    using stack_set = std::vector<grammar::stack>;
    static constexpr int32_t unknown_state = -1;  // transition not computed yet
    static constexpr int32_t dead_state = -2;     // the byte kills every stack
    // Transitions a state keeps in a short list before it gets a full 256-entry table: most states
    // (inside literals) only ever see a byte or two, a few (inside strings) see most bytes.
    static constexpr size_t sparse_limit = 8;
    // One interned stack set.
    struct state {
        std::map<stack_set, int32_t>::const_iterator key;      // its stacks (the index's key, stable)
        std::vector<std::pair<uint8_t, int32_t>> sparse;       // known transitions, until sparse_limit
        std::unique_ptr<std::array<int32_t, 256>> dense;       // per byte: state id, dead or unknown
        bool complete = false;                                 // some stack is empty
    };

    int32_t intern(const stack_set& stacks) const;        // id of a stack set, added if new
    int32_t step(int32_t from, uint8_t b) const;           // cached transition
    void trim_cache() const;                               // drops the cache when over max_states
    void walk(uint32_t node, int32_t at, uint8_t* mask) const;

    std::shared_ptr<const grammar> grammar_;     // shared, immutable
    std::shared_ptr<const grammar_vocab> vocab_; // shared, immutable
    mutable std::map<stack_set, int32_t> index_; // interned stack sets -> state id
    mutable std::vector<state> states_;          // by id
    mutable int32_t current_ = 0;                // the sequence's state (ids change when the cache is dropped)
    mutable stack_set scratch_;                  // reused by step()
    mutable std::vector<uint8_t> bytes_mask_;    // reused by allowed(std::vector<bool>&)
};

}  // namespace hearth
