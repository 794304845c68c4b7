#include "supervisor/local_address.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "policy/network.hpp"

namespace airlock::supervisor {
namespace {

using common::fail;
using common::Result;
using common::UniqueFd;

// A reply left queued by an earlier lookup that failed half-way is skipped by
// its sequence number; this bounds how many one lookup reads past.
constexpr int k_max_replies_read = 8;

Result<UniqueFd> route_socket() {
    // Non-blocking: the kernel answers inside sendmsg, so a reply that is not
    // there at once is never coming, and the event loop must not wait for it.
    UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!fd) return common::fail_errno("socket(AF_NETLINK, NETLINK_ROUTE)");
    return fd;
}

// Connected to the kernel (port 0), the socket refuses datagrams from any
// other sender: an agent cannot forge an answer by guessing the port id.
common::Status connect_to_kernel(const UniqueFd& fd) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel) != 0)
        return common::fail_errno("connecting the route socket to the kernel");
    return {};
}

struct NamespaceOpen {
    int netns_fd = -1;
    int socket = -1;
    int error = 0;
    const char* step = "";
};

// Runs on a thread of its own, which enters the namespace and then ends, so
// no thread of the caller ever changes namespace.
void* open_in_namespace(void* argument) {
    auto* request = static_cast<NamespaceOpen*>(argument);
    if (::setns(request->netns_fd, CLONE_NEWNET) != 0) {
        request->error = errno;
        request->step = "entering the network namespace";
        return nullptr;
    }
    auto fd = route_socket();
    if (!fd) {
        request->error = fd.error().code;
        request->step = "socket(AF_NETLINK, NETLINK_ROUTE) in the network namespace";
        return nullptr;
    }
    request->socket = fd->release();
    return nullptr;
}

struct RouteRequest {
    nlmsghdr header;
    rtmsg route;
    // RTA_DST (up to 16 bytes) and RTA_OIF (4), each aligned to 4.
    alignas(NLMSG_ALIGNTO) unsigned char attributes[RTA_SPACE(16) + RTA_SPACE(sizeof(std::uint32_t))];
};

void add_attribute(RouteRequest& request, unsigned short type, const void* data, std::size_t size) {
    auto* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<unsigned char*>(&request) +
                                                NLMSG_ALIGN(request.header.nlmsg_len));
    attribute->rta_type = type;
    attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(attribute), data, size);
    request.header.nlmsg_len = static_cast<std::uint32_t>(NLMSG_ALIGN(request.header.nlmsg_len) +
                                                          RTA_ALIGN(attribute->rta_len));
}

}  // namespace

Result<LocalAddresses> LocalAddresses::open() {
    auto fd = route_socket();
    if (!fd) return std::unexpected(fd.error());
    if (auto r = connect_to_kernel(*fd); !r) return std::unexpected(r.error());
    return LocalAddresses(std::move(*fd));
}

Result<LocalAddresses> LocalAddresses::open_in(int netns_fd) {
    NamespaceOpen request;
    request.netns_fd = netns_fd;
    pthread_t thread{};
    if (int e = ::pthread_create(&thread, nullptr, open_in_namespace, &request); e != 0)
        return fail(e, "starting a thread to enter the network namespace");
    ::pthread_join(thread, nullptr);
    if (request.socket < 0) return fail(request.error, request.step);
    UniqueFd fd(request.socket);
    if (auto r = connect_to_kernel(fd); !r) return std::unexpected(r.error());
    return LocalAddresses(std::move(fd));
}

Result<bool> LocalAddresses::is_local(const policy::IpAddress& query, std::uint32_t scope_id) {
    const policy::IpAddress address = policy::unmap_ipv4(query);
    // Local however the routes are set up (deleting the 127/8 route breaks
    // the host, not this): no need to ask.
    if (policy::is_loopback(address)) return true;

    RouteRequest request{};
    request.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
    request.header.nlmsg_type = RTM_GETROUTE;
    request.header.nlmsg_flags = NLM_F_REQUEST;
    request.header.nlmsg_seq = ++sequence_;
    const bool v4 = address.family == AF_INET;
    request.route.rtm_family = static_cast<unsigned char>(address.family);
    request.route.rtm_dst_len = v4 ? 32 : 128;
    add_attribute(request, RTA_DST, address.bytes.data(), v4 ? 4 : 16);
    // A link-local address names a host on one link: the connect goes out
    // through that interface, so the lookup must too.
    if (!v4 && scope_id != 0) add_attribute(request, RTA_OIF, &scope_id, sizeof scope_id);

    if (::send(socket_.get(), &request, request.header.nlmsg_len, 0) < 0)
        return common::fail_errno("RTM_GETROUTE for " + address.to_string());

    alignas(nlmsghdr) unsigned char buffer[4096];
    for (int attempt = 0; attempt < k_max_replies_read; ++attempt) {
        const ssize_t received = ::recv(socket_.get(), buffer, sizeof buffer, 0);
        if (received < 0) return common::fail_errno("reading the RTM_GETROUTE answer for " + address.to_string());
        auto remaining = static_cast<std::size_t>(received);
        for (auto* header = reinterpret_cast<const nlmsghdr*>(buffer); NLMSG_OK(header, remaining);
             header = NLMSG_NEXT(header, remaining)) {
            if (header->nlmsg_seq != sequence_) continue;
            if (header->nlmsg_type == NLMSG_ERROR) {
                if (header->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return fail("short netlink error message");
                const int error = -static_cast<const nlmsgerr*>(NLMSG_DATA(header))->error;
                // No route: the kernel would deliver it nowhere, least of all here.
                if (error == ENETUNREACH || error == EHOSTUNREACH) return false;
                return fail(error, "RTM_GETROUTE for " + address.to_string());
            }
            if (header->nlmsg_type != RTM_NEWROUTE || header->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)))
                return fail("unexpected netlink answer to RTM_GETROUTE");
            const auto type = static_cast<const rtmsg*>(NLMSG_DATA(header))->rtm_type;
            return type == RTN_LOCAL || type == RTN_BROADCAST || type == RTN_ANYCAST;
        }
    }
    return fail("no RTM_GETROUTE answer for " + address.to_string());
}

Result<bool> LocalAddresses::is_local(const sockaddr_storage& address, socklen_t length) {
    policy::IpAddress ip;
    if (address.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
        ip.family = AF_INET;
        std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&address)->sin_addr, 4);
        return is_local(ip);
    }
    if (address.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
        ip.family = AF_INET6;
        std::memcpy(ip.bytes.data(), &in6->sin6_addr, 16);
        return is_local(ip, in6->sin6_scope_id);
    }
    return false;
}

}  // namespace airlock::supervisor
