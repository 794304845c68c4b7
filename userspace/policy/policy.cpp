#include "policy/policy.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/exceptions.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <span>

#include "common/unique_fd.hpp"
#include "policy/link_decision.hpp"
#include "policy/policy_impl.hpp"

namespace airlock::policy {
namespace {

// Far above any hand-written policy (10,000 rules of 1,000 patterns aside);
// refuses to slurp a mistaken path such as a disk image.
constexpr std::size_t max_policy_file_bytes = 16u << 20;

// What decide() needs from a Query, computed once per request rather than per rule.
struct Request {
    unsigned action = 0;  // action_bit()
    const Query& query;
    std::optional<IpAddress> address;  // unmapped
    std::string_view home;
    bool local = false;  // `address` is this host: loopback, or Query::destination_is_local
};

bool path_matches(const Rule& rule, std::string_view path, std::string_view home) {
    return std::any_of(rule.paths.begin(), rule.paths.end(),
                       [&](const PathGlob& glob) { return glob.matches(path, home); });
}

// A connect rule with path is about unix sockets; with dest or port, about IP
// peers; with neither, about every connect.
bool connect_matches(const Rule& rule, const Request& request) {
    const bool has_destinations = rule.local_destination || !rule.destinations.empty();
    const bool wants_ip = has_destinations || !rule.ports.empty();
    if (!rule.paths.empty()) return !request.address && path_matches(rule, request.query.path, request.home);
    if (!wants_ip) return true;
    if (!request.address) return false;
    const bool destination_ok = !has_destinations || (rule.local_destination && request.local) ||
                                std::any_of(rule.destinations.begin(), rule.destinations.end(),
                                            [&](const CidrBlock& block) { return block.contains(*request.address); });
    const bool port_ok =
        rule.ports.empty() || std::any_of(rule.ports.begin(), rule.ports.end(),
                                          [&](const PortRange& range) { return range.contains(request.query.port); });
    return destination_ok && port_ok;
}

std::uint64_t count_of(const DataCounts& counts, std::span<const std::string> classes) {
    std::uint64_t total = 0;
    for (const auto& [type, count] : counts)
        if (std::any_of(classes.begin(), classes.end(),
                        [&](const std::string& pattern) { return data_class_matches(pattern, type); }))
            total += count;
    return total;
}

bool rule_matches(const Rule& rule, const Request& request) {
    if ((rule.actions & request.action) == 0) return false;
    if (!rule.session_read.empty() &&
        (request.query.session_read == nullptr ||
         count_of(*request.query.session_read, rule.session_read) < rule.session_read_min))
        return false;
    switch (request.query.action) {
        case Action::open:
            // Every bit the request wants must be one the rule lists.
            if (rule.access && (request.query.access & ~*rule.access) != 0) return false;
            return rule.paths.empty() || path_matches(rule, request.query.path, request.home);
        case Action::exec:
            return rule.paths.empty() || path_matches(rule, request.query.path, request.home);
        case Action::connect:
            return connect_matches(rule, request);
    }
    return false;
}

Decision make_decision(Verdict verdict, int error_number, const std::string& rule, const AskSettings& ask) {
    Decision decision;
    decision.verdict = verdict;
    // An ask keeps its errno: the request is denied with it if the approver
    // says no or the timeout denies.
    decision.error_number = verdict == Verdict::allow ? 0 : error_number;
    decision.rule = rule;
    decision.ask = ask;
    return decision;
}

const std::string default_rule_name = "default";

Decision decision_of(const Rule& rule) {
    Decision decision = make_decision(rule.verdict, rule.error_number, rule.name, rule.ask);
    // A deny needs no data to be final.
    if (rule.verdict != Verdict::deny) decision.inspect = rule.inspect;
    decision.by_session_read = !rule.session_read.empty();
    return decision;
}

Decision first_match(const CompiledPolicy& policy, const Request& request) {
    for (const Rule& rule : policy.rules) {
        if (rule_matches(rule, request)) return decision_of(rule);
    }
    return make_decision(policy.default_verdict, default_error_number, default_rule_name, policy.ask);
}

std::expected<std::string, std::string> read_small_file(const std::string& path) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::unexpected(std::string(std::strerror(errno)));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return std::unexpected(std::string(std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) return std::unexpected(std::string(std::strerror(EISDIR)));
    std::string text;
    char buffer[65536];
    while (true) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(std::string(std::strerror(errno)));
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_policy_file_bytes) {
            return std::unexpected("larger than " + std::to_string(max_policy_file_bytes >> 20) + " MiB");
        }
    }
    return text;
}

