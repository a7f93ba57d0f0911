"""The real server: `missile-classifier serve` (gunicorn, 2 workers) on a real redis-server."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from redis_server import RedisServer
from server import Server
from test_cli import run
from test_service import BAD_BODIES, samples_of
from test_track_store import _commands, _ran, _updates

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(
    trained_bundle: Path, redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {
        "MODEL_PATH": str(trained_bundle / "models"),
        "REDIS_URL": redis.url,
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    with Server(env, log, workers=2) as running:
        yield running


def _counter(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_workers_serve_every_endpoint(server: Server) -> None:
    assert len(server.worker_pids()) == 2
    assert requests.get(server.url + "/livez", timeout=5).json() == {"status": "alive"}
    health = requests.get(server.url + "/health", timeout=5).json()
    assert health["status"] == "ok" and health["store"]["kind"] == "redis"
    info = requests.get(server.url + "/info", timeout=5).json()
    assert info["service"]["store"] == "redis" and info["model"]["model_version"]
    assert requests.get(server.url + "/openapi.json", timeout=5).json()["paths"]["/predict"]
    bad = requests.post(
        server.url + "/predict",
        data=b'{"latitude": NaN}',
        timeout=5,
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_json"


def test_streaming_through_both_workers_equals_batch_and_cli(
    server: Server, trained_bundle: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(trained_bundle / "data" / "test.csv")
    track = frame[frame["track_id"] == frame["track_id"].iloc[-1]].reset_index(drop=True)
    session = requests.Session()
    streamed = [
        session.post(server.url + "/predict", json=s, timeout=5).json() for s in samples_of(track)
    ]
    assert streamed[-1]["context_points"] == 10 and streamed[0]["context_points"] == 1
    batch = session.post(
        server.url + "/batch_predict", json={"samples": samples_of(track)}, timeout=30
    ).json()["predictions"]
    track.to_csv(tmp_path / "track.csv", index=False)
    cli = run(
        "predict",
        "--model",
        str(trained_bundle / "models"),
        "--input",
        str(tmp_path / "track.csv"),
        "--output",
        str(tmp_path / "scored.csv"),
        "-q",
    )
    assert cli.returncode == 0, cli.stderr
    offline = pd.read_csv(tmp_path / "scored.csv")["reentry_probability"].to_numpy()
    streamed_p = np.array([p["probability"] for p in streamed])
    np.testing.assert_allclose(streamed_p, [p["probability"] for p in batch], atol=1e-6)
    np.testing.assert_allclose(streamed_p, offline, atol=1e-6)  # the CSV keeps 6 decimals


def test_metrics_add_up_across_workers_and_pass_promtool(server: Server) -> None:
    before = requests.get(server.url + "/metrics", timeout=5).text
    point = {"latitude": 10.0, "longitude": 20.0, "altitude": 30_000.0}
    for _ in range(40):  # the OS spreads these over both workers
        assert requests.post(server.url + "/predict", json=point, timeout=5).status_code == 200
    after = requests.get(server.url + "/metrics", timeout=5).text
    name = "missile_classifier_requests_total"
    added = _counter(after, name, endpoint="/predict", status="200") - _counter(
        before, name, endpoint="/predict", status="200"
    )
    assert added == 40
    assert _counter(after, "missile_classifier_model_ready_workers") == 2
    assert _counter(after, "missile_classifier_model_info") >= 1
    check = subprocess.run(
        ["promtool", "check", "metrics"],
        input=after,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_logs_are_json_lines_with_request_ids(server: Server) -> None:
    requests.post(
        server.url + "/predict",
        timeout=5,
        headers={"X-Request-ID": "req-777"},
        json={"latitude": 1.0, "longitude": 2.0, "altitude": 3.0},
    )
    time.sleep(0.2)
    records = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("request_id") == "req-777"]
    assert mine and mine[0]["endpoint"] == "/predict" and mine[0]["status"] == 200
    assert sum(r.get("event") == "model_loaded" for r in records) >= 2  # each worker, at start


def test_each_worker_freezes_its_start_up_objects_out_of_the_collector(server: Server) -> None:
    # A full collection would otherwise walk the app, its libraries and the model each time.
    records = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    ready = {r["pid"]: r["gc_frozen_objects"] for r in records if r.get("event") == "worker_ready"}
    assert set(server.worker_pids()) <= set(ready)  # every worker now serving
    assert all(frozen > 10_000 for frozen in ready.values())


def test_log_lines_stay_whole_when_both_workers_write_at_once(server: Server) -> None:
    body = {"latitude": 1.0, "longitude": 2.0, "altitude": 3.0}
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda _: requests.post(server.url + "/predict", json=body, timeout=10).status_code,
                range(400),
            )
        )
    assert set(statuses) == {200}
    time.sleep(0.2)
    lines = [line for line in server.logs().splitlines() if line.strip()]
    # After the CLI's human-readable banner, every line is one JSON object: no worker's line
    # cut into or glued onto another's.
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("{")) :]
    broken = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            broken.append(line)
    assert not broken, broken[:3]


def test_gunicorn_builds_no_access_log_line_of_its_own() -> None:
    """The app's JSON line per request is the access log; gunicorn's would cost every request
    its fields (each header and environ entry) only for ``gunicorn.access`` to drop the line."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from missile_classifier.service import gunicorn_conf

    config = Config()
    config.set("accesslog", "-")  # a stock logger then builds each request's line
    stock, ours = Logger(config), gunicorn_conf.logger_class(config)
    with pytest.raises(AttributeError):  # it starts reading the response and request
        stock.access(None, None, None, None)
    ours.access(None, None, None, None)  # reads nothing
    assert isinstance(ours, Logger)  # and is gunicorn's logger for everything else


