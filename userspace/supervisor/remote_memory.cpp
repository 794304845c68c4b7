#include "supervisor/remote_memory.hpp"

#include "supervisor/credentials.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

namespace airlock::supervisor {
namespace {

using common::fail;
using common::Result;
using common::Status;

std::size_t page_size() {
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

// process_vm_readv stops at the first unmapped page, so a string near the end
// of a mapping must be read page by page instead of in one PATH_MAX gulp.
Result<std::size_t> read_some(pid_t pid, std::uint64_t addr, char* out, std::size_t len) {
    // Reading another user's memory needs CAP_SYS_PTRACE, which an agent
    // identity lacks; a capability-less root kept by act_as_reader_of() reads
    // a root agent's without it, unless Yama refuses (remembered: no retry
    // per call on such a host).
    static std::atomic<bool> capless_reads_refused{false};
    if (!thread_identity::wearing_capless_root() || capless_reads_refused.load(std::memory_order_relaxed))
        thread_identity::act_as_daemon();
    iovec local{out, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EPERM && thread_identity::wearing_capless_root()) {
        capless_reads_refused.store(true, std::memory_order_relaxed);
        thread_identity::act_as_daemon();
        n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
    }
    if (n < 0) return common::fail_errno("process_vm_readv");
    return static_cast<std::size_t>(n);
}

}  // namespace

Status read_remote(pid_t pid, std::uint64_t addr, void* out, std::size_t len) {
    auto* dst = static_cast<char*>(out);
    std::size_t done = 0;
    while (done < len) {
        auto n = read_some(pid, addr + done, dst + done, len - done);
        if (!n) return std::unexpected(n.error());
        if (*n == 0) return fail(EFAULT, "short read of agent memory");
        done += *n;
    }
    return {};
}

Result<std::string> read_remote_string(pid_t pid, std::uint64_t addr, std::size_t max_len) {
    if (addr == 0) return fail(EFAULT, "NULL string pointer");
    std::string out;
    char chunk[4096];
    while (out.size() <= max_len) {
        std::size_t to_page_end = page_size() - static_cast<std::size_t>((addr + out.size()) % page_size());
        std::size_t want = std::min({to_page_end, sizeof chunk, max_len + 1 - out.size()});
        auto n = read_some(pid, addr + out.size(), chunk, want);
        if (!n) return fail(n.error().code == 0 ? EFAULT : n.error().code, "reading string from agent");
        if (*n == 0) return fail(EFAULT, "string runs into unmapped agent memory");
        if (const void* nul = std::memchr(chunk, '\0', *n)) {
            out.append(chunk, static_cast<const char*>(nul) - chunk);
            return out;
        }
        out.append(chunk, *n);
    }
    return fail(ENAMETOOLONG, "string longer than " + std::to_string(max_len) + " bytes");
}

Result<RemoteStringArray> read_remote_string_array(pid_t pid, std::uint64_t addr,
                                                   std::size_t max_items, std::size_t max_total_bytes) {
    RemoteStringArray result;
    if (addr == 0) return result;  // execve(path, NULL, ...) is legal on Linux: empty argv
    std::size_t total = 0;
    for (std::size_t i = 0;; ++i) {
        if (i >= max_items) {
            result.truncated = true;
            break;
        }
        std::uint64_t ptr = 0;
        if (auto r = read_remote(pid, addr + i * sizeof ptr, &ptr, sizeof ptr); !r)
            return std::unexpected(r.error());
        if (ptr == 0) break;
        std::size_t budget = max_total_bytes > total ? max_total_bytes - total : 0;
        if (budget == 0) {
            result.truncated = true;
            break;
        }
        auto s = read_remote_string(pid, ptr, budget);
        if (!s) {
            if (s.error().code != ENAMETOOLONG) return std::unexpected(s.error());
            result.truncated = true;
            break;
        }
        total += s->size() + 1;
        result.items.push_back(std::move(*s));
    }
    return result;
}

}  // namespace airlock::supervisor
