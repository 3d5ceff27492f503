"""Optimizer: SGD (momentum, Nesterov) or Adam with weight decay and a
learning-rate schedule (include/htnn/optimizer.h)."""

import ctypes

from ._errors import check
from ._handle import Handle
from ._lib import OptimizerOptions, lib, new
from ._util import OptimizerKind, Schedule, enum_value

__all__ = ["Optimizer"]


class Optimizer(Handle):
    """An optimizer with its per-parameter state (for one net at a time).

    ``Optimizer()`` is Adam with lr 1e-3, as in C.  Keyword names follow the
    C fields (``learning_rate`` may be written ``lr``)::

        opt = htnn.Optimizer("sgd", lr=0.1, momentum=0.9, nesterov=True)
        opt = htnn.Optimizer.adam(lr=1e-3, schedule="cosine", min_learning_rate=1e-5)
    """

    _free_name = "htnn_optimizer_free"

    def __init__(self, kind="adam", *, lr=None, learning_rate=1e-3, momentum=0.0,
                 nesterov=False, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.0,
                 schedule="constant", step_epochs=1, step_gamma=0.1, cosine_epochs=0,
                 min_learning_rate=0.0):
        if lr is not None:
            learning_rate = lr
        o = new(OptimizerOptions)
        o.kind = enum_value(OptimizerKind, kind, "optimizer kind")
        o.learning_rate = learning_rate
        o.momentum = momentum
        o.nesterov = int(bool(nesterov))
        o.beta1, o.beta2, o.epsilon = beta1, beta2, epsilon
        o.weight_decay = weight_decay
        o.schedule = enum_value(Schedule, schedule, "schedule")
        o.step_epochs = step_epochs
        o.step_gamma = step_gamma
        o.cosine_epochs = cosine_epochs
        o.min_learning_rate = min_learning_rate
        out = ctypes.c_void_p()
        check(lib.htnn_optimizer_create(ctypes.byref(o), ctypes.byref(out)),
              "htnn_optimizer_create")
        self._set_handle(out.value)
        self._options = o

    def __reduce__(self):
        """Pickles and copies the options; the per-parameter state (moments,
        step count) starts afresh."""
        return (_from_options, (self.options,))

    @classmethod
    def adam(cls, lr=1e-3, **kw):
        return cls("adam", lr=lr, **kw)

    @classmethod
    def sgd(cls, lr=0.01, momentum=0.0, **kw):
        return cls("sgd", lr=lr, momentum=momentum, **kw)

    @property
    def options(self):
        """The options it was created with, as a dict."""
        o = self._options
        d = {name: getattr(o, name) for name, _ in o._fields_ if name != "struct_size"}
        d["kind"] = OptimizerKind(d["kind"])
        d["schedule"] = Schedule(d["schedule"])
        d["nesterov"] = bool(d["nesterov"])
        return d

    @property
    def kind(self):
        return OptimizerKind(self._options.kind)

    def reset(self):
        """Forgets all per-parameter state and the step count."""
        check(lib.htnn_optimizer_reset(self._h), "htnn_optimizer_reset")

    def set_epoch(self, epoch, total_epochs):
        """Tells the schedule which epoch (0-based) of how many is running
        (Net.fit does this itself)."""
        check(lib.htnn_optimizer_set_epoch(self._h, epoch, total_epochs),
              "htnn_optimizer_set_epoch")

    @property
    def learning_rate(self):
        """Learning rate the next step will use."""
        return float(lib.htnn_optimizer_learning_rate(self._h))

    @property
    def steps(self):
        """Update steps taken since creation or reset."""
        return int(lib.htnn_optimizer_steps(self._h))

    def __repr__(self):
        if self.closed:
            return "<htnn.Optimizer (closed)>"
        o = self._options
        return "<htnn.Optimizer %s lr=%g steps=%d>" % (self.kind.name.lower(),
                                                       o.learning_rate, self.steps)


def _from_options(options):
    o = dict(options)
    return Optimizer(o.pop("kind"), **o)
