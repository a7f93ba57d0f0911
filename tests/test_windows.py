"""Windows: padding, order independence, and chunked/streamed scoring equal to batch."""

from __future__ import annotations

import cProfile
import json
import pstats
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import pytest

from missile_classifier.schema import frame_columns
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.scoring.windows import (
    Scaler,
    StreamMemory,
    batch_features,
    batch_windows,
    group_streams,
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
    "scaler",
    [
        SCALER,
        ENCODED,
        Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 1),
        # The shortest window with a memory: exactly one previous row must be carried.
        Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 2),
    ],
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
    # The memory holds the last row's whole window (what a quarantined next point is given).
    assert len(memory.recent) == scaler.sequence_length
    np.testing.assert_array_equal(memory.recent, whole[-1])


def test_rows_going_back_in_time_across_chunks_are_refused(two_sensor_frame: pd.DataFrame) -> None:
    columns = frame_columns(two_sensor_frame)
    memories: dict[tuple[int, int], StreamMemory] = {}
    batch_windows({c: v[100:200] for c, v in columns.items()}, SCALER, memories)
    with pytest.raises(ValueError, match="time order across chunks"):
        batch_windows({c: v[:100] for c, v in columns.items()}, SCALER, memories)


ALTITUDE = FEATURE_NAMES.index("altitude")


def test_no_rows_make_no_streams_and_no_windows() -> None:
    empty_ids, empty_times = np.zeros(0, dtype=np.int64), np.zeros(0)
    streams = group_streams(empty_ids, empty_ids, empty_times)
    assert streams.order.shape == (0,)
    assert streams.bounds.tolist() == [0] and streams.bounds.dtype == np.int64  # no stream
    assert streams.inverse().shape == (0,)
    columns = {
        "track_id": empty_ids,
        "sensor_id": empty_ids,
        **{c: empty_times for c in ("timestamp", "latitude", "longitude", "altitude")},
        "radiometric_intensity": empty_times,
    }
    windows, context = batch_windows(columns, SCALER)
    assert windows.shape == (0, 4, N_FEATURES) and context.shape == (0,)
    assert batch_features(columns).shape == (0, N_FEATURES)


def test_a_one_row_stream_among_others_gets_a_window_of_its_own_row() -> None:
    # Input order interleaves five streams; each row has its own altitude, so a window's
    # altitudes say which rows it holds. (track, sensor): (1, 1) has 3 rows, (2, 1) two, and
    # (0, 5), (1, 2) and (3, 1) one each: first, in the middle and last in sorted order.
    track = np.array([1, 3, 2, 1, 0, 1, 2, 1])
    sensor = np.array([1, 1, 1, 2, 5, 1, 1, 1])
    time = np.array([10.0, 12.0, 10.0, 10.5, 11.0, 10.5, 10.5, 11.0])
    altitude = np.array([1e3, 4e3, 5e3, 7e3, 9e3, 2e3, 6e3, 3e3])
    columns = {
        "track_id": track,
        "sensor_id": sensor,
        "timestamp": time,
        "latitude": np.full(8, 45.0),
        "longitude": np.full(8, 7.0),
        "altitude": altitude,
        "radiometric_intensity": np.full(8, 0.5),
    }
    streams = group_streams(track, sensor, time)
    assert streams.bounds.tolist() == [0, 1, 4, 5, 7, 8]  # (0,5) (1,1)×3 (1,2) (2,1)×2 (3,1)
    windows, context = batch_windows(columns, SCALER)
    assert context.tolist() == [1, 1, 1, 1, 1, 2, 2, 3]
    np.testing.assert_array_equal(
        windows[:, :, ALTITUDE],
        [
            [1e3, 1e3, 1e3, 1e3],
            [4e3, 4e3, 4e3, 4e3],  # (3, 1), last in sorted order
            [5e3, 5e3, 5e3, 5e3],
            [7e3, 7e3, 7e3, 7e3],  # (1, 2), between its track's other sensor and track 2
            [9e3, 9e3, 9e3, 9e3],  # (0, 5), first in sorted order
            [1e3, 1e3, 1e3, 2e3],
            [5e3, 5e3, 5e3, 6e3],
            [1e3, 1e3, 2e3, 3e3],
        ],
    )
    # A row alone has no motion: the one-row streams' speeds are 0, not a jump from a
    # neighbouring stream's last row.
    assert (windows[[1, 3, 4], -1, FEATURE_NAMES.index("speed")] == 0).all()


def _python_calls(function: Callable[[], object]) -> dict[str, int]:
    """How often each function of ours, NumPy's or pymap3d's ran while ``function`` did.

    (cProfile's call counts; other code, such as a garbage-collection callback some plugin
    registered, runs whenever it likes.)
    """
    profiler = cProfile.Profile()
    profiler.runcall(function)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    calls: dict[str, int] = {}
    for (filename, _, name), (_, total, *_rest) in stats.items():
        if any(part in filename for part in ("missile_classifier", "numpy", "pymap3d")):
            calls[name] = calls.get(name, 0) + total
    return calls


def test_the_work_of_a_batch_does_not_grow_with_its_number_of_streams() -> None:
    # 10,000 points as 10,000 one-point streams (a batch without track ids) once cost a Python
    # pass of the feature function per stream (1.55 s against 0.29 s for the same points in
    # 10 tracks); now every stream goes through one vectorised pass.
    n = 10_000
    t = 1.7e9 + 0.5 * np.arange(n)
    columns = {
        "timestamp": t,
        "latitude": np.full(n, 50.0),
        "longitude": 8.0 + 0.001 * np.arange(n),
        "altitude": 1_000.0 + 10.0 * np.arange(n),
        "radiometric_intensity": np.full(n, 0.1),
        "sensor_id": np.zeros(n, dtype=np.int64),
    }
    tracks = {**columns, "track_id": np.arange(n) // 1000}
    alone = {**columns, "track_id": np.arange(n)}
    few, many = (_python_calls(partial(batch_windows, c, SCALER)) for c in (tracks, alone))
    assert few["run_features"] == many["run_features"] == 1
    assert sum(many.values()) < sum(few.values()) + 50, "Python calls grow with the streams"
