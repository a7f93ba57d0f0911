"""The feature function: causal, time-aware, resumable, never NaN."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from missile_classifier.scoring.features import (
    FEATURE_NAMES,
    N_FEATURES,
    StateArrays,
    StreamState,
    run_features,
    stream_features,
    trend_sums,
)
from test_golden import hand_trend

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


@st.composite
def streams(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """A random stream: irregular increasing times, wandering position, gaps in intensity."""
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t = 1.7e9 + np.cumsum(rng.choice([0.25, 0.5, 1.0, 2.0, 37.0], size=n))
    lat = np.clip(rng.uniform(-80, 80) + np.cumsum(rng.normal(0, 0.01, n)), -90, 90)
    lon = rng.uniform(-180, 180) + np.cumsum(rng.normal(0, 0.01, n))
    alt = np.abs(rng.uniform(0, 2e5) + np.cumsum(rng.normal(0, 500, n)))
    intensity = rng.normal(0.5, 0.2, n)
    intensity[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = np.nan
    return t, lat, lon, alt, intensity


@settings(max_examples=60, deadline=None)
@given(stream=streams(), cut=st.floats(0, 1))
def test_features_are_causal(stream: tuple[np.ndarray, ...], cut: float) -> None:
    k = max(1, int(cut * len(stream[0])))
    full, _ = stream_features(*stream)
    prefix, _ = stream_features(*(c[:k] for c in stream))
    np.testing.assert_array_equal(prefix, full[:k])


@settings(max_examples=60, deadline=None)
@given(stream=streams(), cuts=st.lists(st.floats(0, 1), max_size=4))
def test_resuming_from_state_gives_the_batch_answer(
    stream: tuple[np.ndarray, ...], cuts: list[float]
) -> None:
    n = len(stream[0])
    bounds = sorted({0, n, *(int(c * n) for c in cuts)})
    full, final = stream_features(*stream)
    parts, state = [], None
    for begin, end in itertools.pairwise(bounds):
        if state is not None:  # the state crosses a process boundary as JSON
            state = StreamState.from_dict(json.loads(json.dumps(state.to_dict())))
        features, state = stream_features(*(c[begin:end] for c in stream), state=state)
        parts.append(features)
    np.testing.assert_allclose(np.vstack(parts), full, rtol=1e-12, atol=1e-9)
    assert state == final


@settings(max_examples=60, deadline=None)
@given(stream=streams())
def test_no_nan_or_infinity(stream: tuple[np.ndarray, ...]) -> None:
    features, _ = stream_features(*stream)
    assert features.shape == (len(stream[0]), N_FEATURES)
    assert np.isfinite(features).all()


def test_rates_divide_by_the_real_time_step() -> None:
    # Straight up at 100 m/s, sampled irregularly: every rate must say 100 m/s, whatever Δt.
    t = np.array([0.0, 0.5, 1.0, 3.0, 3.25, 10.0])
    alt = 1_000.0 + 100.0 * t
    features, _ = stream_features(t, np.full(6, 45.0), np.full(6, 7.0), alt, np.full(6, 0.2))
    np.testing.assert_allclose(features[1:, F["velocity_up"]], 100.0, rtol=1e-6)
    np.testing.assert_allclose(features[1:, F["speed"]], 100.0, rtol=1e-6)
    np.testing.assert_allclose(
        features[1:, [F["velocity_east"], F["velocity_north"]]], 0, atol=1e-5
    )
    np.testing.assert_allclose(features[2:, F["acceleration"]], 0.0, atol=1e-5)
    assert "dt" not in FEATURE_NAMES  # its training values are one constant: no input
    np.testing.assert_allclose(features[:, F["distance_from_start"]], alt - alt[0], rtol=1e-6)


#: Straight up at 45°N, 7°E with irregular steps: 100 m/s for 2 s, then 140 m/s, steady.
CLIMB_T = np.array([0.0, 2.0, 2.5, 3.0])
CLIMB_ALT = np.array([1_000.0, 1_200.0, 1_270.0, 1_340.0])
CLIMB_INTENSITY = np.array([0.2, 0.6, 0.7, 0.7])


def _climb(rows: slice, state: StreamState | None = None) -> tuple[np.ndarray, StreamState]:
    n = len(CLIMB_T)
    return stream_features(
        CLIMB_T[rows],
        np.full(n, 45.0)[rows],
        np.full(n, 7.0)[rows],
        CLIMB_ALT[rows],
        CLIMB_INTENSITY[rows],
        state=state,
    )


def _hand_trend(t: list[float], values: list[float], start: int = 0) -> list[float]:
    """The trend of ``values`` by its definition (the golden tests' hand recursion)."""
    return hand_trend(t, values, start).rates


def test_rates_are_trends_weighted_in_seconds() -> None:
    # 100 m/s for 2 s, then 140 m/s: the trend moves from 100 towards 140 as the old step's
    # weight decays (τ = 4 s: 2/3 after 2 s, 8/9 after each 0.5 s), 110.9 then 117.7 m/s,
    # not a jump to 140 as a one-step rate would.
    features, state = _climb(slice(None))
    speed = _hand_trend(list(CLIMB_T), list(CLIMB_ALT))
    assert speed[1:] == pytest.approx([100.0, 1220 / 11, 13540 / 115], rel=1e-12)
    np.testing.assert_allclose(features[:, F["velocity_up"]], speed, rtol=1e-6)
    np.testing.assert_allclose(features[:, F["speed"]], speed, rtol=1e-6)
    # The intensity rate: +0.4 over 2 s, +0.1 over 0.5 s (still 0.2/s), then no change.
    rate = _hand_trend(list(CLIMB_T), list(CLIMB_INTENSITY))
    np.testing.assert_allclose(features[:, F["radiometric_rate"]], rate, rtol=1e-9, atol=1e-12)
    assert rate[:3] == pytest.approx([0.0, 0.2, 0.2]) and rate[3] < 0.2
    assert state.count == 4 and state.speed == pytest.approx(speed[3], rel=1e-6)


def test_acceleration_is_the_trend_of_speed_from_the_second_speed() -> None:
    # Row 1 has one velocity (100 m/s) and nothing to difference it with: its acceleration is
    # 0, not 100 m/s over 2 s. From row 2 on it is the trend of speed.
    features, _ = _climb(slice(None))
    speed = _hand_trend(list(CLIMB_T), list(CLIMB_ALT))
    acceleration = features[:, F["acceleration"]]
    assert acceleration[0] == 0.0 and acceleration[1] == 0.0
    expected = _hand_trend(list(CLIMB_T), speed, start=1)
    assert expected[2] == pytest.approx((1220 / 11 - 100) / 0.5)
    np.testing.assert_allclose(acceleration, expected, rtol=1e-6)


def test_a_trend_carries_across_a_resumed_stream() -> None:
    full, _ = _climb(slice(None))
    for cut in (1, 2, 3):
        _, after = _climb(slice(0, cut))
        resumed, _ = _climb(slice(cut, None), after)
        np.testing.assert_array_equal(resumed, full[cut:])


def test_a_long_gap_gives_the_rate_over_the_gap() -> None:
    # After an hour without rows the old steps weigh ~1e-3: the rate is the secant over the gap.
    t = np.array([0.0, 1.0, 3_601.0])
    alt = np.array([1_000.0, 1_100.0, 1_100.0 + 50.0 * 3_600])
    features, _ = stream_features(t, np.full(3, 45.0), np.full(3, 7.0), alt, np.full(3, 0.2))
    assert features[2, F["velocity_up"]] == pytest.approx(50.0, rel=1e-3)


def test_a_stream_resumed_after_one_row_still_zeroes_its_next_acceleration() -> None:
    full, _ = _climb(slice(None))
    _, after_one = _climb(slice(0, 1))
    assert after_one.count == 1 and after_one.speed == 0.0
    resumed, _ = _climb(slice(1, None), after_one)
    assert resumed[0, F["acceleration"]] == 0.0  # the stream's second row
    assert resumed[1, F["acceleration"]] == full[2, F["acceleration"]] != 0.0
    _, after_two = _climb(slice(0, 2))
    assert after_two.count == 2
    resumed, _ = _climb(slice(2, None), after_two)
    assert resumed[0, F["acceleration"]] == full[2, F["acceleration"]]  # the third row


@pytest.mark.parametrize(
    ("altitude", "expected"),
    [
        # climbs from launch: established once 1 km above the lowest point (1,000 m exactly counts)
        ([0.0, 600.0, 1_000.0, 5_000.0, 3_000.0], [0, 0, 1, 1, 1]),
        # first seen on the descent: it only falls, so it never knows its maximum
        ([60e3, 59e3, 50e3, 20e3, 5e3], [0, 0, 0, 0, 0]),
        # first seen at apogee (level, ±100 m of noise), then falling: never established
        ([100e3, 100.1e3, 99.95e3, 100.05e3, 90e3], [0, 0, 0, 0, 0]),
        # a dip then a climb of 1 km above the dip (not above the first point) counts
        ([10e3, 9.5e3, 10e3, 10.5e3, 10.4e3], [0, 0, 0, 1, 1]),
    ],
)
def test_the_maximum_is_established_by_a_climb_of_a_kilometre(
    altitude: list[float], expected: list[int]
) -> None:
    n = len(altitude)
    t, alt = np.arange(float(n)), np.array(altitude)
    features, state = stream_features(t, np.zeros(n), np.zeros(n), alt, np.zeros(n))
    assert features[:, F["maximum_established"]].tolist() == expected
    assert state.maximum_established == expected[-1] and state.min_altitude == min(altitude)
    # Resumed point by point, the flag and the lowest altitude carry over.
    rows, carried = [], None
    for i in range(n):
        row, carried = stream_features(
            t[i : i + 1], z1 := np.zeros(1), z1, alt[i : i + 1], z1, state=carried
        )
        rows.append(row[0, F["maximum_established"]])
    assert rows == expected
    # Two runs in one call: the second (established in its own state) stays established.
    both, _ = run_features(
        np.concatenate([t, t]),
        np.zeros(2 * n),
        np.zeros(2 * n),
        np.concatenate([alt, alt]),
        np.zeros(2 * n),
        np.array([0, n, 2 * n]),
        [None, replace(state, maximum_established=1.0, timestamp=-1.0)],
    )
    assert both[:n, F["maximum_established"]].tolist() == expected
    assert both[n:, F["maximum_established"]].tolist() == [1] * n


@pytest.mark.parametrize(("seed", "runs", "longest"), [(3, 9, 40), (5, 30, 300), (6, 60, 3)])
def test_the_loop_and_the_vectorised_trend_give_the_same_bits(
    seed: int, runs: int, longest: int
) -> None:
    # Few runs take a plain loop, many a vectorised step per row position (laid out position
    # by position, runs of equal length included): same arithmetic.
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, longest, runs)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    steps = rng.normal(size=(bounds[-1], 3))
    decay = rng.uniform(0.1, 1.0, bounds[-1])
    leads = rng.normal(size=(runs, 3))
    together, after = trend_sums(steps, decay, bounds, leads)
    for r in range(runs):
        one = slice(bounds[r], bounds[r + 1])
        alone, alone_after = trend_sums(
            steps[one], decay[one], np.array([0, lengths[r]]), leads[r : r + 1]
        )
        np.testing.assert_array_equal(alone, together[one])
        np.testing.assert_array_equal(alone_after[0], after[r])


