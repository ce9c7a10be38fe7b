#include "resource-guard.h"

#include "byte-size.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace hearth {

namespace {

// /proc files are small; a cap keeps a fake or hostile file from eating memory.
constexpr std::size_t max_file_bytes = 1 << 20;
// v1 reports "no limit" as LONG_MAX rounded down to a page; anything this large is no limit.
constexpr uint64_t v1_unlimited_floor = uint64_t{1} << 62;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::string quoted(std::string_view s) {
    std::string out = "'";
    out.append(s.substr(0, 60));
    if (s.size() > 60) out.append("...");
    out.append("'");
    return out;
}

void add_problem(std::string& problems, const std::string& p) {
    if (!problems.empty()) problems.append("; ");
    problems.append(p);
}

// Whole file, or nullopt with `why` set.
std::optional<std::string> read_text(const std::string& path, std::string& why) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = "cannot open ";
        why.append(path).append(": ").append(std::strerror(errno));
        return std::nullopt;
    }
    std::string text;
    char buf[4096];
    while (in && text.size() < max_file_bytes) {
        in.read(buf, sizeof buf);
        text.append(buf, static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad()) {
        why = "cannot read ";
        why.append(path);
        return std::nullopt;
    }
    return text;
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return lines;
}

// Unsigned decimal, all of it; no sign, no overflow.
std::optional<uint64_t> parse_u64(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// A PSI percentage: finite, 0..100.
std::optional<double> parse_percent(std::string_view s) {
    s = trim(s);
    if (s.empty()) return std::nullopt;
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < 0 || v > 100)
        return std::nullopt;
    return v;
}

std::optional<uint64_t> kib_to_bytes(uint64_t kib) {
    if (kib > UINT64_MAX / 1024) return std::nullopt;
    return kib * 1024;
}

// "<number> kB" from a "Key:   value kB" file (/proc/meminfo, /proc/self/status).
std::optional<uint64_t> read_kb_field(std::string_view text, std::string_view key, const std::string& file,
                                      std::string& problems) {
    for (std::string_view line : split_lines(text)) {
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || line.substr(0, colon) != key) continue;
        std::string_view value = trim(line.substr(colon + 1));
        std::string what(key);
        if (value.size() < 2 || value.substr(value.size() - 2) != "kB") {
            add_problem(problems, what.append(" in ").append(file).append(" has no kB value: ").append(quoted(value)));
            return std::nullopt;
        }
        auto kib = parse_u64(value.substr(0, value.size() - 2));
        if (!kib) {
            add_problem(problems, what.append(" in ").append(file).append(" is not a number: ").append(quoted(value)));
            return std::nullopt;
        }
        auto bytes = kib_to_bytes(*kib);
        if (!bytes) add_problem(problems, what.append(" in ").append(file).append(" overflows: ").append(quoted(value)));
        return bytes;
    }
    std::string what(key);
    add_problem(problems, what.append(" missing from ").append(file));
    return std::nullopt;
}

void sample_meminfo(const std::string& root, guard_readings& r) {
    std::string path = root + "/proc/meminfo";
    std::string why;
    auto text = read_text(path, why);
    if (!text) {
        add_problem(r.problems, why);
        return;
    }
    r.mem_total = read_kb_field(*text, "MemTotal", path, r.problems);
    r.mem_available = read_kb_field(*text, "MemAvailable", path, r.problems);
    if (r.mem_total && *r.mem_total == 0) {
        add_problem(r.problems, "MemTotal is 0");
        r.mem_total.reset();
    }
    if (r.mem_total && r.mem_available && *r.mem_available > *r.mem_total) {
        add_problem(r.problems, "MemAvailable exceeds MemTotal");
        r.mem_available.reset();
    }
}

// avg10 of the "some" or "full" line of a PSI file.
std::optional<double> read_psi_avg10(std::string_view text, std::string_view kind, const std::string& file,
                                     std::string& problems) {
    for (std::string_view line : split_lines(text)) {
        line = trim(line);
        if (line.substr(0, kind.size()) != kind || line.size() == kind.size() || line[kind.size()] != ' ')
            continue;
        std::size_t at = line.find("avg10=");
        if (at != std::string_view::npos) {
            std::string_view value = line.substr(at + 6);
            value = value.substr(0, value.find(' '));
            if (auto v = parse_percent(value)) return v;
        }
        std::string what(kind);
        add_problem(problems, what.append(" avg10 in ").append(file).append(" is unreadable: ").append(quoted(line)));
        return std::nullopt;
    }
    std::string what(kind);
    add_problem(problems, what.append(" line missing from ").append(file));
    return std::nullopt;
}

