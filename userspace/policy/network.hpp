// Destination matching for connect rules: CIDR blocks and port ranges.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "policy/policy.hpp"

namespace airlock::policy {

// ::ffff:a.b.c.d becomes a.b.c.d; anything else is returned unchanged. Queries
// are unmapped before matching so that a dual-stack socket connecting to an
// IPv4 peer is judged by the IPv4 rules.
[[nodiscard]] IpAddress unmap_ipv4(const IpAddress& address) noexcept;

// 127.0.0.0/8 or ::1. `address` must already be unmapped.
[[nodiscard]] bool is_loopback(const IpAddress& address) noexcept;
// 127.0.0.1 for AF_INET, ::1 for AF_INET6.
[[nodiscard]] IpAddress loopback_address(int family) noexcept;

struct CidrBlock {
    IpAddress network;
    unsigned prefix_length = 0;

    // "10.0.0.0/8", "::1", "2001:db8::/32". A bare address is a /32 or /128.
    // An IPv4-mapped block (::ffff:0:0/96 and narrower) is stored as IPv4.
    // Host bits below the prefix are an error: "10.1.2.3/8" is a typo more
    // often than not.
    [[nodiscard]] static std::expected<CidrBlock, std::string> parse(std::string_view text);
    // `address` must already be unmapped.
    [[nodiscard]] bool contains(const IpAddress& address) const noexcept;
    [[nodiscard]] std::string to_string() const;
};

struct PortRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;

    // "443" or "8000-8100"; ports are 1-65535.
    [[nodiscard]] static std::expected<PortRange, std::string> parse(std::string_view text);
    [[nodiscard]] bool contains(std::uint16_t port) const noexcept { return port >= first && port <= last; }
};

}  // namespace airlock::policy
