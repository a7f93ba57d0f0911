"""Run ``missile-classifier serve`` for real in tests: the same command the container runs."""

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


class Server:
    """A gunicorn server started through the CLI, stopped (SIGTERM) on exit.

    Args:
        env: Environment variables for the service (MODEL_PATH, REDIS_URL, ...).
        log_path: File receiving the server's stderr (JSON logs), for assertions.
        workers: ``--workers``.
        wait_for: ``/health`` (ready) or ``/livez`` (process up, e.g. without a model).
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, workers: int = 1, wait_for: str = "/health"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env, self.log_path, self.workers, self.wait_for = env, log_path, workers, wait_for
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        exe = shutil.which("missile-classifier") or str(
            Path(sys.executable).parent / "missile-classifier"
        )
        inherited = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        env = {**inherited, **self.env, "HOST": "127.0.0.1"}
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
            except requests.ConnectionError:
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

    def worker_pids(self) -> list[int]:
        """PIDs of gunicorn's workers (children of the master, which replaced the CLI)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def logs(self) -> str:
        """Everything the server wrote so far."""
        self._log.flush()
        return self.log_path.read_text()
