// bench-grammar: what grammar-constrained decoding costs per token against one decode step. Runs
// hearth-cmd greedily on utterances of hearth-cmd-visible.jsonl under the JSON schema of every
// device/action of hearth-cmd-devices.json (plus unsupported), timing the token mask
// (grammar_matcher::allowed) and the model's single-token decode step at every step; prints the
// medians, their ratio (target: mask < 10% of a step) and the exact-match accuracy it got.
#include "context.h"
#include "gguf.h"
#include "grammar.h"
#include "model.h"
#include "sampler.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::ordered_json;
using bench_clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// One oneOf alternative per device and action, args as the devices file describes them.
std::string command_schema(const json& devices) {
    json alts = json::array();
    for (const auto& d : devices["devices"]) {
        for (const auto& a : d["actions"]) {
            json props = {{"device", {{"const", d["id"]}}}, {"action", {{"const", a}}}};
            json required = {"device", "action"};
            const std::string action = a.get<std::string>();
            if (devices["action_args"].contains(action)) {
                json args_props = json::object();
                json args_required = json::array();
                for (const auto& [name, spec] : devices["action_args"][action].items()) {
                    json s = {{"type", spec["type"]}, {"minimum", spec["min"]}, {"maximum", spec["max"]}};
                    if (spec.contains("step")) s["multipleOf"] = spec["step"];
                    args_props[name] = s;
                    args_required.push_back(name);
                }
                props["args"] = {{"type", "object"}, {"properties", args_props}, {"required", args_required}};
                required.push_back("args");
            }
            alts.push_back({{"type", "object"}, {"properties", props}, {"required", required}});
        }
    }
    alts.push_back({{"type", "object"}, {"properties", {{"error", {{"const", "unsupported"}}}}}, {"required", {"error"}}});
    return json{{"oneOf", alts}}.dump();
}

