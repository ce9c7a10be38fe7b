// A batch file for `hearth batch submit`: JSON Lines, one wire request per line, named as in the
// REQUEST message (schema/protocol.md). Parsed and validated here, before anything is sent, so a
// typo on line 9000 is reported with its line number instead of as "jobs[8999]" by the broker.
#pragma once

#include "protocol.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// What a line gets for the fields it does not set (the CLI's flags); unset members leave
// wire::request's own defaults.
struct batch_defaults {
    std::string service = "complete";              // --service
    std::optional<int32_t> max_tokens;             // -n
    std::optional<float> temperature;              // --temp
    std::optional<int32_t> top_k;                  // --top-k
    std::optional<float> top_p;                    // --top-p
    std::optional<float> min_p;                    // --min-p
    std::optional<float> repeat_penalty;           // --repeat-penalty
    std::optional<uint64_t> seed;                  // -s
};

// A parsed batch file: either jobs (with their lines) or errors, never both.
struct batch_file {
    // Errors reported in full; past this many only "and N more" follows.
    static constexpr size_t max_errors_shown = 20;

    std::string name;                              // as shown in messages: the path, or "<stdin>" for "-"
    std::vector<wire::request> jobs;               // in file order, priority batch, stream off, each validated
    std::vector<size_t> lines;                     // lines[i]: 1-based line of jobs[i], to place the broker's "jobs[i]"
    std::vector<std::string> errors;               // "NAME:LINE: message", capped as above; non-empty: jobs is empty
    size_t error_count = 0;                        // all errors found, including those not listed

    bool ok() const { return errors.empty(); }
    // A broker message "jobs[K]: rest" becomes "NAME:LINE: rest"; any other message is returned as is.
    std::string locate(const std::string& broker_message) const;
};

// Parses the text of a batch file; name is the path given ("-" reads as "<stdin>" in messages).
batch_file batch_file_parse(std::string_view text, const std::string& path, const batch_defaults& d = {});
// Reads path ("-": all of stdin) and parses it; a file that cannot be read is one error.
batch_file batch_file_read(const std::string& path, const batch_defaults& d = {});

// The known field nearest to an unknown one, or "" when none is close (for "did you mean").
std::string batch_field_suggest(std::string_view unknown);

}  // namespace hearth
