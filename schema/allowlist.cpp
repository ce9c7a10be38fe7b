// Reading the CURVE allowlist (format in schema/allowlist.md). Every problem of a file is reported
// at once, one "FILE:LINE: what" line each, so a user fixes them in one pass; nothing half-read is
// ever returned.
#include "allowlist.h"

#include "config.h"
#include "curve-keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hearth {
namespace {

constexpr size_t kMaxFileBytes = 1u << 20;  // a key per line: far beyond any household, and bounds memory

bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

// A value echoed in a message: bounded, and printable so that a binary file cannot garble a log.
std::string shown(const std::string& v) {
    std::string out;
    for (unsigned char ch : v.substr(0, 64)) out.push_back(ch < 0x20 || ch >= 0x7f ? '?' : static_cast<char>(ch));
    if (v.size() > 64) out.append("...");
    return out;
}

// The fields of one line without its comment. A Z85 key may contain '#' (never as its first
// character: a group of 5 encodes at most 2^32 - 1), so inside the key field '#' is kept; a '#'
// that begins a field, or anywhere in a name or role (they never hold one), starts a comment.
std::vector<std::string> fields_of(const std::string& line) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_blank(line[i])) ++i;
        if (i == line.size()) break;
        size_t end = i;
        if (out.size() == 1) {
            while (end < line.size() && !is_blank(line[end])) ++end;
            std::string field = line.substr(i, end - i);
            if (field[0] == '#') break;
            out.push_back(std::move(field));
        } else {
            while (end < line.size() && !is_blank(line[end]) && line[end] != '#') ++end;
            if (end == i) break;  // at a '#'
            out.push_back(line.substr(i, end - i));
            if (end < line.size() && line[end] == '#') break;
        }
        i = end;
    }
    return out;
}

std::optional<key_role> role_parse(const std::string& s) {
    for (key_role r : {key_role::client, key_role::worker, key_role::admin})
        if (key_role_name(r) == s) return r;
    return std::nullopt;
}

}  // namespace

std::string_view key_role_name(key_role r) {
    switch (r) {
        case key_role::client: return "client";
        case key_role::worker: return "worker";
        case key_role::admin: return "admin";
    }
    return "client";
}

allowlist allowlist::parse(const std::string& text, const std::string& source_name) {
    const std::string source = source_name.empty() ? std::string("<allowlist>") : source_name;
    allowlist out;
    std::vector<std::string> problems;
    std::map<std::string, size_t> name_line;                     // where each name was listed
    std::map<std::string, std::pair<size_t, std::string>> key_line;  // where each key was listed, and as whom
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        const std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        ++line_no;
        const std::vector<std::string> f = fields_of(line);
        if (f.empty()) continue;
        auto problem = [&](const std::string& what) {
            std::string m = source;
            m.append(":").append(std::to_string(line_no)).append(": ").append(what);
            problems.push_back(std::move(m));
        };
        if (f.size() != 3) {
            problem(std::string("expected 'name public-key role' (as hearth keygen prints it), found ")
                        .append(std::to_string(f.size()))
                        .append(f.size() == 1 ? " field" : " fields"));
            continue;
        }
        bool ok = true;
        if (!key_name_valid(f[0])) {
            problem(std::string("name '").append(shown(f[0])).append("' must be 1..64 of a-z, 0-9, '_', '-'"));
            ok = false;
        } else if (f[0] == "local") {
            problem("name 'local' is reserved (plain ipc and loopback connections are 'local')");
            ok = false;
        }
        if (!curve_key_valid(f[1])) {
            problem(std::string("'").append(shown(f[1])).append(
                "' is not a CURVE public key (40 Z85 characters, from NAME.pub or hearth keygen)"));
            ok = false;
        }
        const auto role = role_parse(f[2]);
        if (!role) {
            problem(std::string("unknown role '").append(shown(f[2])).append("' (client, worker or admin)"));
            ok = false;
        }
        if (!ok) continue;
        if (auto it = name_line.find(f[0]); it != name_line.end()) {
            problem(std::string("name '").append(f[0]).append("' is already listed on line ").append(
                std::to_string(it->second)));
            continue;
        }
        if (auto it = key_line.find(f[1]); it != key_line.end()) {
            problem(std::string("the key of '").append(f[0]).append("' is already listed on line ").append(
                std::to_string(it->second.first)).append(" as '").append(it->second.second).append(
                "' (a key names one identity)"));
            continue;
        }
        name_line.emplace(f[0], line_no);
        key_line.emplace(f[1], std::make_pair(line_no, f[0]));
        out.entries_.push_back(allowlist_entry{f[0], f[1], *role});
    }
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) {
            if (!all.empty()) all.push_back('\n');
            all.append(p);
        }
        throw config_error(all);
    }
    for (size_t i = 0; i < out.entries_.size(); ++i) {
        out.by_key_.emplace(out.entries_[i].public_z85, i);
        out.by_name_.emplace(out.entries_[i].name, i);
    }
    return out;
}

allowlist allowlist::load(const std::string& path) {
    auto fail = [&](const std::string& what) -> config_error {
        std::string m = path;
        return config_error(m.append(": ").append(what));
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fail(std::string("cannot read the allowlist: ").append(std::strerror(errno)));
    struct stat st {};
    std::string text;
    std::string problem;
    if (::fstat(fd, &st) != 0) problem = std::string("cannot read the allowlist: ").append(std::strerror(errno));
    else if (S_ISDIR(st.st_mode)) problem = "is a directory, not an allowlist";
    else if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) problem = "larger than 1 MiB, refused (an allowlist holds one short line per key)";
    // Read one byte past the limit: a file that grows (or a pipe) must not get past it either.
    char buf[65536];
    while (problem.empty()) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) problem = std::string("cannot read the allowlist: ").append(std::strerror(errno));
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxFileBytes) problem = "larger than 1 MiB, refused (an allowlist holds one short line per key)";
    }
    ::close(fd);
    if (!problem.empty()) throw fail(problem);
    return parse(text, path);
}

const allowlist_entry* allowlist::find_key(const std::string& z) const {
    auto it = by_key_.find(z);
    return it == by_key_.end() ? nullptr : &entries_[it->second];
}

const allowlist_entry* allowlist::find_name(const std::string& n) const {
    auto it = by_name_.find(n);
    return it == by_name_.end() ? nullptr : &entries_[it->second];
}

}  // namespace hearth
