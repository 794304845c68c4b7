// `airlock run`: starts an agent under the daemon's supervision.
//
// Sequence (each step before the next, in this one process):
//  1. session.create: the daemon makes a cgroup leaf and moves us into it.
//  2. no_new_privs; drop to --user if given.
//  3. a helper thread is started (unfiltered: the filter is per thread).
//  4. the main thread installs the seccomp filter and gets the listener fd.
//  5. the helper sends it to the daemon (session.attach, SCM_RIGHTS) — the
//     main thread could not: its own sendmsg would now wait on a daemon that
//     does not hold the listener yet.
//  6. the listener and the control socket are closed (the agent must never
//     hold its own listener: it could answer its own calls), and CMD is
//     exec'd. That exec is the first call the daemon decides.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace airlock::launcher {

struct RunOptions {
    std::string socket_path;
    std::optional<std::string> policy;  // a name, or a file path (contains '/' or ends in .yaml/.yml)
    std::optional<std::string> user;
    std::map<std::string, std::string> labels;
    std::vector<std::string> command;
};

// Exit statuses of the launcher itself, as env(1) and friends use them.
inline constexpr int k_exit_launch_failed = 125;
inline constexpr int k_exit_cannot_exec = 126;
inline constexpr int k_exit_not_found = 127;

// Does not return on success (the process becomes CMD). Returns an exit status
// after printing the reason to stderr.
[[nodiscard]] int run(const RunOptions& options);

}  // namespace airlock::launcher
