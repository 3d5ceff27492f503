"""Python-defined heuristics through the C vtable, the built-in one, layer
views and target sets."""
import numpy as np
import pytest

import htnn


class Recorder(htnn.PythonHeuristic):
    """Loss-driven targets computed in numpy, recording what it sees."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def set_targets(self, view, t, w):
        current = np.where(view.input > 0, 1, -1)
        np.testing.assert_array_equal(t, current)  # arrives as current outputs
        np.testing.assert_array_equal(w, 1)
        assert not view.grad_input.flags.writeable
        self.calls.append((view.layer, view.batch, view.in_width, view.out_width,
                           view.activation, view.below_activation, view.weights.shape,
                           view.z.shape, view.targets.shape, view.bias.shape))
        g = view.grad_input
        t[:] = np.sign(-g)
        w[:] = np.abs(g)


def test_python_heuristic_equals_builtin(data):
    x, y = data
    rec = Recorder()
    results = []
    for h in (rec, htnn.Heuristic.loss(), None):
        with htnn.Net(12, [16, 12, 3], seed=4, threads=1) as net:
            net.fit(x, y, epochs=2, batch_size=64, optimizer=htnn.Optimizer(lr=0.01),
                    heuristic=h)
            results.append([l.weights for l in net.layers])
    for a, b, c in zip(*results):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)
    batches = 2 * ((len(x) + 63) // 64)
    assert len(rec.calls) == 2 * batches  # two hidden layers get targets
    assert rec.calls[0] == (2, 64, 12, 3, htnn.Activation.IDENTITY, htnn.Activation.SIGN,
                            (3, 12), (64, 3), (64, 3), (3,))
    assert rec.calls[1][0] == 1 and rec.calls[1][2] == 16
    assert rec.name == "Recorder"
    rec.close()


def test_from_function_and_delegation(data):
    x, y = data
    builtin = htnn.Heuristic.loss()
    assert builtin.name == "loss"
    seen = {}

    def halve(view, t, w):
        builtin.set_targets(view, t, w)  # run the C heuristic on the same view
        seen["view"] = view
        w *= 0.5

    h = htnn.Heuristic.from_function(halve, name="half")
    assert h.name == "half"
    with htnn.Net(12, [16, 3], seed=1, threads=1) as net:
        net.fit(x, y, epochs=1, optimizer=htnn.Optimizer(lr=0.01), heuristic=h)
        t = net.targets
        assert len(t) == 1 and t.batch == 100
        values, weights = t[0]
        assert values.shape == (t.batch, 16) and not values.flags.writeable
        assert set(np.unique(values)) <= {-1.0, 0.0, 1.0} and weights.min() >= 0
        kept = t.copy()
        net.predict(x)
        with pytest.raises(htnn.StateError, match="stale"):
            t[0]
        assert kept[0][0].shape == (100, 16) and kept[0][0].flags.writeable
    with pytest.raises(htnn.StateError):  # views expire with the call
        seen["view"].grad_input


def test_layer_view_from_arrays():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((5, 4)).astype(np.float32)
    g[0, 0] = 0
    view = htnn.LayerView.from_arrays(input=np.ones((5, 4)), z=np.zeros((5, 2)),
                                      weights=np.ones((2, 4)), grad_input=g)
    t = np.zeros((5, 4), np.float32)
    w = np.zeros((5, 4), np.float32)
    with htnn.Heuristic.loss() as h:
        h.set_targets(view, t, w)
    expect = np.sign(-g)
    np.testing.assert_array_equal(t, expect)
    np.testing.assert_array_equal(w, np.abs(g))
    assert t[0, 0] == 0 and w[0, 0] == 0
    with pytest.raises(htnn.ShapeError):
        htnn.Heuristic.loss().set_targets(view, t[:2], w)


def test_invalid_targets_raise_callback_error(data):
    x, y = data
    bad = htnn.Heuristic.from_function(lambda v, t, w: t.fill(0.5))
    with htnn.Net(12, [8, 3], threads=1) as net:
        with pytest.raises(htnn.CallbackError, match="target 0.5"):
            net.fit(x, y, epochs=1, heuristic=bad)
        net.fit(x, y, epochs=1)  # still usable


def test_exception_in_heuristic_propagates(data):
    x, y = data

    def boom(view, t, w):
        raise ZeroDivisionError("my bug")

    h = htnn.Heuristic.from_function(boom)
    with htnn.Net(12, [8, 3], threads=1) as net:
        with pytest.raises(ZeroDivisionError, match="my bug"):
            net.fit(x, y, epochs=1, heuristic=h)
        with pytest.raises(ZeroDivisionError):
            net.train_batch(x[:10], y[:10], heuristic=h)
        assert np.isfinite(net.layer(0).weights).all()


def test_heuristic_may_return_a_status(data):
    x, y = data
    h = htnn.Heuristic.from_function(lambda v, t, w: htnn.Status.ELIMIT)
    with htnn.Net(12, [8, 3], threads=1) as net:
        with pytest.raises(htnn.LimitError):
            net.train_batch(x[:10], y[:10], heuristic=h)


def test_heuristic_needs_a_constructor():
    with pytest.raises(TypeError):
        htnn.Heuristic()
    with pytest.raises(htnn.InvalidArgument):
        with htnn.Net(2, [2]) as net:
            net.fit(np.zeros((2, 2)), [0, 1], heuristic="loss")
