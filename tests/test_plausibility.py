"""The jump rule: a glitch is quarantined, cannot rewrite its stream, and every path agrees.

The reference for "what the stream should look like" is the same track with the glitch row
removed: a quarantined point must leave the stream exactly as if the sensor had lost that row,
and be answered with the window of the point before it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pymap3d
import pytest

from missile_classifier.columns import ALTITUDE, LATITUDE, TIMESTAMP
from missile_classifier.schema import frame_columns
from missile_classifier.scoring.features import FEATURE_NAMES, N_FEATURES
from missile_classifier.scoring.plausibility import (
    ALTITUDE_JUMP,
    ALTITUDE_SLACK_M,
    MAX_POSITION_SPEED_M_S,
    MAX_SPEED_M_S,
    POSITION_JUMP,
    POSITION_SLACK_M,
    REASONS,
    RESTART_AFTER,
    RESTART_AFTER_S,
    Reference,
    Screening,
    judge_point,
    screen,
)
from missile_classifier.scoring.windows import (
    ModelInputs,
    Scaler,
    StreamMemory,
    batch_features,
    batch_inputs,
    stream_inputs,
)
from missile_classifier.simulation.challenge import simulate_challenge

RNG = np.random.default_rng(8)
#: No mean 0 / scale 1, so a row copied from the wrong place shows after scaling too.
SCALER = Scaler(RNG.normal(size=N_FEATURES), RNG.uniform(0.5, 2.0, N_FEATURES), sequence_length=5)
ALTITUDE_CODE = REASONS.index(ALTITUDE_JUMP)
POSITION_CODE = REASONS.index(POSITION_JUMP)


@pytest.fixture(scope="module")
def track() -> pd.DataFrame:
    """One challenge track (~1,000 rows at 0.5 s), in time order."""
    return simulate_challenge([4], seed=2).reset_index(drop=True)


def _inputs(frame: pd.DataFrame) -> ModelInputs:
    return batch_inputs(frame_columns(frame), SCALER)


def _assert_same(got: ModelInputs, want: ModelInputs, rows: str) -> None:
    np.testing.assert_array_equal(got.windows, want.windows, err_msg=rows)
    np.testing.assert_array_equal(got.context_points, want.context_points, err_msg=rows)


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        (ALTITUDE, 2e6, ALTITUDE_CODE),  # 2,000 km in 0.5 s
        (ALTITUDE, 1e7, ALTITUDE_CODE),  # the highest altitude the limits allow
        (ALTITUDE, -900.0, ALTITUDE_CODE),  # a drop to the ground from ~60 km
        (LATITUDE, None, POSITION_CODE),  # 3° north (~330 km) in 0.5 s, altitude unchanged
    ],
)
def test_a_glitch_is_answered_from_the_point_before_and_the_stream_goes_on_without_it(
    track: pd.DataFrame, column: str, value: float | None, code: int
) -> None:
    k = 400  # mid-flight, near the plateau
    glitched = track.copy()
    glitched.loc[k, column] = float(track[column].iloc[k]) + 3.0 if value is None else value
    got = _inputs(glitched)
    assert got.quarantine.tolist() == [0] * k + [code] + [0] * (len(track) - k - 1)
    assert not got.restarted.any()
    without = _inputs(track.drop(index=k))
    keep = np.delete(np.arange(len(track)), k)
    _assert_same(got.take(keep), without, "every other row: as if the glitch were never seen")
    _assert_same(got.take(np.array([k])), without.take(np.array([k - 1])), "the glitch row")


def test_a_glitch_does_not_reach_the_running_maximum(track: pd.DataFrame) -> None:
    # What broke before the rule: one altitude of 2,000 km became the track's maximum, so every
    # later altitude_over_max was ~0.05 and the descent never looked like one.
    glitched = track.copy()
    glitched.loc[300, ALTITUDE] = 2e6
    features = batch_features(frame_columns(glitched))
    clean = batch_features(frame_columns(track))
    over_max = FEATURE_NAMES.index("altitude_over_max")
    np.testing.assert_array_equal(features[301:, over_max], clean[301:, over_max])
    # The quarantined row carries the features of the row before it.
    np.testing.assert_array_equal(features[300], clean[299])


def _restart_row(track: pd.DataFrame) -> int:
    """Where a stream whose first point is a glitch restarts: the first point that comes
    RESTART_AFTER_S after it with at least RESTART_AFTER quarantined points before it."""
    t = track[TIMESTAMP].to_numpy()
    late = np.flatnonzero((t - t[0] >= RESTART_AFTER_S) & (np.arange(len(t)) > RESTART_AFTER))
    return int(late[0])


def test_a_glitch_on_the_first_point_restarts_the_stream_once_it_disagrees_for_long(
    track: pd.DataFrame,
) -> None:
    glitched = track.copy()
    glitched.loc[0, ALTITUDE] = 9e6
    got = _inputs(glitched)
    k = _restart_row(track)
    assert k == 20  # 0.5 s sampling: 10 s after the first point
    # Points 1..k-1 disagree with the glitch: quarantined, answered from point 0.
    assert got.quarantine[1:k].tolist() == [ALTITUDE_CODE] * (k - 1)
    assert np.flatnonzero(got.restarted).tolist() == [k]
    assert not got.quarantine[k:].any()
    # From the restart on, the stream is the track as first seen at that point.
    _assert_same(got.take(np.arange(k, len(track))), _inputs(track.iloc[k:]), "after restart")
    assert got.context_points[:k].tolist() == [1] * k


def test_a_burst_of_glitches_shorter_than_the_restart_time_is_quarantined_whole(
    track: pd.DataFrame,
) -> None:
    glitched = track.copy()
    burst = list(range(200, 200 + 2 * RESTART_AFTER))  # 6 points in 3 s
    glitched.loc[burst, ALTITUDE] = 3e6
    got = _inputs(glitched)
    assert got.quarantine[200 : 200 + 2 * RESTART_AFTER + 1].tolist() == [ALTITUDE_CODE] * (
        2 * RESTART_AFTER
    ) + [0]
    assert not got.restarted.any()
    assert got.quarantine.astype(bool).sum() == 2 * RESTART_AFTER
    without = _inputs(track.drop(index=burst))
    after = np.arange(200 + 2 * RESTART_AFTER, len(track))
    _assert_same(got.take(after), without.take(after - 2 * RESTART_AFTER), "after the burst")


def _glitchy(track: pd.DataFrame) -> pd.DataFrame:
    glitched = track.copy()
    glitched.loc[0, ALTITUDE] = 9e6  # restart after RESTART_AFTER points
    glitched.loc[[50, 51, 300], ALTITUDE] = 5e6
    glitched.loc[[120, 701], LATITUDE] -= 4.0
    glitched.loc[[702, 703, 704, 705], ALTITUDE] = 4e6  # a burst right after another glitch
    return glitched


def test_points_streamed_one_by_one_through_json_equal_the_batch(track: pd.DataFrame) -> None:
    glitched = _glitchy(track).iloc[:760]
    columns = frame_columns(glitched)
    batch = _inputs(glitched)
    memory: StreamMemory | None = None
    rows = []
    for i in range(len(glitched)):
        if memory is not None:
            memory = StreamMemory.from_dict(json.loads(json.dumps(memory.to_dict())))
        got, memory = stream_inputs({c: v[i : i + 1] for c, v in columns.items()}, SCALER, memory)
        rows.append(got)
    for name in ("windows", "context_points", "quarantine", "restarted"):
        streamed = np.concatenate([getattr(r, name) for r in rows])
        np.testing.assert_array_equal(streamed, getattr(batch, name), err_msg=name)
    # 1..19 after the first point's glitch, 50, 51, 120, 300, and the burst 701..705.
    assert np.flatnonzero(batch.quarantine).tolist() == [
        *range(1, 20),
        50,
        51,
        120,
        300,
        *range(701, 706),
    ]
    assert np.flatnonzero(batch.restarted).tolist() == [20]


@pytest.mark.parametrize("size", [1, 7, 50, 301])
def test_chunks_of_any_size_equal_the_whole(track: pd.DataFrame, size: int) -> None:
    glitched = _glitchy(track)
    columns = frame_columns(glitched)
    memories: dict[tuple[int, int], StreamMemory] = {}
    parts = [
        batch_inputs({c: v[b : b + size] for c, v in columns.items()}, SCALER, memories)
        for b in range(0, len(glitched), size)
    ]
    whole = _inputs(glitched)
    for name in ("windows", "context_points", "quarantine", "restarted"):
        chunked = np.concatenate([getattr(p, name) for p in parts])
        np.testing.assert_array_equal(chunked, getattr(whole, name), err_msg=name)


def test_a_quarantined_point_leaves_the_memory_as_it_was_but_counts_itself(
    track: pd.DataFrame,
) -> None:
    columns = frame_columns(track.iloc[:20])
    _, memory = stream_inputs(columns, SCALER)
    glitch = frame_columns(track.iloc[20:21].assign(altitude=5e6))
    got, after = stream_inputs(glitch, SCALER, memory)
    assert got.quarantine.tolist() == [ALTITUDE_CODE]
    np.testing.assert_array_equal(got.windows[0], memory.recent)  # the last accepted window
    assert after.count == memory.count == 20 and after.state.quarantined == 1
    np.testing.assert_array_equal(after.recent, memory.recent)
    assert after.state.timestamp == memory.state.timestamp  # the glitch's time is not taken
    _, later = stream_inputs(frame_columns(track.iloc[21:22]), SCALER, after)
    assert later.count == 21 and later.state.quarantined == 0


# --- the rule's arithmetic, by hand ---------------------------------------------------------


def _screen_one_step(dt: float, d_altitude: float, d_position: float) -> int:
    """Reason code of the second of two points ``dt`` apart (ECEF x carries the position)."""
    none = np.array([False])
    nan = np.array([np.nan])
    result = screen(
        np.array([100.0, 100.0 + dt]),
        np.array([50_000.0, 50_000.0 + d_altitude]),
        (np.array([6.4e6, 6.4e6 + d_position]), np.zeros(2), np.zeros(2)),
        np.array([0, 2]),
        Reference(none, nan, nan, nan, nan, nan, np.zeros(1, dtype=np.int64)),
    )
    return int(result.reason[1])


@pytest.mark.parametrize("dt", [0.25, 1.0, 60.0])
def test_the_limits_are_12_km_s_up_or_down_and_25_km_s_across_plus_the_noise_slack(
    dt: float,
) -> None:
    assert (MAX_SPEED_M_S, MAX_POSITION_SPEED_M_S) == (12_000.0, 25_000.0)
    assert (ALTITUDE_SLACK_M, POSITION_SLACK_M) == (2_000.0, 50_000.0)
    altitude_limit = 12_000.0 * dt + 2_000.0
    position_limit = 25_000.0 * dt + 50_000.0
    assert _screen_one_step(dt, altitude_limit, 0.0) == 0  # inclusive
    assert _screen_one_step(dt, -altitude_limit, 0.0) == 0
    assert _screen_one_step(dt, altitude_limit + 1.0, 0.0) == ALTITUDE_CODE
    assert _screen_one_step(dt, -altitude_limit - 1.0, 0.0) == ALTITUDE_CODE
    assert _screen_one_step(dt, 0.0, position_limit) == 0
    assert _screen_one_step(dt, 0.0, position_limit + 1.0) == POSITION_CODE
    # Both broken: the altitude rule is the one named.
    assert _screen_one_step(dt, altitude_limit + 1.0, position_limit + 1.0) == ALTITUDE_CODE


def test_the_next_point_is_judged_against_the_last_accepted_one_not_the_glitch() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    alt = np.array([10_000.0, 900_000.0, 10_500.0, 905_000.0])
    xyz = (np.full(4, 6.4e6) + alt, np.zeros(4), np.zeros(4))
    none = np.array([False])
    nan = np.array([np.nan])
    result = screen(
        t,
        alt,
        xyz,
        np.array([0, 4]),
        Reference(none, nan, nan, nan, nan, nan, np.zeros(1, dtype=np.int64)),
    )
    # Point 2 is 500 m from point 0 over 2 s (fine); compared with point 1 it would be a jump.
    assert result.accepted.tolist() == [True, False, True, False]
    assert result.trailing_quarantined.tolist() == [1]


def test_a_stream_continues_from_the_state_s_reference_point(track: pd.DataFrame) -> None:
    columns = frame_columns(track.iloc[:10])
    _, memory = stream_inputs(columns, SCALER)
    far = frame_columns(track.iloc[10:11].assign(timestamp=memory.state.timestamp + 1.0))
    far[ALTITUDE] = np.array([memory.state.altitude + 14_000.0 + 1.0])  # 12 km/s × 1 s + 2 km
    assert stream_inputs(far, SCALER, memory)[0].quarantine.tolist() == [ALTITUDE_CODE]
    near = dict(far)
    near[ALTITUDE] = np.array([memory.state.altitude + 14_000.0])
    assert stream_inputs(near, SCALER, memory)[0].quarantine.tolist() == [0]


# --- restarts, boundaries and several streams, by hand -------------------------------------

NO_STATE = Reference(
    np.array([False]), *(np.array([np.nan]),) * 5, quarantined=np.zeros(1, dtype=np.int64)
)


def _along_x(t: list[float], alt: list[float], reference: Reference = NO_STATE) -> Screening:
    """Screen rows whose ECEF x carries the altitude (a vertical track; position = altitude)."""
    a = np.array(alt)
    return screen(
        np.array(t),
        a,
        (6.4e6 + a, np.zeros(len(a)), np.zeros(len(a))),
        np.array([0, len(a)]),
        reference,
    )


def _known(t: float, alt: float, quarantined: int) -> Reference:
    """A stream's last accepted point at ``t``, ``alt`` (on the x axis), after ``quarantined``."""
    return Reference(
        np.array([True]),
        np.array([t]),
        np.array([alt]),
        np.array([6.4e6 + alt]),
        np.zeros(1),
        np.zeros(1),
        np.array([quarantined], dtype=np.int64),
    )


