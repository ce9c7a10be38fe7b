// The output filter for the `command` service: whatever a model (or the fast path) produced is
// parsed as untrusted text and either becomes one canonical, whitelisted command, the explicit
// `{"error":"unsupported"}`, or is filtered with the rule that refused it. Also builds the JSON
// schema the grammar engine decodes under, from the same whitelist, so the two never disagree.
#pragma once

#include "whitelist.h"

#include <string>
#include <string_view>

namespace hearth {

enum class command_status {
    allowed,      // a whitelisted command; json holds its canonical form
    unsupported,  // exactly {"error":"unsupported"}; json holds that
    filtered,     // anything else; json is empty and the output must never reach the client
};

struct command_verdict {
    command_status status = command_status::filtered;  // what to answer
    std::string rule;  // why it was filtered ("args.brightness: 130 above max 100"); "" otherwise
    std::string json;  // canonical compact JSON: keys device, action, args; shortest numbers
};

// Commands are short; longer output is refused before parsing (bounds parser work and nesting).
constexpr size_t kCommandMaxBytes = 4096;

command_verdict command_check(const whitelist& wl, const std::string& client, std::string_view output);
// {"oneOf":[one object schema per (device, action) the client may use, ..., the unsupported object]}
std::string command_schema(const whitelist& wl, const std::string& client);
// Shortest text that reads back as the same double ("21.5", "30", never "30.0"); -0 is "0".
std::string command_number(double v);
const char* command_status_name(command_status s);

}  // namespace hearth
