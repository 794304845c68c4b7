// YAML text -> CompiledPolicy, with every problem reported at its position.
//
// The walk never stops at the first error: each section and each rule is
// checked independently so the user can fix a whole file in one pass.
// Maps are read by iterating their entries (never operator[]), which is what
// lets unknown and duplicate keys be reported where they are.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>
#include <span>
#include <utility>

#include "inspect/detectors.hpp"
#include "policy/policy_impl.hpp"

namespace airlock::policy {
namespace {

constexpr std::size_t max_rules = 10'000;
constexpr std::size_t max_list_entries = 1'000;  // per path/dest/port/users/groups list
constexpr std::size_t max_shown_diagnostics = 100;
constexpr std::size_t max_rule_name_length = 128;
// YAML aliases let a small file name one long list from 10,000 rules; these
// bound what compiling the policy can cost however the text is written.
constexpr std::size_t max_total_list_entries = 200'000;
constexpr std::size_t max_total_list_bytes = 16u << 20;
constexpr std::size_t max_principal_name_length = 256;

constexpr std::string_view top_level_keys[] = {"version",   "default", "ask",  "inspection",
                                               "approvers", "require", "rules"};
constexpr std::string_view require_keys[] = {"kernel"};
constexpr std::string_view rule_keys[] = {"name",    "match",   "verdict",  "errno",
                                          "ask",     "inspect", "on_data",  "too_large"};
constexpr std::string_view match_keys[] = {"action", "access", "path", "dest", "port", "session_read"};
constexpr std::string_view inspection_keys[] = {"max_size", "too_large"};
constexpr std::string_view on_data_keys[] = {"classes", "min_count", "verdict", "errno"};
constexpr std::string_view session_read_keys[] = {"classes", "min_count"};
constexpr std::size_t max_on_data_conditions = 100;
constexpr std::string_view ask_keys[] = {"timeout", "on_timeout"};
constexpr std::string_view approver_keys[] = {"users", "groups", "allow_session_owner"};

int one_based(int zero_based) { return zero_based >= 0 ? zero_based + 1 : 0; }

class Diagnostics {
public:
    explicit Diagnostics(const std::string& file) : file_(file) {}

    void error(const YAML::Mark& at, std::string message) {
        add(one_based(at.line), one_based(at.column), std::move(message));
    }
    void error_without_position(std::string message) { add(0, 0, std::move(message)); }

    [[nodiscard]] std::size_t count() const { return count_; }

    // The policy-wide size budget lives here because this is the one object
    // every reader is handed. False (and one error, the first time) once spent.
    [[nodiscard]] bool spend_list_entries(const YAML::Mark& at, std::size_t entries, std::size_t bytes) {
        list_entries_ += entries;
        list_bytes_ += bytes;
        if (list_entries_ <= max_total_list_entries && list_bytes_ <= max_total_list_bytes) return true;
        if (!budget_reported_) {
            budget_reported_ = true;
            error(at, "the policy's lists hold more than " + std::to_string(max_total_list_entries) + " entries or " +
                          std::to_string(max_total_list_bytes >> 20) +
                          " MiB in total (counting every use of a YAML alias)");
        }
        return false;
    }

    [[nodiscard]] std::vector<Diagnostic> take() {
        if (count_ > shown_.size()) {
            shown_.push_back(
                Diagnostic{file_, 0, 0, std::to_string(count_ - shown_.size()) + " more errors not shown"});
        }
        return std::move(shown_);
    }

private:
    // A generated 10,000-rule file with one systematic mistake would otherwise
    // produce a wall of identical messages.
    void add(int line, int column, std::string message) {
        ++count_;
        if (shown_.size() < max_shown_diagnostics)
            shown_.push_back(Diagnostic{file_, line, column, std::move(message)});
    }

    std::string file_;
    std::vector<Diagnostic> shown_;
    std::size_t count_ = 0;
    std::size_t list_entries_ = 0;
    std::size_t list_bytes_ = 0;
    bool budget_reported_ = false;
};

// Counts errors since construction, so a reader can tell whether its part was clean.
class ErrorScope {
public:
    explicit ErrorScope(const Diagnostics& d) : diagnostics_(d), before_(d.count()) {}
    [[nodiscard]] bool clean() const { return diagnostics_.count() == before_; }

private:
    const Diagnostics& diagnostics_;
    std::size_t before_;
};

std::string join(std::span<const std::string_view> words) {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += ", ";
        out += word;
    }
    return out;
}

// A 4 KiB glob echoed back whole would bury the reason after it.
std::string quoted(std::string_view s) {
    constexpr std::size_t max_shown = 80;
    if (s.size() <= max_shown) return "'" + std::string(s) + "'";
    return "'" + std::string(s.substr(0, max_shown)) + "...'";
}

// How a node looks to the user, for "got ..." in messages.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Null:
            return "nothing";
        case YAML::NodeType::Scalar:
            return quoted(node.Scalar());
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a mapping";
        case YAML::NodeType::Undefined:
            return "nothing";
    }
    return "something else";
}

