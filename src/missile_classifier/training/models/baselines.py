"""Baselines the LSTM has to beat, scored with exactly the LSTM's metrics.

- ``altitude_threshold``: the classic rule "reentry iff altitude is below a fixed value". It
  cannot know each track's maximum, which is why it is seconds off on the challenge data.
- ``random_forest``: a random forest on the flattened windows: the same inputs as the LSTM,
  without the sequence structure.
- ``dummy``: always the training prior; the floor (F1 0).

The class follows scikit-learn's estimator rules (``__init__`` only stores its arguments, ``fit``
returns ``self``, learned state ends in ``_``, every other method checks that ``fit`` ran) without
inheriting from scikit-learn, whose classes are untyped.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.training.config import TrainConfig
from missile_classifier.training.metrics import classification_metrics, f1_at_cuts

#: Method name → how tables call it.
METHODS: Final = {
    "altitude_threshold": "altitude threshold",
    "random_forest": "random forest",
    "dummy": "dummy",
}
_ALTITUDE: Final = FEATURE_NAMES.index("altitude")


class BaselineClassifier:
    """A simple reentry classifier on the LSTM's windows ``(n, sequence_length, n_features)``.

    Args:
        method: ``"altitude_threshold"``, ``"random_forest"`` or ``"dummy"``.
        n_estimators: Trees of the random forest.
        max_depth: Depth limit of the trees (None: grow until leaves are pure).
        random_state: Seed of the random forest, so reruns give the same model.
        n_jobs: Parallel jobs of the random forest (-1: all cores).
    """

    def __init__(
        self,
        method: str = "random_forest",
        n_estimators: int = 100,
        max_depth: int | None = None,
        random_state: int = TrainConfig.seed,
        n_jobs: int = -1,
    ) -> None:
        self.method = method
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.random_state = random_state
        self.n_jobs = n_jobs

    @property
    def name(self) -> str:
        """Human-readable method name for tables and reports."""
        _check_method(self.method)
        return METHODS[self.method]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments, as scikit-learn's ``get_params`` (for metadata and cloning)."""
        del deep  # no nested estimators among the parameters
        return {
            "method": self.method,
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }

    def fit(self, X: np.ndarray, y: np.ndarray) -> BaselineClassifier:
        """Learn from training windows and their 0/1 labels (the label of each last row).

        Returns:
            ``self``, fitted.

        Raises:
            ValueError: Unknown method, or inputs of the wrong shape.
        """
        _check_method(self.method)
        windows = _check_windows(X)
        labels = np.asarray(y).astype(np.int64)
        if labels.shape != (len(windows),):
            raise ValueError(f"y must have shape ({len(windows)},), got {labels.shape}")
        if self.method == "altitude_threshold":
            if windows.shape[2] != N_FEATURES:
                raise ValueError(
                    f"altitude_threshold needs the {N_FEATURES} features of FEATURE_NAMES, "
                    f"got {windows.shape[2]}"
                )
            self._fit_threshold(windows[:, -1, _ALTITUDE].astype(np.float64), labels)
        else:
            self.estimator_ = self._new_estimator().fit(_flatten(windows), labels)
        self.sequence_length_ = int(windows.shape[1])
        self.n_features_in_ = int(windows.shape[2])
        return self

    def _new_estimator(self) -> Any:
        """The scikit-learn model behind ``random_forest`` / ``dummy`` (imported on demand)."""
        if self.method == "dummy":
            from sklearn.dummy import DummyClassifier

            return DummyClassifier(strategy="prior")
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            class_weight="balanced",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _fit_threshold(self, altitude: np.ndarray, labels: np.ndarray) -> None:
        """The altitude cut with the best training F1, halfway to the next altitude above it."""
        # "Reentry iff altitude <= a" is "positive iff -altitude >= -a": F1 for every a at once.
        spread = float(np.std(altitude))
        # The logistic's scale: one spread of the training altitudes keeps the scores far from
        # saturating at 0 or 1, so their order (all ROC/PR-AUC use) survives in float64.
        self.spread_ = spread if spread > 0 else 1.0
        if not labels.any():  # nothing to find: call nothing reentry
            self.threshold_ = float(altitude.min() - self.spread_)
            self.train_f1_ = 0.0
            return
        cuts, f1 = f1_at_cuts(labels, -altitude)
        best = int(np.argmax(f1))
        below = -cuts[best]  # highest altitude still called reentry
        above = -cuts[best - 1] if best > 0 else below  # next altitude up, called non-reentry
        self.threshold_ = float((below + above) / 2.0)
        self.train_f1_ = float(f1[best])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of reentry of each window's last row, shape ``(n,)``.

        For ``altitude_threshold`` it is a logistic of (threshold − altitude) / spread: monotone
        in altitude, so ROC and PR curves are meaningful, and ≥ 0.5 exactly at or below the
        threshold.
        """
        windows = self._check_fitted(X)
        if self.method == "altitude_threshold":
            altitude = windows[:, -1, _ALTITUDE].astype(np.float64)
            z = (self.threshold_ - altitude) / self.spread_
            return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)
        proba = np.asarray(self.estimator_.predict_proba(_flatten(windows)), dtype=np.float64)
        classes = list(self.estimator_.classes_)
        if 1 not in classes:  # trained on negatives only
            return np.zeros(len(windows))
        return proba[:, classes.index(1)]

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """0/1 (int64) reentry prediction of each window's last row."""
        return (self.predict_proba(X) >= threshold).astype(np.int64)

    def evaluate(self, X: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
        """Row metrics as the LSTM's ``evaluate`` reports them (``classification_metrics``)."""
        return classification_metrics(np.asarray(y), self.predict_proba(X), threshold)

    def _check_fitted(self, X: np.ndarray) -> np.ndarray:
        """Refuse to predict before ``fit`` or on windows of another shape than in training."""
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(
                f"this BaselineClassifier ({self.method}) is not fitted yet: call fit(X, y) first"
            )
        windows = _check_windows(X)
        if windows.shape[1:] != (self.sequence_length_, self.n_features_in_):
            raise ValueError(
                f"X has windows of shape {windows.shape[1:]}, the model was fitted on "
                f"{(self.sequence_length_, self.n_features_in_)}"
            )
        return windows

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"BaselineClassifier({arguments})"


def _check_method(method: str) -> None:
    """Raise a ValueError naming the valid choices for an unknown method."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _check_windows(X: np.ndarray) -> np.ndarray:
    """Windows as a 3-D array ``(n, sequence_length, n_features)`` with at least one row."""
    windows = np.asarray(X)
    if windows.ndim != 3 or 0 in windows.shape:
        raise ValueError(
            f"X must be non-empty windows (n, sequence_length, n_features), got {windows.shape}"
        )
    return windows


def _flatten(windows: np.ndarray) -> np.ndarray:
    """One row per window: the tree models see every time step's features side by side."""
    return windows.reshape(len(windows), -1)
