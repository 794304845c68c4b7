// An attacker for the root attack tests: each subcommand runs one attack on
// airlock's invariants from inside a session (or, for the `hold-*` helpers,
// from outside one) and prints a result line the test inspects.
//
//   race-open A B SECRET ITER          flip a path buffer between A and B while opening it
//   race-symlink DIR SECRET ITER       DIR/link and DIR/other (symlinks) are exchanged while DIR/link is opened
//   race-dirswap DIR SECRET ITER       DIR/dir (directory) and DIR/alt (symlink) are exchanged; opens DIR/dir/key
//   race-opath A B SECRET_REAL ITER SECRET SCRATCH
//                                      as race-open with O_PATH; counts fds that landed on SECRET_REAL
//                                      and tries every route to data through each fd: reopen via
//                                      /proc/self/fd/N, linkat it into SCRATCH and open that, and for
//                                      a directory openat(fd, "key")
//   race-openat2-flags PATH ITER       openat2(PATH) whose open_how.flags flip between O_PATH and O_RDWR|O_TRUNC
//   race-link MODE OK BAD DEST SECRET ITER
//                                      MODE link|rename: flip the source path between OK and BAD while
//                                      linking (renaming) it to DEST; reads DEST after each success
//   race-connect OK BAD ITER           flip a sockaddr port between OK and BAD while connecting
//   race-tfo OK BAD ITER               sendmsg(MSG_FASTOPEN) whose msg_name flips between NULL and BAD
//   control SOCKET REQUEST             every route to approve REQUEST from inside a session
//   hold-control SOCKET                (outside) keep a control connection open; prints fd=N
//   steal-approve PID FD HELD          pidfd_getfd PID's fd FD, approve our own held open of HELD on it
//   flood-control SOCKET N SECONDS     keep N control connections open
//   hold-file PATH                     (outside) keep PATH open and its bytes in memory; prints fd/addr
//   steal-file PID FD ADDR LEN         pidfd_getfd / process_vm_readv PID's file and memory
//   int80 PATH | x32 PATH              open PATH through a foreign syscall ABI, in a child
//   refused WORK                       the syscalls the filter must refuse
//   uffd PATH HOLD                     userfaultfd (syscall and /dev/userfaultfd); stall a path read HOLD s
//   unterminated                       paths that run into unmapped memory / have no NUL
//   flood-held PATH THREADS TOTAL SECS many threads opening a held path
//   connect-many PORT N                N threads each connect (blocking) to 127.0.0.1:PORT
//   fifo PATH N                        mkfifo PATH; N threads open it for reading
//   lease PATH HOLD                    read lease on PATH, then open PATH for writing; unlock after HOLD s
//   proc-tricks WORK DAEMON_PID        /proc and /dev/fd routes to the secret, the daemon and our pipes
//   race-fdswap OK BAD ITER            sendmsg(MSG_FASTOPEN) on an fd number swapped between a connected
//                                      socket and a fresh one, msg_name flipping between NULL and BAD
//   lease-many DIR N HOLD              N files with read leases, each opened for writing; unlock after HOLD s
//   hold-secret-spin PATH              (outside) spin with PATH's bytes in a stack buffer; prints pid
//   perf-peek PID                      sample PID's user stack with perf_event_open; look for "TOP SECRET"
//   raw-udp OK BAD                     (root) IP_HDRINCL datagram: the sockaddr names OK, the header BAD
//   read PATH                          open+read; prints "ok BYTES" or "err ERRNO"
//   race-exec OK BAD ITER ARG [ARG_BAD]
//                                      each try forks a child that execs ["prog", ARG] while a thread
//                                      flips the path between OK and BAD (or, with ARG_BAD, the argument
//                                      between ARG and ARG_BAD); counts how the tries ended
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_name(int e) {
    static const std::map<int, const char*> names = {
        {EPERM, "EPERM"},       {ENOENT, "ENOENT"},     {EACCES, "EACCES"},     {EEXIST, "EEXIST"},
        {ENOTDIR, "ENOTDIR"},   {EISDIR, "EISDIR"},     {EINVAL, "EINVAL"},     {ELOOP, "ELOOP"},
        {ENOSYS, "ENOSYS"},     {ECONNREFUSED, "ECONNREFUSED"}, {EINPROGRESS, "EINPROGRESS"},
        {EXDEV, "EXDEV"},       {ENXIO, "ENXIO"},       {EOPNOTSUPP, "EOPNOTSUPP"}, {EAGAIN, "EAGAIN"},
        {ENAMETOOLONG, "ENAMETOOLONG"}, {EBADF, "EBADF"}, {EROFS, "EROFS"},     {EFAULT, "EFAULT"},
        {ENETUNREACH, "ENETUNREACH"}, {EMSGSIZE, "EMSGSIZE"}, {EBUSY, "EBUSY"}, {ESRCH, "ESRCH"},
        {EPIPE, "EPIPE"},       {ENOTCONN, "ENOTCONN"}, {ETIMEDOUT, "ETIMEDOUT"}, {EINTR, "EINTR"},
        {ECONNRESET, "ECONNRESET"}, {EIO, "EIO"},        {ENOTTY, "ENOTTY"},     {EISCONN, "EISCONN"}};
    auto it = names.find(e);
    return it != names.end() ? it->second : "E" + std::to_string(e);
}

int say(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    return 0;
}

std::string read_all(int fd) {
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
    return data;
}

std::string open_and_read(const char* path, int flags = O_RDONLY) {
    int fd = ::open(path, flags | O_CLOEXEC);
    if (fd < 0) return "err " + errno_name(errno);
    std::string data = read_all(fd);
    ::close(fd);
    return "ok " + data;
}