struct Entry {
    std::string key;
    YAML::Mark key_mark;
    YAML::Node value;

    // `key:` with nothing after it has no position worth showing; yaml-cpp puts
    // it at the following token, possibly lines later.
    [[nodiscard]] YAML::Mark value_mark() const { return value.IsNull() ? key_mark : value.Mark(); }
};

class Fields {
public:
    [[nodiscard]] const Entry* find(std::string_view key) const {
        for (const auto& entry : entries_) {
            if (entry.key == key) return &entry;
        }
        return nullptr;
    }
    void add(Entry entry) { entries_.push_back(std::move(entry)); }

private:
    std::vector<Entry> entries_;
};

// `where` completes "unknown key 'x' ...", e.g. "in rule 'ssh-keys'".
Fields read_fields(const YAML::Node& map, std::span<const std::string_view> allowed, const std::string& where,
                   Diagnostics& d) {
    Fields fields;
    for (const auto& pair : map) {
        const YAML::Node& key = pair.first;
        if (!key.IsScalar()) {
            d.error(key.Mark(), "keys must be plain strings " + where + "; got " + describe(key));
            continue;
        }
        const std::string& name = key.Scalar();
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
            d.error(key.Mark(), "unknown key " + quoted(name) + " " + where + "; expected one of: " + join(allowed));
            continue;
        }
        if (fields.find(name) != nullptr) {
            d.error(key.Mark(), "duplicate key " + quoted(name) + " " + where);
            continue;
        }
        fields.add(Entry{name, key.Mark(), pair.second});
    }
    return fields;
}

std::string null_hint(std::string_view key) {
    // A bare ~ is YAML's null, which is exactly what someone writing the home
    // directory would type.
    return key == "path" ? " (a bare ~ is YAML null; write \"~\" for the home directory)" : "";
}

std::optional<std::string> read_scalar(const Entry& entry, const std::string& who, std::string_view expected,
                                       Diagnostics& d) {
    if (entry.value.IsScalar()) return entry.value.Scalar();
    d.error(entry.value_mark(), who + ": " + entry.key + " must be " + std::string(expected) + "; got " +
                                    describe(entry.value) + (entry.value.IsNull() ? null_hint(entry.key) : ""));
    return std::nullopt;
}

// A single scalar or a list of them; non-scalar entries are reported and skipped.
std::vector<YAML::Node> read_scalar_list(const Entry& entry, const std::string& who, Diagnostics& d,
                                         bool allow_empty = false) {
    if (entry.value.IsScalar()) {
        if (!d.spend_list_entries(entry.value_mark(), 1, entry.value.Scalar().size())) return {};
        return {entry.value};
    }
    if (!entry.value.IsSequence()) {
        d.error(entry.value_mark(), who + ": " + entry.key + " must be a string or a list of strings; got " +
                                        describe(entry.value) + null_hint(entry.key));
        return {};
    }
    if (entry.value.size() == 0 && !allow_empty) {
        d.error(entry.value_mark(), who + ": " + entry.key + " is an empty list, which matches nothing; remove " +
                                        entry.key + " to match any " + entry.key);
        return {};
    }
    if (entry.value.size() > max_list_entries) {
        d.error(entry.value_mark(), who + ": " + entry.key + " has " + std::to_string(entry.value.size()) +
                                        " entries; at most " + std::to_string(max_list_entries) + " are allowed");
        return {};
    }
    std::size_t bytes = 0;
    for (const auto& item : entry.value) bytes += item.IsScalar() ? item.Scalar().size() : 0;
    if (!d.spend_list_entries(entry.value_mark(), entry.value.size(), bytes)) return {};
    std::vector<YAML::Node> items;
    for (const auto& item : entry.value) {
        if (item.IsScalar()) {
            items.push_back(item);
        } else {
            d.error(item.IsNull() ? entry.key_mark : item.Mark(), who + ": each " + entry.key +
                                                                      " entry must be a string; got " + describe(item) +
                                                                      (item.IsNull() ? null_hint(entry.key) : ""));
        }
    }
    return items;
}

// `mask` is a verdict only where data decides (on_data).
std::optional<Verdict> read_verdict(const Entry& entry, const std::string& who, Diagnostics& d,
                                    bool mask_allowed = false) {
    const std::string_view expected = mask_allowed ? "allow, deny, ask or mask" : "allow, deny or ask";
    const auto text = read_scalar(entry, who, expected, d);
    if (!text) return std::nullopt;
    auto verdict = parse_verdict(*text);
    if (verdict == Verdict::mask && !mask_allowed) {
        d.error(entry.value_mark(), who + ": " + entry.key +
                                        " cannot be mask; mask is a verdict of an on_data condition, which "
                                        "says what to mask");
        return std::nullopt;
    }
    if (!verdict)
        d.error(entry.value_mark(),
                who + ": unknown " + entry.key + " " + quoted(*text) + "; expected " + std::string(expected));
    return verdict;
}

