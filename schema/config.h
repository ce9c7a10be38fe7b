// hearth's configuration: one TOML file shared by broker, workers and clients (documented, with
// every key and default, in schema/config.md). Defaults work with no file at all: endpoints are ipc
// sockets in the runtime directory and data lives in the state directory, so two users (or two
// test runs with other XDG directories) never collide.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hearth {

// A bad file or value; the message names the file, the key and (when known) the line.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What one client may use (0: no limit). Exceeding a limit answers quota_exceeded with when it resets.
struct quota_limits {
    uint32_t requests_per_minute = 0;     // REQUESTs accepted per minute (a batch submission counts its jobs)
    uint64_t tokens_per_day = 0;          // prompt + completion tokens of finished requests per UTC day
    uint32_t max_queued = 0;              // requests and batch jobs not yet finished at once
};

struct broker_config {
    std::string client_endpoint;          // ROUTER for clients; default ipc://<runtime>/client.sock
    std::string worker_endpoint;          // ROUTER for workers; default ipc://<runtime>/worker.sock
    uint32_t queue_interactive = 64;      // queued interactive requests per service
    uint32_t queue_batch = 1024;          // queued batch requests per service
    uint32_t max_request_bytes = 1u << 20;  // a REQUEST body larger than this is too_large
    uint32_t max_batch_jobs = 10000;      // jobs in one batch submission
    uint32_t max_batch_bytes = 64u << 20; // a BATCH submit body larger than this is too_large
    uint32_t heartbeat_ms = 1000;         // heartbeat interval, both ways
    uint32_t liveness = 3;                // heartbeats missed before a peer is dead
    uint32_t no_worker_ms = 10000;        // a queued request with no worker for its service this long fails no_worker
    std::vector<std::string> services = {"complete", "chat", "command"};  // names the broker accepts
    std::string usage_db;                 // the usage log's SQLite file; default <state_dir>/usage.db; "off": no log (benchmarks only)
    uint64_t queue_bytes = 256ull << 20;  // bytes of waiting requests (queues and batch backlog) held in memory; past it new work is refused overloaded
    std::string whitelist;                // the safety whitelist (schema/whitelist.md); "": none (no `command` service, no input filter)
    // LAN security (design section 8).
    std::string curve_secret_key;         // the broker's key file (hearth keygen; a path or a key name); "": no CURVE
    std::string allowlist;                // who may connect with CURVE (schema/allowlist.md); required with curve_secret_key
    bool insecure_lan = false;            // allow a non-loopback endpoint without CURVE (warned at every start)
    quota_limits quota;                   // [broker.quota]: every client's limits
    std::map<std::string, quota_limits> quota_roles;    // [broker.quota.role.<role>]: a role's limits (unset keys: [broker.quota]'s)
    std::map<std::string, quota_limits> quota_clients;  // [broker.quota.client.<name>]: one key's limits (unset keys: [broker.quota]'s)
};

struct worker_config {
    std::string broker_endpoint;          // default: broker.worker_endpoint
    std::string model;                    // GGUF path; required to run a worker (or -m)
    std::string name;                     // shown in status; default host:pid
    std::vector<std::string> services = {"complete", "chat"};
    uint32_t slots = 4;                   // requests decoded together
    uint32_t threads = 0;                 // 0: all cores
    uint32_t ctx_size = 2048;             // positions per slot (capped at the model's training context)
    uint32_t batch_size = 256;            // prompt tokens evaluated per engine step (keeps heartbeats flowing)
    uint32_t reconnect_min_ms = 100;      // back-off after losing the broker, doubling up to max
    uint32_t reconnect_max_ms = 5000;
    // The resource guard (workers/resource-guard.h, design section 7): memory thresholds.
    uint64_t memory_budget = 0;           // bytes of RSS this worker may use; 0: none. TOML: bytes or "512M"
    uint32_t guard_interval_ms = 1000;    // how often memory is sampled
    std::string guard_root = "/";         // where /proc and /sys are read from (tests point it at fake files)
    double guard_throttle_available = 0.15;  // MemAvailable (or cgroup headroom) share below this throttles
    double guard_critical_available = 0.05;  // ... below this is critical
    double guard_psi_some_throttle = 20;  // memory PSI "some" avg10 % above this throttles
    double guard_psi_full_critical = 10;  // memory PSI "full" avg10 % above this is critical
    double guard_budget_throttle = 0.9;   // RSS above budget * this throttles
    double guard_budget_critical = 1.0;   // RSS above budget * this is critical
    uint32_t guard_recover_samples = 3;   // clear samples in a row before stepping down a state
    std::string curve_secret_key;         // this worker's key file (path or key name); needed when the broker uses CURVE
    std::string broker_public_key;        // the broker's public key: 40 Z85 characters, or a .pub/.key file
};

struct client_config {
    std::string broker_endpoint;          // default: broker.client_endpoint
    uint32_t timeout_ms = 0;              // give up waiting for a reply after this; 0: never
    std::string curve_secret_key;         // this client's key file (path or key name); needed when the broker uses CURVE
    std::string broker_public_key;        // the broker's public key: 40 Z85 characters, or a .pub/.key file
};

struct config {
    std::string source;                   // file read, or "" for built-in defaults
    std::string runtime_dir;              // sockets: $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/hearth, /run/hearth (root), else /tmp/hearth-<uid>
    std::string state_dir;                // data: $STATE_DIRECTORY, $XDG_STATE_HOME/hearth, ~/.local/state/hearth
    std::string log_level = "info";       // trace, debug, info, warn, error, off
    broker_config broker;
    worker_config worker;
    client_config client;
};

// Finds the file: explicit path (--config), else $HEARTH_CONFIG, else $XDG_CONFIG_HOME/hearth/
// hearth.toml (~/.config/...), else /etc/hearth/hearth.toml; none of these is not an error
// (defaults), but an explicit or $HEARTH_CONFIG path that does not exist is.
std::optional<std::string> config_find(const std::string& explicit_path);
// Loads and validates (unknown keys, wrong types and out-of-range values are errors naming the
// key and line); fills every default, endpoints and directories included.
config config_load(const std::string& explicit_path);
config config_parse(const std::string& toml_text, const std::string& source_name);
config config_defaults();
// The effective configuration as TOML (hearth-broker --print-config); parses back to the same.
std::string config_to_toml(const config& c);
// The limits that apply to key `name` with role `role` (a client entry, else the role's, else
// [broker.quota]).
quota_limits quota_for(const broker_config& b, const std::string& name, const std::string& role);
// Whether an endpoint stays on this machine: ipc://, inproc://, or tcp:// on 127.0.0.0/8, ::1 or
// localhost. Anything else (an interface, 0.0.0.0, *) is reachable from the LAN and needs CURVE.
bool endpoint_is_local(const std::string& endpoint);
// Creates the directory of an ipc:// endpoint (mode 0700) so bind can succeed; no-op otherwise.
void config_prepare_endpoint(const std::string& endpoint);

}  // namespace hearth
