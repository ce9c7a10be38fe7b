// Sizes of memory as people write them in configuration and on command lines ("512M", "1.5G")
// and as status lines show them ("900 MiB").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hearth {

// "512M" -> 536870912. Plain bytes, or K/M/G/T (also KiB/MiB/GiB/TiB, any case; 1024-based), with
// an optional fraction before a unit ("1.5G"). Throws std::invalid_argument naming the text.
uint64_t byte_size_parse(std::string_view text);

// "900 MiB", "1.2 GiB", "512 B".
std::string byte_size_format(uint64_t bytes);

}  // namespace hearth
