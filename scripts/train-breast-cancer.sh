#!/usr/bin/env bash
# Train the network of tests/data/trained/breast_cancer/ (README.md there) and write its
# cancer_eps.pt: scripts/train-digits.sh with the data set breast-cancer (the Wisconsin
# Diagnostic Breast Cancer data from Debian 12's python3-sklearn, SHA-256 checked).
#   bash scripts/train-breast-cancer.sh
exec bash "$(dirname "${BASH_SOURCE[0]}")/train-digits.sh" breast-cancer
