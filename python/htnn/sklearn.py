"""HTNNClassifier: a scikit-learn style estimator over htnn.Net.  It needs
only numpy; when scikit-learn is installed it is a real BaseEstimator /
ClassifierMixin (clone, pipelines and grid search work)."""

import inspect
import warnings

import numpy as np

from .net import Dense, Net
from .optimizer import Optimizer

__all__ = ["HTNNClassifier", "NotFittedError"]

try:  # optional
    from sklearn.base import BaseEstimator as _Base, ClassifierMixin as _Mixin
    from sklearn.exceptions import DataConversionWarning, NotFittedError
    _bases = (_Mixin, _Base)
except ImportError:  # pragma: no cover - depends on the machine
    class NotFittedError(ValueError, AttributeError):
        """The estimator is used before fit()."""

    class DataConversionWarning(UserWarning):
        """y was given as a column vector."""

    class _Base:
        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p.name for p in sig.parameters.values()
                          if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD)

        def get_params(self, deep=True):
            """Constructor parameters as a dict."""
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            """Sets constructor parameters; returns self."""
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError("invalid parameter %r for %s; valid: %s"
                                     % (key, type(self).__name__, ", ".join(valid)))
                setattr(self, key, value)
            return self

        def __repr__(self):
            args = ", ".join("%s=%r" % kv for kv in self.get_params().items())
            return "%s(%s)" % (type(self).__name__, args)

    _bases = (_Base,)


