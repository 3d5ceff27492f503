"""Data-parallel training from Python (htnn.Reducer over htnn/reduce.h):
ranks simulated by threads that sum through a barrier, as
tests/test_reduce.c does in C; and, with mpi4py and mpiexec installed, the
same over MPI in a 2-rank job.  Also the row-range IDX loader's binding."""

import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import htnn
from conftest import make_data

# As tests/test_reduce.c: float sums in another order (measured ~3e-8).
TOLERANCE = 1e-5
ARCH = "12-16-16-3"
FIT = dict(epochs=3, batch_size=20)


class ThreadGroup:
    """The in-memory communicator of `ranks` threads: every rank sums the
    ranks' arrays in rank order, so all get the same bits."""

    def __init__(self, ranks, fail_rank=None):
        self.ranks = ranks
        self.barrier = threading.Barrier(ranks)
        self.slots = [None] * ranks
        self.fail_rank = fail_rank

    def reducer(self, rank):
        def allreduce_sum(values):
            if rank == self.fail_rank:
                self.barrier.abort()  # release the other ranks, as MPI_Abort would
                raise ValueError("rank %d cannot sum" % rank)
            self.slots[rank] = values
            self.barrier.wait()
            total = self.slots[0].copy()
            for r in range(1, self.ranks):
                total += self.slots[r]
            self.barrier.wait()  # every rank has read every other's values
            values[:] = total
        return htnn.Reducer(self.ranks, rank, allreduce_sum)


def params(net):
    return np.concatenate([np.ravel(a) for layer in net.layers
                           for a in (layer.weights, layer.bias)])


def run_ranks(ranks, x, y, sharded, group=None):
    """Trains one net per rank thread; returns (nets' bytes, params, errors)."""
    group = group or ThreadGroup(ranks)
    out = [None] * ranks

    def rank_main(rank):
        try:
            with htnn.Net(ARCH, seed=7, threads=1) as net:
                net.set_reducer(group.reducer(rank))
                if sharded:
                    first, n = htnn.shard(len(x), rank, ranks)
                    net.fit(x[first:first + n], y[first:first + n], shard=(first, len(x)),
                            **FIT)
                else:
                    net.fit(x, y, **FIT)
                out[rank] = (net.to_bytes(), params(net), None)
        except Exception as e:  # checked by the caller
            out[rank] = (None, None, e)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def single(x, y):
    with htnn.Net(ARCH, seed=7, threads=1) as net:
        net.fit(x, y, **FIT)
        return params(net)


@pytest.mark.parametrize("ranks,sharded", [(2, False), (2, True), (3, True)])
def test_threads_match_one_process(ranks, sharded):
    x, y = make_data(count=201, width=12)
    out = run_ranks(ranks, x, y, sharded)
    for model, _, err in out:
        assert err is None
        assert model == out[0][0]  # every rank holds the same net, bit for bit
    ref = single(x, y)
    diff = np.max(np.abs(out[0][1] - ref))
    assert diff <= TOLERANCE
    with htnn.Net(ARCH, seed=7, threads=1) as fresh:  # training did change them
        assert np.max(np.abs(params(fresh) - ref)) > 1e-3


def test_one_rank_is_exact():
    x, y = make_data(count=201, width=12)
    (model, p, err), = run_ranks(1, x, y, sharded=True)
    assert err is None
    assert np.array_equal(p, single(x, y))


def test_exception_in_callback_is_an_error_not_a_crash():
    x, y = make_data(count=201, width=12)
    with htnn.Net(ARCH, seed=7, threads=1) as net:
        before = params(net)

        def broken(values):
            raise ZeroDivisionError("no sum today")

        net.set_reducer(htnn.Reducer(1, 0, broken))
        with pytest.raises(ZeroDivisionError, match="no sum today"):
            net.fit(x, y, **FIT)
        with pytest.raises(ZeroDivisionError):
            net.train_batch(x[:20], y[:20])
        assert np.array_equal(params(net), before)  # the batch failed before any update
        net.set_reducer(None)  # alone again, it trains
        net.fit(x, y, epochs=1, batch_size=20)
    # two ranks: the failing one releases the other, and both report it
    out = run_ranks(2, x, y, sharded=True, group=ThreadGroup(2, fail_rank=1))
    assert isinstance(out[1][2], ValueError)
    assert isinstance(out[0][2], threading.BrokenBarrierError)


def test_reducer_arguments():
    with pytest.raises(htnn.InvalidArgument):
        htnn.Reducer(2, 0, "not callable")
    with htnn.Net(ARCH, seed=7) as net:
        with pytest.raises(htnn.InvalidArgument, match="rank 2 of 2"):
            net.set_reducer(htnn.Reducer(2, 2, lambda v: None))
        with pytest.raises(htnn.InvalidArgument, match="start_sum without wait_all"):
            net.set_reducer(htnn.Reducer(2, 0, lambda v: None, start_sum=lambda v: None))
        with pytest.raises(htnn.InvalidArgument):
            net.set_reducer(object())
    assert htnn.shard(11, 1, 2) == (5, 6)
    assert htnn.shard(2, 2, 3) == (1, 1)
    with pytest.raises(htnn.InvalidArgument):
        htnn.shard(10, 2, 2)


