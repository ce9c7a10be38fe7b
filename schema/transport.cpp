#include "transport.h"

#include <random>

namespace hearth::wire {

void socket_setup(zmq::socket_t& s, int64_t max_message_bytes) {
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::maxmsgsize, max_message_bytes);
    // Streams of small PARTIAL frames: room for many before a slow peer counts as stuck.
    s.set(zmq::sockopt::sndhwm, 100000);
    s.set(zmq::sockopt::rcvhwm, 100000);
}

bool message_send(zmq::socket_t& s, std::string_view routing_id, command cmd, std::string_view body) {
    const std::string header = header_frame();
    const uint8_t c = static_cast<uint8_t>(cmd);
    try {
        if (!routing_id.empty()) {
            if (!s.send(zmq::buffer(routing_id.data(), routing_id.size()), zmq::send_flags::sndmore | zmq::send_flags::dontwait))
                return false;
        }
        // Once the first frame is queued the rest of the message always follows.
        if (!s.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
        s.send(zmq::buffer(&c, 1), zmq::send_flags::sndmore);
        s.send(zmq::buffer(body.data(), body.size()), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH || e.num() == EAGAIN) return false;
        throw;
    }
    return true;
}

std::vector<std::string_view> frames::views(size_t first) const {
    std::vector<std::string_view> v;
    for (size_t i = first; i < parts.size(); ++i) v.emplace_back(static_cast<const char*>(parts[i].data()), parts[i].size());
    return v;
}

std::string_view frames::routing_id() const {
    if (parts.empty()) return {};
    return {static_cast<const char*>(parts[0].data()), parts[0].size()};
}

bool message_recv(zmq::socket_t& s, frames& out) {
    out.parts.clear();
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) return false;
    bool more = m.more();
    out.parts.push_back(std::move(m));
    while (more) {
        zmq::message_t next;
        (void)s.recv(next, zmq::recv_flags::none);  // the rest of a message arrives with its first frame
        more = next.more();
        out.parts.push_back(std::move(next));
    }
    return true;
}

int poll_interruptible(zmq::pollitem_t* items, size_t n, std::chrono::milliseconds timeout) {
    try {
        return zmq::poll(items, n, timeout);
    } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return 0;
        throw;
    }
}

std::string routing_id_random() {
    std::random_device rd;
    std::string id(16, '\0');
    for (auto& ch : id) ch = static_cast<char>(rd() & 0xff);
    id[0] = static_cast<char>(0x40 | (static_cast<uint8_t>(id[0]) & 0x3f));
    return id;
}

}  // namespace hearth::wire
