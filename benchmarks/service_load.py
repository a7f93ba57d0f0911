"""Benchmark: throughput and tail latency of the REST service under load, against a floor.

Usage:
    python benchmarks/service_load.py --model models [--runs 5] [--duration 5] [--record]

In one run, on loopback, with wrk (Debian package ``wrk``) as the load generator:

1. the *floor*: a bare Flask app with one ``jsonify`` route under gunicorn's stock ``gthread``
   worker with the service's settings (4 threads; 1, 2 and ``nproc`` workers) — what any Flask
   service on this machine can reach. A second route of the same app, ``/score``, does the work
   no prediction can skip — the feature function, the window and the model on the point
   ``/predict single`` sends — and answers its probability: what any Flask service built on
   this model reaches, so the gap between the service and the floor splits into the scoring's
   share and the rest (parsing, validation, logging, metrics, the answer). A third,
   ``/score stream``, scores the next point of a stream from its memory and stores the new
   memory in Redis with one plain SET (a private redis-server): the least a streamed
   prediction with shared state costs;
2. ``missile-classifier serve`` with the memory store (1 worker) and with a private
   redis-server (1, 2 and ``nproc`` workers), each loaded on ``/livez``, ``/predict`` with one
   point and no track, ``/predict`` streaming (each connection its own tracks, timestamps
   increasing, so no 409s), and ``/batch_predict`` with 100 and 1,000 samples.

Every cell is ``--runs`` runs of ``--duration`` seconds (after one second of warm-up) with
``--connections`` keep-alive connections, one wrk thread each (a streaming connection must send
its track's points one after another). Prints, per cell, req/s of each run and their median,
rows/s for batches, the median run's p50/p95/p99 latency, non-2xx responses summed over the
runs, and the ratio of the median to the floor's ``/`` with the same number of workers. The
service logs at INFO (one JSON line per request, to a file) and exports every metric, as in
production. Run it on an idle machine: the load generator shares the cores with the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from missile_classifier.columns import SENSOR_ID, TIMESTAMP, TRACK_ID

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import results as results_files  # benchmarks/results.py
from redis_server import RedisServer  # the tests' helpers, reused
from server import SERVING_IMAGE, Server, free_port

THREADS = 4  # gunicorn threads per worker, the service's default (THREADS)
#: The floor's route doing the unavoidable work of each kind of prediction.
FLOOR_ROUTES = {"/predict single": "/score", "/predict stream": "/score stream"}
TRACK_POINTS = 1_000
FLOOR_APP = """
import json
import os
import threading

import numpy as np
import redis
from flask import Flask, jsonify

from missile_classifier.columns import INTEGER_COLUMNS
from missile_classifier.scoring.inference import ModelInferenceService

app = Flask(__name__)
# The work no prediction can skip: the feature function, the window and the model, on the
# point /predict single sends, with the service's runtime settings (one thread, not spinning).
model = ModelInferenceService(os.environ["MODEL_PATH"], threads=1, spinning=False)


def columns_of(point):
    return {{name: np.array([value], dtype=np.int64 if name in INTEGER_COLUMNS else np.float64)
             for name, value in point.items()}}


columns = columns_of({point})
# A stream some points in, and its next point: what a streamed prediction scores.
memory = None
for earlier in {history}:
    _, memory = model.predict_stream(columns_of(earlier), memory)
