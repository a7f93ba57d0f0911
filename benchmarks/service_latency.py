"""Benchmark: latency and throughput of the running REST service, measured from a client.

Usage:
    python benchmarks/service_latency.py --model models [--requests 500] [--redis] [--runs 1]
        [--record]

Starts ``missile-classifier serve`` on a free port (memory store, 1 worker; with ``--redis``
a private redis-server and 2 workers), then measures from one client over HTTP keep-alive:
``/predict`` with a track (stream mode, history in the store), ``/predict`` without one, and
``/batch_predict`` with 1,000 samples. Prints median and 95th-percentile latency and rows/s,
``--runs`` times in a row. ``--record`` writes, per endpoint, each run's median and p95 and the
median and range of the runs' medians (what the README quotes) as run ``memory`` or ``redis``
of docs/results/service_latency.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

import results as results_files  # benchmarks/results.py

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_server import RedisServer  # the tests' helpers, reused
from server import Server


def timed(session: requests.Session, url: str, bodies: Sequence[Mapping[str, Any]]) -> list[float]:
    """Seconds per request, each checked for a 200."""
    times = []
    for body in bodies:
        start = time.perf_counter()
        response = session.post(url, json=body, timeout=30)
        times.append(time.perf_counter() - start)
        response.raise_for_status()
    return times


def report(name: str, times: list[float], rows_per_request: int = 1) -> tuple[float, float]:
    """Print median / p95 latency and throughput; return median and p95 in ms."""
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    median = statistics.median(ordered)
    print(
        f"{name:<28} median {median * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms  "
        f"{rows_per_request / median:>10,.0f} rows/s"
    )
    return median * 1e3, p95 * 1e3


def summary(medians: list[float], p95s: list[float], rows_per_request: int) -> dict[str, Any]:
    """One endpoint over the runs: each run's median and p95, the median and range of medians."""
    median = statistics.median(medians)
    return {
        "run_medians_ms": medians,
        "median_ms": median,
        "min_ms": min(medians),
        "max_ms": max(medians),
        "p95_ms": p95s,
        "rows_per_request": rows_per_request,
        "rows_per_s": rows_per_request / (median / 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--redis", action="store_true")
    parser.add_argument("--runs", type=int, default=1, help="measure this many times in a row")
    parser.add_argument(
        "--record",
        action="store_true",
        help="write the results to docs/results/service_latency.json",
    )
    args = parser.parse_args()
    n = args.requests
    stream = [
        {
            "timestamp": 1.7e9 + 0.5 * i,
            "track_id": 1,
            "sensor_id": 3,
            "latitude": 50.0,
            "longitude": 8.0 + 1e-4 * i,
            "altitude": 1_000.0 * i,
            "radiometric_intensity": 0.1,
        }
        for i in range(n)
    ]
    single = [{"latitude": 50.0, "longitude": 8.0, "altitude": 1_000.0 * i} for i in range(n)]
    batch = [{"samples": [{**p, "track_id": 1000 + k} for p in stream[:1000]]} for k in range(20)]
    measured: dict[str, tuple[list[float], list[float]]] = {
        key: ([], []) for key in ("predict_stream", "predict_single", "batch_predict")
    }
    store = "memory, 1 worker"
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer().start() if args.redis else None
        env = {
            "MODEL_PATH": str(args.model),
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": redis.url if redis else "",
        }
        try:
            with Server(env, Path(tmp) / "log", workers=2 if redis else 1) as server:
                session = requests.Session()
                timed(session, server.url + "/predict", single[:50])  # warm up
                store = "redis, 2 workers" if redis else "memory, 1 worker"
                for run in range(args.runs):
                    print(
                        f"store={store}, {n} requests each, one client, keep-alive (run {run + 1})"
                    )
                    # A new track per run: a stream's points must go forward in time.
                    track = [{**p, "track_id": 1 + run} for p in stream]
                    runs = (
                        ("predict_stream", "/predict stream (track)", "/predict", track, 1),
                        ("predict_single", "/predict single (no track)", "/predict", single, 1),
                        (
                            "batch_predict",
                            "/batch_predict 1,000 rows",
                            "/batch_predict",
                            batch,
                            1000,
                        ),
                    )
                    for key, name, path, bodies, rows in runs:
                        median, p95 = report(name, timed(session, server.url + path, bodies), rows)
                        measured[key][0].append(median)
                        measured[key][1].append(p95)
        finally:
            if redis:
                redis.stop()
    if args.record:
        per_request = {"predict_stream": 1, "predict_single": 1, "batch_predict": 1000}
        endpoints = {key: summary(*measured[key], per_request[key]) for key in measured}
        results = {"store": store, "requests": n, "runs": args.runs, "endpoints": endpoints}
        key = "redis" if args.redis else "memory"
        print(f"recorded {results_files.record('service_latency', key, results)}")


if __name__ == "__main__":
    main()
