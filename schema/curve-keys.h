// CURVE key pairs for the LAN (design section 8): made by `hearth keygen NAME`, read by the broker,
// workers and clients. A pair lives in two files in a key directory: NAME.key (public and secret,
// mode 0600, refused when others may read it) and NAME.pub (public only, shareable). Keys are the
// 40-character Z85 text ZeroMQ uses.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace hearth {

class key_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct curve_keypair {
    std::string name;                      // who it identifies (a client, a worker, the broker)
    std::string public_z85;                // 40 characters
    std::string secret_z85;                // 40 characters; empty when read from a .pub file
};

// A fresh pair from libzmq. Throws key_error when libzmq was built without CURVE.
curve_keypair curve_keypair_generate(const std::string& name);

// Key names: 1..64 of a-z, 0-9, '_', '-' (they become identities in the usage log and file names).
bool key_name_valid(const std::string& name);

// The default key directory: $XDG_CONFIG_HOME/hearth/keys, else ~/.config/hearth/keys.
std::string key_dir_default();

// Writes DIR/NAME.key (0600) and DIR/NAME.pub (0644), creating DIR (0700). An existing pair is
// refused unless `replace`; a replaced file is swapped in whole (never half written). Throws
// key_error naming the file.
void curve_keypair_write(const std::string& dir, const curve_keypair& k, bool replace);

// Reads NAME.key (public and secret: the secret must match the public key, and the file must not
// be readable by group or others) or NAME.pub (public only). Throws key_error naming the file.
curve_keypair curve_keypair_read(const std::string& path);

// A key file named in configuration or on a command line: a key NAME (key_name_valid, no '/')
// means key_dir_default()/NAME.key; anything else is a path, used as it is.
std::string curve_key_file_resolve(const std::string& name_or_path);

// A peer's public key given as 40 Z85 characters, or as a .pub/.key file (path or key name, as
// above) to read it from; a key NAME is looked up as NAME.pub first, then NAME.key. Throws
// key_error naming the file or the bad value.
std::string curve_public_key_resolve(const std::string& z85_or_file);

// What a CURVE client (a `hearth` client or a worker) needs to connect to the broker.
struct curve_client_keys {
    std::string public_z85;                // this side's public key
    std::string secret_z85;                // and its secret
    std::string server_z85;                // the broker's public key
};

// Reads a client's own key file (curve_key_file_resolve; it must hold the secret) and the broker's
// public key (curve_public_key_resolve). nullopt when both are empty: a plain connection. Throws
// key_error when only one is given or a key cannot be read; own_setting and server_setting name
// the two settings in messages (say "--key" and "--broker-key").
std::optional<curve_client_keys> curve_client_keys_load(const std::string& own, const std::string& server,
                                                        const std::string& own_setting, const std::string& server_setting);

// Whether a string is a 40-character Z85 CURVE key.
bool curve_key_valid(const std::string& z85);

}  // namespace hearth
