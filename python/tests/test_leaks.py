"""No leaks: 1000 create/train/free cycles keep the resident set flat."""
import gc

import numpy as np

import htnn


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cycle(x, y, i):
    with htnn.Net(8, [16, 3], seed=i) as net, htnn.Optimizer() as opt, \
            htnn.Heuristic.loss() as h:
        net.train_batch(x, y, optimizer=opt, heuristic=h)
        net.predict(x)
        back = htnn.Net.from_bytes(net.to_bytes())
        back.close()
        net.targets[0]
    ph = htnn.Heuristic.from_function(lambda v, t, w: None)
    n2 = htnn.Net(8, [4, 3])
    n2.train_batch(x, y, heuristic=ph)
    del n2, ph  # freed by the garbage collector / __del__ instead of close()
    with htnn.Net(8, "conv1x1:2,pool2,bn,sign,dense:3", input_shape=(2, 2, 2),
                  seed=i) as conv:  # conv, pool and batch-norm layers and their scratch
        conv.train_batch(x, y)
        conv.predict(x)
        conv.clone().close()
        htnn.Net.from_bytes(conv.to_bytes()).close()
    ds = htnn.Dataset(x, y)
    ds.x.sum()
    del ds


def test_create_free_cycles_keep_rss_flat():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8)).astype(np.float32)
    y = rng.integers(0, 3, 32).astype(np.int32)
    for i in range(200):  # warm up allocator pools and caches
        cycle(x, y, i)
    gc.collect()
    before = rss_kib()
    for i in range(1000):
        cycle(x, y, i)
    gc.collect()
    after = rss_kib()
    # a leak of even one small net per cycle would be > 1000 * 1 KiB
    assert after - before < 512, (before, after)
