"""DataPreprocessor: track-wise split, scaler fitted on training tracks only, windows per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from missile_classifier.schema import frame_columns
from missile_classifier.scoring.windows import batch_features
from missile_classifier.simulation.dataset import simulate_dataset, write_dataset
from missile_classifier.training.data import DataPreprocessor


@pytest.fixture(scope="module")
def csvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("data")
    write_dataset(simulate_dataset("challenge", 12, seed=4, test_fraction=0.25), out)
    return out / "train.csv", out / "test.csv"


def test_seed_usage_snippet(csvs: tuple[Path, Path]) -> None:
    preprocessor = DataPreprocessor(sequence_length=10)
    train_df, test_df = preprocessor.load_data(*csvs)
    X_train, X_val, X_test, y_train, _y_val, y_test = preprocessor.preprocess(train_df, test_df)
    # 16 standardised features, then one input per bin of each encoded feature.
    assert preprocessor.encoding_ is not None and preprocessor.encoding_.width > 0
    assert X_train.shape[1:] == (10, 16 + preprocessor.encoding_.width)
    assert X_train.dtype == np.float32
    assert X_test is not None and y_test is not None and test_df is not None
    assert len(X_train) + len(X_val) == len(train_df) and len(X_test) == len(test_df)
    assert set(np.unique(y_train)) == {0.0, 1.0}


def test_split_is_by_track_and_scaler_sees_training_tracks_only(csvs: tuple[Path, Path]) -> None:
    preprocessor = DataPreprocessor(validation_fraction=0.25, random_state=0)
    train_df, _ = preprocessor.load_data(csvs[0])
    preprocessor.preprocess(train_df)
    fit, val = preprocessor.train_tracks_, preprocessor.validation_tracks_
    assert len(fit) == 6 and len(val) == 3 and not set(fit) & set(val)
    rows = train_df[train_df["track_id"].isin(fit)]
    columns = frame_columns(rows)
    np.testing.assert_allclose(preprocessor.mean_, batch_features(columns).mean(axis=0))
    every = batch_features(frame_columns(train_df))
    assert not np.allclose(preprocessor.mean_, every.mean(axis=0))
    # The encoding's bins, too, come from the training tracks: their range bounds the edges.
    encoding = preprocessor.encoding_
    assert encoding is not None and encoding.columns
    for column, edges in zip(encoding.columns, encoding.edges, strict=True):
        values = batch_features(columns)[:, column]
        assert edges[0] == values.min() and edges[-1] == values.max()


def test_encoding_can_be_switched_off_and_needs_labels(csvs: tuple[Path, Path]) -> None:
    plain = DataPreprocessor(encoded_features=())
    train_df, _ = plain.load_data(csvs[0])
    X_train = plain.preprocess(train_df).X_train
    assert X_train.shape[2] == 16 and plain.encoding_ is None
    with pytest.raises(ValueError, match="needs labels"):
        DataPreprocessor().fit(train_df.drop(columns=["reentry_phase"]))


def test_transform_keeps_row_order_and_needs_a_fit(csvs: tuple[Path, Path]) -> None:
    preprocessor = DataPreprocessor()
    train_df, test_df = preprocessor.load_data(*csvs)
    assert test_df is not None
    with pytest.raises(RuntimeError, match="not fitted"):
        preprocessor.transform(test_df)
    preprocessor.fit(train_df)
    shuffled = test_df.sample(frac=1.0, random_state=2)
    a, b = preprocessor.transform(test_df), preprocessor.transform(shuffled)
    np.testing.assert_array_equal(b.X, a.X[shuffled.index.to_numpy()])
    np.testing.assert_array_equal(b.track_id, shuffled["track_id"].to_numpy())
    unlabeled = preprocessor.transform(test_df.drop(columns=["reentry_phase"]))
    assert unlabeled.y is None


def test_one_track_cannot_be_split(csvs: tuple[Path, Path]) -> None:
    frame = pd.read_csv(csvs[0])
    with pytest.raises(ValueError, match="at least two tracks"):
        DataPreprocessor().split_tracks(frame[frame["track_id"] == 0])
