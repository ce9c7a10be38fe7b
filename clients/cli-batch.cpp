// hearth batch: durable batch jobs. submit sends a JSONL file (clients/batch-file.h) that the
// broker stores before it answers with the batch id; status, wait, results and cancel take that
// id. The batch lives in the broker, not in this process: wait can be stopped and run again, and
// it keeps polling through a broker restart.
#include "batch-file.h"
#include "cli.h"
#include "config.h"
#include "transport.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace hearth::cli {

namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

std::string json_dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void batch_id_check(const std::string& id) {
    if (wire::batch_id_valid(id)) return;
    std::string m = "bad batch id '";
    m.append(id).append("': expected 16 lowercase hex digits, as printed by 'hearth batch submit'");
    throw usage_error(m);
}

int call_wait_ms(const client_options& co) { return static_cast<int>(std::min<uint32_t>(co.broker_timeout_ms, 1u << 30)); }

wire::batch_call call_make(wire::batch_op op, const std::string& batch) {
    wire::batch_call c;
    c.op = op;
    c.batch = batch;
    return c;
}

// Prints a call that did not get its BATCH reply and returns the exit code. f places a broker
// message "jobs[K]: ..." at its line of the file.
int failure_print(const globals& g, const batch_result& r, const std::string& batch, const batch_file* f = nullptr) {
    if (interrupt_flag().load()) return exit_interrupted;
    if (r.transport_failed) {
        if (g.json) std::printf("%s\n", json_dump(error_json(batch, "transport", r.transport_message)).c_str());
        std::fflush(stdout);
        return transport_error_print(r.transport_message);
    }
    wire::error_reply e = r.error;
    if (f) e.message = f->locate(e.message);
    if (g.json) std::printf("%s\n", json_dump(error_json(batch, std::string(wire::error_code_name(e.code)), e.message, e.retry_after_ms)).c_str());
    std::fflush(stdout);
    return error_print(e);
}

json counts_json(const wire::batch_reply& r) {
    return {{"batch", r.batch},         {"total", r.total},         {"queued", r.queued},
            {"running", r.running},     {"done", r.done},           {"failed", r.failed},
            {"cancelled", r.cancelled}, {"batch_cancelled", r.batch_cancelled}, {"created_us", r.created_us}};
}

std::string counts_line(const wire::batch_reply& r) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "batch %s: %u/%u done, %u failed, %u cancelled, %u queued (%u running)%s", r.batch.c_str(), r.done,
                  r.total, r.failed, r.cancelled, r.queued, r.running, r.batch_cancelled ? "; the batch was cancelled" : "");
    return buf;
}

// ---------------------------------------------------------------- submit

struct submit_options {
    std::string file;                        // the JSONL file, "-" for stdin
    std::string service = "complete";        // --service
    int32_t max_tokens = 256;                // -n
    float temperature = 0.8f;                // --temp
    int32_t top_k = 40;                      // --top-k
    float top_p = 0.95f;                     // --top-p
    float min_p = 0.05f;                     // --min-p
    float repeat_penalty = 1.0f;             // --repeat-penalty
    uint64_t seed = 0;                       // -s
    std::vector<CLI::Option*> given;         // the sampling options above, in that order, to see which were given
};

batch_defaults defaults_from(const submit_options& o) {
    batch_defaults d;
    d.service = o.service;
    auto on = [&](size_t i) { return o.given[i]->count() > 0; };
    if (on(0)) d.max_tokens = o.max_tokens;
    if (on(1)) d.temperature = o.temperature;
    if (on(2)) d.top_k = o.top_k;
    if (on(3)) d.top_p = o.top_p;
    if (on(4)) d.min_p = o.min_p;
    if (on(5)) d.repeat_penalty = o.repeat_penalty;
    if (on(6)) d.seed = o.seed;
    return d;
}

