// What each client has used against its quotas (design section 8): requests in the current minute
// and tokens in the current UTC day. Times come from the caller, so the windows' resets can be
// tested without waiting for them.
#pragma once

#include "config.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace hearth {

class quota_book {
public:
    using steady = std::chrono::steady_clock::time_point;
    using wall = std::chrono::system_clock::time_point;

    // "" when `jobs` more requests fit `q` for `who` (who already has `live` waiting or running),
    // else the quota_exceeded message; *retry_ms says when the limit resets.
    std::string refusal(const std::string& who, const quota_limits& q, uint32_t jobs, uint64_t live, steady now, wall wall_now,
                        uint32_t* retry_ms);
    void charge(const std::string& who, uint32_t jobs, steady now);        // accepted requests
    void tokens(const std::string& who, uint64_t n, wall wall_now);        // a finished request's tokens
    uint64_t tokens_today(const std::string& who, wall wall_now) const;    // used today (0 on a new UTC day)

private:
    struct use {
        steady minute_start;                   // start of the current requests_per_minute window
        uint32_t minute_requests = 0;          // requests accepted in it
        int64_t day = -1;                      // UTC day (days since the epoch) of day_tokens
        uint64_t day_tokens = 0;               // tokens of finished requests that day
    };
    static void roll_minute(use& u, steady now);  // a new minute window once the last is over
    static void roll_day(use& u, wall wall_now);  // a new day's count after 00:00 UTC
    std::unordered_map<std::string, use> use_;  // by identity
};

}  // namespace hearth
