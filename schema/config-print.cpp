// Printing a configuration as TOML (`--print-config`): every key with a comment saying what it
// does and its range, in an order config_parse reads back to the same values.
#include "config.h"

#include "curve-keys.h"

#include <charconv>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace hearth {
namespace {

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char ch : s) {
        switch (ch) {
            case '"': out.append("\\\""); break;
            case '\\': out.append("\\\\"); break;
            case '\b': out.append("\\b"); break;
            case '\t': out.append("\\t"); break;
            case '\n': out.append("\\n"); break;
            case '\f': out.append("\\f"); break;
            case '\r': out.append("\\r"); break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                    out.append(buf);
                } else {
                    out.push_back(static_cast<char>(ch));
                }
        }
    }
    out.push_back('"');
    return out;
}

std::string quote_list(const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) out.append(", ");
        out.append(quote(v[i]));
    }
    return out.append("]");
}

void put(std::ostringstream& os, const char* comment, const char* key, const std::string& value) {
    os << "# " << comment << "\n" << key << " = " << value << "\n";
}

void put(std::ostringstream& os, const char* comment, const char* key, uint32_t value) {
    put(os, comment, key, std::to_string(value));
}

void put(std::ostringstream& os, const char* comment, const char* key, uint64_t value) {
    put(os, comment, key, std::to_string(value));
}

void put(std::ostringstream& os, const char* comment, const char* key, bool value) {
    put(os, comment, key, std::string(value ? "true" : "false"));
}

// A table name part: bare when TOML allows it (every name the reader accepts), else quoted.
std::string toml_key(const std::string& name) { return key_name_valid(name) ? name : quote(name); }

void put_limits(std::ostringstream& os, const std::string& table, const quota_limits& q) {
    os << "\n[" << table << "]\n";
    put(os, "REQUESTs accepted per minute (a batch counts its jobs); 0: no limit", "requests_per_minute", q.requests_per_minute);
    put(os, "prompt + completion tokens per UTC day; 0: no limit", "tokens_per_day", q.tokens_per_day);
    put(os, "requests and batch jobs not yet finished at once; 0: no limit", "max_queued", q.max_queued);
}

// The shortest text that reads back as the same double, always with a '.' so TOML sees a float.
void put(std::ostringstream& os, const char* comment, const char* key, double value) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    std::string text(buf, ec == std::errc() ? end : buf);
    if (text.find_first_of(".eE") == std::string::npos) text.append(".0");
    put(os, comment, key, text);
}

}  // namespace

