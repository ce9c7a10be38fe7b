// hearth audit: the usage log read straight from its SQLite file (no broker needed), or through
// the broker (AUDIT) when the file is not on this machine: a summary over a time range, `audit
// verify` (the hash chain) and `audit prune` (retention, on the file only).
#include "cli.h"
#include "config.h"
#include "protocol-audit.h"
#include "usage-db.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <memory>

namespace hearth::cli {

namespace {


constexpr int64_t us_per_s = 1000000;
constexpr int64_t no_end = std::numeric_limits<int64_t>::max();  // --until not given: no upper bound

struct audit_options {
    std::string since;                       // --since WHEN; empty: 7 days back
    std::string until;                       // --until WHEN; empty: no end
    std::string db;                          // --db; empty: <state_dir>/usage.db
    int64_t top = 10;                        // --top N
    bool csv = false;                        // --csv: the per-request rows
    bool remote = false;                     // --remote: ask the broker even if the file is here
    std::string older_than;                  // prune --older-than
    CLI::App* summary = nullptr;             // `audit`, to tell which of its options were given
    CLI::App* verify = nullptr;              // parsed when `audit verify`
    CLI::App* prune = nullptr;               // parsed when `audit prune`
};


int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil), so
// parsing never depends on the local time zone.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int days_in_month(int64_t y, int64_t m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

// "2026-11-23T04:53:56Z" (UTC); microseconds only when there are any and `micros`.
std::string iso_time(int64_t us, bool micros = true) {
    if (us == no_end) return "now";
    const std::time_t s = static_cast<std::time_t>(us >= 0 ? us / us_per_s : (us - us_per_s + 1) / us_per_s);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out = buf;
    const int64_t frac = us - static_cast<int64_t>(s) * us_per_s;
    if (frac && micros) {
        std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
        out += buf;
    }
    out += 'Z';
    return out;
}

// Reads exactly `n` digits at text[pos]; false otherwise.
bool digits_read(const std::string& text, size_t& pos, size_t n, int64_t& v) {
    if (pos + n > text.size()) return false;
    v = 0;
    for (size_t i = 0; i < n; ++i) {
        const char c = text[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    return true;
}

// "90d", "12h", "30m", "45s", "2w" in microseconds; nullopt when it is not of that form.
std::optional<int64_t> duration_us_parse(const std::string& text) {
    if (text.size() < 2) return std::nullopt;
    int64_t unit = 0;
    switch (text.back()) {
    case 's': unit = us_per_s; break;
    case 'm': unit = 60 * us_per_s; break;
    case 'h': unit = 3600 * us_per_s; break;
    case 'd': unit = 86400 * us_per_s; break;
    case 'w': unit = 7 * 86400 * us_per_s; break;
    default: return std::nullopt;
    }
    int64_t v = 0;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
        const char c = text[i];
        if (c < '0' || c > '9') return std::nullopt;
        if (v > (std::numeric_limits<int64_t>::max() / unit - 9) / 10) return std::nullopt;  // beyond any clock
        v = v * 10 + (c - '0');
    }
    return v * unit;
}

// "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM[:SS[.frac]][Z|+HH:MM|-HH:MM]" (UTC when no
// zone is given); nullopt when it is neither.
std::optional<int64_t> time_us_parse(const std::string& text) {
    size_t p = 0;
    int64_t y, mo, d, h = 0, mi = 0, s = 0, frac_us = 0, offset_s = 0;
    if (!digits_read(text, p, 4, y) || p >= text.size() || text[p++] != '-' || !digits_read(text, p, 2, mo) || p >= text.size() ||
        text[p++] != '-' || !digits_read(text, p, 2, d))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return std::nullopt;
    if (p < text.size()) {
        if (text[p] != 'T' && text[p] != 't' && text[p] != ' ') return std::nullopt;
        ++p;
        if (!digits_read(text, p, 2, h) || p >= text.size() || text[p++] != ':' || !digits_read(text, p, 2, mi)) return std::nullopt;
        if (p < text.size() && text[p] == ':') {
            ++p;
            if (!digits_read(text, p, 2, s)) return std::nullopt;
            if (p < text.size() && (text[p] == '.' || text[p] == ',')) {
                ++p;
                int64_t scale = 100000;
                const size_t start = p;
                while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
                    frac_us += (text[p] - '0') * scale;
                    scale /= 10;
                    ++p;
                }
                if (p == start) return std::nullopt;
            }
        }
        if (h > 23 || mi > 59 || s > 60) return std::nullopt;
        if (p < text.size()) {
            const char z = text[p++];
            if (z == 'Z' || z == 'z') {
                if (p != text.size()) return std::nullopt;
            } else if (z == '+' || z == '-') {
                int64_t oh, om;
                if (!digits_read(text, p, 2, oh)) return std::nullopt;
                if (p < text.size() && text[p] == ':') ++p;
                if (!digits_read(text, p, 2, om) || p != text.size() || oh > 23 || om > 59) return std::nullopt;
                offset_s = (oh * 3600 + om * 60) * (z == '+' ? 1 : -1);
            } else {
                return std::nullopt;
            }
        }
    }
    const int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_s;
    return secs * us_per_s + frac_us;
}

// --since / --until: a duration back from now or a date/time.
int64_t when_parse(const std::string& flag, const std::string& text, int64_t now) {
    if (auto d = duration_us_parse(text)) return now - *d;
    if (auto t = time_us_parse(text)) return *t;
    std::string msg = flag;
    msg.append(": bad time '").append(text).append("' (a duration back from now: 90d, 12h, 30m, 45s, 2w; a date YYYY-MM-DD (UTC); or ")
        .append("an ISO time 2026-01-31T08:00:00Z)");
    throw usage_error(msg);
}

std::string db_path_of(const globals& g, const audit_options& o) {
    if (!o.db.empty()) return o.db;
    config cfg;
    try {
        cfg = config_load(g.config_path);
    } catch (const std::exception& e) {
        throw usage_error(std::string("config: ").append(e.what()));
    }
    if (cfg.broker.usage_db == "off") throw usage_error("audit: the usage log is off in the configuration (broker.usage_db = \"off\"); give --db FILE");
    if (!cfg.broker.usage_db.empty()) return cfg.broker.usage_db;
    std::string p = cfg.state_dir;
    p.append("/usage.db");
    return p;
}

// Opens an existing database; a missing one is reported (exit 1), never created.
std::unique_ptr<usage_db> db_open(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        std::fprintf(stderr, "hearth: no usage database at %s (has the broker run?)\n", path.c_str());
        return nullptr;
    }
    try {
        return std::make_unique<usage_db>(path, false);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hearth: %s\n", e.what());
        return nullptr;
    }
}

