// The C++ client of a hearth broker: one DEALER socket speaking the wire protocol (schema/
// protocol.h). It keeps every request it waits for, so that a broker restart is survived: the
// client's heartbeats list its pending ids, the broker answers with those it does not know, and
// the client resubmits each one that has not streamed any text yet (the same id, so the broker
// can tell a resubmission from a new request). A client is not thread-safe: use one per thread.
#pragma once

#include "curve-keys.h"
#include "protocol-audit.h"
#include "protocol-batch.h"
#include "protocol.h"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace hearth {

struct client_options {
    std::string endpoint;                          // the broker's client endpoint (config client.broker_endpoint)
    uint32_t heartbeat_ms = 1000;                  // HEARTBEAT interval while requests are pending
    uint32_t broker_timeout_ms = 10000;            // silence from the broker this long while waiting = transport failure
    uint32_t timeout_ms = 0;                       // call(): the whole call, 0 none; then it cancels and fails 'timeout'
    const std::atomic<bool>* interrupted = nullptr;  // call() cancels its request once this turns true (SIGINT)
    std::string curve_secret_key;                  // this client's CURVE key file (path or key name, hearth keygen); "": plain
    std::string broker_public_key;                 // the broker's CURVE public key (40 Z85 chars or a .pub/.key file); "": plain
};

// The CURVE keys a client_options names, read from their files (curve_client_keys_load): nullopt
// when neither is set (a plain connection). Throws std::invalid_argument when only one of the two
// is set or a key cannot be read.
std::optional<curve_client_keys> client_curve_keys_load(const client_options& o);

// One reply for one request, as next() hands it out. Only the member matching cmd is filled.
struct client_event {
    wire::command cmd = wire::command::error;      // accepted, partial, final or error
    std::string id;                                // the request it belongs to
    wire::accepted accepted;                       // cmd == accepted
    wire::partial partial;                         // cmd == partial
    wire::final_reply final;                       // cmd == final
    wire::error_reply error;                       // cmd == error (also the ones the client makes itself)
    bool transport_failed = false;                 // no usable answer from the broker: see transport_message
    std::string transport_message;                 // for people; id is empty when it concerns every request
    int resubmissions = 0;                         // final/error: times the request went out again after a broker restart
    size_t ends = 0;                               // requests this event ends (1 for final/error; all pending for a transport failure)
};

// What call() ends with: a FINAL (ok), an ERROR (error), or no usable broker (transport_failed).
struct client_result {
    bool ok = false;                               // final is set
    wire::final_reply final;                       // the whole completion and its usage
    wire::error_reply error;                       // !ok && !transport_failed: the broker's (or a local timeout/cancel) error
    bool transport_failed = false;                 // the broker did not answer, or answered bytes that do not decode
    std::string transport_message;                 // for people: what went wrong and where
    bool accepted = false;                         // an ACCEPTED arrived
    uint32_t position = 0;                         // from the last ACCEPTED: 0 dispatched at once, else place in line
    uint32_t queue_depth = 0;                      // from the last ACCEPTED
    int resubmissions = 0;                         // times the request was sent again after a broker restart
};

// What a query call (batch(), audit()) ends with: the broker's reply (ok), its ERROR (error), or
// no answer.
template <typename Reply>
struct query_result {
    bool ok = false;                               // reply is set
    Reply reply;                                   // the broker's answer, carrying the call's id
    wire::error_reply error;                       // !ok && !transport_failed: the broker refused the call
    bool transport_failed = false;                 // nothing came in time, the reply did not decode, or interrupted
    std::string transport_message;                 // for people: what went wrong and where
};
using batch_result = query_result<wire::batch_reply>;
using audit_result = query_result<wire::audit_reply>;

class client {
public:
    // Connects (lazily, as ZeroMQ does): no broker need be running yet. Throws
    // std::invalid_argument for an endpoint ZeroMQ cannot parse or unusable CURVE keys
    // (client_curve_keys_load).
    explicit client(const client_options& o);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // Sends one request and waits for its end. r.id empty: a random id is assigned. Callbacks run on
    // this thread as replies arrive. Replies for requests submit()ted earlier are kept for next().
    client_result call(wire::request r, const std::function<void(const wire::partial&)>& on_partial = {},
                       const std::function<void(const wire::accepted&)>& on_accepted = {});