def test_redis_outage_degrades_and_recovers(server: Server, redis: RedisServer) -> None:
    stream = {
        "timestamp": 1.0,
        "track_id": 4242,
        "sensor_id": 1,
        "latitude": 1.0,
        "longitude": 2.0,
        "altitude": 3.0,
    }
    assert requests.post(server.url + "/predict", json=stream, timeout=5).status_code == 200
    redis.kill()
    try:
        health = requests.get(server.url + "/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert health.json()["store"]["ok"] is False
        later = {**stream, "timestamp": 2.0}
        down = requests.post(server.url + "/predict", json=later, timeout=10)
        assert down.status_code == 503 and down.json()["error"]["code"] == "store_unavailable"
        alone = {k: v for k, v in stream.items() if k != "track_id"}
        assert requests.post(server.url + "/predict", json=alone, timeout=10).status_code == 200
        batch = requests.post(server.url + "/batch_predict", json={"samples": [stream]}, timeout=10)
        assert batch.status_code == 200
    finally:
        redis.restart()
    deadline = time.monotonic() + 20
    while requests.get(server.url + "/health", timeout=5).json()["status"] != "ok":
        assert time.monotonic() < deadline, "service did not recover after Redis came back"
        time.sleep(0.2)
    # Redis came back empty (no persistence): the stream starts again.
    again = requests.post(server.url + "/predict", json={**stream, "timestamp": 3.0}, timeout=5)
    assert again.status_code == 200 and again.json()["context_points"] == 1


def test_missing_model_server_is_live_but_not_ready(tmp_path: Path) -> None:
    # An empty models volume, as a pod sees it before the training Job has written the bundle.
    (tmp_path / "no-model").mkdir()
    env = {"MODEL_PATH": str(tmp_path / "no-model"), "REDIS_URL": ""}
    with Server(env, tmp_path / "log", wait_for="/livez") as running:
        health = requests.get(running.url + "/health", timeout=5)
        assert health.status_code == 503 and "no model bundle" in health.json()["reason"]
        predict = requests.post(
            running.url + "/predict",
            timeout=5,
            json={"latitude": 1.0, "longitude": 2.0, "altitude": 3.0},
        )
        assert predict.status_code == 503 and predict.json()["error"]["code"] == "model_unavailable"


def test_serve_removes_only_the_metrics_folder_it_created(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"MODEL_PATH": str(tmp_path / "no-model"), "REDIS_URL": "", "TMPDIR": str(scratch)}
    with Server(env, tmp_path / "log", wait_for="/livez") as running:
        requests.get(running.url + "/metrics", timeout=5)
        assert len(list(scratch.glob("missile-classifier-metrics-*"))) == 1
    assert list(scratch.glob("missile-classifier-metrics-*")) == []
    own = tmp_path / "own-metrics"
    mine = {**env, "PROMETHEUS_MULTIPROC_DIR": str(own)}
    with Server(mine, tmp_path / "log2", wait_for="/livez"):
        assert list(scratch.glob("missile-classifier-metrics-*")) == []
    assert own.is_dir()


def test_api_key_and_rate_limit_on_the_real_server(
    trained_bundle: Path, redis: RedisServer, tmp_path: Path
) -> None:
    env = {
        "MODEL_PATH": str(trained_bundle / "models"),
        "REDIS_URL": redis.url,
        "API_KEY": "top-secret",
        "RATE_LIMIT": "5/minute",
    }
    point = {"latitude": 1.0, "longitude": 2.0, "altitude": 3.0}
    with Server(env, tmp_path / "log", workers=2) as running:
        url = running.url + "/predict"
        assert requests.post(url, json=point, timeout=5).status_code == 401
        key = {"X-API-Key": "top-secret"}
        codes = [
            requests.post(url, json=point, headers=key, timeout=5).status_code for _ in range(7)
        ]
        # The limit is shared through Redis, so both workers count the same 5 requests.
        assert codes == [200] * 5 + [429] * 2
        assert requests.get(running.url + "/health", timeout=5).status_code == 200


def test_every_class_of_bad_input_over_http(server: Server) -> None:
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    for body, status, code in BAD_BODIES:
        response = session.post(server.url + "/predict", data=body, headers=headers, timeout=5)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code and "Traceback" not in response.text
    oversize = session.post(
        server.url + "/batch_predict", data=b" " * (11 * 1024 * 1024), headers=headers, timeout=30
    )
    assert oversize.status_code == 413 and oversize.json()["error"]["code"] == "payload_too_large"
    many = {"samples": [{"latitude": 1.0, "longitude": 2.0, "altitude": 3.0}] * 10_001}
    too_many = session.post(server.url + "/batch_predict", json=many, timeout=30)
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "batch_too_large"
    assert session.get(server.url + "/health", timeout=5).json()["status"] == "ok"


def test_serve_refuses_bad_configuration() -> None:
    result = run("serve", env={"PORT": "99999", "RATE_LIMIT": "lots"}, timeout=60)
    assert result.returncode == 2 and "PORT" in result.stderr and "RATE_LIMIT" in result.stderr
    assert "Traceback" not in result.stderr
    scaler = run("serve", env={"SCALER_PATH": "/app/models/scaler.pkl"}, timeout=60)
    message = " ".join(scaler.stderr.split())  # the console wraps long lines
    assert scaler.returncode == 2
    assert "invalid configuration: SCALER_PATH=/app/models/scaler.pkl is not a file" in message
    unwritable = run("serve", env={"PROMETHEUS_MULTIPROC_DIR": "/proc/no-such-dir"}, timeout=60)
    assert unwritable.returncode == 2 and "PROMETHEUS_MULTIPROC_DIR" in unwritable.stderr
    assert "Traceback" not in unwritable.stderr


def _connections_per_worker(server: Server) -> list[int]:
    """Established connections each worker holds on the server's port (``ss``, iproute2)."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{server.port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    held = re.findall(r"pid=(\d+)", listing)
    return sorted(held.count(str(pid)) for pid in server.worker_pids())


def test_a_burst_of_keep_alive_connections_is_spread_over_the_workers(server: Server) -> None:
    # Both workers wait on one socket and the first awake takes each connection: 16 opened at
    # once landed 16 to 0, 14 to 2 or 12 to 4 (and the server ran at one worker's speed).
    for _ in range(3):
        sessions = [requests.Session() for _ in range(16)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda s: s.get(server.url + "/livez", timeout=10), sessions))
        assert [a.status_code for a in answers] == [200] * 16
        counts = _connections_per_worker(server)
        assert sum(counts) == 16 and counts[-1] - counts[0] <= 2, counts
        for session in sessions:
            session.close()
        time.sleep(0.3)  # the workers see the connections close


def test_a_stream_prediction_is_one_redis_round_trip(server: Server, redis: RedisServer) -> None:
    import redis as redis_py

    admin = redis_py.Redis.from_url(redis.url)
    point = {"track_id": 9_100, "sensor_id": 1, "latitude": 50.0, "longitude": 8.0}
    with requests.Session() as session:  # one connection: one worker, as a client's stream
        for i in range(3):  # the script is loaded once per worker
            body = {**point, "timestamp": 1.0 + i, "altitude": 100.0 * i}
            assert session.post(server.url + "/predict", json=body, timeout=10).status_code == 200
        before = _commands(admin)
        for i in range(3, 23):
            body = {**point, "timestamp": 1.0 + i, "altitude": 100.0 * i}
            answer = session.post(server.url + "/predict", json=body, timeout=10).json()
            assert answer["history"] == "continued"
        ran = _ran(before, _commands(admin))
    # The clients sent 20 EVALSHAs (the other counts are the commands the scripts ran).
    assert ran == _updates(20)
    admin.close()


def test_info_reports_workers_and_inference_threads(server: Server) -> None:
    service = requests.get(server.url + "/info", timeout=10).json()["service"]
    # One ONNX Runtime thread per worker unless INFERENCE_THREADS says otherwise.
    assert service["workers"] == 2
    assert service["inference_threads"] == 1
