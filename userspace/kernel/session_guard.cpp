#include "kernel/session_guard.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "session_guard.h"
#include "session_guard.skel.h"

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

std::string_view to_string(GuardVerdict verdict) noexcept {
    switch (verdict) {
        case GuardVerdict::matched: return "matched";
        case GuardVerdict::no_approval: return "no approval";
        case GuardVerdict::wrong_image: return "another file than approved";
        case GuardVerdict::wrong_argv: return "other arguments than approved";
        case GuardVerdict::argv_unreadable: return "arguments unreadable";
        case GuardVerdict::open_unsupervised: return "an open past the supervisor";
        case GuardVerdict::connect_unsupervised: return "a connect or send past the supervisor";
    }
    return "unknown";
}

std::string_view to_string(GuardHook hook) noexcept {
    switch (hook) {
        case GuardHook::exec_tracepoint: return "tp_btf/sched_process_exec";
        case GuardHook::bprm_check: return "lsm/bprm_check_security";
        case GuardHook::file_open: return "lsm/file_open";
        case GuardHook::socket_connect: return "lsm/socket_connect";
        case GuardHook::socket_sendmsg: return "lsm/socket_sendmsg";
        case GuardHook::cgroup_connect: return "cgroup/connect4,6";
        case GuardHook::cgroup_sendmsg: return "cgroup/sendmsg4,6";
        case GuardHook::process_fork: return "tp_btf/sched_process_fork";
        case GuardHook::process_exit: return "tp_btf/sched_process_exit";
    }
    return "unknown";
}

struct SessionGuard::State {
    session_guard_bpf* skel = nullptr;
    ring_buffer* ring = nullptr;
    bool lsm = false;
    bool cgroup_programs = false;
    std::vector<bpf_link*> cgroup_links;
    const std::function<void(const GuardEvent&)>* on_event = nullptr;

    ~State() {
        for (bpf_link* link : cgroup_links) bpf_link__destroy(link);
        if (ring) ring_buffer__free(ring);
        if (skel) session_guard_bpf__destroy(skel);
    }

    static int on_sample(void* ctx, void* data, std::size_t size) {
        auto* self = static_cast<State*>(ctx);
        if (size < sizeof(airlock_guard_event) || !self->on_event) return 0;
        airlock_guard_event raw{};
        std::memcpy(&raw, data, sizeof raw);
        GuardEvent e;
        e.session = static_cast<std::int64_t>(raw.session);
        e.tgid = static_cast<pid_t>(raw.tgid);
        e.hook = raw.hook <= AIRLOCK_HOOK_PROCESS_EXIT ? static_cast<GuardHook>(raw.hook) : GuardHook::exec_tracepoint;
        e.ppid = static_cast<pid_t>(raw.ppid);
        e.verdict = raw.verdict <= AIRLOCK_CONNECT_UNSUPERVISED ? static_cast<GuardVerdict>(raw.verdict)
                                                                : GuardVerdict::no_approval;
        e.kernel_dev = raw.dev;
        e.ino = raw.ino;
        e.argv_len = raw.argv_len;
        e.comm.assign(raw.comm, strnlen(raw.comm, sizeof raw.comm));
        (*self->on_event)(e);
        return 0;
    }
};

SessionGuard::SessionGuard(std::unique_ptr<State> state) : state_(std::move(state)) {}
SessionGuard::SessionGuard(SessionGuard&&) noexcept = default;
SessionGuard& SessionGuard::operator=(SessionGuard&&) noexcept = default;
SessionGuard::~SessionGuard() = default;

common::Result<SessionGuard> SessionGuard::load(bool with_lsm, bool with_cgroup) {
    auto state = std::make_unique<State>();
    state->skel = session_guard_bpf__open();
    if (!state->skel) return common::fail_errno("opening the session guard");
    if (!with_lsm) {
        for (bpf_program* lsm : {state->skel->progs.check_bprm, state->skel->progs.check_file_open,
                                 state->skel->progs.check_socket_connect, state->skel->progs.check_socket_sendmsg})
            (void)bpf_program__set_autoload(lsm, false);
    }
    if (!with_cgroup) {
        for (bpf_program* cg : {state->skel->progs.check_connect4, state->skel->progs.check_connect6,
                                state->skel->progs.check_sendmsg4, state->skel->progs.check_sendmsg6})
            (void)bpf_program__set_autoload(cg, false);
    }
    if (int err = session_guard_bpf__load(state->skel); err != 0)
        return common::fail(-err, with_lsm ? "loading the session guard (tp_btf and LSM programs)"
                                           : "loading the session guard (tp_btf/sched_process_exec)");
    if (int err = session_guard_bpf__attach(state->skel); err != 0)
        return common::fail(-err, "attaching the session guard");
    state->lsm = with_lsm;
    state->cgroup_programs = with_cgroup;
    state->ring = ring_buffer__new(bpf_map__fd(state->skel->maps.events), &State::on_sample, state.get(), nullptr);
    if (!state->ring) return common::fail_errno("opening the session guard's event ring");
    return SessionGuard(std::move(state));
}

