// The small parsers behind policy fields, which also see agent-controlled
// text at decision time (paths matched against globs): path globs, CIDR
// blocks, port ranges, addresses, durations, errno names. The first line of
// the input is the pattern or field, the rest a path to match.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "policy/glob.hpp"
#include "policy/network.hpp"
#include "policy/policy.hpp"

using namespace airlock::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = airlock::fuzz::as_text(data, size);
    const std::size_t newline = input.find('\n');
    const std::string_view field = input.substr(0, newline);
    const std::string_view path = newline == std::string_view::npos ? std::string_view("/") : input.substr(newline + 1);
    const std::string_view home = "/home/agent";

    if (auto glob = PathGlob::compile(field)) {
        (void)glob->matches(path, home);
        (void)glob->matches(path, "");
        if (!path.empty() && path.front() == '/') {
            const bool all = glob->matches_all_below(path, home);
            const bool some = glob->may_match_below(path, home);
            FUZZ_CHECK(!all || some);
        }
    }
    if (auto name = NamePattern::compile(field)) (void)name->matches(path);

    if (auto address = IpAddress::parse(field)) {
        const auto again = IpAddress::parse(address->to_string());
        FUZZ_CHECK(again && *again == *address);
    }
    if (auto block = CidrBlock::parse(field)) {
        const auto again = CidrBlock::parse(block->to_string());
        FUZZ_CHECK(again && again->network == block->network && again->prefix_length == block->prefix_length);
        FUZZ_CHECK(block->contains(block->network));
        if (auto address = IpAddress::parse(path)) (void)block->contains(unmap_ipv4(*address));
    }
    if (auto ports = PortRange::parse(field)) FUZZ_CHECK(ports->first >= 1 && ports->first <= ports->last);
    if (auto duration = parse_duration(field)) FUZZ_CHECK(duration->count() >= 0 && *duration <= std::chrono::hours(24));
    if (auto errno_value = parse_errno_name(field)) FUZZ_CHECK(parse_errno_name(errno_name(*errno_value)) == errno_value);
    return 0;
}
