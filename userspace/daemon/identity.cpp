#include "daemon/identity.hpp"

#include <grp.h>
#include <pwd.h>

#include <fstream>
#include <sstream>

namespace airlock::daemon {

using common::fail;
using common::Result;

namespace {

Result<UserInfo> from_passwd(const passwd* pw) {
    UserInfo info;
    info.uid = pw->pw_uid;
    info.gid = pw->pw_gid;
    info.name = pw->pw_name;
    info.home = pw->pw_dir ? pw->pw_dir : "/";
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &count) < 0) {
        groups.resize(static_cast<std::size_t>(count));
        if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &count) < 0)
            return fail(E2BIG, "too many groups for user " + info.name);
    }
    groups.resize(static_cast<std::size_t>(count));
    info.groups = std::move(groups);
    return info;
}

}  // namespace

Result<UserInfo> lookup_user(const std::string& name) {
    passwd pw{};
    passwd* out = nullptr;
    std::vector<char> buf(16384);
    if (int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out); rc != 0 || !out)
        return fail(rc ? rc : ENOENT, "no such user '" + name + "'");
    return from_passwd(out);
}

Result<UserInfo> lookup_uid(uid_t uid) {
    passwd pw{};
    passwd* out = nullptr;
    std::vector<char> buf(16384);
    if (int rc = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out); rc != 0 || !out) {
        // A uid with no passwd entry still runs; it just has no home and no name.
        UserInfo info;
        info.uid = uid;
        info.gid = static_cast<gid_t>(uid);
        info.name = std::to_string(uid);
        info.home = "/nonexistent";
        return info;
    }
    return from_passwd(out);
}

Result<std::vector<gid_t>> process_groups(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) return fail(ESRCH, "process " + std::to_string(pid) + " is gone");
    std::string line;
    while (std::getline(in, line)) {
        if (!line.starts_with("Groups:")) continue;
        std::istringstream s(line.substr(7));
        std::vector<gid_t> groups;
        gid_t g = 0;
        while (s >> g) groups.push_back(g);
        return groups;
    }
    return std::vector<gid_t>{};
}

std::string group_name(gid_t gid) {
    group gr{};
    group* out = nullptr;
    std::vector<char> buf(16384);
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) != 0 || !out) return {};
    return out->gr_name;
}

std::string user_name(uid_t uid) {
    passwd pw{};
    passwd* out = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) != 0 || !out) return {};
    return out->pw_name;
}

}  // namespace airlock::daemon
