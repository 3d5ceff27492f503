"""Target heuristics (include/htnn/heuristic.h): the built-in loss-driven
heuristic, heuristics written in Python (called by the C trainer through the
vtable via ctypes callbacks), layer views and target sets as numpy views."""

import ctypes

import numpy as np

from ._errors import StateError, Status, check
from ._handle import Handle
from . import _lib
from ._lib import DESTROY_FN, SET_TARGETS_FN, HeuristicOps, LayerView as _CView, lib, new
from ._util import (Activation, HillStart, Loss, SearchWeighting, as_features, enum_value,
                    float_array)
from ._errors import ShapeError

__all__ = ["Heuristic", "PythonHeuristic", "LayerView", "Targets", "float_view"]


def float_view(addr, shape, writable=False, owner=None):
    """A numpy float32 array over C memory at `addr` (no copy)."""
    n = 1
    for s in shape:
        n *= s
    if n == 0 or not addr:
        return np.zeros(shape, np.float32)
    buf = (ctypes.c_float * n).from_address(addr)
    if owner is not None:
        buf._owner = owner  # keep the owner alive as long as the array
    a = np.frombuffer(buf, dtype=np.float32).reshape(shape)
    if not writable:
        a.flags.writeable = False
    return a


class LayerView:
    """What a heuristic sees of layer d during one set_targets call (read-only
    numpy views, valid only during that call: copy what you keep).

    Scalars: ``layer`` (d >= 1), ``batch`` (m), ``in_width`` (width of the
    targets to set), ``out_width``, ``activation``, ``loss``,
    ``below_activation``, ``below_qrelu_bits``.  Arrays: ``input`` (H[d-1],
    m x in_width), ``input_z`` (Z[d-1]), ``z`` (Z[d], m x out_width),
    ``weights`` (W[d], out_width x in_width; None when layer d is not
    dense: conv2d, max-pool, batch norm), ``bias`` (b[d]; None as
    weights), ``targets`` (T[d], m x out_width), ``target_weights``, ``grad_z`` (dL/dZ[d]) and
    ``grad_input`` (G = dL/dH[d-1], m x in_width).
    """

    __slots__ = ("_ptr", "_c", "_keep")

    def __init__(self, c_view, ptr, keep=None):
        self._c = c_view
        self._ptr = ptr
        self._keep = keep

    @classmethod
    def _from_c(cls, addr):
        return cls(_CView.from_address(addr), addr)

    @classmethod
    def from_arrays(cls, *, input, z, weights, grad_input, input_z=None, bias=None,
                    targets=None, target_weights=None, grad_z=None, layer=1,
                    activation="identity", loss="soft_hinge", below_activation="sign",
                    below_qrelu_bits=2):
        """Builds a view from numpy arrays, to run a heuristic outside
        training (tests, experiments).  Shapes: input, input_z, grad_input
        m x n_in; z, targets, target_weights, grad_z m x n_out; weights
        n_out x n_in; bias n_out.  Missing arrays default to zeros (z for
        input_z, ones for target_weights)."""
        from ._util import enum_value
        inp = float_array(input, "input")
        if inp.ndim != 2:
            raise ShapeError("input: expected m x n_in, got shape %s" % (inp.shape,))
        m, n_in = inp.shape
        w = as_features(weights, n_in, "weights")
        n_out = w.shape[0]
        keep = [inp, w]

        def arr(a, rows, cols, name, fill=0.0):
            if a is None:
                a = np.full((rows, cols), fill, np.float32)
            a = as_features(a, cols, name)
            if a.shape[0] != rows:
                raise ShapeError("%s: expected %d rows, got %d" % (name, rows, a.shape[0]))
            keep.append(a)
            return a.ctypes.data

        c = new(_CView, layer=layer, batch=m, in_width=n_in, out_width=n_out)
        c.input = inp.ctypes.data
        c.weights = w.ctypes.data
        c.z = arr(z, m, n_out, "z")
        c.input_z = arr(input_z if input_z is not None else inp, m, n_in, "input_z")
        c.bias = arr(None if bias is None else np.reshape(bias, (1, -1)), 1, n_out, "bias")
        c.targets = arr(targets, m, n_out, "targets")
        c.target_weights = arr(target_weights, m, n_out, "target_weights", 1.0)
        c.grad_z = arr(grad_z, m, n_out, "grad_z")
        c.grad_input = arr(grad_input, m, n_in, "grad_input")
        c.activation = enum_value(Activation, activation, "activation")
        c.loss = enum_value(Loss, loss, "loss")
        c.below_activation = enum_value(Activation, below_activation, "below_activation")
        c.below_qrelu_bits = below_qrelu_bits
        keep.append(c)
        return cls(c, ctypes.addressof(c), keep)

    def _cv(self):
        if not self._ptr:
            raise StateError("LayerView used after its set_targets call returned")
        return self._c

    def _arr(self, name, rows, cols):
        return float_view(getattr(self._cv(), name), (rows, cols))

    layer = property(lambda s: s._cv().layer)
    batch = property(lambda s: s._cv().batch)
    in_width = property(lambda s: s._cv().in_width)
    out_width = property(lambda s: s._cv().out_width)
    activation = property(lambda s: Activation(s._cv().activation))
    loss = property(lambda s: Loss(s._cv().loss))
    below_activation = property(lambda s: Activation(s._cv().below_activation))
    below_qrelu_bits = property(lambda s: s._cv().below_qrelu_bits)
    input = property(lambda s: s._arr("input", s.batch, s.in_width))
    input_z = property(lambda s: s._arr("input_z", s.batch, s.in_width))
    z = property(lambda s: s._arr("z", s.batch, s.out_width))
    # None when layer d is not dense (conv2d, max-pool, batch norm): its
    # targets below can only come from grad_input
    weights = property(lambda s: s._arr("weights", s.out_width, s.in_width)
                       if s._cv().weights else None)
    bias = property(lambda s: s._arr("bias", 1, s.out_width)[0] if s._cv().bias else None)
    targets = property(lambda s: s._arr("targets", s.batch, s.out_width))
    target_weights = property(lambda s: s._arr("target_weights", s.batch, s.out_width))
    grad_z = property(lambda s: s._arr("grad_z", s.batch, s.out_width))
    grad_input = property(lambda s: s._arr("grad_input", s.batch, s.in_width))

    def loss(self, targets, reach_cost=0.0):
        """The combinatorial objective J of a target set (batch x in_width,
        -1 / +1) for this layer, as hill climbing and the exhaustive
        heuristic score it (htnn_layer_view_loss; newer libraries only)."""
        fn = _lib.optional("htnn_layer_view_loss")
        t = as_features(targets, self.in_width, "targets")
        if t.shape[0] != self.batch:
            raise ShapeError("targets: expected %d rows, got %d" % (self.batch, t.shape[0]))
        self._cv()
        out = ctypes.c_double()
        check(fn(self._ptr, t.ctypes.data, reach_cost, ctypes.byref(out)),
              "htnn_layer_view_loss")
        return out.value

    def __repr__(self):
        if not self._ptr:
            return "<htnn.LayerView (expired)>"
        return "<htnn.LayerView layer %d, batch %d, %d -> %d>" % (
            self.layer, self.batch, self.in_width, self.out_width)


