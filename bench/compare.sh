#!/usr/bin/env bash
# Side-by-side throughput of airlock's inspector, ripgrep and secretlint on
# the same generated inputs, one core each (issue 3, item 9).
#
#   bench/compare.sh [--build DIR] [--work DIR] [--sparse-size BYTES]
#                    [--dense-size BYTES] [--secretlint-size BYTES] [--runs N]
#                    [--cpu N]
#
# Inputs (written by `inspect_bench --dump-corpus`):
#   sparse.txt  code, logs, prose and CSV with rare findings (default 1 GiB)
#   dense.csv   a PII row every ~100 bytes (default 128 MiB)
# Contestants, each pinned to one CPU (taskset), best and median of N runs:
#   airlock scan --json       the CLI: compiles its databases, streams the
#                             file in 1 MiB chunks (wall time includes both)
#   inspect_bench --scan-file the library alone on one thread, same
#                             streaming, compile time excluded; every
#                             finding (preview and keyed hash included) is
#                             taken from the stream after each chunk and
#                             read, then dropped (memory stays bounded)
#   rg -c -f patterns.txt     ripgrep with the detector set exported as
#                             regular expressions (`inspect_bench --export-patterns`)
#   secretlint                @secretlint/secretlint-rule-preset-recommend
#                             from npm, on the first --secretlint-size bytes of
#                             sparse.txt (it reads whole files into memory and
#                             runs at a few MB/s), next to airlock limited to
#                             its secret detectors on the same bytes
# Peak RSS comes from /usr/bin/time -v. Missing tools are installed (apt:
# ripgrep, nodejs, npm, time; npm packages under WORK/npm), so the script
# wants root on a fresh Debian 12 unless they are there already.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$here/../build"
work="${TMPDIR:-/tmp}/airlock-compare"
sparse_size=$((1 << 30))
dense_size=$((128 << 20))
secretlint_size=$((32 << 20))
runs=3
cpu=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --build) build="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --sparse-size) sparse_size="$2"; shift 2 ;;
        --dense-size) dense_size="$2"; shift 2 ;;
        --secretlint-size) secretlint_size="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --cpu) cpu="$2"; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

airlock="$build/airlock"
bench="$build/bench/inspect_bench"
for binary in "$airlock" "$bench"; do
    if [[ ! -x "$binary" ]]; then
        echo "compare.sh: $binary is missing; build the airlock and inspect_bench targets (or pass --build DIR)" >&2
        exit 2
    fi
done
if [[ "$(nproc)" -le "$cpu" ]]; then cpu=0; fi

# --- Tools ----------------------------------------------------------------------------
missing=()
command -v rg >/dev/null || missing+=(ripgrep)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v taskset >/dev/null || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
fi
mkdir -p "$work/npm"
secretlint="$work/npm/node_modules/.bin/secretlint"
if [[ ! -x "$secretlint" ]]; then
    echo "installing secretlint into $work/npm" >&2
    npm install --silent --no-audit --no-fund --prefix "$work/npm" \
        secretlint @secretlint/secretlint-rule-preset-recommend >&2
fi
echo '{"rules":[{"id":"@secretlint/secretlint-rule-preset-recommend"}]}' > "$work/secretlintrc.json"

# --- Inputs ---------------------------------------------------------------------------
sparse="$work/sparse.txt"
dense="$work/dense.csv"
stamp="$work/corpus.$sparse_size.$dense_size"
if [[ ! -f "$stamp" || ! -f "$sparse" || ! -f "$dense" ]]; then
    echo "generating $sparse_size + $dense_size bytes of input" >&2
    rm -f "$work"/corpus.*
    "$bench" --dump-corpus="$work" --sparse-size="$sparse_size" --dense-size="$dense_size"
    touch "$stamp"
fi
subset="$work/sparse-head.txt"
head -c "$secretlint_size" "$sparse" > "$subset"
"$bench" --export-patterns > "$work/patterns.txt"

# --- Measuring ------------------------------------------------------------------------
# run NAME FILE COMMAND...: N runs pinned to one CPU; records the best and
# median wall time, the peak RSS and, for airlock, the library's own
# throughput line. Exit status 1 (findings) is success for every contestant.
declare -A best_mbs median_mbs rss_mib note capped
order=()
run() {
    local name="$1" file="$2"
    shift 2
    local bytes times=() rss=0 i
    bytes=$(stat -c %s "$file")
    for ((i = 0; i < runs; i++)); do
        local status=0
        /usr/bin/time -v -o "$work/time.txt" taskset -c "$cpu" "$@" > "$work/out.txt" 2> "$work/err.txt" || status=$?
        if [[ $status -gt 1 ]]; then
            echo "compare.sh: $name failed (exit $status):" >&2
            tail -5 "$work/err.txt" >&2
            return 1
        fi
        local wall kib
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + p[k]; print s}' "$work/time.txt")
        kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
        # The thin bench prints its own scan time (compile excluded): prefer it.
        if grep -q '^bytes=.* seconds=' "$work/out.txt"; then
            wall=$(sed -n 's/.* seconds=\([0-9.]*\) .*/\1/p' "$work/out.txt" | tail -1)
        fi
        times+=("$wall")
        if grep -q 'stopped after' "$work/err.txt"; then capped[$name]=1; fi
        (( kib > rss )) && rss=$kib
    done
    local sorted
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    local best median
    best=$(head -1 <<< "$sorted")
    median=$(sed -n "$(( (runs + 1) / 2 ))p" <<< "$sorted")
    best_mbs[$name]=$(awk -v b="$bytes" -v t="$best" 'BEGIN {printf "%.1f", b / t / 1e6}')
    median_mbs[$name]=$(awk -v b="$bytes" -v t="$median" 'BEGIN {printf "%.1f", b / t / 1e6}')
    rss_mib[$name]=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
    order+=("$name")
}

