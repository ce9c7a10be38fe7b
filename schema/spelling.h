// Did-you-mean hints for names people mistype (configuration keys, whitelist keys, batch fields).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// Levenshtein distance: insertions, deletions and substitutions, one each.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `name` that is fewer than `below` edits away ("" when none is).
std::string spelling_closest(std::string_view name, const std::vector<std::string>& candidates, size_t below = 3);

}  // namespace hearth
