// Attacks on airlock's security invariants, each run as a real program
// (attack_agent) under `airlock run` against a real airlockd. A test that
// fails here has found a way through; see the comment above each test for the
// invariant it defends.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <iterator>
#include <regex>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "policy_fixture.hpp"

namespace airlock::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string attacker_path() { return std::string(AIRLOCK_BINARY_DIR) + "/tests/root/attack_agent"; }


long long ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// The value of `key=` in a line of `k=v` words, or -1.
long long field(const std::string& text, const std::string& key) {
    std::smatch m;
    std::regex re("(^|[ \\n])" + key + "=(-?[0-9]+)");
    if (!std::regex_search(text, m, re)) return -1;
    return std::stoll(m[2].str());
}

// The line of `text` that starts with `prefix`, or "".
std::string line_of(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(prefix)) return line;
    return {};
}

std::function<void()> as_user(uid_t uid, gid_t gid) {
    return [uid, gid] {
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
    };
}

// A child whose stdout can be read line by line while it runs (Process only
// gives the output at exit).
class Spawned {
public:
    Spawned(const std::vector<std::string>& argv, std::function<void()> in_child = nullptr) {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) std::abort();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            exec_in_child(argv, in_child);
        }
        ::close(out[1]);
        fd_ = out[0];
    }
    Spawned(const Spawned&) = delete;
    Spawned& operator=(const Spawned&) = delete;
    ~Spawned() {
        kill();
        if (fd_ >= 0) ::close(fd_);
    }
    pid_t pid() const { return pid_; }
    void kill() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    // The next line, or "" after `timeout` or at EOF.
    std::string line(std::chrono::milliseconds timeout) {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            if (auto nl = buf_.find('\n'); nl != std::string::npos) {
                std::string l = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) return {};
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
            char b[4096];
            ssize_t n = ::read(fd_, b, sizeof b);
            if (n <= 0) return {};
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buf_;
};

// Kills a daemon that may be stuck (a worker blocked in the kernel would make
// SIGTERM's orderly shutdown wait for it) and removes its cgroups.
void hard_stop(Daemon& d) {
    if (d.pid() <= 0) return;
    std::ifstream in("/proc/" + std::to_string(d.pid()) + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> argv;
    for (std::size_t i = 0; i < cmdline.size();) {
        std::size_t end = cmdline.find('\0', i);
        if (end == std::string::npos) end = cmdline.size();
        argv.push_back(cmdline.substr(i, end - i));
        i = end + 1;
    }
    std::string base;
    for (std::size_t i = 0; i + 1 < argv.size(); ++i)
        if (argv[i] == "--cgroup-base") base = argv[i + 1];
    d.kill_hard();
    if (base.empty()) return;
    std::string dir = "/sys/fs/cgroup" + base;
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            if (!e.is_directory() || !e.path().filename().string().starts_with("session-")) continue;
            std::ofstream(e.path() / "cgroup.kill") << "1";
            ::rmdir(e.path().c_str());
        }
        if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
        std::this_thread::sleep_for(20ms);
    }
}

// A loopback TCP server on a free port in [lo, hi] that counts accepted
// connections (and greets them); with `accepting == false` it listens with
// a zero backlog and never accepts.
class CountingServer {
public:
    CountingServer(int lo, int hi, bool accepting = true, const char* greeting = "hello-tcp") : greeting_(greeting) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int port = lo + (::getpid() * 7 + counter_++ * 13) % (hi - lo); port <= hi; ++port) {
            addr.sin_port = htons(static_cast<uint16_t>(port));
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                port_ = port;
                break;
            }
        }
        ::listen(fd_, accepting ? 128 : 0);
        if (!accepting) return;
        thread_ = std::thread([this] {
            for (;;) {
                pollfd p{fd_, POLLIN, 0};
                int r = ::poll(&p, 1, 50);
                if (stop_) return;
                if (r <= 0) continue;
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) continue;
                accepted_.fetch_add(1);
                (void)!::write(c, greeting_, std::strlen(greeting_));
                ::close(c);
            }
        });
    }
    ~CountingServer() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        ::close(fd_);
    }
    int port() const { return port_; }
    int accepted() const { return accepted_.load(); }

private:
    static inline int counter_ = 0;
    const char* greeting_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

class AttackTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        work_ = make_temp_dir();
        for (const char* sub : {"secret", "public", "data", "held", "timeout-deny"})
            std::filesystem::create_directories(work_ + "/" + sub);
        write_file(work_ + "/secret/key", "TOP SECRET");
        write_file(work_ + "/public/key", "public data");
        write_file(work_ + "/data/hello.txt", "hello from airlock");
        write_file(work_ + "/held/file", "approved bytes");
        write_file(work_ + "/timeout-deny/file", "never");
        if (passwd* pw = ::getpwnam("nobody")) {
            nobody_uid_ = pw->pw_uid;
            nobody_gid_ = pw->pw_gid;
        }
    }
    void TearDown() override {
        if (daemon_) hard_stop(*daemon_);
        daemon_.reset();
        std::error_code ec;
        if (!work_.empty()) std::filesystem::remove_all(work_, ec);
    }
    Daemon& start(const std::string& extra_rules = "") {
        daemon_ = std::make_unique<Daemon>(test_policy(work_, extra_rules));
        return *daemon_;
    }
    std::vector<std::string> agent_argv(const std::vector<std::string>& args,
                                        const std::vector<std::string>& run_args = {}) const {
        std::vector<std::string> argv = {binary("airlock"), "--socket", daemon_->socket(), "run"};
        argv.insert(argv.end(), run_args.begin(), run_args.end());
        argv.push_back("--");
        argv.push_back(attacker_path());
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    // `airlock run [run_args] -- attack_agent args`, output at exit.
    Output attack(const std::vector<std::string>& args, const std::vector<std::string>& run_args = {},
                  std::chrono::milliseconds timeout = 25s) const {
        return Process::spawn(agent_argv(args, run_args)).wait(timeout);
    }
    bool have_nobody() const { return nobody_uid_ != 0; }
    std::vector<std::string> as_nobody_args() const { return {"--user", "nobody"}; }
    // Run as nobody when the machine has it (a stronger claim), else as root.
    std::vector<std::string> unprivileged() const {
        return have_nobody() ? as_nobody_args() : std::vector<std::string>{};
    }

    // A second, innocent session: how long until its allowed read comes back?
    long long innocent_read_ms(std::chrono::milliseconds timeout, std::string* out = nullptr) {
        auto t0 = Clock::now();
        auto o = daemon_->run_probe({"read", work_ + "/data/hello.txt"}).wait(timeout);
        if (out) *out = trim(o.out);
        return o.timed_out ? -1 : ms_since(t0);
    }
    long long innocent_connect_ms(int port, std::chrono::milliseconds timeout, std::string* out = nullptr) {
        auto t0 = Clock::now();
        auto o = daemon_->run_probe({"connect", "127.0.0.1", std::to_string(port)}).wait(timeout);
        if (out) *out = trim(o.out);
        return o.timed_out ? -1 : ms_since(t0);
    }

    std::string work_;
    std::unique_ptr<Daemon> daemon_;
    uid_t nobody_uid_ = 0;
    gid_t nobody_gid_ = 0;
};

// ===== 1. Decide on the object, not the name =====================================

