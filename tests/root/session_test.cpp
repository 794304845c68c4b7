// End-to-end tests with real processes under `airlock run`, a real airlockd,
// real cgroups, real seccomp listeners and a real SQLite audit log.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <map>

#include <atomic>
#include <set>

#include <nlohmann/json.hpp>

#include "harness.hpp"
#include "policy_fixture.hpp"

namespace airlock::test {
namespace {

using namespace std::chrono_literals;

class SessionTest : public ::testing::Test {
protected:
    void SetUp() override {
        AIRLOCK_REQUIRE_ROOT();
        work_ = make_temp_dir();
        for (const char* sub : {"secret", "held", "timeout-allow", "timeout-deny", "data"})
            std::filesystem::create_directories(work_ + "/" + sub);
        write_file(work_ + "/data/hello.txt", "hello from airlock");
        write_file(work_ + "/secret/key", "TOP SECRET");
        write_file(work_ + "/held/file", "approved bytes");
        write_file(work_ + "/timeout-allow/file", "allowed after timeout");
        write_file(work_ + "/timeout-deny/file", "never");
        ::symlink((work_ + "/secret/key").c_str(), (work_ + "/data/innocent-link").c_str());
    }
    void TearDown() override {
        daemon_.reset();
        std::error_code ec;
        if (!work_.empty()) std::filesystem::remove_all(work_, ec);
    }
    Daemon& start(const std::string& extra_rules = "", bool allow_owner = true, std::vector<std::string> args = {}) {
        daemon_ = std::make_unique<Daemon>(test_policy(work_, extra_rules, allow_owner), std::move(args));
        return *daemon_;
    }
    std::string work_;
    std::unique_ptr<Daemon> daemon_;
};


TEST_F(SessionTest, AllowedReadReturnsTheFileBytes) {
    auto& d = start();
    auto out = d.run_probe({"read", work_ + "/data/hello.txt"}).wait();
    EXPECT_EQ(trim(out.out), "ok hello from airlock") << out.err << d.log_text();
    EXPECT_EQ(out.status, 0);
}

TEST_F(SessionTest, DenyGivesThePolicysErrno) {
    auto& d = start();
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/secret/key"}).wait().out), "err EPERM");
    // A symlink from an allowed place is decided on its target, not its name.
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/data/innocent-link"}).wait().out), "err EPERM");
    // Probing for names inside a denied directory gets the policy's errno, not ENOENT.
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/secret/does-not-exist"}).wait().out), "err EPERM");
}

TEST_F(SessionTest, ProcSelfIsTheAgentNotTheDaemon) {
    auto& d = start();
    auto out = d.run_probe({"read", "/proc/self/comm"}).wait();
    EXPECT_EQ(trim(out.out), "ok agent_probe") << out.err;
}

TEST_F(SessionTest, AskBlocksUntilApprovedThenReturnsTheBytes) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    const auto& r = pending[0];
    for (const char* key : {"id", "session", "pid", "action", "object", "rule", "created_at"})
        EXPECT_TRUE(r.contains(key)) << key << " missing in " << r.dump();
    EXPECT_EQ(r["action"], "open");
    EXPECT_EQ(r["object"], work_ + "/held/file");
    EXPECT_EQ(r["rule"], "held");
    EXPECT_EQ(r["pid"].get<pid_t>(), agent.pid());

    // Still held: nothing printed yet.
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(d.pending().size(), 1u);

    auto approve = d.cli({"approve", std::to_string(r["id"].get<std::int64_t>()), "--reason", "looks fine"});
    EXPECT_EQ(approve.status, 0) << approve.err;
    auto out = agent.wait();
    EXPECT_EQ(trim(out.out), "ok approved bytes") << out.err;
    EXPECT_TRUE(d.pending().empty());
}

TEST_F(SessionTest, AskDeniedFailsWithEacces) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    auto deny = d.cli({"deny", std::to_string(pending[0]["id"].get<std::int64_t>()), "--reason", "no"});
    EXPECT_EQ(deny.status, 0) << deny.err;
    EXPECT_EQ(trim(agent.wait().out), "err EACCES");
}

