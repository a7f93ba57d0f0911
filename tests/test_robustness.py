"""The degradation suite: each condition makes the shape it names, labels from the intact track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from missile_classifier.columns import ALTITUDE, INTENSITY, LABEL, LATITUDE, SENSOR_ID, TIMESTAMP
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.simulation.challenge import simulate_challenge
from missile_classifier.training.robustness import (
    CONDITIONS,
    Condition,
    degrade,
    onsets,
    robustness,
)

BY_NAME = {c.name: c for c in CONDITIONS}


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return simulate_challenge([0, 1, 2], seed=4)


def _steps(frame: pd.DataFrame) -> np.ndarray:
    return frame.groupby(["track_id", "sensor_id"])[TIMESTAMP].diff().dropna().to_numpy()


def test_the_suite_covers_every_condition_of_the_brief() -> None:
    assert list(BY_NAME) == [
        "intact",
        "resample 0.25 s",
        "resample 1 s",
        "resample 2 s",
        "resample 4 s",
        "irregular 0.2-3 s",
        "lose 10 % of rows",
        "lose 30 % of rows",
        "lose 50 % of rows",
        "lose bursts of 5-60 s",
        "altitude noise 10 m",
        "altitude noise 30 m",
        "altitude noise 100 m",
        "position noise x3",
        "intensity missing",
        "intensity missing on 50 %",
        "sensor bias",
        "2 sensors interleaved",
        "3 sensors interleaved",
        "picked up on the ascent",
        "picked up at apogee",
        "picked up early on the descent",
    ]
    assert [c.name for c in CONDITIONS if not c.observable] == ["picked up early on the descent"]


def test_labels_come_from_the_intact_track(tracks: pd.DataFrame) -> None:
    onset = onsets(tracks)
    for condition in CONDITIONS:
        got = degrade(tracks, condition, seed=1)
        expected = (got[TIMESTAMP].to_numpy() >= got["track_id"].map(onset).to_numpy()).astype(int)
        np.testing.assert_array_equal(got[LABEL].to_numpy(), expected, err_msg=condition.name)
        assert got[LABEL].any() and not got[LABEL].all(), condition.name


@pytest.mark.parametrize(("name", "interval"), [("resample 0.25 s", 0.25), ("resample 4 s", 4.0)])
def test_resampling_gives_rows_exactly_the_interval_apart(
    tracks: pd.DataFrame, name: str, interval: float
) -> None:
    got = degrade(tracks, BY_NAME[name], seed=1)
    np.testing.assert_allclose(_steps(got), interval)
    # Interpolated in time: halfway between two 0.5 s rows lies the mean of their altitudes.
    if interval == 0.25:
        track = tracks[tracks["track_id"] == 0].reset_index(drop=True)
        mid = got[(got["track_id"] == 0) & (got[TIMESTAMP] == track[TIMESTAMP][100] + 0.25)]
        assert float(mid[ALTITUDE].iloc[0]) == pytest.approx(
            (track[ALTITUDE][100] + track[ALTITUDE][101]) / 2
        )


def test_irregular_sampling_draws_steps_from_its_range(tracks: pd.DataFrame) -> None:
    steps = _steps(degrade(tracks, BY_NAME["irregular 0.2-3 s"], seed=1))
    assert steps.min() >= 0.2 and steps.max() <= 3.0
    assert 1.45 < steps.mean() < 1.75  # uniform on [0.2, 3]: mean 1.6


@pytest.mark.parametrize("share", [0.1, 0.3, 0.5])
def test_row_loss_drops_about_its_share(tracks: pd.DataFrame, share: float) -> None:
    got = degrade(tracks, BY_NAME[f"lose {share:.0%} of rows".replace("%", " %")], seed=1)
    lost = 1 - len(got) / len(tracks)
    assert abs(lost - share) < 0.04


def test_bursts_lose_whole_stretches_of_seconds(tracks: pd.DataFrame) -> None:
    got = degrade(tracks, BY_NAME["lose bursts of 5-60 s"], seed=1)
    steps = _steps(got)
    assert steps.max() > 5.0 and (steps > 5.0).sum() <= 9  # at most 3 gaps in each of 3 tracks


def test_noise_and_bias_change_only_their_columns(tracks: pd.DataFrame) -> None:
    intact = degrade(tracks, BY_NAME["intact"], seed=1)
    noisy = degrade(tracks, BY_NAME["altitude noise 100 m"], seed=1)
    assert 90 < float((noisy[ALTITUDE] - intact[ALTITUDE]).std()) < 110
    pd.testing.assert_series_equal(noisy[LATITUDE], intact[LATITUDE])
    biased = degrade(tracks, BY_NAME["sensor bias"], seed=1)
    np.testing.assert_allclose(biased[ALTITUDE] - intact[ALTITUDE], 300.0)


def test_missing_intensity(tracks: pd.DataFrame) -> None:
    assert degrade(tracks, BY_NAME["intensity missing"], seed=1)[INTENSITY].isna().all()
    half = degrade(tracks, BY_NAME["intensity missing on 50 %"], seed=1)[INTENSITY].isna().mean()
    assert 0.45 < half < 0.55


def test_interleaved_sensors_are_streams_of_their_own_offset_in_time(tracks: pd.DataFrame) -> None:
    got = degrade(tracks, BY_NAME["3 sensors interleaved"], seed=1)
    (sensor,) = tracks[SENSOR_ID].unique()  # the challenge data's one sensor (3)
    assert sorted(got[SENSOR_ID].unique()) == [3 * sensor + 1, 3 * sensor + 2, 3 * sensor + 3]
    np.testing.assert_allclose(_steps(got), 0.5)
    track = got[got["track_id"] == 0]
    firsts = track.groupby(SENSOR_ID)[TIMESTAMP].min().to_numpy()
    np.testing.assert_allclose(np.diff(firsts), 0.5 / 3, atol=1e-6)  # float64 near 1.7e9 s


def test_a_track_seen_by_two_sensors_is_degraded_stream_by_stream(tracks: pd.DataFrame) -> None:
    # Two sensors of one track (the second 0.25 s later): resampling interpolates each stream
    # in its own time, and interleaving keeps the views of the two apart.
    one = tracks[tracks["track_id"] == 0]
    both = pd.concat([one, one.assign(sensor_id=7, timestamp=one[TIMESTAMP] + 0.25)])
    resampled = degrade(both, BY_NAME["resample 2 s"], seed=1)
    for sensor, start in ((int(one[SENSOR_ID].iloc[0]), 0.0), (7, 0.25)):
        stream = resampled[resampled[SENSOR_ID] == sensor]
        np.testing.assert_allclose(np.diff(stream[TIMESTAMP]), 2.0)
        assert stream[TIMESTAMP].iloc[0] == one[TIMESTAMP].iloc[0] + start
        np.testing.assert_allclose(
            stream[ALTITUDE], np.interp(stream[TIMESTAMP] - start, one[TIMESTAMP], one[ALTITUDE])
        )
    interleaved = degrade(both, BY_NAME["2 sensors interleaved"], seed=1)
    assert interleaved.groupby(SENSOR_ID).size().index.tolist() == [
        *sorted([2 * int(one[SENSOR_ID].iloc[0]) + 1, 2 * int(one[SENSOR_ID].iloc[0]) + 2, 15, 16])
    ]


def test_late_pick_up_starts_each_track_where_it_says(tracks: pd.DataFrame) -> None:
    track = tracks[tracks["track_id"] == 1]
    altitude = track[ALTITUDE].to_numpy()
    top = float(altitude.max())
    # Where each track is first seen, as a share of its maximum: [low, high).
    for name, (low, high) in (
        ("picked up on the ascent", (0.5, 0.51)),
        ("picked up at apogee", (1.0, 1.0 + 1e-9)),
        ("picked up early on the descent", (0.79, 0.8 + 1e-9)),
    ):
        got = degrade(tracks, BY_NAME[name], seed=1)
        first = float(got[got["track_id"] == 1][ALTITUDE].iloc[0])
        assert low * top <= first < high * top, (name, first, top)


def test_the_suite_is_reproducible_by_seed(tracks: pd.DataFrame) -> None:
    condition = BY_NAME["lose 30 % of rows"]
    pd.testing.assert_frame_equal(degrade(tracks, condition, 3), degrade(tracks, condition, 3))
    assert len(degrade(tracks, condition, 3)) != len(degrade(tracks, condition, 4))


def test_the_table_scores_a_bundle_under_each_condition(trained_bundle: Path) -> None:
    service = ModelInferenceService(trained_bundle / "models")
    frame = pd.read_csv(trained_bundle / "data" / "test.csv")
    conditions: list[Condition] = [
        BY_NAME["intact"],
        BY_NAME["resample 2 s"],
        BY_NAME["picked up early on the descent"],
    ]
    table = robustness(service, frame, seed=0, conditions=conditions)
    assert [row["condition"] for row in table] == [c.name for c in conditions]
    intact, slow, late = table
    # Seen from launch, only each stream's first rows (before 1 km of climb) are unsure of
    # their maximum; first seen falling, every row is.
    assert 0 < intact["not_established"] < 0.05 and late["not_established"] == 1.0
    assert intact["interval_s"] == pytest.approx(0.5) and slow["interval_s"] == 2.0
    assert slow["rows"] == pytest.approx(intact["rows"] / 4, rel=0.01)
    for row in table[:2]:
        assert 0.0 <= row["f1"] <= 1.0 and row["streams"] == frame["track_id"].nunique()
        if row["onset_error_max_s"] is not None:
            samples = row["onset_error_max_s"] / row["interval_s"]
            assert row["onset_error_max_samples"] == pytest.approx(samples)
