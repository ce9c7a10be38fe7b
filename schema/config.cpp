// Reading, validating and printing hearth.toml. Every key is checked on its own (type, range) and
// unknown keys are errors, so a typo never silently falls back to a default. All problems found in
// one file are reported together, sorted by line, so a user fixes them in one pass.
#include "config.h"

#include "byte-size.h"
#include "curve-keys.h"
#include "spelling.h"
#include "toml-names.h"

#include <toml++/toml.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace hearth {
namespace {

namespace fs = std::filesystem;

// --- environment and default directories -----------------------------------------------------

std::string env_get(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

// XDG says relative paths in these variables are invalid and must be ignored.
std::string env_absolute(const char* name) {
    std::string v = env_get(name);
    return (!v.empty() && v.front() == '/') ? v : std::string();
}

// systemd joins several RuntimeDirectory=/StateDirectory= entries with ':'; the first is ours.
std::string first_of_list(const std::string& v) { return v.substr(0, v.find(':')); }

std::string strip_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::string home_dir() {
    std::string home = env_absolute("HOME");
    if (!home.empty()) return strip_trailing_slashes(home);
    // Services started without HOME (systemd system units) still have a passwd entry.
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    if (getpwuid_r(geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found && found->pw_dir)
        return strip_trailing_slashes(found->pw_dir);
    return "/";
}

// "~" and "~/x" mean the home directory; "~user" is not supported (and left alone).
std::string expand_home(const std::string& s) {
    if (s == "~") return home_dir();
    if (s.rfind("~/", 0) == 0) {
        std::string out = home_dir();
        if (out != "/") out.push_back('/');
        out.append(s, 2, std::string::npos);
        return out;
    }
    return s;
}

std::string default_runtime_dir() {
    std::string systemd = first_of_list(env_get("RUNTIME_DIRECTORY"));
    if (!systemd.empty()) return strip_trailing_slashes(systemd);
    std::string xdg = env_absolute("XDG_RUNTIME_DIR");
    if (!xdg.empty()) return strip_trailing_slashes(xdg).append("/hearth");
    if (geteuid() == 0) return "/run/hearth";
    return std::string("/tmp/hearth-").append(std::to_string(geteuid()));
}

std::string default_state_dir() {
    std::string systemd = first_of_list(env_get("STATE_DIRECTORY"));
    if (!systemd.empty()) return strip_trailing_slashes(systemd);
    std::string xdg = env_absolute("XDG_STATE_HOME");
    if (!xdg.empty()) return strip_trailing_slashes(xdg).append("/hearth");
    std::string home = home_dir();
    if (home == "/") home.clear();
    return home.append("/.local/state/hearth");
}

std::string default_worker_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
    return std::string(host).append(":").append(std::to_string(getpid()));
}

std::string ipc_endpoint(const std::string& dir, const char* file) {
    return std::string("ipc://").append(dir).append("/").append(file);
}

// --- value checks shared by the reader ---------------------------------------------------------

constexpr uint64_t kMaxDayMs = 86400000;  // a day: longer waits are surely a mistake
const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "off"};
const std::vector<std::string> kTopKeys = {"log_level", "runtime_dir", "state_dir", "broker", "worker", "client"};
const std::vector<std::string> kBrokerKeys = {"client_endpoint", "worker_endpoint", "queue_interactive",
                                              "queue_batch",     "max_request_bytes", "max_batch_jobs", "max_batch_bytes", "heartbeat_ms",
                                              "liveness",        "no_worker_ms",    "services",
                                              "usage_db",        "whitelist", "queue_bytes",
                                              "curve_secret_key", "allowlist", "insecure_lan", "quota"};
const std::vector<std::string> kWorkerKeys = {"broker_endpoint", "model",      "name",
                                              "services",        "slots",      "threads",
                                              "ctx_size",        "batch_size", "reconnect_min_ms",
                                              "reconnect_max_ms", "memory_budget", "guard_interval_ms",
                                              "guard_root", "guard_throttle_available", "guard_critical_available",
                                              "guard_psi_some_throttle", "guard_psi_full_critical",
                                              "guard_budget_throttle", "guard_budget_critical", "guard_recover_samples",
                                              "curve_secret_key", "broker_public_key"};
const std::vector<std::string> kClientKeys = {"broker_endpoint", "timeout_ms", "curve_secret_key", "broker_public_key"};
const std::vector<std::string> kLimitKeys = {"requests_per_minute", "tokens_per_day", "max_queued"};
const std::vector<std::string> kQuotaKeys = {"requests_per_minute", "tokens_per_day", "max_queued", "role", "client"};
const std::vector<std::string> kRoles = {"client", "worker", "admin"};  // allowlist.h's key_role names

bool valid_service_name(const std::string& s) {
    if (s.empty() || s.size() > 32) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    });
}

