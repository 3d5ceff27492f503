"""fit, train_batch, progress callbacks, stopping and Ctrl-C."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import htnn


def test_fit_result_and_history(small_net, data):
    x, y = data
    calls = []
    res = small_net.fit(x, y, epochs=3, batch_size=100, validation_data=(x[:100], y[:100]),
                        callback=calls.append, optimizer=htnn.Optimizer(lr=0.01))
    assert res.epochs_run == 3 and res.batches_run == 18 and not res.stopped
    assert len(calls) == 18 and calls[5].end_of_epoch and not calls[4].end_of_epoch
    assert [c.epoch for c in calls[::6]] == [0, 1, 2] and calls[0].batches == 6
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert res.history[-1]["val_accuracy"] == res.val_accuracy
    assert 0 <= res.accuracy <= 1 and np.isfinite(res.loss)
    assert np.isnan(calls[0].val_accuracy)
    assert small_net.last_fit is res


def test_default_optimizer_is_kept(small_net, data):
    x, y = data
    small_net.fit(x, y, epochs=1)
    steps = small_net.optimizer.steps
    assert steps == 6
    small_net.fit(x, y, epochs=1)
    assert small_net.optimizer.steps == 12


def test_callback_stops(small_net, data):
    x, y = data
    res = small_net.fit(x, y, epochs=5, callback=lambda p: p.batch == 2)
    assert res.stopped and res.batches_run == 3 and res.epochs_run == 0
    assert not res.interrupted


def test_callback_exception_propagates(small_net, data):
    x, y = data

    def cb(p):
        if p.batch == 1:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        small_net.fit(x, y, epochs=3, callback=cb)
    assert small_net.last_fit.batches_run == 2
    small_net.predict(x)  # the net is valid


def test_ctrl_c_stops_cleanly(small_net, data):
    x, y = data

    def cb(p):
        if p.batch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    res = small_net.fit(x, y, epochs=4, callback=cb, on_interrupt="return")
    assert res.interrupted and res.stopped and res.batches_run == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    with pytest.raises(htnn.TrainingInterrupted) as e:
        small_net.fit(x, y, epochs=4, callback=cb)
    assert isinstance(e.value, KeyboardInterrupt) and e.value.result.batches_run == 3
    assert small_net.evaluate(x, y).accuracy >= 0  # valid net


def test_ctrl_c_during_c_code():
    """The signal arrives while the C library is training (no Python
    callback of the user's): training stops after the current batch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 200)).astype(np.float32)
    y = rng.integers(0, 10, 2000).astype(np.int32)
    with htnn.Net(200, [256, 256, 10], threads=1) as net:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        try:
            res = net.fit(x, y, epochs=1000, batch_size=50, on_interrupt="return")
        finally:
            timer.cancel()
        assert res.interrupted and res.epochs_run < 1000
        assert time.monotonic() - start < 20
        net.predict(x[:3])


def test_train_batch(small_net, data):
    x, y = data
    opt = htnn.Optimizer(lr=0.01)
    r = small_net.train_batch(x[:40], y[:40], optimizer=opt)
    assert 0 <= r.correct <= 40 and r.loss > 0 and opt.steps == 1
    t = small_net.targets
    assert t.batch == 40 and len(t) == 2 and t[1][0].shape == (40, 12)
    opt.set_epoch(3, 10)
    opt.reset()
    assert opt.steps == 0


def test_sgd_and_schedules(data):
    x, y = data
    opt = htnn.Optimizer.sgd(lr=0.1, momentum=0.9, nesterov=True, schedule="cosine",
                             min_learning_rate=0.001)
    with htnn.Net(12, [16, 3], threads=1) as net:
        lrs = []
        net.fit(x, y, epochs=4, optimizer=opt,
                callback=lambda p: lrs.append(p.learning_rate) if p.end_of_epoch else None)
        assert lrs[0] == pytest.approx(0.1) and lrs[-1] < lrs[0]
    assert opt.options["nesterov"] and opt.kind == htnn.OptimizerKind.SGD


def test_progress_bar_output(small_net, data):
    import io
    x, y = data
    buf = io.StringIO()
    small_net.fit(x, y, epochs=2, callback=htnn.ProgressBar(buf))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2 [") and "acc" in lines[1]


def test_threads_release_the_gil(data):
    """Two nets train at once in two threads (ctypes drops the GIL)."""
    x, y = data
    errors = []

    def work(seed):
        try:
            with htnn.Net(12, [16, 3], seed=seed, threads=1) as net:
                net.fit(x, y, epochs=3, callback=lambda p: None)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def _layer_params(net):
    return [(layer.weights.copy(), layer.bias.copy()) for layer in net.layers]


def test_checkpoint_resume_is_bit_identical(data, tmp_path):
    x, y = data
    with htnn.Net(12, [16, 12, 3], seed=5, threads=1) as ref:
        ref.fit(x, y, epochs=3, batch_size=50)
        expected = _layer_params(ref)
    ckpt = tmp_path / "fit.ckpt"
    with htnn.Net(12, [16, 12, 3], seed=5, threads=1) as net:
        res = net.fit(x, y, epochs=3, batch_size=50, checkpoint=ckpt, checkpoint_every=4,
                      callback=lambda p: p.epoch == 1 and p.batch == 6)
        assert res.stopped and res.batches_run == 19
    with htnn.Net.load(ckpt) as loaded:  # a checkpoint is a model file
        assert loaded.input_width == 12
    with htnn.Net(12, [16, 12, 3], seed=99, threads=1) as net:
        res = net.fit(x, y, epochs=3, batch_size=50, checkpoint=str(ckpt), resume=True)
        assert res.batches_run == 36 and res.epochs_run == 3 and not res.stopped
        for (w, b), (ew, eb) in zip(_layer_params(net), expected):
            assert w.tobytes() == ew.tobytes() and b.tobytes() == eb.tobytes()
        with pytest.raises(htnn.StateError, match="batch size"):
            net.fit(x, y, epochs=3, batch_size=40, checkpoint=ckpt, resume=True)
    with pytest.raises(htnn.InvalidArgument):
        htnn.Net(12, [4, 3]).fit(x, y, resume=True)
