// hearth ask (one completion) and hearth chat (a conversation kept on this side and sent whole
// with every turn, so the broker and workers stay stateless).
#include "cli.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

namespace hearth::cli {

namespace {

std::string stdin_read_all() {
    std::string all;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) all.append(buf, n);
    return all;
}

// One request through the client, streaming to stdout unless --json or --no-stream.
int request_run(const globals& g, client& c, wire::request r, client_result* out) {
    r.id = request_id_random();
    const bool stream = r.stream && !g.json;
    r.stream = stream;
    std::string streamed;
    auto on_partial = [&](const wire::partial& p) {
        std::fwrite(p.text.data(), 1, p.text.size(), stdout);
        std::fflush(stdout);
        streamed += p.text;
    };
    // Why the request waits beyond its place in line (workers low on memory), on stderr so the
    // answer on stdout stays clean; said once per change.
    std::string note;
    auto on_accepted = [&](const wire::accepted& a) {
        if (a.note == note) return;
        note = a.note;
        if (!note.empty()) std::fprintf(stderr, "hearth: waiting: %s\n", note.c_str());
        else std::fprintf(stderr, "hearth: a worker can take the request again\n");
    };
    client_result res = c.call(r, stream ? std::function<void(const wire::partial&)>(on_partial) : nullptr, on_accepted);
    const int rc = result_print(g, res, r.id, streamed);
    if (out) *out = std::move(res);
    return rc;
}

struct ask_options {
    std::string text;                         // the prompt, or "-" for stdin
    std::string service = "complete";        // --service
    request_options req;                      // sampling and routing
};

int ask_run(const globals& g, const ask_options& o) {
    wire::request r;
    o.req.apply(r);
    r.service = o.service;
    r.prompt = o.text == "-" ? stdin_read_all() : o.text;
    client c(client_options_make(g));
    return request_run(g, c, std::move(r), nullptr);
}

struct chat_options {
    std::vector<std::string> turns;          // -m: user turns run one after another
    std::string system;                      // --system
    std::string service = "chat";            // --service
    request_options req;                      // sampling and routing
};

bool line_trim(std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    s.erase(0, i);
    return !s.empty();
}

int chat_run(const globals& g, const chat_options& o) {
    wire::request base;
    o.req.apply(base);
    base.service = o.service;
    client c(client_options_make(g));
    std::vector<wire::chat_turn> history;
    // One turn: the reply joins the history only when it is complete, so a failed turn can be retried.
    auto turn = [&](const std::string& user, bool* transport_failed) {
        history.push_back({"user", user});
        wire::request r = base;
        if (!o.system.empty()) r.messages.push_back({"system", o.system});
        r.messages.insert(r.messages.end(), history.begin(), history.end());
        client_result res;
        const int rc = request_run(g, c, std::move(r), &res);
        if (res.ok) history.push_back({"assistant", res.final.text});
        else history.pop_back();
        *transport_failed = res.transport_failed;
        return rc;
    };
    bool transport_failed = false;
    if (!o.turns.empty()) {
        for (const std::string& m : o.turns) {
            const int rc = turn(m, &transport_failed);
            if (rc != exit_ok) return rc;
        }
        return exit_ok;
    }
    const bool tty = ::isatty(STDIN_FILENO);
    int last = exit_ok;
    std::string line;
    for (;;) {
        if (tty) {
            std::fputs("> ", stderr);
            std::fflush(stderr);
        }
        if (!std::getline(std::cin, line)) break;
        if (!line_trim(line)) continue;
        if (line == "/quit") break;
        if (line == "/reset") {
            history.clear();
            if (tty) std::fputs("(history cleared)\n", stderr);
            continue;
        }
        last = turn(line, &transport_failed);
        if (last == exit_interrupted || transport_failed) return last;
    }
    if (tty) std::fputs("\n", stderr);
    return interrupt_flag().load() ? exit_interrupted : last;
}

}  // namespace

void ask_add(CLI::App& app, command_list& cmds) {
    auto o = std::make_shared<ask_options>();
    CLI::App* sub = app.add_subcommand("ask", "complete TEXT (service 'complete'), streaming the reply to stdout");
    sub->add_option("text", o->text, "the prompt; '-' reads all of stdin")->required();
    sub->add_option("--service", o->service, "service to ask")->capture_default_str();
    o->req.add(sub);
    cmds.push_back({sub, [o](const globals& g) { return ask_run(g, *o); }});
}

void chat_add(CLI::App& app, command_list& cmds) {
    auto o = std::make_shared<chat_options>();
    CLI::App* sub = app.add_subcommand(
        "chat", "a conversation: reads user lines from stdin ('/reset' forgets the history, '/quit' or EOF ends), or runs the -m turns");
    sub->add_option("-m,--message", o->turns, "a user turn, run non-interactively (repeatable: one conversation)")->take_all();
    sub->add_option("--system", o->system, "system message opening the conversation");
    sub->add_option("--service", o->service, "service to ask")->capture_default_str();
    o->req.add(sub);
    cmds.push_back({sub, [o](const globals& g) { return chat_run(g, *o); }});
}

}  // namespace hearth::cli
