"""Save/load, bytes, pickle, clone, weights, data sets: round trips."""
import copy
import pickle

import numpy as np
import pytest

import htnn
from conftest import make_data


def trained(x, y, seed=3):
    net = htnn.Net(12, [16, 12, 3], seed=seed, threads=1)
    net.fit(x, y, epochs=2, batch_size=50, optimizer=htnn.Optimizer(lr=0.01))
    return net


def same_params(a, b):
    assert a.architecture == b.architecture
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.weights, lb.weights)
        np.testing.assert_array_equal(la.bias, lb.bias)


def test_save_load_file(tmp_path, data):
    x, y = data
    with trained(x, y) as net:
        path = tmp_path / "m.htnn"
        net.save(path)
        with htnn.Net.load(str(path)) as back, htnn.load(path) as back2:
            same_params(net, back)
            same_params(net, back2)
            np.testing.assert_array_equal(net.predict_logits(x), back.predict_logits(x))
            assert back.options["seed"] == 3
            assert back.to_bytes() == net.to_bytes() == path.read_bytes()


def test_bytes_pickle_clone(data):
    x, y = data
    with trained(x, y) as net:
        for other in (htnn.Net.from_bytes(net.to_bytes()),
                      htnn.Net.from_bytes(memoryview(net.to_bytes())),
                      pickle.loads(pickle.dumps(net)), net.clone(), copy.deepcopy(net)):
            with other:
                same_params(net, other)
                np.testing.assert_array_equal(net.predict(x), other.predict(x))
        assert pickle.loads(pickle.dumps(net)).threads == 1


def test_clone_is_independent_and_continues_identically(data):
    x, y = data
    with trained(x, y) as net, net.clone() as twin:
        o1, o2 = htnn.Optimizer(lr=0.01), htnn.Optimizer(lr=0.01)
        net.fit(x, y, epochs=1, optimizer=o1)
        twin.fit(x, y, epochs=1, optimizer=o2)
        same_params(net, twin)  # the clone copied the RNG state too
        twin.layer(0).weights = np.zeros_like(twin.layer(0).weights)
        assert np.any(net.layer(0).weights != 0)


def test_weights_and_bias_round_trip(small_net):
    lay = small_net.layer(1)
    w = np.arange(12 * 16, dtype=np.float64).reshape(12, 16) / 100  # converted
    lay.weights = w
    np.testing.assert_array_equal(lay.weights, w.astype(np.float32))
    lay.bias = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    np.testing.assert_array_equal(lay.bias, np.arange(1, 13, dtype=np.float32))
    assert lay.weights.dtype == np.float32 and lay.weights.flags.c_contiguous


def test_predict_proba_and_logits(data):
    x, y = data
    with trained(x, y) as net:
        z = net.predict_logits(x)
        p = net.predict_proba(x)
        assert z.shape == (len(x), 3) and z.dtype == np.float32
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(p.argmax(axis=1), net.predict(x))
        out = np.empty_like(z)
        assert net.predict_logits(x, out=out) is out
        loss, acc = net.evaluate(x, y)
        assert acc == pytest.approx(np.mean(net.predict(x) == y))
        assert net.score(x, y) == acc


def test_hard_output_one_unit():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (400, 2)).astype(np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int32)
    with htnn.Net(2, [8, 1], output="hard", seed=2, threads=1) as net:
        net.fit(x, y, epochs=20, batch_size=20, optimizer=htnn.Optimizer(lr=0.05))
        p = net.predict_proba(x)
        assert p.shape == (400, 2)
        np.testing.assert_array_equal(p.argmax(axis=1), net.predict(x))
        assert net.score(x, y) > 0.8


def test_images_are_flattened_without_copy():
    x = np.zeros((5, 3, 4), np.float32)
    with htnn.Net(12, [3]) as net:
        assert net.predict(x).shape == (5,)
    from htnn._util import as_features
    flat = np.zeros((5, 12), np.float32)
    assert as_features(flat, 12) is flat  # float32 C-contiguous: no copy
    assert np.shares_memory(as_features(x, 12), x)


def test_dataset_csv_and_views(tmp_path):
    x, y = make_data(50, 4, 3)
    p = tmp_path / "d.csv"
    np.savetxt(p, np.column_stack([y, x]), delimiter=",", fmt="%.9g", header="y,a,b,c,d",
               comments="")
    ds = htnn.load_csv(p)
    assert len(ds) == 50 and ds.width == 4 and ds.class_count == 3
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_allclose(ds.x, x, rtol=1e-6)
    xv = ds.x
    assert xv.base is not None and not xv.flags.owndata  # a view of the C array
    sub = ds.subset(10, 5)
    np.testing.assert_array_equal(sub.y, y[10:15])
    del ds
    assert xv.sum() == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-5)  # kept alive
    last = tmp_path / "l.csv"
    np.savetxt(last, np.column_stack([x, y]), delimiter=";", fmt="%.9g")
    d2 = htnn.load_csv(last, label_column="last", header=False, delimiter=";", scale=True)
    assert d2.x.min() == 0.0 and d2.x.max() == 1.0
    d3 = htnn.Dataset(x, y)
    xs, ys = d3
    np.testing.assert_array_equal(xs, x)


def test_fashion_mnist_subset():
    try:
        train = htnn.load_fashion_mnist("train", limit=1000)
    except htnn.FileError:
        pytest.skip("Fashion-MNIST (dataset-fashion-mnist) is not installed")
    assert len(train) == 1000 and train.width == 784 and train.shape == (1, 28, 28)
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    assert set(np.unique(train.y)) <= set(range(10))


def test_pickle_other_handles():
    opt = htnn.Optimizer.sgd(lr=0.5, momentum=0.8)
    back = pickle.loads(pickle.dumps(opt))
    assert back.options == opt.options and back._h != opt._h
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(htnn.Heuristic.loss())
    with pytest.raises(TypeError):
        copy.copy(htnn.Dataset(np.zeros((2, 2)), [0, 1]))
