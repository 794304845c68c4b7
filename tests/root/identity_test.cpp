// The per-thread identity the daemon wears when it opens files for an agent
// (supervisor/credentials.hpp): switched lazily, it must never lend one
// agent's groups to another, never keep root's capabilities for a root agent,
// and always come back to root when asked.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <thread>

#include "harness.hpp"
#include "supervisor/credentials.hpp"

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
