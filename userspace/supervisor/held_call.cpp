#include "supervisor/held_call.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/sysmacros.h>

#include "supervisor/agent_process.hpp"
#include "supervisor/remote_memory.hpp"

namespace airlock::supervisor {
namespace {

using common::fail;
using common::Result;
using common::Status;
using common::UniqueFd;

constexpr unsigned long long k_known_resolve =
    RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT |
    RESOLVE_CACHED;
constexpr std::size_t k_max_iov = 1024;
constexpr std::size_t k_max_control = 4096;

UniqueFd open_proc_entry(pid_t tid, const char* entry) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/%s", tid, entry);
    return UniqueFd(::open(path, O_PATH | O_CLOEXEC));
}

pid_t thread_group_of(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", tid);
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("Tgid:")) return static_cast<pid_t>(std::atoi(line.c_str() + 5));
    return tid;
}

// The device node of a process's controlling terminal, from tty_nr in
// /proc/<pid>/stat; empty when it has none.
std::string controlling_tty_of(pid_t tgid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", tgid);
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // comm may hold spaces and parentheses: fields resume after the last ')'.
    auto close = stat.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    long ppid = 0, pgrp = 0, session = 0, tty_nr = 0;
    fields >> state >> ppid >> pgrp >> session >> tty_nr;
    if (tty_nr == 0) return {};
    unsigned major = (static_cast<unsigned long>(tty_nr) >> 8) & 0xfff;
    unsigned minor = (static_cast<unsigned long>(tty_nr) & 0xff) | ((static_cast<unsigned long>(tty_nr) >> 12) & 0xfff00);
    if (major >= 136 && major <= 143) return "/dev/pts/" + std::to_string((major - 136) * 256 + minor);
    if (major == 4 && minor < 64) return "/dev/tty" + std::to_string(minor);
    if (major == 4) return "/dev/ttyS" + std::to_string(minor - 64);
    return {};
}

bool is_userfaultfd_device(const Resolved& target) {
    if (!target.exists || !S_ISCHR(target.st.st_mode)) return false;
    if (target.policy_path == "/dev/userfaultfd") return true;
    static const dev_t device = [] {
        struct stat st {};
        return ::stat("/dev/userfaultfd", &st) == 0 && S_ISCHR(st.st_mode) ? st.st_rdev : dev_t{0};
    }();
    return device != 0 && target.st.st_rdev == device;
}

mode_t umask_of(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", tid);
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("Umask:")) return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8));
    return 022;  // the usual default, if procfs no longer shows it
}

}  // namespace

std::string quote_argv(const std::vector<std::string>& argv, bool truncated) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
        if (plain) {
            out += a;
        } else {
            out += '\'';
            for (char c : a) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
            out += '\'';
        }
        if (out.size() > 2048) {
            truncated = true;
            break;
        }
    }
    if (truncated) out += " …";
    return out;
}

// Shared with held_link.cpp (declared in held_call.hpp).
// Where a relative path starts: the agent's cwd, or the directory behind dirfd.
Result<UniqueFd> start_directory(pid_t tid, long dirfd) {
    if (static_cast<int>(dirfd) == AT_FDCWD) {
        UniqueFd cwd = open_proc_entry(tid, "cwd");
        if (!cwd) return common::fail_errno("opening agent cwd");
        return cwd;
    }
    if (dirfd < 0 || dirfd > INT32_MAX) return fail(EBADF, "bad dirfd");
    char entry[32];
    std::snprintf(entry, sizeof entry, "fd/%d", static_cast<int>(dirfd));
    UniqueFd fd = open_proc_entry(tid, entry);
    if (!fd) return fail(EBADF, "dirfd is not open in the agent");
    return fd;
}

// The common part of every lookup a held call makes: whose, from where.
ResolveRequest request_for(const HeldCall& call, const AgentContext& agent, int root_fd, const UniqueFd& start,
                           std::string_view path) {
    ResolveRequest req;
    req.tid = call.tid;
    req.tgid = call.tgid;
    req.root_fd = root_fd;
    req.start_fd = start ? start.get() : root_fd;
    req.path = path;
    req.in_session = agent.in_session;
    return req;
}

// The directory a relative path starts from (cwd or dirfd); empty when the
// path is absolute. On failure, records the agent's errno and returns nullopt.
std::optional<UniqueFd> start_for(HeldCall& call, std::string_view path, long dirfd) {
    if (!path.empty() && path.front() == '/') return UniqueFd();
    auto dir = start_directory(call.tid, dirfd);
    if (!dir) {
        call.immediate_errno = dir.error().code;
        return std::nullopt;
    }
    return std::move(*dir);
}

