#include "quota-book.h"

#include <algorithm>

namespace hearth {

namespace {

int64_t utc_day(quota_book::wall t) { return std::chrono::duration_cast<std::chrono::hours>(t.time_since_epoch()).count() / 24; }

uint32_t ms_to_next_utc_day(quota_book::wall now) {
    const auto next = quota_book::wall(std::chrono::hours(24 * (utc_day(now) + 1)));
    return static_cast<uint32_t>(std::chrono::ceil<std::chrono::milliseconds>(next - now).count());
}

}  // namespace

void quota_book::roll_minute(use& u, steady now) {
    if (u.minute_requests == 0 || now - u.minute_start >= std::chrono::minutes(1)) {
        u.minute_start = now;
        u.minute_requests = 0;
    }
}

void quota_book::roll_day(use& u, wall wall_now) {
    if (u.day != utc_day(wall_now)) {
        u.day = utc_day(wall_now);
        u.day_tokens = 0;
    }
}

std::string quota_book::refusal(const std::string& who, const quota_limits& q, uint32_t jobs, uint64_t live, steady now,
                                wall wall_now, uint32_t* retry_ms) {
    std::string m;
    // A batch that no wait would let in: say so, with no time to retry at.
    for (auto [limit, name] : {std::pair{q.max_queued, "max_queued"}, std::pair{q.requests_per_minute, "requests_per_minute"}}) {
        if (limit > 0 && jobs > limit) {
            *retry_ms = 0;
            m.append("a batch of ").append(std::to_string(jobs)).append(" jobs can never fit ").append(name).append(" = ");
            m.append(std::to_string(limit)).append(" for '").append(who).append("': split it into batches of at most ");
            m.append(std::to_string(limit));
            return m;
        }
    }
    if (q.max_queued > 0 && live + jobs > q.max_queued) {
        *retry_ms = 1000;  // no clock resets this one: a finished request does
        m.append(std::to_string(live)).append(" of your requests are waiting or running and ").append(std::to_string(jobs));
        m.append(" more would pass max_queued = ").append(std::to_string(q.max_queued)).append(" for '").append(who);
        m.append("'; try again when one has finished");
        return m;
    }
    if (q.requests_per_minute == 0 && q.tokens_per_day == 0) return "";
    use& u = use_[who];
    roll_minute(u, now);
    roll_day(u, wall_now);
    if (q.requests_per_minute > 0 && uint64_t{u.minute_requests} + jobs > q.requests_per_minute) {
        const auto left = std::chrono::minutes(1) - (now - u.minute_start);
        *retry_ms = static_cast<uint32_t>(std::max<int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
        m.append("'").append(who).append("' has used ").append(std::to_string(u.minute_requests)).append(" of ");
        m.append(std::to_string(q.requests_per_minute)).append(" requests this minute");
        if (jobs > 1) m.append(" (this batch has ").append(std::to_string(jobs)).append(")");
        m.append("; the count resets in ").append(std::to_string((*retry_ms + 999) / 1000)).append(" s");
        return m;
    }
    if (q.tokens_per_day > 0 && u.day_tokens >= q.tokens_per_day) {
        *retry_ms = ms_to_next_utc_day(wall_now);
        m.append("'").append(who).append("' has used ").append(std::to_string(u.day_tokens)).append(" of ");
        m.append(std::to_string(q.tokens_per_day)).append(" tokens today; the count resets at 00:00 UTC, in ");
        m.append(std::to_string((*retry_ms + 59999) / 60000)).append(" min");
        return m;
    }
    return "";
}

void quota_book::charge(const std::string& who, uint32_t jobs, steady now) {
    use& u = use_[who];
    roll_minute(u, now);
    u.minute_requests += jobs;
}

void quota_book::tokens(const std::string& who, uint64_t n, wall wall_now) {
    use& u = use_[who];
    roll_day(u, wall_now);
    u.day_tokens += n;
}

uint64_t quota_book::tokens_today(const std::string& who, wall wall_now) const {
    auto it = use_.find(who);
    return it == use_.end() || it->second.day != utc_day(wall_now) ? 0 : it->second.day_tokens;
}

}  // namespace hearth
