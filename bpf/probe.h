/* Shared by bpf/probe.bpf.c and userspace/kernel/probe.cpp: nothing to
 * share but the convention (each program set has its header). */
#ifndef AIRLOCK_BPF_PROBE_H
#define AIRLOCK_BPF_PROBE_H
#endif
