// Helpers shared by the tests: where ../shared is, and reading its JSON references.
#pragma once

#include "gguf-writer.h"
#include "gguf.h"

#include <nlohmann/json.hpp>

#include <functional>
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
// Copies a GGUF file's metadata and tensors to dst. arch_override, when set, replaces
// general.architecture. tensor_override may write a tensor itself (returning true), e.g. in
// another type; otherwise the tensor is copied as it is.
void copy_gguf(const std::string& src, const std::string& dst, const std::string& arch_override = "",
               const std::function<bool(hearth::gguf_writer&, const hearth::gguf_tensor&)>& tensor_override = nullptr);

// Directory for build outputs (hearth-run and friends live in <binary dir>/tools).
std::string binary_dir();

}  // namespace hearth::test
