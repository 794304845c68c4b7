#include "supervisor/credentials.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace airlock::supervisor {
namespace {

long raw_setresuid(long r, long e, long s) { return ::syscall(SYS_setresuid, r, e, s); }
long raw_setresgid(long r, long e, long s) { return ::syscall(SYS_setresgid, r, e, s); }
long raw_setgroups(std::size_t n, const gid_t* list) { return ::syscall(SYS_setgroups, n, list); }

// For a root agent (which the launcher left without capabilities) the thread
// keeps uid 0 but drops its effective capabilities, so file permission checks
// are those of a capability-less root, like the agent's.
bool set_effective_capabilities(bool on) {
    // The daemon's permitted set never changes: read once, then one capset per switch.
    struct Caps {
        bool ok = false;
        __user_cap_data_struct data[2] = {};
    };
    static const Caps permitted = [] {
        Caps c;
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        c.ok = ::syscall(SYS_capget, &header, c.data) == 0;
        return c;
    }();
    if (!permitted.ok) return false;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {permitted.data[0], permitted.data[1]};
    for (auto& d : data) d.effective = on ? d.permitted : 0;
    return ::syscall(SYS_capset, &header, data) == 0;
}

void restore_root_or_abort() {
    // Order matters: uid first, to regain CAP_SETGID for the gid calls.
    if (raw_setresuid(-1, 0, -1) != 0 || raw_setresgid(-1, 0, -1) != 0 || raw_setgroups(0, nullptr) != 0)
        std::abort();
}

}  // namespace

common::Result<ScopedCredentials> ScopedCredentials::assume(const Credentials& creds) {
    ScopedCredentials scoped;
    if (creds.uid == 0) {
        if (!set_effective_capabilities(false)) return common::fail_errno("dropping effective capabilities");
        scoped.root_without_caps_ = true;
        return scoped;
    }
    if (raw_setgroups(creds.groups.size(), creds.groups.data()) != 0)
        return common::fail_errno("setgroups for agent credentials");
    if (raw_setresgid(-1, creds.gid, -1) != 0) {
        int saved = errno;
        raw_setgroups(0, nullptr);
        return common::fail(saved, "setresgid for agent credentials");
    }
    if (raw_setresuid(-1, creds.uid, -1) != 0) {
        int saved = errno;
        restore_root_or_abort();
        return common::fail(saved, "setresuid for agent credentials");
    }
    scoped.active_ = true;
    return scoped;
}

ScopedCredentials::ScopedCredentials(ScopedCredentials&& other) noexcept
    : active_(other.active_), root_without_caps_(other.root_without_caps_) {
    other.active_ = false;
    other.root_without_caps_ = false;
}

ScopedCredentials::~ScopedCredentials() {
    if (active_) restore_root_or_abort();
    if (root_without_caps_ && !set_effective_capabilities(true)) std::abort();
}

}  // namespace airlock::supervisor