// Reads `ask: { timeout, on_timeout }`; absent fields keep their value in `base`.
std::optional<AskSettings> read_ask(const Entry& entry, const AskSettings& base, const std::string& who,
                                    Diagnostics& d) {
    if (!entry.value.IsMap()) {
        d.error(entry.value_mark(),
                who + ": ask must be a mapping with timeout and/or on_timeout; got " + describe(entry.value));
        return std::nullopt;
    }
    const ErrorScope scope(d);
    const Fields fields = read_fields(entry.value, ask_keys, "in ask" + (who == "policy" ? "" : " of " + who), d);
    AskSettings ask = base;
    if (const Entry* timeout = fields.find("timeout")) {
        if (const auto text = read_scalar(*timeout, who, "a duration such as 30s, 5m or 1h30m", d)) {
            const auto duration = parse_duration(*text);
            if (!duration) {
                d.error(timeout->value_mark(), who + ": timeout " + quoted(*text) +
                                                   " is not a duration such as 30s, 5m, 1h30m or 250ms "
                                                   "(units h, m, s, ms, largest first, at most 24h)");
            } else if (duration->count() == 0) {
                d.error(timeout->value_mark(), who + ": timeout must be longer than 0");
            } else {
                ask.timeout = *duration;
            }
        }
    }
    if (const Entry* on_timeout = fields.find("on_timeout")) {
        if (const auto verdict = read_verdict(*on_timeout, who, d)) {
            if (*verdict == Verdict::ask) {
                d.error(on_timeout->value_mark(), who + ": on_timeout must be allow or deny; ask would wait again");
            } else {
                ask.on_timeout = *verdict;
            }
        }
    }
    if (!scope.clean()) return std::nullopt;
    return ask;
}

bool valid_rule_name(std::string_view name) {
    return !name.empty() && name.size() <= max_rule_name_length && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
}

// User and group names as getpwnam/getgrnam take them. Numeric ids are refused
// because "1000" would be looked up as a name and silently match no one.
std::optional<std::string> principal_name_problem(std::string_view name) {
    if (name.empty()) return "an empty name";
    if (name.size() > max_principal_name_length) return "a name longer than 256 bytes";
    if (std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return "a numeric id; list names, not ids";
    }
    const bool bad_char = std::any_of(name.begin(), name.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= ' ' || u == 0x7f || c == ':' || c == '/' || c == ',';
    });
    if (bad_char) return "not a valid name (no spaces, ':', '/' or ',')";
    return std::nullopt;
}

std::vector<std::string> read_principals(const Entry& entry, Diagnostics& d) {
    std::vector<std::string> names;
    for (const auto& item : read_scalar_list(entry, "approvers", d, /*allow_empty=*/true)) {
        if (const auto problem = principal_name_problem(item.Scalar())) {
            d.error(item.Mark(), "approvers: " + entry.key + " entry " + quoted(item.Scalar()) + " is " + *problem);
        } else {
            names.push_back(item.Scalar());
        }
    }
    return names;
}

Approvers read_approvers(const Entry& entry, Diagnostics& d) {
    Approvers approvers;
    if (!entry.value.IsMap()) {
        d.error(entry.value_mark(), "approvers must be a mapping with users, groups and/or allow_session_owner; got " +
                                        describe(entry.value));
        return approvers;
    }
    const Fields fields = read_fields(entry.value, approver_keys, "in approvers", d);
    if (const Entry* users = fields.find("users")) approvers.users = read_principals(*users, d);
    if (const Entry* groups = fields.find("groups")) approvers.groups = read_principals(*groups, d);
    if (const Entry* owner = fields.find("allow_session_owner")) {
        bool value = false;
        if (owner->value.IsScalar() && YAML::convert<bool>::decode(owner->value, value)) {
            approvers.allow_session_owner = value;
        } else {
            d.error(owner->value_mark(),
                    "approvers: allow_session_owner must be true or false; got " + describe(owner->value));
        }
    }
    return approvers;
}

unsigned read_actions(const Entry& entry, const std::string& who, Diagnostics& d) {
    unsigned actions = 0;
    for (const auto& item : read_scalar_list(entry, who, d)) {
        if (const auto action = parse_action(item.Scalar())) {
            actions |= action_bit(*action);
        } else {
            d.error(item.Mark(),
                    who + ": unknown action " + quoted(item.Scalar()) + "; expected open, connect or exec");
        }
    }
    return actions;
}

std::optional<unsigned> access_bit(std::string_view name) {
    if (name == "read") return access_read;
    if (name == "write") return access_write;
    if (name == "create") return access_create;
    return std::nullopt;
}

unsigned read_access(const Entry& entry, const std::string& who, Diagnostics& d) {
    unsigned mask = 0;
    for (const auto& item : read_scalar_list(entry, who, d)) {
        if (const auto bit = access_bit(item.Scalar())) {
            mask |= *bit;
        } else {
            d.error(item.Mark(),
                    who + ": unknown access " + quoted(item.Scalar()) + "; expected read, write or create");
        }
    }
    return mask;
}