TEST_F(SessionTest, SecondApproverIsToldWhoDecided) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    std::string id = std::to_string(pending[0]["id"].get<std::int64_t>());
    EXPECT_EQ(d.cli({"deny", id}).status, 0);
    auto late = d.cli({"approve", id});
    EXPECT_NE(late.status, 0);
    EXPECT_NE(late.err.find("already denied by user:root(0)"), std::string::npos) << late.err;
    EXPECT_EQ(trim(agent.wait().out), "err EACCES");
}

TEST_F(SessionTest, TimeoutAppliesOnTimeout) {
    auto& d = start();
    auto allowed = d.run_probe({"read", work_ + "/timeout-allow/file"});
    auto denied = d.run_probe({"read", work_ + "/timeout-deny/file"});
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(trim(allowed.wait().out), "ok allowed after timeout");
    EXPECT_EQ(trim(denied.wait().out), "err EROFS");
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
}

TEST_F(SessionTest, ApprovalFromInsideAnAgentSessionIsRefused) {
    auto& d = start();  // the policy lets agents reach unix sockets under /tmp, the daemon's among them
    auto victim = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    std::string id = std::to_string(pending[0]["id"].get<std::int64_t>());
    // The "agent" is airlock's own CLI, trying to approve the other session's request.
    auto inside = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", binary("airlock"), "--socket",
                                  d.socket(), "approve", id})
                      .wait();
    EXPECT_NE(inside.status, 0);
    // The connect itself is refused by the daemon, although the policy allows /tmp sockets.
    EXPECT_NE(inside.err.find("Permission denied"), std::string::npos) << inside.err << inside.out;
    EXPECT_EQ(d.pending().size(), 1u);
    EXPECT_EQ(d.cli({"deny", id}).status, 0);
    victim.wait();
}

TEST_F(SessionTest, SelfApprovalRefusedWhenThePolicySaysSo) {
    auto& d = start("", /*allow_owner=*/false);
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    auto pending = d.wait_pending(1, 1s);
    ASSERT_EQ(pending.size(), 0u) << "the owner must not even see its own requests";
    // The owner (root here) cannot see it; find it from the audit log instead.
    auto find_request = [](const nlohmann::json& rows) -> std::int64_t {
        for (const auto& row : rows)
            if (row["kind"] == "request_created") return row["request_id"].get<std::int64_t>();
        return 0;
    };
    auto rows = d.audit_rows([&](const nlohmann::json& r) { return find_request(r) > 0; });
    std::int64_t id = find_request(rows);
    ASSERT_GT(id, 0) << rows.dump();
    auto self = d.cli({"approve", std::to_string(id)});
    EXPECT_NE(self.status, 0);
    EXPECT_NE(self.err.find("allow_session_owner"), std::string::npos) << self.err;
    agent = Process();  // kill the agent: nobody may approve it here
}

TEST_F(SessionTest, NonOwnerRootMayApproveAnotherUsersAgent) {
    passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user 'nobody'";
    ::chmod(work_.c_str(), 0755);
    for (const char* sub : {"held", "data"}) ::chmod((work_ + "/" + sub).c_str(), 0755);
    auto& d = start("", /*allow_owner=*/false);
    uid_t uid = nobody->pw_uid;
    gid_t gid = nobody->pw_gid;
    auto agent = d.run_probe({"read", work_ + "/held/file"}, {}, [uid, gid] {
        ::setgroups(0, nullptr);
        ::setgid(gid);
        ::setuid(uid);
    });
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    // An unprivileged user who is not an approver cannot decide it.
    auto other = d.cli({"approve", std::to_string(pending[0]["id"].get<std::int64_t>())}, [] {
        ::setgroups(0, nullptr);
        ::setgid(65533);
        ::setuid(65533);
    });
    EXPECT_NE(other.status, 0);
    EXPECT_NE(other.err.find("not an approver"), std::string::npos) << other.err;
    EXPECT_EQ(d.cli({"approve", std::to_string(pending[0]["id"].get<std::int64_t>())}).status, 0);
    EXPECT_EQ(trim(agent.wait().out), "ok approved bytes");
}

