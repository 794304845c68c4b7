// Acting as the agent: the daemon performs opens and connects on an agent's
// behalf with the agent's uid, gid and groups, on the calling thread only.
//
// Linux credentials are per thread; glibc's setresuid() broadcasts to every
// thread, so these use the raw syscalls. With euid != 0 the thread's effective
// capabilities are cleared by the kernel (CAP_DAC_OVERRIDE, CAP_SYS_PTRACE, ...),
// so permission checks see exactly the agent's rights. Real and saved uid stay
// 0: that is what lets the thread switch back, and what keeps an agent from
// signalling the daemon while its thread wears the agent's euid (kill(2)
// compares the sender's uids with the target's real and saved uid).
//
// Every switch is a prepare_creds()/commit_creds() in the kernel, a few of
// them per call. So a thread remembers which identity it wears and switches
// only when asked for another one; the daemon's event loop goes further and
// stays in the last agent identity until something needs root (see
// `lazy_restore`). Between turns it drops a non-root agent's identity (a
// user agent's call then costs two switches: to the agent for the open, back
// for the next call's memory read), but keeps a capability-less root, which
// reads a root agent's memory as it is: a root agent's calls switch never.
#pragma once

#include <sys/types.h>

#include <vector>

#include "common/result.hpp"

namespace airlock::supervisor {

struct Credentials {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups
};

// The calling thread's identity, switched lazily.
namespace thread_identity {
// Wear the agent's identity (no-op when already worn). For root agents keeps
// uid 0 and drops the thread's effective capabilities: the launcher leaves
// root agents without any. Supplementary groups are always the agent's.
[[nodiscard]] common::Status act_as(const Credentials& creds);
// Back to the daemon's root identity with its capabilities (no-op when
// already). Supplementary groups stay as they are: root's access never
// depends on them and files it creates take its egid; act_as() always sets
// them. Aborts the daemon if it cannot become root again: continuing with an
// agent's identity would be worse, and a dead daemon fails closed.
void act_as_daemon();
// Leaves the thread able to read the memory and /proc/<pid> entries of an
// agent running with `agent`'s credentials: as it is when it already wears
// that agent's capability-less root (ptrace's access checks pass between two
// capability-less roots with the same uids: the agent's empty permitted set
// is within the thread's, which keeps the daemon's), else as the daemon.
// Saves a root agent's calls the capset pair a switch to root and back costs.
void act_as_reader_of(const Credentials& agent);
// For process_vm_readv: true when the thread wears a capability-less root
// that act_as_reader_of() kept (so the read is tried without switching; a
// Yama ptrace_scope >= 1 refuses it with EPERM, and the caller then retries
// as the daemon).
[[nodiscard]] bool wearing_capless_root();
// Between two turns of the event loop: a non-root agent identity is dropped
// (the loop sleeps as root), a capability-less root is kept for the next
// call, since a root agent gets nothing from it that it does not have
// already (same uid either way; the thread's permitted set stays the
// daemon's, so ptrace from the agent is still refused).
void settle_between_turns();
// This thread keeps an agent identity after ScopedCredentials goes out of
// scope; whoever needs root calls act_as_daemon() first. The event loop sets it.
void lazy_restore(bool on);
}  // namespace thread_identity

class ScopedCredentials {
public:
    [[nodiscard]] static common::Result<ScopedCredentials> assume(const Credentials& creds);
    ScopedCredentials(ScopedCredentials&& other) noexcept;
    ScopedCredentials& operator=(ScopedCredentials&&) = delete;
    ScopedCredentials(const ScopedCredentials&) = delete;
    // Back to root, unless this thread restores lazily.
    ~ScopedCredentials();

private:
    ScopedCredentials() = default;
    bool active_ = false;
};

}  // namespace airlock::supervisor
