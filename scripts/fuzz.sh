#!/usr/bin/env bash
# Fuzz the readers of outside data (tests/fuzz/): build the libFuzzer targets with clang++
# and -fsanitize=fuzzer,address,undefined in build/fuzz, then fuzz each one from a copy of
# its corpus (and regressions) in a temporary folder, so that the repository is not
# modified, with a fixed seed. A crash, a hang (-timeout), or an out-of-memory fails; the
# input that did it is kept and its path printed.
#   bash scripts/fuzz.sh                  build, then fuzz every target 20 s (what .ci/run does),
#                                         as many at once as there are cores
#   bash scripts/fuzz.sh --build          only build
#   bash scripts/fuzz.sh --run [SECONDS]  only fuzz, SECONDS per target (default 20; longer by hand)
# Prints libFuzzer's final line (runs, coverage, exec/s) for every target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=all
seconds=20
case "${1:-}" in
  "") ;;
  --build) mode=build ;;
  --run) mode=run; seconds=${2:-20} ;;
  *) echo "usage: $0 [--build | --run [SECONDS]]" >&2; exit 2 ;;
esac

build=build/fuzz
targets=(samples_csv mixture_csv mixture_json scheduler_config)
cxx=clang++-14

if [[ $mode != run ]]; then
  bash scripts/deps.sh --fuzz
  # -O1 with line tables: what libFuzzer's documentation suggests, and quick to compile
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1 -DNDEBUG" \
    -DDEIS_BUILD_TESTS=ON -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF -DDEIS_INSTALL=OFF \
    -DDEIS_FUZZ=ON -DDEIS_SANITIZE=
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
fi
[[ $mode == build ]] && exit 0

work=$(mktemp -d)
keep=0
trap '[[ $keep -eq 1 ]] || rm -rf "$work"' EXIT

# fuzz_one TARGET: fuzzes one target from a copy of its corpus; its exit code is libFuzzer's.
fuzz_one() {
  local t=$1 dict=()
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/"
  if [[ -d tests/fuzz/regressions/$t ]]; then cp tests/fuzz/regressions/"$t"/* "$work/$t/"; fi
  if [[ -f tests/fuzz/$t.dict ]]; then dict=("-dict=tests/fuzz/$t.dict"); fi
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb (the default 2048)
  # catches memory blow-ups; the run stops at the first crash
  nice -n 10 "$build/tests/fuzz/fuzz_$t" -seed=1 -max_total_time="$seconds" -timeout=10 \
    "${dict[@]}" -artifact_prefix="$work/$t-" "$work/$t" > "$build/fuzz_$t.log" 2>&1
}

# One target per core at a time (each libFuzzer process is single-threaded).
parallel=$(nproc)
failed=()
for (( i = 0; i < ${#targets[@]}; i += parallel )); do
  batch=("${targets[@]:i:parallel}")
  pids=()
  for t in "${batch[@]}"; do
    fuzz_one "$t" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    wait "${pids[$j]}" || failed+=("${batch[$j]}")
  done
done

: > "$build/fuzz-summary.txt"
for t in "${targets[@]}"; do
  line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$build/fuzz_$t.log" | tail -n 1 || true)
  printf 'fuzz_%-13s %s\n' "$t" "${line:-(no DONE line)}" | tee -a "$build/fuzz-summary.txt"
done
for t in "${failed[@]}"; do
  keep=1
  tail -n 40 "$build/fuzz_$t.log" >&2
  echo "fuzz.sh: fuzz_$t failed; the input is in $work (log: $build/fuzz_$t.log)" >&2
done
[[ ${#failed[@]} -eq 0 ]]