def test_shard_without_reducer():
    x, y = make_data(count=201, width=12)
    with htnn.Net(ARCH, seed=7, threads=1) as net:
        with pytest.raises(htnn.InvalidArgument, match="needs a reducer"):
            net.fit(x[:100], y[:100], shard=(0, 201), **FIT)
        net.fit(x, y, shard=(0, 201), **FIT)  # the whole set as its shard
        assert np.array_equal(params(net), single(x, y))


def write_idx(path, array, code):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, code, array.ndim))
        f.write(struct.pack(">%dI" % array.ndim, *array.shape))
        f.write(array.astype(">u1" if code == 8 else ">f4").tobytes())


def test_load_idx_rows(tmp_path):
    images = np.arange(7 * 2 * 3, dtype=np.uint8).reshape(7, 2, 3) * 5
    labels = np.arange(7, dtype=np.uint8)
    ip, lp = str(tmp_path / "img.idx"), str(tmp_path / "lab.idx")
    write_idx(ip, images, 8)
    write_idx(lp, labels, 8)
    assert htnn.idx_count(ip) == 7 and htnn.idx_count(lp) == 7
    whole = htnn.load_idx(ip, lp)
    for first, count in ((0, 7), (0, 1), (6, 1), (2, 3)):
        part = htnn.load_idx_rows(ip, lp, first, count)
        assert np.array_equal(part.x, whole.x[first:first + count])
        assert np.array_equal(part.y, whole.y[first:first + count])
        assert part.shape == whole.shape
    assert np.array_equal(htnn.load_idx_rows(ip, lp, 4).y, [4, 5, 6])  # to the end
    with pytest.raises(htnn.InvalidArgument, match="not a non-empty part"):
        htnn.load_idx_rows(ip, lp, 5, 3)
    with pytest.raises(htnn.FileError):
        htnn.idx_count(str(tmp_path / "missing.idx"))


MPI_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from mpi4py import MPI
    import htnn

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (201, 12)).astype(np.float32)
    y = (np.digitize(x[:, 0] ** 2 + x[:, 1] ** 2, [0.35, 0.9]) % 3).astype(np.int32)
    fit = dict(epochs=3, batch_size=20)

    def params(net):
        return np.concatenate([np.ravel(a) for l in net.layers for a in (l.weights, l.bias)])

    if sys.argv[1] == "c":   # libhtnn-mpi's reducer: sharded step, shared memory
        red = htnn.Reducer.mpi(comm)
        assert (red.rank, red.ranks) == (comm.rank, comm.size)
    else:
        red = htnn.Reducer.mpi4py(comm, sharded_step=sys.argv[1] == "1")
    net = htnn.Net("12-16-16-3", seed=7, threads=1)
    net.set_reducer(red)
    first, n = htnn.shard(len(x), comm.rank, comm.size)
    net.fit(x[first:first + n], y[first:first + n], shard=(first, len(x)), **fit)
    models = comm.gather(net.to_bytes(), root=0)
    if sys.argv[1] == "c":
        st = red.stats()
        assert st.calls > 0 and st.values > 0 and st.seconds >= 0.0
        assert st.shared_memory   # both ranks on this machine
        red.reset_stats()
        assert red.stats().calls == 0
    net.set_reducer(None)
    red.close()
    if sys.argv[1] == "c":
        try:
            net.set_reducer(red)
            raise SystemExit("a closed reducer was accepted")
        except htnn.InvalidArgument:
            pass
    if comm.rank == 0:
        assert all(m == models[0] for m in models)
        ref = htnn.Net("12-16-16-3", seed=7, threads=1)
        ref.fit(x, y, **fit)
        diff = float(np.max(np.abs(params(net) - params(ref))))
        print("max |w(2 ranks) - w(1 process)| = %.3g" % diff)
        assert diff <= 1e-5
""")


@pytest.mark.parametrize("sharded_step", ["0", "1", "c"])
def test_mpi4py(tmp_path, sharded_step):
    """Python sums over mpi4py (with and without the sharded step), and
    ("c") libhtnn-mpi's C reducer through Reducer.mpi."""
    mpiexec = shutil.which("mpiexec") or shutil.which("mpirun")
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (Debian: python3-mpi4py)")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    if sharded_step == "c" and htnn._mpi.find() is None:
        pytest.skip("libhtnn-mpi was not built (-Dmpi=enabled)")
    script = tmp_path / "fit.py"
    script.write_text(MPI_SCRIPT)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(htnn.__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), sharded_step],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "max |w(2 ranks) - w(1 process)|" in r.stdout
