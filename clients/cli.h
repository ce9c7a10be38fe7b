// Pieces shared by the `hearth` subcommands (clients/cli-*.cpp). Each subcommand file has one
// *_add function that registers its CLI11 subcommand and what runs it; hearth.cpp only parses and
// dispatches, so a new subcommand is a new file plus one line there.
#pragma once

#include "client.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth::cli {

// Options given before or after the subcommand name.
struct globals {
    std::string config_path;                 // --config; empty: the usual search (config_find)
    std::string endpoint;                    // --endpoint; empty: the config's client.broker_endpoint
    bool json = false;                       // --json: one JSON object per result on stdout
    int64_t timeout_ms = -1;                 // --timeout; < 0: the config's client.timeout_ms
    int64_t broker_timeout_ms = 10000;       // --broker-timeout: silence from the broker that counts as none
    bool verbose = false;                    // -v: usage summaries on stderr
    std::string key;                         // --key; empty: the config's client.curve_secret_key
    std::string broker_key;                  // --broker-key; empty: the config's client.broker_public_key
};

// One registered subcommand.
struct command {
    CLI::App* app;                           // parsed when app->parsed()
    std::function<int(const globals&)> run;  // returns the exit code
};
using command_list = std::vector<command>;

// Exit codes of every subcommand (also listed in --help by exit_codes_help).
enum exit_code : int {
    exit_ok = 0,
    exit_failure = 1,                        // worker_lost, timeout, cancelled, internal, no broker answering
    exit_usage = 2,                          // bad flags or configuration
    exit_refused = 3,                        // the broker refused the request (bad_request ... overloaded)
    exit_filtered = 4,                       // the safety filter stopped it
    exit_unsupported = 5,                    // the service or option is not supported
    exit_interrupted = 130,                  // SIGINT: the running request was cancelled
};
int exit_code_for(wire::error_code c);
extern const char* const exit_codes_help;

// A bad flag value found after parsing (exit 2).
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Endpoint, timeouts, heartbeat and CURVE keys from the configuration and the global flags; throws
// usage_error for a bad configuration file or CURVE keys that cannot be used.
client_options client_options_make(const globals& g);

// "hearth: <code>: <message>" on stderr; returns the exit code for it.
int error_print(const wire::error_reply& e);
int transport_error_print(const std::string& message);

// SIGINT sets the flag (once; a second SIGINT kills as usual) instead of killing the process.
std::atomic<bool>& interrupt_flag();
void interrupt_install();

// "500ms", "30s", "2m", "1h", a plain number = ms; throws usage_error.
uint32_t duration_parse(const std::string& text);

// Sampling and routing options shared by ask and chat.
struct request_options {
    int32_t max_tokens = 256;                // -n
    float temperature = 0.8f;                // --temp
    int32_t top_k = 40;                      // --top-k
    float top_p = 0.95f;                     // --top-p
    float min_p = 0.05f;                     // --min-p
    float repeat_penalty = 1.0f;             // --repeat-penalty
    uint64_t seed = 0;                       // -s; used only when given
    CLI::Option* seed_option = nullptr;      // tells whether -s was given
    std::vector<std::string> stop;           // --stop, repeatable
    std::string priority = "interactive";    // --priority
    std::string deadline;                    // --deadline, parsed by duration_parse
    bool no_stream = false;                  // --no-stream
    void add(CLI::App* app);
    // Copies the options into r; throws usage_error for a bad --deadline.
    void apply(wire::request& r) const;
};

// JSON forms for --json.
nlohmann::json final_json(const wire::final_reply& f);
nlohmann::json error_json(const std::string& id, const std::string& code, const std::string& message, uint32_t retry_after_ms = 0);
nlohmann::json status_json(const wire::status_reply& s);

// Prints a finished call the way ask and chat do: the rest of the text not yet streamed and a
// newline, or the error; JSON instead with g.json. Returns the exit code.
int result_print(const globals& g, const client_result& res, const std::string& id, const std::string& streamed);

// Rows of cells printed as left-aligned columns two spaces apart (status and audit tables).
using table = std::vector<std::vector<std::string>>;
void table_print(const table& t);

void ask_add(CLI::App& app, command_list& cmds);
void chat_add(CLI::App& app, command_list& cmds);
void status_add(CLI::App& app, command_list& cmds);
void audit_add(CLI::App& app, command_list& cmds);
void cmd_add(CLI::App& app, command_list& cmds);
void batch_add(CLI::App& app, command_list& cmds);
void keygen_add(CLI::App& app, command_list& cmds);

}  // namespace hearth::cli