// The broker answers for the file when asked to, when --endpoint names a broker, or when the
// file is not on this machine (and --db did not name one).
bool broker_wanted(const globals& g, const audit_options& o, const std::string& path) {
    if (o.remote) return true;
    if (!o.db.empty()) return false;
    if (!g.endpoint.empty()) return true;
    struct stat st;
    return ::stat(path.c_str(), &st) != 0;
}

// One AUDIT call; prints the failure and returns nullopt when there is no answer. `local_path`:
// the file that was not found here, named too when the broker does not answer either.
std::optional<wire::audit_reply> audit_ask(client& c, const globals& g, wire::audit_call call, const std::string& local_path,
                                           int* exit_out) {
    const audit_result r = c.audit(std::move(call), static_cast<int>(g.broker_timeout_ms));
    if (r.ok) return r.reply;
    if (!r.transport_failed) {
        *exit_out = error_print(r.error);
    } else if (!local_path.empty()) {
        std::fprintf(stderr, "hearth: no usage database at %s, and no broker answers for it: %s\n", local_path.c_str(),
                     r.transport_message.c_str());
        *exit_out = exit_failure;
    } else {
        *exit_out = transport_error_print(r.transport_message);
    }
    return std::nullopt;
}

// The file audit_ask names when the broker was asked only because it is missing here.
std::string missing_file(const globals& g, const audit_options& o, const std::string& path) {
    return o.remote || !g.endpoint.empty() ? std::string() : path;
}

// The numbers of a summary, from either source.
struct summary_data {
    std::string db;                          // the file they come from (on the broker's machine when remote)
    std::vector<usage_group> by_client;      // one group per client, by name
    std::vector<usage_group> by_service;     // one per service
    std::vector<usage_group> by_day;         // one per UTC day
    std::vector<usage_row> slowest;          // slowest requests first, up to --top
};

std::string json_dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

nlohmann::json group_json(const usage_group& u) {
    return {{"key", u.key},
            {"requests", u.requests},
            {"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"tokens", u.prompt_tokens + u.completion_tokens},
            {"errors", u.errors},
            {"filtered", u.filtered}};
}

double total_ms_of(const usage_row& r) {
    if (!r.finished_us || !r.received_us) return 0;
    return static_cast<double>(r.finished_us - r.received_us) / 1000.0;
}

std::string ms_text(double ms) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", ms);
    return buf;
}

// RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled.
std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    q += '"';
    return q;
}

std::string time_or_empty(int64_t us) { return us ? iso_time(us) : std::string(); }