std::string config_to_toml(const config& c) {
    std::ostringstream os;
    os << "# hearth effective configuration";
    if (!c.source.empty()) {
        std::string shown = c.source;  // a comment ends at a newline: keep the name on one line
        for (char& ch : shown)
            if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
        os << " (read from " << shown << ")";
    }
    os << "\n\n";
    put(os, "trace, debug, info, warn, error or off", "log_level", quote(c.log_level));
    put(os, "sockets live here", "runtime_dir", quote(c.runtime_dir));
    put(os, "data (usage log, batch jobs) lives here", "state_dir", quote(c.state_dir));

    const broker_config& b = c.broker;
    os << "\n[broker]\n";
    put(os, "clients connect here", "client_endpoint", quote(b.client_endpoint));
    put(os, "workers connect here", "worker_endpoint", quote(b.worker_endpoint));
    put(os, "queued interactive requests per service (1..1000000)", "queue_interactive", b.queue_interactive);
    put(os, "queued batch requests per service (1..1000000)", "queue_batch", b.queue_batch);
    put(os, "larger requests are refused too_large (1024..15728640)", "max_request_bytes", b.max_request_bytes);
    put(os, "jobs in one batch (1..1000000)", "max_batch_jobs", b.max_batch_jobs);
    put(os, "larger batch submissions are refused too_large (1024..1073741824)", "max_batch_bytes", b.max_batch_bytes);
    put(os, "heartbeat interval, both ways (10..60000)", "heartbeat_ms", b.heartbeat_ms);
    put(os, "heartbeats missed before a peer is dead (1..100)", "liveness", b.liveness);
    put(os, "fail no_worker after waiting this long for a worker; 0: at once", "no_worker_ms", b.no_worker_ms);
    put(os, "services the broker accepts", "services", quote_list(b.services));
    put(os, "the usage log (SQLite); \"off\" keeps none (benchmarks only)", "usage_db", quote(b.usage_db));
    put(os, "bytes of waiting requests held in memory; past this new work is refused overloaded", "queue_bytes", b.queue_bytes);
    if (!b.whitelist.empty()) put(os, "the safety whitelist (schema/whitelist.md); SIGHUP reloads it", "whitelist", quote(b.whitelist));
    if (!b.curve_secret_key.empty()) put(os, "the broker's CURVE key file (a path or a key name)", "curve_secret_key", quote(b.curve_secret_key));
    if (!b.allowlist.empty()) put(os, "who may connect over CURVE (schema/allowlist.md); SIGHUP reloads it", "allowlist", quote(b.allowlist));
    put(os, "allow endpoints reachable from the LAN without CURVE (warned at every start)", "insecure_lan", b.insecure_lan);
    // Tables last: after a [table] header no key of [broker] itself may follow.
    put_limits(os, "broker.quota", b.quota);
    for (const auto& [role, q] : b.quota_roles) put_limits(os, std::string("broker.quota.role.").append(toml_key(role)), q);
    for (const auto& [name, q] : b.quota_clients) put_limits(os, std::string("broker.quota.client.").append(toml_key(name)), q);

    const worker_config& w = c.worker;
    os << "\n[worker]\n";
    put(os, "the broker's worker endpoint", "broker_endpoint", quote(w.broker_endpoint));
    put(os, "GGUF model file", "model", quote(w.model));
    put(os, "shown in hearth status", "name", quote(w.name));
    put(os, "services this worker offers", "services", quote_list(w.services));
    put(os, "requests decoded together (1..64)", "slots", w.slots);
    put(os, "engine threads; 0: all cores (0..1024)", "threads", w.threads);
    put(os, "positions per slot (16..131072)", "ctx_size", w.ctx_size);
    put(os, "prompt tokens per engine step (1..8192)", "batch_size", w.batch_size);
    put(os, "first reconnect delay after losing the broker (1..600000)", "reconnect_min_ms", w.reconnect_min_ms);
    put(os, "the delay doubles up to this (1..600000)", "reconnect_max_ms", w.reconnect_max_ms);
    put(os, "bytes of RSS this worker may use (\"512M\"); 0: no budget", "memory_budget", w.memory_budget);
    put(os, "how often the resource guard samples memory (10..600000)", "guard_interval_ms", w.guard_interval_ms);
    put(os, "where /proc and /sys are read (tests use fake files)", "guard_root", quote(w.guard_root));
    put(os, "MemAvailable or cgroup headroom share below this throttles (0..1)", "guard_throttle_available", w.guard_throttle_available);
    put(os, "... below this is critical (0..1)", "guard_critical_available", w.guard_critical_available);
    put(os, "memory PSI some avg10 % above this throttles", "guard_psi_some_throttle", w.guard_psi_some_throttle);
    put(os, "memory PSI full avg10 % above this is critical", "guard_psi_full_critical", w.guard_psi_full_critical);
    put(os, "RSS above budget * this throttles", "guard_budget_throttle", w.guard_budget_throttle);
    put(os, "RSS above budget * this is critical", "guard_budget_critical", w.guard_budget_critical);
    put(os, "clear samples in a row before stepping down (1..1000)", "guard_recover_samples", w.guard_recover_samples);
    if (!w.curve_secret_key.empty()) put(os, "this worker's CURVE key file (a path or a key name)", "curve_secret_key", quote(w.curve_secret_key));
    if (!w.broker_public_key.empty()) put(os, "the broker's public key, or its .pub file", "broker_public_key", quote(w.broker_public_key));

    os << "\n[client]\n";
    put(os, "the broker's client endpoint", "broker_endpoint", quote(c.client.broker_endpoint));
    put(os, "give up waiting for a reply after this; 0: never", "timeout_ms", c.client.timeout_ms);
    if (!c.client.curve_secret_key.empty()) put(os, "this client's CURVE key file (a path or a key name)", "curve_secret_key", quote(c.client.curve_secret_key));
    if (!c.client.broker_public_key.empty()) put(os, "the broker's public key, or its .pub file", "broker_public_key", quote(c.client.broker_public_key));
    return os.str();
}

}  // namespace hearth
