// Identities of peers and agents, from the kernel and NSS.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "approval/authorize.hpp"
#include "common/result.hpp"
#include "supervisor/credentials.hpp"

namespace airlock::daemon {

struct UserInfo {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name;
    std::string home;
    std::vector<gid_t> groups;  // supplementary, from the group database
};

[[nodiscard]] common::Result<UserInfo> lookup_user(const std::string& name);
[[nodiscard]] common::Result<UserInfo> lookup_uid(uid_t uid);
// Supplementary groups of a live process (/proc/<pid>/status "Groups:").
[[nodiscard]] common::Result<std::vector<gid_t>> process_groups(pid_t pid);
[[nodiscard]] std::string group_name(gid_t gid);
[[nodiscard]] std::string user_name(uid_t uid);

}  // namespace airlock::daemon
