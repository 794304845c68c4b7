// A stand-in agent for the root tests: performs one kind of syscall the way a
// real program would and prints a normalized, comparable result line, so the
// same probe can run unconfined and under airlock and the outputs be compared.
//
//   agent_probe [--cwd DIR] [--umask OCT] read PATH
//   agent_probe ... open PATH FLAGS [MODE]       FLAGS: rdonly|wronly|rdwr|creat|excl|trunc|cloexec|
//                                                 nofollow|directory|nonblock|tmpfile|path|append
//   agent_probe ... openat2 PATH FLAGS RESOLVE   RESOLVE: no_symlinks|beneath|in_root|no_magiclinks
//   agent_probe ... connect HOST PORT [nonblock]
//   agent_probe ... unix-connect PATH
//   agent_probe ... sendto HOST PORT
//   agent_probe ... exec PATH [ARGS...]
//   agent_probe ... parallel N PATH              N threads each read PATH; prints "ok=K err=E"
//   agent_probe ... signal-read PATH             reads PATH; a SIGUSR1 handler counts deliveries
//   agent_probe ... creat PATH MODE
//   agent_probe ... link OLD NEW | rename OLD NEW
//   agent_probe ... linkat OLD NEW FLAGS         FLAGS: none|follow|empty|bad
//   agent_probe ... renameat2 OLD NEW FLAGS      FLAGS: none|noreplace|exchange|whiteout|bad, '|'-joined
//   agent_probe ... link-fd PATH NEW             O_PATH-open PATH, linkat /proc/self/fd/N to NEW (AT_SYMLINK_FOLLOW)
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string errno_name(int e) {
    static const std::map<int, const char*> names = {
        {EPERM, "EPERM"},     {ENOENT, "ENOENT"},   {EACCES, "EACCES"},   {EEXIST, "EEXIST"},
        {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},   {EINVAL, "EINVAL"},   {ELOOP, "ELOOP"},
        {ENOSYS, "ENOSYS"},   {ECONNREFUSED, "ECONNREFUSED"}, {EINPROGRESS, "EINPROGRESS"},
        {EXDEV, "EXDEV"},     {ENXIO, "ENXIO"},     {EOPNOTSUPP, "EOPNOTSUPP"}, {EAGAIN, "EAGAIN"},
        {ENAMETOOLONG, "ENAMETOOLONG"}, {EBADF, "EBADF"}, {EROFS, "EROFS"}, {EFAULT, "EFAULT"},
        {ENETUNREACH, "ENETUNREACH"}, {EMSGSIZE, "EMSGSIZE"}, {ETXTBSY, "ETXTBSY"}, {EBUSY, "EBUSY"},
        {ENOTEMPTY, "ENOTEMPTY"}, {EMLINK, "EMLINK"}, {EFBIG, "EFBIG"}};
    auto it = names.find(e);
    return it != names.end() ? it->second : "E" + std::to_string(e);
}

int parse_flags(const std::string& spec) {
    static const std::map<std::string, int> bits = {
        {"rdonly", O_RDONLY}, {"wronly", O_WRONLY},     {"rdwr", O_RDWR},          {"creat", O_CREAT},
        {"excl", O_EXCL},     {"trunc", O_TRUNC},       {"cloexec", O_CLOEXEC},    {"nofollow", O_NOFOLLOW},
        {"directory", O_DIRECTORY}, {"nonblock", O_NONBLOCK}, {"tmpfile", O_TMPFILE}, {"path", O_PATH},
        {"append", O_APPEND}};
    int flags = 0;
    std::stringstream in(spec);
    std::string word;
    while (std::getline(in, word, '|')) {
        auto it = bits.find(word);
        if (it == bits.end()) {
            std::fprintf(stderr, "unknown flag %s\n", word.c_str());
            std::exit(2);
        }
        flags |= it->second;
    }
    return flags;
}

// Everything observable about a freshly opened fd, in one comparable line.
std::string describe_fd(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    int status = ::fcntl(fd, F_GETFL);
    int fdflags = ::fcntl(fd, F_GETFD);
    const char* type = S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "lnk"
                     : S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "sock" : "other";
    char buf[256];
    std::snprintf(buf, sizeof buf, "ok type=%s mode=%04o size=%lld acc=%d nonblock=%d append=%d path=%d cloexec=%d",
                  type, st.st_mode & 07777, static_cast<long long>(st.st_size), status & O_ACCMODE,
                  (status & O_NONBLOCK) ? 1 : 0, (status & O_APPEND) ? 1 : 0, (status & O_PATH) ? 1 : 0,
                  (fdflags & FD_CLOEXEC) ? 1 : 0);
    return buf;
}

