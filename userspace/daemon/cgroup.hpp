// cgroup v2 plumbing for sessions: each session is one leaf cgroup the daemon
// creates; membership of a pid is read from /proc/<pid>/cgroup.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace airlock::daemon {

// Mount point of the cgroup2 hierarchy, from /proc/self/mountinfo: it is
// /sys/fs/cgroup on systemd hosts and /sys/fs/cgroup/unified in hybrid layouts.
[[nodiscard]] common::Result<std::string> find_cgroup2_mount();
// "/a/b" from the "0::/a/b" line of /proc/<pid>/cgroup.
[[nodiscard]] common::Result<std::string> cgroup_of(pid_t pid);

class CgroupTree {
public:
    // `mount` is the cgroup2 mount; `base` the path below it (e.g. "/airlock")
    // under which sessions live. Creates base if missing.
    [[nodiscard]] static common::Result<CgroupTree> open(std::string mount, std::string base);

    [[nodiscard]] common::Result<std::string> create_session(std::int64_t session_id) const;  // returns relative path
    [[nodiscard]] common::Status move_into(const std::string& relative, pid_t pid) const;
    // Kills what is left (cgroup.kill, 5.14+) and removes the directory.
    [[nodiscard]] common::Status remove(const std::string& relative, bool kill_members) const;
    [[nodiscard]] std::vector<pid_t> members(const std::string& relative) const;
    [[nodiscard]] std::string absolute(const std::string& relative) const { return mount_ + relative; }
    [[nodiscard]] const std::string& base() const { return base_; }
    // True when a cgroup path (relative to the mount) is a session or inside one.
    [[nodiscard]] bool is_session_path(const std::string& relative) const {
        return relative.size() > base_.size() + 1 && relative.starts_with(base_ + "/");
    }

private:
    std::string mount_;
    std::string base_;
};

}  // namespace airlock::daemon
