"""Windows: padding, order independence, and chunked/streamed scoring equal to batch."""

from __future__ import annotations

import cProfile
import json
import pstats
import re
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missile_classifier.schema import frame_columns
from missile_classifier.scoring.encoding import BinEncoding
from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES, TREND_TIME_CONSTANT_S
from missile_classifier.scoring.windows import (
    ModelInputs,
    Scaler,
    StreamMemory,
    WindowRows,
    batch_features,
    batch_inputs,
    batch_windows,
    group_streams,
    sliding_windows,
    stream_inputs,
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

    def feature_passes(calls: dict[str, int]) -> int:
        # By name part: mutation testing wraps each function in a trampoline of another name.
        return sum(n for name, n in calls.items() if "run_features" in name)

    assert feature_passes(few) == feature_passes(many) >= 1
    assert sum(many.values()) < sum(few.values()) + 50, "Python calls grow with the streams"


# --- quarantined rows, memories and errors, by hand -----------------------------------------
# Vertical tracks at 45° N, 7° E; with mean 0 and scale 1 a window's altitude column says which
# rows it holds. Glitches are at 5,000 km (an altitude jump from anything here).

T0 = 1_700_000_000.0
GLITCH = 5e6
ALTITUDE_JUMP_CODE = 1  # REASONS.index("altitude_jump")


def _rows(*rows: tuple[int, int, float, float]) -> dict[str, np.ndarray]:
    """Columns of (track, sensor, seconds after T0, altitude) rows, in the order given."""
    n = len(rows)
    return {
        "track_id": np.array([r[0] for r in rows], dtype=np.int64),
        "sensor_id": np.array([r[1] for r in rows], dtype=np.int64),
        "timestamp": T0 + np.array([r[2] for r in rows]),
        "latitude": np.full(n, 45.0),
        "longitude": np.full(n, 7.0),
        "altitude": np.array([r[3] for r in rows]),
        "radiometric_intensity": np.full(n, 0.5),
    }


def test_quarantined_rows_get_their_own_stream_s_last_window_across_chunks() -> None:
    memories: dict[tuple[int, int], StreamMemory] = {}
    batch_inputs(
        _rows(
            (2, 1, 0, 20e3),
            (1, 1, 0, 10e3),
            (1, 1, 1, 10.1e3),
            (2, 1, 1, 20.1e3),
            (1, 1, 2, 10.2e3),
        ),
        SCALER,
        memories,
    )
    # (1, 1): a glitch, then a good point; (2, 1): only glitches; (3, 1): a new stream. In
    # sorted order (2, 1) lies between the others, and its first row here follows an accepted
    # row of (1, 1).
    got = batch_inputs(
        _rows(
            (3, 1, 0, 30e3),
            (2, 1, 2, GLITCH),
            (1, 1, 3, GLITCH),
            (2, 1, 3, GLITCH),
            (1, 1, 4, 10.4e3),
            (3, 1, 1, 30.1e3),
        ),
        SCALER,
        memories,
    )
    np.testing.assert_array_equal(
        got.windows[:, :, ALTITUDE],
        [
            [30e3, 30e3, 30e3, 30e3],
            [20e3, 20e3, 20e3, 20.1e3],  # (2, 1)'s remembered window, not (1, 1)'s
            [10e3, 10e3, 10.1e3, 10.2e3],
            [20e3, 20e3, 20e3, 20.1e3],
            [10e3, 10.1e3, 10.2e3, 10.4e3],  # the remembered rows, then its own
            [30e3, 30e3, 30e3, 30.1e3],
        ],
    )
    assert got.context_points.tolist() == [1, 2, 3, 2, 4, 2]
    assert got.context_points.dtype == np.int64
    jump = ALTITUDE_JUMP_CODE
    assert got.quarantine.tolist() == [0, jump, jump, jump, 0, 0]
    assert not got.restarted.any()
    # The memories: accepted rows only; the glitches counted, their times not taken.
    one, two, three = memories[(1, 1)], memories[(2, 1)], memories[(3, 1)]
    assert (one.count, one.state.quarantined, one.state.timestamp) == (4, 0, T0 + 4)
    np.testing.assert_array_equal(one.recent[:, ALTITUDE], [10e3, 10.1e3, 10.2e3, 10.4e3])
    assert (two.count, two.state.quarantined, two.state.timestamp) == (2, 2, T0 + 1)
    np.testing.assert_array_equal(two.recent[:, ALTITUDE], [20e3, 20.1e3])
    assert (three.count, three.state.quarantined, three.state.count) == (2, 0, 2)
    np.testing.assert_array_equal(three.recent[:, ALTITUDE], [30e3, 30.1e3])

    # (2, 1) goes on from its last accepted point (t=1): Δt 3 s, 200 m up.
    got = batch_inputs(
        _rows((2, 1, 4, 20.3e3), (1, 1, 5, 10.5e3), (1, 1, 5.5, GLITCH)), SCALER, memories
    )
    np.testing.assert_array_equal(
        got.windows[:, :, ALTITUDE],
        [
            [20e3, 20e3, 20.1e3, 20.3e3],
            [10.1e3, 10.2e3, 10.4e3, 10.5e3],
            [10.1e3, 10.2e3, 10.4e3, 10.5e3],  # the glitch: the window of the row before
        ],
    )
    assert got.context_points.tolist() == [3, 4, 4]
    last = got.windows[0, -1]
    # The trend over t = 0, 1 and 4 (the glitches at 2 and 3 left out): the first step's
    # 100 m over 1 s decayed by τ / (τ + 1), plus 200 m over 3 s.
    kept = TREND_TIME_CONSTANT_S / (TREND_TIME_CONSTANT_S + 1.0)
    trend = (100.0 * kept + 200.0) / (1.0 * kept + 3.0)
    assert last[FEATURE_NAMES.index("velocity_up")] == pytest.approx(trend, rel=1e-6)
    assert (memories[(2, 1)].count, memories[(2, 1)].state.quarantined) == (3, 0)
    one = memories[(1, 1)]
    assert (one.count, one.state.quarantined, one.state.timestamp) == (5, 1, T0 + 5)
    np.testing.assert_array_equal(one.recent[:, ALTITUDE], [10.1e3, 10.2e3, 10.4e3, 10.5e3])


def _point(t: float, altitude: float) -> dict[str, np.ndarray]:
    """One row of stream (1, 1) (stream_inputs reads only the input columns)."""
    return _rows((1, 1, t, altitude))


@pytest.mark.parametrize(("t", "restarts"), [(11.0, True), (10.75, False)])
def test_a_stream_restarts_from_memory_exactly_restart_after_s_after_its_last_point(
    t: float, restarts: bool
) -> None:
    # Accepted at t=0 and t=1, then three glitches, one per call (as the service sees them).
    memory: StreamMemory | None = None
    for when, altitude in ((0, 10e3), (1, 10.1e3), (2, GLITCH), (3, GLITCH), (4, GLITCH)):
        _, memory = stream_inputs(_point(when, altitude), SCALER, memory)
    assert memory is not None and memory.state.quarantined == 3 and memory.count == 2
    got, after = stream_inputs(_point(t, GLITCH), SCALER, memory)
    if restarts:  # 10 s after t=1: the stream starts again at this point
        assert got.restarted.tolist() == [True] and got.quarantine.tolist() == [0]
        np.testing.assert_array_equal(got.windows[0, :, ALTITUDE], [GLITCH] * 4)
        assert got.context_points.tolist() == [1]
        assert (after.count, after.state.quarantined, len(after.recent)) == (1, 0, 1)
        assert after.state.max_altitude == GLITCH and after.state.count == 1
    else:
        assert got.restarted.tolist() == [False]
        assert got.quarantine.tolist() == [ALTITUDE_JUMP_CODE]
        np.testing.assert_array_equal(got.windows[0, :, ALTITUDE], [10e3, 10e3, 10e3, 10.1e3])
        assert got.context_points.tolist() == [2]
        assert (after.count, after.state.quarantined, len(after.recent)) == (2, 4, 2)


def test_a_restart_at_the_end_of_a_chunk_leaves_only_itself_in_memory() -> None:
    rows = [(0, 10e3), (1, 10.1e3), (2, 10.2e3), (3, GLITCH), (4, GLITCH), (5, GLITCH)]
    got, memory = stream_inputs(_rows(*((1, 1, t, a) for t, a in [*rows, (12, GLITCH)])), SCALER)
    assert got.restarted.tolist() == [False] * 6 + [True]
    assert got.context_points.tolist() == [1, 2, 3, 3, 3, 3, 1]
    assert memory.count == 1 and memory.state.count == 1
    np.testing.assert_array_equal(memory.recent[:, ALTITUDE], [GLITCH])
    # The next point continues the restarted stream: the old rows are gone from its window.
    got, _ = stream_inputs(_point(12.5, GLITCH + 100.0), SCALER, memory)
    np.testing.assert_array_equal(got.windows[0, :, ALTITUDE], [GLITCH] * 3 + [GLITCH + 100.0])
    assert got.context_points.tolist() == [2]


def test_rows_at_or_before_a_stream_s_memory_are_refused_with_the_stream_named() -> None:
    memories: dict[tuple[int, int], StreamMemory] = {}
    batch_inputs(_rows((3, 1, 0, 10e3), (7, 2, 0, 20e3), (7, 2, 1, 20.1e3)), SCALER, memories)
    # (7, 2) comes second in sorted order; its row repeats its last time, and is a glitch
    # (so only the check against the memory can refuse it).
    for seconds, shown in ((1.0, "1700000001.0"), (0.5, "1700000000.5")):
        message = (
            f"stream (track_id=7, sensor_id=2): timestamp {shown} is not after 1700000001.0, "
            "already seen; rows of a stream must come in time order across chunks"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            batch_inputs(_rows((3, 1, 1, 10.1e3), (7, 2, seconds, GLITCH)), SCALER, memories)
    # A refused chunk changes no memory.
    assert memories[(3, 1)].state.timestamp == T0 and memories[(7, 2)].count == 2


def test_a_stream_continued_at_its_memory_s_time_is_refused() -> None:
    _, memory = stream_inputs(_point(1.0, 10e3), SCALER)
    for t in (1.0, 0.0):
        with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
            stream_inputs(_point(t, GLITCH), SCALER, memory)


@pytest.mark.parametrize("times", [[0.0, 1.0, 1.0], [0.0, 2.0, 1.0]])
def test_rows_of_a_chunk_out_of_time_order_are_refused_even_when_quarantined(
    times: list[float],
) -> None:
    # The offending last row is a glitch: it never reaches the feature function, which would
    # refuse it too; the jump rule must not judge rows out of order.
    rows = _rows(*((1, 1, t, a) for t, a in zip(times, [10e3, 10.1e3, GLITCH], strict=True)))
    with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
        stream_inputs(rows, SCALER)
    if times[2] == times[1]:  # a batch is sorted by time first: only a repeated time is wrong
        with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
            batch_inputs(rows, SCALER)
        with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
            batch_features(rows)


def test_a_memory_of_another_version_is_refused() -> None:
    _, memory = stream_inputs(_point(0.0, 10e3), SCALER)
    good = memory.to_dict()
    cases: list[tuple[object, str]] = [
        (
            {k: v for k, v in good.items() if k != "recent"},
            r"^not a stream memory of this version: 'recent'$",
        ),
        (
            {k: v for k, v in good.items() if k != "count"},
            r"^not a stream memory of this version: 'count'$",
        ),
        (
            {**good, "count": None},
            r"^not a stream memory of this version: int\(\) argument must be",
        ),
        ([good], r"^not a stream memory of this version: list indices must be"),
        ({**good, "recent": [1.0, 2.0]}, r"^not a stream memory of this version: no recent rows$"),
        (
            {**good, "recent": np.zeros((0, N_FEATURES))},
            r"^not a stream memory of this version: no recent rows$",
        ),
        ({**good, "state": {"count": 1}}, r"^not a stream state of this version$"),
        ({**good, "recent": "not base64!"}, r"^not a stream memory of this version: "),
        (  # lenient base64 would skip the stray character and read the rows
            {**good, "recent": good["recent"][:4] + "*" + good["recent"][4:]},
            r"^not a stream memory of this version: Only base64 data is allowed$",
        ),
        ({**good, "width": N_FEATURES + 1}, r"^not a stream memory of this version: rows of wid"),
        ({**good, "width": 0}, r"^not a stream memory of this version: rows of width 0$"),
        ({**good, "width": "4"}, r"^not a stream memory of this version: rows of width '4'$"),
        ({**good, "recent": ""}, r"^not a stream memory of this version: no recent rows$"),
    ]
    for data, message in cases:
        with pytest.raises(ValueError, match=message):
            StreamMemory.from_dict(data)  # type: ignore[arg-type]
    # One remembered row is a memory (a stream after its first point).
    read = StreamMemory.from_dict(good)
    assert read.recent.shape == (1, N_FEATURES) and read.recent.dtype == np.float32
    assert read.count == 1 and read.state == memory.state
    np.testing.assert_array_equal(read.recent, memory.recent)


def test_a_memory_stored_as_lists_of_numbers_reads_as_the_same_memory() -> None:
    # Earlier versions stored the rows as JSON lists; a Redis written by one must still read.
    memory = None
    for when in range(6):
        _, memory = stream_inputs(_point(when, 10e3 + 100.0 * when), SCALER, memory)
    assert memory is not None
    stored = json.loads(json.dumps(memory.to_dict()))
    assert isinstance(stored["recent"], str) and stored["width"] == N_FEATURES
    older = {**stored, "recent": memory.recent.tolist()}
    del older["width"]
    for data in (stored, older):
        read = StreamMemory.from_dict(data)
        assert read.recent.dtype == np.float32 and read.recent.flags.writeable
        assert read.recent.tobytes() == memory.recent.tobytes()
        assert read.state == memory.state and read.count == memory.count == 6


def test_take_picks_every_field_of_the_rows_in_order() -> None:
    inputs = ModelInputs(
        np.arange(3 * 2 * 1, dtype=np.float32).reshape(3, 2, 1),
        np.array([1, 2, 2]),
        np.array([0, 2, 1], dtype=np.int8),
        np.array([False, True, False]),
        np.array([True, False, False]),
        np.array([[False], [False], [True]]),
    )
    taken = inputs.take(np.array([2, 0, 2]))
    np.testing.assert_array_equal(taken.windows[:, :, 0], [[4, 5], [0, 1], [4, 5]])
    assert taken.context_points.tolist() == [2, 1, 2]
    assert taken.quarantine.tolist() == [1, 0, 1]
    assert taken.restarted.tolist() == [False, False, False]
    assert inputs.take(np.array([1])).restarted.tolist() == [True]
    assert taken.maximum_established.tolist() == [False, True, False]
    assert taken.out_of_range.tolist() == [[True], [False], [True]]


def _batches(inputs: ModelInputs, size: int) -> list[np.ndarray]:
    n = len(inputs.context_points)
    return [inputs.window_batch(slice(b, b + size)) for b in range(0, n, size)]


@pytest.mark.parametrize("size", [1, 3, 1_000])
def test_windows_gathered_a_batch_at_a_time_are_the_windows(size: int) -> None:
    # Two streams interleaved, one continuing its memory: the batches, taken rows and whole
    # gathering all read the same rows of the same layout.
    memories: dict[tuple[int, int], StreamMemory] = {}
    batch_inputs(_rows((3, 1, 0, 10e3), (3, 1, 1, 10.2e3)), SCALER, memories)
    inputs = batch_inputs(
        _rows(*((3 if k % 2 else 7, 1, 2 + k, 10e3 + 150 * k) for k in range(11))),
        SCALER,
        memories,
    )
    assert isinstance(inputs.window_source, WindowRows) and len(inputs.window_source) == 11
    whole = inputs.windows
    assert whole.shape == (11, 4, SCALER.n_inputs) and whole.dtype == np.float32
    batches = _batches(inputs, size)
    assert [len(b) for b in batches[:-1]] == [size] * (len(batches) - 1)
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    index = np.array([10, 0, 3, 3])
    taken = inputs.take(index)
    assert isinstance(taken.window_source, WindowRows)
    np.testing.assert_array_equal(taken.windows, whole[index])
    np.testing.assert_array_equal(np.concatenate(_batches(taken, size)), whole[index])
    ready = replace(inputs, window_source=whole)  # the same inputs, windows ready
    np.testing.assert_array_equal(np.concatenate(_batches(ready, size)), whole)
    assert ready.take(np.array([], dtype=np.int64)).window_batch(slice(0, size)).shape == (
        0,
        4,
        SCALER.n_inputs,
    )


def test_no_new_rows_give_empty_inputs_of_the_model_s_types() -> None:
    _, memory = stream_inputs(_point(0.0, 10e3), ENCODED)
    got, after = stream_inputs({c: np.empty(0) for c in _point(0.0, 0.0)}, ENCODED, memory)
    assert after is memory
    assert got.windows.shape == (0, 3, ENCODED.n_inputs) and got.windows.dtype == np.float32
    assert got.context_points.dtype == np.int64 and got.quarantine.dtype == np.int8
    assert got.restarted.dtype == bool and got.restarted.shape == (0,)
    # An empty chunk joins the others without widening them.
    later, _ = stream_inputs(_point(1.0, 10.1e3), ENCODED, memory)
    assert np.concatenate([got.windows, later.windows]).dtype == np.float32
    with pytest.raises(ValueError, match=r"^a stream needs at least one row$"):
        stream_inputs({c: np.empty(0) for c in _point(0.0, 0.0)}, ENCODED)


def test_columns_of_another_float_width_give_the_float64_inputs() -> None:
    # A parquet file may hold float32 columns: the positions (and so the jump rule and the
    # velocities) must come from the same values in float64, not float32 arithmetic.
    rng = np.random.default_rng(5)
    n = 12
    columns = _rows(*((1, 1, 0.5 * k, 50e3 + 300.0 * k) for k in range(n)))
    columns["timestamp"] = 1_000.0 + 0.5 * np.arange(n)  # exact in float32, unlike 1.7e9 + k/2
    columns["latitude"] = 45.0 + np.cumsum(rng.normal(0, 0.01, n))
    columns["longitude"] = 7.0 + np.cumsum(rng.normal(0, 0.01, n))
    narrow = {c: (v.astype(np.float32) if v.dtype == np.float64 else v) for c, v in columns.items()}
    wide = {c: v.astype(np.float64) if v.dtype == np.float32 else v for c, v in narrow.items()}
    np.testing.assert_array_equal(
        batch_inputs(narrow, SCALER).windows, batch_inputs(wide, SCALER).windows
    )
    np.testing.assert_array_equal(
        stream_inputs(narrow, SCALER)[0].windows, stream_inputs(wide, SCALER)[0].windows
    )


def test_features_of_a_single_row() -> None:
    features = batch_features(_rows((4, 2, 0, 12e3)))
    assert features.shape == (1, N_FEATURES)
    assert features[0, ALTITUDE] == 12e3 and features[0, FEATURE_NAMES.index("latitude")] == 45.0
    assert features[0, FEATURE_NAMES.index("altitude_over_max")] == 1.0


def test_an_encoding_of_one_input_is_appended() -> None:
    # One inner edge (60 km): a single thermometer input, 1 at or above it.
    scaler = Scaler(
        np.zeros(N_FEATURES),
        np.ones(N_FEATURES),
        2,
        BinEncoding((ALTITUDE,), (np.array([0.0, 60e3, 1e6]),)),
    )
    assert scaler.n_inputs == N_FEATURES + 1
    features = np.zeros((3, N_FEATURES))
    features[:, ALTITUDE] = [59_999.0, 60e3, 70e3]
    inputs = scaler.transform(features)
    assert inputs.shape == (3, N_FEATURES + 1) and inputs.dtype == np.float32
    assert inputs[:, -1].tolist() == [0.0, 1.0, 1.0]
    np.testing.assert_array_equal(inputs[:, ALTITUDE], [59_999.0, 60e3, 70e3])


def test_the_maximum_established_flag_follows_the_row_whose_window_answers() -> None:
    # (1, 1) climbs 1.2 km and is established from its third point; its glitch in the second
    # chunk is answered from the row before, so it says established too. (2, 1) is first seen
    # falling: never established, its quarantined point included.
    memories: dict[tuple[int, int], StreamMemory] = {}
    first = batch_inputs(
        _rows(
            (1, 1, 0, 10e3), (2, 1, 0, 60e3), (1, 1, 1, 10.5e3), (2, 1, 1, 59e3), (1, 1, 2, 11.2e3)
        ),
        SCALER,
        memories,
    )
    assert first.maximum_established.tolist() == [False, False, False, False, True]
    second = batch_inputs(
        _rows((2, 1, 2, GLITCH), (1, 1, 3, GLITCH), (1, 1, 4, 11.3e3), (2, 1, 3, 57e3)),
        SCALER,
        memories,
    )
    assert second.quarantine.tolist()[:2] == [ALTITUDE_JUMP_CODE, ALTITUDE_JUMP_CODE]
    assert second.maximum_established.tolist() == [False, True, True, False]
    assert memories[(1, 1)].state.maximum_established == 1.0
    assert memories[(2, 1)].state.maximum_established == 0.0


@st.composite
def glitchy_streams(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """A random stream with the conditions the jump rule handles: lone glitches, bursts long
    enough to restart the stream, gaps of tens of seconds, missing intensities, and low starts
    (near the reference altitude floor) as well as climbs past the rise that establishes it."""
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = T0 + np.cumsum(rng.choice([0.25, 0.5, 1.0, 4.0, 11.0, 37.0], size=n))
    lat = np.clip(rng.uniform(-80, 80) + np.cumsum(rng.normal(0, 0.01, n)), -90, 90)
    lon = rng.uniform(-179, 179) + np.cumsum(rng.normal(0, 0.01, n))
    alt = np.abs(rng.choice([0.0, 900.0, 5e4]) + np.cumsum(rng.normal(300, 800, n)))
    glitched = rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.4]))
    alt[glitched] += rng.choice([-1, 1], size=int(glitched.sum())) * 3e5
    lat[rng.random(n) < 0.05] = 0.0  # a position jump (thousands of km)
    intensity = rng.normal(0.5, 0.2, n)
    intensity[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = np.nan
    return {
        "timestamp": t,
        "latitude": lat,
        "longitude": lon,
        "altitude": alt,
        "radiometric_intensity": intensity,
    }


def _point_scaler() -> Scaler:
    """A scaler with every part a one-row path must match: scaling, an encoding, ranges."""
    from missile_classifier.scoring.ranges import DT, InputRanges

    names = (*FEATURE_NAMES, DT)
    low = np.array([-50.0, -90.0, 0.0, 0.2, -300, -300, -300, 0, -50, 0, -1, 0, 0, 0, 0, 0, 0.3])
    return Scaler(
        np.linspace(-1.0, 1.0, N_FEATURES),
        np.linspace(0.5, 3.0, N_FEATURES),
        sequence_length=5,
        encoding=BinEncoding((2, 11), (np.array([0.0, 2e4, 1e5, 4e5]), np.array([0.0, 0.5, 1.0]))),
        ranges=InputRanges(names, low, low + np.linspace(1.0, 5e4, len(names))),
    )


@settings(max_examples=150, deadline=None)
@given(stream=glitchy_streams(), through_json=st.booleans(), ranged=st.booleans())
def test_one_point_at_a_time_gives_the_array_code_s_bits(
    stream: dict[str, np.ndarray], through_json: bool, ranged: bool
) -> None:
    # stream_inputs takes its own path for one row; the array code (_inputs_of_streams) is the
    # general one. Every field of every answer and memory must match bit for bit, also for a
    # bundle trained before input ranges existed.
    from missile_classifier.scoring.windows import _inputs_of_streams

    scaler = _point_scaler() if ranged else replace(_point_scaler(), ranges=None)
    point_memory: StreamMemory | None = None
    array_memory: StreamMemory | None = None
    for i in range(len(stream["timestamp"])):
        row = {c: v[i : i + 1] for c, v in stream.items()}
        got, point_memory = stream_inputs(row, scaler, point_memory)
        want, memories = _inputs_of_streams(row, np.array([0, 1]), [array_memory], scaler, True)
        assert memories is not None
        array_memory = memories[0]
        fields = [f for f in ModelInputs.__dataclass_fields__ if f != "window_source"]
        for field in ["windows", *fields]:  # the windows as gathered from their source
            mine, theirs = getattr(got, field), getattr(want, field)
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, field
            assert mine.tobytes() == theirs.tobytes(), (i, field)
        assert json.dumps(point_memory.to_dict()) == json.dumps(array_memory.to_dict()), i
        assert point_memory.recent.dtype == array_memory.recent.dtype
        if through_json:  # as the Redis store hands memories back
            point_memory = StreamMemory.from_dict(json.loads(json.dumps(point_memory.to_dict())))
            array_memory = StreamMemory.from_dict(json.loads(json.dumps(array_memory.to_dict())))


def test_the_glitchy_streams_reach_every_verdict_of_the_jump_rule() -> None:
    # The comparison above is only as good as the cases it meets: quarantines of both rules
    # and restarts must all occur among its streams.
    scaler, seen = _point_scaler(), set()

    @settings(max_examples=150, deadline=None, database=None)
    @given(stream=glitchy_streams())
    def collect(stream: dict[str, np.ndarray]) -> None:
        memory = None
        for i in range(len(stream["timestamp"])):
            got, memory = stream_inputs(
                {c: v[i : i + 1] for c, v in stream.items()}, scaler, memory
            )
            seen.add((int(got.quarantine[0]), bool(got.restarted[0]), bool(got.out_of_range.any())))

    collect()
    assert {(1, False), (2, False), (0, True), (0, False)} <= {s[:2] for s in seen}
    assert {s[2] for s in seen} == {False, True}


def test_a_point_that_does_not_come_after_the_memory_is_refused_by_both_paths() -> None:
    from missile_classifier.scoring.features import ecef, point_features

    _, memory = stream_inputs(_point(0.0, 10e3), SCALER)
    for t in (0.0, -0.5):  # the same instant, and earlier
        row = _point(t, 10.1e3)
        for chunk in (row, _rows((1, 1, t, 10.1e3), (1, 1, 1.0, 10.2e3))):
            with pytest.raises(
                ValueError, match=r"^timestamps of a stream must strictly increase$"
            ):
                stream_inputs(chunk, SCALER, memory)
        xyz = tuple(float(v[0]) for v in ecef(row["latitude"], row["longitude"], row["altitude"]))
        with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
            point_features(
                float(row["timestamp"][0]),
                row["latitude"],
                row["longitude"],
                10.1e3,
                0.5,
                memory.state,
                xyz,  # type: ignore[arg-type]
            )


def test_a_chunk_that_continues_a_stream_measures_its_first_dt_from_the_memory() -> None:
    # Points 0.5 s apart, as in training (dt range 0.4–0.6 s), then a chunk that starts 5 s
    # after the last point of the one before: its first row's dt is far outside the range.
    from missile_classifier.scoring.ranges import DT, InputRanges

    base = _point_scaler()
    assert base.ranges is not None
    low, high = base.ranges.low.copy(), base.ranges.high.copy()
    low[-1], high[-1] = 0.4, 0.6
    scaler = replace(base, ranges=InputRanges((*FEATURE_NAMES, DT), low, high))
    times = [0.5 * i for i in range(6)] + [7.5 + 0.5 * i for i in range(4)]
    rows = _rows(*((1, 1, t, 10e3 + 20.0 * i) for i, t in enumerate(times)))
    whole, _ = stream_inputs(rows, scaler)
    two, _ = stream_inputs({c: v[:2] for c, v in rows.items()}, scaler)  # not the one-row path
    np.testing.assert_array_equal(two.windows, whole.windows[:2])
    _, memory = stream_inputs({c: v[:6] for c, v in rows.items()}, scaler)
    second, _ = stream_inputs({c: v[6:] for c, v in rows.items()}, scaler, memory)
    assert second.out_of_range[:, -1].tolist() == [True, False, False, False]
    np.testing.assert_array_equal(second.out_of_range, whole.out_of_range[6:])
