// STUB: being written (helper B).
#include "allowlist.h"

#include "config.h"

namespace hearth {

std::string_view key_role_name(key_role r) {
    switch (r) {
    case key_role::client: return "client";
    case key_role::worker: return "worker";
    case key_role::admin: return "admin";
    }
    return "client";
}

allowlist allowlist::load(const std::string& path) { throw config_error(path + ": allowlist not implemented yet"); }
allowlist allowlist::parse(const std::string&, const std::string& source_name) { throw config_error(source_name + ": allowlist not implemented yet"); }
const allowlist_entry* allowlist::find_key(const std::string& z) const {
    for (const auto& e : entries_) if (e.public_z85 == z) return &e;
    return nullptr;
}
const allowlist_entry* allowlist::find_name(const std::string& n) const {
    for (const auto& e : entries_) if (e.name == n) return &e;
    return nullptr;
}

}  // namespace hearth