// Compiles each entry of a list with `parse`, reporting failures as "bad <key> 'text': reason".
template <class T, class Parse>
std::vector<T> read_compiled_list(const Entry& entry, const std::string& who, Diagnostics& d, Parse parse) {
    std::vector<T> out;
    for (const auto& item : read_scalar_list(entry, who, d)) {
        auto compiled = parse(item.Scalar());
        if (compiled) {
            out.push_back(std::move(*compiled));
        } else {
            d.error(item.Mark(), who + ": bad " + entry.key + " " + quoted(item.Scalar()) + ": " + compiled.error());
        }
    }
    return out;
}

// `dest` entries are CIDR blocks or the class `local` (loopback and every
// address of this host; Query::destination_is_local).
void read_destinations(const Entry& entry, const std::string& who, Rule& rule, Diagnostics& d) {
    constexpr std::string_view local_class = "local";
    for (const auto& item : read_scalar_list(entry, who, d)) {
        const std::string& text = item.Scalar();
        if (text == local_class) {
            rule.local_destination = true;
            continue;
        }
        auto block = CidrBlock::parse(text);
        if (block) {
            rule.destinations.push_back(*block);
            continue;
        }
        std::string problem = block.error();
        // Names other than `local` (a hostname, "Local", "localhost") are the
        // likely typos; address errors keep the CIDR parser's own words.
        if (!IpAddress::parse(std::string_view(text).substr(0, text.find('/'))))
            problem = "not an IPv4 or IPv6 address, a CIDR block or 'local' (this host's own addresses)";
        d.error(item.Mark(), who + ": bad " + entry.key + " " + quoted(text) + ": " + problem);
    }
}

// Data classes are detector ids ("pii.us_ssn") or prefixes ending in '*'
// ("pii.*", "*"); one that names no detector is an error, so a typo cannot
// quietly match nothing.
std::vector<std::string> read_classes(const Entry& entry, const std::string& who, Diagnostics& d) {
    std::vector<std::string> classes;
    for (const auto& item : read_scalar_list(entry, who, d)) {
        const std::string& text = item.Scalar();
        const auto detectors = inspect::all_detectors();
        const bool names_one = std::any_of(detectors.begin(), detectors.end(), [&](const inspect::Detector& det) {
            return data_class_matches(text, det.id);
        });
        if (names_one) {
            classes.push_back(text);
        } else {
            d.error(item.Mark(), who + ": " + entry.key + " " + quoted(text) +
                                     " names no detector; use a detector id such as pii.us_ssn or "
                                     "secret.github_token, or a prefix such as pii.* (airlock scan --list-types "
                                     "lists them)");
        }
    }
    return classes;
}

std::optional<std::uint64_t> read_count(const Entry& entry, const std::string& who, Diagnostics& d) {
    const auto text = read_scalar(entry, who, "a whole number of at least 1", d);
    if (!text) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value == 0) {
        d.error(entry.value_mark(), who + ": " + entry.key + " must be a whole number of at least 1; got " +
                                        quoted(*text));
        return std::nullopt;
    }
    return value;
}

std::optional<int> read_errno(const Entry& entry, const std::string& who, Diagnostics& d) {
    const auto text = read_scalar(entry, who, "an errno name such as EACCES", d);
    if (!text) return std::nullopt;
    if (const auto number = parse_errno_name(*text)) return number;
    d.error(entry.value_mark(), who + ": unknown errno name " + quoted(*text) +
                                    " (use names such as EACCES, EPERM, ENOENT, ECONNREFUSED)");
    return std::nullopt;
}

// `inspection: { max_size, too_large }`; absent fields keep their value in `base`.
std::optional<InspectionLimits> read_inspection_limits(const Entry& entry, const InspectionLimits& base,
                                                       Diagnostics& d) {
    if (!entry.value.IsMap()) {
        d.error(entry.value_mark(),
                "inspection must be a mapping with max_size and/or too_large; got " + describe(entry.value));
        return std::nullopt;
    }
    const ErrorScope scope(d);
    const Fields fields = read_fields(entry.value, inspection_keys, "in inspection", d);
    InspectionLimits limits = base;
    if (const Entry* max_size = fields.find("max_size")) {
        if (const auto text = read_scalar(*max_size, "inspection", "a size such as 16MiB", d)) {
            const auto bytes = parse_size(*text);
            if (!bytes || *bytes == 0)
                d.error(max_size->value_mark(), "inspection: max_size " + quoted(*text) +
                                                    " is not a size such as 512KiB, 16MiB or 1GiB (bytes without "
                                                    "a unit; more than 0, at most 1GiB)");
            else
                limits.max_size = *bytes;
        }
    }
    if (const Entry* too_large = fields.find("too_large")) {
        if (const auto verdict = read_verdict(*too_large, "inspection", d)) limits.too_large = *verdict;
    }
    if (!scope.clean()) return std::nullopt;
    return limits;
}

