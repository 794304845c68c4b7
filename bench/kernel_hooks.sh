#!/bin/bash
# The kernel layer's cost (issue 4, item 8): allowed open+close, connect+close
# and fork+exec, outside any session and inside one, each with airlock's BPF
# programs loaded (airlockd --kernel-layer auto) and with none loaded
# (--kernel-layer off, or no daemon), side by side in one run, as ratios.
# usage: bench/kernel_hooks.sh [BUILD_DIR]   (as root)
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
TMP=$(mktemp -d /tmp/airlock-hooks-XXXXXX)
chmod 755 "$TMP"
DAEMON=""
stop_daemon() { if [[ -n "$DAEMON" ]]; then kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; DAEMON=""; fi; }
trap 'stop_daemon; rm -rf "$TMP"' EXIT
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
start_daemon() {  # $1: auto|off
    "$BUILD/airlockd" --foreground --policy "$TMP/policy.yaml" --state-dir "$TMP/state-$1" \
        --socket "$TMP/sock" --policy-dir "$TMP/none" --cgroup-base "/airlock-hooks-$$" \
        --kernel-layer "$1" --log-level warn &
    DAEMON=$!
    for _ in $(seq 100); do [ -S "$TMP/sock" ] && break; sleep 0.05; done
    "$BUILD/airlock" --socket "$TMP/sock" status | grep enforcement >&2
}
run() { "$@" "$BUILD/bench/syscall_bench" --benchmark_format=json --benchmark_repetitions=3 \
          --benchmark_report_aggregates_only=true 2>/dev/null; }

run env > "$TMP/outside_none.json"
start_daemon auto
run env > "$TMP/outside_loaded.json"
run "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/inside_loaded.json"
stop_daemon; rm -f "$TMP/sock"
start_daemon off
run "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/inside_none.json"
stop_daemon

python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
def load(name):
    out = {}
    for b in json.load(open(f"{d}/{name}.json"))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
    return out
on, ol, i_n, il = load("outside_none"), load("outside_loaded"), load("inside_none"), load("inside_loaded")
print("medians of 3 repetitions; 'none': no airlock BPF program loaded, 'loaded': airlockd --kernel-layer auto")
print(f"{'call':<16}{'outside none':>14}{'loaded':>10}{'ratio':>8}   {'session none':>14}{'loaded':>10}{'ratio':>8}")
for name in on:
    short = name.split("/")[0]
    print(f"{short:<16}{on[name]/1000:>12.2f}us{ol[name]/1000:>8.2f}us{ol[name]/on[name]:>7.2f}x"
          f"   {i_n[name]/1000:>12.2f}us{il[name]/1000:>8.2f}us{il[name]/i_n[name]:>7.2f}x")
PY
