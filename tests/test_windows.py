"""Windows: padding, order independence, and chunked/streamed scoring equal to batch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from missile_classifier.schema import frame_columns
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import N_FEATURES
from missile_classifier.scoring.windows import (
    Scaler,
    StreamMemory,
    batch_windows,
    sliding_windows,
    stream_windows,
)
from missile_classifier.simulation.challenge import simulate_challenge

SCALER = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), sequence_length=4)


@pytest.fixture(scope="module")
def two_sensor_frame() -> pd.DataFrame:
    base = simulate_challenge([0, 1], seed=3)
    other = base.assign(sensor_id=7, altitude=base["altitude"] + 5.0)
    return pd.concat([base, other], ignore_index=True)


def test_sliding_windows_pad_with_the_stream_start() -> None:
    rows = np.arange(6, dtype=np.float32)[:, None]
    starts = np.array([0, 0, 0, 3, 3, 3])
    windows = sliding_windows(rows, starts, 3)[:, :, 0]
    np.testing.assert_array_equal(
        windows, [[0, 0, 0], [0, 0, 1], [0, 1, 2], [3, 3, 3], [3, 3, 4], [3, 4, 5]]
    )


def test_every_row_gets_its_window_whatever_the_input_order(two_sensor_frame: pd.DataFrame) -> None:
    windows, context = batch_windows(frame_columns(two_sensor_frame), SCALER)
    assert windows.shape == (len(two_sensor_frame), 4, N_FEATURES)
    shuffled = two_sensor_frame.sample(frac=1.0, random_state=1)
    again, context_again = batch_windows(frame_columns(shuffled), SCALER)
    np.testing.assert_array_equal(again, windows[shuffled.index.to_numpy()])
    np.testing.assert_array_equal(context_again, context[shuffled.index.to_numpy()])
    assert sorted(np.unique(context)) == [1, 2, 3, 4] and (context == 1).sum() == 4  # 4 streams


def test_chunked_scoring_equals_one_batch(two_sensor_frame: pd.DataFrame) -> None:
    columns = frame_columns(two_sensor_frame.sort_values(["timestamp", "sensor_id"]))
    whole, _ = batch_windows(columns, SCALER)
    memories: dict[tuple[int, int], StreamMemory] = {}
    parts = [
        batch_windows({c: v[b : b + 101] for c, v in columns.items()}, SCALER, memories)[0]
        for b in range(0, len(columns["timestamp"]), 101)
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert set(memories) == {(0, 3), (1, 3), (0, 7), (1, 7)}


ENCODED = Scaler(
    np.zeros(N_FEATURES),
    np.ones(N_FEATURES),
    3,
    BinEncoding((2,), (np.array([0.0, 50_000.0, 100_000.0, 200_000.0]),)),
)


@pytest.mark.parametrize(
    "scaler", [SCALER, ENCODED, Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 1)]
)
def test_point_by_point_through_json_memory_equals_batch(
    two_sensor_frame: pd.DataFrame, scaler: Scaler
) -> None:
    stream = two_sensor_frame[
        (two_sensor_frame["track_id"] == 1) & (two_sensor_frame["sensor_id"] == 7)
    ]
    columns = frame_columns(stream.iloc[:30])
    whole, whole_context, _ = stream_windows(columns, scaler)
    assert whole.shape == (30, scaler.sequence_length, scaler.n_inputs)
    memory, rows, contexts = None, [], []
    for i in range(30):
        window, context, memory = stream_windows(
            {c: v[i : i + 1] for c, v in columns.items()}, scaler, memory
        )
        memory = StreamMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
        rows.append(window)
        contexts.append(context)
    np.testing.assert_array_equal(np.concatenate(rows), whole)
    np.testing.assert_array_equal(np.concatenate(contexts), whole_context)
    assert memory is not None and memory.count == 30
    assert len(memory.recent) == scaler.sequence_length - 1


def test_rows_going_back_in_time_across_chunks_are_refused(two_sensor_frame: pd.DataFrame) -> None:
    columns = frame_columns(two_sensor_frame)
    memories: dict[tuple[int, int], StreamMemory] = {}
    batch_windows({c: v[100:200] for c, v in columns.items()}, SCALER, memories)
    with pytest.raises(ValueError, match="time order across chunks"):
        batch_windows({c: v[:100] for c, v in columns.items()}, SCALER, memories)