TEST_F(SessionTest, HundredHeldCallsAcrossTenSessionsAllResolve) {
    auto& d = start();
    std::vector<Process> agents;
    for (int s = 0; s < 10; ++s) agents.push_back(d.run_probe({"parallel", "10", work_ + "/held/file"}));
    auto pending = d.wait_pending(100, 30s);
    ASSERT_EQ(pending.size(), 100u) << d.log_text();
    std::set<std::int64_t> sessions;
    for (const auto& p : pending) sessions.insert(p["session"].get<std::int64_t>());
    EXPECT_EQ(sessions.size(), 10u);
    // Approve half, deny half, through one connection each way.
    auto c = client::ControlClient::connect(d.socket());
    ASSERT_TRUE(c);
    int k = 0;
    for (const auto& p : pending) {
        protocol::RequestBody body;
        if (p["session"].get<std::int64_t>() % 2 == 0) body = protocol::ApproveRequest{p["id"].get<std::int64_t>(), "once", ""};
        else body = protocol::DenyRequest{p["id"].get<std::int64_t>(), ""};
        auto r = c->call({std::nullopt, body});
        ASSERT_TRUE(r && r->ok) << (r ? r->error_message : r.error().to_string());
        ++k;
    }
    EXPECT_EQ(k, 100);
    int approved_sessions = 0, denied_sessions = 0;
    for (auto& a : agents) {
        auto out = trim(a.wait().out);
        if (out == "ok=10 err=0") ++approved_sessions;
        else if (out == "ok=0 err=10") ++denied_sessions;
        else ADD_FAILURE() << "unexpected: " << out;
    }
    EXPECT_EQ(approved_sessions + denied_sessions, 10);
    EXPECT_TRUE(d.pending().empty());
}

