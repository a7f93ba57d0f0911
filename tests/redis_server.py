"""A real ``redis-server`` for tests: loopback only, no persistence, always cleaned up.

Usage (e.g. as a session fixture)::

    from redis_server import RedisServer

    @pytest.fixture(scope="session")
    def redis_url() -> Iterator[str]:
        with RedisServer() as server:
            yield server.url

The server can be killed, paused and restarted on the same port to test outages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType

import redis

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes], directory: str) -> None:
    """Kill the server and remove its folder (also run by the finalizer at exit)."""
    if process.poll() is None:
        process.kill()
        process.wait()
    shutil.rmtree(directory, ignore_errors=True)


class RedisServer:
    """One ``redis-server`` subprocess on 127.0.0.1.

    Args:
        port: Port to listen on; a free one is picked if ``None`` (and kept across restarts).
        executable: The ``redis-server`` binary.
        start_timeout: Seconds to wait for the server to answer PING.
    """

    def __init__(
        self,
        port: int | None = None,
        executable: str = REDIS_SERVER,
        start_timeout: float = 10.0,
    ) -> None:
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.executable = executable
        self.start_timeout = start_timeout
        self._directory = ""  # a fresh temporary folder per run of the server
        self._process: subprocess.Popen[bytes] | None = None
        # Kills the server even if stop() is never called (interpreter exit, lost object).
        self._finalizer: weakref.finalize[..., RedisServer] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, if any."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

    def _log(self) -> str:
        """What the server wrote (for failure messages)."""
        path = Path(self._directory) / "redis.log"
        return path.read_text(errors="replace") if self._directory and path.exists() else ""

    def start(self) -> RedisServer:
        """Start the server and wait until it answers; a no-op if it runs already."""
        if self.running:
            return self
        for _ in range(1 if self._fixed_port else 5):
            self._launch()
            if self._wait_ready():
                self._fixed_port = True  # later starts reuse the port clients know
                return self
            log = self._log()
            self._reap()
            # A picked port can be taken by someone else before the server binds it.
            if "in use" not in log:
                break
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")

    def _launch(self) -> None:
        self._directory = tempfile.mkdtemp(prefix="redis-server-")
        log = open(Path(self._directory) / "redis.log", "wb")  # noqa: SIM115 (handed to the child)
        with log:
            self._process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._directory,
                    "--loglevel",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C meant for pytest reaches the server only via stop().
                start_new_session=True,
            )
        self._finalizer = weakref.finalize(self, _terminate, self._process, self._directory)

    def _wait_ready(self) -> bool:
        """Wait until *our* process answers (not another server on the same port)."""
        assert self._process is not None
        client = redis.Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + self.start_timeout
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    return False
                try:
                    if client.info("server")["process_id"] == self._process.pid:
                        return True
                except redis.exceptions.RedisError:
                    pass
                time.sleep(0.01)
            return False
        finally:
            client.close()

    def _reap(self) -> None:
        """Kill the process if still alive, wait for it and remove its folder."""
        if self._finalizer is not None:
            self._finalizer()  # runs _terminate once
            self._finalizer = None
        self._process = None

    def stop(self) -> None:
        """Shut the server down gracefully (SIGTERM; SIGKILL after 5 s); a no-op if not running."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):  # _reap kills it then
                self._process.wait(timeout=5)
        self._reap()

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), like a crash or a lost node."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._reap()

    def restart(self) -> RedisServer:
        """Stop if running, then start again on the same port (with no data)."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answers, like a hung node."""
        assert self._process is not None, "not started"
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        assert self._process is not None, "not started"
        os.kill(self._process.pid, signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
