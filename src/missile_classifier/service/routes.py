"""The HTTP endpoints: health, predictions, metadata, metrics and the OpenAPI document."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any, TypeVar

import numpy as np
from flask import Blueprint, Response, current_app, g, jsonify
from pydantic import BaseModel, ValidationError

from missile_classifier import __version__
from missile_classifier.columns import (
    ALTITUDE,
    INTENSITY,
    LATITUDE,
    LONGITUDE,
    SENSOR_ID,
    TIMESTAMP,
    TRACK_ID,
)
from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.scoring.inference import ModelInferenceService, Scores
from missile_classifier.scoring.plausibility import REASONS
from missile_classifier.scoring.windows import StreamMemory
from missile_classifier.service import metrics, pod
from missile_classifier.service.body import check_content_type, read_body
from missile_classifier.service.errors import ApiError
from missile_classifier.service.logs import get_logger
from missile_classifier.service.openapi import openapi_document
from missile_classifier.service.schemas import (
    BatchRequest,
    HealthResponse,
    InfoResponse,
    Observation,
    StoreStatus,
    WorkerHealth,
)
from missile_classifier.service.state import ServiceState, store_problem
from missile_classifier.service.track_store import StoreUnavailable

api = Blueprint("api", __name__)
M = TypeVar("M", bound=BaseModel)
ENDPOINTS = (
    "GET /livez",
    "GET /health",
    "POST /predict",
    "POST /batch_predict",
    "GET /info",
    "GET /metrics",
    "GET /openapi.json",
)


def state() -> ServiceState:
    """This worker's service state."""
    service_state: ServiceState = current_app.extensions["missile_classifier"]
    return service_state


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_body(model: type[M], max_items: int | None = None) -> M:
    """Parse the request body strictly as JSON (no NaN/Infinity) into ``model``."""
    check_content_type()
    raw = read_body(state().settings.max_content_length)
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # also JSONDecodeError, UnicodeDecodeError and NaN/Infinity
        raise ApiError(400, "bad_json", f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder gives up on ~1,000 levels of nesting
        raise ApiError(400, "bad_json", "request body is nested too deeply") from None
    samples = data.get("samples") if isinstance(data, dict) else None
    if max_items is not None and isinstance(samples, list) and len(samples) > max_items:
        raise ApiError(
            413,
            "batch_too_large",
            f"{len(samples)} samples; at most {max_items} per request (MAX_BATCH_SIZE)",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = details[0]
        raise ApiError(
            422, "validation_error", f"{first['field'] or 'body'}: {first['problem']}", details
        ) from None


def _model() -> ModelInferenceService:
    current = state()
    if current.model is None:
        raise ApiError(503, "model_unavailable", current.reason or "model not loaded")
    return current.model


def _columns(samples: list[Observation], track_ids: list[int]) -> dict[str, np.ndarray]:
    intensity = [
        np.nan if s.radiometric_intensity is None else s.radiometric_intensity for s in samples
    ]
    return {
        TIMESTAMP: np.array([s.timestamp or 0.0 for s in samples], dtype=np.float64),
        TRACK_ID: np.array(track_ids, dtype=np.int64),
        SENSOR_ID: np.array([s.sensor_id for s in samples], dtype=np.int64),
        LATITUDE: np.array([s.latitude for s in samples], dtype=np.float64),
        LONGITUDE: np.array([s.longitude for s in samples], dtype=np.float64),
        ALTITUDE: np.array([s.altitude for s in samples], dtype=np.float64),
        INTENSITY: np.array(intensity, dtype=np.float64),
    }


def _echoed_sensor(sample: Observation) -> int | None:
    """The sensor as the answer gives it: the stream's key with a track (0 unless sent), else
    only what the client sent (a point on its own has no stream to key)."""
    if sample.track_id is not None or "sensor_id" in sample.model_fields_set:
        return sample.sensor_id
    return None


def _predictions(
    samples: list[Observation], scores: Scores, version: str, history: str | None = None
) -> list[dict[str, Any]]:
    """The answers, as plain dicts with the fields of :class:`Prediction`.

    Building and dumping a thousand pydantic models took 7–8 ms of a ~45 ms /batch_predict,
    dicts 3 ms; the tests validate the answers against the model instead.
    """
    phases, probabilities, contexts, quarantines, established = (
        a.tolist()
        for a in (
            scores.reentry_phase,
            scores.probability,
            scores.context_points,
            scores.quarantine,
            scores.maximum_established,
        )
    )
    out = [
        {
            "track_id": sample.track_id,
            "sensor_id": _echoed_sensor(sample),
            "timestamp": sample.timestamp,
            "probability": probabilities[i],
            "reentry_phase": 1 if phases[i] else 0,
            "label": "reentry" if phases[i] else "non_reentry",
            "context_points": contexts[i],
            "mode": "single" if sample.track_id is None else "stream",
            "quarantine": REASONS[quarantines[i]],
            "history": history,
            "maximum_established": bool(established[i]),
            "model_version": version,
        }
        for i, sample in enumerate(samples)
    ]
    counts = np.bincount(scores.reentry_phase, minlength=2)
    for phase, count in enumerate(counts.tolist()):
        if count:  # each inc writes the worker's metrics file: skip the ones that add nothing
            metrics.PREDICTIONS_BY_PHASE[phase].inc(count)
    if scores.quarantined:
        rules = np.bincount(scores.quarantine, minlength=len(REASONS))
        for code in np.flatnonzero(rules[1:]) + 1:
            metrics.QUARANTINED.labels(rule=REASONS[code]).inc(int(rules[code]))
    return out


def _out_of_range(scores: Scores, names: tuple[str, ...]) -> dict[str, int]:
    """Count the scored points far outside the training range, by input; for the log line."""
    counts = scores.out_of_range.sum(axis=0)
    flagged = {name: int(c) for name, c in zip(names, counts, strict=True) if c}
    for name, count in flagged.items():
        metrics.OUT_OF_RANGE.labels(feature=name).inc(count)
    return flagged


def _run(kind: str, fn: Any) -> Any:
    """Time an inference and take the model out of service if it fails unexpectedly."""
    started = time.perf_counter()
    try:
        return fn()
    except (ApiError, StoreUnavailable, ValueError):
        raise
    except Exception as exc:
        # The traceback is logged once, by the error handler that answers the 500.
        get_logger().error("inference_failed", error_type=type(exc).__name__, error=str(exc))
        state().mark_unusable(f"inference failed ({type(exc).__name__}); see the service logs")
        raise
    finally:
        metrics.INFERENCE_BY_KIND[kind].observe(time.perf_counter() - started)


@api.get("/livez")
def livez() -> Response:
    """Liveness: the process answers. Cheap on purpose: no model, no store."""
    return jsonify({"status": "alive"})


@api.get("/health")
def health() -> tuple[Response, int]:
    """Readiness: 503 until every worker's model answers; a down shared store only degrades it."""
    current = state()
    current.retry_if_due()
    workers = pod.workers()
    listed = None if workers is None else [WorkerHealth(**asdict(w)) for w in workers]
    if not current.ready or current.model is None:
        body = HealthResponse(status="unavailable", reason=current.reason, workers=listed)
        return jsonify(body.model_dump(exclude_none=True)), 503
    expected = current.settings.effective_workers()
    if workers is not None and sum(w.ready for w in workers) < expected:
        # One answer for the whole server: a probe reaches one worker at random.
        ready = sum(w.ready for w in workers)
        why = "; ".join(f"worker {w.pid}: {w.reason}" for w in workers if not w.ready)
        reason = f"{ready} of {expected} workers ready" + (f": {why}" if why else " (starting)")
        body = HealthResponse(status="unavailable", reason=reason, workers=listed)
        return jsonify(body.model_dump(exclude_none=True)), 503
    ok, error, streams = current.store_status()
    store = StoreStatus(kind=current.store.kind, ok=ok, error=error, active_streams=streams)
    notices = {w.reason for w in workers or [] if w.reason} | ({current.notice} - {None})
    body = HealthResponse(
        status="ok" if ok else "degraded",
        reason=None if ok else "track store unavailable: stream predictions answer 503",
        model_version=current.model.model_version,
        store=store,
        notice="; ".join(sorted(n for n in notices if n)) or None,
        workers=listed,
    )
    return jsonify(body.model_dump(exclude_none=True)), 200


@api.post("/predict")
def predict() -> Response:
    """Classify one observation; with track_id it joins (and uses) the stream's history."""
    sample = parse_body(Observation)
    model = _model()
    g.log_fields = {"track_id": sample.track_id, "sensor_id": sample.sensor_id}
    history = None
    if sample.track_id is None:
        columns = _columns([sample], [-1])
        scores = _run("single", lambda: model.predict_stream(columns, None)[0])
    else:
        if sample.timestamp is None:
            raise ApiError(422, "validation_error", "timestamp: required with track_id", None)
        columns = _columns([sample], [sample.track_id])
        key = (sample.track_id, sample.sensor_id)
        found: list[bool] = []

        def step(memory: StreamMemory | None) -> tuple[Scores, StreamMemory]:
            found[:] = [memory is not None]  # the store may run step again after a race
            return model.predict_stream(columns, memory)

        try:
            scores = _run("stream", lambda: state().store.update(key, step))
        except StoreUnavailable as exc:
            metrics.STORE_UP.set(0)
            g.log_fields["store_error"] = str(exc)
            raise ApiError(
                503,
                "store_unavailable",
                f"track store unavailable ({store_problem(exc)}), stream predictions paused; "
                "predictions without track_id and /batch_predict still work",
            ) from None
        except ValueError as exc:
            raise ApiError(
                409,
                "out_of_order",
                f"track {sample.track_id} sensor {sample.sensor_id}: {exc} "
                f"(timestamp {sample.timestamp} is not after the stream's last point)",
            ) from None
        history = "restarted" if scores.restarted[0] else "continued" if found[0] else "started"
        if history != "continued":
            metrics.STREAM_STARTS.labels(history=history).inc()
    prediction = _predictions([sample], scores, model.model_version, history)[0]
    g.log_fields.update(
        prediction=prediction["label"], probability=round(prediction["probability"], 6)
    )
    if prediction["quarantine"]:
        g.log_fields.update(quarantine=prediction["quarantine"])
    if flagged := _out_of_range(scores, model.range_names):
        g.log_fields.update(out_of_range=sorted(flagged))
    return jsonify(prediction)


@api.post("/batch_predict")
def batch_predict() -> Response:
    """Classify many observations at once; stateless (the track store is not touched)."""
    batch = parse_body(BatchRequest, max_items=state().settings.max_batch_size)
    model = _model()
    samples = batch.samples
    missing = [i for i, s in enumerate(samples) if s.track_id is not None and s.timestamp is None]
    if missing:
        raise ApiError(
            422,
            "validation_error",
            f"samples.{missing[0]}.timestamp: required with track_id",
            [
                {"field": f"samples.{i}.timestamp", "problem": "required with track_id"}
                for i in missing
            ],
        )
    _refuse_duplicates(samples)
    scores = _run("batch", lambda: _score_batch(model, samples))
    predictions = _predictions(samples, scores, model.model_version)
    g.log_fields = {"samples": len(samples), "reentry": int(scores.reentry_phase.sum())}
    if scores.quarantined:
        g.log_fields["quarantined"] = scores.quarantined
    if flagged := _out_of_range(scores, model.range_names):
        g.log_fields["out_of_range"] = flagged
    return jsonify(
        {
            "predictions": predictions,
            "count": len(predictions),
            "model_version": model.model_version,
        }
    )


def _refuse_duplicates(samples: list[Observation]) -> None:
    """409 naming the samples when two of one stream share a timestamp (which comes first?)."""
    first: dict[tuple[int, int, float], int] = {}
    clashes = []
    for i, sample in enumerate(samples):
        if sample.track_id is None or sample.timestamp is None:
            continue  # a sample without a track is a stream of its own
        key = (sample.track_id, sample.sensor_id, sample.timestamp)
        if key in first:
            clashes.append((first[key], i))
        else:
            first[key] = i
    if clashes:
        a, b = clashes[0]
        raise ApiError(
            409,
            "duplicate_timestamp",
            f"samples {a} and {b} are both of track {samples[a].track_id} sensor "
            f"{samples[a].sensor_id} at timestamp {samples[a].timestamp}: a stream has one point "
            "per time",
            [
                {"samples": [a, b], "problem": "same track, sensor and timestamp"}
                for a, b in clashes
            ],
        )


def _score_batch(model: ModelInferenceService, samples: list[Observation]) -> Scores:
    """Scores of a batch in input order: its streams, and its trackless samples on their own.

    The trackless samples are scored as a second batch of one-point streams numbered 0..k-1,
    so their numbers cannot meet a client's track ids.
    """
    alone = np.array([s.track_id is None for s in samples])
    parts = []
    for mask in (~alone, alone):
        index = np.flatnonzero(mask)
        if len(index):
            group = [samples[i] for i in index]
            ids = list(range(len(group))) if mask is alone else [s.track_id for s in group]
            parts.append((index, model.predict_batch(_columns(group, ids))))  # type: ignore[arg-type]
    if len(parts) == 1:
        return parts[0][1]
    merged = {}
    for name in (
        "probability",
        "reentry_phase",
        "context_points",
        "quarantine",
        "restarted",
        "maximum_established",
        "out_of_range",
    ):
        first = getattr(parts[0][1], name)
        column = np.empty((len(samples), *first.shape[1:]), dtype=first.dtype)
        for index, scores in parts:
            column[index] = getattr(scores, name)
        merged[name] = column
    return Scores(**merged)


@api.get("/info")
def info() -> Response:
    """Service and model metadata, training metrics, endpoints and features."""
    current = state()
    settings = current.settings
    model = current.model.info() if current.model is not None else None
    body = InfoResponse(
        service={
            "name": "missile-classifier",
            "version": __version__,
            "store": current.store.kind,
            "ready": current.ready,
            "reason": current.reason,
            "max_batch_size": settings.max_batch_size,
            "max_content_length": settings.max_content_length,
            "api_key_required": settings.api_key is not None,
            "rate_limit": settings.rate_limit,
            "workers": settings.effective_workers(),
            "inference_threads": settings.inference_threads,
        },
        model=model,
        endpoints=list(ENDPOINTS),
        features=list(FEATURE_NAMES),
    )
    return jsonify(body.model_dump())


@api.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus exposition, aggregated over the server's workers."""
    current = state()
    if current.ready:
        current.store_status()  # refresh the store gauges at scrape time
    payload, content_type = metrics.exposition()
    return Response(payload, mimetype=None, content_type=content_type)


@api.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document, generated from the request/response models."""
    settings = state().settings
    document = openapi_document(
        __version__,
        api_key=settings.api_key is not None,
        rate_limit=settings.rate_limit is not None,
    )
    return jsonify(document)