// Overwrites `dst` with `src` one byte at a time through a volatile pointer,
// so the buffer is torn in every intermediate state, as a racing thread sees it.
void flip_into(volatile char* dst, const std::string& src) {
    for (std::size_t i = 0; i <= src.size(); ++i) dst[i] = src.c_str()[i];
}

// ---- decide-on-the-object races ---------------------------------------------

// Every route from an O_PATH fd to its object's bytes; returns what they read.
std::string read_through_opath(int fd, const std::string& scratch, int round) {
    std::string bytes;
    char magic[64];
    std::snprintf(magic, sizeof magic, "/proc/self/fd/%d", fd);
    struct stat st {};
    ::fstat(fd, &st);
    if (S_ISDIR(st.st_mode)) {
        int k = ::openat(fd, "key", O_RDONLY | O_CLOEXEC);
        if (k >= 0) {
            bytes += read_all(k);
            ::close(k);
        }
        bytes += open_and_read((std::string(magic) + "/key").c_str());
        return bytes;
    }
    bytes += open_and_read(magic);
    const std::string name = scratch + "/opath-link-" + std::to_string(round);
    if (::linkat(AT_FDCWD, magic, AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        bytes += open_and_read(name.c_str());
        ::unlink(name.c_str());
    }
    return bytes;
}

int race_open(const std::string& a, const std::string& b, const std::string& secret, int iterations, bool opath,
              const std::string& secret_real, const std::string& scratch = "") {
    std::size_t len = std::max(a.size(), b.size()) + 1;
    std::vector<char> storage(len, 0);
    volatile char* buf = storage.data();
    flip_into(buf, a);
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            flip_into(buf, b);
            flip_into(buf, a);
        }
    });
    int opened = 0, leaked = 0, denied = 0, landed = 0;
    for (int i = 0; i < iterations; ++i) {
        int fd = ::open(storage.data(), (opath ? O_PATH : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
            if (errno == EPERM) ++denied;
            continue;
        }
        ++opened;
        if (opath) {
            char link[64], target[4096] = {};
            std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = ::readlink(link, target, sizeof target - 1);
            if (n > 0 && secret_real == std::string(target, static_cast<std::size_t>(n))) ++landed;
            if (read_through_opath(fd, scratch, i).find(secret) != std::string::npos) ++leaked;
        } else if (read_all(fd).find(secret) != std::string::npos) {
            ++leaked;
        }
        ::close(fd);
    }
    stop = true;
    flipper.join();
    std::string line = "opened=" + std::to_string(opened) + " denied=" + std::to_string(denied) +
                       " secret=" + std::to_string(leaked);
    if (opath) line += " landed=" + std::to_string(landed);
    return say(line);
}

int race_exchange(const std::string& dir, const std::string& first, const std::string& second,
                  const std::string& open_path, const std::string& secret, int iterations) {
    std::atomic<bool> stop{false};
    std::atomic<long> swaps{0};
    std::string p1 = dir + "/" + first, p2 = dir + "/" + second;
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            if (::syscall(SYS_renameat2, AT_FDCWD, p1.c_str(), AT_FDCWD, p2.c_str(), RENAME_EXCHANGE) == 0)
                swaps.fetch_add(1, std::memory_order_relaxed);
        }
    });
    int opened = 0, leaked = 0, denied = 0;
    for (int i = 0; i < iterations; ++i) {
        int fd = ::open(open_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == EPERM) ++denied;
            continue;
        }
        ++opened;
        if (read_all(fd).find(secret) != std::string::npos) ++leaked;
        ::close(fd);
    }
    stop = true;
    flipper.join();
    return say("opened=" + std::to_string(opened) + " denied=" + std::to_string(denied) +
               " secret=" + std::to_string(leaked) + " swaps=" + std::to_string(swaps.load()));
}

// The flags of an openat2 live in agent memory: flip them between an O_PATH
// open (decided as a read) and a truncating read-write open of the same file.
int race_openat2_flags(const std::string& path, int iterations) {
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    const unsigned long long harmless = O_PATH | O_CLOEXEC, harmful = O_RDWR | O_TRUNC | O_CLOEXEC;
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            __atomic_store_n(&how.flags, harmful, __ATOMIC_RELAXED);
            __atomic_store_n(&how.flags, harmless, __ATOMIC_RELAXED);
        }
    });
    int opath = 0, writable = 0, enosys = 0, refused = 0, other = 0;
    for (int i = 0; i < iterations; ++i) {
        long fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
        if (fd < 0) {
            if (errno == ENOSYS) ++enosys;
            else if (errno == EROFS || errno == EACCES || errno == EPERM) ++refused;
            else ++other;
            continue;
        }
        int fl = ::fcntl(static_cast<int>(fd), F_GETFL);
        if (fl & O_PATH) ++opath;
        else if ((fl & O_ACCMODE) != O_RDONLY) ++writable;
        ::close(static_cast<int>(fd));
    }
    stop = true;
    flipper.join();
    return say("opath=" + std::to_string(opath) + " writable=" + std::to_string(writable) +
               " enosys=" + std::to_string(enosys) + " refused=" + std::to_string(refused) +
               " other=" + std::to_string(other));
}

