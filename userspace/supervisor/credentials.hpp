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
// `lazy_restore`), which makes a run of calls from one session switch once
// per call instead of four times.
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
