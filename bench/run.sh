#!/bin/bash
# Side-by-side cost of supervised syscalls: unconfined, a bare seccomp-notify
# supervisor answering CONTINUE, and airlock (policy allow, audited), in one run.
# usage: bench/run.sh [BUILD_DIR]   (as root)
set -euo pipefail
BUILD=${1:-build}
BUILD=$(cd "$BUILD" && pwd)
TMP=$(mktemp -d /tmp/airlock-bench-XXXXXX)
chmod 755 "$TMP"  # the unprivileged-agent run must reach the bench file
trap 'kill $DAEMON 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT
echo "benchmark file" > "$TMP/file"
export AIRLOCK_BENCH_FILE="$TMP/file"
cat > "$TMP/policy.yaml" <<YAML
version: 1
default: deny
rules:
  - name: bench-file
    match: { action: open, path: ["$TMP/**"] }
    verdict: allow
  - name: system
    match: { action: open, access: read, path: ["/usr/**", "/lib/**", "/lib64/**", "/etc/**", "/proc/**", "/sys/**", "/dev/**"] }
    verdict: allow
  - name: loopback
    match: { action: connect, dest: ["127.0.0.0/8"] }
    verdict: allow
  - name: exec
    match: { action: exec, path: ["/**"] }
    verdict: allow
YAML
"$BUILD/airlockd" --foreground --policy "$TMP/policy.yaml" --state-dir "$TMP/state" \
    --socket "$TMP/sock" --policy-dir "$TMP/none" --cgroup-base "/airlock-bench-$$" --log-level warn &
DAEMON=$!
for _ in $(seq 100); do [ -S "$TMP/sock" ] && break; sleep 0.05; done

run() { "$@" "$BUILD/bench/syscall_bench" --benchmark_format=json --benchmark_repetitions=3 \
          --benchmark_report_aggregates_only=true 2>/dev/null; }
run env > "$TMP/unconfined.json"
run "$BUILD/bench/bare_notify" > "$TMP/bare.json"
run "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/airlock.json"
# A root agent and an unprivileged one cost differently: the daemon switches
# to the agent's uid/gid/groups for every open instead of dropping capabilities.
run "$BUILD/airlock" --socket "$TMP/sock" run --user nobody -- > "$TMP/airlock_user.json"

python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
def load(name):
    out = {}
    for b in json.load(open(f"{d}/{name}.json"))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
    return out
u, b, a, n = load("unconfined"), load("bare"), load("airlock"), load("airlock_user")
print("agent: root (airlock) and nobody (airlock --user nobody); medians of 3 repetitions")
print(f"{'call':<16}{'unconfined':>12}{'bare notify':>13}{'airlock':>11}{'--user':>10}"
      f"{'airlock/bare':>14}{'--user/bare':>13}{'airlock/unconf':>16}")
for name in u:
    short = name.split("/")[0]
    print(f"{short:<16}{u[name]/1000:>10.2f}us{b[name]/1000:>11.2f}us{a[name]/1000:>9.2f}us{n[name]/1000:>8.2f}us"
          f"{a[name]/b[name]:>13.2f}x{n[name]/b[name]:>12.2f}x{a[name]/u[name]:>15.2f}x")
PY