// Returns "" when fine, else why not.
std::string endpoint_problem(const std::string& e) {
    for (const char* scheme : {"ipc://", "tcp://", "inproc://"}) {
        const size_t n = std::strlen(scheme);
        if (e.rfind(scheme, 0) == 0) {
            if (e.size() == n) return std::string("'").append(e).append("' names no address after ").append(scheme);
            return "";
        }
    }
    return std::string("'").append(e).append("' must start with ipc://, tcp:// or inproc://");
}

// The host of a tcp address ("host:port", "[v6]:port", "v6:port" as ZeroMQ splits it at the last
// ':'); "" when there is none.
std::string tcp_host(const std::string& addr) {
    if (!addr.empty() && addr.front() == '[') {
        const size_t close = addr.find(']');
        return close == std::string::npos ? std::string() : addr.substr(1, close - 1);
    }
    const size_t colon = addr.rfind(':');
    return colon == std::string::npos ? addr : addr.substr(0, colon);
}

bool host_is_loopback(std::string host) {
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (host == "localhost") return true;
    in_addr v4 {};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6 {};
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;  // an interface name, "*", a LAN host name
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;  // ::ffff:127.x.y.z
}

// --- the reader: collects every problem of one file ---------------------------------------------

struct config_problem {
    uint32_t line;     // 0 when unknown
    std::string text;  // complete message, file and line included
};

class config_reader {
public:
    explicit config_reader(std::string source) : source_(source.empty() ? "<config>" : std::move(source)) {}

    void fail(const toml::source_region& where, const std::string& key, const std::string& what) {
        std::string msg = prefix(where.begin.line);
        if (!key.empty()) msg.append(key).append(": ");
        msg.append(what);
        problems_.push_back({where.begin.line, std::move(msg)});
    }

    void unknown(const toml::key& k, const std::string& section, const std::vector<std::string>& known) {
        const std::string name(k.str());
        std::string msg = prefix(k.source().begin.line);
        msg.append("unknown key '").append(qualify(section, name)).append("'");
        const std::string best = spelling_closest(name, known);  // only close misspellings
        if (!best.empty()) msg.append(" (did you mean '").append(qualify(section, best)).append("'?)");
        problems_.push_back({k.source().begin.line, std::move(msg)});
    }

