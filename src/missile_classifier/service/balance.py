"""Spreading a server's connections evenly over its gunicorn workers.

Every worker waits on the same listening socket, and the kernel wakes them all for a new
connection: whichever calls ``accept`` first gets it. A worker whose event loop happens to be
awake wins most races, so a burst of keep-alive connections (a load balancer's pool, a load test)
could land 16 to 0 on two workers, and the server then ran at one worker's speed for as long as
the connections lived (measured in docs/performance.md). Each worker's requests run under its
own GIL, so only connections spread over the workers use the cores.

So the workers share a small table in memory (created by gunicorn's master before it forks
them): each worker's pid, open connections and last heartbeat. Every worker stays woken for new
connections, and one that would hold more than :data:`SLACK` connections above the least loaded
live worker leaves the connection to the others; the least loaded always accepts, so someone
always does, at once (a worker that stopped listening instead would only look again when its
loop next woke, up to a second later, while kept-alive connections timed out). A worker whose
heartbeat is older than :data:`STALE_S` (hung, or gone without its slot being freed) does not
count, so it cannot stop the others.
"""

from __future__ import annotations

import mmap
import multiprocessing
import struct
import time
from typing import Final

#: Connections a worker may hold above the least loaded one before it stops accepting.
SLACK: Final = 1
#: Seconds after which a silent worker's count is ignored (gunicorn's loop beats at least 1/s).
STALE_S: Final = 3.0
#: Pause of a worker that leaves a waiting connection to a less loaded one (its listener stays
#: readable until that one accepts).
YIELD_S: Final = 0.001
_SLOT: Final = struct.Struct("qqd")  # pid, open connections, heartbeat (monotonic seconds)


class ConnectionTable:
    """Open connections per worker, shared by the processes forked after it was created.

    Args:
        slots: Most workers alive at once (gunicorn starts a replacement before the old one's
            slot is freed, so give room beyond the worker count).
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, _SLOT.size * slots)  # anonymous: shared across fork
        self._lock = multiprocessing.get_context("fork").Lock()

    def _read(self, slot: int) -> tuple[int, int, float]:
        pid, count, beat = _SLOT.unpack_from(self._memory, slot * _SLOT.size)
        return int(pid), int(count), float(beat)

    def claim(self, pid: int) -> int | None:
        """Take a free slot for ``pid``; ``None`` if all are taken (that worker is not balanced)."""
        with self._lock:
            for slot in range(self.slots):
                if self._read(slot)[0] == 0:
                    _SLOT.pack_into(self._memory, slot * _SLOT.size, pid, 0, time.monotonic())
                    return slot
        return None

    def release(self, pid: int) -> None:
        """Free the slot of a worker that exited (gunicorn's ``child_exit``, in the master)."""
        with self._lock:
            for slot in range(self.slots):
                if self._read(slot)[0] == pid:
                    _SLOT.pack_into(self._memory, slot * _SLOT.size, 0, 0, 0.0)

    def publish(self, slot: int, pid: int, connections: int) -> None:
        """Record this worker's open connections, and that it is alive."""
        _SLOT.pack_into(self._memory, slot * _SLOT.size, pid, connections, time.monotonic())

    def may_accept(self, slot: int, connections: int) -> bool:
        """Whether a worker holding ``connections`` should take another one now."""
        now = time.monotonic()
        others = [
            count
            for other in range(self.slots)
            if other != slot
            for pid, count, beat in [self._read(other)]
            if pid and now - beat < STALE_S
        ]
        return not others or connections < min(others) + SLACK


#: The server's table, set in gunicorn's master before it forks the workers.
TABLE: ConnectionTable | None = None


def share(workers: int) -> None:
    """Create the table for a server of ``workers`` workers (gunicorn's ``on_starting``)."""
    global TABLE
    TABLE = ConnectionTable(2 * workers + 4)
