"""Run ``missile-classifier serve`` for real in tests: the same command the container runs.

The server runs as in the serving image, without torch, pandas, scikit-learn,
matplotlib or pyarrow (``serving_image/sitecustomize.py``): a request whose code path needs one
fails, and leaving the ``with`` block fails if any code tried to import one, even if it coped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Folder whose ``sitecustomize`` makes the training libraries unimportable.
SERVING_IMAGE = Path(__file__).parent / "serving_image"


def serving_image_env(import_log: Path) -> dict[str, str]:
    """Environment that makes a Python process see only the serving image's libraries.

    Every attempted import of a missing library is appended to ``import_log``.
    """
    path = os.pathsep.join(p for p in (str(SERVING_IMAGE), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "SERVING_IMAGE_IMPORT_LOG": str(import_log)}


class Server:
    """A gunicorn server started through the CLI, stopped (SIGTERM) on exit.

    Args:
        env: Environment variables for the service (MODEL_PATH, REDIS_URL, ...).
        log_path: File receiving the server's stderr (JSON logs), for assertions.
        workers: ``--workers``.
        wait_for: ``/health`` (ready) or ``/livez`` (process up, e.g. without a model).
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        workers: int = 1,
        wait_for: str = "/health",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.log_path, self.workers, self.wait_for = env, log_path, workers, wait_for
        self.import_log = log_path.with_name(log_path.name + ".imports")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        exe = shutil.which("missile-classifier") or str(
            Path(sys.executable).parent / "missile-classifier"
        )
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        image = serving_image_env(self.import_log)
        env = {**inherited, **image, **self.env, "HOST": "127.0.0.1"}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [exe, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                if requests.get(self.url + self.wait_for, timeout=1).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not listening, or still loading
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"server not ready in 90 s:\n{self.log_path.read_text()}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if kind is None and self.import_log.exists():
            raise AssertionError(
                "the server imported a library the serving image lacks:\n"
                + self.import_log.read_text()
            )

    def worker_pids(self) -> list[int]:
        """PIDs of gunicorn's workers (children of the master, which replaced the CLI)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def logs(self) -> str:
        """Everything the server wrote so far."""
        self._log.flush()
        return self.log_path.read_text()
