#!/bin/bash
# Data-parallel scaling of the reference MLP (doc/distributed.md):
#   0. the speed of each core alone (1 rank pinned to core 0, then core 1):
#      2 ranks run at the pace of the slower one;
#   1. 1 rank x 1 thread (the plain library) against 2 ranks x 1 thread
#      (libhtnn-mpi's defaults), alternating, one full Fashion-MNIST epoch
#      each, medians; also 2 ranks with the sharded optimizer step, with the
#      sharded step and shared-memory sums (what htnn train --mpi uses), and
#      once with non-blocking sums;
#   2. 4 and 8 ranks, oversubscribed on this machine (shows contention,
#      not a cluster);
#   3. MPI_Allreduce time per message size (2 ranks) and the local step time
#      per rows-per-rank, then a cost model of P ranks on a cluster.
# Every figure is printed with the machine load (uptime) next to it.
# Usage: bench/mpi_scaling.sh [BUILD_DIR] [REPEATS] [EPOCHS]
#   (default build-mpi, 5, 1; EPOCHS 10 is the reference MLP's whole run of
#   BENCH.md, for part 1 only)
set -euo pipefail
build=${1:-build-mpi}
repeats=${2:-5}
epochs=${3:-1}
bin="$build/bench/train_mpi"
[ -x "$bin" ] || { echo "$bin not built (configure with -Dmpi=enabled)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() {  # ranks, then train_mpi arguments; appends the JSON line and the load
    local ranks=$1
    shift
    local load
    load=$(uptime | sed 's/.*load average: //')
    # more ranks than cores: let a waiting rank give its core away
    local yield=0
    [ "$ranks" -gt "$(nproc)" ] && yield=1
    OMPI_MCA_mpi_yield_when_idle=$yield mpiexec -n "$ranks" "$bin" "$@" |
        sed "s/}\$/,\"load\":\"$load\"}/" | tee -a "$out"
}

echo "== each core alone (1 rank, full epoch)"
for core in 0 1; do
    load=$(uptime | sed 's/.*load average: //')
    taskset -c "$core" "$bin" train --epochs 1 --threads 1 |
        sed "s/}\$/,\"core\":$core,\"load\":\"$load\"}/" | tee -a "$out"
done

echo "== 1 rank vs 2 ranks, 1 thread each, $epochs full epoch(s), $repeats alternations"
for i in $(seq "$repeats"); do
    run 1 train --epochs "$epochs" --threads 1
    run 2 train --epochs "$epochs" --threads 1
    run 2 train --epochs "$epochs" --threads 1 --sharded 1
    run 2 train --epochs "$epochs" --threads 1 --sharded 1 --shm 1
done
run 2 train --epochs "$epochs" --threads 1 --blocking 0

echo "== oversubscribed: 4 and 8 ranks on $(nproc) cores (20000 samples)"
run 4 train --epochs 1 --threads 1 --limit 20000
run 8 train --epochs 1 --threads 1 --limit 20000

echo "== MPI_Allreduce and the shared-memory reduce-scatter + all-gather, 2 ranks"
run 2 allreduce --reps 30 --blocking 1
run 2 allreduce --reps 30 --blocking 0
run 2 allreduce --reps 30 --shm 1

echo "== local step time per rows per rank (1 rank, 20000 samples)"
for b in 100 50 25 13 7; do
    run 1 train --epochs 1 --threads 1 --limit 20000 --batch "$b"
done

/usr/bin/python3 - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(sel):
    v = [r["samples_per_sec"] for r in rows if sel(r)]
    return statistics.median(v) if v else float("nan"), len(v)
full = lambda r: r["name"] == "htnn-mlp-mpi" and r["train_samples"] == 60000
for core in (0, 1):
    c = [r["samples_per_sec"] for r in rows if full(r) and r.get("core") == core]
    print(f"core {core} alone: {c[0]:.0f} samples/s" if c else f"core {core}: not measured")
one, n1 = med(lambda r: full(r) and r["ranks"] == 1 and "core" not in r)
default = lambda r: (full(r) and r["ranks"] == 2 and r["sharded"] == 0 and r["overlap"] == 0
                     and not r.get("shm"))
