"""The challenge profile reproduces every measured fact of the public data (docs/simulator.md),
and datasets split and write as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from missile_classifier.simulation.challenge import (
    ChallengeConfig,
    challenge_altitude,
    simulate_challenge,
)
from missile_classifier.simulation.dataset import simulate_dataset, split_track_ids

CFG = ChallengeConfig()


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return simulate_challenge(np.arange(60), seed=2024)


def _groups(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [g for _, g in frame.groupby("track_id")]


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = simulate_challenge([0, 1], seed=5), simulate_challenge([0, 1], seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(
        simulate_challenge([0, 1], seed=6)["altitude"].iloc[:10], a["altitude"].iloc[:10]
    )


def test_a_track_does_not_depend_on_how_many_are_simulated() -> None:
    few = simulate_challenge([0, 1, 2], seed=9)
    many = simulate_challenge(np.arange(20), seed=9)
    pd.testing.assert_frame_equal(few, many[many["track_id"] < 3].reset_index(drop=True))


def test_sampling_timestamps_and_sensor(tracks: pd.DataFrame) -> None:
    assert (tracks["sensor_id"] == 3).all() and not tracks.isna().any().any()
    for track in _groups(tracks):
        track_id = int(track["track_id"].iloc[0])
        t = track["timestamp"].to_numpy()
        assert t[0] == 1731308400 + 600 * track_id
        np.testing.assert_array_equal(np.diff(t), 0.5)
        assert 600 <= len(track) <= 1200


def test_altitude_is_a_trapezoid_with_measured_rates_and_proportions(tracks: pd.DataFrame) -> None:
    for track in _groups(tracks):
        altitude = track["altitude"].to_numpy()
        n, peak = len(altitude), altitude.max()
        assert 101_000 <= peak <= 120_000.1
        steps = np.diff(altitude)
        up, flat, down = steps > 1, np.abs(steps) <= 1, steps < -1
        # Contiguous phases in order: ascent, plateau, descent.
        phase = np.select([up, flat, down], [0, 1, 2])
        assert np.all(np.diff(phase) >= 0)
        assert down.sum() == up.sum() + 1  # the descent has one step more
        assert 315 <= steps[up].mean() <= 670 and steps[up].std() < 0.05
        assert steps[down].mean() == pytest.approx(-steps[up].mean(), rel=0.01)
        assert steps[up].mean() == pytest.approx(peak / (0.3 * n), rel=0.01)
        plateau_rows = n - up.sum() - down.sum()
        assert plateau_rows / n == pytest.approx(0.4, abs=0.01)
        assert altitude[np.abs(altitude - peak) < 1].std() == pytest.approx(0.01, rel=0.35)
        assert abs(altitude[0]) < 0.05 and abs(altitude[-1]) < 0.05


def test_rates_span_the_public_range() -> None:
    frame = simulate_challenge(np.arange(300), seed=1)
    rates = frame.groupby("track_id")["altitude"].agg(lambda a: np.diff(a.to_numpy())[0])
    assert rates.min() < 340 and rates.max() > 620


def test_label_rule_one_transition_and_share(tracks: pd.DataFrame) -> None:
    for track in _groups(tracks):
        altitude, label = track["altitude"].to_numpy(), track["reentry_phase"].to_numpy()
        peak = altitude.max()
        descending = np.arange(len(altitude)) > np.flatnonzero(np.abs(altitude - peak) < 1).max()
        rule = descending & (altitude < peak / 2)
        # The public labels' one-sample ambiguity: the observed maximum carries the plateau noise.
        ties = np.abs(altitude - peak / 2) < 0.05
        assert np.array_equal(label[~ties], rule[~ties])
        assert (
            np.count_nonzero(np.diff(label) == 1) == 1
            and np.count_nonzero(np.diff(label) == -1) == 0
        )
        assert label[-1] == 1
    assert tracks["reentry_phase"].mean() == pytest.approx(0.15, abs=0.005)


def test_ground_track_and_position_noise(tracks: pd.DataFrame) -> None:
    sigmas = []
    for track in _groups(tracks):
        for column, (start, end) in (
            ("latitude", (64.13, 40.02)),
            ("longitude", (-21.90, -105.29)),
        ):
            x = track[column].to_numpy()
            line = np.polyval(np.polyfit(np.arange(len(x)), x, 1), [0, len(x) - 1])
            np.testing.assert_allclose(line, [start, end], atol=0.005)
            # Second differences of white noise have variance 6 σ² (a straight line vanishes).
            sigmas.append(np.std(np.diff(x, 2)) / np.sqrt(6))
    assert np.median(sigmas) == pytest.approx(0.010, rel=0.05)


def test_intensity_follows_altitude(tracks: pd.DataFrame) -> None:
    slope, intercept = np.polyfit(tracks["altitude"], tracks["radiometric_intensity"], 1)
    assert slope * 100_000 == pytest.approx(0.833, abs=0.002) and abs(intercept) < 0.001
    residual = tracks["radiometric_intensity"] - (slope * tracks["altitude"] + intercept)
    assert residual.std() == pytest.approx(0.010, rel=0.05)


def test_altitude_shape_of_public_track_zero() -> None:
    # Public track 0: 804 rows -> 240 ascent steps, 323 rows at the maximum, 241 descent steps.
    altitude = challenge_altitude(804, 115_930.86)
    steps = np.diff(altitude)
    assert (steps > 0).sum() == 240 and (steps < 0).sum() == 241
    assert np.isclose(altitude, 115_930.86).sum() == 323
    assert steps[0] == pytest.approx(483.045, abs=0.001) and steps[-1] == pytest.approx(
        -481.04, abs=0.01
    )


@pytest.mark.parametrize(
    ("n", "fraction", "n_test"),
    [(100, 0.1, 10), (30, 0.1, 3), (2, 0.1, 1), (1, 0.1, 0), (10, 0.0, 0)],
)
def test_split_is_disjoint_and_sized(n: int, fraction: float, n_test: int) -> None:
    train, test = split_track_ids(n, fraction)
    assert len(test) == n_test and len(train) + len(test) == n
    assert not set(train) & set(test)


@pytest.mark.parametrize(("n", "fraction"), [(0, 0.1), (5, 1.0), (5, -0.1)])
def test_split_rejects_bad_arguments(n: int, fraction: float) -> None:
    with pytest.raises(ValueError, match=r"track|fraction"):
        split_track_ids(n, fraction)


def test_dataset_tracks_are_disjoint() -> None:
    dataset = simulate_dataset("challenge", 20, seed=3, test_fraction=0.25)
    assert set(dataset.test["track_id"]) == {15, 16, 17, 18, 19}
    assert set(dataset.train["track_id"]).isdisjoint(dataset.test["track_id"])
    with pytest.raises(ValueError, match="unknown profile"):
        simulate_dataset("nope", 2, seed=0)  # type: ignore[arg-type]
