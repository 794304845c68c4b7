# Shared by bench/run.sh and bench/kernel_hooks.sh (source it): a temporary
# directory with a bench file and an allow-what-the-bench-does policy, an
# airlockd started on it, and syscall_bench runs as JSON.
#   bench_setup BUILD_DIR      sets BUILD, TMP, AIRLOCK_BENCH_FILE; cleans up at exit
#   start_daemon NAME [ARGS]   airlockd on $TMP/sock with state $TMP/state-NAME
#   stop_daemon
#   run_bench PREFIX... > F    syscall_bench under PREFIX (e.g. env, airlock run --)
#   medians F                  (python) {benchmark name: median real time in ns}
bench_setup() {
    BUILD=$(cd "$1" && pwd)
    TMP=$(mktemp -d /tmp/airlock-bench-XXXXXX)
    chmod 755 "$TMP"  # an unprivileged agent must reach the bench file
    DAEMON=""
    trap 'stop_daemon; remove_cgroups; rm -rf "$TMP"' EXIT
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
}

start_daemon() {
    local name=$1
    shift
    rm -f "$TMP/sock"
    "$BUILD/airlockd" --foreground --policy "$TMP/policy.yaml" --state-dir "$TMP/state-$name" \
        --socket "$TMP/sock" --policy-dir "$TMP/none" --cgroup-base "/airlock-bench-$$-$name" \
        --log-level warn "$@" &
    DAEMON=$!
    for _ in $(seq 100); do [ -S "$TMP/sock" ] && break; sleep 0.05; done
}

# The session base cgroups the daemons made (their sessions' cgroups are gone by now).
remove_cgroups() {
    local mount
    mount=$(awk '{for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' \
            /proc/self/mountinfo | head -1)
    [[ -n "$mount" ]] || return 0
    rmdir "$mount"/airlock-bench-$$-*/* "$mount"/airlock-bench-$$-* 2>/dev/null || true
}

stop_daemon() {
    if [[ -n "${DAEMON:-}" ]]; then
        kill "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
        DAEMON=""
    fi
}

run_bench() {
    "$@" "$BUILD/bench/syscall_bench" --benchmark_format=json --benchmark_repetitions=3 \
        --benchmark_report_aggregates_only=true 2>/dev/null
}

BENCH_PY_MEDIANS='
import json
def medians(path):
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
    return out
'
