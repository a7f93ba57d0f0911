"""Training data: load and validate CSVs, split by track, fit the scaler, build windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from missile_classifier.columns import LABEL, SENSOR_ID, TIMESTAMP, TRACK_ID
from missile_classifier.schema import frame_columns, load_tracks
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.scoring.ranges import DT, InputRanges
from missile_classifier.scoring.windows import Scaler, batch_features, batch_windows
from missile_classifier.training.binning import fit_bin_encoding
from missile_classifier.training.config import TrainConfig


class Windows(NamedTuple):
    """Model inputs and labels; unpacks like ``train_test_split``'s result."""

    X_train: np.ndarray
    X_val: np.ndarray
    X_test: np.ndarray | None
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray | None


@dataclass(frozen=True)
class FrameWindows:
    """Windows of one frame, in the frame's row order, with what evaluation needs per row."""

    X: np.ndarray
    context_points: np.ndarray
    y: np.ndarray | None
    track_id: np.ndarray
    sensor_id: np.ndarray
    timestamp: np.ndarray


class DataPreprocessor:
    """Turns track CSVs into LSTM windows, following scikit-learn's estimator conventions.

    Args:
        sequence_length: Rows per window (the row being classified and the ones before it).
        validation_fraction: Share of training *tracks* held out for validation.
        random_state: Seed of the track split.
        encoded_features: Features that also enter the model bin-encoded, with bins fitted to
            the training labels (see :mod:`missile_classifier.scoring.encoding`); empty for none.
        encoding_bins: Most bins per encoded feature.
        encoding_kind: ``"thermometer"`` or ``"piecewise-linear"``.
    """

    def __init__(
        self,
        sequence_length: int = TrainConfig.sequence_length,
        validation_fraction: float = TrainConfig.validation_fraction,
        random_state: int = TrainConfig.seed,
        encoded_features: Sequence[str] = TrainConfig.encoded_features,
        encoding_bins: int = TrainConfig.encoding_bins,
        encoding_kind: str = TrainConfig.encoding_kind,
    ) -> None:
        self.sequence_length = sequence_length
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.encoded_features = tuple(encoded_features)
        self.encoding_bins = encoding_bins
        self.encoding_kind = encoding_kind

    def load_data(
        self, train_path: str | Path, test_path: str | Path | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Read and validate the labeled training file and the (optionally labeled) test file."""
        train = load_tracks(train_path, require_labels=True)
        test = load_tracks(test_path) if test_path is not None else None
        return train, test

    def split_tracks(self, train_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Hold out whole tracks for validation, so no track is on both sides."""
        tracks = train_df[TRACK_ID].to_numpy()
        if len(np.unique(tracks)) < 2:
            raise ValueError("need at least two tracks to hold some out for validation")
        splitter = GroupShuffleSplit(
            n_splits=1, test_size=self.validation_fraction, random_state=self.random_state
        )
        fit_rows, val_rows = next(splitter.split(train_df, groups=tracks))
        return train_df.iloc[fit_rows], train_df.iloc[val_rows]

    def fit(self, train_df: pd.DataFrame) -> DataPreprocessor:
        """Fit the scaler (and encoding) on ``train_df``: training tracks only, never validation.

        Raises:
            ValueError: Features are to be encoded but ``train_df`` has no labels.
        """
        features = batch_features(frame_columns(train_df))
        # Ranges are per column, so Δt (in stream order) need not line up with the features.
        ordered = train_df.sort_values([TRACK_ID, SENSOR_ID, TIMESTAMP])
        dt = ordered.groupby([TRACK_ID, SENSOR_ID])[TIMESTAMP].diff().to_numpy(np.float64)
        self.ranges_ = InputRanges.fit((*FEATURE_NAMES, DT), np.column_stack([features, dt]))
        scaler = StandardScaler().fit(features)
        self.mean_ = scaler.mean_
        # Constant features (e.g. no missing intensity in the data) keep a unit scale.
        self.scale_ = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        self.feature_names_ = FEATURE_NAMES
        self.encoding_: BinEncoding | None = None
        if self.encoded_features:
            if LABEL not in train_df.columns:
                raise ValueError(f"encoding features needs labels: no {LABEL!r} column")
            self.encoding_ = fit_bin_encoding(
                features,
                train_df[LABEL].to_numpy(),
                FEATURE_NAMES,
                self.encoded_features,
                self.encoding_bins,
                self.encoding_kind,
                self.random_state,
            )
        return self

    def transform(self, df: pd.DataFrame) -> FrameWindows:
        """Windows for every row of ``df``, in ``df``'s row order."""
        windows, context = batch_windows(frame_columns(df), self.scaler())
        labels = df[LABEL].to_numpy(np.float32) if LABEL in df.columns else None
        return FrameWindows(
            windows,
            context,
            labels,
            df[TRACK_ID].to_numpy(),
            df[SENSOR_ID].to_numpy(),
            df[TIMESTAMP].to_numpy(np.float64),
        )

    def scaler(self) -> Scaler:
        """The fitted scaler with the window length, as the bundle stores it."""
        if not hasattr(self, "mean_"):
            raise RuntimeError("DataPreprocessor is not fitted: call fit() or preprocess() first")
        return Scaler(self.mean_, self.scale_, self.sequence_length, self.encoding_, self.ranges_)

    def preprocess(self, train_df: pd.DataFrame, test_df: pd.DataFrame | None = None) -> Windows:
        """Split by track, fit the scaler on the training tracks, window every split."""
        fit_df, val_df = self.split_tracks(train_df)
        self.fit(fit_df)
        self.train_tracks_ = np.unique(fit_df[TRACK_ID])
        self.validation_tracks_ = np.unique(val_df[TRACK_ID])
        train, val = self.transform(fit_df), self.transform(val_df)
        test = self.transform(test_df) if test_df is not None else None
        assert train.y is not None and val.y is not None
        return Windows(
            train.X,
            val.X,
            test.X if test is not None else None,
            train.y,
            val.y,
            test.y if test is not None else None,
        )
