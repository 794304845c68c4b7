#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "approval/authorize.hpp"
#include "audit/audit_log.hpp"
#include "common/unique_fd.hpp"
#include "daemon/cgroup.hpp"
#include "kernel/session_guard.hpp"
#include "kernel/probe.hpp"
#include "daemon/data_inspection.hpp"
#include "daemon/identity.hpp"
#include "daemon/worker_pool.hpp"
#include "policy/builtin.hpp"
#include "policy/policy.hpp"
#include "protocol/protocol.hpp"
#include "supervisor/held_call.hpp"
#include "supervisor/local_address.hpp"

#ifndef AIRLOCK_VERSION
#define AIRLOCK_VERSION "0.1.0"
#endif

namespace airlock::daemon {

using common::fail;
using common::Result;
using common::Status;
using common::UniqueFd;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t k_resolved_memory = 4096;  // decided request ids remembered for late approvers
constexpr auto k_sweep_interval = std::chrono::seconds(1);
constexpr std::size_t k_max_clients_per_session = 4;
// Calls whose emulation may block (connects, FIFO opens) that one session may
// have on workers at once; the rest wait in that session's queue, so one
// session stuck on a tarpit cannot take every worker from the others.
constexpr std::size_t k_blocking_per_session = 4;
// Processes remembered per session for `airlock sessions --tree`; past it the
// oldest exited ones are forgotten, and when none has exited, new ones are
// counted but not kept.
constexpr std::size_t k_max_tree_processes = 4096;

enum class Tag : std::uint64_t {
    control = 1,
    client = 2,
    listener = 3,
    timer = 4,
    signal = 5,
    completion = 6,
    kernel_events = 7
};
std::uint64_t tag(Tag t, std::uint64_t value) { return (static_cast<std::uint64_t>(t) << 56) | value; }
Tag tag_of(std::uint64_t data) { return static_cast<Tag>(data >> 56); }
std::uint64_t value_of(std::uint64_t data) { return data & ((std::uint64_t{1} << 56) - 1); }

std::int64_t wall_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_time(std::int64_t us) {
    std::time_t secs = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string errno_text(int e) { return policy::errno_name(e); }

}  // namespace

// One process of a session, from the session guard's fork/exit events and
// the execs the supervisor approved.
struct SessionProcess {
    pid_t ppid = 0;
    std::string exe;   // the approved image's path ("airlock run" for the launcher)
    std::string argv;  // the approved command line, shell-quoted (redacted when inspection found data in it)
    std::int64_t started_us = 0;
    std::int64_t exited_us = 0;  // 0 while running
};

struct Session {
    std::int64_t id = 0;
    uid_t owner_uid = 0;
    std::string owner_name;
    UserInfo agent;
    std::vector<std::string> argv;
    std::map<std::string, std::string> labels;
    std::string policy_name;                          // a named policy, or "" with custom_policy
    std::shared_ptr<const policy::Policy> custom_policy;
    std::string custom_source;
    std::string cgroup;                               // relative to the cgroup2 mount
    std::uint64_t cgroup_id = 0;                      // its inode: the id BPF sees
    bool guarded = false;                             // registered with the session guard
    UniqueFd listener;
    UniqueFd root;                                    // O_PATH of the launcher's root at attach
    // Tells which destinations are this host, in the network namespace the
    // launcher was in at attach; null when that could not be set up, and then
    // every IP destination counts as local (fail closed).
    std::shared_ptr<supervisor::LocalAddresses> local_addresses;
    bool root_is_daemon_root = false;
    // Built on first use after attach (root fd known); never changes after.
    mutable std::optional<supervisor::AgentContext> context;
    bool attached = false;
    int creator_client = -1;
    std::set<std::string> grants;                     // "scope: session" approvals
    std::size_t pending = 0;
    std::int64_t started_us = 0;
    std::map<pid_t, SessionProcess> processes;
    std::uint64_t processes_dropped = 0;  // not kept: the tree was full
    std::size_t blocking_in_flight = 0;
    // Work waiting for one of this session's worker slots: performing a call
    // that may block, or inspecting the data a call hands over.
    struct WaitingJob {
        std::shared_ptr<supervisor::HeldCall> call;
        std::function<void(Session&)> start;
    };
    std::deque<WaitingJob> blocking_waiting;
    // What the session has read (exfiltration correlation): findings by
    // class in data handed over unmasked, and how many files held each class.
    policy::DataCounts data_read;
    std::map<std::string, std::uint64_t, std::less<>> files_read;
};

struct Pending {
    std::int64_t id = 0;
    std::int64_t session = 0;
    std::shared_ptr<supervisor::HeldCall> call;
    policy::Decision decision;
    std::shared_ptr<const DataSummary> data;  // what inspection found, when the rule inspects
    std::string grant_key;
    std::int64_t created_us = 0;
    std::int64_t expires_us = 0;
    Clock::time_point received;
    Clock::time_point deadline;
};

struct Resolution {
    std::string decision;  // approved | denied | timeout | cancelled
    std::string by;
};

struct Client {
    int id = 0;
    UniqueFd fd;
    ucred peer{};
    approval::PeerIdentity identity;
    protocol::LineBuffer in;
    std::string out;
    bool watching = false;
    bool closing = false;
    std::vector<UniqueFd> received_fds;
    std::optional<std::int64_t> creating_session;
    std::string cgroup;  // of the peer at connect time
};

// Actions that run after the turn's audit transaction: `committed` when the
// rows are durable in the WAL, `failed` when they could not be written.
struct Release {
    std::function<void()> committed;
    std::function<void()> failed;
};

struct Daemon::Impl {
    DaemonConfig config;
    audit::AuditLog audit;
    CgroupTree cgroups;
    UniqueFd epoll;
    UniqueFd control;
    UniqueFd timer;
    UniqueFd signals;
    // Workers report finished blocking calls here; declared before `workers`
    // so they outlive the threads that use them.
    UniqueFd completions;
    std::mutex completions_mutex;
    std::vector<std::int64_t> completed_sessions;
    // Run on the loop once their worker job is done (inspection results).
    std::vector<std::function<void()>> completed_continuations;
    std::unique_ptr<DataInspection> inspection;
    // Blocking calls on workers, so the sweep can release the ones whose caller
    // is gone: an open of a FIFO nobody will ever open again would otherwise
    // hold its worker forever (and SIGTERM's join with it).
    struct InFlight {
        int listener = -1;
        std::uint64_t id = 0;
        UniqueFd fifo;  // O_PATH of the FIFO being opened, if that is what blocks
    };
    std::mutex in_flight_mutex;
    std::map<std::uint64_t, InFlight> in_flight;
    std::uint64_t next_in_flight = 1;
    std::unique_ptr<WorkerPool> workers;
    // The kernel layer (issue 4): what the kernel accepted, and the session
    // guard when it is loaded (absent: the supervisor alone).
    kernel::Features kernel_features;
    std::optional<kernel::SessionGuard> guard;
    std::string guard_error;
    std::string cgroup_guard_error;  // why the cgroup connect/sendmsg backstop is not attached
    std::map<std::string, std::shared_ptr<const policy::Policy>> policies;
    // The daemon's own network namespace's, shared by the sessions started in it.
    std::shared_ptr<supervisor::LocalAddresses> host_local_addresses;
    std::map<std::int64_t, Session> sessions;
    std::map<std::int64_t, Pending> pending;
    std::multimap<Clock::time_point, std::int64_t> deadlines;
    std::unordered_map<std::int64_t, Resolution> resolved;
    std::deque<std::int64_t> resolved_order;
    std::map<int, Client> clients;
    std::vector<Release> releases;
    std::vector<std::pair<std::string, int>> cgroups_to_remove;  // path, attempts
    std::int64_t next_session_id = 1;
    std::int64_t next_request_id = 1;
    int next_client_id = 1;
    Clock::time_point started = Clock::now();
    Clock::time_point next_sweep = Clock::now() + k_sweep_interval;
    bool stopping = false;

    Impl(DaemonConfig c, audit::AuditLog a, CgroupTree t)
        : config(std::move(c)), audit(std::move(a)), cgroups(std::move(t)) {}

    // ---- policies ---------------------------------------------------------
    Result<std::map<std::string, std::shared_ptr<const policy::Policy>>> load_policies(
        std::vector<std::string>& errors) {
        std::map<std::string, std::shared_ptr<const policy::Policy>> loaded;
        auto keep = [&](const std::string& name, auto parsed) {
            if (parsed) {
                loaded[name] = std::make_shared<const policy::Policy>(std::move(*parsed));
            } else {
                for (const auto& d : parsed.error()) errors.push_back(d.to_string());
            }
        };
        for (auto name : policy::builtin_policy_names())
            keep(std::string(name), policy::load_builtin_policy(name));
        std::error_code ec;
        if (!config.policy_dir.empty() && std::filesystem::is_directory(config.policy_dir, ec)) {
            for (const auto& entry : std::filesystem::directory_iterator(config.policy_dir, ec)) {
                if (entry.path().extension() != ".yaml") continue;
                keep(entry.path().stem().string(), policy::Policy::load_file(entry.path().string()));
            }
        }
        if (!config.policy_file.empty()) keep("default", policy::Policy::load_file(config.policy_file));
        if (!errors.empty()) return fail(EINVAL, "policy errors");
        return loaded;
    }

    const policy::Policy& policy_of(const Session& s) const {
        if (s.custom_policy) return *s.custom_policy;
        auto it = policies.find(s.policy_name);
        if (it != policies.end()) return *it->second;
        return *policies.at("default");  // a named policy removed by a reload falls back to default
    }

    std::string policy_label(const Session& s) const {
        return s.custom_policy ? "file:" + s.custom_source : s.policy_name;
    }

    // ---- audit ------------------------------------------------------------
    void record(audit::Event e) {
        if (!turn_open) {
            // Begun lazily: a turn that decides nothing costs no transaction.
            if (auto b = audit.begin(); !b) {
                audit_failed = b.error().to_string();
                return;
            }
            turn_open = true;
        }
        auto appended = audit.append(std::move(e));
        if (!appended) audit_failed = appended.error().to_string();
    }
    bool turn_open = false;
    dev_t control_socket_dev = 0;
    ino_t control_socket_ino = 0;

