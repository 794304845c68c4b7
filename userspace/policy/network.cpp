#include "policy/network.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace airlock::policy {
namespace {

constexpr std::array<std::uint8_t, 12> v4_mapped_prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const IpAddress& address) noexcept {
    return address.family == AF_INET6 &&
           std::equal(v4_mapped_prefix.begin(), v4_mapped_prefix.end(), address.bytes.begin());
}

std::optional<unsigned> parse_decimal(std::string_view text) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

unsigned address_bits(int family) noexcept { return family == AF_INET ? 32u : 128u; }

// True when every bit at or after `prefix_length` is zero.
bool host_bits_clear(const IpAddress& address, unsigned prefix_length) noexcept {
    const unsigned total = address_bits(address.family);
    for (unsigned bit = prefix_length; bit < total; ++bit) {
        if ((address.bytes[bit / 8] >> (7 - bit % 8)) & 1u) return false;
    }
    return true;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string; the longest IPv6 text form
    // (with an embedded IPv4 tail) is 45 bytes.
    std::array<char, INET6_ADDRSTRLEN + 1> buffer{};
    if (text.empty() || text.size() >= buffer.size()) return std::nullopt;
    std::memcpy(buffer.data(), text.data(), text.size());

    IpAddress address;
    if (::inet_pton(AF_INET, buffer.data(), address.bytes.data()) == 1) {
        address.family = AF_INET;
        return address;
    }
    if (::inet_pton(AF_INET6, buffer.data(), address.bytes.data()) == 1) {
        address.family = AF_INET6;
        return address;
    }
    return std::nullopt;
}

std::string IpAddress::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> buffer{};
    if (::inet_ntop(family, bytes.data(), buffer.data(), static_cast<socklen_t>(buffer.size())) == nullptr) {
        return "?";
    }
    return buffer.data();
}

IpAddress unmap_ipv4(const IpAddress& address) noexcept {
    if (!is_v4_mapped(address)) return address;
    IpAddress v4;
    v4.family = AF_INET;
    std::copy_n(address.bytes.begin() + 12, 4, v4.bytes.begin());
    return v4;
}

bool is_loopback(const IpAddress& address) noexcept {
    if (address.family == AF_INET) return address.bytes[0] == 127;
    return address.family == AF_INET6 && address == loopback_address(AF_INET6);
}

IpAddress loopback_address(int family) noexcept {
    IpAddress loopback;
    loopback.family = family;
    if (family == AF_INET) {
        loopback.bytes[0] = 127;
        loopback.bytes[3] = 1;
    } else {
        loopback.bytes[15] = 1;
    }
    return loopback;
}

std::expected<CidrBlock, std::string> CidrBlock::parse(std::string_view text) {
    const std::size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    const auto address = IpAddress::parse(address_text);
    if (!address) return std::unexpected("not an IPv4 or IPv6 address or CIDR block");

    CidrBlock block{*address, address_bits(address->family)};
    if (slash != std::string_view::npos) {
        const auto prefix = parse_decimal(text.substr(slash + 1));
        if (!prefix || *prefix > block.prefix_length) {
            return std::unexpected("prefix length must be 0-" + std::to_string(block.prefix_length));
        }
        block.prefix_length = *prefix;
    }
    if (!host_bits_clear(block.network, block.prefix_length)) {
        IpAddress network = block.network;
        const unsigned total = address_bits(network.family);
        for (unsigned bit = block.prefix_length; bit < total; ++bit) {
            network.bytes[bit / 8] = static_cast<std::uint8_t>(network.bytes[bit / 8] & ~(1u << (7 - bit % 8)));
        }
        return std::unexpected("host bits are set below the /" + std::to_string(block.prefix_length) +
                               " prefix; did you mean " + network.to_string() + "/" +
                               std::to_string(block.prefix_length) + "?");
    }
    if (is_v4_mapped(block.network) && block.prefix_length >= 96) {
        block.network = unmap_ipv4(block.network);
        block.prefix_length -= 96;
    }
    return block;
}

bool CidrBlock::contains(const IpAddress& address) const noexcept {
    if (address.family != network.family) return false;
    const unsigned whole_bytes = prefix_length / 8;
    if (!std::equal(network.bytes.begin(), network.bytes.begin() + whole_bytes, address.bytes.begin())) {
        return false;
    }
    const unsigned remaining_bits = prefix_length % 8;
    if (remaining_bits == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xffu << (8 - remaining_bits));
    return (network.bytes[whole_bytes] & mask) == (address.bytes[whole_bytes] & mask);
}

std::string CidrBlock::to_string() const { return network.to_string() + "/" + std::to_string(prefix_length); }

std::expected<PortRange, std::string> PortRange::parse(std::string_view text) {
    const std::size_t dash = text.find('-');
    const auto first = parse_decimal(text.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_decimal(text.substr(dash + 1));
    if (!first || !last) {
        return std::unexpected("not a port number or a 'low-high' port range");
    }
    if (*first < 1 || *first > 65535 || *last < 1 || *last > 65535) {
        return std::unexpected("ports are 1-65535");
    }
    if (*last < *first) return std::unexpected("the range is reversed (low-high)");
    return PortRange{static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)};
}

}  // namespace airlock::policy
