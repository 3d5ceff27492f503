"""Net and Layer: the network handle (include/htnn/net.h) with training
(include/htnn/train.h)."""

import contextlib
import ctypes
import os
import re
import signal
import threading
from collections import namedtuple
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ._errors import InvalidArgument, ShapeError, StateError, TrainingInterrupted, check
from ._handle import Handle
from ._lib import (PROGRESS_FN, BatchResult as _CBatchResult, DenseOptions,
                   FitOptions, FitResult as _CFitResult, LayerInfo as _CLayerInfo,
                   NetOptions, lib, new)
from . import _lib
from ._util import (Activation, BinaryWeights, LayerKind, Loss, Output, Separability, Solver,
                    as_features, as_labels, enum_value, float_array)
from .heuristic import Heuristic, PythonHeuristic, Targets
from .optimizer import Optimizer

__all__ = ["Net", "Layer", "Dense", "LayerInfo", "Progress", "FitResult", "BatchResult",
           "Evaluation", "FtpropResult", "separable"]

Evaluation = namedtuple("Evaluation", "loss accuracy")
_byref = ctypes.byref


@dataclass
class Dense:
    """A dense layer specification for ``Net(input_width, layers)``.
    ``activation=None`` means: sign for hidden layers; for the last layer,
    identity under a softmax output and sign under a hard-threshold output.
    ``loss=None`` means soft hinge, except hinge for a hard-threshold output
    layer (doc/guide.md, section 9)."""
    units: int
    activation: Optional[object] = None
    qrelu_bits: int = 2
    loss: Optional[object] = None
    weight_targets: bool = True
    bias: bool = True
    binary_weights: object = "none"


@dataclass(frozen=True)
class LayerInfo:
    """What a layer is (htnn_layer_info)."""
    kind: LayerKind
    index: int
    in_width: int
    out_width: int
    activation: Activation
    qrelu_bits: int
    loss: Loss
    weight_targets: bool
    bias: bool
    weight_count: int
    binary_weights: BinaryWeights = BinaryWeights.NONE


@dataclass(frozen=True)
class Progress:
    """Passed to the fit callback after every batch (htnn_progress)."""
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    end_of_epoch: bool
    val_loss: float
    val_accuracy: float
    learning_rate: float


@dataclass
class FitResult:
    """Outcome of Net.fit.  ``history`` has one dict per completed epoch
    (epoch, loss, accuracy, val_loss, val_accuracy, learning_rate)."""
    epochs_run: int = 0
    batches_run: int = 0
    stopped: bool = False
    loss: float = float("nan")
    accuracy: float = float("nan")
    val_loss: float = float("nan")
    val_accuracy: float = float("nan")
    interrupted: bool = False
    history: List[dict] = field(default_factory=list)


BatchResult = namedtuple("BatchResult", "loss correct")


@dataclass
class FtpropResult:
    """Outcome of Net.ftprop (htnn_ftprop_result)."""
    feasible: bool
    accuracy: float
    separability: List[Separability]
    solver: Solver
    heuristic_calls: int
    solver_calls: int
    solver_iterations: int
    restarts: int
    budget_exhausted: bool
    seconds: float


class _FitState:
    """The progress trampoline of one fit call."""

    def __init__(self, callback):
        self.callback = callback
        self.history = []
        self.error = None
        self.interrupted = False
        self.c_fn = PROGRESS_FN(self.on_progress)

    def on_interrupt(self, signum, frame):
        self.interrupted = True

    def on_progress(self, p_ptr, user):
        try:
            if self.interrupted:
                return 1
            p = p_ptr.contents
            if self.callback is None and not p.end_of_epoch:
                return 0
            prog = Progress(p.epoch, p.epochs, p.batch, p.batches, p.loss, p.accuracy,
                            bool(p.end_of_epoch), p.val_loss, p.val_accuracy,
                            p.learning_rate)
            if prog.end_of_epoch:
                self.history.append({"epoch": prog.epoch, "loss": prog.loss,
                                     "accuracy": prog.accuracy, "val_loss": prog.val_loss,
                                     "val_accuracy": prog.val_accuracy,
                                     "learning_rate": prog.learning_rate})
            stop = self.callback is not None and self.callback(prog)
            return 1 if (stop or self.interrupted) else 0
        except BaseException as e:  # noqa: B902 - re-raised after the C call
            if isinstance(e, KeyboardInterrupt):
                self.interrupted = True
            else:
                self.error = e
            return 1