// A source path flipping between an allowed file and the secret while it is
// linked (or renamed) to `dest`: whatever lands at `dest` is read back.
int race_link(const std::string& mode, const std::string& ok, const std::string& bad, const std::string& dest,
              const std::string& secret, int iterations) {
    std::size_t len = std::max(ok.size(), bad.size()) + 1;
    std::vector<char> storage(len, 0);
    volatile char* buf = storage.data();
    flip_into(buf, ok);
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            flip_into(buf, bad);
            flip_into(buf, ok);
        }
    });
    const bool rename_mode = mode == "rename";
    int done = 0, denied = 0, leaked = 0, other = 0;
    for (int i = 0; i < iterations; ++i) {
        int r = rename_mode ? ::rename(storage.data(), dest.c_str()) : ::link(storage.data(), dest.c_str());
        if (r != 0) {
            if (errno == EPERM) ++denied;
            else ++other;
            continue;
        }
        ++done;
        if (open_and_read(dest.c_str()).find(secret) != std::string::npos) {
            ++leaked;
            break;
        }
        // Put things back for the next round (renaming back is decided too, and allowed).
        if (rename_mode ? ::rename(dest.c_str(), ok.c_str()) != 0 : ::unlink(dest.c_str()) != 0) {
            ++other;
            break;
        }
    }
    stop = true;
    flipper.join();
    return say("done=" + std::to_string(done) + " denied=" + std::to_string(denied) +
               " secret=" + std::to_string(leaked) + " other=" + std::to_string(other));
}

sockaddr_in loopback(int port) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return in;
}

int race_connect(int ok_port, int bad_port, int iterations) {
    sockaddr_in addr = loopback(ok_port);
    const uint16_t ok = htons(static_cast<uint16_t>(ok_port)), bad = htons(static_cast<uint16_t>(bad_port));
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            __atomic_store_n(&addr.sin_port, bad, __ATOMIC_RELAXED);
            __atomic_store_n(&addr.sin_port, ok, __ATOMIC_RELAXED);
        }
    });
    int connected = 0, denied = 0;
    for (int i = 0; i < iterations; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) ++connected;
        else if (errno == ENETUNREACH) ++denied;
        ::close(fd);
    }
    stop = true;
    flipper.join();
    return say("connected=" + std::to_string(connected) + " denied=" + std::to_string(denied));
}

int race_tfo(int ok_port, int bad_port, int iterations) {
    sockaddr_in bad = loopback(bad_port);
    (void)ok_port;
    char payload[] = "x";
    iovec iov{payload, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_namelen = sizeof bad;
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            __atomic_store_n(&msg.msg_name, static_cast<void*>(&bad), __ATOMIC_RELAXED);
            __atomic_store_n(&msg.msg_name, static_cast<void*>(nullptr), __ATOMIC_RELAXED);
        }
    });
    int sent = 0, denied = 0, other = 0;
    for (int i = 0; i < iterations; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ssize_t n = ::sendmsg(fd, &msg, MSG_FASTOPEN | MSG_NOSIGNAL);
        if (n > 0) ++sent;
        else if (errno == ENETUNREACH) ++denied;
        else ++other;
        ::close(fd);
    }
    stop = true;
    flipper.join();
    return say("sent=" + std::to_string(sent) + " denied=" + std::to_string(denied) + " other=" + std::to_string(other));
}

int race_fdswap(int ok_port, int bad_port, int iterations) {
    sockaddr_in ok = loopback(ok_port), bad = loopback(bad_port);
    int connected = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(connected, reinterpret_cast<sockaddr*>(&ok), sizeof ok) != 0)
        return say("connect " + errno_name(errno));
    const int slot = ::dup(connected);
    char payload[] = "x";
    iovec iov{payload, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_namelen = sizeof bad;
    std::atomic<bool> stop{false};
    std::thread flipper([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            // What the daemon should see: the connected stream, no destination.
            __atomic_store_n(&msg.msg_name, static_cast<void*>(nullptr), __ATOMIC_RELAXED);
            ::dup2(connected, slot);
            for (int i = 0; i < 200; ++i) __asm__ volatile("" ::: "memory");
            // What the kernel may see after CONTINUE: a fresh socket and a destination.
            int fresh = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            ::dup2(fresh, slot);
            ::close(fresh);
            __atomic_store_n(&msg.msg_name, static_cast<void*>(&bad), __ATOMIC_RELAXED);
            for (int i = 0; i < 200; ++i) __asm__ volatile("" ::: "memory");
        }
    });
    int sent = 0, denied = 0, other = 0;
    for (int i = 0; i < iterations; ++i) {
        ssize_t n = ::sendmsg(slot, &msg, MSG_FASTOPEN | MSG_NOSIGNAL);
        if (n > 0) ++sent;
        else if (errno == ENETUNREACH) ++denied;
        else ++other;
    }
    stop = true;
    flipper.join();
    return say("sent=" + std::to_string(sent) + " denied=" + std::to_string(denied) + " other=" + std::to_string(other));
}

int lease_many(const std::string& dir, int count, int hold) {
    ::signal(SIGIO, SIG_IGN);
    std::vector<int> held;
    std::vector<std::string> paths;
    for (int i = 0; i < count; ++i) {
        std::string path = dir + "/lease-" + std::to_string(i);
        int c = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (c < 0) return say("create " + errno_name(errno));
        ::close(c);
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return say("open " + errno_name(errno));
        if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return say("setlease " + errno_name(errno));
        held.push_back(fd);
        paths.push_back(path);
    }
    std::vector<std::thread> writers;
    for (const auto& path : paths) writers.emplace_back([path] { ::open(path.c_str(), O_WRONLY | O_CLOEXEC); });
    ::sleep(static_cast<unsigned>(hold));
    for (int fd : held) ::fcntl(fd, F_SETLEASE, F_UNLCK);
    for (auto& t : writers) t.join();
    return say("leased " + std::to_string(count));
}

