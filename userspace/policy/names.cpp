// The small vocabularies of the policy language: verdicts, actions, access
// bits, durations and errno names.
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <utility>

#include "policy/policy.hpp"

namespace airlock::policy {
namespace {

struct ErrnoName {
    std::string_view name;
    int value;
};

// Aliases (EWOULDBLOCK, ENOTSUP, EDEADLOCK) come after their canonical names
// so errno_name() reports the canonical one.
constexpr ErrnoName errno_names[] = {
    {"EPERM", EPERM},
    {"ENOENT", ENOENT},
    {"ESRCH", ESRCH},
    {"EINTR", EINTR},
    {"EIO", EIO},
    {"ENXIO", ENXIO},
    {"E2BIG", E2BIG},
    {"ENOEXEC", ENOEXEC},
    {"EBADF", EBADF},
    {"ECHILD", ECHILD},
    {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},
    {"EFAULT", EFAULT},
    {"EBUSY", EBUSY},
    {"EEXIST", EEXIST},
    {"EXDEV", EXDEV},
    {"ENODEV", ENODEV},
    {"ENOTDIR", ENOTDIR},
    {"EISDIR", EISDIR},
    {"EINVAL", EINVAL},
    {"ENFILE", ENFILE},
    {"EMFILE", EMFILE},
    {"ENOTTY", ENOTTY},
    {"ETXTBSY", ETXTBSY},
    {"EFBIG", EFBIG},
    {"ENOSPC", ENOSPC},
    {"ESPIPE", ESPIPE},
    {"EROFS", EROFS},
    {"EMLINK", EMLINK},
    {"EPIPE", EPIPE},
    {"EDEADLK", EDEADLK},
    {"ENAMETOOLONG", ENAMETOOLONG},
    {"ENOSYS", ENOSYS},
    {"ENOTEMPTY", ENOTEMPTY},
    {"ELOOP", ELOOP},
    {"ENODATA", ENODATA},
    {"ETIME", ETIME},
    {"EPROTO", EPROTO},
    {"EOVERFLOW", EOVERFLOW},
    {"EILSEQ", EILSEQ},
    {"ENOTSOCK", ENOTSOCK},
    {"EDESTADDRREQ", EDESTADDRREQ},
    {"EMSGSIZE", EMSGSIZE},
    {"EPROTOTYPE", EPROTOTYPE},
    {"ENOPROTOOPT", ENOPROTOOPT},
    {"EPROTONOSUPPORT", EPROTONOSUPPORT},
    {"EOPNOTSUPP", EOPNOTSUPP},
    {"EAFNOSUPPORT", EAFNOSUPPORT},
    {"EADDRINUSE", EADDRINUSE},
    {"EADDRNOTAVAIL", EADDRNOTAVAIL},
    {"ENETDOWN", ENETDOWN},
    {"ENETUNREACH", ENETUNREACH},
    {"ENETRESET", ENETRESET},
    {"ECONNABORTED", ECONNABORTED},
    {"ECONNRESET", ECONNRESET},
    {"ENOBUFS", ENOBUFS},
    {"EISCONN", EISCONN},
    {"ENOTCONN", ENOTCONN},
    {"ETIMEDOUT", ETIMEDOUT},
    {"ECONNREFUSED", ECONNREFUSED},
    {"EHOSTDOWN", EHOSTDOWN},
    {"EHOSTUNREACH", EHOSTUNREACH},
    {"EALREADY", EALREADY},
    {"EINPROGRESS", EINPROGRESS},
    {"EDQUOT", EDQUOT},
    {"ECANCELED", ECANCELED},
    {"EKEYREJECTED", EKEYREJECTED},
    {"EWOULDBLOCK", EWOULDBLOCK},
    {"ENOTSUP", ENOTSUP},
    {"EDEADLOCK", EDEADLOCK},
};

struct DurationUnit {
    std::string_view suffix;
    std::int64_t milliseconds;
};

// Ordered largest first: a duration must list its parts in this order.
constexpr DurationUnit duration_units[] = {
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
};

constexpr std::int64_t max_duration_ms = 24 * 3'600'000LL;

}  // namespace

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::allow:
            return "allow";
        case Verdict::deny:
            return "deny";
        case Verdict::ask:
            return "ask";
        case Verdict::mask:
            return "mask";
    }
    return "?";
}