bool SessionGuard::lsm_attached() const noexcept { return state_->lsm; }

common::Status SessionGuard::attach_cgroup(int cgroup_fd) {
    if (!state_->cgroup_programs) return common::fail(ENOTSUP, "the cgroup programs were not loaded");
    std::vector<bpf_link*> links;
    for (bpf_program* prog : {state_->skel->progs.check_connect4, state_->skel->progs.check_connect6,
                              state_->skel->progs.check_sendmsg4, state_->skel->progs.check_sendmsg6}) {
        bpf_link* link = bpf_program__attach_cgroup(prog, cgroup_fd);
        if (!link) {
            auto err = common::fail_errno(std::string("attaching ") + bpf_program__section_name(prog));
            for (bpf_link* made : links) bpf_link__destroy(made);  // all four or none
            return err;
        }
        links.push_back(link);
    }
    state_->cgroup_links.insert(state_->cgroup_links.end(), links.begin(), links.end());
    return {};
}

bool SessionGuard::cgroup_attached() const noexcept { return !state_->cgroup_links.empty(); }

common::Status SessionGuard::add_session(std::uint64_t cgroup_id, std::int64_t session) {
    auto value = static_cast<std::uint64_t>(session);
    if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.sessions), &cgroup_id, &value, BPF_ANY) != 0)
        return common::fail_errno("registering the session cgroup with the session guard");
    return {};
}

void SessionGuard::remove_session(std::uint64_t cgroup_id) noexcept {
    (void)bpf_map_delete_elem(bpf_map__fd(state_->skel->maps.sessions), &cgroup_id);
}

common::Status SessionGuard::expect(pid_t tgid, const ExecExpectation& x) {
    if (!x.argv_complete && x.argv_bytes.size() < AIRLOCK_ARGV_HASH_BYTES)
        return common::fail(E2BIG, "argv read in part, and too little of it to check");
    if (x.chain.empty() || x.chain.size() > AIRLOCK_EXEC_CHAIN_MAX)
        return common::fail(EINVAL, "an exec expectation needs 1 to " + std::to_string(AIRLOCK_EXEC_CHAIN_MAX) +
                                        " files");
    airlock_exec_expect value{};
    for (std::size_t i = 0; i < x.chain.size(); ++i) {
        value.chain[i].dev = kernel_dev(x.chain[i].dev);
        value.chain[i].ino = x.chain[i].ino;
    }
    value.chain_len = static_cast<__u32>(x.chain.size());
    value.argv_hash = argv_hash(x.argv_bytes);
    value.argv_len = x.argv_bytes.size();
    value.session = static_cast<std::uint64_t>(x.session);
    if (!x.argv_complete) value.flags |= AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN;
    auto key = static_cast<std::uint32_t>(tgid);
    if (bpf_map_update_elem(bpf_map__fd(state_->skel->maps.expected), &key, &value, BPF_ANY) != 0)
        return common::fail_errno("recording the approved exec with the session guard");
    return {};
}

void SessionGuard::forget(pid_t tgid) noexcept {
    auto key = static_cast<std::uint32_t>(tgid);
    (void)bpf_map_delete_elem(bpf_map__fd(state_->skel->maps.expected), &key);
}

int SessionGuard::events_fd() const noexcept { return ring_buffer__epoll_fd(state_->ring); }

common::Status SessionGuard::drain(const std::function<void(const GuardEvent&)>& on_event) {
    state_->on_event = &on_event;
    int n = ring_buffer__consume(state_->ring);
    state_->on_event = nullptr;
    if (n < 0) return common::fail(-n, "reading session guard events");
    return {};
}

}  // namespace airlock::kernel
