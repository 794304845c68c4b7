// Root test harness: a real airlockd per test on its own socket, state dir,
// cgroup subtree and policy, real agents started with `airlock run`.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/control_client.hpp"

namespace airlock::test {

inline std::string binary(const std::string& name) { return std::string(AIRLOCK_BINARY_DIR) + "/" + name; }
inline std::string probe_path() { return std::string(AIRLOCK_BINARY_DIR) + "/tests/root/agent_probe"; }

// Why this machine cannot run the root tests, or empty when it can.
inline std::string missing_prerequisite() {
    if (::geteuid() != 0) return "needs root (cgroups, seccomp listeners of other processes)";
    std::ifstream mounts("/proc/self/mountinfo");
    std::string line;
    bool cgroup2 = false;
    while (std::getline(mounts, line))
        if (line.find(" - cgroup2 ") != std::string::npos) cgroup2 = true;
    if (!cgroup2) return "no cgroup2 hierarchy mounted";
    return {};
}

#define AIRLOCK_REQUIRE_ROOT()                                                   \
    do {                                                                         \
        if (auto why = ::airlock::test::missing_prerequisite(); !why.empty())   \
            GTEST_SKIP() << why;                                                 \
    } while (0)

// Result lines end in a newline; tests compare what is before it.
inline std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// The child half of every spawn: stdin from /dev/null, then `in_child` (drop
// privileges, say), then exec; 127 if the exec fails.
[[noreturn]] inline void exec_in_child(const std::vector<std::string>& argv, const std::function<void()>& in_child) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    if (in_child) in_child();
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
}

struct Output {
    int status = -1;  // exit status, or 128+signal
    std::string out;
    std::string err;
    bool timed_out = false;
};

// A child process with captured stdout/stderr.
class Process {
public:
    static Process spawn(const std::vector<std::string>& argv, std::function<void()> in_child = nullptr) {
        int out[2], err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
        pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            exec_in_child(argv, in_child);
        }
        ::close(out[1]);
        ::close(err[1]);
        Process p;
        p.pid_ = pid;
        p.out_fd_ = out[0];
        p.err_fd_ = err[0];
        return p;
    }
    Process() = default;
    Process(Process&& o) noexcept { *this = std::move(o); }
    Process& operator=(Process&& o) noexcept {
        std::swap(pid_, o.pid_);
        std::swap(out_fd_, o.out_fd_);
        std::swap(err_fd_, o.err_fd_);
        return *this;
    }
    ~Process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_fd_ >= 0) ::close(out_fd_);
        if (err_fd_ >= 0) ::close(err_fd_);
    }
    pid_t pid() const { return pid_; }

    // Reads both pipes to EOF and reaps the child, or gives up after `timeout`.
    Output wait(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        Output o;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        bool out_open = true, err_open = true;
        while (out_open || err_open) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                o.timed_out = true;
                break;
            }
            pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
            if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            for (int k = 0; k < 2; ++k) {
                if (!fds[k].revents) continue;
                ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
                if (n <= 0) {
                    (k == 0 ? out_open : err_open) = false;
                    fds[k].fd = -1;
                    if (k == 0) { ::close(out_fd_); out_fd_ = -1; } else { ::close(err_fd_); err_fd_ = -1; }
                } else {
                    (k == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
                }
            }
            if (!out_open && out_fd_ < 0 && !err_open && err_fd_ < 0) break;
        }
        if (o.timed_out) {
            ::kill(pid_, SIGKILL);
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        o.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return o;
    }

private:
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
};

inline std::string make_temp_dir() {
    char tmpl[] = "/tmp/airlock-test-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    ::chmod(tmpl, 0755);
    return tmpl;
}

inline void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
}

// One of this host's own addresses of `family` (AF_INET or AF_INET6) that is
// neither loopback nor link-local, such as eth0's; "" when there is none.
inline std::string own_address(int family) {
    std::string found;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return found;
    for (ifaddrs* i = list; i && found.empty(); i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
            ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        } else {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
            ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        }
        found = text;
    }
    ::freeifaddrs(list);
    return found;
}