void csv_rows_print(const std::vector<usage_row>& rows, bool header) {
    if (header)
        std::printf("seq,request_id,client,service,priority,model,worker,received,started,first_token,finished,total_ms,"
                    "prompt_tokens,completion_tokens,status,filter_verdict,filter_rule\n");
    for (const usage_row& r : rows) {
        const std::vector<std::string> f = {std::to_string(r.seq), csv_field(r.request_id), csv_field(r.client), csv_field(r.service),
                                            csv_field(r.priority), csv_field(r.model), csv_field(r.worker), time_or_empty(r.received_us),
                                            time_or_empty(r.started_us), time_or_empty(r.first_token_us), time_or_empty(r.finished_us),
                                            ms_text(total_ms_of(r)), std::to_string(r.prompt_tokens), std::to_string(r.completion_tokens),
                                            csv_field(r.status), csv_field(r.filter_verdict), csv_field(r.filter_rule)};
        std::string line;
        for (size_t i = 0; i < f.size(); ++i) {
            if (i) line += ',';
            line += f[i];
        }
        std::printf("%s\n", line.c_str());
    }
}

void groups_print(const char* heading, const std::vector<usage_group>& groups) {
    table t = {{heading, "REQUESTS", "TOKENS-IN", "TOKENS-OUT", "ERRORS", "FILTERED"}};
    for (const usage_group& u : groups)
        t.push_back({u.key, std::to_string(u.requests), std::to_string(u.prompt_tokens), std::to_string(u.completion_tokens),
                     std::to_string(u.errors), std::to_string(u.filtered)});
    table_print(t);
}

