#include "kernel/probe.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "probe.skel.h"

namespace airlock::kernel {
namespace {

struct SkeletonDeleter {
    void operator()(probe_bpf* skel) const { probe_bpf__destroy(skel); }
};
using Skeleton = std::unique_ptr<probe_bpf, SkeletonDeleter>;

std::string describe(const char* what, int err) {
    return std::string(what) + ": " + std::strerror(err < 0 ? -err : err);
}

// Loads only `keep` of the object's programs; nullptr (and why) when refused.
Skeleton load_only(bpf_program* (*pick)(probe_bpf*), Feature& feature, const char* what) {
    Skeleton skel(probe_bpf__open());
    if (!skel) {
        feature.error = describe(what, errno);
        return nullptr;
    }
    bpf_program* keep = pick(skel.get());
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel->obj) {
        (void)bpf_program__set_autoload(prog, prog == keep);
    }
    if (int err = probe_bpf__load(skel.get()); err != 0) {
        feature.error = describe(what, err);
        return nullptr;
    }
    return skel;
}

void probe_attach(bpf_program* (*pick)(probe_bpf*), Feature& feature, const char* what) {
    Skeleton skel = load_only(pick, feature, what);
    if (!skel) return;
    bpf_link* link = bpf_program__attach(pick(skel.get()));
    if (!link) {
        feature.error = describe(what, errno);
        return;
    }
    bpf_link__destroy(link);
    feature.available = true;
}

}  // namespace

Features probe_features() {
    // libbpf prints its own diagnostics to stderr by default; refusals are
    // expected here and reported through Features instead.
    libbpf_print_fn_t previous = libbpf_set_print(nullptr);
    Features f;
    probe_attach([](probe_bpf* s) { return s->progs.probe_lsm; }, f.bpf_lsm, "loading lsm/file_open");
    probe_attach([](probe_bpf* s) { return s->progs.probe_tp_btf; }, f.tp_btf, "loading tp_btf/sched_process_exec");
    if (Skeleton skel = load_only([](probe_bpf* s) { return s->progs.probe_sock_addr; }, f.cgroup_sock_addr,
                                  "loading cgroup/connect4"))
        f.cgroup_sock_addr.available = true;
    int ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "airlock_probe", 0, 0, 4096, nullptr);
    if (ring >= 0) {
        f.ringbuf.available = true;
        ::close(ring);
    } else {
        f.ringbuf.error = describe("creating a ring buffer", errno);
    }
    libbpf_set_print(previous);
    return f;
}

}  // namespace airlock::kernel