[[noreturn]] void hold_secret_spin(const std::string& path) {
    char secret[64] = {};
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char tmp[64] = {};
    if (fd < 0 || ::read(fd, tmp, sizeof tmp - 1) <= 0) {
        say("err");
        ::_exit(1);
    }
    say("pid=" + std::to_string(::getpid()));
    auto end = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < end)
        for (std::size_t i = 0; i < sizeof tmp; ++i) {
            secret[i] = tmp[i];
            __asm__ volatile("" : : "r"(secret) : "memory");  // keep the stack copy live
        }
    ::_exit(0);
}

int perf_peek(pid_t pid) {
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.sample_period = 100000;  // every 100 us of the target's CPU time
    attr.sample_type = PERF_SAMPLE_STACK_USER | PERF_SAMPLE_REGS_USER;
    attr.sample_regs_user = 1ULL << 7;  // x86 SP
    attr.sample_stack_user = 4096;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    attr.disabled = 1;
    long fd = ::syscall(SYS_perf_event_open, &attr, pid, -1, -1, 0UL);
    if (fd < 0) return say("perf_event_open=" + errno_name(errno));
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t size = page * (1 + 64);
    void* ring = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<int>(fd), 0);
    if (ring == MAP_FAILED) return say("perf_event_open=ok mmap=" + errno_name(errno));
    ::ioctl(static_cast<int>(fd), PERF_EVENT_IOC_ENABLE, 0);
    ::usleep(300 * 1000);
    ::ioctl(static_cast<int>(fd), PERF_EVENT_IOC_DISABLE, 0);
    const char* data = static_cast<const char*>(ring) + page;
    bool found = ::memmem(data, size - page, "TOP SECRET", 10) != nullptr;
    return say(std::string("perf_event_open=ok found=") + (found ? "1" : "0"));
}

int raw_udp(int ok_port, int bad_port) {
    int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // IPPROTO_RAW implies IP_HDRINCL
    if (fd < 0) return say("raw socket " + errno_name(errno));
    struct {
        iphdr ip;
        udphdr udp;
        char data[8];
    } __attribute__((packed)) pkt{};
    std::memcpy(pkt.data, "raw-udp", 8);
    pkt.ip.version = 4;
    pkt.ip.ihl = 5;
    pkt.ip.ttl = 64;
    pkt.ip.protocol = IPPROTO_UDP;
    pkt.ip.saddr = htonl(INADDR_LOOPBACK);
    pkt.ip.daddr = htonl(INADDR_LOOPBACK);
    pkt.udp.source = htons(12345);
    pkt.udp.dest = htons(static_cast<uint16_t>(bad_port));  // where it really goes
    pkt.udp.len = htons(static_cast<uint16_t>(sizeof pkt.udp + sizeof pkt.data));
    pkt.udp.check = 0;
    sockaddr_in to = loopback(ok_port);  // what the daemon is shown
    ssize_t n = ::sendto(fd, &pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    return say(n > 0 ? "raw sent=" + std::to_string(n) : "raw err " + errno_name(errno));
}

// ---- the control socket -------------------------------------------------------

int unix_connect(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof un.sun_path, "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

// Sends one request line, returns the first response line (or why there is none).
std::string exchange(int fd, const std::string& line) {
    std::string out = line + "\n";
    if (!line.empty() && ::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()))
        return "write " + errno_name(errno);
    std::string got;
    char c;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 3000) > 0) {
        ssize_t n = ::read(fd, &c, 1);
        if (n <= 0) return got.empty() ? "eof" : got;
        if (c == '\n') return got;
        got.push_back(c);
    }
    return "timeout " + got;
}

int control(const std::string& socket_path, const std::string& request) {
    const std::string approve = "{\"v\":1,\"op\":\"approve\",\"id\":7,\"request\":" + request + "}";
    // 1. Straight connect.
    int fd = unix_connect(socket_path);
    if (fd < 0) say("direct connect " + errno_name(errno));
    else {
        say("hello " + exchange(fd, "{\"v\":1,\"op\":\"hello\",\"id\":1}"));
        say("direct " + exchange(fd, approve));
        say("list " + exchange(fd, "{\"v\":1,\"op\":\"pending.list\",\"id\":2}"));
        say("create " + exchange(fd, "{\"v\":1,\"op\":\"session.create\",\"id\":3,\"argv\":[\"nested\"]}"));
        ::close(fd);
    }
    // 2. Connected socket passed to a child over a socketpair.
    fd = unix_connect(socket_path);
    int pair[2];
    if (fd >= 0 && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
        pid_t child = ::fork();
        if (child == 0) {
            char dummy;
            iovec iov{&dummy, 1};
            alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf;
            msg.msg_controllen = sizeof cbuf;
            if (::recvmsg(pair[1], &msg, 0) <= 0) _exit(1);
            int got = -1;
            std::memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof got);
            say("passed " + exchange(got, approve));
            _exit(0);
        }
        char dummy = 'x';
        iovec iov{&dummy, 1};
        alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
        if (::sendmsg(pair[0], &msg, 0) < 0) say("passed sendmsg " + errno_name(errno));
        ::waitpid(child, nullptr, 0);
        ::close(fd);
    } else {
        say("passed connect " + errno_name(errno));
    }
    // 3. Connect through /proc/self/fd/N of an O_PATH fd of the socket file.
    int opath = ::open(socket_path.c_str(), O_PATH | O_CLOEXEC);
    if (opath < 0) say("procfd open " + errno_name(errno));
    else {
        fd = unix_connect("/proc/self/fd/" + std::to_string(opath));
        if (fd < 0) say("procfd connect " + errno_name(errno));
        else {
            say("procfd " + exchange(fd, approve));
            ::close(fd);
        }
    }
    return 0;
}