// A thread rewrites the path buffer between an allowed file and the secret
// while another opens it: the daemon reads the path once and opens what it
// decided on, so the secret's bytes never come back.
TEST_F(AttackTest, PathBufferFlipNeverReadsTheSecret) {
    auto& d = start();
    auto out = attack({"race-open", work_ + "/public/key", work_ + "/secret/key", "TOP SECRET", "20000"});
    std::string r = trim(out.out);
    EXPECT_EQ(field(r, "secret"), 0) << r << out.err;
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_GT(field(r, "opened"), 0) << r << out.err << d.log_text().substr(0, 2000);
    EXPECT_GT(field(r, "denied"), 0) << "the race never produced the secret's name: " << r;
}

// A symlink whose target is swapped (RENAME_EXCHANGE of two links) between the
// allowed file and the secret.
TEST_F(AttackTest, SymlinkSwapNeverReadsTheSecret) {
    start();
    ::symlink((work_ + "/public/key").c_str(), (work_ + "/data/link").c_str());
    ::symlink((work_ + "/secret/key").c_str(), (work_ + "/data/other").c_str());
    auto out = attack({"race-symlink", work_ + "/data", "TOP SECRET", "20000"});
    std::string r = trim(out.out);
    EXPECT_EQ(field(r, "secret"), 0) << r << out.err;
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_GT(field(r, "opened"), 0) << r << out.err;
    EXPECT_GT(field(r, "swaps"), 100) << r;
}

// A directory component swapped for a symlink into the denied tree.
TEST_F(AttackTest, DirectoryComponentSwapNeverReadsTheSecret) {
    start();
    std::filesystem::create_directories(work_ + "/data/dir");
    write_file(work_ + "/data/dir/key", "public data");
    ::symlink((work_ + "/secret").c_str(), (work_ + "/data/alt").c_str());
    auto out = attack({"race-dirswap", work_ + "/data", "TOP SECRET", "20000"});
    std::string r = trim(out.out);
    EXPECT_EQ(field(r, "secret"), 0) << r << out.err;
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_GT(field(r, "opened"), 0) << r << out.err;
    EXPECT_GT(field(r, "swaps"), 100) << r;
}

// O_PATH opens are decided, then answered CONTINUE (ADDFD cannot inject an
// O_PATH file), and the kernel reads the path from agent memory a second time:
// a racing thread can end up with an O_PATH fd on the secret while the audit
// log records an allowed open of the public file (docs/architecture.md,
// "Residual races"; the kernel layer of issue 4 closes it). What must hold is
// that such a handle never yields a byte: reopening it through
// /proc/self/fd/N, linking it back into a directory through /proc/self/fd/N
// (and opening that name), and for a directory openat(fd, "key"), are each
// decided again, on the object. How many handles landed is reported, not asserted.
TEST_F(AttackTest, OPathOpenRaceNeverReadsTheSecretThroughTheHandle) {
    auto& d = start();
    auto out = attack({"race-opath", work_ + "/public/key", work_ + "/secret/key", work_ + "/secret/key", "3000",
                       "TOP SECRET", work_ + "/data"});
    std::string r = trim(out.out);
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_EQ(field(r, "secret"), 0) << "secret bytes read through an O_PATH handle: " << r << out.err;
    EXPECT_GT(field(r, "opened"), 0) << r << out.err << d.log_text().substr(0, 2000);
    EXPECT_GE(field(r, "landed"), 0) << r;
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/secret/key"}).wait().out), "err EPERM");
}

TEST_F(AttackTest, OPathDirectoryRaceNeverReadsTheSecretThroughTheHandle) {
    start();
    auto out = attack({"race-opath", work_ + "/public", work_ + "/secret", work_ + "/secret", "3000", "TOP SECRET",
                       work_ + "/data"});
    std::string r = trim(out.out);
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_EQ(field(r, "secret"), 0) << "secret bytes read through an O_PATH directory handle: " << r << out.err;
    EXPECT_GT(field(r, "opened"), 0) << r << out.err;
}

// openat2 keeps its flags in agent memory (struct open_how). Were an O_PATH
// openat2 CONTINUEd after its decision, the kernel would read open_how again
// and a racing thread could turn the O_PATH open of a read-only file into
// O_RDWR|O_TRUNC of the same file. openat2 with O_PATH is answered ENOSYS
// (callers fall back to openat); nothing opens the file for writing.
TEST_F(AttackTest, Openat2FlagFlipNeverOpensAReadOnlyFileForWriting) {
    std::filesystem::create_directories(work_ + "/readonly");
    const std::string file = work_ + "/readonly/file";
    write_file(file, "original contents", 0666);
    ::chmod((work_ + "/readonly").c_str(), 0777);
    start("  - name: readonly-read\n"
          "    match: { action: open, access: read, path: [\"" + work_ + "/readonly/**\"] }\n"
          "    verdict: allow\n"
          "  - name: readonly-write\n"
          "    match: { action: open, path: [\"" + work_ + "/readonly/**\"] }\n"
          "    verdict: deny\n"
          "    errno: EROFS\n");
    auto out = attack({"race-openat2-flags", file, "5000"}, unprivileged());
    std::string r = trim(out.out);
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_EQ(field(r, "writable"), 0) << r << out.err;
    EXPECT_EQ(field(r, "opath"), 0) << "an O_PATH openat2 was let through: " << r;
    EXPECT_GT(field(r, "enosys"), 0) << r << out.err;
    std::ifstream in(file);
    std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(now, "original contents");
}

