"""Enumerations and array conversion shared by the package."""

import enum

import numpy as np

from ._errors import DTypeError, InvalidArgument, ShapeError

__all__ = ["Activation", "Loss", "Output", "OptimizerKind", "Schedule", "LayerKind",
           "BinaryWeights", "SearchWeighting", "HillStart", "Separability", "Solver",
           "enum_value", "as_features", "as_labels", "float_array"]


class Activation(enum.IntEnum):
    IDENTITY = 0
    SIGN = 1
    STEP = 2
    QRELU = 3
    RELU = 4


class Loss(enum.IntEnum):
    SOFT_HINGE = 0
    SATURATED_HINGE = 1
    HINGE = 2
    PERCEPTRON = 3
    LINEAR = 4


class Output(enum.IntEnum):
    SOFTMAX = 0
    HARD_THRESHOLD = 1


class OptimizerKind(enum.IntEnum):
    SGD = 0
    ADAM = 1


class Schedule(enum.IntEnum):
    CONSTANT = 0
    STEP = 1
    COSINE = 2


class LayerKind(enum.IntEnum):
    DENSE = 1
    CONV2D = 2
    MAXPOOL2D = 3
    BATCHNORM = 4


class BinaryWeights(enum.IntEnum):
    """htnn_dense_options.binary_weights."""
    NONE = 0
    SCALED = 1
    SIGN = 2


class SearchWeighting(enum.IntEnum):
    """Target weights of the combinatorial heuristics (hill, exhaustive)."""
    FLIP = 0
    UNIT = 1
    GRADIENT = 2


class HillStart(enum.IntEnum):
    OUTPUTS = 0
    LOSS = 1


class Separability(enum.IntEnum):
    UNDECIDED = 0
    SEPARABLE = 1
    NOT_SEPARABLE = 2


class Solver(enum.IntEnum):
    """Convex per-unit solver of full-batch FTPROP."""
    AUTO = 0
    PERCEPTRON = 1
    LP = 2


_ALIASES = {Loss: {"SSTE": "SATURATED_HINGE", "STE": "LINEAR"},
            Output: {"HARD": "HARD_THRESHOLD"}}


def enum_value(cls, value, what):
    """An enum member from a member, an int or a case-insensitive name
    ('soft-hinge', 'soft_hinge', 'SOFT_HINGE')."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_").replace(" ", "_")
        key = _ALIASES.get(cls, {}).get(key, key)
        try:
            return cls[key]
        except KeyError:
            pass
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        try:
            return cls(int(value))
        except ValueError:
            pass
    names = ", ".join(m.name.lower() for m in cls)
    raise InvalidArgument("%s: %r is not one of %s" % (what, value, names))


def _check_kind(a, what):
    if a.dtype.kind not in "fiub":
        raise DTypeError("%s: dtype %s cannot be used as float32 data (expected real "
                         "numbers; float32 C-contiguous arrays are used without a copy)"
                         % (what, a.dtype))


def float_array(x, what):
    """x as a float32 C-contiguous ndarray: the same object when it already
    is one, else a converted copy; non-numeric dtypes raise DTypeError."""
    if type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    a = np.asarray(x)
    _check_kind(a, what)
    return np.ascontiguousarray(a, dtype=np.float32)


def as_features(x, width, what="x"):
    """Inputs as a (count, width) float32 C-contiguous array.  Arrays with
    more than 2 dimensions (e.g. images count x 28 x 28) are flattened per
    example.  float32 C-contiguous input is passed on without a copy."""
    a = float_array(x, what)
    if a.ndim == 1:
        raise ShapeError("%s: expected a 2-D array (count x %d), got 1-D shape %s; use "
                         "x.reshape(1, -1) for a single example" % (what, width, a.shape))
    if a.ndim == 0:
        raise ShapeError("%s: expected a 2-D array (count x %d), got a scalar" % (what, width))
    if a.ndim > 2:
        a = a.reshape(a.shape[0], -1)
    if a.shape[1] != width:
        raise ShapeError("%s: expected %d features per example, got %d (shape %s)"
                         % (what, width, a.shape[1], np.shape(x)))
    return a


def as_labels(y, count, what="y"):
    """Labels as an int32 C-contiguous array of `count` entries; integer
    dtypes are converted (range-checked), others refused."""
    if type(y) is np.ndarray and y.dtype == np.int32 and y.flags.c_contiguous:
        a = y
    else:
        a = np.asarray(y)
        if a.dtype.kind == "b":
            a = a.astype(np.int32)
        if a.dtype.kind not in "iu":
            raise DTypeError("%s: labels must be integers (class indices 0..k-1), got dtype "
                             "%s; convert with y.astype(np.int32) or use HTNNClassifier for "
                             "arbitrary labels" % (what, a.dtype))
        if a.dtype != np.int32:
            if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
                raise InvalidArgument("%s: label values do not fit in int32" % what)
            a = a.astype(np.int32)
        a = np.ascontiguousarray(a)
    if a.ndim != 1:
        raise ShapeError("%s: expected a 1-D array of %d labels, got shape %s"
                         % (what, count, a.shape))
    if a.shape[0] != count:
        raise ShapeError("%s: %d labels for %d examples" % (what, a.shape[0], count))
    return a
