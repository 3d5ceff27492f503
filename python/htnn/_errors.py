"""Exceptions: one htnn.Error subclass per htnn_status, each also deriving
from the built-in exception a Python user would try to catch."""

import enum

from ._lib import lib

__all__ = ["Status", "Error", "InvalidArgument", "DTypeError", "OutOfMemory", "FileError",
           "FormatError", "VersionError", "ShapeError", "NumericError", "StateError",
           "UnsupportedError", "LimitError", "CallbackError", "TrainingInterrupted", "check"]


class Status(enum.IntEnum):
    """htnn_status codes (include/htnn/common.h)."""
    OK = 0
    EINVAL = -1
    ENOMEM = -2
    EIO = -3
    EFORMAT = -4
    EVERSION = -5
    ESHAPE = -6
    ENUMERIC = -7
    ESTATE = -8
    EUNSUPPORTED = -9
    ELIMIT = -10
    ECALLBACK = -11


class Error(Exception):
    """A libhtnn call failed.

    Attributes: ``status`` (a :class:`Status`, or None for errors detected by
    the Python layer before any C call), ``detail`` (``htnn_last_error()``
    text, or the Python-side explanation) and ``function`` (the C function).
    """

    def __init__(self, message, status=None, detail="", function=None):
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.function = function


class InvalidArgument(Error, ValueError):
    """HTNN_EINVAL: a bad argument (NULL, zero size, bad enum, bad label)."""


class DTypeError(InvalidArgument, TypeError):
    """An array of a dtype that cannot be converted (Python side)."""


class OutOfMemory(Error, MemoryError):
    """HTNN_ENOMEM."""


class FileError(Error, OSError):
    """HTNN_EIO: reading or writing a file failed (missing file, ...)."""

    def __str__(self):  # OSError.__str__ would print the args tuple
        return Exception.__str__(self)


class FormatError(Error, ValueError):
    """HTNN_EFORMAT: a file is not in the expected format or is corrupt."""


class VersionError(FormatError):
    """HTNN_EVERSION: unsupported file format version."""


class ShapeError(Error, ValueError):
    """HTNN_ESHAPE: array or layer dimensions do not match."""


class NumericError(Error, ValueError):
    """HTNN_ENUMERIC: NaN or infinity in inputs, weights or the loss."""


class StateError(Error, RuntimeError):
    """HTNN_ESTATE: the call is not valid in the object's current state
    (also: using a closed handle)."""


class UnsupportedError(Error, NotImplementedError):
    """HTNN_EUNSUPPORTED: not supported by this build or library version."""


class LimitError(Error, RuntimeError):
    """HTNN_ELIMIT: a configured limit would be exceeded."""


class CallbackError(Error, RuntimeError):
    """HTNN_ECALLBACK: a callback (e.g. a heuristic) reported failure or
    returned invalid targets.  An exception raised by Python code inside a
    callback propagates itself instead."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during Net.fit: training stopped cleanly after the current
    batch (the net is valid).  ``result`` holds the partial FitResult."""

    def __init__(self, result=None):
        super().__init__("training interrupted")
        self.result = result


_CLASSES = {
    Status.EINVAL: InvalidArgument, Status.ENOMEM: OutOfMemory, Status.EIO: FileError,
    Status.EFORMAT: FormatError, Status.EVERSION: VersionError, Status.ESHAPE: ShapeError,
    Status.ENUMERIC: NumericError, Status.ESTATE: StateError,
    Status.EUNSUPPORTED: UnsupportedError, Status.ELIMIT: LimitError,
    Status.ECALLBACK: CallbackError,
}


def error_for(status, function):
    """The exception for a non-OK status, carrying htnn_last_error()."""
    detail = (lib.htnn_last_error() or b"").decode("utf-8", "replace")
    text = (lib.htnn_strerror(status) or b"").decode("utf-8", "replace")
    try:
        status = Status(status)
        cls = _CLASSES.get(status, Error)
    except ValueError:  # a code newer than this package
        cls = Error
    msg = "%s: %s" % (function, text)
    if detail:
        msg += ": " + detail
    return cls(msg, status, detail, function)


def check(status, function):
    """Raises the matching Error for a non-OK status."""
    if status != 0:
        raise error_for(status, function)
