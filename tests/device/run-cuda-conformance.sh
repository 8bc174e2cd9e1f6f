#!/usr/bin/env bash
# Runs the torch backend's tests (tests/torch/test_torch.cpp: the conformance suite and the
# rest) on CUDA tensors: the solvers' state then lives on the GPU and every update is a torch
# operation on the device. Needs a GPU and a CUDA build of LibTorch; without either it prints
# "skipped: ..." and exits 0.
#   bash tests/device/run-cuda-conformance.sh            build (build/device) and run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "skipped: no GPU (nvidia-smi finds none)"
  exit 0
fi

build=build/device
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEIS_BUILD_TESTS=ON \
  -DDEIS_BUILD_EXAMPLES=OFF -DDEIS_BUILD_BENCH=OFF > "$build.configure.log" 2>&1 || {
  cat "$build.configure.log"; exit 1; }
if ! grep -q "LibTorch found" "$build.configure.log"; then
  echo "skipped: LibTorch not found"
  exit 0
fi
cmake --build "$build" -j "$(nproc)" --target deis_torch_tests

# A CPU-only LibTorch (Debian's libtorch-dev is one) cannot make CUDA tensors.
if ! DEIS_TEST_DEVICE=cuda "$build/tests/deis_torch_tests" "torch: the device under test is available" >/dev/null 2>&1; then
  echo "skipped: this LibTorch has no CUDA support"
  exit 0
fi
DEIS_TEST_DEVICE=cuda "$build/tests/deis_torch_tests"
