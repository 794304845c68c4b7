#!/bin/bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in
# build-fuzz/ and runs each for a bounded time, starting from the seed
# corpus in the repository. Fails on any crash, leak, timeout, out-of-memory
# or violated property, and says where the input that did it was saved.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Inputs found along the way stay in build-fuzz/corpus/<target> and are
# replayed first on the next run. To replay one saved input:
#   build-fuzz/tests/fuzz/<target> <file>
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-20}
shift || true
JOBS=${JOBS:-$(nproc)}
# clang 19 is the first Debian 12 clang that enables libstdc++ 12's <expected>.
CXX_FUZZ=${AIRLOCK_FUZZ_CXX:-clang++-19}
CC_FUZZ=${AIRLOCK_FUZZ_CC:-clang-19}
BUILD=build-fuzz
if ! command -v "$CXX_FUZZ" >/dev/null; then
    echo "fuzz.sh: $CXX_FUZZ not found; scripts/install-deps.sh installs it (clang-19, libclang-rt-19-dev)" >&2
    exit 1
fi

# target  seed directories (comma-separated)  dictionary  longest input
S=tests/fuzz/corpus
TARGETS=(
    "scan_block_fuzz    $S/scan                    scan.dict     16384"
    "scan_stream_fuzz   $S/scan                    scan.dict     16384"
    "validators_fuzz    $S/validators              scan.dict     512"
    "policy_parse_fuzz  $S/policy_parse,policies   policy.dict   8192"
    "policy_values_fuzz $S/policy_values           policy.dict   512"
    "protocol_fuzz      $S/protocol                protocol.dict 4096"
)

# Only the modules the targets need; warnings are not errors here (clang
# warns about things g++ does not, and the g++ build enforces -Werror).
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_C_COMPILER="$CC_FUZZ" \
      -DAIRLOCK_FUZZ=ON -DAIRLOCK_BUILD_TESTS=OFF -DAIRLOCK_BUILD_BENCH=OFF \
      "-DAIRLOCK_ONLY_MODULES=common;inspect;policy;protocol" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
names=()
for entry in "${TARGETS[@]}"; do
    read -r name _ <<<"$entry"
    if [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; then names+=("$name"); fi
done
if [ ${#names[@]} -eq 0 ]; then
    echo "fuzz.sh: no such target: $*" >&2
    exit 1
fi
cmake --build "$BUILD" -j"$JOBS" --target "${names[@]}"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Stack traces with file:line need a symbolizer that reads clang 19's DWARF.
for symbolizer in llvm-symbolizer-19 llvm-symbolizer; do
    if command -v "$symbolizer" >/dev/null; then
        export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$symbolizer")}
        break
    fi
done
failed=()
summary=()
for entry in "${TARGETS[@]}"; do
    read -r name seeds dict max_len <<<"$entry"
    [[ " ${names[*]} " == *" $name "* ]] || continue
    corpus="$BUILD/corpus/$name"
    artifacts="$BUILD/artifacts/$name/"
    log="$BUILD/logs/$name.log"
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    echo "== $name: ${SECONDS_PER_TARGET}s"
    status=0
    IFS=, read -r -a seed_dirs <<<"$seeds"
    "$BUILD/tests/fuzz/$name" "$corpus" "${seed_dirs[@]}" \
        -dict="tests/fuzz/$dict" -max_len="$max_len" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+|ft: [0-9]+|corp: [0-9]+/[0-9a-zA-Z]+|exec/s: [0-9]+' | paste -sd ' ' || true)
    if [ "$status" -ne 0 ]; then
        failed+=("$name")
        summary+=("$name: FAILED ($stats)")
        echo "-- $name failed (exit $status); the end of $log:" >&2
        tail -n 60 "$log" >&2
        grep -h 'Test unit written to' "$log" | sed 's/.*Test unit written to /   input saved to /' >&2 || true
        echo "   replay: $BUILD/tests/fuzz/$name <input>" >&2
    else
        summary+=("$name: ok ($stats)")
    fi
done
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
