"""Gunicorn configuration, read from the same validated settings as the app.

Used by ``missile-classifier serve`` (``--config python:missile_classifier.service.gunicorn_conf``).
Each worker builds the app itself (no preload), so every worker loads and smoke-tests the model
before it accepts a request, and no ONNX Runtime session crosses a fork.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from missile_classifier.service.config import OWNED_METRICS_DIR, Settings
from missile_classifier.service.logs import json_formatter
from missile_classifier.service.worker import READ_TIMEOUT_ENV

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.effective_workers()
threads = _settings.threads
# gthread, changed so that idle or slow clients cannot hold its threads (service/worker.py).
worker_class = "missile_classifier.service.worker.ThreadWorker"
os.environ[READ_TIMEOUT_ENV] = str(_settings.request_read_timeout)  # validated; workers read it
timeout = _settings.timeout  # also bounds model loading in a new worker
graceful_timeout = 30
preload_app = False
accesslog = None  # the app logs one JSON line per request itself


class ServerLogger(Logger):  # type: ignore[misc]  # gunicorn has no types
    """Gunicorn's logger without the access log, which the app's request line replaces.

    Given a logging config, gunicorn builds every request's access-log fields (each header and
    environ entry) before ``gunicorn.access`` drops the line at WARNING: 4 % of a worker's
    GIL time under ``/predict`` load (docs/performance.md).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log nothing: the app's JSON line per request is the access log."""


logger_class = ServerLogger
errorlog = "-"
loglevel = _settings.log_level.lower()
limit_request_line = 8190
# Gunicorn 27's control socket lives in $HOME: unused here, and it breaks on a read-only root FS.
control_socket_disable = True
# Gunicorn's own messages (start, worker boot/exit) as JSON lines too, like the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": json_formatter}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": _settings.log_level},
    "loggers": {
        "gunicorn.error": {
            "handlers": ["stderr"],
            "level": _settings.log_level,
            "propagate": False,
        },
        "gunicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    """Share the workers' connection table; refuse connections once the server stops; empty the
    metrics folder: values of an earlier run must not leak into this one."""
    from missile_classifier.service import balance

    balance.share(workers)
    _refuse_connections_when_stopping(server)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            for entry in path.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        path.mkdir(parents=True, exist_ok=True)


def _refuse_connections_when_stopping(server: Any) -> None:
    """Make the arbiter's ``stop`` first stop the kernel completing connections (listeners.py).

    Gunicorn has no hook there. The arbiter closes its copies of the listening sockets, then
    signals the workers, which accept what is queued and close theirs; the filter keeps the
    kernel from queueing more meanwhile.
    """
    from missile_classifier.service.listeners import refuse_new_connections

    stop = server.stop

    def stop_refusing(graceful: bool = True) -> None:
        # Gunicorn's own test for "these sockets end with this server" (it unlinks Unix sockets
        # then): not after a re-exec (USR2), whose other master goes on serving them, nor under
        # systemd, which keeps them for the next start.
        if server.reexec_pid == server.master_pid == 0 and not server.systemd:
            for listener in server.LISTENERS:
                with contextlib.suppress(OSError):  # refusing is an improvement, not a must
                    refuse_new_connections(listener)
        stop(graceful)

    server.stop = stop_refusing


def post_worker_init(worker: Any) -> None:
    """Start the worker's check of MODEL_PATH for a new or changed bundle; freeze what start-up
    made out of the garbage collector's sight."""
    worker.wsgi.extensions["missile_classifier"].start_refresher()
    # The app, its libraries and the model live as long as the worker. Left to the collector,
    # each full collection walked all of them with every request thread stopped: 38-50 ms,
    # a few times a minute under load, which set the tail of the latency (docs/performance.md).
    gc.collect()
    gc.freeze()
    from missile_classifier.service.logs import get_logger

    get_logger().info("worker_ready", pid=os.getpid(), gc_frozen_objects=gc.get_freeze_count())


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (prometheus_client multiprocess recipe) and status."""
    from missile_classifier.service import balance, pod
    from missile_classifier.service.metrics import mark_process_dead

    mark_process_dead(worker.pid)
    pod.forget(worker.pid)
    if balance.TABLE is not None:
        balance.TABLE.release(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder if ``serve`` created it (a user's own folder stays)."""
    directory = os.environ.get(OWNED_METRICS_DIR)
    if directory and directory == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(directory, ignore_errors=True)