std::string describe_classes(std::span<const std::string> classes) {
    std::string out;
    for (const auto& c : classes) out += (out.empty() ? "" : ", ") + c;
    return out;
}

// The errno a denial by data gets: the condition's, the rule's, EACCES.
int denial_errno(const Decision& rule_decision, int condition_errno) {
    if (condition_errno) return condition_errno;
    if (rule_decision.error_number) return rule_decision.error_number;
    if (rule_decision.inspect && rule_decision.inspect->error_number) return rule_decision.inspect->error_number;
    return default_error_number;
}

}  // namespace

bool data_class_matches(std::string_view pattern, std::string_view type) noexcept {
    if (!pattern.empty() && pattern.back() == '*') return type.starts_with(pattern.substr(0, pattern.size() - 1));
    return pattern == type;
}

Decision decide_on_data(const Decision& rule_decision, const DataCounts& found) {
    Decision decision = rule_decision;
    if (!rule_decision.inspect) return decision;
    std::size_t index = 0;
    for (const DataCondition& condition : rule_decision.inspect->on_data) {
        ++index;
        const std::uint64_t count = count_of(found, condition.classes);
        if (count == 0 || count < condition.min_count) continue;
        decision.verdict = condition.verdict;
        decision.error_number = condition.verdict == Verdict::allow || condition.verdict == Verdict::mask
                                    ? 0
                                    : denial_errno(rule_decision, condition.error_number);
        decision.data_reason = "on_data #" + std::to_string(index) + ": " + std::to_string(count) + " finding" +
                               (count == 1 ? "" : "s") + " of " + describe_classes(condition.classes);
        return decision;
    }
    std::uint64_t total = 0;
    for (const auto& [type, count] : found) total += count;
    decision.data_reason = total == 0 ? "inspected: nothing found"
                                      : "inspected: " + std::to_string(total) + " finding" + (total == 1 ? "" : "s") +
                                            ", no on_data condition met";
    return decision;
}

Decision decide_uninspectable(const Decision& rule_decision, std::string_view why) {
    Decision decision = rule_decision;
    if (!rule_decision.inspect) return decision;
    decision.verdict = rule_decision.inspect->limits.too_large;
    decision.error_number = decision.verdict == Verdict::allow ? 0 : denial_errno(rule_decision, 0);
    decision.data_reason = "not inspected (" + std::string(why) + "): too_large: " +
                           std::string(to_string(decision.verdict));
    return decision;
}

struct Policy::Impl : CompiledPolicy {
    explicit Impl(CompiledPolicy&& compiled) : CompiledPolicy(std::move(compiled)) {}
};

std::string Diagnostic::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ":" + std::to_string(line);
        if (column > 0) out += ":" + std::to_string(column);
    }
    return out + ": " + message;
}

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) return {};
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Policy::Policy(Policy&&) noexcept = default;
Policy& Policy::operator=(Policy&&) noexcept = default;
Policy::~Policy() = default;

std::expected<Policy, std::vector<Diagnostic>> Policy::parse(std::string_view yaml_text, std::string source_name) {
    // yaml-cpp reports misuse by throwing; the parser avoids the throwing calls,
    // but nothing may escape the module, so anything left becomes a diagnostic.
    try {
        auto compiled = compile_policy(yaml_text, source_name);
        if (!compiled) return std::unexpected(std::move(compiled.error()));
        return Policy(std::make_unique<Impl>(std::move(*compiled)));
    } catch (const YAML::Exception& e) {
        return std::unexpected(
            std::vector<Diagnostic>{Diagnostic{source_name, e.mark.line >= 0 ? e.mark.line + 1 : 0,
                                               e.mark.column >= 0 ? e.mark.column + 1 : 0, "YAML error: " + e.msg}});
    } catch (const std::exception& e) {
        return std::unexpected(std::vector<Diagnostic>{
            Diagnostic{source_name, 0, 0, std::string("internal error reading policy: ") + e.what()}});
    }
}

