/* Shared by bpf/exec_guard.bpf.c and userspace/kernel/exec_guard.cpp; compiles
 * as C (BPF, after vmlinux.h) and as C++. */
#ifndef AIRLOCK_BPF_EXEC_GUARD_H
#define AIRLOCK_BPF_EXEC_GUARD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Session cgroups are found among the exec'ing task's cgroup ancestors: an
 * agent may make child cgroups below its session's leaf (a root agent owns
 * none of the files, but owns the directory), so its own cgroup id is not
 * enough. Levels deeper than this are not searched: such a task is not
 * treated as in a session (the daemon refuses to nest sessions that deep). */
#define AIRLOCK_CGROUP_LEVELS_MAX 32

/* argv bytes (NUL-separated, as the kernel lays them out at mm->arg_start)
 * hashed by both sides; past this only the total length is compared. */
#define AIRLOCK_ARGV_HASH_BYTES 4096

/* expect.flags */
#define AIRLOCK_EXPECT_ARGV_LEN_UNKNOWN 1u /* the daemon read a truncated argv */
#define AIRLOCK_EXPECT_ARGV_UNCHECKED 2u   /* no argv check (see docs/architecture.md) */

/* What the supervisor approved for one thread group's next exec: the image
 * the kernel will load (a script's interpreter, resolved as the kernel
 * does) and its argv as the kernel will lay it out. One-shot: the exec
 * hook deletes it. dev is the kernel's encoding (MAJOR << 20 | MINOR). */
struct airlock_exec_expect {
    __u64 dev;
    __u64 ino;
    __u64 argv_hash; /* FNV-1a 64 of the first AIRLOCK_ARGV_HASH_BYTES bytes */
    __u64 argv_len;  /* total bytes, NULs included */
    __u64 session;
    __u32 flags;
    __u32 pad;
};

/* What the exec hook saw (ring buffer "events"). */
enum airlock_exec_verdict {
    AIRLOCK_EXEC_MATCHED = 0,     /* the approved image and argv */
    AIRLOCK_EXEC_NO_APPROVAL = 1, /* nothing approved for this thread group: killed */
    AIRLOCK_EXEC_WRONG_IMAGE = 2, /* another file than approved: killed */
    AIRLOCK_EXEC_WRONG_ARGV = 3,  /* other arguments than approved: killed */
    AIRLOCK_EXEC_ARGV_UNREADABLE = 4, /* argv could not be read to check: killed */
};

struct airlock_exec_event {
    __u64 session; /* session id (the value of the sessions map) */
    __u64 dev;     /* kernel encoding */
    __u64 ino;
    __u64 argv_len;
    __u32 tgid;
    __u32 verdict; /* enum airlock_exec_verdict */
    char comm[16];
};

#endif