int finish(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return 0;
}

int do_read(const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return finish("err " + errno_name(errno));
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return finish("ok " + data);
}

int connect_ip(const char* host, int port, bool nonblock, bool send_only) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = std::strchr(host, ':') ? AF_INET6 : AF_INET;
    if (family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET, host, &in->sin_addr);
        len = sizeof *in;
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(port));
        ::inet_pton(AF_INET6, host, &in6->sin6_addr);
        len = sizeof *in6;
    }
    int type = send_only ? SOCK_DGRAM : SOCK_STREAM;
    int fd = ::socket(family, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (send_only) {
        ssize_t n = ::sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&ss), len);
        return finish(n == 4 ? "ok sent=4" : "err " + errno_name(errno));
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) return finish("err " + errno_name(errno));
    if (!nonblock) {
        // Prove the connection is real: read the server's greeting, if any.
        char buf[64] = {};
        ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
        return finish(std::string("ok ") + (n > 0 ? buf : ""));
    }
    return finish("ok");
}

std::atomic<int> g_signals{0};
void on_usr1(int) { g_signals.fetch_add(1); }

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::size_t i = 0;
    while (i + 1 < args.size() && args[i].starts_with("--")) {
        if (args[i] == "--cwd" && ::chdir(args[i + 1].c_str()) != 0) return finish("err chdir " + errno_name(errno));
        if (args[i] == "--umask") ::umask(static_cast<mode_t>(std::stoul(args[i + 1], nullptr, 8)));
        i += 2;
    }
    if (i >= args.size()) return 2;
    const std::string cmd = args[i];
    auto arg = [&](std::size_t k) -> const char* { return i + k < args.size() ? args[i + k].c_str() : ""; };

    if (cmd == "read") return do_read(arg(1));
    if (cmd == "read-via-opath") {
        // An O_PATH handle (no data, not inspected) reopened for reading.
        int fd = ::open(arg(1), O_PATH | O_CLOEXEC);
        if (fd < 0) return finish("err opath " + errno_name(errno));
        return do_read(("/proc/self/fd/" + std::to_string(fd)).c_str());
    }
    if (cmd == "sealed") {
        // What a masked open hands over: seals, and whether writing works.
        int fd = ::open(arg(1), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return finish("err " + errno_name(errno));
        int seals = ::fcntl(fd, F_GET_SEALS);
        std::string line = describe_fd(fd) + " seals=" + std::to_string(seals);
        ssize_t n = ::write(fd, "x", 1);
        line += n < 0 ? " write=" + errno_name(errno) : " write=ok";
        const std::string magic = "/proc/self/fd/" + std::to_string(fd);
        int rw = ::open(magic.c_str(), O_RDWR | O_CLOEXEC);
        line += rw < 0 ? " reopen_rw=" + errno_name(errno) : " reopen_rw=ok";
        return finish(line);
    }
    if (cmd == "read-then-connect") {
        // One session that reads, then connects out (exfiltration correlation).
        int fd = ::open(arg(1), O_RDONLY | O_CLOEXEC);
        std::string line = fd < 0 ? "read err " + errno_name(errno) : "read ok";
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
        if (fd >= 0) ::close(fd);
        return connect_ip(arg(2), std::atoi(arg(3)), true, false);
    }
    if (cmd == "open" || cmd == "creat") {
        int fd = cmd == "creat" ? ::creat(arg(1), static_cast<mode_t>(std::stoul(arg(2), nullptr, 8)))
                                : ::open(arg(1), parse_flags(arg(2)),
                                         static_cast<mode_t>(*arg(3) ? std::stoul(arg(3), nullptr, 8) : 0644));
        if (fd < 0) return finish("err " + errno_name(errno));
        return finish(describe_fd(fd));
    }
    if (cmd == "openat2") {
        open_how how{};
        how.flags = static_cast<unsigned long long>(parse_flags(arg(2)));
        std::string r = arg(3);
        if (r.find("no_symlinks") != std::string::npos) how.resolve |= RESOLVE_NO_SYMLINKS;
        if (r.find("beneath") != std::string::npos) how.resolve |= RESOLVE_BENEATH;
        if (r.find("in_root") != std::string::npos) how.resolve |= RESOLVE_IN_ROOT;
        if (r.find("no_magiclinks") != std::string::npos) how.resolve |= RESOLVE_NO_MAGICLINKS;
        long fd = ::syscall(SYS_openat2, AT_FDCWD, arg(1), &how, sizeof how);
        if (fd < 0) return finish("err " + errno_name(errno));
        return finish(describe_fd(static_cast<int>(fd)));
    }
    if (cmd == "connect") return connect_ip(arg(1), std::atoi(arg(2)), std::string(arg(3)) == "nonblock", false);
    if (cmd == "sendto") return connect_ip(arg(1), std::atoi(arg(2)), false, true);
    if (cmd == "unix-connect") {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::snprintf(un.sun_path, sizeof un.sun_path, "%s", arg(1));
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) return finish("err " + errno_name(errno));
        return finish("ok");
    }
    if (cmd == "exec-clean-env" || cmd == "exec-with-env") {
        // Only the environment given (the test runner's own may hold anything).
        // "{TOKEN}" in an argument stands for $PROBE_TOKEN, so that a value
        // under test is not on the probe's own command line (which the
        // daemon logs as the session's).
        const char* token = std::getenv("PROBE_TOKEN");
        for (auto& a : args)
            if (auto at = a.find("{TOKEN}"); at != std::string::npos && token) a.replace(at, 7, token);
        std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
        std::size_t first = i + 1;
        if (cmd == "exec-with-env") env.push_back(args[first++]);
        std::vector<char*> xargv, xenv;
        for (std::size_t k = first; k < args.size(); ++k) xargv.push_back(args[k].data());
        xargv.push_back(nullptr);
        for (auto& e : env) xenv.push_back(e.data());
        xenv.push_back(nullptr);
        ::execve(xargv[0], xargv.data(), xenv.data());
        return finish("err " + errno_name(errno));
    }
    if (cmd == "exec") {
        std::vector<char*> xargv;
        for (std::size_t k = i + 1; k < args.size(); ++k) xargv.push_back(args[k].data());
        xargv.push_back(nullptr);
        ::execv(xargv[0], xargv.data());
        return finish("err " + errno_name(errno));
    }
    if (cmd == "parallel") {
        int n = std::atoi(arg(1));
        std::string path = arg(2);
        std::atomic<int> ok{0}, err{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < n; ++t)
            threads.emplace_back([&] {
                int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    ok.fetch_add(1);
                    ::close(fd);
                } else {
                    err.fetch_add(1);
                }
            });
        for (auto& t : threads) t.join();
        return finish("ok=" + std::to_string(ok.load()) + " err=" + std::to_string(err.load()));
    }
    if (cmd == "signal-read") {
        struct sigaction sa {};
        sa.sa_handler = on_usr1;
        sa.sa_flags = SA_RESTART;
        ::sigaction(SIGUSR1, &sa, nullptr);
        int fd = ::open(arg(1), O_RDONLY | O_CLOEXEC);
        int saved = errno;
        std::string result = fd >= 0 ? "ok" : "err " + errno_name(saved);
        return finish(result + " signals=" + std::to_string(g_signals.load()));
    }
    if (cmd == "link" || cmd == "rename" || cmd == "linkat" || cmd == "renameat2" || cmd == "link-fd") {
        auto result = [](long r) { return finish(r == 0 ? std::string("ok") : "err " + errno_name(errno)); };
        if (cmd == "link") return result(::link(arg(1), arg(2)));
        if (cmd == "rename") return result(::rename(arg(1), arg(2)));
        if (cmd == "link-fd") {
            int fd = ::open(arg(1), O_PATH | O_CLOEXEC);
            if (fd < 0) return finish("err open " + errno_name(errno));
            const std::string magic = "/proc/self/fd/" + std::to_string(fd);
            return result(::linkat(AT_FDCWD, magic.c_str(), AT_FDCWD, arg(2), AT_SYMLINK_FOLLOW));
        }
        static const std::map<std::string, unsigned> bits = {
            {"none", 0}, {"follow", AT_SYMLINK_FOLLOW}, {"empty", AT_EMPTY_PATH}, {"bad", 0x40000000u},
            {"noreplace", RENAME_NOREPLACE}, {"exchange", RENAME_EXCHANGE}, {"whiteout", RENAME_WHITEOUT}};
        unsigned flags = 0;
        std::stringstream in(arg(3));
        std::string word;
        while (std::getline(in, word, '|')) flags |= bits.at(word);
        if (cmd == "linkat") return result(::linkat(AT_FDCWD, arg(1), AT_FDCWD, arg(2), static_cast<int>(flags)));
        return result(::syscall(SYS_renameat2, AT_FDCWD, arg(1), AT_FDCWD, arg(2), flags));
    }
    std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
    return 2;
}