int submit_run(const globals& g, const submit_options& o) {
    const batch_file f = batch_file_read(o.file, defaults_from(o));
    if (!f.ok()) {
        for (const std::string& e : f.errors) std::fprintf(stderr, "%s\n", e.c_str());
        std::fprintf(stderr, "hearth: %zu error%s in %s; nothing was sent\n", f.error_count, f.error_count == 1 ? "" : "s", f.name.c_str());
        return exit_usage;
    }
    const client_options co = client_options_make(g);
    wire::batch_call call = call_make(wire::batch_op::submit, "");
    call.jobs = f.jobs;
    // A broker drops a message far over its broker.max_batch_bytes without a word, which would
    // look like a dead broker: check against our configuration's value first (usually the same).
    const size_t bytes = wire::encode(call).size();
    const uint32_t max_bytes = config_load(g.config_path).broker.max_batch_bytes;
    if (bytes > max_bytes) {
        std::fprintf(stderr, "hearth: %s: the batch is %zu bytes on the wire, over broker.max_batch_bytes (%u); split the file\n", f.name.c_str(),
                     bytes, max_bytes);
        return exit_usage;
    }
    client c(co);
    batch_result r = c.batch(std::move(call), call_wait_ms(co));
    if (!r.ok) {
        if (interrupt_flag().load()) {
            std::fprintf(stderr, "hearth: interrupted; the broker may have stored the batch anyway\n");
            return exit_interrupted;
        }
        if (r.transport_failed && bytes > static_cast<size_t>(wire::default_max_message_bytes)) {
            r.transport_message.append(" (or it dropped this ").append(std::to_string(bytes >> 20)).append(" MiB batch as over its broker.max_batch_bytes)");
        }
        return failure_print(g, r, "", &f);
    }
    if (g.json) std::printf("%s\n", json_dump({{"batch", r.reply.batch}, {"total", r.reply.total}}).c_str());
    else std::printf("%s\n", r.reply.batch.c_str());
    std::fflush(stdout);
    if (g.verbose) std::fprintf(stderr, "hearth: batch %s: stored %u jobs\n", r.reply.batch.c_str(), r.reply.total);
    return exit_ok;
}

// ---------------------------------------------------------------- status, cancel

int status_run(const globals& g, const std::string& id) {
    batch_id_check(id);
    const client_options co = client_options_make(g);
    client c(co);
    const batch_result r = c.batch(call_make(wire::batch_op::status, id), call_wait_ms(co));
    if (!r.ok) return failure_print(g, r, id);
    if (g.json) std::printf("%s\n", json_dump(counts_json(r.reply)).c_str());
    else std::printf("%s\n", counts_line(r.reply).c_str());
    return exit_ok;
}

int cancel_run(const globals& g, const std::string& id) {
    batch_id_check(id);
    const client_options co = client_options_make(g);
    client c(co);
    const batch_result r = c.batch(call_make(wire::batch_op::cancel, id), call_wait_ms(co));
    if (!r.ok) return failure_print(g, r, id);
    if (g.json) {
        json j = counts_json(r.reply);
        j["stopped"] = r.reply.stopped;
        std::printf("%s\n", json_dump(j).c_str());
    } else {
        std::printf("batch %s cancelled: %u queued job%s stopped\n", id.c_str(), r.reply.stopped, r.reply.stopped == 1 ? "" : "s");
    }
    return exit_ok;
}

// ---------------------------------------------------------------- results

int results_run(const globals& g, const std::string& id) {
    batch_id_check(id);
    const client_options co = client_options_make(g);
    client c(co);
    int64_t from = 0;
    while (from >= 0) {
        wire::batch_call call = call_make(wire::batch_op::results, id);
        call.from = static_cast<uint32_t>(from);
        const batch_result r = c.batch(std::move(call), call_wait_ms(co));
        if (!r.ok) {
            std::fflush(stdout);
            return failure_print(g, r, id);
        }
        for (const wire::batch_job& j : r.reply.jobs) {
            json line = {{"id", j.id}, {"status", j.state}, {"text", j.text}};
            if (j.state == "failed") {
                line["error"] = j.error;
                line["message"] = j.message;
            }
            std::printf("%s\n", json_dump(line).c_str());
        }
        // A page that does not move forward would loop for ever.
        if (r.reply.next >= 0 && r.reply.next <= from) {
            std::fflush(stdout);
            std::fprintf(stderr, "hearth: internal: the broker's results page from %lld points back to %lld\n", static_cast<long long>(from),
                         static_cast<long long>(r.reply.next));
            return exit_failure;
        }
        from = r.reply.next;
    }
    std::fflush(stdout);
    return exit_ok;
}

// ---------------------------------------------------------------- wait

struct wait_options {
    std::string id;                          // the batch
    std::string interval = "1s";             // --interval, parsed by duration_parse
};

std::string eta_text(double s) {
    char buf[32];
    const long long t = static_cast<long long>(s + 0.5);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
    else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%llds", t);
    return buf;
}

// What wait shows between polls: the counts, and a rate measured from what finished while we watched.
class wait_display {
public:
    wait_display(bool tty, bool quiet) : tty_(tty), quiet_(quiet) {}