// A thread flips the source path of link(2) between an allowed file and the
// secret: the daemon reads it once and links the object it decided on, so
// the secret never gets a second name.
TEST_F(AttackTest, LinkSourceFlipNeverLinksTheSecret) {
    start();
    auto out = attack({"race-link", "link", work_ + "/public/key", work_ + "/secret/key", work_ + "/data/linked",
                       "TOP SECRET", "3000"});
    std::string r = trim(out.out);
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_EQ(field(r, "secret"), 0) << r << out.err;
    EXPECT_GT(field(r, "done"), 0) << r << out.err;
    EXPECT_GT(field(r, "denied"), 0) << "the race never produced the secret's name: " << r;
    struct stat st {};
    ASSERT_EQ(::stat((work_ + "/secret/key").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u);
}

// The same with rename(2): the secret never moves.
TEST_F(AttackTest, RenameSourceFlipNeverMovesTheSecret) {
    start();
    auto out = attack({"race-link", "rename", work_ + "/public/key", work_ + "/secret/key", work_ + "/data/moved",
                       "TOP SECRET", "3000"});
    std::string r = trim(out.out);
    RecordProperty("result", r);
    std::printf("  %s\n", r.c_str());
    EXPECT_EQ(field(r, "secret"), 0) << r << out.err;
    EXPECT_GT(field(r, "done"), 0) << r << out.err;
    EXPECT_GT(field(r, "denied"), 0) << "the race never produced the secret's name: " << r;
    std::ifstream in(work_ + "/secret/key");
    std::string now((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(now, "TOP SECRET");
}

// ===== 2. Connect decides on the address it connects to ===========================

// ----- the exec race: closed by the kernel layer's exec guard -----------------------

// Tries per exec race; AIRLOCK_RACE_TRIES lowers it where processes are slow
// to start (tests/vm runs these under qemu's TCG).
std::string race_tries(int normal) {
    const char* env = std::getenv("AIRLOCK_RACE_TRIES");
    return env && std::atoi(env) > 0 ? std::to_string(std::min(normal, std::atoi(env))) : std::to_string(normal);
}

// The extra rules the exec races run under: bin/bad may not run; bin/** runs
// unless its command line holds a secret.
std::string exec_race_rules(const std::string& work) {
    return "  - name: bad-binary\n"
           "    match: { action: exec, path: [\"" + work + "/bin/bad\"] }\n"
           "    verdict: deny\n"
           "    errno: EPERM\n"
           "  - name: tools-without-secrets\n"
           "    match: { action: exec, path: [\"" + work + "/bin/**\"] }\n"
           "    inspect: true\n"
           "    on_data:\n"
           "      - { classes: [\"secret.*\"], verdict: deny }\n"
           "    verdict: allow\n";
}

// Whether the daemon runs the exec guard, from `airlock status --json`.
std::string exec_guard_missing(Daemon& d) {
    auto out = Process::spawn({binary("airlock"), "--socket", d.socket(), "status", "--json"}).wait();
    auto status = nlohmann::json::parse(out.out, nullptr, false);
    if (status.is_discarded()) return "airlock status --json: " + out.out + out.err;
    const auto& hook = status["kernel"]["hooks"]["exec_guard"];
    if (hook.is_object() && hook.value("active", false)) return {};
    return "the exec guard is not loaded here: " + hook.dump();
}

void install_tool(const std::string& to) {
    std::filesystem::copy_file("/usr/bin/touch", to, std::filesystem::copy_options::overwrite_existing);
    ::chmod(to.c_str(), 0755);
}

// A thread rewrites the path of an allowed exec (/bin/true) into a denied
// binary after the supervisor decided and before the kernel reads it again:
// the kernel loads the denied file, and the exec guard kills it before its
// first instruction. The denied binary (touch MARKER) never leaves a marker.
TEST_F(AttackTest, ExecPathFlipNeverRunsTheDeniedBinary) {
    std::filesystem::create_directories(work_ + "/bin");
    std::filesystem::create_directories(work_ + "/out");
    install_tool(work_ + "/bin/bad");
    const std::string marker = work_ + "/out/ran-bad";
    {
        // The race is real: without the kernel layer the denied binary runs.
        Daemon unguarded(test_policy(work_, exec_race_rules(work_)), {"--kernel-layer", "off"});
        auto out = Process::spawn({binary("airlock"), "--socket", unguarded.socket(), "run", "--",
                                   attacker_path(), "race-exec", "/bin/true", work_ + "/bin/bad", race_tries(1000),
                                   marker})
                       .wait(300s);
        std::printf("  without the exec guard: %s, marker %s\n", trim(out.out).c_str(),
                    std::filesystem::exists(marker) ? "written (the denied binary ran)" : "not written");
        std::filesystem::remove(marker);
    }
    auto& d = start(exec_race_rules(work_));
    if (auto why = exec_guard_missing(d); !why.empty()) GTEST_SKIP() << why;
    auto out = attack({"race-exec", "/bin/true", work_ + "/bin/bad", race_tries(3000), marker}, {}, 300s);
    std::string r = trim(out.out);
    std::printf("  with the exec guard: %s\n", r.c_str());
    RecordProperty("result", r);
    EXPECT_FALSE(std::filesystem::exists(marker)) << "the denied binary ran: " << r;
    EXPECT_GT(field(r, "ran"), 0) << r << out.err;
    EXPECT_GT(field(r, "refused"), 0) << "the race never showed the supervisor the denied name: " << r;
    EXPECT_EQ(field(r, "other"), 0) << r;
    // The race got past the supervisor at least once and the kernel stopped
    // it: killed at the exec tracepoint, or (BPF LSM) refused with EPERM,
    // which the attacker cannot tell from the supervisor's own EPERM. Either
    // way the kernel's act is in the audit log.
    auto rows = d.audit_rows([](const nlohmann::json& all) {
        for (const auto& row : all)
            if (row["kind"] == "kernel") return true;
        return false;
    });
    EXPECT_NE(rows.dump().find("\"kind\":\"kernel\""), std::string::npos)
        << "the race never got past the supervisor, so the guard was not tried: " << r;
}

// The same race on argv: the supervisor scans ["prog", ARG] for secrets and
// approves it; a thread swaps in an argument naming a token, which the
// kernel copies. The exec guard compares the argv on the new stack with the
// approved one and kills the process: no file named after the token appears.
TEST_F(AttackTest, ExecArgumentFlipNeverRunsWithTheRefusedArguments) {
    std::filesystem::create_directories(work_ + "/bin");
    std::filesystem::create_directories(work_ + "/out");
    install_tool(work_ + "/bin/tool");
    static const std::string alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string token = std::string("gh") + "p_";
    for (int i = 0; i < 36; ++i) token += alnum[(i * 7 + 3) % alnum.size()];
    auto& d = start(exec_race_rules(work_));
    if (auto why = exec_guard_missing(d); !why.empty()) GTEST_SKIP() << why;
    // Same length, so the torn states are all one of the two or a mix, never shorter.
    std::string plain = work_ + "/out/" + std::string(token.size(), 'p');
    auto out = attack({"race-exec", work_ + "/bin/tool", work_ + "/bin/tool", race_tries(3000), plain,
                       work_ + "/out/" + token},
                      {}, 300s);
    std::string r = trim(out.out);
    std::printf("  with the exec guard: %s\n", r.c_str());
    RecordProperty("result", r);
    // Torn mixes of the two that the scanner passes are approved and may run;
    // the token itself never does.
    EXPECT_FALSE(std::filesystem::exists(work_ + "/out/" + token)) << "the tool ran with the refused argument: " << r;
    EXPECT_GT(field(r, "killed"), 0) << "the race never got past the supervisor, so the guard was not tried: " << r;
    EXPECT_GT(field(r, "ran"), 0) << r << out.err;
    EXPECT_GT(field(r, "refused"), 0) << "the race never showed the supervisor the token: " << r;
    EXPECT_EQ(field(r, "other"), 0) << r;
}

// What the exec guard approves for a script is what the kernel loads: its
// interpreter, with the argv binfmt_script makes. Scripts keep working.
TEST_F(AttackTest, ScriptsRunUnderTheExecGuard) {
    auto& d = start();
    if (auto why = exec_guard_missing(d); !why.empty()) GTEST_SKIP() << why;
    std::filesystem::create_directories(work_ + "/bin");
    write_file(work_ + "/bin/script", "#!/bin/sh -e\necho \"script $0 $*\"\n");
    ::chmod((work_ + "/bin/script").c_str(), 0755);
    write_file(work_ + "/bin/nested", "#!" + work_ + "/bin/script nested-arg\n");
    ::chmod((work_ + "/bin/nested").c_str(), 0755);
    auto run = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {binary("airlock"), "--socket", d.socket(), "run", "--"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto o = Process::spawn(argv).wait();
        return std::to_string(o.status) + " " + trim(o.out);
    };
    EXPECT_EQ(run({work_ + "/bin/script", "a", "b c"}), "0 script " + work_ + "/bin/script a b c") << d.log_text();
    // A script whose interpreter is a script: the kernel goes two levels down.
    EXPECT_EQ(run({work_ + "/bin/nested", "x"}),
              "0 script " + work_ + "/bin/script nested-arg " + work_ + "/bin/nested x")
        << d.log_text();
    EXPECT_EQ(run({"/bin/sh", "-c", "echo plain"}), "0 plain");
    // A script whose interpreter is missing fails as it does unsupervised
    // (ENOENT: "not found", 127), not with the guard's refusal.
    write_file(work_ + "/bin/orphan", "#!/no/such/interpreter\n");
    ::chmod((work_ + "/bin/orphan").c_str(), 0755);
    EXPECT_EQ(run({"/bin/sh", "-c", work_ + "/bin/orphan; echo $?"}).substr(0, 2), "0 ");
    EXPECT_NE(run({"/bin/sh", "-c", work_ + "/bin/orphan; echo $?"}).find("127"), std::string::npos);
    EXPECT_EQ(d.log_text().find("killed"), std::string::npos) << d.log_text();
}

TEST_F(AttackTest, ConnectAddressFlipNeverReachesTheDeniedServer) {
    start();
    CountingServer ok(20000, 29999), bad(40000, 49999);
    ASSERT_GT(ok.port(), 0);
    ASSERT_GT(bad.port(), 0);
    auto out = attack({"race-connect", std::to_string(ok.port()), std::to_string(bad.port()), "2000"});
    std::string r = trim(out.out);
    std::printf("  %s\n", r.c_str());
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(bad.accepted(), 0) << r;
    EXPECT_GT(ok.accepted(), 0) << r << out.err;
    EXPECT_GT(field(r, "denied"), 0) << r;
}

// sendmsg without a destination is answered CONTINUE after reading
// msg_name == NULL; the kernel then reads the msghdr again. With MSG_FASTOPEN
// on a TCP socket a destination set by a racing thread is a full connect.
TEST_F(AttackTest, SendmsgFastOpenDestinationRaceNeverReachesTheDeniedServer) {
    std::ifstream tfo("/proc/sys/net/ipv4/tcp_fastopen");
    int mode = 0;
    if (!(tfo >> mode) || !(mode & 1)) GTEST_SKIP() << "TCP Fast Open client side disabled";
    start();
    CountingServer ok(20000, 29999), bad(40000, 49999);
    ASSERT_GT(bad.port(), 0);
    auto out = attack({"race-tfo", std::to_string(ok.port()), std::to_string(bad.port()), "2000"});
    std::string r = trim(out.out);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(bad.accepted(), 0) << "connections to a denied address: " << r << out.err;
}

// The fix for the race above CONTINUEs a destination-less sendmsg when the fd
// is a connected stream at decode time; the kernel then looks the fd number up
// again. A racing thread swaps a fresh, unconnected socket onto that number
// and sets msg_name: MSG_FASTOPEN then connects it to the denied address.
TEST_F(AttackTest, SendmsgFdSwapRaceNeverReachesTheDeniedServer) {
    std::ifstream tfo("/proc/sys/net/ipv4/tcp_fastopen");
    int mode = 0;
    if (!(tfo >> mode) || !(mode & 1)) GTEST_SKIP() << "TCP Fast Open client side disabled";
    start();
    CountingServer ok(20000, 29999), bad(40000, 49999);
    ASSERT_GT(bad.port(), 0);
    auto out = attack({"race-fdswap", std::to_string(ok.port()), std::to_string(bad.port()), "3000"});
    std::string r = trim(out.out);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(bad.accepted(), 0) << "connections to a denied address: " << r << out.err;
}

// connect() to 0.0.0.0 (and to ::) reaches the local host: the kernel routes
// an unspecified destination to loopback. A policy that refuses loopback but
// lets the agent reach other hosts on a port (keep it off the local database,
// the Docker API on tcp/2375...) must see the address actually connected to.
TEST_F(AttackTest, UnspecifiedDestinationIsDecidedAsLoopback) {
    auto& d = start(
        "  - name: no-local-admin\n"
        "    match: { action: connect, dest: [\"127.0.0.0/8\", \"::1\"], port: [\"40000-49999\"] }\n"
        "    verdict: deny\n"
        "    errno: EACCES\n"
        "  - name: remote-admin-ok\n"
        "    match: { action: connect, dest: [\"0.0.0.0/0\", \"::/0\"], port: [\"40000-49999\"] }\n"
        "    verdict: allow\n");
    CountingServer local(40000, 49999, true, "local-admin");
    ASSERT_GT(local.port(), 0);
    const std::string port = std::to_string(local.port());
    EXPECT_EQ(trim(d.run_probe({"connect", "127.0.0.1", port}).wait().out), "err EACCES");
    auto any = d.run_probe({"connect", "0.0.0.0", port}).wait();
    EXPECT_NE(trim(any.out), "ok local-admin") << "0.0.0.0 reached the loopback service the policy refuses";
    auto mapped = d.run_probe({"connect", "::ffff:0.0.0.0", port}).wait();
    EXPECT_NE(trim(mapped.out), "ok local-admin") << "::ffff:0.0.0.0 reached the loopback service";
    EXPECT_EQ(local.accepted(), 0);
}

// A local service as most listen: on every address of `family` (INADDR_ANY,
// or in6addr_any for IPv6 alone), on a port in 40000-49999.
class EveryAddressListener {
public:
    explicit EveryAddressListener(int family) {
        fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (family == AF_INET6) ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        sockaddr_storage ss{};
        for (int p = 40000 + ::getpid() % 9000; p < 49999 && !port_; ++p) {
            socklen_t len = 0;
            if (family == AF_INET) {
                auto* in = reinterpret_cast<sockaddr_in*>(&ss);
                in->sin_family = AF_INET;
                in->sin_port = htons(static_cast<uint16_t>(p));
                len = sizeof *in;
            } else {
                auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(static_cast<uint16_t>(p));
                len = sizeof *in6;
            }
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0) port_ = p;
        }
        ::listen(fd_, 16);
    }
    EveryAddressListener(const EveryAddressListener&) = delete;
    EveryAddressListener& operator=(const EveryAddressListener&) = delete;
    ~EveryAddressListener() { ::close(fd_); }
    int port() const { return port_; }
    // Whether a connection is waiting to be accepted.
    bool reached(int timeout_ms) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, timeout_ms) > 0;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

constexpr const char* k_no_local_admin =
    "  - name: no-local-admin\n"
    "    match: { action: connect, dest: [\"127.0.0.0/8\", \"::1\"], port: [\"40000-49999\"] }\n"
    "    verdict: deny\n"
    "    errno: EACCES\n"
    "  - name: remote-admin-ok\n"
    "    match: { action: connect, dest: [\"0.0.0.0/0\", \"::/0\"], port: [\"40000-49999\"] }\n"
    "    verdict: allow\n";

// The host's own addresses are this host too: a service listening on all
// addresses is reached through eth0's address as well as through 127.0.0.1.
// The daemon decides such a connect as loopback too (the kernel says whether
// an address is local), so a policy about loopback covers them.
TEST_F(AttackTest, HostsOwnAddressIsDecidedAsLoopback) {
    const std::string own = own_address(AF_INET);
    if (own.empty()) GTEST_SKIP() << "no non-loopback IPv4 address on this host";
    auto& d = start(k_no_local_admin);
    EveryAddressListener service(AF_INET);
    ASSERT_GT(service.port(), 0);
    const std::string port = std::to_string(service.port());
    EXPECT_EQ(trim(d.run_probe({"connect", "127.0.0.1", port}).wait().out), "err EACCES");
    auto via_own = d.run_probe({"connect", own, port, "nonblock"}).wait();
    EXPECT_EQ(trim(via_own.out), "err EACCES") << d.log_text();
    // Through a dual-stack socket, and through another loopback address.
    EXPECT_EQ(trim(d.run_probe({"connect", "::ffff:" + own, port}).wait().out), "err EACCES");
    EXPECT_EQ(trim(d.run_probe({"connect", "127.0.0.2", port}).wait().out), "err EACCES");
    // Another host (TEST-NET-2) is only itself: allowed, whatever happens next.
    EXPECT_NE(trim(d.run_probe({"connect", "198.51.100.7", port, "nonblock"}).wait().out), "err EACCES");
    EXPECT_EQ(d.log_text().find("cannot tell"), std::string::npos) << d.log_text();
    EXPECT_FALSE(service.reached(300)) << "connect to " << own << ":" << port
                                       << " reached the local service the policy refuses (" << trim(via_own.out)
                                       << ")";
}

TEST_F(AttackTest, HostsOwnIpv6AddressIsDecidedAsLoopback) {
    const std::string own = own_address(AF_INET6);
    if (own.empty()) GTEST_SKIP() << "no global IPv6 address on this host";
    auto& d = start(k_no_local_admin);
    EveryAddressListener service(AF_INET6);
    ASSERT_GT(service.port(), 0);
    const std::string port = std::to_string(service.port());
    EXPECT_EQ(trim(d.run_probe({"connect", "::1", port}).wait().out), "err EACCES");
    auto via_own = d.run_probe({"connect", own, port, "nonblock"}).wait();
    EXPECT_EQ(trim(via_own.out), "err EACCES") << d.log_text();
    EXPECT_FALSE(service.reached(300)) << "connect to [" << own << "]:" << port
                                       << " reached the local service the policy refuses (" << trim(via_own.out)
                                       << ")";
}

// An agent run as root (airlock run without --user, as root) keeps every
// capability. With CAP_NET_RAW it writes its own IP header: the daemon decides
// on the sockaddr (an allowed port), the datagram goes where the header says.
// (The same capabilities give mknod of a block device under an allowed name,
// finit_module, bpf... airlock does not drop them.)
TEST_F(AttackTest, RootAgentRawSocketCannotSendPastTheDecidedAddress) {
    start();
    int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int bad = 0;
    for (int p = 40000 + ::getpid() % 9000; p < 49999 && !bad; ++p) {
        addr.sin_port = htons(static_cast<uint16_t>(p));
        if (::bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) bad = p;
    }
    ASSERT_GT(bad, 0);
    auto out = attack({"raw-udp", "20001", std::to_string(bad)});
    pollfd p{udp, POLLIN, 0};
    bool received = ::poll(&p, 1, 500) > 0;
    ::close(udp);
    EXPECT_FALSE(received) << "a datagram reached denied port " << bad << " (" << trim(out.out) << ")";
}

// ===== 3. No self-approval =======================================================

// Every route from inside a session to the control socket is an agent's
// connection: approve, list and session.create are refused.
TEST_F(AttackTest, NoRouteToTheControlSocketApprovesFromInside) {
    auto& d = start();
    auto victim = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    std::string id = std::to_string(pending[0]["id"].get<std::int64_t>());
    auto out = attack({"control", d.socket(), id});
    const std::string& r = out.out;
    // The daemon refuses an agent's connect to its control socket outright
    // (EACCES), whatever the policy; should a route ever connect anyway, every
    // request on it must still be unauthorized.
    EXPECT_NE(line_of(r, "direct ").find("connect EACCES"), std::string::npos) << r << out.err;
    for (const char* route : {"direct ", "list ", "create ", "passed ", "procfd "}) {
        std::string l = line_of(r, route);
        if (l.empty()) continue;  // only printed when that route connected
        EXPECT_TRUE(l.find("unauthorized") != std::string::npos || l.find("EACCES") != std::string::npos)
            << route << ": " << l;
    }
    EXPECT_EQ(d.pending().size(), 1u);
    EXPECT_EQ(d.cli({"deny", id}).status, 0);
    EXPECT_EQ(trim(victim.wait().out), "err EACCES");
}

// An approver's connection held by a process outside the session, of the same
// uid as the agent (`airlock watch` in the user's other terminal): the agent
// takes it with pidfd_getfd and approves its own request over it.
void steal_and_approve(Daemon& d, const std::vector<std::string>& agent, const std::string& what) {
    Spawned attacker(agent);
    std::string log;
    for (std::string l; (l = attacker.line(10s)) != "done" && !l.empty();) log += l + "\n";
    // Whatever happened, do not leave the request waiting.
    for (int i = 0; i < 20; ++i) {
        auto pending = d.pending();
        for (const auto& p : pending) (void)d.cli({"deny", std::to_string(p["id"].get<std::int64_t>())});
        if (!pending.empty()) break;
        std::this_thread::sleep_for(50ms);
    }
    std::string held = attacker.line(10s);
    EXPECT_EQ(held, "held err EACCES") << what << ": the agent approved its own request:\n" << log;
    EXPECT_EQ(log.find("\"decision\":\"approved\""), std::string::npos) << log;
}

TEST_F(AttackTest, AgentCannotApproveOverAStolenApproversConnection) {
    if (!have_nobody()) GTEST_SKIP() << "needs the user 'nobody'";
    auto& d = start();
    Spawned holder({attacker_path(), "hold-control", d.socket()}, as_user(nobody_uid_, nobody_gid_));
    std::string hello = holder.line(5s);
    ASSERT_GE(field(hello, "fd"), 0) << hello;
    steal_and_approve(d,
                      agent_argv({"steal-approve", std::to_string(holder.pid()), std::to_string(field(hello, "fd")),
                                  work_ + "/held/file"},
                                 as_nobody_args()),
                      "unprivileged agent, pidfd_getfd");
}

// The same for an agent running as root (airlock run without --user, as
// root): it keeps CAP_SYS_ADMIN, so it can also claim the holder's pid in
// SCM_CREDENTIALS.
TEST_F(AttackTest, RootAgentCannotApproveOverAStolenConnectionWithForgedCredentials) {
    auto& d = start();
    Spawned holder({attacker_path(), "hold-control", d.socket()});
    std::string hello = holder.line(5s);
    ASSERT_GE(field(hello, "fd"), 0) << hello;
    steal_and_approve(d,
                      agent_argv({"steal-approve", std::to_string(holder.pid()), std::to_string(field(hello, "fd")),
                                  work_ + "/held/file", "forge"}),
                      "root agent, pidfd_getfd + forged SCM_CREDENTIALS");
}

// An agent that may reach the daemon's socket (the shipped default policy
// allows unix sockets under /run and /tmp) fills the 256 control connections;
// approvers and new sessions are then turned away.
TEST_F(AttackTest, AgentCannotExhaustTheControlConnections) {
    auto& d = start();
    Spawned agent(agent_argv({"flood-control", d.socket(), "300", "10"}));
    std::string r = agent.line(20s);
    ASSERT_FALSE(r.empty()) << d.log_text().substr(0, 2000);
    auto c = client::ControlClient::connect(d.socket());
    ASSERT_TRUE(c);
    auto status = c->call({std::nullopt, protocol::StatusRequest{}});
    EXPECT_TRUE(status && status->ok) << r << ": an approver could not talk to the daemon: "
                                      << (status ? status->error_message : status.error().to_string());
}

// The shipped default policy allows connecting to any unix socket under /tmp
// and /run (as does the test policy). Some of those sockets belong to command
// servers running outside the session with the user's rights: tmux and screen
// servers, the systemd user manager and session D-Bus (systemd-run --user).
// Here a tmux server of the same user, outside the session, runs a command
// for the agent that reads the secret.
TEST_F(AttackTest, UnixSocketAllowanceDoesNotReachCommandServersOutsideTheSession) {
    if (::access("/usr/bin/tmux", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/tmux";
    auto& d = start();
    // Where tmux puts it (/tmp/tmux-UID/), outside what the policy allows: the
    // shipped policies ask for such sockets, and here nobody approves.
    std::string sock = "/tmp/airlock-tmux-" + std::to_string(::getpid()) + ".sock", out = work_ + "/data/out";
    ASSERT_EQ(Process::spawn({"/usr/bin/tmux", "-S", sock, "new-session", "-d", "sleep 20"}).wait().status, 0);
    auto agent = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", "/usr/bin/tmux", "-S", sock,
                                 "run-shell", "cat " + work_ + "/secret/key > " + out})
                     .wait(10s);
    std::this_thread::sleep_for(300ms);
    std::ifstream in(out);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    (void)Process::spawn({"/usr/bin/tmux", "-S", sock, "kill-server"}).wait(5s);
    ::unlink(sock.c_str());
    EXPECT_EQ(got.find("TOP SECRET"), std::string::npos)
        << "the agent had a tmux server outside the session read the secret (agent exit " << agent.status << ")";
}

// ===== 4. Filter escapes ===========================================================

TEST_F(AttackTest, Int80SyscallKillsTheProcess) {
    start();
    auto out = attack({"int80", work_ + "/secret/key"});
    std::string l = line_of(out.out, "int80 ");
    if (l == "int80 killed=11") GTEST_SKIP() << "no IA32 emulation in this kernel (int 0x80 faults)";
    EXPECT_EQ(l, "int80 killed=" + std::to_string(SIGSYS)) << out.out << out.err;
    EXPECT_EQ(out.out.find("TOP SECRET"), std::string::npos);
}

TEST_F(AttackTest, X32SyscallKillsTheProcess) {
    start();
    auto out = attack({"x32", work_ + "/secret/key"});
    EXPECT_EQ(line_of(out.out, "x32 "), "x32 killed=" + std::to_string(SIGSYS)) << out.out << out.err;
    EXPECT_EQ(out.out.find("TOP SECRET"), std::string::npos);
}

TEST_F(AttackTest, SyscallsAroundTheFilterAreRefused) {
    start();
    auto out = attack({"refused", work_});
    const std::string& r = out.out;
    EXPECT_EQ(line_of(r, "io_uring_setup="), "io_uring_setup=EPERM") << r << out.err;
    EXPECT_NE(line_of(r, "name_to_handle_at=").find("open_by_handle_at=EPERM"), std::string::npos) << r;
    EXPECT_EQ(r.find("TOP SECRET"), std::string::npos) << r;
    EXPECT_EQ(line_of(r, "unshare_user_ns="), "unshare_user_ns=EPERM") << r;
    EXPECT_EQ(line_of(r, "unshare_user="), "unshare_user=EPERM") << r;
    EXPECT_EQ(line_of(r, "unshare_ns="), "unshare_ns=EPERM") << r;
    EXPECT_EQ(line_of(r, "clone_newuser="), "clone_newuser=EPERM") << r;
    EXPECT_EQ(line_of(r, "clone3="), "clone3=ENOSYS") << r;
    EXPECT_EQ(line_of(r, "ptrace_attach="), "ptrace_attach=EPERM") << r;
    EXPECT_EQ(line_of(r, "ptrace_seize="), "ptrace_seize=EPERM") << r;
    EXPECT_EQ(line_of(r, "process_vm_writev="), "process_vm_writev=EPERM") << r;
    EXPECT_EQ(line_of(r, "userfaultfd="), "userfaultfd=EPERM") << r;
    EXPECT_EQ(line_of(r, "mount="), "mount=EPERM") << r;
    EXPECT_EQ(line_of(r, "setns="), "setns=EPERM") << r;
    EXPECT_EQ(line_of(r, "chroot="), "chroot=EPERM") << r;
    EXPECT_EQ(line_of(r, "open_tree="), "open_tree=EPERM") << r;
    EXPECT_EQ(line_of(r, "fsopen="), "fsopen=EPERM") << r;
    // The kernel allows one listener per filter chain: no second supervisor.
    EXPECT_EQ(line_of(r, "seccomp_new_listener="), "seccomp_new_listener=EBUSY") << r;
}

// ptrace and process_vm_writev are refused "into other processes", but their
// siblings are not: pidfd_getfd copies any fd (an open secret, a connected
// socket) out of a same-uid process outside the session, process_vm_readv
// reads its memory. Neither goes through open/connect.
TEST_F(AttackTest, CannotReachIntoSameUserProcessesOutsideTheSession) {
    if (!have_nobody()) GTEST_SKIP() << "needs the user 'nobody'";
    start();
    Spawned holder({attacker_path(), "hold-file", work_ + "/secret/key"}, as_user(nobody_uid_, nobody_gid_));
    std::string h = holder.line(5s);
    ASSERT_GE(field(h, "fd"), 0) << h;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(h, m, std::regex("addr=([0-9]+) len=([0-9]+)"))) << h;
    auto out = attack({"steal-file", std::to_string(holder.pid()), std::to_string(field(h, "fd")), m[1].str(),
                       m[2].str()},
                      as_nobody_args());
    EXPECT_EQ(line_of(out.out, "pidfd_getfd ok"), "") << "pidfd_getfd stole an open secret:\n" << out.out;
    EXPECT_EQ(line_of(out.out, "process_vm_readv ok"), "")
        << "process_vm_readv read an outside process's memory:\n" << out.out;
}

// perf_event_open on a same-uid process outside the session (allowed at
// perf_event_paranoid <= 2) samples its registers and user stack.
TEST_F(AttackTest, PerfEventsCannotSampleSameUserProcessesOutsideTheSession) {
    if (!have_nobody()) GTEST_SKIP() << "needs the user 'nobody'";
    start();
    Spawned holder({attacker_path(), "hold-secret-spin", work_ + "/secret/key"}, as_user(nobody_uid_, nobody_gid_));
    std::string h = holder.line(5s);
    ASSERT_GE(field(h, "pid"), 0) << h;
    auto out = attack({"perf-peek", std::to_string(field(h, "pid"))}, as_nobody_args());
    std::string r = trim(out.out);
    if (r == "perf_event_open=EACCES") return;  // perf_event_paranoid forbids it anyway
    EXPECT_EQ(r, "perf_event_open=EPERM") << "perf_event_open on an outside process was not refused";
    EXPECT_EQ(r.find("found=1"), std::string::npos) << "its stack held the secret";
}

// ===== 5. Holding the daemon hostage ================================================

// userfaultfd(2) is refused, but /dev/userfaultfd (USERFAULTFD_IOC_NEW) hands
// out the same thing to whoever may open the device; a path pointer into a
// registered page then stalls the daemon's process_vm_readv.
TEST_F(AttackTest, UserfaultfdCannotStallTheDaemon) {
    auto& d = start();
    Spawned agent(agent_argv({"uffd", work_ + "/data/hello.txt", "5"}));
    std::string first = agent.line(10s);
    EXPECT_EQ(first, "userfaultfd_syscall=EPERM");
    std::this_thread::sleep_for(1s);
    std::string got;
    long long ms = innocent_read_ms(8s, &got);
    std::string last = agent.line(15s);
    if (last == "dev_userfaultfd=ENOENT") GTEST_SKIP() << "no /dev/userfaultfd on this machine";
    // Refused (EPERM/EACCES) is the defence holding; the timing below still applies.
    EXPECT_EQ(got, "ok hello from airlock");
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 2500) << "another session waited while the daemon read a userfaultfd page (" << last << ")";
    EXPECT_TRUE(d.alive());
}

