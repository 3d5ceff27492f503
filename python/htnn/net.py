"""Net and Layer: the network handle (include/htnn/net.h) with training
(include/htnn/train.h)."""

import contextlib
import ctypes
import os
import signal
import threading
from collections import namedtuple
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ._errors import InvalidArgument, ShapeError, StateError, TrainingInterrupted, check
from ._handle import Handle
from ._lib import (PROGRESS_FN, BatchNormOptions, BatchResult as _CBatchResult,
                   Conv2dOptions, DenseOptions, FitOptions, FitResult as _CFitResult,
                   LayerInfo as _CLayerInfo, MaxPool2dOptions, NetOptions, lib, new)
from . import _lib
from ._arch import (SPECS as _SPECS, BatchNorm, Conv2d, Dense, MaxPool2d, act_text as _act_text,
                    default_padding as _default_padding, format_arch as _format_arch,
                    parse as _parse_arch)
from ._util import (Activation, BinaryWeights, LayerKind, Loss, Output, Separability, Solver,
                    as_features, as_labels, enum_value, float_array)
from .heuristic import Heuristic, PythonHeuristic, Targets
from .optimizer import Optimizer
from . import reduce as _reduce

__all__ = ["Net", "Layer", "Dense", "Conv2d", "MaxPool2d", "BatchNorm", "LayerInfo", "Progress",
           "FitResult", "BatchResult", "Evaluation", "FtpropResult", "separable"]

Evaluation = namedtuple("Evaluation", "loss accuracy")
_byref = ctypes.byref


@dataclass(frozen=True)
class LayerInfo:
    """What a layer is (htnn_layer_info).

    ``in_shape`` / ``out_shape`` are the feature maps (channels, height,
    width) the layer reads and writes (NHWC rows; a dense layer's output is
    (units, 1, 1)); ``kernel`` (height, width), ``stride`` and ``padding``
    describe the window of a conv2d or maxpool2d layer (None for the other
    kinds); ``bias_count`` is the length of Layer.bias.
    """
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
    in_shape: Optional[tuple] = None
    out_shape: Optional[tuple] = None
    kernel: Optional[tuple] = None
    stride: Optional[int] = None
    padding: Optional[int] = None
    bias_count: Optional[int] = None

    @property
    def weight_shape(self):
        """The shape of Layer.weights: dense (out_width, in_width); conv2d
        (channels, kernel_h, kernel_w, in_channels); batch norm (channels,)
        (gamma); max-pool (0,)."""
        if self.kind == LayerKind.DENSE:
            return (self.out_width, self.in_width)
        if self.kind == LayerKind.CONV2D:
            return (self.out_shape[0],) + tuple(self.kernel) + (self.in_shape[0],)
        return (self.weight_count,)


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