std::string_view to_string(Action a) {
    switch (a) {
        case Action::open:
            return "open";
        case Action::connect:
            return "connect";
        case Action::exec:
            return "exec";
    }
    return "?";
}

std::optional<Verdict> parse_verdict(std::string_view s) {
    if (s == "allow") return Verdict::allow;
    if (s == "deny") return Verdict::deny;
    if (s == "ask") return Verdict::ask;
    if (s == "mask") return Verdict::mask;
    return std::nullopt;
}

std::optional<Action> parse_action(std::string_view s) {
    if (s == "open") return Action::open;
    if (s == "connect") return Action::connect;
    if (s == "exec") return Action::exec;
    return std::nullopt;
}

std::string access_to_string(unsigned mask) {
    std::string out;
    auto append = [&](unsigned bit, std::string_view name) {
        if ((mask & bit) == 0) return;
        if (!out.empty()) out += '|';
        out += name;
    };
    append(access_read, "read");
    append(access_write, "write");
    append(access_create, "create");
    return out.empty() ? "none" : out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::int64_t total = 0;
    std::size_t next_unit = 0;  // index into duration_units; enforces largest-first
    while (!s.empty()) {
        std::int64_t amount = 0;
        const auto [digits_end, ec] = std::from_chars(s.data(), s.data() + s.size(), amount);
        if (ec != std::errc{} || amount < 0) return std::nullopt;
        s.remove_prefix(static_cast<std::size_t>(digits_end - s.data()));

        std::size_t suffix_length = 0;
        while (suffix_length < s.size() && s[suffix_length] >= 'a' && s[suffix_length] <= 'z') ++suffix_length;
        const std::string_view suffix = s.substr(0, suffix_length);
        s.remove_prefix(suffix_length);

        std::size_t unit = next_unit;
        while (unit < std::size(duration_units) && duration_units[unit].suffix != suffix) ++unit;
        if (unit == std::size(duration_units)) return std::nullopt;
        next_unit = unit + 1;

        // Checked before multiplying so that huge inputs cannot overflow.
        if (amount > max_duration_ms / duration_units[unit].milliseconds) return std::nullopt;
        total += amount * duration_units[unit].milliseconds;
        if (total > max_duration_ms) return std::nullopt;
    }
    return std::chrono::milliseconds(total);
}

std::optional<int> parse_errno_name(std::string_view s) {
    for (const auto& entry : errno_names) {
        if (entry.name == s) return entry.value;
    }
    return std::nullopt;
}

std::string errno_name(int e) {
    for (const auto& entry : errno_names) {
        if (entry.value == e) return std::string(entry.name);
    }
    return std::to_string(e);
}

std::optional<std::uint64_t> parse_size(std::string_view s) {
    constexpr std::uint64_t max_size = std::uint64_t{1} << 30;
    std::uint64_t amount = 0;
    const auto [digits_end, ec] = std::from_chars(s.data(), s.data() + s.size(), amount);
    if (ec != std::errc() || digits_end == s.data()) return std::nullopt;
    const std::string_view unit = s.substr(static_cast<std::size_t>(digits_end - s.data()));
    unsigned shift = 0;
    if (unit == "KiB") shift = 10;
    else if (unit == "MiB") shift = 20;
    else if (unit == "GiB") shift = 30;
    else if (!unit.empty()) return std::nullopt;
    if (amount > (max_size >> shift)) return std::nullopt;
    return amount << shift;
}

std::string size_to_string(std::uint64_t bytes) {
    if (bytes >= (1u << 30) && bytes % (1u << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes >= (1u << 10) && bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
}

}  // namespace airlock::policy
