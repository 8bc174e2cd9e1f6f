#!/usr/bin/env bash
# Fuzz the readers of outside data (tests/fuzz/): build the libFuzzer targets with clang++
# and -fsanitize=fuzzer,address,undefined in build/fuzz, then fuzz each one from a copy of
# its corpus (and regressions) in a temporary folder, so that the repository is not
# modified, with a fixed seed. A crash, a hang (-timeout), or an out-of-memory fails; the
# input that did it is kept and its path printed.
#   bash scripts/fuzz.sh                  build, then fuzz every target 60 s (what .ci/run does)
#   bash scripts/fuzz.sh --build          only build
#   bash scripts/fuzz.sh --run [SECONDS]  only fuzz, SECONDS per target (default 60)
# Prints libFuzzer's final line (runs, coverage, exec/s) for every target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=all
seconds=60
case "${1:-}" in
  "") ;;
  --build) mode=build ;;
  --run) mode=run; seconds=${2:-60} ;;
  *) echo "usage: $0 [--build | --run [SECONDS]]" >&2; exit 2 ;;
esac

build=build/fuzz
targets=(samples_csv mixture_csv mixture_json scheduler_config)
cxx=clang++-14

if [[ $mode != run ]]; then
  bash scripts/deps.sh --fuzz
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDEIS_BUILD_TESTS=ON -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF -DDEIS_INSTALL=OFF \
    -DDEIS_FUZZ=ON -DDEIS_SANITIZE=
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
fi
[[ $mode == build ]] && exit 0

work=$(mktemp -d)
keep=0
trap '[[ $keep -eq 1 ]] || rm -rf "$work"' EXIT
: > "$build/fuzz-summary.txt"
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/"
  if [[ -d tests/fuzz/regressions/$t ]]; then cp tests/fuzz/regressions/"$t"/* "$work/$t/"; fi
  dict=()
  if [[ -f tests/fuzz/$t.dict ]]; then dict=("-dict=tests/fuzz/$t.dict"); fi
  log="$build/fuzz_$t.log"
  # -timeout: an input that takes over 10 s is a hang; -rss_limit_mb (the default 2048)
  # catches memory blow-ups; the run stops at the first crash
  if ! nice -n 10 "$build/tests/fuzz/fuzz_$t" -seed=1 -max_total_time="$seconds" -timeout=10 \
       "${dict[@]}" -artifact_prefix="$work/$t-" "$work/$t" > "$log" 2>&1; then
    keep=1
    tail -n 40 "$log" >&2
    echo "fuzz.sh: fuzz_$t failed; the input is in $work (log: $log)" >&2
    exit 1
  fi
  line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  printf 'fuzz_%-13s %s\n' "$t" "$line" | tee -a "$build/fuzz-summary.txt"
done