TEST_F(SessionTest, HeldThreadSignalledGetsItsHandlerAndItsAnswer) {
    auto& d = start();
    auto agent = d.run_probe({"signal-read", work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    ::kill(agent.pid(), SIGUSR1);
    std::this_thread::sleep_for(200ms);
    // The signal must not have created a second request or lost the first.
    auto again = d.pending();
    ASSERT_GE(again.size(), 1u);
    EXPECT_EQ(d.cli({"approve", std::to_string(again[0]["id"].get<std::int64_t>())}).status, 0);
    for (int i = 0; i < 50 && d.pending().size() > 0; ++i) {
        auto more = d.pending();
        if (!more.empty()) (void)d.cli({"approve", std::to_string(more[0]["id"].get<std::int64_t>())});
    }
    EXPECT_EQ(trim(agent.wait().out), "ok signals=1");
}

TEST_F(SessionTest, HeldThreadKilledIsCancelledAndAudited) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    ASSERT_EQ(d.wait_pending(1).size(), 1u);
    ::kill(agent.pid(), SIGKILL);
    agent.wait();
    for (int i = 0; i < 300 && !d.pending().empty(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(d.pending().empty());
    auto rows = d.audit_rows([](const nlohmann::json& r) { return r.dump().find("\"cancelled\"") != std::string::npos; });
    EXPECT_NE(rows.dump().find("\"cancelled\""), std::string::npos) << rows.dump();
    EXPECT_TRUE(d.alive());
}

TEST_F(SessionTest, DaemonKilledWhileCallsAreHeldNeverHangsTheAgent) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    ASSERT_EQ(d.wait_pending(1).size(), 1u);
    d.kill_hard();
    auto out = agent.wait(10s);
    EXPECT_FALSE(out.timed_out);
    EXPECT_EQ(trim(out.out), "err ENOSYS");
}

TEST_F(SessionTest, ExecIsDecidedByPolicy) {
    auto& d = start();
    EXPECT_EQ(d.run_probe({"exec", "/bin/echo", "ran"}).wait().out, "ran\n");
    auto denied = d.run_probe({"exec", "/usr/bin/false"}).wait();
    EXPECT_EQ(trim(denied.out), "err EACCES");
}

// A policy may demand a kernel enforcement level: a session under it is
// refused, saying what is missing and how to get it, unless the daemon runs it.
TEST_F(SessionTest, APolicyRequiringMoreKernelEnforcementThanRunsIsRefused) {
    auto& d = start();
    const std::string policy = work_ + "/needs-lsm.yaml";
    write_file(policy, "version: 1\ndefault: allow\nrequire: { kernel: lsm }\n");
    auto status = Process::spawn({binary("airlock"), "--socket", d.socket(), "status"}).wait();
    auto out = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--policy", policy, "--", "/bin/true"})
                   .wait();
    if (status.out.find("seccomp-notify+lsm") != std::string::npos) {
        EXPECT_EQ(out.status, 0) << out.err;  // in tests/vm's kernel
        return;
    }
    EXPECT_EQ(out.status, 125) << out.out << out.err;
    EXPECT_NE(out.err.find("requires kernel enforcement 'lsm'"), std::string::npos) << out.err;
    EXPECT_NE(out.err.find("bpf"), std::string::npos) << "how to enable it: " << out.err;
    write_file(policy, "version: 1\ndefault: allow\nrequire: { kernel: seccomp }\n");
    out = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--policy", policy, "--", "/bin/true"})
              .wait();
    EXPECT_EQ(out.status, 0) << out.err;
}

// The session's process tree: forks and exits from the session guard, images
// and command lines from the execs the supervisor approved.
TEST_F(SessionTest, TheProcessTreeShowsEachProcessUnderItsParent) {
    auto& d = start();
    Process agent = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", "/bin/sh", "-c",
                                    "/bin/sh -c 'sleep 0.1; sleep 30' & sleep 0.5; echo started; wait"});
    nlohmann::json session;
    for (int i = 0; i < 100; ++i) {
        auto out = Process::spawn({binary("airlock"), "--socket", d.socket(), "sessions", "--json"}).wait();
        auto list = nlohmann::json::parse(out.out, nullptr, false);
        if (!list.is_discarded() && !list.empty()) {
            auto tree = Process::spawn({binary("airlock"), "--socket", d.socket(), "sessions", "--tree",
                                        std::to_string(list[0]["id"].get<long long>()), "--json"})
                            .wait();
            auto parsed = nlohmann::json::parse(tree.out, nullptr, false);
            bool sleeping = false;
            if (!parsed.is_discarded() && !parsed.empty())
                for (const auto& p : parsed[0]["processes"]) sleeping |= p["argv"] == "sleep 30";
            if (sleeping) {
                session = parsed[0];
                break;
            }
        }
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_FALSE(session.is_null()) << d.log_text();
    if (!session["tree_complete"].get<bool>()) GTEST_SKIP() << "no session guard here: forks are not tracked";
    std::map<long long, nlohmann::json> by_pid;
    for (const auto& p : session["processes"]) by_pid[p["pid"].get<long long>()] = p;
    const nlohmann::json* sleeper = nullptr;
    for (const auto& [pid, p] : by_pid)
        if (p["argv"].get<std::string>() == "sleep 30") sleeper = &by_pid[pid];
    ASSERT_NE(sleeper, nullptr) << session.dump(2);
    EXPECT_EQ((*sleeper)["exe"], "/usr/bin/sleep") << session.dump(2);
    // sleep 30's parent is the inner sh, whose parent is the outer sh (the session's first exec).
    auto inner = by_pid.find((*sleeper)["ppid"].get<long long>());
    ASSERT_NE(inner, by_pid.end()) << session.dump(2);
    EXPECT_NE(inner->second["argv"].get<std::string>().find("sleep 0.1; sleep 30"), std::string::npos);
    auto outer = by_pid.find(inner->second["ppid"].get<long long>());
    ASSERT_NE(outer, by_pid.end()) << session.dump(2);
    EXPECT_NE(outer->second["argv"].get<std::string>().find("echo started"), std::string::npos);
    // The first sleep has exited.
    bool exited_sleep = false;
    for (const auto& [pid, p] : by_pid)
        if (p["argv"] == "sleep 0.1" && p.contains("exited_at")) exited_sleep = true;
    EXPECT_TRUE(exited_sleep) << session.dump(2);
    auto text = Process::spawn({binary("airlock"), "--socket", d.socket(), "sessions", "--tree",
                                std::to_string(session["id"].get<long long>())})
                    .wait();
    EXPECT_NE(text.out.find("      " + std::to_string((*sleeper)["pid"].get<long long>()) + "  sleep 30"),
              std::string::npos)
        << "sleep 30 drawn two levels below the first process:\n" << text.out;
    for (const auto& [pid, p] : by_pid)
        if (!p.contains("exited_at")) ::kill(static_cast<pid_t>(pid), SIGKILL);  // the orphaned sleep too
}

TEST_F(SessionTest, ExitStatusIsTheCommands) {
    auto& d = start();
    auto out = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", "/bin/sh", "-c", "exit 7"}).wait();
    EXPECT_EQ(out.status, 7) << out.err;
    auto missing = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", "/no/such/binary"}).wait();
    EXPECT_EQ(missing.status, 127);
}

class LocalServer {
public:
    // On 127.0.0.1, or with INADDR_ANY on every address of the host.
    explicit LocalServer(const char* greeting, in_addr_t address = INADDR_LOOPBACK) : greeting_(greeting) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(address);
        for (int port = 20000 + (::getpid() % 5000); port < 30000; ++port) {
            addr.sin_port = htons(static_cast<uint16_t>(port));
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
                port_ = port;
                break;
            }
        }
        ::listen(fd_, 16);
        thread_ = std::thread([this] {
            while (!stop_) {
                int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0) return;
                (void)!::write(c, greeting_, std::strlen(greeting_));
                ::close(c);
            }
        });
    }
    ~LocalServer() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    int port() const { return port_; }

