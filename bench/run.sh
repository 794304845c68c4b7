#!/bin/bash
# Side-by-side cost of supervised syscalls: unconfined, a bare seccomp-notify
# supervisor answering CONTINUE, and airlock (policy allow, audited), in one run.
# usage: bench/run.sh [BUILD_DIR]   (as root)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_setup "${1:-build}"
start_daemon airlock

run_bench env > "$TMP/unconfined.json"
run_bench "$BUILD/bench/bare_notify" > "$TMP/bare.json"
run_bench "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/airlock.json"
# A root agent and an unprivileged one cost differently: the daemon switches
# to the agent's uid/gid/groups for every open instead of dropping capabilities.
run_bench "$BUILD/airlock" --socket "$TMP/sock" run --user nobody -- > "$TMP/airlock_user.json"

python3 - "$TMP" <<PY
import sys
$BENCH_PY_MEDIANS
d = sys.argv[1]
u, b, a, n = (medians(f"{d}/{name}.json") for name in ("unconfined", "bare", "airlock", "airlock_user"))
print("agent: root (airlock) and nobody (airlock --user nobody); medians of 3 repetitions")
print(f"{'call':<16}{'unconfined':>12}{'bare notify':>13}{'airlock':>11}{'--user':>10}"
      f"{'airlock/bare':>14}{'--user/bare':>13}{'airlock/unconf':>16}")
for name in u:
    short = name.split("/")[0]
    print(f"{short:<16}{u[name]/1000:>10.2f}us{b[name]/1000:>11.2f}us{a[name]/1000:>9.2f}us{n[name]/1000:>8.2f}us"
          f"{a[name]/b[name]:>13.2f}x{n[name]/b[name]:>12.2f}x{a[name]/u[name]:>15.2f}x")
PY
