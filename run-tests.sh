#!/usr/bin/env bash
# Configure, build and run the deis test suite.
#   bash run-tests.sh             build/tests: tests, examples and benchmark tools, -Werror
#   bash run-tests.sh --sanitize  build/asan: tests only, with address + undefined sanitizers
#                                 (not the fuzz replays: scripts/fuzz.sh runs those inputs)
#   bash run-tests.sh --tsan      build/tsan: deis_threads_tests with ThreadSanitizer, running the
#                                 tests named "threads: ..." (tests/threads/test_threads.cpp)
# DEIS_REFERENCE_DIR (environment) overrides where the reference data is
# (default: tests/data, inside the repository).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mode=tests
case "${1:-}" in
  "") ;;
  --sanitize) mode=asan ;;
  --tsan) mode=tsan ;;
  *) echo "usage: $0 [--sanitize | --tsan]" >&2; exit 2 ;;
esac

bash scripts/deps.sh

jobs=$(nproc)
reference_dir=${DEIS_REFERENCE_DIR:-$PWD/tests/data}
# Release with chosen flags: -O2 as RelWithDebInfo (the same code and warnings) but without
# debug info, which took a third of the compile time; the sanitizer builds -O1 with line
# tables (-g1), enough for their reports' stack traces. Unity builds (DEIS_UNITY_BUILD, on by
# default): a few large translation units instead of one per test file.
common=(-DCMAKE_BUILD_TYPE=Release -DDEIS_BUILD_TESTS=ON -DDEIS_UNITY_BUILD=ON
        "-DDEIS_REFERENCE_DIR=$reference_dir")
optimized=("-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG")
sanitized=("-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG")

ctest_args=()
case $mode in
  asan)
    # No -Werror here: instrumentation makes GCC's flow-based warnings
    # (-Wmaybe-uninitialized, ...) report false positives; build/tests gates warnings.
    build=build/asan
    cmake -S . -B "$build" "${common[@]}" "${sanitized[@]}" -DDEIS_WERROR=OFF -DDEIS_SANITIZE=address,undefined \
      -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF -DDEIS_FUZZ_REPLAY=OFF
    cmake --build "$build" -j "$jobs" --target deis_test_programs
    ;;
  tsan)
    # ThreadSanitizer on the tests that share one solver between threads. -Werror off as
    # for asan. A report makes the test fail: halt_on_error stops the program at the first
    # one (a non-zero exit even when every assertion passed).
    build=build/tsan
    cmake -S . -B "$build" "${common[@]}" "${sanitized[@]}" -DDEIS_WERROR=OFF -DDEIS_SANITIZE=thread \
      -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF
    cmake --build "$build" -j "$jobs" --target deis_threads_tests
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
    ctest_args=(-R threads)
    ;;
  tests)
    build=build/tests
    cmake -S . -B "$build" "${common[@]}" "${optimized[@]}" -DDEIS_WERROR=ON -DDEIS_SANITIZE= \
      -DDEIS_BUILD_EXAMPLES=ON -DDEIS_BUILD_BENCH=ON
    cmake --build "$build" -j "$jobs"
    ;;
esac

# A test case that runs past 5 minutes counts as failed (a hang must not stall CI).
# Keep a copy of ctest's output: .ci/run repeats its summary line at the end.
(cd "$build" && ctest --output-on-failure --no-tests=error --timeout 300 -j "$jobs" "${ctest_args[@]}") 2>&1 \
  | tee "$build/ctest.log"
