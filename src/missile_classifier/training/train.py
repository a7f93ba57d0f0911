"""The training job: data → LSTM and baselines → evaluation → a verified ONNX bundle.

:func:`run_training` reads as its steps: :func:`prepare_data`, :func:`fit_lstm`,
:func:`fit_baselines`, then :func:`write_bundle` (ONNX export, preprocessing, report and
:func:`bundle_metadata`, written to a staging folder that is renamed only when complete).
"""

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
import pandas as pd
import torch

from missile_classifier import __version__
from missile_classifier.columns import ALTITUDE, LABEL, TRACK_ID
from missile_classifier.scoring import bundle
from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.training.augmentation import augment
from missile_classifier.training.config import TrainConfig
from missile_classifier.training.data import DataPreprocessor, FrameWindows
from missile_classifier.training.metrics import choose_threshold, evaluate_predictions
from missile_classifier.training.models.baselines import BaselineClassifier
from missile_classifier.training.models.lstm import LSTMClassifier, export_onnx
from missile_classifier.training.report import (
    ModelScores,
    ReportData,
    TrainingCurves,
    write_report,
)

log = logging.getLogger(__name__)

#: The random forest sees at most this many training windows (drawn at random): on the
#: ballistic profile the full set (millions of windows × 160 values) costs minutes and GBs
#: for a baseline, and its score barely moves past a few hundred thousand.
BASELINE_MAX_ROWS: Final = 200_000
#: Windows used to compare ONNX Runtime with torch at export.
EXPORT_CHECK_ROWS: Final = 4_096


@dataclass
class TrainResult:
    """What a training run produced."""

    bundle_path: Path
    evaluated_on: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class PreparedData:
    """A run's data: the fitted preprocessor and the windows of every split."""

    prep: DataPreprocessor
    #: Training and validation tracks (whole tracks on each side).
    fit_df: pd.DataFrame
    val_df: pd.DataFrame
    train: FrameWindows
    val: FrameWindows
    #: The rows every model is evaluated on: the labeled test file, else the validation tracks.
    evaluation: FrameWindows
    eval_df: pd.DataFrame
    evaluated_on: str


def run_training(config: TrainConfig) -> TrainResult:
    """Train, evaluate and export one bundle; point ``<output>/latest`` at it."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    data = prepare_data(config)
    lstm = fit_lstm(config, data)
    assert data.val.y is not None
    scores = {
        "LSTM": _scores(
            lstm.predict_proba(data.val.X), data.val.y, lstm.predict_proba(data.evaluation.X)
        ),
        **fit_baselines(config, data),
    }
    directory, metrics = write_bundle(config, data, lstm, scores)
    return TrainResult(directory, data.evaluated_on, metrics, time.perf_counter() - started)


def prepare_data(config: TrainConfig) -> PreparedData:
    """Load and validate the files, hold out validation tracks, fit the scaler, window all."""
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
    # Validation is augmented too: it chooses the epoch and the threshold, which must suit
    # the deployed shapes as well. Evaluation stays on the data as given.
    fit_df = augment(fit_df, config.augment, config.seed)
    seen_val = augment(val_df, config.augment, config.seed + 1)
    prep.fit(fit_df)
    train, val = prep.transform(fit_df), prep.transform(seen_val)
    if test_df is not None and LABEL in test_df.columns:
        evaluation, eval_df, evaluated_on = prep.transform(test_df), test_df, str(config.test_data)
    else:
        evaluation, eval_df = prep.transform(val_df), val_df
        evaluated_on = "validation tracks (no labeled --test_data given)"
    log.info(
        "windows: %d train, %d validation, %d evaluation",
        len(train.X),
        len(val.X),
        len(evaluation.X),
    )
    return PreparedData(prep, fit_df, val_df, train, val, evaluation, eval_df, evaluated_on)


def fit_lstm(config: TrainConfig, data: PreparedData) -> LSTMClassifier:
    """Train the LSTM on the training windows, stopping early on the validation windows."""
    lstm = LSTMClassifier(
        sequence_length=config.sequence_length,
        n_features=data.prep.scaler().n_inputs,
        lstm_units=config.lstm_units,
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        epochs=config.epochs,
        patience=config.patience,
        random_state=config.seed,
        verbose=config.verbose,
    ).build_model()
    assert data.train.y is not None and data.val.y is not None
    lstm.train(data.train.X, data.train.y, data.val.X, data.val.y)
    return lstm


def fit_baselines(config: TrainConfig, data: PreparedData) -> dict[str, ModelScores]:
    """Fit every configured baseline and score it like the LSTM, by its table name."""
    train, val, evaluation = data.train, data.val, data.evaluation
    assert train.y is not None and val.y is not None
    rows = _subsample(len(train.X), BASELINE_MAX_ROWS, config.seed)
    # Baselines see the standardised features only: a threshold or a tree splits a feature
    # where it likes, so the encoding (a monotone re-description of some) adds nothing for them.
    plain = slice(0, len(FEATURE_NAMES))
    scores = {}
    for method in config.baselines:
        baseline = BaselineClassifier(method=method, random_state=config.seed)
        baseline.fit(train.X[rows, :, plain], train.y[rows])
        scores[baseline.name] = _scores(
            baseline.predict_proba(val.X[:, :, plain]),
            val.y,
            baseline.predict_proba(evaluation.X[:, :, plain]),
        )
    return scores


def write_bundle(
    config: TrainConfig,
    data: PreparedData,
    lstm: LSTMClassifier,
    scores: dict[str, ModelScores],
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Write the bundle into a staging folder, rename it when complete, point ``latest`` at it.

    Returns:
        The bundle folder and every model's metrics on the evaluation rows.
    """
    version = _unused_version(config.output)
    directory = config.output / version
    staging = config.output / f".{version}.partial"
    staging.mkdir(parents=True)
    try:
        check = data.evaluation.X[
            _subsample(len(data.evaluation.X), EXPORT_CHECK_ROWS, config.seed)
        ]
        onnx_difference = export_onnx(lstm, staging / bundle.MODEL_FILE, check)
        lstm.save(staging / bundle.CHECKPOINT_FILE)
        preprocessing = bundle.Preprocessing(
            FEATURE_NAMES, data.prep.scaler(), scores["LSTM"].threshold
        )
        bundle.write_preprocessing(staging, preprocessing)
        metrics = _write_report(staging, version, data, lstm, scores, onnx_difference)
        metadata = bundle_metadata(config, data, lstm, metrics, onnx_difference)
        bundle.write_metadata(staging, metadata, version=version)
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle.point_latest(directory)
    return directory, metrics