void sample_psi(const std::string& root, guard_readings& r) {
    std::string path = root + "/proc/pressure/memory";
    std::string why;
    auto text = read_text(path, why);
    if (!text) {
        add_problem(r.problems, why);
        return;
    }
    r.psi_some_avg10 = read_psi_avg10(*text, "some", path, r.problems);
    r.psi_full_avg10 = read_psi_avg10(*text, "full", path, r.problems);
}

// A cgroup-relative path that stays inside the mount: absolute, no "..".
bool path_is_safe(std::string_view p) {
    if (p.empty() || p.front() != '/') return false;
    while (!p.empty()) {
        std::size_t slash = p.find('/');
        std::string_view part = p.substr(0, slash);
        if (part == "..") return false;
        if (slash == std::string_view::npos) break;
        p.remove_prefix(slash + 1);
    }
    return true;
}

std::optional<uint64_t> read_cgroup_value(const std::string& path, bool limit, int version, std::string& problems) {
    std::string why;
    auto text = read_text(path, why);
    if (!text) {
        add_problem(problems, why);
        return std::nullopt;
    }
    std::string_view value = trim(*text);
    if (limit && version == 2 && value == "max") return guard_unlimited;
    auto v = parse_u64(value);
    if (!v) {
        std::string p = "not a number in ";
        add_problem(problems, p.append(path).append(": ").append(quoted(value)));
        return std::nullopt;
    }
    if (limit && version == 1 && *v >= v1_unlimited_floor) return guard_unlimited;
    return v;
}

void sample_cgroup(const std::string& root, guard_readings& r) {
    std::string path = root + "/proc/self/cgroup";
    std::string why;
    auto text = read_text(path, why);
    if (!text) {
        add_problem(r.problems, why);
        return;
    }
    // Hybrid hosts list both; the memory controller then lives on v1, so a v1 line wins.
    std::optional<std::string_view> v1_path, v2_path;
    for (std::string_view line : split_lines(*text)) {
        line = trim(line);
        std::size_t c1 = line.find(':');
        if (c1 == std::string_view::npos) continue;
        std::size_t c2 = line.find(':', c1 + 1);
        if (c2 == std::string_view::npos) continue;
        std::string_view id = line.substr(0, c1);
        std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
        std::string_view cg = line.substr(c2 + 1);
        if (id == "0" && controllers.empty()) {
            v2_path = cg;
            continue;
        }
        while (!controllers.empty()) {
            std::size_t comma = controllers.find(',');
            if (controllers.substr(0, comma) == "memory") v1_path = cg;
            if (comma == std::string_view::npos) break;
            controllers.remove_prefix(comma + 1);
        }
    }
    if (!v1_path && !v2_path) {
        add_problem(r.problems, "no memory cgroup in " + path);
        return;
    }
    int version = v1_path ? 1 : 2;
    std::string_view cg = v1_path ? *v1_path : *v2_path;
    if (!path_is_safe(cg)) {
        std::string p = "unusable cgroup path in ";
        add_problem(r.problems, p.append(path).append(": ").append(quoted(cg)));
        return;
    }
    std::string mount = root + (version == 1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup");
    std::string dir = mount;
    if (cg != "/") dir.append(cg);
    // In a container without its own cgroup namespace the listed path is the host's, while the
    // container sees its own cgroup at the mount root.
    std::error_code ec;
    if (cg != "/" && !std::filesystem::is_directory(dir, ec)) dir = mount;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    r.cgroup_version = version;
    r.cgroup_dir = dir;
    if (version == 1) {
        r.cgroup_current = read_cgroup_value(dir + "/memory.usage_in_bytes", false, 1, r.problems);
        r.cgroup_limit = read_cgroup_value(dir + "/memory.limit_in_bytes", true, 1, r.problems);
    } else {
        r.cgroup_current = read_cgroup_value(dir + "/memory.current", false, 2, r.problems);
        r.cgroup_limit = read_cgroup_value(dir + "/memory.max", true, 2, r.problems);
    }
    if (r.cgroup_limit && *r.cgroup_limit == 0) {
        add_problem(r.problems, "cgroup limit is 0");
        r.cgroup_limit.reset();
    }
}

void sample_rss(const std::string& root, guard_readings& r) {
    std::string path = root + "/proc/self/status";
    std::string why;
    auto text = read_text(path, why);
    if (!text) {
        add_problem(r.problems, why);
        return;
    }
    r.rss = read_kb_field(*text, "VmRSS", path, r.problems);
}

// "4%", "4.5%".
std::string format_percent(double fraction) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", fraction * 100.0);
    std::string s = buf;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s.append("%");
}