namespace {

struct PathArgs {
    long dirfd = AT_FDCWD;
    std::uint64_t path_ptr = 0;
    int flags = 0;
    mode_t mode = 0;
    std::uint64_t resolve = 0;
};

Result<PathArgs> open_args(const seccomp_notif& n) {
    PathArgs a;
    const auto* args = n.data.args;
    switch (n.data.nr) {
        case SYS_open:
            a.path_ptr = args[0];
            a.flags = static_cast<int>(args[1]);
            a.mode = static_cast<mode_t>(args[2]);
            break;
        case SYS_creat:
            a.path_ptr = args[0];
            a.flags = O_CREAT | O_WRONLY | O_TRUNC;
            a.mode = static_cast<mode_t>(args[1]);
            break;
        case SYS_openat:
            a.dirfd = static_cast<int>(args[0]);
            a.path_ptr = args[1];
            a.flags = static_cast<int>(args[2]);
            a.mode = static_cast<mode_t>(args[3]);
            break;
        case SYS_openat2: {
            a.dirfd = static_cast<int>(args[0]);
            a.path_ptr = args[1];
            open_how how{};
            std::size_t size = args[3];
            if (size < sizeof(open_how) || size > 4096) return fail(EINVAL, "open_how size");
            if (auto r = read_remote(n.pid, args[2], &how, sizeof how); !r) return fail(EFAULT, "open_how");
            if (how.resolve & ~k_known_resolve) return fail(EINVAL, "unknown RESOLVE_ flags");
            if ((how.resolve & RESOLVE_BENEATH) && (how.resolve & RESOLVE_IN_ROOT))
                return fail(EINVAL, "RESOLVE_BENEATH with RESOLVE_IN_ROOT");
            if (how.flags > 0xffffffffULL) return fail(EINVAL, "open_how flags");
            if (how.mode & ~07777ULL) return fail(EINVAL, "open_how mode");
            if (how.mode && !(how.flags & (O_CREAT | __O_TMPFILE))) return fail(EINVAL, "mode without O_CREAT");
            // RESOLVE_CACHED asks for a lookup that never blocks; the daemon's lookup
            // already happened, so EAGAIN (the documented "try again without it") is honest.
            if (how.resolve & RESOLVE_CACHED) return fail(EAGAIN, "RESOLVE_CACHED");
            // O_PATH opens are answered CONTINUE (perform_open), and the kernel
            // then reads open_how again from agent memory: a racing thread could
            // turn an O_PATH open that was decided as a read into O_RDWR|O_TRUNC.
            // ENOSYS is openat2's "not here" (callers fall back to openat, whose
            // flags are in a register the agent cannot change after the check).
            if (how.flags & O_PATH) return fail(ENOSYS, "openat2 with O_PATH");
            a.flags = static_cast<int>(how.flags);
            a.mode = static_cast<mode_t>(how.mode);
            a.resolve = how.resolve;
            break;
        }
        default:
            return fail(ENOSYS, "not an open call");
    }
    // Only O_CREAT/O_TMPFILE use mode; the kernel ignores it otherwise.
    if (!(a.flags & (O_CREAT | __O_TMPFILE))) a.mode = 0;
    a.mode &= 07777;
    return a;
}

Status decode_open(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::open;
    auto args = open_args(n);
    if (!args) {
        call.immediate_errno = args.error().code;
        return {};
    }
    auto path = read_remote_string(n.pid, args->path_ptr, k_max_path - 1);
    if (!path) {
        call.immediate_errno = path.error().code;
        return {};
    }
    call.open_flags = args->flags;
    call.open_mode = args->mode;
    const bool tmpfile = (args->flags & __O_TMPFILE) == __O_TMPFILE;
    // O_PATH ignores O_CREAT (and every flag but O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC).
    const bool create = (args->flags & O_CREAT) && !tmpfile && !(args->flags & O_PATH);
    const bool exclusive = create && (args->flags & O_EXCL);

    UniqueFd start;
    if (path->empty() || path->front() != '/' || (args->resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH))) {
        auto dir = start_directory(n.pid, args->dirfd);
        if (!dir) {
            call.immediate_errno = dir.error().code;
            return {};
        }
        start = std::move(*dir);
    }
    ResolveRequest req = request_for(call, agent, root_fd, start, *path);
    if (args->resolve & RESOLVE_IN_ROOT) req.root_fd = start.get();
    req.follow_final = !(args->flags & O_NOFOLLOW) && !exclusive;
    req.allow_missing = create;
    req.no_symlinks = args->resolve & RESOLVE_NO_SYMLINKS;
    req.no_magiclinks = args->resolve & RESOLVE_NO_MAGICLINKS;
    req.beneath = args->resolve & RESOLVE_BENEATH;
    req.no_xdev = args->resolve & RESOLVE_NO_XDEV;
    req.root_is_daemon_root = agent.root_is_daemon_root && req.root_fd == root_fd;

    call.query.action = policy::Action::open;
    call.query.access = access_for_open_flags(args->flags);
    std::string failed_path;
    Result<Resolved> resolved = [&]() -> Result<Resolved> {
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return std::unexpected(creds.error());
        return resolve_path(req, &failed_path);
    }();
    if (!resolved) {
        // Ask policy about the path anyway: a denied directory answers with the
        // policy's errno instead of revealing which names exist in it.
        call.query.path = failed_path.empty() ? normalize_absolute(*path) : failed_path;
        call.object = call.query.path;
        if (failed_path.empty())
            call.immediate_errno = resolved.error().code;
        else
            call.errno_if_allowed = resolved.error().code;
        return {};
    }
    call.target = std::move(*resolved);
    call.query.path = call.target.policy_path;
    call.object = call.target.policy_path;
    if (is_userfaultfd_device(call.target)) {
        // A userfaultfd region behind a path pointer would stall the daemon's
        // reads of agent memory forever; refused like the syscall, whatever the policy.
        call.immediate_errno = EPERM;
        return {};
    }
    if (!call.target.exists) {
        call.query.access |= policy::access_create;
    } else {
        call.query.access &= ~static_cast<unsigned>(policy::access_create);
        if (exclusive) call.errno_if_allowed = EEXIST;
        else if ((args->flags & O_DIRECTORY) && !S_ISDIR(call.target.st.st_mode)) call.errno_if_allowed = ENOTDIR;
        else if (S_ISLNK(call.target.st.st_mode) && !(args->flags & O_PATH)) call.errno_if_allowed = ELOOP;
        else if (tmpfile && !S_ISDIR(call.target.st.st_mode)) call.errno_if_allowed = ENOTDIR;
    }
    if (call.target.anonymous && call.target.session_owned && !call.errno_if_allowed) {
        // A pipe or socket of the session's own process (/dev/fd/N, bash's
        // <(...)): the session holds it already, nothing to decide.
        call.allow_without_policy = "session-own-fd";
    }
    return {};
}

