#include "supervisor/path_resolver.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <mutex>
#include <set>
#include <deque>
#include <optional>
#include <vector>

namespace airlock::supervisor {
namespace {

using common::fail;
using common::Result;
using common::UniqueFd;

constexpr int k_max_symlinks = 40;  // the kernel's MAXSYMLINKS
constexpr std::size_t k_max_components = 4096;

void split_into(std::string_view path, std::deque<std::string>& out, bool front) {
    std::vector<std::string> parts;
    std::size_t i = 0;
    while (i < path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        if (j > i) parts.emplace_back(path.substr(i, j - i));
        i = j + 1;
    }
    // A trailing slash demands a directory; "." after the last name enforces it.
    if (!path.empty() && path.back() == '/' && !parts.empty()) parts.emplace_back(".");
    if (front)
        out.insert(out.begin(), parts.begin(), parts.end());
    else
        out.insert(out.end(), parts.begin(), parts.end());
}

bool is_procfs(int fd) {
    struct statfs sfs {};
    return ::fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

bool same_inode(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::optional<pid_t> parse_pid(std::string_view s) {
    pid_t value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc() || ptr != s.data() + s.size() || value <= 0) return std::nullopt;
    return value;
}

Result<std::string> read_link_at(int fd) {
    char buf[4096];
    ssize_t n = ::readlinkat(fd, "", buf, sizeof buf);
    if (n < 0) return common::fail_errno("readlink");
    if (static_cast<std::size_t>(n) >= sizeof buf) return fail(ENAMETOOLONG, "symlink target too long");
    return std::string(buf, static_cast<std::size_t>(n));
}

// Whether a process shares the daemon's mount namespace. Objects reached
// through the magic links of a process in another one are named relative to
// mounts the daemon cannot see (a bind mount there can give a denied file an
// allowed name), so such links are not followed. Unknown counts as different.
bool shares_our_mount_namespace(pid_t pid) {
    struct stat theirs {}, ours {};
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/mnt";
    return ::stat(path.c_str(), &theirs) == 0 && ::stat("/proc/self/ns/mnt", &ours) == 0 &&
           theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino;
}

// The pid whose /proc directory `dir` is in ("/proc/123/task/4" -> 123).
std::optional<pid_t> proc_owner_of(int dir) {
    auto name = fd_path(dir);
    constexpr std::string_view prefix = "/proc/";
    if (!name || !name->starts_with(prefix)) return std::nullopt;
    std::string_view rest = std::string_view(*name).substr(prefix.size());
    return parse_pid(rest.substr(0, rest.find('/')));
}

// Whether a mount (statx mount id) belongs to the daemon's mount namespace.
// A cwd or dirfd the kernel let the agent take into another namespace (through
// /proc/<pid>/root of a process there) would give objects names relative to
// mounts the daemon cannot see.
bool mount_in_our_namespace(std::uint64_t mount_id) {
    static std::mutex mutex;
    static std::set<std::uint64_t> known;
    std::lock_guard lock(mutex);
    if (known.contains(mount_id)) return true;
    known.clear();  // mounts come and go: re-read before saying no
    std::ifstream in("/proc/self/mountinfo");
    std::uint64_t id = 0;
    std::string line;
    while (in >> id && std::getline(in, line)) known.insert(id);
    return known.contains(mount_id);
}

bool in_our_namespace(int fd) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0 || !(stx.stx_mask & STATX_MNT_ID)) return false;
    return mount_in_our_namespace(stx.stx_mnt_id);
}

std::string join_remaining(std::string base, const std::deque<std::string>& rest) {
    for (const auto& c : rest) {
        if (c == ".") continue;
        if (base.empty() || base.back() != '/') base += '/';
        base += c;
    }
    return normalize_absolute(base);
}

// "/proc/1234/x" where 1234 is in the session becomes "/proc/self/x".
std::string present_proc_path(std::string path, const ResolveRequest& req, bool* session_owned) {
    constexpr std::string_view prefix = "/proc/";
    if (!path.starts_with(prefix)) return path;
    std::size_t end = path.find('/', prefix.size());
    std::string_view pid_text = std::string_view(path).substr(
        prefix.size(), (end == std::string::npos ? path.size() : end) - prefix.size());
    auto pid = parse_pid(pid_text);
    if (!pid || !req.in_session || !req.in_session(*pid)) return path;
    *session_owned = true;
    return "/proc/self" + (end == std::string::npos ? std::string() : path.substr(end));
}

// Fills name-derived fields of a resolved object from the kernel's own name for it.
Result<Resolved> finish_object(UniqueFd object, const ResolveRequest& req, std::optional<pid_t> proc_owner) {
    Resolved r;
    r.exists = true;
    r.object = std::move(object);
    if (::fstat(r.object.get(), &r.st) != 0) return common::fail_errno("fstat object");
    auto name = fd_path(r.object.get());
    if (!name) return std::unexpected(name.error());
    if (!name->starts_with('/')) {
        // pipe:[..], socket:[..], anon_inode:..: only reachable through a magic link.
        r.anonymous = true;
        r.policy_path = *name;
        r.session_owned = proc_owner && req.in_session && req.in_session(*proc_owner);
        return r;
    }
    constexpr std::string_view deleted = " (deleted)";
    if (r.st.st_nlink == 0 && name->ends_with(deleted)) name->resize(name->size() - deleted.size());
    r.policy_path = present_proc_path(*name, req, &r.session_owned);
    return r;
}

// The common case in one syscall: a path with no symlink in it resolves the
// same whether the kernel walks it or the component loop does, so let
// openat2 refuse any link (ELOOP) and fall back to the loop on any failure —
// the loop also produces the path policy needs for errors.
std::optional<Resolved> resolve_without_links(const ResolveRequest& req, bool absolute) {
    if (req.beneath || req.no_xdev) return std::nullopt;
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC | (req.follow_final ? 0 : O_NOFOLLOW);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (absolute ? RESOLVE_IN_ROOT : 0);
    UniqueFd fd(static_cast<int>(
        ::syscall(SYS_openat2, absolute ? req.root_fd : req.start_fd, std::string(req.path).c_str(), &how, sizeof how)));
    if (!fd) return std::nullopt;
    if (absolute && req.root_is_daemon_root) {
        std::string name = normalize_absolute(req.path);
        if (!name.starts_with("/proc/") && name != "/proc") {
            Resolved r;
            r.exists = true;
            r.object = std::move(fd);
            if (::fstat(r.object.get(), &r.st) != 0 || S_ISLNK(r.st.st_mode)) return std::nullopt;
            r.policy_path = std::move(name);
            return r;
        }
    }
    auto r = finish_object(std::move(fd), req, std::nullopt);
    if (!r || S_ISLNK(r->st.st_mode) || r->anonymous || r->policy_path.starts_with("/proc/")) return std::nullopt;
    return std::move(*r);
}

}  // namespace

