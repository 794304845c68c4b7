// Policy: the YAML contract users write, parsed into an immutable, matchable form.
//
// Precedence (documented in README "Policy reference"): rules are tried in file
// order and the FIRST rule whose every match field matches decides. When none
// matches, `default` decides. A rule with no match fields other than `action`
// matches every request of that action.
#pragma once

#include <netinet/in.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace airlock::policy {

// `mask` is only ever the verdict of an on_data condition (see Inspection).
enum class Verdict { allow, deny, ask, mask };
enum class Action { open, connect, exec };

// Bitmask of what an open wants. An O_RDWR|O_CREAT open is read|write|create.
enum AccessBits : unsigned { access_read = 1u, access_write = 2u, access_create = 4u };

[[nodiscard]] std::string_view to_string(Verdict v);
[[nodiscard]] std::string_view to_string(Action a);
[[nodiscard]] std::optional<Verdict> parse_verdict(std::string_view s);
[[nodiscard]] std::optional<Action> parse_action(std::string_view s);
// "read", "write", "read|write|create" for a mask.
[[nodiscard]] std::string access_to_string(unsigned mask);

// An IPv4 or IPv6 address; IPv4 is stored in the first 4 bytes.
struct IpAddress {
    int family = AF_INET;  // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{};
    [[nodiscard]] std::string to_string() const;
    [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);
    [[nodiscard]] bool operator==(const IpAddress&) const = default;
};

// Findings by detector id ("pii.us_ssn" -> 120): what inspected content held,
// or what a session has read so far.
using DataCounts = std::map<std::string, std::uint64_t, std::less<>>;

// True when `pattern` (a detector id, or a prefix ending in '*': "pii.*",
// "*") names the detector id `type`.
[[nodiscard]] bool data_class_matches(std::string_view pattern, std::string_view type) noexcept;

// What the supervisor asks about. Paths are absolute and normalized (no "." or
// ".." components, no duplicate slashes), already resolved by the supervisor.
struct Query {
    Action action = Action::open;
    std::string path;         // open: file; exec: binary; connect: AF_UNIX socket path
    unsigned access = 0;      // open only: AccessBits mask
    std::optional<IpAddress> address;  // connect to AF_INET/AF_INET6 only
    std::uint16_t port = 0;            // connect to AF_INET/AF_INET6 only
    // connect to AF_INET/AF_INET6 only: the kernel delivers `address` to this
    // host (one of its own addresses; supervisor/local_address.hpp tells). Such
    // a connect reaches every service bound to all addresses, as one to
    // loopback does, so decide() judges it both as `address` and as loopback
    // (127.0.0.1 or ::1, same port), and the `local` destination class matches
    // it. Loopback addresses are local whatever this says.
    bool destination_is_local = false;
    // What the session has read so far (files whose content was inspected
    // and handed over unmasked), for rules with `session_read`. Null counts
    // as nothing read.
    const DataCounts* session_read = nullptr;
};

struct AskSettings {
    std::chrono::milliseconds timeout{std::chrono::minutes(5)};
    Verdict on_timeout = Verdict::deny;  // allow or deny, never ask
};

// Limits of content inspection (policy-wide `inspection:`, a rule may
// override too_large).
struct InspectionLimits {
    // Content larger than this is not scanned; the too_large verdict decides.
    std::uint64_t max_size = std::uint64_t{16} << 20;
    // Also the verdict for content that cannot be scanned in full before it
    // is handed over (a pipe, a device, a socket) or could not be read.
    Verdict too_large = Verdict::ask;
};

// One `on_data` entry: when the inspected content holds at least `min_count`
// findings of the listed classes (counted together), `verdict` decides.
struct DataCondition {
    std::vector<std::string> classes;  // detector ids or prefixes ending in '*'
    std::uint64_t min_count = 1;
    Verdict verdict = Verdict::deny;  // allow, deny, ask or mask
    int error_number = 0;             // deny (and ask denied): the rule's errno unless given
    int line = 0;
};

// A rule with `inspect: true`: the data an allowed or asked call hands over is
// scanned first, and the first matching condition replaces the rule's verdict.
struct Inspection {
    std::vector<DataCondition> on_data;
    InspectionLimits limits;
    int error_number = 0;  // the rule's errno: for denials that name none
};

// The least kernel-layer enforcement a policy accepts for its sessions
// (`require: { kernel: ... }`), weakest first; the daemon refuses a session
// whose policy asks for more than it runs.
enum class KernelRequirement { seccomp, exec_guard, fallback, lsm };
// "seccomp", "exec-guard", "fallback", "lsm".
[[nodiscard]] std::string_view to_string(KernelRequirement requirement) noexcept;

