"""The training job: data → LSTM and baselines → evaluation → a verified ONNX bundle."""

from __future__ import annotations

import logging
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from missile_classifier import __version__, bundle
from missile_classifier.data import DataPreprocessor, FrameWindows
from missile_classifier.encoding import DEFAULT_ENCODED_FEATURES, DEFAULT_MAX_BINS, THERMOMETER
from missile_classifier.evaluate import (
    ModelScores,
    ReportData,
    TrainingCurves,
    choose_threshold,
    evaluate_predictions,
    write_report,
)
from missile_classifier.features import FEATURE_NAMES
from missile_classifier.models.baselines import BaselineClassifier
from missile_classifier.models.lstm import LSTMClassifier, export_onnx
from missile_classifier.schema import ALTITUDE, LABEL, TRACK_ID

log = logging.getLogger(__name__)

BASELINES: Final = ("altitude_threshold", "random_forest", "dummy")
#: The random forest sees at most this many training windows (drawn at random): on the
#: ballistic profile the full set (millions of windows × 160 values) costs minutes and GBs
#: for a baseline, and its score barely moves past a few hundred thousand.
BASELINE_MAX_ROWS: Final = 200_000
#: Windows used to compare ONNX Runtime with torch at export.
EXPORT_CHECK_ROWS: Final = 4_096


@dataclass
class TrainConfig:
    """Everything ``missile-classifier train`` can set (defaults = the seed's table)."""

    train_data: Path
    test_data: Path | None = None
    output: Path = Path("models")
    sequence_length: int = 10
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    lstm_units: int = 64
    patience: int = 5
    validation_fraction: float = 0.2
    #: Features the model also sees bin-encoded (empty: none); see ``encoding.py``.
    encoded_features: tuple[str, ...] = DEFAULT_ENCODED_FEATURES
    encoding_bins: int = DEFAULT_MAX_BINS
    encoding_kind: str = THERMOMETER
    seed: int = 42
    baselines: tuple[str, ...] = BASELINES
    verbose: bool = False


@dataclass
class TrainResult:
    """What a training run produced."""

    bundle_path: Path
    evaluated_on: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def _report_data(frame_windows: FrameWindows, altitude: np.ndarray) -> ReportData:
    assert frame_windows.y is not None
    return ReportData(
        frame_windows.track_id,
        frame_windows.sensor_id,
        frame_windows.timestamp,
        altitude,
        frame_windows.y.astype(np.int64),
    )


def _subsample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _model_summary(prep: DataPreprocessor, lstm: LSTMClassifier) -> str:
    """One paragraph for the report: what the LSTM read and how its training ended."""
    encoding = prep.encoding_
    if encoding is None or encoding.width == 0:
        inputs = f"the {len(FEATURE_NAMES)} standardised features"
    else:
        names = ", ".join(encoding.names(FEATURE_NAMES))
        inputs = (
            f"the {len(FEATURE_NAMES)} standardised features and {encoding.width} "
            f"{encoding.kind} inputs encoding {names}"
        )
    history = lstm.history_
    ending = "early stopping" if history.stopped_early else "the epoch limit"
    return (
        f"LSTM input: windows of {lstm.sequence_length} rows of {lstm.n_features} values "
        f"({inputs}). Trained {len(history.train_loss)} epochs in {history.seconds:.0f} s, "
        f"ended by {ending}; the weights of epoch {history.best_epoch} (lowest validation "
        f"loss) were kept."
    )


