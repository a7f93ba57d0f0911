"""The ``challenge`` profile: tracks shaped like the public coding-challenge data.

It reproduces what was measured on the public data (docs/simulator.md): a noise-free altitude
trapezoid (30 % ascent, 40 % plateau, 30 % descent), a straight ground track with Gaussian
position noise, an intensity proportional to altitude, and the label rule
``descending and altitude < ½ × track maximum``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from missile_classifier.columns import (
    ALTITUDE,
    COLUMNS,
    INTENSITY,
    LABEL,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.progress import progress_bar
from missile_classifier.simulation.rng import track_rng

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ChallengeConfig:
    """Constants of the ``challenge`` profile, each measured on the public data."""

    epoch: float = 1731308400.0
    track_spacing_s: float = 600.0
    sample_interval_s: float = 0.5
    sensor_id: int = 3
    rows: tuple[int, int] = (600, 1200)
    max_altitude_m: tuple[float, float] = (101_000.0, 120_000.0)
    #: Climb per sample; (rows, maximum) pairs outside it are drawn again, as the public data's
    #: rates never leave this range although its rows and maxima alone would allow 280–680 m.
    climb_per_sample_m: tuple[float, float] = (315.0, 670.0)
    #: Ascent and descent each take this share of a track's rows; the plateau the rest (40 %).
    ramp_fraction: float = 0.3
    altitude_noise_m: float = 0.01
    start: tuple[float, float] = (64.13, -21.90)
    end: tuple[float, float] = (40.02, -105.29)
    position_noise_deg: float = 0.010
    #: Intensity per metre of altitude: 0.833 at 100 km.
    intensity_per_m: float = 0.833 / 100_000.0
    intensity_noise: float = 0.010


def challenge_altitude(rows: int, max_altitude: float, ramp_fraction: float = 0.3) -> np.ndarray:
    """Noise-free trapezoid altitude of one challenge track, as in the public data.

    With ``k = floor(ramp_fraction × rows)``: rows ``0..k-1`` climb linearly from 0 to the
    maximum (``k-1`` steps), the plateau holds it, and the last ``k`` rows descend in ``k`` equal
    steps to 0, so the descent has one step more than the ascent (measured on public track 0:
    804 rows, 240 ascent steps, 241 descent steps).
    """
    k = int(ramp_fraction * rows)
    altitude = np.full(rows, max_altitude)
    altitude[:k] = max_altitude * np.arange(k) / (k - 1)
    altitude[rows - k :] = max_altitude * (1.0 - np.arange(1, k + 1) / k)
    return altitude


def challenge_labels(
    rows: int, altitude: np.ndarray, max_altitude: float, ramp_fraction: float = 0.3
) -> np.ndarray:
    """Label rule of the public data: descending and below half the track's maximum."""
    descending = np.arange(rows) >= rows - int(ramp_fraction * rows)
    return (descending & (altitude < 0.5 * max_altitude)).astype(np.int64)


def _challenge_track(track_id: int, seed: int, cfg: ChallengeConfig) -> dict[str, np.ndarray]:
    rng = track_rng(seed, track_id)
    while True:
        rows = int(rng.integers(cfg.rows[0], cfg.rows[1] + 1))
        peak = float(rng.uniform(*cfg.max_altitude_m))
        climb = peak / (int(cfg.ramp_fraction * rows) - 1)
        if cfg.climb_per_sample_m[0] <= climb <= cfg.climb_per_sample_m[1]:
            break
    altitude = challenge_altitude(rows, peak, cfg.ramp_fraction)
    progress = np.arange(rows) / (rows - 1)
    noise = rng.normal(size=(4, rows))
    return {
        TIMESTAMP: cfg.epoch
        + cfg.track_spacing_s * track_id
        + cfg.sample_interval_s * np.arange(rows),
        TRACK_ID: np.full(rows, track_id, dtype=np.int64),
        SENSOR_ID: np.full(rows, cfg.sensor_id, dtype=np.int64),
        LATITUDE: cfg.start[0]
        + (cfg.end[0] - cfg.start[0]) * progress
        + cfg.position_noise_deg * noise[0],
        LONGITUDE: cfg.start[1]
        + (cfg.end[1] - cfg.start[1]) * progress
        + cfg.position_noise_deg * noise[1],
        ALTITUDE: altitude + cfg.altitude_noise_m * noise[2],
        INTENSITY: cfg.intensity_per_m * altitude + cfg.intensity_noise * noise[3],
        LABEL: challenge_labels(rows, altitude, peak, cfg.ramp_fraction),
    }


def simulate_challenge(
    track_ids: Sequence[int] | np.ndarray,
    seed: int,
    config: ChallengeConfig | None = None,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulate labeled tracks of the ``challenge`` profile.

    Args:
        track_ids: Ids of the tracks to simulate; each sets the track's start time.
        seed: Seed of the run; a track depends only on ``(seed, track_id)``.
        config: Profile constants; the defaults reproduce the public data.
        progress: Draw a progress bar on stderr.

    Returns:
        Rows in the schema's column order, sorted by track and time.
    """
    import pandas as pd

    cfg = config or ChallengeConfig()
    parts: list[dict[str, np.ndarray]] = []
    with progress_bar(len(track_ids), "Simulating challenge tracks", enabled=progress) as advance:
        for track_id in track_ids:
            parts.append(_challenge_track(int(track_id), seed, cfg))
            advance()
    if not parts:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="int64" if c in (TRACK_ID, SENSOR_ID, LABEL) else "float64")
                for c in COLUMNS
            }
        )
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in COLUMNS})
