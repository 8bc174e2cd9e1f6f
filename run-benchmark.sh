#!/usr/bin/env bash
# Build the benchmark and run it; arguments go to deis-bench. It is built in the tests' build
# (build/tests, scripts/configure.sh: -O2, -Werror), which bash run-tests.sh then reuses: only
# the deis-bench target is built here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

bash scripts/deps.sh
bash scripts/configure.sh tests > /dev/null
cmake --build build/tests -j "$(nproc)" --target deis-bench
exec build/tests/bench/deis-bench "$@"
