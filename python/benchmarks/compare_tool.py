#!/usr/bin/python3
"""Side-by-side wall time of `htnn train --fashion-mnist` and the same run
through the Python package (train_reference.py), alternating runs, medians.

    /usr/bin/python3 python/benchmarks/compare_tool.py --build build-py --epochs 10 --pairs 5

Both processes use the same libhtnn (BUILD/lib) and 1 BLAS thread.  Reports
whole-process wall time (start to exit: data loading, training, test
evaluation, saving) and the training time each one reports itself.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env):
    """Wall time, stdout, peak RSS (KiB) and CPU time (user + system) of one
    process."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stdout.close()
    if p.returncode != 0:
        raise SystemExit("%s failed with status %d" % (cmd[0], p.returncode))
    return wall, out, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    env = dict(os.environ, HTNN_LIBRARY=os.path.join(build, "lib", "libhtnn.so.0"),
               PYTHONPATH=os.path.dirname(HERE), OPENBLAS_NUM_THREADS="1")
    tmp = tempfile.mkdtemp()
    tool = [os.path.join(build, "tools", "htnn"), "train", "--fashion-mnist",
            "--epochs", str(a.epochs), "--threads", "1", "--json", "--quiet",
            "--out", os.path.join(tmp, "tool.htnn")]
    py = [sys.executable, os.path.join(HERE, "train_reference.py"), "--epochs",
          str(a.epochs), "--threads", "1", "--out", os.path.join(tmp, "py.htnn")]
    rows = {"tool": [], "python": []}
    for i in range(a.pairs):
        order = [("tool", tool), ("python", py)]
        if i % 2:
            order.reverse()
        for name, cmd in order:
            wall, out, rss, cpu = run(cmd, env)
            info = json.loads(out.strip().splitlines()[-1])
            rows[name].append((wall, info["seconds"], info["test_accuracy"], rss, cpu))
            print("%-6s run %d: wall %.2f s, cpu %.2f s, training %.2f s, test acc %.4f"
                  % (name, i + 1, wall, cpu, info["seconds"], info["test_accuracy"]),
                  flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v),
               statistics.median(r[4] for r in v)) for k, v in rows.items()}
    print("\n| | tool (`htnn train`) | Python (`htnn.Net.fit`) | Python / tool |")
    print("|---|---|---|---|")
    print("| wall time, whole process (median of %d) | %.2f s | %.2f s | %+.1f %% |"
          % (a.pairs, med["tool"][0], med["python"][0],
             100 * (med["python"][0] / med["tool"][0] - 1)))
    print("| training time, fit only (median of %d) | %.2f s | %.2f s | %+.1f %% |"
          % (a.pairs, med["tool"][1], med["python"][1],
             100 * (med["python"][1] / med["tool"][1] - 1)))
    print("| CPU time, whole process (median of %d) | %.2f s | %.2f s | %+.1f %% |"
          % (a.pairs, med["tool"][2], med["python"][2],
             100 * (med["python"][2] / med["tool"][2] - 1)))
    pair = statistics.median(p[0] / t[0] for t, p in zip(rows["tool"], rows["python"]))
    print("| wall time, median of the %d per-pair ratios | | | %+.1f %% |"
          % (a.pairs, 100 * (pair - 1)))
    print("| test accuracy | %.4f | %.4f | |" % (rows["tool"][0][2], rows["python"][0][2]))
    rss = {k: max(r[3] for r in v) for k, v in rows.items()}
    print("| peak RSS | %d MiB | %d MiB | |" % (rss["tool"] // 1024, rss["python"] // 1024))
    print()
    for name in ("tool", "python"):
        print(json.dumps({"name": "mlp-%s" % name, "threads": 1, "batch": 100,
                          "epochs": a.epochs,
                          "samples_per_sec": round(60000 * a.epochs / med[name][1]),
                          "wall_seconds": round(med[name][0], 3),
                          "accuracy": rows[name][0][2], "peak_rss_kib": rss[name],
                          "ratio_wall_vs_tool": round(med[name][0] / med["tool"][0], 4)}))


if __name__ == "__main__":
    main()
