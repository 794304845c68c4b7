#include "daemon/cgroup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/unique_fd.hpp"

namespace airlock::daemon {

using common::fail;
using common::Result;
using common::Status;

Result<std::string> find_cgroup2_mount() {
    std::ifstream in("/proc/self/mountinfo");
    if (!in) return common::fail_errno("reading /proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // Fields: id parent maj:min root mountpoint options [optional...] - fstype source superopts
        auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream tail(line.substr(sep + 3));
        std::string fstype;
        tail >> fstype;
        if (fstype != "cgroup2") continue;
        std::istringstream head(line.substr(0, sep));
        std::string id, parent, devno, root, mountpoint;
        head >> id >> parent >> devno >> root >> mountpoint;
        return mountpoint;
    }
    return fail(ENOENT, "no cgroup2 hierarchy is mounted (see /proc/self/mountinfo)");
}

Result<std::string> cgroup_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
    if (!in) return fail(ESRCH, "process " + std::to_string(pid) + " is gone");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("0::")) return line.substr(3);
    return fail(ENOENT, "process " + std::to_string(pid) + " has no cgroup v2 membership");
}

Result<CgroupTree> CgroupTree::open(std::string mount, std::string base) {
    CgroupTree tree;
    tree.mount_ = std::move(mount);
    tree.base_ = base == "/" ? std::string() : std::move(base);
    std::string dir = tree.mount_ + tree.base_;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        return common::fail_errno("creating session cgroup root " + dir);
    return tree;
}

Result<std::string> CgroupTree::create_session(std::int64_t session_id) const {
    std::string relative = base_ + "/session-" + std::to_string(session_id);
    std::string dir = mount_ + relative;
    if (::mkdir(dir.c_str(), 0755) != 0) return common::fail_errno("creating cgroup " + dir);
    return relative;
}

Status CgroupTree::move_into(const std::string& relative, pid_t pid) const {
    std::string procs = mount_ + relative + "/cgroup.procs";
    common::UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return common::fail_errno("opening " + procs);
    std::string text = std::to_string(pid);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        return common::fail_errno("moving pid " + text + " into " + procs);
    return {};
}

std::vector<pid_t> CgroupTree::members(const std::string& relative) const {
    std::vector<pid_t> pids;
    std::ifstream in(mount_ + relative + "/cgroup.procs");
    pid_t pid = 0;
    while (in >> pid) pids.push_back(pid);
    return pids;
}

Status CgroupTree::remove(const std::string& relative, bool kill_members) const {
    std::string dir = mount_ + relative;
    if (kill_members) {
        common::UniqueFd fd(::open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC));
        if (fd) (void)!::write(fd.get(), "1", 1);
    }
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return common::fail_errno("removing cgroup " + dir);
    return {};
}

}  // namespace airlock::daemon