    std::optional<uint32_t> read_uint(const toml::node& n, const std::string& key, uint64_t lo, uint64_t hi) {
        const auto* i = n.as_integer();
        if (!i) {
            fail(n.source(), key, std::string("expected an integer, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        const int64_t v = i->get();
        if (v < 0 || static_cast<uint64_t>(v) < lo || static_cast<uint64_t>(v) > hi) {
            fail(n.source(), key,
                 std::to_string(v).append(" is out of range ").append(std::to_string(lo)).append("..").append(
                     std::to_string(hi)));
            return std::nullopt;
        }
        return static_cast<uint32_t>(v);
    }

    std::optional<uint64_t> read_u64(const toml::node& n, const std::string& key) {
        const auto* i = n.as_integer();
        if (!i) {
            fail(n.source(), key, std::string("expected an integer, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        if (i->get() < 0) {
            fail(n.source(), key, std::to_string(i->get()).append(" must not be negative"));
            return std::nullopt;
        }
        return static_cast<uint64_t>(i->get());
    }

    std::optional<bool> read_bool(const toml::node& n, const std::string& key) {
        const auto* b = n.as_boolean();
        if (!b) {
            fail(n.source(), key, std::string("expected true or false, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        return b->get();
    }

    std::optional<double> read_real(const toml::node& n, const std::string& key, double lo, double hi) {
        double v = 0;
        if (const auto* f = n.as_floating_point()) v = f->get();
        else if (const auto* i = n.as_integer()) v = static_cast<double>(i->get());
        else {
            fail(n.source(), key, std::string("expected a number, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        if (!(v >= lo && v <= hi)) {
            std::ostringstream os;
            os << v << " is out of range " << lo << ".." << hi;
            fail(n.source(), key, os.str());
            return std::nullopt;
        }
        return v;
    }

    // Bytes as an integer or a string with a unit ("512M", "1.5G").
    std::optional<uint64_t> read_size(const toml::node& n, const std::string& key, uint64_t lo) {
        uint64_t v = 0;
        if (const auto* i = n.as_integer()) {
            if (i->get() < 0) {
                fail(n.source(), key, "must not be negative");
                return std::nullopt;
            }
            v = static_cast<uint64_t>(i->get());
        } else if (const auto* s = n.as_string()) {
            try {
                v = byte_size_parse(s->get());
            } catch (const std::invalid_argument& e) {
                fail(n.source(), key, e.what());
                return std::nullopt;
            }
        } else {
            fail(n.source(), key, std::string("expected bytes or a size like \"512M\", got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        if (v != 0 && v < lo) {
            fail(n.source(), key, byte_size_format(v).append(" is below the least useful value, ").append(byte_size_format(lo)));
            return std::nullopt;
        }
        return v;
    }

    std::optional<std::string> read_string(const toml::node& n, const std::string& key) {
        const auto* s = n.as_string();
        if (!s) {
            fail(n.source(), key, std::string("expected a string, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        return s->get();
    }

    std::optional<std::string> read_nonempty(const toml::node& n, const std::string& key) {
        auto s = read_string(n, key);
        if (s && s->empty()) {
            fail(n.source(), key, "must not be empty");
            return std::nullopt;
        }
        return s;
    }

    // A file named in the configuration: "~/" expands; anything else (a key name included) is kept.
    std::optional<std::string> read_path(const toml::node& n, const std::string& key) {
        auto s = read_nonempty(n, key);
        if (s) *s = expand_home(*s);
        return s;
    }

    // Absolute after "~/" expansion: relative runtime paths would depend on the working directory.
    std::optional<std::string> read_dir(const toml::node& n, const std::string& key) {
        auto s = read_nonempty(n, key);
        if (!s) return s;
        std::string d = strip_trailing_slashes(expand_home(*s));
        if (d.front() != '/') {
            fail(n.source(), key, std::string("'").append(*s).append("' must be an absolute path (or start with ~/)"));
            return std::nullopt;
        }
        return d;
    }

    std::optional<std::string> read_endpoint(const toml::node& n, const std::string& key) {
        auto s = read_string(n, key);
        if (!s) return s;
        std::string problem = endpoint_problem(*s);
        if (!problem.empty()) {
            fail(n.source(), key, problem);
            return std::nullopt;
        }
        if (s->rfind("ipc://~/", 0) == 0) return std::string("ipc://").append(expand_home(s->substr(6)));
        return s;
    }

    std::optional<std::vector<std::string>> read_services(const toml::node& n, const std::string& key) {
        const auto* a = n.as_array();
        if (!a) {
            fail(n.source(), key, std::string("expected an array of strings, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        if (a->empty()) {
            fail(n.source(), key, "must name at least one service");
            return std::nullopt;
        }
        std::vector<std::string> out;
        bool ok = true;
        for (size_t i = 0; i < a->size(); ++i) {
            const toml::node& el = *a->get(i);
            const std::string el_key = std::string(key).append("[").append(std::to_string(i)).append("]");
            const auto* s = el.as_string();
            if (!s) {
                fail(el.source(), el_key, std::string("expected a string, got ").append(toml_type_name(el.type())));
                ok = false;
            } else if (!valid_service_name(s->get())) {
                fail(el.source(), el_key,
                     std::string("'").append(s->get()).append(
                         "' is not a service name (1 to 32 of a-z, 0-9, '_' and '-')"));
                ok = false;
            } else if (std::find(out.begin(), out.end(), s->get()) != out.end()) {
                fail(el.source(), el_key, std::string("'").append(s->get()).append("' is listed twice"));
                ok = false;
            } else {
                out.push_back(s->get());
            }
        }
        if (!ok) return std::nullopt;
        return out;
    }

    const toml::table* read_table(const toml::node& n, const std::string& key) {
        const auto* t = n.as_table();
        if (!t) fail(n.source(), key, std::string("expected a table, got ").append(toml_type_name(n.type())));
        return t;
    }

    void throw_if_failed() const {
        if (problems_.empty()) return;
        std::vector<config_problem> sorted = problems_;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const config_problem& a, const config_problem& b) { return a.line < b.line; });
        std::string all;
        for (const auto& p : sorted) {
            if (!all.empty()) all.push_back('\n');
            all.append(p.text);
        }
        throw config_error(all);
    }

private:
    static std::string qualify(const std::string& section, const std::string& name) {
        return section.empty() ? name : std::string(section).append(".").append(name);
    }

    std::string prefix(uint32_t line) const {
        std::string p = source_;
        if (line > 0) p.append(":").append(std::to_string(line));
        return p.append(": ");
    }

    std::string source_;                     // file name used in messages
    std::vector<config_problem> problems_;   // in the order found (table order, not file order)
};

template <class T>
void assign(T& dst, std::optional<T>&& v) {
    if (v) dst = std::move(*v);
}

// --- sections ------------------------------------------------------------------------------------

// One of the three limits into `out`; false when `key` is not a limit.
bool read_limit(config_reader& r, const std::string& key, const toml::node& v, const std::string& q, quota_limits& out) {
    constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();
    if (key == "requests_per_minute") assign(out.requests_per_minute, r.read_uint(v, q, 0, kMax32));
    else if (key == "tokens_per_day") assign(out.tokens_per_day, r.read_u64(v, q));
    else if (key == "max_queued") assign(out.max_queued, r.read_uint(v, q, 0, kMax32));
    else return false;
    return true;
}

// [broker.quota.role.*] or [broker.quota.client.*]: each entry starts from [broker.quota]'s limits.
void read_quota_entries(config_reader& r, const toml::node& n, const std::string& section, bool roles, broker_config& b) {
    const auto* t = r.read_table(n, section);
    if (!t) return;
    for (auto&& [k, v] : *t) {
        const std::string name(k.str());
        if (roles && std::find(kRoles.begin(), kRoles.end(), name) == kRoles.end()) {
            r.fail(k.source(), section, std::string("unknown role '").append(name).append("' (client, worker or admin)"));
            continue;
        }
        if (!roles && !key_name_valid(name)) {
            r.fail(k.source(), section,
                   std::string("'").append(name).append("' is not a key name (1..64 of a-z, 0-9, '_', '-')"));
            continue;
        }
        const std::string sub = std::string(section).append(".").append(name);
        const auto* entry = r.read_table(v, sub);
        if (!entry) continue;
        quota_limits limits = b.quota;
        for (auto&& [k2, v2] : *entry) {
            const std::string key(k2.str());
            if (!read_limit(r, key, v2, std::string(sub).append(".").append(key), limits)) r.unknown(k2, sub, kLimitKeys);
        }
        (roles ? b.quota_roles : b.quota_clients)[name] = limits;
    }
}

// [broker.quota]'s own limits come first whatever the file order: the role and client tables
// inherit every limit they leave out.
void read_quota(config_reader& r, const toml::table& t, broker_config& b) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        if (key == "role" || key == "client") continue;
        if (!read_limit(r, key, v, std::string("broker.quota.").append(key), b.quota)) r.unknown(k, "broker.quota", kQuotaKeys);
    }
    if (const toml::node* n = t.get("role")) read_quota_entries(r, *n, "broker.quota.role", true, b);
    if (const toml::node* n = t.get("client")) read_quota_entries(r, *n, "broker.quota.client", false, b);
}

void read_broker(config_reader& r, const toml::table& t, broker_config& b) {
    const toml::node* curve_node = nullptr;  // where a missing allowlist is reported
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string q = std::string("broker.").append(key);
        if (key == "client_endpoint") assign(b.client_endpoint, r.read_endpoint(v, q));
        else if (key == "worker_endpoint") assign(b.worker_endpoint, r.read_endpoint(v, q));
        else if (key == "queue_interactive") assign(b.queue_interactive, r.read_uint(v, q, 1, 1000000));
        else if (key == "queue_batch") assign(b.queue_batch, r.read_uint(v, q, 1, 1000000));
        else if (key == "max_request_bytes") assign(b.max_request_bytes, r.read_uint(v, q, 1024, 15u << 20));
        else if (key == "max_batch_jobs") assign(b.max_batch_jobs, r.read_uint(v, q, 1, 1000000));
        else if (key == "max_batch_bytes") assign(b.max_batch_bytes, r.read_uint(v, q, 1024, 1u << 30));
        else if (key == "heartbeat_ms") assign(b.heartbeat_ms, r.read_uint(v, q, 10, 60000));
        else if (key == "liveness") assign(b.liveness, r.read_uint(v, q, 1, 100));
        else if (key == "no_worker_ms") assign(b.no_worker_ms, r.read_uint(v, q, 0, kMaxDayMs));
        else if (key == "queue_bytes") {
            auto x = r.read_size(v, q, 1u << 20);
            if (x && *x == 0) r.fail(v.source(), q, "must not be 0 (the broker needs room for one request)");
            else assign(b.queue_bytes, std::move(x));
        }
        else if (key == "services") assign(b.services, r.read_services(v, q));
        else if (key == "usage_db") {
            auto p = r.read_nonempty(v, q);
            if (p) b.usage_db = expand_home(*p);
        } else if (key == "whitelist") {
            auto p = r.read_nonempty(v, q);
            if (p) b.whitelist = expand_home(*p);
        } else if (key == "curve_secret_key") {
            curve_node = &v;
            assign(b.curve_secret_key, r.read_path(v, q));
        } else if (key == "allowlist") assign(b.allowlist, r.read_path(v, q));
        else if (key == "insecure_lan") assign(b.insecure_lan, r.read_bool(v, q));
        else if (key == "quota") {
            if (const auto* qt = r.read_table(v, q)) read_quota(r, *qt, b);
        } else r.unknown(k, "broker", kBrokerKeys);
    }
    // Without an allowlist CURVE would admit any key at all: encryption, but no access control.
    if (!b.curve_secret_key.empty() && b.allowlist.empty())
        r.fail(curve_node ? curve_node->source() : t.source(), "broker.curve_secret_key",
               "needs broker.allowlist too (the keys that may connect, schema/allowlist.md)");
}

void read_worker(config_reader& r, const toml::table& t, worker_config& w) {
    const toml::node* min_node = nullptr;  // kept to place a min > max error on the right line
    const toml::node* max_node = nullptr;
    bool reconnect_ok = true;
    const toml::node* crit_node = nullptr;         // where a contradicting guard threshold is reported
    const toml::node* budget_crit_node = nullptr;
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string q = std::string("worker.").append(key);
        if (key == "broker_endpoint") assign(w.broker_endpoint, r.read_endpoint(v, q));
        else if (key == "model") {
            auto m = r.read_string(v, q);
            if (m) w.model = expand_home(*m);
        } else if (key == "name") assign(w.name, r.read_nonempty(v, q));
        else if (key == "services") assign(w.services, r.read_services(v, q));
        else if (key == "slots") assign(w.slots, r.read_uint(v, q, 1, 64));
        else if (key == "threads") assign(w.threads, r.read_uint(v, q, 0, 1024));
        else if (key == "ctx_size") assign(w.ctx_size, r.read_uint(v, q, 16, 131072));
        else if (key == "batch_size") assign(w.batch_size, r.read_uint(v, q, 1, 8192));
        else if (key == "reconnect_min_ms") {
            min_node = &v;
            auto x = r.read_uint(v, q, 1, 600000);
            reconnect_ok = reconnect_ok && x.has_value();
            assign(w.reconnect_min_ms, std::move(x));
        } else if (key == "reconnect_max_ms") {
            max_node = &v;
            auto x = r.read_uint(v, q, 1, 600000);
            reconnect_ok = reconnect_ok && x.has_value();
            assign(w.reconnect_max_ms, std::move(x));
        } else if (key == "memory_budget") assign(w.memory_budget, r.read_size(v, q, 1u << 20));
        else if (key == "guard_interval_ms") assign(w.guard_interval_ms, r.read_uint(v, q, 10, 600000));
        else if (key == "guard_root") assign(w.guard_root, r.read_dir(v, q));
        else if (key == "guard_throttle_available") assign(w.guard_throttle_available, r.read_real(v, q, 0, 1));
        else if (key == "guard_critical_available") {
            crit_node = &v;
            assign(w.guard_critical_available, r.read_real(v, q, 0, 1));
        }
        else if (key == "guard_psi_some_throttle") assign(w.guard_psi_some_throttle, r.read_real(v, q, 0, 100));
        else if (key == "guard_psi_full_critical") assign(w.guard_psi_full_critical, r.read_real(v, q, 0, 100));
        else if (key == "guard_budget_throttle") assign(w.guard_budget_throttle, r.read_real(v, q, 0.1, 10));
        else if (key == "guard_budget_critical") {
            budget_crit_node = &v;
            assign(w.guard_budget_critical, r.read_real(v, q, 0.1, 10));
        }
        else if (key == "guard_recover_samples") assign(w.guard_recover_samples, r.read_uint(v, q, 1, 1000));
        else if (key == "curve_secret_key") assign(w.curve_secret_key, r.read_path(v, q));
        else if (key == "broker_public_key") assign(w.broker_public_key, r.read_path(v, q));
        else r.unknown(k, "worker", kWorkerKeys);
    }
    // Each critical line must lie beyond its throttle line, or throttled could never be reached.
    if (w.guard_critical_available >= w.guard_throttle_available)
        r.fail(crit_node ? crit_node->source() : t.source(), "worker.guard_critical_available",
               std::string("must be below worker.guard_throttle_available (critical is the lower share of free memory)"));
    if (w.guard_budget_critical <= w.guard_budget_throttle)
        r.fail(budget_crit_node ? budget_crit_node->source() : t.source(), "worker.guard_budget_critical",
               "must be above worker.guard_budget_throttle");
    if (reconnect_ok && w.reconnect_min_ms > w.reconnect_max_ms) {
        const toml::node* at = max_node ? max_node : min_node;
        r.fail(at ? at->source() : toml::source_region{}, "worker.reconnect_min_ms",
               std::to_string(w.reconnect_min_ms)
                   .append(" must not exceed worker.reconnect_max_ms (")
                   .append(std::to_string(w.reconnect_max_ms))
                   .append(")"));
    }
}

void read_client(config_reader& r, const toml::table& t, client_config& c) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string q = std::string("client.").append(key);
        if (key == "broker_endpoint") assign(c.broker_endpoint, r.read_endpoint(v, q));
        else if (key == "timeout_ms") assign(c.timeout_ms, r.read_uint(v, q, 0, kMaxDayMs));
        else if (key == "curve_secret_key") assign(c.curve_secret_key, r.read_path(v, q));
        else if (key == "broker_public_key") assign(c.broker_public_key, r.read_path(v, q));
        else r.unknown(k, "client", kClientKeys);
    }
}

// Defaults that depend on other values: applied after the file so that moving runtime_dir or the
// broker's endpoints moves everything derived from them.
void fill_derived(config& c) {
    if (c.runtime_dir.empty()) c.runtime_dir = default_runtime_dir();
    if (c.state_dir.empty()) c.state_dir = default_state_dir();
    if (c.broker.client_endpoint.empty()) c.broker.client_endpoint = ipc_endpoint(c.runtime_dir, "client.sock");
    if (c.broker.worker_endpoint.empty()) c.broker.worker_endpoint = ipc_endpoint(c.runtime_dir, "worker.sock");
    if (c.worker.broker_endpoint.empty()) c.worker.broker_endpoint = c.broker.worker_endpoint;
    if (c.client.broker_endpoint.empty()) c.client.broker_endpoint = c.broker.client_endpoint;
    if (c.worker.name.empty()) c.worker.name = default_worker_name();
    if (c.broker.usage_db.empty()) c.broker.usage_db = c.state_dir + "/usage.db";
}

}  // namespace

std::optional<std::string> config_find(const std::string& explicit_path) {
    auto must_exist = [](const std::string& path, const char* how) {
        std::error_code ec;
        const auto st = fs::status(path, ec);
        if (!fs::exists(st))
            throw config_error(std::string("config file ").append(path).append(how).append(": not found"));
        if (fs::is_directory(st))
            throw config_error(std::string("config file ").append(path).append(how).append(": is a directory"));
        return path;
    };
    if (!explicit_path.empty()) return must_exist(explicit_path, "");
    const std::string from_env = env_get("HEARTH_CONFIG");
    if (!from_env.empty()) return must_exist(from_env, " (from $HEARTH_CONFIG)");
    std::string xdg = env_absolute("XDG_CONFIG_HOME");
    if (xdg.empty()) xdg = home_dir().append("/.config");
    const std::string user = strip_trailing_slashes(xdg).append("/hearth/hearth.toml");
    std::error_code ec;
    if (fs::is_regular_file(user, ec)) return user;
    const std::string system = "/etc/hearth/hearth.toml";
    if (fs::is_regular_file(system, ec)) return system;
    return std::nullopt;
}

config config_parse(const std::string& toml_text, const std::string& source_name) {
    config_reader r(source_name);
    toml::table root;
    try {
        root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        std::string msg = source_name.empty() ? std::string("<config>") : source_name;
        msg.append(":").append(std::to_string(at.line)).append(":").append(std::to_string(at.column));
        msg.append(": ").append(e.description());
        throw config_error(msg);
    }
    config c;
    c.source = source_name;
    for (auto&& [k, v] : root) {
        const std::string key(k.str());
        if (key == "log_level") {
            auto level = r.read_string(v, key);
            if (level && std::find(kLogLevels.begin(), kLogLevels.end(), *level) == kLogLevels.end())
                r.fail(v.source(), key,
                       std::string("'").append(*level).append("' is not one of trace, debug, info, warn, error, off"));
            else
                assign(c.log_level, std::move(level));
        } else if (key == "runtime_dir") {
            assign(c.runtime_dir, r.read_dir(v, key));
        } else if (key == "state_dir") {
            assign(c.state_dir, r.read_dir(v, key));
        } else if (key == "broker") {
            if (const auto* t = r.read_table(v, key)) read_broker(r, *t, c.broker);
        } else if (key == "worker") {
            if (const auto* t = r.read_table(v, key)) read_worker(r, *t, c.worker);
        } else if (key == "client") {
            if (const auto* t = r.read_table(v, key)) read_client(r, *t, c.client);
        } else {
            r.unknown(k, "", kTopKeys);
        }
    }
    r.throw_if_failed();
    fill_derived(c);
    return c;
}

config config_defaults() {
    config c;
    fill_derived(c);
    return c;
}

config config_load(const std::string& explicit_path) {
    const auto path = config_find(explicit_path);
    if (!path) return config_defaults();
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
        const int err = errno;
        throw config_error(std::string("config file ").append(*path).append(": cannot read: ").append(
            std::strerror(err)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw config_error(std::string("config file ").append(*path).append(": read error"));
    return config_parse(text.str(), *path);
}

quota_limits quota_for(const broker_config& b, const std::string& name, const std::string& role) {
    if (auto it = b.quota_clients.find(name); it != b.quota_clients.end()) return it->second;
    if (auto it = b.quota_roles.find(role); it != b.quota_roles.end()) return it->second;
    return b.quota;
}

bool endpoint_is_local(const std::string& endpoint) {
    if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
    if (endpoint.rfind("tcp://", 0) != 0) return false;  // pgm, epgm, udp, ws...: network transports
    // ZeroMQ's "tcp://source;destination": the connection is local only when both ends are.
    std::string rest = endpoint.substr(6);
    size_t start = 0;
    while (true) {
        const size_t semi = rest.find(';', start);
        if (!host_is_loopback(tcp_host(rest.substr(start, semi == std::string::npos ? std::string::npos : semi - start))))
            return false;
        if (semi == std::string::npos) return true;
        start = semi + 1;
    }
}

void config_prepare_endpoint(const std::string& endpoint) {
    if (endpoint.rfind("ipc://", 0) != 0) return;
    const std::string path = endpoint.substr(6);
    // "@name" is Linux's abstract namespace and "*" asks ZeroMQ for a fresh name: no directory.
    if (path.empty() || path[0] == '@' || path == "*") return;
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        throw config_error(std::string("endpoint ").append(endpoint).append(": socket path is ").append(
            std::to_string(path.size())).append(" bytes, the limit is ").append(
            std::to_string(sizeof(sockaddr_un{}.sun_path) - 1)));
    const fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) return;
    fs::path partial;
    for (const auto& part : dir) {
        partial /= part;
        struct stat st {};
        if (::stat(partial.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                throw config_error(std::string("endpoint ").append(endpoint).append(": ").append(
                    partial.string()).append(" is not a directory"));
            continue;
        }
        // 0700 for every level we create: the sockets accept anyone who can reach them.
        if (::mkdir(partial.c_str(), 0700) == 0) {
            // A restrictive umask (0777) must not leave our own directory unusable.
            if (::chmod(partial.c_str(), 0700) != 0) continue;
        } else if (errno != EEXIST) {  // EEXIST: another process raced us, fine
            const int err = errno;
            throw config_error(std::string("endpoint ").append(endpoint).append(": cannot create directory ").append(
                partial.string()).append(": ").append(std::strerror(err)));
        }
    }
}

}  // namespace hearth