std::expected<Policy, std::vector<Diagnostic>> Policy::load_file(const std::string& path) {
    auto text = read_small_file(path);
    if (!text) {
        return std::unexpected(std::vector<Diagnostic>{Diagnostic{path, 0, 0, "cannot read policy: " + text.error()}});
    }
    return parse(*text, path);
}

Decision Policy::decide(const Query& query, std::string_view home) const {
    Request request{action_bit(query.action), query, std::nullopt, home};
    if (query.address) {
        request.address = unmap_ipv4(*query.address);
        request.local = query.destination_is_local || is_loopback(*request.address);
    }
    Decision decision = first_match(*impl_, request);
    if (query.action != Action::connect || !request.local) return decision;
    // A local destination reaches every service bound to all addresses, which
    // rules about loopback mean to cover: eth0's address must not get past
    // `deny 127.0.0.0/8 port 5432`, nor 127.0.0.2 past `deny 127.0.0.1`.
    const IpAddress loopback = loopback_address(request.address->family);
    if (*request.address == loopback) return decision;
    Request as_loopback = request;
    as_loopback.address = loopback;
    return stricter(decision, first_match(*impl_, as_loopback));
}

Decision Policy::strictest_below(std::string_view dir, unsigned access, std::string_view home) const {
    std::optional<Decision> strictest;
    auto count = [&](Decision d) { strictest = strictest ? stricter(*strictest, d) : std::move(d); };
    for (const Rule& rule : impl_->rules) {
        if ((rule.actions & action_bit(Action::open)) == 0) continue;
        // A rule listing access bits matches requests that want only those.
        if (rule.access && (*rule.access & access) == 0) continue;
        const bool may_match = rule.paths.empty() ||
                               std::any_of(rule.paths.begin(), rule.paths.end(),
                                           [&](const PathGlob& glob) { return glob.may_match_below(dir, home); });
        if (!may_match) continue;
        count(decision_of(rule));
        const bool covers_paths = rule.paths.empty() ||
                                  std::any_of(rule.paths.begin(), rule.paths.end(), [&](const PathGlob& glob) {
                                      return glob.matches_all_below(dir, home);
                                  });
        // Nothing below `dir` gets past this rule: later rules and the default never decide there.
        if (covers_paths && (!rule.access || (access & ~*rule.access) == 0)) return *strictest;
    }
    count(make_decision(impl_->default_verdict, default_error_number, default_rule_name, impl_->ask));
    return *strictest;
}

const Approvers& Policy::approvers() const { return impl_->approvers; }
const AskSettings& Policy::ask_settings() const { return impl_->ask; }
const InspectionLimits& Policy::inspection_limits() const { return impl_->inspection; }
bool Policy::uses_inspection() const {
    return std::any_of(impl_->rules.begin(), impl_->rules.end(),
                       [](const Rule& rule) { return rule.inspect || !rule.session_read.empty(); });
}
Verdict Policy::default_verdict() const { return impl_->default_verdict; }
KernelRequirement Policy::kernel_requirement() const { return impl_->kernel_requirement; }

std::string_view to_string(KernelRequirement requirement) noexcept {
    switch (requirement) {
        case KernelRequirement::seccomp: return "seccomp";
        case KernelRequirement::exec_guard: return "exec-guard";
        case KernelRequirement::fallback: return "fallback";
        case KernelRequirement::lsm: return "lsm";
    }
    return "seccomp";
}
const std::string& Policy::source_name() const { return impl_->source_name; }
const std::string& Policy::digest() const { return impl_->digest; }

}  // namespace airlock::policy
