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

void copy_gguf(const std::string& src, const std::string& dst, const std::string& arch_override,
               const std::function<bool(hearth::gguf_writer&, const hearth::gguf_tensor&)>& tensor_override) {
    auto f = hearth::gguf_file::open(src);
    hearth::gguf_writer w;
    using vt = hearth::gguf_value_type;
    for (const hearth::gguf_kv& kv : f->metadata()) {
        const std::string key(kv.key);
        if (key == "general.alignment") continue;
        switch (kv.type) {
            case vt::string: w.set_string(key, key == "general.architecture" && !arch_override.empty() ? arch_override : std::string(kv.str)); break;
            case vt::uint32: w.set_u32(key, static_cast<uint32_t>(kv.u64)); break;
            case vt::int32: w.set_i32(key, static_cast<int32_t>(kv.i64)); break;
            case vt::float32: w.set_f32(key, static_cast<float>(kv.f64)); break;
            case vt::boolean: w.set_bool(key, kv.boolean); break;
            case vt::uint64: w.set_u64(key, kv.u64); break;
            case vt::array:
                if (kv.array_type == vt::string) w.set_string_array(key, std::vector<std::string>(kv.strings.begin(), kv.strings.end()));
                else w.set_array(key, kv.array_type, kv.array_data, kv.array_count);
                break;
            default: throw std::runtime_error("copy_gguf: unexpected metadata type in " + key);
        }
    }
    for (const hearth::gguf_tensor& t : f->tensors()) {
        if (tensor_override && tensor_override(w, t)) continue;
        w.add_tensor(std::string(t.name), t.type, t.ne, t.data, t.nbytes);
    }
    w.write(dst);
}

}  // namespace hearth::test
