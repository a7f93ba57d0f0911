"""Benchmark: where a request's time goes in the service, from a sampling profiler under load.

Usage:
    python benchmarks/service_profile.py --model models [--seconds 10] [--source DIR] [--record]

Starts ``missile-classifier serve`` with a private redis-server and one worker, loads it with
wrk (16 connections) on ``/predict`` with one point and ``/predict`` streaming, and meanwhile

1. reads the worker's and redis-server's CPU time from ``/proc`` over an unprofiled run: CPU
   per request of each (Redis's gives its capacity: predictions per second per Redis core);
2. records the worker with py-spy (PyPI ``py-spy``; every thread, 200 samples/s) over a second
   run, and sorts every sample into one part of the request by the innermost frame it knows:
   model, features and windows, track store, parsing and validation, logging, metrics, JSON
   encoding, request hooks, Flask/Werkzeug, gunicorn. Threads waiting in the event loop or for
   work are left out. Samples in gunicorn's socket writes are mostly threads waiting to get the
   GIL back after the write (the time other threads held it).

``--source DIR`` serves the package from another checkout's ``src`` (the code before a change,
for a before/after breakdown); ``--record`` writes run ``after`` (or ``before-<name>`` with
``--source``) of docs/results/service_profile.json.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import results as results_files  # benchmarks/results.py
import service_load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redis_server import RedisServer  # the tests' helpers, reused
from server import SERVING_IMAGE, Server

#: Parts of a request, each named by frames that belong to it (first match from the innermost).
PARTS = (
    ("model (ONNX Runtime)", ("onnxruntime",)),
    (
        "features and windows",
        (
            "scoring/features.py",
            "scoring/windows.py",
            "scoring/plausibility.py",
            "scoring/encoding.py",
            "scoring/ranges.py",
            "pymap3d",
        ),
    ),
    ("track store (Redis)", ("track_store.py", "redis/")),
    ("parsing and validation", ("parse_body", "pydantic", "json/decoder", "body.py", "_columns")),
    ("metrics", ("prometheus_client",)),
    ("logging", ("structlog", "service/logs.py", "logging/")),
    ("JSON encoding", ("jsonify", "json/encoder", "json/provider.py", "_predictions")),
    ("request id and hooks", ("uuid", "_start (missile", "_finish (missile", "deadlines.py")),
    ("gunicorn (HTTP, sockets)", ("gunicorn/",)),
    ("Flask and Werkzeug", ("flask/", "werkzeug/")),
)
_WAITING = ("select (selectors", "poll (selectors", "wait (threading", "_worker (concurrent")


def part_of(frames: list[str]) -> str | None:
    """The part of the request a sample's stack belongs to; ``None`` for a waiting thread."""
    if frames[-1].startswith(_WAITING) or "_wait_for_tstate_lock" in frames[-1]:
        return None
    for frame in reversed(frames):
        for name, keys in PARTS:
            if any(key in frame for key in keys):
                return name
    return "other"


def breakdown(raw: Path) -> dict[str, float]:
    """Share of the busy samples per part, from py-spy's ``raw`` (collapsed stacks) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        part = part_of(stack.split(";"))
        if part is not None:
            counts[part] += int(count)
    busy = sum(counts.values())
    return {name: round(counts[name] / busy, 4) for name, _ in (*PARTS, ("other", ()))}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(
    url: str, pid: int, redis_pid: int, script: Path, seconds: float, folder: Path
) -> dict[str, object]:
    """CPU per request (worker's, Redis's) over one run, then the py-spy breakdown over another."""
    service_load.wrk(url, script, 1, 16, 6_000_000_000)  # warm-up
    before, redis_before = _cpu_seconds(pid), _cpu_seconds(redis_pid)
    summary = service_load.wrk(url, script, seconds, 16, 6_100_000_000)
    cpu, redis_cpu = _cpu_seconds(pid) - before, _cpu_seconds(redis_pid) - redis_before
    raw = folder / f"{script.stem}.raw"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    load = threading.Thread(
        target=service_load.wrk, args=(url, script, seconds + 2, 16, 6_200_000_000)
    )
    load.start()
    time.sleep(1)
    command = [spy, "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", "200", "-f", "raw"]
    subprocess.run(
        [*command, "-o", str(raw), "--nonblocking"],
        check=True,
        capture_output=True,
    )
    load.join()
    return {
        "req_per_s": round(service_load.rate(summary), 1),
        "cpu_ms_per_request": round(1000 * cpu / summary["requests"], 3),
        "redis_cpu_us_per_request": round(1e6 * redis_cpu / summary["requests"], 1),
        "parts": breakdown(raw),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--source", type=Path, help="serve the package from this src folder")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    env = {"MODEL_PATH": str(args.model.resolve()), "LOG_LEVEL": "INFO"}
    if args.source:
        env["PYTHONPATH"] = os.pathsep.join([str(SERVING_IMAGE), str(args.source.resolve())])
    found: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        folder = Path(tmp)
        scripts = service_load.write_scripts(folder)
        with Server({**env, "REDIS_URL": redis.url}, folder / "log", workers=1) as server:
            (pid,) = server.worker_pids()
            for endpoint in ("/predict single", "/predict stream"):
                assert redis.pid is not None
                found[endpoint] = result = profile(
                    server.url, pid, redis.pid, scripts[endpoint], args.seconds, folder
                )
                print(
                    f"{endpoint}: {result['req_per_s']:,.0f} req/s, "
                    f"{result['cpu_ms_per_request']:.2f} ms CPU per request, "
                    f"Redis {result['redis_cpu_us_per_request']:.0f} µs"
                )
                for name, share in result["parts"].items():  # type: ignore[attr-defined]
                    print(f"  {name:<26} {share:6.1%}")
    if args.record:
        key = f"before-{args.source.resolve().parent.name}" if args.source else "after"
        print(f"recorded {results_files.record('service_profile', key, found)}")


if __name__ == "__main__":
    main()
