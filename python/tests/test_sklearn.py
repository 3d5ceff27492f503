"""HTNNClassifier: the scikit-learn estimator protocol, with or without
scikit-learn installed."""
import pickle

import numpy as np
import pytest

import htnn
from conftest import make_data


def small(**kw):
    args = dict(hidden_layer_sizes=(24,), epochs=8, learning_rate=0.01, batch_size=50)
    args.update(kw)
    return htnn.HTNNClassifier(**args)


def test_fit_predict_score_with_string_labels():
    x, y = make_data(800, 2, 3, seed=2)
    names = np.array(["ring", "disc", "outside"])[y]
    clf = small()
    assert clf.fit(x, names) is clf
    assert list(clf.classes_) == ["disc", "outside", "ring"] and clf.n_features_in_ == 2
    pred = clf.predict(x)
    assert pred.dtype == names.dtype and set(pred) <= set(names)
    p = clf.predict_proba(x)
    assert p.shape == (800, 3)
    np.testing.assert_array_equal(clf.classes_[p.argmax(1)], pred)
    assert clf.score(x, names) == pytest.approx(np.mean(pred == names))
    assert clf.score(x, names) > 0.6
    assert clf.n_iter_ == 8 and len(clf.history_) == 8
    assert isinstance(clf.net_, htnn.Net)


def test_get_set_params():
    clf = htnn.HTNNClassifier()
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (512, 512) and params["epochs"] == 10
    assert params["random_state"] == 1 and params["threads"] == 1
    assert clf.set_params(epochs=3, activation="qrelu") is clf
    assert clf.get_params()["epochs"] == 3
    with pytest.raises(ValueError):
        clf.set_params(no_such_param=1)
    again = type(clf)(**clf.get_params())  # what sklearn.clone does
    assert again.get_params() == clf.get_params()
    assert "epochs=3" in repr(clf)


def test_not_fitted_and_bad_input():
    clf = small()
    with pytest.raises(ValueError):  # NotFittedError is a ValueError
        clf.predict(np.zeros((2, 12)))
    with pytest.raises(AttributeError):  # ... and an AttributeError
        clf.predict_proba(np.zeros((2, 12)))
    x, y = make_data(100, 12, 3)
    with pytest.raises(ValueError, match="2-D"):
        clf.fit(x[:, 0], y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(x, np.zeros(100))
    clf.fit(x, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(x[:, :5])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):  # htnn.NumericError
        clf.fit(bad, y)


def test_reproducible_and_pickle():
    x, y = make_data(300, 12, 3)
    a = small(random_state=5).fit(x, y)
    b = small(random_state=5).fit(x, y)
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.predict(x), a.predict(x))


def test_hard_output_binary_and_warm_start():
    x, y = make_data(400, 12, 2, seed=3)
    clf = small(output="hard", epochs=5, warm_start=True)
    clf.fit(x, y)
    assert clf.net_.output_width == 1 and clf.decision_function(x).shape == (400,)
    assert clf.predict_proba(x).shape == (400, 2)
    net = clf.net_
    clf.fit(x, y)
    assert clf.net_ is net  # warm start continued the same net


def test_sklearn_duck_typed_checks():
    pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = make_data(300, 12, 3)
    clf = small(epochs=3)
    assert is_classifier(clf)
    assert clone(clf).get_params() == clf.get_params()
    scores = cross_val_score(make_pipeline(StandardScaler(), clf), x, y, cv=3)
    assert len(scores) == 3
    from sklearn.utils.estimator_checks import check_estimator
    check_estimator(htnn.HTNNClassifier(hidden_layer_sizes=(32,), epochs=20, batch_size=16,
                                        learning_rate=0.01))