    void update(const wire::batch_reply& r) {
        const auto now = steady::now();
        const uint32_t finished = r.done + r.failed + r.cancelled;
        if (!first_) {
            first_ = true;
            start_ = now;
            start_finished_ = finished;
        }
        if (quiet_) return;
        if (tty_) {
            bar_draw(r, finished, now);
        } else {
            const std::string line = counts_line(r);
            if (line != last_line_) std::printf("%s\n", line.c_str());
            last_line_ = line;
        }
        std::fflush(stdout);
    }
    // Ends the bar's line before anything else is printed.
    void line_end() {
        if (tty_ && drawn_) std::fputs("\n", stdout);
        drawn_ = false;
        std::fflush(stdout);
    }

private:
    void bar_draw(const wire::batch_reply& r, uint32_t finished, steady::time_point now) {
        constexpr int width = 30;
        const int fill = r.total ? static_cast<int>(static_cast<uint64_t>(finished) * width / r.total) : width;
        std::string bar(static_cast<size_t>(fill), '#');
        bar.append(static_cast<size_t>(width - fill), '-');
        const double elapsed = std::chrono::duration<double>(now - start_).count();
        const uint32_t gained = finished >= start_finished_ ? finished - start_finished_ : 0;
        const double rate = elapsed > 0 ? gained / elapsed : 0;
        const std::string eta = rate > 0 && r.queued ? eta_text(r.queued / rate) : (r.queued ? "--" : eta_text(0));
        char cancelled[32] = "";
        if (r.cancelled) std::snprintf(cancelled, sizeof cancelled, ", %u cancelled", r.cancelled);
        char line[256];
        std::snprintf(line, sizeof line, "\r[%s] %u/%u done, %u failed%s, %u running, %.2f jobs/s, ETA %s\033[K", bar.c_str(), r.done, r.total,
                      r.failed, cancelled, r.running, rate, eta.c_str());
        std::fputs(line, stdout);
        drawn_ = true;
    }

    bool tty_;                               // redraw one line in place instead of printing changes
    bool quiet_;                             // --json: only the final object
    bool first_ = false;                     // a reply came: start_ is set
    bool drawn_ = false;                     // the bar's line is open on the terminal
    steady::time_point start_;               // first reply, for the rate
    uint32_t start_finished_ = 0;            // jobs already finished then
    std::string last_line_;                  // what the plain output printed last
};

// Sleeps up to ms, waking early for SIGINT.
void nap(uint32_t ms, steady::time_point until) {
    const auto end = std::min(steady::now() + std::chrono::milliseconds(ms), until);
    while (!interrupt_flag().load() && steady::now() < end) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - steady::now());
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
    }
}

int wait_run(const globals& g, const wait_options& o) {
    batch_id_check(o.id);
    const uint32_t interval = duration_parse(o.interval);
    if (interval < 10) throw usage_error("--interval must be at least 10ms");
    const client_options co = client_options_make(g);
    client c(co);
    // --timeout 0 means no limit, as for every other subcommand.
    const auto give_up = g.timeout_ms > 0 ? steady::now() + std::chrono::milliseconds(g.timeout_ms) : steady::time_point::max();
    wait_display show(::isatty(STDOUT_FILENO) != 0, g.json);
    bool silent = false;  // the last poll went unanswered (told once per outage)
    wire::batch_reply last;
    bool have_last = false;
    for (;;) {
        const auto now = steady::now();
        int wait = call_wait_ms(co);
        if (give_up != steady::time_point::max())
            wait = static_cast<int>(std::clamp<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(give_up - now).count(), 1, wait));
        // SIGINT during the nap: no further poll.
        const batch_result r = interrupt_flag().load() ? batch_result{} : c.batch(call_make(wire::batch_op::status, o.id), wait);
        if (interrupt_flag().load()) {
            show.line_end();
            std::fprintf(stderr, "hearth: interrupted; batch %s keeps running in the broker ('hearth batch wait %s' to wait again)\n", o.id.c_str(),
                         o.id.c_str());
            return exit_interrupted;
        }
        if (r.ok) {
            if (silent) {
                show.line_end();
                std::fprintf(stderr, "hearth: the broker answers again\n");
                silent = false;
            }
            last = r.reply;
            have_last = true;
            show.update(last);
            if (last.queued == 0) break;
        } else if (r.transport_failed) {
            if (!silent) {
                show.line_end();
                std::fprintf(stderr, "hearth: transport: %s (still waiting for batch %s)\n", r.transport_message.c_str(), o.id.c_str());
                silent = true;
            }
        } else {
            show.line_end();
            return failure_print(g, r, o.id);
        }
        if (steady::now() >= give_up) {
            show.line_end();
            if (g.json && have_last) std::printf("%s\n", json_dump(counts_json(last)).c_str());
            std::string m = "timeout: batch ";
            m.append(o.id).append(" not finished after ").append(std::to_string(g.timeout_ms)).append(" ms");
            if (have_last) m.append(" (").append(std::to_string(last.queued)).append(" jobs queued)");
            m.append("; it keeps running");
            std::fprintf(stderr, "hearth: %s\n", m.c_str());
            return exit_failure;
        }
        nap(interval, give_up);
    }
    show.line_end();
    const uint32_t not_done = last.failed + last.cancelled;
    if (g.json) {
        std::printf("%s\n", json_dump(counts_json(last)).c_str());
    } else if (not_done == 0) {
        std::printf("batch %s: all %u jobs done\n", o.id.c_str(), last.total);
    } else {
        std::printf("batch %s: finished: %u/%u done, %u failed, %u cancelled\n", o.id.c_str(), last.done, last.total, last.failed, last.cancelled);
    }
    std::fflush(stdout);
    if (not_done == 0) return exit_ok;
    std::fprintf(stderr, "hearth: %u of %u jobs did not complete (%u failed, %u cancelled); 'hearth batch results %s' shows why\n", not_done, last.total,
                 last.failed, last.cancelled, o.id.c_str());
    return exit_failure;
}

}  // namespace

