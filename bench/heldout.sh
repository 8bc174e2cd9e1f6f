#!/usr/bin/env bash
# The recommended configuration on mixtures it was not tuned on (bench/mixtures/*.json), under
# the VP schedule (case ring2d) and the VE schedule (case ve): for each, deis-bench's row
# "ratio recommended / best" (recommended against the best solver x grid of the sweep at each
# NFE) and "ratio calibrated / best" (optimize_grid from the recommended grid, 256 calibration
# samples of their own seed). Results in bench-out/heldout/<case>_<mixture>/. Arguments go to every deis-bench run
# (e.g. --nfe 5,10,20).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release \
  -DDEIS_BUILD_TESTS=OFF -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target deis-bench >/dev/null

mkdir -p bench-out/heldout
nfe=5,6,8,10,12,14,15,16,18,20,25,30,40,50
echo "NFE budgets of the ratio columns: $nfe"
for c in ring2d ve; do
  for m in bench/mixtures/*.json; do
    name=$(basename "$m" .json)
    out=bench-out/heldout/${c}_${name}
    build/release/bench/deis-bench --case "$c" --mixture "$m" --nfe "$nfe" \
      --solvers 'ddim*,tab*,rhoab*,ipndm*,recommended*' --out-dir "$out" "$@" >"$out.log" 2>&1 ||
      { echo "deis-bench failed on $c $name: see $out.log" >&2; exit 1; }
    for row in recommended calibrated; do
      printf '%-7s %-9s %s\n' "$c" "$name" "$(grep "^| ratio $row / best |" "$out/table.md")"
    done
  done
done