A = ALTITUDE_CODE


def test_a_restart_needs_restart_after_quarantined_points_and_restart_after_s_seconds() -> None:
    assert (RESTART_AFTER, RESTART_AFTER_S) == (3, 10.0)
    # Three glitches at 900 km, then a fourth exactly 10 s after the last accepted point (t=0).
    got = _along_x([0, 1, 2, 3, 10], [10e3, 900e3, 900e3, 900e3, 900e3])
    assert got.accepted.tolist() == [True, False, False, False, True]
    assert got.restart.tolist() == [False, False, False, False, True]
    assert got.reason.tolist() == [0, A, A, A, 0] and got.reason.dtype == np.int8
    # The restart starts the count afresh: nothing quarantined after it.
    assert got.trailing_quarantined.tolist() == [0]
    assert got.trailing_quarantined.dtype == np.int64
    # A quarter second short of RESTART_AFTER_S: still quarantined, the fourth in a row.
    short = _along_x([0, 1, 2, 3, 9.75], [10e3, 900e3, 900e3, 900e3, 900e3])
    assert short.reason.tolist() == [0, A, A, A, A] and not short.restart.any()
    assert short.trailing_quarantined.tolist() == [4]
    # Long enough after, but only RESTART_AFTER - 1 quarantined before it: quarantined.
    few = _along_x([0, 1, 2, 12], [10e3, 900e3, 900e3, 900e3])
    assert few.reason.tolist() == [0, A, A, A] and not few.restart.any()
    assert few.trailing_quarantined.tolist() == [3]


