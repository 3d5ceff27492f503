#!/usr/bin/python3
"""Side-by-side comparison of libhtnn with the PyTorch peer (BENCH.md).

Runs, alternating A B A B ... for --reps rounds on the same machine:
  htnn-mlp      build/bench/train_mlp train   (per --threads value)
  pytorch-mlp   bench/compare_pytorch.py       (torch 1 thread, OpenBLAS as
                                                the system sets it: its best)
  sgemm         build/bench/train_mlp sgemm   (per --threads value): the same
                sgemm calls alone, the roofline of this workload on this BLAS
and prints every run's JSON line, then one summary JSON line with the medians
and the ratios the bars are stated in:
  vs_peer      = median htnn samples/s (best thread setting) / median peer
  of_roofline  = median htnn samples/s / median sgemm samples/s, same threads

  /usr/bin/python3 bench/compare.py --epochs 2 --reps 3 --threads 1,2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return [json.loads(l) for l in lines]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    tm = os.path.join(a.build, "bench", "train_mlp")
    configs = []
    for t in threads:
        configs.append((f"htnn-t{t}", [tm, "train", "--epochs", str(a.epochs),
                                       "--threads", str(t), "--seed", str(a.seed)]))
    if not a.no_peer:
        configs.append(("pytorch", [sys.executable, os.path.join(HERE, "compare_pytorch.py"),
                                    "--epochs", str(a.epochs), "--threads", "1",
                                    "--seed", str(a.seed)]))
    for t in threads:
        configs.append((f"sgemm-t{t}", [tm, "sgemm", "--threads", str(t), "--batches", "1000"]))
    results = {name: [] for name, _ in configs}
    for rep in range(a.reps):
        for name, cmd in configs:
            for rec in run(cmd):
                rec["rep"] = rep
                print(json.dumps(rec), flush=True)
                if "samples_per_sec" in rec:
                    results[name].append(rec)
    med = {k: statistics.median(r["samples_per_sec"] for r in v) for k, v in results.items() if v}
    summary = {"name": "summary", "epochs": a.epochs, "reps": a.reps, "median_samples_per_sec": med}
    htnn = {t: med.get(f"htnn-t{t}") for t in threads}
    best_t = max((t for t in threads if htnn[t]), key=lambda t: htnn[t])
    if "pytorch" in med:
        summary["vs_peer"] = round(htnn[best_t] / med["pytorch"], 3)
        summary["best_htnn_threads"] = best_t
    summary["of_roofline"] = {str(t): round(htnn[t] / med[f"sgemm-t{t}"], 3)
                              for t in threads if htnn[t] and med.get(f"sgemm-t{t}")}
    acc = {k: statistics.median(r["test_accuracy"] for r in v)
           for k, v in results.items() if v and "test_accuracy" in v[0]}
    summary["median_test_accuracy"] = acc
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
