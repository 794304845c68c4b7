#include "supervisor/exec_image.hpp"

#include <fcntl.h>

namespace airlock::supervisor {
namespace {

bool spacetab(char c) { return c == ' ' || c == '\t'; }
bool terminator(char c) { return c == ' ' || c == '\t' || c == '\0'; }

}  // namespace

std::optional<Shebang> parse_shebang(std::string_view head) {
    // The kernel's buffer is zero-filled past the file's end.
    std::string buf(head.substr(0, k_shebang_bytes));
    buf.resize(k_shebang_bytes, '\0');
    if (buf[0] != '#' || buf[1] != '!') return std::nullopt;
    const std::size_t buf_end = k_shebang_bytes - 1;  // the last byte is never part of the line
    std::size_t end = buf.find('\n');
    if (end == std::string::npos) {
        std::size_t first = 2;
        while (first < buf_end && spacetab(buf[first])) ++first;
        if (first >= buf_end) return std::nullopt;  // all spaces and tabs
        // Without a later space, tab or NUL the interpreter's name may be cut off: refused.
        std::size_t t = first;
        while (t < buf_end && !terminator(buf[t])) ++t;
        if (t >= buf_end) return std::nullopt;
        end = buf_end;
    }
    while (end > 2 && spacetab(buf[end - 1])) --end;
    std::size_t name = 2;
    while (name < end && spacetab(buf[name])) ++name;
    if (name >= end) return std::nullopt;
    std::size_t sep = name;
    while (sep < end && !terminator(buf[sep])) ++sep;
    Shebang s;
    s.interpreter = buf.substr(name, sep - name);
    if (sep < end && buf[sep] != '\0') {
        std::size_t arg = sep;
        while (arg < end && spacetab(buf[arg])) ++arg;
        if (arg < end) {
            std::string value = buf.substr(arg, end - arg);
            // Copied into argv as a C string: it stops at a NUL.
            if (auto nul = value.find('\0'); nul != std::string::npos) value.resize(nul);
            s.argument = std::move(value);
        }
    }
    return s;
}

std::vector<std::string> script_argv(const Shebang& shebang, std::string_view filename,
                                     const std::vector<std::string>& argv) {
    std::vector<std::string> out;
    out.reserve(argv.size() + 2);
    out.push_back(shebang.interpreter);
    if (shebang.argument) out.push_back(*shebang.argument);
    out.emplace_back(filename);
    // argv[0] is dropped (remove_arg_zero); an empty argv was [""] already.
    for (std::size_t i = 1; i < argv.size(); ++i) out.push_back(argv[i]);
    return out;
}

std::string kernel_exec_filename(std::string_view path, int dirfd) {
    if (dirfd == AT_FDCWD || (!path.empty() && path.front() == '/')) return std::string(path);
    std::string out = "/dev/fd/" + std::to_string(dirfd);
    if (!path.empty()) out += "/" + std::string(path);
    return out;
}

std::string argv_bytes(const std::vector<std::string>& argv) {
    if (argv.empty()) return std::string(1, '\0');
    std::string out;
    for (const auto& a : argv) {
        out += a;
        out += '\0';
    }
    return out;
}

}  // namespace airlock::supervisor
