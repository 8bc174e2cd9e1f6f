#!/usr/bin/env bash
# Configure one of the builds of run-tests.sh (run-benchmark.sh shares the first):
#   bash scripts/configure.sh tests   build/tests: tests, examples and benchmark tools, -Werror
#   bash scripts/configure.sh asan    build/asan: tests only, address + undefined sanitizers
#   bash scripts/configure.sh tsan    build/tsan: tests only, thread sanitizer
# DEIS_REFERENCE_DIR (environment) overrides where the reference data is (default: tests/data).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

reference_dir=${DEIS_REFERENCE_DIR:-$PWD/tests/data}
# Release with chosen flags: -O2 as RelWithDebInfo (the same code and warnings) but without
# debug info, which took a third of the compile time; the sanitizer builds -O1 with line
# tables (-g1), enough for their reports' stack traces. Unity builds (DEIS_UNITY_BUILD, on by
# default): a few large translation units instead of one per test file.
common=(-DCMAKE_BUILD_TYPE=Release -DDEIS_BUILD_TESTS=ON -DDEIS_UNITY_BUILD=ON
        "-DDEIS_REFERENCE_DIR=$reference_dir")
optimized=("-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG")
sanitized=("-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG")

case "${1:-}" in
  tests)
    cmake -S . -B build/tests "${common[@]}" "${optimized[@]}" -DDEIS_WERROR=ON -DDEIS_SANITIZE= \
      -DDEIS_BUILD_EXAMPLES=ON -DDEIS_BUILD_BENCH=ON -DDEIS_EXAMPLES_O0=ON ;;
  asan)
    # No -Werror here: instrumentation makes GCC's flow-based warnings
    # (-Wmaybe-uninitialized, ...) report false positives; build/tests gates warnings.
    cmake -S . -B build/asan "${common[@]}" "${sanitized[@]}" -DDEIS_WERROR=OFF -DDEIS_SANITIZE=address,undefined \
      -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF -DDEIS_FUZZ_REPLAY=OFF ;;
  tsan)
    cmake -S . -B build/tsan "${common[@]}" "${sanitized[@]}" -DDEIS_WERROR=OFF -DDEIS_SANITIZE=thread \
      -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF ;;
  *) echo "usage: $0 tests | asan | tsan" >&2; exit 2 ;;
esac
