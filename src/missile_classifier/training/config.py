"""The training configuration: everything a training run can set, each default written once.

``missile-classifier train``'s option defaults, :class:`~missile_classifier.training.data.
DataPreprocessor`'s, :class:`~missile_classifier.training.models.lstm.LSTMClassifier`'s and
:func:`~missile_classifier.training.binning.fit_bin_encoding`'s all read them from
:class:`TrainConfig` (its class attributes hold the defaults), so they cannot drift apart.
Standard library and the scoring constants only: the CLI imports it for ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from missile_classifier.scoring.encoding import THERMOMETER

#: The baselines every run trains beside the LSTM (``BaselineClassifier`` methods).
BASELINES: Final = ("altitude_threshold", "random_forest", "dummy")


@dataclass(frozen=True)
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
    #: Share of training tracks held out to choose the epoch and the decision thresholds.
    validation_fraction: float = 0.2
    #: Features the model also sees bin-encoded (empty: none): where the phase boundaries of
    #: both simulator profiles lie; see :mod:`missile_classifier.scoring.encoding`.
    encoded_features: tuple[str, ...] = ("altitude", "altitude_over_max", "velocity_up")
    #: Most bins per encoded feature.
    encoding_bins: int = 8
    encoding_kind: str = THERMOMETER
    #: Degraded copies of each training and validation track (see
    #: :mod:`missile_classifier.training.augmentation`): the default model must hold up at
    #: other sampling rates, with rows lost, noisier and picked up late.
    augment: int = 1
    seed: int = 42
    baselines: tuple[str, ...] = BASELINES
    verbose: bool = False
