// SPDX-License-Identifier: GPL-2.0
/* The exec guard: where BPF LSM is not active, the backstop for the exec race
 * (docs/architecture.md). The supervisor approves an exec on the binary it
 * resolved and answers CONTINUE, after which the kernel reads the path and
 * argv again from agent memory. This program runs at sched_process_exec —
 * after the new image is loaded, before its first user instruction — and
 * sends SIGKILL to the task unless the loaded file and the argv laid out on
 * the new stack are the ones approved for that thread group.
 *
 * Fail closed inside sessions: no approval, an unreadable argv or a failed
 * lookup all kill. The kill never depends on the ring buffer: a full buffer
 * only loses the event. Outside sessions the program returns at once. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "exec_guard.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9

/* session cgroup id -> session id */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, __u64);
} sessions SEC(".maps");

/* tgid -> the approved next exec. Sized for every agent process at once
 * having an approval in flight; the daemon refuses an exec it cannot record. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, struct airlock_exec_expect);
} expected SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct argv_buffer {
    unsigned char bytes[AIRLOCK_ARGV_HASH_BYTES];
};

/* Too large for the BPF stack. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct argv_buffer);
} argv_scratch SEC(".maps");

static __always_inline __u64 session_of_current(void)
{
    for (int level = 0; level < AIRLOCK_CGROUP_LEVELS_MAX; level++) {
        __u64 id = bpf_get_current_ancestor_cgroup_id(level);
        if (!id)
            break;
        __u64 *session = bpf_map_lookup_elem(&sessions, &id);
        if (session)
            return *session;
    }
    return 0;
}

/* 0 on success; the hash covers min(len, AIRLOCK_ARGV_HASH_BYTES) bytes. */
static __always_inline int hash_argv(struct mm_struct *mm, __u64 *len_out, __u64 *hash_out)
{
    __u64 start = BPF_CORE_READ(mm, arg_start);
    __u64 end = BPF_CORE_READ(mm, arg_end);
    if (end < start)
        return -1;
    __u64 len = end - start;
    *len_out = len;
    __u32 zero = 0;
    struct argv_buffer *buf = bpf_map_lookup_elem(&argv_scratch, &zero);
    if (!buf)
        return -1;
    __u32 n = len > AIRLOCK_ARGV_HASH_BYTES ? AIRLOCK_ARGV_HASH_BYTES : (__u32)len;
    if (n == 0) {
        *hash_out = 14695981039346656037ULL;
        return 0;
    }
    if (n > AIRLOCK_ARGV_HASH_BYTES) /* restated for the verifier's bounds */
        return -1;
    if (bpf_probe_read_user(buf->bytes, n, (const void *)start) != 0)
        return -1;
    __u64 hash = 14695981039346656037ULL;
    for (__u32 i = 0; i < AIRLOCK_ARGV_HASH_BYTES; i++) {
        if (i >= n)
            break;
        hash ^= buf->bytes[i];
        hash *= 1099511628211ULL;
    }
    *hash_out = hash;
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(check_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    __u64 session = session_of_current();
    if (!session)
        return 0;

    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
    __u64 ino = BPF_CORE_READ(inode, i_ino);
    __u64 dev = BPF_CORE_READ(inode, i_sb, s_dev);
    __u64 argv_len = 0, argv_hash = 0;

    __u32 verdict = AIRLOCK_EXEC_MATCHED;
    struct airlock_exec_expect *expect = bpf_map_lookup_elem(&expected, &tgid);
    if (!expect) {
        verdict = AIRLOCK_EXEC_NO_APPROVAL;
    } else if (expect->dev != dev || expect->ino != ino) {
        verdict = AIRLOCK_EXEC_WRONG_IMAGE;
    } else if (!(expect->flags & AIRLOCK_EXPECT_ARGV_UNCHECKED)) {
        struct mm_struct *mm = BPF_CORE_READ(task, mm);
        if (hash_argv(mm, &argv_len, &argv_hash) != 0)
            verdict = AIRLOCK_EXEC_ARGV_UNREADABLE;
        else if (argv_hash != expect->argv_hash ||
                 (!(expect->flags & AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN) && argv_len != expect->argv_len))
            verdict = AIRLOCK_EXEC_WRONG_ARGV;
    }
    if (verdict != AIRLOCK_EXEC_MATCHED)
        bpf_send_signal(SIGKILL);
    /* One approval, one exec: whatever this exec was, the next one needs its own. */
    bpf_map_delete_elem(&expected, &tgid);

    struct airlock_exec_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (event) {
        event->session = session;
        event->dev = dev;
        event->ino = ino;
        event->argv_len = argv_len;
        event->tgid = tgid;
        event->verdict = verdict;
        bpf_get_current_comm(event->comm, sizeof(event->comm));
        bpf_ringbuf_submit(event, 0);
    }
    return 0;
}