private:
    const char* greeting_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

TEST_F(SessionTest, ConnectIsPerformedOnTheAgentsSocketWithTheCheckedAddress) {
    auto& d = start();
    LocalServer server("hello-tcp");
    ASSERT_GT(server.port(), 0);
    auto out = d.run_probe({"connect", "127.0.0.1", std::to_string(server.port())}).wait();
    EXPECT_EQ(trim(out.out), "ok hello-tcp") << out.err << d.log_text();
    // Non-blocking connect keeps its semantics.
    auto nb = d.run_probe({"connect", "127.0.0.1", std::to_string(server.port()), "nonblock"}).wait();
    EXPECT_TRUE(trim(nb.out) == "err EINPROGRESS" || trim(nb.out) == "ok") << nb.out;
    // Denied egress gets the policy's errno.
    EXPECT_EQ(trim(d.run_probe({"connect", "192.0.2.1", "443"}).wait().out), "err ENETUNREACH");
    // A datagram with a destination is decided the same way.
    EXPECT_EQ(trim(d.run_probe({"sendto", "192.0.2.1", "53"}).wait().out), "err ENETUNREACH");
    EXPECT_EQ(trim(d.run_probe({"sendto", "127.0.0.1", std::to_string(server.port())}).wait().out), "ok sent=4");
}

// `dest: [local]` names this host whichever of its addresses is used:
// loopback and its own (eth0's) addresses, not another host's. The audit log
// names the address connected to.
TEST_F(SessionTest, LocalDestinationClassMatchesTheHostsOwnAddresses) {
    const std::string own = own_address(AF_INET);
    if (own.empty()) GTEST_SKIP() << "no non-loopback IPv4 address on this host";
    LocalServer allowed("hello-local", INADDR_ANY);
    LocalServer refused("never", INADDR_ANY);
    ASSERT_GT(allowed.port(), 0);
    ASSERT_GT(refused.port(), 0);
    const std::string allowed_port = std::to_string(allowed.port());
    const std::string refused_port = std::to_string(refused.port());
    auto& d = start("  - name: local-refused\n"
                    "    match: { action: connect, dest: [local], port: [" + refused_port + "] }\n"
                    "    verdict: deny\n"
                    "    errno: ECONNREFUSED\n"
                    "  - name: local-service\n"
                    "    match: { action: connect, dest: [local], port: [" + allowed_port + "] }\n"
                    "    verdict: allow\n");
    auto via_own = d.run_probe({"connect", own, allowed_port}).wait();
    EXPECT_EQ(trim(via_own.out), "ok hello-local") << via_own.err << d.log_text();
    EXPECT_EQ(trim(d.run_probe({"connect", "127.0.0.1", allowed_port}).wait().out), "ok hello-local");
    EXPECT_EQ(trim(d.run_probe({"connect", own, refused_port}).wait().out), "err ECONNREFUSED");
    EXPECT_EQ(trim(d.run_probe({"connect", "127.0.0.1", refused_port}).wait().out), "err ECONNREFUSED");
    // Another host (TEST-NET-2) is not local: the test policy's no-egress decides it.
    EXPECT_EQ(trim(d.run_probe({"connect", "198.51.100.7", allowed_port}).wait().out), "err ENETUNREACH");

    const std::string own_object = own + ":" + refused_port;
    auto refused_row = [&](const nlohmann::json& rows) {
        for (const auto& r : rows)
            if (r["kind"] == "decision" && r["verdict"] == "deny" && r["object"] == own_object &&
                r["rule"] == "local-refused")
                return true;
        return false;
    };
    auto rows = d.audit_rows(refused_row);
    EXPECT_TRUE(refused_row(rows)) << rows.dump();
}

