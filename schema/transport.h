// Sending and receiving protocol messages on ZeroMQ sockets (cppzmq). Every hearth socket is set
// up here so that limits (ZMQ_MAXMSGSIZE) and non-blocking sends are never forgotten.
#pragma once

#include "protocol.h"

#include <zmq.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::wire {

// Largest message a socket accepts; bigger ones make libzmq drop the connection (the broker checks
// REQUEST sizes itself below this, so ordinary oversize requests get a too_large answer).
constexpr int64_t default_max_message_bytes = 16ll << 20;

// LINGER 0 (never hang at exit), ZMQ_MAXMSGSIZE, send/receive high-water marks.
void socket_setup(zmq::socket_t& s, int64_t max_message_bytes = default_max_message_bytes);

// Sends one message without blocking: [routing_id] header command body (routing_id empty on
// DEALER sockets). Returns false when it could not be queued (peer gone or its queue full).
bool message_send(zmq::socket_t& s, std::string_view routing_id, command cmd, std::string_view body);

// One received multipart message.
struct frames {
    std::vector<zmq::message_t> parts;
    std::vector<std::string_view> views(size_t first = 0) const;
    std::string_view routing_id() const;  // ROUTER sockets: frame 0
};
// Receives one whole message without blocking; false when none is waiting.
bool message_recv(zmq::socket_t& s, frames& out);

// zmq::poll that returns 0 when a signal interrupts it (the caller checks its stop flag).
int poll_interruptible(zmq::pollitem_t* items, size_t n, std::chrono::milliseconds timeout);

// A random routing id (16 bytes, first byte non-zero as libzmq requires) so that a DEALER keeps
// its identity across reconnects.
std::string routing_id_random();

}  // namespace hearth::wire
