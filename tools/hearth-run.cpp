// hearth-run: runs a GGUF model locally. Streams a continuation, or prints JSON for scripts and
// tests (tokens, top logits per position, model info). See README.md for every flag.
#include "chat-template.h"
#include "context.h"
#include "gguf.h"
#include "model.h"
#include "quants.h"
#include "sampler.h"
#include "vocab.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using hearth::token_id;
using json = nlohmann::json;

struct options {
    std::string model_path;
    std::string prompt;
    std::string prompt_file;
    std::string prompt_tokens;
    std::string system;
    std::string chat_template;
    int32_t n_predict = 128;
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int32_t repeat_last_n = 64;
    int64_t seed = -1;
    int32_t threads = 0;
    int32_t n_ctx = 0;
    int32_t top_logits = 0;
    bool chat = false;
    bool json_out = false;
    bool tokenize = false;
    bool no_bos = false;
    bool no_parse_special = false;
    bool info = false;
    bool exact = false;
    bool show_special = false;
};

class run_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::string read_file_exact(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw run_error("cannot read prompt file '" + path + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<token_id> parse_token_list(const std::string& text, int32_t n_vocab) {
    std::vector<token_id> ids;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        size_t used = 0;
        long v = 0;
        try {
            v = std::stol(item, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != item.size()) throw run_error("--prompt-tokens: '" + item + "' is not a token id");
        if (v < 0 || v >= n_vocab) throw run_error("--prompt-tokens: token " + item + " is outside the vocabulary (0.." + std::to_string(n_vocab - 1) + ")");
        ids.push_back(static_cast<token_id>(v));
    }
    if (ids.empty()) throw run_error("--prompt-tokens: no token ids given");
    return ids;
}

// Length of the longest prefix of s that does not end inside a UTF-8 sequence, so streamed
// output never splits a character.
size_t utf8_complete_prefix(const std::string& s) {
    size_t n = s.size();
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const unsigned char c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
        return back < need ? n - back : n;
    }
    return n;
}

std::string to_hex(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void print_info(const hearth::model& m, bool as_json) {
    const hearth::model_hparams& hp = m.hparams();
    const hearth::vocab& v = m.vocab();
    auto tmpl_src = m.chat_template_source();
    std::string tmpl = "none";
    if (tmpl_src) {
        auto kind = hearth::chat_template_detect(*tmpl_src);
        tmpl = kind ? std::string(hearth::chat_template_name(*kind)) : "unrecognised";
    }
    if (as_json) {
        json types = json::object();
        for (auto& [name, bytes] : m.tensor_type_bytes()) types[name] = bytes;
        json j = {{"path", m.file().path()}, {"architecture", hp.arch_name}, {"name", hp.name}, {"file_bytes", m.file().file_size()},
                  {"gguf_version", m.file().version()}, {"n_vocab", hp.n_vocab}, {"n_ctx_train", hp.n_ctx_train}, {"n_embd", hp.n_embd},
                  {"n_layer", hp.n_layer}, {"n_head", hp.n_head}, {"n_head_kv", hp.n_head_kv}, {"head_dim", hp.head_dim},
                  {"n_ff", hp.n_ff}, {"rope_freq_base", hp.rope_freq_base}, {"rope_neox", hp.rope_neox}, {"rms_eps", hp.rms_eps},
                  {"tied_output", hp.tied_output}, {"tensor_bytes", types}, {"weight_bytes_per_token", m.weight_bytes()},
                  {"vocab_type", v.kind() == hearth::vocab_kind::spm ? "spm" : "bpe"}, {"tokenizer_pre", std::string(v.pre_name())},
                  {"bos", v.bos()}, {"eos", v.eos()}, {"add_bos", v.add_bos()}, {"chat_template", tmpl},
                  {"simd", hearth::quants_kernels_name()}};
        std::cout << dump_json(j) << "\n";
        return;
    }
    std::printf("file:          %s (%.1f MiB, GGUF v%u)\n", m.file().path().c_str(), m.file().file_size() / 1048576.0, m.file().version());
    std::printf("architecture:  %s%s%s\n", hp.arch_name.c_str(), hp.name.empty() ? "" : ", name: ", hp.name.c_str());
    std::printf("dimensions:    embd %d, layers %d, heads %d (kv %d, dim %d), ffn %d, context %d\n", hp.n_embd, hp.n_layer, hp.n_head,
                hp.n_head_kv, hp.head_dim, hp.n_ff, hp.n_ctx_train);
    std::printf("rope:          %s, base %g, scale %g; rms eps %g; output %s\n", hp.rope_neox ? "neox" : "normal", hp.rope_freq_base,
                hp.rope_freq_scale, hp.rms_eps, hp.tied_output ? "tied to token_embd" : "separate");
    for (auto& [name, bytes] : m.tensor_type_bytes()) std::printf("tensors:       %-5s %.2f MiB\n", name.c_str(), bytes / 1048576.0);
    std::printf("vocabulary:    %d tokens, %s (pre %s), bos %d, eos %d, add_bos %s\n", hp.n_vocab,
                v.kind() == hearth::vocab_kind::spm ? "SentencePiece" : "byte-level BPE", std::string(v.pre_name()).c_str(), v.bos(), v.eos(),
                v.add_bos() ? "yes" : "no");
    std::printf("chat template: %s\n", tmpl.c_str());
    std::printf("kernels:       %s\n", hearth::quants_kernels_name());
}

int run_tokenize(const options& o, const std::string& prompt) {
    auto file = hearth::gguf_file::open(o.model_path);
    auto v = hearth::vocab::from_gguf(*file);
    std::vector<token_id> ids = v->tokenize(prompt, !o.no_bos, !o.no_parse_special);
    json pieces = json::array();
    json pieces_hex = json::array();
    for (token_id id : ids) {
        std::string p = v->token_to_piece(id, true);
        pieces.push_back(p);
        pieces_hex.push_back(to_hex(p));
    }
    if (o.json_out) {
        std::cout << dump_json(json{{"tokens", ids}, {"pieces", pieces}, {"pieces_hex", pieces_hex}}) << "\n";
    } else {
        for (size_t i = 0; i < ids.size(); ++i) std::cout << ids[i] << "\t" << dump_json(pieces[i]) << "\n";
    }
    return 0;
}

std::string render_chat(const hearth::model& m, const options& o, const std::string& prompt) {
    hearth::chat_template_kind kind = hearth::chat_template_kind::chatml;
    if (!o.chat_template.empty()) {
        auto k = hearth::chat_template_from_name(o.chat_template);
        if (!k) throw run_error("--chat-template: unknown template '" + o.chat_template + "' (chatml, llama2, llama3, zephyr, mistral)");
        kind = *k;
    } else if (auto src = m.chat_template_source()) {
        auto k = hearth::chat_template_detect(*src);
        if (k) kind = *k;
        else std::fprintf(stderr, "hearth-run: warning: the model's chat template is not one hearth knows; using ChatML (override with --chat-template)\n");
    } else {
        std::fprintf(stderr, "hearth-run: warning: the model has no chat template; using ChatML (override with --chat-template)\n");
    }
    std::vector<hearth::chat_message> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    msgs.push_back({"user", prompt});
    const hearth::vocab& v = m.vocab();
    const std::string bos = v.bos() >= 0 ? v.text_of(v.bos()) : "";
    const std::string eos = v.eos() >= 0 ? v.text_of(v.eos()) : "";
    return hearth::chat_template_apply(kind, msgs, true, bos, eos);
}

json top_logits_json(const float* logits, int32_t n_vocab, int32_t k, int32_t pos, token_id token) {
    std::vector<int32_t> idx(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) idx[static_cast<size_t>(i)] = i;
    const int32_t kk = std::min(k, n_vocab);
    std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), [&](int32_t a, int32_t b) {
        return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    float max = logits[idx[0]];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
    json top = json::array();
    for (int32_t i = 0; i < kk; ++i) top.push_back(json::array({idx[static_cast<size_t>(i)], logits[idx[static_cast<size_t>(i)]]}));
    return json{{"pos", pos}, {"token", token}, {"top", top}, {"logsumexp", max + std::log(sum)}};
}

int run_generate(const options& o, const std::string& prompt_text) {
    hearth::model_params mp;
    mp.exact = o.exact;
    auto m = hearth::model::load(o.model_path, mp);
    if (o.info) {
        print_info(*m, o.json_out);
        return 0;
    }
    const hearth::vocab& v = m->vocab();
    const int32_t n_vocab = m->hparams().n_vocab;

    std::vector<token_id> prompt;
    if (!o.prompt_tokens.empty()) {
        prompt = parse_token_list(o.prompt_tokens, n_vocab);
    } else {
        const std::string text = o.chat ? render_chat(*m, o, prompt_text) : prompt_text;
        prompt = v.tokenize(text, !o.no_bos, !o.no_parse_special);
    }
    if (prompt.empty()) throw run_error("the prompt is empty (give -p TEXT, -f FILE or --prompt-tokens)");

    hearth::context_params cp;
    cp.n_threads = o.threads;
    cp.n_ctx = o.n_ctx > 0 ? o.n_ctx : std::min(m->hparams().n_ctx_train, 4096);
    // The last generated token is printed, never evaluated: it needs no position.
    const int64_t positions = static_cast<int64_t>(prompt.size()) + std::max(0, o.n_predict - 1);
    if (positions > cp.n_ctx) {
        throw run_error("prompt (" + std::to_string(prompt.size()) + " tokens) plus -n " + std::to_string(o.n_predict) +
                        " exceeds the context of " + std::to_string(cp.n_ctx) + " (raise -c; the model was trained on " +
                        std::to_string(m->hparams().n_ctx_train) + ")");
    }
    if (cp.n_ctx > m->hparams().n_ctx_train) {
        std::fprintf(stderr, "hearth-run: warning: -c %d is beyond the %d positions the model was trained on; quality may drop\n", cp.n_ctx,
                     m->hparams().n_ctx_train);
    }
    hearth::context ctx(*m, cp);

    hearth::sampler_params sp;
    sp.temperature = o.temperature;
    sp.top_k = o.top_k;
    sp.top_p = o.top_p;
    sp.min_p = o.min_p;
    sp.repeat_penalty = o.repeat_penalty;
    sp.repeat_last_n = o.repeat_last_n;
    sp.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
    hearth::sampler smp(sp);
    for (token_id t : prompt) smp.accept(t);

    using clock = std::chrono::steady_clock;
    hearth::batch b;
    for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
    const auto t0 = clock::now();
    ctx.decode(b);
    const auto t1 = clock::now();

    std::vector<token_id> out;
    std::string text, pending;
    double decode_s = 0.0;
    int32_t n_decode = 0;
    const float* logits = ctx.logits(b.size() - 1);
    for (int32_t i = 0; i < o.n_predict; ++i) {
        const token_id tok = smp.sample(logits, n_vocab);
        if (tok < 0 || v.is_eog(tok)) break;
        out.push_back(tok);
        smp.accept(tok);
        const std::string piece = v.token_to_piece(tok, o.show_special);
        text += piece;
        if (!o.json_out) {
            pending += piece;
            const size_t n = utf8_complete_prefix(pending);
            std::fwrite(pending.data(), 1, n, stdout);
            std::fflush(stdout);
            pending.erase(0, n);
        }
        if (i + 1 == o.n_predict) break;
        b.clear();
        b.add(tok, static_cast<int32_t>(prompt.size() + out.size() - 1), 0, true);
        const auto d0 = clock::now();
        ctx.decode(b);
        decode_s += std::chrono::duration<double>(clock::now() - d0).count();
        ++n_decode;
        logits = ctx.logits(0);
    }
    const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
    const double prefill_tps = prefill_s > 0 ? prompt.size() / prefill_s : 0.0;
    const double decode_tps = decode_s > 0 ? n_decode / decode_s : 0.0;

    if (!o.json_out) {
        std::fwrite(pending.data(), 1, pending.size(), stdout);
        std::printf("\n");
        std::fflush(stdout);
        std::fprintf(stderr, "hearth-run: prompt %zu tokens, %.1f tok/s; generated %zu tokens, %.1f tok/s (%d threads, %s, seed %llu)\n",
                     prompt.size(), prefill_tps, out.size(), decode_tps, ctx.n_threads(), hearth::quants_kernels_name(),
                     static_cast<unsigned long long>(sp.seed));
        return 0;
    }

    json j = {{"prompt_tokens", prompt}, {"tokens", out}, {"text", text}, {"text_hex", to_hex(text)},
              {"prefill_tps", prefill_tps}, {"decode_tps", decode_tps}, {"seed", sp.seed}};
    if (o.top_logits > 0) {
        // Teacher-forced: a fresh context evaluates prompt + generated tokens in one batch.
        std::vector<token_id> seq = prompt;
        seq.insert(seq.end(), out.begin(), out.end());
        hearth::context_params cp2 = cp;
        cp2.n_ctx = std::max<int32_t>(cp.n_ctx, static_cast<int32_t>(seq.size()));
        hearth::context tf(*m, cp2);
        hearth::batch all;
        for (size_t i = 0; i < seq.size(); ++i) all.add(seq[i], static_cast<int32_t>(i), 0, true);
        tf.decode(all);
        json positions = json::array();
        for (size_t i = 0; i < seq.size(); ++i) positions.push_back(top_logits_json(tf.logits(i), n_vocab, o.top_logits, static_cast<int32_t>(i), seq[i]));
        j["positions"] = positions;
    }
    std::cout << dump_json(j) << "\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"hearth-run: run a GGUF model (llama, qwen2) on this machine"};
    app.add_option("-m,--model", o.model_path, "GGUF model file")->required();
    app.add_option("-p,--prompt", o.prompt, "prompt text");
    app.add_option("-f,--file", o.prompt_file, "read the prompt from FILE (exact bytes)");
    app.add_option("--prompt-tokens", o.prompt_tokens, "the prompt as comma-separated token ids");
    app.add_option("-n,--n-predict", o.n_predict, "tokens to generate (0: none)")->capture_default_str()->check(CLI::Range(0, 1 << 20));
    app.add_option("--temp", o.temperature, "temperature; 0 = greedy")->capture_default_str()->check(CLI::Range(0.0, 100.0));
    app.add_option("--top-k", o.top_k, "top-k (0: off)")->capture_default_str()->check(CLI::Range(0, 1 << 24));
    app.add_option("--top-p", o.top_p, "top-p (1: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
    app.add_option("--min-p", o.min_p, "min-p (0: off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
    app.add_option("--repeat-penalty", o.repeat_penalty, "repetition penalty (1: off)")->capture_default_str()->check(CLI::Range(0.0, 10.0));
    app.add_option("--repeat-last-n", o.repeat_last_n, "tokens the penalty looks back over")->capture_default_str()->check(CLI::Range(0, 1 << 20));
    app.add_option("-s,--seed", o.seed, "random seed (default: random; printed on stderr)");
    app.add_option("-t,--threads", o.threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
    app.add_option("-c,--ctx-size", o.n_ctx, "context size (default: the model's, at most 4096)")->check(CLI::Range(0, 1 << 20));
    app.add_flag("--chat", o.chat, "render -p as one user message with the model's chat template");
    app.add_option("--system", o.system, "system message for --chat");
    app.add_option("--chat-template", o.chat_template, "override the template: chatml, llama2, llama3, zephyr, mistral");
    app.add_flag("--json", o.json_out, "print one JSON object instead of streaming text");
    app.add_flag("--tokenize", o.tokenize, "print the prompt's tokens and pieces (works on vocabulary-only files)");
    app.add_flag("--no-bos", o.no_bos, "add no BOS/EOS to the prompt");
    app.add_flag("--no-parse-special", o.no_parse_special, "treat special-token text in the prompt as plain text");
    app.add_option("--top-logits", o.top_logits, "with --json: top K logits at every position, teacher-forced")->check(CLI::Range(0, 1 << 20));
    app.add_flag("--info", o.info, "describe the model and exit");
    app.add_flag("--exact", o.exact, "F32 weights, activations and KV cache (slow; for checks)");
    app.add_flag("--special", o.show_special, "print control tokens the model generates");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "hearth-run: %s (see --help)\n", e.what());
        return 2;
    }
    int sources = (!o.prompt.empty() ? 1 : 0) + (!o.prompt_file.empty() ? 1 : 0) + (!o.prompt_tokens.empty() ? 1 : 0);
    if (sources > 1) {
        std::fprintf(stderr, "hearth-run: give only one of -p, -f and --prompt-tokens\n");
        return 2;
    }
    if (o.top_logits > 0 && !o.json_out) {
        std::fprintf(stderr, "hearth-run: --top-logits needs --json\n");
        return 2;
    }
    if (o.tokenize && !o.prompt_tokens.empty()) {
        std::fprintf(stderr, "hearth-run: --tokenize takes -p or -f, not --prompt-tokens\n");
        return 2;
    }
    try {
        std::string prompt = o.prompt_file.empty() ? o.prompt : read_file_exact(o.prompt_file);
        if (o.tokenize) return run_tokenize(o, prompt);
        if (!o.info && sources == 0) {
            std::fprintf(stderr, "hearth-run: no prompt (give -p TEXT, -f FILE or --prompt-tokens)\n");
            return 2;
        }
        return run_generate(o, prompt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth-run: %s\n", e.what());
        return 1;
    }
}
