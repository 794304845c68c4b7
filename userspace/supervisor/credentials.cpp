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

enum class Worn { daemon, agent, root_without_caps };

struct ThreadState {
    Worn worn = Worn::daemon;
    uid_t uid = 0;
    gid_t gid = 0;
    // Supplementary groups as the kernel has them for this thread; unknown at
    // first, so the first act_as() always sets them.
    bool groups_known = false;
    std::vector<gid_t> groups;
    bool lazy = false;
};

thread_local ThreadState state;

bool wearing(const Credentials& creds) {
    if (!state.groups_known || state.groups != creds.groups) return false;
    if (creds.uid == 0) return state.worn == Worn::root_without_caps;
    return state.worn == Worn::agent && state.uid == creds.uid && state.gid == creds.gid;
}

}  // namespace

namespace thread_identity {

void act_as_daemon() {
    switch (state.worn) {
        case Worn::daemon: return;
        case Worn::agent:
            // Order matters: uid first, to regain CAP_SETGID for the gid call.
            if (raw_setresuid(-1, 0, -1) != 0 || raw_setresgid(-1, 0, -1) != 0) std::abort();
            break;
        case Worn::root_without_caps:
            if (!set_effective_capabilities(true)) std::abort();
            break;
    }
    state.worn = Worn::daemon;
}

common::Status act_as(const Credentials& creds) {
    if (wearing(creds)) return {};
    act_as_daemon();  // setgroups and setres*id need the daemon's capabilities
    if (!state.groups_known || state.groups != creds.groups) {
        state.groups_known = false;
        if (raw_setgroups(creds.groups.size(), creds.groups.data()) != 0)
            return common::fail_errno("setgroups for agent credentials");
        state.groups = creds.groups;
        state.groups_known = true;
    }
    if (creds.uid == 0) {
        if (!set_effective_capabilities(false)) return common::fail_errno("dropping effective capabilities");
        state.worn = Worn::root_without_caps;
        return {};
    }
    if (raw_setresgid(-1, creds.gid, -1) != 0) return common::fail_errno("setresgid for agent credentials");
    if (raw_setresuid(-1, creds.uid, -1) != 0) {
        int saved = errno;
        if (raw_setresgid(-1, 0, -1) != 0) std::abort();
        return common::fail(saved, "setresuid for agent credentials");
    }
    state.worn = Worn::agent;
    state.uid = creds.uid;
    state.gid = creds.gid;
    return {};
}

void act_as_reader_of(const Credentials& agent) {
    if (agent.uid == 0 && wearing(agent)) return;
    act_as_daemon();
}

bool wearing_capless_root() { return state.worn == Worn::root_without_caps; }

void settle_between_turns() {
    if (state.worn == Worn::agent) act_as_daemon();
}

void lazy_restore(bool on) { state.lazy = on; }

}  // namespace thread_identity

common::Result<ScopedCredentials> ScopedCredentials::assume(const Credentials& creds) {
    if (auto r = thread_identity::act_as(creds); !r) return std::unexpected(r.error());
    ScopedCredentials scoped;
    scoped.active_ = true;
    return scoped;
}

ScopedCredentials::ScopedCredentials(ScopedCredentials&& other) noexcept : active_(other.active_) {
    other.active_ = false;
}

ScopedCredentials::~ScopedCredentials() {
    if (active_ && !state.lazy) thread_identity::act_as_daemon();
}

}  // namespace airlock::supervisor
