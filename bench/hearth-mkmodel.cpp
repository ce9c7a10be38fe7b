// hearth-mkmodel: writes a random-weight GGUF with a real model's exact shape and llama.cpp's
// tensor-type mix, so benchmarks run on the bytes a real download would have.
#include "mkmodel.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    std::string out, type_name = "q8_0", shape_name = "smollm2-135m";
    uint64_t seed = 1;
    CLI::App app{"hearth-mkmodel: write a random-weight GGUF model of a real model's shape"};
    app.add_option("--out", out, "output GGUF file")->required();
    app.add_option("--type", type_name, "q8_0, q4_0, q4_k_m, f16 or f32 (llama-quantize's tensor mix)")->capture_default_str();
    app.add_option("--shape", shape_name, "smollm2-135m or tiny")->capture_default_str();
    app.add_option("--seed", seed, "random seed")->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "hearth-mkmodel: %s (see --help)\n", e.what());
        return 2;
    }
    try {
        const auto shape = hearth::bench::shape_by_name(shape_name);
        const auto ftype = hearth::bench::ftype_by_name(type_name);
        const auto t0 = std::chrono::steady_clock::now();
        const auto rep = hearth::bench::write_model(out, shape, ftype, seed);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::string mix;
        for (auto& [name, n] : rep.type_counts) mix += (mix.empty() ? "" : ", ") + name + " x" + std::to_string(n);
        std::printf("hearth-mkmodel: wrote %s (%s, %s, %.1f MiB) in %.1f s; tensors: %s\n", out.c_str(), shape_name.c_str(),
                    type_name.c_str(), rep.file_bytes / 1048576.0, secs, mix.c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth-mkmodel: %s\n", e.what());
        return 1;
    }
}
