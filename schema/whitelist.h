// The safety whitelist (TOML, documented in schema/whitelist.md): which devices and actions a
// command may ever name, the argument ranges, which clients may use which services and devices,
// and the input filter (size limit, deny patterns). Loading is strict: every problem is an error
// naming file, line, column and key, so a typo never silently widens what is allowed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// A bad whitelist file; the message holds one "FILE:LINE:COL: key: problem" line per problem.
class whitelist_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One argument of an action; values outside [min, max] or off the step grid are refused.
struct whitelist_arg {
    std::string name;       // JSON key inside "args"
    bool integer = false;   // "integer": whole numbers only; "number": any finite number
    double min = 0;         // inclusive
    double max = 0;         // inclusive
    double step = 0;        // value must be a multiple of this (JSON schema multipleOf); 0: none
};

struct whitelist_action {
    std::string name;                 // e.g. "set_brightness"
    std::vector<whitelist_arg> args;  // empty: the command carries no "args" key (sorted by name)
};

struct whitelist_device {
    std::string id;                         // "domain.name", [a-z0-9_] on both sides
    std::string name;                       // human name, also matched as a phrase by the fast path
    std::string room;                       // a room id (see whitelist::rooms); "" when none
    std::vector<std::string> aliases;       // extra names people use ("tv", "lounge lights"), lower case
    std::vector<whitelist_action> actions;  // the only actions allowed, in file order
    std::vector<std::string> denied;        // actions refused on purpose (documentation; never allowed)
    uint32_t line = 0;                      // where it was defined, for duplicate-id messages

    const whitelist_action* action_find(std::string_view action) const;
    std::string domain() const { return id.substr(0, id.find('.')); }
};

// Who may use what. A client identity without its own entry falls back to the "*" entry.
struct whitelist_client {
    std::string id;                     // identity ("local", a key name) or "*"
    std::vector<std::string> services;  // services it may call
    bool all_devices = true;            // no "devices" key (or "*" in it): every device
    std::vector<std::string> devices;   // device ids it may command when !all_devices
    bool all_actions = true;            // no "actions" key (or "*" in it): every action a device allows
    std::vector<std::string> actions;   // action names it may use when !all_actions
};

struct whitelist_regex;  // compiled PCRE2 pattern (whitelist.cpp)

// A named, case-insensitive PCRE2 pattern refused on input.
struct whitelist_deny {
    std::string name;                               // shows in the rule: "deny:NAME"
    std::string pattern;                            // as written in the file
    std::vector<std::string> services;              // services it applies to; empty: all
    std::shared_ptr<const whitelist_regex> regex;   // shared so whitelists copy cheaply
};

// The outcome of input_check: allowed, or the rule that refused.
struct input_verdict {
    bool allowed = false;  // false: answer `filtered`
    std::string rule;      // what fired ("deny:unlock-words", "size: ..."); "" when allowed
};

class whitelist {
public:
    std::string source;                                    // file name used in messages
    uint32_t version = 1;                                  // format version (only 1 exists)
    uint32_t max_prompt_bytes = 8192;                      // longer input is refused
    std::map<std::string, std::vector<std::string>> rooms; // room id -> spoken names (fast path)
    std::vector<whitelist_device> devices;                 // in file order
    std::vector<whitelist_client> clients;                 // in file order
    std::vector<whitelist_deny> deny;                      // input deny patterns, checked in order

    const whitelist_device* device_find(std::string_view id) const;
    // The client's own entry, else the "*" entry, else null (then nothing is allowed).
    const whitelist_client* client_find(const std::string& client) const;
    bool service_allowed(const std::string& client, const std::string& service) const;
    // "" when the client may send this action to this device, else the refusing rule, e.g.
    // "device lock.front_door: action unlock not allowed" or "client kitchen-pi: device x not allowed".
    std::string action_refusal(const std::string& client, std::string_view device, std::string_view action) const;
    // The input filter: client known, service permitted, size limit, deny patterns (in that order).
    input_verdict input_check(const std::string& client, const std::string& service, std::string_view text) const;
    // Spoken names of a room: its [rooms] entry, else the id with '_' read as a space.
    std::vector<std::string> room_names(const std::string& room) const;
};

whitelist whitelist_parse(const std::string& text, const std::string& source);
whitelist whitelist_load(const std::string& path);

// Makes untrusted text safe for a rule or log line: printable ASCII only, at most max_len bytes.
std::string whitelist_sanitize(std::string_view text, size_t max_len = 64);

}  // namespace hearth
