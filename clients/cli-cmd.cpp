// hearth cmd: one utterance to the `command` service. The broker answers from its fast path or a
// worker decoding under the whitelist's grammar, and passes nothing to us that its output filter
// did not allow: stdout gets one line of JSON, or stderr a refusal (exit 5 unsupported, 4 filtered).
#include "cli.h"

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>

namespace hearth::cli {

namespace {

struct cmd_options {
    std::string text;                        // the utterance, or "-" for stdin
    std::string deadline;                    // --deadline, parsed by duration_parse
};

int cmd_run(const globals& g, const cmd_options& o) {
    wire::request r;
    r.id = request_id_random();
    r.service = "command";
    r.temperature = 0;
    r.max_tokens = 128;
    r.stream = false;
    r.prompt = o.text;
    if (o.text == "-") r.prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    while (!r.prompt.empty() && (r.prompt.back() == '\n' || r.prompt.back() == '\r')) r.prompt.pop_back();
    if (r.prompt.empty()) throw usage_error("cmd: nothing to do: the utterance is empty");
    if (!o.deadline.empty()) r.deadline_ms = duration_parse(o.deadline);
    client c(client_options_make(g));
    const client_result res = c.call(r);
    return result_print(g, res, r.id, "");
}

}  // namespace

void cmd_add(CLI::App& app, command_list& cmds) {
    auto o = std::make_shared<cmd_options>();
    CLI::App* sub = app.add_subcommand(
        "cmd",
        "turn an utterance into a home-automation command allowed by the broker's whitelist: prints one line of JSON "
        "({\"device\":...,\"action\":...,\"args\":{...}}); exit 5 when it is not a supported command, 4 when the safety filter refused it");
    sub->add_option("text", o->text, "what to do, e.g. \"dim the kitchen lights to 30%\"; '-' reads stdin")->required();
    sub->add_option("--deadline", o->deadline, "give up after this long (500ms, 2s); the broker ends it with timeout");
    cmds.push_back({sub, [o](const globals& g) { return cmd_run(g, *o); }});
}

}  // namespace hearth::cli
