"""What a worker holds: the settings, the model (or why it is not loaded) and the track store.

The model follows the bundle ``MODEL_PATH`` names: :meth:`ServiceState.refresh` (every
``MODEL_CHECK_INTERVAL`` seconds, from a thread of each gunicorn worker) loads a new version
when ``latest`` moves, verifies it and smoke-tests it before switching; if the new one fails,
the worker keeps serving the old one and says why. A served bundle whose files change on disk
is re-verified: the worker keeps its verified copy in memory and reports the change. Every
change is published for the pod (:mod:`~missile_classifier.service.pod`).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from missile_classifier.columns import ALTITUDE, INTENSITY, LATITUDE, LONGITUDE, TIMESTAMP
from missile_classifier.scoring import bundle as bundles
from missile_classifier.scoring.bundle import BundleError
from missile_classifier.scoring.inference import ModelInferenceService
from missile_classifier.service import metrics, pod
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
#: An absolute path in a message (up to the next blank, quote, comma, semicolon or colon).
_PATH: Final = re.compile(r"(?<![\w.])/[^\s'\",;:()]+")


def public(text: str, model_path: Path) -> str:
    """``text`` fit for clients: absolute paths shortened to where they are in ``MODEL_PATH``."""
    roots = [Path(model_path).absolute(), Path(model_path).resolve()]

    def shorten(match: re.Match[str]) -> str:
        path = Path(match.group(0))
        for root in roots:
            if path.is_relative_to(root):
                inside = path.relative_to(root)
                return f"MODEL_PATH/{inside}" if str(inside) != "." else "MODEL_PATH"
        return path.name or "/"

    return _PATH.sub(shorten, text)


def store_problem(error: StoreUnavailable) -> str:
    """What went wrong with the track store, for clients (the full text, with the server's
    address and the client library's message, is for the logs)."""
    text = str(error)
    for needle, summary in (
        ("gave up", "too many concurrent updates of the stream"),
        ("unreachable", "Redis is unreachable"),
        ("did not answer", "Redis did not answer in time"),
        ("refused", "Redis refused the command"),
    ):
        if needle in text:
            return summary
    return "the track store failed"


@dataclass
class ServiceState:
    """Per-worker state, created by the app factory before the worker takes traffic."""

    settings: Settings
    store: TrackStore
    model: ModelInferenceService | None = None
    reason: str | None = "model not loaded yet"
    #: What the last check of the bundle on disk found while a model is served (else None).
    notice: str | None = None
    _last_attempt: float = field(default=-math.inf, repr=False)
    #: Model version the store's streams belong to (None: opened before any model loaded).
    _store_version: str | None = field(default=None, repr=False)
    #: (size, mtime) of the served bundle's files when it was verified.
    _files_seen: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
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

    def _candidate(self) -> ModelInferenceService:
        """The bundle ``MODEL_PATH`` names now, verified and smoke-tested."""
        model = ModelInferenceService(
            self.settings.model_path,
            threads=self.settings.inference_threads,
            spinning=False,
        )
        probability = float(model.predict_single(_SMOKE_POINT).probability[0])
        if not 0.0 <= probability <= 1.0:
            raise BundleError(f"smoke inference returned {probability}")
        return model

    def _why(self, exc: Exception) -> str:
        """A load failure in our words, for clients; the library's detail goes to the log."""
        return public(str(exc), self.settings.model_path)

    def load_model(self) -> None:
        """Load and verify the bundle, then run one inference; record why if anything fails."""
        log = get_logger()
        with self._lock:
            self._last_attempt = time.monotonic()
            try:
                model = self._candidate()
            # Any failure here leaves the worker up and not ready, saying why: ONNX Runtime's own
            # errors are plain Exceptions, and a crash would only restart into the same failure.
            except Exception as exc:
                self.model, self.reason = None, f"model unavailable: {self._why(exc)}"
                metrics.MODEL_READY.set(0)
                log.error(
                    "model_load_failed",
                    model_path=str(self.settings.model_path),
                    reason=str(exc),
                    detail=getattr(exc, "detail", None),
                )
                self._publish()
                return
            self._switch(model)

    def _switch(self, model: ModelInferenceService) -> None:
        """Serve ``model`` (call with ``_lock`` held)."""
        previous = self._store_version  # the version this worker served last, if any
        if self._store_version != model.model_version:
            # A reload of the same bundle (after mark_unusable) keeps every stream.
            retired, self.store = self.store, self._open_store(self.settings, model.model_version)
            self._store_version = model.model_version
            # Requests already running still use the old store: closing it at once cut a /health
            # mid-round-trip (a 500 in a test). No request outlives the worker timeout.
            closer = threading.Timer(self.settings.timeout, retired.close)
            closer.name, closer.daemon = "store-retire", True
            closer.start()
        self.model, self.reason, self.notice = model, None, None
        self._files_seen = _signature(model.bundle.path)
        metrics.MODEL_READY.set(1)
        if previous is not None and previous != model.model_version:
            # This worker no longer serves the old version: its info series drops to 0.
            metrics.MODEL_INFO.labels(version=previous).set(0)
        metrics.MODEL_INFO.labels(version=model.model_version).set(1)
        get_logger().info(
            "model_loaded",
            model_version=model.model_version,
            model_path=str(model.bundle.path),
            threshold=model.threshold,
        )
        self._publish()

    def retry_if_due(self) -> None:
        """Look for the model again if it is missing and the last attempt is old enough."""
        if not self.ready and time.monotonic() - self._last_attempt >= RELOAD_INTERVAL_S:
            self.load_model()

    def refresh(self) -> None:
        """Follow the bundle on disk: load a new version, report a changed or broken one."""
        if not self.ready:
            self.load_model()
            return
        served = self.model
        assert served is not None
        try:
            target = bundles.resolve(self.settings.model_path)
        except OSError as exc:
            self._notice(f"cannot read MODEL_PATH: {self._why(exc)}")
            return
        if target != served.bundle.path:
            self._update(target)
            return
        if _signature(target) != self._files_seen:
            try:  # the served bundle's files changed: is it still the bundle we verified?
                bundles.load(target)
            except BundleError as exc:
                self._notice(
                    "the served bundle changed on disk and fails verification "
                    f"({self._why(exc)}); serving the copy verified at start"
                )
                return
            self._files_seen = _signature(target)
        self._notice(None)  # MODEL_PATH names the served bundle, as verified: nothing to say

    def _update(self, target: Path) -> None:
        """Switch to the bundle at ``target`` if it verifies; else keep serving and say why."""
        log = get_logger()
        with self._lock:
            try:
                model = self._candidate()
            except Exception as exc:
                log.error(
                    "model_update_failed",
                    model_path=str(target),
                    reason=str(exc),
                    detail=getattr(exc, "detail", None),
                )
                self.notice = (
                    f"new bundle {target.name} not loaded ({self._why(exc)}); "
                    "serving the previous version"
                )
                self._publish()
                return
            self._switch(model)

    def _notice(self, text: str | None) -> None:
        if text != self.notice:
            if text is not None:
                get_logger().warning("model_notice", notice=text)
            self.notice = text
            self._publish()

    def mark_unusable(self, reason: str) -> None:
        """Take the model out of service after an inference failure (readiness turns 503)."""
        with self._lock:
            self.model, self.reason = None, f"model unusable: {reason}"
            self._last_attempt = time.monotonic()
            self._publish()
        metrics.MODEL_READY.set(0)

    def _publish(self) -> None:
        version = self.model.model_version if self.model is not None else None
        pod.publish(pod.WorkerStatus(os.getpid(), self.ready, version, self.reason or self.notice))

    def start_refresher(self) -> threading.Thread:
        """Call :meth:`refresh` every ``model_check_interval`` seconds from a daemon thread."""

        def loop() -> None:
            while True:
                time.sleep(self.settings.model_check_interval)
                try:
                    self.refresh()
                except Exception as exc:  # the refresher must outlive any one failure
                    get_logger().exception("model_refresh_failed", error=type(exc).__name__)

        thread = threading.Thread(target=loop, name="model-refresh", daemon=True)
        thread.start()
        return thread

    def store_status(self) -> tuple[bool, str | None, int | None]:
        """Whether the track store answers, its error, and how many streams it holds."""
        try:
            self.store.ping()
            streams = self.store.active_streams()
        except StoreUnavailable as exc:
            metrics.STORE_UP.set(0)
            get_logger().warning("track_store_unavailable", error=str(exc))
            return False, store_problem(exc), None
        metrics.STORE_UP.set(1)
        metrics.ACTIVE_STREAMS.set(streams)
        return True, None, streams


def _signature(directory: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file in a bundle folder: a cheap change check."""
    seen = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            info = path.stat()
            seen[str(path.relative_to(directory))] = (info.st_size, info.st_mtime_ns)
    return seen
