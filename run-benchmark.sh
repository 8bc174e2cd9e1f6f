#!/usr/bin/env bash
# Build the benchmark in Release (build/release) and run it; arguments go to deis-bench.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release \
  -DDEIS_BUILD_TESTS=OFF -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=ON
cmake --build build/release -j "$(nproc)" --target deis-bench
exec build/release/bench/deis-bench "$@"
