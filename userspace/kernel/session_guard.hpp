// Owner of the session guard (bpf/session_guard.bpf.c): the kernel's side of
// "what runs, opens or connects is what the supervisor approved". Always the
// exec tracepoint (SIGKILL for an exec whose loaded file or argv was not
// approved: the exec race's backstop); where BPF LSM is active, LSM programs
// that refuse such an exec before it loads, and opens, connects and
// addressed sends that reach the kernel from a supervised session process
// without passing through the supervisor.
//
// Lifecycle: load() opens, loads and attaches the skeleton (RAII: the
// programs detach and the maps are freed with this object). The daemon then
// registers each session's cgroup, records every exec it approves before
// answering CONTINUE, and drains the event ring when its fd is readable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

struct session_guard_bpf;
struct ring_buffer;

namespace airlock::kernel {

// The kernel's dev_t encoding (MAJOR << 20 | MINOR), which the exec hook sees
// in inode->i_sb->s_dev, from a stat() st_dev.
[[nodiscard]] std::uint64_t kernel_dev(dev_t st_dev) noexcept;

// FNV-1a 64 of the first AIRLOCK_ARGV_HASH_BYTES bytes, as the exec hook computes it.
[[nodiscard]] std::uint64_t argv_hash(std::string_view argv_bytes) noexcept;

struct FileIdentity {
    dev_t dev = 0;  // as stat() reports it
    ino_t ino = 0;
};

struct ExecExpectation {
    std::int64_t session = 0;
    // The files the kernel will open for the exec, the image it maps last
    // (at most AIRLOCK_EXEC_CHAIN_MAX).
    std::vector<FileIdentity> chain;
    // argv as the kernel lays it out on the new stack: each argument followed
    // by a NUL. When `argv_complete` is false only its first
    // AIRLOCK_ARGV_HASH_BYTES bytes are compared (and must all be there).
    std::string argv_bytes;
    bool argv_complete = true;
};

enum class GuardVerdict {
    matched,
    no_approval,
    wrong_image,
    wrong_argv,
    argv_unreadable,
    open_unsupervised,
    connect_unsupervised
};
[[nodiscard]] std::string_view to_string(GuardVerdict verdict) noexcept;

enum class GuardHook {
    exec_tracepoint,
    bprm_check,
    file_open,
    socket_connect,
    socket_sendmsg,
    cgroup_connect,
    cgroup_sendmsg,
    process_fork,  // informational: a new process in a session (tgid, ppid)
    process_exit   // informational: a session process's leader exited
};
[[nodiscard]] std::string_view to_string(GuardHook hook) noexcept;

struct GuardEvent {
    std::int64_t session = 0;
    pid_t tgid = 0;
    GuardHook hook = GuardHook::exec_tracepoint;
    GuardVerdict verdict = GuardVerdict::matched;
    std::uint64_t kernel_dev = 0;  // the file's (0 for sockets)
    std::uint64_t ino = 0;
    std::uint64_t argv_len = 0;
    pid_t ppid = 0;  // process_fork: the parent
    std::string comm;
    // What the kernel did: the task killed (exec tracepoint) or the call refused (LSM).
    [[nodiscard]] bool killed() const noexcept { return hook == GuardHook::exec_tracepoint; }
};

class SessionGuard {
public:
    // `with_lsm`: also load and attach the LSM programs; `with_cgroup`: also
    // load the cgroup connect4/6 and sendmsg4/6 programs (attach them with
    // attach_cgroup). The caller probed that the kernel takes them
    // (kernel/probe.hpp).
    [[nodiscard]] static common::Result<SessionGuard> load(bool with_lsm, bool with_cgroup);
    [[nodiscard]] bool lsm_attached() const noexcept;
    // Attaches the cgroup programs to `cgroup_fd` (a directory of the cgroup2
    // hierarchy): every session cgroup below it is covered.
    [[nodiscard]] common::Status attach_cgroup(int cgroup_fd);
    [[nodiscard]] bool cgroup_attached() const noexcept;

    SessionGuard(SessionGuard&&) noexcept;
    SessionGuard& operator=(SessionGuard&&) noexcept;
    SessionGuard(const SessionGuard&) = delete;
    SessionGuard& operator=(const SessionGuard&) = delete;
    ~SessionGuard();

    // From here on every exec in the cgroup (or below it) needs an expectation.
    [[nodiscard]] common::Status add_session(std::uint64_t cgroup_id, std::int64_t session);
    void remove_session(std::uint64_t cgroup_id) noexcept;
    // Replaces the thread group's previous expectation (one exec at a time per
    // thread group: a second thread's exec racing the first is killed).
    [[nodiscard]] common::Status expect(pid_t tgid, const ExecExpectation& expectation);
    void forget(pid_t tgid) noexcept;

    // Readable when events wait (epoll it); drain() hands each to `on_event`.
    [[nodiscard]] int events_fd() const noexcept;
    [[nodiscard]] common::Status drain(const std::function<void(const GuardEvent&)>& on_event);

private:
    struct State;
    explicit SessionGuard(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace airlock::kernel
