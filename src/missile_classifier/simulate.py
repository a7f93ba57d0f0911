"""Synthetic track data: the ``challenge`` profile and dataset writing for every profile.

``challenge`` reproduces the public coding-challenge data measured in DESIGN §1: a noise-free
altitude trapezoid (30 % ascent, 40 % plateau, 30 % descent), a straight ground track with
Gaussian position noise, an intensity proportional to altitude, and the label rule
``descending and altitude < ½ × track maximum``. The physics-based ``ballistic`` profile lives in
:mod:`missile_classifier.ballistic`.

Every track draws its randomness from its own stream, seeded by ``(seed, track_id)``, so a track
is the same whether 30 or 30,000 tracks are simulated, and runs are reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from missile_classifier import __version__
from missile_classifier.progress import progress_bar
from missile_classifier.schema import (
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

if TYPE_CHECKING:
    import pandas as pd

Profile = Literal["challenge", "ballistic"]
PROFILES: Final[tuple[Profile, ...]] = ("challenge", "ballistic")

#: Decimal places written per column: below every noise level in the data, and it keeps files
#: about a third smaller than full float64 text.
CSV_DECIMALS: Final = {TIMESTAMP: 3, LATITUDE: 8, LONGITUDE: 8, ALTITUDE: 4, INTENSITY: 7}


def track_rng(seed: int, track_id: int, *streams: int) -> np.random.Generator:
    """Return a random stream of one track: a function of ``(seed, track_id, *streams)`` only.

    ``streams`` tells apart independent uses within a track (the ballistic profile draws its
    parameters and its sensors from two streams).
    """
    key = (int(track_id), *streams)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class ChallengeConfig:
    """Constants of the ``challenge`` profile, each measured on the public data (DESIGN §1)."""

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


def split_track_ids(n_tracks: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Split track ids ``0..n-1`` into train and test: the last ``round(n × fraction)`` go to test.

    Tracks are independent draws, so taking the last ones is as good as a random pick and keeps
    the layout of the public data (train 0–89, test 90–99). At least one track stays on each
    side when the fraction is strictly between 0 and 1 and there are two tracks or more.
    """
    if n_tracks < 1:
        raise ValueError(f"need at least one track, got {n_tracks}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction}")
    n_test = round(n_tracks * test_fraction)
    if test_fraction > 0 and n_tracks >= 2:
        n_test = min(max(n_test, 1), n_tracks - 1)
    ids = np.arange(n_tracks)
    return ids[: n_tracks - n_test], ids[n_tracks - n_test :]


@dataclass(frozen=True)
class Dataset:
    """A simulated dataset: labeled train and test rows on disjoint tracks, plus track facts."""

    profile: Profile
    seed: int
    train: pd.DataFrame
    test: pd.DataFrame
    #: One row per track with its ground truth (class, apogee, …); ``None`` for ``challenge``.
    tracks: pd.DataFrame | None = None


def simulate_dataset(
    profile: Profile,
    n_tracks: int,
    seed: int,
    *,
    test_fraction: float = 0.1,
    interface_altitude_m: float = 100_000.0,
    progress: bool = False,
) -> Dataset:
    """Simulate ``n_tracks`` tracks of a profile and split them into train and test.

    Args:
        profile: ``challenge`` (reproduces the public data) or ``ballistic`` (physics).
        n_tracks: Number of tracks, ids ``0..n_tracks-1``.
        seed: Seed of the run.
        test_fraction: Share of tracks written to ``test.csv``.
        interface_altitude_m: Label threshold of the ``ballistic`` profile.
        progress: Draw a progress bar on stderr.

    Returns:
        The dataset; every row of both frames is labeled.
    """
    _, test_ids = split_track_ids(n_tracks, test_fraction)
    all_ids = np.arange(n_tracks)
    tracks: pd.DataFrame | None = None
    if profile == "challenge":
        frame = simulate_challenge(all_ids, seed, progress=progress)
    elif profile == "ballistic":
        from missile_classifier.ballistic import BallisticConfig, simulate_ballistic

        config = BallisticConfig(interface_altitude_m=interface_altitude_m)
        result = simulate_ballistic(all_ids, seed, config, progress=progress)
        frame, tracks = result.observations, result.tracks
    else:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    in_test = frame[TRACK_ID].isin(test_ids).to_numpy()
    train = frame.loc[~in_test].reset_index(drop=True)
    test = frame.loc[in_test].reset_index(drop=True)
    return Dataset(profile, seed, train, test, tracks)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write track rows as CSV quickly (Arrow's writer is ~6× faster than pandas here).

    Missing intensities become empty cells, which every CSV reader takes as missing.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rounded = frame.round({c: d for c, d in CSV_DECIMALS.items() if c in frame.columns})
    table = pa.Table.from_pandas(rounded, preserve_index=False)
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))


def write_dataset(dataset: Dataset, output_dir: str | Path) -> dict[str, Path]:
    """Write ``train.csv``, ``test.csv``, ``manifest.json`` (and ``tracks.csv``) into a folder.

    Returns:
        The written files by name.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {"train.csv": out / "train.csv", "test.csv": out / "test.csv"}
    write_csv(dataset.train, written["train.csv"])
    write_csv(dataset.test, written["test.csv"])
    if dataset.tracks is not None:
        written["tracks.csv"] = out / "tracks.csv"
        dataset.tracks.to_csv(written["tracks.csv"], index=False)
    written["manifest.json"] = out / "manifest.json"
    written["manifest.json"].write_text(json.dumps(manifest(dataset), indent=2) + "\n")
    return written


def manifest(dataset: Dataset) -> dict[str, object]:
    """Describe a dataset: how it was made and what it holds (written beside the CSVs)."""

    def summary(frame: pd.DataFrame) -> dict[str, object]:
        return {
            "rows": len(frame),
            "tracks": int(frame[TRACK_ID].nunique()),
            "streams": int(frame.groupby([TRACK_ID, SENSOR_ID]).ngroups) if len(frame) else 0,
            "positive_fraction": round(float(frame[LABEL].mean()), 4) if len(frame) else None,
        }

    info: dict[str, object] = {
        "generator": f"missile-classifier {__version__}",
        "profile": dataset.profile,
        "seed": dataset.seed,
        "train": summary(dataset.train),
        "test": summary(dataset.test),
    }
    if dataset.profile == "challenge":
        info["config"] = asdict(ChallengeConfig())
    return info
