#!/bin/bash
# Runs every fuzz target for SECONDS (default 30) on a copy of its seed corpus
# and prints the executions run.  Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$1 secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
for target in model data csv packed arch; do
    work=$(mktemp -d)
    cp "$here"/corpus/$target/* "$work"/
    if ! "$build/tests/fuzz/fuzz_$target" -max_total_time="$secs" -max_len=65536 \
            -print_final_stats=1 "$work" > "$work.log" 2>&1; then
        tail -40 "$work.log"
        echo "fuzz_$target found a crash"
        exit 1
    fi
    echo "fuzz_$target: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log")"
    rm -rf "$work" "$work.log"
done
