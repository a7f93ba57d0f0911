"""Benchmark: how fast each simulator profile makes tracks and writes them.

Usage:
    python benchmarks/simulate_speed.py [--tracks 1000] [--repeats 3]

Prints, per profile, the median wall time over the repeats of simulating ``--tracks`` tracks
and of writing them to CSV, with rows per second. Run on an idle machine; quote medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from missile_classifier.simulation.dataset import PROFILES, simulate_dataset, write_dataset

T = TypeVar("T")


def timed(fn: Callable[[], T], repeats: int) -> tuple[T, float]:
    """Run ``fn`` ``repeats`` times; return its last result and the median seconds."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'profile':<10} {'tracks':>7} {'rows':>10} {'simulate s':>11} {'rows/s':>11} "
        f"{'write s':>8} {'MB':>6}"
    )
    for profile in PROFILES:
        dataset, sim_s = timed(
            partial(simulate_dataset, profile, args.tracks, seed=1), args.repeats
        )
        rows = len(dataset.train) + len(dataset.test)
        with tempfile.TemporaryDirectory() as tmp:
            _, write_s = timed(partial(write_dataset, dataset, tmp), args.repeats)
            size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
        print(
            f"{profile:<10} {args.tracks:>7} {rows:>10,} {sim_s:>11.2f} {rows / sim_s:>11,.0f} "
            f"{write_s:>8.2f} {size:>6.0f}"
        )


if __name__ == "__main__":
    main()
