// Which destinations are this host itself, as the kernel routes them.
//
// A connect to any of the host's own addresses (eth0's, a bridge's, all of
// 127/8) reaches the services bound to all addresses just as one to 127.0.0.1
// does, so policy decides such a destination as loopback too
// (policy::Query::destination_is_local).
//
// The kernel is asked per call (RTM_GETROUTE) rather than a set of addresses
// kept from getifaddrs and address notifications: a set lags an address added
// a moment ago unless every lookup first drains the notifications, and the
// route lookup also knows what interface addresses do not (AnyIP ranges such
// as `ip route add local 10.8.0.0/16 dev lo`, broadcast addresses). The kernel
// answers inside the request's sendmsg, so a lookup is two syscalls and never
// waits; loopback addresses need none.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <utility>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "policy/policy.hpp"

namespace airlock::supervisor {

class LocalAddresses {
public:
    // Asks in the calling thread's network namespace.
    [[nodiscard]] static common::Result<LocalAddresses> open();
    // Asks in the network namespace behind `netns_fd` (an fd of
    // /proc/PID/ns/net): a session started in another namespace reaches that
    // namespace's services. Needs CAP_SYS_ADMIN; the calling thread's own
    // namespace is left alone.
    [[nodiscard]] static common::Result<LocalAddresses> open_in(int netns_fd);

    // True when the kernel delivers packets for `address` to this host: its
    // route type is RTN_LOCAL (any address of any interface, all of 127/8, ::1)
    // or RTN_BROADCAST/RTN_ANYCAST (which reach this host's listeners too). An
    // IPv4-mapped IPv6 address is asked about as the IPv4 address it carries.
    // `scope_id` is the interface of a link-local IPv6 address
    // (sin6_scope_id), 0 for none. An address the kernel cannot route at all
    // is not local. One request at a time: not for concurrent use.
    //
    // An error means the kernel could not be asked. Callers deciding policy
    // then count the destination as local (fail closed): deciding it as
    // loopback too can only make the decision stricter.
    [[nodiscard]] common::Result<bool> is_local(const policy::IpAddress& address, std::uint32_t scope_id = 0);
    // The same for a socket address as connect() takes it (sockaddr_in or
    // sockaddr_in6, whose sin6_scope_id is used); other families are not local.
    [[nodiscard]] common::Result<bool> is_local(const sockaddr_storage& address, socklen_t length);

private:
    explicit LocalAddresses(common::UniqueFd socket) : socket_(std::move(socket)) {}

    common::UniqueFd socket_;  // NETLINK_ROUTE, connected to the kernel
    std::uint32_t sequence_ = 0;
};

}  // namespace airlock::supervisor
