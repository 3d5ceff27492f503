"""Loading, version, struct layouts against the C compiler's, options round
trips, enums and architecture strings."""
import ctypes
import os
import subprocess
import sys

import pytest

import htnn
from htnn import _lib
from conftest import helper


def probe():
    out = subprocess.run([helper("HTNN_LAYOUT_PROBE")], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def test_version_matches_library():
    assert htnn.__version__ == "0.4.0"
    assert htnn.library_version == (0, 4, 0)
    assert htnn.library_version_string == "0.4.0"
    assert os.path.exists(htnn.library_path) or htnn.library_path == _lib.SONAME


def test_struct_layouts_match_c():
    values = probe()
    checked = 0
    for cname, struct in _lib.STRUCTS.items():
        assert int(values[cname]) == ctypes.sizeof(struct), cname
        for fname, _ in struct._fields_:
            if fname == "struct_size":
                continue
            assert int(values["%s.%s" % (cname, fname)]) == getattr(struct, fname).offset, \
                (cname, fname)
            checked += 1
    assert checked > 80
    for cname, struct in _lib.OPTIONAL_STRUCTS.items():
        if cname not in values:  # headers without the newer API
            continue
        assert int(values[cname]) == ctypes.sizeof(struct), cname
        for fname, _ in struct._fields_:
            if fname != "struct_size":
                assert int(values["%s.%s" % (cname, fname)]) == \
                    getattr(struct, fname).offset, (cname, fname)


def test_defaults_match_init_macros():
    v = probe()
    opt = htnn.Optimizer()
    o = opt.options
    assert int(v["default.optimizer.kind"]) == o["kind"] == htnn.OptimizerKind.ADAM
    assert float(v["default.optimizer.learning_rate"]) == pytest.approx(o["learning_rate"])
    assert float(v["default.optimizer.beta2"]) == pytest.approx(o["beta2"])
    assert float(v["default.optimizer.epsilon"]) == pytest.approx(o["epsilon"])
    assert int(v["default.optimizer.step_epochs"]) == o["step_epochs"]
    assert float(v["default.optimizer.step_gamma"]) == pytest.approx(o["step_gamma"])
    opt.close()
    with htnn.Net(3) as net:
        assert net.options["seed"] == int(v["default.net.seed"])
        lay = net.add_dense(4)
        info = lay.info
        assert info.activation == int(v["default.dense.activation"])
        assert info.qrelu_bits == int(v["default.dense.qrelu_bits"])
        assert info.loss == int(v["default.dense.loss"])


def test_net_options_round_trip():
    with htnn.Net(7, seed=12345678901234, output="hard", threads=1,
                  targets_after_update=True) as net:
        assert net.options == {"seed": 12345678901234,
                               "output": htnn.Output.HARD_THRESHOLD,
                               "threads": 1, "targets_after_update": True}
        net.threads = 2
        assert net.threads == 2


def test_layer_info_round_trip():
    with htnn.Net(5) as net:
        net.add_dense(9, "qrelu", qrelu_bits=3, loss="perceptron", weight_targets=False,
                      bias=False)
        net.add_dense(4, htnn.Activation.IDENTITY, loss=htnn.Loss.LINEAR)
        a, b = net.layers
        assert a.info == htnn.LayerInfo(htnn.LayerKind.DENSE, 0, 5, 9, htnn.Activation.QRELU,
                                        3, htnn.Loss.PERCEPTRON, False, False, 45,
                                        htnn.BinaryWeights.NONE, in_shape=(5, 1, 1),
                                        out_shape=(9, 1, 1), bias_count=9)
        assert a.info.kernel is None and a.info.weight_shape == (9, 5)
        assert b.info.index == 1 and b.info.in_width == 9 and b.info.weight_count == 36
        assert net.parameter_count == 45 + 36 + 4
        b.set_loss("sste", weight_targets=False)
        assert b.info.loss == htnn.Loss.SATURATED_HINGE and not b.info.weight_targets


def test_architecture_string():
    with htnn.Net("784-512-256:qrelu2-10") as net:
        assert net.architecture == "784-512:sign-256:qrelu2-10:identity"
        assert [l.info.out_width for l in net.layers] == [512, 256, 10]
        assert net.input_width == 784 and net.output_width == 10 and len(net) == 3
        again = htnn.Net(net.architecture)
        assert again.architecture == net.architecture
        again.close()
    with htnn.Net("4-8-1", output="hard") as net:
        last = net.layer(-1).info
        assert last.activation == htnn.Activation.SIGN and last.loss == htnn.Loss.HINGE
        assert net.class_count == 2
    for bad in ("784", "784-x-10", "784:sign-10", "10-5:relu3"):
        with pytest.raises(htnn.InvalidArgument):
            htnn.Net(bad)


def test_enum_names():
    with htnn.Net(2) as net:
        for name, value in (("soft-hinge", 0), ("SATURATED_HINGE", 1), ("hinge", 2),
                            ("ste", 4), (3, 3)):
            net.add_dense(2, loss=name)
            assert net.layer(-1).info.loss == value
        with pytest.raises(htnn.InvalidArgument, match="not one of"):
            net.add_dense(2, activation="tanh")


def test_load_order_env_override(tmp_path):
    code = "import htnn; print(htnn.library_path)"
    pkg_root = os.path.dirname(os.path.dirname(htnn.__file__))
    env = dict(os.environ, HTNN_LIBRARY=str(tmp_path / "nope.so"), PYTHONPATH=pkg_root)
    p = subprocess.run([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
    assert p.returncode != 0 and "HTNN_LIBRARY" in p.stderr and "ImportError" in p.stderr
    # Without the override the package finds a library by itself (soname,
    # install dir or build tree) when one is there.
    env = {k: v for k, v in os.environ.items() if k != "HTNN_LIBRARY"}
    env["PYTHONPATH"] = pkg_root
    lib = os.environ.get("HTNN_LIBRARY")
    if lib:
        env["HTNN_BUILD_DIR"] = os.path.dirname(os.path.dirname(lib))
    p = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert p.returncode == 0 and "libhtnn.so.0" in p.stdout


def test_every_called_function_is_declared():
    src = ""
    pkg = os.path.dirname(htnn.__file__)
    for f in os.listdir(pkg):
        if f.endswith(".py"):
            with open(os.path.join(pkg, f)) as fh:
                src += fh.read()
    import re
    called = set(re.findall(r"lib\.(htnn_\w+)\(", src))
    assert called and called <= set(_lib._PROTOTYPES) | set(_lib._OPTIONAL)
    for name in called:
        fn = getattr(_lib.lib, name)
        assert fn.argtypes is not None, name


def test_status_texts():
    assert htnn.strerror(htnn.Status.EINVAL) == "invalid argument"
    assert htnn.Status.ECALLBACK == -11


def test_binary_weights_option():
    with htnn.Net(4) as net:
        try:
            net.add_dense(3, binary_weights="scaled")
        except (htnn.UnsupportedError, htnn.InvalidArgument):
            pytest.skip("this libhtnn has no binary weights")
        assert net.layer(0).info.binary_weights == htnn.BinaryWeights.SCALED
        net.add_dense(2, "identity")
        assert net.layer(1).info.binary_weights == htnn.BinaryWeights.NONE


def test_import_is_light():
    """import htnn does not pull in scikit-learn (slow); HTNNClassifier does."""
    code = ("import sys, htnn; assert 'sklearn' not in sys.modules; "
            "assert 'HTNNClassifier' in dir(htnn); htnn.HTNNClassifier")
    pkg_root = os.path.dirname(os.path.dirname(htnn.__file__))
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, PYTHONPATH=pkg_root))


def test_version_rule():
    ok = htnn._compatible
    assert ok((0, 1, 0), (0, 1, 0)) and ok((0, 1, 7), (0, 1, 0)) and ok((0, 2, 0), (0, 1, 0))
    assert not ok((0, 0, 9), (0, 1, 0)) and not ok((1, 1, 0), (0, 1, 0))
