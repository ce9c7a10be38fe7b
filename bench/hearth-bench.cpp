// hearth-bench: how close decoding comes to the memory-bandwidth roofline. Measures in one run,
// per thread count: the machine's read bandwidth, prompt processing (one batch of N tokens) and
// decoding (one token per decode), then decode_tps * weight_bytes / bandwidth.
#include "context.h"
#include "model.h"
#include "quants.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define HEARTH_BENCH_X86 1
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---- memory read bandwidth ------------------------------------------------------------------

float sum_scalar(const float* p, size_t n) {
    // Eight independent sums so the adds pipeline and the loop is limited by loads, not latency.
    float s[8] = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; ++k) s[k] += p[i + static_cast<size_t>(k)];
    }
    for (; i < n; ++i) s[0] += p[i];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

#ifdef HEARTH_BENCH_X86
__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float s = 0.0f;
    for (float l : lanes) s += l;
    return s + sum_scalar(p + i, n - i);
}
#endif

struct aligned_free {
    void operator()(float* p) const { std::free(p); }
};

// A STREAM-like read test: sum an array far larger than the caches; best of `passes`.
class bandwidth_probe {
public:
    explicit bandwidth_probe(size_t bytes) : n_(bytes / sizeof(float) / 64 * 64) {
        data_.reset(static_cast<float*>(std::aligned_alloc(64, n_ * sizeof(float))));
        if (!data_) throw std::runtime_error("cannot allocate the bandwidth test array");
#ifdef HEARTH_BENCH_X86
        use_avx2_ = __builtin_cpu_supports("avx2");
#endif
        float* p = data_.get();
        const int64_t n = static_cast<int64_t>(n_);
        // First touch by every thread, so the pages are spread as the readers will use them.
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i & 1023) * 1e-3f;
    }

    double measure_gbs(int threads, int passes) const {
        double best = 0.0;
        const float* p = data_.get();
        for (int pass = 0; pass < passes; ++pass) {
            double total = 0.0;
            const auto t0 = clock_type::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
            {
                const size_t nt = static_cast<size_t>(omp_get_num_threads());
                const size_t id = static_cast<size_t>(omp_get_thread_num());
                const size_t chunk = (n_ / nt) / 64 * 64;
                const size_t begin = id * chunk;
                const size_t end = id + 1 == nt ? n_ : begin + chunk;
#ifdef HEARTH_BENCH_X86
                total += use_avx2_ ? sum_avx2(p + begin, end - begin) : sum_scalar(p + begin, end - begin);
#else
                total += sum_scalar(p + begin, end - begin);
#endif
            }
            const double s = seconds_since(t0);
            sink_ += total;  // keeps the sums observable
            best = std::max(best, static_cast<double>(n_ * sizeof(float)) / s / 1e9);
        }
        return best;
    }

private:
    size_t n_;
    std::unique_ptr<float, aligned_free> data_;
    bool use_avx2_ = false;
    mutable double sink_ = 0.0;
};

// ---- model timings --------------------------------------------------------------------------

struct run_result {
    int threads = 0;
    double bandwidth_gbs = 0.0;
    std::vector<double> pp_tps_all;
    std::vector<double> tg_tps_all;
    double pp_tps = 0.0;
    double tg_tps = 0.0;
    double roofline_tps = 0.0;
    double roofline_ratio = 0.0;
    double pp_tg_ratio = 0.0;
};

struct options {
    std::string model_path;
    int threads = 0;
    int n_prompt = 128;
    int n_gen = 64;
    int reps = 5;
    int tg_prompt = 16;
    double mem_gib = 1.0;
    bool json_out = false;
};

std::vector<hearth::token_id> random_tokens(std::mt19937& rng, int n, int32_t n_vocab) {
    std::uniform_int_distribution<hearth::token_id> dist(0, n_vocab - 1);
    std::vector<hearth::token_id> t(static_cast<size_t>(n));
    for (auto& x : t) x = dist(rng);
    return t;
}

// One prompt of n_prompt tokens in a single decode (logits for the last token only, as llama-bench's pp).
double time_prompt(hearth::context& ctx, const std::vector<hearth::token_id>& prompt) {
    ctx.seq_clear(0);
    hearth::batch b;
    for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
    const auto t0 = clock_type::now();
    ctx.decode(b);
    return static_cast<double>(prompt.size()) / seconds_since(t0);
}