Result<std::string> unix_path_of(const sockaddr_storage& ss, socklen_t len, bool* abstract) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    std::size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    max = std::min(max, sizeof un->sun_path);
    if (max == 0) return fail(EINVAL, "unnamed unix address");
    if (un->sun_path[0] == '\0') {
        *abstract = true;
        return std::string(un->sun_path + 1, max - 1);
    }
    *abstract = false;
    return std::string(un->sun_path, strnlen(un->sun_path, max));
}

// Fills query/object from a destination; resolves unix socket paths as the agent.
Status decode_destination(HeldCall& call, const AgentContext& agent, int root_fd) {
    call.query.action = policy::Action::connect;
    call.object = describe_address(call.address, call.address_len);
    const int family = call.address.ss_family;
    if (family == AF_INET && call.address_len >= sizeof(sockaddr_in)) {
        auto* in = reinterpret_cast<sockaddr_in*>(&call.address);
        // The kernel sends a connect to 0.0.0.0 to this host: decide it, and
        // perform it, as the loopback address it really is.
        if (in->sin_addr.s_addr == htonl(INADDR_ANY)) in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        call.object = describe_address(call.address, call.address_len);
        policy::IpAddress ip;
        ip.family = AF_INET;
        std::memcpy(ip.bytes.data(), &in->sin_addr, 4);
        call.query.address = ip;
        call.query.port = ntohs(in->sin_port);
    } else if (family == AF_INET6 && call.address_len >= sizeof(sockaddr_in6)) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&call.address);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
            in6->sin6_addr = in6addr_loopback;  // [::] is this host too
        } else if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr32[3] == htonl(INADDR_ANY)) {
            in6->sin6_addr.s6_addr32[3] = htonl(INADDR_LOOPBACK);
        }
        call.object = describe_address(call.address, call.address_len);
        policy::IpAddress ip;
        ip.family = AF_INET6;
        std::memcpy(ip.bytes.data(), &in6->sin6_addr, 16);
        call.query.address = ip;
        call.query.port = ntohs(in6->sin6_port);
    } else if (family == AF_INET || family == AF_INET6) {
        call.immediate_errno = EINVAL;
    } else if (family == AF_UNIX) {
        bool abstract = false;
        auto name = unix_path_of(call.address, call.address_len, &abstract);
        if (!name) {
            call.immediate_errno = name.error().code;
            return {};
        }
        if (abstract) {
            call.query.path = "@" + *name;
            return {};
        }
        auto start = start_for(call, *name, AT_FDCWD);
        if (!start) return {};
        ResolveRequest req = request_for(call, agent, root_fd, *start, *name);
        std::string failed_path;
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return std::unexpected(creds.error());
        auto resolved = resolve_path(req, &failed_path);
        if (!resolved) {
            call.query.path = failed_path.empty() ? normalize_absolute(*name) : failed_path;
            call.errno_if_allowed = resolved.error().code;
            return {};
        }
        call.target = std::move(*resolved);
        call.query.path = call.target.policy_path;
        call.object = "unix:" + call.target.policy_path;
        if (agent.control_socket_ino != 0 && call.target.st.st_dev == agent.control_socket_dev &&
            call.target.st.st_ino == agent.control_socket_ino) {
            // The approval channel (DESIGN-NOTES invariant 5): refused here,
            // before the daemon's own peer checks ever see the connection.
            call.immediate_errno = EACCES;
            return {};
        }
        if (!S_ISSOCK(call.target.st.st_mode)) call.errno_if_allowed = ECONNREFUSED;
    } else if (family == AF_UNSPEC) {
        // Dissolves a datagram association; it reaches no one.
        call.allow_without_policy = "af-unspec";
    } else {
        call.object = "family:" + std::to_string(family);
    }
    return {};
}

Status decode_connect(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::connect;
    call.sockfd = static_cast<int>(n.data.args[0]);
    std::uint64_t len = n.data.args[2];
    if (len > sizeof(sockaddr_storage) || len < sizeof(sa_family_t)) {
        call.immediate_errno = EINVAL;
        return {};
    }
    call.address_len = static_cast<socklen_t>(len);
    if (!read_remote(n.pid, n.data.args[1], &call.address, len)) {
        call.immediate_errno = EFAULT;
        return {};
    }
    return decode_destination(call, agent, root_fd);
}

Status read_iovecs(HeldCall& call, pid_t pid, std::uint64_t iov_ptr, std::size_t iov_count,
                   bool stream = false) {
    if (iov_count > k_max_iov) {
        call.immediate_errno = EMSGSIZE;
        return {};
    }
    std::vector<iovec> iov(iov_count);
    if (iov_count && !read_remote(pid, iov_ptr, iov.data(), iov_count * sizeof(iovec))) {
        call.immediate_errno = EFAULT;
        return {};
    }
    std::size_t total = 0;
    for (auto& v : iov) {
        // A stream takes a short write: copy what fits and report that many bytes.
        if (stream && total + v.iov_len > k_max_send_bytes) v.iov_len = k_max_send_bytes - total;
        total += v.iov_len;
    }
    if (total > k_max_send_bytes) {
        // Datagrams to an explicit destination are at most 64 KiB; a bigger one is refused, not split.
        call.immediate_errno = EMSGSIZE;
        return {};
    }
    call.payload.resize(total);
    std::size_t off = 0;
    for (const auto& v : iov) {
        if (v.iov_len && !read_remote(pid, reinterpret_cast<std::uint64_t>(v.iov_base), call.payload.data() + off, v.iov_len)) {
            call.immediate_errno = EFAULT;
            return {};
        }
        off += v.iov_len;
    }
    return {};
}