class Heuristic(Handle):
    """A target heuristic handle.  ``Heuristic.loss()`` is the built-in
    loss-driven heuristic (T = sign(-G), weight |G|), which training also uses
    when no heuristic is given.  Subclass :class:`PythonHeuristic` (or use
    ``Heuristic.from_function``) to write one in Python."""

    _free_name = "htnn_heuristic_free"

    def __init__(self, _ptr=None):
        if _ptr is None:
            raise TypeError("use Heuristic.loss(), Heuristic.from_function() or subclass "
                            "htnn.PythonHeuristic")
        self._set_handle(_ptr)

    @classmethod
    def loss(cls):
        """The built-in loss-driven heuristic."""
        out = ctypes.c_void_p()
        check(lib.htnn_heuristic_create_loss(ctypes.byref(out)), "htnn_heuristic_create_loss")
        return Heuristic(out.value)

    @classmethod
    def hill(cls, max_sweeps=16, flips_per_sweep=1, start="outputs", reach_cost=0.0,
             weighting="flip"):
        """The built-in hill-climbing heuristic (newer libraries only;
        UnsupportedError otherwise).  See htnn_hill_options in heuristic.h."""
        fn = _lib.optional("htnn_heuristic_create_hill")
        o = new(_lib.HillOptions, max_sweeps=max_sweeps, flips_per_sweep=flips_per_sweep,
                start=enum_value(HillStart, start, "start"), reach_cost=reach_cost,
                weighting=enum_value(SearchWeighting, weighting, "weighting"))
        out = ctypes.c_void_p()
        check(fn(ctypes.byref(o), ctypes.byref(out)), "htnn_heuristic_create_hill")
        return Heuristic(out.value)

    @classmethod
    def exhaustive(cls, max_width=16, reach_cost=0.0, weighting="flip"):
        """The built-in exhaustive heuristic (newer libraries only).  See
        htnn_exhaustive_options in heuristic.h."""
        fn = _lib.optional("htnn_heuristic_create_exhaustive")
        o = new(_lib.ExhaustiveOptions, max_width=max_width, reach_cost=reach_cost,
                weighting=enum_value(SearchWeighting, weighting, "weighting"))
        out = ctypes.c_void_p()
        check(fn(ctypes.byref(o), ctypes.byref(out)), "htnn_heuristic_create_exhaustive")
        return Heuristic(out.value)

    @property
    def stats(self):
        """Search effort of a combinatorial heuristic (dict: calls, rows,
        evaluations, flips, sweeps; zeros for others)."""
        fn = _lib.optional("htnn_heuristic_get_stats")
        s = new(_lib.SearchStats)
        check(fn(self._h, ctypes.byref(s)), "htnn_heuristic_get_stats")
        return {k: getattr(s, k) for k, _ in s._fields_ if k != "struct_size"}

    @classmethod
    def from_function(cls, fn, name=None):
        """A heuristic calling ``fn(view, targets, weights)`` (see
        PythonHeuristic.set_targets)."""
        return _FunctionHeuristic(fn, name or getattr(fn, "__name__", "python"))

    @property
    def name(self):
        return lib.htnn_heuristic_name(self._h).decode("utf-8", "replace")

    def set_targets(self, view, targets, weights):
        """Runs this heuristic on `view` as the trainer does, writing into
        `targets` and `weights` (float32 C-contiguous, batch x in_width,
        modified in place).  Handy for delegating from a Python heuristic."""
        shape = (view.batch, view.in_width)
        for a, what in ((targets, "targets"), (weights, "weights")):
            if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and
                    a.flags.c_contiguous and a.flags.writeable and a.shape == shape):
                raise ShapeError("%s: expected a writable float32 C-contiguous array of "
                                 "shape %s" % (what, shape))
        view._cv()
        self._error = None
        status = lib.htnn_heuristic_set_targets(self._h, view._ptr, targets.ctypes.data,
                                                weights.ctypes.data)
        self._raise_pending()
        check(status, "htnn_heuristic_set_targets")

    # Python heuristics record an exception raised inside the callback here;
    # the training call re-raises it once the C call has returned.
    _error = None

    def _raise_pending(self):
        e, self._error = self._error, None
        if e is not None:
            raise e

    def __repr__(self):
        if self.closed:
            return "<htnn.Heuristic (closed)>"
        return "<htnn.Heuristic %r>" % self.name


