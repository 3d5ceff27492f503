#!/bin/bash
# htnn train --mpi under mpiexec with 2 ranks: each rank reads only its
# shard of the IDX training data (and the --val-split examples); one report
# and one model (rank 0's), a checkpoint per rank with the same contents,
# and the same test accuracy as the same training in one process.
# Usage: test_cli_mpi.sh MPIEXEC HTNN
set -euo pipefail
mpiexec=$1 htnn=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] &&
   [ -z "${HTNN_FASHION_MNIST_DIR:-}" ]; then
    echo "Fashion-MNIST not installed: skipped"
    exit 77
fi
args=(--fashion-mnist --limit 2000 --test-limit 2000 --epochs 2 --batch 50 --layers 64
      --val-split 200 --threads 1 --json)
"$mpiexec" -n 2 "$htnn" train "${args[@]}" --mpi --out "$dir/mpi.htnn" \
    --checkpoint "$dir/ck" > "$dir/mpi.json" 2> "$dir/mpi.err"
"$htnn" train "${args[@]}" --quiet --out "$dir/one.htnn" > "$dir/one.json"
# rank 0 reports its shard: the first half of the 1800 training examples
grep -q 'rank 0 holds examples \[0, 900)' "$dir/mpi.err"
test "$(grep -c '^train: 1800 examples' "$dir/mpi.err")" -eq 1
# the reducer it chose: both ranks run here, so shared memory takes effect
test "$(grep -c '^mpi: sums through shared memory' "$dir/mpi.err")" -eq 1
test "$(grep -c '^{"command":"train"' "$dir/mpi.json")" -eq 1
test -s "$dir/mpi.htnn"
test ! -e "$dir/mpi.htnn.rank1"
cmp "$dir/ck" "$dir/ck.rank1"
acc() { sed 's/.*"test_accuracy":\([0-9.]*\).*/\1/' "$1"; }
echo "test accuracy: 2 ranks $(acc "$dir/mpi.json"), 1 process $(acc "$dir/one.json")"
/usr/bin/python3 -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 0.002)" \
    "$(acc "$dir/mpi.json")" "$(acc "$dir/one.json")"
echo "1 passed"