int hold_control(const std::string& socket_path) {
    int fd = unix_connect(socket_path);
    if (fd < 0) return say("err " + errno_name(errno));
    say("fd=" + std::to_string(fd) + " pid=" + std::to_string(::getpid()));
    ::sleep(60);
    return 0;
}

// Sends one line, optionally claiming another pid in SCM_CREDENTIALS (which
// the kernel allows only with CAP_SYS_ADMIN), and returns the first response line.
std::string exchange_as(int fd, const std::string& line, pid_t claimed) {
    if (claimed <= 0) return exchange(fd, line);
    std::string out = line + "\n";
    iovec iov{out.data(), out.size()};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(ucred))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof(ucred));
    ucred cred{claimed, ::getuid(), ::getgid()};
    std::memcpy(CMSG_DATA(c), &cred, sizeof cred);
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) return "sendmsg " + errno_name(errno);
    return exchange(fd, "");
}

int steal_approve(pid_t pid, int target_fd, const std::string& held, bool forge) {
    std::string result;
    std::thread opener([&] { result = open_and_read(held.c_str()); });
    ::usleep(300 * 1000);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) say("pidfd_open " + errno_name(errno));
    int stolen = pidfd < 0 ? -1 : static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0));
    if (stolen < 0) {
        say("pidfd_getfd " + errno_name(errno));
    } else {
        say("pidfd_getfd ok");
        const pid_t claimed = forge ? pid : 0;
        std::string list = exchange_as(stolen, "{\"v\":1,\"op\":\"pending.list\",\"id\":1}", claimed);
        say("list " + list);
        // Approve every request id the stolen connection can see.
        std::size_t at = list.find("\"requests\"");
        while (at != std::string::npos && (at = list.find("\"id\":", at)) != std::string::npos) {
            at += 5;
            std::string id = list.substr(at, list.find_first_not_of("0123456789", at) - at);
            say("approve " +
                exchange_as(stolen, "{\"v\":1,\"op\":\"approve\",\"id\":9,\"request\":" + id + "}", claimed));
        }
    }
    say("done");
    opener.join();
    return say("held " + result);
}

int flood_control(const std::string& socket_path, int count, int seconds) {
    std::vector<int> fds;
    int failed = 0;
    for (int i = 0; i < count; ++i) {
        int fd = unix_connect(socket_path);
        if (fd < 0) ++failed;
        else fds.push_back(fd);
    }
    say("connected=" + std::to_string(fds.size()) + " failed=" + std::to_string(failed));
    ::sleep(static_cast<unsigned>(seconds));
    return 0;
}

// ---- fds and memory of processes outside the session ----------------------------

int hold_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return say("err " + errno_name(errno));
    static char copy[256];
    ssize_t n = ::pread(fd, copy, sizeof copy - 1, 0);
    if (n < 0) return say("err read");
    say("fd=" + std::to_string(fd) + " pid=" + std::to_string(::getpid()) +
        " addr=" + std::to_string(reinterpret_cast<std::uintptr_t>(copy)) + " len=" + std::to_string(n));
    ::sleep(60);
    return 0;
}

int steal_file(pid_t pid, int target_fd, std::uintptr_t addr, std::size_t len) {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) return say("pidfd_open " + errno_name(errno));
    int stolen = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0));
    if (stolen < 0) {
        say("pidfd_getfd err " + errno_name(errno));
    } else {
        char buf[256] = {};
        ssize_t n = ::pread(stolen, buf, sizeof buf - 1, 0);
        say("pidfd_getfd ok " + std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0));
    }
    std::vector<char> mem(len + 1, 0);
    iovec local{mem.data(), len}, remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0) say("process_vm_readv err " + errno_name(errno));
    else say("process_vm_readv ok " + std::string(mem.data(), static_cast<std::size_t>(n)));
    return 0;
}

// ---- foreign syscall ABIs -------------------------------------------------------

// Runs `attack` in a child and reports how the child ended.
template <class F>
int in_child(const char* name, F attack) {
    pid_t child = ::fork();
    if (child == 0) {
        attack();
        _exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (WIFSIGNALED(status)) return say(std::string(name) + " killed=" + std::to_string(WTERMSIG(status)));
    return say(std::string(name) + " exited=" + std::to_string(WEXITSTATUS(status)));
}

int int80(const std::string& path) {
    return in_child("int80", [&] {
        // int 0x80 takes 32-bit pointers: the path must live below 4 GiB.
        void* low = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (low == MAP_FAILED) _exit(3);
        std::memcpy(low, path.c_str(), path.size() + 1);
        long ret = 0;
        const long nr = 5;  // i386 open
        const long p = static_cast<long>(reinterpret_cast<std::uintptr_t>(low));
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(p), "c"(0L), "d"(0L) : "memory", "r8", "r9", "r10", "r11");
        if (ret >= 0) {
            std::string data = read_all(static_cast<int>(ret));
            say("int80 opened " + data);
            _exit(4);
        }
        say("int80 err " + errno_name(static_cast<int>(-ret)));
        _exit(5);
    });
}

int x32(const std::string& path) {
    return in_child("x32", [&] {
        long ret = ::syscall(0x40000000L | 2L /* x32 open */, path.c_str(), O_RDONLY);
        if (ret >= 0) {
            say("x32 opened " + read_all(static_cast<int>(ret)));
            _exit(4);
        }
        say("x32 err " + errno_name(errno));
        _exit(5);
    });
}

std::string result_of(long rc) { return rc >= 0 ? "ok" : errno_name(errno); }