TEST_F(AttackTest, UnterminatedAndBadPathPointersFailCleanly) {
    auto& d = start();
    auto out = attack({"unterminated"});
    const std::string& r = out.out;
    EXPECT_EQ(line_of(r, "tail="), "tail=EFAULT") << r << out.err;
    EXPECT_EQ(line_of(r, "page="), "page=ENAMETOOLONG") << r;
    EXPECT_EQ(line_of(r, "long="), "long=ENAMETOOLONG") << r;
    EXPECT_EQ(line_of(r, "null="), "null=EFAULT") << r;
    EXPECT_EQ(line_of(r, "kernel="), "kernel=EFAULT") << r;
    EXPECT_TRUE(d.alive());
    std::string got;
    EXPECT_GE(innocent_read_ms(5s, &got), 0);
    EXPECT_EQ(got, "ok hello from airlock");
}

// 1100 threads open a held path (ask, 1 s timeout) until 10,000 opens are
// done or 6 s have passed: past 1024 pending per session the daemon answers
// EAGAIN, stays up and keeps serving another session promptly.
TEST_F(AttackTest, FloodOfHeldOpensHitsTheLimitAndOthersStillWork) {
    auto& d = start();
    Spawned agent(agent_argv({"flood-held", work_ + "/timeout-deny/file", "1100", "10000", "6"}));
    std::this_thread::sleep_for(2s);
    std::string got;
    long long ms = innocent_read_ms(10s, &got);
    EXPECT_EQ(got, "ok hello from airlock");
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 3000) << "another session's read under the flood";
    std::string r = agent.line(20s);
    std::printf("  %s (other session: %lld ms)\n", r.c_str(), ms);