// Copies a msghdr's payload (bounded; a stream may be cut short) and control
// data out of the agent, once.
Status read_message_body(HeldCall& call, pid_t pid, const msghdr& msg, bool stream) {
    if (auto r = read_iovecs(call, pid, reinterpret_cast<std::uint64_t>(msg.msg_iov), msg.msg_iovlen, stream);
        !r || call.immediate_errno)
        return r;
    if (msg.msg_controllen) {
        if (msg.msg_controllen > k_max_control) {
            call.immediate_errno = ENOBUFS;
            return {};
        }
        call.control.resize(msg.msg_controllen);
        if (!read_remote(pid, reinterpret_cast<std::uint64_t>(msg.msg_control), call.control.data(),
                         call.control.size())) {
            call.immediate_errno = EFAULT;
            return {};
        }
    }
    return {};
}

Result<UniqueFd> take_agent_fd(pid_t tgid, int fd);

// A send with no destination is never CONTINUEd: another agent thread could
// add a destination to the msghdr, or swap another socket onto the fd number,
// after the check. The daemon sends the payload itself on the socket it took,
// to the peer that socket is connected to (decided when it connected).
Status decode_destinationless_send(HeldCall& call, pid_t pid, const msghdr& msg) {
    auto sock = take_agent_fd(call.tgid, call.sockfd);
    if (!sock) {
        call.immediate_errno = EBADF;
        return {};
    }
    int domain = 0, type = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(sock->get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
        call.immediate_errno = errno == ENOTSOCK ? ENOTSOCK : EBADF;
        return {};
    }
    len = sizeof type;
    ::getsockopt(sock->get(), SOL_SOCKET, SO_TYPE, &type, &len);
    call.socket_domain = domain;
    call.socket = std::move(*sock);  // performed on this very socket, not on whatever fd N is later
    call.address_len = 0;
    call.allow_without_policy = "connected-peer";
    call.object = "send to the connected peer";
    call.query.action = policy::Action::connect;
    return read_message_body(call, pid, msg, type == SOCK_STREAM);
}

Status decode_send(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::send;
    const auto* a = n.data.args;
    call.sockfd = static_cast<int>(a[0]);
    if (n.data.nr == SYS_sendmmsg) {
        // Each message may carry its own destination in memory the agent can
        // rewrite; until they are emulated one by one, only destination-less
        // batches (connected sockets, as glibc's resolver uses) go through.
        std::size_t vlen = std::min<std::uint64_t>(a[2], 1024);
        std::vector<mmsghdr> msgs(vlen);
        if (vlen && !read_remote(n.pid, a[1], msgs.data(), vlen * sizeof(mmsghdr))) {
            call.immediate_errno = EFAULT;
            return {};
        }
        for (const auto& m : msgs)
            if (m.msg_hdr.msg_name) {
                call.object = "sendmmsg with per-message destinations (unsupported)";
                call.query.action = policy::Action::connect;
                call.immediate_errno = EOPNOTSUPP;
                return {};
            }
        if (msgs.empty()) {
            call.immediate_continue = true;
            return {};
        }
        // Emulated, only the first message is sent and 1 returned: a short
        // count is sendmmsg's documented contract, and callers (glibc's
        // resolver among them) send the rest again.
        call.send_flags = static_cast<int>(a[3]);
        call.mmsg_len_address = a[1] + offsetof(mmsghdr, msg_len);
        return decode_destinationless_send(call, n.pid, msgs[0].msg_hdr);
    }
    std::uint64_t name_ptr = 0, name_len = 0;
    if (n.data.nr == SYS_sendto) {
        name_ptr = a[4];
        name_len = a[5];
        call.send_flags = static_cast<int>(a[3]);
        if (a[2] > k_max_send_bytes) {
            call.immediate_errno = EMSGSIZE;
            return {};
        }
        call.payload.resize(a[2]);
        if (a[2] && !read_remote(n.pid, a[1], call.payload.data(), a[2])) {
            call.immediate_errno = EFAULT;
            return {};
        }
    } else {
        msghdr msg{};
        if (!read_remote(n.pid, a[1], &msg, sizeof msg)) {
            call.immediate_errno = EFAULT;
            return {};
        }
        if (!msg.msg_name) {
            call.send_flags = static_cast<int>(a[2]);
            return decode_destinationless_send(call, n.pid, msg);
        }
        name_ptr = reinterpret_cast<std::uint64_t>(msg.msg_name);
        name_len = msg.msg_namelen;
        call.send_flags = static_cast<int>(a[2]);
        if (auto r = read_message_body(call, n.pid, msg, false); !r || call.immediate_errno) return r;
    }
    if (name_len > sizeof(sockaddr_storage) || name_len < sizeof(sa_family_t)) {
        call.immediate_errno = EINVAL;
        return {};
    }
    call.address_len = static_cast<socklen_t>(name_len);
    if (!read_remote(n.pid, name_ptr, &call.address, name_len)) {
        call.immediate_errno = EFAULT;
        return {};
    }
    return decode_destination(call, agent, root_fd);
}

