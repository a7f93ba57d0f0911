"""Per-track random streams: a track's data depends on ``(seed, track_id)`` only.

Every track draws its randomness from its own stream, so a track is the same whether 30 or
30,000 tracks are simulated (and in whatever order or chunking), and runs are reproducible.
"""

from __future__ import annotations

import numpy as np


def track_rng(seed: int, track_id: int, *streams: int) -> np.random.Generator:
    """Return a random stream of one track: a function of ``(seed, track_id, *streams)`` only.

    ``streams`` tells apart independent uses within a track (the ballistic profile draws its
    parameters and its sensors from two streams).
    """
    key = (int(track_id), *streams)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw from ``[bounds[0], bounds[1])`` as a Python float."""
    return float(rng.uniform(bounds[0], bounds[1]))