class PythonHeuristic(Heuristic):
    """Base class of heuristics written in Python.  Override
    ``set_targets(view, targets, weights)``: `view` is a :class:`LayerView`,
    `targets` and `weights` are writable float32 numpy arrays (batch x
    in_width) over the library's buffers, arriving filled with the current
    outputs as +-1 targets with weight 1.  Write targets in {-1, 0, +1} and
    finite weights >= 0 in place; return None (or an htnn status).  An
    exception stops training and propagates from the training call.

    The C library calls it through the heuristic vtable (htnn_heuristic_ops)
    with a ctypes callback; ``close()`` frees the handle."""

    def __init__(self, name=None):
        name = name or type(self).__name__
        self._c_fn = SET_TARGETS_FN(self._c_set_targets)
        ops = new(HeuristicOps, name=name.encode("utf-8"), set_targets=self._c_fn)
        ops.destroy = DESTROY_FN()  # NULL: the state is this Python object
        out = ctypes.c_void_p()
        check(lib.htnn_heuristic_create(ctypes.byref(ops), None, ctypes.byref(out)),
              "htnn_heuristic_create")
        Heuristic.__init__(self, out.value)

    def set_targets(self, view, targets, weights):
        raise NotImplementedError("PythonHeuristic subclasses implement set_targets")

    def _c_set_targets(self, state, view_addr, t_addr, w_addr):
        view = None
        try:
            view = LayerView._from_c(view_addr)
            shape = (view.batch, view.in_width)
            t = float_view(t_addr, shape, writable=True)
            w = float_view(w_addr, shape, writable=True)
            r = self.set_targets(view, t, w)
            return 0 if r is None else int(r)
        except BaseException as e:  # noqa: B902 - re-raised after the C call
            self._error = e
            return int(Status.ECALLBACK)
        finally:
            if view is not None:
                view._ptr = None

    def close(self):
        super().close()
        self._c_fn = None  # the C side no longer calls it


