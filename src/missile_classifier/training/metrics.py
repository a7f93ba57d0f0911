"""Metrics of a reentry classifier: per row, and per stream (onset error, flicker).

Row metrics say how many rows are right; the stream metrics say what an operator sees: when the
classifier first calls reentry compared with the truth, and whether it changes its mind. Rows may
come in any order; stream metrics group them by (track_id, sensor_id) and sort by time first.
Also the decision-threshold choice, which maximises F1 on validation rows.

scikit-learn is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Final

import numpy as np

from missile_classifier.scoring.windows import group_streams

#: Onset errors are differences of float timestamps; this absorbs their rounding when an error is
#: compared with the tolerance (0.5 s must count as within 0.5 s).
_TIME_EPSILON_S: Final = 1e-6


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """Row-level metrics at a decision threshold.

    Args:
        y_true: 0/1 labels.
        proba: Predicted probability of reentry per row.
        threshold: A row is predicted reentry when its probability is at least this.

    Returns:
        accuracy, precision, recall, f1, roc_auc, pr_auc (None when only one class is
        present), confusion_matrix as ``[[tn, fp], [fn, tp]]``, threshold and row count.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y_true).astype(np.int64)
    predicted = (np.asarray(proba) >= threshold).astype(np.int64)
    both = len(np.unique(y)) == 2
    return {
        "rows": len(y),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, proba)) if both else None,
        "pr_auc": float(average_precision_score(y, proba)) if both else None,
        "confusion_matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }


def stream_onsets(
    timestamp: np.ndarray, labels: np.ndarray, stream_bounds: np.ndarray
) -> np.ndarray:
    """Time of the first positive row of each stream (NaN when the stream has none).

    Args:
        timestamp: Row times, sorted by stream then time.
        labels: 0/1 per row, same order.
        stream_bounds: First row of each stream plus the row count (``Streams.bounds``).
    """
    onsets = np.full(len(stream_bounds) - 1, np.nan)
    for i, (begin, end) in enumerate(pairwise(stream_bounds)):
        positive = np.flatnonzero(labels[begin:end])
        if len(positive):
            onsets[i] = timestamp[begin + positive[0]]
    return onsets


def flicker_counts(labels: np.ndarray, stream_bounds: np.ndarray) -> np.ndarray:
    """Changes of predicted class per stream beyond the one a clean 0→1 onset needs.

    A stream that starts at 0 may change once (its onset) for free; one that starts at 1 has
    already had its onset, so every change counts. Empty streams count 0.
    """
    values = np.asarray(labels).astype(np.int8)  # bool would break np.diff
    counts = np.zeros(len(stream_bounds) - 1, dtype=np.int64)
    for i, (begin, end) in enumerate(pairwise(stream_bounds)):
        if end <= begin:
            continue
        changes = int(np.count_nonzero(np.diff(values[begin:end])))
        counts[i] = max(0, changes - 1) if values[begin] == 0 else changes
    return counts


