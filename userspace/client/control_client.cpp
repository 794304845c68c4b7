#include "client/control_client.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace airlock::client {

using common::fail;
using common::Result;

Result<ControlClient> ControlClient::connect(const std::string& socket_path) {
    ControlClient c;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) return fail(ENAMETOOLONG, "socket path too long");
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    c.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!c.fd_) return common::fail_errno("socket");
    if (::connect(c.fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return common::fail_errno("cannot reach airlockd at " + socket_path + " (is it running? see --socket)");
    return c;
}

Result<protocol::Reply> ControlClient::call(const protocol::Request& request, int pass_fd) {
    protocol::Request r = request;
    if (!r.id) r.id = next_id_++;
    std::string line = protocol::encode_request(r) + "\n";
    iovec iov{line.data(), line.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    std::size_t sent = 0;
    while (sent < line.size()) {
        ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            // The daemon may have answered and closed (a refused peer): its
            // reason is still waiting to be read and says more than EPIPE.
            auto error = common::fail_errno("sending to airlockd");
            if (auto refused = next(); refused && !refused->ok && !refused->is_event) return refused;
            return error;
        }
        sent += static_cast<std::size_t>(n);
        iov.iov_base = line.data() + sent;
        iov.iov_len = line.size() - sent;
        msg.msg_control = nullptr;  // the fd travels with the first byte only
        msg.msg_controllen = 0;
    }
    for (;;) {
        auto reply = next();
        if (!reply) return reply;
        // An error the daemon could not tie to a request (oversized line, too
        // many connections) carries no id; it is still the answer.
        if (!reply->is_event && (reply->id == r.id || (!reply->ok && !reply->id))) return reply;
    }
}

Result<protocol::Reply> ControlClient::next() {
    for (;;) {
        if (auto line = in_.next()) {
            if (!*line) return fail(EPROTO, line->error().message);
            auto reply = protocol::parse_reply(**line);
            if (!reply) return fail(EPROTO, "bad reply from airlockd: " + reply.error().message);
            return *reply;
        }
        char buf[65536];
        ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return common::fail_errno("reading from airlockd");
        if (n == 0) return fail(ECONNRESET, "airlockd closed the connection");
        in_.append(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

}  // namespace airlock::client