Status decode_exec(HeldCall& call, const seccomp_notif& n, const AgentContext& agent, int root_fd) {
    call.kind = CallKind::exec;
    call.query.action = policy::Action::exec;
    const auto* a = n.data.args;
    long dirfd = AT_FDCWD;
    std::uint64_t path_ptr = a[0], argv_ptr = a[1];
    int flags = 0;
    if (n.data.nr == SYS_execveat) {
        dirfd = static_cast<int>(a[0]);
        path_ptr = a[1];
        argv_ptr = a[2];
        flags = static_cast<int>(a[4]);
        if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) {
            call.immediate_errno = EINVAL;
            return {};
        }
    }
    auto path = read_remote_string(n.pid, path_ptr, k_max_path - 1);
    if (!path) {
        call.immediate_errno = path.error().code;
        return {};
    }
    // argv and envp alike: read once, bounded; a bad pointer is the agent's EFAULT.
    auto read_strings = [&](std::uint64_t ptr, std::vector<std::string>& items, bool& truncated) {
        if (ptr == 0) return true;
        auto array = read_remote_string_array(n.pid, ptr, k_max_argv_items, k_max_argv_bytes);
        if (!array) {
            call.immediate_errno = array.error().code;
            return false;
        }
        items = std::move(array->items);
        truncated = array->truncated;
        return true;
    };
    const std::uint64_t envp_ptr = n.data.nr == SYS_execveat ? a[3] : a[2];
    if (!read_strings(argv_ptr, call.argv, call.argv_truncated) ||
        !read_strings(envp_ptr, call.envp, call.envp_truncated))
        return {};

    auto started = start_for(call, *path, dirfd);
    if (!started) return {};
    UniqueFd start = std::move(*started);
    if (path->empty()) {
        if (!(flags & AT_EMPTY_PATH)) {
            call.immediate_errno = ENOENT;
            return {};
        }
        // fexecve: the object is the fd itself.
        call.target.object = std::move(start);
        call.target.exists = true;
        ::fstat(call.target.object.get(), &call.target.st);
        auto name = fd_path(call.target.object.get());
        call.target.policy_path = name ? *name : std::string("fd");
        call.target.anonymous = !name || !name->starts_with('/');
    } else {
        ResolveRequest req = request_for(call, agent, root_fd, start, *path);
        req.follow_final = !(flags & AT_SYMLINK_NOFOLLOW);
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return std::unexpected(creds.error());
        auto resolved = resolve_path(req);
        if (!resolved) {
            // execvp walks $PATH through misses; each miss is the kernel's answer, not a decision.
            call.immediate_errno = resolved.error().code;
            return {};
        }
        call.target = std::move(*resolved);
    }
    if (S_ISLNK(call.target.st.st_mode)) call.immediate_errno = ELOOP;
    else if (!S_ISREG(call.target.st.st_mode)) call.immediate_errno = EACCES;
    call.exec_filename = kernel_exec_filename(*path, static_cast<int>(dirfd));
    call.query.path = call.target.policy_path;
    call.object = call.target.policy_path + " [" + quote_argv(call.argv, call.argv_truncated) + "]";
    return {};
}

Status send_response(int listener_fd, std::uint64_t id, long long val, int error, unsigned flags) {
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.val = val;
    resp.error = error;
    resp.flags = flags;
    if (::ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0)
        return common::fail_errno("SECCOMP_IOCTL_NOTIF_SEND");
    return {};
}

Result<UniqueFd> take_agent_fd(pid_t tgid, int fd) {
    thread_identity::act_as_daemon();  // pidfd_getfd: CAP_SYS_PTRACE over another user's process
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tgid, 0)));
    if (!pidfd) return common::fail_errno("pidfd_open");
    UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    if (!copy) return common::fail_errno("pidfd_getfd");
    return copy;
}

// The destination the daemon connects/sends to: IP addresses as checked; unix
// paths through the O_PATH fd of the socket inode that was checked, so a
// renamed or swapped socket file cannot redirect the call.
void destination_for(const HeldCall& call, sockaddr_storage& out, socklen_t& len) {
    out = call.address;
    len = call.address_len;
    if (call.address.ss_family == AF_UNIX && call.target.object) {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        int n = std::snprintf(un.sun_path, sizeof un.sun_path, "/proc/self/fd/%d", call.target.object.get());
        std::memcpy(&out, &un, sizeof un);
        len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + static_cast<std::size_t>(n) + 1);
    }
}

// SCM_RIGHTS carries agent fd numbers and SCM_CREDENTIALS claims an identity;
// both are rewritten or checked so the daemon never lends the agent its own.
Result<std::vector<char>> translate_control(const HeldCall& call, std::vector<UniqueFd>& held,
                                            const AgentContext& agent) {
    std::vector<char> out(call.control);
    if (out.empty()) return out;
    msghdr msg{};
    msg.msg_control = out.data();
    msg.msg_controllen = out.size();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int* fds = reinterpret_cast<int*>(CMSG_DATA(c));
            for (std::size_t i = 0; i < count; ++i) {
                auto copy = take_agent_fd(call.tgid, fds[i]);
                if (!copy) return fail(EBADF, "SCM_RIGHTS fd not open in the agent");
                fds[i] = copy->get();
                held.push_back(std::move(*copy));
            }
        } else if (c->cmsg_type == SCM_CREDENTIALS) {
            ucred cred{};
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            if (cred.pid != call.tgid || cred.uid != agent.creds.uid || cred.gid != agent.creds.gid)
                return fail(EPERM, "SCM_CREDENTIALS other than the agent's own");
        }
    }
    return out;
}

}  // namespace

