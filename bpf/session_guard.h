/* Shared by bpf/session_guard.bpf.c and userspace/kernel/session_guard.cpp;
 * compiles as C (BPF, after vmlinux.h) and as C++. */
#ifndef AIRLOCK_BPF_SESSION_GUARD_H
#define AIRLOCK_BPF_SESSION_GUARD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Session cgroups are found among the calling task's cgroup ancestors: an
 * agent may make child cgroups below its session's leaf (a root agent owns
 * none of the files, but owns the directory), so its own cgroup id is not
 * enough. Levels deeper than this are not searched. */
#define AIRLOCK_CGROUP_LEVELS_MAX 32

/* argv bytes (NUL-separated, as the kernel lays them out at mm->arg_start)
 * hashed by both sides; past this only the total length is compared. */
#define AIRLOCK_ARGV_HASH_BYTES 4096

/* Files an exec loads in turn: the script, its interpreter(s), the ELF
 * (binfmt_script allows five levels). */
#define AIRLOCK_EXEC_CHAIN_MAX 6

/* airlock_exec_expect.flags */
#define AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN 1u /* the daemon read a truncated argv */

struct airlock_file_id {
    __u64 dev; /* the kernel's encoding (MAJOR << 20 | MINOR) */
    __u64 ino;
};

/* What the supervisor approved for one thread group's next exec: the files
 * the kernel will open for it, outermost first, the last being the image it
 * maps (a script's interpreter, resolved as the kernel does), and argv as the
 * kernel will lay it out. One-shot: the exec tracepoint deletes it. */
struct airlock_exec_expect {
    struct airlock_file_id chain[AIRLOCK_EXEC_CHAIN_MAX];
    __u32 chain_len; /* 1..AIRLOCK_EXEC_CHAIN_MAX */
    __u32 flags;
    __u64 argv_hash; /* FNV-1a 64 of the first AIRLOCK_ARGV_HASH_BYTES bytes */
    __u64 argv_len;  /* total bytes, NULs included */
    __u64 session;
};

/* What a hook saw (ring buffer "events"). */
enum airlock_guard_verdict {
    AIRLOCK_EXEC_MATCHED = 0,         /* the approved image and argv */
    AIRLOCK_EXEC_NO_APPROVAL = 1,     /* nothing approved for this thread group */
    AIRLOCK_EXEC_WRONG_IMAGE = 2,     /* another file than approved */
    AIRLOCK_EXEC_WRONG_ARGV = 3,      /* other arguments than approved */
    AIRLOCK_EXEC_ARGV_UNREADABLE = 4, /* argv could not be read to check */
    AIRLOCK_OPEN_UNSUPERVISED = 5,    /* lsm/file_open: an open past the supervisor */
    AIRLOCK_CONNECT_UNSUPERVISED = 6, /* lsm/socket_connect, addressed socket_sendmsg */
};

enum airlock_guard_hook {
    AIRLOCK_HOOK_EXEC_TRACEPOINT = 0, /* tp_btf/sched_process_exec: SIGKILL */
    AIRLOCK_HOOK_BPRM_CHECK = 1,      /* lsm/bprm_check_security: EPERM */
    AIRLOCK_HOOK_FILE_OPEN = 2,       /* the LSM hooks refuse with EPERM */
    AIRLOCK_HOOK_SOCKET_CONNECT = 3,
    AIRLOCK_HOOK_SOCKET_SENDMSG = 4,
    AIRLOCK_HOOK_CGROUP_CONNECT = 5, /* cgroup/connect4/6: EPERM */
    AIRLOCK_HOOK_CGROUP_SENDMSG = 6, /* cgroup/sendmsg4/6: EPERM */
    AIRLOCK_HOOK_PROCESS_FORK = 7,   /* tp_btf/sched_process_fork: a new process (not a thread) */
    AIRLOCK_HOOK_PROCESS_EXIT = 8,   /* tp_btf/sched_process_exit of a thread group leader */
};

struct airlock_guard_event {
    __u64 session; /* session id (the value of the sessions map) */
    __u64 dev;     /* the file's, kernel encoding (0 for sockets) */
    __u64 ino;
    __u64 argv_len;
    __u32 tgid;
    __u32 verdict; /* enum airlock_guard_verdict */
    __u32 hook;    /* enum airlock_guard_hook */
    __u32 ppid;    /* fork: the parent's tgid */
    char comm[16];
};

#endif
