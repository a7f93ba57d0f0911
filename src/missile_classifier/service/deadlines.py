"""A time limit on receiving each request, so slow clients cannot hold the worker's threads.

Gunicorn's threaded worker gives a connection a thread as soon as its first bytes arrive; the
thread then reads the request head and the application reads the body, both blocking. A client
that sends a few bytes and stalls keeps that thread for as long as it likes, and a handful of
them stall every thread. A per-read socket timeout does not help against a client that trickles
a byte now and then, so the limit here is on the whole: one watcher thread per process holds
the deadlines, and when a request has not arrived in time it shuts the socket's read side, which
wakes the blocked read with end-of-file. The request then fails (408 if the application was
already reading the body) and the thread is free again.

:class:`~missile_classifier.service.worker.ThreadWorker` arms the deadline when a thread takes a
connection; the application disarms it once it has the whole body.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time


class Ticket:
    """One armed deadline."""

    __slots__ = ("cancelled", "deadline", "expired", "sock")

    def __init__(self, deadline: float, sock: socket.socket) -> None:
        self.deadline = deadline
        self.sock = sock
        self.cancelled = False
        #: Set when the deadline passed and the socket's read side was shut.
        self.expired = False


class Deadlines:
    """Deadlines on sockets, enforced by one daemon thread (started on first use)."""

    def __init__(self) -> None:
        # (deadline, order, ticket): tuples compare in C, and ``order`` keeps ties off tickets.
        # Every request arms one, so this is on each request's path.
        self._heap: list[tuple[float, int, Ticket]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        # A forked child has the object but not the thread: start its own on first use.
        os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread = None
        self._wake = threading.Condition()  # the parent's may be held by a thread gone here

    def arm(self, sock: socket.socket, seconds: float) -> Ticket:
        """Shut ``sock``'s read side ``seconds`` from now unless disarmed first."""
        ticket = Ticket(time.monotonic() + seconds, sock)
        entry = (ticket.deadline, next(self._order), ticket)
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                # One per process, started lazily: gunicorn forks workers after importing us.
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:
                # Only a new earliest deadline changes when the watcher must wake; waking it
                # for every request (almost all later than the earliest) cost a thread switch.
                self._wake.notify()
        return ticket

    @staticmethod
    def disarm(ticket: Ticket) -> None:
        """Cancel a deadline (removed lazily when it comes up)."""
        ticket.cancelled = True

    def pending(self) -> int:
        """Deadlines armed and not yet passed or cancelled."""
        with self._wake:
            return sum(1 for _, _, t in self._heap if not t.cancelled)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                ticket = self._heap[0][2]
                wait = ticket.deadline - time.monotonic()
                if not ticket.cancelled and wait > 0:
                    self._wake.wait(wait)  # a new, earlier deadline wakes us too
                    continue
                heapq.heappop(self._heap)
            if not ticket.cancelled:
                ticket.expired = True
                with contextlib.suppress(OSError):  # already closed by the client or worker
                    ticket.sock.shutdown(socket.SHUT_RD)


#: The process's deadlines.
DEADLINES = Deadlines()
#: The ticket of the request this thread is receiving (set by the worker).
current = threading.local()


def current_ticket() -> Ticket | None:
    """This thread's armed ticket, if a worker armed one for the request being handled."""
    ticket: Ticket | None = getattr(current, "ticket", None)
    return ticket


def release_deadline() -> None:
    """Disarm this thread's deadline: the request has arrived whole."""
    ticket = current_ticket()
    if ticket is not None:
        DEADLINES.disarm(ticket)