def test_after_a_restart_points_are_judged_against_the_restart_point() -> None:
    got = _along_x(
        [0, 1, 2, 3, 10, 10.5, 11, 11.5],
        [10e3, 900e3, 900e3, 900e3, 900e3, 900.5e3, 10e3, 901e3],
    )
    # 10.5 s: 500 m from the restart point (fine); 11 s: the old altitude is now the jump.
    assert got.reason.tolist() == [0, A, A, A, 0, 0, A, 0]
    assert np.flatnonzero(got.restart).tolist() == [4]
    assert got.trailing_quarantined.tolist() == [0]


@pytest.mark.parametrize(
    ("quarantined", "t", "restarts"),
    [(RESTART_AFTER, 10.0, True), (RESTART_AFTER - 1, 30.0, False), (RESTART_AFTER, 9.5, False)],
)
def test_a_restart_counts_the_points_quarantined_before_these_rows(
    quarantined: int, t: float, restarts: bool
) -> None:
    # The stream's state: last accepted at t=0, 10 km, then ``quarantined`` glitches.
    got = _along_x([t, t + 0.5], [900e3, 900.2e3], _known(0.0, 10e3, quarantined))
    if restarts:
        assert got.accepted.tolist() == [True, True] and got.restart.tolist() == [True, False]
    else:  # quarantined, which makes the next point (≥ 10 s, ≥ 3 before it) the restart
        assert got.reason.tolist() == [A, 0] and got.restart.tolist() == [False, True]
    assert got.trailing_quarantined.tolist() == [0]
    alone = _along_x([t], [900e3], _known(0.0, 10e3, quarantined))
    assert alone.restart.tolist() == [restarts]
    assert alone.trailing_quarantined.tolist() == [0 if restarts else quarantined + 1]


