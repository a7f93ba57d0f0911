"""Benchmark: the service from two checkouts, served in alternating rounds under the same load.

Usage:
    python benchmarks/service_ab.py --model models --before ../ab34964/src [--rounds 4]
        [--endpoints /livez "/predict single"] [--workers 2] [--record]

A before/after comparison of two ``service_load.py`` runs minutes apart measures the machine's
drift as much as the change: over an afternoon its speed moves by tens of percent. Here each
round serves the code before (``--before``, another checkout's ``src``) and then this
checkout's, one worker and the in-memory store each time (``--workers N``: N workers and a
private redis-server, which several workers need), with the same wrk load as
``service_load.py`` (16 keep-alive connections; 1 s warm-up, then ``--runs`` runs of
``--duration`` s); the rounds alternate which goes first, so a slow spell falls on both.
Prints, per endpoint, req/s and p99 latency of every run of each side, their medians and
after ÷ before. ``--record`` writes run ``before-<name>`` (``before-<name>-<N>w``) of
docs/results/service_ab.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
from pathlib import Path

import results as results_files  # benchmarks/results.py
import service_load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from server import SERVING_IMAGE, Server

SOURCE = Path(__file__).resolve().parents[1] / "src"
#: First stream track id of each wrk run: new tracks every run, so a shared Redis store never
#: sees a stream's points again (409).
_TRACKS = itertools.count(1_000_000_000, 10_000_000)


def rates(
    env: dict[str, str], log: Path, script: Path, args: argparse.Namespace
) -> tuple[list[float], list[float]]:
    """req/s and p99 latency (ms) of each run against one freshly started server."""
    with Server(env, log, workers=args.workers) as server:
        service_load.wrk(server.url, script, 1, args.connections, next(_TRACKS))  # warm-up
        found, tails = [], []
        for _ in range(args.runs):
            summary = service_load.wrk(
                server.url, script, args.duration, args.connections, next(_TRACKS)
            )
            if summary["non_2xx"] or summary["socket_errors"]:
                raise RuntimeError(f"{script.name}: errors under load: {summary}")
            found.append(round(service_load.rate(summary), 1))
            tails.append(summary["p99_us"] / 1e3)
        return found, tails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--before", type=Path, required=True, help="src folder of the code before")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2, help="runs per side and round")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--endpoints", nargs="*", default=["/livez", "/predict single"])
    parser.add_argument("--workers", type=int, default=1, help="workers (above 1: Redis store)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    sides = {"before": args.before.resolve(), "after": SOURCE}
    found: dict[str, dict[str, object]] = {}
    redis = service_load.private_redis(args.workers > 1)  # several workers need a shared store
    with tempfile.TemporaryDirectory() as tmp, redis as redis_url:
        folder = Path(tmp)
        scripts = service_load.write_scripts(folder)
        for endpoint in args.endpoints:
            runs: dict[str, list[float]] = {side: [] for side in sides}
            tails: dict[str, list[float]] = {side: [] for side in sides}
            for round_ in range(args.rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for side in order:
                    env = {
                        "MODEL_PATH": str(args.model.resolve()),
                        "LOG_LEVEL": "INFO",
                        "REDIS_URL": redis_url,
                        "PYTHONPATH": os.pathsep.join([str(SERVING_IMAGE), str(sides[side])]),
                    }
                    found_rates, found_tails = rates(
                        env, folder / f"{side}.log", scripts[endpoint], args
                    )
                    runs[side] += found_rates
                    tails[side] += found_tails
            before, after = (statistics.median(runs[s]) for s in ("before", "after"))
            found[endpoint] = {**runs, "p99_ms": tails, "ratio": round(after / before, 3)}
            p99 = {side: statistics.median(tails[side]) for side in sides}
            print(
                f"{endpoint:<16} before {before:7,.0f} req/s {runs['before']} "
                f"p99 {p99['before']:.1f} ms\n"
                f"{'':<16} after  {after:7,.0f} req/s {runs['after']} p99 {p99['after']:.1f} ms"
                f"  ({after / before:.2f} ×)",
                flush=True,
            )
    if args.record:
        key = f"before-{args.before.resolve().parent.name}"
        if args.workers > 1:
            key += f"-{args.workers}w"
        results = {
            "workers": args.workers,
            "rounds": args.rounds,
            "runs": args.runs,
            "duration_s": args.duration,
            "connections": args.connections,
            "endpoints": found,
        }
        print(f"recorded {results_files.record('service_ab', key, results)}")


if __name__ == "__main__":
    main()
