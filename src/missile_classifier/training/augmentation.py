"""Training-time augmentation: each training track also seen as a deployed sensor might see it.

The challenge data is sampled every 0.5 s by one sensor from launch; deployed, the same tracks
arrive at other rates, irregularly, with rows lost, noisier, biased, without intensity and
picked up late (the robustness suite, :mod:`.robustness`, measures each). A model that never
saw those shapes in training does not generalise to them, so every training (and validation)
track gets ``copies`` degraded copies, each drawn from :func:`random_view`, labeled from the
intact track (a row is reentry from the intact track's onset on) and given a track id of its own.

Pick-up after apogee is left out: such a stream cannot know its maximum, so its onset cannot be
learned from it (the answer says so instead; see the service's ``maximum_established``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from missile_classifier.columns import ALTITUDE, TIMESTAMP, TRACK_ID
from missile_classifier.training import robustness as r

#: Sampling intervals a copy is resampled at (drawn log-uniformly), seconds: the range the
#: robustness suite measures.
INTERVAL_RANGE_S: Final = (0.25, 4.0)


def random_view(rng: np.random.Generator) -> list[r.Degrade]:
    """One random way a deployed sensor sees a track: the degradations to apply, in order."""
    steps: list[r.Degrade] = []
    pick = rng.random()
    if pick < 0.5:
        low, high = np.log(INTERVAL_RANGE_S)
        steps.append(r.resample(float(np.exp(rng.uniform(low, high)))))
    elif pick < 0.7:
        steps.append(r.irregular(0.2, 3.0))
    if rng.random() < 0.5:
        steps.append(r.lose_rows(float(rng.uniform(0.0, 0.5))))
    if rng.random() < 0.3:
        steps.append(r.lose_bursts(int(rng.integers(1, 4)), 5.0, 60.0))
    if rng.random() < 0.5:
        steps.append(r.add_noise(ALTITUDE, float(rng.uniform(0.0, 100.0))))
    if rng.random() < 0.3:
        extra = float(rng.uniform(0.0, np.sqrt(8.0))) * r.BASE_POSITION_NOISE_DEG
        steps.append(r.add_noise("position", extra))
    if rng.random() < 0.3:
        steps.append(r.drop_intensity(float(rng.choice([0.5, 1.0]))))
    if rng.random() < 0.2:
        offset = rng.uniform(-1.0, 1.0, 3)
        steps.append(r.bias(300.0 * offset[0], 0.02 * offset[1], 0.05 * offset[2]))
    if rng.random() < 0.25:
        steps.append(r.pick_up(str(rng.choice(["ascent", "apogee"]))))
    return steps


def augment(frame: pd.DataFrame, copies: int, seed: int) -> pd.DataFrame:
    """``frame``'s labeled tracks, then ``copies`` degraded copies of each with new track ids.

    Args:
        frame: Labeled tracks (one stream per track, as simulated).
        copies: Degraded copies per track (0: ``frame`` as it is).
        seed: Seed of the random views.
    """
    if copies == 0:
        return frame
    rng = np.random.default_rng(seed)
    intact = frame.sort_values([TRACK_ID, TIMESTAMP]).reset_index(drop=True)
    onset = r.onsets(intact)
    next_id = int(intact[TRACK_ID].max()) + 1
    parts = [intact]
    for _ in range(copies):
        for _, track in intact.groupby(TRACK_ID, sort=True):
            view = _apply(track, random_view(rng), rng)
            if view.empty:
                continue
            view = r.relabel(view, onset)
            parts.append(view.assign(**{TRACK_ID: next_id}))
            next_id += 1
    return pd.concat(parts, ignore_index=True)


def _apply(
    track: pd.DataFrame, steps: Sequence[r.Degrade], rng: np.random.Generator
) -> pd.DataFrame:
    view = track
    for step in steps:
        view = step(view, rng)
    return view
