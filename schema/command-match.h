// The command fast path (like Home Assistant's default conversation agent): common English
// phrasings are matched against the whitelist's device names, aliases and rooms without a model.
// It prefers saying nothing to guessing: every word of the utterance must be understood (a device
// phrase, an action word, a number, a unit or a known politeness word), the device and action must
// be unambiguous, and the result must pass command_check for the client. It never answers
// `unsupported`; when unsure it returns nullopt and the model decides.
#pragma once

#include "whitelist.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace hearth {

struct command_match_tables;  // the compiled lexicon (command-match.cpp)

class command_matcher {
public:
    // Compiles the lexicon from the whitelist once; match() then only reads it (thread-safe).
    explicit command_matcher(whitelist wl);
    // Canonical command JSON (as command_check prints it), or nullopt when not sure.
    std::optional<std::string> match(const std::string& client, std::string_view text) const;

private:
    whitelist wl_;                                       // what every answer is checked against
    std::shared_ptr<const command_match_tables> tables_; // phrases -> meaning, built from wl_
};

}  // namespace hearth
