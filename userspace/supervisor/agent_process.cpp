#include "supervisor/agent_process.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/unique_fd.hpp"

namespace airlock::supervisor {

namespace {

[[noreturn]] void child_exit_with(int pipe_fd, long result) {
    (void)!::write(pipe_fd, &result, sizeof result);
    ::_exit(0);
}

}  // namespace

common::Result<long> run_in_agent_process(const Credentials& creds, const std::string& cgroup_procs,
                                          AgentOperation operation, const void* context,
                                          std::span<const int> keep_fds) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return common::fail_errno("pipe for agent process");
    common::UniqueFd read_end(fds[0]), write_end(fds[1]);
    // Everything the child needs is prepared here: after fork only raw syscalls.
    const char* procs = cgroup_procs.c_str();
    const gid_t* groups = creds.groups.data();
    const std::size_t group_count = creds.groups.size();
    const uid_t uid = creds.uid;
    const gid_t gid = creds.gid;
    const int result_fd = write_end.get();
    std::vector<int> keep(keep_fds.begin(), keep_fds.end());
    keep.push_back(result_fd);
    std::sort(keep.begin(), keep.end());
    const int* keep_list = keep.data();
    const std::size_t keep_count = keep.size();

    // The child starts from this thread's credentials and needs root's to become the agent.
    thread_identity::act_as_daemon();
    pid_t pid = ::fork();
    if (pid < 0) return common::fail_errno("fork agent process");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        unsigned next = 3;
        for (std::size_t i = 0; i < keep_count; ++i) {
            unsigned k = static_cast<unsigned>(keep_list[i]);
            if (k > next) ::syscall(SYS_close_range, next, k - 1, 0);
            if (k + 1 > next) next = k + 1;
        }
        ::syscall(SYS_close_range, next, ~0U, 0);
        int procs_fd = ::open(procs, O_WRONLY | O_CLOEXEC);
        if (procs_fd < 0 || ::write(procs_fd, "0", 1) != 1) child_exit_with(result_fd, -EACCES);
        ::close(procs_fd);
        if (uid != 0) {
            if (::syscall(SYS_setgroups, group_count, groups) != 0 || ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
                ::syscall(SYS_setresuid, uid, uid, uid) != 0)
                child_exit_with(result_fd, -EACCES);
        } else {
            // A root agent has no capabilities (the launcher dropped them); neither does this stand-in.
            __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
            __user_cap_data_struct none[2] = {};
            if (::syscall(SYS_capset, &header, none) != 0) child_exit_with(result_fd, -EACCES);
        }
        ::prctl(PR_SET_DUMPABLE, 0);
        child_exit_with(result_fd, operation(context));
    }
    write_end.reset();
    long result = -EIO;
    ssize_t n;
    do {
        n = ::read(read_end.get(), &result, sizeof result);
    } while (n < 0 && errno == EINTR);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != sizeof result) return common::fail(EIO, "agent process died without a result");
    return result;
}

}  // namespace airlock::supervisor
