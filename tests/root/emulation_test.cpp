// Emulated opens must be indistinguishable from the kernel's own: the same
// probe runs unconfined and under airlock (both as an unprivileged user, so
// permission errors are real) over a matrix of paths, flags and modes, on two
// identical trees, and every result line must match.
#include <pwd.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "harness.hpp"
#include "policy_fixture.hpp"

namespace airlock::test {
namespace {

struct Case {
    std::string path;  // relative to the tree root
    std::string flags;
    std::string mode = "0666";
};

void build_tree(const std::string& root, uid_t uid, gid_t gid) {
    std::filesystem::create_directories(root + "/dir/sub");
    write_file(root + "/file", "data");
    write_file(root + "/noread", "hidden", 0000);
    write_file(root + "/existing", "old contents");
    ::symlink("file", (root + "/link").c_str());
    ::symlink("missing-target", (root + "/dangling").c_str());
    ::symlink("loop", (root + "/loop").c_str());
    ::symlink("dir", (root + "/dirlink").c_str());
    ::symlink("/proc/self/fd/0", (root + "/stdin-link").c_str());
    for (const auto& p : std::filesystem::recursive_directory_iterator(root)) {
        if (p.path().filename() == "noread") continue;
        ::lchown(p.path().c_str(), uid, gid);
    }
    ::lchown(root.c_str(), uid, gid);
    ::chown((root + "/noread").c_str(), 0, 0);
}

const std::vector<Case>& cases() {
    static const std::vector<Case> list = {
        {"file", "rdonly"},
        {"file", "rdonly|cloexec"},
        {"file", "wronly|append"},
        {"file", "rdwr|nonblock"},
        {"file", "rdonly|directory"},
        {"file", "path"},
        {"file", "path|cloexec"},
        {"dir", "rdonly|directory"},
        {"dir", "rdonly"},
        {"dir", "wronly"},
        {"dir/", "rdonly"},
        {"file/", "rdonly"},
        {"dir/sub/../../file", "rdonly"},
        {"./dir/./sub/..", "rdonly|directory"},
        {"link", "rdonly"},
        {"link", "rdonly|nofollow"},
        {"link", "path|nofollow"},
        {"dirlink", "rdonly|directory"},
        {"dirlink", "rdonly|directory|nofollow"},
        {"dangling", "rdonly"},
        {"loop", "rdonly"},
        {"missing", "rdonly"},
        {"missing/x", "rdonly"},
        {"file/x", "rdonly"},
        {"noread", "rdonly"},
        {"noread", "path"},
        {"new-a", "wronly|creat", "0666"},
        {"new-b", "wronly|creat|excl", "0754"},
        {"new-c", "rdwr|creat|cloexec", "0600"},
        {"existing", "wronly|creat|excl"},
        {"existing", "wronly|trunc"},
        {"existing", "wronly|creat"},
        {"dangling", "wronly|creat", "0644"},
        {"dangling", "wronly|creat|excl", "0644"},
        {"link", "wronly|creat|excl"},
        {"dir", "rdwr|tmpfile", "0600"},
        {"file", "rdwr|tmpfile", "0600"},
        {"dir/new-d", "wronly|creat", "0777"},
        {"missingdir/new-e", "wronly|creat"},
        {"dir", "wronly|creat"},
        {"stdin-link", "rdonly"},
    };
    return list;
}

TEST(EmulationTest, OpenFlagAndErrnoMatrixMatchesTheKernel) {
    AIRLOCK_REQUIRE_ROOT();
    passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "needs the user 'nobody'";
    const uid_t uid = nobody->pw_uid;
    const gid_t gid = nobody->pw_gid;
    std::string work = make_temp_dir();
    std::string plain = work + "/plain", supervised = work + "/supervised";
    build_tree(plain, uid, gid);
    build_tree(supervised, uid, gid);
    Daemon d(test_policy(work));
    auto as_nobody = [uid, gid] {
        ::setgroups(0, nullptr);
        ::setgid(gid);
        ::setuid(uid);
    };
    int compared = 0;
    for (bool relative : {false, true}) {
        for (const auto& c : cases()) {
            auto args = [&](const std::string& root) {
                std::vector<std::string> a = {"--umask", "027"};
                if (relative) a.insert(a.end(), {"--cwd", root});
                a.insert(a.end(), {"open", relative ? c.path : root + "/" + c.path, c.flags, c.mode});
                return a;
            };
            std::vector<std::string> direct = {probe_path()};
            for (auto& a : args(plain)) direct.push_back(a);
            auto expected = Process::spawn(direct, as_nobody).wait();
            // Relative runs reuse the trees; creates must start from the same state.
            auto actual = d.run_probe(args(supervised), {"--user", "nobody"}).wait();
            EXPECT_EQ(actual.out, expected.out) << (relative ? "relative " : "absolute ") << c.path << " " << c.flags
                                                << "\n" << actual.err << d.log_text().substr(0, 0);
            ++compared;
        }
        // Reset trees between passes so creates behave identically.
        std::filesystem::remove_all(plain);
        std::filesystem::remove_all(supervised);
        build_tree(plain, uid, gid);
        build_tree(supervised, uid, gid);
    }
    EXPECT_EQ(compared, static_cast<int>(cases().size()) * 2);
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
}

}  // namespace
}  // namespace airlock::test
