"""Benchmark: how fast each simulator profile makes tracks and writes them.

Usage:
    python benchmarks/simulate_speed.py [--tracks 1000] [--repeats 3] [--record]

Prints, per profile, the median wall time over the repeats of simulating ``--tracks`` tracks
and of writing them to CSV, with rows per second. Run on an idle machine; quote medians.
``--record`` writes the table as run ``<tracks>`` of docs/results/simulate_speed.json.
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

import results as results_files  # benchmarks/results.py
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
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the results to docs/results/simulate_speed.json",
    )
    args = parser.parse_args()
    profiles = {}
    for profile in PROFILES:
        dataset, sim_s = timed(
            partial(simulate_dataset, profile, args.tracks, seed=1), args.repeats
        )
        rows = len(dataset.train) + len(dataset.test)
        with tempfile.TemporaryDirectory() as tmp:
            _, write_s = timed(partial(write_dataset, dataset, tmp), args.repeats)
            size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
        profiles[profile] = {
            "tracks": args.tracks,
            "rows": rows,
            "simulate_s": sim_s,
            "rows_per_s": round(rows / sim_s),
            "write_s": write_s,
            "megabytes": size,
        }
    results = {"tracks": args.tracks, "repeats": args.repeats, "profiles": profiles}
    print("\n".join(results_files.simulate_speed_lines(results)))
    if args.record:
        path = results_files.record("simulate_speed", str(args.tracks), results)
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