    // The audit log copies committed rows into SQLite on its own thread. The
    // loop waits for that only at shutdown (flush_audit) and logs the
    // ingester's error once per change (check_audit_ingest, every turn: one
    // atomic load while healthy). Rows SQLite refuses stay in the journal and
    // queued; decisions keep being recorded there until the queue bound,
    // after which they are denied.
    std::string audit_ingest_error;  // the one last logged; empty while ingestion works

    void check_audit_ingest() {
        auto err = audit.last_ingest_error();
        if (!err && audit_ingest_error.empty()) return;
        std::string text = err ? err->to_string() : std::string();
        if (text == audit_ingest_error) return;
        if (err)
            spdlog::error("audit database: {} ({} rows waiting in the journal)", text, audit.queued_rows());
        else
            spdlog::info("audit database takes rows again ({} rows waiting in the journal)", audit.queued_rows());
        audit_ingest_error = std::move(text);
    }

    // ---- kernel layer ------------------------------------------------------
    // What is enforced, not what could be: "seccomp-notify" alone; with the
    // exec guard (tp_btf/sched_process_exec + SIGKILL) that closes the exec
    // race; or with BPF LSM too, which refuses (EPERM) instead of killing and
    // also refuses opens, connects and addressed sends that reach the kernel
    // from a supervised process without the supervisor.
    policy::KernelRequirement enforcement_reached() const {
        if (!guard) return policy::KernelRequirement::seccomp;
        if (guard->lsm_attached()) return policy::KernelRequirement::lsm;
        return guard->cgroup_attached() ? policy::KernelRequirement::fallback : policy::KernelRequirement::exec_guard;
    }

    std::string enforcement_level() const {
        const auto reached = enforcement_reached();
        if (reached == policy::KernelRequirement::seccomp) return "seccomp-notify";
        return "seccomp-notify+" + std::string(policy::to_string(reached));
    }

    // Empty when `required` is met; else what is missing and how to get it.
    std::string missing_enforcement(policy::KernelRequirement required) const {
        using K = policy::KernelRequirement;
        if (static_cast<int>(enforcement_reached()) >= static_cast<int>(required)) return {};
        if (config.kernel_layer == DaemonConfig::KernelLayer::off)
            return "the kernel layer is off (start airlockd with --kernel-layer auto)";
        if (!guard) return "the exec guard did not load (" + guard_error + ")";
        if (required == K::fallback) return "the cgroup connect/sendmsg programs are not attached (" + cgroup_guard_error + ")";
        if (!kernel_features.bpf_lsm.available) return bpf_lsm_unavailable();
        return "the LSM programs did not load (" + guard_error + ")";
    }

    // Why BPF LSM is not attachable, and how to make it so.
    std::string bpf_lsm_unavailable() const {
        return "BPF LSM is not attachable here (" + kernel_features.bpf_lsm.error +
               "); it needs a kernel built with CONFIG_BPF_LSM and booted with bpf in its LSM list, e.g. "
               "lsm=lockdown,capability,landlock,yama,apparmor,bpf on the kernel command line";
    }

    json kernel_json() const {
        auto feature = [](const kernel::Feature& f) {
            json j = {{"available", f.available}};
            if (!f.error.empty()) j["error"] = f.error;
            return j;
        };
        json exec_hook = {{"active", guard.has_value()}, {"hook", "tp_btf/sched_process_exec"}};
        if (!guard_error.empty()) exec_hook["error"] = guard_error;
        json cgroup_hook = {{"active", guard && guard->cgroup_attached()},
                            {"hooks", {"cgroup/connect4", "cgroup/connect6", "cgroup/sendmsg4", "cgroup/sendmsg6"}}};
        if (!guard) cgroup_hook["error"] = guard_error;
        else if (!cgroup_guard_error.empty()) cgroup_hook["error"] = cgroup_guard_error;
        json lsm = {{"active", guard && guard->lsm_attached()}};
        if (guard && guard->lsm_attached())
            lsm["hooks"] = {"lsm/bprm_check_security", "lsm/file_open", "lsm/socket_connect", "lsm/socket_sendmsg"};
        else if (config.kernel_layer == DaemonConfig::KernelLayer::off)
            lsm["why"] = "the kernel layer is off (--kernel-layer off)";
        else if (!kernel_features.bpf_lsm.available)
            lsm["why"] = bpf_lsm_unavailable();
        else
            lsm["why"] = guard_error;
        return {{"features",
                 {{"bpf_lsm", feature(kernel_features.bpf_lsm)},
                  {"tp_btf", feature(kernel_features.tp_btf)},
                  {"cgroup_sock_addr", feature(kernel_features.cgroup_sock_addr)},
                  {"ringbuf", feature(kernel_features.ringbuf)}}},
                {"hooks", {{"exec_guard", exec_hook}, {"cgroup_sock_addr", cgroup_hook}, {"bpf_lsm", lsm}}}};
    }

    void on_kernel_events() {
        if (!guard) return;
        auto drained = guard->drain([this](const kernel::GuardEvent& e) {
            if (e.hook == kernel::GuardHook::process_fork || e.hook == kernel::GuardHook::process_exit) {
                track_process(e);
                return;
            }
            if (e.verdict == kernel::GuardVerdict::matched) return;
            const char* done = e.killed() ? "killed" : "refused";
            // Agent-chosen names: JSON-escaped so they cannot forge log lines.
            spdlog::warn("session {}: {} pid {} ({}) at {}: {} (dev {}:{} inode {})", e.session, done, e.tgid,
                         json(e.comm).dump(), kernel::to_string(e.hook), kernel::to_string(e.verdict),
                         e.kernel_dev >> 20, e.kernel_dev & 0xfffff, e.ino);
            audit::Event a;
            a.kind = audit::EventKind::kernel;
            a.session = e.session;
            a.pid = e.tgid;
            switch (e.hook) {
                case kernel::GuardHook::exec_tracepoint:
                case kernel::GuardHook::bprm_check: a.action = "exec"; break;
                case kernel::GuardHook::file_open: a.action = "open"; break;
                case kernel::GuardHook::socket_connect:
                case kernel::GuardHook::socket_sendmsg:
                case kernel::GuardHook::cgroup_connect:
                case kernel::GuardHook::cgroup_sendmsg: a.action = "connect"; break;
                case kernel::GuardHook::process_fork:
                case kernel::GuardHook::process_exit: return;  // handled above
            }
            a.object = e.comm;
            a.verdict = done;
            a.rule = e.hook == kernel::GuardHook::exec_tracepoint ? "exec-guard"
                     : e.hook == kernel::GuardHook::cgroup_connect || e.hook == kernel::GuardHook::cgroup_sendmsg
                         ? "cgroup-sock-addr"
                         : "bpf-lsm";
            a.actor = "kernel";
            a.reason = std::string(kernel::to_string(e.verdict));
            a.detail_json = json{{"hook", kernel::to_string(e.hook)},
                                 {"dev_major", e.kernel_dev >> 20},
                                 {"dev_minor", e.kernel_dev & 0xfffff},
                                 {"ino", e.ino},
                                 {"argv_len", e.argv_len}}
                                .dump();
            record(std::move(a));
        });
        if (!drained) spdlog::error("session guard: {}", drained.error().to_string());
    }

    // The session's process tree (airlock sessions --tree).
    static SessionProcess* tree_slot(Session& s, pid_t pid) {
        if (auto it = s.processes.find(pid); it != s.processes.end()) return &it->second;
        if (s.processes.size() >= k_max_tree_processes) {
            auto oldest = s.processes.end();
            for (auto it = s.processes.begin(); it != s.processes.end(); ++it)
                if (it->second.exited_us && (oldest == s.processes.end() || it->second.exited_us < oldest->second.exited_us))
                    oldest = it;
            if (oldest == s.processes.end()) {
                ++s.processes_dropped;
                return nullptr;
            }
            s.processes.erase(oldest);
        }
        return &s.processes[pid];
    }

    void track_process(const kernel::GuardEvent& e) {
        auto it = sessions.find(e.session);
        if (it == sessions.end()) return;
        Session& s = it->second;
        if (e.hook == kernel::GuardHook::process_fork) {
            std::string exe = e.comm, argv;
            if (auto parent = s.processes.find(e.ppid); parent != s.processes.end()) {
                exe = parent->second.exe;  // a fork runs its parent's image until it execs
                argv = parent->second.argv;
            }
            SessionProcess* p = tree_slot(s, e.tgid);
            if (!p) return;
            *p = SessionProcess{e.ppid, std::move(exe), std::move(argv), wall_us(), 0};
        } else if (auto p = s.processes.find(e.tgid); p != s.processes.end()) {
            p->second.exited_us = wall_us();
        }
    }

    void record_exec(Session& s, const supervisor::HeldCall& call) {
        SessionProcess* p = tree_slot(s, call.tgid);
        if (!p) return;
        if (!p->started_us) p->started_us = wall_us();
        p->exe = call.target.policy_path;
        p->argv = supervisor::quote_argv(call.shown_argv ? *call.shown_argv : call.argv, call.argv_truncated);
    }

    json tree_json(const Session& s) const {
        json list = json::array();
        for (const auto& [pid, p] : s.processes) {
            json j = {{"pid", pid}, {"ppid", p.ppid}, {"exe", p.exe}, {"argv", p.argv},
                      {"started_at", p.started_us ? iso_time(p.started_us) : std::string()}};
            if (p.exited_us) j["exited_at"] = iso_time(p.exited_us);
            list.push_back(std::move(j));
        }
        return list;
    }

    // The session guard must know what this exec will load before the kernel
    // loads it. False: the exec is refused (the expectation could not be
    // recorded: what cannot be checked is not run).
    bool expect_exec(const Session& s, const supervisor::HeldCall& call) {
        if (!guard) return true;
        const supervisor::ExecImage image = supervisor::resolve_exec_image(call, agent_context(s));
        if (!image.incomplete.empty())
            // The kernel fails such an exec with its own errno (a missing
            // interpreter: ENOENT); if it would run after all, the guard stops it.
            spdlog::info("session {}: exec {}: {}; what the kernel would load is not known", s.id,
                         json(call.object).dump(), image.incomplete);
        kernel::ExecExpectation x;
        x.session = s.id;
        for (const auto& f : image.chain) x.chain.push_back({f.dev, f.ino});
        x.argv_bytes = supervisor::argv_bytes(image.argv);
        x.argv_complete = image.argv_complete;
        if (auto r = guard->expect(call.tgid, x); !r) {
            spdlog::error("session {}: exec {} refused: {}", s.id, json(call.object).dump(), r.error().to_string());
            return false;
        }
        return true;
    }