#if defined(__SANITIZE_ADDRESS__)
    // The flood is time-bounded and a sanitized daemon is several times
    // slower: it may never have 1,100 calls in flight. The limit itself is
    // checked by the optimized build's run of this test.
    constexpr bool sanitized = true;
#else
    constexpr bool sanitized = false;
#endif
    if (!sanitized) {
        EXPECT_GT(field(r, "eagain"), 0) << r;
        // Every thread got answers; how many in the 6 s depends on the
        // machine's load (a throughput figure, not this test's claim).
        EXPECT_GE(field(r, "total"), field(r, "threads")) << r;
    } else {
        EXPECT_GT(field(r, "total"), 0) << r;
    }
    EXPECT_GT(field(r, "erofs"), 0) << r;
    EXPECT_EQ(field(r, "other"), 0) << r;
    EXPECT_EQ(field(r, "ok"), 0) << r;
    EXPECT_TRUE(d.alive());
}

// Blocking connects to a listener whose backlog is full (SYNs are dropped, the
// connect retries for ~2 minutes) occupy the daemon's worker threads; another
// session's connect must still go through.
TEST_F(AttackTest, BlockedConnectsDoNotStarveOtherSessions) {
    auto& d = start();
    CountingServer tarpit(20000, 29999, /*accepting=*/false);
    CountingServer good(20000, 29999);
    ASSERT_GT(tarpit.port(), 0);
    // Fill the tarpit's accept queue from outside.
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(tarpit.port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(fd);
    }
    Spawned agent(agent_argv({"connect-many", std::to_string(tarpit.port()), "6"}, unprivileged()));
    std::this_thread::sleep_for(1500ms);
    std::string got;
    long long ms = innocent_connect_ms(good.port(), 6s, &got);
    EXPECT_EQ(got, "ok hello-tcp");
    EXPECT_GE(ms, 0) << "another session's allowed connect never completed";
    EXPECT_LT(ms, 3000);
    for (int fd : fillers) ::close(fd);
    hard_stop(d);
}

