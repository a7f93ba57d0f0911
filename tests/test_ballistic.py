"""Tests of the physics-based ballistic simulator and its atmosphere model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from ambiance import Atmosphere
from hypothesis import given, settings
from hypothesis import strategies as st

from missile_classifier import columns as col
from missile_classifier.simulation.ballistic.atmosphere import density
from missile_classifier.simulation.ballistic.config import (
    DEFAULT_CLASSES,
    DEFAULT_SENSORS,
    EARTH_MU,
    EARTH_RADIUS_M,
    LAUNCH_EPOCH_S,
    TRACK_SPACING_S,
    BallisticConfig,
    SensorConfig,
)
from missile_classifier.simulation.ballistic.flight import (
    destination,
    draw_params,
    hermite,
    integrate,
)
from missile_classifier.simulation.ballistic.sensing import in_gaps
from missile_classifier.simulation.ballistic.simulator import (
    TRACK_COLUMNS,
    TRUTH_COLUMNS,
    BallisticResult,
    simulate_ballistic,
)

SEED = 11
N_TRACKS = 48
STREAM = [col.TRACK_ID, col.SENSOR_ID]


@pytest.fixture(scope="module")
def result() -> BallisticResult:
    """One simulation with truth columns, shared by the tests that only read it."""
    return simulate_ballistic(np.arange(N_TRACKS), SEED, include_truth=True)


@pytest.fixture(scope="module")
def obs(result: BallisticResult) -> pd.DataFrame:
    return result.observations


@pytest.fixture(scope="module")
def tracks(result: BallisticResult) -> pd.DataFrame:
    return result.tracks.set_index("track_id")


def _sensor(sensor_id: int) -> SensorConfig:
    return next(s for s in DEFAULT_SENSORS if s.sensor_id == sensor_id)


# ---------------------------------------------------------------------------- shape and contract


def test_observation_columns_dtypes_and_order(obs: pd.DataFrame) -> None:
    assert list(obs.columns) == [*col.COLUMNS, *TRUTH_COLUMNS]
    assert obs[col.TRACK_ID].dtype == np.int64
    assert obs[col.SENSOR_ID].dtype == np.int64
    assert obs[col.LABEL].dtype == np.int64
    assert obs[col.TIMESTAMP].dtype == np.float64
    keys = obs[[col.TRACK_ID, col.SENSOR_ID, col.TIMESTAMP]]
    assert keys.equals(keys.sort_values(list(keys.columns), ignore_index=True))
    assert not keys.duplicated().any()
    assert obs.index.equals(pd.RangeIndex(len(obs)))
    assert set(obs[col.LABEL].unique()) <= {0, 1}
    assert obs.drop(columns=col.INTENSITY).notna().all().all()


def test_without_truth_gives_exactly_the_schema_columns() -> None:
    obs = simulate_ballistic([0], SEED).observations
    assert list(obs.columns) == list(col.COLUMNS)


def test_tracks_table(result: BallisticResult) -> None:
    t = result.tracks
    assert list(t.columns) == list(TRACK_COLUMNS)
    assert t["track_id"].tolist() == list(range(N_TRACKS))
    counts = result.observations.groupby(col.TRACK_ID).size()
    assert (t["n_observations"].to_numpy() == counts.to_numpy()).all()
    for track_id, ids in zip(t["track_id"], t["sensor_ids"], strict=True):
        seen = result.observations.loc[result.observations[col.TRACK_ID] == track_id]
        expected = ";".join(str(s) for s in sorted(seen[col.SENSOR_ID].unique()))
        assert ids == expected
        assert 1 <= len(ids.split(";")) <= 3


def test_timestamps_lie_within_each_flight(obs: pd.DataFrame, tracks: pd.DataFrame) -> None:
    launch = LAUNCH_EPOCH_S + TRACK_SPACING_S * obs[col.TRACK_ID]
    since = obs[col.TIMESTAMP] - launch
    flight = tracks.loc[obs[col.TRACK_ID], "flight_time_s"].to_numpy()
    assert (since > 0).all()
    assert (since <= flight + 1e-6).all()
    np.testing.assert_allclose(since, obs["time_since_launch_s"], atol=1e-6)


def test_progress_bar_can_be_shown() -> None:
    out = simulate_ballistic([2], SEED, progress=True)
    assert out.tracks["track_id"].tolist() == [2]


def test_empty_track_list_gives_typed_empty_frames() -> None:
    out = simulate_ballistic([], SEED)
    assert out.observations.empty and out.tracks.empty
    assert list(out.observations.columns) == list(col.COLUMNS)
    assert out.observations[col.TRACK_ID].dtype == np.int64


@pytest.mark.parametrize("ids", [[-1], [1, 1], [0.5]])
def test_bad_track_ids_are_rejected(ids: list[float]) -> None:
    with pytest.raises(ValueError, match="track_ids"):
        simulate_ballistic(ids, SEED)  # type: ignore[arg-type]


_SRBM = DEFAULT_CLASSES[0]
_RADAR = DEFAULT_SENSORS[2]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: dataclasses.replace(_SRBM, delta_v_mps=(500.0, 600.0)), "thrust-to-weight"),
        (lambda: dataclasses.replace(_SRBM, burn_time_s=(70.0, 40.0)), "low <= high"),
        (lambda: dataclasses.replace(_SRBM, mass_ratio=(1.0, 2.0)), "mass ratio"),
        (lambda: dataclasses.replace(_RADAR, interval_s=0.0), "interval"),
        (lambda: dataclasses.replace(_RADAR, dropout_probability=1.0), "probabilities"),
        (lambda: dataclasses.replace(_RADAR, altitude_sigma_m=-1.0), "standard deviations"),
        (lambda: BallisticConfig(sensors=(_RADAR, _RADAR)), "unique"),
        (lambda: BallisticConfig(max_sensors=6), "max_sensors"),
        (lambda: BallisticConfig(classes=()), "missile class"),
        (lambda: BallisticConfig(time_step_s=0.0), "positive"),
    ],
)
def test_invalid_configuration_is_rejected(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


# ---------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_frames(result: BallisticResult) -> None:
    again = simulate_ballistic(np.arange(N_TRACKS), SEED, include_truth=True)
    pd.testing.assert_frame_equal(again.observations, result.observations, check_exact=True)
    pd.testing.assert_frame_equal(again.tracks, result.tracks, check_exact=True)


def test_different_seed_gives_different_tracks() -> None:
    a = simulate_ballistic([0, 1], SEED).tracks
    b = simulate_ballistic([0, 1], SEED + 1).tracks
    assert not np.allclose(a["ground_range_km"], b["ground_range_km"])


def test_a_track_does_not_depend_on_its_companions(result: BallisticResult) -> None:
    """Rows of a track depend only on (seed, track_id), not on chunking or other tracks."""
    ids = [3, 29, 40]
    alone = simulate_ballistic(ids[::-1], SEED, include_truth=True)
    full = result.observations
    expected = full[full[col.TRACK_ID].isin(ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.observations, expected, check_exact=True)


# ---------------------------------------------------------------------------- physics


def test_energy_is_conserved_in_the_vacuum_coast(obs: pd.DataFrame) -> None:
    coast = obs[(obs["true_thrusting"] == 0) & (obs["true_altitude"] > 150e3)]
    assert coast[col.TRACK_ID].nunique() > N_TRACKS // 3
    energy = coast["true_speed"] ** 2 / 2 - EARTH_MU / (EARTH_RADIUS_M + coast["true_altitude"])
    by_track = energy.groupby(coast[col.TRACK_ID])
    drift = (by_track.max() - by_track.min()) / by_track.mean().abs()
    assert drift.max() < 1e-6


def test_keplerian_apogee_matches_the_simulated_apogee(
    obs: pd.DataFrame, tracks: pd.DataFrame
) -> None:
    """Vis-viva + angular momentum from one coast state predict the integrated apogee."""
    coast = obs[(obs["true_thrusting"] == 0) & (obs["true_altitude"] > 150e3)]
    first = coast.groupby(col.TRACK_ID).first()
    r = EARTH_RADIUS_M + first["true_altitude"]
    v, vr = first["true_speed"], first["true_vertical_speed"]
    h = r * np.sqrt(v**2 - vr**2)
    energy = v**2 / 2 - EARTH_MU / r
    a = -EARTH_MU / (2 * energy)
    e = np.sqrt(1 + 2 * energy * h**2 / EARTH_MU**2)
    predicted = a * (1 + e) - EARTH_RADIUS_M
    np.testing.assert_allclose(predicted, tracks.loc[first.index, "apogee_m"], atol=5.0)


def test_every_class_flies_within_its_bounds(tracks: pd.DataFrame) -> None:
    assert set(tracks["missile_class"]) == {c.name for c in DEFAULT_CLASSES}
    for c in DEFAULT_CLASSES:
        mine = tracks[tracks["missile_class"] == c.name]
        assert mine["ground_range_km"].between(*c.range_km).all(), c.name
        assert (mine["apogee_m"] / 1000).between(*c.apogee_km).all(), c.name


def test_speeds_and_altitudes_are_physical(obs: pd.DataFrame, tracks: pd.DataFrame) -> None:
    assert (obs["true_speed"] > 0).all()
    assert (obs["true_speed"] < 7_900).all()  # sub-orbital
    assert (obs["true_altitude"] >= 0).all()
    assert tracks["burnout_speed"].lt(7_500).all()
    assert (tracks["burnout_speed"] < tracks["delta_v_ideal"]).all()  # gravity + drag losses
    assert (tracks["impact_speed"] < tracks["burnout_speed"] + 1_000).all()
    # The first sensor looks until impact (unless an outage hides the last seconds).
    last = obs.groupby(col.TRACK_ID)["time_since_launch_s"].max()
    assert (tracks["flight_time_s"] - last).median() < 2.0


def test_impact_time_puts_the_body_on_the_ground() -> None:
    params = draw_params(np.arange(6), SEED, BallisticConfig())
    traj = integrate(params, 0.5)
    column = np.arange(6)
    pos, vel = hermite(traj.states, traj.dt, traj.impact_step - 1, column, traj.impact_time)
    np.testing.assert_allclose(np.hypot(pos[0], pos[1]), EARTH_RADIUS_M, rtol=0, atol=1e-3)
    assert ((pos * vel).sum(axis=0) < 0).all()  # falling when it lands


def test_integration_stops_runaway_flights() -> None:
    with pytest.raises(RuntimeError, match="still flying"):
        integrate(draw_params(np.arange(2), SEED, BallisticConfig()), 0.5, max_time_s=10.0)


def test_boost_follows_the_steering_target(tracks: pd.DataFrame) -> None:
    miss = tracks["burnout_flight_path_deg"] - tracks["target_flight_path_deg"]
    assert miss.abs().median() < 2.0
    assert (miss > -3.0).all()  # never flatter than asked; short burns may end a bit lofted


def test_intensity_follows_the_flight_phase(obs: pd.DataFrame) -> None:
    t, alt, speed = obs["time_since_launch_s"], obs["true_altitude"], obs["true_speed"]
    intensity = obs["true_intensity"]
    boost = intensity[(obs["true_thrusting"] == 1) & (t > 2.0)]
    cold = intensity[(obs["true_thrusting"] == 0) & (alt > 200e3)]
    hot = intensity[(obs[col.LABEL] == 1) & (alt < 50e3) & (speed > 2_000)]
    assert boost.min() > 0.45
    assert cold.max() < 0.08
    assert hot.median() > 0.5
    assert intensity.between(0, 1).all()


# ---------------------------------------------------------------------------- label


def test_label_rule_is_descending_below_the_interface(obs: pd.DataFrame) -> None:
    rule = (obs["true_vertical_speed"] < 0) & (obs["true_altitude"] < 100_000.0)
    assert (obs[col.LABEL] == rule.astype(np.int64)).all()


def test_label_never_goes_back_to_zero(obs: pd.DataFrame) -> None:
    steps = obs.groupby(STREAM)[col.LABEL].diff().dropna()
    assert (steps >= 0).all()
    assert obs.groupby(col.TRACK_ID)[col.LABEL].max().eq(1).all()
    assert 0.02 < obs[col.LABEL].mean() < 0.3


def test_interface_altitude_moves_the_onset_only() -> None:
    ids = [0, 5, 9]
    base = simulate_ballistic(ids, SEED, include_truth=True).observations
    low = simulate_ballistic(
        ids, SEED, BallisticConfig(interface_altitude_m=60_000.0), include_truth=True
    ).observations
    pd.testing.assert_frame_equal(
        base.drop(columns=col.LABEL), low.drop(columns=col.LABEL), check_exact=True
    )
    assert (low[col.LABEL] <= base[col.LABEL]).all()
    assert low[col.LABEL].sum() < base[col.LABEL].sum()
    expected = (low["true_vertical_speed"] < 0) & (low["true_altitude"] < 60_000.0)
    assert (low[col.LABEL] == expected.astype(np.int64)).all()


# ---------------------------------------------------------------------------- sensors


def _residuals_m(obs: pd.DataFrame) -> pd.DataFrame:
    """Observed minus true position in metres (north, east, up) and intensity."""
    lat = np.radians(obs["true_latitude"])
    dlon = (obs[col.LONGITUDE] - obs["true_longitude"] + 180.0) % 360.0 - 180.0
    metres_per_rad = EARTH_RADIUS_M
    return pd.DataFrame(
        {
            "sensor": obs[col.SENSOR_ID],
            "north": np.radians(obs[col.LATITUDE] - obs["true_latitude"]) * metres_per_rad,
            "east": np.radians(dlon) * metres_per_rad * np.cos(lat),
            "up": obs[col.ALTITUDE] - obs["true_altitude"],
        }
    )[obs["true_latitude"].abs() < 85]


@pytest.mark.parametrize("sensor_id", [s.sensor_id for s in DEFAULT_SENSORS])
def test_sensor_noise_and_bias_match_the_configuration(obs: pd.DataFrame, sensor_id: int) -> None:
    s = _sensor(sensor_id)
    res = _residuals_m(obs)
    res = res[res["sensor"] == sensor_id]
    n = len(res)
    assert n > 500
    for axis, bias, sigma in (
        ("north", s.north_bias_m, s.horizontal_sigma_m),
        ("east", s.east_bias_m, s.horizontal_sigma_m),
        ("up", s.altitude_bias_m, s.altitude_sigma_m),
    ):
        assert res[axis].mean() == pytest.approx(bias, abs=5 * sigma / math.sqrt(n)), axis
        assert res[axis].std() == pytest.approx(sigma, rel=0.08), axis
    mine = obs[obs[col.SENSOR_ID] == sensor_id].dropna(subset=[col.INTENSITY])
    noise = mine[col.INTENSITY] - s.intensity_gain * mine["true_intensity"]
    assert noise.std() == pytest.approx(s.intensity_sigma, rel=0.08)


@pytest.mark.parametrize("sensor_id", [s.sensor_id for s in DEFAULT_SENSORS])
def test_sampling_interval_and_dropouts(obs: pd.DataFrame, sensor_id: int) -> None:
    s = _sensor(sensor_id)
    mine = obs[obs[col.SENSOR_ID] == sensor_id]
    dt = mine.groupby(STREAM)[col.TIMESTAMP].diff().dropna() / s.interval_s
    assert dt.min() > 1 - 1e-5
    assert dt.median() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(dt, np.round(dt), atol=1e-5)  # lost samples leave whole steps
    assert (dt > 1.5).any()  # dropouts make the spacing irregular
    lost = 1 - len(dt) / dt.round().sum()
    expected = s.dropout_probability + s.gap_probability * s.gap_mean_s / s.interval_s
    assert lost == pytest.approx(expected, abs=0.5 * expected + 0.01)


@pytest.mark.parametrize("sensor_id", [s.sensor_id for s in DEFAULT_SENSORS])
def test_missing_intensity_fraction(obs: pd.DataFrame, sensor_id: int) -> None:
    p = _sensor(sensor_id).intensity_missing_probability
    missing = obs.loc[obs[col.SENSOR_ID] == sensor_id, col.INTENSITY].isna()
    tolerance = 5 * math.sqrt(p * (1 - p) / len(missing)) + 1e-3
    assert missing.mean() == pytest.approx(p, abs=tolerance)


def test_sensors_without_dropouts_sample_regularly() -> None:
    steady = tuple(
        dataclasses.replace(s, dropout_probability=0.0, gap_probability=0.0)
        for s in DEFAULT_SENSORS
    )
    obs = simulate_ballistic([1, 2], SEED, BallisticConfig(sensors=steady)).observations
    intervals = obs[col.SENSOR_ID].map({s.sensor_id: s.interval_s for s in steady})
    dt = obs.groupby(STREAM)[col.TIMESTAMP].diff()
    ok = dt.isna() | np.isclose(dt, intervals, atol=1e-5)
    assert ok.all()


# ---------------------------------------------------------------------------- helpers


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 179.9),
    azimuth=st.floats(0, 360),
    angle=st.floats(0, 3.1),
)
def test_destination_is_angle_away_on_the_sphere(
    lat: float, lon: float, azimuth: float, angle: float
) -> None:
    rad = np.radians
    lat2, lon2 = destination(
        rad(np.array([lat])), rad(np.array([lon])), rad(np.array([azimuth])), np.array([angle])
    )
    # Central angle between the points via the spherical law of cosines (dot product).
    a = np.array([np.cos(rad(lat)) * np.cos(rad(lon)), np.cos(rad(lat)) * np.sin(rad(lon))])
    a = np.append(a, np.sin(rad(lat)))
    b = np.array([np.cos(lat2) * np.cos(lon2), np.cos(lat2) * np.sin(lon2), np.sin(lat2)])[:, 0]
    assert np.arccos(np.clip(a @ b, -1, 1)) == pytest.approx(angle, abs=1e-6)
    assert -np.pi <= lon2[0] < np.pi


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(st.floats(0, 100), max_size=5),
    durations=st.lists(st.floats(0, 20), min_size=5, max_size=5),
)
def test_in_gaps_matches_a_direct_check(starts: list[float], durations: list[float]) -> None:
    t = np.linspace(0, 120, 241)
    s = np.sort(np.array(starts, dtype=np.float64))
    d = np.array(durations[: len(s)], dtype=np.float64)
    direct = np.zeros(t.shape, dtype=bool)
    for a, w in zip(s, d, strict=True):
        direct |= (t >= a) & (t < a + w)
    assert (in_gaps(t, s, d) == direct).all()


# ---------------------------------------------------------------------------- atmosphere


@pytest.mark.parametrize(
    ("low_m", "high_m", "tolerance"),
    [(0.0, 24_999.0, 0.03), (25_000.0, 81_000.0, 0.07)],
)
def test_density_matches_the_standard_atmosphere(
    low_m: float, high_m: float, tolerance: float
) -> None:
    """Within 3 % of USSA76 below 25 km (log-linear 5-km table), 7 % above (Vallado fit)."""
    h = np.linspace(low_m, high_m, 200)
    reference = Atmosphere(h).density
    np.testing.assert_allclose(density(h), reference, rtol=tolerance)


def test_density_is_positive_decreasing_and_shape_preserving() -> None:
    h = np.linspace(-1_000.0, 1_500_000.0, 3_000).reshape(3, -1)
    rho = density(h)
    assert rho.shape == h.shape
    assert (rho > 0).all()
    assert (np.diff(rho.ravel()) <= 0).all()
    assert density(-500.0) == pytest.approx(1.225)
