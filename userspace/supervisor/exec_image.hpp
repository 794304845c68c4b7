// What an approved exec will really load: the kernel layer checks the new
// image and argv against this (bpf/session_guard.bpf.c), so it must be what the
// kernel itself arrives at. For an ELF file that is the file and the argv
// given. For a script ("#!"), the kernel loads the interpreter instead and
// rewrites argv to [interpreter, optional argument, script filename, argv[1..]]
// (fs/binfmt_script.c), up to five levels deep; these functions redo that.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::supervisor {

struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
};

struct ExecImage {
    // The files the kernel opens for the exec, in order: the one named, each
    // interpreter, and last the image it maps.
    std::vector<FileId> chain;
    std::vector<std::string> argv;  // as the kernel will lay it out
    bool argv_complete = true;      // false when the agent's argv was read only in part
    // Non-empty when the chain stops short of the image (an interpreter
    // missing or unreadable, nesting too deep): why. The chain then ends in a
    // script, which the kernel never maps, so no exec can match it in full.
    std::string incomplete;
};

// Linux's per-level limit (BINPRM_BUF_SIZE) and depth (exec_binprm).
inline constexpr std::size_t k_shebang_bytes = 256;
inline constexpr int k_max_interpreter_depth = 5;

struct Shebang {
    std::string interpreter;
    std::optional<std::string> argument;
};

// The kernel's reading of a file's first k_shebang_bytes bytes: nullopt when
// binfmt_script would not take it (no "#!", no interpreter, an interpreter
// name cut off by the 256-byte limit).
[[nodiscard]] std::optional<Shebang> parse_shebang(std::string_view head);

// argv after binfmt_script: `filename` is the name the kernel had for the
// script (bprm->interp: the path as passed, or /dev/fd/N[/path]).
[[nodiscard]] std::vector<std::string> script_argv(const Shebang& shebang, std::string_view filename,
                                                   const std::vector<std::string>& argv);

// The name the kernel gives an execveat target: the path, "/dev/fd/N" for an
// empty path with AT_EMPTY_PATH, "/dev/fd/N/path" for a relative path.
[[nodiscard]] std::string kernel_exec_filename(std::string_view path, int dirfd);

// argv as the kernel lays it out on the new stack: each argument and a NUL;
// an empty argv becomes [""] (Linux 5.18+).
[[nodiscard]] std::string argv_bytes(const std::vector<std::string>& argv);

}  // namespace airlock::supervisor