int summary_run(const globals& g, const audit_options& o) {
    if (g.json && o.csv) throw usage_error("audit: give --json or --csv, not both");
    if (o.top < 1) throw usage_error("audit: --top must be at least 1");
    const int64_t now = now_us();
    const int64_t from = o.since.empty() ? now - 7 * 86400 * us_per_s : when_parse("--since", o.since, now);
    const int64_t to = o.until.empty() ? no_end : when_parse("--until", o.until, now);
    if (from >= to) throw usage_error("audit: --since must be before --until");
    const std::string local_path = o.remote && o.db.empty() ? std::string() : db_path_of(g, o);
    summary_data d;
    if (broker_wanted(g, o, local_path)) {
        client c(client_options_make(g));
        int code = exit_ok;
        wire::audit_call call;
        call.from_us = from;
        call.to_us = to;
        if (o.csv) {
            // Page by page, each after the last row of the one before.
            call.op = wire::audit_op::rows;
            for (bool more = true; more;) {
                auto r = audit_ask(c, g, call, missing_file(g, o, local_path), &code);
                if (!r) return code;
                csv_rows_print(r->rows, call.after_seq == 0 && call.after_finished_us == std::numeric_limits<int64_t>::min());
                more = r->more && !r->rows.empty();
                if (more) {
                    call.after_finished_us = r->rows.back().finished_us;
                    call.after_seq = r->rows.back().seq;
                }
            }
            return exit_ok;
        }
        call.op = wire::audit_op::summary;
        call.top = static_cast<uint32_t>(std::min<int64_t>(o.top, 1000));
        auto r = audit_ask(c, g, call, missing_file(g, o, local_path), &code);
        if (!r) return code;
        d = {r->db, std::move(r->by_client), std::move(r->by_service), std::move(r->by_day), std::move(r->slowest)};
    } else {
        std::unique_ptr<usage_db> db = db_open(local_path);
        if (!db) return exit_failure;
        if (o.csv) {
            csv_rows_print(db->rows(from, to), true);
            return exit_ok;
        }
        d = {local_path, db->summary(from, to, "client"), db->summary(from, to, "service"), db->summary(from, to, "day"),
             db->slowest(from, to, o.top)};
    }
    const std::string& path = d.db;
    const std::vector<usage_group>& by_client = d.by_client;
    const std::vector<usage_group>& by_service = d.by_service;
    const std::vector<usage_group>& by_day = d.by_day;
    const std::vector<usage_row>& slow = d.slowest;
    usage_group total;
    total.key = "total";
    for (const usage_group& u : by_client) {
        total.requests += u.requests;
        total.prompt_tokens += u.prompt_tokens;
        total.completion_tokens += u.completion_tokens;
        total.errors += u.errors;
        total.filtered += u.filtered;
    }
    std::vector<usage_group> top = by_client;
    std::stable_sort(top.begin(), top.end(), [](const usage_group& a, const usage_group& b) {
        return a.prompt_tokens + a.completion_tokens > b.prompt_tokens + b.completion_tokens;
    });
    if (top.size() > static_cast<size_t>(o.top)) top.resize(static_cast<size_t>(o.top));

    if (g.json) {
        nlohmann::json j = {{"db", path}, {"from", iso_time(from)}, {"from_us", from}};
        j["to"] = to == no_end ? nlohmann::json(nullptr) : nlohmann::json(iso_time(to));
        j["to_us"] = to == no_end ? nlohmann::json(nullptr) : nlohmann::json(to);
        nlohmann::json t = group_json(total);
        t.erase("key");
        j["totals"] = t;
        using section = std::pair<const char*, const std::vector<usage_group>*>;
        for (const auto& [name, groups] : {section{"by_client", &by_client}, section{"by_service", &by_service}, section{"by_day", &by_day},
                                           section{"top_clients", &top}}) {
            nlohmann::json a = nlohmann::json::array();
            for (const usage_group& u : *groups) a.push_back(group_json(u));
            j[name] = a;
        }
        nlohmann::json s = nlohmann::json::array();
        for (const usage_row& r : slow)
            s.push_back({{"seq", r.seq}, {"id", r.request_id}, {"client", r.client}, {"service", r.service}, {"model", r.model},
                         {"worker", r.worker}, {"total_ms", total_ms_of(r)}, {"status", r.status}, {"finished", iso_time(r.finished_us)}});
        j["slowest"] = s;
        std::printf("%s\n", json_dump(j).c_str());
        return exit_ok;
    }

    // A non-admin key is not told where the broker keeps its file.
    std::printf("usage log %s, from %s to %s\n\n", path.empty() ? "(on the broker)" : path.c_str(), iso_time(from, false).c_str(), iso_time(to, false).c_str());
    table_print({{"requests", std::to_string(total.requests)},
                 {"tokens in", std::to_string(total.prompt_tokens)},
                 {"tokens out", std::to_string(total.completion_tokens)},
                 {"errors", std::to_string(total.errors)},
                 {"filtered", std::to_string(total.filtered)}});
    if (total.requests == 0) {
        std::printf("\nno requests in this range\n");
        return exit_ok;
    }
    std::printf("\n");
    groups_print("CLIENT", by_client);
    std::printf("\n");
    groups_print("SERVICE", by_service);
    std::printf("\n");
    groups_print("DAY", by_day);
    std::printf("\ntop %zu clients by tokens\n", top.size());
    table tt = {{"CLIENT", "TOKENS", "REQUESTS"}};
    for (const usage_group& u : top) tt.push_back({u.key, std::to_string(u.prompt_tokens + u.completion_tokens), std::to_string(u.requests)});
    table_print(tt);
    std::printf("\n%zu slowest requests\n", slow.size());
    table ts = {{"ID", "CLIENT", "SERVICE", "TOTAL-MS", "STATUS"}};
    for (const usage_row& r : slow) ts.push_back({r.request_id, r.client, r.service, ms_text(total_ms_of(r)), r.status});
    table_print(ts);
    return exit_ok;
}

nlohmann::json verify_json(const usage_verify_result& v) {
    nlohmann::json j = {{"ok", v.ok}, {"rows", v.rows_checked}};
    if (!v.ok) {
        j["first_bad_seq"] = v.first_bad_seq;
        j["problem"] = v.problem;
    }
    return j;
}

int verify_run(const globals& g, const audit_options& o) {
    std::string path = o.remote && o.db.empty() ? std::string() : db_path_of(g, o);
    usage_verify_result v;
    if (broker_wanted(g, o, path)) {
        client c(client_options_make(g));
        int code = exit_ok;
        wire::audit_call call;
        call.op = wire::audit_op::verify;
        auto r = audit_ask(c, g, call, missing_file(g, o, path), &code);
        if (!r) return code;
        path = r->db;
        v = r->verify;
    } else {
        std::unique_ptr<usage_db> db = db_open(path);
        if (!db) return exit_failure;
        v = db->verify();
    }
    if (g.json) {
        nlohmann::json j = verify_json(v);
        j["db"] = path;
        std::printf("%s\n", json_dump(j).c_str());
    } else if (v.ok) {
        std::printf("chain intact: %lld rows\n", static_cast<long long>(v.rows_checked));
    } else {
        std::printf("chain broken: %s (%lld rows checked)\n", v.problem.c_str(), static_cast<long long>(v.rows_checked));
    }
    return v.ok ? exit_ok : exit_failure;
}

