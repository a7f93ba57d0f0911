"""BaselineClassifier: estimator rules, each method on small synthetic windows."""

from __future__ import annotations

import numpy as np
import pytest

from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.training.metrics import classification_metrics
from missile_classifier.training.models.baselines import METHODS, BaselineClassifier

ALTITUDE = FEATURE_NAMES.index("altitude")
SEQUENCE_LENGTH = 4
#: Reentry iff the (scaled) altitude of the window's last row is below this (a minority, as in
#: real tracks, so the prior-predicting dummy calls nothing reentry).
TRUE_THRESHOLD = -1.0


def make_windows(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise windows whose last-row altitude decides the label, with a gap around the cut."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SEQUENCE_LENGTH, N_FEATURES)).astype(np.float32)
    altitude = rng.uniform(-2.0, 2.0, n)
    altitude = np.where(np.abs(altitude - TRUE_THRESHOLD) < 0.05, altitude + 0.2, altitude)
    X[:, :, ALTITUDE] = altitude[:, None].astype(np.float32)
    y = (X[:, -1, ALTITUDE] < TRUE_THRESHOLD).astype(np.int64)
    return X, y


def small(method: str) -> BaselineClassifier:
    return BaselineClassifier(method=method, n_estimators=10, random_state=0, n_jobs=1)


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_fits_and_predicts(method: str) -> None:
    X, y = make_windows()
    model = small(method)
    assert model.fit(X, y) is model
    proba = model.predict_proba(X)
    assert proba.shape == (len(X),)
    assert proba.dtype == np.float64
    assert np.all((proba >= 0) & (proba <= 1))
    predicted = model.predict(X)
    assert predicted.dtype == np.int64
    assert set(np.unique(predicted)) <= {0, 1}
    np.testing.assert_array_equal(predicted, (proba >= 0.5).astype(np.int64))
    assert model.sequence_length_ == SEQUENCE_LENGTH
    assert model.n_features_in_ == N_FEATURES
    assert model.name == METHODS[method]


def test_learning_methods_beat_the_dummy() -> None:
    X_train, y_train = make_windows(seed=1)
    X_test, y_test = make_windows(seed=2)
    f1 = {m: small(m).fit(X_train, y_train).evaluate(X_test, y_test)["f1"] for m in METHODS}
    assert f1["dummy"] == 0.0
    assert f1["altitude_threshold"] == 1.0
    assert f1["random_forest"] > 0.9


def test_altitude_threshold_recovers_the_cut() -> None:
    X, y = make_windows(n=2_000)
    model = small("altitude_threshold").fit(X, y)
    altitude = X[:, -1, ALTITUDE]
    # Any value in the empty gap between the classes separates them; we take its middle.
    highest_reentry = altitude[y == 1].max()
    lowest_other = altitude[y == 0].min()
    assert highest_reentry < model.threshold_ < lowest_other
    assert model.threshold_ == pytest.approx((highest_reentry + lowest_other) / 2, abs=1e-6)
    assert model.train_f1_ == 1.0


def test_altitude_threshold_finds_the_best_cut_with_label_noise() -> None:
    X, y = make_windows(n=3_000, seed=3)
    flip = np.random.default_rng(4).random(len(y)) < 0.05
    noisy = np.where(flip, 1 - y, y)
    model = small("altitude_threshold").fit(X, noisy)
    assert model.threshold_ == pytest.approx(TRUE_THRESHOLD, abs=0.1)


def test_altitude_score_is_monotone_and_crosses_half_at_the_threshold() -> None:
    X, y = make_windows()
    model = small("altitude_threshold").fit(X, y)
    altitude = X[:, -1, ALTITUDE].astype(np.float64)
    proba = model.predict_proba(X)
    order = np.argsort(altitude)
    assert np.all(np.diff(proba[order]) <= 0)
    np.testing.assert_array_equal(proba >= 0.5, altitude <= model.threshold_)
    assert proba.min() > 0 and proba.max() < 1  # not saturated: ranks survive for ROC/PR


def test_altitude_threshold_without_positives_calls_nothing_reentry() -> None:
    X, y = make_windows()
    model = small("altitude_threshold").fit(X, np.zeros_like(y))
    assert model.predict(X).sum() == 0


def test_random_forest_on_negatives_only_gives_zero_probability() -> None:
    X, y = make_windows(n=50)
    model = small("random_forest").fit(X, np.zeros_like(y))
    np.testing.assert_array_equal(model.predict_proba(X), np.zeros(len(X)))


def test_random_forest_is_deterministic_for_a_seed() -> None:
    X, y = make_windows(seed=5)
    X_test, _ = make_windows(seed=6)
    first = small("random_forest").fit(X, y).predict_proba(X_test)
    second = small("random_forest").fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(first, second)


def test_dummy_predicts_the_training_prior() -> None:
    X, y = make_windows()
    proba = small("dummy").fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba, y.mean())


@pytest.mark.parametrize("method", list(METHODS))
def test_evaluate_returns_the_lstm_metrics(method: str) -> None:
    X, y = make_windows()
    model = small(method).fit(X, y)
    metrics = model.evaluate(X, y, threshold=0.4)
    expected = classification_metrics(y, model.predict_proba(X), 0.4)
    assert metrics == expected
    assert metrics["threshold"] == 0.4


@pytest.mark.parametrize("method", list(METHODS))
def test_methods_refuse_to_work_before_fit(method: str) -> None:
    X, y = make_windows(n=10)
    model = small(method)
    for call in (model.predict_proba, model.predict, lambda X: model.evaluate(X, y)):
        with pytest.raises(RuntimeError, match="not fitted"):
            call(X)


def test_unknown_method_lists_the_choices() -> None:
    X, y = make_windows(n=10)
    model = BaselineClassifier(method="lstm")  # storing is fine: sklearn validates in fit
    with pytest.raises(ValueError, match="altitude_threshold, random_forest, dummy"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="unknown method 'lstm'"):
        _ = model.name


def test_init_only_stores_its_arguments() -> None:
    model = BaselineClassifier(
        method="dummy", n_estimators=7, max_depth=3, random_state=1, n_jobs=2
    )
    params = {"method": "dummy", "n_estimators": 7, "max_depth": 3, "random_state": 1, "n_jobs": 2}
    assert model.get_params() == params
    assert vars(model) == params
    assert BaselineClassifier(**model.get_params()).get_params() == params
    assert repr(model).startswith("BaselineClassifier(method='dummy'")


def test_inputs_of_the_wrong_shape_are_rejected() -> None:
    X, y = make_windows(n=20)
    with pytest.raises(ValueError, match="windows"):
        small("dummy").fit(X[:, -1, :], y)
    with pytest.raises(ValueError, match="y must have shape"):
        small("dummy").fit(X, y[:-1])
    with pytest.raises(ValueError, match="needs the"):
        small("altitude_threshold").fit(X[:, :, :3], y)
    model = small("dummy").fit(X, y)
    with pytest.raises(ValueError, match="fitted on"):
        model.predict_proba(X[:, 1:, :])