def _write_report(
    directory: Path,
    version: str,
    data: PreparedData,
    lstm: LSTMClassifier,
    scores: dict[str, ModelScores],
    onnx_difference: float,
) -> dict[str, dict[str, Any]]:
    """Write ``report.md`` with its plots; return every model's metrics on the evaluation rows."""
    report_data = _report_data(data.evaluation, data.eval_df[ALTITUDE].to_numpy())
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
        directory,
        title=f"missile-classifier {version}",
        data=report_data,
        models=scores,
        notes=f"Evaluated on {data.evaluated_on}. Decision thresholds chosen on the validation "
        f"tracks (F1-optimal) for every model. ONNX export matched torch within "
        f"{onnx_difference:.1e}.\n\n{_model_summary(data.prep, lstm)}",
        training=TrainingCurves.from_history(lstm.history_dict()),
    )
    return metrics


def bundle_metadata(
    config: TrainConfig,
    data: PreparedData,
    lstm: LSTMClassifier,
    metrics: dict[str, dict[str, Any]],
    onnx_difference: float,
) -> dict[str, Any]:
    """What ``metadata.json`` records besides the checksums: provenance, metrics, training."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": f"missile-classifier {__version__}",
        "model": "LSTM",
        "evaluated_on": data.evaluated_on,
        "metrics": metrics,
        "data": _data_record(config, data),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "training": lstm.history_dict(),
        "onnx_max_abs_difference": onnx_difference,
        "environment": {"python": platform.python_version(), "torch": torch.__version__},
    }


def _data_record(config: TrainConfig, data: PreparedData) -> dict[str, Any]:
    """Which files trained the bundle (and a fingerprint of their contents); counts per split."""
    files = [p for p in (config.train_data, config.test_data) if p is not None]
    return {
        "train": str(config.train_data),
        "test": str(config.test_data) if config.test_data else None,
        "fingerprint": bundle.fingerprint(files),
        "tracks": {
            "train": int(data.fit_df[TRACK_ID].nunique()),
            "validation": int(data.val_df[TRACK_ID].nunique()),
        },
        "windows": {
            "train": len(data.train.X),
            "validation": len(data.val.X),
            "evaluation": len(data.evaluation.X),
        },
    }


def _unused_version(output: Path) -> str:
    """A new bundle name under ``output``; two runs in one second get distinct names."""
    version = bundle.new_version()
    if (output / version).exists():
        version = f"{version}-{int(time.time_ns() % 1_000_000)}"
    return version


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
    ending = (
        f"early stopping ({lstm.patience} epochs without a validation loss 1 % below the "
        "best so far)"
        if history.stopped_early
        else "the epoch limit"
    )
    return (
        f"LSTM input: windows of {lstm.sequence_length} rows of {lstm.n_features} values "
        f"({inputs}). Trained {len(history.train_loss)} epochs in {history.seconds:.0f} s, "
        f"ended by {ending}; the weights of epoch {history.best_epoch} (lowest validation "
        f"loss) were kept."
    )


def _scores(val_proba: np.ndarray, val_y: np.ndarray, eval_proba: np.ndarray) -> ModelScores:
    """Scores on the evaluation rows with the threshold chosen on validation rows."""
    return ModelScores(eval_proba, choose_threshold(val_y, val_proba))
