#!/bin/bash
# Boots a Debian cloud kernel with BPF LSM enabled under qemu (TCG) and runs
# the kernel layer's tests inside it, so that what this project's machines
# cannot load (BPF LSM is refused there; see ../shared/DESIGN-NOTES.md) is
# tested for real. The result comes back over the serial console.
#
#   tests/vm/run.sh BUILD_DIR [TEST_BINARY:GTEST_FILTER ...]
#
# Needs (scripts/install-deps.sh installs them): qemu-system-x86, busybox-static,
# cpio; the kernel package is fetched with `apt-get download` into
# BUILD_DIR/vm-cache (kept between runs). The initramfs holds busybox (init's
# tools), the host's coreutils and dash that the tests exec, airlock's binaries
# and test binaries at their build-tree paths (the tests find each other
# through AIRLOCK_BINARY_DIR), and every shared library they need.
# Exit status: 0 when every test binary passed in the VM; 1 otherwise;
# 77 when the VM cannot be run here (no qemu, no kernel package).
set -euo pipefail

[[ $# -ge 1 ]] || { sed -n '2,16p' "$0"; exit 2; }
build="$(cd "$1" && pwd)"
shift
specs=("$@")
if [[ ${#specs[@]} -eq 0 ]]; then
    specs=("tests/root/kernel_root_test:KernelTest.*"
           "tests/root/attack_root_test:AttackTest.Exec*:AttackTest.ScriptsRunUnderTheExecGuard"
           "tests/root/session_root_test:SessionTest.APolicyRequiringMoreKernelEnforcementThanRunsIsRefused")
fi
timeout_s=${AIRLOCK_VM_TIMEOUT:-1200}

skip() { echo "tests/vm: SKIP: $*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"
busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] && "$busybox" --list >/dev/null 2>&1 || skip "busybox is missing (apt-get install busybox-static)"
command -v cpio >/dev/null || skip "cpio is missing"

# ---- the kernel ---------------------------------------------------------------------
cache="$build/vm-cache"
mkdir -p "$cache"
if [[ ! -s "$cache/vmlinuz" ]]; then
    pkg=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-unsigned$' | awk '{print $1}' |
          sort -V | tail -1)
    [[ -n "$pkg" ]] || skip "no linux-image-*-cloud-amd64-unsigned package in the apt lists (apt-get update?)"
    echo "tests/vm: fetching $pkg" >&2
    (cd "$cache" && rm -f ./*.deb && apt-get download "$pkg" >&2) || skip "apt-get download $pkg failed"
    rm -rf "$cache/pkg"
    dpkg -x "$cache"/*.deb "$cache/pkg"
    cp "$cache"/pkg/boot/vmlinuz-* "$cache/vmlinuz.tmp"
    grep -q '^CONFIG_BPF_LSM=y' "$cache"/pkg/boot/config-* || skip "$pkg has no CONFIG_BPF_LSM"
    mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
    rm -rf "$cache/pkg" "$cache"/*.deb
fi

# ---- the initramfs ------------------------------------------------------------------
work=$(mktemp -d /tmp/airlock-vm-XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,proc,sys,dev,tmp,run,etc,root,var/tmp}
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
mkdir -p "$root/lib64"

# copy FILE [DEST]: FILE (stripped of debug info when it is ELF) and its shared libraries.
copy() {
    local src=$1 dest=${2:-$1}
    mkdir -p "$root$(dirname "$dest")"
    if [[ ! -e "$root$dest" ]]; then
        cp -L "$src" "$root$dest"
        objcopy --strip-debug "$root$dest" 2>/dev/null || true
    fi
    local lib
    for lib in $(ldd "$src" 2>/dev/null | grep -o '/[^ ]*' || true); do
        [[ -e "$root$lib" ]] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

cp "$busybox" "$root/usr/bin/busybox"
for tool in true touch env cat sleep; do copy "/usr/bin/$tool"; done
copy /usr/bin/dash
ln -s dash "$root/usr/bin/sh"
for applet in mount mkdir poweroff echo ls rm chmod mknod ip hostname; do
    [[ -e "$root/usr/bin/$applet" ]] || ln -s busybox "$root/usr/bin/$applet"
done
for binary in airlockd airlock tests/root/attack_agent tests/root/agent_probe; do
    copy "$build/$binary"
done
for spec in "${specs[@]}"; do copy "$build/${spec%%:*}"; done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
echo airlock-vm > "$root/etc/hostname"

{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev'
    # No tmpfs over /tmp, /run or /var/tmp: the initramfs is writable memory
    # already, and the build tree copied into it may live under any of them.
    echo 'chmod 1777 /tmp /var/tmp'
    echo 'mkdir -p /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup'
    echo 'mount -t securityfs securityfs /sys/kernel/security 2>/dev/null'
    echo 'ip link set lo up 2>/dev/null'
    echo 'echo "AIRLOCK-VM: kernel $(cat /proc/sys/kernel/osrelease), lsm=$(cat /sys/kernel/security/lsm)"'
    echo 'export AIRLOCK_RACE_TRIES=${AIRLOCK_RACE_TRIES:-300} HOME=/root'
    echo 'rc=0'
    for spec in "${specs[@]}"; do
        echo "echo 'AIRLOCK-VM: running $build/${spec%%:*} --gtest_filter=${spec#*:}'"
        echo "'$build/${spec%%:*}' '--gtest_filter=${spec#*:}' || rc=1"
    done
    echo 'echo "AIRLOCK-VM-RESULT: $rc"'
    echo 'poweroff -f'
} > "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"
echo "tests/vm: initramfs $(du -h "$work/initrd.gz" | cut -f1), booting $(basename "$(readlink -f "$cache/vmlinuz")") under qemu TCG" >&2

# ---- boot ---------------------------------------------------------------------------
# KVM guests hang on these machines: TCG, as DESIGN-NOTES says.
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2048 -nographic -no-reboot \
    -kernel "$cache/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 lsm=lockdown,capability,bpf panic=-1 quiet" </dev/null | tee "$work/serial.log" |
    grep --line-buffered -E '^\[|AIRLOCK-VM|PASSED|FAILED|SKIPPED|Skipped|Failure|with(out)? the exec guard|tests? from'
status=${PIPESTATUS[0]}
set -e
result=$(grep -a -o 'AIRLOCK-VM-RESULT: [0-9]*' "$work/serial.log" | tail -1 | awk '{print $2}')
if [[ -z "$result" ]]; then
    echo "tests/vm: the VM gave no result (qemu status $status); serial console:" >&2
    tail -50 "$work/serial.log" >&2
    exit 1
fi
if grep -aq 'Skipped' "$work/serial.log" && grep -aq 'BPF LSM not attachable' "$work/serial.log"; then
    echo "tests/vm: BPF LSM tests were skipped inside the VM: the kernel did not let them attach" >&2
    exit 1
fi
echo "tests/vm: result $result"
if [[ "$result" != 0 ]]; then
    echo "tests/vm: the end of the serial console:" >&2
    tail -80 "$work/serial.log" >&2
    exit 1
fi
