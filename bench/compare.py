#!/usr/bin/python3
"""Side-by-side comparison of libhtnn with the PyTorch peer (BENCH.md).

Runs, alternating A B A B ... for --reps rounds on the same machine:
  htnn-mlp      build/bench/train_mlp train   (per --threads value)
  pytorch-*     bench/compare_pytorch.py at every thread setting of
                PEER_SETTINGS (torch threads x OpenBLAS threads); vs_peer
                uses the best of them
  sgemm         build/bench/train_mlp sgemm   (per --threads value): the same
                sgemm calls alone, the roofline of this workload on this BLAS
and prints every run's JSON line, then one summary JSON line with the medians
and the ratios the bars are stated in:
  vs_peer      = median htnn samples/s (best thread setting) / median peer
  of_roofline  = median htnn samples/s / median sgemm samples/s, same threads

  /usr/bin/python3 bench/compare.py --epochs 2 --reps 3 --threads 1,2

--net convnet compares the paper's 4-layer convnet instead (issue 4):
  htnn-t<n>     build/tools/htnn train --arch CONVNET (per --threads value)
  pytorch-*     the peer's convnet at every thread setting of PEER_SETTINGS
                (vs_peer uses the best of them); no sgemm roofline
  /usr/bin/python3 bench/compare.py --net convnet --limit 10000 --epochs 1 --reps 3

--net binary-mlp compares the reference MLP with binary weights in every
layer (--binary-weights scaled, the default, or sign; doc/binary.md):
  htnn-t<n>     build/tools/htnn train --layers 512,512 --binary-weights MODE
                (per --threads value)
  pytorch-*     compare_pytorch.py --binary-weights MODE at every thread
                setting of PEER_SETTINGS, as for --net mlp; no roofline
  /usr/bin/python3 bench/compare.py --net binary-mlp --epochs 2 --reps 3
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return [json.loads(l) for l in lines]


CONVNET = "conv5x5:32,pool2,{bn}sign,conv5x5:64,pool2,{bn}sign,dense:1024,{bn}sign,dense:10"
# (torch threads, OpenBLAS threads): torch's own pool and the BLAS pool are
# separate in Debian's build (compare_pytorch.py), so each pairing is a setting
PEER_SETTINGS = [("1", "auto"), ("1", "1"), ("2", "2")]


def convnet_configs(a, threads):
    arch = CONVNET.format(bn="bn," if a.bn else "")
    tool = os.path.join(a.build, "tools", "htnn")
    common = ["--epochs", str(a.epochs), "--seed", str(a.seed)]
    limit = ["--limit", str(a.limit)] if a.limit else []
    configs = []
    for t in threads:
        configs.append((f"htnn-t{t}", [tool, "train", "--fashion-mnist", "--arch", arch,
                                       "--threads", str(t), "--json", "--quiet",
                                       "--out", os.path.join(tempfile.gettempdir(),
                                                             "htnn-compare.htnn")]
                          + common + limit))
    if not a.no_peer:
        for tt, bt in PEER_SETTINGS:
            configs.append((f"pytorch-t{tt}-blas{bt}",
                            [sys.executable, os.path.join(HERE, "compare_pytorch.py"),
                             "--net", "convnet", "--threads", tt, "--blas-threads", bt]
                            + (["--bn"] if a.bn else []) + common + limit))
    return configs


def binary_mlp_configs(a, threads):
    tool = os.path.join(a.build, "tools", "htnn")
    common = ["--epochs", str(a.epochs), "--seed", str(a.seed)]
    limit = ["--limit", str(a.limit)] if a.limit else []
    configs = [(f"htnn-t{t}", [tool, "train", "--fashion-mnist", "--layers", "512,512",
                               "--binary-weights", a.binary_weights, "--threads", str(t),
                               "--json", "--quiet", "--out",
                               os.path.join(tempfile.gettempdir(), "htnn-compare.htnn")]
                + common + limit) for t in threads]
    if not a.no_peer:
        for tt, bt in PEER_SETTINGS:
            configs.append((f"pytorch-t{tt}-blas{bt}",
                            [sys.executable, os.path.join(HERE, "compare_pytorch.py"),
                             "--binary-weights", a.binary_weights, "--threads", tt,
                             "--blas-threads", bt] + common + limit))
    return configs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--net", choices=("mlp", "convnet", "binary-mlp"), default="mlp")
    ap.add_argument("--bn", action="store_true", help="convnet: with batch norm")
    ap.add_argument("--binary-weights", choices=("scaled", "sign"), default="scaled",
                    help="binary-mlp: the binary weights of every layer")
    ap.add_argument("--limit", type=int, default=0,
                    help="convnet, binary-mlp: train on the first N images (0: all)")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    if a.net == "convnet":
        return run_rounds(a, threads, convnet_configs(a, threads))
    if a.net == "binary-mlp":
        return run_rounds(a, threads, binary_mlp_configs(a, threads))
    tm = os.path.join(a.build, "bench", "train_mlp")
    configs = []
    for t in threads:
        configs.append((f"htnn-t{t}", [tm, "train", "--epochs", str(a.epochs),
                                       "--threads", str(t), "--seed", str(a.seed)]))
    if not a.no_peer:
        for tt, bt in PEER_SETTINGS:
            configs.append((f"pytorch-t{tt}-blas{bt}",
                            [sys.executable, os.path.join(HERE, "compare_pytorch.py"),
                             "--epochs", str(a.epochs), "--threads", tt, "--blas-threads", bt,
                             "--seed", str(a.seed)]))
    for t in threads:
        configs.append((f"sgemm-t{t}", [tm, "sgemm", "--threads", str(t), "--batches", "1000"]))
    return run_rounds(a, threads, configs)


def run_rounds(a, threads, configs):
    results = {name: [] for name, _ in configs}
    for rep in range(a.reps):
        for name, cmd in configs:
            for rec in run(cmd):
                rec["rep"] = rep
                rec["config"] = name  # the htnn tool's lines carry no name
                print(json.dumps(rec), flush=True)
                if "samples_per_sec" in rec:
                    results[name].append(rec)
    med = {k: statistics.median(r["samples_per_sec"] for r in v) for k, v in results.items() if v}
    summary = {"name": "summary", "epochs": a.epochs, "reps": a.reps, "median_samples_per_sec": med}
    htnn = {t: med.get(f"htnn-t{t}") for t in threads}
    best_t = max((t for t in threads if htnn[t]), key=lambda t: htnn[t])
    peers = {k: v for k, v in med.items() if k.startswith("pytorch")}
    if peers:
        best_peer = max(peers, key=peers.get)
        summary["vs_peer"] = round(htnn[best_t] / peers[best_peer], 3)
        summary["best_htnn_threads"] = best_t
        summary["best_peer_setting"] = best_peer
    summary["of_roofline"] = {str(t): round(htnn[t] / med[f"sgemm-t{t}"], 3)
                              for t in threads if htnn[t] and med.get(f"sgemm-t{t}")}
    acc = {k: statistics.median(r["test_accuracy"] for r in v)
           for k, v in results.items() if v and "test_accuracy" in v[0]}
    summary["median_test_accuracy"] = acc
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
