"""The evaluation report: ``report.md`` comparing models on the same rows, with its plots.

The first model is the one the report is about (the LSTM); the others (baselines) are there for
comparison. Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global
backend switch), and matplotlib and scikit-learn are imported inside the functions that need
them, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from missile_classifier.training.metrics import evaluate_predictions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Streams drawn in the timeline plot of a report.
TIMELINE_STREAMS: Final = 4
#: Curves longer than this are thinned before plotting (the look is the same, the PNG is fast).
_MAX_CURVE_POINTS: Final = 4_000


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
    robustness: Sequence[Mapping[str, Any]] | None = None,
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
        robustness: The first model's rows of the degradation suite
            (:func:`missile_classifier.training.robustness.robustness`), if measured.

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
    if robustness:
        figures[f"Robustness ({main_name})"] = _save(
            _robustness_figure(robustness, main_name), plots / "robustness.png"
        )

    lines = [f"# {title}", "", _data_summary(data, y, results[main_name]["tracks"]["streams"]), ""]
    lines += _metrics_table(results)
    lines += ["", *_confusion_table(results[main_name], main_name), ""]
    if robustness:
        lines += [*_robustness_table(robustness, main_name), ""]
    lines += ["## Plots", ""]
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


def _robustness_table(rows: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    """Markdown table of the degradation suite: one row per condition."""
    lines = [
        f"## Robustness: {name} under deployed sensor conditions",
        "",
        "The same held-out tracks, degraded as deployed sensors see them, labelled from the intact "
        "tracks. Onset errors in seconds and in samples of the condition's interval; an onset is "
        "on time within one interval + 0.5 s. Conditions marked * leave the onset unobservable "
        "(a track first seen after its apogee cannot know its maximum); *max unsure* is the "
        "share of rows answered with `maximum_established` false.",
        "",
        "| condition | interval (s) | rows | F1 | onset median (s / samples) "
        "| onset max (s / samples) | on time | missed / false onsets | flicker | max unsure |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        star = "" if row["observable"] else " *"
        lines.append(
            f"| {row['condition']}{star} | {row['interval_s']:g} | {row['rows']:,} "
            f"| {_fmt(row['f1'], '.4f')} "
            f"| {_fmt(row['onset_error_median_s'], '.2f')} / "
            f"{_fmt(row['onset_error_median_samples'], '.1f')} "
            f"| {_fmt(row['onset_error_max_s'], '.2f')} / "
            f"{_fmt(row['onset_error_max_samples'], '.1f')} "
            f"| {_fmt(row['within_tolerance'], '.0%')} "
            f"| {row['missed_onsets']} / {row['false_onsets']} | {row['flicker']} "
            f"| {_fmt(row.get('not_established'), '.0%')} |"
        )
    return lines


def _robustness_figure(rows: Sequence[Mapping[str, Any]], name: str) -> Figure:
    """F1 per condition (bars) and the largest onset error in samples (dots, right axis)."""
    figure = _new_figure(9.0, 0.32 * len(rows) + 1.2)
    axes = figure.add_subplot()
    labels = [r["condition"] + ("" if r["observable"] else " *") for r in rows]
    position = np.arange(len(rows))[::-1]
    f1 = np.array([r["f1"] for r in rows])
    axes.barh(position, f1, color=np.where(f1 >= 0.99, "#4c72b0", "#c44e52"), height=0.6)
    axes.axvline(0.99, color="grey", linestyle=":", linewidth=1)
    axes.set_yticks(position, labels, fontsize=8)
    axes.set_xlim(max(0.0, float(np.nanmin(f1)) - 0.05), 1.0)
    axes.set_xlabel("F1 (bars; dotted: 0.99)")
    onset = axes.twiny()
    worst = [r["onset_error_max_samples"] for r in rows]
    onset.plot(
        [np.nan if w is None else w for w in worst], position, "o", color="#dd8452", markersize=4
    )
    onset.set_xlabel("largest onset error, samples (dots)", color="#dd8452")
    axes.set_title(f"{name}: the held-out tracks as deployed sensors see them", fontsize=10)
    return figure


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


#: One look per model, so curves that coincide (two perfect models) stay visible: the first
#: model is drawn widest, the others narrower and dashed on top of it.
_STYLES: tuple[dict[str, Any], ...] = (
    {"linewidth": 4.0, "alpha": 0.6},
    {"linewidth": 2.0, "linestyle": "--"},
    {"linewidth": 1.5, "linestyle": "-."},
    {"linewidth": 1.5, "linestyle": ":"},
    {"linewidth": 1.0, "linestyle": (0, (5, 1, 1, 1))},
)


def _roc_figure(y: np.ndarray, models: dict[str, ModelScores]) -> Figure:
    """ROC curves of every model on one axes, AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    for (name, scores), style in zip(models.items(), _STYLES, strict=False):
        fpr, tpr, _ = roc_curve(y, scores.proba)
        fpr, tpr = _thin(fpr, tpr)
        label = f"{name} (AUC {roc_auc_score(y, scores.proba):.3f})"
        ax.plot(fpr, tpr, label=label, **style)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return figure


def _pr_figure(y: np.ndarray, models: dict[str, ModelScores]) -> Figure:
    """Precision-recall curves of every model on one axes, average precision in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure = _new_figure(5.5, 5.0)
    ax = figure.add_subplot()
    for (name, scores), style in zip(models.items(), _STYLES, strict=False):
        precision, recall, _ = precision_recall_curve(y, scores.proba)
        recall, precision = _thin(recall, precision)
        ap = average_precision_score(y, scores.proba)
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})", **style)
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
    # The real values on a log axis; only an exact 0 (which it cannot show) is left out.
    for values, label in (
        (curves.train_loss, "training loss"),
        (curves.val_loss, "validation loss"),
    ):
        shown = np.asarray(values, dtype=np.float64)
        ax.plot(epochs, np.where(shown > 0, shown, np.nan), marker=".", label=label)
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
