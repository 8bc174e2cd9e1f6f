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
bash scripts/configure.sh "$mode"
build=build/$mode
ctest_args=()
case $mode in
  asan) cmake --build "$build" -j "$jobs" --target deis_test_programs ;;
  tsan)
    # ThreadSanitizer on the tests that share one solver between threads. A report makes the
    # test fail: halt_on_error stops the program at the first one (a non-zero exit even when
    # every assertion passed).
    cmake --build "$build" -j "$jobs" --target deis_threads_tests
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
    ctest_args=(-R threads)
    ;;
  tests) cmake --build "$build" -j "$jobs" ;;
esac

# A test case that runs past 5 minutes counts as failed (a hang must not stall CI).
# Keep a copy of ctest's output: .ci/run repeats its summary line at the end.
(cd "$build" && ctest --output-on-failure --no-tests=error --timeout 300 -j "$jobs" "${ctest_args[@]}") 2>&1 \
  | tee "$build/ctest.log"
