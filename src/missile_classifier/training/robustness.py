"""The degradation suite: the same held-out tracks scored intact and as deployed sensors see them.

A model trained on tracks sampled every 0.5 s by one sensor from launch meets, once deployed,
the same tracks at other rates, irregularly sampled, with rows lost at random and in bursts,
noisier, without intensity, biased, from several sensors interleaved, and picked up mid-flight.
Each :class:`Condition` turns intact labeled tracks into one of these shapes; the labels always
come from the intact track (a row is reentry iff its time is at or after the intact track's
onset), so every condition is scored against the same truth.

The suite is reproducible: every condition draws from its own generator seeded by the run's
seed and the condition's name.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from missile_classifier.columns import (
    ALTITUDE,
    INTENSITY,
    LABEL,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    STREAM_KEY,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.schema import frame_columns
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.training.metrics import classification_metrics, track_metrics

#: Columns interpolated in time when a track is resampled.
_MEASURED: Final = (LATITUDE, LONGITUDE, ALTITUDE, INTENSITY)
#: Standard deviation of the challenge data's position noise, degrees (docs/simulator.md).
BASE_POSITION_NOISE_DEG: Final = 0.010

Degrade = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


@dataclass(frozen=True)
class Condition:
    """One way deployed sensors see a track.

    Attributes:
        name: Short name, unique in the suite.
        group: sampling, loss, noise, intensity, sensors or pick-up.
        degrade: Intact labeled tracks (one stream each, time-ordered) → degraded tracks.
        interval_s: Typical time between a stream's rows afterwards (for the onset tolerance
            and the targets); ``None`` keeps the data's own.
        observable: Whether a track's onset can be known from what this condition leaves: a
            track first seen after its apogee cannot know its maximum, so its onset (half of
            that maximum) is not observable.
    """

    name: str
    group: str
    degrade: Degrade
    interval_s: float | None = None
    observable: bool = True


def onsets(frame: pd.DataFrame) -> pd.Series:
    """Time of each track's first reentry row (NaN for a track without one), by track id."""
    positive = frame[frame[LABEL] == 1]
    first = positive.groupby(TRACK_ID)[TIMESTAMP].min()
    return first.reindex(frame[TRACK_ID].unique())


def relabel(degraded: pd.DataFrame, onset: pd.Series) -> pd.DataFrame:
    """Labels from the intact tracks: reentry from the intact onset on."""
    at = degraded[TRACK_ID].map(onset).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        labels = (degraded[TIMESTAMP].to_numpy() >= at).astype(np.int64)
    return degraded.assign(**{LABEL: labels})