def _size(value, what):
    """A non-negative integer for a size_t field (0 is left to the library
    to refuse, with its own message)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgument("%s must be an integer, got %r" % (what, value))
    if value < 0:
        raise InvalidArgument("%s must be >= 0, got %d" % (what, value))
    return int(value)


def _kernel(kernel):
    """An int or a (height, width) pair -> (kh, kw)."""
    if isinstance(kernel, (tuple, list)):
        if len(kernel) != 2:
            raise InvalidArgument("kernel must be an int or a (height, width) pair, got %r"
                                  % (kernel,))
        return _size(kernel[0], "kernel height"), _size(kernel[1], "kernel width")
    k = _size(kernel, "kernel")
    return k, k


def _shape3(shape, what="input_shape"):
    try:
        c, h, w = shape
    except (TypeError, ValueError):
        raise InvalidArgument("%s must be (channels, height, width), got %r"
                              % (what, shape)) from None
    return _size(c, "channels"), _size(h, "height"), _size(w, "width")


def _shape_text(shape):
    return "%dx%dx%d" % tuple(shape)


def _describe(i):
    """'dense 784 -> 512', or like `htnn info`: 'conv5x5:32:s1:p2
    1x28x28 -> 32x28x28'."""
    if i.kind == LayerKind.DENSE:
        return "dense %d -> %d" % (i.in_width, i.out_width)
    if i.kind == LayerKind.CONV2D:
        item = "conv%dx%d:%d:s%d:p%d" % (i.kernel + (i.out_shape[0], i.stride, i.padding))
    elif i.kind == LayerKind.MAXPOOL2D:
        item = "pool%d:s%d" % (i.kernel[0], i.stride)
    else:
        item = "bn"
    return "%s %s -> %s" % (item, _shape_text(i.in_shape), _shape_text(i.out_shape))


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
        full = True
        if lib.htnn_layer_get_info(h, _byref(i)) != 0:
            # a library from before binary weights: ask for the older size
            i = new(_CLayerInfo, struct_size=_lib.LEGACY_SIZE[_CLayerInfo])
            check(lib.htnn_layer_get_info(h, _byref(i)), "htnn_layer_get_info")
            full = False
        kind = LayerKind(i.kind)
        if full and i.in_channels:
            in_shape = (i.in_channels, i.in_height, i.in_columns)
            out_shape = (i.out_channels, i.out_height, i.out_columns)
            bias_count = i.bias_count
        else:  # before 0.2: dense layers only
            in_shape, out_shape = (i.in_width, 1, 1), (i.out_width, 1, 1)
            bias_count = i.out_width
        kernel = stride = padding = None
        if kind in (LayerKind.CONV2D, LayerKind.MAXPOOL2D):
            kernel, stride, padding = (i.kernel_h, i.kernel_w), i.stride, i.padding
        return LayerInfo(kind, i.index, i.in_width, i.out_width,
                         Activation(i.activation), i.qrelu_bits, Loss(i.loss),
                         bool(i.weight_targets), bool(i.bias), i.weight_count,
                         BinaryWeights(i.binary_weights), in_shape, out_shape, kernel,
                         stride, padding, bias_count)

    kind = property(lambda s: s.info.kind)
    in_width = property(lambda s: s.info.in_width)
    out_width = property(lambda s: s.info.out_width)
    in_shape = property(lambda s: s.info.in_shape)
    out_shape = property(lambda s: s.info.out_shape)
    activation = property(lambda s: s.info.activation)
    loss = property(lambda s: s.info.loss)

    @property
    def weights(self):
        """A copy of the weights (float32) in the layer's natural shape
        (``info.weight_shape``): dense (out_width, in_width); conv2d
        (channels, kernel_h, kernel_w, in_channels), OHWI; batch norm gamma
        (channels,); max-pool an empty (0,) array.  Assign an array of the
        same shape to replace them."""
        i = self.info
        a = np.empty(i.weight_shape, np.float32)
        if a.size:
            check(lib.htnn_layer_get_weights(self._ptr, a.ctypes.data, a.size),
                  "htnn_layer_get_weights")
        return a

    @weights.setter
    def weights(self, value):
        i = self.info
        a = float_array(value, "weights")
        shape = i.weight_shape
        if a.shape != shape:
            if i.kind == LayerKind.MAXPOOL2D:
                raise ShapeError("weights: layer %d is a max-pool, which has no weights "
                                 "(expected an empty array, got shape %s)" % (i.index, a.shape))
            raise ShapeError("weights: expected shape %s for %s layer %d, got %s"
                             % (shape, i.kind.name.lower(), i.index, a.shape))
        if not a.size:
            return
        check(lib.htnn_layer_set_weights(self._ptr, a.ctypes.data, a.size),
              "htnn_layer_set_weights")
        self._net._generation += 1

    @property
    def bias(self):
        """A copy of the bias (``info.bias_count`` float32: out_width for a
        dense layer, one per channel for conv2d, beta for batch norm, none
        for max-pool; zeros without bias)."""
        i = self.info
        if not i.bias:  # the library may hold unused initial values: the bias is 0
            return np.zeros(i.bias_count, np.float32)
        a = np.empty(i.bias_count, np.float32)
        if a.size:
            check(lib.htnn_layer_get_bias(self._h(), a.ctypes.data, a.size),
                  "htnn_layer_get_bias")
        return a

    @bias.setter
    def bias(self, value):
        i = self.info
        n = i.bias_count
        a = float_array(value, "bias")
        if a.shape != (n,):
            raise ShapeError("bias: expected shape (%d,) for %s layer %d, got %s"
                             % (n, i.kind.name.lower(), i.index, a.shape))
        if not a.size and i.kind == LayerKind.MAXPOOL2D:
            return
        check(lib.htnn_layer_set_bias(self._ptr, a.ctypes.data, a.size), "htnn_layer_set_bias")
        self._net._generation += 1

    @property
    def running_stats(self):
        """A batch-norm layer's running (mean, variance), float32 arrays of
        one value per channel; assign a pair to replace them (e.g. to import
        a model trained elsewhere).  StateError for other kinds of layer."""
        n = self.info.bias_count
        mean, var = np.empty(n, np.float32), np.empty(n, np.float32)
        check(lib.htnn_layer_get_running_stats(self._h(), mean.ctypes.data, var.ctypes.data, n),
              "htnn_layer_get_running_stats")
        return mean, var

    @running_stats.setter
    def running_stats(self, value):
        mean, var = (float_array(v, "running_stats") for v in value)
        n = self.info.bias_count
        if mean.shape != (n,) or var.shape != (n,):
            raise ShapeError("running_stats: expected two arrays of shape (%d,)" % n)
        check(lib.htnn_layer_set_running_stats(self._h(), mean.ctypes.data, var.ctypes.data,
                                               n), "htnn_layer_set_running_stats")
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
        return "<htnn.Layer %d %s %s, loss %s>" % (
            i.index, _describe(i), _act_text(i), i.loss.name.lower())


