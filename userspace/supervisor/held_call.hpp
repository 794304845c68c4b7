// A syscall held in the kernel by seccomp user notification, from decoding to
// its answer. The daemon decides; this module reads the arguments once,
// resolves the object as the agent, and performs an allowed call on the agent's
// behalf so the kernel never re-reads agent memory after the decision
// (seccomp_unotify(2): CONTINUE is unsafe for decisions on pointer arguments).
//
//   open*/creat: the daemon opens the object it resolved, with the agent's
//                credentials, and injects the fd (SECCOMP_IOCTL_NOTIF_ADDFD with
//                SECCOMP_ADDFD_FLAG_SEND: the injection is the answer).
//   connect:     the agent's socket is taken with pidfd_getfd and connected by
//                the daemon to the sockaddr that was checked; the result
//                (0, EINPROGRESS, ECONNREFUSED...) is the answer.
//   sendto/sendmsg with a destination: the payload is copied once and sent on
//                the agent's socket to the checked destination.
//   execve/execveat: cannot be emulated; the binary is resolved and recorded
//                (dev, inode, argv) and the call is CONTINUEd. The agent can swap
//                the path between check and exec: docs/architecture.md
//                ("Residual races") and the kernel-layer issue close this.
#pragma once

#include <linux/seccomp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "policy/link_decision.hpp"
#include "policy/policy.hpp"
#include "supervisor/credentials.hpp"
#include "supervisor/exec_image.hpp"
#include "supervisor/path_resolver.hpp"

namespace airlock::supervisor {

inline constexpr std::size_t k_max_path = 4096;
inline constexpr std::size_t k_max_argv_items = 4096;
inline constexpr std::size_t k_max_argv_bytes = 256 * 1024;
inline constexpr std::size_t k_max_send_bytes = 256 * 1024;

enum class CallKind { open, connect, send, exec, link, rename };

struct AgentContext {
    Credentials creds;
    std::function<bool(pid_t)> in_session;
    std::string cgroup_procs;  // absolute path of the session's cgroup.procs (AF_UNIX calls run there)
    // O_PATH fd of the session's root directory, or -1 to read /proc/<tid>/root
    // per call. One per session is enough: the filter refuses chroot,
    // pivot_root, setns and new mount namespaces, so no agent process can have another.
    int root_fd = -1;
    bool root_is_daemon_root = false;  // root_fd is the daemon's own "/"
    // The daemon's control socket (dev, inode): never reachable from a session,
    // whatever the policy says and whichever cgroup the caller is in.
    dev_t control_socket_dev = 0;
    ino_t control_socket_ino = 0;
};

// One name of a link or rename (held_link.cpp): the directory that holds it,
// resolved as the agent, and what it names at decode time.
struct NamedEntry {
    common::UniqueFd parent;  // O_PATH fd of the directory (unset for a followed link source)
    std::string name;         // final component, without trailing slashes
    bool trailing_slash = false;
    common::UniqueFd object;  // O_PATH|O_NOFOLLOW fd of what the name holds, when it exists
    struct stat st {};
    bool exists = false;
    std::string policy_path;
};

struct HeldCall {
    int listener_fd = -1;
    std::uint64_t id = 0;  // notification id
    pid_t tid = 0;
    pid_t tgid = 0;
    int syscall_nr = 0;
    CallKind kind = CallKind::open;

    // What the daemon decides on, and a readable form for people and the audit log.
    policy::Query query;
    std::string object;

    // Set when the call must be answered without asking policy.
    std::optional<int> immediate_errno;  // the agent's own call would fail this way
    bool immediate_continue = false;     // nothing to decide (sendmsg to the connected peer)
    // Non-empty: allowed without asking policy, for this reason (recorded as the rule).
    std::string allow_without_policy;
    // Set when policy decides but an allow must still fail with this errno
    // (lookup failed: a denied path gets the policy's errno, others this one).
    std::optional<int> errno_if_allowed;

    // open
    int open_flags = 0;
    mode_t open_mode = 0;
    Resolved target;

    // connect / send
    int sockfd = -1;
    sockaddr_storage address{};
    socklen_t address_len = 0;
    std::vector<char> payload;
    std::vector<char> control;
    int send_flags = 0;
    int socket_domain = AF_UNSPEC;        // of the agent's socket, when a destination-less send is emulated
    common::UniqueFd socket;              // that socket, taken once at decode (pidfd_getfd)
    std::uint64_t mmsg_len_address = 0;   // sendmmsg: where the kernel would store msg_len of message 0

    // Set by the event loop, which must not block: the first attempt opens
    // with O_NONBLOCK and reports EWOULDBLOCK (a lease) instead of waiting;
    // the caller then retries on a worker with this cleared.
    bool nonblocking_open_first = false;

    // Set when the fd to hand over was made before the decision was final
    // (content inspection scans the very fd it injects, or a sealed memfd with
    // the redacted copy): perform_allowed injects this instead of opening.
    common::UniqueFd prepared;

