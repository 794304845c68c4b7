// What this kernel lets the daemon load, found by trying (bpf/probe.bpf.c),
// and the enforcement level the daemon reports from what it then runs.
//
// Trying is the only honest probe: BPF LSM can be compiled in and listed in
// the boot LSMs yet refused (EPERM) by the running kernel, as it is on this
// project's build machines.
#pragma once

#include <string>

namespace airlock::kernel {

struct Feature {
    bool available = false;
    std::string error;  // why not, when not ("loading lsm/file_open: Operation not permitted")
};

struct Features {
    Feature bpf_lsm;           // lsm/file_open loaded and attached
    Feature tp_btf;            // tp_btf/sched_process_exec loaded and attached
    Feature cgroup_sock_addr;  // cgroup/connect4 loaded (attached per session cgroup)
    Feature ringbuf;           // a BPF ring buffer map created
};

// Loads each probe program alone (and attaches the tracing ones), then
// unloads everything. Never fails: a refusal is an unavailable feature.
[[nodiscard]] Features probe_features();

}  // namespace airlock::kernel
