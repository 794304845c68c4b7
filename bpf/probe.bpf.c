// SPDX-License-Identifier: GPL-2.0
/* Feature probes: the daemon finds out what this kernel lets it load by
 * loading (and, for LSM, attaching) each of these, one at a time. None of
 * them changes anything: the LSM program returns the previous verdict. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "probe.h"

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file, int ret)
{
    return ret;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(probe_tp_btf, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    return 0;
}

SEC("cgroup/connect4")
int probe_sock_addr(struct bpf_sock_addr *ctx)
{
    return 1;
}