// The kernel records the connecting process for SO_PEERCRED: a unix server must
// see the agent's identity, never airlockd's (root, outside any session).
TEST_F(SessionTest, UnixConnectPeerIsTheAgentNotTheDaemon) {
    passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "needs the user 'nobody'";
    auto& d = start();
    std::string path = work_ + "/data/server.sock";
    int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::chmod(path.c_str(), 0777);
    ::chmod(work_.c_str(), 0755);
    ::chmod((work_ + "/data").c_str(), 0755);
    ASSERT_EQ(::listen(server, 4), 0);
    ucred peer{};
    std::thread accepter([&] {
        int c = ::accept(server, nullptr, nullptr);
        socklen_t len = sizeof peer;
        ::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &peer, &len);
        ::close(c);
    });
    auto out = d.run_probe({"unix-connect", path}, {"--user", "nobody"}).wait();
    accepter.join();
    ::close(server);
    EXPECT_EQ(trim(out.out), "ok") << out.err;
    EXPECT_EQ(peer.uid, nobody->pw_uid);
    EXPECT_EQ(peer.gid, nobody->pw_gid);
    EXPECT_NE(peer.pid, d.pid()) << "the server saw airlockd as its peer";
}

TEST_F(SessionTest, HeldConnectWaitsForApproval) {
    auto& d = start();
    auto agent = d.run_probe({"connect", "127.0.0.1", "30001"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0]["action"], "connect");
    EXPECT_EQ(pending[0]["object"], "127.0.0.1:30001");
    EXPECT_EQ(d.cli({"approve", std::to_string(pending[0]["id"].get<std::int64_t>())}).status, 0);
    // Approved, then the kernel's own answer: nobody listens there.
    EXPECT_EQ(trim(agent.wait().out), "err ECONNREFUSED");
}

TEST_F(SessionTest, SessionScopeApprovalCoversLaterIdenticalCalls) {
    auto& d = start();
    auto agent = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--", "/bin/sh", "-c",
                                 "cat " + work_ + "/held/file; cat " + work_ + "/held/file"});
    auto pending = d.wait_pending(1);
    ASSERT_EQ(pending.size(), 1u) << d.log_text();
    EXPECT_EQ(d.cli({"approve", std::to_string(pending[0]["id"].get<std::int64_t>()), "--scope", "session"}).status, 0);
    auto out = agent.wait();
    EXPECT_EQ(out.out, "approved bytesapproved bytes") << out.err;
}

TEST_F(SessionTest, MalformedPolicyIsRefusedWithPositionsAndTheDaemonSurvives) {
    auto& d = start();
    std::string bad = work_ + "/bad.yaml";
    write_file(bad, "version: 1\ndefault: maybe\nrules:\n  - name: x\n    match: { action: open, pth: [\"/x\"] }\n");
    auto out = Process::spawn({binary("airlock"), "--socket", d.socket(), "run", "--policy", bad, "--", "/bin/true"}).wait();
    EXPECT_EQ(out.status, 125);
    EXPECT_NE(out.err.find(":2:"), std::string::npos) << out.err;
    EXPECT_NE(out.err.find("pth"), std::string::npos) << out.err;
    EXPECT_TRUE(d.alive());
    EXPECT_EQ(d.cli({"status"}).status, 0);
    auto check = Process::spawn({binary("airlock"), "policy", "check", bad}).wait();
    EXPECT_EQ(check.status, 1);
    EXPECT_NE(check.out.find(bad + ":2:"), std::string::npos) << check.out;
}

