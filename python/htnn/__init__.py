"""htnn: Python bindings (ctypes + numpy) for libhtnn, hard-threshold neural
networks trained with feasible target propagation (FTPROP-MB).

    import htnn
    train = htnn.load_fashion_mnist("train")
    test = htnn.load_fashion_mnist("test")
    with htnn.Net("784-512-512-10", threads=1) as net:
        net.fit(train.x, train.y, epochs=10, callback=htnn.ProgressBar())
        print(net.evaluate(test.x, test.y).accuracy)
        net.save("model.htnn")

See README.md (section Python) and help(htnn.Net).
"""

__version__ = "0.4.0"

from . import _lib
from ._errors import (CallbackError, DTypeError, Error, FileError, FormatError,
                      InvalidArgument, LimitError, NumericError, OutOfMemory, ShapeError,
                      StateError, Status, TrainingInterrupted, UnsupportedError, VersionError)


def _version_tuple(n):
    return (n // 10000, n // 100 % 100, n % 100)


library_version = _version_tuple(_lib.lib.htnn_version())
library_version_string = _lib.lib.htnn_version_string().decode()
library_path = _lib.path

_want = tuple(int(p) for p in __version__.split("."))


def _compatible(lib, want):
    """Same ABI major version, and at least the minor version the package
    was written for."""
    return lib[0] == want[0] and lib[:2] >= want[:2]


if not _compatible(library_version, _want):
    raise ImportError("htnn %s needs libhtnn %d.%d.x or a later %d.x, but %s is %s"
                      % (__version__, _want[0], _want[1], _want[0], library_path,
                         library_version_string))

from ._util import (Activation, BinaryWeights, HillStart, LayerKind, Loss, OptimizerKind, Output,  # noqa: E402
                    Schedule, SearchWeighting, Separability, Solver)
from .optimizer import Optimizer  # noqa: E402
from .heuristic import Heuristic, LayerView, PythonHeuristic, Targets  # noqa: E402
from .net import (BatchNorm, BatchResult, Conv2d, Dense, Evaluation, FitResult,  # noqa: E402
                  FtpropResult, Layer, LayerInfo, MaxPool2d, Net, Progress, separable)
from .data import (FASHION_MNIST_CLASSES, Dataset, fashion_mnist_dir, idx_count,  # noqa: E402
                   load_csv, load_fashion_mnist, load_idx, load_idx_rows)
from .reduce import Reducer, shard  # noqa: E402
from .packed import Kernel, PackedNet  # noqa: E402
from .progress import ProgressBar  # noqa: E402


def __getattr__(name):
    # HTNNClassifier is loaded on first use: its module imports scikit-learn
    # when installed, which takes seconds.
    if name in ("HTNNClassifier", "NotFittedError"):
        from . import sklearn
        return getattr(sklearn, name)
    raise AttributeError("module 'htnn' has no attribute %r" % name)


def __dir__():
    return sorted(set(globals()) | {"HTNNClassifier", "NotFittedError"})

load = Net.load


def strerror(status):
    """Static text of an htnn_status code."""
    return _lib.lib.htnn_strerror(int(status)).decode()


def last_error():
    """htnn_last_error() of the calling thread."""
    return _lib.lib.htnn_last_error().decode("utf-8", "replace")


def clear_error():
    _lib.lib.htnn_clear_error()


def has_function(name):
    """True if the loaded libhtnn exports `name`, e.g. "htnn_net_ftprop"
    (functions added after 0.1.0 are bound only when present)."""
    return _lib.has(name)


__all__ = ["Net", "Layer", "Dense", "Conv2d", "MaxPool2d", "BatchNorm", "LayerInfo", "Optimizer",
           "Heuristic", "PythonHeuristic",
           "LayerView", "Targets", "Dataset", "HTNNClassifier", "ProgressBar", "Progress",
           "FitResult", "BatchResult", "Evaluation", "load", "load_idx", "load_idx_rows",
           "idx_count", "Reducer", "shard", "load_csv",
           "load_fashion_mnist", "fashion_mnist_dir", "FASHION_MNIST_CLASSES",
           "Activation", "Loss", "Output", "OptimizerKind", "Schedule", "LayerKind", "Status",
           "BinaryWeights", "SearchWeighting", "HillStart", "Separability", "Solver", "FtpropResult",
           "separable", "has_function", "PackedNet", "Kernel",
           "Error", "InvalidArgument", "DTypeError", "OutOfMemory", "FileError", "FormatError",
           "VersionError", "ShapeError", "NumericError", "StateError", "UnsupportedError",
           "LimitError", "CallbackError", "TrainingInterrupted", "strerror", "last_error",
           "clear_error", "library_version", "library_path", "__version__"]