// "20", "12.5".
std::string format_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    std::string s = buf;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
    return s;
}

int level_of(guard_state s) { return static_cast<int>(s); }

}  // namespace

std::string_view guard_state_name(guard_state s) {
    switch (s) {
    case guard_state::ok: return "ok";
    case guard_state::throttled: return "throttled";
    case guard_state::critical: return "critical";
    }
    return "unknown";
}

std::optional<double> guard_readings::system_fraction() const {
    if (!mem_total || !mem_available || *mem_total == 0 || *mem_available > *mem_total) return std::nullopt;
    return static_cast<double>(*mem_available) / static_cast<double>(*mem_total);
}

std::optional<double> guard_readings::cgroup_fraction() const {
    if (!cgroup_limit || !cgroup_current || *cgroup_limit == guard_unlimited || *cgroup_limit == 0)
        return std::nullopt;
    uint64_t headroom = *cgroup_limit > *cgroup_current ? *cgroup_limit - *cgroup_current : 0;
    return static_cast<double>(headroom) / static_cast<double>(*cgroup_limit);
}

guard_readings guard_sample(const guard_options& options) {
    guard_readings r;
    r.memory_budget = options.memory_budget;
    try {
        std::string root = options.root;
        while (!root.empty() && root.back() == '/') root.pop_back();
        sample_meminfo(root, r);
        sample_psi(root, r);
        sample_cgroup(root, r);
        sample_rss(root, r);
    } catch (const std::exception& e) {
        // bad_alloc or a filesystem error: keep what was read, the guard must not take the worker down.
        add_problem(r.problems, std::string("sampling failed: ") + e.what());
    }
    return r;
}

std::string guard_readings_describe(const guard_readings& r) {
    std::string s = "MemAvailable ";
    if (r.mem_available && r.mem_total) {
        s.append(byte_size_format(*r.mem_available)).append(" of ").append(byte_size_format(*r.mem_total));
        if (auto f = r.system_fraction()) s.append(" (").append(format_percent(*f)).append(")");
    } else {
        s.append("unknown");
    }
    s.append(", PSI some ");
    s.append(r.psi_some_avg10 ? format_number(*r.psi_some_avg10) : "unknown");
    s.append(" full ");
    s.append(r.psi_full_avg10 ? format_number(*r.psi_full_avg10) : "unknown");
    s.append(", cgroup");
    if (r.cgroup_version) s.append(" v").append(std::to_string(r.cgroup_version));
    s.append(" ");
    s.append(r.cgroup_current ? byte_size_format(*r.cgroup_current) : "unknown");
    s.append(" used, limit ");
    if (!r.cgroup_limit) s.append("unknown");
    else if (*r.cgroup_limit == guard_unlimited) s.append("none");
    else s.append(byte_size_format(*r.cgroup_limit));
    s.append(", RSS ");
    s.append(r.rss ? byte_size_format(*r.rss) : "unknown");
    if (r.memory_budget) s.append(" of budget ").append(byte_size_format(r.memory_budget));
    return s;
}