int prune_run(const globals& g, const audit_options& o) {
    const std::optional<int64_t> age = duration_us_parse(o.older_than);
    if (!age || *age <= 0) {
        std::string msg = "audit prune: bad --older-than '";
        msg.append(o.older_than).append("' (a positive duration: 90d, 12h, 30m, 45s, 2w)");
        throw usage_error(msg);
    }
    // Deleting audit rows is for whoever holds the file, never for any client of the broker.
    if (o.remote) throw usage_error("audit prune works on the database file only (run it on the broker's machine, or give --db)");
    const std::string path = db_path_of(g, o);
    std::unique_ptr<usage_db> db = db_open(path);
    if (!db) return exit_failure;
    const int64_t cutoff = now_us() - *age;
    const int64_t deleted = db->prune_before(cutoff);
    const usage_verify_result v = db->verify();
    if (g.json) {
        nlohmann::json j = {{"db", path}, {"deleted", deleted}, {"cutoff", iso_time(cutoff)}, {"cutoff_us", cutoff}, {"verify", verify_json(v)}};
        std::printf("%s\n", json_dump(j).c_str());
    } else {
        std::printf("deleted %lld rows finished before %s\n", static_cast<long long>(deleted), iso_time(cutoff, false).c_str());
        if (v.ok) std::printf("chain intact: %lld rows\n", static_cast<long long>(v.rows_checked));
        else std::printf("chain broken: %s (%lld rows checked)\n", v.problem.c_str(), static_cast<long long>(v.rows_checked));
    }
    return v.ok ? exit_ok : exit_failure;
}

int audit_run(const globals& g, const audit_options& o) {
    const bool sub = o.verify->parsed() || o.prune->parsed();
    if (sub) {
        // The summary's options reach `audit` through fallthrough; they mean nothing here.
        for (const char* name : {"--since", "--until", "--top", "--csv"})
            if (o.summary->count(name)) throw usage_error(std::string("audit: ").append(name).append(" is for the summary, not verify or prune"));
    }
    try {
        if (o.verify->parsed()) return verify_run(g, o);
        if (o.prune->parsed()) return prune_run(g, o);
        return summary_run(g, o);
    } catch (const usage_db_error& e) {
        std::fprintf(stderr, "hearth: %s\n", e.what());
        return exit_failure;
    }
}

}  // namespace

void audit_add(CLI::App& app, command_list& cmds) {
    const char* const db_help = "usage database (default: broker.usage_db from the configuration, normally <state_dir>/usage.db)";
    const char* const remote_help =
        "ask the broker (AUDIT) instead of reading the file; the default when the file is not on this machine or --endpoint is given";
    auto o = std::make_shared<audit_options>();
    CLI::App* sub = app.add_subcommand(
        "audit",
        "usage report read from the usage database (no broker needed; through the broker when the file is elsewhere): totals, by client, service and day, top clients, slowest "
        "requests; 'audit verify' checks the hash chain, 'audit prune' deletes old rows");
    sub->fallthrough();
    sub->require_subcommand(0, 1);
    sub->add_option("--since", o->since,
                    "start of the range: a duration back from now (90d, 12h, 30m, 45s, 2w), a date YYYY-MM-DD (UTC) or an ISO time "
                    "(2026-01-31T08:00:00Z; UTC when no zone) (default: 7d)");
    sub->add_option("--until", o->until, "end of the range (exclusive), same forms as --since (default: now)");
    sub->add_option("--db", o->db, db_help);
    sub->add_flag("--remote", o->remote, remote_help);
    sub->add_option("--top", o->top, "how many top clients and slowest requests to list")->capture_default_str();
    sub->add_flag("--csv", o->csv,
                  "print the requests in the range as one CSV table with a header line (seq, request_id, client, service, priority, model, "
                  "worker, received, started, first_token, finished, total_ms, prompt_tokens, completion_tokens, status, filter_verdict, "
                  "filter_rule; times ISO 8601 UTC) instead of the summary");
    o->summary = sub;
    o->verify = sub->add_subcommand("verify", "walk the hash chain; exit 0 only when no row was edited, inserted or deleted");
    o->verify->fallthrough();
    o->verify->add_option("--db", o->db, db_help);
    o->verify->add_flag("--remote", o->remote, remote_help);
    o->prune = sub->add_subcommand("prune", "delete rows finished before a cutoff, keeping the rest of the chain verifiable");
    o->prune->fallthrough();
    o->prune->add_option("--older-than", o->older_than, "delete rows finished longer ago than this (90d, 12h, 30m, 45s, 2w)")->required();
    o->prune->add_option("--db", o->db, db_help);
    cmds.push_back({sub, [o](const globals& g) { return audit_run(g, *o); }});
}

}  // namespace hearth::cli