    // exec
    std::vector<std::string> argv;
    bool argv_truncated = false;
    // The environment passed to execve, read with the argv (same bounds);
    // only inspection looks at it: it is never logged or audited.
    std::vector<std::string> envp;
    bool envp_truncated = false;
    // argv with what inspection found redacted: what audit rows and prompts
    // show instead of argv once it is set (`object` is rebuilt from it too).
    std::optional<std::vector<std::string>> shown_argv;
    // The name the kernel will have for the exec's file (bprm->filename), for
    // resolve_exec_image().
    std::string exec_filename;

    // link / rename (held_link.cpp): decided with policy::decide_link on
    // `link`, not with `query`; performed on the objects resolved here.
    NamedEntry source;
    NamedEntry destination;
    unsigned link_flags = 0;  // RENAME_* for renameat2 (linkat's AT_* are applied at decode)
    std::optional<policy::LinkQuery> link;
};

// Reads the call's arguments from the agent exactly once, checks the
// notification is still valid, and resolves its object with the agent's
// credentials. Errors here mean the call could not even be read (the target
// died, bad pointers): the caller answers with error.code or drops it.
[[nodiscard]] common::Result<HeldCall> decode_call(int listener_fd, const seccomp_notif& notification,
                                                   const AgentContext& agent);

// True when performing the call may block for long (blocking connect, a FIFO
// open): the daemon runs those off its event loop.
[[nodiscard]] bool may_block(const HeldCall& call);

// Performs an allowed call on the agent's behalf and answers the notification.
// Returns the result the agent sees (>= 0, or -errno) for the audit log; an
// error means the answer could not be delivered (the agent is gone), or, with
// code EWOULDBLOCK, that the call is NOT answered yet and must be retried
// where blocking is fine (see HeldCall::nonblocking_open_first).
[[nodiscard]] common::Result<long> perform_allowed(HeldCall& call, const AgentContext& agent);

// Opens the existing object an open call resolved, as the agent, with
// `flags` (the call's own, or O_RDONLY to look at a file opened for writing),
// without answering the call. Blocks like open(2) does (leases, FIFOs): run it
// off the event loop.
[[nodiscard]] common::Result<common::UniqueFd> reopen_as_agent(const HeldCall& call, const AgentContext& agent,
                                                               int flags);

// A read-only fd of a sealed memfd (F_SEAL_SEAL|WRITE|SHRINK|GROW) holding
// `content`: what a masked open hands over. Nobody, the daemon included, can
// change its bytes after this returns.
[[nodiscard]] common::Result<common::UniqueFd> sealed_memfd(std::string_view name, std::string_view content);

// Answers with an error (errno > 0) or lets the call proceed.
[[nodiscard]] common::Status answer_error(int listener_fd, std::uint64_t id, int error_number);
// Answers with a successful return value.
[[nodiscard]] common::Status answer_value(int listener_fd, std::uint64_t id, long long value);
[[nodiscard]] common::Status answer_continue(int listener_fd, std::uint64_t id);
[[nodiscard]] bool notification_valid(int listener_fd, std::uint64_t id);

// "open", "connect", "exec", or "link"/"rename" for those calls: the action
// audit rows and pending requests show.
[[nodiscard]] std::string_view action_name(const HeldCall& call);

// ---- shared by held_call.cpp and held_link.cpp ------------------------------
// Where a relative path starts: the agent's cwd, or the directory behind dirfd.
[[nodiscard]] common::Result<common::UniqueFd> start_directory(pid_t tid, long dirfd);
// The directory a relative path starts from (cwd or dirfd); empty when the
// path is absolute. On failure, records the agent's errno and returns nullopt.
[[nodiscard]] std::optional<common::UniqueFd> start_for(HeldCall& call, std::string_view path, long dirfd);
// The common part of every lookup a held call makes: whose, from where.
[[nodiscard]] ResolveRequest request_for(const HeldCall& call, const AgentContext& agent, int root_fd,
                                         const common::UniqueFd& start, std::string_view path);
// link, linkat, rename, renameat, renameat2 (held_link.cpp).
[[nodiscard]] common::Status decode_link(HeldCall& call, const seccomp_notif& notification,
                                         const AgentContext& agent, int root_fd);
[[nodiscard]] common::Result<long> perform_link(HeldCall& call, const AgentContext& agent);

// What the kernel will load for an approved exec (`call` decoded as one on a
// regular file) and the argv it will lay out, for the kernel layer's check
// (exec_image.hpp): worked out only when that check runs, just before the
// call is answered, so a denied exec or a daemon without its kernel layer
// reads nothing.
[[nodiscard]] ExecImage resolve_exec_image(const HeldCall& call, const AgentContext& agent);

// argv as a shell would quote it, cut near 2 KiB ("…" when cut or truncated):
// an exec's object is "PATH [ARGV]".
[[nodiscard]] std::string quote_argv(const std::vector<std::string>& argv, bool truncated);

// Access bits (policy::AccessBits) that open flags ask for.
[[nodiscard]] unsigned access_for_open_flags(int flags);
// "1.2.3.4:443", "[::1]:80", "unix:/run/x.sock", "unix:@abstract".
[[nodiscard]] std::string describe_address(const sockaddr_storage& address, socklen_t len);

}  // namespace airlock::supervisor
