"""Training through Python gives bit-identical results to the C API (a tiny C
program and the htnn tool) for the same seed and settings."""
import subprocess

import numpy as np
import pytest

import htnn
from conftest import helper, make_data


class Cautious(htnn.PythonHeuristic):
    """The twin of the C heuristic in c_reference.c (doc/guide.md, 16)."""

    def __init__(self, threshold):
        super().__init__("cautious")
        self.threshold = np.float32(threshold)
        self.flips = self.dropped = 0

    def set_targets(self, view, t, w):
        g = view.grad_input
        want = np.where(g < 0, np.float32(1), np.float32(-1))
        mag = np.abs(g)
        zero = g == 0
        keep = ~zero & ((want == t) | (mag >= self.threshold))
        drop = ~zero & ~keep
        self.flips += int(np.count_nonzero(keep & (want != t)))
        self.dropped += int(np.count_nonzero(drop))
        t[keep] = want[keep]
        w[keep] = mag[keep]
        w[drop] = 0
        t[zero] = 0
        w[zero] = 0


def run_c(tmp_path, mode, x, y, classes):
    xf, yf, out = tmp_path / "x.f32", tmp_path / "y.i32", tmp_path / ("c_%s.htnn" % mode)
    x.tofile(xf)
    y.tofile(yf)
    p = subprocess.run([helper("HTNN_C_REFERENCE"), mode, str(xf), str(yf), str(len(x)),
                        str(x.shape[1]), str(classes), str(out)], check=True,
                       stdout=subprocess.PIPE, text=True)
    return out, p.stdout


def python_run(x, y, classes, heuristic=None):
    net = htnn.Net(x.shape[1], [16, 12, classes], seed=7, threads=1)
    net.fit(x, y, epochs=3, batch_size=32, optimizer=htnn.Optimizer(lr=0.01),
            heuristic=heuristic)
    return net


@pytest.mark.parametrize("mode", ["loss", "cautious"])
def test_identical_to_c_program(tmp_path, mode):
    x, y = make_data(500, 10, 4, seed=11)
    c_model, c_out = run_c(tmp_path, mode, x, y, 4)
    h = Cautious(1e-4) if mode == "cautious" else None
    with python_run(x, y, 4, h) as net, htnn.Net.load(c_model) as ref:
        for a, b in zip(net.layers, ref.layers):
            np.testing.assert_array_equal(a.weights, b.weights)
            np.testing.assert_array_equal(a.bias, b.bias)
        assert net.to_bytes() == c_model.read_bytes()
    if h is not None:
        assert c_out.split() == [str(h.flips), str(h.dropped)]
        assert h.dropped > 0  # the threshold did something
        h.close()


def test_identical_to_htnn_tool(tmp_path):
    tool = helper("HTNN_TOOL")
    x, y = make_data(400, 6, 3, seed=5)
    csv = tmp_path / "train.csv"
    np.savetxt(csv, np.column_stack([y, x]), delimiter=",", fmt="%.9g")
    out = tmp_path / "tool.htnn"
    subprocess.run([tool, "train", "--train-csv", str(csv), "--layers", "16,8", "--epochs", "2",
                    "--batch", "25", "--seed", "9", "--lr", "0.005", "--threads", "1", "--quiet",
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    data = htnn.load_csv(csv)  # the tool's reader, so the floats are the same
    with htnn.Net(6, [16, 8, 3], seed=9, threads=1) as net:
        net.fit(data.x, data.y, epochs=2, batch_size=25, optimizer=htnn.Optimizer(lr=0.005))
        with htnn.Net.load(out) as ref:
            for a, b in zip(net.layers, ref.layers):
                np.testing.assert_array_equal(a.weights, b.weights)
        assert net.to_bytes() == out.read_bytes()