// After an untimed short prompt, n_gen decodes of one token each (logits every time).
double time_generation(hearth::context& ctx, const std::vector<hearth::token_id>& prompt, const std::vector<hearth::token_id>& gen) {
    ctx.seq_clear(0);
    hearth::batch b;
    for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
    ctx.decode(b);
    int32_t pos = static_cast<int32_t>(prompt.size());
    const auto t0 = clock_type::now();
    for (hearth::token_id t : gen) {
        b.clear();
        b.add(t, pos++, 0, true);
        ctx.decode(b);
    }
    return static_cast<double>(gen.size()) / seconds_since(t0);
}

run_result run_threads(const hearth::model& m, const bandwidth_probe& probe, const options& o, int threads) {
    run_result r;
    r.threads = threads;
    r.bandwidth_gbs = probe.measure_gbs(threads, 5);

    hearth::context_params cp;
    cp.n_threads = threads;
    cp.adapt_threads = false;  // measure exactly this many threads, even on a busy machine
    cp.n_ctx = std::max(o.n_prompt, o.tg_prompt + o.n_gen);
    cp.n_batch = std::max(512, o.n_prompt);
    hearth::context ctx(m, cp);
    std::mt19937 rng(1234);
    const int32_t n_vocab = m.hparams().n_vocab;
    const auto prompt = random_tokens(rng, o.n_prompt, n_vocab);
    const auto short_prompt = random_tokens(rng, o.tg_prompt, n_vocab);
    const auto gen = random_tokens(rng, o.n_gen, n_vocab);

    time_prompt(ctx, prompt);  // warm-up: page in the weights, grow the scratch
    for (int i = 0; i < o.reps; ++i) r.pp_tps_all.push_back(time_prompt(ctx, prompt));
    time_generation(ctx, short_prompt, gen);
    for (int i = 0; i < o.reps; ++i) r.tg_tps_all.push_back(time_generation(ctx, short_prompt, gen));
    r.pp_tps = median(r.pp_tps_all);
    r.tg_tps = median(r.tg_tps_all);
    const double wb = static_cast<double>(m.weight_bytes());
    r.roofline_tps = r.bandwidth_gbs * 1e9 / wb;
    r.roofline_ratio = r.tg_tps / r.roofline_tps;
    r.pp_tg_ratio = r.tg_tps > 0 ? r.pp_tps / r.tg_tps : 0.0;
    return r;
}

// From /proc/loadavg: the 1-minute load average and the tasks running now, this one included
// (-1 where unknown). Timings taken while other work runs are not comparable.
struct machine_load {
    double avg1 = -1.0;
    int running = -1;
};

machine_load read_load() {
    machine_load l;
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return l;
    double a5 = 0, a15 = 0;
    int total = 0;
    if (std::fscanf(f, "%lf %lf %lf %d/%d", &l.avg1, &a5, &a15, &l.running, &total) != 5) l = {};
    std::fclose(f);
    return l;
}

