// Reading, validating and printing hearth.toml. Every key is checked on its own (type, range) and
// unknown keys are errors, so a typo never silently falls back to a default. All problems found in
// one file are reported together, sorted by line, so a user fixes them in one pass.
#include "config.h"

#include "byte-size.h"

#include "spelling.h"
#include "toml-names.h"

#include <toml++/toml.h>

#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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
                                              "usage_db",        "whitelist", "queue_bytes"};
const std::vector<std::string> kWorkerKeys = {"broker_endpoint", "model",      "name",
                                              "services",        "slots",      "threads",
                                              "ctx_size",        "batch_size", "reconnect_min_ms",
                                              "reconnect_max_ms", "memory_budget", "guard_interval_ms",
                                              "guard_root", "guard_throttle_available", "guard_critical_available",
                                              "guard_psi_some_throttle", "guard_psi_full_critical",
                                              "guard_budget_throttle", "guard_budget_critical", "guard_recover_samples"};
const std::vector<std::string> kClientKeys = {"broker_endpoint", "timeout_ms"};

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

void read_broker(config_reader& r, const toml::table& t, broker_config& b) {
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
        } else r.unknown(k, "broker", kBrokerKeys);
    }
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

// --- printing ------------------------------------------------------------------------------------

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

// The shortest text that reads back as the same double, always with a '.' so TOML sees a float.
void put(std::ostringstream& os, const char* comment, const char* key, double value) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    std::string text(buf, ec == std::errc() ? end : buf);
    if (text.find_first_of(".eE") == std::string::npos) text.append(".0");
    put(os, comment, key, text);
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

    os << "\n[client]\n";
    put(os, "the broker's client endpoint", "broker_endpoint", quote(c.client.broker_endpoint));
    put(os, "give up waiting for a reply after this; 0: never", "timeout_ms", c.client.timeout_ms);
    return os.str();
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

namespace hearth {
// STUBS (helper B replaces)
quota_limits quota_for(const broker_config& b, const std::string& name, const std::string& role) {
    if (auto it = b.quota_clients.find(name); it != b.quota_clients.end()) return it->second;
    if (auto it = b.quota_roles.find(role); it != b.quota_roles.end()) return it->second;
    return b.quota;
}
bool endpoint_is_local(const std::string& endpoint) {
    return endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("tcp://127.", 0) == 0 ||
           endpoint.rfind("tcp://localhost:", 0) == 0 || endpoint.rfind("tcp://[::1]:", 0) == 0;
}
}  // namespace hearth