def _unpickle_net(state):
    net = Net.__new__(Net)
    net.__setstate__(state)
    return net


class Net(Handle):
    """A hard-threshold network.

    ``Net(784, [512, 512, 10])``, ``Net("784-512-512-10")`` or
    ``Net(784, [Dense(512, "qrelu"), Dense(10)])`` build a net: the hidden
    layers default to sign units with the soft-hinge loss and the last layer
    to identity (logits for the softmax output).

    Convolutional nets declare the input's image shape (channels, height,
    width; inputs are NHWC rows) and list Conv2d, MaxPool2d and BatchNorm
    specs, or give the layers in the ``htnn train --arch`` grammar::

        Net(784, [Conv2d(32, 5), MaxPool2d(2), BatchNorm(activation="sign"),
                  Dense(10)], input_shape=(1, 28, 28))
        Net(784, "conv5x5:32,pool2,bn,sign,dense:10", input_shape=(1, 28, 28))
        Net("1x28x28-conv5x5:32,pool2,bn,sign,dense:10")

    Keywords: ``input_shape`` ((channels, height, width), see
    set_input_shape), ``seed`` (1), ``output`` ("softmax" or "hard"),
    ``threads`` (BLAS threads, 0 = leave BLAS alone),
    ``targets_after_update`` (False).  Free it with close() or a ``with``
    block (garbage collection also frees it).
    """

    _free_name = "htnn_net_free"

    def __init__(self, input_width, layers=(), *, input_shape=None, seed=1, output="softmax",
                 threads=0, targets_after_update=False):
        if isinstance(input_width, str):
            if isinstance(layers, str) or layers:
                raise InvalidArgument("give the layers either in the architecture string "
                                      "or as a list, not both")
            input_width, layers = _parse_arch(input_width, True)
            if isinstance(input_width, tuple):
                if input_shape is not None and _shape3(input_shape) != input_width:
                    raise InvalidArgument("input_shape=%r contradicts the architecture's "
                                          "input %s" % (input_shape, _shape_text(input_width)))
                input_shape = input_width
                input_width = input_width[0] * input_width[1] * input_width[2]
        elif isinstance(layers, str):
            layers = _parse_arch(layers, False)[1]
        if input_shape is not None:
            input_shape = _shape3(input_shape)
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
            if input_shape is not None:
                self.set_input_shape(*input_shape)
            for i, spec in enumerate(layers):
                if not isinstance(spec, _SPECS):
                    try:
                        spec = Dense(int(spec))
                    except (TypeError, ValueError):
                        raise InvalidArgument(
                            "layers: expected unit counts or htnn.Dense, Conv2d, MaxPool2d "
                            "or BatchNorm specs, got %r" % (spec,)) from None
                spec._add_to(self, i == len(layers) - 1, hard)
        except BaseException:
            self.close()
            raise

    def _init_wrapper(self, ptr):
        self._set_handle(ptr)
        self._generation = 0
        self._optimizer = None
        self._layers = []
        self._input_shape = None  # as declared by set_input_shape, if it was
        self.last_fit = None

    @classmethod
    def _wrap(cls, ptr):
        net = cls.__new__(cls)
        net._init_wrapper(ptr)
        return net

    from_string = classmethod(lambda cls, arch, **kw: cls(arch, **kw))

    # --- building ------------------------------------------------------------

    def set_input_shape(self, channels, height, width):
        """Declares the input as a feature map of channels x height x width
        (NHWC: each example's row is height x width x channels floats,
        channels fastest; channels * height * width must be the input width,
        else ShapeError).  Needed before a first conv2d or max-pool layer,
        and only allowed while the net has no layers (StateError)."""
        shape = _shape3((channels, height, width))
        check(lib.htnn_net_set_input_shape(self._h, *shape), "htnn_net_set_input_shape")
        self._input_shape = shape

    def _added(self):
        self._generation += 1
        return self.layer(self.layer_count - 1)

    def _need_image(self, what):
        """Without a declared input shape, the input is a width x 1 x 1 map
        on which a padded kernel still fits: refuse rather than build a
        degenerate net."""
        if self.layer_count == 0 and self._input_shape is None:
            raise StateError("%s: declare the input's shape first with "
                             "net.set_input_shape(channels, height, width) or "
                             "Net(..., input_shape=(c, h, w)); without it the input is a "
                             "%d x 1 x 1 map" % (what, self.input_width))

    def add_conv2d(self, channels, kernel=3, *, stride=1, padding=None, activation="identity",
                   qrelu_bits=2, loss="soft_hinge", weight_targets=True, bias=True,
                   binary_weights="none"):
        """Appends a 2-d convolution with `channels` output channels over
        the previous layer's feature map (htnn_net_add_conv2d); returns its
        Layer.  ``kernel``: an int or (height, width); ``padding``: zeros on
        every side, None for (min(kernel) - 1) // 2 (the "same" size for odd
        kernels, as the htnn tool).  Output size per axis:
        (in + 2 * padding - kernel) // stride + 1.  Weights are (channels,
        kernel_h, kernel_w, in_channels) from U(-1/sqrt(fan_in),
        1/sqrt(fan_in)); the activation defaults to identity (put the
        threshold after the pool / batch norm).  ``binary_weights`` as
        add_dense, with one scale per output channel."""
        kh, kw = _kernel(kernel)
        if padding is None:
            padding = max(0, _default_padding(kh, kw))
        self._need_image("add_conv2d")
        c = new(Conv2dOptions, channels=_size(channels, "channels"), kernel_h=kh, kernel_w=kw,
                stride=_size(stride, "stride"), padding=_size(padding, "padding"),
                activation=enum_value(Activation, activation, "activation"),
                qrelu_bits=qrelu_bits, loss=enum_value(Loss, loss, "loss"),
                weight_targets=int(bool(weight_targets)), bias=int(bool(bias)),
                binary_weights=enum_value(BinaryWeights, binary_weights, "binary_weights"))
        ptr = ctypes.c_void_p()
        check(lib.htnn_net_add_conv2d(self._h, _byref(c), _byref(ptr)), "htnn_net_add_conv2d")
        return self._added()

    def add_maxpool2d(self, size=2, *, stride=None, activation="identity", qrelu_bits=2,
                      loss="soft_hinge", weight_targets=True):
        """Appends a max-pool over size x size windows (htnn_net_add_maxpool2d;
        ``stride=None``: equal to size; no padding, so out = (in - size) //
        stride + 1).  Ties go to the first maximum in row-major order.
        Returns its Layer (which has no weights)."""
        self._need_image("add_maxpool2d")
        m = new(MaxPool2dOptions, size=_size(size, "size"),
                stride=0 if stride is None else _size(stride, "stride"),
                activation=enum_value(Activation, activation, "activation"),
                qrelu_bits=qrelu_bits, loss=enum_value(Loss, loss, "loss"),
                weight_targets=int(bool(weight_targets)))
        ptr = ctypes.c_void_p()
        check(lib.htnn_net_add_maxpool2d(self._h, _byref(m), _byref(ptr)),
              "htnn_net_add_maxpool2d")
        return self._added()

    def add_batchnorm(self, *, momentum=0.1, epsilon=1e-5, activation="identity", qrelu_bits=2,
                      loss="soft_hinge", weight_targets=True):
        """Appends batch normalization over the channels of the previous
        layer's output (each unit after a dense layer) (htnn_net_add_batchnorm).
        Training normalises with the batch's statistics and updates running
        ones (r <- (1 - momentum) r + momentum * batch); predict and
        evaluate use the running statistics.  gamma and beta are the
        layer's weights and bias (start 1 and 0).  Returns its Layer."""
        try:
            momentum, epsilon = float(momentum), float(epsilon)
        except (TypeError, ValueError):
            raise InvalidArgument("momentum and epsilon must be numbers, got %r and %r"
                                  % (momentum, epsilon)) from None
        b = new(BatchNormOptions, momentum=momentum, epsilon=epsilon,
                activation=enum_value(Activation, activation, "activation"),
                qrelu_bits=qrelu_bits, loss=enum_value(Loss, loss, "loss"),
                weight_targets=int(bool(weight_targets)))
        ptr = ctypes.c_void_p()
        check(lib.htnn_net_add_batchnorm(self._h, _byref(b), _byref(ptr)),
              "htnn_net_add_batchnorm")
        return self._added()

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
        return self._added()

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

    @property
    def input_shape(self):
        """The input's feature map (channels, height, width): as declared by
        set_input_shape (or a loaded model file), else (input_width, 1, 1)."""
        if self.layer_count:
            return self.layer(0).info.in_shape
        c, h, w = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
        check(lib.htnn_net_get_input_shape(self._h, ctypes.byref(c), ctypes.byref(h),
                                           ctypes.byref(w)), "htnn_net_get_input_shape")
        return (c.value, h.value, w.value)

    def _x(self, x, what="x"):
        """Inputs as count x input_width float32.  Arrays with more than 2
        dimensions are flattened per example; for a net with an image input
        their trailing shape must be NHWC (height, width, channels), or
        (height, width) for one channel, so that an NCHW batch is not
        silently flattened in the wrong order."""
        if np.ndim(x) > 2:
            c, h, w = self.input_shape
            tail = tuple(np.shape(x)[1:])
            if (h, w) != (1, 1) and tail != (h, w, c) and not (
                    c == 1 and tail in ((h, w), (1, h, w))):
                hint = ""
                if tail == (c, h, w):
                    hint = " (this looks like NCHW: use np.transpose(x, (0, 2, 3, 1)))"
                raise ShapeError("%s: expected examples of shape (%d, %d, %d) (height, width, "
                                 "channels: NHWC), got %s%s" % (what, h, w, c, tail, hint))
        return as_features(x, self.input_width, what)

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
        """The architecture as a string accepted by Net(): for dense nets
        over flat inputs '784-512:sign-512:sign-10:identity', else the input
        shape and the ``htnn train --arch`` items, e.g.
        '1x28x28-conv5x5:32,pool2,bn,sign,dense:10' (activations after the
        items whose activation is not the default).  Losses, target
        weighting, biases and binary weights are not part of it."""
        return _format_arch(self.input_shape, [lay.info for lay in self.layers], self.output)

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
        """A description of the net, one line per layer (kind, shapes,
        activation, loss), like ``htnn info``."""
        shape = self.input_shape
        inp = "%d" % self.input_width
        if shape[1:] != (1, 1):
            inp += " (%s)" % _shape_text(shape)
        lines = ["htnn.Net: input %s, %d layers, %d parameters, output %s"
                 % (inp, self.layer_count, self.parameter_count, self.output.name.lower())]
        for lay in self.layers:
            i = lay.info
            lines.append("  %d  %s  %-8s loss %s%s%s%s" % (
                i.index, _describe(i), _act_text(i), i.loss.name.lower().replace("_", "-"),
                "" if i.weight_targets else ", unweighted targets",
                "" if i.bias or i.kind == LayerKind.MAXPOOL2D else ", no bias",
                "" if i.binary_weights == BinaryWeights.NONE
                else ", binary weights (%s)" % i.binary_weights.name.lower()))
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
        net = Net._wrap(out.value)
        net._input_shape = self._input_shape
        return net

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
        state = {"model": self.to_bytes(), "threads": self.threads}
        if self._input_shape is not None:
            state["input_shape"] = self._input_shape
        return state

    def __setstate__(self, state):
        out = ctypes.c_void_p()
        buf = state["model"]
        check(lib.htnn_net_load_buffer(buf, len(buf), _byref(out)), "htnn_net_load_buffer")
        self._init_wrapper(out.value)
        if state.get("threads"):
            self.threads = state["threads"]
        shape = state.get("input_shape")
        if shape is not None:
            shape = tuple(shape)
            if self.layer_count == 0:  # the model file keeps shapes of layers only
                self.set_input_shape(*shape)
            elif self.input_shape == shape:
                self._input_shape = shape

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
        x = self._x(x)
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
        x = self._x(x)
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
        x = self._x(x)
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

    def set_reducer(self, reducer):
        """Trains data-parallel with an htnn.Reducer (sums over the ranks;
        htnn_net_set_reducer), or alone again with None.  Every rank then
        makes the same fit / train_batch calls: fit with the whole data set
        on every rank, or each rank's part with ``shard=(first, total)``;
        train_batch with each rank's rows of the batch.  See htnn.reduce."""
        _reduce.attach(self, reducer)

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
        x = self._x(x)
        y = as_labels(y, x.shape[0])
        res = new(_CBatchResult)
        state = _FitState(None) if isinstance(heuristic, PythonHeuristic) else None
        self._generation += 1
        with _sigint_to_flag(state):
            status = lib.htnn_net_train_batch(h, opt._h, hh, x.ctypes.data, y.ctypes.data,
                                              x.shape[0], _byref(res))
        if heuristic is not None:
            heuristic._raise_pending()
        _reduce.raise_pending(self)
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
        x = self._x(x)
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
            checkpoint=None, checkpoint_every=0, resume=False, shard=None):
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
        - ``shard=(first, total)``, data-parallel (``set_reducer``): x and y
          are examples [first, first + len(x)) of a training set of `total`
          that the ranks share out; the global batches stay those of one
          process (htnn_fit_options.shard_first, doc/distributed.md).

        Returns a FitResult with the per-epoch ``history``.
        """
        if on_interrupt not in ("raise", "return"):
            raise InvalidArgument("on_interrupt must be 'raise' or 'return'")
        h = self._h
        opt = optimizer if optimizer is not None else self.optimizer
        if not isinstance(opt, Optimizer):
            raise InvalidArgument("optimizer must be an htnn.Optimizer")
        hh = self._heuristic_handle(heuristic)
        x = self._x(x)
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
        if shard is not None:  # x, y: examples [first, first + len(x)) of total
            fo.shard_first, fo.shard_total = (_size(v, "shard") for v in shard)
        if validation_data is not None:
            try:
                vx, vy = validation_data
            except (TypeError, ValueError):
                raise InvalidArgument("validation_data must be a pair (x, y)") from None
            vx = self._x(vx, "validation x")
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
        _reduce.raise_pending(self)
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