int refused(const std::string& work) {
    io_uring_params params{};
    say("io_uring_setup=" + result_of(::syscall(SYS_io_uring_setup, 4, &params)));

    // A real handle for the secret: if open_by_handle_at were not refused, it would open it.
    alignas(file_handle) unsigned char handle_storage[sizeof(file_handle) + 128] = {};
    auto* fh = reinterpret_cast<file_handle*>(handle_storage);
    fh->handle_bytes = 128;
    int mount_id = 0;
    long named = ::syscall(SYS_name_to_handle_at, AT_FDCWD, (work + "/secret/key").c_str(), fh, &mount_id, 0);
    int mount_fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    long byhandle = ::syscall(SYS_open_by_handle_at, mount_fd, fh, O_RDONLY);
    std::string opened = byhandle >= 0 ? " read=" + read_all(static_cast<int>(byhandle)) : "";
    say("name_to_handle_at=" + result_of(named) + " open_by_handle_at=" + result_of(byhandle) + opened);

    say("unshare_user_ns=" + result_of(::unshare(CLONE_NEWUSER | CLONE_NEWNS)));
    say("unshare_user=" + result_of(::unshare(CLONE_NEWUSER)));
    say("unshare_ns=" + result_of(::unshare(CLONE_NEWNS)));
    long cl = ::syscall(SYS_clone, static_cast<unsigned long>(CLONE_NEWUSER | SIGCHLD), nullptr, nullptr, nullptr, 0L);
    if (cl == 0) _exit(0);
    if (cl > 0) ::waitpid(static_cast<pid_t>(cl), nullptr, 0);
    say("clone_newuser=" + result_of(cl));
    std::uint64_t clone_args[11] = {};
    clone_args[4] = SIGCHLD;  // exit_signal
    long c3 = ::syscall(SYS_clone3, clone_args, sizeof clone_args);
    if (c3 == 0) _exit(0);
    if (c3 > 0) ::waitpid(static_cast<pid_t>(c3), nullptr, 0);
    say("clone3=" + result_of(c3));

    pid_t sibling = ::fork();
    if (sibling == 0) {
        ::pause();
        _exit(0);
    }
    say("ptrace_attach=" + result_of(::ptrace(PTRACE_ATTACH, sibling, nullptr, nullptr)));
    say("ptrace_seize=" + result_of(::ptrace(PTRACE_SEIZE, sibling, nullptr, nullptr)));
    static char victim_buf[16] = "unchanged";
    char mine[16] = "overwritten";
    iovec local{mine, sizeof mine}, remote{victim_buf, sizeof victim_buf};
    say("process_vm_writev=" + result_of(::process_vm_writev(sibling, &local, 1, &remote, 1, 0)));
    ::kill(sibling, SIGKILL);
    ::waitpid(sibling, nullptr, 0);

    say("userfaultfd=" + result_of(::syscall(SYS_userfaultfd, O_CLOEXEC)));
    say("mount=" + result_of(::syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, nullptr)));
    say("setns=" + result_of(::syscall(SYS_setns, ::open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC), 0)));
    say("chroot=" + result_of(::syscall(SYS_chroot, "/tmp")));
    say("open_tree=" + result_of(::syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */)));
    say("fsopen=" + result_of(::syscall(SYS_fsopen, "tmpfs", 0)));

    // A second seccomp listener in the chain could take the daemon's notifications.
    sock_filter allow{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_USER_NOTIF};
    sock_fprog prog{1, &allow};
    pid_t probe = ::fork();
    if (probe == 0) {
        long l = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        say("seccomp_new_listener=" + result_of(l));
        _exit(0);
    }
    ::waitpid(probe, nullptr, 0);
    return 0;
}

// ---- holding the daemon hostage ---------------------------------------------------

int uffd(const std::string& path, int hold) {
    long sys = ::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    say("userfaultfd_syscall=" + result_of(sys));
    int dev = ::open("/dev/userfaultfd", O_RDONLY | O_CLOEXEC);
    if (dev < 0) return say("dev_userfaultfd=" + errno_name(errno));
    int fd = ::ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return say("dev_userfaultfd=ok ioc_new=" + errno_name(errno));
    uffdio_api api{};
    api.api = UFFD_API;
    if (::ioctl(fd, UFFDIO_API, &api) != 0) return say("uffdio_api=" + errno_name(errno));
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    void* region = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<std::uintptr_t>(region);
    reg.range.len = page;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return say("uffdio_register=" + errno_name(errno));
    std::atomic<long> fault_ms{-1};
    auto t0 = Clock::now();
    std::thread handler([&] {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, (hold + 5) * 1000) <= 0) return;
        uffd_msg m{};
        if (::read(fd, &m, sizeof m) != sizeof m) return;
        fault_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        ::sleep(static_cast<unsigned>(hold));  // the daemon is reading this page meanwhile
        std::vector<char> content(page, 0);
        std::memcpy(content.data(), path.c_str(), path.size() + 1);
        uffdio_copy copy{};
        copy.dst = reinterpret_cast<std::uintptr_t>(region);
        copy.src = reinterpret_cast<std::uintptr_t>(content.data());
        copy.len = page;
        ::ioctl(fd, UFFDIO_COPY, &copy);
    });
    std::string r = open_and_read(static_cast<const char*>(region));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    handler.join();
    return say("dev_userfaultfd=ok fault_ms=" + std::to_string(fault_ms.load()) + " open_ms=" + std::to_string(took) +
               " result=" + r);
}

