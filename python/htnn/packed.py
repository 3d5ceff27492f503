"""PackedNet: bit-packed, inference-only nets (include/htnn/packed.h; bound
when the loaded library has it)."""

import ctypes
import enum
import os

import numpy as np

from . import _lib
from ._errors import ShapeError, check
from ._handle import Handle
from ._util import as_features, enum_value

__all__ = ["PackedNet", "Kernel"]


class Kernel(enum.IntEnum):
    """Kernel families of the packed engine."""
    AUTO = 0
    PORTABLE = 1
    AVX2 = 2
    AVX512 = 3


def _fn(name):
    return _lib.optional(name)


class PackedNet(Handle):
    """A read-only net predicting with bit operations (XNOR/popcount), made
    by ``Net.pack()`` or loaded with ``PackedNet.load``.  Every layer but the
    last must have sign activations.  Predictions follow Net.predict's rule.
    """

    _free_name = "htnn_packed_free"

    def __init__(self, _ptr=None):
        if _ptr is None:
            raise TypeError("use Net.pack(), PackedNet.load() or PackedNet.from_bytes()")
        self._set_handle(_ptr)

    @classmethod
    def from_net(cls, net):
        out = ctypes.c_void_p()
        check(_fn("htnn_net_pack")(net._h, ctypes.byref(out)), "htnn_net_pack")
        return cls(out.value)

    @classmethod
    def load(cls, path):
        """Loads a packed model file."""
        out = ctypes.c_void_p()
        check(_fn("htnn_packed_load")(os.fsencode(path), ctypes.byref(out)), "htnn_packed_load")
        return cls(out.value)

    @classmethod
    def from_bytes(cls, data):
        buf = bytes(data)
        out = ctypes.c_void_p()
        check(_fn("htnn_packed_load_buffer")(buf, len(buf), ctypes.byref(out)),
              "htnn_packed_load_buffer")
        return cls(out.value)

    def save(self, path):
        """Saves atomically (the packed model file format)."""
        check(_fn("htnn_packed_save")(self._h, os.fsencode(path)), "htnn_packed_save")

    def to_bytes(self):
        data, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(_fn("htnn_packed_save_buffer")(self._h, ctypes.byref(data), ctypes.byref(size)),
              "htnn_packed_save_buffer")
        try:
            return ctypes.string_at(data.value, size.value)
        finally:
            _lib.lib.htnn_free(data.value)

    def export_c(self, prefix=None):
        """Self-contained C source predicting like this net (static tables,
        no malloc, no library), defining ``int PREFIX_predict(const float *x,
        float *logits)``; prefix None means "htnn_model" (newer libraries
        only)."""
        fn = _fn("htnn_packed_export_c")
        text, size = ctypes.c_void_p(), ctypes.c_size_t()
        check(fn(self._h, None if prefix is None else prefix.encode("utf-8"),
                 ctypes.byref(text), ctypes.byref(size)), "htnn_packed_export_c")
        try:
            return ctypes.string_at(text.value, size.value).decode("utf-8")
        finally:
            _lib.lib.htnn_free(text.value)

    def __reduce__(self):
        return (PackedNet.from_bytes, (self.to_bytes(),))

    input_width = property(lambda s: int(_fn("htnn_packed_input_width")(s._h)))
    output_width = property(lambda s: int(_fn("htnn_packed_output_width")(s._h)))
    layer_count = property(lambda s: int(_fn("htnn_packed_layer_count")(s._h)))
    class_count = property(lambda s: int(_fn("htnn_packed_class_count")(s._h)))

    @property
    def kernel(self):
        """The kernel in use (a Kernel); assign a Kernel or name to change it
        (UnsupportedError if this CPU cannot run it)."""
        return Kernel(_fn("htnn_packed_kernel_in_use")(self._h))

    @kernel.setter
    def kernel(self, value):
        check(_fn("htnn_packed_set_kernel")(self._h, enum_value(Kernel, value, "kernel")),
              "htnn_packed_set_kernel")

    @property
    def threads(self):
        """Threads a prediction call runs on (1 after pack or load).  Assign
        n >= 2 to give this net n - 1 helper threads of its own (at most
        HTNN_PACKED_MAX_THREADS = 16, larger values are clamped; 0 means 1;
        negative: InvalidArgument).  Results are identical for every value;
        calls of 64 examples or fewer run on the caller's thread (newer
        libraries only)."""
        return int(_fn("htnn_packed_threads")(self._h))

    @threads.setter
    def threads(self, value):
        check(_fn("htnn_packed_set_threads")(self._h, int(value)), "htnn_packed_set_threads")

    def predict_logits(self, x, out=None):
        h = self._h
        x = as_features(x, self.input_width)
        shape = (x.shape[0], self.output_width)
        if out is None:
            out = np.empty(shape, np.float32)
        elif not (isinstance(out, np.ndarray) and out.dtype == np.float32 and
                  out.flags.c_contiguous and out.shape == shape):
            raise ShapeError("out: expected a float32 C-contiguous array of shape %s" % (shape,))
        check(_fn("htnn_packed_predict_logits")(h, x.ctypes.data, x.shape[0], out.ctypes.data),
              "htnn_packed_predict_logits")
        return out

    def predict(self, x):
        h = self._h
        x = as_features(x, self.input_width)
        out = np.empty(x.shape[0], np.int32)
        check(_fn("htnn_packed_predict")(h, x.ctypes.data, x.shape[0], out.ctypes.data),
              "htnn_packed_predict")
        return out

    def predict_proba(self, x):
        """Softmax of the logits (a one-unit output: sigmoid)."""
        z = self.predict_logits(x).astype(np.float64)
        if z.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def __repr__(self):
        if self.closed:
            return "<htnn.PackedNet (closed)>"
        name = _fn("htnn_packed_kernel_name")(int(self.kernel)).decode()
        return "<htnn.PackedNet %d layers, %d -> %d, kernel %s>" % (
            self.layer_count, self.input_width, self.output_width, name)