void batch_add(CLI::App& app, command_list& cmds) {
    CLI::App* batch = app.add_subcommand("batch", "durable batch jobs: submit a JSONL file of requests, then follow, fetch or cancel it by its id");
    batch->require_subcommand(1);

    auto so = std::make_shared<submit_options>();
    CLI::App* sub = batch->add_subcommand(
        "submit",
        "send FILE (JSON Lines, one request per line: {\"id\", \"prompt\" or \"messages\", \"service\", \"max_tokens\", \"temperature\", "
        "\"top_k\", \"top_p\", \"min_p\", \"repeat_penalty\", \"seed\", \"stop\", \"deadline_ms\"}; a line without id gets its line number). "
        "Prints the batch id once the broker has stored every job");
    sub->add_option("file", so->file, "the JSONL file; '-' reads stdin")->required();
    sub->add_option("--service", so->service, "service of the lines that do not name one")->capture_default_str();
    so->given.push_back(sub->add_option("-n,--max-tokens", so->max_tokens, "max_tokens of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("--temp", so->temperature, "temperature of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("--top-k", so->top_k, "top_k of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("--top-p", so->top_p, "top_p of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("--min-p", so->min_p, "min_p of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("--repeat-penalty", so->repeat_penalty, "repeat_penalty of the lines that do not set it")->capture_default_str());
    so->given.push_back(sub->add_option("-s,--seed", so->seed, "seed of the lines that do not set it (default: random)"));
    cmds.push_back({sub, [so](const globals& g) { return submit_run(g, *so); }});

    auto status_id = std::make_shared<std::string>();
    sub = batch->add_subcommand("status", "one line of counts for batch ID: done, failed, cancelled, queued (running)");
    sub->add_option("id", *status_id, "the batch id submit printed")->required();
    cmds.push_back({sub, [status_id](const globals& g) { return status_run(g, *status_id); }});

    auto wo = std::make_shared<wait_options>();
    sub = batch->add_subcommand("wait",
                                "poll batch ID until no job is queued, with a progress bar on a terminal (else a line per change); "
                                "exit 0 if every job is done, 1 if some failed or were cancelled or --timeout passed. "
                                "Survives a broker restart; Ctrl-C stops waiting, not the batch");
    sub->add_option("id", wo->id, "the batch id submit printed")->required();
    sub->add_option("--interval", wo->interval, "time between polls (500ms, 2s, 1m; a number is ms)")->capture_default_str();
    cmds.push_back({sub, [wo](const globals& g) { return wait_run(g, *wo); }});

    auto results_id = std::make_shared<std::string>();
    sub = batch->add_subcommand("results",
                                "print every job of batch ID in submission order as JSON Lines: {\"id\", \"status\", \"text\"}, "
                                "plus \"error\" and \"message\" for failed jobs");
    sub->add_option("id", *results_id, "the batch id submit printed")->required();
    cmds.push_back({sub, [results_id](const globals& g) { return results_run(g, *results_id); }});

    auto cancel_id = std::make_shared<std::string>();
    sub = batch->add_subcommand("cancel", "cancel batch ID: its queued jobs never run and its running ones are stopped; results keeps what was done");
    sub->add_option("id", *cancel_id, "the batch id submit printed")->required();
    cmds.push_back({sub, [cancel_id](const globals& g) { return cancel_run(g, *cancel_id); }});
}

}  // namespace hearth::cli
