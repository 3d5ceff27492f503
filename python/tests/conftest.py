"""Shared fixtures.  `meson test` sets HTNN_LIBRARY (the built library),
PYTHONPATH (this source tree), HTNN_LAYOUT_PROBE, HTNN_C_REFERENCE and
HTNN_TOOL (helper programs of the build)."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import htnn  # noqa: E402


def helper(name):
    path = os.environ.get(name)
    if not path or not os.path.exists(path):
        pytest.skip("%s is not set (run the tests through meson test)" % name)
    return path


def make_data(count=600, width=12, classes=3, seed=0):
    """Points whose class depends non-linearly on two coordinates."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (count, width)).astype(np.float32)
    r = x[:, 0] ** 2 + x[:, 1] ** 2
    y = np.digitize(r, [0.35, 0.9]).astype(np.int32) % classes
    return x, y


@pytest.fixture
def data():
    return make_data()


@pytest.fixture
def small_net():
    with htnn.Net(12, [16, 12, 3], seed=5, threads=1) as net:
        yield net