guard_fit guard_fit_check(const guard_readings& r, uint64_t file_bytes, uint64_t kv_bytes) {
    guard_fit fit;
    uint64_t needed = file_bytes > UINT64_MAX - kv_bytes ? UINT64_MAX : file_bytes + kv_bytes;
    std::string where;  // what the tightest limit is, for the message
    auto consider = [&](uint64_t avail, std::string what) {
        if (!fit.available || avail < *fit.available) {
            fit.available = avail;
            where = std::move(what);
        }
    };
    if (r.mem_available) {
        std::string what = "MemAvailable";
        if (r.mem_total) what.append(", of ").append(byte_size_format(*r.mem_total)).append(" total");
        consider(*r.mem_available, what);
    }
    if (r.cgroup_limit && *r.cgroup_limit != guard_unlimited && r.cgroup_current) {
        uint64_t headroom = *r.cgroup_limit > *r.cgroup_current ? *r.cgroup_limit - *r.cgroup_current : 0;
        std::string what = "cgroup limit ";
        what.append(byte_size_format(*r.cgroup_limit)).append(", ").append(byte_size_format(*r.cgroup_current)).append(" used");
        consider(headroom, what);
    }
    if (r.memory_budget) {
        std::string what = "memory budget ";
        what.append(byte_size_format(r.memory_budget));
        uint64_t left = r.memory_budget;
        if (r.rss) {
            left = r.memory_budget > *r.rss ? r.memory_budget - *r.rss : 0;
            what.append(", worker RSS ").append(byte_size_format(*r.rss));
        }
        consider(left, what);
    }
    std::string need = "model needs ";
    need.append(byte_size_format(needed)).append(" (weights ").append(byte_size_format(file_bytes));
    need.append(" + KV cache and buffers ").append(byte_size_format(kv_bytes)).append(")");
    if (!fit.available) {
        fit.message = need.append("; available memory is unknown");
        return fit;
    }
    fit.fits = needed <= *fit.available;
    fit.message = need.append(fit.fits ? "; " : " but only ");
    fit.message.append(byte_size_format(*fit.available)).append(" is available (").append(where).append(")");
    return fit;
}

std::optional<uint64_t> guard_headroom(const guard_readings& r, const guard_options& o) {
    std::optional<uint64_t> room;
    auto consider = [&](double line, double used) {
        const double left = line > used ? line - used : 0.0;
        const auto bytes = static_cast<uint64_t>(std::min(left, 1.8e19));
        if (!room || bytes < *room) room = bytes;
    };
    if (r.memory_budget && r.rss)
        consider(static_cast<double>(r.memory_budget) * o.budget_critical, static_cast<double>(*r.rss));
    if (r.cgroup_limit && *r.cgroup_limit != guard_unlimited && r.cgroup_current)
        consider(static_cast<double>(*r.cgroup_limit) * (1.0 - o.critical_fraction), static_cast<double>(*r.cgroup_current));
    if (r.mem_available && r.mem_total)
        consider(static_cast<double>(*r.mem_available), static_cast<double>(*r.mem_total) * o.critical_fraction);
    return room;
}

resource_guard::resource_guard(guard_options options) : options_(std::move(options)) {
    const guard_options& o = options_;
    auto bad = [](const char* what) {
        std::string m = "resource guard options: ";
        return std::invalid_argument(m.append(what));
    };
    if (!(o.critical_fraction >= 0 && o.critical_fraction <= o.throttle_fraction && o.throttle_fraction <= 1))
        throw bad("need 0 <= critical_fraction <= throttle_fraction <= 1");
    if (!(o.fraction_margin >= 0) || !(o.psi_margin >= 0) || !(o.budget_margin >= 0))
        throw bad("margins must be >= 0");
    if (!(o.psi_some_throttle >= 0) || !(o.psi_full_critical >= 0)) throw bad("PSI thresholds must be >= 0");
    if (!(o.budget_throttle > 0 && o.budget_throttle <= o.budget_critical))
        throw bad("need 0 < budget_throttle <= budget_critical");
    if (o.recover_samples < 1) throw bad("recover_samples must be >= 1");
    if (o.stale_limit < 1) throw bad("stale_limit must be >= 1");
    if (o.interval_ms < 1) throw bad("interval_ms must be >= 1");
}

guard_state resource_guard::poll() { return update(guard_sample(options_)); }

