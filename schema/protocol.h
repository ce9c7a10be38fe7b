// The hearth wire protocol, version 1 (documented in schema/protocol.md): every message is three
// frames, [header "hearth/1"] [command, one byte] [body, a MessagePack map with string keys],
// preceded on ROUTER sockets by the peer's routing id. This file is the codec shared by broker,
// workers and clients; it works on bytes only (no sockets), so the fuzzer can drive it directly.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::wire {

constexpr int protocol_version = 1;
constexpr std::string_view protocol_tag = "hearth";   // header frame: "hearth/<version>"
constexpr size_t max_header_bytes = 32;
constexpr size_t max_schema_bytes = 256u << 10;       // REQUEST's "schema"

// One byte on the wire; values are stable across versions.
enum class command : uint8_t {
    request = 1,     // client -> broker, broker -> worker
    cancel = 2,      // client -> broker, broker -> worker
    status = 3,      // client -> broker (query), broker -> client (reply)
    heartbeat = 4,   // all directions
    accepted = 5,    // broker -> client
    partial = 6,     // worker -> broker -> client
    final = 7,       // worker -> broker -> client
    error = 8,       // any -> any
    ready = 9,       // worker -> broker
    disconnect = 10, // worker <-> broker
    batch = 11,      // client -> broker (submit or query a batch), broker -> client (its answer); protocol-batch.h
    audit = 12,      // client -> broker (a usage log query), broker -> client (its answer); protocol-audit.h
};
std::string_view command_name(command c);
std::optional<command> command_from_byte(uint8_t b);

// Stable error codes (the strings are the wire form).
enum class error_code {
    bad_request, bad_version, unknown_service, too_large, queue_full, quota_exceeded, unauthorized,
    no_worker, worker_lost, timeout, cancelled, filtered, overloaded, unsupported, internal,
};
std::string_view error_code_name(error_code c);
std::optional<error_code> error_code_from_name(std::string_view s);

// Thrown by every decoder: the code and message go back to the peer in an ERROR.
class protocol_error : public std::runtime_error {
public:
    protocol_error(error_code code, const std::string& what) : std::runtime_error(what), code_(code) {}
    error_code code() const { return code_; }
private:
    error_code code_;
};

enum class priority : uint8_t { interactive = 0, batch = 1 };
std::string_view priority_name(priority p);

// Limits of the decoder, far above any sane message and far below what hurts the process.
struct decode_limits {
    size_t max_body_bytes = 16u << 20;  // whole body
    size_t max_str_bytes = 8u << 20;    // one string
    size_t max_array = 4096;            // elements of one array
    size_t max_map = 256;               // pairs of one map
    size_t max_depth = 8;               // nesting
};

// ---------------------------------------------------------------- envelope
struct envelope {
    command cmd;
    std::string_view body;  // points into the caller's frame
};
// Checks the header and command frames. Throws protocol_error: bad_request for a frame count
// other than 3, a header that is not "hearth/N" or an unknown command; bad_version for N != 1.
envelope envelope_parse(const std::vector<std::string_view>& frames);
// The header frame for this version ("hearth/1").
std::string header_frame();

// ---------------------------------------------------------------- messages (bodies)
struct chat_turn {
    std::string role;     // system, user, assistant
    std::string content;
};

// REQUEST: client -> broker, and (with the broker's own id and the resume fields) broker -> worker.
struct request {
    std::string id;                      // required; 1..128 bytes, unique per client connection
    std::string service;                 // required: complete, chat, command
    std::string prompt;                  // complete/command: the text
    std::vector<chat_turn> messages;     // chat: the conversation so far
    int32_t max_tokens = 256;            // >= 0
    float temperature = 0.8f;            // >= 0; 0 greedy
    int32_t top_k = 40;                  // <= 0 off
    float top_p = 0.95f;                 // (0, 1]; 1 off
    float min_p = 0.05f;                 // [0, 1)
    float repeat_penalty = 1.0f;         // >= 0; 1 off
    std::optional<uint64_t> seed;        // absent: random
    std::vector<std::string> stop;       // up to 8 strings of up to 64 bytes
    priority prio = priority::interactive;
    uint32_t deadline_ms = 0;            // 0: none; else ms from the broker's receipt
    bool stream = true;                  // send PARTIAL frames
    // A JSON-schema subset (engine/grammar.h) the output must match, decoded under a grammar;
    // "" none. For `command` the broker sets it from the whitelist (a client's is replaced).
    std::string schema;
    // broker -> worker only: text already delivered to the client by a worker that died; the new
    // worker continues after it instead of starting over.
    std::string resume_text;
    int32_t resume_tokens = 0;           // completion tokens that text counted
};

struct cancel {
    std::string id;
    std::string reason;                  // broker -> worker: "cancelled" or "timeout"
};

// A worker's memory as its resource guard last read it (workers/resource-guard.h), sent in READY
// and HEARTBEAT and shown in STATUS. Byte counts of 0 and percentages below 0 are unknown.
struct memory_report {
    std::string reason;                  // what holds a throttled or critical state; "" when ok
    int32_t slots_now = -1;              // requests it starts now; -1 all its slots, 0 none (critical)
    uint64_t mem_total = 0;              // /proc/meminfo MemTotal
    uint64_t mem_available = 0;          // /proc/meminfo MemAvailable
    double psi_some = -1;                // memory pressure, "some" avg10 (%)
    double psi_full = -1;                // memory pressure, "full" avg10 (%)
    uint64_t cgroup_current = 0;         // bytes charged to its cgroup
    uint64_t cgroup_limit = 0;           // its cgroup's limit; UINT64_MAX: no limit
    uint64_t rss = 0;                    // the worker's resident memory
    uint64_t budget = 0;                 // its configured memory budget; 0 none
};
// One line for people: "RSS 410 MiB of budget 512 MiB (80%), MemAvailable 3.1 GiB of 7.6 GiB (41%),
// PSI some 0.0 full 0.0, cgroup 1.2 GiB of no limit"; unknown readings are left out.
std::string memory_report_describe(const memory_report& m);