// `require: { kernel: lsm }`: the least enforcement the policy's sessions accept.
void read_require(const Entry& entry, CompiledPolicy& policy, Diagnostics& d) {
    if (!entry.value.IsMap()) {
        d.error(entry.value_mark(), "require must be a mapping such as { kernel: lsm }; got " + describe(entry.value));
        return;
    }
    const Fields fields = read_fields(entry.value, require_keys, "in require", d);
    const Entry* kernel = fields.find("kernel");
    if (!kernel) return;
    const auto text = read_scalar(*kernel, "require", "seccomp, exec-guard, fallback or lsm", d);
    if (!text) return;
    for (auto level : {KernelRequirement::seccomp, KernelRequirement::exec_guard, KernelRequirement::fallback,
                       KernelRequirement::lsm}) {
        if (*text == to_string(level)) {
            policy.kernel_requirement = level;
            return;
        }
    }
    d.error(kernel->value_mark(),
            "require: kernel " + quoted(*text) +
                " is not an enforcement level: seccomp (the supervisor alone), exec-guard (plus the exec "
                "tracepoint), fallback (plus cgroup connect/sendmsg programs) or lsm (plus BPF LSM)");
}

// `session_read: ["pii.*"]` or `session_read: { classes: [...], min_count: 100 }`.
void read_session_read(const Entry& entry, const std::string& who, Rule& rule, Diagnostics& d) {
    if (!entry.value.IsMap()) {
        rule.session_read = read_classes(entry, who, d);
        return;
    }
    const Fields fields = read_fields(entry.value, session_read_keys, "in session_read of " + who, d);
    if (const Entry* classes = fields.find("classes")) {
        rule.session_read = read_classes(*classes, who, d);
    } else {
        d.error(entry.value_mark(), who + ": session_read is missing required key 'classes'");
    }
    if (const Entry* min_count = fields.find("min_count")) {
        if (const auto count = read_count(*min_count, who, d)) rule.session_read_min = *count;
    }
}

std::optional<DataCondition> read_data_condition(const YAML::Node& node, std::size_t index, const std::string& who,
                                                 bool open_only, Diagnostics& d) {
    const std::string where = who + ", on_data #" + std::to_string(index + 1);
    if (!node.IsMap()) {
        d.error(node.Mark(), where + " must be a mapping with classes and verdict; got " + describe(node));
        return std::nullopt;
    }
    const ErrorScope scope(d);
    const Fields fields = read_fields(node, on_data_keys, "in " + where, d);
    DataCondition condition;
    condition.line = one_based(node.Mark().line);
    if (const Entry* classes = fields.find("classes")) {
        condition.classes = read_classes(*classes, where, d);
    } else {
        d.error(node.Mark(), where + ": missing required key 'classes'");
    }
    if (const Entry* min_count = fields.find("min_count")) {
        if (const auto count = read_count(*min_count, where, d)) condition.min_count = *count;
    }
    if (const Entry* verdict = fields.find("verdict")) {
        if (const auto v = read_verdict(*verdict, where, d, /*mask_allowed=*/true)) {
            condition.verdict = *v;
            if (*v == Verdict::mask && !open_only)
                d.error(verdict->value_mark(), where + ": mask applies only to rules whose action is open (the "
                                                       "agent gets a redacted copy of the file)");
        }
    } else {
        d.error(node.Mark(), where + ": missing required key 'verdict' (allow, deny, ask or mask)");
    }
    if (const Entry* entry = fields.find("errno")) {
        if (condition.verdict == Verdict::allow || condition.verdict == Verdict::mask) {
            d.error(entry->key_mark, where + ": errno has no effect with verdict " +
                                         std::string(to_string(condition.verdict)));
        } else if (const auto number = read_errno(*entry, where, d)) {
            condition.error_number = *number;
        }
    }
    if (!scope.clean()) return std::nullopt;
    return condition;
}

// inspect / on_data / too_large of a rule whose action and verdict are read.
void read_inspection(const Fields& fields, const std::string& who, const InspectionLimits& policy_limits,
                     std::optional<Verdict> verdict, Rule& rule, Diagnostics& d) {
    const Entry* inspect = fields.find("inspect");
    const Entry* on_data = fields.find("on_data");
    const Entry* too_large = fields.find("too_large");
    bool inspects = false;
    if (inspect != nullptr) {
        if (!inspect->value.IsScalar() || !YAML::convert<bool>::decode(inspect->value, inspects)) {
            d.error(inspect->value_mark(), who + ": inspect must be true or false; got " + describe(inspect->value));
            return;
        }
    }
    if (!inspects) {
        for (const Entry* needs : {on_data, too_large})
            if (needs != nullptr)
                d.error(needs->key_mark, who + ": " + needs->key + " needs inspect: true (it acts on the data the "
                                                                   "rule inspects)");
        return;
    }
    const bool actions_known = rule.actions != 0;
    const bool open_only = rule.actions == action_bit(Action::open);
    if (actions_known && (rule.actions & action_bit(Action::connect)) != 0) {
        d.error(inspect->key_mark, who + ": inspect applies to open (the file's content) and exec (its arguments "
                                         "and environment), not to connect");
        return;
    }
    if (verdict == Verdict::deny) {
        d.error(inspect->key_mark, who + ": inspect has no effect on a deny rule (nothing is handed over)");
        return;
    }
    auto inspection = std::make_shared<Inspection>();
    inspection->limits = policy_limits;
    inspection->error_number = rule.error_number;
    if (too_large != nullptr) {
        if (const auto v = read_verdict(*too_large, who, d)) inspection->limits.too_large = *v;
    }
    if (on_data != nullptr && !on_data->value.IsNull()) {
        if (!on_data->value.IsSequence()) {
            d.error(on_data->value_mark(),
                    who + ": on_data must be a list of {classes, verdict} conditions; got " + describe(on_data->value));
        } else if (on_data->value.size() > max_on_data_conditions) {
            d.error(on_data->value_mark(), who + ": on_data has " + std::to_string(on_data->value.size()) +
                                               " conditions; at most " + std::to_string(max_on_data_conditions) +
                                               " are allowed");
        } else {
            std::size_t index = 0;
            for (const auto& node : on_data->value)
                if (auto condition = read_data_condition(node, index++, who, open_only, d))
                    inspection->on_data.push_back(std::move(*condition));
        }
    }
    rule.inspect = std::move(inspection);
}