const char* verdict(bool ok) { return ok ? "PASS" : "FAIL"; }

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"hearth-bench: memory bandwidth, prompt and decode speed, and the decode roofline ratio"};
    app.add_option("-m,--model", o.model_path, "GGUF model file")->required();
    app.add_option("-t,--threads", o.threads, "threads (default: run 1 and 2)")->check(CLI::Range(1, 1024));
    app.add_option("-p,--n-prompt", o.n_prompt, "prompt tokens, evaluated in one decode")->capture_default_str()->check(CLI::Range(1, 8192));
    app.add_option("-n,--n-gen", o.n_gen, "tokens decoded one at a time")->capture_default_str()->check(CLI::Range(1, 8192));
    app.add_option("-r,--reps", o.reps, "timed repetitions (median reported), after one warm-up")->capture_default_str()->check(CLI::Range(1, 1000));
    app.add_option("--mem-gib", o.mem_gib, "size of the bandwidth test array in GiB")->capture_default_str()->check(CLI::Range(0.01, 64.0));
    app.add_flag("--json", o.json_out, "print one JSON object");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "hearth-bench: %s (see --help)\n", e.what());
        return 2;
    }

    try {
        // Read first: OpenMP's worker threads spin for a while after each parallel region.
        const machine_load load_before = read_load();
        auto m = hearth::model::load(o.model_path);
        const auto& hp = m->hparams();
        const std::vector<int> thread_counts = o.threads > 0 ? std::vector<int>{o.threads} : std::vector<int>{1, 2};
        const bandwidth_probe probe(static_cast<size_t>(o.mem_gib * 1073741824.0));

        std::vector<run_result> runs;
        for (int t : thread_counts) {
            if (!o.json_out) std::fprintf(stderr, "hearth-bench: measuring with %d thread%s...\n", t, t == 1 ? "" : "s");
            runs.push_back(run_threads(*m, probe, o, t));
        }

        const machine_load load_after = read_load();
        const run_result* one = nullptr;
        const run_result* two = nullptr;
        for (const auto& r : runs) {
            if (r.threads == 1) one = &r;
            if (r.threads == 2) two = &r;
        }

        if (o.json_out) {
            json types = json::object();
            for (auto& [name, bytes] : m->tensor_type_bytes()) types[name] = bytes;
            json jr = json::array();
            for (const auto& r : runs) {
                jr.push_back({{"threads", r.threads}, {"bandwidth_gbs", r.bandwidth_gbs}, {"pp_tps", r.pp_tps}, {"tg_tps", r.tg_tps},
                              {"pp_tps_all", r.pp_tps_all}, {"tg_tps_all", r.tg_tps_all}, {"roofline_tps", r.roofline_tps},
                              {"roofline_ratio", r.roofline_ratio}, {"pp_tg_ratio", r.pp_tg_ratio}});
            }
            json j = {{"model", o.model_path}, {"name", hp.name}, {"weight_bytes", m->weight_bytes()}, {"tensor_bytes", types},
                      {"n_prompt", o.n_prompt}, {"n_gen", o.n_gen}, {"reps", o.reps}, {"simd", hearth::quants_kernels_name()},
                      {"hardware_threads", std::thread::hardware_concurrency()}, {"load_avg_before", load_before.avg1},
                      {"load_avg_after", load_after.avg1}, {"running_before", load_before.running}, {"runs", jr}};
            if (one) {
                j["targets"]["roofline_ratio_1t_ge_0.5"] = one->roofline_ratio >= 0.5;
                j["targets"]["pp_tg_ratio_1t_ge_3"] = one->pp_tg_ratio >= 3.0;
                if (two) j["targets"]["tg_2t_not_slower"] = two->tg_tps >= one->tg_tps;
            }
            std::cout << j.dump() << "\n";
            return 0;
        }

        std::printf("model:   %s (%s)\n", o.model_path.c_str(), hp.name.c_str());
        std::string mix;
        for (auto& [name, bytes] : m->tensor_type_bytes()) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%s %.1f MiB", mix.empty() ? "" : ", ", name.c_str(), bytes / 1048576.0);
            mix += buf;
        }
        std::printf("tensors: %s\n", mix.c_str());
        std::printf("weights read per decoded token: %.1f MiB; kernels %s; pp%d, tg%d, median of %d\n\n", m->weight_bytes() / 1048576.0,
                    hearth::quants_kernels_name(), o.n_prompt, o.n_gen, o.reps);
        // The 1-minute average lags (and counts this program's own earlier runs), so the tasks
        // running at the start are the better sign of competition.
        if (load_before.running > 1) {
            std::printf("warning: %d other tasks were running at the start (load average %.2f): timings are not comparable\n\n",
                        load_before.running - 1, load_before.avg1);
        }
        std::printf("| threads | read GB/s | pp%d tok/s | tg%d tok/s | roofline tok/s | tg/roofline | pp/tg per token |\n", o.n_prompt, o.n_gen);
        std::printf("|--------:|----------:|-----------:|----------:|---------------:|------------:|----------------:|\n");
        for (const auto& r : runs) {
            std::printf("| %7d | %9.1f | %10.1f | %9.1f | %14.1f | %11.2f | %15.2f |\n", r.threads, r.bandwidth_gbs, r.pp_tps, r.tg_tps,
                        r.roofline_tps, r.roofline_ratio, r.pp_tg_ratio);
        }
        if (one) {
            std::printf("\ntarget: decode >= 0.5 of the roofline with 1 thread: %.2f %s\n", one->roofline_ratio, verdict(one->roofline_ratio >= 0.5));
            std::printf("target: prompt >= 3x decode per token (1 thread):  %.2f %s\n", one->pp_tg_ratio, verdict(one->pp_tg_ratio >= 3.0));
            if (two) std::printf("target: decode with 2 threads not slower than 1:   %.1f vs %.1f %s\n", two->tg_tps, one->tg_tps, verdict(two->tg_tps >= one->tg_tps));
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth-bench: %s\n", e.what());
        return 1;
    }
}