class _FunctionHeuristic(PythonHeuristic):
    def __init__(self, fn, name):
        self._fn = fn
        super().__init__(name)

    def set_targets(self, view, targets, weights):
        return self._fn(view, targets, weights)


class Targets:
    """The target set of a net's last training batch: for hidden layer k
    (the output of net layer k, k = 0..L-2), ``targets[k]`` is a pair
    ``(values, weights)`` of read-only float32 numpy views (batch x width)
    into the net's buffers.  The views are valid until the next call that
    trains, predicts with or changes the net; ``copy()`` keeps them."""

    def __init__(self, net, ptr):
        self._net = net
        self._ptr = ptr
        self._gen = net._generation

    def _check(self):
        if self._net.closed or self._gen != self._net._generation:
            raise StateError("these targets are stale: the net was trained, used or "
                             "changed since (copy() them to keep them)")
        return self._ptr

    def __len__(self):
        return int(lib.htnn_targets_layer_count(self._check()))

    @property
    def batch(self):
        return int(lib.htnn_targets_batch(self._check()))

    def __getitem__(self, k):
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("target layer %d out of range (0..%d)" % (k, n - 1))
        v, w = ctypes.c_void_p(), ctypes.c_void_p()
        rows, cols = ctypes.c_size_t(), ctypes.c_size_t()
        check(lib.htnn_targets_get(self._ptr, k, ctypes.byref(v), ctypes.byref(w),
                                   ctypes.byref(rows), ctypes.byref(cols)), "htnn_targets_get")
        shape = (rows.value, cols.value)
        return (float_view(v.value, shape, owner=self._net),
                float_view(w.value, shape, owner=self._net))

    def __iter__(self):
        for k in range(len(self)):
            yield self[k]

    def copy(self):
        """A list of (values, weights) copies, one pair per hidden layer."""
        return [(v.copy(), w.copy()) for v, w in self]

    def __repr__(self):
        try:
            return "<htnn.Targets %d layers, batch %d>" % (len(self), self.batch)
        except StateError:
            return "<htnn.Targets (stale)>"
