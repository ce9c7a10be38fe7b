// Helpers shared by the tests: where ../shared is, and reading its JSON references.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace hearth::test {

// $HEARTH_SHARED, else ../shared beside the repository.
std::string shared_dir();
std::string model_path(const std::string& file);      // shared_dir()/models/<file>
std::string reference_path(const std::string& file);  // shared_dir()/reference/visible/<file>
bool in_ci();                                         // $CI is "true"

// Returns true when the file exists. Otherwise fails the test under CI and skips it elsewhere
// (call as: if (!hearth::test::require_file(p)) GTEST_SKIP() << p;).
bool require_file(const std::string& path);

nlohmann::json read_json(const std::string& path);
std::string hex_to_bytes(const std::string& hex);
std::string read_file_bytes(const std::string& path);
// Directory for build outputs (hearth-run and friends live in <binary dir>/tools).
std::string binary_dir();

}  // namespace hearth::test
