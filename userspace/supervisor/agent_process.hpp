// Runs one socket operation in a short-lived child that has joined the
// session's cgroup and fully become the agent (uid, gid, groups, no
// capabilities). Needed for AF_UNIX: the kernel records the *caller's* pid and
// credentials for SO_PEERCRED at connect() and for SCM_CREDENTIALS on
// datagrams, so a connect made by airlockd itself would present the server
// (dbus, polkit, airlockd's own control socket) with a root process outside any
// session. Made by this child, the peer is an unprivileged process inside the
// session, as it is when the agent connects itself.
#pragma once

#include <span>
#include <string>

#include "common/result.hpp"
#include "supervisor/credentials.hpp"

namespace airlock::supervisor {

// What the child does, with raw syscalls only (it is forked from a
// multi-threaded process: no allocation, no locks). Returns >= 0 or -errno.
using AgentOperation = long (*)(const void* context);

// `cgroup_procs`: absolute path of the session's cgroup.procs. `keep_fds`:
// the only descriptors the child keeps; every other one the daemon holds
// (listeners, the control socket, the audit log) is closed first.
[[nodiscard]] common::Result<long> run_in_agent_process(const Credentials& creds, const std::string& cgroup_procs,
                                                        AgentOperation operation, const void* context,
                                                        std::span<const int> keep_fds);

}  // namespace airlock::supervisor
