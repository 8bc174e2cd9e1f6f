#!/usr/bin/env bash
# Train a network of tests/data/trained/ and write its TorchScript file: the digits network
# (digits/digits_eps.pt, the default) or, with the argument breast-cancer, the breast cancer
# network (breast_cancer/cancer_eps.pt); README.md in each folder. Fetches the data from
# Debian 12's python3-sklearn package (apt-get download, nothing installed) into a temporary
# folder removed on exit, checks the CSV's SHA-256, builds deis-train-digits alone in build/
# (LibTorch needed) and runs it.
#   bash scripts/train-digits.sh [digits | breast-cancer]
#   bash scripts/train-breast-cancer.sh      (the same as the argument breast-cancer)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=1.2.1+dfsg-1
folder=./usr/lib/python3/dist-packages/sklearn/datasets/data
dataset=${1:-digits}
case "$dataset" in
  digits)
    member=$folder/digits.csv.gz
    decompress=(gzip -dc)
    sha256=6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8  # the decompressed CSV
    out=tests/data/trained/digits/digits_eps.pt ;;
  breast-cancer)
    member=$folder/breast_cancer.csv
    decompress=(cat)
    sha256=fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed
    out=tests/data/trained/breast_cancer/cancer_eps.pt ;;
  *) echo "usage: $0 [digits | breast-cancer]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "python3-sklearn=$version")
dpkg-deb --fsys-tarfile "$tmp"/python3-sklearn_*.deb | tar -xO "$member" | "${decompress[@]}" > "$tmp/data.csv"
echo "$sha256  $tmp/data.csv" | sha256sum --check --quiet

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDEIS_BUILD_EXAMPLES=ON > "$tmp/configure.log" ||
  { cat "$tmp/configure.log" >&2; exit 1; }
cmake --build build --target deis-train-digits
# one thread: LibTorch's own (the program sets it) and OpenBLAS's, whose idle threads
# otherwise spin through the small matrix products
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  build/examples/torch/deis-train-digits --dataset "$dataset" --data "$tmp/data.csv" --out "$out"
