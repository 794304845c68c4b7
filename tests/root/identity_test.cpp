// The per-thread identity the daemon wears when it opens files for an agent
// (supervisor/credentials.hpp): switched lazily, it must never lend one
// agent's groups to another, never keep root's capabilities for a root agent,
// and always come back to root when asked.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "harness.hpp"
#include "supervisor/credentials.hpp"
#include "supervisor/remote_memory.hpp"

namespace airlock::supervisor {
namespace {

namespace fs = std::filesystem;
constexpr uid_t k_nobody = 65534;
constexpr gid_t k_group = 4242;  // a group no test user has

uid_t thread_euid() {
    uid_t r = 0, e = 0, s = 0;
    ::syscall(SYS_getresuid, &r, &e, &s);
    return e;
}

int try_open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

class IdentityTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        dir_ = fs::temp_directory_path() / ("airlock-identity-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        ::chmod(dir_.c_str(), 0755);
        make("root-only", 0, 0, 0600);
        make("group-only", 0, k_group, 0060);
        make("other-owner", 1234, 1234, 0600);
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    void make(const std::string& name, uid_t uid, gid_t gid, mode_t mode) {
        std::string p = path(name);
        int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0);
        ::close(fd);
        ASSERT_EQ(::chown(p.c_str(), uid, gid), 0);
        ASSERT_EQ(::chmod(p.c_str(), mode), 0);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }
    // Credentials are per thread: each case runs on its own, so a failure
    // never leaves the test runner's thread wearing an agent identity.
    template <typename F>
    void on_thread(F f) {
        std::thread t([&] {
            f();
            thread_identity::act_as_daemon();
        });
        t.join();
    }
    fs::path dir_;
};

TEST_F(IdentityTest, AnAgentIdentityHasTheAgentsRightsAndRootComesBack) {
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {}}));
        EXPECT_EQ(thread_euid(), k_nobody);
        EXPECT_EQ(try_open(path("root-only")), EACCES);
        thread_identity::act_as_daemon();
        EXPECT_EQ(thread_euid(), 0u);
        EXPECT_EQ(try_open(path("root-only")), 0);
    });
}

TEST_F(IdentityTest, ARootAgentIdentityHasNoCapabilities) {
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({0, 0, {}}));
        EXPECT_EQ(thread_euid(), 0u);
        EXPECT_EQ(try_open(path("other-owner")), EACCES) << "CAP_DAC_OVERRIDE kept for a root agent";
        thread_identity::act_as_daemon();
        EXPECT_EQ(try_open(path("other-owner")), 0);
    });
}

TEST_F(IdentityTest, GroupsNeverCarryOverToTheNextIdentity) {
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {k_group}}));
        EXPECT_EQ(try_open(path("group-only")), 0);
        // Straight to another agent, and to a root agent, without a restore in between.
        ASSERT_TRUE(thread_identity::act_as({k_nobody - 1, k_nobody - 1, {}}));
        EXPECT_EQ(thread_euid(), k_nobody - 1);
        EXPECT_EQ(try_open(path("group-only")), EACCES) << "the previous agent's group leaked";
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {k_group}}));
        ASSERT_TRUE(thread_identity::act_as({0, 0, {}}));
        EXPECT_EQ(try_open(path("group-only")), EACCES) << "a root agent got another agent's group";
    });
}

TEST_F(IdentityTest, ScopedCredentialsRestoreUnlessTheThreadRestoresLazily) {
    on_thread([&] {
        {
            auto scoped = ScopedCredentials::assume({k_nobody, k_nobody, {}});
            ASSERT_TRUE(scoped);
            EXPECT_EQ(thread_euid(), k_nobody);
        }
        EXPECT_EQ(thread_euid(), 0u);
        thread_identity::lazy_restore(true);
        {
            auto scoped = ScopedCredentials::assume({k_nobody, k_nobody, {}});
            ASSERT_TRUE(scoped);
        }
        EXPECT_EQ(thread_euid(), k_nobody) << "a lazy thread keeps the identity for the next call";
        thread_identity::act_as_daemon();
        EXPECT_EQ(thread_euid(), 0u);
        EXPECT_EQ(try_open(path("root-only")), 0);
        thread_identity::lazy_restore(false);
    });
}

