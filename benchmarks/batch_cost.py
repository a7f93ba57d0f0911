"""Benchmark: the cost of a /batch_predict request is bounded by its size, however it is split.

Usage:
    python benchmarks/batch_cost.py --model models [--points 10000] [--repeat 5] [--record]

Starts ``missile-classifier serve`` (memory store, 1 worker) on a free port and posts the same
points twice over: as ``--points / 1000`` tracks, and with no ``track_id`` (one stream per
point, each classified alone). Prints the time of each request (median and spread of
``--repeat`` runs, one after the other in one sitting) and the ratio trackless / tracks;
``--record`` writes them as run ``<points>`` of docs/results/batch_cost.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

import results as results_files  # benchmarks/results.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from server import Server  # the tests' helper, reused


def samples(n: int, tracks: bool) -> list[dict[str, Any]]:
    """``n`` plausible points: 1,000 per track, 0.5 s apart, climbing 400 m per step."""
    out = []
    for i in range(n):
        point: dict[str, Any] = {
            "timestamp": 1_731_308_400.0 + 0.5 * (i % 1000),
            "latitude": 50.0,
            "longitude": 8.0 + 0.001 * (i % 1000),
            "altitude": 1_000.0 + 400.0 * (i % 1000),
            "radiometric_intensity": 0.1,
        }
        if tracks:
            point["track_id"] = i // 1000
        out.append(point)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--record", action="store_true", help="write the results to docs/results/batch_cost.json"
    )
    args = parser.parse_args()
    bodies = {
        "in tracks": {"samples": samples(args.points, tracks=True)},
        "without track_id": {"samples": samples(args.points, tracks=False)},
    }
    env = {"MODEL_PATH": str(args.model.resolve()), "REDIS_URL": ""}
    with tempfile.TemporaryDirectory() as scratch, Server(env, Path(scratch) / "log") as server:
        session = requests.Session()
        times: dict[str, list[float]] = {name: [] for name in bodies}
        session.post(server.url + "/batch_predict", json=bodies["in tracks"], timeout=60)  # warm
        for _ in range(args.repeat):  # alternate, so drift affects both alike
            for name, body in bodies.items():
                start = time.perf_counter()
                response = session.post(server.url + "/batch_predict", json=body, timeout=60)
                times[name].append(time.perf_counter() - start)
                response.raise_for_status()
    ratio = statistics.median(times["without track_id"]) / statistics.median(times["in tracks"])
    results = {
        "points": args.points,
        "requests": {
            name: {
                "times_s": values,
                "median_s": statistics.median(values),
                "min_s": min(values),
                "max_s": max(values),
                "runs": args.repeat,
            }
            for name, values in times.items()
        },
        "ratio": ratio,
    }
    print("\n".join(results_files.batch_cost_lines(results)))
    if args.record:
        print(f"recorded {results_files.record('batch_cost', str(args.points), results)}")


if __name__ == "__main__":
    main()