def test_a_first_point_agreeing_with_the_state_ends_its_quarantine() -> None:
    got = _along_x([1.0, 2.0], [10.5e3, 900e3], _known(0.0, 10e3, 2))
    assert got.reason.tolist() == [0, A] and got.trailing_quarantined.tolist() == [1]


def test_an_altitude_step_exactly_at_its_limit_names_the_position_rule() -> None:
    # The altitude rule is inclusive: a step of exactly its limit does not break it, so a
    # point that breaks only the position rule is named a position jump.
    dt = 0.5
    assert _screen_one_step(dt, 12_000.0 * dt + 2_000.0, 25_000.0 * dt + 50_001.0) == (
        POSITION_CODE
    )


def test_each_stream_of_several_is_screened_against_its_own_points() -> None:
    # Stream 0 clean; stream 1 fresh with a glitch in its middle; stream 2 resumes a state
    # (last accepted at t=100, 30 km) and its first row here is a glitch. Stream 2's times
    # start before stream 1's end: each stream only compares with itself.
    t = [0, 1, 2, 5, 6, 7, 8, 101, 102, 103]
    alt = [10e3, 10.5e3, 11e3, 20e3, 800e3, 20.5e3, 21e3, 600e3, 30.5e3, 31e3]
    a = np.array(alt)
    reference = Reference(
        np.array([False, False, True]),
        np.array([np.nan, np.nan, 100.0]),
        np.array([np.nan, np.nan, 30e3]),
        np.array([np.nan, np.nan, 6.4e6 + 30e3]),
        np.array([np.nan, np.nan, 0.0]),
        np.array([np.nan, np.nan, 0.0]),
        np.array([0, 0, 1]),
    )
    got = screen(
        np.array(t, dtype=float),
        a,
        (6.4e6 + a, np.zeros(10), np.zeros(10)),
        np.array([0, 3, 7, 10]),
        reference,
    )
    assert got.reason.tolist() == [0, 0, 0, 0, A, 0, 0, A, 0, 0]
    assert got.accepted.tolist() == [True] * 4 + [False, True, True, False, True, True]
    assert not got.restart.any()
    assert got.trailing_quarantined.tolist() == [0, 0, 0]
    # The same rows with stream 2 ending in two glitches: only stream 2 ends quarantined.
    a[8:] = 700e3
    ending = screen(
        np.array(t, dtype=float),
        a,
        (6.4e6 + a, np.zeros(10), np.zeros(10)),
        np.array([0, 3, 7, 10]),
        reference,
    )
    assert ending.reason.tolist() == [0, 0, 0, 0, A, 0, 0, A, A, A]
    assert ending.trailing_quarantined.tolist() == [0, 0, 4]