// HEARTBEAT. client -> broker: ids it still waits for; broker -> client: those it does not know
// (a restarted broker), so the client can resubmit. worker -> broker: free slots, guard state and
// running ids. broker -> worker: empty.
struct heartbeat {
    std::vector<std::string> pending;    // client -> broker
    std::vector<std::string> unknown;    // broker -> client
    int32_t free_slots = 0;              // worker -> broker
    std::string guard = "ok";            // worker -> broker: ok, throttled, critical
    std::vector<std::string> running;    // worker -> broker
    std::optional<memory_report> memory; // worker -> broker: the readings behind `guard`
};

struct accepted {
    std::string id;
    uint32_t position = 0;               // 0: dispatched at once; else 1-based place in line
    uint32_t queue_depth = 0;            // requests waiting for this service
    // Why it waits beyond its place in line, e.g. every worker of the service is critical (out of
    // memory); "" when nothing but the line holds it. A new ACCEPTED comes when this changes.
    std::string note;
};

struct partial {
    std::string id;
    std::string text;                    // whole UTF-8 characters only
    int32_t tokens = 0;                  // tokens this text came from
};

struct usage {
    int32_t prompt_tokens = 0;
    int32_t completion_tokens = 0;
    double queue_ms = 0;                 // received -> dispatched (broker)
    double ttft_ms = 0;                  // received -> first token
    double total_ms = 0;                 // received -> final
    double tokens_per_s = 0;             // completion tokens / generation time
    std::string worker;
    std::string model;
};

struct final_reply {
    std::string id;
    std::string text;                    // the whole completion
    std::string finish_reason;           // stop (end of generation or a stop string), length
    usage use;
};

struct error_reply {
    std::string id;                      // empty when the message had none
    error_code code = error_code::internal;
    std::string message;                 // for people
    uint32_t retry_after_ms = 0;         // quota_exceeded/overloaded: when to try again; 0 unknown
};

struct ready {
    std::string worker;                  // a name for people (host:pid by default)
    std::string model;                   // model name or file
    std::vector<std::string> services;
    int32_t slots = 1;
    int32_t n_ctx = 0;                   // positions per slot
    std::string guard = "ok";
    std::optional<memory_report> memory; // the readings behind `guard`
};

struct disconnect {
    std::string reason;
};

// STATUS reply.
struct service_status {
    std::string name;
    uint32_t interactive = 0;            // queued
    uint32_t batch = 0;                  // queued
    uint32_t running = 0;
    uint32_t workers = 0;
    uint32_t throttled = 0;              // of `workers`, those throttled (used only when no other can take work)
    uint32_t critical = 0;               // of `workers`, those critical (given no new work)
    std::string note;                    // why queued work waits, as in ACCEPTED; "" none
};
struct worker_status {
    std::string id;                      // the worker's name
    std::string model;
    std::vector<std::string> services;
    int32_t slots = 0;
    int32_t busy = 0;
    std::string guard;
    double last_seen_ms = 0;             // ms since its last message
    std::optional<memory_report> memory; // the readings behind `guard`
};
struct status_reply {
    std::vector<service_status> services;
    std::vector<worker_status> workers;
    double uptime_s = 0;
    uint64_t served = 0;                 // finals delivered since start
};

// Encoders return the body frame; decoders throw protocol_error (bad_request naming the field for
// a wrong type or a missing required field, too_large past the limits). Unknown fields are ignored.
std::string encode(const request& m);
std::string encode(const cancel& m);
std::string encode(const heartbeat& m);
std::string encode(const accepted& m);
std::string encode(const partial& m);
std::string encode(const final_reply& m);
std::string encode(const error_reply& m);
std::string encode(const ready& m);
std::string encode(const disconnect& m);
std::string encode(const status_reply& m);
std::string encode_empty();  // STATUS query, broker -> worker HEARTBEAT

request decode_request(std::string_view body, const decode_limits& lim = {});
cancel decode_cancel(std::string_view body, const decode_limits& lim = {});
heartbeat decode_heartbeat(std::string_view body, const decode_limits& lim = {});
accepted decode_accepted(std::string_view body, const decode_limits& lim = {});
partial decode_partial(std::string_view body, const decode_limits& lim = {});
final_reply decode_final(std::string_view body, const decode_limits& lim = {});
error_reply decode_error(std::string_view body, const decode_limits& lim = {});
ready decode_ready(std::string_view body, const decode_limits& lim = {});
disconnect decode_disconnect(std::string_view body, const decode_limits& lim = {});
status_reply decode_status(std::string_view body, const decode_limits& lim = {});
void decode_empty(std::string_view body, const decode_limits& lim = {});  // any map

// Semantic checks of a client's request beyond types (id length, service name charset, option
// ranges, stop strings, chat roles); throws protocol_error(bad_request) naming the field.
void request_validate(const request& r);

}  // namespace hearth::wire
