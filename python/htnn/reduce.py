"""Data-parallel training from Python (include/htnn/reduce.h): a reducer made
of Python callables, which the C trainer calls through ctypes callbacks to
sum float arrays over all ranks.

With mpi4py (Debian's python3-mpi4py)::

    from mpi4py import MPI
    import htnn

    comm = MPI.COMM_WORLD
    net = htnn.Net("784-512-512-10", seed=1, threads=1)   # the same seed everywhere
    net.set_reducer(htnn.Reducer.mpi4py(comm))
    first, n = htnn.shard(60000, comm.rank, comm.size)
    part = htnn.load_idx_rows(images, labels, first, n)   # this rank's rows only
    net.fit(part.x, part.y, batch_size=100, shard=(first, 60000))
    if comm.rank == 0:
        net.save("model.htnn")

``Reducer.mpi(comm)`` instead uses libhtnn-mpi's C reducer on the same
communicator: no Python call per sum, and on one machine the sums go through
shared memory (HTNN_MPI_SHARED_MEMORY).

Any other transport works the same way: give ``Reducer`` the functions that
sum numpy arrays in place over the ranks.  See doc/distributed.md.
"""

import collections
import ctypes

from . import _mpi
from ._errors import InvalidArgument, Status, check
from ._lib import SUM_FN, WAIT_FN, Reducer as _CReducer, lib, new

MPIStats = collections.namedtuple("MPIStats", "seconds calls values shared_memory")
from .heuristic import float_view

__all__ = ["Reducer", "MPIStats", "shard"]


def shard(count, rank, ranks):
    """Rank `rank`'s contiguous block of `count` items among `ranks`:
    ``(first, n)`` with first = floor(rank * count / ranks), the split of
    htnn_mpi_shard and of the library's sharded steps."""
    if ranks < 1 or not 0 <= rank < ranks or count < 0:
        raise InvalidArgument("shard: rank %r of %r ranks, count %r" % (rank, ranks, count))
    first = count * rank // ranks
    return first, count * (rank + 1) // ranks - first


