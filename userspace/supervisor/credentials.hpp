// Acting as the agent: the daemon performs opens and connects on an agent's
// behalf with the agent's uid, gid and groups, on the calling thread only.
//
// Linux credentials are per thread; glibc's setresuid() broadcasts to every
// thread, so these use the raw syscalls. With euid != 0 the thread's effective
// capabilities are cleared by the kernel (CAP_DAC_OVERRIDE, CAP_SYS_PTRACE, ...),
// so permission checks see exactly the agent's rights. Saved uid 0 lets the
// destructor switch back.
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

class ScopedCredentials {
public:
    // For root, keeps uid 0 and drops the thread's effective capabilities: the
    // launcher leaves root agents without any.
    [[nodiscard]] static common::Result<ScopedCredentials> assume(const Credentials& creds);
    ScopedCredentials(ScopedCredentials&& other) noexcept;
    ScopedCredentials& operator=(ScopedCredentials&&) = delete;
    ScopedCredentials(const ScopedCredentials&) = delete;
    // Aborts the daemon if it cannot become root again: continuing with an
    // agent's identity would be worse, and a dead daemon fails closed.
    ~ScopedCredentials();

private:
    ScopedCredentials() = default;
    bool active_ = false;
    bool root_without_caps_ = false;
};

}  // namespace airlock::supervisor
