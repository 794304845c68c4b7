// The baseline a supervisor cannot beat: the same seccomp filter airlock
// installs, with a supervisor that answers every notification CONTINUE at
// once and decides nothing. usage: bare_notify CMD [ARGS...]
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "supervisor/seccomp_filter.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bare_notify CMD [ARGS...]\n");
        return 2;
    }
    auto program = airlock::supervisor::build_session_filter();
    if (!program) return 1;
    int ready[2], go[2];
    if (::pipe(ready) != 0 || ::pipe(go) != 0) return 1;
    pid_t child = ::fork();
    if (child == 0) {
        ::close(ready[0]);
        ::close(go[1]);
        ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        auto listener = airlock::supervisor::install_filter(*program);
        if (!listener) ::_exit(1);
        int fd = listener->release();
        // write() is not filtered: report the listener's number; the parent takes it with pidfd_getfd.
        (void)!::write(ready[1], &fd, sizeof fd);
        char taken;
        (void)!::read(go[0], &taken, 1);  // wait until the parent holds its copy
        ::close(fd);
        ::close(ready[1]);
        ::execvp(argv[1], argv + 1);
        ::_exit(127);
    }
    ::close(ready[1]);
    ::close(go[0]);
    int remote_fd = -1;
    if (::read(ready[0], &remote_fd, sizeof remote_fd) != sizeof remote_fd) return 1;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
    int listener = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, remote_fd, 0));
    if (listener < 0) {
        std::perror("pidfd_getfd");
        return 1;
    }
    (void)!::write(go[1], "g", 1);
    std::thread responder([listener] {
        for (;;) {
            seccomp_notif n{};
            if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
                if (errno == EINTR || errno == ENOENT) continue;
                return;
            }
            seccomp_notif_resp r{};
            r.id = n.id;
            r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
            ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
        }
    });
    responder.detach();
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