class Daemon {
public:
    // `policy_yaml` becomes the daemon's default policy.
    explicit Daemon(const std::string& policy_yaml, std::vector<std::string> extra_args = {}) {
        dir_ = make_temp_dir();
        socket_ = dir_ + "/airlock.sock";
        policy_ = dir_ + "/policy.yaml";
        write_file(policy_, policy_yaml);
        std::filesystem::create_directories(dir_ + "/policies");
        static int counter = 0;
        cgroup_base_ = "/airlock-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        extra_args_ = std::move(extra_args);
        start();
    }
    ~Daemon() {
        stop();
        remove_cgroups();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    // The session cgroups a killed (or slow to clean up) daemon left, and its
    // base: empty by now, or rmdir leaves them.
    void remove_cgroups() const {
        for (const char* mount : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
            const std::string base = mount + cgroup_base_;
            std::error_code ec;
            for (const auto& entry : std::filesystem::directory_iterator(base, ec))
                if (entry.is_directory(ec)) ::rmdir(entry.path().c_str());
            ::rmdir(base.c_str());
        }
    }

    void start() {
        std::vector<std::string> argv = {binary("airlockd"), "--foreground", "--policy", policy_, "--policy-dir",
                                         dir_ + "/policies", "--state-dir", dir_ + "/state", "--socket", socket_,
                                         "--cgroup-base", cgroup_base_, "--log-level", "debug"};
        argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
        std::string log = dir_ + "/daemon.log";
        pid_t pid = ::fork();
        if (pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        pid_ = pid;
        for (int i = 0; i < 500; ++i) {
            if (client::ControlClient::connect(socket_)) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                ADD_FAILURE() << "airlockd exited at start:\n" << log_text();
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ADD_FAILURE() << "airlockd did not open its socket:\n" << log_text();
    }

    // SIGTERM and wait; returns the exit status.
    int stop() {
        if (pid_ <= 0) return -1;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        ::rmdir(("/sys/fs/cgroup/unified" + cgroup_base_).c_str());
        ::rmdir(("/sys/fs/cgroup" + cgroup_base_).c_str());
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    void kill_hard() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    bool alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
    pid_t pid() const { return pid_; }

    const std::string& dir() const { return dir_; }
    const std::string& socket() const { return socket_; }
    std::string state_dir() const { return dir_ + "/state"; }
    std::string log_text() const {
        std::ifstream in(dir_ + "/daemon.log");
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    // `airlock run [run_args] -- agent_probe probe_args`
    Process run_probe(const std::vector<std::string>& probe_args, const std::vector<std::string>& run_args = {},
                      std::function<void()> in_child = nullptr) const {
        std::vector<std::string> argv = {binary("airlock"), "--socket", socket_, "run"};
        argv.insert(argv.end(), run_args.begin(), run_args.end());
        argv.push_back("--");
        argv.push_back(probe_path());
        argv.insert(argv.end(), probe_args.begin(), probe_args.end());
        return Process::spawn(argv, std::move(in_child));
    }

    Output cli(const std::vector<std::string>& args, std::function<void()> in_child = nullptr) const {
        std::vector<std::string> argv = {binary("airlock"), "--socket", socket_};
        argv.insert(argv.end(), args.begin(), args.end());
        return Process::spawn(argv, std::move(in_child)).wait();
    }

    // Pending requests as the daemon reports them (as root).
    nlohmann::json pending() const {
        auto c = client::ControlClient::connect(socket_);
        if (!c) return nlohmann::json::array();
        auto r = c->call({std::nullopt, protocol::PendingListRequest{}});
        if (!r || !r->ok) return nlohmann::json::array();
        return r->result.at("requests");
    }

    // Audit rows as `airlock audit --json` shows them, once `ready(rows)` holds
    // (rows reach SQLite shortly after the journal; see docs/audit.md).
    nlohmann::json audit_rows(const std::function<bool(const nlohmann::json&)>& ready,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        nlohmann::json rows = nlohmann::json::array();
        do {
            auto out = cli({"audit", "--state-dir", state_dir(), "--json"});
            rows = nlohmann::json::parse(out.out, nullptr, false);
            if (!rows.is_discarded() && ready(rows)) return rows;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } while (std::chrono::steady_clock::now() < deadline);
        return rows.is_discarded() ? nlohmann::json::array() : rows;
    }

    // Waits until at least `count` requests are pending; returns them.
    nlohmann::json wait_pending(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(15)) const {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        nlohmann::json list;
        while (std::chrono::steady_clock::now() < deadline) {
            list = pending();
            if (list.size() >= count) return list;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return list;
    }

private:
    std::string dir_, socket_, policy_, cgroup_base_;
    std::vector<std::string> extra_args_;
    pid_t pid_ = -1;
};

}  // namespace airlock::test