TEST_F(IdentityTest, AReaderOfARootAgentStaysCapabilityLessAndOfAnotherUserIsRoot) {
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({0, 0, {}}));
        thread_identity::act_as_reader_of({0, 0, {}});
        EXPECT_TRUE(thread_identity::wearing_capless_root());
        EXPECT_EQ(try_open(path("other-owner")), EACCES) << "reading for a root agent regained capabilities";
        thread_identity::act_as_reader_of({0, 0, {k_group}});  // other groups: not the identity worn
        EXPECT_FALSE(thread_identity::wearing_capless_root());
        EXPECT_EQ(try_open(path("other-owner")), 0);
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {}}));
        thread_identity::act_as_reader_of({k_nobody, k_nobody, {}});
        EXPECT_EQ(thread_euid(), 0u) << "a non-root agent's memory needs CAP_SYS_PTRACE";
        EXPECT_EQ(try_open(path("root-only")), 0);
    });
}

TEST_F(IdentityTest, BetweenTurnsAnAgentIdentityIsDroppedAndACapabilityLessRootKept) {
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {}}));
        thread_identity::settle_between_turns();
        EXPECT_EQ(thread_euid(), 0u);
        EXPECT_EQ(try_open(path("root-only")), 0);
        ASSERT_TRUE(thread_identity::act_as({0, 0, {}}));
        thread_identity::settle_between_turns();
        EXPECT_TRUE(thread_identity::wearing_capless_root());
        EXPECT_EQ(try_open(path("other-owner")), EACCES);
    });
}

// The claim act_as_reader_of() rests on: a capability-less root thread reads
// a capability-less root process's memory without switching back to root.
volatile char g_marker[] = "airlock-marker";

TEST_F(IdentityTest, ACapabilityLessRootReadsACapabilityLessRootProcess) {
    int ready[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct none[2] = {};
        if (::syscall(SYS_capset, &header, none) != 0) ::_exit(1);
        char c = 1;
        if (::write(ready[1], &c, 1) != 1) ::_exit(1);
        ::pause();
        ::_exit(0);
    }
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    on_thread([&] {
        ASSERT_TRUE(thread_identity::act_as({0, 0, {}}));
        thread_identity::act_as_reader_of({0, 0, {}});
        char out[sizeof g_marker] = {};
        auto r = read_remote(child, reinterpret_cast<std::uint64_t>(&g_marker[0]), out, sizeof out);
        EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
        EXPECT_STREQ(out, "airlock-marker");
        // Yama (ptrace_scope >= 1) refuses a non-ancestor without CAP_SYS_PTRACE:
        // there the read must still succeed, as root.
        std::ifstream yama("/proc/sys/kernel/yama/ptrace_scope");
        int scope = 0;
        if (yama) yama >> scope;
        EXPECT_EQ(thread_identity::wearing_capless_root(), scope == 0);
    });
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
}

TEST_F(IdentityTest, AnotherThreadsIdentityIsUntouched) {
    std::atomic<bool> switched{false}, checked{false};
    std::thread agent([&] {
        ASSERT_TRUE(thread_identity::act_as({k_nobody, k_nobody, {}}));
        switched = true;
        while (!checked) std::this_thread::yield();
        thread_identity::act_as_daemon();
    });
    while (!switched) std::this_thread::yield();
    EXPECT_EQ(thread_euid(), 0u);
    EXPECT_EQ(try_open(path("root-only")), 0);
    checked = true;
    agent.join();
}

}  // namespace
}  // namespace airlock::supervisor
