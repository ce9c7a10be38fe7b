#include "batch-file.h"

#include "spelling.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

namespace hearth {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 14> known_fields = {
    "id",   "service", "prompt", "messages", "max_tokens", "temperature", "top_k", "top_p",
    "min_p", "repeat_penalty", "seed", "stop", "deadline_ms", "priority",
};

// A problem with one field of one line; the message is the part after "NAME:LINE: ".
struct line_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string range_text(int64_t lo, int64_t hi) {
    std::string m = "integer out of range ";
    m.append(std::to_string(lo)).append("..").append(std::to_string(hi));
    return m;
}

std::string indexed(const char* name, size_t i) {
    std::string s = name;
    s.append("[").append(std::to_string(i)).append("]");
    return s;
}

[[noreturn]] void field_fail(const std::string& field, const std::string& what) {
    std::string m = "field '";
    m.append(field).append("': ").append(what);
    throw line_error(m);
}

std::string string_get(const json& v, const std::string& field) {
    if (!v.is_string()) field_fail(field, "expected a string");
    return v.get<std::string>();
}

int64_t integer_get(const json& v, const std::string& field, int64_t lo, int64_t hi) {
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(hi)) field_fail(field, range_text(lo, hi));
        return static_cast<int64_t>(u);
    }
    if (!v.is_number_integer()) field_fail(field, "expected an integer");
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) field_fail(field, range_text(lo, hi));
    return i;
}

float number_get(const json& v, const std::string& field) {
    if (!v.is_number()) field_fail(field, "expected a number");
    return static_cast<float>(v.get<double>());
}

// A value of one line applied to r; the field name is known to be valid.
void field_apply(wire::request& r, const std::string& k, const json& v) {
    if (k == "id") {
        r.id = string_get(v, k);
    } else if (k == "service") {
        r.service = string_get(v, k);
    } else if (k == "prompt") {
        r.prompt = string_get(v, k);
    } else if (k == "messages") {
        if (!v.is_array()) field_fail(k, "expected an array of {\"role\", \"content\"} objects");
        r.messages.clear();
        for (size_t i = 0; i < v.size(); ++i) {
            const std::string at = indexed("messages", i);
            const json& m = v[i];
            if (!m.is_object()) field_fail(at, "expected an object {\"role\", \"content\"}");
            wire::chat_turn t;
            for (const auto& [mk, mv] : m.items()) {
                if (mk == "role") t.role = string_get(mv, at + ".role");
                else if (mk == "content") t.content = string_get(mv, at + ".content");
                else {
                    std::string m = "unknown field '";
                    m.append(mk).append("' (a message has only role and content)");
                    field_fail(at, m);
                }
            }
            if (!m.contains("role")) field_fail(at + ".role", "required");
            if (!m.contains("content")) field_fail(at + ".content", "required");
            r.messages.push_back(std::move(t));
        }
    } else if (k == "max_tokens") {
        r.max_tokens = static_cast<int32_t>(integer_get(v, k, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
    } else if (k == "temperature") {
        r.temperature = number_get(v, k);
    } else if (k == "top_k") {
        r.top_k = static_cast<int32_t>(integer_get(v, k, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()));
    } else if (k == "top_p") {
        r.top_p = number_get(v, k);
    } else if (k == "min_p") {
        r.min_p = number_get(v, k);
    } else if (k == "repeat_penalty") {
        r.repeat_penalty = number_get(v, k);
    } else if (k == "seed") {
        if (v.is_number_unsigned()) r.seed = v.get<uint64_t>();
        else if (v.is_number_integer() && v.get<int64_t>() >= 0) r.seed = static_cast<uint64_t>(v.get<int64_t>());
        else field_fail(k, "expected a non-negative integer");
    } else if (k == "stop") {
        if (!v.is_array()) field_fail(k, "expected an array of strings");
        r.stop.clear();
        for (size_t i = 0; i < v.size(); ++i) r.stop.push_back(string_get(v[i], indexed("stop", i)));
    } else if (k == "deadline_ms") {
        r.deadline_ms = static_cast<uint32_t>(integer_get(v, k, 0, std::numeric_limits<uint32_t>::max()));
    } else if (k == "priority") {
        if (!v.is_string() || v.get<std::string>() != "batch") field_fail(k, "only \"batch\" is allowed in a batch file (or leave it out)");
    }
}

// "file.jsonl:LINE: message" with the library's own parse error made shorter.
std::string json_error_text(const json::parse_error& e) {
    std::string w = e.what();
    const size_t bracket = w.find("] ");
    if (w.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) w.erase(0, bracket + 2);
    // Each line is parsed alone: "line 1" would only mislead next to the file's line number.
    const std::string line1 = "parse error at line 1, ";
    if (w.rfind(line1, 0) == 0) w.erase(0, line1.size());
    w.insert(0, "invalid JSON: ");
    return w;
}

bool blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; });
}

}  // namespace

std::string batch_field_suggest(std::string_view unknown) {
    std::string norm;
    for (char c : unknown) norm += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string best;
    size_t best_d = std::numeric_limits<size_t>::max();
    for (std::string_view f : known_fields) {
        size_t d = edit_distance(norm, f);
        // "temp" for "temperature", "max" for "max_tokens": a clear abbreviation counts as near.
        if (norm.size() >= 3 && f.substr(0, norm.size()) == norm) d = std::min<size_t>(d, 1);
        const size_t allowed = f.size() <= 4 ? 1 : 2;
        if (d <= allowed && d < best_d) {
            best_d = d;
            best = f;
        }
    }
    return best;
}

