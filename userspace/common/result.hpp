// Error and result types shared by every airlock library.
//
// Library code never throws across syscall or libbpf boundaries and never logs:
// it returns a Result carrying the errno (0 when the failure is not a syscall's)
// and a human-readable context chain. Only top-level code (daemon, CLI) logs.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace airlock::common {

struct Error {
    int code = 0;         // errno value, or 0 for a non-syscall failure
    std::string message;  // what failed, with context ("open /etc/x: ...")

    [[nodiscard]] std::string to_string() const {
        if (code == 0) return message;
        return message + ": " + std::strerror(code);
    }
    // Prefixes more context, e.g. err.wrap("loading policy") -> "loading policy: ...".
    [[nodiscard]] Error wrap(std::string_view context) const {
        return Error{code, std::string(context) + ": " + message};
    }
};

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

[[nodiscard]] inline std::unexpected<Error> fail(int code, std::string message) {
    return std::unexpected(Error{code, std::move(message)});
}
[[nodiscard]] inline std::unexpected<Error> fail(std::string message) {
    return std::unexpected(Error{0, std::move(message)});
}
// Captures the current errno; call immediately after the failing syscall.
[[nodiscard]] inline std::unexpected<Error> fail_errno(std::string message) {
    return std::unexpected(Error{errno, std::move(message)});
}

}  // namespace airlock::common
