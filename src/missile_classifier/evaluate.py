"""Metrics of a reentry classifier: per row, and per track (onset error, flicker), and a report.

Row metrics say how many rows are right; the stream metrics say what an operator sees: when the
classifier first calls reentry compared with the truth, and whether it changes its mind. Rows may
come in any order; stream metrics group them by (track_id, sensor_id) and sort by time first.

scikit-learn and matplotlib are imported inside the functions that need them, so importing this
module stays cheap and never touches a plotting backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from missile_classifier.windows import group_streams

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Onset errors are differences of float timestamps; this absorbs their rounding when an error is
#: compared with the tolerance (0.5 s must count as within 0.5 s).
_TIME_EPSILON_S: Final = 1e-6
#: Streams drawn in the timeline plot of a report.
TIMELINE_STREAMS: Final = 4
#: Curves longer than this are thinned before plotting (the look is the same, the PNG is fast).
_MAX_CURVE_POINTS: Final = 4_000


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


@dataclass(frozen=True)
class ReportData:
    """The evaluation rows a report describes (any row order; arrays of equal length)."""

    track_id: np.ndarray
    sensor_id: np.ndarray
    timestamp: np.ndarray
    #: Metres, unscaled, for the timeline plots.
    altitude: np.ndarray
    y_true: np.ndarray


@dataclass(frozen=True)
class ModelScores:
    """One model's output on the report rows: probabilities and its decision threshold."""

    proba: np.ndarray
    threshold: float


@dataclass(frozen=True)
class TrainingCurves:
    """The reported model's training history, one value per epoch (epochs count from 1)."""

    train_loss: Sequence[float]
    val_loss: Sequence[float]
    learning_rate: Sequence[float]
    #: The epoch whose weights were kept.
    best_epoch: int

    @classmethod
    def from_history(cls, history: Mapping[str, Any] | None) -> TrainingCurves | None:
        """From the training history as ``metadata.json`` stores it; ``None`` if absent."""
        if not isinstance(history, Mapping) or not history.get("train_loss"):
            return None
        return cls(
            history["train_loss"],
            history["val_loss"],
            history["learning_rate"],
            int(history["best_epoch"]),
        )


def write_report(
    directory: Path,
    *,
    title: str,
    data: ReportData,
    models: dict[str, ModelScores],
    notes: str = "",
    training: TrainingCurves | None = None,
) -> Path:
    """Write ``report.md`` and its plots (``plots/*.png``) comparing models on the same rows.

    The first model is the one the report is about (the LSTM): its confusion matrix and its
    predictions in the timelines are shown; the others (baselines) appear in the metrics table
    and the ROC/PR curves for comparison.

    Args:
        directory: Where to write; created if missing (the bundle directory).
        title: Report heading.
        data: Rows evaluated, with labels and unscaled altitude.
        models: Model name → its scores on ``data``, in table order; at least one.
        notes: Free Markdown appended under "Notes" (e.g. data source, training settings).
        training: The first model's loss per epoch, drawn as learning curves if given.

    Returns:
        Path of ``report.md``.
    """
    if not models:
        raise ValueError("write_report needs at least one model")
    directory = Path(directory)
    plots = directory / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    y = np.asarray(data.y_true).astype(np.int64)
    results = {
        name: evaluate_predictions(
            data.track_id, data.sensor_id, data.timestamp, y, scores.proba, scores.threshold
        )
        for name, scores in models.items()
    }
    main_name = next(iter(models))
    both_classes = len(np.unique(y)) == 2

    figures: dict[str, Path] = {}
    if both_classes:
        figures["ROC curves"] = _save(_roc_figure(y, models), plots / "roc.png")
        figures["Precision-recall curves"] = _save(_pr_figure(y, models), plots / "pr.png")
    figures[f"Confusion matrix ({main_name})"] = _save(
        _confusion_figure(results[main_name]["confusion_matrix"], main_name),
        plots / "confusion_matrix.png",
    )
    if len(y):
        figures[f"Timelines ({main_name})"] = _save(
            _timeline_figure(data, models[main_name], results[main_name]["tracks"], main_name),
            plots / "timelines.png",
        )
    if training is not None and len(training.train_loss):
        figures[f"Training ({main_name})"] = _save(
            _training_figure(training, main_name), plots / "training.png"
        )

    lines = [f"# {title}", "", _data_summary(data, y, results[main_name]["tracks"]["streams"]), ""]
    lines += _metrics_table(results)
    lines += ["", *_confusion_table(results[main_name], main_name), "", "## Plots", ""]
    for caption, path in figures.items():
        lines += [
            f"### {caption}",
            "",
            f"![{caption}]({path.relative_to(directory).as_posix()})",
            "",
        ]
    if not both_classes:
        lines += ["ROC and PR curves are omitted: the rows hold only one class.", ""]
    if notes.strip():
        lines += ["## Notes", "", notes.strip(), ""]
    report = directory / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def _data_summary(data: ReportData, y: np.ndarray, streams: int) -> str:
    """One sentence on what was evaluated, so the numbers can be judged."""
    tracks = len(np.unique(data.track_id))
    share = f"{y.mean():.1%}" if len(y) else "n/a"
    return (
        f"Evaluated on {len(y):,} rows from {tracks} tracks ({streams} sensor streams); "
        f"{share} of the rows are labelled reentry."
    )