std::string batch_file::locate(const std::string& broker_message) const {
    const std::string_view m = broker_message;
    if (m.rfind("jobs[", 0) != 0) return broker_message;
    size_t i = 5, k = 0;
    bool digits = false;
    while (i < m.size() && m[i] >= '0' && m[i] <= '9' && k < (size_t{1} << 40)) {
        k = k * 10 + static_cast<size_t>(m[i] - '0');
        digits = true;
        ++i;
    }
    if (!digits || i >= m.size() || m[i] != ']' || k >= lines.size()) return broker_message;
    std::string_view rest = m.substr(i + 1);
    if (rest.rfind(": ", 0) == 0) rest.remove_prefix(2);
    std::string out = name;
    out.append(":").append(std::to_string(lines[k])).append(": ").append(rest);
    return out;
}

batch_file batch_file_parse(std::string_view text, const std::string& path, const batch_defaults& d) {
    batch_file f;
    f.name = path == "-" ? "<stdin>" : path;
    auto report = [&](size_t line, const std::string& message) {
        ++f.error_count;
        if (f.error_count > batch_file::max_errors_shown) return;
        std::string e = f.name;
        if (line) e.append(":").append(std::to_string(line));
        e.append(": ").append(message);
        f.errors.push_back(std::move(e));
    };

    wire::request base;
    base.service = d.service;
    if (d.max_tokens) base.max_tokens = *d.max_tokens;
    if (d.temperature) base.temperature = *d.temperature;
    if (d.top_k) base.top_k = *d.top_k;
    if (d.top_p) base.top_p = *d.top_p;
    if (d.min_p) base.min_p = *d.min_p;
    if (d.repeat_penalty) base.repeat_penalty = *d.repeat_penalty;
    base.seed = d.seed;
    base.prio = wire::priority::batch;
    base.stream = false;

    std::map<std::string, std::pair<size_t, bool>> id_line;  // job id -> its line, and whether that line had no id
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
    size_t line_no = 0, pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (blank(line)) continue;
        json j;
        try {
            j = json::parse(line);
        } catch (const json::parse_error& e) {
            report(line_no, json_error_text(e));
            continue;
        }
        if (!j.is_object()) {
            report(line_no, std::string("expected a JSON object, got ").append(j.type_name()));
            continue;
        }
        wire::request r = base;
        bool id_given = false, line_bad = false;
        for (const auto& [k, v] : j.items()) {
            if (std::find(known_fields.begin(), known_fields.end(), k) == known_fields.end()) {
                std::string m = "unknown field '";
                m.append(k).append("'");
                const std::string near = batch_field_suggest(k);
                if (!near.empty()) m.append(" (did you mean '").append(near).append("'?)");
                report(line_no, m);
                line_bad = true;
                continue;
            }
            try {
                field_apply(r, k, v);
                if (k == "id") id_given = true;
            } catch (const line_error& e) {
                report(line_no, e.what());
                line_bad = true;
            }
        }
        if (!id_given && !(j.contains("id"))) r.id = std::to_string(line_no);
        if (!line_bad) {
            try {
                wire::request_validate(r);
            } catch (const wire::protocol_error& e) {
                report(line_no, e.what());
                line_bad = true;
            }
        }
        if (id_given || !j.contains("id")) {
            auto [it, fresh] = id_line.emplace(r.id, std::make_pair(line_no, !id_given));
            if (!fresh) {
                std::string m = "duplicate id '";
                m.append(r.id).append("'");
                if (!id_given) m.append(" (this line's number, as it has no id)");
                m.append(": line ").append(std::to_string(it->second.first)).append(" has it too");
                if (it->second.second) m.append(" (its line number, as it has no id)");
                report(line_no, m);
                line_bad = true;
            }
        }
        if (line_bad) continue;
        f.jobs.push_back(std::move(r));
        f.lines.push_back(line_no);
    }
    if (f.jobs.empty() && f.error_count == 0) report(0, "no jobs (the file has no JSON lines)");
    if (f.error_count > batch_file::max_errors_shown) {
        std::string more = "and ";
        more.append(std::to_string(f.error_count - batch_file::max_errors_shown)).append(" more errors");
        f.errors.push_back(std::move(more));
    }
    if (!f.errors.empty()) {
        f.jobs.clear();
        f.lines.clear();
    }
    return f;
}

batch_file batch_file_read(const std::string& path, const batch_defaults& d) {
    std::string text;
    FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
    if (!in) {
        batch_file f;
        f.name = path;
        f.error_count = 1;
        std::string e = path;
        e.append(": cannot open: ").append(std::strerror(errno));
        f.errors.push_back(std::move(e));
        return f;
    }
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, in)) > 0) text.append(buf, n);
    const bool failed = std::ferror(in) != 0;
    const int err = errno;
    if (in != stdin) std::fclose(in);
    if (failed) {
        batch_file f;
        f.name = path == "-" ? "<stdin>" : path;
        f.error_count = 1;
        std::string e = f.name;
        e.append(": cannot read: ").append(std::strerror(err));
        f.errors.push_back(std::move(e));
        return f;
    }
    return batch_file_parse(text, path, d);
}

}  // namespace hearth
