// The kernel layer's session guard (kernel/session_guard.hpp), driven
// directly: a cgroup registered as a session and a child process in it under
// a seccomp filter that allows everything, which stands for "a syscall the
// supervisor's filter missed" (every call reaches the kernel unsupervised).
// What the tracepoint must do is tested wherever tp_btf loads; what the LSM
// programs must do wherever BPF LSM attaches (tests/vm boots a kernel where
// it does), and is skipped with the reason elsewhere.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include "daemon/cgroup.hpp"
#include "harness.hpp"
#include "kernel/probe.hpp"
#include "kernel/session_guard.hpp"

namespace airlock::kernel {
namespace {

// Child exit codes: the errno of a refused call is reported as 100 + errno.
constexpr int k_child_ok = 0;
constexpr int k_child_errno_base = 100;

// In the test body: GTEST_SKIP returns from the function it is written in.
#define REQUIRE_BPF_LSM()                                                                           \
    do {                                                                                            \
        if (!features_.bpf_lsm.available)                                                           \
            GTEST_SKIP() << "BPF LSM not attachable here (tests/vm boots a kernel where it is): "   \
                         << features_.bpf_lsm.error;                                                \
        ASSERT_TRUE(guard_->lsm_attached());                                                        \
    } while (0)

class KernelTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        features_ = probe_features();
        if (!features_.tp_btf.available) GTEST_SKIP() << "tp_btf not loadable here: " << features_.tp_btf.error;
        if (::access(k_static, X_OK) != 0) GTEST_SKIP() << k_static << " is missing (apt-get install busybox-static)";
        auto guard = SessionGuard::load(features_.bpf_lsm.available, features_.cgroup_sock_addr.available);
        ASSERT_TRUE(guard) << guard.error().to_string();
        guard_.emplace(std::move(*guard));
        auto mount = daemon::find_cgroup2_mount();
        ASSERT_TRUE(mount) << mount.error().to_string();
        cgroup_ = *mount + "/airlock-kernel-test-" + std::to_string(::getpid());
        ASSERT_EQ(::mkdir(cgroup_.c_str(), 0755), 0) << std::strerror(errno);
        if (features_.cgroup_sock_addr.available) {
            int fd = ::open(cgroup_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            ASSERT_GE(fd, 0);
            auto attached = guard_->attach_cgroup(fd);
            ::close(fd);
            ASSERT_TRUE(attached) << attached.error().to_string();
        }
        struct stat st {};
        ASSERT_EQ(::stat(cgroup_.c_str(), &st), 0);
        ASSERT_TRUE(guard_->add_session(st.st_ino, 77));
    }
    void TearDown() override {
        guard_.reset();
        if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());
    }

    // Forks a child that joins the session cgroup, installs an allow-all
    // filter (unless `supervised` is false), waits until the parent has set
    // up what `prepare` needs for its pid, then runs `body` and exits with
    // what it returns. Returns the child's wait status.
    int run_child(const std::function<int()>& body, const std::function<void(pid_t)>& prepare = nullptr,
                  bool supervised = true) {
        int go[2];
        if (::pipe2(go, O_CLOEXEC) != 0) return -1;
        pid_t child = ::fork();
        if (child == 0) {
            ::close(go[1]);
            std::string procs = cgroup_ + "/cgroup.procs";
            int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(90);
            ::close(fd);
            if (supervised) {
                sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
                sock_fprog prog{1, allow};
                if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
                    ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
                    ::_exit(91);
            }
            char c;
            if (::read(go[0], &c, 1) != 1) ::_exit(92);
            ::_exit(body());
        }
        ::close(go[0]);
        if (prepare) prepare(child);
        char c = 1;
        (void)!::write(go[1], &c, 1);
        ::close(go[1]);
        int status = 0;
        ::waitpid(child, &status, 0);
        return status;
    }

    // busybox-static: an exec'd program that needs no shared library, since
    // its loader's opens would be "opens past the supervisor" under BPF LSM
    // here (a real session's are emulated by the daemon).
    static constexpr const char* k_static = "/bin/busybox";

    static int exec_static(const char* arg = nullptr) {
        char prog[] = "busybox", applet[] = "true";
        char* argv[] = {prog, applet, const_cast<char*>(arg), nullptr};
        ::execv(k_static, argv);
        return k_child_errno_base + errno;
    }

    ExecExpectation expect_static(const std::string& argv_bytes) {
        struct stat st {};
        EXPECT_EQ(::stat(k_static, &st), 0);
        ExecExpectation x;
        x.session = 77;
        x.chain = {{st.st_dev, st.st_ino}};
        x.argv_bytes = argv_bytes;
        return x;
    }

    Features features_;
    std::optional<SessionGuard> guard_;
    std::string cgroup_;
};

