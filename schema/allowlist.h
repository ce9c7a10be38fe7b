// Who may connect over CURVE (design section 8, format in schema/allowlist.md): one line per key,
// `name public-key role`, as `hearth keygen` prints it. The broker's ZAP handler admits only keys
// listed here; the name becomes the connection's identity (usage log, whitelist permissions, batch
// ownership, quotas) and the role says what it may do.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hearth {

enum class key_role {
    client,   // submits requests and batches, reads its own audit and results
    worker,   // connects to the worker endpoint only
    admin,    // a client that may also read every client's audit and batches
};
std::string_view key_role_name(key_role r);

struct allowlist_entry {
    std::string name;                      // identity (key_name_valid; "local" is reserved)
    std::string public_z85;                // 40 Z85 characters
    key_role role = key_role::client;      // what it may do
};

class allowlist {
public:
    // Reads and checks the file: a bad line, name, key or role, and a repeated name or key, are
    // config_error naming the file and line.
    static allowlist load(const std::string& path);
    static allowlist parse(const std::string& text, const std::string& source_name);

    const allowlist_entry* find_key(const std::string& public_z85) const;  // nullptr: not listed
    const allowlist_entry* find_name(const std::string& name) const;       // nullptr: not listed
    const std::vector<allowlist_entry>& entries() const { return entries_; }

private:
    std::vector<allowlist_entry> entries_;  // in file order
    // Looked up on every client message: indexes into entries_.
    std::unordered_map<std::string, size_t> by_key_;   // public key -> entry
    std::unordered_map<std::string, size_t> by_name_;  // name -> entry
};

}  // namespace hearth
