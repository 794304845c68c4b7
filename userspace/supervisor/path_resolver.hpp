// Resolves a path the way the kernel would for the agent, but component by
// component in the daemon, so the decision is made on the object the daemon
// then hands over, not on a string the agent can still change.
//
// Must run with the agent's credentials (ScopedCredentials): every lookup is a
// real openat(O_PATH|O_NOFOLLOW) whose permission checks are the agent's.
// Symlinks are read and spliced in by the resolver (at most 40, like the
// kernel); procfs magic links (/proc/PID/fd/N, cwd, root, exe) are followed by
// the kernel one hop at a time, so pipes and deleted files behave as they do
// for the agent; /proc/self and /proc/thread-self are rewritten to the agent's
// ids, since the daemon's own would be wrong.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace airlock::supervisor {

struct ResolveRequest {
    pid_t tid = 0;        // thread that made the call (notification pid)
    pid_t tgid = 0;       // its process
    int root_fd = -1;     // O_PATH fd of the agent's root directory
    int start_fd = -1;    // O_PATH fd where a relative path starts (cwd or dirfd)
    std::string_view path;
    bool follow_final = true;    // false for O_NOFOLLOW / O_CREAT|O_EXCL / AT_SYMLINK_NOFOLLOW
    bool allow_missing = false;  // O_CREAT: a missing final component is not an error
    // True when pid belongs to the caller's session; used to present
    // /proc/<pid>/... of the session's own processes as /proc/self/... to policy.
    std::function<bool(pid_t)> in_session;
    // openat2 RESOLVE_* semantics.
    bool no_symlinks = false;    // RESOLVE_NO_SYMLINKS: any symlink is ELOOP
    bool no_magiclinks = false;  // RESOLVE_NO_MAGICLINKS: a procfs magic link is ELOOP
    bool beneath = false;        // RESOLVE_BENEATH: escaping start_fd (or an absolute path) is EXDEV
    bool no_xdev = false;        // RESOLVE_NO_XDEV: crossing a mount is EXDEV
    // root_fd is the daemon's own "/" (same mount namespace): an absolute path
    // resolved with no links is then already the kernel's name for the object.
    bool root_is_daemon_root = false;
};

struct Resolved {
    common::UniqueFd object;   // O_PATH fd of the final object; invalid when missing
    common::UniqueFd parent;   // O_PATH fd of the directory that would hold a missing final
    std::string final_name;    // name to create when missing
    std::string policy_path;   // absolute path the policy decides on
    struct stat st {};         // of object, when it exists
    bool exists = false;
    bool anonymous = false;    // pipe/socket/anon inode reached through a magic link
    bool session_owned = false;  // reached through /proc/<pid> of a session process
};

// On failure the error carries the errno the agent's own call would have got
// (ENOENT, ENOTDIR, ELOOP, EACCES, ...). `failed_path` (when non-null) receives
// the best absolute path for the failed lookup, so that policy can still refuse
// probing a denied directory with its own errno rather than leak ENOENT.
[[nodiscard]] common::Result<Resolved> resolve_path(const ResolveRequest& request,
                                                    std::string* failed_path = nullptr);

// The kernel's name for an fd we hold ("/usr/lib/x", "pipe:[123]").
[[nodiscard]] common::Result<std::string> fd_path(int fd);

// Lexically normalizes an absolute path: collapses "//", ".", "..".
[[nodiscard]] std::string normalize_absolute(std::string_view path);

}  // namespace airlock::supervisor
