// Per-call cost of the supervised syscalls, measured from inside the process
// that makes them. bench/run.sh runs this same binary unconfined, under a bare
// seccomp-notify supervisor that only answers CONTINUE, and under airlock, and
// prints the ratios side by side.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <thread>

namespace {

const char* bench_file() {
    const char* f = std::getenv("AIRLOCK_BENCH_FILE");
    return f ? f : "/etc/hostname";
}

void BM_OpenClose(benchmark::State& state) {
    const char* path = bench_file();
    for (auto _ : state) {
        int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            state.SkipWithError("open failed");
            return;
        }
        ::close(fd);
    }
}
BENCHMARK(BM_OpenClose)->MinTime(1.0)->UseRealTime();

// A loopback listener in this process; connect is the supervised call, accept
// and close are not.
class Listener {
public:
    Listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        ::listen(fd_, 4096);
        thread_ = std::thread([this] {
            for (;;) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) return;
                ::close(c);
            }
        });
    }
    ~Listener() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    int port() const { return port_; }

private:
    int fd_;
    int port_ = 0;
    std::thread thread_;
};

void BM_ConnectClose(benchmark::State& state) {
    static Listener listener;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(listener.port()));
    for (auto _ : state) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd);
            state.SkipWithError("connect failed");
            return;
        }
        ::close(fd);
    }
}
BENCHMARK(BM_ConnectClose)->MinTime(1.0)->UseRealTime();

// fork + execve + wait of a program that exits at once: a static one when
// there is one (busybox-static), so the child's own loader opens, which
// a supervisor holds too, do not swamp the exec itself.
void BM_ForkExec(benchmark::State& state) {
    const bool busybox = ::access("/bin/busybox", X_OK) == 0;
    char prog[] = "busybox", applet[] = "true";
    char* argv[] = {prog, applet, nullptr};
    char true_prog[] = "/bin/true";
    char* true_argv[] = {true_prog, nullptr};
    for (auto _ : state) {
        pid_t child = ::fork();
        if (child == 0) {
            if (busybox) ::execv("/bin/busybox", argv);
            else ::execv("/bin/true", true_argv);
            ::_exit(127);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            state.SkipWithError("exec failed");
            return;
        }
    }
    state.SetLabel(busybox ? "/bin/busybox true" : "/bin/true");
}
BENCHMARK(BM_ForkExec)->MinTime(1.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
