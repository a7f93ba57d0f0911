"""The Flask app in-process (Flask's test client): endpoints, validation, security switches."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from missile_classifier import __version__
from missile_classifier.columns import FEATURE_COLUMNS
from missile_classifier.schema import frame_columns
from missile_classifier.scoring import bundle
from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.scoring.inference import ModelInferenceService, usable_cores
from missile_classifier.service import pod
from missile_classifier.service import state as service_state
from missile_classifier.service.app import ConfigError, create_app, load_settings, new_request_id
from missile_classifier.service.schemas import BatchResponse, Prediction
from redis_server import free_port
from test_bundle import write_onnx_bundle

POINT = {
    "timestamp": 1731308400.0,
    "track_id": 7,
    "sensor_id": 3,
    "latitude": 64.1,
    "longitude": -21.9,
    "altitude": 1_000.0,
    "radiometric_intensity": 0.01,
}


@pytest.fixture
def app(trained_bundle: Path) -> Iterator[Flask]:
    application = create_app({"model_path": trained_bundle / "models"})
    yield application
    application.extensions["missile_classifier"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def _track(trained_bundle: Path) -> pd.DataFrame:
    frame = pd.read_csv(trained_bundle / "data" / "test.csv")
    track: pd.DataFrame = frame[frame["track_id"] == frame["track_id"].iloc[0]]
    return track.reset_index(drop=True)


def samples_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a track frame as API observations (ids as ints, the rest as floats)."""
    columns = list(FEATURE_COLUMNS)
    return [
        {str(c): (int(v) if c in ("track_id", "sensor_id") else float(v)) for c, v in row.items()}
        for row in frame[columns].to_dict("records")
    ]


Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: FlaskClient) -> Scrape:
    """Every sample of /metrics, by name and exact label set."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _added(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    """How much one sample (name and exact labels) grew between two scrapes."""
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def _agree(predictions: list[dict[str, Any]], threshold: float) -> None:
    """Label, phase and probability tell one story: reentry iff phase 1 iff p ≥ threshold."""
    for p in predictions:
        reentry = p["probability"] >= threshold
        assert p["reentry_phase"] == (1 if reentry else 0), (p, threshold)
        assert p["label"] == ("reentry" if reentry else "non_reentry"), (p, threshold)


def test_probes(client: FlaskClient) -> None:
    assert client.get("/livez").get_json() == {"status": "alive"}
    health = client.get("/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "ok" and body["store"] == {
        "kind": "memory",
        "ok": True,
        "active_streams": 0,
    }


def test_single_point_says_it_had_no_history(client: FlaskClient) -> None:
    point = {k: v for k, v in POINT.items() if k != "track_id"}
    body = client.post("/predict", json=point).get_json()
    assert body["mode"] == "single" and body["context_points"] == 1 and body["track_id"] is None
    assert 0 <= body["probability"] <= 1 and body["label"] in ("reentry", "non_reentry")


def test_streaming_point_by_point_equals_batch_and_cli(
    client: FlaskClient, trained_bundle: Path
) -> None:
    track = _track(trained_bundle)
    samples = samples_of(track)
    streamed = [client.post("/predict", json=s).get_json() for s in samples]
    assert [p["context_points"] for p in streamed[:12]] == [*range(1, 11), 10, 10]
    batch = client.post("/batch_predict", json={"samples": samples[::-1]}).get_json()
    assert batch["count"] == len(samples)
    batch_probability = [p["probability"] for p in batch["predictions"]][::-1]
    service = ModelInferenceService(trained_bundle / "models")
    offline = service.predict_batch(frame_columns(track)).probability
    np.testing.assert_allclose([p["probability"] for p in streamed], batch_probability, atol=1e-6)
    np.testing.assert_allclose(batch_probability, offline, atol=1e-6)
    assert [p["reentry_phase"] for p in streamed] == [
        p["reentry_phase"] for p in batch["predictions"]
    ][::-1]
    threshold = client.get("/info").get_json()["model"]["threshold"]
    _agree(streamed, threshold)
    _agree(batch["predictions"], threshold)
    # The answers are built as plain dicts: each must be what the documented models say.
    BatchResponse.model_validate(batch, strict=True)
    for p in [*streamed, *batch["predictions"]]:
        assert set(p) == set(Prediction.model_fields), p
        Prediction.model_validate(p, strict=True)
    assert set(batch) == set(BatchResponse.model_fields)
    # Not "reentry everywhere": the track has both phases, and so do the answers.
    assert set(track["reentry_phase"]) == {0, 1}
    assert {p["label"] for p in streamed} == {"reentry", "non_reentry"}
    assert client.get("/health").get_json()["store"]["active_streams"] == 1


def test_out_of_order_point_is_a_conflict(client: FlaskClient) -> None:
    assert client.post("/predict", json=POINT).status_code == 200
    _error(client.post("/predict", json=POINT), 409, "out_of_order")
    later = {**POINT, "timestamp": POINT["timestamp"] + 0.5}
    assert client.post("/predict", json=later).get_json()["context_points"] == 2


BAD_BODIES: list[tuple[bytes, int, str]] = [
    (b"{not json", 400, "bad_json"),
    (b'{"latitude": NaN, "longitude": 0, "altitude": 1}', 400, "bad_json"),
    (b'{"latitude": 1, "longitude": Infinity, "altitude": 1}', 400, "bad_json"),
    (b'{"latitude": 1, "longitude": 2, "altitude": -Infinity}', 400, "bad_json"),
    (b"[1, 2]", 422, "validation_error"),
    (b'{"longitude": 2, "altitude": 3}', 422, "validation_error"),
    (b'{"latitude": "1.0", "longitude": 2, "altitude": 3}', 422, "validation_error"),
    (b'{"latitude": true, "longitude": 2, "altitude": 3}', 422, "validation_error"),
    (b'{"latitude": 90.5, "longitude": 2, "altitude": 3}', 422, "validation_error"),
    (b'{"latitude": 1, "longitude": -180.5, "altitude": 3}', 422, "validation_error"),
    (
        b'{"latitude": 1, "longitude": 2, "altitude": 3, "track_id": 1.5, "timestamp": 1}',
        422,
        "validation_error",
    ),
    (b'{"latitude": 1, "longitude": 2, "altitude": 3, "track_id": 1}', 422, "validation_error"),
    (b"1e999", 422, "validation_error"),
    # Beyond the physical limits and the int64 range (these were 500s: OverflowError).
    (b'{"latitude": 1, "longitude": 2, "altitude": 1e308}', 422, "validation_error"),
    (b'{"latitude": 1, "longitude": 2, "altitude": -5000.5}', 422, "validation_error"),
    (
        b'{"latitude": 1, "longitude": 2, "altitude": 3, "radiometric_intensity": 1e5}',
        422,
        "validation_error",
    ),
    (b'{"latitude": 1, "longitude": 2, "altitude": 3, "timestamp": 5e9}', 422, "validation_error"),
    (
        b'{"latitude": 1, "longitude": 2, "altitude": 3, "timestamp": 1, '
        b'"track_id": 9223372036854775808}',
        422,
        "validation_error",
    ),
    (
        b'{"latitude": 1, "longitude": 2, "altitude": 3, "sensor_id": -9223372036854775809}',
        422,
        "validation_error",
    ),
    # ~1,000 levels of nesting made the JSON decoder raise RecursionError (a 500).
    (b"[" * 100_000 + b"]" * 100_000, 400, "bad_json"),
    (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, 400, "bad_json"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_predict_bodies(client: FlaskClient, body: bytes, status: int, code: str) -> None:
    _error(client.post("/predict", data=body, content_type="application/json"), status, code)


def test_validation_errors_name_the_field(client: FlaskClient) -> None:
    body = _error(client.post("/predict", json={**POINT, "latitude": 91}), 422, "validation_error")
    assert body["error"]["details"][0]["field"] == "latitude"
    assert body["error"]["message"].startswith("latitude:")
    high = _error(client.post("/predict", json={**POINT, "altitude": 2e7}), 422, "validation_error")
    assert high["error"]["message"] == "altitude: Input should be less than or equal to 10000000"


def test_the_documented_limits_are_the_ones_enforced(client: FlaskClient) -> None:
    # What /openapi.json states is what the server accepts, at both ends (limits inclusive).
    properties = client.get("/openapi.json").get_json()["components"]["schemas"]["Observation"][
        "properties"
    ]
    for field in ("altitude", "radiometric_intensity", "latitude", "longitude"):
        schema = properties[field].get("anyOf", [properties[field]])[0]  # nullable: anyOf
        low, high = schema["minimum"], schema["maximum"]
        for value, status in ((low, 200), (high, 200), (low - 0.5, 422), (high + 0.5, 422)):
            response = client.post("/predict", json={**POINT, "track_id": None, field: value})
            assert response.status_code == status, (field, value, response.get_json())


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"samples": []}, 422, "validation_error"),
        ({"samples": "x"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"samples": [POINT, POINT]}, 409, "duplicate_timestamp"),  # same stream, same time
        ({"samples": [{**POINT, "timestamp": None}]}, 422, "validation_error"),
    ],
)
def test_bad_batches(client: FlaskClient, payload: dict[str, Any], status: int, code: str) -> None:
    _error(client.post("/batch_predict", json=payload), status, code)


def test_limits_on_body_and_batch_size(trained_bundle: Path) -> None:
    app = create_app(
        {"model_path": trained_bundle / "models", "max_batch_size": 3, "max_content_length": 2048}
    )
    client = app.test_client()
    samples = [{**POINT, "timestamp": POINT["timestamp"] + i} for i in range(4)]
    _error(client.post("/batch_predict", json={"samples": samples}), 413, "batch_too_large")
    assert client.post("/batch_predict", json={"samples": samples[:3]}).status_code == 200
    _error(
        client.post("/predict", data=b" " * 5000, content_type="application/json"),
        413,
        "payload_too_large",
    )


def test_unknown_paths_and_methods_are_json(client: FlaskClient) -> None:
    _error(client.get("/nope"), 404, "not_found")
    _error(client.get("/predict"), 405, "method_not_allowed")


def test_info_and_openapi(client: FlaskClient) -> None:
    info = client.get("/info").get_json()
    assert info["model"]["model_version"] and len(info["features"]) == 16
    assert info["model"]["encoded_features"] == ["altitude", "altitude_over_max", "velocity_up"]
    assert "POST /predict" in info["endpoints"] and info["service"]["store"] == "memory"
    assert "LSTM" in info["model"]["metrics"]
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert {"/predict", "/batch_predict", "/health", "/livez", "/info", "/metrics"} <= set(
        spec["paths"]
    )
    observation = spec["components"]["schemas"]["Observation"]
    assert observation["properties"]["latitude"]["maximum"] == 90
    refs = json.dumps(spec)
    for name in ("Observation", "Prediction", "BatchRequest", "BatchResponse", "ErrorResponse"):
        assert f"#/components/schemas/{name}" in refs and name in spec["components"]["schemas"]


def test_metrics_count_requests_predictions_and_errors(
    client: FlaskClient, trained_bundle: Path
) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "missile_classifier_requests_total",
        "missile_classifier_request_duration_seconds",
        "missile_classifier_predictions_total",
        "missile_classifier_errors_total",
        "missile_classifier_inference_duration_seconds",
        "missile_classifier_model_info",
        "missile_classifier_active_streams",
    ):
        assert name in text
    single = {k: v for k, v in POINT.items() if k != "track_id"}
    samples = samples_of(_track(trained_bundle))
    # Counters are per process (other tests add to them too): compare two scrapes around a
    # known sequence of requests.
    before = _scrape(client)
    answered = [
        client.post("/predict", json=single).get_json(),
        client.post("/predict", json={**single, "altitude": 80_000.0}).get_json(),
        client.post("/predict", json=POINT).get_json(),
    ]
    _error(client.post("/predict", data=b"{", content_type="application/json"), 400, "bad_json")
    _error(client.post("/predict", json={**POINT, "latitude": 91}), 422, "validation_error")
    batch = client.post("/batch_predict", json={"samples": samples})
    assert batch.status_code == 200
    answered += batch.get_json()["predictions"]
    _error(client.get("/nope"), 404, "not_found")
    after = _scrape(client)

    requests = "missile_classifier_requests_total"
    assert _added(before, after, requests, method="POST", endpoint="/predict", status="200") == 3
    assert _added(before, after, requests, method="POST", endpoint="/predict", status="400") == 1
    assert _added(before, after, requests, method="POST", endpoint="/predict", status="422") == 1
    assert (
        _added(before, after, requests, method="POST", endpoint="/batch_predict", status="200") == 1
    )
    assert _added(before, after, requests, method="GET", endpoint="unmatched", status="404") == 1
    durations = "missile_classifier_request_duration_seconds_count"
    assert _added(before, after, durations, method="POST", endpoint="/predict") == 5
    assert _added(before, after, durations, method="GET", endpoint="unmatched") == 1
    errors = "missile_classifier_errors_total"
    for code in ("bad_json", "validation_error", "not_found"):
        assert _added(before, after, errors, type=code) == 1, code
    assert _added(before, after, errors, type="internal_error") == 0
    # One prediction counted per answered row, in the class it was answered with.
    ones = sum(p["reentry_phase"] == 1 for p in answered)
    zeros = sum(p["reentry_phase"] == 0 for p in answered)
    assert ones > 0 and zeros > 0 and ones + zeros == 3 + len(samples)
    predictions = "missile_classifier_predictions_total"
    assert _added(before, after, predictions, **{"class": "reentry"}) == ones
    assert _added(before, after, predictions, **{"class": "non_reentry"}) == zeros
    inference = "missile_classifier_inference_duration_seconds_count"
    assert _added(before, after, inference, kind="single") == 2
    assert _added(before, after, inference, kind="stream") == 1
    assert _added(before, after, inference, kind="batch") == 1


def copy_version(source: Path, models: Path, version: str) -> Path:
    """A copy of a bundle under another version (metadata.json is not among the checksums)."""
    target = models / version
    shutil.copytree(source, target)
    meta = json.loads((target / bundle.METADATA_FILE).read_text())
    (target / bundle.METADATA_FILE).write_text(json.dumps({**meta, "version": version}))
    return target


def test_a_new_version_leaves_the_old_store_to_the_requests_still_using_it(
    trained_bundle: Path, tmp_path: Path
) -> None:
    # Closing the old store at the switch cut a /health in the middle of its Redis round trip.
    models = tmp_path / "models"
    models.mkdir()
    source = (trained_bundle / "models" / "latest").resolve()
    copies = {version: copy_version(source, models, version) for version in ("v1", "v2")}
    bundle.point_latest(copies["v1"])
    app = create_app({"model_path": models})
    current = app.extensions["missile_classifier"]
    app.test_client().post("/predict", json=POINT)  # POINT has a track: a stream in the store
    old = current.store
    assert old.get((POINT["track_id"], POINT["sensor_id"])) is not None
    bundle.point_latest(copies["v2"])
    current.refresh()
    assert current.model.model_version == "v2" and current.store is not old
    # Still usable by a request that took it before the switch...
    assert old.get((POINT["track_id"], POINT["sensor_id"])) is not None
    # ...and closed once no request can still be running.
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    (closer,) = [t for t in timers if getattr(t.function, "__self__", None) is old]
    assert closer.interval == current.settings.timeout and closer.daemon
    closer.cancel()
    closer.function()
    assert old.get((POINT["track_id"], POINT["sensor_id"])) is None


def test_forked_workers_do_not_repeat_each_others_request_ids() -> None:
    # Ids come from the process's random generator, which each forked worker must reseed.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert re.fullmatch("[0-9a-f]{32}", child) and child != new_request_id()


def test_request_id_is_honoured_and_logged(
    trained_bundle: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Built inside the test so that its JSON log lines go to this test's captured stderr.
    client = create_app({"model_path": trained_bundle / "models"}).test_client()
    response = client.post("/predict", json=POINT, headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = [client.get("/livez").headers["X-Request-ID"] for _ in range(2)]  # when absent
    assert all(re.fullmatch("[0-9a-f]{32}", g) for g in generated)
    assert generated[0] != generated[1]
    # Not the header when it is no id: too long, or characters outside the allowed ones.
    for bad in ("x" * 129, "a b", "a,b"):
        answered = client.get("/livez", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch("[0-9a-f]{32}", answered)
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    record = next(r for r in lines if r.get("request_id") == "abc-123")
    assert record["endpoint"] == "/predict" and record["status"] == 200
    assert record["track_id"] == 7 and record["prediction"] in ("reentry", "non_reentry")
    assert 0 <= record["probability"] <= 1 and record["latency_ms"] > 0


def test_missing_model_is_not_ready_with_a_reason(tmp_path: Path) -> None:
    client = create_app({"model_path": tmp_path}).test_client()
    assert client.get("/livez").status_code == 200
    health = client.get("/health")
    assert health.status_code == 503 and "train one first" in health.get_json()["reason"]
    gone = create_app({"model_path": tmp_path / "lstm_model.h5"}).test_client().get("/health")
    assert gone.status_code == 503 and "no such file or folder" in gone.get_json()["reason"]
    _error(client.post("/predict", json=POINT), 503, "model_unavailable")
    assert client.get("/info").get_json()["model"] is None


def test_api_key_switch(trained_bundle: Path) -> None:
    client = create_app(
        {"model_path": trained_bundle / "models", "api_key": "s3cret"}
    ).test_client()
    _error(client.post("/predict", json=POINT), 401, "unauthorized")
    _error(client.post("/predict", json=POINT, headers={"X-API-Key": "s3cre"}), 401, "unauthorized")
    assert client.post("/predict", json=POINT, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200 and client.get("/metrics").status_code == 200


def test_rate_limit_switch(trained_bundle: Path) -> None:
    client = create_app(
        {"model_path": trained_bundle / "models", "rate_limit": "3/minute"}
    ).test_client()
    point = {k: v for k, v in POINT.items() if k != "track_id"}
    assert [client.post("/predict", json=point).status_code for _ in range(3)] == [200] * 3
    limited = client.post("/predict", json=point)
    _error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert client.get("/health").status_code == 200  # probes are never limited


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"port": 0}, "PORT"),
        ({"rate_limit": "lots"}, "RATE_LIMIT"),
        ({"redis_url": "http://x"}, "REDIS_URL"),
        ({"log_level": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_configuration_is_named(env: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_the_brief_environment_model_file_and_its_scaler(trained_bundle: Path) -> None:
    latest = trained_bundle / "models" / "latest"
    settings = {"model_path": latest / "model.onnx", "scaler_path": latest / "preprocessing.json"}
    application = create_app(settings)
    client = application.test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/info").get_json()["model"]["model_version"] == latest.resolve().name
    application.extensions["missile_classifier"].store.close()


def test_a_scaler_path_of_another_file_is_refused(trained_bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "preprocessing.json"
    shutil.copy(trained_bundle / "models" / "latest" / "preprocessing.json", other)
    models = trained_bundle / "models"
    with pytest.raises(ConfigError, match=r"SCALER_PATH=.* is not the preprocessing.json"):
        load_settings({"model_path": models, "scaler_path": other})
    with pytest.raises(ConfigError, match=r"SCALER_PATH=.*scaler\.pkl is not a file"):
        load_settings({"model_path": models, "scaler_path": tmp_path / "scaler.pkl"})


def test_reloading_the_same_model_keeps_the_streams(app: Flask, client: FlaskClient) -> None:
    assert client.post("/predict", json=POINT).status_code == 200
    state = app.extensions["missile_classifier"]
    state.mark_unusable("simulated failure")
    assert client.get("/health").status_code == 503  # retried only after RELOAD_INTERVAL_S
    state.load_model()
    later = {**POINT, "timestamp": POINT["timestamp"] + 0.5}
    assert client.post("/predict", json=later).get_json()["context_points"] == 2


def test_a_new_model_version_replaces_the_old_in_model_info(
    trained_bundle: Path, tmp_path: Path
) -> None:
    source = (trained_bundle / "models" / "latest").resolve()
    models = tmp_path / "models"
    shutil.copytree(source, models / source.name)
    bundle.point_latest(models / source.name)
    application = create_app({"model_path": models})
    client = application.test_client()
    newer = models / "29990101-000000"
    shutil.copytree(source, newer)
    meta = json.loads((newer / bundle.METADATA_FILE).read_text())
    for key in ("format", "version", "files"):
        del meta[key]
    bundle.write_metadata(newer, meta)
    bundle.point_latest(newer)
    state = application.extensions["missile_classifier"]
    state.load_model()
    text = client.get("/metrics").get_data(as_text=True)
    assert f'missile_classifier_model_info{{version="{source.name}"}} 0.0' in text
    assert 'missile_classifier_model_info{version="29990101-000000"} 1.0' in text
    state.store.close()


def test_trackless_samples_in_one_batch_are_each_a_stream_of_their_own(
    client: FlaskClient, trained_bundle: Path
) -> None:
    # Consecutive points of one sensor, sent without track_id: nothing joins them into a stream,
    # even with equal timestamps (one stream could not hold two rows at one time) or none.
    rows = samples_of(_track(trained_bundle))[200:206]
    samples = [{k: v for k, v in row.items() if k != "track_id"} for row in rows]
    samples[3]["timestamp"] = samples[2]["timestamp"]
    del samples[5]["timestamp"]
    del samples[4]["timestamp"]
    batch = client.post("/batch_predict", json={"samples": samples})
    assert batch.status_code == 200, batch.get_data(as_text=True)
    predictions = batch.get_json()["predictions"]
    assert [p["context_points"] for p in predictions] == [1] * 6
    assert {p["mode"] for p in predictions} == {"single"}
    assert all(p["track_id"] is None for p in predictions)
    alone = [client.post("/predict", json=sample).get_json() for sample in samples]
    assert [p["context_points"] for p in alone] == [1] * 6
    np.testing.assert_allclose(
        [p["probability"] for p in predictions], [p["probability"] for p in alone], atol=1e-6
    )
    assert client.get("/health").get_json()["store"]["active_streams"] == 0  # store untouched


def test_label_phase_and_threshold_agree_and_counters_follow_them(
    client: FlaskClient, trained_bundle: Path
) -> None:
    threshold = client.get("/info").get_json()["model"]["threshold"]
    frame = pd.read_csv(trained_bundle / "data" / "test.csv")
    assert set(frame["reentry_phase"]) == {0, 1}
    before = _scrape(client)
    batch = client.post("/batch_predict", json={"samples": samples_of(frame)}).get_json()
    points = [{k: v for k, v in s.items() if k != "track_id"} for s in samples_of(frame)[::40]]
    singles = [client.post("/predict", json=point).get_json() for point in points]
    after = _scrape(client)
    answered = batch["predictions"] + singles
    _agree(answered, threshold)
    labels = [p["label"] for p in answered]
    assert labels.count("reentry") > 0 and labels.count("non_reentry") > 0
    predictions = "missile_classifier_predictions_total"
    assert _added(before, after, predictions, **{"class": "reentry"}) == labels.count("reentry")
    assert _added(before, after, predictions, **{"class": "non_reentry"}) == labels.count(
        "non_reentry"
    )


def _batch_of_one_app(models: Path) -> Flask:
    """An app serving a model exported with a fixed batch of one (under ``models``): it passes
    the smoke test and answers single points, but ONNX Runtime raises on a batch of two."""
    bundle.point_latest(write_onnx_bundle(models / "20260101-000000", batch=1))
    return create_app({"model_path": models})


#: A point without a track, and a batch of two of it (what the batch-of-one model fails on).
SINGLE = {k: v for k, v in POINT.items() if k != "track_id"}
TWO_SINGLE = [SINGLE, {**SINGLE, "altitude": 2_000.0}]


def test_an_unexpected_inference_error_takes_the_model_out_of_service_until_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real failure inside ONNX Runtime: this model was exported with a fixed batch of one, so
    # it passes the smoke test (one point) and answers single points, but a batch of two makes
    # ONNX Runtime raise. The service cannot tell such a model from a broken one: it stops
    # serving it and says why, until a reload finds a usable bundle.
    models = tmp_path / "models"
    application = _batch_of_one_app(models)
    client = application.test_client()
    single, two = SINGLE, TWO_SINGLE
    assert client.get("/health").status_code == 200
    assert client.post("/predict", json=single).status_code == 200
    before = _scrape(client)

    failed = client.post("/batch_predict", json={"samples": two})
    _error(failed, 500, "internal_error")  # JSON, no stack trace
    assert "ONNXRuntimeError" not in failed.get_data(as_text=True)  # details stay in the logs
    health = client.get("/health")
    assert health.status_code == 503
    # Our words for clients; ONNX Runtime's own message goes only to the log.
    assert health.get_json()["reason"] == (
        "model unusable: inference failed (InvalidArgument); see the service logs"
    )
    _error(client.post("/predict", json=single), 503, "model_unavailable")
    info = client.get("/info").get_json()
    assert info["model"] is None and info["service"]["ready"] is False
    after = _scrape(client)
    assert _added(before, after, "missile_classifier_errors_total", type="internal_error") == 1
    assert after[("missile_classifier_model_ready_workers", frozenset())] == 0

    # A fixed bundle is published; the next readiness probe after the retry interval (made
    # immediate here) loads it, and batches work again.
    bundle.point_latest(write_onnx_bundle(models / "20260102-000000"))
    monkeypatch.setattr(service_state, "RELOAD_INTERVAL_S", 0.0)
    health = client.get("/health")
    assert health.status_code == 200, health.get_json()
    assert health.get_json()["model_version"] == "20260102-000000"
    batch = client.post("/batch_predict", json={"samples": two})
    assert batch.status_code == 200 and batch.get_json()["count"] == 2
    assert _scrape(client)[("missile_classifier_model_ready_workers", frozenset())] == 1
    application.extensions["missile_classifier"].store.close()


def test_a_probability_equal_to_the_threshold_is_reentry(tmp_path: Path) -> None:
    # The hand-built model answers sigmoid(mean of the window); a point at 0°N 0°E, altitude 0,
    # intensity 0 has every feature 0, so its probability is exactly 0.5, the bundle's threshold.
    application = create_app({"model_path": write_onnx_bundle(tmp_path / "v1")})
    client = application.test_client()
    assert client.get("/info").get_json()["model"]["threshold"] == 0.5
    zero = {"latitude": 0.0, "longitude": 0.0, "altitude": 0.0, "radiometric_intensity": 0.0}
    body = client.post("/predict", json=zero).get_json()
    assert body["probability"] == 0.5
    assert (body["reentry_phase"], body["label"]) == (1, "reentry")
    above = client.post("/predict", json={**zero, "altitude": 100.0}).get_json()
    below = client.post("/predict", json={**zero, "altitude": -100.0}).get_json()
    assert above["probability"] > 0.5 and (above["reentry_phase"], above["label"]) == (1, "reentry")
    assert below["probability"] < 0.5 and (below["reentry_phase"], below["label"]) == (
        0,
        "non_reentry",
    )
    application.extensions["missile_classifier"].store.close()


def _break_bundle(directory: Path, how: str) -> None:
    """Make a valid hand-built bundle unusable in one way, with checksums that still match."""
    from test_bundle import tiny_onnx_model

    if how == "width":  # a model for 5 values per row; preprocessing makes 16
        tiny_onnx_model(directory / bundle.MODEL_FILE, 3, 5)
    elif how == "garbage":  # not an ONNX model at all
        (directory / bundle.MODEL_FILE).write_bytes(b"not a protobuf")
    else:  # the features in another order: the scaler would be applied to the wrong columns
        pre = json.loads((directory / bundle.PREPROCESSING_FILE).read_text())
        pre["feature_names"] = pre["feature_names"][::-1]
        (directory / bundle.PREPROCESSING_FILE).write_text(json.dumps(pre))
    meta = json.loads((directory / bundle.METADATA_FILE).read_text())
    for key in ("format", "version", "files"):
        del meta[key]
    bundle.write_metadata(directory, meta)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("width", r"takes windows of shape \['batch', 3, 5\].*makes \[batch, 3, 16\]"),
        ("garbage", "ONNX Runtime cannot load it"),
        ("features", "trained on the features .*retrain the model"),
    ],
)
def test_an_unusable_model_leaves_the_worker_live_but_not_ready(
    tmp_path: Path, how: str, reason: str
) -> None:
    directory = write_onnx_bundle(tmp_path / "v1")
    _break_bundle(directory, how)
    application = create_app({"model_path": directory})  # no crash: the worker stays up
    client = application.test_client()
    assert client.get("/livez").status_code == 200
    health = client.get("/health")
    assert health.status_code == 503
    assert re.search(reason, health.get_json()["reason"]), health.get_json()["reason"]
    application.extensions["missile_classifier"].store.close()


def test_a_batch_with_two_points_of_one_stream_at_one_time_names_them(client: FlaskClient) -> None:
    other = {**POINT, "timestamp": POINT["timestamp"] + 1}
    alone = {k: v for k, v in POINT.items() if k != "track_id"}  # its own stream: no clash
    samples = [POINT, other, alone, alone, {**POINT, "altitude": 2_000.0}, other]
    body = _error(
        client.post("/batch_predict", json={"samples": samples}), 409, "duplicate_timestamp"
    )
    assert body["error"]["message"] == (
        "samples 0 and 4 are both of track 7 sensor 3 at timestamp 1731308400.0: a stream has "
        "one point per time"
    )
    assert body["error"]["details"] == [
        {"samples": [0, 4], "problem": "same track, sensor and timestamp"},
        {"samples": [1, 5], "problem": "same track, sensor and timestamp"},
    ]
    # Another sensor's point at the same time is another stream.
    fine = [POINT, {**POINT, "sensor_id": 4}, alone, alone]
    assert client.post("/batch_predict", json={"samples": fine}).status_code == 200


# --- Every field of every answer, and the counters that follow them -----------------------------

#: One stream with glitches: a point far above (altitude rule), one far north (position rule),
#: a point that agrees again, three more glitches and, 20 s later, a point that agrees with the
#: glitches: after RESTART_AFTER quarantined points and RESTART_AFTER_S seconds it restarts the
#: stream. (12 km/s cannot cover 500 km of altitude or 5° of latitude in a few seconds.)
_HIGH = 501_000.0
GLITCHY = [
    {**POINT, "timestamp": POINT["timestamp"] + dt, **change}
    for dt, change in (
        (0, {}),
        (1, {"altitude": _HIGH}),
        (2, {"latitude": 69.1}),
        (3, {"altitude": 1_100.0}),
        (4, {"altitude": _HIGH}),
        (5, {"altitude": _HIGH}),
        (6, {"altitude": _HIGH}),
        (20, {"altitude": _HIGH}),
        (21, {"altitude": _HIGH + 100.0}),
    )
]
GLITCHY_QUARANTINE = [
    None,
    "altitude_jump",
    "position_jump",
    None,
    "altitude_jump",
    "altitude_jump",
    "altitude_jump",
    None,
    None,
]
GLITCHY_CONTEXT = [1, 1, 1, 2, 2, 2, 2, 1, 2]


def _echoes(answer: dict[str, Any], sample: dict[str, Any]) -> None:
    """The answer names the observation it is about."""
    assert answer["track_id"] == sample.get("track_id")
    # A stream's sensor is its key (0 unless sent); a point alone echoes only what was sent.
    alone = sample.get("track_id") is None
    assert answer["sensor_id"] == sample.get("sensor_id", None if alone else 0)
    assert answer["timestamp"] == sample.get("timestamp")


def test_a_stream_answer_says_how_it_used_the_history_and_counts_it(
    client: FlaskClient,
) -> None:
    version = client.get("/info").get_json()["model"]["model_version"]
    threshold = client.get("/info").get_json()["model"]["threshold"]
    before = _scrape(client)
    answers = [client.post("/predict", json=point).get_json() for point in GLITCHY]
    after = _scrape(client)
    for answer, point in zip(answers, GLITCHY, strict=True):
        _echoes(answer, point)
        assert answer["mode"] == "stream" and answer["model_version"] == version
    assert [a["history"] for a in answers] == [
        "started",
        *["continued"] * 6,
        "restarted",
        "continued",
    ]
    assert [a["quarantine"] for a in answers] == GLITCHY_QUARANTINE
    assert [a["context_points"] for a in answers] == GLITCHY_CONTEXT
    # A quarantined point gets its stream's last accepted answer.
    for last, glitches in ((0, (1, 2)), (3, (4, 5, 6))):
        for i in glitches:
            assert answers[i]["probability"] == answers[last]["probability"]
            assert answers[i]["label"] == answers[last]["label"]
    _agree(answers, threshold)
    quarantined = "missile_classifier_quarantined_total"
    assert _added(before, after, quarantined, rule="altitude_jump") == 4
    assert _added(before, after, quarantined, rule="position_jump") == 1
    starts = "missile_classifier_stream_starts_total"
    assert _added(before, after, starts, history="started") == 1
    assert _added(before, after, starts, history="restarted") == 1
    predictions = "missile_classifier_predictions_total"
    labels = [a["label"] for a in answers]
    assert _added(before, after, predictions, **{"class": "reentry"}) == labels.count("reentry")
    assert _added(before, after, predictions, **{"class": "non_reentry"}) == labels.count(
        "non_reentry"
    )


def test_a_batch_answers_each_sample_in_its_place_with_its_own_mode(
    client: FlaskClient,
) -> None:
    # The glitchy stream with trackless points between its rows: the stream is judged as over
    # /predict (quarantine, context), each trackless point alone, every answer where it was asked.
    alone = [
        {"latitude": 10.0, "longitude": 20.0, "altitude": 30_000.0, "sensor_id": 5},
        {"latitude": -10.0, "longitude": 40.0, "altitude": 5.0, "timestamp": 1_000.0},
    ]
    samples = [*GLITCHY[:4], alone[0], *GLITCHY[4:], alone[1]]
    before = _scrape(client)
    body = client.post("/batch_predict", json={"samples": samples}).get_json()
    after = _scrape(client)
    version = client.get("/info").get_json()["model"]["model_version"]
    assert body["count"] == len(samples) and body["model_version"] == version
    answers = body["predictions"]
    for answer, sample in zip(answers, samples, strict=True):
        _echoes(answer, sample)
        assert answer["history"] is None and answer["model_version"] == version
    trackless = [answers[4], answers[-1]]
    stream = answers[:4] + answers[5:-1]
    assert [a["mode"] for a in trackless] == ["single", "single"]
    assert [a["context_points"] for a in trackless] == [1, 1]
    assert [a["quarantine"] for a in trackless] == [None, None]
    assert {a["mode"] for a in stream} == {"stream"}
    assert [a["quarantine"] for a in stream] == GLITCHY_QUARANTINE
    assert [a["context_points"] for a in stream] == GLITCHY_CONTEXT
    # Same numbers as asked one by one: the stream over /predict, a trackless point alone.
    streamed = [client.post("/predict", json=point).get_json() for point in GLITCHY]
    np.testing.assert_allclose(
        [a["probability"] for a in stream], [a["probability"] for a in streamed], atol=1e-6
    )
    single = [client.post("/predict", json=point).get_json() for point in alone]
    np.testing.assert_allclose(
        [a["probability"] for a in trackless], [a["probability"] for a in single], atol=1e-6
    )
    quarantined = "missile_classifier_quarantined_total"
    assert _added(before, after, quarantined, rule="altitude_jump") == 4
    assert _added(before, after, quarantined, rule="position_jump") == 1
    starts = "missile_classifier_stream_starts_total"  # a batch starts no stored stream
    assert _added(before, after, starts, history="started") == 0
    labels = [a["label"] for a in answers]
    predictions = "missile_classifier_predictions_total"
    assert _added(before, after, predictions, **{"class": "reentry"}) == labels.count("reentry")
    assert _added(before, after, predictions, **{"class": "non_reentry"}) == labels.count(
        "non_reentry"
    )


def test_a_single_point_answer_in_full(client: FlaskClient) -> None:
    version = client.get("/info").get_json()["model"]["model_version"]
    point = {"latitude": 64.1, "longitude": -21.9, "altitude": 1_000.0, "sensor_id": 9}
    timed = {**point, "timestamp": 1731308400.0, "radiometric_intensity": None}
    for sample in (point, timed):
        body = client.post("/predict", json=sample).get_json()
        assert set(body) == {
            "track_id",
            "sensor_id",
            "timestamp",
            "probability",
            "reentry_phase",
            "label",
            "context_points",
            "mode",
            "quarantine",
            "history",
            "maximum_established",
            "model_version",
        }
        _echoes(body, sample)
        assert body["maximum_established"] is False  # one point has seen no climb
        assert (body["mode"], body["context_points"], body["history"], body["quarantine"]) == (
            "single",
            1,
            None,
            None,
        )
        assert body["model_version"] == version


def test_a_stream_may_start_at_time_zero(client: FlaskClient) -> None:
    # 0.0 is a legal timestamp (1970): it is the point's time, not "no time".
    first = client.post("/predict", json={**POINT, "timestamp": 0.0}).get_json()
    second = client.post("/predict", json={**POINT, "timestamp": 0.5, "altitude": 1_010.0})
    assert (first["timestamp"], first["context_points"], first["history"]) == (0.0, 1, "started")
    assert second.status_code == 200, second.get_json()
    assert (second.get_json()["context_points"], second.get_json()["history"]) == (2, "continued")


def test_a_missing_intensity_is_scored_as_missing(
    client: FlaskClient, trained_bundle: Path
) -> None:
    # null and absent are the same (NaN, filled by the features), for /predict and batches.
    point = {"latitude": 64.1, "longitude": -21.9, "altitude": 1_000.0}
    offline = ModelInferenceService(trained_bundle / "models").predict_single(
        {
            "timestamp": 0.0,
            "latitude": 64.1,
            "longitude": -21.9,
            "altitude": 1_000.0,
            "radiometric_intensity": float("nan"),
        }
    )
    expected = float(offline.probability[0])
    for sample in (point, {**point, "radiometric_intensity": None}):
        assert client.post("/predict", json=sample).get_json()["probability"] == pytest.approx(
            expected, abs=1e-7
        )
    batch = client.post("/batch_predict", json={"samples": [point, {**point, "sensor_id": 2}]})
    assert [p["probability"] for p in batch.get_json()["predictions"]] == pytest.approx(
        [expected, expected], abs=1e-7
    )


def test_out_of_order_names_the_stream_and_keeps_the_model_in_service(
    client: FlaskClient,
) -> None:
    assert client.post("/predict", json=POINT).status_code == 200
    earlier = {**POINT, "timestamp": POINT["timestamp"] - 0.5}
    body = _error(client.post("/predict", json=earlier), 409, "out_of_order")
    assert body["error"]["message"] == (
        "track 7 sensor 3: timestamps of a stream must strictly increase "
        "(timestamp 1731308399.5 is not after the stream's last point)"
    )
    assert client.get("/health").status_code == 200  # a client's mistake, not the model's


def test_a_track_id_without_a_timestamp_is_named(client: FlaskClient) -> None:
    body = _error(
        client.post("/predict", json={**POINT, "timestamp": None}), 422, "validation_error"
    )
    assert body["error"] == {
        "code": "validation_error",
        "message": "timestamp: required with track_id",
    }
    alone = {k: v for k, v in POINT.items() if k != "track_id"}
    samples = [alone, {**POINT, "timestamp": None}, POINT, {**POINT, "timestamp": None}]
    body = _error(client.post("/batch_predict", json={"samples": samples}), 422, "validation_error")
    assert body["error"]["message"] == "samples.1.timestamp: required with track_id"
    assert body["error"]["details"] == [
        {"field": "samples.1.timestamp", "problem": "required with track_id"},
        {"field": "samples.3.timestamp", "problem": "required with track_id"},
    ]


# --- Request bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"latitude": NaN}', "request body is not valid JSON: NaN is not a valid JSON number"),
        (
            b'{"latitude": Infinity}',
            "request body is not valid JSON: Infinity is not a valid JSON number",
        ),
        (
            b'{"latitude": -Infinity}',
            "request body is not valid JSON: -Infinity is not a valid JSON number",
        ),
        (
            b"{not json",
            "request body is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "request body is nested too deeply"),
    ],
)
def test_a_body_that_is_not_json_says_why(client: FlaskClient, body: bytes, message: str) -> None:
    answer = _error(
        client.post("/predict", data=body, content_type="application/json"), 400, "bad_json"
    )
    assert answer["error"] == {"code": "bad_json", "message": message}


def test_validation_errors_list_every_field_by_its_path(client: FlaskClient) -> None:
    whole = _error(
        client.post("/predict", data=b"[1, 2]", content_type="application/json"),
        422,
        "validation_error",
    )
    problem = "Input should be a valid dictionary or instance of Observation"
    assert whole["error"]["message"] == f"body: {problem}"  # the body itself is wrong
    assert whole["error"]["details"] == [{"field": "", "problem": problem}]
    samples = [{"latitude": 1, "longitude": 2}, {"latitude": "x", "longitude": 2, "altitude": 3}]
    batch = _error(
        client.post("/batch_predict", json={"samples": samples}), 422, "validation_error"
    )
    assert batch["error"]["message"] == "samples.0.altitude: Field required"
    assert batch["error"]["details"] == [
        {"field": "samples.0.altitude", "problem": "Field required"},
        {"field": "samples.1.latitude", "problem": "Input should be a valid number"},
    ]


def test_max_batch_size_is_the_most_samples_accepted(trained_bundle: Path) -> None:
    application = create_app({"model_path": trained_bundle / "models", "max_batch_size": 3})
    client = application.test_client()
    alone = {k: v for k, v in POINT.items() if k != "track_id"}
    exactly = client.post("/batch_predict", json={"samples": [alone] * 3})
    assert exactly.status_code == 200 and exactly.get_json()["count"] == 3
    body = _error(
        client.post("/batch_predict", json={"samples": [alone] * 4}), 413, "batch_too_large"
    )
    assert body["error"]["message"] == "4 samples; at most 3 per request (MAX_BATCH_SIZE)"
    # Counted before the samples are read: a too large batch of bad samples is still a 413.
    _error(client.post("/batch_predict", json={"samples": [{}] * 4}), 413, "batch_too_large")
    # /predict has no batch: a "samples" list in its body is an unknown field, ignored.
    assert client.post("/predict", json={**alone, "samples": [1] * 5}).status_code == 200
    application.extensions["missile_classifier"].store.close()


# --- Model out of service ------------------------------------------------------------------------


def test_without_a_model_the_answer_gives_the_reason(
    tmp_path: Path, app: Flask, client: FlaskClient
) -> None:
    missing = create_app({"model_path": tmp_path}).test_client()
    reason = missing.get("/health").get_json()["reason"]
    body = _error(missing.post("/predict", json=POINT), 503, "model_unavailable")
    assert body["error"]["message"] == reason and "train one first" in reason
    # A state with no model and no reason recorded (never left by the state's own methods)
    # still answers in words.
    state = app.extensions["missile_classifier"]
    state.model, state.reason = None, None
    body = _error(client.post("/predict", json=POINT), 503, "model_unavailable")
    assert body["error"]["message"] == "model not loaded"


def test_an_inference_failure_is_logged_once_with_its_type(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The batch-of-one model of the test above: ONNX Runtime fails on a batch of two.
    application = _batch_of_one_app(tmp_path / "models")
    client = application.test_client()
    _error(client.post("/batch_predict", json={"samples": TWO_SINGLE}), 500, "internal_error")
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    failed = [r for r in lines if r.get("event") == "inference_failed"]
    assert len(failed) == 1, lines
    assert failed[0]["level"] == "error" and failed[0]["error_type"] == "InvalidArgument"
    assert "ONNXRuntimeError" in failed[0]["error"]
    application.extensions["missile_classifier"].store.close()


def test_inference_time_is_measured_around_the_inference(client: FlaskClient) -> None:
    single = {k: v for k, v in POINT.items() if k != "track_id"}
    before = _scrape(client)
    started = time.perf_counter()
    assert client.post("/predict", json=single).status_code == 200
    elapsed = time.perf_counter() - started
    after = _scrape(client)
    name = "missile_classifier_inference_duration_seconds"
    assert _added(before, after, f"{name}_count", kind="single") == 1
    assert 0 < _added(before, after, f"{name}_sum", kind="single") <= elapsed


# --- /health, /info, /openapi.json, /metrics ----------------------------------------------------


def test_health_of_one_process_in_full(app: Flask, client: FlaskClient) -> None:
    version = client.get("/info").get_json()["model"]["model_version"]
    assert client.get("/health").get_json() == {
        "status": "ok",
        "model_version": version,
        "store": {"kind": "memory", "ok": True, "active_streams": 0},
    }
    assert client.post("/predict", json=POINT).status_code == 200
    app.extensions["missile_classifier"].notice = "new bundle v2 not loaded (bad); serving v1"
    body = client.get("/health").get_json()
    assert body["store"]["active_streams"] == 1
    assert body["notice"] == "new bundle v2 not loaded (bad); serving v1"


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_health_answers_for_every_worker_of_the_pod(
    trained_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under gunicorn each worker publishes its status in workers/ of PROMETHEUS_MULTIPROC_DIR.
    # Here this process is one worker (it publishes itself when its model loads) and the
    # others are status files for live processes (our parent) and a dead one.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # Two workers expected: a Redis store (at a port nobody listens on: the store is down).
    application = create_app(
        {
            "model_path": trained_bundle / "models",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",
            "workers": 2,
        }
    )
    client = application.test_client()
    me, other = os.getpid(), os.getppid()
    version = application.extensions["missile_classifier"].model.model_version
    mine = {"pid": me, "ready": True, "model_version": version}
    pod.publish(pod.WorkerStatus(_dead_pid(), True, version))  # gone: not counted
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json() == {
        "status": "unavailable",
        "reason": "1 of 2 workers ready (starting)",
        "workers": [mine],
    }

    pod.publish(pod.WorkerStatus(other, False, None, "model unavailable: no bundle"))
    health = client.get("/health")
    assert health.status_code == 503
    body = health.get_json()
    assert body["reason"] == f"1 of 2 workers ready: worker {other}: model unavailable: no bundle"
    assert sorted(body["workers"], key=lambda w: w["pid"] != me) == [
        mine,
        {"pid": other, "ready": False, "reason": "model unavailable: no bundle"},
    ]

    noticed = "new bundle v2 not loaded (bad); serving the previous version"
    pod.publish(pod.WorkerStatus(other, True, version, noticed))
    health = client.get("/health")
    assert health.status_code == 200  # ready, degraded: the store is down
    body = health.get_json()
    assert {k: body[k] for k in ("status", "reason", "model_version", "store", "notice")} == {
        "status": "degraded",
        "reason": "track store unavailable: stream predictions answer 503",
        "model_version": version,
        "store": {"kind": "redis", "ok": False, "error": "Redis is unreachable"},
        "notice": noticed,
    }
    assert len(body["workers"]) == 2
    application.extensions["missile_classifier"].store.close()


def test_a_down_store_pauses_only_stream_predictions(trained_bundle: Path) -> None:
    application = create_app(
        {"model_path": trained_bundle / "models", "redis_url": f"redis://127.0.0.1:{free_port()}"}
    )
    client = application.test_client()
    body = _error(client.post("/predict", json=POINT), 503, "store_unavailable")
    assert body["error"]["message"] == (
        "track store unavailable (Redis is unreachable), stream predictions paused; "
        "predictions without track_id and /batch_predict still work"
    )
    alone = {k: v for k, v in POINT.items() if k != "track_id"}
    assert client.post("/predict", json=alone).status_code == 200
    assert client.post("/batch_predict", json={"samples": [POINT]}).status_code == 200
    application.extensions["missile_classifier"].store.close()


def test_info_in_full_and_with_the_security_switches(trained_bundle: Path) -> None:
    models = trained_bundle / "models"
    plain = create_app({"model_path": models}).test_client().get("/info").get_json()
    assert plain["service"] == {
        "name": "missile-classifier",
        "version": __version__,
        "store": "memory",
        "ready": True,
        "reason": None,
        "max_batch_size": 10_000,
        "max_content_length": 10 * 1024 * 1024,
        "api_key_required": False,
        "rate_limit": None,
        "workers": 1,
        "inference_threads": 1,
    }
    assert plain["endpoints"] == [
        "GET /livez",
        "GET /health",
        "POST /predict",
        "POST /batch_predict",
        "GET /info",
        "GET /metrics",
        "GET /openapi.json",
    ]
    assert plain["features"] == list(FEATURE_NAMES)
    guarded = create_app(
        {
            "model_path": models,
            "api_key": "s3cret",
            "rate_limit": "3/minute",
            "max_batch_size": 7,
            "max_content_length": 4096,
        }
    ).test_client()
    service = guarded.get("/info", headers={"X-API-Key": "s3cret"}).get_json()["service"]
    assert (
        service["api_key_required"],
        service["rate_limit"],
        service["max_batch_size"],
        service["max_content_length"],
    ) == (True, "3/minute", 7, 4096)


@pytest.mark.parametrize(
    ("switches", "extra"),
    [({}, []), ({"api_key": "k"}, ["401"]), ({"rate_limit": "9/second"}, ["429"])],
)
def test_openapi_documents_the_switches_that_are_on(
    trained_bundle: Path, switches: dict[str, str], extra: list[str]
) -> None:
    client = create_app({"model_path": trained_bundle / "models", **switches}).test_client()
    spec = client.get("/openapi.json").get_json()
    assert spec["info"]["version"] == __version__
    statuses = ["400", "408", "409", "413", "415", "422", "500", "503"]
    for path in ("/predict", "/batch_predict"):
        operation = spec["paths"][path]["post"]
        assert sorted(operation["responses"]) == sorted(["200", *statuses, *extra]), path
        assert operation.get("security") == ([{"ApiKey": []}] if "api_key" in switches else None)
    assert sorted(spec["paths"]["/info"]["get"]["responses"]) == ["200", *extra]
    schemes = spec["components"].get("securitySchemes")
    assert schemes == (
        {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        if "api_key" in switches
        else None
    )


def test_metrics_refresh_the_store_gauges_at_scrape_time(client: FlaskClient) -> None:
    streams: tuple[str, frozenset[tuple[str, str]]] = (
        "missile_classifier_active_streams",
        frozenset(),
    )
    assert _scrape(client)[streams] == 0
    for track in (1, 2):
        assert client.post("/predict", json={**POINT, "track_id": track}).status_code == 200
    scrape = _scrape(client)  # no /health in between: the scrape itself looked
    assert scrape[streams] == 2
    assert scrape[("missile_classifier_track_store_up", frozenset())] == 1
    response = client.get("/metrics")
    assert response.content_type == CONTENT_TYPE_LATEST


def test_points_far_outside_the_training_ranges_are_counted_logged_and_still_answered(
    trained_bundle: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The challenge tracks fly from Iceland to Colorado: a point in the southern hemisphere,
    # east of Greenwich, is beyond their latitude and longitude ranges (by far more than the
    # margin), and so is 5,000 km of altitude; a point on their path is not.
    client = create_app({"model_path": trained_bundle / "models"}).test_client()
    ranges = client.get("/info").get_json()["model"]["input_ranges"]
    assert set(ranges) == {*FEATURE_NAMES, "dt"}
    low, high = ranges["latitude"]
    assert 35.0 < low < high < 70.0 and ranges["dt"][0] > 0
    far = {
        "latitude": -45.0,
        "longitude": 150.0,
        "altitude": 5e6,
        "radiometric_intensity": 0.5,
        "track_id": 77,
        "timestamp": 1.0,
    }
    near = {"latitude": 50.0, "longitude": -60.0, "altitude": 50e3, "radiometric_intensity": 0.5}
    before = _scrape(client)
    answer = client.post("/predict", json=far, headers={"X-Request-ID": "far-1"})
    assert answer.status_code == 200 and 0 <= answer.get_json()["probability"] <= 1
    assert client.post("/predict", json=near, headers={"X-Request-ID": "near-1"}).status_code == 200
    alone = {k: v for k, v in far.items() if k not in ("track_id", "timestamp")}
    batch = client.post("/batch_predict", json={"samples": [near, alone, alone]})
    assert batch.status_code == 200
    after = _scrape(client)
    name = "missile_classifier_out_of_range_total"
    assert _added(before, after, name, feature="latitude") == 3
    assert _added(before, after, name, feature="longitude") == 3
    assert _added(before, after, name, feature="altitude") == 3
    assert _added(before, after, name, feature="radiometric_intensity") == 0
    assert (name, frozenset({("feature", "dt")})) in after  # every series exported from the start
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    by_id = {r.get("request_id"): r for r in lines}
    assert {"altitude", "latitude", "longitude"} <= set(by_id["far-1"]["out_of_range"])
    assert "out_of_range" not in by_id["near-1"]
    batch_line = next(r for r in lines if r.get("endpoint") == "/batch_predict")
    assert batch_line["out_of_range"]["latitude"] == 2


def test_a_stream_first_seen_on_its_descent_says_its_maximum_is_not_established(
    client: FlaskClient,
) -> None:
    # First seen at 60 km and falling: its running maximum is where it was first seen. A
    # stream seen climbing 2 km is established from the point where it had climbed 1 km.
    falling = [
        {
            "track_id": 81,
            "timestamp": 10.0 + i,
            "latitude": 50.0,
            "longitude": -60.0,
            "altitude": 60e3 - 1e3 * i,
        }
        for i in range(4)
    ]
    climbing = [
        {
            "track_id": 82,
            "timestamp": 10.0 + i,
            "latitude": 50.0,
            "longitude": -60.0,
            "altitude": 20e3 + 700.0 * i,
        }
        for i in range(4)
    ]
    answers = [client.post("/predict", json=p).get_json() for p in falling + climbing]
    assert [a["maximum_established"] for a in answers] == [False] * 4 + [False, False, True, True]
    batch = client.post("/batch_predict", json={"samples": falling + climbing}).get_json()
    assert [a["maximum_established"] for a in batch["predictions"]] == [
        a["maximum_established"] for a in answers
    ]


@pytest.mark.parametrize(("setting", "threads"), [(None, 1), (3, 3)])
def test_onnx_runtime_threads_follow_the_setting_and_never_spin(
    trained_bundle: Path, setting: int | None, threads: int
) -> None:
    overrides: dict[str, object] = {"model_path": trained_bundle / "models"}
    if setting is not None:
        overrides["inference_threads"] = setting
    application = create_app(overrides)
    model = application.extensions["missile_classifier"].model
    options = model._session.get_session_options()
    assert options.intra_op_num_threads == threads
    assert model.calls == 1 and model._pool is None  # the request threads give concurrency
    # Idle runtime threads sleep instead of spinning: the cores belong to the request threads.
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    service = application.test_client().get("/info").get_json()["service"]
    assert (service["workers"], service["inference_threads"]) == (1, threads)
    application.extensions["missile_classifier"].store.close()


def test_batch_scoring_runs_a_call_per_core_each_of_one_runtime_thread(
    trained_bundle: Path,
) -> None:
    model = ModelInferenceService(trained_bundle / "models")
    options = model._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert model.calls == usable_cores()
    with pytest.raises(RuntimeError, match="does not have configuration"):  # not set: spinning
        options.get_session_config_entry("session.intra_op.allow_spinning")
