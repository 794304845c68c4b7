#include "kernel/exec_guard.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "exec_guard.h"
#include "exec_guard.skel.h"

namespace airlock::kernel {

std::uint64_t kernel_dev(dev_t st_dev) noexcept {
    return (static_cast<std::uint64_t>(major(st_dev)) << 20) | minor(st_dev);
}

std::uint64_t argv_hash(std::string_view argv_bytes) noexcept {
    std::uint64_t hash = 14695981039346656037ULL;
    const std::size_t n = std::min<std::size_t>(argv_bytes.size(), AIRLOCK_ARGV_HASH_BYTES);
    for (std::size_t i = 0; i < n; ++i) {
        hash ^= static_cast<unsigned char>(argv_bytes[i]);
        hash *= 1099511628211ULL;
    }
    return hash;
}

std::string_view to_string(ExecVerdict verdict) noexcept {
    switch (verdict) {
        case ExecVerdict::matched: return "matched";
        case ExecVerdict::no_approval: return "no approval";
        case ExecVerdict::wrong_image: return "another file than approved";
        case ExecVerdict::wrong_argv: return "other arguments than approved";
        case ExecVerdict::argv_unreadable: return "arguments unreadable";
    }
    return "unknown";
}

struct ExecGuard::State {
    exec_guard_bpf* skel = nullptr;
    ring_buffer* ring = nullptr;
    const std::function<void(const ExecEvent&)>* on_event = nullptr;

    ~State() {
        if (ring) ring_buffer__free(ring);
        if (skel) exec_guard_bpf__destroy(skel);
    }

    static int on_sample(void* ctx, void* data, std::size_t size) {
        auto* self = static_cast<State*>(ctx);
        if (size < sizeof(airlock_exec_event) || !self->on_event) return 0;
        airlock_exec_event raw{};
        std::memcpy(&raw, data, sizeof raw);
        ExecEvent e;
        e.session = static_cast<std::int64_t>(raw.session);
        e.tgid = static_cast<pid_t>(raw.tgid);
        e.kernel_dev = raw.dev;
        e.ino = raw.ino;
        e.argv_len = raw.argv_len;
        e.verdict = raw.verdict <= AIRLOCK_EXEC_ARGV_UNREADABLE ? static_cast<ExecVerdict>(raw.verdict)
                                                                : ExecVerdict::no_approval;
        e.comm.assign(raw.comm, strnlen(raw.comm, sizeof raw.comm));
        (*self->on_event)(e);
        return 0;
    }
};

ExecGuard::ExecGuard(std::unique_ptr<State> state) : state_(std::move(state)) {}
ExecGuard::ExecGuard(ExecGuard&&) noexcept = default;
ExecGuard& ExecGuard::operator=(ExecGuard&&) noexcept = default;
ExecGuard::~ExecGuard() = default;

common::Result<ExecGuard> ExecGuard::load() {
    auto state = std::make_unique<State>();
    state->skel = exec_guard_bpf__open();
    if (!state->skel) return common::fail_errno("opening the exec guard");
    if (int err = exec_guard_bpf__load(state->skel); err != 0)
        return common::fail(-err, "loading the exec guard (tp_btf/sched_process_exec)");
    if (int err = exec_guard_bpf__attach(state->skel); err != 0)
        return common::fail(-err, "attaching the exec guard");
    state->ring = ring_buffer__new(bpf_map__fd(state->skel->maps.events), &State::on_sample, state.get(), nullptr);
    if (!state->ring) return common::fail_errno("opening the exec guard's event ring");
    return ExecGuard(std::move(state));
}

common::Status ExecGuard::add_session(std::uint64_t cgroup_id, std::int64_t session) {
    auto value = static_cast<std::uint64_t>(session);
    if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.sessions), &cgroup_id, &value, BPF_ANY) != 0)
        return common::fail_errno("registering session cgroup with the exec guard");
    return {};
}

void ExecGuard::remove_session(std::uint64_t cgroup_id) noexcept {
    (void)bpf_map_delete_elem(bpf_map__fd(state_->skel->maps.sessions), &cgroup_id);
}

common::Status ExecGuard::expect(pid_t tgid, const ExecExpectation& x) {
    if (!x.argv_complete && x.check_argv && x.argv_bytes.size() < AIRLOCK_ARGV_HASH_BYTES)
        return common::fail(E2BIG, "argv read in part, and too little of it to check");
    airlock_exec_expect value{};
    value.dev = kernel_dev(x.dev);
    value.ino = x.ino;
    value.argv_hash = argv_hash(x.argv_bytes);
    value.argv_len = x.argv_bytes.size();
    value.session = static_cast<std::uint64_t>(x.session);
    if (!x.argv_complete) value.flags |= AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN;
    if (!x.check_argv) value.flags |= AIRLOCK_EXPECT_ARGV_UNCHECKED;
    auto key = static_cast<std::uint32_t>(tgid);
    if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.expected), &key, &value, BPF_ANY) != 0)
        return common::fail_errno("recording the approved exec with the exec guard");
    return {};
}

void ExecGuard::forget(pid_t tgid) noexcept {
    auto key = static_cast<std::uint32_t>(tgid);
    (void)bpf_map_delete_elem(bpf_map__fd(state_->skel->maps.expected), &key);
}

int ExecGuard::events_fd() const noexcept { return ring_buffer__epoll_fd(state_->ring); }

common::Status ExecGuard::drain(const std::function<void(const ExecEvent&)>& on_event) {
    state_->on_event = &on_event;
    int n = ring_buffer__consume(state_->ring);
    state_->on_event = nullptr;
    if (n < 0) return common::fail(-n, "reading exec guard events");
    return {};
}

}  // namespace airlock::kernel