def _fmt(value: Any, spec: str = ".3f") -> str:
    """A table cell: formatted number, or an em dash when the metric is undefined."""
    return "—" if value is None else format(value, spec)


def _metrics_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table: one row per model, row metrics then stream metrics."""
    first = next(iter(results.values()))["tracks"]
    tolerance = first["tolerance_s"]
    lines = [
        "## Metrics",
        "",
        "Row metrics use each model's own decision threshold. Onset error = predicted minus true "
        f'time of the first reentry row of a stream; "within ±{tolerance:g} s" is the share of '
        f"the {first['streams_with_onset']} streams with a true onset whose predicted onset is "
        "that close (a missed onset counts as outside). Flicker = class changes beyond the single "
        "0→1 onset, summed over streams.",
        "",
        "| model | threshold | F1 | precision | recall | accuracy | ROC-AUC | PR-AUC "
        f"| onset median abs (s) | onset max abs (s) | within ±{tolerance:g} s "
        "| missed / false onsets | flicker (streams) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results.items():
        t = m["tracks"]
        onset = t["onset_error_s"]
        cells = [
            name.replace("|", "\\|"),  # a pipe would split the table cell
            _fmt(m["threshold"]),
            _fmt(m["f1"]),
            _fmt(m["precision"]),
            _fmt(m["recall"]),
            _fmt(m["accuracy"]),
            _fmt(m["roc_auc"]),
            _fmt(m["pr_auc"]),
            _fmt(onset["median_abs"], ".2f"),
            _fmt(onset["max_abs"], ".2f"),
            _fmt(t["within_tolerance"], ".1%"),
            f"{t['missed_onsets']} / {t['false_onsets']}",
            f"{t['flicker']['total']} ({t['flicker']['streams_with_flicker']})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _confusion_table(metrics: dict[str, Any], name: str) -> list[str]:
    """Markdown confusion matrix of one model."""
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    return [
        f"## Confusion matrix: {name} (threshold {metrics['threshold']:.3f})",
        "",
        "| | predicted non-reentry | predicted reentry |",
        "|---|---:|---:|",
        f"| **true non-reentry** | {tn:,} | {fp:,} |",
        f"| **true reentry** | {fn:,} | {tp:,} |",
    ]


def _new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas directly: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    """Write a figure as PNG and return its path."""
    figure.savefig(path, format="png")
    return path


def _thin(*curves: np.ndarray) -> tuple[np.ndarray, ...]:
    """Keep at most ``_MAX_CURVE_POINTS`` evenly spaced points (always the two ends)."""
    n = len(curves[0])
    if n <= _MAX_CURVE_POINTS:
        return curves
    keep = np.unique(np.linspace(0, n - 1, _MAX_CURVE_POINTS).round().astype(np.int64))
    return tuple(c[keep] for c in curves)


def _roc_figure(y: np.ndarray, models: dict[str, ModelScores]) -> Figure:
    """ROC curves of every model on one axes, AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    for name, scores in models.items():
        fpr, tpr, _ = roc_curve(y, scores.proba)
        fpr, tpr = _thin(fpr, tpr)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, scores.proba):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return figure


def _pr_figure(y: np.ndarray, models: dict[str, ModelScores]) -> Figure:
    """Precision-recall curves of every model on one axes, average precision in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure = _new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    for name, scores in models.items():
        precision, recall, _ = precision_recall_curve(y, scores.proba)
        recall, precision = _thin(recall, precision)
        ap = average_precision_score(y, scores.proba)
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"prevalence {y.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return figure


def _confusion_figure(matrix: list[list[int]], name: str) -> Figure:
    """2×2 confusion matrix with counts and row shares written in the cells."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = _new_figure(4.5, 4.0)
    ax = figure.add_subplot()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if shares[i, j] > 0.5 else "black"
        text = f"{count:,}\n{shares[i, j]:.1%}"
        ax.text(j, i, text, ha="center", va="center", color=colour)
    classes = ["non-reentry", "reentry"]
    ax.set_xticks([0, 1], labels=classes)
    ax.set_yticks([0, 1], labels=classes)
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix: {name}")
    return figure


