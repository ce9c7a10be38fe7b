// BATCH messages of the wire protocol (command 11, schema/protocol.md "Batches"): a client submits
// many requests at once, which the broker stores durably before it answers, runs at batch
// priority, and reports on when asked. One command both ways: the client's batch_call names the
// operation, the broker's batch_reply answers it (or an ERROR carrying the call's id).
#pragma once

#include "protocol.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::wire {

enum class batch_op : uint8_t { submit, status, results, cancel };
std::string_view batch_op_name(batch_op op);
std::optional<batch_op> batch_op_from_name(std::string_view s);

// BATCH, client -> broker.
struct batch_call {
    std::string id;                      // required, 1..128 bytes: the reply (or ERROR) carries it back
    batch_op op = batch_op::status;      // required
    std::string batch;                   // status, results, cancel: the batch id submit returned
    std::vector<request> jobs;           // submit: the jobs in order (each with an id unique in the batch)
    uint32_t from = 0;                   // results: index of the first job wanted
    uint32_t limit = 0;                  // results: at most this many jobs; 0 lets the broker choose
};

// One job in a results reply.
struct batch_job {
    uint32_t idx = 0;                    // 0-based position in the submission
    std::string id;                      // the job's id
    std::string state;                   // queued, done, failed, cancelled
    std::string text;                    // done: the completion; failed: what was generated before
    std::string error;                   // failed: the wire error code
    std::string message;                 // failed: for people
    int64_t finished_us = 0;             // Unix epoch microseconds; 0 while queued
};

// BATCH, broker -> client.
struct batch_reply {
    std::string id;                      // the call's id
    batch_op op = batch_op::status;      // the call's operation
    std::string batch;                   // the batch id
    uint32_t total = 0;                  // jobs submitted
    uint32_t queued = 0;                 // without a result yet (running ones included)
    uint32_t running = 0;                // of those, on a worker now
    uint32_t done = 0;
    uint32_t failed = 0;
    uint32_t cancelled = 0;
    bool batch_cancelled = false;        // cancel was called on the batch
    int64_t created_us = 0;              // when it was stored (Unix epoch microseconds)
    uint32_t stopped = 0;                // cancel: jobs it stopped
    std::vector<batch_job> jobs;         // results: one page, in submission order
    int64_t next = -1;                   // results: `from` of the next page; -1 after the last
};

std::string encode(const batch_call& m);
std::string encode(const batch_reply& m);
batch_call decode_batch_call(std::string_view body, const decode_limits& lim = {});
batch_reply decode_batch_reply(std::string_view body, const decode_limits& lim = {});

// A batch id as the broker makes them: 16 lowercase hex digits.
bool batch_id_valid(std::string_view s);

// Semantic checks beyond types: the call's id, a well-formed batch id where the operation needs
// one, and for submit at least one job, each passing request_validate, with ids unique in the
// batch. Throws protocol_error(bad_request) whose message starts "jobs[i]" for a bad job.
void batch_call_validate(const batch_call& c);

}  // namespace hearth::wire
