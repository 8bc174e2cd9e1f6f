#!/usr/bin/env bash
# Install the Debian packages deis needs to build, test and benchmark.
#   bash scripts/deps.sh          the packages of run-tests.sh and run-benchmark.sh
#   bash scripts/deps.sh --fuzz   and clang 14 with libFuzzer (scripts/fuzz.sh, .ci/run):
#                                 on Debian 12 libFuzzer and the sanitizer runtimes are in
#                                 libclang-rt-14-dev, only recommended by clang-14
# Silent when everything is already installed.
set -euo pipefail

packages=(cmake g++ libeigen3-dev libboost-math-dev libboost-dev catch2
          libbenchmark-dev libcli11-dev nlohmann-json3-dev gnuplot-nox libtorch-dev
          libopenblas0)  # LibTorch does its matrix products with the reference BLAS otherwise
case "${1:-}" in
  "") ;;
  --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
  *) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  # dpkg -s also knows removed packages whose config files remain: check the status.
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "deps.sh: missing packages (${missing[*]}) and not root, no sudo; install them by hand." >&2
    exit 1
  fi
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
