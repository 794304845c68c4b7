// airlockd: one event loop (epoll) over the control socket, its clients, every
// session's seccomp listener, a timer for ask deadlines and a signalfd.
// Holding a call costs a table entry, never a thread.
//
// Ordering invariant (DESIGN-NOTES 6): within one loop turn every decision is
// appended to the audit log, the transaction is committed, and only then are
// agents released or approvers notified. A failed commit denies instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace airlock::daemon {

struct DaemonConfig {
    std::string policy_file;                   // empty: embedded default policy
    std::string policy_dir = "/etc/airlock/policies";  // NAME.yaml for `run --policy NAME`
    std::string state_dir = "/var/lib/airlock";
    std::string socket_path = "/run/airlock/airlock.sock";
    std::string cgroup_base;                   // below the cgroup2 mount; empty: <own cgroup>/airlock
    bool allow_user_policies = false;          // non-root users may send their own policy text
    std::size_t max_sessions = 1024;
    std::size_t max_pending_total = 8192;
    std::size_t max_pending_per_session = 1024;
    std::size_t max_clients = 256;
    std::size_t max_clients_per_user = 32;     // root is bounded by max_clients only
    std::size_t max_client_output = 4 * 1024 * 1024;  // a slow watcher is dropped past this
    std::size_t worker_threads = 16;  // for calls whose emulation may block; 4 per session at most
    std::size_t max_worker_queue = 4096;
    // The eBPF kernel layer: `auto` loads what this kernel accepts (see
    // kernel/probe.hpp) and reports the enforcement level it reached; `off`
    // loads nothing (seccomp user notification alone).
    enum class KernelLayer { automatic, off };
    KernelLayer kernel_layer = KernelLayer::automatic;
};

class Daemon {
public:
    [[nodiscard]] static common::Result<std::unique_ptr<Daemon>> create(DaemonConfig config);
    // Runs until SIGTERM/SIGINT. Returns an error only for a failure of the loop itself.
    [[nodiscard]] common::Status run();
    ~Daemon();

    struct Impl;

private:
    explicit Daemon(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::daemon
