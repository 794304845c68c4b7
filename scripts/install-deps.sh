#!/bin/sh
# Installs every Debian 12 package airlock needs to build, test and benchmark.
# Idempotent: apt-get skips what is already there. Run as root.
set -eu
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (apt-get needs it)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# clang-19 is for the libFuzzer targets (scripts/fuzz.sh): clang 14-16 leave
# libstdc++ 12's <expected> disabled, and libclang-rt-19-dev holds libFuzzer
# and the sanitizer runtimes; llvm-19 brings the symbolizer for its traces.
# qemu-system-x86, busybox-static and cpio are for tests/vm (BPF LSM in a VM;
# the kernel package itself is fetched by tests/vm/run.sh with apt-get download).
PACKAGES="build-essential cmake pkg-config git ca-certificates
  clang llvm libbpf-dev bpftool
  clang-19 libclang-rt-19-dev llvm-19
  libseccomp-dev libcap-dev
  libboost-program-options-dev libboost-dev
  libspdlog-dev libfmt-dev
  libsqlite3-dev sqlite3 libssl-dev
  libyaml-cpp-dev nlohmann-json3-dev
  libvectorscan-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  qemu-system-x86 busybox-static cpio
  python3 procps"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
