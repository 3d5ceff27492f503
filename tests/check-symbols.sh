#!/bin/bash
# The library's exported symbols must be exactly the global names of the
# version script (lib/libhtnn.map), and its absolute symbols exactly the
# script's version nodes (HTNN_0.1 ...: GNU ld exports one per node, with
# no code or data behind it).  Usage: check-symbols.sh LIB MAP
set -euo pipefail
lib=$1 map=$2
symbols=$(nm -D --defined-only "$lib")
exported=$(echo "$symbols" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u)
listed=$(sed -n '/global:/,/local:/p' "$map" | grep -o 'htnn_[a-z0-9_]*' | sort -u)
absolute=$(echo "$symbols" | awk '$2 == "A" {print $3}' | sort -u)
nodes=$(grep -o '^[A-Za-z_][A-Za-z0-9_.]* *{' "$map" | sed 's/ *{$//' | sort -u)
status=0
if [ "$exported" != "$listed" ]; then
    echo "exported symbols differ from $map:"
    diff <(echo "$listed") <(echo "$exported") || true
    status=1
fi
if [ "$absolute" != "$nodes" ]; then
    echo "absolute symbols differ from the version nodes of $map:"
    diff <(echo "$nodes") <(echo "$absolute") || true
    status=1
fi
if [ $status -ne 0 ]; then
    echo "0 passed, 1 failed"
    exit 1
fi
echo "$(echo "$listed" | wc -l) symbols and $(echo "$nodes" | wc -l) version nodes match the version script"
