"""What a worker holds: the settings, the model (or why it is not loaded) and the track store."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Final

from missile_classifier.columns import ALTITUDE, INTENSITY, LATITUDE, LONGITUDE, TIMESTAMP
from missile_classifier.scoring.bundle import BundleError
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.service import metrics
from missile_classifier.service.config import Settings
from missile_classifier.service.logs import get_logger
from missile_classifier.service.track_store import StoreUnavailable, TrackStore, create_store

#: A missing or broken model is looked for again at most this often (from /health), so a
#: model volume that is filled after start is picked up without a restart.
RELOAD_INTERVAL_S: Final = 10.0
_SMOKE_POINT: Final = {
    TIMESTAMP: 1.0,
    LATITUDE: 45.0,
    LONGITUDE: 10.0,
    ALTITUDE: 50_000.0,
    INTENSITY: 0.5,
}


@dataclass
class ServiceState:
    """Per-worker state, created by the app factory before the worker takes traffic."""

    settings: Settings
    store: TrackStore
    model: ModelInferenceService | None = None
    reason: str | None = "model not loaded yet"
    _last_attempt: float = field(default=-math.inf, repr=False)
    #: Model version the store's streams belong to (None: opened before any model loaded).
    _store_version: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def start(cls, settings: Settings) -> ServiceState:
        """Load the model now (not on the first request), then open the track store."""
        state = cls(settings, cls._open_store(settings, None))
        state.load_model()
        return state

    @staticmethod
    def _open_store(settings: Settings, model_version: str | None) -> TrackStore:
        # Streams are namespaced by model version: their stored rows fit one bundle only.
        return create_store(
            settings.redis_url, settings.track_ttl_seconds, settings.max_streams, model_version
        )

    @property
    def ready(self) -> bool:
        """True once the model loaded and passed its smoke inference."""
        return self.model is not None

    def load_model(self) -> None:
        """Load and verify the bundle, then run one inference; record why if anything fails."""
        log = get_logger()
        with self._lock:
            self._last_attempt = time.monotonic()
            try:
                model = ModelInferenceService(self.settings.model_path)
                probability = float(model.predict_single(_SMOKE_POINT).probability[0])
                if not 0.0 <= probability <= 1.0:
                    raise BundleError(f"smoke inference returned {probability}")
            # Any failure here leaves the worker up and not ready, saying why: ONNX Runtime's own
            # errors are plain Exceptions, and a crash would only restart into the same failure.
            except Exception as exc:
                self.model, self.reason = None, f"model unavailable: {exc}"
                metrics.MODEL_READY.set(0)
                log.error(
                    "model_load_failed", model_path=str(self.settings.model_path), reason=str(exc)
                )
                return
            previous = self._store_version  # the version this worker served last, if any
            if self._store_version != model.model_version:
                # A reload of the same bundle (after mark_unusable) keeps every stream.
                self.store.close()
                self.store = self._open_store(self.settings, model.model_version)
                self._store_version = model.model_version
            self.model, self.reason = model, None
            metrics.MODEL_READY.set(1)
            if previous is not None and previous != model.model_version:
                # This worker no longer serves the old version: its info series drops to 0.
                metrics.MODEL_INFO.labels(version=previous).set(0)
            metrics.MODEL_INFO.labels(version=model.model_version).set(1)
            log.info(
                "model_loaded",
                model_version=model.model_version,
                model_path=str(model.bundle.path),
                threshold=model.threshold,
            )

    def retry_if_due(self) -> None:
        """Look for the model again if it is missing and the last attempt is old enough."""
        if not self.ready and time.monotonic() - self._last_attempt >= RELOAD_INTERVAL_S:
            self.load_model()

    def mark_unusable(self, reason: str) -> None:
        """Take the model out of service after an inference failure (readiness turns 503)."""
        with self._lock:
            self.model, self.reason = None, f"model unusable: {reason}"
            self._last_attempt = time.monotonic()
        metrics.MODEL_READY.set(0)

    def store_status(self) -> tuple[bool, str | None, int | None]:
        """Whether the track store answers, its error, and how many streams it holds."""
        try:
            self.store.ping()
            streams = self.store.active_streams()
        except StoreUnavailable as exc:
            metrics.STORE_UP.set(0)
            return False, str(exc), None
        metrics.STORE_UP.set(1)
        metrics.ACTIVE_STREAMS.set(streams)
        return True, None, streams
