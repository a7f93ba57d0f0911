"""Benchmark: latency and throughput of the running REST service, measured from a client.

Usage:
    python benchmarks/service_latency.py --model models [--requests 500] [--redis]

Starts ``missile-classifier serve`` on a free port (memory store, 1 worker; with ``--redis``
a private redis-server and 2 workers), then measures from one client over HTTP keep-alive:
``/predict`` with a track (stream mode, history in the store), ``/predict`` without one, and
``/batch_predict`` with 1,000 samples. Prints median and 95th-percentile latency and rows/s.
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


def report(name: str, times: list[float], rows_per_request: int = 1) -> None:
    """Print median / p95 latency and throughput."""
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    median = statistics.median(ordered)
    print(
        f"{name:<28} median {median * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms  "
        f"{rows_per_request / median:>10,.0f} rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--redis", action="store_true")
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
                print(
                    f"store={'redis, 2 workers' if redis else 'memory, 1 worker'}, "
                    f"{n} requests each, one client, keep-alive"
                )
                report("/predict stream (track)", timed(session, server.url + "/predict", stream))
                report(
                    "/predict single (no track)", timed(session, server.url + "/predict", single)
                )
                report(
                    "/batch_predict 1,000 rows",
                    timed(session, server.url + "/batch_predict", batch),
                    1000,
                )
        finally:
            if redis:
                redis.stop()


if __name__ == "__main__":
    main()