class HTNNClassifier(*_bases):
    """A hard-threshold MLP classifier trained with FTPROP-MB.

    Parameters mirror the ``htnn train`` options: ``hidden_layer_sizes``
    (default (512, 512)), ``activation`` ("sign", "step", "qrelu", "relu",
    "identity"), ``qrelu_bits``, ``loss`` (per-layer loss of the hidden
    layers), ``weight_targets``, ``output`` ("softmax" or "hard") with
    ``output_loss`` (loss of a hard output layer), ``optimizer`` ("adam" or
    "sgd"), ``learning_rate``, ``momentum``, ``nesterov``, ``weight_decay``,
    ``schedule``, ``min_learning_rate``, ``epochs``, ``batch_size``,
    ``shuffle``, ``random_state`` (the net's seed), ``threads`` (BLAS
    threads, 1 as the tool), ``callback`` (Net.fit progress callback),
    ``verbose`` (print a progress bar), ``warm_start`` (continue training the
    existing net on the next fit), ``binary_weights`` of the hidden layers
    ("none", "scaled", "sign").

    Pickling keeps the net (as model bytes) and the optimizer's options;
    the optimizer's moments start afresh after unpickling.

    After fit: ``classes_``, ``n_features_in_``, ``net_`` (the htnn.Net),
    ``history_`` (per-epoch dicts), ``n_iter_`` (epochs run).  Labels may be
    any values np.unique can sort (strings, ints, ...).
    """

    def __init__(self, hidden_layer_sizes=(512, 512), activation="sign", qrelu_bits=2,
                 loss="soft_hinge", weight_targets=True, output="softmax",
                 output_loss="hinge", optimizer="adam", learning_rate=1e-3, momentum=0.0,
                 nesterov=False, weight_decay=0.0, schedule="constant", min_learning_rate=0.0,
                 epochs=10, batch_size=100, shuffle=True, random_state=1, threads=1,
                 callback=None, verbose=False, warm_start=False, binary_weights="none"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.qrelu_bits = qrelu_bits
        self.loss = loss
        self.weight_targets = weight_targets
        self.output = output
        self.output_loss = output_loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.min_learning_rate = min_learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.threads = threads
        self.callback = callback
        self.verbose = verbose
        self.warm_start = warm_start
        self.binary_weights = binary_weights

    # --- helpers -------------------------------------------------------------

    def _check_x(self, X, fitting):
        if hasattr(X, "tocsr") or hasattr(X, "toarray"):
            raise TypeError("HTNNClassifier does not support sparse input: pass a dense "
                            "array (X.toarray())")
        X = np.asarray(X)
        if X.dtype.kind == "O":
            X = X.astype(np.float64)  # numbers stored as objects (TypeError otherwise)
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported (X has dtype %s)" % X.dtype)
        if X.dtype.kind not in "fiub":
            raise ValueError("X: expected real numbers, got dtype %s" % X.dtype)
        if X.ndim != 2:
            raise ValueError("X: expected a 2-D array (n_samples, n_features), got shape "
                             "%s. Reshape your data either using X.reshape(-1, 1) if it has "
                             "a single feature or X.reshape(1, -1) if it contains a single "
                             "sample." % (X.shape,))
        if X.shape[1] == 0:
            raise ValueError("0 feature(s) (shape=%s) while a minimum of 1 is required."
                             % (X.shape,))
        if not fitting and X.shape[1] != self.n_features_in_:
            raise ValueError("X has %d features, but %s is expecting %d features as input"
                             % (X.shape[1], type(self).__name__, self.n_features_in_))
        if X.shape[0] == 0:
            raise ValueError("X: 0 samples (a minimum of 1 is required)")
        return X

    def _fitted(self):
        if getattr(self, "net_", None) is None:
            raise NotFittedError("this %s instance is not fitted yet; call fit() first"
                                 % type(self).__name__)
        return self.net_

    def _build(self, width, n_classes):
        hard = str(self.output).lower().startswith("hard") or self.output == 1
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (int, np.integer)):
            sizes = (sizes,)
        layers = [Dense(int(u), self.activation, self.qrelu_bits, self.loss,
                        self.weight_targets, binary_weights=self.binary_weights)
                  for u in sizes]
        out_units = 1 if (hard and n_classes == 2) else n_classes
        layers.append(Dense(out_units, "sign" if hard else "identity", self.qrelu_bits,
                            self.output_loss if hard else self.loss, self.weight_targets))
        seed = 1 if self.random_state is None else self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = int(seed.randint(0, 2 ** 31))
        return Net(width, layers, seed=int(seed), output="hard" if hard else "softmax",
                   threads=int(self.threads))

    def _make_optimizer(self):
        kind = str(self.optimizer).lower()
        kw = dict(lr=self.learning_rate, weight_decay=self.weight_decay,
                  schedule=self.schedule, min_learning_rate=self.min_learning_rate)
        if kind == "sgd":
            kw.update(momentum=self.momentum, nesterov=self.nesterov)
        return Optimizer(kind, **kw)

    # --- estimator API -------------------------------------------------------

    def fit(self, X, y, validation_data=None):
        """Trains on X (n_samples, n_features) and labels y; returns self."""
        if y is None:
            raise ValueError("%s requires y to be passed, but the target y is None"
                             % type(self).__name__)
        X = self._check_x(X, True)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; "
                          "using y.ravel()", DataConversionWarning, stacklevel=2)
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError("y: expected %d labels in a 1-D array, got shape %s"
                             % (X.shape[0], y.shape))
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinity")
            if np.any(y != np.round(y)):
                raise ValueError("Unknown label type: continuous values in y (a classifier "
                                 "needs class labels)")
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("HTNNClassifier needs samples of at least 2 classes in the "
                             "data, got %d class" % len(classes))
        warm = (self.warm_start and getattr(self, "net_", None) is not None and
                np.array_equal(classes, self.classes_) and
                X.shape[1] == self.n_features_in_)
        if not warm:
            self.classes_ = classes
            self.n_features_in_ = X.shape[1]
            self.net_ = self._build(X.shape[1], len(classes))
            self.optimizer_ = self._make_optimizer()
        callback = self.callback
        if self.verbose and callback is None:
            from .progress import ProgressBar
            callback = ProgressBar()
        vd = None
        if validation_data is not None:
            vx, vy = validation_data
            vd = (np.asarray(vx), np.searchsorted(self.classes_, np.asarray(vy)))
        res = self.net_.fit(X, y_enc.astype(np.int32), epochs=self.epochs,
                            batch_size=self.batch_size, shuffle=self.shuffle,
                            optimizer=self.optimizer_, validation_data=vd,
                            callback=callback)
        self.history_ = res.history
        self.n_iter_ = res.epochs_run
        return self

    def predict(self, X):
        net = self._fitted()
        return self.classes_[net.predict(self._check_x(X, False))]

    def predict_proba(self, X):
        net = self._fitted()
        return net.predict_proba(self._check_x(X, False))

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def decision_function(self, X):
        """The net's logits (n_samples, n_classes); for two classes, as
        scikit-learn's convention, one score per sample (z1 - z0, or the one
        unit's logit of a hard output), positive for classes_[1]."""
        net = self._fitted()
        z = net.predict_logits(self._check_x(X, False))
        if z.shape[1] == 1:
            return z[:, 0]
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on (X, y)."""
        right = self.predict(X) == np.asarray(y)
        return float(np.average(right, weights=sample_weight))

    def _more_tags(self):
        return {"requires_y": True, "poor_score": True}