following = columns_of({following})
store = redis.Redis.from_url(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None


@app.get("/")
def index():
    return jsonify({{"status": "alive"}})


@app.get("/score")
def scored():
    scores, _ = model.predict_stream(columns, None)
    return jsonify({{"probability": float(scores.probability[0])}})


@app.get("/score/stream")
def scored_stream():
    # The least a stream held in a shared Redis costs on top: its new memory, serialised and
    # stored in one plain SET (no read, no version check, no LRU upkeep).
    scores, after = model.predict_stream(following, memory)
    value = json.dumps(after.to_dict())
    store.set(f"floor:{{threading.get_ident()}}", value, px=3_600_000)
    return jsonify({{"probability": float(scores.probability[0])}})
"""

# wrk runs this Lua once per thread; each thread has one connection. ``done`` prints the
# summary as one JSON line. Percentiles are microseconds.
_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""
_FIXED = """
wrk.method = "{method}"
wrk.path = "{path}"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""
# Each thread (= connection) streams its own tracks: thread k, lap j is track base + k*1e5 + j.
_STREAM = """
local rows = {{{rows}}}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  base = tonumber(args[1])
  lap = 0
  i = 0
end
function request()
  i = i + 1
  if i > #rows then
    i = 1
    lap = lap + 1
  end
  local track = base + id * 100000 + lap
  local body = string.format('{{"track_id":%d,"sensor_id":3,%s}}', track, rows[i])
  return wrk.format("POST", "/predict", {{["Content-Type"] = "application/json"}}, body)
end
"""


def track(points: int = TRACK_POINTS) -> list[dict[str, float]]:
    """One plausible track sampled every 0.5 s: 30 % climb, 40 % plateau, 30 % descent."""
    rows = []
    climb, plateau = int(0.3 * points), int(0.4 * points)
    for i in range(points):
        if i < climb:
            altitude = 110_000.0 * i / climb
        elif i < climb + plateau:
            altitude = 110_000.0
        else:
            altitude = 110_000.0 * max(0.0, 1 - (i - climb - plateau) / (points - climb - plateau))
        f = i / points
        rows.append(
            {
                "timestamp": 1.7e9 + 0.5 * i,
                "latitude": 64.13 - 24.11 * f,
                "longitude": -21.90 - 83.39 * f,
                "altitude": altitude,
                "radiometric_intensity": 0.833 * altitude / 100_000.0,
            }
        )
    return rows


def lua_string(text: str) -> str:
    """A Lua long-bracket string literal holding ``text``."""
    return f"[==[{text}]==]"


def single_point() -> dict[str, float]:
    """The point ``/predict single`` sends: the middle of :func:`track`, with no timestamp."""
    points = track()
    return {k: v for k, v in points[len(points) // 2].items() if k != "timestamp"}


def write_scripts(folder: Path) -> dict[str, Path]:
    """The wrk scripts of each endpoint under load."""
    points = track()
    single = single_point()
    scripts = {
        "/livez": _FIXED.format(method="GET", path="/livez", body='""'),
        "/predict single": _FIXED.format(
            method="POST", path="/predict", body=lua_string(json.dumps(single))
        ),
        "/predict stream": _STREAM.format(
            rows=",".join(lua_string(json.dumps(p)[1:-1]) for p in points)
        ),
    }
    for size in (100, 1_000):
        samples = [{"track_id": 7, "sensor_id": 3, **p} for p in points[:size]]
        scripts[f"/batch_predict {size}"] = _FIXED.format(
            method="POST", path="/batch_predict", body=lua_string(json.dumps({"samples": samples}))
        )
    scripts["/"] = _FIXED.format(method="GET", path="/", body='""')
    scripts["/score"] = _FIXED.format(method="GET", path="/score", body='""')
    scripts["/score stream"] = _FIXED.format(method="GET", path="/score/stream", body='""')
    paths = {}
    for name, text in scripts.items():
        path = folder / (name.strip("/").replace(" ", "_").replace("/", "_") or "root")
        path = path.with_suffix(".lua")
        path.write_text(text + _DONE)
        paths[name] = path
    return paths


@dataclass
class Cell:
    """One server configuration under load on one endpoint."""

    server: str
    workers: int
    endpoint: str
    runs: list[float]  # req/s of each run
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    floor_ratio: float | None = None

    @property
    def median(self) -> float:
        """Median req/s over the runs."""
        return statistics.median(self.runs)


def rate(summary: dict[str, int]) -> float:
    """Requests per second of one wrk run's summary."""
    return summary["requests"] / (summary["duration_us"] / 1e6)


def wrk(url: str, script: Path, seconds: float, connections: int, base: int = 0) -> dict[str, int]:
    """One wrk run; its summary (requests, latency percentiles in µs, errors)."""
    command = [
        "wrk",
        f"-t{connections}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(base),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    summary: dict[str, int] = json.loads(output.strip().splitlines()[-1])
    return summary


def load(
    server: str,
    workers: int,
    url: str,
    scripts: dict[str, Path],
    endpoints: list[str],
    args: argparse.Namespace,
    floor: float | None = None,
) -> Iterator[Cell]:
    """Load each endpoint of one running server ``args.runs`` times (``floor``: its req/s)."""
    base = 1_000_000_000  # stream track ids: new ones for every run, below 2**53
    for endpoint in endpoints:
        wrk(url, scripts[endpoint], 1, args.connections, base)  # warm-up
        base += 10_000_000
        summaries = []
        for _ in range(args.runs):
            summaries.append(wrk(url, scripts[endpoint], args.duration, args.connections, base))
            base += 10_000_000
        rates = [rate(s) for s in summaries]
        middle = summaries[sorted(range(len(rates)), key=rates.__getitem__)[len(rates) // 2]]
        cell = Cell(
            server,
            workers,
            endpoint,
            [round(r, 1) for r in rates],
            middle["p50_us"] / 1e3,
            middle["p95_us"] / 1e3,
            middle["p99_us"] / 1e3,
            sum(s["non_2xx"] for s in summaries),
            sum(s["socket_errors"] for s in summaries),
        )
        if floor is not None:
            cell.floor_ratio = cell.median / floor
        print_cell(cell)
        yield cell


@contextmanager
def floor_server(folder: Path, workers: int, model: Path, redis_url: str = "") -> Iterator[str]:
    """The bare Flask app under stock gunicorn gthread; yields its URL. Its streaming route
    needs ``redis_url``."""
    # The columns the service makes of that point (no track: track -1, sensor 0, time 0).
    point = {TIMESTAMP: 0.0, TRACK_ID: -1, SENSOR_ID: 0, **single_point()}
    # The streaming route's stream: the track's points up to the middle one, then that one.
    points = track()
    middle = len(points) // 2
    stream = [{TRACK_ID: 7, SENSOR_ID: 3, **p} for p in points[middle - 60 : middle + 1]]
    app = FLOOR_APP.format(point=repr(point), history=repr(stream[:-1]), following=repr(stream[-1]))
    (folder / "floor_app.py").write_text(app)
    port = free_port()
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [
            gunicorn,
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(THREADS),
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(folder),
            "--log-level",
            "warning",
            "floor_app:app",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MODEL_PATH": str(model.resolve()), "REDIS_URL": redis_url},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/", timeout=1)
                break
            except (requests.ConnectionError, requests.Timeout):  # not bound, or still loading
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the floor app did not start") from None
                time.sleep(0.1)
        time.sleep(1.0)  # every worker up
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def print_cell(cell: Cell) -> None:
    """One table row as soon as it is measured."""
    rows = results_files.ROWS_PER_REQUEST.get(cell.endpoint)
    rate = f"{cell.median * rows:>10,.0f} rows/s" if rows else f"{cell.median:>10,.0f} req/s "
    runs = " ".join(f"{r:,.0f}" for r in cell.runs)
    ratio = "" if cell.floor_ratio is None else f"{cell.floor_ratio:6.0%}"
    print(
        f"{cell.server:<8} {cell.workers:>2}w {cell.endpoint:<20} {rate}  [{runs}]  "
        f"p50 {cell.p50_ms:6.2f} p95 {cell.p95_ms:6.2f} p99 {cell.p99_ms:6.2f} ms  "
        f"non-2xx {cell.non_2xx}  {ratio}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--runs", type=int, default=5, help="runs per cell (req/s of each shown)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument(
        "--workers", type=int, nargs="*", help="Redis-store worker counts (default 1 2 nproc)"
    )
    parser.add_argument(
        "--endpoints", nargs="*", help="endpoints to load (default all), e.g. '/predict single'"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory-store server")
    parser.add_argument(
        "--source", type=Path, help="serve the package from this src folder (the code before)"
    )
    parser.add_argument(
        "--record", action="store_true", help="write the results to docs/results/service_load.json"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    cores = os.cpu_count() or 1
    worker_counts = sorted(set(args.workers or [1, 2, cores]))
    endpoints = args.endpoints or [
        "/livez",
        "/predict single",
        "/predict stream",
        "/batch_predict 100",
        "/batch_predict 1000",
    ]
    # Bare routes doing a prediction's unavoidable work, for the kinds of /predict measured.
    floor_endpoints = ["/", *(route for kind, route in FLOOR_ROUTES.items() if kind in endpoints)]
    cells: list[Cell] = []
    floors: dict[int, float] = {}
    print(
        f"{cores} cores; {args.connections} connections, {args.runs} × {args.duration:g} s per cell"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scripts = write_scripts(folder)
        for workers in sorted({1, *worker_counts}):
            redis = private_redis(FLOOR_ROUTES["/predict stream"] in floor_endpoints)
            with redis as redis_url, floor_server(folder, workers, args.model, redis_url) as url:
                bare, *modelled = load("floor", workers, url, scripts, floor_endpoints, args)
                floors[workers] = bare.median
                # The model route's ratio is to the bare route of the same server.
                for cell in modelled:
                    cell.floor_ratio = cell.median / bare.median
                cells += [bare, *modelled]
        configs = [] if args.no_memory else [("memory", 1)]
        configs += [("redis", w) for w in worker_counts]
        for store, workers in configs:
            with private_redis(store == "redis") as redis_url:
                env = {"MODEL_PATH": str(args.model), "LOG_LEVEL": "INFO", "REDIS_URL": redis_url}
                if args.source:
                    env["PYTHONPATH"] = os.pathsep.join([str(SERVING_IMAGE), str(args.source)])
                log = folder / f"{store}-{workers}.log"
                with Server(env, log, workers=workers) as server:
                    floor = floors[workers]
                    cells += load(store, workers, server.url, scripts, endpoints, args, floor)
    checks = summarize(cells, cores)
    if args.record:
        results = {
            "connections": args.connections,
            "runs": args.runs,
            "duration_s": args.duration,
            "threads": THREADS,
            "cells": [{**asdict(c), "median": c.median} for c in cells],
            "targets": [
                {"target": name, "met": ok, "value": value, "scoring_route": bound}
                for name, ok, value, bound in checks
            ],
        }
        key = f"before-{args.source.resolve().parent.name}" if args.source else "default"
        print(f"recorded {results_files.record('service_load', key, results)}")


@contextmanager
def private_redis(wanted: bool) -> Iterator[str]:
    """A private redis-server's URL, or an empty one (the memory store) unless ``wanted``."""
    if not wanted:
        yield ""
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def summarize(cells: list[Cell], cores: int) -> list[tuple[str, bool, str, str]]:
    """The targets, each checked against this run's numbers (printed, and returned) beside what
    the floor's scoring route of the same kind reaches on the same measure (``–`` where it
    does not apply): no service built on this model can do better than that route, so a
    target the route misses too is out of reach of the framework, not of the service. Then how
    far each scoring route leaves the floor, and the service that route (printed)."""
    by = {(c.server, c.workers, c.endpoint): c for c in cells}
    checks = []
    for workers in sorted({1, cores}):
        server = "redis"
        score = by.get(("floor", workers, FLOOR_ROUTES["/predict single"]))
        for endpoint, target in (("/livez", 0.9), ("/predict single", 0.7)):
            cell = by.get((server, workers, endpoint))
            if cell and cell.floor_ratio is not None:
                bound = "–"
                if endpoint != "/livez" and score is not None and score.floor_ratio is not None:
                    bound = f"{score.floor_ratio:.1%}"
                checks.append(
                    (
                        f"{endpoint} {workers}w ≥ {target:.0%} of floor",
                        cell.floor_ratio >= target,
                        f"{cell.floor_ratio:.1%}",
                        bound,
                    )
                )
    one, many = by.get(("redis", 1, "/predict single")), by.get(("redis", cores, "/predict single"))
    if one and many and cores > 1:
        worst = min(many.runs) / one.median
        name = f"/predict {cores}w ≥ 1.7 × 1w in every run"
        checks.append((name, worst >= 1.7, f"{worst:.2f} ×", "–"))
    stream = by.get(("redis", cores, "/predict stream"))
    if stream and stream.floor_ratio is not None:
        route = by.get(("floor", cores, FLOOR_ROUTES["/predict stream"]))
        bound = "–" if route is None or route.floor_ratio is None else f"{route.floor_ratio:.1%}"
        checks.append(
            (
                f"/predict stream (Redis) {cores}w ≥ 50 % of floor",
                stream.floor_ratio >= 0.5,
                f"{stream.floor_ratio:.1%}",
                bound,
            )
        )
    # The tail, per worker count: with 16 connections kept busy, the mean latency alone is
    # 16 / req/s, so one worker's tail follows from its throughput.
    for workers in sorted({c.workers for c in cells if c.server != "floor"}):
        predicts = [
            c
            for c in cells
            if c.server != "floor" and c.workers == workers and c.endpoint.startswith("/predict")
        ]
        if predicts:
            slowest = max(predicts, key=lambda c: c.p99_ms)
            score = by.get(("floor", workers, FLOOR_ROUTES[slowest.endpoint]))
            checks.append(
                (
                    f"/predict p99 ≤ 25 ms, {workers}w",
                    slowest.p99_ms <= 25,
                    f"{slowest.p99_ms:.1f} ms ({slowest.server}, {slowest.endpoint.split()[-1]})",
                    "–" if score is None else f"{score.p99_ms:.1f} ms",
                )
            )
    errors = sum(c.non_2xx + c.socket_errors for c in cells)
    checks.append(("zero non-2xx and socket errors", errors == 0, str(errors), "–"))
    print("\ntargets (beside each, what the floor's scoring route reaches on the same measure)")
    for name, ok, value, bound in checks:
        print(f"  {'met' if ok else 'MISSED':<6} {name:<44} {value:<24} scoring route {bound}")
    for workers in sorted({c.workers for c in cells if c.server == "floor"}):
        for kind, route_name in FLOOR_ROUTES.items():
            cell = by.get(("floor", workers, route_name))
            if cell is None or cell.floor_ratio is None:
                continue
            line = f"  {workers}w: the floor's {route_name} reaches {cell.floor_ratio:.1%} of floor"
            if (served := by.get(("redis", workers, kind))) is not None:
                line += f"; {kind} reaches {served.median / cell.median:.1%} of it"
            print(line)
    return checks


if __name__ == "__main__":
    main()
