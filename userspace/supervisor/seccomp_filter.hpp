// The seccomp filter every agent session runs under.
//
// Notified (held for the daemon): open, openat, openat2, creat, connect,
// sendto with a destination, sendmsg, sendmmsg, execve, execveat.
// Refused with EPERM: io_uring_*, open_by_handle_at, ptrace, process_vm_writev,
// process_vm_readv and pidfd_getfd (other processes' memory and fds),
// perf_event_open and bpf, packet and raw sockets (their destination is in the payload),
// userfaultfd (it could stall the daemon's reads of agent memory), and the
// namespace/mount calls that would let an agent change what a path means
// between the daemon's resolution and its own view (unshare/clone with
// CLONE_NEWNS or CLONE_NEWUSER, setns, mount, pivot_root, chroot, the new mount
// API). clone3 gets ENOSYS: its flags live in memory the filter cannot read, and
// libc falls back to clone, whose flags it can.
// Any other architecture (i386 int 0x80, x32) kills the process.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace airlock::supervisor {

[[nodiscard]] common::Result<std::vector<sock_filter>> build_session_filter();

// Installs `program` on the calling thread only (no TSYNC) and returns the
// notification listener. Requires no_new_privs or CAP_SYS_ADMIN. Uses
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (5.19+), so a
// call the daemon has started to emulate is not restarted by a non-fatal signal
// (which would repeat side effects such as O_CREAT|O_EXCL).
[[nodiscard]] common::Result<common::UniqueFd> install_filter(const std::vector<sock_filter>& program);

// Syscalls of the x86_64 table that the supervisor handles.
bool is_notified_syscall(int nr);

}  // namespace airlock::supervisor