TEST_F(SessionTest, MalformedProtocolMessagesGetErrorsAndTheDaemonSurvives) {
    auto& d = start();
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", d.socket().c_str());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    std::string junk = "this is not json\n{\"v\":1,\"op\":\"approve\",\"request\":\"x\"}\n{\"v\":9,\"op\":\"hello\"}\n" +
                       std::string(70000, 'x') + "\n{\"v\":1,\"op\":\"hello\",\"id\":5}\n";
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    std::string got;
    char buf[4096];
    while (std::count(got.begin(), got.end(), '\n') < 5) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    EXPECT_NE(got.find("bad_request"), std::string::npos) << got;
    EXPECT_NE(got.find("request"), std::string::npos) << got;
    EXPECT_NE(got.find("unsupported_version"), std::string::npos) << got;
    EXPECT_NE(got.find("exceeds"), std::string::npos) << got;
    EXPECT_NE(got.find("\"id\":5"), std::string::npos) << got;
    EXPECT_TRUE(d.alive());
}

TEST_F(SessionTest, AuditRecordsDecisionsAndVerifyCatchesAnEdit) {
    auto& d = start();
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/secret/key"}).wait().out), "err EPERM");
    auto denied_row = [&](const nlohmann::json& rows) {
        for (const auto& r : rows)
            if (r["kind"] == "decision" && r["verdict"] == "deny" && r["object"] == work_ + "/secret/key" &&
                r["rule"] == "secret")
                return true;
        return false;
    };
    auto rows = d.audit_rows(denied_row);
    EXPECT_TRUE(denied_row(rows)) << rows.dump();
    EXPECT_EQ(d.cli({"audit", "verify", "--state-dir", d.state_dir()}).status, 0);
    d.stop();
    // An attacker with write access drops the append-only triggers first.
    std::string sql = "sqlite3 " + d.state_dir() +
                      "/audit.db \"DROP TRIGGER events_no_update; UPDATE events SET verdict='allow' WHERE verdict='deny'\"";
    ASSERT_EQ(std::system(sql.c_str()), 0);
    auto verify = d.cli({"audit", "verify", "--state-dir", d.state_dir()});
    EXPECT_NE(verify.status, 0);
    EXPECT_NE(verify.out.find("first bad row seq"), std::string::npos) << verify.out;
}

TEST_F(SessionTest, SighupWithAnInvalidPolicyKeepsTheOldOne) {
    auto& d = start();
    write_file(d.dir() + "/policy.yaml", "version: 1\ndefault: nonsense\n");
    ::kill(d.pid(), SIGHUP);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(d.alive());
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/data/hello.txt"}).wait().out), "ok hello from airlock");
    EXPECT_NE(d.log_text().find("policy reload refused"), std::string::npos);
}

TEST_F(SessionTest, SighupWithAValidPolicySwapsItForTheNextCalls) {
    auto& d = start();
    EXPECT_EQ(trim(d.run_probe({"read", work_ + "/data/hello.txt"}).wait().out), "ok hello from airlock");
    // Same policy with one more rule in front: data/ is now denied.
    write_file(d.dir() + "/policy.yaml",
               test_policy(work_, "  - name: data-now-denied\n"
                                  "    match: { action: open, path: [\"" + work_ + "/data/**\"] }\n"
                                  "    verdict: deny\n"
                                  "    errno: EROFS\n"));
    ::kill(d.pid(), SIGHUP);
    std::string got;
    for (int i = 0; i < 100 && got != "err EROFS"; ++i) {
        got = trim(d.run_probe({"read", work_ + "/data/hello.txt"}).wait().out);
        if (got != "err EROFS") std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(got, "err EROFS") << d.log_text();
    auto rows = d.audit_rows([](const nlohmann::json& r) { return r.dump().find("policy_reload") != std::string::npos; });
    EXPECT_NE(rows.dump().find("\"loaded\""), std::string::npos) << rows.dump();
}

TEST_F(SessionTest, SessionsAreListedAndEndWhenTheirProcessesExit) {
    auto& d = start();
    auto agent = d.run_probe({"read", work_ + "/held/file"});
    ASSERT_EQ(d.wait_pending(1).size(), 1u);
    auto list = d.cli({"sessions", "--json"});
    auto sessions = nlohmann::json::parse(list.out);
    ASSERT_EQ(sessions.size(), 1u) << list.out;
    EXPECT_EQ(sessions[0]["pids"].size(), 1u);
    agent = Process();
    for (int i = 0; i < 300; ++i) {
        if (nlohmann::json::parse(d.cli({"sessions", "--json"}).out).empty()) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(nlohmann::json::parse(d.cli({"sessions", "--json"}).out).empty());
}

TEST_F(SessionTest, SigtermShutsDownCleanly) {
    auto& d = start();
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(Process::spawn({binary("airlock"), "audit", "verify", "--state-dir", d.state_dir()}).wait().status, 0);
}

}  // namespace
}  // namespace airlock::test
