#!/usr/bin/python3
"""The `htnn train --fashion-mnist` run, through the Python package: the same
data loader, net (784-512-512-10, sign, soft hinge, seed 1), Adam 1e-3,
batch 100, 1 BLAS thread, test evaluation and save.  Prints one JSON line
with the training time and the test accuracy.

    PYTHONPATH=python python3 python/benchmarks/train_reference.py --epochs 10 --out m.htnn
"""
import argparse
import json
import sys
import time

import htnn


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="reference.htnn")
    ap.add_argument("--progress", action="store_true", help="draw a progress bar")
    a = ap.parse_args()
    train = htnn.load_fashion_mnist("train")
    test = htnn.load_fashion_mnist("test")
    with htnn.Net("784-512-512-10", seed=1, threads=a.threads) as net:
        start = time.perf_counter()
        res = net.fit(train.x, train.y, epochs=a.epochs, batch_size=100,
                      callback=htnn.ProgressBar() if a.progress else None)
        seconds = time.perf_counter() - start
        ev = net.evaluate(test.x, test.y)
        net.save(a.out)
    json.dump({"seconds": seconds, "epochs_run": res.epochs_run,
               "train_accuracy": res.accuracy, "test_accuracy": ev.accuracy,
               "test_loss": ev.loss}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