// The same with FIFOs: an open for reading blocks in the daemon's worker until
// a writer appears, and stays blocked after the agent is killed.
TEST_F(AttackTest, BlockedFifoOpensDoNotStarveOtherSessions) {
    auto& d = start();
    CountingServer good(20000, 29999);
    std::string fifo = work_ + "/data/fifo";
    ::chmod((work_ + "/data").c_str(), 0777);
    {
        Spawned agent(agent_argv({"fifo", fifo, "5"}, unprivileged()));
        std::this_thread::sleep_for(1500ms);
    }  // killed: its held opens are gone, the daemon's are not
    std::this_thread::sleep_for(300ms);
    std::string got;
    long long ms = innocent_connect_ms(good.port(), 6s, &got);
    EXPECT_EQ(got, "ok hello-tcp");
    EXPECT_GE(ms, 0) << "another session's allowed connect never completed";
    EXPECT_LT(ms, 3000);
    // Release the stuck workers.
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    std::this_thread::sleep_for(200ms);
    if (w >= 0) ::close(w);
    hard_stop(d);
}

// Each session may hold 4 workers on blocking calls; a FIFO open never
// returns until a writer comes, even after the agent and its session are
// gone. A few short sessions leave every worker blocked for good.
TEST_F(AttackTest, AbandonedFifoOpensDoNotLeakWorkers) {
    auto& d = start();
    CountingServer good(20000, 29999);
    ::chmod((work_ + "/data").c_str(), 0777);
    std::vector<std::string> fifos;
    for (int round = 0; round < 6; ++round) {
        fifos.push_back(work_ + "/data/fifo-" + std::to_string(round));
        Spawned agent(agent_argv({"fifo", fifos.back(), "6"}, unprivileged()));
        std::this_thread::sleep_for(700ms);
    }  // each killed at the end of its round
    std::this_thread::sleep_for(300ms);
    std::string got;
    long long ms = innocent_connect_ms(good.port(), 6s, &got);
    EXPECT_EQ(got, "ok hello-tcp");
    EXPECT_GE(ms, 0) << "after 6 abandoned sessions, another session's connect never completed";
    EXPECT_LT(ms, 3000);
    for (const auto& f : fifos) {
        int w = ::open(f.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        std::this_thread::sleep_for(50ms);
        if (w >= 0) ::close(w);
    }
    hard_stop(d);
}

// A read lease on a file the agent owns makes any open for writing wait up to
// /proc/sys/fs/lease-break-time (45 s) for the lease holder; the daemon opens
// regular files on its event-loop thread.
TEST_F(AttackTest, FileLeaseCannotStallTheEventLoop) {
    auto& d = start();
    write_file(work_ + "/data/leased", "lease me");
    ::chown((work_ + "/data/leased").c_str(), nobody_uid_, nobody_gid_);  // the agent's own file
    Spawned agent(agent_argv({"lease", work_ + "/data/leased", "5"}, unprivileged()));
    std::this_thread::sleep_for(1s);
    std::string got;
    long long ms = innocent_read_ms(8s, &got);
    std::string r = agent.line(15s);
    if (r.starts_with("setlease ")) GTEST_SKIP() << "file leases unavailable: " << r;
    EXPECT_EQ(got, "ok hello from airlock");
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 2500) << "another session waited for the agent's lease (" << r << ")";
    EXPECT_TRUE(d.alive());
}

