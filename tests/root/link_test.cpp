// Hard links and renames under airlock: decided on both names (a second name
// for a denied file is refused), performed by the daemon, and answered with
// the kernel's own errno (compared with the same probe run unconfined).
#include <pwd.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "harness.hpp"
#include "policy_fixture.hpp"

namespace airlock::test {
namespace {

using namespace std::chrono_literals;

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string contents(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class SessionLinkTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        work_ = make_temp_dir();
        for (const char* sub : {"secret", "held", "data", "outer/inner"})
            std::filesystem::create_directories(work_ + "/" + sub);
        write_file(work_ + "/secret/key", "TOP SECRET");
        write_file(work_ + "/outer/inner/key", "NESTED SECRET");
        write_file(work_ + "/data/hello.txt", "hello from airlock");
        ::symlink((work_ + "/secret/key").c_str(), (work_ + "/data/innocent-link").c_str());
    }
    void TearDown() override {
        daemon_.reset();
        std::error_code ec;
        if (!work_.empty()) std::filesystem::remove_all(work_, ec);
    }
    Daemon& start() {
        // A path two levels below an allowed directory: only a rename of that
        // directory (or its parent) moves it.
        const std::string nested = "  - name: nested-secret\n"
                                   "    match: { action: open, path: [\"" + work_ + "/outer/inner/**\"] }\n"
                                   "    verdict: deny\n"
                                   "    errno: EPERM\n";
        daemon_ = std::make_unique<Daemon>(test_policy(work_, nested));
        return *daemon_;
    }
    std::string probe(const std::vector<std::string>& args, std::function<void()> in_child = nullptr) {
        auto out = daemon_->run_probe(args, {}, std::move(in_child)).wait();
        return trim(out.out) + (out.err.empty() ? "" : " [stderr: " + out.err + "]");
    }
    std::string work_;
    std::unique_ptr<Daemon> daemon_;
};

// `ln ~/.ssh/id_rsa /tmp/x; cat /tmp/x`: the second name is never made.
TEST_F(SessionLinkTest, HardLinkOfADeniedFileIsRefused) {
    auto& d = start();
    const std::string x = work_ + "/data/x";
    EXPECT_EQ(probe({"link", work_ + "/secret/key", x}), "err EPERM") << d.log_text();
    EXPECT_FALSE(exists(x));
    EXPECT_EQ(probe({"linkat", work_ + "/secret/key", x, "follow"}), "err EPERM");
    EXPECT_FALSE(exists(x));
    // Following a symlink to the secret links the secret: refused.
    EXPECT_EQ(probe({"linkat", work_ + "/data/innocent-link", x, "follow"}), "err EPERM");
    EXPECT_FALSE(exists(x));
    // Without AT_SYMLINK_FOLLOW the symlink itself is linked (as link(2) does);
    // reading through the new name is decided on the secret, as for the old one.
    EXPECT_EQ(probe({"link", work_ + "/data/innocent-link", x}), "ok");
    struct stat st {};
    ASSERT_EQ(::lstat(x.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(probe({"read", x}), "err EPERM");
    // Into a place only the system rule lets the agent read: the destination is refused.
    EXPECT_EQ(probe({"link", work_ + "/data/hello.txt", "/tmp/airlock-link-test-never"}), "err EACCES");
    EXPECT_FALSE(exists("/tmp/airlock-link-test-never"));
}

// `mv ~/.ssh/id_rsa ~/x`: refused, and the file stays where it was.
TEST_F(SessionLinkTest, RenameOfADeniedFileIsRefusedAndItStays) {
    auto& d = start();
    const std::string moved = work_ + "/data/moved";
    EXPECT_EQ(probe({"rename", work_ + "/secret/key", moved}), "err EPERM") << d.log_text();
    EXPECT_FALSE(exists(moved));
    EXPECT_EQ(contents(work_ + "/secret/key"), "TOP SECRET");
    for (const char* flags : {"none", "noreplace", "whiteout"})
        EXPECT_EQ(probe({"renameat2", work_ + "/secret/key", moved, flags}), "err EPERM") << flags;
    // Exchanged with an allowed file: the secret would get the allowed name.
    EXPECT_EQ(probe({"renameat2", work_ + "/data/hello.txt", work_ + "/secret/key", "exchange"}), "err EPERM");
    EXPECT_EQ(contents(work_ + "/secret/key"), "TOP SECRET");
    EXPECT_EQ(contents(work_ + "/data/hello.txt"), "hello from airlock");
    // An allowed file moved over the secret's name replaces it: refused too.
    EXPECT_EQ(probe({"rename", work_ + "/data/hello.txt", work_ + "/secret/key"}), "err EPERM");
    EXPECT_EQ(contents(work_ + "/secret/key"), "TOP SECRET");
}

// An fd on a denied file (inherited here; an O_PATH race could produce one)
// linked back into the tree through /proc/self/fd/N: decided on the object.
TEST_F(SessionLinkTest, LinkThroughProcSelfFdOfADeniedFileIsRefused) {
    auto& d = start();
    const std::string secret = work_ + "/secret/key";
    auto inherit_secret = [secret] {
        int fd = ::open(secret.c_str(), O_PATH);
        if (fd < 0 || ::dup2(fd, 5) != 5) ::_exit(126);
    };
    const std::string x = work_ + "/data/x";
    EXPECT_EQ(probe({"linkat", "/proc/self/fd/5", x, "follow"}, inherit_secret), "err EPERM") << d.log_text();
    EXPECT_FALSE(exists(x));
    EXPECT_EQ(probe({"linkat", "/dev/fd/5", x, "follow"}, inherit_secret), "err EPERM");
    EXPECT_FALSE(exists(x));
    // flink(2) through AT_EMPTY_PATH is refused the way pre-6.10 kernels refuse an agent.
    EXPECT_EQ(probe({"linkat", "", x, "empty"}, inherit_secret), "err ENOENT");
    EXPECT_FALSE(exists(x));
    // The same route for an allowed file works.
    EXPECT_EQ(probe({"link-fd", work_ + "/data/hello.txt", x}), "ok");
    EXPECT_EQ(contents(x), "hello from airlock");
}

// `mv ~/.ssh ~/x` moves everything below ~/.ssh: a directory is refused when
// any rule that could match below it would refuse.
TEST_F(SessionLinkTest, RenameOfADirectoryHoldingADeniedPathIsRefused) {
    auto& d = start();
    EXPECT_EQ(probe({"rename", work_ + "/outer", work_ + "/data/outer"}), "err EPERM") << d.log_text();
    EXPECT_EQ(contents(work_ + "/outer/inner/key"), "NESTED SECRET");
    EXPECT_FALSE(exists(work_ + "/data/outer"));
    EXPECT_EQ(probe({"rename", work_ + "/secret", work_ + "/data/s"}), "err EPERM");
    EXPECT_EQ(contents(work_ + "/secret/key"), "TOP SECRET");
    // Moving a directory in to where names below it are denied is refused too.
    std::filesystem::create_directories(work_ + "/data/box");
    EXPECT_EQ(probe({"rename", work_ + "/data/box", work_ + "/outer/inner/box"}), "err EPERM");
    EXPECT_TRUE(exists(work_ + "/data/box"));
    // A directory with nothing protected below it moves.
    std::filesystem::create_directories(work_ + "/data/dir/sub");
    write_file(work_ + "/data/dir/sub/f", "inside");
    EXPECT_EQ(probe({"rename", work_ + "/data/dir", work_ + "/data/dir2"}), "ok");
    EXPECT_EQ(contents(work_ + "/data/dir2/sub/f"), "inside");
}

TEST_F(SessionLinkTest, AllowedLinksAndRenamesArePerformedAndAudited) {
    auto& d = start();
    const std::string a = work_ + "/data/hello.txt", b = work_ + "/data/b", c = work_ + "/data/c";
    EXPECT_EQ(probe({"link", a, b}), "ok") << d.log_text();
    EXPECT_EQ(contents(b), "hello from airlock");
    struct stat sa {}, sb {};
    ASSERT_EQ(::stat(a.c_str(), &sa), 0);
    ASSERT_EQ(::stat(b.c_str(), &sb), 0);
    EXPECT_EQ(sa.st_ino, sb.st_ino);
    EXPECT_EQ(probe({"rename", b, c}), "ok");
    EXPECT_FALSE(exists(b));
    EXPECT_EQ(contents(c), "hello from airlock");
    // The agent's own credentials: a file it creates by link keeps the inode's owner.
    EXPECT_EQ(probe({"read", c}), "ok hello from airlock");

    auto rows = d.audit_rows([&](const nlohmann::json& so_far) {
        int found = 0;
        for (const auto& r : so_far)
            if (r.value("kind", "") == "decision" && (r.value("action", "") == "link" || r.value("action", "") == "rename"))
                ++found;
        return found >= 2;
    });
    bool link_row = false, rename_row = false;
    for (const auto& r : rows) {
        if (r.value("kind", "") != "decision") continue;
        if (r.value("action", "") == "link" && r.value("object", "") == a + " -> " + b) {
            link_row = true;
            EXPECT_EQ(r.value("verdict", ""), "allow") << r.dump();
        }
        if (r.value("action", "") == "rename" && r.value("object", "") == b + " -> " + c) rename_row = true;
    }
    EXPECT_TRUE(link_row) << rows.dump(1);
    EXPECT_TRUE(rename_row) << rows.dump(1);
}

TEST_F(SessionLinkTest, RefusedLinkIsAuditedWithBothNames) {
    auto& d = start();
    EXPECT_EQ(probe({"link", work_ + "/secret/key", work_ + "/data/x"}), "err EPERM");
    const std::string object = work_ + "/secret/key -> " + work_ + "/data/x";
    auto rows = d.audit_rows([&](const nlohmann::json& so_far) {
        for (const auto& r : so_far)
            if (r.value("object", "") == object) return true;
        return false;
    });
    bool found = false;
    for (const auto& r : rows)
        if (r.value("object", "") == object && r.value("kind", "") == "decision") {
            found = true;
            EXPECT_EQ(r.value("action", ""), "link");
            EXPECT_EQ(r.value("verdict", ""), "deny");
            EXPECT_EQ(r.value("rule", ""), "secret");
        }
    EXPECT_TRUE(found) << rows.dump(1);
}

// A rename into a held directory waits for a human, who sees both names.
TEST_F(SessionLinkTest, AskRenameWaitsForApproval) {
    auto& d = start();
    const std::string from = work_ + "/data/hello.txt", to = work_ + "/held/hello.txt";
    auto agent = d.run_probe({"rename", from, to});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    EXPECT_EQ(pending[0]["action"], "rename");
    EXPECT_EQ(pending[0]["object"], from + " -> " + to);
    EXPECT_EQ(pending[0]["rule"], "held");
    auto listed = d.cli({"pending"});
    EXPECT_NE(listed.out.find("rename"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find(from + " -> " + to), std::string::npos) << listed.out;

    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(exists(from));  // still held: nothing moved
    EXPECT_FALSE(exists(to));
    auto approve = d.cli({"approve", std::to_string(pending[0]["id"].get<std::int64_t>())});
    EXPECT_EQ(approve.status, 0) << approve.err;
    EXPECT_EQ(trim(agent.wait().out), "ok");
    EXPECT_FALSE(exists(from));
    EXPECT_EQ(contents(to), "hello from airlock");

    // Denied by the approver: EACCES, nothing moves.
    auto second = d.run_probe({"link", to, work_ + "/held/second"});
    pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0]["action"], "link");
    EXPECT_EQ(d.cli({"deny", std::to_string(pending[0]["id"].get<std::int64_t>())}).status, 0);
    EXPECT_EQ(trim(second.wait().out), "err EACCES");
    EXPECT_FALSE(exists(work_ + "/held/second"));
}

// ---- the same answers as the kernel -------------------------------------------

struct LinkCase {
    std::vector<std::string> args;  // probe command; "@" starts a path in the tree, "%" one in /dev/shm
};

void build_link_tree(const std::string& root, uid_t uid, gid_t gid) {
    std::filesystem::create_directories(root + "/dir/sub");
    std::filesystem::create_directories(root + "/dir2");
    std::filesystem::create_directories(root + "/full");
    std::filesystem::create_directories(root + "/ro");
    write_file(root + "/file", "data");
    write_file(root + "/file2", "data2");
    write_file(root + "/existing", "old contents");
    write_file(root + "/full/x", "x");
    write_file(root + "/ro/f", "root's");
    ::symlink("file", (root + "/link").c_str());
    ::symlink("missing-target", (root + "/dangling").c_str());
    for (const auto& p : std::filesystem::recursive_directory_iterator(root)) {
        if (p.path().string().starts_with(root + "/ro")) continue;  // root's, for EACCES and EPERM
        ::lchown(p.path().c_str(), uid, gid);
    }
    ::lchown(root.c_str(), uid, gid);
}

const std::vector<LinkCase>& link_cases() {
    static const std::vector<LinkCase> list = {
        {{"link", "@file", "@new-link"}},
        {{"link", "@file", "@existing"}},
        {{"link", "@missing", "@x1"}},
        {{"link", "@file", "@missingdir/x"}},
        {{"link", "@dir", "@x2"}},
        {{"link", "@file/", "@x3"}},
        {{"link", "@file", "@x4/"}},
        {{"link", "@link", "@link-copy"}},
        {{"linkat", "@link", "@link-followed", "follow"}},
        {{"linkat", "@dangling", "@x5", "follow"}},
        {{"linkat", "@file", "@x6", "bad"}},
        {{"link", "@ro/f", "@x7"}},
        {{"link", "@file", "@ro/x8"}},
        {{"link", "@file", "%x9"}},
        {{"link", "@.", "@x10"}},
        {{"link", "@file", "@."}},
        {{"link-fd", "@file", "@fd-link"}},
        {{"linkat", "/proc/self/fd/0", "@x11", "follow"}},
        {{"rename", "@new-link", "@renamed"}},
        {{"rename", "@missing", "@x12"}},
        {{"rename", "@file2", "@existing"}},
        {{"rename", "@existing", "@dir"}},
        {{"rename", "@dir2", "@existing"}},
        {{"rename", "@dir2", "@full"}},
        {{"rename", "@dir", "@dir/sub/x"}},
        {{"rename", "@file/", "@x13"}},
        {{"rename", "@file", "@x14/"}},
        {{"rename", "@.", "@x15"}},
        {{"rename", "@file", "/"}},
        {{"rename", "@file", "%x16"}},
        {{"rename", "@ro/f", "@x17"}},
        {{"renameat2", "@file", "@existing", "noreplace"}},
        {{"renameat2", "@file", "@missing", "exchange"}},
        {{"renameat2", "@file", "@existing", "exchange"}},
        {{"renameat2", "@file", "@existing", "exchange|noreplace"}},
        {{"renameat2", "@file", "@x18", "bad"}},
        {{"rename", "@dir", "@dir-renamed"}},
        {{"rename", "@renamed", "@renamed"}},
        {{"rename", "@dir-renamed/", "@dir3/"}},
        {{"renameat2", "@file", "@x19", "whiteout"}},
        {{"rename", "@x19", "@x20"}},
    };
    return list;
}

TEST(EmulationLinkTest, LinkAndRenameErrnoMatrixMatchesTheKernel) {
    AIRLOCK_REQUIRE_ROOT();
    passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "needs the user 'nobody'";
    const uid_t uid = nobody->pw_uid;
    const gid_t gid = nobody->pw_gid;
    std::string work = make_temp_dir();
    const std::string shm = "/dev/shm/airlock-link-" + std::to_string(::getpid());
    Daemon d(test_policy(work));
    auto as_nobody = [uid, gid] {
        ::setgroups(0, nullptr);
        ::setgid(gid);
        ::setuid(uid);
    };
    int compared = 0;
    for (bool relative : {false, true}) {
        const std::string plain = work + "/plain", supervised = work + "/supervised";
        build_link_tree(plain, uid, gid);
        build_link_tree(supervised, uid, gid);
        for (const auto& c : link_cases()) {
            auto args = [&](const std::string& root) {
                std::vector<std::string> a;
                if (relative) a = {"--cwd", root};
                for (const auto& word : c.args) {
                    if (word.starts_with("@")) a.push_back(relative ? word.substr(1) : root + "/" + word.substr(1));
                    else if (word.starts_with("%")) a.push_back(shm + "-" + word.substr(1));
                    else a.push_back(word);
                }
                return a;
            };
            std::vector<std::string> direct = {probe_path()};
            for (auto& a : args(plain)) direct.push_back(a);
            auto expected = Process::spawn(direct, as_nobody).wait();
            auto actual = d.run_probe(args(supervised), {"--user", "nobody"}).wait();
            std::string what = (relative ? "relative" : "absolute");
            for (const auto& w : c.args) what += " " + w;
            EXPECT_EQ(actual.out, expected.out) << what << "\n" << actual.err;
            ++compared;
        }
        // Same trees after the same calls: every entry, its type and its link count.
        auto listing = [](const std::string& root) {
            std::string out;
            for (const auto& p : std::filesystem::recursive_directory_iterator(root)) {
                struct stat st {};
                ::lstat(p.path().c_str(), &st);
                out += p.path().string().substr(root.size()) + " " + std::to_string(st.st_mode & S_IFMT) + " " +
                       std::to_string(st.st_nlink) + "\n";
            }
            std::vector<std::string> lines;
            std::stringstream in(out);
            for (std::string l; std::getline(in, l);) lines.push_back(l);
            std::sort(lines.begin(), lines.end());
            std::string sorted;
            for (const auto& l : lines) sorted += l + "\n";
            return sorted;
        };
        EXPECT_EQ(listing(supervised), listing(plain));
        std::filesystem::remove_all(plain);
        std::filesystem::remove_all(supervised);
    }
    EXPECT_EQ(compared, static_cast<int>(link_cases().size()) * 2);
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    for (const char* x : {"-x9", "-x16"}) ::unlink((shm + x).c_str());
}

}  // namespace
}  // namespace airlock::test