def run_training(config: TrainConfig) -> TrainResult:
    """Train, evaluate and export one bundle; point ``<output>/latest`` at it."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    prep = DataPreprocessor(
        config.sequence_length,
        config.validation_fraction,
        config.seed,
        config.encoded_features,
        config.encoding_bins,
        config.encoding_kind,
    )
    train_df, test_df = prep.load_data(config.train_data, config.test_data)
    fit_df, val_df = prep.split_tracks(train_df)
    prep.fit(fit_df)
    train, val = prep.transform(fit_df), prep.transform(val_df)
    assert train.y is not None and val.y is not None
    labeled_test = test_df is not None and LABEL in test_df.columns
    if labeled_test:
        assert test_df is not None
        evaluation, eval_df, evaluated_on = prep.transform(test_df), test_df, str(config.test_data)
    else:
        evaluation, eval_df = val, val_df
        evaluated_on = "validation tracks (no labeled --test_data given)"
    log.info(
        "windows: %d train, %d validation, %d evaluation",
        len(train.X),
        len(val.X),
        len(evaluation.X),
    )

    lstm = LSTMClassifier(
        sequence_length=config.sequence_length,
        n_features=prep.scaler().n_inputs,
        lstm_units=config.lstm_units,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        epochs=config.epochs,
        patience=config.patience,
        random_state=config.seed,
        verbose=config.verbose,
    ).build_model()
    assert train.y is not None
    lstm.train(train.X, train.y, val.X, val.y)
    scores = {"LSTM": _scores(lstm.predict_proba(val.X), val.y, lstm.predict_proba(evaluation.X))}
    rows = _subsample(len(train.X), BASELINE_MAX_ROWS, config.seed)
    # Baselines see the standardised features only: a threshold or a tree splits a feature
    # where it likes, so the encoding (a monotone re-description of some) adds nothing for them.
    plain = slice(0, len(FEATURE_NAMES))
    for method in config.baselines:
        baseline = BaselineClassifier(method=method, random_state=config.seed)
        baseline.fit(train.X[rows, :, plain], train.y[rows])
        scores[baseline.name] = _scores(
            baseline.predict_proba(val.X[:, :, plain]),
            val.y,
            baseline.predict_proba(evaluation.X[:, :, plain]),
        )

    version = bundle.new_version()
    directory = config.output / version
    if directory.exists():  # two runs in one second: keep both
        version = f"{version}-{int(time.time_ns() % 1_000_000)}"
        directory = config.output / version
    staging = config.output / f".{version}.partial"
    staging.mkdir(parents=True)
    try:
        check = evaluation.X[_subsample(len(evaluation.X), EXPORT_CHECK_ROWS, config.seed)]
        onnx_difference = export_onnx(lstm, staging / bundle.MODEL_FILE, check)
        lstm.save(staging / bundle.CHECKPOINT_FILE)
        threshold = scores["LSTM"].threshold
        bundle.write_preprocessing(
            staging,
            bundle.Preprocessing(FEATURE_NAMES, prep.scaler(), threshold),
        )
        report_data = _report_data(evaluation, eval_df[ALTITUDE].to_numpy())
        metrics = {
            name: evaluate_predictions(
                report_data.track_id,
                report_data.sensor_id,
                report_data.timestamp,
                report_data.y_true,
                s.proba,
                s.threshold,
            )
            for name, s in scores.items()
        }
        write_report(
            staging,
            title=f"missile-classifier {version}",
            data=report_data,
            models=scores,
            notes=f"Evaluated on {evaluated_on}. Decision thresholds chosen on the validation "
            f"tracks (F1-optimal) for every model. ONNX export matched torch within "
            f"{onnx_difference:.1e}.\n\n{_model_summary(prep, lstm)}",
            training=TrainingCurves.from_history(lstm.history_dict()),
        )
        bundle.write_metadata(
            staging,
            {
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "generator": f"missile-classifier {__version__}",
                "model": "LSTM",
                "evaluated_on": evaluated_on,
                "metrics": metrics,
                "data": {
                    "train": str(config.train_data),
                    "test": str(config.test_data) if config.test_data else None,
                    "fingerprint": bundle.fingerprint(
                        [p for p in (config.train_data, config.test_data) if p is not None]
                    ),
                    "tracks": {
                        "train": int(fit_df[TRACK_ID].nunique()),
                        "validation": int(val_df[TRACK_ID].nunique()),
                    },
                    "windows": {
                        "train": len(train.X),
                        "validation": len(val.X),
                        "evaluation": len(evaluation.X),
                    },
                },
                "parameters": {
                    k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
                },
                "training": lstm.history_dict(),
                "onnx_max_abs_difference": onnx_difference,
                "environment": {"python": platform.python_version(), "torch": torch.__version__},
            },
            version=version,
        )
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle.point_latest(directory)
    return TrainResult(directory, evaluated_on, metrics, time.perf_counter() - started)


def _scores(val_proba: np.ndarray, val_y: np.ndarray, eval_proba: np.ndarray) -> ModelScores:
    """Scores on the evaluation rows with the threshold chosen on validation rows."""
    return ModelScores(eval_proba, choose_threshold(val_y, val_proba))