bool may_ask(const Rule& rule, std::optional<Verdict> verdict) {
    if (verdict == Verdict::ask) return true;
    if (!rule.inspect) return false;
    if (rule.inspect->limits.too_large == Verdict::ask) return true;
    return std::any_of(rule.inspect->on_data.begin(), rule.inspect->on_data.end(),
                       [](const DataCondition& c) { return c.verdict == Verdict::ask; });
}

// Fills rule.actions/access/paths/destinations/ports.
void read_match(const Entry& entry, const std::string& who, Rule& rule, Diagnostics& d) {
    if (!entry.value.IsMap()) {
        d.error(entry.value_mark(),
                who + ": match must be a mapping with at least 'action'; got " + describe(entry.value));
        return;
    }
    const Fields fields = read_fields(entry.value, match_keys, "in match of " + who, d);
    const Entry* action = fields.find("action");
    const Entry* access = fields.find("access");
    const Entry* path = fields.find("path");
    const Entry* dest = fields.find("dest");
    const Entry* port = fields.find("port");
    if (const Entry* session_read = fields.find("session_read")) read_session_read(*session_read, who, rule, d);

    if (action == nullptr) {
        d.error(entry.value.Mark(), who + ": match is missing required key 'action' (open, connect or exec)");
    } else {
        rule.actions = read_actions(*action, who, d);
    }
    // With an unknown action the checks below would only add noise.
    const bool actions_known = rule.actions != 0;
    const bool open_only = rule.actions == action_bit(Action::open);
    const bool connect_only = rule.actions == action_bit(Action::connect);

    if (access != nullptr) {
        if (actions_known && !open_only) {
            d.error(access->key_mark, who + ": access applies only to action open");
        } else {
            rule.access = read_access(*access, who, d);
        }
    }
    if (path != nullptr) rule.paths = read_compiled_list<PathGlob>(*path, who, d, PathGlob::compile);
    for (const Entry* ip_field : {dest, port}) {
        if (ip_field != nullptr && actions_known && !connect_only) {
            d.error(ip_field->key_mark, who + ": " + ip_field->key + " applies only to action connect");
        }
    }
    if (dest != nullptr) read_destinations(*dest, who, rule, d);
    if (port != nullptr) rule.ports = read_compiled_list<PortRange>(*port, who, d, PortRange::parse);

    if (connect_only && path != nullptr && (dest != nullptr || port != nullptr)) {
        // path selects unix sockets and dest/port select IP peers; a rule with
        // both could never match anything.
        d.error(entry.value.Mark(), who +
                                        ": a connect rule matches either a unix socket (path) or an IP peer "
                                        "(dest/port), not both; split it into two rules");
    }
}

// "rule 'ssh-keys'" when the rule has a usable name, else "rule #3".
std::string rule_label(const YAML::Node& node, std::size_t index) {
    if (node.IsMap()) {
        for (const auto& pair : node) {
            if (pair.first.IsScalar() && pair.first.Scalar() == "name" && pair.second.IsScalar() &&
                valid_rule_name(pair.second.Scalar())) {
                return "rule " + quoted(pair.second.Scalar());
            }
        }
    }
    return "rule #" + std::to_string(index + 1);
}

void read_rule_name(const Fields& fields, const YAML::Node& node, const std::string& who, Rule& rule, Diagnostics& d) {
    const Entry* name = fields.find("name");
    if (name == nullptr) {
        d.error(node.Mark(), who + ": missing required key 'name'");
        return;
    }
    const auto text = read_scalar(*name, who, "a string", d);
    if (!text) return;
    if (!valid_rule_name(*text)) {
        d.error(name->value_mark(),
                who + ": rule name " + quoted(*text) + " must be 1-128 characters from A-Z a-z 0-9 _ . -");
    } else if (*text == "default") {
        d.error(name->value_mark(), who + ": the rule name 'default' is reserved for the default verdict");
    } else {
        rule.name = *text;
    }
}