std::string normalize_absolute(std::string_view path) {
    std::vector<std::string_view> stack;
    std::size_t i = 0;
    while (i <= path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view comp = path.substr(i, j - i);
        if (comp == "..") {
            if (!stack.empty()) stack.pop_back();
        } else if (!comp.empty() && comp != ".") {
            stack.push_back(comp);
        }
        i = j + 1;
    }
    std::string out;
    for (auto c : stack) {
        out += '/';
        out += c;
    }
    return out.empty() ? "/" : out;
}

Result<std::string> fd_path(int fd) {
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char buf[4096];
    ssize_t n = ::readlink(link, buf, sizeof buf);
    if (n < 0) return common::fail_errno("readlink fd");
    if (static_cast<std::size_t>(n) >= sizeof buf) return fail(ENAMETOOLONG, "fd path too long");
    return std::string(buf, static_cast<std::size_t>(n));
}

Result<Resolved> resolve_path(const ResolveRequest& req, std::string* failed_path) {
    if (req.path.empty()) return fail(ENOENT, "empty path");
    const bool absolute = req.path.front() == '/';
    if (!absolute && !in_our_namespace(req.start_fd)) return fail(EACCES, "start directory in another mount namespace");
    if (auto fast = resolve_without_links(req, absolute)) return std::move(*fast);

    struct stat root_st {};
    if (::fstat(req.root_fd, &root_st) != 0) return common::fail_errno("fstat agent root");

    std::deque<std::string> queue;
    split_into(req.path, queue, false);
    if (req.beneath && absolute) return fail(EXDEV, "absolute path with RESOLVE_BENEATH");
    struct stat start_st {};
    if (::fstat(absolute ? req.root_fd : req.start_fd, &start_st) != 0)
        return common::fail_errno("fstat start directory");
    UniqueFd cur(::fcntl(absolute ? req.root_fd : req.start_fd, F_DUPFD_CLOEXEC, 3));
    if (!cur) return common::fail_errno("dup start directory");

    int symlinks = 0;
    std::size_t steps = 0;
    std::optional<pid_t> proc_owner;  // pid of the last /proc/<pid> directory walked through
    auto fail_at = [&](int code, std::string_view name) -> std::unexpected<common::Error> {
        if (failed_path) {
            auto base = fd_path(cur.get());
            std::deque<std::string> rest = queue;
            rest.emplace_front(name);
            *failed_path = base && base->starts_with('/') ? join_remaining(*base, rest) : std::string();
        }
        return fail(code, "resolving path");
    };

    while (!queue.empty()) {
        if (++steps > k_max_components) return fail(ENAMETOOLONG, "too many path components");
        std::string comp = std::move(queue.front());
        queue.pop_front();
        const bool last = queue.empty();
        if (comp == ".") {
            struct stat st {};
            if (::fstat(cur.get(), &st) != 0) return common::fail_errno("fstat");
            if (!S_ISDIR(st.st_mode)) return fail_at(ENOTDIR, comp);
            continue;
        }
        if (comp == "..") {
            struct stat st {};
            if (::fstat(cur.get(), &st) == 0 && same_inode(st, root_st)) continue;  // ".." of root is root
            if (req.beneath && same_inode(st, start_st)) return fail_at(EXDEV, comp);
            UniqueFd up(::openat(cur.get(), "..", O_PATH | O_NOFOLLOW | O_CLOEXEC));
            if (!up) return fail_at(errno, comp);
            cur = std::move(up);
            continue;
        }
        if ((comp == "self" || comp == "thread-self") && is_procfs(cur.get())) {
            struct stat st {};
            // Only the procfs root has self/thread-self; a file of that name elsewhere is ordinary.
            if (::fstat(cur.get(), &st) == 0 && st.st_ino == 1) {
                if (comp == "thread-self") {
                    queue.emplace_front(std::to_string(req.tid));
                    queue.emplace_front("task");
                }
                comp = std::to_string(req.tgid);
            }
        }

        if (auto pid = parse_pid(comp); pid && is_procfs(cur.get())) {
            struct stat st {};
            if (::fstat(cur.get(), &st) == 0 && st.st_ino == 1) proc_owner = *pid;
        }
        UniqueFd next(::openat(cur.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!next) {
            int err = errno;
            if (err == ENOENT && last && req.allow_missing) {
                Resolved r;
                r.parent = std::move(cur);
                r.final_name = comp;
                auto base = fd_path(r.parent.get());
                if (!base) return std::unexpected(base.error());
                r.policy_path = present_proc_path(normalize_absolute(*base + "/" + comp), req, &r.session_owned);
                return r;
            }
            return fail_at(err, comp);
        }
        struct stat st {};
        if (::fstat(next.get(), &st) != 0) return common::fail_errno("fstat component");

        if (req.no_xdev && st.st_dev != start_st.st_dev) return fail_at(EXDEV, comp);
        if (S_ISLNK(st.st_mode) && (!last || req.follow_final)) {
            if (req.no_symlinks) return fail_at(ELOOP, comp);
            if (is_procfs(next.get())) {
                if (req.no_magiclinks || req.beneath) return fail_at(ELOOP, comp);
                // Walks that start inside /proc/<pid> (a cwd there) learn the owner from the directory.
                auto owner = proc_owner ? proc_owner : proc_owner_of(cur.get());
                if (!owner || !shares_our_mount_namespace(*owner)) return fail_at(EACCES, comp);
                proc_owner = owner;
                // A magic link names an object, not a path: let the kernel take the
                // hop (with the agent's ptrace-style access checks).
                UniqueFd target(::openat(cur.get(), comp.c_str(), O_PATH | O_CLOEXEC));
                if (!target) return fail_at(errno, comp);
                cur = std::move(target);
                if (last) break;
                continue;
            }
            if (++symlinks > k_max_symlinks) return fail_at(ELOOP, comp);
            auto target = read_link_at(next.get());
            if (!target) return std::unexpected(target.error());
            if (target->empty()) return fail_at(ENOENT, comp);
            split_into(*target, queue, true);
            if (target->front() == '/') {
                if (req.beneath) return fail_at(EXDEV, comp);
                UniqueFd root(::fcntl(req.root_fd, F_DUPFD_CLOEXEC, 3));
                if (!root) return common::fail_errno("dup root");
                cur = std::move(root);
            }
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode)) return fail_at(ENOTDIR, comp);
        cur = std::move(next);
    }

    return finish_object(std::move(cur), req, proc_owner);
}

}  // namespace airlock::supervisor
