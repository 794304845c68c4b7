// Who may decide an approval request. Pure logic over identities the daemon
// read from the kernel (SO_PEERCRED, /proc/<pid>/status, /proc/<pid>/cgroup),
// so it is unit-testable and the daemon cannot forget a rule.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.hpp"
#include "policy/policy.hpp"

namespace airlock::approval {

struct PeerIdentity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;   // supplementary groups of the peer process
    std::string user_name;       // of uid, empty if it has none
    std::vector<std::string> group_names;  // of gid and groups
    bool inside_agent_session = false;     // peer's cgroup is inside any session
};

struct SessionOwnership {
    uid_t owner_uid = 0;  // who launched the session
    uid_t agent_uid = 0;  // who the agent runs as (--user), often the owner
};

// Ok, or an Error whose message says why the peer may not decide (shown to the
// peer verbatim, so it names the rule, never a secret).
[[nodiscard]] common::Status may_decide(const PeerIdentity& peer, const SessionOwnership& session,
                                        const policy::Approvers& approvers);

// May the peer see requests of this session at all (pending, watch)? Same rule:
// showing a request to someone who cannot decide it only leaks what the agent does.
[[nodiscard]] inline bool may_see(const PeerIdentity& peer, const SessionOwnership& session,
                                  const policy::Approvers& approvers) {
    return may_decide(peer, session, approvers).has_value();
}

}  // namespace airlock::approval
