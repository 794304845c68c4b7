// The compiled form of a policy, shared by the parser and the matcher.
// Internal to airlock_policy.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "policy/glob.hpp"
#include "policy/network.hpp"
#include "policy/policy.hpp"

namespace airlock::policy {

inline constexpr int default_error_number = EACCES;

[[nodiscard]] constexpr unsigned action_bit(Action a) noexcept { return 1u << static_cast<unsigned>(a); }

struct Rule {
    std::string name;
    unsigned actions = 0;            // action_bit() mask
    std::optional<unsigned> access;  // AccessBits a request may want; unset = any
    std::vector<PathGlob> paths;     // empty = any path
    std::vector<CidrBlock> destinations;
    bool local_destination = false;  // `dest` lists `local`: loopback and this host's own addresses
    std::vector<PortRange> ports;
    Verdict verdict = Verdict::deny;
    int error_number = default_error_number;
    AskSettings ask;  // already merged with the policy-wide settings
    std::shared_ptr<const Inspection> inspect;  // `inspect: true`; limits merged with the policy-wide ones
    // `session_read`: matches only once the session has read at least
    // session_read_min findings of these classes (together).
    std::vector<std::string> session_read;
    std::uint64_t session_read_min = 1;
    int line = 0;
};

// Policy::Impl is this plus nothing; it is a separate type only because
// Policy::Impl is private and the parser is a free function.
struct CompiledPolicy {
    std::string source_name;
    std::string digest;
    Verdict default_verdict = Verdict::ask;
    AskSettings ask;
    InspectionLimits inspection;
    Approvers approvers;
    KernelRequirement kernel_requirement = KernelRequirement::seccomp;
    std::vector<Rule> rules;
};

// Defined in parser.cpp. Never throws for bad input; every problem found is a
// Diagnostic.
[[nodiscard]] std::expected<CompiledPolicy, std::vector<Diagnostic>> compile_policy(std::string_view yaml_text,
                                                                                    const std::string& source_name);

[[nodiscard]] std::string sha256_hex(std::string_view data);

}  // namespace airlock::policy