guard_state resource_guard::update(const guard_readings& r) {
    const guard_options& o = options_;
    last_ = r;
    std::optional<double> fresh[sig_count];
    fresh[sig_system] = r.system_fraction();
    fresh[sig_cgroup] = r.cgroup_fraction();
    fresh[sig_psi_some] = r.psi_some_avg10;
    fresh[sig_psi_full] = r.psi_full_avg10;
    if (o.memory_budget && r.rss) fresh[sig_rss] = static_cast<double>(*r.rss);

    int enter = 0, hold = 0;           // worst level demanded by raw thresholds / by thresholds with margins
    bool stale = false;                // some reading is standing in for an unknown one
    std::vector<std::pair<int, std::string>> enter_why, hold_why;  // level and text per signal
    const double budget = static_cast<double>(o.memory_budget);
    for (int i = 0; i < sig_count; ++i) {
        signal_memory& m = signals_[i];
        if (fresh[i]) {
            m.value = fresh[i];
            m.unknown_run = 0;
        } else if (m.value && ++m.unknown_run >= o.stale_limit) {
            m.value.reset();
        }
        if (!m.value) continue;
        if (!fresh[i]) stale = true;
        const double v = *m.value;
        int e = 0, h = 0;
        std::string et, ht;
        switch (i) {
        case sig_system:
        case sig_cgroup: {
            const char* name = i == sig_system ? "MemAvailable " : "cgroup headroom ";
            double elimit = v < o.critical_fraction ? o.critical_fraction : o.throttle_fraction;
            e = v < o.critical_fraction ? 2 : v < o.throttle_fraction ? 1 : 0;
            double hlimit = v < o.critical_fraction + o.fraction_margin ? o.critical_fraction + o.fraction_margin
                                                                        : o.throttle_fraction + o.fraction_margin;
            h = v < o.critical_fraction + o.fraction_margin ? 2 : v < o.throttle_fraction + o.fraction_margin ? 1 : 0;
            et = std::string(name).append(format_percent(v)).append(" < ").append(format_percent(elimit));
            ht = std::string(name).append(format_percent(v)).append(" not yet above ").append(format_percent(hlimit));
            break;
        }
        case sig_psi_some:
        case sig_psi_full: {
            const bool some = i == sig_psi_some;
            const double limit = some ? o.psi_some_throttle : o.psi_full_critical;
            const int level = some ? 1 : 2;
            e = v > limit ? level : 0;
            h = v > limit - o.psi_margin ? level : 0;
            std::string name = some ? "PSI some avg10 " : "PSI full avg10 ";
            et = std::string(name).append(format_number(v)).append(" > ").append(format_number(limit));
            ht = name.append(format_number(v)).append(" not yet below ").append(format_number(limit - o.psi_margin));
            break;
        }
        case sig_rss: {
            if (!o.memory_budget) continue;
            e = v > budget * o.budget_critical ? 2 : v > budget * o.budget_throttle ? 1 : 0;
            double hc = o.budget_critical - o.budget_margin, ht_ = o.budget_throttle - o.budget_margin;
            h = v > budget * hc ? 2 : v > budget * ht_ ? 1 : 0;
            double ef = e == 2 ? o.budget_critical : o.budget_throttle;
            double hf = h == 2 ? hc : ht_;
            std::string name = "RSS ";
            name.append(byte_size_format(static_cast<uint64_t>(v)));
            std::string tail = " of budget ";
            tail.append(byte_size_format(o.memory_budget));
            et = std::string(name).append(" > ").append(format_percent(ef)).append(tail);
            ht = name.append(" not yet below ").append(format_percent(hf)).append(tail);
            break;
        }
        default: break;
        }
        if (!fresh[i]) {
            et.append(" (last known)");
            ht.append(" (last known)");
        }
        enter = std::max(enter, e);
        hold = std::max(hold, h);
        enter_why.emplace_back(e, std::move(et));
        hold_why.emplace_back(h, std::move(ht));
    }
    auto join = [](const std::vector<std::pair<int, std::string>>& why, int level) {
        std::string s;
        for (const auto& [l, t] : why) {
            if (l != level) continue;
            if (!s.empty()) s.append("; ");
            s.append(t);
        }
        return s;
    };

    const int current = level_of(state_);
    if (enter > current) {
        state_ = static_cast<guard_state>(enter);
        clear_run_ = 0;
        cause_ = join(enter_why, enter);
        reason_ = cause_;
    } else if (hold < current) {
        // Stale readings are no evidence that pressure has gone.
        if (!stale) ++clear_run_;
        if (clear_run_ >= o.recover_samples) {
            // One step at a time, so work comes back gradually.
            state_ = static_cast<guard_state>(current - 1);
            clear_run_ = 0;
            if (current - 1 == 0) cause_.clear();
            else if (std::string live = join(enter_why, current - 1); !live.empty()) cause_ = live;
            else if (hold == current - 1) cause_ = join(hold_why, hold);
            else cause_ = std::string("recovering from ").append(guard_state_name(static_cast<guard_state>(current)));
            reason_ = cause_;
        } else {
            reason_ = cause_;
            reason_.append(" (clear for ").append(std::to_string(clear_run_)).append(" of ")
                .append(std::to_string(o.recover_samples)).append(" samples)");
        }
    } else {
        clear_run_ = 0;
        if (current > 0) {
            std::string live = join(enter_why, current);
            cause_ = live.empty() ? join(hold_why, current) : live;
            reason_ = cause_;
        }
    }
    return state_;
}

}  // namespace hearth
