"""Bit-packed inference (PackedNet), when the library has htnn_net_pack."""
import pickle

import numpy as np
import pytest

import htnn
from conftest import make_data


@pytest.fixture
def trained():
    if not htnn.has_function("htnn_net_pack"):
        pytest.skip("htnn_net_pack is not in this libhtnn")
    x, y = make_data(600, 12, 3)
    with htnn.Net(12, [64, 32, 3], seed=2, threads=1) as net:
        net.fit(x, y, epochs=3, optimizer=htnn.Optimizer(lr=0.01))
        yield net, x


def test_pack_predicts_like_the_float_net(trained, tmp_path):
    net, x = trained
    with net.pack() as packed:
        assert (packed.input_width, packed.output_width, packed.layer_count,
                packed.class_count) == (12, 3, 3, 3)
        np.testing.assert_array_equal(packed.predict(x), net.predict(x))
        np.testing.assert_allclose(packed.predict_logits(x), net.predict_logits(x), rtol=1e-4,
                                   atol=1e-4)
        assert packed.predict_proba(x).shape == (600, 3)
        path = tmp_path / "p.htnnp"
        packed.save(path)
        for other in (htnn.PackedNet.load(path), htnn.PackedNet.from_bytes(packed.to_bytes()),
                      pickle.loads(pickle.dumps(packed))):
            with other:
                np.testing.assert_array_equal(other.predict(x), packed.predict(x))
        assert isinstance(packed.kernel, htnn.Kernel) and packed.kernel != htnn.Kernel.AUTO
        packed.kernel = "portable"
        assert packed.kernel == htnn.Kernel.PORTABLE
        np.testing.assert_array_equal(packed.predict(x), net.predict(x))
        assert "PackedNet" in repr(packed)


def test_pack_errors(trained, tmp_path):
    with htnn.Net(4, [htnn.Dense(8, "relu"), 2]) as relu:
        with pytest.raises(htnn.Error):
            relu.pack()
    with pytest.raises(htnn.FileError):
        htnn.PackedNet.load(tmp_path / "none")
    with pytest.raises(htnn.FormatError):
        htnn.PackedNet.from_bytes(b"garbage" * 10)
    with pytest.raises(TypeError):
        htnn.PackedNet()
    net, x = trained
    with net.pack() as packed:
        with pytest.raises(htnn.ShapeError):
            packed.predict(x[:, :3])


def test_export_c(trained):
    if not htnn.has_function("htnn_packed_export_c"):
        pytest.skip("htnn_packed_export_c is not in this libhtnn")
    net, x = trained
    with net.pack() as packed:
        src = packed.export_c("fmnist")
        assert "fmnist_predict" in src and src.count("\0") == 0
        assert "htnn_model_predict" in packed.export_c()
        with pytest.raises(htnn.InvalidArgument):
            packed.export_c("not an identifier")


def test_threads(trained):
    if not htnn.has_function("htnn_packed_set_threads"):
        pytest.skip("htnn_packed_set_threads is not in this libhtnn")
    net, x = trained
    with net.pack() as packed:
        assert packed.threads == 1
        logits, classes = packed.predict_logits(x), packed.predict(x)
        for n in (2, 3, 1000, 0):
            packed.threads = n
            assert packed.threads == {1000: 16, 0: 1}.get(n, n)
            np.testing.assert_array_equal(packed.predict_logits(x), logits)
            np.testing.assert_array_equal(packed.predict(x), classes)
        packed.threads = 2
        with pytest.raises(htnn.InvalidArgument):
            packed.threads = -1
        assert packed.threads == 2
        with pickle.loads(pickle.dumps(packed)) as copy:
            assert copy.threads == 1  # not saved
