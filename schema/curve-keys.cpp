#include "curve-keys.h"

#include <zmq.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hearth {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    std::string m = path;
    m.append(": ").append(what);
    throw key_error(m);
}

std::string errno_text() { return std::strerror(errno); }

// Writes `text` to `path` with `mode` through a temporary file renamed into place.
void file_write(const std::string& path, const std::string& text, mode_t mode, bool replace) {
    if (!replace && fs::exists(path)) fail(path, "already exists (--force replaces it; the old key stops working)");
    const std::string tmp = path + ".tmp";
    ::unlink(tmp.c_str());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) fail(tmp, "cannot create: " + errno_text());
    bool ok = ::fchmod(fd, mode) == 0;  // the umask may have narrowed it; never widen beyond mode
    size_t done = 0;
    while (ok && done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += static_cast<size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const std::string why = ok ? "" : errno_text();
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string err = ok ? errno_text() : why;
        ::unlink(tmp.c_str());
        fail(path, "cannot write: " + err);
    }
}

// The value of `key = "..."` lines; "" when absent.
std::string value_of(const std::string& text, const std::string& key) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) != 0) continue;
        const size_t q1 = line.find('"');
        const size_t q2 = line.rfind('"');
        const std::string between = line.substr(key.size(), q1 == std::string::npos ? std::string::npos : q1 - key.size());
        if (q1 == std::string::npos || q2 <= q1 || between.find_first_not_of(" =") != std::string::npos) continue;
        return line.substr(q1 + 1, q2 - q1 - 1);
    }
    return "";
}

// A value echoed in a message: bounded and printable (it may be anything a user pasted).
std::string shown(const std::string& v) {
    std::string out;
    for (unsigned char ch : v.substr(0, 64)) out.push_back(ch < 0x20 || ch >= 0x7f ? '?' : static_cast<char>(ch));
    if (v.size() > 64) out.append("...");
    return out;
}

}  // namespace

bool key_name_valid(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

bool curve_key_valid(const std::string& z85) {
    if (z85.size() != 40) return false;
    uint8_t raw[32];
    return zmq_z85_decode(raw, z85.c_str()) != nullptr;
}

curve_keypair curve_keypair_generate(const std::string& name) {
    if (!zmq_has("curve")) throw key_error("this libzmq was built without CURVE support");
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) throw key_error(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
    return curve_keypair{name, pub, sec};
}

std::string key_dir_default() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/') return std::string(xdg) + "/hearth/keys";
    const char* home = std::getenv("HOME");
    return std::string(home && home[0] == '/' ? home : "/root") + "/.config/hearth/keys";
}

void curve_keypair_write(const std::string& dir, const curve_keypair& k, bool replace) {
    if (!key_name_valid(k.name)) throw key_error("key name '" + k.name + "' must be 1..64 of a-z, 0-9, '_', '-'");
    if (!curve_key_valid(k.public_z85) || !curve_key_valid(k.secret_z85)) throw key_error("not a CURVE key pair");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail(dir, "cannot create the key directory: " + ec.message());
    const std::string base = (fs::path(dir) / k.name).string();
    // Check both before writing either, so a refusal leaves the old pair whole.
    if (!replace)
        for (const char* ext : {".key", ".pub"})
            if (fs::exists(base + ext)) fail(base + ext, "already exists (--force replaces it; the old key stops working)");
    std::string head = "# hearth CURVE key \"" + k.name + "\" (hearth keygen)\n";
    file_write(base + ".key", head + "# SECRET: keep this file private (mode 0600)\npublic = \"" + k.public_z85 + "\"\nsecret = \"" +
                                  k.secret_z85 + "\"\n",
               0600, true);
    file_write(base + ".pub", head + "public = \"" + k.public_z85 + "\"\n", 0644, true);
}

curve_keypair curve_keypair_read(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(path, "cannot read: " + errno_text());
    if (st.st_size > 4096) fail(path, "is not a key file (larger than 4 KiB)");
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    curve_keypair k;
    k.name = fs::path(path).stem().string();
    k.public_z85 = value_of(text, "public");
    k.secret_z85 = value_of(text, "secret");
    if (!curve_key_valid(k.public_z85)) fail(path, "has no valid 'public' key (40 Z85 characters)");
    if (k.secret_z85.empty()) return k;
    if (st.st_mode & 077) fail(path, "holds a secret key but group or others may read it (chmod 600 it)");
    if (!curve_key_valid(k.secret_z85)) fail(path, "'secret' is not a valid key (40 Z85 characters)");
    char derived[41];
    if (zmq_curve_public(derived, k.secret_z85.c_str()) != 0 || k.public_z85 != derived)
        fail(path, "'public' does not belong to 'secret'");
    return k;
}

std::string curve_key_file_resolve(const std::string& name_or_path) {
    // key_name_valid admits no '/' and no '.', so a name never shadows a path like "broker.key".
    if (key_name_valid(name_or_path)) return key_dir_default() + "/" + name_or_path + ".key";
    return name_or_path;
}

std::string curve_public_key_resolve(const std::string& z85_or_file) {
    if (curve_key_valid(z85_or_file)) return z85_or_file;
    std::string why;
    try {
        if (!key_name_valid(z85_or_file)) return curve_keypair_read(z85_or_file).public_z85;
        // A peer's key is normally shared as NAME.pub; NAME.key serves on the machine that owns it.
        const std::string base = key_dir_default() + "/" + z85_or_file;
        const std::string pub = base + ".pub", key = base + ".key";
        std::error_code ec;
        const bool has_pub = fs::exists(pub, ec);
        if (!has_pub && !fs::exists(key, ec)) throw key_error(pub + " and " + key + ": not found");
        return curve_keypair_read(has_pub ? pub : key).public_z85;
    } catch (const key_error& e) {
        why = e.what();
    }
    std::string m = "public key '";
    m.append(shown(z85_or_file)).append("': neither a 40-character Z85 key nor a readable key file (").append(why).append(")");
    throw key_error(m);
}

std::optional<curve_client_keys> curve_client_keys_load(const std::string& own, const std::string& server,
                                                        const std::string& own_setting, const std::string& server_setting) {
    if (own.empty() && server.empty()) return std::nullopt;
    if (own.empty() || server.empty()) {
        std::string m = "a CURVE connection needs both ";
        m.append(own_setting).append(" (this side's key) and ").append(server_setting).append(" (the broker's public key)");
        throw key_error(m);
    }
    const curve_keypair k = curve_keypair_read(curve_key_file_resolve(own));
    if (k.secret_z85.empty()) {
        std::string m = own_setting;
        m.append(" '").append(own).append("' has no secret key: give the NAME.key file, not NAME.pub");
        throw key_error(m);
    }
    return curve_client_keys{k.public_z85, k.secret_z85, curve_public_key_resolve(server)};
}

}  // namespace hearth
