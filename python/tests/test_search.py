"""The functions added after 0.1.0 (hill-climbing and exhaustive heuristics,
full-batch FTPROP, separability): bound only when the library has them."""
import numpy as np
import pytest

import htnn


def need(name):
    if not htnn.has_function(name):
        pytest.skip("%s is not in this libhtnn" % name)


def xor_data():
    x = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], np.float32)
    return np.repeat(x, 5, axis=0), np.repeat(np.array([0, 1, 1, 0], np.int32), 5)


def test_missing_functions_raise_unsupported(monkeypatch):
    from htnn import _lib

    class NoLib:
        pass
    monkeypatch.setattr(_lib, "lib", NoLib())
    with pytest.raises(htnn.UnsupportedError, match="htnn_net_ftprop"):
        _lib.optional("htnn_net_ftprop")


def test_hill_and_exhaustive_heuristics_train():
    need("htnn_heuristic_create_hill")
    need("htnn_heuristic_create_exhaustive")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 2)).astype(np.float32)
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int32)
    for h in (htnn.Heuristic.hill(max_sweeps=4, start="loss", weighting="gradient"),
              htnn.Heuristic.exhaustive(max_width=8, reach_cost=0.1)):
        with h, htnn.Net(2, [8, 2], seed=3, threads=1) as net:
            net.fit(x, y, epochs=3, batch_size=20, heuristic=h,
                    optimizer=htnn.Optimizer(lr=0.01))
            stats = h.stats
            assert stats["calls"] == 30 and stats["rows"] == 200 * 3
            assert h.name in ("hill", "exhaustive")
    with htnn.Heuristic.exhaustive(max_width=4) as h, htnn.Net(2, [8, 2]) as net:
        with pytest.raises(htnn.LimitError):
            net.train_batch(x[:10], y[:10], heuristic=h)
    with pytest.raises(htnn.InvalidArgument):
        htnn.Heuristic.hill(weighting="nope")


def test_view_loss_inside_python_heuristic():
    need("htnn_layer_view_loss")
    x, y = xor_data()
    seen = []

    def h(view, t, w):
        current = t.copy()  # the current outputs
        flipped = np.sign(-view.grad_input)
        flipped[flipped == 0] = 1
        seen.append((view.loss(current), view.loss(flipped, reach_cost=0.5)))
        t[:] = flipped

    with htnn.Net(2, [4, 2], seed=1, threads=1) as net:
        net.train_batch(x, y, heuristic=htnn.Heuristic.from_function(h))
    assert len(seen) == 1 and all(np.isfinite(v) for v in seen[0])


def test_ftprop_on_xor():
    need("htnn_net_ftprop")
    x, y = xor_data()
    with htnn.Net(2, [4, 1], output="hard", seed=2, threads=1) as net:
        res = net.ftprop(x, y, attempts=8, restarts=20, time_limit=10.0)
        assert isinstance(res.feasible, bool) and len(res.separability) == 2
        if res.feasible:
            assert res.accuracy == 1.0 and net.score(x, y) == 1.0
        assert res.heuristic_calls >= 0 and res.seconds >= 0
    with htnn.Net(2, [htnn.Dense(4, "relu"), 2], threads=1) as relu:
        with pytest.raises(htnn.UnsupportedError):  # relu hidden units: no targets
            relu.ftprop(x, y)


def test_separable():
    need("htnn_separable")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    sep, w, b = htnn.separable(x, [-1, 1, 1, 1], solver="perceptron")
    assert sep == htnn.Separability.SEPARABLE
    assert np.all((x @ w + b > 0) == np.array([False, True, True, True]))
    sep, _, _ = htnn.separable(x, [-1, 1, 1, -1], solver="perceptron", epochs=50)
    assert sep in (htnn.Separability.UNDECIDED, htnn.Separability.NOT_SEPARABLE)