def test_a_step_too_large_for_its_neighbour_is_caught_even_when_near_the_first_point() -> None:
    # Row 2 is 12 km from row 0 over 1.25 s (fine) but 25 km from row 1 over 0.25 s (a jump).
    got = _along_x([0.0, 1.0, 1.25], [20e3, 33e3, 8e3])
    assert got.reason.tolist() == [0, 0, A]


def test_a_jump_up_from_below_sea_level_is_caught() -> None:
    # -900 m (noise on a ground-level track) to 1,500 m in 10 ms: 2.4 km, over the 2.12 km
    # allowed (the sum of the two altitudes, 600 m, would pass).
    assert _along_x([0.0, 0.01], [-900.0, 1_500.0]).reason.tolist() == [0, A]


def test_a_jump_is_caught_where_ecef_x_is_zero() -> None:
    # On the 90° E meridian x ≈ 0 m. Up 19 km in 2 s (fine), then down 19.5 km in 0.1 s: an
    # altitude jump (3.2 km allowed) though not a position jump (51.2 km allowed), there as
    # anywhere (an altitude compared with x would see 500 m).
    t, alt = np.array([0.0, 2.0, 2.1]), np.array([1_000.0, 20e3, 500.0])
    x, y, z = (
        np.asarray(c, dtype=np.float64)
        for c in pymap3d.geodetic2ecef(np.zeros(3), np.full(3, 90.0), alt)
    )
    assert abs(x).max() < 1e-6
    got = screen(t, alt, (x, y, z), np.array([0, 3]), NO_STATE)
    assert got.reason.tolist() == [0, 0, A]
    # And so for a streamed point, judged in plain floats against the last accepted one.
    point, last = ((t[i], alt[i], x[i], y[i], z[i]) for i in (2, 1))
    assert judge_point(point, last, 0) == (A, False)


