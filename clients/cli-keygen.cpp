// hearth keygen NAME: a CURVE key pair for a client, worker or broker on the LAN (design section 8).
// Prints the line to add to the broker's key allowlist; the secret never leaves its 0600 file.
#include "cli.h"
#include "curve-keys.h"

#include <cstdio>
#include <memory>

namespace hearth::cli {

namespace {

struct keygen_options {
    std::string name;                       // the key's name: its identity at the broker
    std::string dir;                        // --dir; default key_dir_default()
    std::string role = "client";            // --role, only for the printed allowlist line
    bool force = false;                     // --force: replace an existing pair
};

int keygen_run(const globals& g, const keygen_options& o) {
    if (!key_name_valid(o.name)) throw usage_error("key name '" + o.name + "' must be 1..64 of a-z, 0-9, '_', '-'");
    const std::string dir = o.dir.empty() ? key_dir_default() : o.dir;
    try {
        const curve_keypair k = curve_keypair_generate(o.name);
        curve_keypair_write(dir, k, o.force);
        if (g.json) {
            std::printf("{\"name\":\"%s\",\"public\":\"%s\",\"secret_file\":\"%s/%s.key\",\"public_file\":\"%s/%s.pub\"}\n", o.name.c_str(),
                        k.public_z85.c_str(), dir.c_str(), o.name.c_str(), dir.c_str(), o.name.c_str());
        } else {
            std::fprintf(stderr, "hearth: wrote %s/%s.key (secret, mode 0600) and %s/%s.pub\n", dir.c_str(), o.name.c_str(), dir.c_str(),
                         o.name.c_str());
            std::fprintf(stderr, "hearth: add this line to the broker's key allowlist:\n");
            std::printf("%s %s %s\n", o.name.c_str(), k.public_z85.c_str(), o.role.c_str());
        }
        return exit_ok;
    } catch (const key_error& e) {
        std::fprintf(stderr, "hearth: keygen: %s\n", e.what());
        return exit_usage;
    }
}

}  // namespace

void keygen_add(CLI::App& app, command_list& cmds) {
    auto o = std::make_shared<keygen_options>();
    CLI::App* sub = app.add_subcommand("keygen", "make a CURVE key pair NAME.key (secret, 0600) and NAME.pub for the LAN");
    sub->add_option("name", o->name, "the key's name: its identity at the broker (a-z, 0-9, _, -)")->required();
    sub->add_option("--dir", o->dir, "key directory (default $XDG_CONFIG_HOME/hearth/keys or ~/.config/hearth/keys)");
    sub->add_option("--role", o->role, "role in the printed allowlist line")->check(CLI::IsMember({"client", "worker", "admin"}));
    sub->add_flag("--force", o->force, "replace an existing pair of that name (the old key stops working)");
    cmds.push_back({sub, [o](const globals& g) { return keygen_run(g, *o); }});
}

}  // namespace hearth::cli
