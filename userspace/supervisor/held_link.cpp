// link, linkat, rename, renameat, renameat2: held, decided and performed by
// the daemon, never CONTINUEd (DESIGN-NOTES invariant 1).
//
// A hard link or a rename gives an object another name, and policy decides on
// names: `ln ~/.ssh/id_rsa /tmp/x` would otherwise make a denied file readable
// as /tmp/x (fs.protected_hardlinks only asks that the agent own it). Both
// paths are read from agent memory once and resolved as the agent to the
// directory that holds each final name (O_PATH), plus what the name holds now.
// The daemon decides on those names (policy::decide_link) and then performs
// the call itself, with the agent's credentials, on the directories it
// resolved: a path the agent rewrites after the read changes nothing.
//   link:   the object that was decided is linked through its own O_PATH fd
//           (/proc/self/fd/N with AT_SYMLINK_FOLLOW, which names the object,
//           not a path), so the name cannot be swapped for another object.
//   rename: there is no "rename this inode"; the name is renamed in the
//           resolved directory after checking it still holds the object that
//           was decided.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "supervisor/held_call.hpp"
#include "supervisor/remote_memory.hpp"

namespace airlock::supervisor {
namespace {

using common::Result;
using common::Status;
using common::UniqueFd;

constexpr unsigned k_rename_flags = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;

struct LinkArgs {
    long old_dirfd = AT_FDCWD;
    std::uint64_t old_path = 0;
    long new_dirfd = AT_FDCWD;
    std::uint64_t new_path = 0;
    std::uint64_t flags = 0;
};

LinkArgs link_args(const seccomp_notif& n) {
    const auto* a = n.data.args;
    LinkArgs args;
    switch (n.data.nr) {
        case SYS_link:
        case SYS_rename:
            args.old_path = a[0];
            args.new_path = a[1];
            break;
        default:  // linkat, renameat, renameat2
            args.old_dirfd = static_cast<int>(a[0]);
            args.old_path = a[1];
            args.new_dirfd = static_cast<int>(a[2]);
            args.new_path = a[3];
            // The kernel takes flags as an int (linkat) or unsigned int (renameat2).
            if (n.data.nr != SYS_renameat) args.flags = static_cast<unsigned>(a[4]);
            break;
    }
    return args;
}

// A path cut where the kernel cuts it for a rename or a create: the directory
// part is walked (following every link), the last component is not.
struct SplitPath {
    std::string dir;   // "." for a bare name; keeps its trailing '/' ("a/b/"), which makes it a directory
    std::string last;  // "" for "/", or "." / ".."
    bool trailing_slash = false;
    [[nodiscard]] bool plain_name() const { return !last.empty() && last != "." && last != ".."; }
};

SplitPath split_last(std::string_view path) {
    SplitPath split;
    std::size_t end = path.size();
    while (end > 0 && path[end - 1] == '/') --end;
    split.trailing_slash = end < path.size();
    if (end == 0) {  // "/" or "///": the root, which has no name in any directory
        split.dir = "/";
        return split;
    }
    const std::size_t slash = path.rfind('/', end - 1);
    if (slash == std::string_view::npos) {
        split.dir = ".";
        split.last = std::string(path.substr(0, end));
    } else {
        split.dir = std::string(path.substr(0, slash + 1));
        split.last = std::string(path.substr(slash + 1, end - slash - 1));
    }
    return split;
}

// The directory that holds split.last, resolved as the agent (credentials
// already assumed). Returns the agent's errno, or 0.
int resolve_parent(const HeldCall& call, const AgentContext& agent, int root_fd, const UniqueFd& start,
                   const SplitPath& split, NamedEntry& out) {
    ResolveRequest req = request_for(call, agent, root_fd, start, split.dir);
    req.root_is_daemon_root = agent.root_is_daemon_root;
    auto dir = resolve_path(req);
    if (!dir) return dir.error().code;
    if (!S_ISDIR(dir->st.st_mode)) return ENOTDIR;
    out.parent = std::move(dir->object);
    out.name = split.last;
    out.trailing_slash = split.trailing_slash;
    out.policy_path = normalize_absolute(dir->policy_path + "/" + split.last);
    return 0;
}

// What the name holds now, if anything (credentials assumed). Returns the
// agent's errno, or 0 (a missing name is not an error here).
int look_up_name(NamedEntry& entry) {
    UniqueFd object(::openat(entry.parent.get(), entry.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!object) return errno == ENOENT ? 0 : errno;
    if (::fstat(object.get(), &entry.st) != 0) return errno;
    entry.object = std::move(object);
    entry.exists = true;
    return 0;
}

// The mount a resolved fd is on; 0 when unknown. The kernel refuses links
// and renames across mounts (even two of one filesystem) with EXDEV.
std::uint64_t mount_of(int fd) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) return 0;
    return (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
}

bool different_mounts(int a, int b) {
    const std::uint64_t ma = mount_of(a), mb = mount_of(b);
    return ma != 0 && mb != 0 && ma != mb;
}

bool same_inode(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// The name as the kernel gets it: a trailing '/' kept, so that its own rules
// for one (ENOTDIR on a non-directory, ENOENT for a missing link name) apply.
std::string kernel_name(const NamedEntry& entry) { return entry.trailing_slash ? entry.name + "/" : entry.name; }

struct Paths {
    std::string old_path, new_path;
    std::optional<UniqueFd> old_start, new_start;
};

// Reads both paths once and opens the directories relative paths start from.
// Both need root (agent memory, /proc/<tid>), so they come before any lookup
// made as the agent. Records the agent's errno and returns nullopt on failure.
std::optional<Paths> read_paths(HeldCall& call, const seccomp_notif& n, const LinkArgs& args) {
    Paths p;
    auto old_path = read_remote_string(n.pid, args.old_path, k_max_path - 1);
    if (!old_path) {
        call.immediate_errno = old_path.error().code;
        return std::nullopt;
    }
    auto new_path = read_remote_string(n.pid, args.new_path, k_max_path - 1);
    if (!new_path) {
        call.immediate_errno = new_path.error().code;
        return std::nullopt;
    }
    if (old_path->empty() || new_path->empty()) {
        call.immediate_errno = ENOENT;
        return std::nullopt;
    }
    p.old_path = std::move(*old_path);
    p.new_path = std::move(*new_path);
    p.old_start = start_for(call, p.old_path, args.old_dirfd);
    if (!p.old_start) return std::nullopt;
    p.new_start = start_for(call, p.new_path, args.new_dirfd);
    if (!p.new_start) return std::nullopt;
    return p;
}

void describe(HeldCall& call, policy::LinkKind kind) {
    policy::LinkQuery q;
    q.kind = kind;
    q.source = call.source.policy_path;
    q.destination = call.destination.policy_path;
    q.source_type = call.source.exists ? (call.source.st.st_mode & S_IFMT) : 0;
    q.destination_type = call.destination.exists ? (call.destination.st.st_mode & S_IFMT) : 0;
    call.object = q.source + " -> " + q.destination;
    // `query` stays meaningful for code that shows one path: the source, as a read|write open.
    call.query.action = policy::Action::open;
    call.query.path = q.source;
    call.query.access = policy::access_read | policy::access_write;
    call.link = std::move(q);
}

Status decode_hard_link(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::link;
    const LinkArgs args = link_args(n);
    if (args.flags & ~static_cast<std::uint64_t>(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) {
        call.immediate_errno = EINVAL;
        return {};
    }
    if (args.flags & AT_EMPTY_PATH) {
        // flink(): before Linux 6.10 it needs CAP_DAC_READ_SEARCH, which no
        // agent has (ENOENT without it); since 6.10 the kernel also allows it
        // for a file opened with the caller's current credentials, which the
        // daemon cannot see. Refused the old way: callers that want to link
        // an fd use /proc/self/fd/N with AT_SYMLINK_FOLLOW, which is decided.
        call.immediate_errno = ENOENT;
        return {};
    }
    auto paths = read_paths(call, n, args);
    if (!paths) return {};

    auto creds = ScopedCredentials::assume(agent.creds);
    if (!creds) return std::unexpected(creds.error());
    // The source is looked up whole, as the kernel does: its last component is
    // followed only with AT_SYMLINK_FOLLOW (a procfs magic link then names
    // the object behind it: /proc/self/fd/N links what fd N is).
    ResolveRequest req = request_for(call, agent, root_fd, *paths->old_start, paths->old_path);
    req.root_is_daemon_root = agent.root_is_daemon_root;
    req.follow_final = args.flags & AT_SYMLINK_FOLLOW;
    auto source = resolve_path(req);
    if (!source) {
        call.immediate_errno = source.error().code;
        return {};
    }
    if (source->anonymous) {
        // A pipe or socket reached through a magic link lives on an internal
        // mount no directory is on.
        call.immediate_errno = EXDEV;
        return {};
    }
    call.source.object = std::move(source->object);
    call.source.st = source->st;
    call.source.exists = true;
    call.source.policy_path = std::move(source->policy_path);

    SplitPath to = split_last(paths->new_path);
    if (int err = resolve_parent(call, agent, root_fd, *paths->new_start, to, call.destination); err) {
        call.immediate_errno = err;
        return {};
    }
    if (!to.plain_name()) {
        call.immediate_errno = EEXIST;  // "/", "." and "..": names that always exist
        return {};
    }
    if (int err = look_up_name(call.destination); err) {
        call.immediate_errno = err;
        return {};
    }
    if (different_mounts(call.source.object.get(), call.destination.parent.get())) {
        call.immediate_errno = EXDEV;
        return {};
    }
    describe(call, policy::LinkKind::link);
    // Calls the kernel would refuse anyway are not put to an approver; a deny
    // still answers with the policy's errno.
    if (call.destination.exists) call.errno_if_allowed = EEXIST;
    else if (to.trailing_slash) call.errno_if_allowed = ENOENT;
    else if (S_ISDIR(call.source.st.st_mode)) call.errno_if_allowed = EPERM;
    return {};
}

Status decode_rename(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::rename;
    const LinkArgs args = link_args(n);
    if ((args.flags & ~static_cast<std::uint64_t>(k_rename_flags)) ||
        ((args.flags & RENAME_EXCHANGE) && (args.flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)))) {
        call.immediate_errno = EINVAL;
        return {};
    }
    call.link_flags = static_cast<unsigned>(args.flags);
    const bool exchange = args.flags & RENAME_EXCHANGE;
    auto paths = read_paths(call, n, args);
    if (!paths) return {};

    auto creds = ScopedCredentials::assume(agent.creds);
    if (!creds) return std::unexpected(creds.error());
    // In the kernel's order: both directories, the mount check, then the names.
    SplitPath from = split_last(paths->old_path), to = split_last(paths->new_path);
    int err = resolve_parent(call, agent, root_fd, *paths->old_start, from, call.source);
    if (!err) err = resolve_parent(call, agent, root_fd, *paths->new_start, to, call.destination);
    if (!err && different_mounts(call.source.parent.get(), call.destination.parent.get())) err = EXDEV;
    if (!err && (!from.plain_name() || !to.plain_name())) err = EBUSY;
    if (!err) err = look_up_name(call.source);
    if (!err && !call.source.exists) err = ENOENT;
    if (!err) err = look_up_name(call.destination);
    if (err) {
        call.immediate_errno = err;
        return {};
    }
    describe(call, exchange ? policy::LinkKind::exchange : policy::LinkKind::rename);
    const bool source_is_dir = S_ISDIR(call.source.st.st_mode);
    if ((args.flags & RENAME_NOREPLACE) && call.destination.exists) call.errno_if_allowed = EEXIST;
    else if (exchange && !call.destination.exists) call.errno_if_allowed = ENOENT;
    else if (!source_is_dir && (from.trailing_slash || (!exchange && to.trailing_slash)))
        call.errno_if_allowed = ENOTDIR;
    return {};
}

}  // namespace

Status decode_link(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    if (n.data.nr == SYS_link || n.data.nr == SYS_linkat) return decode_hard_link(call, n, agent, root_fd);
    return decode_rename(call, n, agent, root_fd);
}

Result<long> perform_link(HeldCall& call, const AgentContext& agent) {
    long result = 0;
    {
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return std::unexpected(creds.error());
        const std::string destination = kernel_name(call.destination);
        if (call.kind == CallKind::link) {
            // The decided object itself, whatever its name holds by now. The
            // jump through a magic link lands on the object and goes no
            // further, so a symlink source is linked as the symlink, as link(2) does.
            char magic[64];
            std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", call.source.object.get());
            result = ::linkat(AT_FDCWD, magic, call.destination.parent.get(), destination.c_str(),
                              AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
        } else {
            // Only names can be renamed. Each name must still hold the object
            // decided on; refilling it needs a link or rename, which would be
            // decided too, so a mismatch is a race the agent made: try again.
            auto still = [](const NamedEntry& e) {
                struct stat now {};
                if (::fstatat(e.parent.get(), e.name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
                if (!e.exists || !same_inode(now, e.st)) return -EAGAIN;
                return 0;
            };
            result = still(call.source);
            if (result == 0 && (call.link_flags & RENAME_EXCHANGE)) result = still(call.destination);
            if (result == 0) {
                const std::string source = kernel_name(call.source);
                result = ::syscall(SYS_renameat2, call.source.parent.get(), source.c_str(),
                                   call.destination.parent.get(), destination.c_str(), call.link_flags) == 0
                             ? 0
                             : -errno;
            }
        }
    }
    Status sent = result == 0 ? answer_value(call.listener_fd, call.id, 0)
                              : answer_error(call.listener_fd, call.id, static_cast<int>(-result));
    if (!sent) return std::unexpected(sent.error());
    return result;
}

std::string_view action_name(const HeldCall& call) {
    switch (call.kind) {
        case CallKind::link: return "link";
        case CallKind::rename: return "rename";
        default: return policy::to_string(call.query.action);
    }
}

}  // namespace airlock::supervisor
