// The compiled grammar: validation, flattening, and the byte-by-byte stack-set step.
#include "grammar.h"

#include <algorithm>

namespace hearth {

namespace {

// Past these a grammar is refused: they bound the memory one schema can make us use.
constexpr size_t max_rules = 1u << 20;
constexpr size_t max_elements = 1u << 22;

std::string describe_rule(size_t r) {
    std::string s = "rule ";
    s.append(std::to_string(r));
    return s;
}

}  // namespace

grammar_error::grammar_error(const std::string& path, const std::string& what)
    : std::runtime_error(path.empty() ? what : std::string("json schema at ").append(path).append(": ").append(what)), path_(path) {}

grammar::grammar(const grammar_rules& src) {
    const size_t n_rules = src.rules.size();
    if (n_rules == 0) throw grammar_error("", "grammar has no rules");
    if (n_rules > max_rules) throw grammar_error("", "grammar has too many rules");
    if (src.root >= n_rules) throw grammar_error("", "grammar root is not a rule");
    classes_ = src.classes;

    // Which rules can match the empty string (fixed point), then left recursion: an edge r -> s
    // when s can come first in r (after nullable rules only). A cycle would make expand() loop.
    std::vector<uint8_t> nullable(n_rules, 0);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < n_rules; ++r) {
            if (nullable[r]) continue;
            for (const auto& alt : src.rules[r]) {
                bool all = true;
                for (const auto& sym : alt) {
                    if (!sym.is_rule || !nullable[sym.index]) {
                        all = false;
                        break;
                    }
                }
                if (all) {
                    nullable[r] = 1;
                    changed = true;
                    break;
                }
            }
        }
    }
    std::vector<std::vector<uint32_t>> first_edges(n_rules);
    size_t total = 0;
    for (size_t r = 0; r < n_rules; ++r) {
        for (const auto& alt : src.rules[r]) {
            total += alt.size() + 1;
            for (const auto& sym : alt) {
                if (sym.is_rule) {
                    if (sym.index >= n_rules) throw grammar_error("", describe_rule(r).append(" refers to a rule that does not exist"));
                } else if (sym.index >= classes_.size()) {
                    throw grammar_error("", describe_rule(r).append(" refers to a byte class that does not exist"));
                }
            }
            for (const auto& sym : alt) {
                if (!sym.is_rule) break;
                first_edges[r].push_back(sym.index);
                if (!nullable[sym.index]) break;
            }
        }
    }
    if (total > max_elements) throw grammar_error("", "grammar is too large");
    // Iterative DFS with colours: 1 = on the current path, 2 = done.
    std::vector<uint8_t> colour(n_rules, 0);
    std::vector<std::pair<uint32_t, size_t>> path;
    for (size_t r0 = 0; r0 < n_rules; ++r0) {
        if (colour[r0]) continue;
        path.emplace_back(static_cast<uint32_t>(r0), 0);
        colour[r0] = 1;
        while (!path.empty()) {
            auto& [r, next] = path.back();
            if (next == first_edges[r].size()) {
                colour[r] = 2;
                path.pop_back();
                continue;
            }
            const uint32_t s = first_edges[r][next++];
            if (colour[s] == 1) throw grammar_error("", describe_rule(s).append(" is left-recursive"));
            if (colour[s] == 0) {
                colour[s] = 1;
                path.emplace_back(s, 0);
            }
        }
    }

    elements_.reserve(total);
    rule_alts_.resize(n_rules);
    for (size_t r = 0; r < n_rules; ++r) {
        for (const auto& alt : src.rules[r]) {
            rule_alts_[r].push_back(static_cast<uint32_t>(elements_.size()));
            for (const auto& sym : alt) elements_.push_back({sym.is_rule ? element::rule : element::chars, sym.index});
            elements_.push_back({element::end, 0});
        }
    }
    // The root as a one-element alternative of its own, so a stack can start at a position.
    const auto root_pos = static_cast<uint32_t>(elements_.size());
    elements_.push_back({element::rule, src.root});
    elements_.push_back({element::end, 0});
    stack s{root_pos};
    expand(s, start_);
    dedupe(start_);
}

void grammar::expand(stack& s, std::vector<stack>& out) const {
    if (s.empty() || elements_[s.back()].kind == element::chars) {
        // Checked before dedupe too: a very ambiguous grammar must not fill memory first.
        if (out.size() >= 4 * max_stacks) throw grammar_error("", "grammar is too ambiguous: too many parses alive at once");
        out.push_back(s);
        return;
    }
    if (s.size() >= max_stack_depth) throw grammar_error("", "text nests deeper than the grammar matcher allows");
    const uint32_t pos = s.back();
    const uint32_t r = elements_[pos].index;
    s.pop_back();
    // The continuation after the reference, unless the alternative ends there (a tail call adds
    // nothing to the stack, so right recursion does not grow it).
    if (elements_[pos + 1].kind != element::end) s.push_back(pos + 1);
    const size_t base = s.size();
    for (uint32_t alt : rule_alts_[r]) {
        if (elements_[alt].kind != element::end) s.push_back(alt);
        expand(s, out);
        s.resize(base);
    }
    // Restore the caller's stack as it was.
    if (elements_[pos + 1].kind != element::end) s.pop_back();
    s.push_back(pos);
}

void grammar::dedupe(std::vector<stack>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    if (v.size() > max_stacks) throw grammar_error("", "grammar is too ambiguous: too many parses alive at once");
}

void grammar::advance(const std::vector<stack>& in, uint8_t b, std::vector<stack>& out) const {
    out.clear();
    stack t;
    for (const stack& s : in) {
        if (s.empty()) continue;
        const uint32_t pos = s.back();
        if (!classes_[elements_[pos].index].has(b)) continue;
        t.assign(s.begin(), s.end() - 1);
        if (elements_[pos + 1].kind != element::end) t.push_back(pos + 1);
        expand(t, out);
    }
    if (out.size() > 1) dedupe(out);
}

byte_class grammar::next_bytes(const std::vector<stack>& in) const {
    byte_class u;
    for (const stack& s : in) {
        if (s.empty()) continue;
        const auto& c = classes_[elements_[s.back()].index].bits;
        for (size_t i = 0; i < 4; ++i) u.bits[i] |= c[i];
    }
    return u;
}

bool grammar::is_complete(const std::vector<stack>& in) {
    return std::any_of(in.begin(), in.end(), [](const stack& s) { return s.empty(); });
}

bool grammar::matches(std::string_view text) const {
    std::vector<stack> cur = start_, next;
    for (char c : text) {
        advance(cur, static_cast<uint8_t>(c), next);
        if (next.empty()) return false;
        cur.swap(next);
    }
    return is_complete(cur);
}

}  // namespace hearth