def f1_at_cuts(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 of the rule "positive iff score ≥ cut" for every distinct score as the cut, at once.

    One sort and two cumulative sums instead of one pass per candidate, so a million rows take
    well under a second. Shared by :func:`choose_threshold` and the altitude-threshold baseline.

    Args:
        y_true: 0/1 labels.
        scores: Higher means more likely positive; must be finite.

    Returns:
        ``(cuts, f1)``: the distinct scores in ascending order and the F1 of each cut.
    """
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (no NaN or infinity)")
    cuts, inverse = np.unique(s, return_inverse=True)
    rows_at = np.bincount(inverse, minlength=len(cuts))
    positives_at = np.bincount(inverse, weights=y, minlength=len(cuts))
    # Rows (and positives) with a score at or above each cut: suffix sums.
    predicted = np.cumsum(rows_at[::-1])[::-1]
    true_positive = np.cumsum(positives_at[::-1])[::-1]
    denominator = predicted + y.sum()
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(len(cuts)), where=denominator > 0)
    return cuts, f1


def choose_threshold(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Decision threshold that maximises F1 on validation data, stored in the bundle.

    Every threshold between two neighbouring distinct probabilities gives the same predictions,
    so each candidate is an interval. Inside the best interval(s) we take 0.5 when it lies there,
    otherwise the interval's midpoint (a margin on both sides generalises better than a threshold
    touching a validation score); between equally good intervals, the one closest to 0.5 wins.

    Args:
        y_true: 0/1 validation labels.
        proba: Predicted probability of reentry per validation row.

    Returns:
        The threshold; 0.5 when there is nothing to learn from (no rows, or no positives).
    """
    y = np.asarray(y_true)
    if len(y) == 0 or not np.any(y):
        return 0.5
    cuts, f1 = f1_at_cuts(y, proba)
    # Cut k predicts the same as any threshold in (lower[k], cuts[k]].
    lower = np.concatenate([[-np.inf], cuts[:-1]])
    inside = (lower < 0.5) & (cuts >= 0.5)
    candidate = np.where(inside, 0.5, (lower + cuts) / 2.0)
    # The lowest cut (predict everything) has no finite lower end: the cut itself works.
    candidate[0] = 0.5 if inside[0] else cuts[0]
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(candidate[best[np.argmin(np.abs(candidate[best] - 0.5))]])


def _summary(values: np.ndarray) -> dict[str, float | None]:
    """Median, 95th percentile and maximum of absolute errors (None when there are none)."""
    if len(values) == 0:
        return {"median_abs": None, "p95_abs": None, "max_abs": None, "mean_signed": None}
    absolute = np.abs(values)
    return {
        "median_abs": float(np.median(absolute)),
        "p95_abs": float(np.percentile(absolute, 95)),
        "max_abs": float(absolute.max()),
        "mean_signed": float(values.mean()),
    }


def _optional(value: float) -> float | None:
    """A float for JSON, None for NaN."""
    return None if np.isnan(value) else float(value)


def _id(value: Any) -> Any:
    """A NumPy scalar id as a plain Python value for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def track_metrics(
    track_id: np.ndarray,
    sensor_id: np.ndarray,
    timestamp: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    tolerance_s: float = 0.5,
) -> dict[str, Any]:
    """Onset error and flicker per stream, the errors an operator would notice.

    The onset of a stream is the time of its first row labelled (or predicted) reentry. The
    error is predicted onset minus true onset, in seconds: negative means the alarm came early.
    Streams whose truth has an onset but the prediction none are *missed onsets*; streams with
    a predicted onset but none in the truth (e.g. a sensor that lost the track before reentry)
    are *false onsets*. Neither enters the error statistics, which would otherwise be NaN, but a
    missed onset counts as outside the tolerance.

    Args:
        track_id: Track of each row.
        sensor_id: Sensor of each row.
        timestamp: Time of each row, seconds. Rows may be in any order.
        y_true: True 0/1 phase per row.
        y_pred: Predicted 0/1 phase per row.
        tolerance_s: Largest |onset error| that counts as on time (one 0.5 s sample by default;
            the public labels are themselves ambiguous by one sample).

    Returns:
        A JSON-ready dict: ``streams``, ``streams_with_onset``, ``onset_error_s`` (median_abs,
        p95_abs, max_abs, mean_signed over streams where both onsets exist),
        ``within_tolerance`` (share of streams with a true onset whose predicted onset is
        within ``tolerance_s``), ``clean_streams`` (share of all streams with the right onset,
        or rightly none, and no flicker), ``missed_onsets``, ``false_onsets``, ``flicker``
        (total, streams_with_flicker) and ``per_stream`` (one dict per stream).
    """
    track = np.asarray(track_id)
    sensor = np.asarray(sensor_id)
    time = np.asarray(timestamp, dtype=np.float64)
    truth = np.asarray(y_true).astype(np.int8)
    predicted = np.asarray(y_pred).astype(np.int8)
    if not len(track) == len(sensor) == len(time) == len(truth) == len(predicted):
        raise ValueError("track_id, sensor_id, timestamp, y_true and y_pred differ in length")

    if len(track):
        streams = group_streams(track, sensor, time)
        order, bounds = streams.order, streams.bounds
    else:
        order, bounds = np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
    time, truth, predicted = time[order], truth[order], predicted[order]
    true_onset = stream_onsets(time, truth, bounds)
    predicted_onset = stream_onsets(time, predicted, bounds)
    flicker = flicker_counts(predicted, bounds)
    error = predicted_onset - true_onset

    has_true, has_predicted = ~np.isnan(true_onset), ~np.isnan(predicted_onset)
    compared = has_true & has_predicted
    on_time = compared & (np.abs(np.nan_to_num(error)) <= tolerance_s + _TIME_EPSILON_S)
    right_onset = on_time | (~has_true & ~has_predicted)
    n_with_onset = int(has_true.sum())
    first = order[bounds[:-1]]
    per_stream = [
        {
            "track_id": _id(track[row]),
            "sensor_id": _id(sensor[row]),
            "rows": int(end - begin),
            "true_onset": _optional(true_onset[i]),
            "predicted_onset": _optional(predicted_onset[i]),
            "error_s": _optional(error[i]),
            "flicker": int(flicker[i]),
        }
        for i, (row, begin, end) in enumerate(zip(first, bounds[:-1], bounds[1:], strict=True))
    ]
    return {
        "streams": len(per_stream),
        "streams_with_onset": n_with_onset,
        "tolerance_s": float(tolerance_s),
        "onset_error_s": _summary(error[compared]),
        "within_tolerance": float(on_time.sum() / n_with_onset) if n_with_onset else None,
        "clean_streams": (
            float((right_onset & (flicker == 0)).mean()) if len(per_stream) else None
        ),
        "missed_onsets": int((has_true & ~has_predicted).sum()),
        "false_onsets": int((~has_true & has_predicted).sum()),
        "flicker": {
            "total": int(flicker.sum()),
            "streams_with_flicker": int(np.count_nonzero(flicker)),
        },
        "per_stream": per_stream,
    }


def evaluate_predictions(
    track_id: np.ndarray,
    sensor_id: np.ndarray,
    timestamp: np.ndarray,
    y_true: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    *,
    tolerance_s: float = 0.5,
) -> dict[str, Any]:
    """Row metrics and stream metrics of one model in one JSON-ready dict.

    Args:
        track_id: Track of each row.
        sensor_id: Sensor of each row.
        timestamp: Time of each row, seconds; rows in any order.
        y_true: True 0/1 phase per row.
        proba: Predicted probability of reentry per row.
        threshold: Decision threshold (the one stored in the bundle).
        tolerance_s: See :func:`track_metrics`.

    Returns:
        :func:`classification_metrics` plus the :func:`track_metrics` dict under ``"tracks"``.
    """
    metrics = classification_metrics(y_true, proba, threshold)
    predicted = (np.asarray(proba) >= threshold).astype(np.int8)
    metrics["tracks"] = track_metrics(
        track_id, sensor_id, timestamp, y_true, predicted, tolerance_s=tolerance_s
    )
    return metrics