    void flush_audit() {
        if (auto f = audit.flush(); !f)
            // They stay in the journal, for the next start to replay.
            spdlog::error("audit database: {} ({} rows left in the journal)", f.error().to_string(),
                          audit.queued_rows());
    }
    std::string audit_failed;  // non-empty: this turn's transaction must not be trusted

    void commit_turn() {
        std::vector<Release> todo;
        todo.swap(releases);
        bool ok = audit_failed.empty();
        if (ok && turn_open) {
            if (auto c = audit.commit(); !c) {
                ok = false;
                audit_failed = c.error().to_string();
            }
        }
        if (!ok) {
            spdlog::error("audit log write failed ({}); denying this turn's held calls", audit_failed);
            if (turn_open) audit.rollback();
        }
        turn_open = false;
        audit_failed.clear();
        for (auto& r : todo) {
            if (ok && r.committed) r.committed();
            if (!ok && r.failed) r.failed();
        }
        flush_clients();
    }

    // ---- events to watchers -------------------------------------------------
    json pending_json(const Pending& p) const {
        json j = {{"id", p.id},
                  {"session", p.session},
                  {"pid", p.call->tgid},
                  {"tid", p.call->tid},
                  {"action", std::string(supervisor::action_name(*p.call))},
                  {"object", p.call->object},
                  {"rule", p.decision.rule},
                  {"created_at", iso_time(p.created_us)},
                  {"expires_at", iso_time(p.expires_us)},
                  {"on_timeout", std::string(policy::to_string(p.decision.ask.on_timeout))}};
        if (p.call->query.action == policy::Action::open)
            j["access"] = policy::access_to_string(p.call->query.access);
        if (!p.decision.data_reason.empty()) j["data_reason"] = p.decision.data_reason;
        if (p.data) j["data"] = data_json(*p.data, false);
        return j;
    }

    // Findings as prompts, watchers and audit rows show them: types, counts,
    // where, masked previews and keyed hashes; never a value.
    static json data_json(const DataSummary& data, bool masked) {
        json shown = json::array();
        for (const auto& f : data.shown) {
            json one = {{"type", std::string(f.type)},
                        {"offset", f.offset},
                        {"length", f.length},
                        {"line", f.line},
                        {"preview", f.preview.str()}};
            if (!f.keyed_hash.empty()) one["keyed_hash"] = f.keyed_hash.hex();
            if (f.test_value) one["test_value"] = true;
            shown.push_back(std::move(one));
        }
        json counts = json::object();
        for (const auto& [type, count] : data.counts) counts[type] = count;
        json j = {{"findings", data.total()}, {"by_type", std::move(counts)}, {"shown", std::move(shown)},
                  {"bytes", data.bytes}};
        if (data.truncated) j["truncated"] = true;
        if (data.from_cache) j["cached"] = true;
        if (masked) j["masked"] = true;
        return j;
    }

    json session_json(const Session& s) const {
        return {{"id", s.id},
                {"owner_uid", s.owner_uid},
                {"owner", s.owner_name},
                {"user", s.agent.name},
                {"uid", s.agent.uid},
                {"argv", s.argv},
                {"labels", s.labels},
                {"policy", policy_label(s)},
                {"started_at", iso_time(s.started_us)},
                {"pids", cgroups.members(s.cgroup)},
                {"pending", s.pending},
                {"attached", s.attached}};
    }

    approval::SessionOwnership ownership(const Session& s) const { return {s.owner_uid, s.agent.uid}; }

    void broadcast(std::string_view event, const json& data, const Session* about) {
        std::string line = protocol::encode_event(event, data);
        for (auto& [id, c] : clients) {
            if (!c.watching || c.closing) continue;
            if (about && !approval::may_see(c.identity, ownership(*about), policy_of(*about).approvers()))
                continue;
            queue_output(c, line);
        }
    }

    // ---- client I/O ---------------------------------------------------------
    void queue_output(Client& c, std::string_view line) {
        if (c.out.size() + line.size() + 1 > config.max_client_output) {
            // A watcher that does not read must not grow the daemon without bound.
            spdlog::warn("client {} (uid {}) is not reading; disconnecting it", c.id, c.peer.uid);
            c.closing = true;
            return;
        }
        c.out.append(line);
        c.out.push_back('\n');
    }

    void reply_ok(Client& c, std::optional<std::int64_t> id, const json& result) {
        queue_output(c, protocol::encode_ok(id, result));
    }
    void reply_error(Client& c, std::optional<std::int64_t> id, std::string_view code, std::string message) {
        queue_output(c, protocol::encode_error({std::string(code), std::move(message), id}));
    }

    void flush_clients() {
        std::vector<int> dead;
        for (auto& [id, c] : clients) {
            while (!c.out.empty()) {
                ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                    c.out.erase(0, static_cast<std::size_t>(n));
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                c.closing = true;
                c.out.clear();
                break;
            }
            epoll_event ev{};
            ev.events = EPOLLIN | (c.out.empty() ? 0u : static_cast<unsigned>(EPOLLOUT));
            ev.data.u64 = tag(Tag::client, static_cast<std::uint64_t>(id));
            ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
            if (c.closing && c.out.empty()) dead.push_back(id);
        }
        for (int id : dead) drop_client(id);
    }

    void drop_client(int id) {
        auto it = clients.find(id);
        if (it == clients.end()) return;
        if (auto sid = it->second.creating_session) {
            // The launcher went away before handing over its filter: nothing can
            // be supervised, so the half-made session is removed.
            auto s = sessions.find(*sid);
            if (s != sessions.end() && !s->second.attached) end_session(s->second, "launcher disconnected before attach");
        }
        ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, it->second.fd.get(), nullptr);
        clients.erase(it);
    }

