"""What every worker of this server holds, so that each can answer for the whole pod.

Gunicorn's workers are separate processes, and a readiness probe reaches one of them at random.
If each answered only for itself, a pod with one worker that cannot load its bundle would answer
200 and 503 in turn and take traffic it half fails. So each worker writes its status (model
version, ready or why not, what it noticed about the bundle on disk) to a small JSON file in the
server's runtime folder, and ``/health`` reads them all: the pod is ready when every worker is.

The folder is ``workers/`` inside ``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` creates and
gunicorn empties at every start. Without it (the app run in-process, as in tests) there is one
process and its own state is the pod's.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkerStatus:
    """One worker's view, as ``/health`` reports it."""

    pid: int
    ready: bool
    model_version: str | None
    #: Why the worker is not ready, or what it noticed while ready (a failed update).
    reason: str | None = None


def _folder() -> Path | None:
    root = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(root) / "workers" if root else None


def publish(status: WorkerStatus) -> None:
    """Write this worker's status (atomically: readers never see half a file)."""
    folder = _folder()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{status.pid}.json"
    partial = folder / f".{status.pid}.json.tmp"
    partial.write_text(json.dumps(asdict(status)))
    os.replace(partial, final)


def forget(pid: int) -> None:
    """Drop a dead worker's status (gunicorn's ``child_exit``)."""
    folder = _folder()
    if folder is not None:
        (folder / f"{pid}.json").unlink(missing_ok=True)


def workers() -> list[WorkerStatus] | None:
    """Every live worker's last status, or ``None`` when this process is the whole server."""
    folder = _folder()
    if folder is None:
        return None
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            status = WorkerStatus(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):  # removed meanwhile, or from another version
            continue
        if _alive(status.pid):
            found.append(status)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's (cannot happen for our own workers)
        return True
    return True