def _timeline_streams(tracks: dict[str, Any], count: int) -> list[int]:
    """Indices of streams worth drawing: the worst onset first, then a spread of the others.

    Worst = a missed onset, else the largest |onset error|, flicker breaking ties. Streams with a
    true onset are preferred; others fill up when there are too few.
    """
    per_stream = tracks["per_stream"]
    with_onset = [i for i, s in enumerate(per_stream) if s["true_onset"] is not None]
    others = [i for i, s in enumerate(per_stream) if s["true_onset"] is None]

    def badness(i: int) -> tuple[bool, float, int]:
        s = per_stream[i]
        return (s["error_s"] is None, abs(s["error_s"] or 0.0), s["flicker"])

    chosen: list[int] = []
    if with_onset:
        chosen.append(max(with_onset, key=badness))
    rest = [i for i in with_onset if i not in chosen]
    take = min(count - len(chosen), len(rest))
    if take > 0:
        chosen += [rest[k] for k in np.linspace(0, len(rest) - 1, take).round().astype(int)]
    chosen += others[: max(0, count - len(chosen))]
    return chosen


def _timeline_figure(
    data: ReportData, scores: ModelScores, tracks: dict[str, Any], name: str
) -> Figure:
    """Altitude, true phase and predicted probability/phase over time for a few streams."""
    picked = _timeline_streams(tracks, TIMELINE_STREAMS)
    figure = _new_figure(9.0, 2.4 * len(picked))
    axes = figure.subplots(len(picked), 1, squeeze=False)[:, 0]
    track = np.asarray(data.track_id)
    sensor = np.asarray(data.sensor_id)
    time = np.asarray(data.timestamp, dtype=np.float64)
    proba = np.asarray(scores.proba, dtype=np.float64)
    twins = []
    for ax, index in zip(axes, picked, strict=True):
        stream = tracks["per_stream"][index]
        rows = np.flatnonzero((track == stream["track_id"]) & (sensor == stream["sensor_id"]))
        rows = rows[np.argsort(time[rows], kind="stable")]
        t = time[rows] - time[rows[0]]
        ax.plot(t, np.asarray(data.altitude)[rows] / 1000.0, color="tab:grey", label="altitude")
        ax.set_ylabel("altitude (km)")
        phase = ax.twinx()
        twins.append(phase)
        phase.fill_between(
            t,
            np.asarray(data.y_true)[rows],
            step="post",
            color="tab:green",
            alpha=0.2,
            label="true reentry",
        )
        phase.plot(t, proba[rows], color="tab:blue", linewidth=1.0, label="probability")
        predicted = (proba[rows] >= scores.threshold).astype(np.int8)
        phase.step(
            t, predicted, where="post", color="tab:red", linestyle="--", label="predicted reentry"
        )
        phase.axhline(
            scores.threshold, color="tab:blue", linestyle=":", linewidth=0.8, label="threshold"
        )
        phase.set(ylim=(-0.05, 1.05), ylabel="phase / probability")
        error = stream["error_s"]
        detail = (
            "no true onset"
            if stream["true_onset"] is None
            else ("missed onset" if error is None else f"onset error {error:+.2f} s")
        )
        ax.set_title(
            f"track {stream['track_id']}, sensor {stream['sensor_id']}: {detail}, "
            f"flicker {stream['flicker']}",
            fontsize="medium",
        )
    axes[-1].set_xlabel("seconds since the stream's first row")
    # One legend for all panels, outside them, so it never hides the curves.
    handles, labels = axes[0].get_legend_handles_labels()
    more_handles, more_labels = twins[0].get_legend_handles_labels()
    figure.legend(handles + more_handles, labels + more_labels, loc="outside lower center", ncols=5)
    figure.suptitle(f"Timelines: {name}")
    return figure


def _training_figure(curves: TrainingCurves, name: str) -> Figure:
    """Training and validation loss per epoch (log scale), the kept epoch, learning rate."""
    figure = _new_figure(7.0, 4.0)
    ax = figure.subplots()
    epochs = np.arange(1, len(curves.train_loss) + 1)
    # A loss of 0 (an easy dataset) has no place on a log axis: floor it for the picture.
    floor = 1e-6
    ax.plot(epochs, np.maximum(curves.train_loss, floor), marker=".", label="training loss")
    ax.plot(epochs, np.maximum(curves.val_loss, floor), marker=".", label="validation loss")
    ax.axvline(curves.best_epoch, color="tab:grey", linestyle=":", label="kept epoch")
    ax.set(yscale="log", xlabel="epoch", ylabel="loss (class-weighted BCE)")
    rate = ax.twinx()
    rate.step(
        epochs,
        curves.learning_rate,
        where="mid",
        color="tab:green",
        alpha=0.6,
        label="learning rate",
    )
    rate.set(yscale="log", ylabel="learning rate")
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = rate.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, loc="upper right", fontsize="small")
    ax.set_title(f"Training: {name}")
    return figure