class Reducer:
    """Sums over the ranks of a data-parallel fit, made of Python callables
    (htnn_reducer).  Each function receives a writable float32 numpy array
    over the library's buffer, valid only during the call (or, for
    ``start_sum``, until ``wait_all`` returns), and works in place:

    - ``allreduce_sum(values)`` (required): replace values by their
      element-wise sum over all ranks, the same bits on every rank;
    - ``start_sum(values)`` and ``wait_all()`` (optional, together): start
      such a sum, and wait for all the started ones;
    - ``reduce_scatter_sum(values)`` and ``allgather(values)`` (optional,
      together): sum only this rank's block (``shard(len(values), rank,
      ranks)``), and copy every rank's block to all ranks; with them a fit
      shards the optimizer step.

    An exception raised by a function becomes an error status for the
    library, which stops training (when the first sum of a batch fails,
    before any weight changes); ``Net.fit`` and ``Net.train_batch`` then
    raise it again.  The other ranks are not told:
    a transport whose ranks wait for each other must release them itself
    (abort its barrier, or ``MPI.COMM_WORLD.Abort()``), as it would in C.

    Every rank must make the same training calls with the same options; see
    ``Net.set_reducer``.
    """

    def __init__(self, ranks, rank, allreduce_sum, *, start_sum=None, wait_all=None,
                 reduce_scatter_sum=None, allgather=None):
        fns = {"allreduce_sum": allreduce_sum, "start_sum": start_sum, "wait_all": wait_all,
               "reduce_scatter_sum": reduce_scatter_sum, "allgather": allgather}
        for name, fn in fns.items():
            if fn is not None and not callable(fn):
                raise InvalidArgument("%s must be callable, got %r" % (name, fn))
        self.ranks, self.rank = int(ranks), int(rank)
        self.error = None  # the first exception a function raised, until re-raised
        self.comm = None  # mpi4py(): the duplicated communicator
        self._cptr = None  # mpi(): libhtnn-mpi's reducer, until close()
        self._mpi = None
        # the ctypes trampolines must live as long as the C side may call them
        self._c = {name: self._trampoline(name, fn) for name, fn in fns.items()
                   if fn is not None}
        self._struct = new(_CReducer, ranks=self.ranks, rank=self.rank, user=None,
                           **self._c)

    def _trampoline(self, name, fn):
        """The C callback of function `name`: the floats as a numpy view."""
        if name == "wait_all":
            return WAIT_FN(lambda user: self._guard(fn))
        return SUM_FN(lambda addr, count, user:
                      self._guard(fn, float_view(addr, (count,), writable=True)))

    def _guard(self, fn, *args):
        """Calls fn; an exception must not cross the C frames (ctypes would
        print and drop it): it is kept for the training call to re-raise,
        and the library gets an error status."""
        try:
            fn(*args)
            return int(Status.OK)
        except BaseException as e:  # noqa: B902 - re-raised after the C call
            if self.error is None:
                self.error = e
            return int(Status.ECALLBACK)

    @classmethod
    def mpi4py(cls, comm=None, *, sharded_step=False):
        """A reducer over the ranks of an mpi4py communicator (default
        MPI.COMM_WORLD), summing with Allreduce on a duplicate of it (so
        that its messages never meet the program's).  ``sharded_step``: also
        Reduce_scatter / Allgatherv, which shard the optimizer step (see
        HTNN_MPI_SHARDED_STEP in doc/distributed.md).  Call it on every rank
        (it is collective), with MPI initialised for the calling thread."""
        from mpi4py import MPI
        comm = (MPI.COMM_WORLD if comm is None else comm).Dup()
        size, rank = comm.Get_size(), comm.Get_rank()

        def blocks(n):
            counts = [shard(n, r, size)[1] for r in range(size)]
            return counts, [shard(n, r, size)[0] for r in range(size)]

        def allreduce_sum(v):
            comm.Allreduce(MPI.IN_PLACE, v, op=MPI.SUM)

        def reduce_scatter_sum(v):
            counts, displs = blocks(len(v))
            mine = v[displs[rank]:displs[rank] + counts[rank]]
            comm.Reduce_scatter(v.copy(), mine, counts, op=MPI.SUM)

        def allgather(v):
            counts, displs = blocks(len(v))
            comm.Allgatherv(MPI.IN_PLACE, [v, counts, displs, MPI.FLOAT])

        r = cls(size, rank, allreduce_sum, reduce_scatter_sum=reduce_scatter_sum if
                sharded_step else None, allgather=allgather if sharded_step else None)
        r.comm = comm
        return r

    @classmethod
    def mpi(cls, comm=None, *, sharded_step=True, shared_memory=True, nonblocking=False):
        """libhtnn-mpi's reducer (htnn_mpi_reducer_create) over an mpi4py
        communicator (default MPI.COMM_WORLD): the sums run in C, with no
        Python call per sum.  The defaults are what ``htnn train --mpi``
        uses: ``sharded_step`` (HTNN_MPI_SHARDED_STEP: each rank updates its
        block of the weights) and ``shared_memory`` (HTNN_MPI_SHARED_MEMORY:
        on one machine, sums through an MPI-3 shared-memory window);
        ``nonblocking`` adds MPI_Iallreduce sums (ignored with shared memory
        on one machine).  libhtnn-mpi must be built against the MPI library
        mpi4py uses (see htnn._mpi for where it is looked for).  Collective:
        call it on every rank; ``close()`` frees it (collective too), after
        the nets using it are done (``net.set_reducer(None)``)."""
        from mpi4py import MPI
        comm = MPI.COMM_WORLD if comm is None else comm
        m = _mpi.library(MPI._sizeof(MPI.Comm))
        flags = ((_mpi.SHARDED_STEP if sharded_step else 0) |
                 (_mpi.SHARED_MEMORY if shared_memory else 0) |
                 (_mpi.NONBLOCKING if nonblocking else 0))
        out = ctypes.POINTER(_CReducer)()
        check(m.htnn_mpi_reducer_create(MPI._handleof(comm), flags, ctypes.byref(out)),
              "htnn_mpi_reducer_create")
        r = cls.__new__(cls)
        r.ranks, r.rank = out.contents.ranks, out.contents.rank
        r.error, r.comm, r._c, r._struct = None, None, {}, None
        r._cptr, r._mpi = out, m
        return r

    def stats(self):
        """Time spent in the sums and their count and volume since creation
        or the last ``reset_stats()`` (htnn_mpi_reducer_stats): an
        MPIStats(seconds, calls, values, shared_memory), the last True when
        the sums go through shared memory.  Only for ``Reducer.mpi``."""
        st = new(_mpi.Stats)
        check(self._mpi.htnn_mpi_reducer_stats(self._c_reducer("stats"), ctypes.byref(st)),
              "htnn_mpi_reducer_stats")
        return MPIStats(st.seconds, int(st.calls), int(st.values), bool(st.shared_memory))

    def reset_stats(self):
        """Zeroes the statistics of ``stats()``."""
        check(self._mpi.htnn_mpi_reducer_reset_stats(self._c_reducer("reset_stats")),
              "htnn_mpi_reducer_reset_stats")

    def _c_reducer(self, what):
        if self._cptr is None:
            raise InvalidArgument("%s: only a Reducer.mpi() that is not closed has it" % what)
        return self._cptr

    def close(self):
        """Frees the communicator of mpi4py() or the C reducer of mpi()
        (collective); call it once the nets using this reducer are done
        training."""
        comm, self.comm = self.comm, None
        if comm is not None:
            comm.Free()
        cptr, self._cptr = self._cptr, None
        if cptr is not None:
            self._mpi.htnn_mpi_reducer_free(cptr)

    def _raise_pending(self):
        e, self.error = self.error, None
        if e is not None:
            raise e

    def __repr__(self):
        return "<htnn.Reducer rank %d of %d>" % (self.rank, self.ranks)


def attach(net, reducer):
    """Net.set_reducer: installs (a copy of) the reducer's table on the net
    and keeps the reducer alive with it."""
    if reducer is not None and not isinstance(reducer, Reducer):
        raise InvalidArgument("reducer must be an htnn.Reducer or None")
    if reducer is not None and reducer._struct is None and reducer._cptr is None:
        raise InvalidArgument("set_reducer: this Reducer.mpi() is closed")
    if reducer is None:
        c = None
    elif reducer._cptr is not None:
        c = reducer._cptr
    else:
        c = ctypes.byref(reducer._struct)
    check(lib.htnn_net_set_reducer(net._h, c), "htnn_net_set_reducer")
    net._reducer = reducer


def raise_pending(net):
    """Re-raises an exception the net's reducer caught during a C call."""
    r = getattr(net, "_reducer", None)
    if r is not None:
        r._raise_pending()
