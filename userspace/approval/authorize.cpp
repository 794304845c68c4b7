#include "approval/authorize.hpp"

#include <algorithm>

namespace airlock::approval {

common::Status may_decide(const PeerIdentity& peer, const SessionOwnership& session,
                          const policy::Approvers& approvers) {
    // An agent must never approve itself, whatever its uid: everything that
    // runs in a session is the agent.
    if (peer.inside_agent_session)
        return common::fail(EPERM, "requests from inside an agent session cannot decide approvals");
    const bool is_owner = peer.uid == session.owner_uid || peer.uid == session.agent_uid;
    if (is_owner) {
        if (approvers.allow_session_owner) return {};
        return common::fail(EPERM, "the policy does not let a session's owner approve its own agent "
                                   "(approvers.allow_session_owner is false)");
    }
    if (peer.uid == 0) return {};
    auto listed = [](const std::vector<std::string>& names, const std::string& name) {
        return !name.empty() && std::find(names.begin(), names.end(), name) != names.end();
    };
    if (listed(approvers.users, peer.user_name)) return {};
    for (const auto& g : peer.group_names)
        if (listed(approvers.groups, g)) return {};
    return common::fail(EPERM, "user '" + (peer.user_name.empty() ? std::to_string(peer.uid) : peer.user_name) +
                                   "' is not an approver under this session's policy (approvers.users/groups)");
}

}  // namespace airlock::approval
