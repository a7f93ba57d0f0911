"""Prometheus metrics, correct under gunicorn with several workers.

Multiprocess mode (prometheus_client's recipe): ``PROMETHEUS_MULTIPROC_DIR`` is set by
``missile-classifier serve`` before anything imports prometheus_client, each worker writes its
values to files there, and ``/metrics`` aggregates them with a fresh registry per request.
Without that variable (tests calling the app in-process), the default registry is used.
"""

from __future__ import annotations

import functools
import os
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from missile_classifier.scoring.features import FEATURE_NAMES
from missile_classifier.scoring.plausibility import REASONS
from missile_classifier.scoring.ranges import DT

PREFIX: Final = "missile_classifier"
_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    f"{PREFIX}_requests_total",
    "HTTP requests by method, endpoint and status.",
    ["method", "endpoint", "status"],
)
REQUEST_DURATION = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "HTTP request latency.",
    ["method", "endpoint"],
    buckets=_LATENCY_BUCKETS,
)


@functools.lru_cache(maxsize=1024)
def request_series(method: str, endpoint: str, status: int) -> tuple[Counter, Histogram]:
    """The request counter's and latency histogram's series of one kind of request.

    Looked up once per kind: ``labels()`` checks and locks on every call, and every request
    updates both (bounded, since a client can send any method).
    """
    return (
        REQUESTS.labels(method=method, endpoint=endpoint, status=str(status)),
        REQUEST_DURATION.labels(method=method, endpoint=endpoint),
    )


PREDICTIONS = Counter(f"{PREFIX}_predictions_total", "Predictions by predicted class.", ["class"])
#: Its two series by predicted phase (0, 1), looked up once.
PREDICTIONS_BY_PHASE: Final = (
    PREDICTIONS.labels(**{"class": "non_reentry"}),
    PREDICTIONS.labels(**{"class": "reentry"}),
)
ERRORS = Counter(f"{PREFIX}_errors_total", "Errors answered, by type.", ["type"])
QUARANTINED = Counter(
    f"{PREFIX}_quarantined_total",
    "Points quarantined by the jump rule (not added to their stream), by the rule broken.",
    ["rule"],
)
STREAM_STARTS = Counter(
    f"{PREFIX}_stream_starts_total",
    "Stream predictions that found no stored history (started) or restarted it (restarted).",
    ["history"],
)
OUT_OF_RANGE = Counter(
    f"{PREFIX}_out_of_range_total",
    "Scored points with an input far outside its training range (answered anyway), by input.",
    ["feature"],
)
# Every label value exported from the start (at 0), so rates and alerts see a series at once.
for _rule in REASONS[1:]:
    QUARANTINED.labels(rule=_rule)
for _feature in (*FEATURE_NAMES, DT):
    OUT_OF_RANGE.labels(feature=_feature)
for _history in ("started", "restarted"):
    STREAM_STARTS.labels(history=_history)
INFERENCE_DURATION = Histogram(
    f"{PREFIX}_inference_duration_seconds",
    "Feature and model time per request, by kind.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
#: Its series by kind of inference, looked up once (``labels()`` locks on every call).
INFERENCE_BY_KIND: Final = {
    kind: INFERENCE_DURATION.labels(kind=kind) for kind in ("single", "stream", "batch")
}
MODEL_INFO = Gauge(
    f"{PREFIX}_model_info",
    "Loaded model version (value 1).",
    ["version"],
    multiprocess_mode="max",
)
MODEL_READY = Gauge(
    f"{PREFIX}_model_ready_workers",
    "Worker processes whose model passed its smoke test.",
    multiprocess_mode="livesum",
)
ACTIVE_STREAMS = Gauge(
    f"{PREFIX}_active_streams",
    "Track streams held in the track store (last seen by a worker).",
    multiprocess_mode="mostrecent",
)
STORE_UP = Gauge(
    f"{PREFIX}_track_store_up",
    "1 when the track store answered its last check, else 0.",
    multiprocess_mode="mostrecent",
)


def exposition() -> tuple[bytes, str]:
    """The metrics page and its content type, aggregated over workers when multiprocess."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn's ``child_exit`` hook)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