bool killed(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

TEST_F(KernelTest, AnApprovedExecRuns) {
    int status = run_child([] { return exec_static(); }, [&](pid_t pid) {
        ASSERT_TRUE(guard_->expect(pid, expect_static(std::string("busybox\0true\0", 13))));
    });
    EXPECT_EQ(exit_code(status), 0) << "status " << status;
}

TEST_F(KernelTest, AnExecNobodyApprovedNeverRuns) {
    int status = run_child([] { return exec_static(); });
    if (guard_->lsm_attached())
        EXPECT_EQ(exit_code(status), k_child_errno_base + EPERM) << "BPF LSM refuses it before it loads";
    else
        EXPECT_TRUE(killed(status)) << "the tracepoint kills it before its first instruction; status " << status;
}

TEST_F(KernelTest, AnExecOfAnotherFileThanApprovedNeverRuns) {
    struct stat other {};
    ASSERT_EQ(::stat("/bin/true", &other), 0);
    int status = run_child([] { return exec_static(); }, [&](pid_t pid) {
        auto x = expect_static(std::string("busybox\0true\0", 13));
        x.chain = {{other.st_dev, other.st_ino}};
        ASSERT_TRUE(guard_->expect(pid, x));
    });
    if (guard_->lsm_attached())
        EXPECT_EQ(exit_code(status), k_child_errno_base + EPERM);
    else
        EXPECT_TRUE(killed(status)) << "status " << status;
}

TEST_F(KernelTest, AnExecWithOtherArgumentsThanApprovedIsKilled) {
    int status = run_child([] { return exec_static("rewritten"); }, [&](pid_t pid) {
        ASSERT_TRUE(guard_->expect(pid, expect_static(std::string("busybox\0true\0ok\0", 16))));
    });
    EXPECT_TRUE(killed(status)) << "argv is only on the new stack: the tracepoint's check; status " << status;
}

TEST_F(KernelTest, AnApprovalServesOneExec) {
    int status = run_child(
        [] {
            // The first exec (approved) runs a shell that execs again, unapproved.
            char prog[] = "busybox", sh[] = "sh", c[] = "-c", cmd[] = "exec /bin/busybox true";
            char* argv[] = {prog, sh, c, cmd, nullptr};
            ::execv(k_static, argv);
            return k_child_errno_base + errno;
        },
        [&](pid_t pid) {
            ASSERT_TRUE(
                guard_->expect(pid, expect_static(std::string("busybox\0sh\0-c\0exec /bin/busybox true\0", 37))));
        });
    if (guard_->lsm_attached())
        EXPECT_EQ(exit_code(status), 126) << "the shell reports the refused exec; status " << status;
    else
        EXPECT_TRUE(killed(status)) << "status " << status;
}

TEST_F(KernelTest, ProcessesOutsideSessionsAreUntouched) {
    pid_t child = ::fork();
    if (child == 0) ::_exit(exec_static());
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(exit_code(status), 0);
    int fd = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    if (fd >= 0) ::close(fd);
}

TEST_F(KernelTest, AnOpenPastTheSupervisorIsRefusedByBpfLsm) {
    REQUIRE_BPF_LSM();
    auto open_something = [] {
        int fd = ::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return k_child_errno_base + errno;
        ::close(fd);
        return k_child_ok;
    };
    EXPECT_EQ(exit_code(run_child(open_something)), k_child_errno_base + EPERM);
    // Before the filter (the launcher, between joining and installing it) opens are its own.
    EXPECT_EQ(exit_code(run_child(open_something, nullptr, false)), k_child_ok);
}

// BPF LSM's socket_connect/socket_sendmsg, or where it is not active the
// cgroup connect4/sendmsg4 programs, refuse it.
TEST_F(KernelTest, AConnectOrAddressedSendPastTheSupervisorIsRefused) {
    if (!features_.bpf_lsm.available && !guard_->cgroup_attached())
        GTEST_SKIP() << "neither BPF LSM (" << features_.bpf_lsm.error << ") nor cgroup sock_addr ("
                     << features_.cgroup_sock_addr.error << ") here";
    int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(server, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(server, 4), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    auto connect_it = [&] {
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return k_child_errno_base + errno;
        return k_child_ok;
    };
    EXPECT_EQ(exit_code(run_child(connect_it)), k_child_errno_base + EPERM);
    auto send_to = [&] {
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (::sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
            return k_child_errno_base + errno;
        return k_child_ok;
    };
    EXPECT_EQ(exit_code(run_child(send_to)), k_child_errno_base + EPERM);
    // A connected socket's sends carry no address: decided at connect.
    auto send_connected = [] {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 99;
        if (::write(pair[0], "x", 1) != 1) return k_child_errno_base + errno;
        return k_child_ok;
    };
    EXPECT_EQ(exit_code(run_child(send_connected)), k_child_ok);
    ::close(server);
}

}  // namespace
}  // namespace airlock::kernel
