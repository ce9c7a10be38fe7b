#include "test-util.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hearth::test {

std::string shared_dir() {
    const char* env = std::getenv("HEARTH_SHARED");
    return env && *env ? std::string(env) : std::string(HEARTH_SHARED_DEFAULT);
}

std::string model_path(const std::string& file) { return shared_dir() + "/models/" + file; }

std::string reference_path(const std::string& file) { return shared_dir() + "/reference/visible/" + file; }

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

bool require_file(const std::string& path) {
    if (std::filesystem::exists(path)) return true;
    if (in_ci()) ADD_FAILURE() << "missing test data (required under CI): " << path;
    return false;
}

std::string read_file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file_bytes(path)); }

std::string hex_to_bytes(const std::string& hex) {
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

std::string binary_dir() { return HEARTH_BINARY_DIR; }

}  // namespace hearth::test