std::string default_shared() {
    const char* env = std::getenv("HEARTH_SHARED");
    return env && *env ? env : "../shared";
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"grammar mask cost against a decode step (hearth-cmd)"};
    std::string shared = default_shared();
    std::string model_file;
    int n_utterances = 100;
    int threads = 0;
    bool print_schema = false;
    app.add_option("--shared", shared, "the shared data directory (models/ inside)");
    app.add_option("--model", model_file, "model file (default <shared>/models/hearth-cmd-q8_0.gguf)");
    app.add_option("-n", n_utterances, "utterances to run");
    app.add_option("-t,--threads", threads, "decode threads (0: default)");
    app.add_flag("--print-schema", print_schema, "print the command schema built from the devices file and exit");
    CLI11_PARSE(app, argc, argv);
    if (model_file.empty()) model_file = shared + "/models/hearth-cmd-q8_0.gguf";

    try {
        std::ifstream df(shared + "/models/hearth-cmd-devices.json");
        if (!df) throw std::runtime_error("cannot open " + shared + "/models/hearth-cmd-devices.json");
        const json devices = json::parse(df);
        const std::string schema = command_schema(devices);
        if (print_schema) {
            std::printf("%s\n", schema.c_str());
            return 0;
        }
        const auto t_compile0 = bench_clock::now();
        auto g = hearth::grammar_from_json_schema(schema);
        const double compile_ms = std::chrono::duration<double, std::milli>(bench_clock::now() - t_compile0).count();

        auto m = hearth::model::load(model_file);
        const hearth::vocab& v = m->vocab();
        const int32_t n_vocab = m->hparams().n_vocab;
        const auto t_vocab0 = bench_clock::now();
        auto gv = hearth::grammar_vocab::get(v);
        const double vocab_ms = std::chrono::duration<double, std::milli>(bench_clock::now() - t_vocab0).count();

        hearth::context_params cp;
        cp.n_threads = threads;
        hearth::context ctx(*m, cp);
        hearth::sampler_params sp;
        sp.temperature = 0.0f;
        hearth::sampler smp(sp);
        hearth::grammar_matcher gm(g, gv);

        std::ifstream data(shared + "/models/hearth-cmd-visible.jsonl");
        if (!data) throw std::runtime_error("cannot open " + shared + "/models/hearth-cmd-visible.jsonl");
        std::vector<double> mask_us, decode_us;
        int run = 0, exact = 0, complete = 0;
        std::vector<bool> mask;
        std::string line;
        while (run < n_utterances && std::getline(data, line)) {
            const json item = json::parse(line);
            std::string prompt = "<|im_start|>user\n";
            prompt.append(item["text"].get<std::string>()).append("<|im_end|>\n<|im_start|>assistant\n");
            const auto toks = v.tokenize(prompt, true, true);
            ctx.seq_clear(0);
            gm.reset();
            hearth::batch b;
            for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, i + 1 == toks.size());
            ctx.decode(b);
            const float* logits = ctx.logits(b.size() - 1);
            std::string out;
            auto pos = static_cast<int32_t>(toks.size());
            for (int step = 0; step < 128 && pos < ctx.n_ctx(); ++step) {
                const auto t0 = bench_clock::now();
                gm.allowed(mask);
                const auto t1 = bench_clock::now();
                mask_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                const hearth::token_id t = smp.sample(logits, n_vocab, &mask);
                if (t < 0) break;
                if (v.is_eog(t)) {
                    complete += gm.complete();
                    break;
                }
                gm.accept(t);
                out += v.token_to_piece(t);
                b.clear();
                b.add(t, pos++, 0, true);
                const auto d0 = bench_clock::now();
                ctx.decode(b);
                decode_us.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() - d0).count());
                logits = ctx.logits(0);
            }
            exact += out == item["command"].dump();
            ++run;
        }
        const double mm = median(mask_us), dm = median(decode_us);
        std::printf("schema: %zu bytes -> %zu rules, %zu elements, compiled in %.2f ms; vocab trie %zu nodes built in %.2f ms\n", schema.size(),
                    g->n_rules(), g->n_elements(), compile_ms, gv->nodes().size(), vocab_ms);
        std::printf("%d utterances, %zu mask computations, %zu decode steps (%d threads)\n", run, mask_us.size(), decode_us.size(), ctx.n_threads());
        double mask_mean = 0.0;
        for (double x : mask_us) mask_mean += x / static_cast<double>(mask_us.size());
        std::printf("mask:   median %.2f us  mean %.2f us  p90 %.2f us  max %.2f us\n", mm, mask_mean, percentile(mask_us, 0.9), percentile(mask_us, 1.0));
        const size_t worst = static_cast<size_t>(std::max_element(mask_us.begin(), mask_us.end()) - mask_us.begin());
        std::printf("        (slowest: mask #%zu; a mask in states not seen before fills the matcher's transition cache)\n", worst);
        std::printf("decode: median %.2f us  p90 %.2f us\n", dm, percentile(decode_us, 0.9));
        std::printf("ratio:  mask / decode step = %.2f%% (target < 10%%)\n", dm > 0 ? 100.0 * mm / dm : 0.0);
        std::printf("constrained greedy: %d/%d exact matches, %d ended with the grammar complete\n", exact, run, complete);
        // The worst case for the trie walk: inside a free string nearly every token is allowed.
        hearth::grammar_matcher free_text(hearth::grammar_from_json_schema(R"({"type":"object","properties":{"text":{"type":"string"}}})"), gv);
        free_text.accept_bytes(R"({"text":")");
        std::vector<double> free_us;
        size_t n_allowed = 0;
        for (int i = 0; i < 500; ++i) {
            const auto t0 = bench_clock::now();
            free_text.allowed(mask);
            free_us.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() - t0).count());
        }
        for (bool a : mask) n_allowed += a;
        std::printf("inside a free string (%zu of %d tokens allowed): mask median %.2f us = %.2f%% of a decode step\n", n_allowed, n_vocab,
                    median(free_us), dm > 0 ? 100.0 * median(free_us) / dm : 0.0);
        // The same worst case on a large vocabulary (GPT-2's 50257 tokens), when the file is there.
        const std::string big = shared + "/models/ggml-vocab-gpt-2.gguf";
        if (std::ifstream(big)) {
            auto file = hearth::gguf_file::open(big);
            auto bv = hearth::vocab::from_gguf(*file);
            const auto tb0 = bench_clock::now();
            auto bgv = hearth::grammar_vocab::get(*bv);
            const double build_ms = std::chrono::duration<double, std::milli>(bench_clock::now() - tb0).count();
            hearth::grammar_matcher big_text(hearth::grammar_from_json_schema(R"({"type":"object","properties":{"text":{"type":"string"}}})"), bgv);
            big_text.accept_bytes(R"({"text":")");
            std::vector<double> big_us;
            for (int i = 0; i < 50; ++i) {
                const auto t0 = bench_clock::now();
                big_text.allowed(mask);
                big_us.push_back(std::chrono::duration<double, std::micro>(bench_clock::now() - t0).count());
            }
            size_t big_allowed = 0;
            for (bool a : mask) big_allowed += a;
            std::printf("gpt-2 vocabulary (%d tokens, trie %zu nodes built in %.1f ms), free string: %zu allowed, mask first %.0f us, median %.0f us\n",
                        bv->n_tokens(), bgv->nodes().size(), build_ms, big_allowed, big_us.front(), median(big_us));
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-grammar: %s\n", e.what());
        return 1;
    }
}