// With leases moved off the event loop (open O_NONBLOCK, then a worker), the
// same leases now hold the worker threads instead: a handful of leased files
// and every session's connects queue behind them for lease-break-time.
TEST_F(AttackTest, LeasesCannotStarveTheWorkers) {
    auto& d = start();
    CountingServer good(20000, 29999);
    ::chmod((work_ + "/data").c_str(), 0777);
    Spawned agent(agent_argv({"lease-many", work_ + "/data", "6", "6"}, unprivileged()));
    std::this_thread::sleep_for(1500ms);
    std::string got;
    long long ms = innocent_connect_ms(good.port(), 8s, &got);
    std::string r = agent.line(15s);
    std::printf("  %s; other session's connect: %lld ms\n", r.c_str(), ms);
    if (r.starts_with("setlease ")) GTEST_SKIP() << "file leases unavailable: " << r;
    EXPECT_EQ(got, "ok hello-tcp");
    EXPECT_GE(ms, 0) << "another session's connect never completed (" << r << ")";
    EXPECT_LT(ms, 3000) << r;
    hard_stop(d);
}

// ===== 6. /proc tricks ==============================================================

void expect_proc_tricks(const std::string& r, const std::string& daemon_errno) {
    for (const char* name : {"daemon_environ", "daemon_mem", "daemon_task_environ", "daemon_via_thread_self",
                             "daemon_via_root", "daemon_via_symlink"}) {
        std::string l = line_of(r, std::string(name) + "=");
        EXPECT_TRUE(l.starts_with(std::string(name) + "=err")) << l << "\n" << r;
        if (!daemon_errno.empty()) {
            EXPECT_EQ(l, std::string(name) + "=err " + daemon_errno) << r;
        }
    }
    for (const char* name : {"self_root_secret", "thread_self_root_secret", "pid_root_secret", "fd_dir_secret",
                             "openat_dirfd_secret", "cwd_relative_secret", "proc_cwd_secret", "dotdot_secret",
                             "chdir_proc_self_root_secret"}) {
        // The policy's errno where the policy refused; any error where the
        // resolver refused first. Never the bytes.
        EXPECT_TRUE(line_of(r, std::string(name) + "=").starts_with(std::string(name) + "=err ")) << r;
    }
    // Not security: the same relative route to an allowed file must still work.
    EXPECT_EQ(line_of(r, "chdir_proc_self_root_public="), "chdir_proc_self_root_public=ok public data") << r;
    for (const char* prefix : {"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"})
        EXPECT_EQ(line_of(r, std::string("pipe ") + prefix), std::string("pipe ") + prefix + "=ok pipe-bytes") << r;
    EXPECT_EQ(r.find("TOP SECRET"), std::string::npos) << r;
}

