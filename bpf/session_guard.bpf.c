// SPDX-License-Identifier: GPL-2.0
/* The session guard: the kernel's side of "what runs, opens or connects is
 * what the supervisor approved" (docs/architecture.md, "Kernel layer").
 *
 * The supervisor approves an exec on the binary it resolved and answers
 * CONTINUE, after which the kernel reads the path and argv again from agent
 * memory. Two hooks close that race:
 *  - tp_btf/sched_process_exec (always loaded): after the new image is
 *    loaded, before its first user instruction, SIGKILL unless the loaded
 *    file and the argv on the new stack are the ones approved.
 *  - lsm/bprm_check_security (where BPF LSM is active): EPERM for each file
 *    of the exec (script, interpreter, image) that is not in the approved
 *    chain, before anything is loaded.
 * Where BPF LSM is active, three more refuse what reaches the kernel from a
 * supervised session process without passing through the supervisor (which
 * performs every allowed open and connect itself, from the daemon): file_open,
 * socket_connect, and socket_sendmsg with an address. Where it is not, the
 * cgroup connect4/6 and sendmsg4/6 programs (attached to the daemon's session
 * base cgroup, so every session below it) refuse the same connects and
 * addressed UDP sends.
 *
 * Fail closed inside sessions: no approval, an unreadable argv or a failed
 * lookup all refuse or kill. Nothing depends on the ring buffer: a full
 * buffer only loses the event. LSM programs return the previous program's
 * refusal unchanged. Outside sessions every program returns at once. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "session_guard.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define EPERM 1
#define SECCOMP_MODE_FILTER 2
#define FMODE_EXEC 0x20  /* f_mode */
#define __FMODE_EXEC 0x20 /* f_flags */

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

/* A session process under the supervisor's filter. Before it (the launcher
 * between joining the cgroup and installing the filter, the daemon's own
 * stand-in processes for unix connects) the process runs airlock's code. */
static __always_inline __u64 supervised_session(void)
{
    struct task_struct *task = bpf_get_current_task_btf();
    if (BPF_CORE_READ(task, seccomp.mode) != SECCOMP_MODE_FILTER)
        return 0;
    return session_of_current();
}

static __always_inline struct airlock_guard_event *reserve(__u64 session, __u32 hook, __u32 verdict)
{
    struct airlock_guard_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event)
        return 0;
    event->session = session;
    event->dev = 0;
    event->ino = 0;
    event->argv_len = 0;
    event->tgid = bpf_get_current_pid_tgid() >> 32;
    event->verdict = verdict;
    event->hook = hook;
    event->ppid = 0;
    bpf_get_current_comm(event->comm, sizeof(event->comm));
    return event;
}

static __always_inline void emit(__u64 session, __u32 hook, __u32 verdict, __u64 dev, __u64 ino, __u64 argv_len)
{
    struct airlock_guard_event *event = reserve(session, hook, verdict);
    if (!event)
        return;
    event->dev = dev;
    event->ino = ino;
    event->argv_len = argv_len;
    bpf_ringbuf_submit(event, 0);
}

/* Process events for the daemon's per-session process tree. Informational:
 * a full ring loses them (the tree then misses entries), nothing else. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(track_fork, struct task_struct *parent, struct task_struct *child)
{
    if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
        return 0; /* a thread */
    __u64 session = session_of_current();
    if (!session)
        return 0;
    struct airlock_guard_event *event = reserve(session, AIRLOCK_HOOK_PROCESS_FORK, AIRLOCK_EXEC_MATCHED);
    if (!event)
        return 0;
    event->tgid = BPF_CORE_READ(child, tgid);
    event->ppid = BPF_CORE_READ(parent, tgid);
    bpf_ringbuf_submit(event, 0);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(track_exit, struct task_struct *task)
{
    if (BPF_CORE_READ(task, pid) != BPF_CORE_READ(task, tgid))
        return 0;
    __u64 session = session_of_current();
    if (!session)
        return 0;
    struct airlock_guard_event *event = reserve(session, AIRLOCK_HOOK_PROCESS_EXIT, AIRLOCK_EXEC_MATCHED);
    if (event)
        bpf_ringbuf_submit(event, 0);
    return 0;
}

/* The cgroup backstop: the connecting task (current: the daemon when it
 * performs an allowed connect on the agent's socket) must not be a
 * supervised session process. 1 lets the call go on, 0 refuses it (EPERM). */
static __always_inline int sock_addr_verdict(__u32 hook)
{
    __u64 session = supervised_session();
    if (!session)
        return 1;
    emit(session, hook, AIRLOCK_CONNECT_UNSUPERVISED, 0, 0, 0);
    return 0;
}

SEC("cgroup/connect4")
int check_connect4(struct bpf_sock_addr *ctx)
{
    return sock_addr_verdict(AIRLOCK_HOOK_CGROUP_CONNECT);
}

SEC("cgroup/connect6")
int check_connect6(struct bpf_sock_addr *ctx)
{
    return sock_addr_verdict(AIRLOCK_HOOK_CGROUP_CONNECT);
}

SEC("cgroup/sendmsg4")
int check_sendmsg4(struct bpf_sock_addr *ctx)
{
    return sock_addr_verdict(AIRLOCK_HOOK_CGROUP_SENDMSG);
}