int unterminated() {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    auto* two = static_cast<char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ::munmap(two + page, page);
    std::memset(two, 'a', page);
    two[0] = '/';
    // 96 bytes with no NUL before the unmapped page.
    char* tail = two + page - 96;
    tail[0] = '/';
    say("tail=" + errno_name(::open(tail, O_RDONLY) < 0 ? errno : 0));
    say("page=" + errno_name(::open(two, O_RDONLY) < 0 ? errno : 0));
    auto* big = static_cast<char*>(::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::memset(big, 'b', 4 * page);
    big[0] = '/';
    big[4 * page - 1] = '\0';
    say("long=" + errno_name(::open(big, O_RDONLY) < 0 ? errno : 0));
    say("null=" + errno_name(::syscall(SYS_open, 0UL, O_RDONLY) < 0 ? errno : 0));
    say("kernel=" + errno_name(::syscall(SYS_open, 0xffff888000000000UL, O_RDONLY) < 0 ? errno : 0));
    return 0;
}

struct FloodState {
    const char* path;
    std::atomic<long> budget;
    std::atomic<long> ok{0}, erofs{0}, eagain{0}, other{0};
    Clock::time_point deadline;
};

void* flood_thread(void* arg) {
    auto* s = static_cast<FloodState*>(arg);
    while (Clock::now() < s->deadline && s->budget.fetch_sub(1) > 0) {
        int fd = ::open(s->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            s->ok.fetch_add(1);
            ::close(fd);
        } else if (errno == EROFS) {
            s->erofs.fetch_add(1);
        } else if (errno == EAGAIN) {
            s->eagain.fetch_add(1);
        } else {
            s->other.fetch_add(1);
        }
    }
    return nullptr;
}

int flood_held(const char* path, int threads, long total, int seconds) {
    FloodState s{path, {total}, {}, {}, {}, {}, Clock::now() + std::chrono::seconds(seconds)};
    std::vector<pthread_t> ids;
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < threads; ++i) {
        pthread_t t;
        if (::pthread_create(&t, &attr, flood_thread, &s) == 0) ids.push_back(t);
    }
    for (auto t : ids) ::pthread_join(t, nullptr);
    long done = s.ok + s.erofs + s.eagain + s.other;
    return say("threads=" + std::to_string(ids.size()) + " total=" + std::to_string(done) +
               " ok=" + std::to_string(s.ok.load()) + " erofs=" + std::to_string(s.erofs.load()) +
               " eagain=" + std::to_string(s.eagain.load()) + " other=" + std::to_string(s.other.load()));
}

int connect_many(int port, int count) {
    std::vector<std::thread> threads;
    std::atomic<int> ok{0}, failed{0};
    for (int i = 0; i < count; ++i)
        threads.emplace_back([&] {
            sockaddr_in in = loopback(port);
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) == 0) ok.fetch_add(1);
            else failed.fetch_add(1);
        });
    for (auto& t : threads) t.join();
    return say("ok=" + std::to_string(ok.load()) + " failed=" + std::to_string(failed.load()));
}