@contextlib.contextmanager
def _sigint_to_flag(state):
    """While the C code runs, Ctrl-C only sets state.interrupted (checked by
    the callbacks, which stop training cleanly): a KeyboardInterrupt raised
    inside a ctypes callback would otherwise be lost."""
    if (state is None or threading.current_thread() is not threading.main_thread() or
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    old = signal.signal(signal.SIGINT, state.on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


_ARCH_TOKEN = re.compile(r"^\s*(\d+)\s*(?::\s*([a-z_\-]+?)(\d*))?\s*$", re.I)


def _parse_arch(text):
    """'784-512-512-10' or '784-512:sign-512:qrelu2-10:identity' ->
    (input_width, [Dense, ...])."""
    parts = re.split(r"[-,]", text.strip())
    if len(parts) < 2:
        raise InvalidArgument("architecture %r: expected 'input-units-...-outputs', e.g. "
                              "'784-512-512-10'" % text)
    specs = []
    for i, part in enumerate(parts):
        m = _ARCH_TOKEN.match(part)
        if not m or (i == 0 and m.group(2)):
            raise InvalidArgument("architecture %r: bad item %r (expected WIDTH or "
                                  "WIDTH:ACTIVATION such as 512:sign or 512:qrelu2)"
                                  % (text, part))
        if i == 0:
            width = int(m.group(1))
            continue
        act = m.group(2)
        bits = int(m.group(3)) if m.group(3) else 2
        if m.group(3) and (act or "").lower() != "qrelu":
            raise InvalidArgument("architecture %r: only qrelu takes bits (%r)" % (text, part))
        specs.append(Dense(int(m.group(1)), activation=act, qrelu_bits=bits))
    return width, specs


_ACT_TEXT = {Activation.IDENTITY: "identity", Activation.SIGN: "sign",
             Activation.STEP: "step", Activation.QRELU: "qrelu", Activation.RELU: "relu"}


class Layer:
    """One layer of a net (borrowed: valid while its net is open)."""

    __slots__ = ("_net", "_ptr", "index")

    def __init__(self, net, ptr, index):
        self._net, self._ptr, self.index = net, ptr, index

    def _h(self):
        self._net._h  # raises StateError once the net is closed
        return self._ptr

    @property
    def info(self):
        i = new(_CLayerInfo)
        h = self._h()
        if lib.htnn_layer_get_info(h, _byref(i)) != 0:
            # a library from before binary weights: ask for the older size
            i = new(_CLayerInfo, struct_size=_lib.LEGACY_SIZE[_CLayerInfo])
            check(lib.htnn_layer_get_info(h, _byref(i)), "htnn_layer_get_info")
        return LayerInfo(LayerKind(i.kind), i.index, i.in_width, i.out_width,
                         Activation(i.activation), i.qrelu_bits, Loss(i.loss),
                         bool(i.weight_targets), bool(i.bias), i.weight_count,
                         BinaryWeights(i.binary_weights))

    in_width = property(lambda s: s.info.in_width)
    out_width = property(lambda s: s.info.out_width)
    activation = property(lambda s: s.info.activation)
    loss = property(lambda s: s.info.loss)

    @property
    def weights(self):
        """A copy of W (out_width x in_width, float32); assign to replace."""
        i = self.info
        a = np.empty((i.out_width, i.in_width), np.float32)
        check(lib.htnn_layer_get_weights(self._ptr, a.ctypes.data, a.size),
              "htnn_layer_get_weights")
        return a

    @weights.setter
    def weights(self, value):
        i = self.info
        a = float_array(value, "weights")
        if a.shape != (i.out_width, i.in_width):
            raise ShapeError("weights: expected shape (%d, %d), got %s"
                             % (i.out_width, i.in_width, a.shape))
        check(lib.htnn_layer_set_weights(self._ptr, a.ctypes.data, a.size),
              "htnn_layer_set_weights")
        self._net._generation += 1

    @property
    def bias(self):
        """A copy of b (out_width, float32; zeros without bias)."""
        a = np.empty(self.info.out_width, np.float32)
        check(lib.htnn_layer_get_bias(self._h(), a.ctypes.data, a.size), "htnn_layer_get_bias")
        return a

    @bias.setter
    def bias(self, value):
        n = self.info.out_width
        a = float_array(value, "bias")
        if a.shape != (n,):
            raise ShapeError("bias: expected shape (%d,), got %s" % (n, a.shape))
        check(lib.htnn_layer_set_bias(self._ptr, a.ctypes.data, a.size), "htnn_layer_set_bias")
        self._net._generation += 1

    def set_loss(self, loss, weight_targets=True):
        """Changes the per-layer loss and target weighting."""
        check(lib.htnn_layer_set_loss(self._h(), enum_value(Loss, loss, "loss"),
                                      int(bool(weight_targets))), "htnn_layer_set_loss")

    def __repr__(self):
        try:
            i = self.info
        except StateError:
            return "<htnn.Layer (net closed)>"
        return "<htnn.Layer %d dense %d -> %d %s, loss %s>" % (
            i.index, i.in_width, i.out_width, _ACT_TEXT[i.activation], i.loss.name.lower())


def _unpickle_net(state):
    net = Net.__new__(Net)
    net.__setstate__(state)
    return net


class Net(Handle):
    """A hard-threshold network.

    ``Net(784, [512, 512, 10])``, ``Net("784-512-512-10")`` or
    ``Net(784, [Dense(512, "qrelu"), Dense(10)])`` build a net: the hidden
    layers default to sign units with the soft-hinge loss and the last layer
    to identity (logits for the softmax output).  Keywords: ``seed`` (1),
    ``output`` ("softmax" or "hard"), ``threads`` (BLAS threads, 0 = leave
    BLAS alone), ``targets_after_update`` (False).  Free it with close() or a
    ``with`` block (garbage collection also frees it).
    """

    _free_name = "htnn_net_free"

    def __init__(self, input_width, layers=(), *, seed=1, output="softmax", threads=0,
                 targets_after_update=False):
        if isinstance(input_width, str):
            if layers:
                raise InvalidArgument("give the layers either in the architecture string "
                                      "or as a list, not both")
            input_width, layers = _parse_arch(input_width)
        o = new(NetOptions, seed=seed, output=enum_value(Output, output, "output"),
                threads=threads, targets_after_update=int(bool(targets_after_update)))
        out = ctypes.c_void_p()
        if isinstance(input_width, bool) or not isinstance(input_width, (int, np.integer)):
            raise InvalidArgument("input_width must be an integer, got %r" % (input_width,))
        check(lib.htnn_net_create(int(input_width), _byref(o), _byref(out)), "htnn_net_create")
        self._init_wrapper(out.value)
        hard = o.output == Output.HARD_THRESHOLD
        layers = list(layers)
        try:
            for i, spec in enumerate(layers):
                if not isinstance(spec, Dense):
                    spec = Dense(int(spec))
                last = i == len(layers) - 1
                act = spec.activation
                if act is None:
                    act = ("sign" if hard else "identity") if last else "sign"
                loss = spec.loss
                if loss is None:
                    loss = "hinge" if (last and hard) else "soft_hinge"
                self.add_dense(spec.units, act, qrelu_bits=spec.qrelu_bits, loss=loss,
                               weight_targets=spec.weight_targets, bias=spec.bias,
                               binary_weights=spec.binary_weights)
        except BaseException:
            self.close()
            raise

    def _init_wrapper(self, ptr):
        self._set_handle(ptr)
        self._generation = 0
        self._optimizer = None
        self._layers = []
        self.last_fit = None

    @classmethod
    def _wrap(cls, ptr):
        net = cls.__new__(cls)
        net._init_wrapper(ptr)
        return net

    from_string = classmethod(lambda cls, arch, **kw: cls(arch, **kw))

    # --- building ------------------------------------------------------------

    def add_dense(self, units, activation="sign", *, qrelu_bits=2, loss="soft_hinge",
                  weight_targets=True, bias=True, binary_weights="none"):
        """Appends a dense layer (defaults as HTNN_DENSE_OPTIONS_INIT: sign
        units, soft hinge, float weights); returns its Layer.
        ``binary_weights``: "none", "scaled" or "sign" (libraries that have
        htnn_dense_options.binary_weights)."""
        bw = enum_value(BinaryWeights, binary_weights, "binary_weights")
        d = new(DenseOptions, units=int(units),
                activation=enum_value(Activation, activation, "activation"),
                qrelu_bits=qrelu_bits, loss=enum_value(Loss, loss, "loss"),
                weight_targets=int(bool(weight_targets)), bias=int(bool(bias)),
                binary_weights=bw)
        if bw == BinaryWeights.NONE:
            d.struct_size = _lib.LEGACY_SIZE[DenseOptions]
        ptr = ctypes.c_void_p()
        check(lib.htnn_net_add_dense(self._h, _byref(d), _byref(ptr)), "htnn_net_add_dense")
        self._generation += 1
        return self.layer(self.layer_count - 1)

    # --- queries -------------------------------------------------------------

    @property
    def options(self):
        """htnn_net_get_options as a dict (seed, output, threads,
        targets_after_update)."""
        o = new(NetOptions)
        check(lib.htnn_net_get_options(self._h, _byref(o)), "htnn_net_get_options")
        return {"seed": o.seed, "output": Output(o.output), "threads": o.threads,
                "targets_after_update": bool(o.targets_after_update)}

    layer_count = property(lambda s: int(lib.htnn_net_layer_count(s._h)))
    input_width = property(lambda s: int(lib.htnn_net_input_width(s._h)))
    output_width = property(lambda s: int(lib.htnn_net_output_width(s._h)))
    parameter_count = property(lambda s: int(lib.htnn_net_parameter_count(s._h)))
    class_count = property(lambda s: int(lib.htnn_net_class_count(s._h)))
    output = property(lambda s: s.options["output"])

    def __len__(self):
        return self.layer_count

    def layer(self, index):
        """Layer `index` (negative counts from the end)."""
        n = self.layer_count
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("layer %d out of range (net has %d layers)" % (index, n))
        while len(self._layers) < n:
            k = len(self._layers)
            self._layers.append(Layer(self, lib.htnn_net_layer(self._h, k), k))
        return self._layers[index]

    @property
    def layers(self):
        return [self.layer(i) for i in range(self.layer_count)]

    @property
    def architecture(self):
        """The architecture as a string accepted by Net(), e.g.
        '784-512:sign-512:sign-10:identity'."""
        items = [str(self.input_width)]
        for lay in self.layers:
            i = lay.info
            act = _ACT_TEXT[i.activation]
            if i.activation == Activation.QRELU:
                act += str(i.qrelu_bits)
            items.append("%d:%s" % (i.out_width, act))
        return "-".join(items)

    @property
    def threads(self):
        return self.options["threads"]

    @threads.setter
    def threads(self, n):
        check(lib.htnn_net_set_threads(self._h, int(n)), "htnn_net_set_threads")

    def reseed(self, seed):
        """Re-seeds the net's RNG (later shuffles and added layers)."""
        check(lib.htnn_net_seed(self._h, seed), "htnn_net_seed")

    @property
    def optimizer(self):
        """The optimizer fit/train_batch use when given none: Adam, lr 1e-3,
        created on first use and kept, so a second fit continues it."""
        if self._optimizer is None or self._optimizer.closed:
            self._optimizer = Optimizer()
        return self._optimizer

    @optimizer.setter
    def optimizer(self, opt):
        if opt is not None and not isinstance(opt, Optimizer):
            raise InvalidArgument("optimizer must be an htnn.Optimizer")
        self._optimizer = opt

    @property
    def targets(self):
        """The target set of the last training batch (Targets), or None."""
        p = lib.htnn_net_targets(self._h)
        return Targets(self, p) if p else None

    def summary(self):
        lines = ["htnn.Net: input %d, %d layers, %d parameters, output %s"
                 % (self.input_width, self.layer_count, self.parameter_count,
                    self.output.name.lower())]
        for lay in self.layers:
            i = lay.info
            lines.append("  %d  dense %d -> %d  %-8s loss %s%s%s" % (
                i.index, i.in_width, i.out_width, _ACT_TEXT[i.activation],
                i.loss.name.lower().replace("_", "-"),
                "" if i.weight_targets else ", unweighted targets",
                "" if i.bias else ", no bias"))
        return "\n".join(lines)

    def __repr__(self):
        if self.closed:
            return "<htnn.Net (closed)>"
        return "<htnn.Net %s, output %s>" % (self.architecture, self.output.name.lower())

    # --- copies and files ----------------------------------------------------

    def clone(self):
        """Deep copy (architecture, weights, RNG state)."""
        out = ctypes.c_void_p()
        check(lib.htnn_net_clone(self._h, _byref(out)), "htnn_net_clone")
        return Net._wrap(out.value)

    __copy__ = clone
    __deepcopy__ = lambda self, memo: self.clone()  # noqa: E731

    def save(self, path):
        """Saves atomically to `path` (str or os.PathLike)."""
        check(lib.htnn_net_save(self._h, os.fsencode(path)), "htnn_net_save")

    @classmethod
    def load(cls, path):
        """Loads a model file written by save() or the htnn tool."""
        out = ctypes.c_void_p()
        check(lib.htnn_net_load(os.fsencode(path), _byref(out)), "htnn_net_load")
        return cls._wrap(out.value)

    def to_bytes(self):
        """The model file as bytes."""
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(lib.htnn_net_save_buffer(self._h, _byref(data), _byref(size)),
              "htnn_net_save_buffer")
        try:
            return ctypes.string_at(data.value, size.value)
        finally:
            lib.htnn_free(data.value)

    @classmethod
    def from_bytes(cls, data):
        """A net from model-file bytes (bytes, bytearray or memoryview)."""
        buf = bytes(data)
        out = ctypes.c_void_p()
        check(lib.htnn_net_load_buffer(buf, len(buf), _byref(out)), "htnn_net_load_buffer")
        return cls._wrap(out.value)

    def __reduce__(self):
        return (_unpickle_net, (self.__getstate__(),))

    def __getstate__(self):
        return {"model": self.to_bytes(), "threads": self.threads}

    def __setstate__(self, state):
        out = ctypes.c_void_p()
        buf = state["model"]
        check(lib.htnn_net_load_buffer(buf, len(buf), _byref(out)), "htnn_net_load_buffer")
        self._init_wrapper(out.value)
        if state.get("threads"):
            self.threads = state["threads"]

    def pack(self):
        """A bit-packed, inference-only copy (PackedNet; every layer but the
        last must have sign activations).  Needs a library with
        htnn_net_pack (UnsupportedError otherwise)."""
        from .packed import PackedNet
        return PackedNet.from_net(self)

    # --- inference -----------------------------------------------------------

    def predict_logits(self, x, out=None):
        """Pre-activations of the last layer, count x output_width float32."""
        h = self._h
        x = as_features(x, self.input_width)
        shape = (x.shape[0], self.output_width)
        if out is None:
            out = np.empty(shape, np.float32)
        elif not (isinstance(out, np.ndarray) and out.dtype == np.float32 and
                  out.flags.c_contiguous and out.shape == shape):
            raise ShapeError("out: expected a float32 C-contiguous array of shape %s" % (shape,))
        self._generation += 1
        check(lib.htnn_net_predict_logits(h, x.ctypes.data, x.shape[0], out.ctypes.data),
              "htnn_net_predict_logits")
        return out

    def predict(self, x):
        """Predicted class per example (int32): arg-max of the logits, or
        logit > 0 for a one-unit output."""
        h = self._h
        x = as_features(x, self.input_width)
        out = np.empty(x.shape[0], np.int32)
        self._generation += 1
        check(lib.htnn_net_predict(h, x.ctypes.data, x.shape[0], out.ctypes.data),
              "htnn_net_predict")
        return out

    def predict_proba(self, x):
        """Class probabilities (count x class_count, float64): the softmax of
        the logits.  For a hard-threshold output these are normalised scores
        (softmax of z; for one unit, sigmoid of the unit's margin) whose
        arg-max is predict()."""
        z = self.predict_logits(x).astype(np.float64)
        if z.shape[1] == 1:
            lay = self.layer(-1).info
            s = 2.0 * z[:, 0] - 1.0 if lay.activation == Activation.QRELU else z[:, 0]
            p1 = 1.0 / (1.0 + np.exp(-s))
            return np.stack([1.0 - p1, p1], axis=1)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def evaluate(self, x, y):
        """(loss, accuracy) over labelled examples."""
        h = self._h
        x = as_features(x, self.input_width)
        y = as_labels(y, x.shape[0])
        loss, acc = ctypes.c_double(), ctypes.c_double()
        self._generation += 1
        check(lib.htnn_net_evaluate(h, x.ctypes.data, y.ctypes.data, x.shape[0], _byref(loss),
                                    _byref(acc)), "htnn_net_evaluate")
        return Evaluation(loss.value, acc.value)

    def score(self, x, y):
        """Accuracy in [0, 1]."""
        return self.evaluate(x, y).accuracy

    # --- training ------------------------------------------------------------

    @staticmethod
    def _heuristic_handle(heuristic):
        if heuristic is None:
            return None
        if not isinstance(heuristic, Heuristic):
            raise InvalidArgument("heuristic must be an htnn.Heuristic (or None for the "
                                  "built-in loss-driven one)")
        return heuristic._h

    def train_batch(self, x, y, optimizer=None, heuristic=None):
        """Trains one mini-batch with FTPROP-MB; returns BatchResult(loss,
        correct), measured before the update."""
        h = self._h
        opt = optimizer if optimizer is not None else self.optimizer
        hh = self._heuristic_handle(heuristic)
        x = as_features(x, self.input_width)
        y = as_labels(y, x.shape[0])
        res = new(_CBatchResult)
        state = _FitState(None) if isinstance(heuristic, PythonHeuristic) else None
        self._generation += 1
        with _sigint_to_flag(state):
            status = lib.htnn_net_train_batch(h, opt._h, hh, x.ctypes.data, y.ctypes.data,
                                              x.shape[0], _byref(res))
        if heuristic is not None:
            heuristic._raise_pending()
        check(status, "htnn_net_train_batch")
        if state is not None and state.interrupted:
            raise KeyboardInterrupt
        return BatchResult(res.loss, res.correct)

    def ftprop(self, x, y, heuristic=None, *, attempts=16, restarts=100,
               max_heuristic_calls=100000, solver_epochs=1000, time_limit=0.0, solver="auto",
               search_loss="hinge"):
        """Full-batch FTPROP: searches feasible targets on the whole (small)
        data set and fits the net to them (htnn_net_ftprop, newer libraries
        only; UnsupportedError otherwise).  heuristic None: the built-in
        exhaustive one.  Returns an FtpropResult (read ``feasible``)."""
        fn = _lib.optional("htnn_net_ftprop")
        h = self._h
        hh = self._heuristic_handle(heuristic)
        x = as_features(x, self.input_width)
        y = as_labels(y, x.shape[0])
        o = new(_lib.FtpropOptions, attempts=attempts, restarts=restarts,
                max_heuristic_calls=max_heuristic_calls, solver_epochs=solver_epochs,
                time_limit=time_limit, solver=enum_value(Solver, solver, "solver"),
                search_loss=enum_value(Loss, search_loss, "search_loss"))
        r = new(_lib.FtpropResult)
        self._generation += 1
        status = fn(h, hh, x.ctypes.data, y.ctypes.data, x.shape[0], _byref(o), _byref(r))
        if heuristic is not None:
            heuristic._raise_pending()
        check(status, "htnn_net_ftprop")
        n = min(self.layer_count, _lib.FTPROP_MAX_LAYERS)
        return FtpropResult(bool(r.feasible), r.accuracy,
                            [Separability(v) for v in r.separability[:n]], Solver(r.solver),
                            r.heuristic_calls, r.solver_calls, r.solver_iterations, r.restarts,
                            bool(r.budget_exhausted), r.seconds)

    def fit(self, x, y, *, epochs=10, batch_size=100, shuffle=True, optimizer=None,
            heuristic=None, validation_data=None, callback=None, on_interrupt="raise",
            checkpoint=None, checkpoint_every=0, resume=False):
        """Trains over epochs of mini-batches (htnn_net_fit).

        - ``optimizer``: an Optimizer, default ``net.optimizer`` (Adam 1e-3,
          kept across calls); ``heuristic``: a Heuristic, default the
          built-in loss-driven one.
        - ``validation_data=(x_val, y_val)`` is evaluated after every epoch.
        - ``callback(progress)`` is called after every batch with a Progress;
          returning True stops training after that batch.  An exception it
          raises stops training and propagates.
        - Ctrl-C stops training cleanly after the current batch (the net
          stays valid).  ``on_interrupt="raise"`` (default) then raises
          htnn.TrainingInterrupted (a KeyboardInterrupt carrying the
          FitResult); ``"return"`` returns the FitResult with
          ``interrupted=True``.
        - ``checkpoint="run.ckpt"`` writes the training state (weights,
          optimizer, RNG, position) to that file at the end of every epoch,
          or every ``checkpoint_every`` batches, and when training stops;
          the file is also a model file (``Net.load``).  With
          ``resume=True`` a fit continues from it if it exists: build the
          same net and optimizer and pass the same data and options, and
          the result is bit-identical to an uninterrupted fit.
        - If training diverges (NaN/Inf loss), htnn.NumericError is raised
          and the net and optimizer are back at their last good state.

        Returns a FitResult with the per-epoch ``history``.
        """
        if on_interrupt not in ("raise", "return"):
            raise InvalidArgument("on_interrupt must be 'raise' or 'return'")
        h = self._h
        opt = optimizer if optimizer is not None else self.optimizer
        if not isinstance(opt, Optimizer):
            raise InvalidArgument("optimizer must be an htnn.Optimizer")
        hh = self._heuristic_handle(heuristic)
        x = as_features(x, self.input_width)
        y = as_labels(y, x.shape[0])
        fo = new(FitOptions, epochs=int(epochs), batch_size=int(batch_size),
                 shuffle=int(bool(shuffle)))
        if checkpoint is not None:
            ckpt_path = os.fsencode(checkpoint)  # kept alive through the call
            fo.checkpoint_path = ckpt_path
            fo.checkpoint_every = int(checkpoint_every)
            fo.resume = int(bool(resume))
        elif resume or checkpoint_every:
            raise InvalidArgument("resume and checkpoint_every need a checkpoint path")
        if validation_data is not None:
            try:
                vx, vy = validation_data
            except (TypeError, ValueError):
                raise InvalidArgument("validation_data must be a pair (x, y)") from None
            vx = as_features(vx, self.input_width, "validation x")
            vy = as_labels(vy, vx.shape[0], "validation y")
            fo.val_x, fo.val_labels, fo.val_count = vx.ctypes.data, vy.ctypes.data, vx.shape[0]
        state = _FitState(callback)
        fo.progress = state.c_fn
        res = new(_CFitResult)
        self._generation += 1
        with _sigint_to_flag(state):
            status = lib.htnn_net_fit(h, opt._h, hh, x.ctypes.data, y.ctypes.data, x.shape[0],
                                      _byref(fo), _byref(res))
        result = FitResult(res.epochs_run, res.batches_run, bool(res.stopped), res.loss,
                           res.accuracy, res.val_loss, res.val_accuracy, state.interrupted,
                           state.history)
        self.last_fit = result
        if heuristic is not None:
            heuristic._raise_pending()
        check(status, "htnn_net_fit")
        if state.error is not None:
            raise state.error
        if state.interrupted and on_interrupt == "raise":
            raise TrainingInterrupted(result)
        return result


def separable(x, t, solver="auto", epochs=1000):
    """Whether points x (count x width) with labels t (+1 / -1; 0 = ignore)
    are linearly separable (htnn_separable, newer libraries only).  Returns
    (Separability, w, b) with the fitted unit."""
    fn = _lib.optional("htnn_separable")
    xa = float_array(x, "x")
    if xa.ndim != 2:
        raise ShapeError("x: expected count x width, got shape %s" % (xa.shape,))
    ta = float_array(t, "t")
    if ta.shape != (xa.shape[0],):
        raise ShapeError("t: expected %d labels, got shape %s" % (xa.shape[0], ta.shape))
    sep = ctypes.c_int()
    w = np.zeros(xa.shape[1], np.float32)
    b = np.zeros(1, np.float32)
    check(fn(xa.ctypes.data, ta.ctypes.data, xa.shape[0], xa.shape[1],
             enum_value(Solver, solver, "solver"), epochs, _byref(sep), w.ctypes.data,
             b.ctypes.data), "htnn_separable")
    return Separability(sep.value), w, float(b[0])