SEC("cgroup/sendmsg6")
int check_sendmsg6(struct bpf_sock_addr *ctx)
{
    return sock_addr_verdict(AIRLOCK_HOOK_CGROUP_SENDMSG);
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
    __u64 hash = 14695981039346656037ULL;
    if (n == 0) {
        *hash_out = hash;
        return 0;
    }
    if (n > AIRLOCK_ARGV_HASH_BYTES) /* restated for the verifier's bounds */
        return -1;
    if (bpf_probe_read_user(buf->bytes, n, (const void *)start) != 0)
        return -1;
    for (__u32 i = 0; i < AIRLOCK_ARGV_HASH_BYTES; i++) {
        if (i >= n)
            break;
        hash ^= buf->bytes[i];
        hash *= 1099511628211ULL;
    }
    *hash_out = hash;
    return 0;
}

static __always_inline void file_id(struct file *file, __u64 *dev, __u64 *ino)
{
    struct inode *inode = BPF_CORE_READ(file, f_inode);
    *ino = BPF_CORE_READ(inode, i_ino);
    *dev = BPF_CORE_READ(inode, i_sb, s_dev);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(check_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    __u64 session = session_of_current();
    if (!session)
        return 0;

    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u64 dev, ino, argv_len = 0, argv_hash = 0;
    file_id(BPF_CORE_READ(bprm, file), &dev, &ino);

    __u32 verdict = AIRLOCK_EXEC_MATCHED;
    struct airlock_exec_expect *expect = bpf_map_lookup_elem(&expected, &tgid);
    if (!expect) {
        verdict = AIRLOCK_EXEC_NO_APPROVAL;
    } else {
        __u32 last = expect->chain_len - 1;
        if (last >= AIRLOCK_EXEC_CHAIN_MAX || expect->chain[last].dev != dev || expect->chain[last].ino != ino) {
            verdict = AIRLOCK_EXEC_WRONG_IMAGE;
        } else {
            struct mm_struct *mm = BPF_CORE_READ(task, mm);
            if (hash_argv(mm, &argv_len, &argv_hash) != 0)
                verdict = AIRLOCK_EXEC_ARGV_UNREADABLE;
            else if (argv_hash != expect->argv_hash ||
                     (!(expect->flags & AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN) && argv_len != expect->argv_len))
                verdict = AIRLOCK_EXEC_WRONG_ARGV;
        }
    }
    if (verdict != AIRLOCK_EXEC_MATCHED)
        bpf_send_signal(SIGKILL);
    /* One approval, one exec: whatever this exec was, the next one needs its own. */
    bpf_map_delete_elem(&expected, &tgid);
    emit(session, AIRLOCK_HOOK_EXEC_TRACEPOINT, verdict, dev, ino, argv_len);
    return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(check_bprm, struct linux_binprm *bprm, int ret)
{
    if (ret)
        return ret;
    __u64 session = session_of_current();
    if (!session)
        return 0;
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u64 dev, ino;
    file_id(BPF_CORE_READ(bprm, file), &dev, &ino);
    struct airlock_exec_expect *expect = bpf_map_lookup_elem(&expected, &tgid);
    __u32 verdict = expect ? AIRLOCK_EXEC_WRONG_IMAGE : AIRLOCK_EXEC_NO_APPROVAL;
    if (expect) {
        for (__u32 i = 0; i < AIRLOCK_EXEC_CHAIN_MAX; i++) {
            if (i >= expect->chain_len)
                break;
            if (expect->chain[i].dev == dev && expect->chain[i].ino == ino) {
                verdict = AIRLOCK_EXEC_MATCHED;
                break;
            }
        }
    }
    if (verdict == AIRLOCK_EXEC_MATCHED)
        return 0;
    emit(session, AIRLOCK_HOOK_BPRM_CHECK, verdict, dev, ino, 0);
    return -EPERM;
}

SEC("lsm/file_open")
int BPF_PROG(check_file_open, struct file *file, int ret)
{
    if (ret)
        return ret;
    __u64 session = supervised_session();
    if (!session)
        return 0;
    /* The exec's own opens (binary, interpreter, ELF loader) are checked by
     * bprm_check_security and the tracepoint. open_exec() opens them with
     * __FMODE_EXEC in f_flags; kernels differ on whether f_mode has
     * FMODE_EXEC yet when file_open runs, so both are read. */
    if ((BPF_CORE_READ(file, f_flags) & __FMODE_EXEC) || (BPF_CORE_READ(file, f_mode) & FMODE_EXEC))
        return 0;
    __u64 dev, ino;
    file_id(file, &dev, &ino);
    emit(session, AIRLOCK_HOOK_FILE_OPEN, AIRLOCK_OPEN_UNSUPERVISED, dev, ino, 0);
    return -EPERM;
}

SEC("lsm/socket_connect")
int BPF_PROG(check_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
    if (ret)
        return ret;
    __u64 session = supervised_session();
    if (!session)
        return 0;
    emit(session, AIRLOCK_HOOK_SOCKET_CONNECT, AIRLOCK_CONNECT_UNSUPERVISED, 0, 0, 0);
    return -EPERM;
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(check_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
    if (ret)
        return ret;
    /* Sends on a connected socket (write, send) carry no address: the
     * destination was decided at connect. */
    if (!BPF_CORE_READ(msg, msg_name))
        return 0;
    __u64 session = supervised_session();
    if (!session)
        return 0;
    emit(session, AIRLOCK_HOOK_SOCKET_SENDMSG, AIRLOCK_CONNECT_UNSUPERVISED, 0, 0, 0);
    return -EPERM;
}