int fifo(const std::string& path, int count) {
    if (::mkfifo(path.c_str(), 0666) != 0 && errno != EEXIST) return say("mkfifo " + errno_name(errno));
    std::vector<std::thread> threads;
    for (int i = 0; i < count; ++i) threads.emplace_back([&] { ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    for (auto& t : threads) t.join();
    return say("opened");
}

int lease(const std::string& path, int hold) {
    ::signal(SIGIO, SIG_IGN);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return say("open " + errno_name(errno));
    if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return say("setlease " + errno_name(errno));
    auto t0 = Clock::now();
    std::string result;
    std::thread writer([&] {
        int w = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        result = w >= 0 ? "ok" : errno_name(errno);
    });
    ::sleep(static_cast<unsigned>(hold));
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
    writer.join();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    return say("leased write_open=" + result + " ms=" + std::to_string(ms));
}

// ---- /proc --------------------------------------------------------------------

int proc_tricks(const std::string& work, const std::string& daemon_pid) {
    const std::string secret = work + "/secret/key";
    auto show = [](const std::string& name, const std::string& r) {
        say(name + "=" + (r.starts_with("ok ") ? "ok " + r.substr(3, 16) : r));
    };
    show("daemon_environ", open_and_read(("/proc/" + daemon_pid + "/environ").c_str()));
    show("daemon_mem", open_and_read(("/proc/" + daemon_pid + "/mem").c_str()));
    show("daemon_task_environ", open_and_read(("/proc/" + daemon_pid + "/task/" + daemon_pid + "/environ").c_str()));
    show("daemon_via_thread_self",
         open_and_read(("/proc/thread-self/../../../" + daemon_pid + "/environ").c_str()));
    show("daemon_via_root", open_and_read(("/proc/self/root/proc/" + daemon_pid + "/environ").c_str()));
    std::string link = work + "/data/daemon-environ-link";
    ::symlink(("/proc/" + daemon_pid + "/environ").c_str(), link.c_str());
    show("daemon_via_symlink", open_and_read(link.c_str()));
    show("self_root_secret", open_and_read(("/proc/self/root" + secret).c_str()));
    show("thread_self_root_secret", open_and_read(("/proc/thread-self/root" + secret).c_str()));
    show("pid_root_secret", open_and_read(("/proc/" + std::to_string(::getpid()) + "/root" + secret).c_str()));
    show("opath_secret_dir", ::open((work + "/secret").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC) >= 0
                                 ? "ok"
                                 : "err " + errno_name(errno));
    int dirfd = ::open(work.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    show("opath_work_dir", dirfd >= 0 ? "ok" : "err " + errno_name(errno));
    if (dirfd >= 0) {
        show("fd_dir_secret", open_and_read(("/proc/self/fd/" + std::to_string(dirfd) + "/secret/key").c_str()));
        int k = ::openat(dirfd, "secret/key", O_RDONLY | O_CLOEXEC);
        show("openat_dirfd_secret", k >= 0 ? "ok " + read_all(k) : "err " + errno_name(errno));
    }
    if (::chdir((work + "/secret").c_str()) != 0) show("chdir", "err " + errno_name(errno));
    show("cwd_relative_secret", open_and_read("key"));
    show("proc_cwd_secret", open_and_read("/proc/self/cwd/key"));
    show("dotdot_secret", open_and_read("../data/../secret/./key"));
    if (::chdir("/proc/self") == 0) {
        show("chdir_proc_self_root_secret", open_and_read(("root" + secret).c_str()));
        show("chdir_proc_self_root_public", open_and_read(("root" + work + "/public/key").c_str()));
    }
    if (::chdir(work.c_str()) != 0) show("chdir back", "err " + errno_name(errno));

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return show("pipe", "err"), 0;
    for (const char* prefix : {"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"}) {
        (void)!::write(p[1], "pipe-bytes", 10);
        std::string path = prefix + std::to_string(p[0]);
        int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
            show(std::string("pipe ") + prefix, "err " + errno_name(errno));
            char drain[16];
            (void)!::read(p[0], drain, sizeof drain);
            continue;
        }
        char buf[16] = {};
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        show(std::string("pipe ") + prefix, n > 0 ? "ok " + std::string(buf, static_cast<std::size_t>(n)) : "err read");
        ::close(fd);
    }
    return 0;
}

// ---- the exec race (closed by the kernel layer) -------------------------------

int race_exec(const std::string& ok, const std::string& bad, int iterations, const std::string& arg,
              const std::string& arg_bad) {
    const bool flip_argument = !arg_bad.empty();
    int ran = 0, killed = 0, refused = 0, missing = 0, other = 0;
    for (int i = 0; i < iterations; ++i) {
        pid_t child = ::fork();
        if (child < 0) return say("err fork");
        if (child == 0) {
            static char path[4096], argument[4096];
            flip_into(path, ok);
            flip_into(argument, arg);
            std::thread flipper([&] {
                for (;;) {
                    if (flip_argument) {
                        flip_into(argument, arg_bad);
                        flip_into(argument, arg);
                    } else {
                        flip_into(path, bad);
                        flip_into(path, ok);
                    }
                }
            });
            flipper.detach();
            char prog[] = "prog";
            char* argv[] = {prog, argument, nullptr};
            ::execv(path, argv);
            ::_exit(errno == EPERM || errno == EACCES ? 13 : errno == ENOENT ? 14 : 12);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 13) ++refused;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 14) ++missing;  // a torn path names nothing
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ran;
        else ++other;
    }
    return say("ran=" + std::to_string(ran) + " killed=" + std::to_string(killed) +
               " refused=" + std::to_string(refused) + " missing=" + std::to_string(missing) +
               " other=" + std::to_string(other));
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return 2;
    auto arg = [&](std::size_t k) -> std::string { return k < args.size() ? args[k] : std::string(); };
    auto num = [&](std::size_t k) { return std::atoi(arg(k).c_str()); };
    const std::string& cmd = args[0];
    if (cmd == "race-open") return race_open(arg(1), arg(2), arg(3), num(4), false, "");
    if (cmd == "race-opath") return race_open(arg(1), arg(2), arg(5), num(4), true, arg(3), arg(6));
    if (cmd == "race-openat2-flags") return race_openat2_flags(arg(1), num(2));
    if (cmd == "race-link") return race_link(arg(1), arg(2), arg(3), arg(4), arg(5), num(6));
    if (cmd == "race-symlink") return race_exchange(arg(1), "link", "other", arg(1) + "/link", arg(2), num(3));
    if (cmd == "race-dirswap") return race_exchange(arg(1), "dir", "alt", arg(1) + "/dir/key", arg(2), num(3));
    if (cmd == "race-connect") return race_connect(num(1), num(2), num(3));
    if (cmd == "race-exec") return race_exec(arg(1), arg(2), num(3), arg(4), arg(5));
    if (cmd == "race-tfo") return race_tfo(num(1), num(2), num(3));
    if (cmd == "control") return control(arg(1), arg(2));
    if (cmd == "hold-control") return hold_control(arg(1));
    if (cmd == "steal-approve") return steal_approve(num(1), num(2), arg(3), arg(4) == "forge");
    if (cmd == "flood-control") return flood_control(arg(1), num(2), num(3));
    if (cmd == "hold-file") return hold_file(arg(1));
    if (cmd == "steal-file")
        return steal_file(num(1), num(2), std::strtoull(arg(3).c_str(), nullptr, 10),
                          static_cast<std::size_t>(num(4)));
    if (cmd == "int80") return int80(arg(1));
    if (cmd == "x32") return x32(arg(1));
    if (cmd == "refused") return refused(arg(1));
    if (cmd == "uffd") return uffd(arg(1), num(2));
    if (cmd == "unterminated") return unterminated();
    if (cmd == "flood-held") return flood_held(argv[2], num(2), num(3), num(4));
    if (cmd == "connect-many") return connect_many(num(1), num(2));
    if (cmd == "fifo") return fifo(arg(1), num(2));
    if (cmd == "lease") return lease(arg(1), num(2));
    if (cmd == "proc-tricks") return proc_tricks(arg(1), arg(2));
    if (cmd == "race-fdswap") return race_fdswap(num(1), num(2), num(3));
    if (cmd == "lease-many") return lease_many(arg(1), num(2), num(3));
    if (cmd == "hold-secret-spin") hold_secret_spin(arg(1));
    if (cmd == "perf-peek") return perf_peek(num(1));
    if (cmd == "raw-udp") return raw_udp(num(1), num(2));
    if (cmd == "read") return say(open_and_read(arg(1).c_str()));
    std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
    return 2;
}
