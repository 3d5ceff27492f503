#!/bin/bash
# Accuracy of the reference workload (BENCH.md) over seeds: soft hinge vs SSTE,
# constant vs cosine learning rate, 10 epochs each, 1 thread.  Prints one
# JSON line per run (bench/train_mlp's).  Usage: bench/accuracy.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
for sched in constant cosine; do
    for loss in soft-hinge sste; do
        for seed in 1 2 3; do
            "$build/bench/train_mlp" train --epochs 10 --threads 1 --seed "$seed" \
                --loss "$loss" --schedule "$sched"
        done
    done
done
