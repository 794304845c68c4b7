#!/bin/bash
# The kernel layer's cost (issue 4, item 8): allowed open+close, connect+close
# and fork+exec, outside any session and inside one, each with airlock's BPF
# programs loaded (airlockd --kernel-layer auto) and with none loaded
# (--kernel-layer off, or no daemon), side by side in one run, as ratios.
# usage: bench/kernel_hooks.sh [BUILD_DIR]   (as root)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_setup "${1:-build}"

run_bench env > "$TMP/outside_none.json"
start_daemon loaded --kernel-layer auto
"$BUILD/airlock" --socket "$TMP/sock" status | grep enforcement >&2
run_bench env > "$TMP/outside_loaded.json"
run_bench "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/inside_loaded.json"
stop_daemon
start_daemon none --kernel-layer off
"$BUILD/airlock" --socket "$TMP/sock" status | grep enforcement >&2
run_bench "$BUILD/airlock" --socket "$TMP/sock" run -- > "$TMP/inside_none.json"
stop_daemon

python3 - "$TMP" <<PY
import sys
$BENCH_PY_MEDIANS
d = sys.argv[1]
on, ol, i_n, il = (medians(f"{d}/{name}.json")
                   for name in ("outside_none", "outside_loaded", "inside_none", "inside_loaded"))
print("medians of 3 repetitions; 'none': no airlock BPF program loaded, 'loaded': airlockd --kernel-layer auto")
print(f"{'call':<16}{'outside none':>14}{'loaded':>10}{'ratio':>8}   {'session none':>14}{'loaded':>10}{'ratio':>8}")
for name in on:
    short = name.split("/")[0]
    print(f"{short:<16}{on[name]/1000:>12.2f}us{ol[name]/1000:>8.2f}us{ol[name]/on[name]:>7.2f}x"
          f"   {i_n[name]/1000:>12.2f}us{il[name]/1000:>8.2f}us{il[name]/i_n[name]:>7.2f}x")
PY
