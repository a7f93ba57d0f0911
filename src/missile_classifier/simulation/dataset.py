"""Datasets: simulate a profile's tracks, split them into train and test, write the files.

``missile-classifier simulate`` runs :func:`simulate_dataset` then :func:`write_dataset`:
``train.csv`` and ``test.csv`` on disjoint tracks, a ``manifest.json`` saying how they were made,
and for ``ballistic`` a ``tracks.csv`` with each track's ground truth.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from missile_classifier import __version__
from missile_classifier.columns import (
    ALTITUDE,
    INTENSITY,
    LABEL,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.simulation.ballistic.config import BallisticConfig
from missile_classifier.simulation.ballistic.simulator import simulate_ballistic
from missile_classifier.simulation.challenge import ChallengeConfig, simulate_challenge

if TYPE_CHECKING:
    import pandas as pd

Profile = Literal["challenge", "ballistic"]
PROFILES: Final[tuple[Profile, ...]] = ("challenge", "ballistic")

#: Decimal places written per column: below every noise level in the data, and it keeps files
#: about a third smaller than full float64 text.
CSV_DECIMALS: Final = {TIMESTAMP: 3, LATITUDE: 8, LONGITUDE: 8, ALTITUDE: 4, INTENSITY: 7}


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
    #: The profile's settings (``ChallengeConfig`` or ``BallisticConfig``), for the manifest.
    config: ChallengeConfig | BallisticConfig | None = None


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
    config: ChallengeConfig | BallisticConfig
    if profile == "challenge":
        config = ChallengeConfig()
        frame = simulate_challenge(all_ids, seed, config, progress=progress)
    elif profile == "ballistic":
        config = BallisticConfig(interface_altitude_m=interface_altitude_m)
        result = simulate_ballistic(all_ids, seed, config, progress=progress)
        frame, tracks = result.observations, result.tracks
    else:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    in_test = frame[TRACK_ID].isin(test_ids).to_numpy()
    train = frame.loc[~in_test].reset_index(drop=True)
    test = frame.loc[in_test].reset_index(drop=True)
    return Dataset(profile, seed, train, test, tracks, config)


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
    if dataset.config is not None:  # what the rows were simulated with, both profiles
        info["config"] = asdict(dataset.config)
    return info
