#!/bin/bash
# Compares the built library's ABI with the stored baseline (abidw XML).
# Any difference fails: a deliberate change refreshes the baseline in the
# same commit (doc/abi.md):
#   abidw --drop-private-types --headers-dir include/htnn \
#       --out-file tests/abi/libhtnn.abi build/lib/libhtnn.so.0
# Usage: check-abi.sh LIBRARY BASELINE HEADERS_DIR
set -euo pipefail
lib=$1 baseline=$2 headers=$3
if ! abidiff --headers-dir2 "$headers" --drop-private-types "$baseline" "$lib" > /tmp/htnn-abidiff.$$ 2>&1; then
    cat /tmp/htnn-abidiff.$$
    rm -f /tmp/htnn-abidiff.$$
    echo "the ABI differs from tests/abi/libhtnn.abi (see doc/abi.md)"
    echo "0 passed, 1 failed"
    exit 1
fi
rm -f /tmp/htnn-abidiff.$$
echo "ABI matches the baseline"