// What the kernel will load for an exec of `call.target` and the argv it will
// lay out, following "#!" lines as binfmt_script does (exec_image.hpp). The
// head of each file is read as the daemon: the kernel reads it whatever the
// agent's read permission; interpreters are resolved as the agent, from its
// cwd, as open_exec() does. Where that stops short (an interpreter missing,
// a head unreadable), the chain so far is what is expected, with
// `incomplete` saying why: the kernel then fails the exec with its own errno
// where it fails too, and nothing it could load instead matches the chain's
// last file (a script), so the guard stops it.
ExecImage resolve_exec_image(const HeldCall& call, const AgentContext& agent) {
    ExecImage image;
    image.argv = call.argv;
    image.argv_complete = !call.argv_truncated;
    std::string filename = call.exec_filename;
    int current = call.target.object.get();
    image.chain.push_back({call.target.st.st_dev, call.target.st.st_ino});
    auto stop = [&](const std::string& why) {
        image.incomplete = why;
        return image;
    };
    thread_identity::act_as_daemon();
    UniqueFd own_root;
    int root_fd = agent.root_fd;
    if (root_fd < 0) {
        own_root = open_proc_entry(call.tid, "root");
        if (!own_root) return stop(std::string("opening agent root: ") + std::strerror(errno));
        root_fd = own_root.get();
    }
    UniqueFd interpreter;
    for (int depth = 0; depth < k_max_interpreter_depth; ++depth) {
        thread_identity::act_as_daemon();
        char magic[64];
        std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", current);
        // O_NONBLOCK: a lease on the file must not stall the loop.
        UniqueFd file(::open(magic, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
        char head[k_shebang_bytes];
        ssize_t got = file ? ::pread(file.get(), head, sizeof head, 0) : -1;
        if (got < 0) return stop(std::string("reading the head of the executable: ") + std::strerror(errno));
        auto shebang = parse_shebang(std::string_view(head, static_cast<std::size_t>(got)));
        if (!shebang) return image;
        image.argv = script_argv(*shebang, filename, image.argv);
        filename = shebang->interpreter;
        UniqueFd start;
        if (shebang->interpreter.front() != '/') {
            auto cwd = start_directory(call.tid, AT_FDCWD);
            if (!cwd) return stop(cwd.error().to_string());
            start = std::move(*cwd);
        }
        ResolveRequest req = request_for(call, agent, root_fd, start, shebang->interpreter);
        req.follow_final = true;
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return stop(creds.error().to_string());
        auto resolved = resolve_path(req);
        if (!resolved) return stop(resolved.error().wrap("resolving interpreter").to_string());
        if (!S_ISREG(resolved->st.st_mode)) return stop("interpreter is not a regular file");
        interpreter = std::move(resolved->object);
        current = interpreter.get();
        image.chain.push_back({resolved->st.st_dev, resolved->st.st_ino});
    }
    return stop("interpreters nested more than the kernel allows");
}

Result<UniqueFd> reopen_as_agent(const HeldCall& call, const AgentContext& agent, int flags) {
    if (!call.target.exists || !call.target.object) return fail(ENOENT, "nothing to reopen");
    auto creds = ScopedCredentials::assume(agent.creds);
    if (!creds) return std::unexpected(creds.error());
    char magic[64];
    std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", call.target.object.get());
    UniqueFd opened(::open(magic, (flags | O_CLOEXEC | O_NOCTTY) & ~(O_CREAT | O_EXCL | O_NOFOLLOW | O_PATH), 0));
    if (!opened) return common::fail_errno("open as the agent");
    return opened;
}

Result<UniqueFd> sealed_memfd(std::string_view name, std::string_view content) {
    std::string label(name.substr(0, 200));
    UniqueFd memfd(::memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!memfd) return common::fail_errno("memfd_create");
    for (std::size_t written = 0; written < content.size();) {
        ssize_t n = ::write(memfd.get(), content.data() + written, content.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return common::fail_errno("writing the masked copy");
        written += static_cast<std::size_t>(n);
    }
    if (::fcntl(memfd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return common::fail_errno("sealing the masked copy");
    // A read-only description of its own: the agent's offset and flags are
    // not shared with this one, and it cannot be reopened for writing.
    char magic[64];
    std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", memfd.get());
    UniqueFd read_only(::open(magic, O_RDONLY | O_CLOEXEC));
    if (!read_only) return common::fail_errno("reopening the masked copy read-only");
    return read_only;
}

namespace {

Result<long> inject_fd(HeldCall& call, const UniqueFd& opened) {
    seccomp_notif_addfd addfd{};
    addfd.id = call.id;
    addfd.flags = SECCOMP_ADDFD_FLAG_SEND;
    addfd.srcfd = static_cast<__u32>(opened.get());
    addfd.newfd_flags = (call.open_flags & O_CLOEXEC) ? O_CLOEXEC : 0;
    int remote = ::ioctl(call.listener_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
    if (remote < 0) {
        int err = errno;
        // ENOENT: the call is gone (task killed). Anything else (EMFILE in the
        // agent...) must still be answered, or the agent would wait forever.
        if (err != ENOENT) (void)answer_error(call.listener_fd, call.id, err == EBADF ? EIO : err);
        return common::fail(err, "SECCOMP_IOCTL_NOTIF_ADDFD");
    }
    return remote;
}

Result<long> perform_open(HeldCall& call, const AgentContext& agent) {
    if (call.prepared) return inject_fd(call, call.prepared);
    UniqueFd opened;
    const int flags = call.open_flags;
    const bool tmpfile = (flags & __O_TMPFILE) == __O_TMPFILE;
    {
        auto creds = ScopedCredentials::assume(agent.creds);
        if (!creds) return std::unexpected(creds.error());
        if (!call.target.exists) {
            mode_t mode = call.open_mode & ~umask_of(call.tid);
            // O_EXCL|O_NOFOLLOW: create exactly the name that was decided on.
            int create_flags = (flags | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY) & ~O_PATH;
            opened.reset(::openat(call.target.parent.get(), call.target.final_name.c_str(), create_flags, mode));
            if (!opened && errno == EEXIST && !(flags & O_EXCL)) {
                // Someone created it since the lookup. The decided name still
                // stands; a symlink planted there is refused (ELOOP) rather than followed.
                opened.reset(::openat(call.target.parent.get(), call.target.final_name.c_str(),
                                      (flags | O_NOFOLLOW | O_CLOEXEC) & ~(O_CREAT | O_EXCL), 0));
                if (!opened && errno == ELOOP) errno = EACCES;
            }
        } else if (flags & O_PATH) {
            // ADDFD cannot inject an O_PATH file (the kernel's fget refuses
            // them), so the kernel opens it again, re-reading the path: a racing
            // thread can get an O_PATH fd on another object. Its flags cannot
            // change: only open/openat/creat get here, with flags in registers
            // (openat2 keeps them in memory and is answered ENOSYS in open_args).
            // Such an fd reads no data, and every way to get data from it
            // (reopen via /proc/self/fd, openat relative to it, execveat,
            // linkat via /proc/self/fd) comes back through this filter and is
            // decided on its object; fstat shows its metadata.
            if (auto r = answer_continue(call.listener_fd, call.id); !r) return std::unexpected(r.error());
            return 0;
        } else {
            char magic[64];
            std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", call.target.object.get());
            // O_NOCTTY always: a tty opened by a session-leader daemon would become *its* terminal.
            int reopen_flags = (flags | O_CLOEXEC | O_NOCTTY) & ~(O_CREAT | O_EXCL | O_NOFOLLOW);
            std::string agent_tty;
            if (S_ISCHR(call.target.st.st_mode) && call.target.st.st_rdev == makedev(5, 0)) {
                // /dev/tty means "my controlling terminal": the agent's, not the daemon's.
                agent_tty = controlling_tty_of(call.tgid);
                if (agent_tty.empty()) {
                    errno = ENXIO;
                    goto open_failed;
                }
                std::snprintf(magic, sizeof magic, "%s", agent_tty.c_str());
            }
            mode_t mode = tmpfile ? (call.open_mode & ~umask_of(call.tid)) : 0;
            // O_NONBLOCK: a lease on the file (the agent can take one on its own
            // files) would otherwise hold this thread up to lease-break-time;
            // with it the open fails EWOULDBLOCK and is retried off the event loop.
            const bool lease_safe = call.nonblocking_open_first && !(flags & O_NONBLOCK);
            opened.reset(::open(magic, reopen_flags | (lease_safe ? O_NONBLOCK : 0), mode));
            if (!opened && lease_safe && errno == EWOULDBLOCK) {
                call.nonblocking_open_first = false;
                return fail(EWOULDBLOCK, "open would wait for a lease break");
            }
            // F_SETFL takes only the status flags, and these are the ones the
            // open just applied (O_ASYNC left out: open(2) ignores it, F_SETFL would arm it).
            if (opened && lease_safe) ::fcntl(opened.get(), F_SETFL, reopen_flags & ~(O_NONBLOCK | O_ASYNC));
        }
    }
open_failed:
    if (!opened) {
        int err = errno;
        if (auto r = answer_error(call.listener_fd, call.id, err); !r) return std::unexpected(r.error());
        return -static_cast<long>(err);
    }
    return inject_fd(call, opened);
}

struct SocketOperation {
    int sock = -1;
    const sockaddr* dest = nullptr;
    socklen_t dest_len = 0;
    bool send = false;
    msghdr* msg = nullptr;
    int flags = 0;
};

long socket_operation(const void* context) {
    const auto* op = static_cast<const SocketOperation*>(context);
    if (!op->send) return ::connect(op->sock, op->dest, op->dest_len) == 0 ? 0 : -errno;
    ssize_t n = ::sendmsg(op->sock, op->msg, op->flags);
    return n >= 0 ? static_cast<long>(n) : -errno;
}

Result<long> perform_socket_call(HeldCall& call, const AgentContext& agent) {
    auto sock = call.socket ? Result<UniqueFd>(std::move(call.socket)) : take_agent_fd(call.tgid, call.sockfd);
    if (!sock) {
        int err = sock.error().code;
        if (auto r = answer_error(call.listener_fd, call.id, err); !r) return std::unexpected(r.error());
        return -static_cast<long>(err);
    }
    sockaddr_storage dest{};
    socklen_t dest_len = 0;
    destination_for(call, dest, dest_len);
    long result = 0;
    {
        std::vector<UniqueFd> passed_fds;
        std::vector<char> control;
        if (call.kind == CallKind::send) {
            auto translated = translate_control(call, passed_fds, agent);
            if (!translated) {
                int err = translated.error().code;
                if (auto r = answer_error(call.listener_fd, call.id, err); !r) return std::unexpected(r.error());
                return -static_cast<long>(err);
            }
            control = std::move(*translated);
        }
        iovec iov{call.payload.data(), call.payload.size()};
        msghdr msg{};
        msg.msg_name = dest_len ? &dest : nullptr;
        msg.msg_namelen = dest_len;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.empty() ? nullptr : control.data();
        msg.msg_controllen = control.size();
        SocketOperation op{sock->get(), reinterpret_cast<const sockaddr*>(&dest), dest_len,
                           call.kind == CallKind::send, &msg, call.send_flags | MSG_NOSIGNAL};
        if (call.address.ss_family == AF_UNIX || call.socket_domain == AF_UNIX) {
            std::vector<int> keep = {sock->get()};
            if (call.target.object) keep.push_back(call.target.object.get());
            for (const auto& fd : passed_fds) keep.push_back(fd.get());
            auto r = run_in_agent_process(agent.creds, agent.cgroup_procs, socket_operation, &op, keep);
            if (!r) return std::unexpected(r.error());
            result = *r;
        } else {
            // No identity travels with an IP connect; the daemon's thread, acting
            // with the agent's credentials, is enough and avoids a fork.
            auto creds = ScopedCredentials::assume(agent.creds);
            if (!creds) return std::unexpected(creds.error());
            result = socket_operation(&op);
        }
        // The agent asked without MSG_NOSIGNAL: it would have got SIGPIPE from the kernel.
        if (call.kind == CallKind::send && result == -EPIPE && !(call.send_flags & MSG_NOSIGNAL))
            ::syscall(SYS_tgkill, call.tgid, call.tid, SIGPIPE);
    }
    if (call.mmsg_len_address && result >= 0) {
        // sendmmsg reports each message's length in the caller's array.
        unsigned int sent_len = static_cast<unsigned int>(result);
        iovec local{&sent_len, sizeof sent_len};
        iovec remote{reinterpret_cast<void*>(call.mmsg_len_address), sizeof sent_len};
        thread_identity::act_as_daemon();
        result = ::process_vm_writev(call.tgid, &local, 1, &remote, 1, 0) == sizeof sent_len ? 1 : -EFAULT;
    }
    Status sent = result >= 0 ? send_response(call.listener_fd, call.id, result, 0, 0)
                              : send_response(call.listener_fd, call.id, 0, static_cast<int>(result), 0);
    if (!sent) return std::unexpected(sent.error());
    return result;
}

}  // namespace

unsigned access_for_open_flags(int flags) {
    unsigned access = 0;
    switch (flags & O_ACCMODE) {
        case O_RDONLY: access = policy::access_read; break;
        case O_WRONLY: access = policy::access_write; break;
        default: access = policy::access_read | policy::access_write; break;
    }
    if (flags & O_PATH) access = policy::access_read;
    if (flags & O_TRUNC) access |= policy::access_write;
    if (flags & O_CREAT) access |= policy::access_create;
    if ((flags & __O_TMPFILE) == __O_TMPFILE) access |= policy::access_create | policy::access_write;
    return access;
}

std::string describe_address(const sockaddr_storage& address, socklen_t len) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (address.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
        ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return std::string(buf) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (address.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    if (address.ss_family == AF_UNIX) {
        bool abstract = false;
        auto name = unix_path_of(address, len, &abstract);
        if (!name) return "unix:(unnamed)";
        return std::string("unix:") + (abstract ? "@" : "") + *name;
    }
    if (address.ss_family == AF_UNSPEC) return "unspec";
    return "family:" + std::to_string(address.ss_family);
}

bool notification_valid(int listener_fd, std::uint64_t id) {
    return ::ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

Status answer_error(int listener_fd, std::uint64_t id, int error_number) {
    return send_response(listener_fd, id, 0, -error_number, 0);
}

Status answer_value(int listener_fd, std::uint64_t id, long long value) {
    return send_response(listener_fd, id, value, 0, 0);
}

Status answer_continue(int listener_fd, std::uint64_t id) {
    return send_response(listener_fd, id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

Result<HeldCall> decode_call(int listener_fd, const seccomp_notif& n, const AgentContext& agent) {
    HeldCall call;
    call.listener_fd = listener_fd;
    call.id = n.id;
    call.tid = static_cast<pid_t>(n.pid);
    call.syscall_nr = n.data.nr;
    if (n.data.arch != AUDIT_ARCH_X86_64) return fail(ENOSYS, "foreign architecture");  // the filter kills these first
    // Everything below reads agent memory and /proc, as root or as the same
    // capability-less root a root agent is; an event loop that restores
    // lazily may still wear the previous call's agent identity.
    thread_identity::act_as_reader_of(agent.creds);
    // tgkill(tid, tid, 0) succeeds only when tid leads its own thread group:
    // one syscall for the common case, /proc for calls from other threads.
    if (::syscall(SYS_tgkill, call.tid, call.tid, 0) == 0)
        call.tgid = call.tid;
    else
        call.tgid = thread_group_of(call.tid);

    UniqueFd own_root;
    int root = agent.root_fd;
    if (root < 0) {
        own_root = open_proc_entry(call.tid, "root");
        if (!own_root) return common::fail_errno("opening agent root");
        root = own_root.get();
    }
    Status decoded;
    switch (n.data.nr) {
        case SYS_open:
        case SYS_openat:
        case SYS_openat2:
        case SYS_creat: decoded = decode_open(call, n, agent, root); break;
        case SYS_connect: decoded = decode_connect(call, n, agent, root); break;
        case SYS_sendto:
        case SYS_sendmsg:
        case SYS_sendmmsg: decoded = decode_send(call, n, agent, root); break;
        case SYS_execve:
        case SYS_execveat: decoded = decode_exec(call, n, agent, root); break;
        case SYS_link:
        case SYS_linkat:
        case SYS_rename:
        case SYS_renameat:
        case SYS_renameat2: decoded = decode_link(call, n, agent, root); break;
        default: return fail(ENOSYS, "unexpected syscall " + std::to_string(n.data.nr));
    }
    if (!decoded) return std::unexpected(decoded.error());
    // Everything read above came from a task that may have died and had its id
    // reused; a still-valid notification proves it was the held task.
    if (!notification_valid(listener_fd, n.id)) return fail(ENOENT, "notification no longer valid");
    return call;
}

bool may_block(const HeldCall& call) {
    if (call.kind == CallKind::connect || call.kind == CallKind::send) return true;
    // A link or rename waits for any delegation on the inodes it touches to be broken.
    if (call.kind == CallKind::link || call.kind == CallKind::rename) return true;
    if (call.kind == CallKind::open && call.target.exists) {
        mode_t type = call.target.st.st_mode & S_IFMT;
        return type != S_IFREG && type != S_IFDIR && type != S_IFLNK;
    }
    return false;
}

Result<long> perform_allowed(HeldCall& call, const AgentContext& agent) {
    switch (call.kind) {
        case CallKind::open: return perform_open(call, agent);
        case CallKind::connect:
        case CallKind::send: return perform_socket_call(call, agent);
        case CallKind::exec:
            if (auto r = answer_continue(call.listener_fd, call.id); !r) return std::unexpected(r.error());
            return 0;
        case CallKind::link:
        case CallKind::rename: return perform_link(call, agent);
    }
    return fail(EINVAL, "unknown call kind");
}

}  // namespace airlock::supervisor