def _per_stream(
    frame: pd.DataFrame, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """``change`` applied to each stream (a track seen by one sensor: one time series)."""
    parts = [change(stream) for _, stream in frame.groupby(list(STREAM_KEY), sort=False)]
    return pd.concat(parts, ignore_index=True)


def _at_times(track: pd.DataFrame, times: np.ndarray) -> pd.DataFrame:
    """The track's measurements interpolated at ``times`` (within its time span)."""
    t = track[TIMESTAMP].to_numpy()
    times = times[(times >= t[0]) & (times <= t[-1])]
    columns: dict[str, Any] = {TIMESTAMP: times}
    for name in _MEASURED:
        values = track[name].to_numpy(dtype=np.float64)
        known = ~np.isnan(values)
        columns[name] = np.interp(times, t[known], values[known]) if known.any() else np.nan
    columns[TRACK_ID] = track[TRACK_ID].iloc[0]
    columns[SENSOR_ID] = track[SENSOR_ID].iloc[0]
    return pd.DataFrame(columns)


def resample(interval_s: float) -> Degrade:
    """Rows every ``interval_s`` seconds from each track's first, interpolated in time."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        def one(track: pd.DataFrame) -> pd.DataFrame:
            t = track[TIMESTAMP].to_numpy()
            steps = int(np.floor((t[-1] - t[0]) / interval_s + 1e-9))
            return _at_times(track, t[0] + interval_s * np.arange(steps + 1))

        return _per_stream(frame, one)

    return degrade


def irregular(low_s: float, high_s: float) -> Degrade:
    """Rows at random steps drawn uniformly from ``[low_s, high_s]`` seconds, interpolated."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        def one(track: pd.DataFrame) -> pd.DataFrame:
            t = track[TIMESTAMP].to_numpy()
            n = int((t[-1] - t[0]) / low_s) + 2
            steps = np.concatenate([[0.0], np.cumsum(rng.uniform(low_s, high_s, n))])
            return _at_times(track, t[0] + steps)

        return _per_stream(frame, one)

    return degrade


def lose_rows(share: float) -> Degrade:
    """Each row lost with probability ``share`` (a track's first row is kept)."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        keep = rng.random(len(frame)) >= share
        keep[_first_rows(frame)] = True
        return frame[keep].reset_index(drop=True)

    return degrade


def lose_bursts(gaps_per_track: int, low_s: float, high_s: float) -> Degrade:
    """``gaps_per_track`` gaps of ``[low_s, high_s]`` seconds at random times, per track."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        def one(track: pd.DataFrame) -> pd.DataFrame:
            t = track[TIMESTAMP].to_numpy()
            lost = np.zeros(len(t), dtype=bool)
            for _ in range(gaps_per_track):
                start = rng.uniform(t[0], t[-1])
                lost |= (t >= start) & (t < start + rng.uniform(low_s, high_s))
            lost[0] = False
            return track[~lost]

        return _per_stream(frame, one)

    return degrade


def add_noise(column: str, sigma: float) -> Degrade:
    """Gaussian noise of ``sigma`` added to a column (both position columns for ``"position"``)."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        names = (LATITUDE, LONGITUDE) if column == "position" else (column,)
        noisy = frame.copy()
        for name in names:
            noisy[name] = frame[name] + rng.normal(0.0, sigma, len(frame))
        noisy[LATITUDE] = noisy[LATITUDE].clip(-90.0, 90.0)
        return noisy

    return degrade


def drop_intensity(share: float) -> Degrade:
    """The intensity missing on each row with probability ``share`` (1: on every row)."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        missing = rng.random(len(frame)) < share
        return frame.assign(**{INTENSITY: frame[INTENSITY].mask(missing)})

    return degrade


def bias(altitude_m: float, position_deg: float, intensity: float) -> Degrade:
    """A constant offset on every measurement of the sensor."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return frame.assign(
            **{
                ALTITUDE: frame[ALTITUDE] + altitude_m,
                LATITUDE: (frame[LATITUDE] + position_deg).clip(-90.0, 90.0),
                LONGITUDE: frame[LONGITUDE] + position_deg,
                INTENSITY: frame[INTENSITY] + intensity,
            }
        )

    return degrade


def sensors(count: int, interval_s: float) -> Degrade:
    """``count`` sensors see each stream, each every ``interval_s`` s, offset in time from each
    other by ``interval_s / count``, each with its own noise (30 m altitude, 0.01° position);
    stream sensor ``s``'s views are sensors ``s × count + 1 … s × count + count``."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        def one(track: pd.DataFrame) -> pd.DataFrame:
            t = track[TIMESTAMP].to_numpy()
            seen = []
            for k in range(count):
                start = t[0] + k * interval_s / count
                times = start + interval_s * np.arange(int((t[-1] - start) / interval_s) + 1)
                sensor = int(track[SENSOR_ID].iloc[0]) * count + k + 1
                view = _at_times(track, times).assign(**{SENSOR_ID: sensor})
                view[ALTITUDE] += rng.normal(0.0, 30.0, len(view))
                view[LATITUDE] = (view[LATITUDE] + rng.normal(0.0, 0.01, len(view))).clip(-90, 90)
                view[LONGITUDE] += rng.normal(0.0, 0.01, len(view))
                seen.append(view)
            return pd.concat(seen, ignore_index=True)

        return _per_stream(frame, one)

    return degrade


def pick_up(where: str) -> Degrade:
    """Each stream first seen late: halfway up the ascent, at apogee, or early on the descent
    (once it fell to 80 % of its maximum, before the challenge onset at 50 %)."""

    def degrade(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        def one(track: pd.DataFrame) -> pd.DataFrame:
            altitude = track[ALTITUDE].to_numpy()
            top = int(np.argmax(altitude))
            if where == "ascent":
                first = int(np.flatnonzero(altitude >= 0.5 * altitude[top])[0])
            elif where == "apogee":
                first = top
            else:
                after = np.flatnonzero(altitude[top:] <= 0.8 * altitude[top])
                first = top + int(after[0]) if len(after) else len(altitude) - 1
            return track.iloc[first:]

        return _per_stream(frame, one)

    return degrade


def _first_rows(frame: pd.DataFrame) -> np.ndarray:
    key = frame[list(STREAM_KEY)].to_numpy()
    first = np.ones(len(frame), dtype=bool)
    first[1:] = np.any(key[1:] != key[:-1], axis=1)
    return first


def _intact(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame


#: The conditions every model is measured under (challenge data: 0.5 s, one sensor).
CONDITIONS: Final = (
    Condition("intact", "reference", _intact),
    Condition("resample 0.25 s", "sampling", resample(0.25), 0.25),
    Condition("resample 1 s", "sampling", resample(1.0), 1.0),
    Condition("resample 2 s", "sampling", resample(2.0), 2.0),
    Condition("resample 4 s", "sampling", resample(4.0), 4.0),
    Condition("irregular 0.2-3 s", "sampling", irregular(0.2, 3.0), 1.6),
    Condition("lose 10 % of rows", "loss", lose_rows(0.1)),
    Condition("lose 30 % of rows", "loss", lose_rows(0.3)),
    Condition("lose 50 % of rows", "loss", lose_rows(0.5), 1.0),
    Condition("lose bursts of 5-60 s", "loss", lose_bursts(3, 5.0, 60.0)),
    Condition("altitude noise 10 m", "noise", add_noise(ALTITUDE, 10.0)),
    Condition("altitude noise 30 m", "noise", add_noise(ALTITUDE, 30.0)),
    Condition("altitude noise 100 m", "noise", add_noise(ALTITUDE, 100.0)),
    Condition(
        "position noise x3", "noise", add_noise("position", np.sqrt(8.0) * BASE_POSITION_NOISE_DEG)
    ),
    Condition("intensity missing", "intensity", drop_intensity(1.0)),
    Condition("intensity missing on 50 %", "intensity", drop_intensity(0.5)),
    Condition("sensor bias", "noise", bias(300.0, 0.02, 0.05)),
    Condition("2 sensors interleaved", "sensors", sensors(2, 0.5), 0.5),
    Condition("3 sensors interleaved", "sensors", sensors(3, 0.5), 0.5),
    Condition("picked up on the ascent", "pick-up", pick_up("ascent")),
    Condition("picked up at apogee", "pick-up", pick_up("apogee")),
    Condition("picked up early on the descent", "pick-up", pick_up("descent"), observable=False),
)


def _seed(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def median_interval(frame: pd.DataFrame) -> float:
    """The median time between consecutive rows of a stream."""
    steps = frame.groupby(list(STREAM_KEY))[TIMESTAMP].diff().dropna()
    return float(steps.median()) if len(steps) else float("nan")


def degrade(frame: pd.DataFrame, condition: Condition, seed: int) -> pd.DataFrame:
    """``frame``'s tracks under ``condition``, labeled from the intact tracks, in stream order."""
    intact = frame.sort_values([TRACK_ID, SENSOR_ID, TIMESTAMP]).reset_index(drop=True)
    degraded = condition.degrade(intact, _seed(seed, condition.name))
    degraded = relabel(degraded, onsets(intact))
    return degraded.sort_values([TRACK_ID, SENSOR_ID, TIMESTAMP]).reset_index(drop=True)


def score_condition(
    service: ModelInferenceService, frame: pd.DataFrame, condition: Condition, seed: int
) -> dict[str, Any]:
    """F1, onset error and flicker of ``service`` on ``frame`` under ``condition``."""
    degraded = degrade(frame, condition, seed)
    scores = service.predict_batch(frame_columns(degraded))
    y = degraded[LABEL].to_numpy()
    interval = condition.interval_s or median_interval(degraded)
    rows = classification_metrics(y, scores.probability, service.threshold)
    tracks = track_metrics(
        degraded[TRACK_ID].to_numpy(),
        degraded[SENSOR_ID].to_numpy(),
        degraded[TIMESTAMP].to_numpy(),
        y,
        scores.reentry_phase,
        tolerance_s=interval + 0.5,
    )
    error = tracks["onset_error_s"]
    return {
        "condition": condition.name,
        "group": condition.group,
        "observable": condition.observable,
        "rows": rows["rows"],
        "streams": tracks["streams"],
        "interval_s": interval,
        "f1": rows["f1"],
        "onset_error_median_s": error["median_abs"],
        "onset_error_max_s": error["max_abs"],
        "onset_error_median_samples": _samples(error["median_abs"], interval),
        "onset_error_max_samples": _samples(error["max_abs"], interval),
        "within_tolerance": tracks["within_tolerance"],
        "missed_onsets": tracks["missed_onsets"],
        "false_onsets": tracks["false_onsets"],
        "flicker": tracks["flicker"]["total"],
        "quarantined": scores.quarantined,
        # Rows whose answer says the stream never saw the climb to its maximum.
        "not_established": float(np.mean(~scores.maximum_established)) if len(y) else 0.0,
    }


def _samples(seconds: float | None, interval: float) -> float | None:
    return None if seconds is None else seconds / interval


def robustness(
    service: ModelInferenceService,
    frame: pd.DataFrame,
    *,
    seed: int = 0,
    conditions: Sequence[Condition] = CONDITIONS,
) -> list[dict[str, Any]]:
    """The suite's table: one row of metrics per condition (see :func:`score_condition`)."""
    return [score_condition(service, frame, c, seed) for c in conditions]
