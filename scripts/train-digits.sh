#!/usr/bin/env bash
# Train the network of tests/data/trained/digits/ (README.md there) and write its
# digits_eps.pt: fetch the UCI handwritten digits from Debian 12's python3-sklearn package
# (apt-get download, nothing installed) into a temporary folder removed on exit, check the
# CSV's SHA-256, build deis-train-digits alone in build/ (LibTorch needed) and run it.
#   bash scripts/train-digits.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=1.2.1+dfsg-1
member=./usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
sha256=6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8  # the decompressed CSV
out=tests/data/trained/digits/digits_eps.pt

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "python3-sklearn=$version")
dpkg-deb --fsys-tarfile "$tmp"/python3-sklearn_*.deb | tar -xO "$member" | gzip -dc > "$tmp/digits.csv"
echo "$sha256  $tmp/digits.csv" | sha256sum --check --quiet

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDEIS_BUILD_EXAMPLES=ON > "$tmp/configure.log" ||
  { cat "$tmp/configure.log" >&2; exit 1; }
cmake --build build --target deis-train-digits
# one thread: LibTorch's own (the program sets it) and OpenBLAS's, whose idle threads
# otherwise spin through the small matrix products
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  build/examples/torch/deis-train-digits --data "$tmp/digits.csv" --out "$out"