def test_a_streamed_jump_is_caught_where_ecef_x_is_near_the_last_altitude() -> None:
    # Down 19.5 km in 0.1 s at a longitude where the new point's ECEF x is ~20 km, the last
    # point's altitude: the point's altitude compared with the last (not its x) sees the jump.
    lon = np.degrees(np.arccos(20e3 / (pymap3d.Ellipsoid.from_name("wgs84").semimajor_axis + 500)))
    t, alt = np.array([2.0, 2.1]), np.array([20e3, 500.0])
    x, y, z = (
        np.asarray(c, dtype=np.float64)
        for c in pymap3d.geodetic2ecef(np.zeros(2), np.full(2, lon), alt)
    )
    assert abs(x[1] - alt[0]) < 1.0
    assert screen(t, alt, (x, y, z), np.array([0, 2]), NO_STATE).reason.tolist() == [0, A]
    point, last = ((t[i], alt[i], x[i], y[i], z[i]) for i in (1, 0))
    assert judge_point(point, last, 0) == (A, False)


def test_a_challenge_track_after_a_long_gap_is_not_a_jump() -> None:
    # The challenge tracks move up to ~19 km/s in a straight line: 40 s of lost rows put the
    # next point ~750 km away, which is a gap, not a glitch.
    t = 1.7e9 + np.array([0.0, 0.5, 40.5])
    lat, lon = np.array([60.0, 59.96, 55.3]), np.array([-30.0, -30.1, -38.9])
    alt = np.array([80e3, 80.4e3, 100e3])
    x, y, z = (np.asarray(c) for c in pymap3d.geodetic2ecef(lat, lon, alt))
    jump = float(np.hypot(np.hypot(x[2] - x[1], y[2] - y[1]), z[2] - z[1]))
    assert 700e3 < jump < 25_000.0 * 40 + 50e3
    got = screen(t, alt, (x, y, z), np.array([0, 3]), NO_STATE)
    assert got.reason.tolist() == [0, 0, 0]


def test_a_jump_to_the_antipode_of_the_last_accepted_point_is_a_position_jump() -> None:
    # The stream's state is at 10° N, 20° E; its next point, 0.5 s later, at the antipode
    # (10° S, 160° W): 12,700 km away (though the two coordinate vectors sum to zero).
    lat, lon, alt = np.array([10.0, -10.0]), np.array([20.0, -160.0]), np.full(2, 50e3)
    x, y, z = (np.asarray(c, dtype=np.float64) for c in pymap3d.geodetic2ecef(lat, lon, alt))
    assert abs(x.sum()) + abs(y.sum()) + abs(z.sum()) < 1e-3
    state = Reference(
        np.array([True]),
        np.array([0.0]),
        alt[:1],
        x[:1],
        y[:1],
        z[:1],
        np.zeros(1, dtype=np.int64),
    )
    got = screen(np.array([0.5]), alt[1:], (x[1:], y[1:], z[1:]), np.array([0, 1]), state)
    assert got.reason.tolist() == [POSITION_CODE] and got.trailing_quarantined.tolist() == [1]
