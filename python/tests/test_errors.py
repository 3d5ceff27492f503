"""Every failure raises the matching htnn.Error subclass, carrying
htnn_last_error(), and leaves the objects usable."""
import numpy as np
import pytest

import htnn


def test_missing_file_raises_file_error(tmp_path):
    with pytest.raises(htnn.FileError) as e:
        htnn.Net.load(tmp_path / "missing.htnn")
    assert isinstance(e.value, OSError)
    assert e.value.status == htnn.Status.EIO
    assert "missing.htnn" in e.value.detail and e.value.function == "htnn_net_load"
    with pytest.raises(htnn.FileError):
        htnn.load_idx(tmp_path / "nope-images", tmp_path / "nope-labels")
    with pytest.raises(htnn.FileError):
        htnn.load_csv(tmp_path / "nope.csv")


def test_corrupt_and_truncated_files(tmp_path, small_net):
    good = small_net.to_bytes()
    p = tmp_path / "bad.htnn"
    p.write_bytes(b"not a model at all, just some bytes" * 4)
    with pytest.raises(htnn.FormatError):
        htnn.Net.load(p)
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(htnn.FormatError):
        htnn.Net.load(p)
    flipped = bytearray(good)
    flipped[len(good) - 20] ^= 0x55
    with pytest.raises(htnn.FormatError) as e:
        htnn.Net.from_bytes(flipped)
    assert e.value.detail  # htnn_last_error text
    with pytest.raises(htnn.FormatError):
        htnn.Net.from_bytes(b"")


def test_bad_shapes(small_net, data):
    x, y = data
    with pytest.raises(htnn.ShapeError, match="12 features"):
        small_net.predict(x[:, :5])
    with pytest.raises(htnn.ShapeError, match="reshape"):
        small_net.predict(x[0])
    with pytest.raises(htnn.ShapeError, match="labels"):
        small_net.fit(x, y[:-1], epochs=1)
    with pytest.raises(htnn.ShapeError):
        small_net.fit(x, y.reshape(-1, 1), epochs=1)
    with pytest.raises(htnn.ShapeError):
        small_net.layer(0).weights = np.zeros((3, 3), np.float32)
    with pytest.raises(htnn.ShapeError):
        small_net.layer(0).bias = np.zeros(3, np.float32)
    assert isinstance(htnn.ShapeError("x"), ValueError)


def test_nan_inputs_and_weights(small_net, data):
    x, y = data
    before = small_net.layer(0).weights
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(htnn.NumericError) as e:
        small_net.fit(bad, y, epochs=1)
    assert e.value.status == htnn.Status.ENUMERIC and "NaN" in str(e.value)
    np.testing.assert_array_equal(small_net.layer(0).weights, before)  # untouched
    bad[7, 3] = np.inf
    with pytest.raises(htnn.NumericError):
        small_net.predict(bad)
    w = before.copy()
    w[0, 0] = np.nan
    with pytest.raises(htnn.NumericError):
        small_net.layer(0).weights = w
    np.testing.assert_array_equal(small_net.layer(0).weights, before)


def test_wrong_dtypes(small_net, data):
    x, y = data
    with pytest.raises(htnn.DTypeError, match="integers"):
        small_net.fit(x, y.astype(np.float32), epochs=1)
    with pytest.raises(TypeError):  # DTypeError is also a TypeError
        small_net.predict(x.astype(np.complex64))
    with pytest.raises(htnn.DTypeError):
        small_net.predict(np.array([["a"] * 12]))
    # convertible dtypes are converted: float64 and non-contiguous input
    p64 = small_net.predict(x.astype(np.float64))
    pnc = small_net.predict(np.asfortranarray(x))
    np.testing.assert_array_equal(p64, small_net.predict(x))
    np.testing.assert_array_equal(pnc, p64)
    small_net.fit(x, y.astype(np.int64), epochs=1)
    small_net.fit(x, y.astype(np.uint8), epochs=1)


def test_bad_labels(small_net, data):
    x, y = data
    y = y.copy()
    y[4] = 3  # net has 3 classes
    with pytest.raises(htnn.InvalidArgument, match="label 3"):
        small_net.fit(x, y, epochs=1)
    y[4] = -1
    with pytest.raises(htnn.InvalidArgument):
        small_net.evaluate(x, y)


def test_bad_options():
    with pytest.raises(htnn.InvalidArgument):
        htnn.Optimizer(lr=-1.0)
    with pytest.raises(htnn.InvalidArgument):
        htnn.Optimizer("adagrad")
    with pytest.raises(htnn.InvalidArgument):
        htnn.Net(0)
    with htnn.Net(3) as net:
        with pytest.raises(htnn.InvalidArgument):
            net.add_dense(0)
        with pytest.raises(htnn.InvalidArgument):
            net.add_dense(4, "qrelu", qrelu_bits=9)
        net.add_dense(2, bias=False)
        with pytest.raises(htnn.StateError):
            net.layer(0).bias = np.zeros(2, np.float32)
        with pytest.raises(IndexError):
            net.layer(3)


def test_closed_handles_raise_state_error(data):
    x, y = data
    net = htnn.Net(12, [4, 3])
    layer = net.layer(0)
    opt = htnn.Optimizer()
    net.close()
    net.close()  # idempotent
    with pytest.raises(htnn.StateError):
        net.predict(x)
    with pytest.raises(htnn.StateError):
        layer.weights
    opt.close()
    with pytest.raises(htnn.StateError):
        opt.steps
    with htnn.Net(12, [4, 3]) as net2:
        with pytest.raises(htnn.StateError):
            net2.fit(x, y, epochs=1, optimizer=opt)


def test_empty_input(small_net):
    with pytest.raises(htnn.InvalidArgument):
        small_net.fit(np.zeros((0, 12), np.float32), np.zeros(0, np.int32), epochs=1)


def test_last_error_is_exposed(tmp_path):
    htnn.clear_error()
    assert htnn.last_error() == ""
    with pytest.raises(htnn.FileError) as e:
        htnn.Net.load(tmp_path / "x")
    assert htnn.last_error() == e.value.detail != ""
