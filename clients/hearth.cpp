// hearth: the command line client of a hearth broker. Global options go before or after the
// subcommand; each subcommand lives in its own clients/cli-*.cpp and registers itself here.
#include "cli.h"

#include <cstdio>

int main(int argc, char** argv) {
    using namespace hearth::cli;
    globals g;
    CLI::App app{"hearth: ask the local assistant service (a running hearth-broker with workers)"};
    app.footer(exit_codes_help);
    app.fallthrough();  // global options are accepted after the subcommand name too
    app.require_subcommand(1);
    app.add_option("--config", g.config_path, "configuration file (default: $HEARTH_CONFIG, ~/.config/hearth/hearth.toml, /etc/hearth/hearth.toml)");
    app.add_option("--endpoint", g.endpoint, "broker endpoint, e.g. ipc:///run/hearth/client.sock or tcp://host:5555 (overrides client.broker_endpoint)");
    app.add_flag("--json", g.json, "print one JSON object per result instead of text");
    app.add_option("--timeout", g.timeout_ms, "give up on a request after MS milliseconds (0: never; default client.timeout_ms)")->check(CLI::Range(int64_t{0}, int64_t{4294967295}));
    app.add_option("--broker-timeout", g.broker_timeout_ms, "fail when the broker is silent this many ms while we wait")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{4294967295}));
    app.add_option("--key", g.key, "this client's CURVE key: a key NAME (~/.config/hearth/keys/NAME.key, made by hearth keygen) or a .key FILE (overrides client.curve_secret_key)");
    app.add_option("--broker-key", g.broker_key, "the broker's CURVE public key: 40 Z85 characters, a .pub FILE or a key NAME (overrides client.broker_public_key)");
    app.add_flag("-v,--verbose", g.verbose, "print a usage summary (tokens, ttft, tok/s, worker) on stderr");

    command_list cmds;
    ask_add(app, cmds);
    chat_add(app, cmds);
    status_add(app, cmds);
    audit_add(app, cmds);
    cmd_add(app, cmds);
    batch_add(app, cmds);
    keygen_add(app, cmds);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "hearth: %s (see --help)\n", e.what());
        return exit_usage;
    }
    interrupt_install();
    for (const command& c : cmds) {
        if (!c.app->parsed()) continue;
        try {
            return c.run(g);
        } catch (const usage_error& e) {
            std::fprintf(stderr, "hearth: %s\n", e.what());
            return exit_usage;
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "hearth: %s\n", e.what());
            return exit_usage;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "hearth: internal: %s\n", e.what());
            return exit_failure;
        }
    }
    std::fprintf(stderr, "hearth: no command (see --help)\n");
    return exit_usage;
}