struct Approvers {
    std::vector<std::string> users;
    std::vector<std::string> groups;
    bool allow_session_owner = false;
};

struct Decision {
    Verdict verdict = Verdict::deny;
    int error_number = 0;     // errno for deny (and for ask that times out to deny); 0 otherwise
    std::string rule;         // rule name that decided; "default" when no rule matched
    AskSettings ask;          // effective ask settings (rule override, else policy-wide)
    // Set when the deciding rule inspects: the verdict above is the rule's,
    // final only once the data is known (decide_on_data / decide_uninspectable).
    std::shared_ptr<const Inspection> inspect;
    // Why the data changed (or kept) the verdict, e.g. "on_data #2: 3 findings
    // of pii.us_ssn"; empty when nothing was inspected.
    std::string data_reason;
    // The deciding rule matched on what the session has read (session_read).
    bool by_session_read = false;
};

// The decision of an inspecting rule once its data's findings are known: the
// first on_data condition they meet decides, else the rule's own verdict.
// `inspect` stays set, so callers can tell the data was looked at.
[[nodiscard]] Decision decide_on_data(const Decision& rule_decision, const DataCounts& found);
// The decision of an inspecting rule whose data could not be scanned in full
// (`why`: "larger than 16 MiB", "a pipe"): its too_large verdict.
[[nodiscard]] Decision decide_uninspectable(const Decision& rule_decision, std::string_view why);

// One problem found while loading a policy, pointing at the YAML node.
struct Diagnostic {
    std::string file;  // as given to parse(); "<embedded:default>" for built-ins
    int line = 0;      // 1-based; 0 when unknown
    int column = 0;    // 1-based; 0 when unknown
    std::string message;
    [[nodiscard]] std::string to_string() const;  // "file:line:col: message"
};

class Policy {
public:
    // Parses and validates. On failure returns EVERY diagnostic found (not just
    // the first). Unknown keys, wrong types, bad globs, bad CIDRs, bad ports,
    // unknown errno names, bad durations, duplicate rule names, on_timeout: ask,
    // and a version other than 1 are all errors.
    [[nodiscard]] static std::expected<Policy, std::vector<Diagnostic>> parse(
        std::string_view yaml_text, std::string source_name);
    [[nodiscard]] static std::expected<Policy, std::vector<Diagnostic>> load_file(
        const std::string& path);

    // `home` is the session user's home directory, substituted for a leading
    // "~" in path patterns. Never fails: no match means the default verdict.
    // A connect to a local destination (Query::destination_is_local, or any
    // loopback address) is decided twice, as its address and as the loopback
    // address of its family with the same port; the stricter decision wins
    // (deny > ask > allow), the one for the real address on a tie.
    [[nodiscard]] Decision decide(const Query& query, std::string_view home) const;
    // The strictest decision (deny > ask > allow) that an open of some path
    // strictly below the directory `dir`, wanting any of the `access` bits,
    // could get: every open rule whose patterns may match below `dir` counts,
    // up to the first that matches all of it for all of `access`; the default
    // counts when no rule does. A rename of `dir` moves all of those paths
    // (policy/link_decision.hpp).
    [[nodiscard]] Decision strictest_below(std::string_view dir, unsigned access, std::string_view home) const;

    [[nodiscard]] const Approvers& approvers() const;
    [[nodiscard]] const AskSettings& ask_settings() const;
    [[nodiscard]] const InspectionLimits& inspection_limits() const;
    // True when some rule inspects data or matches on session_read: the
    // daemon builds its scanner only for policies that need one.
    [[nodiscard]] bool uses_inspection() const;
    [[nodiscard]] Verdict default_verdict() const;
    [[nodiscard]] KernelRequirement kernel_requirement() const;
    [[nodiscard]] const std::string& source_name() const;
    // SHA-256 hex of the YAML text the policy was parsed from (recorded in audit).
    [[nodiscard]] const std::string& digest() const;

    Policy(Policy&&) noexcept;
    Policy& operator=(Policy&&) noexcept;
    ~Policy();

private:
    struct Impl;
    explicit Policy(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Parses "5m", "30s", "250ms", "1h", "1h30m". Max 24h.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
// "EACCES" -> 13. Accepts the usual errno names; nullopt for unknown.
[[nodiscard]] std::optional<int> parse_errno_name(std::string_view s);
[[nodiscard]] std::string errno_name(int e);
// Parses "16MiB", "512KiB", "1GiB", "4096" (bytes). At most 1 GiB.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view s);
// "16 MiB", "512 KiB", "4096 bytes".
[[nodiscard]] std::string size_to_string(std::uint64_t bytes);

}  // namespace airlock::policy
