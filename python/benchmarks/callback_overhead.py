#!/usr/bin/python3
"""Cost per batch of the binding's progress trampoline (the only Python code
that runs inside Net.fit): htnn_net_fit on a tiny net (batch 1, so the C work
per batch is minimal) called through ctypes with and without the callback,
alternating, medians.

    PYTHONPATH=python /usr/bin/python3 python/benchmarks/callback_overhead.py
"""
import ctypes
import statistics
import time

import numpy as np

import htnn
from htnn import _lib
from htnn.net import _FitState


def run(net, opt, x, y, with_callback, user_callback=None):
    fo = _lib.new(_lib.FitOptions, epochs=1, batch_size=1, shuffle=0)
    state = _FitState(user_callback)
    if with_callback:
        fo.progress = state.c_fn
    res = _lib.new(_lib.FitResult)
    start = time.perf_counter()
    st = _lib.lib.htnn_net_fit(net._h, opt._h, None, x.ctypes.data, y.ctypes.data, len(x),
                               ctypes.byref(fo), ctypes.byref(res))
    assert st == 0
    return time.perf_counter() - start


def main():
    n = 20000
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.integers(0, 2, n).astype(np.int32)
    with htnn.Net(4, [4, 2], threads=1) as net, htnn.Optimizer() as opt:
        times = {"none": [], "trampoline": [], "trampoline+user": []}
        for _ in range(7):
            times["none"].append(run(net, opt, x, y, False))
            times["trampoline"].append(run(net, opt, x, y, True))
            times["trampoline+user"].append(run(net, opt, x, y, True, lambda p: None))
        med = {k: statistics.median(v) / n * 1e6 for k, v in times.items()}
    print("per batch (us, median of 7 x %d batches): C only %.2f, with the binding's "
          "trampoline %.2f (+%.2f), with a user callback too %.2f (+%.2f)"
          % (n, med["none"], med["trampoline"], med["trampoline"] - med["none"],
             med["trampoline+user"], med["trampoline+user"] - med["none"]))


if __name__ == "__main__":
    main()
