"""Conv2d, max-pool and batch-norm layers (libhtnn 0.2): building (methods,
specs, architecture strings), shapes, forward passes against numpy,
batch-norm statistics, training, round trips and errors."""
import copy
import ctypes
import inspect
import pickle

import numpy as np
import pytest

import htnn
from htnn import _lib
from test_basics import probe


def bars(count, seed, size=8, noise=0.2):
    """size x size x 1 images (NHWC) of one bar: vertical = class 1,
    horizontal = class 0, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, count).astype(np.int32)
    x = np.zeros((count, size, size, 1), np.float32)
    pos = rng.integers(0, size, count)
    for k in range(count):
        if y[k]:
            x[k, :, pos[k], 0] = 1.0
        else:
            x[k, pos[k], :, 0] = 1.0
    x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    return x, y


def paper_net(seed=1, **kw):
    """The paper's block structure, scaled down: conv -> pool -> bn -> sign,
    then dense -> bn -> sign and the output."""
    return htnn.Net(64, [htnn.Conv2d(4, 3), htnn.MaxPool2d(2),
                         htnn.BatchNorm(activation="sign"), htnn.Dense(16, "identity"),
                         htnn.BatchNorm(activation="sign"), htnn.Dense(2)],
                    input_shape=(1, 8, 8), seed=seed, threads=1, **kw)


@pytest.fixture(scope="module")
def bar_data():
    return bars(400, 0), bars(200, 1)


@pytest.fixture
def trained_conv(bar_data):
    (x, y), _ = bar_data
    net = paper_net(seed=2)
    net.fit(x, y, epochs=2, batch_size=20, optimizer=htnn.Optimizer(lr=0.01))
    yield net
    net.close()


def conv_ref(x, w, b, stride, pad):
    """Direct convolution: x (n, h, w, ci) NHWC, w (co, kh, kw, ci) OHWI."""
    n, h, wd, ci = x.shape
    co, kh, kw, _ = w.shape
    xp = np.zeros((n, h + 2 * pad, wd + 2 * pad, ci))
    xp[:, pad:pad + h, pad:pad + wd] = x
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, oh, ow, co))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nabc,oabc->no", patch, w) + b
    return out


def pool_ref(x, size, stride):
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * stride:i * stride + size,
                             j * stride:j * stride + size].max(axis=(1, 2))
    return out


# --- structs and defaults ----------------------------------------------------

def test_option_structs_and_defaults_match_c():
    v = probe()
    for cname in ("htnn_conv2d_options", "htnn_maxpool2d_options", "htnn_batchnorm_options"):
        struct = _lib.STRUCTS[cname]
        assert int(v[cname]) == ctypes.sizeof(struct)
        for fname, _ in struct._fields_[1:]:
            assert int(v["%s.%s" % (cname, fname)]) == getattr(struct, fname).offset
    with htnn.Net(16, input_shape=(1, 4, 4)) as net:
        c = net.add_conv2d(2).info  # Python's defaults = HTNN_CONV2D_OPTIONS_INIT's
        assert c.kernel == (int(v["default.conv2d.kernel_h"]), int(v["default.conv2d.kernel_w"]))
        assert c.stride == int(v["default.conv2d.stride"])
        assert c.padding == int(v["default.conv2d.padding"])
        assert c.activation == int(v["default.conv2d.activation"])
        assert c.qrelu_bits == int(v["default.conv2d.qrelu_bits"])
        assert c.loss == int(v["default.conv2d.loss"])
        assert c.weight_targets == bool(int(v["default.conv2d.weight_targets"]))
        assert c.bias == bool(int(v["default.conv2d.bias"]))
        assert c.binary_weights == int(v["default.conv2d.binary_weights"])
        p = net.add_maxpool2d().info
        assert p.kernel == (int(v["default.maxpool2d.size"]),) * 2
        assert int(v["default.maxpool2d.stride"]) == 0 and p.stride == p.kernel[0]
        assert p.activation == int(v["default.maxpool2d.activation"])
        assert p.qrelu_bits == int(v["default.maxpool2d.qrelu_bits"])
        assert p.loss == int(v["default.maxpool2d.loss"])
        assert p.weight_targets == bool(int(v["default.maxpool2d.weight_targets"]))
        b = net.add_batchnorm().info
        assert b.activation == int(v["default.batchnorm.activation"])
        assert b.qrelu_bits == int(v["default.batchnorm.qrelu_bits"])
        assert b.loss == int(v["default.batchnorm.loss"])
        assert b.weight_targets == bool(int(v["default.batchnorm.weight_targets"]))
    sig = inspect.signature(htnn.Net.add_batchnorm).parameters
    assert sig["momentum"].default == pytest.approx(float(v["default.batchnorm.momentum"]))
    assert sig["epsilon"].default == pytest.approx(float(v["default.batchnorm.epsilon"]))


# --- building and describing -------------------------------------------------

def test_layer_info_shapes_and_windows():
    with htnn.Net(3 * 9 * 10, input_shape=(3, 9, 10), seed=1) as net:
        assert net.input_shape == (3, 9, 10)
        conv = net.add_conv2d(8, (3, 5), stride=2, bias=False, activation="sign")
        pool = net.add_maxpool2d(2, stride=1)
        bn = net.add_batchnorm(momentum=0.2, epsilon=1e-3, activation="qrelu", qrelu_bits=3)
        dense = net.add_dense(4, "identity")
        i = conv.info
        assert i.kind == htnn.LayerKind.CONV2D and conv.kind == htnn.LayerKind.CONV2D
        assert i.in_shape == (3, 9, 10) and i.out_shape == (8, 5, 4)  # padding (3-1)//2 = 1
        assert i.kernel == (3, 5) and i.stride == 2 and i.padding == 1
        assert i.in_width == 270 and i.out_width == 160
        assert i.weight_count == 8 * 3 * 5 * 3 and i.weight_shape == (8, 3, 5, 3)
        assert i.bias_count == 8 and not i.bias and i.activation == htnn.Activation.SIGN
        np.testing.assert_array_equal(conv.bias, np.zeros(8, np.float32))
        i = pool.info
        assert i.in_shape == (8, 5, 4) and i.out_shape == (8, 4, 3)
        assert i.kernel == (2, 2) and i.stride == 1 and i.padding == 0
        assert i.weight_count == 0 and i.bias_count == 0 and i.weight_shape == (0,)
        i = bn.info
        assert i.kind == htnn.LayerKind.BATCHNORM and i.kernel is None and i.stride is None
        assert i.in_shape == i.out_shape == (8, 4, 3) and i.weight_shape == (8,)
        assert i.bias_count == 8 and i.activation == htnn.Activation.QRELU and i.qrelu_bits == 3
        np.testing.assert_array_equal(bn.weights, np.ones(8, np.float32))  # gamma
        np.testing.assert_array_equal(bn.bias, np.zeros(8, np.float32))  # beta
        i = dense.info
        assert i.in_shape == (8, 4, 3) and i.out_shape == (4, 1, 1) and i.weight_shape == (4, 96)
        assert net.parameter_count == 8 * 45 + 8 + 8 + 4 * 96 + 4
        assert net.input_shape == (3, 9, 10) and net.output_width == 4
        assert "conv3x5:8:s2:p1 3x9x10 -> 8x5x4" in repr(conv)
        assert "pool2:s1 8x5x4 -> 8x4x3" in repr(pool) and "bn 8x4x3" in repr(bn)
        assert "qrelu3" in repr(bn)
        text = net.summary()
        assert "input 270 (3x9x10)" in text and "conv3x5:8:s2:p1" in text and "no bias" in text
        assert "pool2:s1 8x4x3" not in text and "pool2:s1 8x5x4 -> 8x4x3" in text
        assert net.architecture == "3x9x10-conv3x5:8:s2,sign,pool2:s1,bn,qrelu3,dense:4"


def test_specs_strings_and_methods_build_the_same_net():
    specs = htnn.Net(64, [htnn.Conv2d(4, 3), htnn.MaxPool2d(2), htnn.BatchNorm(activation="sign"),
                          htnn.Dense(16, "identity"), htnn.BatchNorm(activation="sign"),
                          htnn.Dense(2)], input_shape=(1, 8, 8), seed=3)
    tool = htnn.Net(64, "conv3x3:4,pool2,bn,sign,dense:16,bn,sign,dense:2",
                    input_shape=(1, 8, 8), seed=3)
    full = htnn.Net("1x8x8-conv3:4:p1,pool2:s2,bn,sign,flatten,dense:16,bn,sign,dense:2",
                    seed=3)
    calls = htnn.Net(64, seed=3)
    calls.set_input_shape(1, 8, 8)
    calls.add_conv2d(4)
    calls.add_maxpool2d()
    calls.add_batchnorm(activation="sign")
    calls.add_dense(16, "identity")
    calls.add_batchnorm(activation="sign")
    calls.add_dense(2, "identity")
    nets = [specs, tool, full, calls]
    for net in nets:
        assert net.architecture == "1x8x8-conv3x3:4,pool2,bn,sign,dense:16,bn,sign,dense:2"
        assert net.to_bytes() == specs.to_bytes()  # same layers, same initial weights
        again = htnn.Net(net.architecture, seed=3)
        assert again.to_bytes() == net.to_bytes()
        again.close()
    for net in nets:
        net.close()


def test_architecture_grammar():
    with htnn.Net("2x6x6-conv3x3:4:s2:p0,relu,pool2,bn,step,dense:5,qrelu3,dense:3") as net:
        kinds = [l.kind.name.lower() for l in net.layers]
        assert kinds == ["conv2d", "maxpool2d", "batchnorm", "dense", "dense"]
        acts = [l.activation.name.lower() for l in net.layers]
        assert acts == ["relu", "identity", "step", "qrelu", "identity"]
        assert net.layer(0).info.padding == 0 and net.layer(0).info.out_shape == (4, 2, 2)
        assert net.architecture == "2x6x6-conv3x3:4:s2:p0,relu,pool2,bn,step,dense:5,qrelu3,dense:3"
    # items of the tool grammar are linear unless an activation follows; the
    # old WIDTH items are sign; the last layer is the output's default
    with htnn.Net("4-dense:8,8,dense:2", output="hard") as net:
        acts = [l.activation for l in net.layers]
        assert acts == [htnn.Activation.IDENTITY, htnn.Activation.SIGN, htnn.Activation.SIGN]
        assert net.layer(-1).loss == htnn.Loss.HINGE
        assert net.architecture == "4-8:identity-8:sign-2:sign"  # dense-only: old form
    with htnn.Net(4, "dense:8,bn,sign,dense:3") as net:
        assert net.architecture == "4-dense:8,bn,sign,dense:3"
        with htnn.Net(net.architecture) as back:
            assert back.architecture == net.architecture
    with htnn.Net("1x4x4-conv3x3:2,pool2,dense:2,relu") as net:  # an explicit output act
        assert net.layer(-1).activation == htnn.Activation.RELU
        assert net.architecture.endswith("dense:2,relu")
    for bad in ("1x28-dense:10", "1x4x4-conv3x3,dense:2", "1x4x4-pool2:p1,dense:2",
                "1x4x4-sign,dense:2", "1x4x4-bn,sign,relu,dense:2", "4-8:relu-sign-2",
                "1x4x4-conv3x3:2:q1,dense:2", "1x4x4-bn,qrelu9,dense:2", "4-flatten"):
        with pytest.raises(htnn.InvalidArgument):
            htnn.Net(bad)
    with pytest.raises(htnn.InvalidArgument, match="contradicts"):
        htnn.Net("1x4x4-dense:2", input_shape=(2, 2, 4))
    with pytest.raises(htnn.InvalidArgument, match="not both"):
        htnn.Net("16-2", "dense:2")
    with pytest.raises(htnn.InvalidArgument, match="Conv2d"):
        htnn.Net(16, [object()])


# --- weights -----------------------------------------------------------------

def test_weights_natural_shapes_round_trip():
    rng = np.random.default_rng(1)
    with htnn.Net(2 * 5 * 5, input_shape=(2, 5, 5), seed=1) as net:
        conv = net.add_conv2d(3, (2, 3), padding=1)
        pool = net.add_maxpool2d(2)
        bn = net.add_batchnorm()
        dense = net.add_dense(4, "identity")
        for lay, shape in ((conv, (3, 2, 3, 2)), (bn, (3,)), (dense, (4, 3 * 3 * 2))):
            w = lay.weights
            assert w.shape == shape and w.dtype == np.float32 and w.shape == lay.info.weight_shape
            new = rng.normal(size=shape).astype(np.float32)
            lay.weights = new
            np.testing.assert_array_equal(lay.weights, new)
            b = rng.normal(size=lay.info.bias_count).astype(np.float32)
            lay.bias = b
            np.testing.assert_array_equal(lay.bias, b)
            if new.ndim > 1:
                with pytest.raises(htnn.ShapeError, match="expected shape"):
                    lay.weights = new.reshape(-1)  # flat is refused: the shape is the contract
            with pytest.raises(htnn.ShapeError, match="expected shape"):
                lay.weights = np.zeros(shape[:-1] + (shape[-1] + 1,))
            with pytest.raises(htnn.ShapeError):
                lay.bias = np.zeros(lay.info.bias_count + 1)
        # init of conv weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 2*2*3
        with htnn.Net(2 * 5 * 5, input_shape=(2, 5, 5), seed=9) as fresh:
            w = fresh.add_conv2d(16, (2, 3)).weights
            assert np.abs(w).max() <= 1 / np.sqrt(12) and np.abs(w).max() > 0.5 / np.sqrt(12)
        # the raw C order is OHWI: element [o, a, b, c] at ((o*kh + a)*kw + b)*ci + c
        w = conv.weights
        flat = np.empty(w.size, np.float32)
        _lib.lib.htnn_layer_get_weights(conv._ptr, flat.ctypes.data, flat.size)
        assert flat[((2 * 2 + 1) * 3 + 2) * 2 + 1] == w[2, 1, 2, 1]
        # max-pool: no parameters
        assert pool.weights.shape == (0,) and pool.bias.shape == (0,)
        pool.weights = pool.weights  # copying layer by layer works
        pool.bias = np.zeros(0)
        with pytest.raises(htnn.ShapeError, match="max-pool"):
            pool.weights = np.zeros(3)
        with pytest.raises(htnn.NumericError):
            bn.weights = np.array([1.0, np.nan, 1.0])


# --- forward passes against numpy --------------------------------------------

@pytest.mark.parametrize("ci,h,w,co,kernel,stride,pad", [
    (1, 6, 6, 3, 3, 1, 1),
    (3, 7, 5, 4, (3, 2), 2, 1),
    (2, 5, 6, 2, (2, 3), 1, 0),
    (2, 9, 9, 5, 5, 2, 2),
    (4, 4, 4, 2, 1, 1, 0),
])
def test_conv_forward_matches_numpy(ci, h, w, co, kernel, stride, pad):
    rng = np.random.default_rng(ci * 100 + h)
    with htnn.Net(ci * h * w, input_shape=(ci, h, w), threads=1) as net:
        lay = net.add_conv2d(co, kernel, stride=stride, padding=pad)
        wt = rng.normal(size=lay.info.weight_shape).astype(np.float32)
        b = rng.normal(size=co).astype(np.float32)
        lay.weights, lay.bias = wt, b
        x = rng.normal(size=(5, h, w, ci)).astype(np.float32)
        ref = conv_ref(x, wt, b, stride, pad)
        assert lay.info.out_shape == (co,) + ref.shape[1:3]
        z = net.predict_logits(x)  # NHWC images are flattened per example
        np.testing.assert_allclose(z, ref.reshape(5, -1), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(net.predict_logits(x.reshape(5, -1)), z)


def test_binary_conv_weights_forward():
    rng = np.random.default_rng(5)
    with htnn.Net(2 * 5 * 5, input_shape=(2, 5, 5), threads=1) as net:
        lay = net.add_conv2d(3, 3, binary_weights="scaled")
        assert lay.info.binary_weights == htnn.BinaryWeights.SCALED
        wt = rng.uniform(-1, 1, lay.info.weight_shape).astype(np.float32)
        lay.weights = wt
        x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
        alpha = np.abs(wt).reshape(3, -1).mean(axis=1)
        wb = np.where(wt > 0, 1.0, -1.0) * alpha[:, None, None, None]
        ref = conv_ref(x, wb, lay.bias, 1, 1)
        np.testing.assert_allclose(net.predict_logits(x), ref.reshape(3, -1), rtol=1e-5,
                                   atol=1e-5)


def test_maxpool_and_sign_forward():
    rng = np.random.default_rng(2)
    with htnn.Net(3 * 7 * 6, input_shape=(3, 7, 6), threads=1) as net:
        net.add_maxpool2d(3, stride=2)
        x = rng.normal(size=(4, 7, 6, 3)).astype(np.float32)
        np.testing.assert_array_equal(net.predict_logits(x), pool_ref(x, 3, 2).reshape(4, -1))
    with htnn.Net(16, input_shape=(1, 4, 4), threads=1) as net:
        conv = net.add_conv2d(2, 3, activation="sign")
        net.add_maxpool2d(2)
        rng = np.random.default_rng(3)
        conv.weights = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
        x = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
        h = np.where(conv_ref(x, conv.weights, conv.bias, 1, 1) > 0, 1.0, -1.0)
        np.testing.assert_array_equal(net.predict_logits(x), pool_ref(h, 2, 2).reshape(3, -1))


# --- batch norm ----------------------------------------------------------------

@pytest.mark.parametrize("shape,momentum", [((2, 3, 3), 1.0), ((5, 1, 1), 0.5)])
def test_batchnorm_running_statistics(shape, momentum):
    """Prediction normalises with the running statistics: fresh (mean 0,
    variance 1), then after one training batch r = (1 - momentum) r +
    momentum * batch (unbiased variance), whatever the batch predicted."""
    c = shape[0]
    width = int(np.prod(shape))
    eps = 1e-3
    rng = np.random.default_rng(7)
    with htnn.Net(width, input_shape=shape, threads=1) as net:
        bn = net.add_batchnorm(momentum=momentum, epsilon=eps)
        x = (rng.normal(size=(12, width)) * 3 + 1).astype(np.float32)
        np.testing.assert_allclose(net.predict_logits(x), x / np.sqrt(1 + eps), rtol=1e-5)
        y = rng.integers(0, width, 12)
        net.train_batch(x, y, optimizer=htnn.Optimizer.sgd(0.1))
        gamma, beta = bn.weights, bn.bias
        assert np.any(gamma != 1) and np.any(beta != 0)  # trained by the softmax loss
        per_channel = x.reshape(-1, c).astype(np.float64)  # NHWC: channels fastest
        mean = momentum * per_channel.mean(axis=0)
        var = (1 - momentum) + momentum * per_channel.var(axis=0, ddof=1)
        want = gamma * (per_channel - mean) / np.sqrt(var + eps) + beta
        got = net.predict_logits(x)
        np.testing.assert_allclose(got, want.reshape(12, -1), rtol=1e-4, atol=1e-4)
        # one example alone gets the same output: no batch statistics at eval
        np.testing.assert_array_equal(net.predict_logits(x[3:4]), got[3:4])


# --- training ------------------------------------------------------------------

def test_conv_net_learns_bars(bar_data):
    (x, y), (xt, yt) = bar_data
    with paper_net(seed=1) as net:
        result = net.fit(x, y, epochs=3, batch_size=20, optimizer=htnn.Optimizer(lr=0.01),
                         validation_data=(xt, yt))
        assert result.epochs_run == 3 and len(result.history) == 3
        assert net.score(xt, yt) > 0.9
        assert net.predict(xt).shape == (200,) and net.predict_proba(xt).shape == (200, 2)
        # a few single batches keep working
        for k in range(3):
            r = net.train_batch(x[k * 20:(k + 1) * 20], y[k * 20:(k + 1) * 20])
            assert np.isfinite(r.loss)


def test_python_heuristic_on_conv_net(bar_data):
    """A loss-driven heuristic in Python equals the built-in on a net whose
    hard units sit below non-dense layers (views without weights)."""
    (x, y), _ = bar_data
    seen = []

    def loss_driven(view, t, w):
        seen.append((view.layer, view.weights is None, view.bias is None, view.in_width))
        g = view.grad_input
        t[:] = np.sign(-g)
        w[:] = np.abs(g)

    results = []
    for h in (htnn.Heuristic.from_function(loss_driven), None):
        with htnn.Net(64, "conv3x3:4,sign,pool2,bn,sign,dense:2", input_shape=(1, 8, 8),
                      seed=4, threads=1) as net:
            net.fit(x[:80], y[:80], epochs=1, batch_size=40, optimizer=htnn.Optimizer(lr=0.01),
                    heuristic=h)
            results.append([l.weights for l in net.layers])
            values, weights = net.targets[0]
            assert values.shape == (40, 4 * 8 * 8)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert (1, True, True, 256) in seen  # targets of the conv's sign units, from the pool
    assert any(layer == 3 and not no_w for layer, no_w, _, _ in seen)  # from the dense


# --- files ---------------------------------------------------------------------

def test_save_load_pickle_round_trip(tmp_path, trained_conv, bar_data):
    _, (xt, yt) = bar_data
    net = trained_conv
    logits = net.predict_logits(xt)
    path = tmp_path / "conv.htnn"
    net.save(path)
    for other in (htnn.Net.load(path), htnn.Net.from_bytes(net.to_bytes()),
                  pickle.loads(pickle.dumps(net)), net.clone(), copy.deepcopy(net)):
        with other:
            assert other.architecture == net.architecture
            assert other.input_shape == (1, 8, 8)
            assert [l.info for l in other.layers] == [l.info for l in net.layers]
            for a, b in zip(net.layers, other.layers):
                np.testing.assert_array_equal(a.weights, b.weights)
                np.testing.assert_array_equal(a.bias, b.bias)
            np.testing.assert_array_equal(other.predict_logits(xt), logits)  # incl. bn stats
            np.testing.assert_array_equal(other.predict(xt), net.predict(xt))
            # the loss is summed per chunk of the scratch arena, whose size the
            # net's history sets: equal to rounding
            ev, want = other.evaluate(xt, yt), net.evaluate(xt, yt)
            assert ev.accuracy == want.accuracy and ev.loss == pytest.approx(want.loss, 1e-12)


def test_input_shape_survives_pickle_without_layers():
    with htnn.Net(12, input_shape=(3, 2, 2)) as net:
        back = pickle.loads(pickle.dumps(net))
        assert back.input_shape == (3, 2, 2)
        back.add_conv2d(1, 2, padding=0)
        assert back.layer(0).info.out_shape == (1, 1, 1)
        back.close()


# --- errors ----------------------------------------------------------------------

def test_bad_shapes_raise_with_library_messages():
    with htnn.Net(16, input_shape=(1, 4, 4)) as net:
        with pytest.raises(htnn.ShapeError, match="larger than its 4x4 input") as e:
            net.add_conv2d(2, 5, padding=0)
        assert e.value.status == htnn.Status.ESHAPE
        assert e.value.function == "htnn_net_add_conv2d" and e.value.detail
        with pytest.raises(htnn.ShapeError, match="larger than"):
            net.add_maxpool2d(5)
        with pytest.raises(htnn.InvalidArgument, match="0 channels") as e:
            net.add_conv2d(0)
        assert e.value.status == htnn.Status.EINVAL
        with pytest.raises(htnn.InvalidArgument, match="padding 3 must be smaller"):
            net.add_conv2d(2, 3, padding=3)
        with pytest.raises(htnn.InvalidArgument, match="must be >= 1"):
            net.add_conv2d(2, 3, stride=0)
        with pytest.raises(htnn.InvalidArgument, match="momentum"):
            net.add_batchnorm(momentum=0.0)
        with pytest.raises(htnn.InvalidArgument, match="epsilon"):
            net.add_batchnorm(epsilon=-1)
        with pytest.raises(htnn.InvalidArgument, match=">= 0"):
            net.add_conv2d(-2)
        with pytest.raises(htnn.InvalidArgument, match="kernel"):
            net.add_conv2d(2, (3, 3, 3))
        assert net.layer_count == 0  # failed calls add nothing
        net.add_conv2d(2)
        with pytest.raises(htnn.StateError, match="already has layers"):
            net.set_input_shape(1, 4, 4)
    with htnn.Net(16) as net:
        with pytest.raises(htnn.ShapeError, match="is not the input width 16") as e:
            net.set_input_shape(1, 4, 5)
        assert isinstance(e.value, ValueError)
        with pytest.raises(htnn.ShapeError):
            net.set_input_shape(0, 4, 4)
        with pytest.raises(htnn.StateError, match="set_input_shape"):
            net.add_conv2d(2)  # a 16 x 1 x 1 input: refused, not a degenerate net
        with pytest.raises(htnn.StateError, match="set_input_shape"):
            net.add_maxpool2d(2)
        net.add_batchnorm()  # per unit: fine without an image shape
    with pytest.raises(htnn.ShapeError, match="input width 16"):
        htnn.Net(16, [htnn.Conv2d(2)], input_shape=(2, 4, 4))
    with pytest.raises(htnn.StateError):
        htnn.Net(16, [htnn.Conv2d(2)])
    with pytest.raises(htnn.InvalidArgument, match="channels, height, width"):
        htnn.Net(16, input_shape=(4, 4))


def test_image_inputs_must_be_nhwc():
    with htnn.Net(3 * 4 * 5, input_shape=(3, 4, 5), threads=1) as net:
        net.add_conv2d(2)
        x = np.zeros((2, 4, 5, 3), np.float32)
        assert net.predict(x).shape == (2,)
        with pytest.raises(htnn.ShapeError, match="NCHW"):
            net.predict(np.zeros((2, 3, 4, 5), np.float32))
        with pytest.raises(htnn.ShapeError, match="NHWC"):
            net.predict(np.zeros((2, 5, 4, 3), np.float32))
        assert net.predict(np.zeros((2, 60))).shape == (2,)  # rows are always fine
    with htnn.Net(16, input_shape=(1, 4, 4), threads=1) as net:
        net.add_maxpool2d(2)
        for shape in ((2, 4, 4), (2, 4, 4, 1), (2, 1, 4, 4)):  # one channel: all the same
            assert net.predict_logits(np.zeros(shape)).shape == (2, 4)


def test_unsupported_features_explain_themselves(bar_data):
    """Hill climbing, exhaustive search, full-batch FTPROP and packing need
    dense layers: the library says so, and the net stays usable."""
    (x, y), _ = bar_data
    x, y = x[:40], y[:40]
    with htnn.Net(64, "conv3x3:2,sign,pool2,dense:4,sign,dense:2", input_shape=(1, 8, 8),
                  threads=1) as net:
        before = net.to_bytes()
        for name, call in (("htnn_net_ftprop", lambda: net.ftprop(x, y)),
                           ("htnn_net_pack", net.pack)):
            if htnn.has_function(name):
                with pytest.raises(htnn.UnsupportedError, match="not dense") as e:
                    call()
                assert isinstance(e.value, NotImplementedError) and e.value.detail
        assert net.to_bytes() == before
        if htnn.has_function("htnn_heuristic_create_hill"):
            # refused when the search reaches the pool (the layers above it
            # have been updated by then, as train.h says of failing heuristics)
            with htnn.Heuristic.hill() as hill, \
                    pytest.raises(htnn.UnsupportedError, match="not dense"):
                net.fit(x, y, epochs=1, batch_size=20, heuristic=hill)
        net.fit(x, y, epochs=1, batch_size=20)
        assert net.score(x, y) >= 0


def write_idx(prefix, x, y):
    """x: count x h x w floats in [0, 1] -> IDX unsigned-byte files."""
    import struct
    imgs = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    with open(str(prefix) + "-images", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(x), x.shape[1], x.shape[2]) + imgs.tobytes())
    with open(str(prefix) + "-labels", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(y)) + y.astype(np.uint8).tobytes())
    return str(prefix) + "-images", str(prefix) + "-labels"


def test_same_net_as_the_htnn_tool(tmp_path):
    """The --arch grammar means the same in Python as in `htnn train`: the
    same seed and options give a byte-identical model file."""
    import subprocess
    from conftest import helper
    tool = helper("HTNN_TOOL")
    x, y = bars(80, 3, noise=0.0)
    images, labels = write_idx(tmp_path / "bars", x[..., 0], y)
    arch = "conv3x3:4,pool2,bn,sign,dense:8,relu,dense:2"
    out = tmp_path / "tool.htnn"
    subprocess.run([tool, "train", "--train-images", images, "--train-labels", labels,
                    "--arch", arch, "--epochs", "2", "--batch", "20", "--seed", "9",
                    "--lr", "0.005", "--threads", "1", "--quiet", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    data = htnn.load_idx(images, labels)  # the tool's reader and scaling
    assert data.shape == (1, 8, 8)
    with htnn.Net(64, arch, input_shape=data.shape, seed=9, threads=1) as net:
        net.fit(data.x, data.y, epochs=2, batch_size=20, optimizer=htnn.Optimizer(lr=0.005))
        with htnn.Net.load(out) as ref:
            assert ref.architecture == net.architecture == "1x8x8-" + arch
            for a, b in zip(net.layers, ref.layers):
                np.testing.assert_array_equal(a.weights, b.weights)
        assert net.to_bytes() == out.read_bytes()


def test_batchnorm_running_stats_round_trip():
    net = htnn.Net(8, "bn,dense:2", input_shape=(2, 2, 2))
    bn = net.layer(0)
    mean, var = bn.running_stats
    assert mean.tolist() == [0.0, 0.0] and var.tolist() == [1.0, 1.0]
    bn.running_stats = (np.array([0.5, -1.0], np.float32), np.array([2.0, 0.25], np.float32))
    mean, var = bn.running_stats
    assert mean.tolist() == [0.5, -1.0] and var.tolist() == [2.0, 0.25]
    with pytest.raises(htnn.NumericError):
        bn.running_stats = (mean, np.array([-1.0, 1.0], np.float32))
    with pytest.raises(htnn.StateError):
        net.layer(1).running_stats
    again = htnn.Net.from_bytes(net.to_bytes())
    assert again.layer(0).running_stats[1].tolist() == [2.0, 0.25]