    void accept_clients() {
        for (;;) {
            UniqueFd fd(::accept4(control.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!fd) return;
            if (clients.size() >= config.max_clients) {
                std::string line = protocol::encode_error({std::string(protocol::error_code::limit),
                                                           "too many control connections", std::nullopt}) + "\n";
                (void)!::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            Client c;
            c.id = next_client_id++;
            socklen_t len = sizeof c.peer;
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &c.peer, &len) != 0) continue;
            c.identity.uid = c.peer.uid;
            c.identity.gid = c.peer.gid;
            c.identity.user_name = user_name(c.peer.uid);
            if (auto groups = process_groups(c.peer.pid)) c.identity.groups = *groups;
            c.identity.group_names.push_back(group_name(c.peer.gid));
            for (gid_t g : c.identity.groups) c.identity.group_names.push_back(group_name(g));
            // A peer whose cgroup cannot be read is treated as inside a session: fail closed.
            auto cg = cgroup_of(c.peer.pid);
            const bool from_session = !cg || cgroups.is_session_path(*cg) || c.peer.pid == ::getpid();
            const std::string cgroup_key = cg ? *cg : std::string("?");
            std::size_t same_uid = 0, same_cgroup = 0;
            for (const auto& [other_id, other] : clients) {
                same_uid += other.peer.uid == c.peer.uid;
                same_cgroup += other.cgroup == cgroup_key;
            }
            // Agents may only say hello, and neither an agent nor one user may
            // fill the table that approvers need: both are turned away before
            // taking a slot once over their share.
            const bool over = from_session ? same_cgroup >= k_max_clients_per_session
                                           : (c.peer.uid != 0 && same_uid >= config.max_clients_per_user);
            if (over) {
                std::string line = protocol::encode_error({std::string(protocol::error_code::limit),
                                                           from_session ? "too many control connections from this session"
                                                                        : "too many control connections for this user",
                                                           std::nullopt}) +
                                   "\n";
                (void)!::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                continue;
            }
            c.cgroup = cgroup_key;
            // A peer that is this daemon (or a process that already exited) can
            // only be a connect made on some agent's behalf: never trust it.
            c.identity.inside_agent_session = !cg || cgroups.is_session_path(*cg) || c.peer.pid == ::getpid();
            c.fd = std::move(fd);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = tag(Tag::client, static_cast<std::uint64_t>(c.id));
            ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, c.fd.get(), &ev);
            clients.emplace(c.id, std::move(c));
        }
    }

    void read_client(Client& c) {
        char buf[16384];
        alignas(cmsghdr) char control_buf[CMSG_SPACE(sizeof(int) * 4) + CMSG_SPACE(sizeof(ucred))];
        for (;;) {
            iovec iov{buf, sizeof buf};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control_buf;
            msg.msg_controllen = sizeof control_buf;
            ssize_t n = ::recvmsg(c.fd.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); n >= 0 && cm; cm = CMSG_NXTHDR(&msg, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
                    ucred sender{};
                    std::memcpy(&sender, CMSG_DATA(cm), sizeof sender);
                    // pid 0: the bytes were queued before accept() finished and
                    // the kernel attached no credentials; that tells nothing.
                    if (sender.pid != 0 && sender.pid != c.peer.pid && !c.identity.inside_agent_session) {
                        spdlog::warn("control connection of pid {} used by pid {}: refusing it from now on",
                                     c.peer.pid, sender.pid);
                        c.identity.inside_agent_session = true;
                    }
                    continue;
                }
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
                std::size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < count; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                    // At most one fd waits for its session.attach; extras are closed at once.
                    if (c.received_fds.empty()) c.received_fds.emplace_back(fd);
                    else ::close(fd);
                }
            }
            if (n <= 0) {
                c.closing = true;
                c.out.clear();
                return;
            }
            c.in.append(std::string_view(buf, static_cast<std::size_t>(n)));
            while (auto line = c.in.next()) {
                if (!*line) {
                    queue_output(c, protocol::encode_error(line->error()));
                    continue;
                }
                handle_line(c, **line);
                if (c.closing) return;
            }
        }
    }

    // ---- requests ----------------------------------------------------------
    void handle_line(Client& c, const std::string& line) {
        auto request = protocol::parse_request(line);
        if (!request) {
            queue_output(c, protocol::encode_error(request.error()));
            return;
        }
        const auto id = request->id;
        const bool launcher_attach = std::holds_alternative<protocol::SessionAttachRequest>(request->body) &&
                                     c.creating_session.has_value();
        if (!c.identity.inside_agent_session && !launcher_attach) {
            // The peer may have joined a session since it connected (a launcher
            // does, by design; it may then only attach).
            auto cg = cgroup_of(c.peer.pid);
            if (!cg || cgroups.is_session_path(*cg)) c.identity.inside_agent_session = true;
        }
        if (c.identity.inside_agent_session && !launcher_attach &&
            !std::holds_alternative<protocol::HelloRequest>(request->body)) {
            // An agent must not steer its own supervision: no new sessions (which
            // would stack a filter of its choosing), no approvals, no peeking.
            reply_error(c, id, protocol::error_code::unauthorized,
                        "requests from inside an agent session are refused");
            return;
        }
        std::visit([&](auto& body) { handle(c, id, body); }, request->body);
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::HelloRequest&) {
        reply_ok(c, id, {{"version", AIRLOCK_VERSION}, {"protocol", protocol::k_version}, {"pid", ::getpid()}});
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::StatusRequest&) {
        const auto& def = *policies.at("default");
        reply_ok(c, id,
                 {{"version", AIRLOCK_VERSION},
                  {"pid", ::getpid()},
                  {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count()},
                  {"sessions", sessions.size()},
                  {"pending", pending.size()},
                  {"policy", {{"source", def.source_name()}, {"digest", def.digest()}}},
                  {"enforcement", enforcement_level()},
                  {"kernel", kernel_json()},
                  {"state_dir", config.state_dir},
                  {"socket", config.socket_path}});
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::SessionCreateRequest& req) {
        if (sessions.size() >= config.max_sessions)
            return reply_error(c, id, protocol::error_code::limit, "too many sessions");
        if (c.creating_session)
            return reply_error(c, id, protocol::error_code::bad_request, "this connection already created a session");
        Session s;
        s.owner_uid = c.peer.uid;
        s.owner_name = c.identity.user_name.empty() ? std::to_string(c.peer.uid) : c.identity.user_name;
        s.argv = req.argv;
        s.labels = req.labels;

        if (req.user) {
            auto info = lookup_user(*req.user);
            if (!info) return reply_error(c, id, protocol::error_code::bad_request, info.error().message);
            if (c.peer.uid != 0 && info->uid != c.peer.uid)
                return reply_error(c, id, protocol::error_code::unauthorized,
                                   "only root may run an agent as another user (--user " + *req.user + ")");
            s.agent = *info;
        } else {
            auto info = lookup_uid(c.peer.uid);
            if (!info) return reply_error(c, id, protocol::error_code::internal, info.error().message);
            s.agent = *info;
            s.agent.gid = c.peer.gid;
            // The launcher's own groups are what the agent will have.
            s.agent.groups = c.identity.groups;
        }

        s.policy_name = "default";
        if (req.policy) {
            if (req.policy->text) {
                if (c.peer.uid != 0 && !config.allow_user_policies)
                    return reply_error(c, id, protocol::error_code::unauthorized,
                                       "this daemon accepts policy files only from root (start airlockd with "
                                       "--allow-user-policies, or use a named policy)");
                auto parsed = policy::Policy::parse(*req.policy->text, req.policy->file.value_or("<client>"));
                if (!parsed) {
                    std::string msg;
                    for (const auto& d : parsed.error()) msg += (msg.empty() ? "" : "\n") + d.to_string();
                    return reply_error(c, id, protocol::error_code::policy_error, msg);
                }
                s.custom_policy = std::make_shared<const policy::Policy>(std::move(*parsed));
                s.custom_source = req.policy->file.value_or("<client>");
                s.policy_name.clear();
            } else if (req.policy->name) {
                if (!policies.contains(*req.policy->name)) {
                    std::string known;
                    for (const auto& [name, p] : policies) known += (known.empty() ? "" : ", ") + name;
                    return reply_error(c, id, protocol::error_code::policy_error,
                                       "no policy named '" + *req.policy->name + "' (known: " + known + ")");
                }
                s.policy_name = *req.policy->name;
            }
        }

        if (auto missing = missing_enforcement(policy_of(s).kernel_requirement()); !missing.empty())
            return reply_error(c, id, protocol::error_code::policy_error,
                               "policy " + policy_label(s) + " requires kernel enforcement '" +
                                   std::string(policy::to_string(policy_of(s).kernel_requirement())) +
                                   "', but this daemon runs '" + enforcement_level() + "': " + missing);

        s.id = next_session_id++;
        auto cg = cgroups.create_session(s.id);
        for (int tries = 0; !cg && cg.error().code == EEXIST && tries < 100; ++tries) {
            // Left by an earlier daemon with another state dir: reuse it if empty, else skip the id.
            if (cgroups.remove(cgroups.base() + "/session-" + std::to_string(s.id), false))
                cg = cgroups.create_session(s.id);
            else
                cg = cgroups.create_session(s.id = next_session_id++);
        }
        if (!cg) return reply_error(c, id, protocol::error_code::internal, cg.error().to_string());
        s.cgroup = *cg;
        if (guard) {
            // Registered with the session guard at attach (below), once the
            // launcher runs under its filter.
            struct stat cg_st {};
            if (::stat(cgroups.absolute(s.cgroup).c_str(), &cg_st) != 0) {
                int err = errno;
                (void)cgroups.remove(s.cgroup, false);
                return reply_error(c, id, protocol::error_code::internal,
                                   std::string("stat session cgroup: ") + std::strerror(err));
            }
            s.cgroup_id = cg_st.st_ino;
        }
        if (auto moved = cgroups.move_into(s.cgroup, c.peer.pid); !moved) {
            (void)cgroups.remove(s.cgroup, false);
            return reply_error(c, id, protocol::error_code::internal, moved.error().to_string());
        }
        s.started_us = wall_us();
        s.processes[c.peer.pid] = SessionProcess{0, "airlock run", supervisor::quote_argv(s.argv, false), s.started_us, 0};
        s.creator_client = c.id;
        c.creating_session = s.id;

        audit::Event e;
        e.kind = audit::EventKind::session_start;
        e.session = s.id;
        e.pid = c.peer.pid;
        e.object = json(s.argv).dump();
        e.actor = "user:" + s.owner_name + "(" + std::to_string(s.owner_uid) + ")";
        e.detail_json = json{{"agent_user", s.agent.name},
                             {"agent_uid", s.agent.uid},
                             {"labels", s.labels},
                             {"policy", policy_label(s)},
                             {"policy_digest", policy_of(s).digest()},
                             {"cgroup", s.cgroup}}
                            .dump();
        record(std::move(e));
        const std::int64_t sid = s.id;
        std::string cgroup_abs = cgroups.absolute(s.cgroup);
        int client_id = c.id;
        sessions.emplace(sid, std::move(s));
        releases.push_back({[this, client_id, id, sid, cgroup_abs] {
                                if (auto it = clients.find(client_id); it != clients.end())
                                    reply_ok(it->second, id, {{"session", sid}, {"cgroup", cgroup_abs}});
                            },
                            [this, client_id, id, sid] {
                                if (auto it = clients.find(client_id); it != clients.end())
                                    reply_error(it->second, id, protocol::error_code::internal,
                                                "audit log unavailable; no session started");
                                if (auto made = sessions.find(sid); made != sessions.end())
                                    end_session(made->second, "audit failure");
                            }});
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::SessionAttachRequest& req) {
        auto it = sessions.find(req.session);
        if (it == sessions.end() || c.creating_session != req.session)
            return reply_error(c, id, protocol::error_code::not_found,
                               "session " + std::to_string(req.session) + " was not created on this connection");
        Session& s = it->second;
        if (s.attached) return reply_error(c, id, protocol::error_code::bad_request, "session already attached");
        if (c.received_fds.empty())
            return reply_error(c, id, protocol::error_code::bad_request,
                               "session.attach must carry the seccomp listener fd in SCM_RIGHTS");
        UniqueFd listener = std::move(c.received_fds.front());
        c.received_fds.clear();
        auto name = supervisor::fd_path(listener.get());
        if (!name || *name != "anon_inode:seccomp notify")
            return reply_error(c, id, protocol::error_code::bad_request, "the fd passed is not a seccomp listener");
        s.root.reset(::open(("/proc/" + std::to_string(c.peer.pid) + "/root").c_str(), O_PATH | O_CLOEXEC));
        if (!s.root)
            return reply_error(c, id, protocol::error_code::internal, "cannot open the launcher's root directory");
        struct stat session_root {}, own_root {};
        s.root_is_daemon_root = ::fstat(s.root.get(), &session_root) == 0 && ::stat("/", &own_root) == 0 &&
                                session_root.st_dev == own_root.st_dev && session_root.st_ino == own_root.st_ino;
        s.local_addresses = local_addresses_for(s, c.peer.pid);
        s.context.reset();
        // Now, not at session.create: the launcher's own work between joining
        // the cgroup and installing its filter (resolving --user, say) is
        // airlock's, and the session's first exec (the agent) still comes
        // after this, held by the filter until the listener is polled.
        if (guard) {
            if (auto registered = guard->add_session(s.cgroup_id, s.id); !registered)
                return reply_error(c, id, protocol::error_code::internal,
                                   "the session guard cannot watch this session: " + registered.error().to_string());
            s.guarded = true;
        }
        ::fcntl(listener.get(), F_SETFL, O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(Tag::listener, static_cast<std::uint64_t>(s.id));
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0)
            return reply_error(c, id, protocol::error_code::internal, "epoll_ctl on listener failed");
        s.listener = std::move(listener);
        s.attached = true;
        c.creating_session.reset();
        spdlog::info("session {} started: {} as {} (policy {})", s.id, json(s.argv).dump(), s.agent.name,
                     policy_label(s));
        reply_ok(c, id, {{"session", s.id}});
        broadcast("session.started", session_json(s), &s);
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::SessionsListRequest& req) {
        // Argv and labels are the owner's business: shown to root, the owner, and the session's approvers.
        auto visible = [&](const Session& s) {
            return c.peer.uid == 0 || c.peer.uid == s.owner_uid || c.peer.uid == s.agent.uid ||
                   approval::may_see(c.identity, ownership(s), policy_of(s).approvers());
        };
        json list = json::array();
        if (req.tree) {
            auto it = sessions.find(*req.tree);
            if (it == sessions.end() || !visible(it->second))
                return reply_error(c, id, protocol::error_code::not_found,
                                   "no live session " + std::to_string(*req.tree) + " that you may see");
            json one = session_json(it->second);
            one["processes"] = tree_json(it->second);
            one["processes_dropped"] = it->second.processes_dropped;
            one["tree_complete"] = guard.has_value();  // forks and exits come from the session guard
            list.push_back(std::move(one));
        } else {
            for (const auto& [sid, s] : sessions)
                if (visible(s)) list.push_back(session_json(s));
        }
        reply_ok(c, id, {{"sessions", list}});
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::PendingListRequest&) {
        json list = json::array();
        for (const auto& [rid, p] : pending) {
            const Session& s = sessions.at(p.session);
            if (approval::may_see(c.identity, ownership(s), policy_of(s).approvers())) list.push_back(pending_json(p));
        }
        reply_ok(c, id, {{"requests", list}});
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::WatchRequest&) {
        c.watching = true;
        reply_ok(c, id, {{"watching", true}});
        // Start the stream with what is already waiting, so no request is missed.
        for (const auto& [rid, p] : pending) {
            const Session& s = sessions.at(p.session);
            if (approval::may_see(c.identity, ownership(s), policy_of(s).approvers()))
                queue_output(c, protocol::encode_event("request.created", pending_json(p)));
        }
    }

    std::string actor_of(const Client& c) const {
        return "user:" + (c.identity.user_name.empty() ? std::to_string(c.peer.uid) : c.identity.user_name) + "(" +
               std::to_string(c.peer.uid) + ")";
    }

    void decide_request(Client& c, std::optional<std::int64_t> id, std::int64_t request, bool approve,
                        const std::string& scope, const std::string& reason) {
        auto it = pending.find(request);
        if (it == pending.end()) {
            if (auto r = resolved.find(request); r != resolved.end())
                return reply_error(c, id, protocol::error_code::already_decided,
                                   "request " + std::to_string(request) + " was already " +
                                       (r->second.decision == "timeout" ? std::string("decided by its timeout")
                                        : r->second.decision == "cancelled"
                                            ? "cancelled (" + r->second.by + ")"
                                            : r->second.decision + " by " + r->second.by));
            return reply_error(c, id, protocol::error_code::not_found,
                               "no pending request " + std::to_string(request));
        }
        const Session& s = sessions.at(it->second.session);
        if (auto ok = approval::may_decide(c.identity, ownership(s), policy_of(s).approvers()); !ok)
            return reply_error(c, id, protocol::error_code::unauthorized, ok.error().message);
        std::string decision = approve ? "approved" : "denied";
        int client_id = c.id;
        resolve_pending(it, decision, actor_of(c), scope, reason,
                        [this, client_id, id, request, decision, scope](bool ok) {
                            auto cl = clients.find(client_id);
                            if (cl == clients.end()) return;
                            if (ok)
                                reply_ok(cl->second, id, {{"request", request}, {"decision", decision}, {"scope", scope}});
                            else
                                reply_error(cl->second, id, protocol::error_code::internal,
                                            "audit log unavailable; the request was denied");
                        });
    }

    void handle(Client& c, std::optional<std::int64_t> id, const protocol::ApproveRequest& req) {
        decide_request(c, id, req.request, true, req.scope, req.reason);
    }
    void handle(Client& c, std::optional<std::int64_t> id, const protocol::DenyRequest& req) {
        decide_request(c, id, req.request, false, "once", req.reason);
    }

    // ---- held calls ----------------------------------------------------------
    const supervisor::AgentContext& agent_context(const Session& s) const {
        if (!s.context) s.context = make_agent_context(s);
        return *s.context;
    }

    supervisor::AgentContext make_agent_context(const Session& s) const {
        supervisor::AgentContext ctx;
        ctx.creds = {s.agent.uid, s.agent.gid, s.agent.groups};
        ctx.cgroup_procs = cgroups.absolute(s.cgroup) + "/cgroup.procs";
        ctx.root_fd = s.root.get();
        ctx.root_is_daemon_root = s.root_is_daemon_root;
        ctx.control_socket_dev = control_socket_dev;
        ctx.control_socket_ino = control_socket_ino;
        std::string cgroup = s.cgroup;
        ctx.in_session = [cgroup](pid_t pid) {
            auto cg = cgroup_of(pid);
            return cg && (*cg == cgroup || cg->starts_with(cgroup + "/"));
        };
        return ctx;
    }

    static std::string grant_key(const supervisor::HeldCall& call) {
        return std::string(supervisor::action_name(call)) + '\0' + std::to_string(call.query.access) + '\0' +
               call.object;
    }

    void on_listener(std::int64_t sid, std::uint32_t events) {
        auto it = sessions.find(sid);
        if (it == sessions.end()) return;
        Session& s = it->second;
        if (events & EPOLLIN) {
            seccomp_notif n{};
            if (::ioctl(s.listener.get(), SECCOMP_IOCTL_NOTIF_RECV, &n) == 0) {
                handle_notification(s, n);
                return;  // level-triggered: more notifications come back next turn
            }
            if (errno == ENOENT || errno == EAGAIN || errno == EINTR) return;  // the caller died meanwhile
            spdlog::error("session {}: SECCOMP_IOCTL_NOTIF_RECV: {}", sid, std::strerror(errno));
        }
        if (events & (EPOLLHUP | EPOLLERR)) {
            supervisor::thread_identity::act_as_daemon();
            end_session(s, "all processes exited");
        }
    }

    void audit_decision(const Session& s, const supervisor::HeldCall& call, std::string verdict,
                        const std::string& rule, const std::string& actor, Clock::time_point received,
                        std::int64_t request_id, const std::string& reason, const DataSummary* data = nullptr,
                        bool masked = false) {
        audit::Event e;
        e.kind = audit::EventKind::decision;
        e.session = s.id;
        e.pid = call.tgid;
        e.action = std::string(supervisor::action_name(call));
        e.object = call.object;
        e.verdict = std::move(verdict);
        e.rule = rule;
        e.actor = actor;
        e.request_id = request_id;
        e.reason = reason;
        e.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received).count();
        if (call.query.action == policy::Action::open && !data) {
            // Every open is audited: spelled out rather than built as a json object per call.
            e.detail_json = "{\"access\":\"" + policy::access_to_string(call.query.access) + "\"}";
        } else if (call.query.action == policy::Action::open) {
            e.detail_json = json{{"access", policy::access_to_string(call.query.access)},
                                 {"data", data_json(*data, masked)}}
                                .dump();
        } else if (call.kind == supervisor::CallKind::exec) {
            json detail = {{"dev", call.target.st.st_dev}, {"ino", call.target.st.st_ino},
                           {"argv", call.shown_argv ? *call.shown_argv : call.argv},
                           {"argv_truncated", call.argv_truncated}};
            if (data) detail["data"] = data_json(*data, false);
            e.detail_json = detail.dump();
        }
        record(std::move(e));
    }

    // The agent's connects are made on its own sockets, in its network
    // namespace: that namespace's addresses are the ones that reach its
    // services. The filter keeps a non-root agent from leaving it.
    std::shared_ptr<supervisor::LocalAddresses> local_addresses_for(const Session& s, pid_t launcher) {
        auto unknown = [&](const std::string& why) {
            spdlog::warn("session {}: cannot tell this host's own addresses ({}); every IP destination is also "
                         "decided as loopback",
                         s.id, why);
            return nullptr;
        };
        UniqueFd netns(::open(("/proc/" + std::to_string(launcher) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
        struct stat theirs {}, ours {};
        if (!netns || ::fstat(netns.get(), &theirs) != 0) return unknown("the launcher's network namespace");
        if (::stat("/proc/thread-self/ns/net", &ours) == 0 && theirs.st_dev == ours.st_dev &&
            theirs.st_ino == ours.st_ino) {
            if (!host_local_addresses) {
                auto opened = supervisor::LocalAddresses::open();
                if (!opened) return unknown(opened.error().to_string());
                host_local_addresses = std::make_shared<supervisor::LocalAddresses>(std::move(*opened));
            }
            return host_local_addresses;
        }
        auto opened = supervisor::LocalAddresses::open_in(netns.get());
        if (!opened) return unknown(opened.error().to_string());
        return std::make_shared<supervisor::LocalAddresses>(std::move(*opened));
    }

    // Whether policy decides the call's IP destination as loopback too.
    bool destination_is_local(const Session& s, const supervisor::HeldCall& call) {
        if (!s.local_addresses) return true;
        auto local = s.local_addresses->is_local(call.address, call.address_len);
        if (local) return *local;
        spdlog::warn("session {}: cannot tell whether {} is this host's own address ({}); deciding it as loopback too",
                     s.id, call.object, local.error().to_string());
        return true;
    }

    void handle_notification(Session& s, const seccomp_notif& n) {
        const auto received = Clock::now();
        const int listener = s.listener.get();
        const auto& ctx = agent_context(s);
        auto decoded = supervisor::decode_call(listener, n, ctx);
        if (!decoded) {
            if (decoded.error().code == ENOENT) return;  // the caller is gone; nothing to answer
            spdlog::warn("session {}: could not read held call (syscall {}): {}; refusing it", s.id, n.data.nr,
                         decoded.error().to_string());
            (void)supervisor::answer_error(listener, n.id, EACCES);
            return;
        }
        auto call = std::make_shared<supervisor::HeldCall>(std::move(*decoded));
        if (call->immediate_continue) {
            (void)supervisor::answer_continue(listener, call->id);
            return;
        }
        if (call->immediate_errno) {
            int err = *call->immediate_errno;
            if (call->kind == supervisor::CallKind::send && !call->object.empty()) {
                audit_decision(s, *call, "deny", "unsupported", "airlockd", received, 0, errno_text(err));
                releases.push_back({[listener, call, err] { (void)supervisor::answer_error(listener, call->id, err); },
                                    [listener, call, err] { (void)supervisor::answer_error(listener, call->id, err); }});
            } else {
                (void)supervisor::answer_error(listener, call->id, err);
            }
            return;
        }

        policy::Decision decision;
        if (!call->allow_without_policy.empty()) {
            decision.verdict = policy::Verdict::allow;
            decision.rule = call->allow_without_policy;
        } else {
            if (call->query.address) call->query.destination_is_local = destination_is_local(s, *call);
            call->query.session_read = &s.data_read;
            // A link or rename names two paths: decided on both (policy/link_decision.hpp).
            decision = call->link ? policy::decide_link(policy_of(s), *call->link, s.agent.home)
                                  : policy_of(s).decide(call->query, s.agent.home);
            call->query.session_read = nullptr;  // the session may end before the call does
            if (decision.by_session_read) decision.data_reason = read_summary(s);
        }
        if (call->errno_if_allowed && decision.verdict != policy::Verdict::deny) {
            // Not a decision: the object does not exist (or similar); the agent
            // gets what its own call would have got.
            (void)supervisor::answer_error(listener, call->id, *call->errno_if_allowed);
            return;
        }
        if (decision.inspect && decision.verdict != policy::Verdict::deny && hands_over_data(*call)) {
            // The data decides; it is read and scanned off the loop.
            submit_job(s, call, [this, call, decision, received](Session& sess) {
                dispatch_inspection(sess, call, decision, received);
            });
            return;
        }
        apply_decision(s, call, std::move(decision), received, nullptr);
    }

    // Opens that return an fd with content (O_PATH ones do not), and execs
    // (their arguments and environment).
    static bool hands_over_data(const supervisor::HeldCall& call) {
        if (call.kind == supervisor::CallKind::exec) return true;
        return call.kind == supervisor::CallKind::open && !(call.open_flags & O_PATH);
    }

    // "this session read 3 files holding 120 pii.us_ssn; 1 file holding 2 pii.email"
    static std::string read_summary(const Session& s) {
        std::vector<std::pair<std::uint64_t, std::string_view>> classes;
        for (const auto& [type, count] : s.data_read) classes.emplace_back(count, type);
        if (classes.empty()) return "this session has read nothing inspection found";
        std::sort(classes.begin(), classes.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        std::string out = "this session read ";
        for (std::size_t i = 0; i < classes.size() && i < 4; ++i) {
            auto files = s.files_read.find(classes[i].second);
            const std::uint64_t n = files == s.files_read.end() ? 0 : files->second;
            out += (i ? "; " : "") + std::to_string(n) + (n == 1 ? " file" : " files") + " holding " +
                   std::to_string(classes[i].first) + " " + std::string(classes[i].second);
        }
        if (classes.size() > 4) out += "; and more";
        return out;
    }

    // Data handed over unmasked taints the session (policy session_read).
    static void note_data_read(Session& s, const DataSummary& data) {
        for (const auto& [type, count] : data.counts) {
            if (count == 0) continue;
            s.data_read[type] += count;
            ++s.files_read[type];
        }
    }

    // The turn's answer for a decided call: audited now, performed or refused
    // once the audit rows are committed, or held for a person.
    void apply_decision(Session& s, const std::shared_ptr<supervisor::HeldCall>& call, policy::Decision decision,
                        Clock::time_point received, const InspectionOutcome* outcome) {
        const int listener = s.listener.get();
        std::shared_ptr<const DataSummary> data = outcome ? outcome->data : nullptr;
        const bool masked = outcome && outcome->masked;
        if (decision.verdict == policy::Verdict::ask && call->allow_without_policy.empty() &&
            s.grants.contains(grant_key(*call))) {
            decision.verdict = policy::Verdict::allow;
            decision.rule = "approved-for-session";
        }
        switch (decision.verdict) {
            case policy::Verdict::allow:
            case policy::Verdict::mask: {
                audit_decision(s, *call, masked ? "mask" : "allow", decision.rule, "policy", received, 0,
                               decision.data_reason, data.get(), masked);
                // What an open hands over unmasked is what the agent read
                // (an exec's arguments were its own already).
                auto taint = masked || call->kind != supervisor::CallKind::open ? nullptr : data;
                releases.push_back({[this, sid = s.id, call, taint] {
                                        if (auto it = sessions.find(sid); it != sessions.end()) {
                                            if (taint) note_data_read(it->second, *taint);
                                            perform(it->second, call);
                                        } else {
                                            (void)supervisor::answer_error(call->listener_fd, call->id, EACCES);
                                        }
                                    },
                                    [listener, call] { (void)supervisor::answer_error(listener, call->id, EACCES); }});
                return;
            }
            case policy::Verdict::deny: {
                int err = decision.error_number ? decision.error_number : EACCES;
                std::string reason = errno_text(err);
                if (!decision.data_reason.empty()) reason += "; " + decision.data_reason;
                audit_decision(s, *call, "deny", decision.rule, "policy", received, 0, reason, data.get());
                auto answer = [listener, call, err] { (void)supervisor::answer_error(listener, call->id, err); };
                releases.push_back({answer, answer});
                return;
            }
            case policy::Verdict::ask: hold(s, call, decision, received, data); return;
        }
    }

    // Scans what the call hands over on a worker; the verdict comes back to
    // the loop (on_completions), which applies it like any other.
    void dispatch_inspection(Session& s, const std::shared_ptr<supervisor::HeldCall>& call,
                             const policy::Decision& decision, Clock::time_point received) {
        auto ctx = agent_context(s);
        ctx.in_session = nullptr;  // the worker must not touch daemon state
        const std::int64_t sid = s.id;
        ++s.blocking_in_flight;
        bool queued = workers->submit([this, call, ctx, sid, decision, received] {
            auto outcome = std::make_shared<InspectionOutcome>(inspection->inspect(*call, ctx, decision));
            supervisor::thread_identity::act_as_daemon();
            {
                std::lock_guard lock(completions_mutex);
                completed_sessions.push_back(sid);
                completed_continuations.push_back([this, sid, call, outcome, received] {
                    finish_inspection(sid, call, *outcome, received);
                });
            }
            std::uint64_t one = 1;
            (void)!::write(completions.get(), &one, sizeof one);
        });
        if (!queued) {
            --s.blocking_in_flight;
            (void)supervisor::answer_error(call->listener_fd, call->id, EAGAIN);
        }
    }

    void finish_inspection(std::int64_t sid, const std::shared_ptr<supervisor::HeldCall>& call,
                           const InspectionOutcome& outcome, Clock::time_point received) {
        auto it = sessions.find(sid);
        if (it == sessions.end()) return;  // its listener is closed: the agent got ENOSYS
        if (!supervisor::notification_valid(call->listener_fd, call->id)) return;  // the caller is gone
        if (outcome.redacted_argv) {
            call->shown_argv = outcome.redacted_argv;
            call->object = call->target.policy_path + " [" +
                           supervisor::quote_argv(*outcome.redacted_argv, call->argv_truncated) + "]";
        }
        if (!outcome.error.empty())
            spdlog::error("session {}: inspection failed, {} {} denied: {}", sid, supervisor::action_name(*call),
                          json(call->object).dump(), outcome.error);
        if (outcome.data && outcome.data->total() != 0)
            // Agent-chosen names: JSON-escaped so they cannot forge log lines.
            spdlog::info("session {}: {} {}: {} ({})", sid, supervisor::action_name(*call), json(call->object).dump(),
                         describe_counts(outcome.data->counts), outcome.decision.data_reason);
        apply_decision(it->second, call, outcome.decision, received, &outcome);
    }

    void perform(Session& s, const std::shared_ptr<supervisor::HeldCall>& call) {
        if (supervisor::may_block(*call)) {
            submit_blocking(s, call);
            return;
        }
        call->nonblocking_open_first = true;
        if (call->kind == supervisor::CallKind::exec) {
            if (!expect_exec(s, *call)) {
                (void)supervisor::answer_error(call->listener_fd, call->id, EACCES);
                return;
            }
            record_exec(s, *call);
        }
        auto r = supervisor::perform_allowed(*call, agent_context(s));
        if (!r && r.error().code == EWOULDBLOCK && !call->nonblocking_open_first) {
            // A lease holder must answer first: wait for it off the event loop.
            submit_blocking(s, call);
            return;
        }
        if (!r) spdlog::debug("session {}: held call {} not answered: {}", s.id, call->id, r.error().to_string());
    }

    void submit_blocking(Session& s, const std::shared_ptr<supervisor::HeldCall>& call) {
        submit_job(s, call, [this, call](Session& sess) { dispatch_blocking(sess, call); });
    }

    // Starts worker job `start` for `call` now, or once one of the session's
    // slots frees up (at most k_blocking_per_session at once).
    void submit_job(Session& s, const std::shared_ptr<supervisor::HeldCall>& call,
                    std::function<void(Session&)> start) {
        if (s.blocking_in_flight < k_blocking_per_session) return start(s);
        if (s.blocking_waiting.size() >= config.max_pending_per_session) {
            (void)supervisor::answer_error(call->listener_fd, call->id, EAGAIN);
            return;
        }
        s.blocking_waiting.push_back({call, std::move(start)});
    }

    void dispatch_blocking(Session& s, const std::shared_ptr<supervisor::HeldCall>& call) {
        auto ctx = agent_context(s);
        ctx.in_session = nullptr;  // the worker must not touch daemon state
        const std::int64_t sid = s.id;
        ++s.blocking_in_flight;
        std::uint64_t token = 0;
        {
            InFlight entry;
            entry.listener = call->listener_fd;
            entry.id = call->id;
            if (call->kind == supervisor::CallKind::open && call->target.object && S_ISFIFO(call->target.st.st_mode))
                entry.fifo.reset(::fcntl(call->target.object.get(), F_DUPFD_CLOEXEC, 3));
            std::lock_guard lock(in_flight_mutex);
            token = next_in_flight++;
            in_flight.emplace(token, std::move(entry));
        }
        bool queued = workers->submit([this, call, ctx, sid, token] {
            if (auto r = supervisor::perform_allowed(*call, ctx); !r)
                spdlog::debug("held call {} not answered: {}", call->id, r.error().to_string());
            {
                std::lock_guard lock(in_flight_mutex);
                in_flight.erase(token);
            }
            {
                std::lock_guard lock(completions_mutex);
                completed_sessions.push_back(sid);
            }
            std::uint64_t one = 1;
            (void)!::write(completions.get(), &one, sizeof one);
        });
        if (!queued) {
            {
                std::lock_guard lock(in_flight_mutex);
                in_flight.erase(token);
            }
            --s.blocking_in_flight;
            (void)supervisor::answer_error(call->listener_fd, call->id, EAGAIN);
        }
    }

    // Opening a FIFO O_RDWR never blocks and counts as both a reader and a
    // writer, which wakes an open waiting for either.
    void release_abandoned_calls(bool all) {
        std::lock_guard lock(in_flight_mutex);
        for (auto& [token, entry] : in_flight) {
            if (!entry.fifo || (!all && supervisor::notification_valid(entry.listener, entry.id))) continue;
            std::string magic = "/proc/self/fd/" + std::to_string(entry.fifo.get());
            UniqueFd other_end(::open(magic.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
            entry.fifo.reset();  // once is enough
        }
    }

    void on_completions() {
        std::uint64_t count = 0;
        (void)!::read(completions.get(), &count, sizeof count);
        std::vector<std::int64_t> done;
        std::vector<std::function<void()>> continuations;
        {
            std::lock_guard lock(completions_mutex);
            done.swap(completed_sessions);
            continuations.swap(completed_continuations);
        }
        for (auto sid : done) {
            auto it = sessions.find(sid);
            if (it == sessions.end()) continue;
            Session& s = it->second;
            if (s.blocking_in_flight) --s.blocking_in_flight;
            while (s.blocking_in_flight < k_blocking_per_session && !s.blocking_waiting.empty()) {
                auto next = std::move(s.blocking_waiting.front());
                s.blocking_waiting.pop_front();
                if (supervisor::notification_valid(next.call->listener_fd, next.call->id)) next.start(s);
            }
        }
        for (auto& next : continuations) next();
    }

    void hold(Session& s, const std::shared_ptr<supervisor::HeldCall>& call, const policy::Decision& decision,
              Clock::time_point received, std::shared_ptr<const DataSummary> data) {
        const int listener = s.listener.get();
        if (pending.size() >= config.max_pending_total || s.pending >= config.max_pending_per_session) {
            audit_decision(s, *call, "deny", decision.rule, "airlockd", received, 0,
                           "too many pending approvals; refused without asking", data.get());
            auto answer = [listener, call] { (void)supervisor::answer_error(listener, call->id, EAGAIN); };
            releases.push_back({answer, answer});
            return;
        }
        Pending p;
        p.id = next_request_id++;
        p.session = s.id;
        p.call = call;
        p.decision = decision;
        p.data = std::move(data);
        p.grant_key = grant_key(*call);
        p.created_us = wall_us();
        p.received = received;
        p.deadline = Clock::now() + decision.ask.timeout;
        p.expires_us = p.created_us + std::chrono::duration_cast<std::chrono::microseconds>(decision.ask.timeout).count();

        audit::Event e;
        e.kind = audit::EventKind::request_created;
        e.session = s.id;
        e.pid = call->tgid;
        e.action = std::string(supervisor::action_name(*call));
        e.object = call->object;
        e.verdict = "ask";
        e.rule = decision.rule;
        e.request_id = p.id;
        e.actor = "policy";
        e.detail_json = pending_json(p).dump();
        record(std::move(e));

        const std::int64_t rid = p.id;
        deadlines.emplace(p.deadline, rid);
        pending.emplace(rid, std::move(p));
        ++s.pending;
        arm_timer();
        releases.push_back({[this, rid] {
                                // Notify only once the request is durable (DESIGN-NOTES 6).
                                auto it = pending.find(rid);
                                if (it == pending.end()) return;
                                const Session& sess = sessions.at(it->second.session);
                                broadcast("request.created", pending_json(it->second), &sess);
                                // Objects are agent-chosen: JSON-escaped so they cannot forge log lines.
                                spdlog::info("request {} (session {}): {} {} held for approval (rule {})", rid,
                                             sess.id, supervisor::action_name(*it->second.call),
                                             json(it->second.call->object).dump(), it->second.decision.rule);
                            },
                            [this, rid, listener, call] {
                                forget_pending(rid);
                                (void)supervisor::answer_error(listener, call->id, EACCES);
                            }});
    }

    void forget_pending(std::int64_t rid) {
        auto it = pending.find(rid);
        if (it == pending.end()) return;
        auto range = deadlines.equal_range(it->second.deadline);
        for (auto d = range.first; d != range.second; ++d)
            if (d->second == rid) {
                deadlines.erase(d);
                break;
            }
        if (auto s = sessions.find(it->second.session); s != sessions.end() && s->second.pending) --s->second.pending;
        pending.erase(it);
    }

    void remember_resolution(std::int64_t rid, Resolution r) {
        resolved[rid] = std::move(r);
        resolved_order.push_back(rid);
        while (resolved_order.size() > k_resolved_memory) {
            resolved.erase(resolved_order.front());
            resolved_order.pop_front();
        }
    }

    // Decides a pending request: audit rows first, then (after commit) the agent
    // is answered, watchers told, and `done(ok)` reports to whoever decided.
    void resolve_pending(std::map<std::int64_t, Pending>::iterator it, const std::string& decision,
                         const std::string& by, const std::string& scope, const std::string& reason,
                         std::function<void(bool)> done) {
        Pending p = std::move(it->second);
        forget_pending(p.id);
        Session& s = sessions.at(p.session);
        const bool allow = decision == "approved" ||
                           (decision == "timeout" && p.decision.ask.on_timeout == policy::Verdict::allow);
        const bool alive = decision != "cancelled" && supervisor::notification_valid(p.call->listener_fd, p.call->id);

        audit::Event e;
        e.kind = audit::EventKind::request_resolved;
        e.session = s.id;
        e.pid = p.call->tgid;
        e.action = std::string(supervisor::action_name(*p.call));
        e.object = p.call->object;
        e.verdict = decision;
        e.rule = p.decision.rule;
        e.request_id = p.id;
        e.actor = by;
        e.scope = scope;
        e.reason = reason;
        e.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p.received).count();
        record(std::move(e));
        if (alive) {
            int err = p.decision.error_number ? p.decision.error_number : EACCES;
            audit_decision(s, *p.call, allow ? "allow" : "deny", p.decision.rule, by, p.received, p.id,
                           allow ? reason : (reason.empty() ? errno_text(err) : reason), p.data.get());
        }
        if (allow && scope == "session") s.grants.insert(p.grant_key);
        remember_resolution(p.id, {decision, by});

        const std::int64_t rid = p.id;
        const std::int64_t sid = s.id;
        auto call = p.call;
        auto taint = allow && alive && p.call->kind == supervisor::CallKind::open ? p.data : nullptr;
        int err = p.decision.error_number ? p.decision.error_number : EACCES;
        releases.push_back(
            {[this, rid, sid, call, allow, alive, err, decision, by, scope, reason, done, taint] {
                 if (alive) {
                     auto sit = sessions.find(sid);
                     if (allow && sit != sessions.end() && taint) note_data_read(sit->second, *taint);
                     if (allow && sit != sessions.end()) perform(sit->second, call);
                     else (void)supervisor::answer_error(call->listener_fd, call->id, err);
                 }
                 json data = {{"id", rid}, {"decision", decision}, {"by", by}, {"scope", scope}, {"reason", reason}};
                 auto sit = sessions.find(sid);
                 broadcast("request.resolved", data, sit == sessions.end() ? nullptr : &sit->second);
                 spdlog::info("request {} {} by {}", rid, decision, by);
                 if (done) done(true);
             },
             [call, alive, done] {
                 if (alive) (void)supervisor::answer_error(call->listener_fd, call->id, EACCES);
                 if (done) done(false);
             }});

        if (allow && scope == "session") {
            // Identical requests already waiting in this session are covered too.
            const std::string key = grant_key(*call);
            std::vector<std::int64_t> covered;
            for (const auto& [other, q] : pending)
                if (q.session == sid && q.grant_key == key) covered.push_back(other);
            for (auto other : covered)
                if (auto o = pending.find(other); o != pending.end())
                    resolve_pending(o, "approved", by, "session",
                                    "covered by session approval of request " + std::to_string(rid), nullptr);
        }
    }

    void arm_timer() {
        itimerspec spec{};
        auto next = next_sweep;
        if (!deadlines.empty()) next = std::min(next, deadlines.begin()->first);
        auto delta = std::max(next - Clock::now(), Clock::duration(std::chrono::microseconds(1)));
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delta).count();
        spec.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
        spec.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
        ::timerfd_settime(timer.get(), 0, &spec, nullptr);
    }

    void on_timer() {
        std::uint64_t expirations = 0;
        (void)!::read(timer.get(), &expirations, sizeof expirations);
        auto now = Clock::now();
        std::vector<std::int64_t> expired;
        for (auto d = deadlines.begin(); d != deadlines.end() && d->first <= now; ++d) expired.push_back(d->second);
        for (auto rid : expired) {
            auto it = pending.find(rid);
            if (it == pending.end()) continue;
            resolve_pending(it, "timeout", "timeout", "once",
                            "no decision within the ask timeout; on_timeout: " +
                                std::string(policy::to_string(it->second.decision.ask.on_timeout)),
                            nullptr);
        }
        if (now >= next_sweep) {
            // A held thread that was killed leaves no event; find it here.
            std::vector<std::int64_t> gone;
            for (const auto& [rid, p] : pending)
                if (!supervisor::notification_valid(p.call->listener_fd, p.call->id)) gone.push_back(rid);
            for (auto rid : gone)
                if (auto it = pending.find(rid); it != pending.end())
                    resolve_pending(it, "cancelled", "airlockd", "once", "the waiting process exited", nullptr);
            std::vector<std::pair<std::string, int>> still_busy;
            for (auto& [path, attempts] : cgroups_to_remove) {
                auto r = cgroups.remove(path, attempts >= 5);  // after 5 s, kill stragglers (cgroup.kill)
                if (!r && attempts < 30) still_busy.emplace_back(path, attempts + 1);
                else if (!r) spdlog::warn("giving up on removing cgroup {}: {}", path, r.error().to_string());
            }
            cgroups_to_remove = std::move(still_busy);
            release_abandoned_calls(false);
            next_sweep = now + k_sweep_interval;
        }
        arm_timer();
    }

    void end_session(Session& s, const std::string& why) {
        std::vector<std::int64_t> mine;
        for (const auto& [rid, p] : pending)
            if (p.session == s.id) mine.push_back(rid);
        for (auto rid : mine)
            if (auto it = pending.find(rid); it != pending.end())
                resolve_pending(it, "cancelled", "airlockd", "once", "session ended: " + why, nullptr);
        if (s.listener) ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, s.listener.get(), nullptr);
        audit::Event e;
        e.kind = audit::EventKind::session_end;
        e.session = s.id;
        e.reason = why;
        record(std::move(e));
        if (guard && s.guarded) guard->remove_session(s.cgroup_id);
        if (auto r = cgroups.remove(s.cgroup, false); !r) {
            // The last task may still be exiting when its filter is released; retry on the sweep.
            if (r.error().code == EBUSY) cgroups_to_remove.emplace_back(s.cgroup, 0);
            else spdlog::warn("session {}: {}", s.id, r.error().to_string());
        }
        spdlog::info("session {} ended: {}", s.id, why);
        const std::int64_t sid = s.id;
        if (auto c = clients.find(s.creator_client); c != clients.end() && c->second.creating_session == sid)
            c->second.creating_session.reset();
        broadcast("session.ended", {{"id", sid}, {"reason", why}}, nullptr);
        // Keep the listener open until after the commit: closing it releases any
        // call still held with ENOSYS, which must not happen before the audit row.
        auto listener = std::make_shared<UniqueFd>(std::move(s.listener));
        releases.push_back({[listener] {}, [listener] {}});
        sessions.erase(sid);
    }

    void on_signal() {
        signalfd_siginfo info{};
        while (::read(signals.get(), &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) reload();
            else stopping = true;
        }
    }

    void reload() {
        std::vector<std::string> errors;
        auto loaded = load_policies(errors);
        audit::Event e;
        e.kind = audit::EventKind::policy_reload;
        if (!loaded) {
            for (const auto& err : errors) spdlog::error("policy reload refused: {}", err);
            e.verdict = "refused";
            e.reason = errors.empty() ? "unknown" : errors.front();
            e.detail_json = json{{"errors", errors}}.dump();
        } else {
            policies = std::move(*loaded);
            e.verdict = "loaded";
            e.detail_json = json{{"default_digest", policies.at("default")->digest()}}.dump();
            spdlog::info("policies reloaded ({} named)", policies.size());
        }
        record(std::move(e));
    }

    void shutdown() {
        std::vector<std::int64_t> all;
        for (const auto& [rid, p] : pending) all.push_back(rid);
        for (auto rid : all)
            if (auto it = pending.find(rid); it != pending.end())
                resolve_pending(it, "cancelled", "airlockd", "once", "daemon shutting down", nullptr);
        commit_turn();
        flush_audit();
        release_abandoned_calls(true);
    }

    Status setup_control_socket() {
        std::filesystem::path path(config.socket_path);
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (path.string().size() >= sizeof(sockaddr_un::sun_path))
            return fail(ENAMETOOLONG, "socket path too long: " + path.string());
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.string().size());
        {
            // Refuse to steal the socket of a daemon that is still running.
            UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
                return fail(EADDRINUSE, "another airlockd is listening on " + path.string());
        }
        ::unlink(path.c_str());
        control.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!control) return common::fail_errno("socket");
        if (::bind(control.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            return common::fail_errno("bind " + path.string());
        // Anyone may connect; every operation is authorized by the peer's credentials.
        ::chmod(path.c_str(), 0666);
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) return common::fail_errno("stat " + path.string());
        control_socket_dev = st.st_dev;
        control_socket_ino = st.st_ino;
        // Per-message sender credentials: a connection handed to another process
        // (say, into an agent session) is caught at its first line. Set on the
        // listener so accepted sockets carry them from their first byte.
        int one = 1;
        if (::setsockopt(control.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
            return common::fail_errno("setsockopt(SO_PASSCRED)");
        if (::listen(control.get(), 128) != 0) return common::fail_errno("listen");
        return {};
    }

    Status add_to_epoll(int fd, Tag t, std::uint64_t value) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(t, value);
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return common::fail_errno("epoll_ctl");
        return {};
    }

    Status loop() {
        epoll_event events[64];
        // Held calls are performed with the agent's identity; the loop keeps
        // wearing it until something needs root, which every handler below
        // except a listener's asks for first (supervisor/credentials.hpp).
        supervisor::thread_identity::lazy_restore(true);
        while (!stopping) {
            // Decisions reach the journal before agents are released
            // (commit_turn); the audit log's own thread copies them into SQLite.
            int n = ::epoll_wait(epoll.get(), events, 64, -1);
            if (n < 0) {
                if (errno == EINTR) continue;
                return common::fail_errno("epoll_wait");
            }

            for (int i = 0; i < n; ++i) {
                std::uint64_t data = events[i].data.u64;
                if (tag_of(data) != Tag::listener) supervisor::thread_identity::act_as_daemon();
                switch (tag_of(data)) {
                    case Tag::control: accept_clients(); break;
                    case Tag::client: {
                        auto it = clients.find(static_cast<int>(value_of(data)));
                        if (it == clients.end()) break;
                        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_client(it->second);
                        break;
                    }
                    case Tag::listener:
                        on_listener(static_cast<std::int64_t>(value_of(data)), events[i].events);
                        break;
                    case Tag::timer: on_timer(); break;
                    case Tag::signal: on_signal(); break;
                    case Tag::completion: on_completions(); break;
                    case Tag::kernel_events: on_kernel_events(); break;
                }
            }
            commit_turn();
            supervisor::thread_identity::settle_between_turns();
            check_audit_ingest();
        }
        supervisor::thread_identity::act_as_daemon();
        shutdown();
        return {};
    }
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::create(DaemonConfig config) {
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir, ec);
    if (ec) return fail(ec.value(), "creating state dir " + config.state_dir);
    ::chmod(config.state_dir.c_str(), 0700);
    auto audit = audit::AuditLog::open(config.state_dir + "/audit.db");
    if (!audit) return std::unexpected(audit.error().wrap("opening audit log"));

    auto mount = find_cgroup2_mount();
    if (!mount) return std::unexpected(mount.error());
    std::string base = config.cgroup_base;
    if (base.empty()) {
        auto own = cgroup_of(::getpid());
        if (!own) return std::unexpected(own.error());
        base = (*own == "/" ? std::string() : *own) + "/airlock";
    }
    auto tree = CgroupTree::open(*mount, base);
    if (!tree) return std::unexpected(tree.error());

    auto impl = std::make_unique<Impl>(std::move(config), std::move(*audit), std::move(*tree));
    std::vector<std::string> errors;
    auto policies = impl->load_policies(errors);
    if (!policies) {
        std::string all;
        for (const auto& e : errors) all += "\n  " + e;
        return fail(EINVAL, "invalid policy:" + all);
    }
    impl->policies = std::move(*policies);
    if (auto note = impl->audit.recovery_note(); !note.empty()) spdlog::warn("audit log recovery: {}", note);
    auto ids = impl->audit.max_ids();
    if (!ids) return std::unexpected(ids.error());
    impl->next_session_id = ids->session + 1;
    impl->next_request_id = ids->request + 1;

    // Signals arrive through the loop; workers inherit the blocked mask.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    impl->signals.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    impl->epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    impl->timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    impl->completions.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!impl->signals || !impl->epoll || !impl->timer || !impl->completions)
        return common::fail_errno("creating event fds");
    if (auto s = impl->setup_control_socket(); !s) return std::unexpected(s.error());
    for (auto [fd, t] : {std::pair{impl->control.get(), Tag::control}, std::pair{impl->timer.get(), Tag::timer},
                         std::pair{impl->signals.get(), Tag::signal},
                         std::pair{impl->completions.get(), Tag::completion}})
        if (auto s = impl->add_to_epoll(fd, t, 0); !s) return std::unexpected(s.error());
    if (impl->config.kernel_layer == DaemonConfig::KernelLayer::automatic) {
        impl->kernel_features = kernel::probe_features();
        if (impl->kernel_features.tp_btf.available && impl->kernel_features.ringbuf.available) {
            const bool cgroup_programs = impl->kernel_features.cgroup_sock_addr.available;
            auto loaded = kernel::SessionGuard::load(impl->kernel_features.bpf_lsm.available, cgroup_programs);
            if (!loaded && impl->kernel_features.bpf_lsm.available) {
                spdlog::warn("session guard with BPF LSM: {}; trying without", loaded.error().to_string());
                impl->guard_error = loaded.error().to_string();
                loaded = kernel::SessionGuard::load(false, cgroup_programs);
            }
            if (loaded) {
                impl->guard.emplace(std::move(*loaded));
                if (cgroup_programs) {
                    // On the base, with BPF_F_ALLOW_MULTI links: every session cgroup below it.
                    UniqueFd base_fd(::open(impl->cgroups.absolute(impl->cgroups.base()).c_str(),
                                         O_RDONLY | O_DIRECTORY | O_CLOEXEC));
                    auto attached = base_fd ? impl->guard->attach_cgroup(base_fd.get())
                                         : Status(common::fail_errno("opening the session base cgroup"));
                    if (!attached) impl->cgroup_guard_error = attached.error().to_string();
                } else {
                    impl->cgroup_guard_error = impl->kernel_features.cgroup_sock_addr.error;
                }
                if (auto s = impl->add_to_epoll(impl->guard->events_fd(), Tag::kernel_events, 0); !s)
                    return std::unexpected(s.error());
            } else {
                impl->guard_error = loaded.error().to_string();
            }
        } else {
            impl->guard_error = !impl->kernel_features.tp_btf.available ? impl->kernel_features.tp_btf.error
                                                                             : impl->kernel_features.ringbuf.error;
        }
    } else {
        impl->guard_error = "the kernel layer is off (--kernel-layer off)";
    }
    spdlog::info("enforcement level: {}{}", impl->enforcement_level(),
                 impl->guard_error.empty() ? "" : " (exec guard: " + impl->guard_error + ")");
    if (!impl->kernel_features.bpf_lsm.available && impl->config.kernel_layer == DaemonConfig::KernelLayer::automatic)
        spdlog::info("BPF LSM not available: {}", impl->kernel_features.bpf_lsm.error);
    impl->workers = std::make_unique<WorkerPool>(impl->config.worker_threads, impl->config.max_worker_queue);
    impl->inspection = std::make_unique<DataInspection>(impl->config.state_dir);
    // The loop thread creates files for agents too: private umask, applied by hand.
    ::unshare(CLONE_FS);
    ::umask(0);
    impl->arm_timer();

    audit::Event e;
    e.kind = audit::EventKind::daemon_start;
    e.actor = "airlockd";
    e.detail_json = json{{"version", AIRLOCK_VERSION},
                         {"pid", ::getpid()},
                         {"default_policy", impl->policies.at("default")->source_name()},
                         {"default_digest", impl->policies.at("default")->digest()},
                         {"cgroup_base", impl->cgroups.base()},
                         {"enforcement", impl->enforcement_level()},
                         {"kernel", impl->kernel_json()}}
                        .dump();
    if (auto r = impl->audit.append(std::move(e)); !r) return std::unexpected(r.error().wrap("writing audit log"));
    return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Status Daemon::run() { return impl_->loop(); }

}  // namespace airlock::daemon
