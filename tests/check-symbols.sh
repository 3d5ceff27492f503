#!/bin/bash
# The library's exported symbols must be exactly the global names of the
# version script (lib/libhtnn.map).  Usage: check-symbols.sh LIB MAP
set -euo pipefail
lib=$1 map=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sed 's/@.*//' |
           grep -v '^HTNN_' | sort -u)
listed=$(sed -n '/global:/,/local:/p' "$map" | grep -o 'htnn_[a-z0-9_]*' | sort -u)
if [ "$exported" != "$listed" ]; then
    echo "exported symbols differ from $map:"
    diff <(echo "$listed") <(echo "$exported") || true
    echo "0 passed, 1 failed"
    exit 1
fi
echo "$(echo "$listed" | wc -l) symbols match the version script"