std::optional<Rule> read_rule(const YAML::Node& node, std::size_t index, const CompiledPolicy& policy,
                              Diagnostics& d) {
    const AskSettings& policy_ask = policy.ask;
    const std::string who = rule_label(node, index);
    if (!node.IsMap()) {
        d.error(node.Mark(), who + " must be a mapping with name, match and verdict; got " + describe(node));
        return std::nullopt;
    }
    const ErrorScope scope(d);
    const Fields fields = read_fields(node, rule_keys, "in " + who, d);
    Rule rule;
    rule.line = one_based(node.Mark().line);
    rule.ask = policy_ask;

    read_rule_name(fields, node, who, rule, d);

    if (const Entry* match = fields.find("match")) {
        read_match(*match, who, rule, d);
    } else {
        d.error(node.Mark(), who + ": missing required key 'match'");
    }

    std::optional<Verdict> verdict;
    if (const Entry* entry = fields.find("verdict")) {
        verdict = read_verdict(*entry, who, d);
        if (verdict) rule.verdict = *verdict;
    } else {
        d.error(node.Mark(), who + ": missing required key 'verdict' (allow, deny or ask)");
    }

    const bool inspects = fields.find("inspect") != nullptr;
    if (const Entry* entry = fields.find("errno")) {
        if (verdict == Verdict::allow && !inspects) {
            d.error(entry->key_mark, who + ": errno has no effect on an allow rule");
        } else if (const auto number = read_errno(*entry, who, d)) {
            rule.error_number = *number;
        }
    }
    read_inspection(fields, who, policy.inspection, verdict, rule, d);

    if (const Entry* entry = fields.find("ask")) {
        if (verdict.has_value() && !may_ask(rule, verdict)) {
            d.error(entry->key_mark,
                    who + ": ask settings apply only to rules that can ask (verdict ask, or an on_data or "
                          "too_large verdict ask)");
        } else if (const auto ask = read_ask(*entry, policy_ask, who, d)) {
            rule.ask = *ask;
        }
    }

    if (!scope.clean()) return std::nullopt;
    return rule;
}

void read_rules(const Entry& entry, CompiledPolicy& policy, Diagnostics& d) {
    if (entry.value.IsNull()) return;  // `rules:` with every rule commented out
    if (!entry.value.IsSequence()) {
        d.error(entry.value_mark(), "rules must be a list; got " + describe(entry.value));
        return;
    }
    const std::size_t count = entry.value.size();
    if (count > max_rules) {
        d.error(entry.value_mark(), "too many rules (" + std::to_string(count) + "); at most " +
                                        std::to_string(max_rules) + " are allowed");
    }
    std::map<std::string, int, std::less<>> first_line_of_name;
    std::size_t index = 0;
    for (const auto& node : entry.value) {
        if (index >= max_rules) break;
        auto rule = read_rule(node, index++, policy, d);
        if (!rule) continue;
        const auto [it, inserted] = first_line_of_name.emplace(rule->name, rule->line);
        if (!inserted) {
            d.error(node.Mark(),
                    "duplicate rule name " + quoted(rule->name) + "; first used at line " + std::to_string(it->second));
            continue;
        }
        policy.rules.push_back(std::move(*rule));
    }
}

void read_version(const Fields& fields, const YAML::Node& root, Diagnostics& d) {
    const Entry* version = fields.find("version");
    if (version == nullptr) {
        d.error(root.Mark(), "missing required key 'version' (write 'version: 1')");
        return;
    }
    const auto text = read_scalar(*version, "policy", "1", d);
    if (text && *text != "1") {
        d.error(version->value_mark(),
                "unsupported policy version " + quoted(*text) + "; this airlock reads version 1");
    }
}

// Notes where a document's first event is.
class DocumentProbe final : public YAML::EventHandler {
public:
    std::optional<YAML::Mark> first;

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { note(mark); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { note(mark); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
        note(mark);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
        note(mark);
    }
    void OnMapEnd() override {}

private:
    void note(const YAML::Mark& mark) {
        if (!first) first = mark;
    }
};

struct DocumentScan {
    std::size_t count = 0;
    std::optional<YAML::Mark> second_document;
    std::optional<YAML::Mark> stuck_at;
};

bool same_position(const YAML::Mark& a, const YAML::Mark& b) { return a.pos == b.pos; }

// Counts documents (up to two) without building nodes. This exists because
// yaml-cpp 0.7's LoadAll never returns on a stray token it cannot consume,
// such as a ',' at the start of a line (jbeder/yaml-cpp#1040, fixed upstream by
// #1319): it yields an empty document at the same position forever, allocating
// until the process is killed. A document that starts where the previous one
// did is that loop, reported as a syntax error instead. Throws
// YAML::ParserException for ordinary syntax errors.
DocumentScan scan_documents(const std::string& text) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentScan scan;
    std::optional<YAML::Mark> previous_start;
    // A first document, a second to report, and one more to tell a real second
    // document from the stuck loop.
    for (int attempt = 0; attempt < 3; ++attempt) {
        DocumentProbe probe;
        if (!parser.HandleNextDocument(probe)) break;
        if (previous_start && probe.first && same_position(*previous_start, *probe.first)) {
            scan.stuck_at = probe.first;
            break;
        }
        if (++scan.count == 2) scan.second_document = probe.first;
        previous_start = probe.first;
    }
    return scan;
}