    // Many requests at once: submit() sends (assigning an id when r.id is empty) and returns the id;
    // next() returns the next reply of any pending request, or nullopt when none came within
    // timeout_ms (< 0: wait until one comes; with requests pending, the broker timeout still
    // applies). An ERROR or FINAL ends its request; a transport failure with an empty id ends all.
    std::string submit(wire::request r);
    std::optional<client_event> next(int timeout_ms);
    // Asks the broker to stop a pending request; it ends with an ERROR 'cancelled' from next().
    // False when the id is not pending or the message could not be queued.
    bool cancel(const std::string& id);
    // Requests whose FINAL/ERROR next() has not handed out yet: loop `while (c.pending()) c.next(..)`.
    size_t pending() const;

    // STATUS query. nullopt with *error set when no reply came in timeout_ms or it did not decode.
    std::optional<wire::status_reply> status(int timeout_ms, std::string* error);

    // One BATCH call (protocol-batch.h): sends c (c.id empty: a random id) and waits up to
    // timeout_ms for the BATCH reply or ERROR carrying its id. Replies to submit()ted requests that
    // arrive meanwhile are kept for next(); a BATCH reply with another id (the late answer to an
    // earlier call that timed out) is dropped. Nothing in timeout_ms: transport_failed.
    batch_result batch(wire::batch_call c, int timeout_ms);
    // One AUDIT call (protocol-audit.h), waited for the same way.
    audit_result audit(wire::audit_call c, int timeout_ms);

    // Raw access for tests that need to send what no well-behaved client would.
    zmq::socket_t& socket() { return sock_; }
    const client_options& options() const { return opt_; }

private:
    using clock = std::chrono::steady_clock;
    struct pending_request {
        wire::request req;                         // kept for resubmission after a broker restart
        bool streamed = false;                     // a PARTIAL arrived: text was delivered, cannot start over
        bool cancelled = false;                    // CANCEL sent: a broker that forgot it means it is over
        int resubmissions = 0;                     // for client_result
    };

    // Waits up to wait_ms for messages and turns each into events_ (or status_); false on timeout.
    bool pump(int wait_ms);
    void handle(const std::vector<std::string_view>& frames);
    void on_heartbeat(const wire::heartbeat& hb);
    void heartbeat_due();
    // Fails every pending request with one transport event when the broker went silent.
    void broker_timeout_check();
    void push_transport(const std::string& message);
    std::string silent_message() const;
    // "no answer from the broker ... for N s; ..." (with the CURVE hint when CURVE is on).
    std::string no_answer_message(uint32_t ms) const;

    client_options opt_;                           // as given
    bool curve_ = false;                           // CURVE is on: silence may also mean the broker refused our key
    zmq::context_t ctx_;                           // one per client: a client owns its I/O thread
    zmq::socket_t sock_;                           // DEALER with a random routing id (survives reconnects)
    std::map<std::string, pending_request> pending_;  // requests without a FINAL/ERROR yet
    std::deque<client_event> events_;              // decoded replies not yet handed out
    std::optional<wire::status_reply> status_;     // the last STATUS reply, until status() takes it
    std::string status_error_;                     // a STATUS reply that did not decode
    // A query's answer as query_wait() collects it.
    struct query_answer {
        std::optional<std::string> body;           // the reply's body
        std::optional<wire::error_reply> error;    // or the broker's ERROR
        std::string transport_message;             // or why neither came (empty otherwise)
    };
    // Sends a query command (BATCH, AUDIT) with `body` and waits for the reply of the same command
    // carrying `id`, or an ERROR for it; heartbeats of pending requests go on meanwhile.
    query_answer query_wait(wire::command cmd, const std::string& id, const std::string& body, int timeout_ms);
    template <typename Reply, typename Decode>
    query_result<Reply> query_finish(query_answer a, Decode&& decode);

    wire::command query_cmd_ = wire::command::batch;  // the command query_wait() waits for
    std::string query_wait_;                       // id of the call query_wait() waits for; empty when none
    std::optional<std::string> query_reply_;       // its reply body, until query_wait() takes it
    std::optional<wire::error_reply> query_error_;  // its ERROR, until query_wait() takes it
    std::string query_broken_;                     // a reply that did not decode while query_wait() waited
    clock::time_point last_recv_;                  // anything from the broker (or the first request after idling)
    clock::time_point last_heartbeat_;             // last HEARTBEAT we sent
};

// A random request id (32 hex digits).
std::string request_id_random();

}  // namespace hearth
