#include "spelling.h"

#include <algorithm>

namespace hearth {

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string spelling_closest(std::string_view name, const std::vector<std::string>& candidates, size_t below) {
    std::string best;
    for (const auto& cand : candidates) {
        const size_t d = edit_distance(name, cand);
        if (d < below) {
            below = d;
            best = cand;
        }
    }
    return best;
}

}  // namespace hearth
