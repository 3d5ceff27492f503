"""The Fashion-MNIST example runs end to end on a small subset."""
import os
import subprocess
import sys

import pytest

import htnn

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                       "fashion_mnist.py")


def test_fashion_mnist_example(tmp_path):
    pytest.importorskip("matplotlib")
    if not os.path.exists(os.path.join(htnn.fashion_mnist_dir(), "t10k-labels-idx1-ubyte.gz")):
        pytest.skip("Fashion-MNIST (dataset-fashion-mnist) is not installed")
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.path.dirname(os.path.dirname(htnn.__file__)))
    p = subprocess.run([sys.executable, EXAMPLE, "--epochs", "2", "--limit", "3000",
                        "--test-limit", "500", "--layers", "64", "--out",
                        str(tmp_path / "m.htnn"), "--plots", str(tmp_path)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "test accuracy:" in p.stdout
    acc = float(p.stdout.split("test accuracy:")[1].split("%")[0])
    assert acc > 60
    for png in ("fashion_mnist_history.png", "fashion_mnist_misclassified.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "epoch 2/2" in p.stderr  # the progress bar
    with htnn.Net.load(tmp_path / "m.htnn") as net:
        assert net.architecture == "784-64:sign-10:identity"


def test_fashion_mnist_example_conv(tmp_path):
    """--arch trains a convolutional net on the 1 x 28 x 28 images."""
    pytest.importorskip("matplotlib")
    if not os.path.exists(os.path.join(htnn.fashion_mnist_dir(), "t10k-labels-idx1-ubyte.gz")):
        pytest.skip("Fashion-MNIST (dataset-fashion-mnist) is not installed")
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.path.dirname(os.path.dirname(htnn.__file__)))
    p = subprocess.run([sys.executable, EXAMPLE, "--epochs", "1", "--limit", "1000",
                        "--test-limit", "200", "--arch", "conv3x3:4,pool2,bn,sign,dense:10",
                        "--out", str(tmp_path / "c.htnn"), "--plots", str(tmp_path)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert "conv3x3:4:s1:p1 1x28x28 -> 4x28x28" in p.stdout
    acc = float(p.stdout.split("test accuracy:")[1].split("%")[0])
    assert acc > 50
    with htnn.Net.load(tmp_path / "c.htnn") as net:
        assert net.architecture == "1x28x28-conv3x3:4,pool2,bn,sign,dense:10"
