#!/bin/bash
# Builds airlock twice (warnings as errors; then with ASan+UBSan) and runs the
# whole test suite on each: unit tests, and root tests with real processes,
# cgroups and seccomp listeners (those skip with a reason when not root).
# Then runs each libFuzzer target briefly (scripts/fuzz.sh; FUZZ_SECONDS per
# target, 0 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

cmake -S . -B build -DAIRLOCK_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure --timeout 300

cmake -S . -B build-asan -DAIRLOCK_WERROR=ON -DAIRLOCK_SANITIZE=ON -DAIRLOCK_BUILD_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=Debug
cmake --build build-asan -j"$JOBS"
# LeakSanitizer stops the world with ptrace, which the session filter refuses
# to agents by design; leaks are still checked in the unit-test run above only
# when built with sanitizers, so keep them on for unit tests, off for root ones.
ctest --test-dir build-asan --output-on-failure --timeout 300 -L unit
ASAN_OPTIONS=detect_leaks=0 ctest --test-dir build-asan --output-on-failure --timeout 300 -L root

# Replays the seed corpora (with every earlier crash's reproducer) and fuzzes
# a little further: about 20 s per target plus a clang build of three modules.
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
if [ "$FUZZ_SECONDS" -gt 0 ]; then
    ./scripts/fuzz.sh "$FUZZ_SECONDS"
fi
