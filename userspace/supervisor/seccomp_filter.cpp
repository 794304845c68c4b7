#include "supervisor/seccomp_filter.hpp"

#include <linux/seccomp.h>
#include <sched.h>
#include <sys/socket.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

namespace airlock::supervisor {
namespace {

using common::fail;
using common::fail_errno;
using common::Result;
using common::UniqueFd;

struct CtxDeleter {
    void operator()(void* ctx) const { seccomp_release(ctx); }
};

constexpr int k_notified[] = {
    SCMP_SYS(open),    SCMP_SYS(openat),  SCMP_SYS(openat2), SCMP_SYS(creat),
    SCMP_SYS(connect), SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg), SCMP_SYS(execve),
    SCMP_SYS(execveat),
    // A hard link or rename gives an object a name policy may treat differently.
    SCMP_SYS(link),    SCMP_SYS(linkat),  SCMP_SYS(rename),   SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
};

constexpr int k_refused[] = {
    SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
    SCMP_SYS(open_by_handle_at), SCMP_SYS(ptrace), SCMP_SYS(process_vm_writev),
    // Both reach into other processes of the same user outside the session:
    // another process's fds (an fd is an open the daemon never decided) and memory.
    SCMP_SYS(pidfd_getfd), SCMP_SYS(process_vm_readv),
    // Sampling and tracing reach other processes of the same user too.
    SCMP_SYS(perf_event_open), SCMP_SYS(bpf),
    SCMP_SYS(userfaultfd), SCMP_SYS(setns), SCMP_SYS(mount), SCMP_SYS(umount2),
    SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(fsopen), SCMP_SYS(fsmount),
    SCMP_SYS(fsconfig), SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(mount_setattr),
};

Result<void> add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned count = 0,
                 const scmp_arg_cmp* args = nullptr) {
    int rc = seccomp_rule_add_array(ctx, action, nr, count, args);
    if (rc < 0) return fail(-rc, "seccomp_rule_add for syscall " + std::to_string(nr));
    return {};
}

}  // namespace

bool is_notified_syscall(int nr) {
    if (nr == SCMP_SYS(sendto)) return true;
    for (int n : k_notified)
        if (n == nr) return true;
    return false;
}

Result<std::vector<sock_filter>> build_session_filter() {
    std::unique_ptr<void, CtxDeleter> ctx(seccomp_init(SCMP_ACT_ALLOW));
    if (!ctx) return fail(ENOMEM, "seccomp_init");
    // A 32-bit or x32 syscall would bypass every rule below (different numbers).
    if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0)
        return fail(-rc, "seccomp_attr_set(BADARCH)");

    for (int nr : k_notified)
        if (auto r = add(ctx.get(), SCMP_ACT_NOTIFY, nr); !r) return std::unexpected(r.error());
    // sendto without a destination goes to the connected peer the daemon already decided.
    scmp_arg_cmp has_dest = SCMP_A4(SCMP_CMP_NE, 0);
    if (auto r = add(ctx.get(), SCMP_ACT_NOTIFY, SCMP_SYS(sendto), 1, &has_dest); !r)
        return std::unexpected(r.error());

    for (int nr : k_refused)
        if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr); !r) return std::unexpected(r.error());
    if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3)); !r)
        return std::unexpected(r.error());
    // Packet and raw sockets carry their destination inside the payload (a
    // root agent's IP_HDRINCL header), past any sockaddr the daemon decides.
    scmp_arg_cmp packet_domain = SCMP_A0(SCMP_CMP_EQ, AF_PACKET);
    if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, &packet_domain); !r)
        return std::unexpected(r.error());
    scmp_arg_cmp raw_type = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW);
    if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, &raw_type); !r)
        return std::unexpected(r.error());
    // One rule per flag: a masked compare only matches when every masked bit is set.
    for (uint64_t flag : {uint64_t{CLONE_NEWNS}, uint64_t{CLONE_NEWUSER}}) {
        scmp_arg_cmp unshare_flag = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
        if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1, &unshare_flag); !r)
            return std::unexpected(r.error());
        // x86_64 clone(flags, ...): flags is the first argument.
        scmp_arg_cmp clone_flag = SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag);
        if (auto r = add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &clone_flag); !r)
            return std::unexpected(r.error());
    }

    // libseccomp 2.5 cannot set WAIT_KILLABLE_RECV itself, so export the program
    // and load it with seccomp(2) in install_filter().
    UniqueFd mem(::memfd_create("airlock-filter", MFD_CLOEXEC));
    if (!mem) return fail_errno("memfd_create for filter export");
    if (int rc = seccomp_export_bpf(ctx.get(), mem.get()); rc < 0)
        return fail(-rc, "seccomp_export_bpf");
    off_t size = ::lseek(mem.get(), 0, SEEK_END);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
        return fail(EINVAL, "exported filter has a bad size");
    std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(mem.get(), program.data(), static_cast<size_t>(size), 0) != size)
        return fail_errno("reading exported filter");
    return program;
}

Result<UniqueFd> install_filter(const std::vector<sock_filter>& program) {
    sock_fprog fprog{};
    fprog.len = static_cast<unsigned short>(program.size());
    fprog.filter = const_cast<sock_filter*>(program.data());
    unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    long fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    if (fd < 0 && errno == EINVAL) {
        // Kernel older than 5.19: signals may restart a held call; still correct
        // because ADDFD/SEND fail on a notification that is no longer valid.
        flags &= ~static_cast<unsigned long>(SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
        fd = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    }
    if (fd < 0) return fail_errno("seccomp(SET_MODE_FILTER, NEW_LISTENER)");
    return UniqueFd(static_cast<int>(fd));
}

}  // namespace airlock::supervisor
