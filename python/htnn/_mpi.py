"""Loading libhtnn-mpi (the C MPI reducer, include/htnn/htnn_mpi.h) with
ctypes, for ``Reducer.mpi``.

Search order:

1. ``HTNN_MPI_LIBRARY``: a path to the shared library;
2. next to the loaded libhtnn (an installed libdir);
3. a build tree's ``mpi/`` beside the ``lib/`` libhtnn was loaded from;
4. the soname ``libhtnn-mpi.so.0`` through the dynamic loader.

The library must be built against the MPI library that mpi4py uses (on
Debian both use Open MPI): an ``MPI_Comm`` handle crosses from one to the
other.
"""

import ctypes
import os
from ctypes import POINTER, Structure, c_double, c_int, c_size_t, c_uint64, c_void_p

from . import _lib
from ._errors import UnsupportedError

SONAME = "libhtnn-mpi.so.0"

# htnn_mpi_reducer_create flags
NONBLOCKING, SHARDED_STEP, SHARED_MEMORY = 1, 2, 4


class Stats(Structure):
    """htnn_mpi_stats."""
    _fields_ = [("struct_size", c_size_t), ("seconds", c_double), ("calls", c_uint64),
                ("values", c_uint64), ("shared_memory", c_int)]


def candidates():
    env = os.environ.get("HTNN_MPI_LIBRARY")
    if env:
        return [env]
    libdir = os.path.dirname(_lib.path)
    found = [os.path.join(libdir, SONAME)] if libdir else []
    if libdir:
        found.append(os.path.join(os.path.dirname(libdir), "mpi", SONAME))
    return found + [SONAME]


def find():
    """The first candidate that exists as a file (or the soname), without
    loading it: lets tests skip when libhtnn-mpi was not built."""
    for cand in candidates():
        if os.path.isfile(cand):
            return cand
    return None


_loaded = None


def library(comm_handle_bytes):
    """libhtnn-mpi with its argtypes set; ``comm_handle_bytes`` is the size
    of the MPI implementation's MPI_Comm (a pointer for Open MPI, an int for
    MPICH), from mpi4py's ``MPI._sizeof(MPI.Comm)``."""
    global _loaded  # the library, loaded once per process
    if _loaded is not None:
        return _loaded
    tried = []
    for cand in candidates():
        try:
            m = ctypes.CDLL(cand)
            break
        except OSError as e:
            tried.append("%s (%s)" % (cand, e))
    else:
        raise UnsupportedError("htnn: cannot load libhtnn-mpi (build with -Dmpi=enabled, or "
                               "set HTNN_MPI_LIBRARY).  Tried:\n  " + "\n  ".join(tried))
    comm_t = c_void_p if comm_handle_bytes == ctypes.sizeof(c_void_p) else c_int
    reducer_p = POINTER(_lib.Reducer)
    m.htnn_mpi_reducer_create.argtypes = [comm_t, c_int, POINTER(reducer_p)]
    m.htnn_mpi_reducer_create.restype = c_int
    m.htnn_mpi_reducer_free.argtypes = [reducer_p]
    m.htnn_mpi_reducer_free.restype = None
    m.htnn_mpi_reducer_stats.argtypes = [reducer_p, POINTER(Stats)]
    m.htnn_mpi_reducer_stats.restype = c_int
    m.htnn_mpi_reducer_reset_stats.argtypes = [reducer_p]
    m.htnn_mpi_reducer_reset_stats.restype = c_int
    _loaded = m
    return m