TEST_F(AttackTest, ProcTricksAsAnUnprivilegedAgent) {
    if (!have_nobody()) GTEST_SKIP() << "needs the user 'nobody'";
    auto& d = start();
    ::chmod((work_ + "/data").c_str(), 0777);  // the agent plants a symlink there
    auto out = attack({"proc-tricks", work_, std::to_string(d.pid())}, as_nobody_args());
    expect_proc_tricks(out.out, "");
}

TEST_F(AttackTest, ProcTricksAsRootUnderAPolicyThatDeniesOtherProcesses) {
    auto& d = start(
        "  - name: proc-secrets\n"
        "    match: { action: open, path: [\"/proc/*/environ\", \"/proc/*/mem\", \"/proc/*/task/*/environ\","
        " \"/proc/*/task/*/mem\"] }\n"
        "    verdict: deny\n"
        "    errno: EACCES\n");
    auto out = attack({"proc-tricks", work_, std::to_string(d.pid())});
    expect_proc_tricks(out.out, "EACCES");
}

// /proc/<pid>/root of a same-uid process in another mount namespace (a rootless
// container, flatpak, `unshare -m`) leads into mounts the daemon cannot see;
// the kernel's name for such an object is relative to *that* namespace, so a
// bind mount there gives a denied file an allowed name.
TEST_F(AttackTest, ProcPidRootOfAnotherMountNamespaceCannotAliasTheSecret) {
    if (!have_nobody()) GTEST_SKIP() << "needs the user 'nobody'";
    auto& d = start();
    std::filesystem::create_directories(work_ + "/data/alias");
    std::string secret = work_ + "/secret", alias = work_ + "/data/alias";
    uid_t uid = nobody_uid_;
    gid_t gid = nobody_gid_;
    Spawned other({"/bin/sleep", "30"}, [&, uid, gid] {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount(secret.c_str(), alias.c_str(), nullptr, MS_BIND, nullptr) != 0)
            ::_exit(125);
        as_user(uid, gid)();
    });
    bool ready = false;
    for (int i = 0; i < 200 && !ready; ++i) {
        std::ifstream comm("/proc/" + std::to_string(other.pid()) + "/comm");
        std::string name;
        ready = (comm >> name) && name == "sleep";
        if (!ready) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(ready);
    ASSERT_FALSE(std::filesystem::exists(alias + "/key")) << "the bind mount leaked into the host namespace";
    std::string via = "/proc/" + std::to_string(other.pid()) + "/root" + alias + "/key";
    auto out = d.run_probe({"read", via}, as_nobody_args()).wait();
    EXPECT_NE(trim(out.out), "ok TOP SECRET") << "read the secret through " << via;
    // chdir is not held: the agent's cwd itself can be in the other namespace,
    // and relative opens start there.
    std::string dir = "/proc/" + std::to_string(other.pid()) + "/root" + alias;
    auto relative = d.run_probe({"--cwd", dir, "read", "key"}, as_nobody_args()).wait();
    EXPECT_NE(trim(relative.out), "ok TOP SECRET") << "read the secret relative to a cwd of " << dir;
    // The direct name is still denied, so the difference is the alias alone.
    auto direct = d.run_probe({"read", "/proc/" + std::to_string(other.pid()) + "/root" + secret + "/key"},
                              as_nobody_args())
                      .wait();
    EXPECT_TRUE(trim(direct.out).starts_with("err ")) << direct.out;
}

}  // namespace
}  // namespace airlock::test
