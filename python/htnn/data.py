"""Data sets (include/htnn/data.h): IDX and CSV readers whose features and
labels are numpy views of the library's arrays (no copy)."""

import ctypes
import os

import numpy as np

from ._errors import InvalidArgument, ShapeError, check
from ._handle import Handle
from ._lib import CsvOptions, lib, new
from ._util import as_features, as_labels

__all__ = ["Dataset", "load_idx", "load_idx_rows", "idx_count", "load_csv",
           "load_fashion_mnist", "fashion_mnist_dir", "FASHION_MNIST_CLASSES"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


class _Memory:
    """Exposes C memory to numpy while keeping its owner alive."""

    def __init__(self, owner, addr, shape, typestr):
        self.owner = owner
        self.__array_interface__ = {"data": (addr, False), "shape": shape,
                                    "typestr": typestr, "version": 3}


class Dataset(Handle):
    """A labelled data set owned by the library.  ``x`` (count x width
    float32) and ``y`` (count int32, -1 when unlabelled) are numpy views of
    its arrays; they keep the data set alive.  ``close()`` frees it at once
    (views obtained before must not be used afterwards)."""

    _free_name = "htnn_data_free"

    def __init__(self, x, y=None):
        """A data set holding a copy of the arrays x (count x width) and y."""
        if np.ndim(x) != 2:
            raise ShapeError("x: expected a 2-D array (count x width), got shape %s"
                             % (np.shape(x),))
        x = as_features(x, np.shape(x)[1])
        ya = None if y is None else as_labels(y, x.shape[0])
        out = ctypes.c_void_p()
        check(lib.htnn_data_create(x.ctypes.data, None if ya is None else ya.ctypes.data,
                                   x.shape[0], x.shape[1], ctypes.byref(out)),
              "htnn_data_create")
        self._set_handle(out.value)

    @classmethod
    def _wrap(cls, ptr):
        d = cls.__new__(cls)
        d._set_handle(ptr)
        return d

    def __len__(self):
        return int(lib.htnn_data_count(self._h))

    width = property(lambda s: int(lib.htnn_data_width(s._h)))
    class_count = property(lambda s: int(lib.htnn_data_class_count(s._h)))

    @property
    def shape(self):
        """Shape of one example as the file gave it (channels, rows, cols)."""
        c, r, k = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
        check(lib.htnn_data_shape(self._h, ctypes.byref(c), ctypes.byref(r), ctypes.byref(k)),
              "htnn_data_shape")
        return (c.value, r.value, k.value)

    @property
    def x(self):
        n, w = len(self), self.width
        addr = lib.htnn_data_features(self._h)
        if n == 0 or not addr:
            return np.zeros((n, w), np.float32)
        return np.asarray(_Memory(self, addr, (n, w), "<f4"))

    @property
    def y(self):
        n = len(self)
        addr = lib.htnn_data_labels(self._h)
        if n == 0 or not addr:
            return np.zeros(n, np.int32)
        a = np.asarray(_Memory(self, addr, (n,), "<i4"))
        a.flags.writeable = False
        return a

    def subset(self, first, count):
        """A new data set with examples [first, first + count)."""
        out = ctypes.c_void_p()
        check(lib.htnn_data_subset(self._h, first, count, ctypes.byref(out)),
              "htnn_data_subset")
        return Dataset._wrap(out.value)

    def __iter__(self):  # x, y = dataset
        return iter((self.x, self.y))

    def __repr__(self):
        if self.closed:
            return "<htnn.Dataset (closed)>"
        return "<htnn.Dataset %d x %d, %d classes>" % (len(self), self.width, self.class_count)


def load_idx(images, labels=None, scale=True):
    """Reads IDX files (plain or gzip'd); unsigned bytes are scaled to [0, 1]
    when `scale`.  Returns a Dataset (``x, y = load_idx(...)`` unpacks)."""
    out = ctypes.c_void_p()
    check(lib.htnn_data_load_idx(os.fsencode(images),
                                 None if labels is None else os.fsencode(labels),
                                 1 if scale else 0, ctypes.byref(out)), "htnn_data_load_idx")
    return Dataset._wrap(out.value)


def load_idx_rows(images, labels=None, first=0, count=None, scale=True):
    """Reads only examples [first, first + count) of IDX files (count None:
    to the end), as load_idx would return them: for one rank's shard of a
    data-parallel fit (htnn.shard, Net.fit(shard=...)).  A plain file is
    read from the first row by seeking; a gzip'd one is decompressed up to
    the last."""
    if count is None:
        count = idx_count(images) - first
    out = ctypes.c_void_p()
    check(lib.htnn_data_load_idx_rows(os.fsencode(images),
                                      None if labels is None else os.fsencode(labels),
                                      1 if scale else 0, first, count, ctypes.byref(out)),
          "htnn_data_load_idx_rows")
    return Dataset._wrap(out.value)


def idx_count(path):
    """The number of examples an IDX file declares (its header only)."""
    n = ctypes.c_size_t()
    check(lib.htnn_data_idx_count(os.fsencode(path), ctypes.byref(n)), "htnn_data_idx_count")
    return n.value


def load_csv(path, label_column=0, header="auto", delimiter=",", scale=False):
    """Reads a CSV file of numbers.  label_column: an index, "last" or None;
    header: True, False or "auto"; scale: per-column min-max to [0, 1]."""
    o = new(CsvOptions)
    if label_column is None or label_column == "none":
        o.label_column = -2
    elif label_column == "last":
        o.label_column = -1
    else:
        o.label_column = int(label_column)
    if header == "auto" or header is None:
        o.header = -1
    elif header in (True, False):
        o.header = int(bool(header))
    else:
        raise InvalidArgument("header must be True, False or 'auto'")
    d = delimiter.encode() if isinstance(delimiter, str) else bytes(delimiter)
    if len(d) != 1:
        raise InvalidArgument("delimiter must be one character")
    o.delimiter = d
    o.scale = 1 if scale else 0
    out = ctypes.c_void_p()
    check(lib.htnn_data_load_csv(os.fsencode(path), ctypes.byref(o), ctypes.byref(out)),
          "htnn_data_load_csv")
    return Dataset._wrap(out.value)


def fashion_mnist_dir():
    """$HTNN_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist (Debian's
    dataset-fashion-mnist package), as the htnn tool uses."""
    return os.environ.get("HTNN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(kind="train", directory=None, limit=None):
    """Fashion-MNIST ("train": 60000, "test"/"t10k": 10000 examples), pixels
    scaled to [0, 1], as a Dataset (x: count x 784 float32, y: int32)."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}.get(kind)
    if prefix is None:
        raise InvalidArgument("kind must be 'train' or 'test'")
    d = directory or fashion_mnist_dir()

    def find(stem):
        for ext in (".gz", ""):
            p = os.path.join(d, stem + ext)
            if os.path.exists(p):
                return p
        return os.path.join(d, stem + ".gz")  # let the library report it

    data = load_idx(find(prefix + "-images-idx3-ubyte"), find(prefix + "-labels-idx1-ubyte"))
    if limit is not None and limit < len(data):
        with data:
            return data.subset(0, limit)
    return data