count_findings() {  # airlock --json output on stdin
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["findings"]))' 2>/dev/null || echo "?"
}

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load:$(cut -d' ' -f1-3 /proc/loadavg); pinned to CPU $cpu; $runs runs each"
echo "== inputs: sparse $(stat -c %s "$sparse") bytes, dense $(stat -c %s "$dense") bytes, secretlint subset $(stat -c %s "$subset") bytes; $(wc -l < "$work/patterns.txt") patterns for rg"

run "airlock scan (sparse)" "$sparse" "$airlock" scan --json --max-size 1T --max-findings 10000000 "$sparse"
note["airlock scan (sparse)"]="$(count_findings < "$work/out.txt") findings"
run "library, 1 thread (sparse)" "$sparse" "$bench" --scan-file="$sparse"
note["library, 1 thread (sparse)"]="$(sed -n 's/.*findings=\([0-9]*\).*/\1/p' "$work/out.txt") findings"
run "rg -c -f (sparse)" "$sparse" rg -c -f "$work/patterns.txt" "$sparse"
note["rg -c -f (sparse)"]="$(cat "$work/out.txt") matching lines"

run "airlock scan (dense)" "$dense" "$airlock" scan --json --max-size 1T "$dense"
note["airlock scan (dense)"]="$(count_findings < "$work/out.txt") findings"
run "library, 1 thread (dense)" "$dense" "$bench" --scan-file="$dense"
note["library, 1 thread (dense)"]="$(sed -n 's/.*findings=\([0-9]*\).*/\1/p' "$work/out.txt") findings, each with preview and HMAC-SHA256 keyed hash, delivered per chunk (not kept)"
run "rg -c -f (dense)" "$dense" rg -c -f "$work/patterns.txt" "$dense"
note["rg -c -f (dense)"]="$(cat "$work/out.txt") matching lines"

run "secretlint (sparse head)" "$subset" "$secretlint" --secretlintrc "$work/secretlintrc.json" --format json "$subset"
note["secretlint (sparse head)"]="$(python3 -c 'import json, sys; print(sum(len(f["messages"]) for f in json.load(sys.stdin)))' < "$work/out.txt" 2>/dev/null || echo "?") findings"
run "airlock scan secret.* (sparse head)" "$subset" "$airlock" scan --json --types 'secret.*' --max-size 1T "$subset"
note["airlock scan secret.* (sparse head)"]="$(count_findings < "$work/out.txt") findings"

echo
printf '%-38s %12s %12s %10s %9s  %s\n' "contestant" "best MB/s" "median MB/s" "peak RSS" "vs rg" "notes"
for name in "${order[@]}"; do
    ratio="-"
    case "$name" in
        *"(sparse)") ratio=$(awk -v a="${median_mbs[$name]}" -v b="${median_mbs["rg -c -f (sparse)"]}" 'BEGIN {printf "%.2fx", a / b}') ;;
        *"(dense)") ratio=$(awk -v a="${median_mbs[$name]}" -v b="${median_mbs["rg -c -f (dense)"]}" 'BEGIN {printf "%.2fx", a / b}') ;;
    esac
    extra="${note[$name]:-}"
    # The CLI stops scanning at its 10,000-finding cap: its time then covers part of the file.
    [[ -n "${capped[$name]:-}" ]] && extra="$extra; STOPPED at the findings cap, not comparable"
    printf '%-38s %12s %12s %7s MiB %9s  %s\n' "$name" "${best_mbs[$name]}" "${median_mbs[$name]}" "${rss_mib[$name]}" "$ratio" "$extra"
done
echo
awk -v a="${median_mbs["airlock scan secret.* (sparse head)"]}" -v b="${median_mbs["secretlint (sparse head)"]}" \
    'BEGIN {printf "airlock (secret detectors) vs secretlint on the same %s bytes: %.1fx\n", "'"$(stat -c %s "$subset")"'", a / b}'
echo "airlock scan wall times include compiling the vectorscan databases (the CLI keeps no cache);"
echo "the library line is the scan alone. rg counts matching lines and confirms nothing (no checksums, no context)."