shm = lambda r: full(r) and r["ranks"] == 2 and r["sharded"] == 1 and r.get("shm")
two, n2 = med(default)
twos, n3 = med(lambda r: full(r) and r["ranks"] == 2 and r["sharded"] == 1 and not r.get("shm"))
twom, n5 = med(shm)
twob, n4 = med(lambda r: full(r) and r["ranks"] == 2 and r["overlap"] == 1)
share = statistics.median(r["comm_share_max"] for r in rows if default(r))
share_m = statistics.median(r["comm_share_max"] for r in rows if shm(r))
print(f"\n1 rank: {one:.0f} samples/s (median of {n1}); 2 ranks: {two:.0f} (median of {n2}),"
      f" {two / one:.2f}x; sharded step: {twos:.0f} ({twos / one:.2f}x, median of {n3});"
      f" sharded step + shared memory: {twom:.0f} ({twom / one:.2f}x, median of {n5});"
      f" non-blocking sums: {twob:.0f} ({twob / one:.2f}x, {n4} run);"
      f" communication share of the 2-rank step (max over ranks, median): {share:.1%}"
      f" (shared memory: {share_m:.1%})")
ones = [r["samples_per_sec"] for r in rows if full(r) and r["ranks"] == 1 and "core" not in r]
pairs = [r["samples_per_sec"] for r in rows if shm(r)]
ratios = [p / o for o, p in zip(ones, pairs)]
if ratios:
    print("sharded step + shared memory over 1 rank, round by round: " +
          ", ".join(f"{x:.2f}" for x in ratios) + f" (median {statistics.median(ratios):.2f}x)")

# Cost model: step(P) = local step of B/P rows (measured above, Adam included)
# + the sharded step's collectives, as rings: per layer the weights are
# all-gathered, and the weight gradient is reduce-scattered whole or, where
# fewer values (lib/factors.c), its factors (P ceil(B/P) rows of X and dZ)
# are all-gathered; each collective has P-1 latencies and moves (P-1)/P of
# its values through each link.
layers = [(784, 512), (512, 512), (512, 10)]
params = sum(i * o + o for i, o in layers)
nbytes = 4 * params
def comm(P, B, a, bw):
    if P == 1:
        return 0.0
    S = -(-B // P)
    values = collectives = 0
    for i, o in layers:
        factors = P * S * (i + o)
        whole = factors >= i * o
        values += i * o + (i * o if whole else factors)
        collectives += 2 if whole else 3
    return collectives * (P - 1) * a + (P - 1) / P * 4 * values / bw
local = {r["batch"]: r["batch"] / r["samples_per_sec"] for r in rows
         if r["name"] == "htnn-mlp-mpi" and r["ranks"] == 1 and r["train_samples"] == 20000}
ar = sorted((r["bytes"], r["median_seconds"]) for r in rows
            if r["name"] == "mpi-allreduce" and r["blocking"] == 1)
for r in rows:
    if r["name"] == "shm-scatter-gather":
        print(f"shared-memory reduce-scatter + all-gather of {r['bytes']} bytes: "
              f"{r['median_seconds'] * 1e6:.0f} us")
# least-squares alpha + bytes / bw over the 2-rank measurements >= 64 KiB
pts = [(b, t) for b, t in ar if b >= 65536]
mb = statistics.mean(b for b, _ in pts); mt = statistics.mean(t for _, t in pts)
slope = sum((b - mb) * (t - mt) for b, t in pts) / sum((b - mb) ** 2 for b, _ in pts)
alpha = max(mt - slope * mb, 1e-6)
print(f"allreduce fit (2 ranks, shared memory): {alpha * 1e6:.1f} us + bytes / "
      f"{1 / slope / 1e9:.2f} GB/s; parameters {params} = {nbytes / 1e6:.2f} MB per batch")
def interp(rows_per_rank):
    ks = sorted(local)
    lo = max([k for k in ks if k <= rows_per_rank] or [ks[0]])
    hi = min([k for k in ks if k >= rows_per_rank] or [ks[-1]])
    if lo == hi:
        return local[lo] * rows_per_rank / lo
    f = (rows_per_rank - lo) / (hi - lo)
    return local[lo] + f * (local[hi] - local[lo])
links = [("shared memory (fit above)", alpha / 2, 1 / slope),
         ("100 Gb/s InfiniBand", 2e-6, 12e9), ("10 Gb/s Ethernet", 20e-6, 1.2e9)]
B = 100
print(f"\nmodelled samples/s, global batch {B} (and 1000), 1 thread per rank:")
print("ranks | " + " | ".join(name for name, _, _ in links))
for P in (1, 2, 4, 8, 16):
    cells = []
    for _, a, bw in links:
        s100 = B / (interp(B / P) + comm(P, B, a, bw))
        c1000 = comm(P, 1000, a, bw)
        s1000 = 1000 / (interp(1000 / P) * 1 + c1000) if 1000 / P <= 100 else \
            1000 / (local[100] * (1000 / P) / 100 + c1000)
        cells.append(f"{s100:8.0f} ({s1000:8.0f})")
    print(f"{P:5d} | " + " | ".join(cells))
EOF