# Mutants no test can tell apart (intensity kept in its own float width, the ECEF and ENU
# arrays pymap3d already returns in float64, missing.astype(None), the 2.0 for 1.0 in safe_dt)
# are listed, with the reason, in tests/mutation_equivalents.toml.
def test_inputs_of_another_float_width_are_computed_in_float64() -> None:
    # Columns may arrive as float32 (e.g. from a parquet file): the features are those of the
    # same values in float64, not float32 arithmetic.
    rng = np.random.default_rng(4)
    n = 20
    t = (0.05 + np.cumsum(rng.choice([0.3, 7.1, 0.05, 90.7], n))).astype(np.float32)
    # Some steps between these float32 times are not float32 numbers themselves.
    assert not np.array_equal(np.diff(t).astype(np.float64), np.diff(t.astype(np.float64)))
    columns = [
        t,
        (50 + np.cumsum(rng.normal(0, 0.01, n))).astype(np.float32),
        (8 + np.cumsum(rng.normal(0, 0.01, n))).astype(np.float32),
        np.linspace(1e5, 2e4, n).astype(np.float32),
        rng.random(n).astype(np.float32),
    ]
    narrow, narrow_state = stream_features(*columns)
    wide, wide_state = stream_features(*(c.astype(np.float64) for c in columns))
    assert narrow.dtype == np.float64
    np.testing.assert_array_equal(narrow, wide)
    assert narrow_state == wide_state