// Flow collections ([ and {) nested deeper than this are refused before
// yaml-cpp sees them: its recursion guard throws an exception whose type does
// not reliably cross the shared-library boundary (seen under ASan), and the
// stack is the daemon's.
constexpr int k_max_flow_depth = 256;

std::optional<YAML::Mark> too_deep_at(const std::string& text) {
    int depth = 0, line = 0, column = 0;
    char quote = 0;
    bool comment = false;
    for (std::size_t i = 0; i < text.size(); ++i, ++column) {
        const char c = text[i];
        if (c == '\n') {
            line++;
            column = -1;
            comment = false;
            continue;
        }
        if (comment) continue;
        if (quote) {
            if (quote == '"' && c == '\\') ++i, ++column;
            else if (c == quote) quote = 0;
            continue;
        }
        if (c == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t')) comment = true;
        else if (c == '"' || c == '\'') quote = c;
        else if (c == '[' || c == '{') {
            if (++depth > k_max_flow_depth) {
                YAML::Mark mark;
                mark.pos = static_cast<int>(i);
                mark.line = line;
                mark.column = column;
                return mark;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return std::nullopt;
}

std::string character_at(const std::string& text, const YAML::Mark& mark) {
    if (mark.pos < 0 || static_cast<std::size_t>(mark.pos) >= text.size()) return "end of input";
    const char c = text[static_cast<std::size_t>(mark.pos)];
    if (c < ' ' || c == 0x7f) return "character";
    return quoted(std::string_view(&c, 1));
}

void read_document(const YAML::Node& root, CompiledPolicy& policy, Diagnostics& d) {
    if (!root.IsMap()) {
        d.error(root.Mark(),
                "a policy must be a mapping with keys " + join(top_level_keys) + "; got " + describe(root));
        return;
    }
    const Fields fields = read_fields(root, top_level_keys, "at top level", d);
    read_version(fields, root, d);

    if (const Entry* entry = fields.find("default")) {
        if (const auto verdict = read_verdict(*entry, "policy", d)) policy.default_verdict = *verdict;
    } else {
        d.error(root.Mark(), "missing required key 'default' (the verdict when no rule matches: allow, deny or ask)");
    }
    // Read before the rules, which inherit from it.
    if (const Entry* entry = fields.find("ask")) {
        if (const auto ask = read_ask(*entry, AskSettings{}, "policy", d)) policy.ask = *ask;
    }
    if (const Entry* entry = fields.find("inspection")) {
        if (const auto limits = read_inspection_limits(*entry, InspectionLimits{}, d)) policy.inspection = *limits;
    }
    if (const Entry* entry = fields.find("approvers")) policy.approvers = read_approvers(*entry, d);
    if (const Entry* entry = fields.find("require")) read_require(*entry, policy, d);
    if (const Entry* entry = fields.find("rules")) read_rules(*entry, policy, d);
}

}  // namespace

std::expected<CompiledPolicy, std::vector<Diagnostic>> compile_policy(std::string_view yaml_text,
                                                                      const std::string& source_name) {
    Diagnostics d(source_name);
    const std::string text(yaml_text);
    DocumentScan scan;
    YAML::Node root;
    if (auto deep = too_deep_at(text)) {
        d.error(*deep, "YAML nesting is too deep (more than " + std::to_string(k_max_flow_depth) + " levels)");
        return std::unexpected(d.take());
    }
    try {
        scan = scan_documents(text);
        if (scan.stuck_at) {
            d.error(*scan.stuck_at, "YAML syntax error: unexpected " + character_at(text, *scan.stuck_at));
            return std::unexpected(d.take());
        }
        if (scan.count > 0) root = YAML::Load(text);
    } catch (const YAML::DeepRecursion& e) {
        // yaml-cpp's own message for this is "bad file".
        d.error(e.mark, "YAML nesting is too deep");
        return std::unexpected(d.take());
    } catch (const YAML::Exception& e) {
        d.error(e.mark, "YAML syntax error: " + e.msg);
        return std::unexpected(d.take());
    }
    if (scan.count == 0 || root.IsNull()) {
        d.error_without_position("the policy is empty; it needs at least 'version: 1' and 'default'");
        return std::unexpected(d.take());
    }
    if (scan.second_document) {
        d.error(*scan.second_document, "a policy file holds exactly one YAML document; this is a second one");
    }

    CompiledPolicy policy;
    policy.source_name = source_name;
    read_document(root, policy, d);
    if (d.count() != 0) return std::unexpected(d.take());
    policy.digest = sha256_hex(yaml_text);
    return policy;
}

}  // namespace airlock::policy
