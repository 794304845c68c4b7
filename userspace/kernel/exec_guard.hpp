// Owner of the exec guard (bpf/exec_guard.bpf.c): the tp_btf program that
// kills an agent process whose exec loaded another file, or other argv,
// than the supervisor approved — the backstop for the exec race where BPF
// LSM is not active.
//
// Lifecycle: load() opens, loads and attaches the skeleton (RAII: the
// program is detached and the maps freed with this object). The daemon then
// registers each session's cgroup, records every exec it approves before
// answering CONTINUE, and drains the event ring when its fd is readable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

struct exec_guard_bpf;
struct ring_buffer;

namespace airlock::kernel {

// The kernel's dev_t encoding (MAJOR << 20 | MINOR), which the exec hook sees
// in inode->i_sb->s_dev, from a stat() st_dev.
[[nodiscard]] std::uint64_t kernel_dev(dev_t st_dev) noexcept;

// FNV-1a 64 of the first AIRLOCK_ARGV_HASH_BYTES bytes, as the exec hook computes it.
[[nodiscard]] std::uint64_t argv_hash(std::string_view argv_bytes) noexcept;

struct ExecExpectation {
    std::int64_t session = 0;
    dev_t dev = 0;  // st_dev of the image the kernel will load
    ino_t ino = 0;
    // argv as the kernel lays it out on the new stack: each argument followed
    // by a NUL. When `argv_complete` is false only its first
    // AIRLOCK_ARGV_HASH_BYTES bytes are compared (and must all be there).
    std::string argv_bytes;
    bool argv_complete = true;
    bool check_argv = true;
};

enum class ExecVerdict { matched, no_approval, wrong_image, wrong_argv, argv_unreadable };
[[nodiscard]] std::string_view to_string(ExecVerdict verdict) noexcept;

struct ExecEvent {
    std::int64_t session = 0;
    pid_t tgid = 0;
    std::uint64_t kernel_dev = 0;
    std::uint64_t ino = 0;
    std::uint64_t argv_len = 0;
    ExecVerdict verdict = ExecVerdict::matched;
    std::string comm;
};

class ExecGuard {
public:
    [[nodiscard]] static common::Result<ExecGuard> load();

    ExecGuard(ExecGuard&&) noexcept;
    ExecGuard& operator=(ExecGuard&&) noexcept;
    ExecGuard(const ExecGuard&) = delete;
    ExecGuard& operator=(const ExecGuard&) = delete;
    ~ExecGuard();

    // From here on every exec in the cgroup (or below it) needs an expectation.
    [[nodiscard]] common::Status add_session(std::uint64_t cgroup_id, std::int64_t session);
    void remove_session(std::uint64_t cgroup_id) noexcept;
    // Replaces the thread group's previous expectation (one exec at a time per
    // thread group: a second thread's exec racing the first is killed).
    [[nodiscard]] common::Status expect(pid_t tgid, const ExecExpectation& expectation);
    void forget(pid_t tgid) noexcept;

    // Readable when events wait (epoll it); drain() hands each to `on_event`.
    [[nodiscard]] int events_fd() const noexcept;
    [[nodiscard]] common::Status drain(const std::function<void(const ExecEvent&)>& on_event);

private:
    struct State;
    explicit ExecGuard(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace airlock::kernel