def test_first_row_has_no_motion_and_east_motion_is_east() -> None:
    t = np.arange(4.0)
    lon = 10.0 + np.arange(4) * 0.001  # ~111 m per step at the equator
    features, _ = stream_features(t, np.zeros(4), lon, np.full(4, 5_000.0), np.zeros(4))
    assert (features[0, F["velocity_east"] : F["acceleration"] + 1] == 0).all()
    assert features[1:, F["velocity_east"]] == pytest.approx(111.3, rel=0.01)


def test_context_features_track_the_running_maximum() -> None:
    t = np.arange(7.0)
    alt = np.array([0.0, 40e3, 80e3, 100e3, 90e3, 50e3, 20e3])
    features, _ = stream_features(t, np.zeros(7), np.zeros(7), alt, np.zeros(7))
    np.testing.assert_allclose(features[:, F["altitude_over_max"]], [0, 1, 1, 1, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(features[:, F["altitude_below_max"]], [0, 0, 0, 0, 10e3, 50e3, 80e3])
    np.testing.assert_array_equal(features[:, F["time_since_max"]], [0, 0, 0, 0, 1, 2, 3])


def test_missing_intensity_is_carried_forward_and_flagged() -> None:
    intensity = np.array([np.nan, 0.4, np.nan, np.nan, 0.7])
    features, state = stream_features(
        np.arange(5.0), np.zeros(5), np.zeros(5), np.full(5, 1e4), intensity
    )
    np.testing.assert_array_equal(features[:, F["radiometric_intensity"]], [0, 0.4, 0.4, 0.4, 0.7])
    np.testing.assert_array_equal(features[:, F["intensity_missing"]], [1, 0, 1, 1, 0])
    filled = [0.0, 0.4, 0.4, 0.4, 0.7]  # the rate is the trend of the filled values
    rate = _hand_trend([0.0, 1.0, 2.0, 3.0, 4.0], filled)
    np.testing.assert_allclose(features[:, F["radiometric_rate"]], rate, rtol=1e-12)
    assert state.intensity == 0.7


@pytest.mark.parametrize("t", [[0.0, 1.0, 1.0], [0.0, 2.0, 1.0]])
def test_time_must_increase(t: list[float]) -> None:
    z = np.zeros(3)
    with pytest.raises(ValueError, match="strictly increase"):
        stream_features(np.array(t), z, z, z, z)


def test_resumed_rows_must_be_later_than_the_state() -> None:
    one = np.ones(1)
    _, state = stream_features(one * 5, one, one, one, one)
    with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
        stream_features(one * 5, one, one, one, one, state=state)
    with pytest.raises(ValueError, match=r"^a stream needs at least one row$"):
        stream_features(*(np.empty(0) for _ in range(5)))


def test_no_new_rows_after_a_state_give_no_features_and_the_same_state() -> None:
    one = np.ones(1)
    _, state = stream_features(one * 5, one, one, one, one)
    features, after = stream_features(*(np.empty(0) for _ in range(5)), state=state)
    assert features.shape == (0, N_FEATURES) and after == state


@settings(max_examples=40, deadline=None)
@given(parts=st.lists(st.tuples(streams(), st.floats(0, 1), st.booleans()), min_size=1, max_size=5))
def test_runs_of_one_call_equal_each_run_computed_alone(
    parts: list[tuple[tuple[np.ndarray, ...], float, bool]],
) -> None:
    # Each part is a stream, either resumed after its first k rows or fresh; the runs are
    # concatenated in one call. Each run's features and end state must be those of the run
    # scored alone by stream_features: no running maximum, forward fill, previous row or
    # origin may cross from one run into the next.
    runs, states, alone, finals = [], [], [], []
    for stream, cut, resume in parts:
        n = len(stream[0])
        k = min(int(cut * n), n - 1) if resume else 0
        state = stream_features(*(c[:k] for c in stream))[1] if k else None
        features, final = stream_features(*(c[k:] for c in stream), state=state)
        runs.append(tuple(c[k:] for c in stream))
        states.append(state)
        alone.append(features)
        finals.append(final)
    bounds = np.concatenate([[0], np.cumsum([len(r[0]) for r in runs])])
    columns = [np.concatenate([r[j] for r in runs]) for j in range(5)]
    t, lat, lon, alt, intensity = columns
    features, ends = run_features(t, lat, lon, alt, intensity, bounds, states)
    np.testing.assert_array_equal(features, np.vstack(alone))
    assert [ends.state(r) for r in range(len(runs))] == finals


def test_a_run_starting_lower_does_not_inherit_the_previous_run_s_maximum() -> None:
    # Two fresh one-stream runs in one call: the second (all below the first's 50 km) has its
    # own running maximum, its own time of maximum and its own intensity fill.
    t = np.array([0.0, 1.0, 2.0, 5.0, 6.0, 7.0])
    alt = np.array([40e3, 50e3, 45e3, 20e3, 10e3, 30e3])
    intensity = np.array([0.2, np.nan, 0.9, np.nan, np.nan, 0.4])
    features, ends = run_features(
        t, np.zeros(6), np.zeros(6), alt, intensity, np.array([0, 3, 6]), [None, None]
    )
    np.testing.assert_array_equal(features[:, F["altitude_below_max"]], [0, 0, 5e3, 0, 10e3, 0])
    np.testing.assert_allclose(
        features[:, F["altitude_over_max"]], [1, 1, 0.9, 1, 0.5, 1], rtol=1e-15
    )
    np.testing.assert_array_equal(features[:, F["time_since_max"]], [0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(
        features[:, F["radiometric_intensity"]], [0.2, 0.2, 0.9, 0, 0, 0.4]
    )
    # Each run's rates start afresh: the first rows of both runs have none.
    assert features[[0, 3], F["velocity_up"]].tolist() == [0.0, 0.0]
    assert features[4, F["velocity_up"]] == pytest.approx(-10e3, rel=1e-6)
    assert ends.state(1).max_altitude == 30e3 and ends.state(1).time_of_max == 7.0
    assert ends.state(0).max_altitude == 50e3 and ends.state(0).time_of_max == 1.0
    assert ends.state(1).count == 3 and ends.state(1).intensity == 0.4


def test_a_run_whose_stream_reached_higher_before_keeps_that_maximum() -> None:
    # A resumed run below its state's maximum (60 km at t=3) compares with it, not with itself.
    _, state = stream_features(
        np.array([0.0, 3.0]), np.zeros(2), np.zeros(2), np.array([5e3, 60e3]), np.array([0.3, 0.7])
    )
    features, after = stream_features(
        np.array([4.0, 5.0]),
        np.zeros(2),
        np.zeros(2),
        np.array([30e3, 15e3]),
        np.full(2, np.nan),
        state=state,
    )
    np.testing.assert_array_equal(features[:, F["altitude_over_max"]], [0.5, 0.25])
    np.testing.assert_array_equal(features[:, F["altitude_below_max"]], [30e3, 45e3])
    np.testing.assert_array_equal(features[:, F["time_since_max"]], [1.0, 2.0])
    # Both intensities missing: the stream's last one (0.7) carries over, not 0.
    np.testing.assert_array_equal(features[:, F["radiometric_intensity"]], [0.7, 0.7])
    assert (after.max_altitude, after.time_of_max, after.count) == (60e3, 3.0, 4)


def test_time_must_increase_within_a_resumed_run_and_not_across_runs() -> None:
    z = np.zeros(4)
    # Run 1 starts before run 0 ended: separate streams, so that is fine.
    run_features(np.array([5.0, 6.0, 1.0, 2.0]), z, z, z, z, np.array([0, 2, 4]), [None, None])
    _, state = stream_features(np.array([3.0]), z[:1], z[:1], z[:1], z[:1])
    for t, states in (
        ([5.0, 6.0, 3.0, 4.0], [None, state]),  # run 1 starts at its state's time
        ([5.0, 6.0, 4.0, 4.0], [None, state]),  # a repeated time inside a resumed run
        ([5.0, 5.0, 4.0, 6.0], [None, state]),  # a repeated time inside a fresh run
    ):
        with pytest.raises(ValueError, match=r"^timestamps of a stream must strictly increase$"):
            run_features(np.array(t), z, z, z, z, np.array([0, 2, 4]), states)


STATE = StreamState(
    count=3,
    timestamp=10.0,
    x=1.0,
    y=2.0,
    z=3.0,
    altitude=4.0,
    speed=5.0,
    intensity=0.5,
    x0=6.0,
    y0=7.0,
    z0=8.0,
    max_altitude=9.0,
    time_of_max=9.5,
    lead_t=3.5,
    lead_x=0.1,
    lead_y=0.2,
    lead_z=0.3,
    lead_intensity=0.4,
    lead_speed_t=3.0,
    lead_speed=0.6,
    min_altitude=1.0,
    maximum_established=1.0,
    quarantined=2,
)


def test_a_state_without_a_quarantine_count_is_read_with_none_quarantined() -> None:
    # States written before the jump rule have no "quarantined": still this version.
    data = STATE.to_dict()
    assert data["quarantined"] == 2
    del data["quarantined"]
    read = StreamState.from_dict(data)
    assert read.quarantined == 0 and read.count == 3 and read.time_of_max == 9.5


@pytest.mark.parametrize(
    "data",
    [
        {**STATE.to_dict(), "version": 2},  # a field this version does not know
        {k: v for k, v in STATE.to_dict().items() if k != "time_of_max"},  # a field missing
        {k: v for k, v in STATE.to_dict().items() if k != "count"},
        {},
        [1.0, 2.0],  # not a mapping at all
    ],
)
def test_a_state_of_another_version_is_refused(data: dict[str, float | int]) -> None:
    with pytest.raises(ValueError, match=r"^not a stream state of this version$"):
        StreamState.from_dict(data)


def test_state_arrays_give_each_state_s_field_or_the_fresh_value() -> None:
    other = replace(STATE, speed=50.0, count=7)
    mixed = StateArrays([STATE, None, other])
    assert mixed.fresh.tolist() == [False, True, False]
    np.testing.assert_array_equal(mixed.get("speed", 0.0), [5.0, 0.0, 50.0])
    np.testing.assert_array_equal(
        mixed.get("count", np.array([-1.0, -2.0, -3.0])), [3.0, -2.0, 7.0]
    )
    known = StateArrays([other, STATE])
    np.testing.assert_array_equal(known.get("time_of_max", -1.0), [9.5, 9.5])
    np.testing.assert_array_equal(known.get("quarantined", -1.0), [2.0, 2.0])
    fresh = StateArrays([None, None])
    np.testing.assert_array_equal(fresh.get("x0", np.array([1.0, 2.0])), [1.0, 2.0])
    assert StateArrays([]).get("x", 0.0).shape == (0,)


def test_whole_number_inputs_and_states_give_features_and_a_state_of_floats() -> None:
    # Whole seconds and metres may arrive as integers (a JSON store writes 1700000000, not
    # 1700000000.0): the features are those of the same floats, and the state after them holds
    # floats where it declares floats, so it serialises the same either way.
    t, alt = np.array([1_700_000_000, 1_700_000_002]), np.array([12_000, 12_500])
    lat, lon, intensity = np.full(2, 45.0), np.full(2, 7.0), np.full(2, 0.5)
    whole: dict[str, float | int] = {
        k: int(v) for k, v in replace(STATE, intensity=1.0).to_dict().items()
    }
    state = StreamState.from_dict(whole)
    assert all(type(v) is int for v in state.to_dict().values())
    for prior in (None, state):
        features, after = stream_features(t + 100, lat, lon, alt, intensity, state=prior)
        expected, _ = stream_features(
            (t + 100).astype(float), lat, lon, alt.astype(float), intensity, state=prior
        )
        np.testing.assert_array_equal(features, expected)
        counts = ("count", "quarantined")
        values = after.to_dict()
        assert all(type(v) is int for k, v in values.items() if k in counts), values
        assert all(type(v) is float for k, v in values.items() if k not in counts), values
