"""Gunicorn's threaded worker, changed so that slow or idle clients cannot hold its threads.

``worker_class`` in :mod:`~missile_classifier.service.gunicorn_conf`. It is gunicorn's
``gthread`` worker (27.x: it uses that version's internals, hence the pin in pyproject.toml)
with these changes:

- a new connection waits in the worker's event loop, not in a pool thread, until its first
  bytes arrive (gunicorn gives it a thread at once, which then waits up to 5 s for data: a few
  idle connections kept every thread busy); one that sends nothing is closed after
  ``keepalive`` seconds, as gunicorn closes an idle kept-alive connection;
- when it stops (SIGTERM), it first takes every connection the kernel has already accepted
  for it, then closes its listening sockets: later connections are refused (a client or
  balancer retries elsewhere) instead of waiting in the backlog until the socket closes and
  being reset, which lost one request per client in a test under load. The master has made
  the kernel stop completing connections by then (:mod:`.listeners`), so none can slip in
  between the last ``accept`` and the ``close``;
- the deadline of :mod:`~missile_classifier.service.deadlines` bounds how long receiving a
  request (head and body) may take, counted from its first bytes, also while it waits for a
  thread. A request whose time ran out in the queue is served only if it has arrived whole
  (:func:`arrived`, then :data:`GRACE_S` to read it); a stalled one is dropped at once, so
  stalled requests queued behind other stalled requests cost no thread time of their own. The
  application disarms the deadline when it has the whole body;
- a worker leaves new connections to the others while it holds more than its share
  (:mod:`~missile_classifier.service.balance`), so keep-alive connections opened in a burst
  are spread over the workers instead of landing on whichever was awake.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as _GunicornThreadWorker

from missile_classifier.service import balance
from missile_classifier.service.deadlines import DEADLINES, current

#: Seconds a client has to send a whole request (head and body); ``REQUEST_READ_TIMEOUT``.
READ_TIMEOUT_ENV = "REQUEST_READ_TIMEOUT"
#: Time to read a request that arrived whole but waited in the queue past its deadline.
GRACE_S = 1.0
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r]*chunked", re.IGNORECASE)


def arrived(data: bytes) -> bool:
    """Whether ``data`` (the start of a connection's unread bytes) holds a whole request."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head, body = b"\r\n" + data[:end], len(data) - end - 4
    length = _CONTENT_LENGTH.search(head)
    if length:
        return body >= int(length.group(1))
    if _CHUNKED.search(head):
        return data.endswith(b"0\r\n\r\n")  # the last chunk, without trailers
    return True  # no body


class ThreadWorker(_GunicornThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    """``gthread`` where waiting for a request costs no thread and receiving one is bounded."""

    def init_process(self) -> None:
        self.read_timeout = float(os.environ.get(READ_TIMEOUT_ENV, "10"))
        table = balance.TABLE
        self._balance = (table, table.claim(os.getpid())) if table is not None else None
        super().init_process()

    def notify(self) -> None:
        """Gunicorn's heartbeat, once per turn of the loop; also this worker's connections."""
        super().notify()
        self._publish()

    def _publish(self) -> None:
        shared = getattr(self, "_balance", None)
        if shared is not None and shared[1] is not None:
            shared[0].publish(shared[1], os.getpid(), self.nr_conns)

    def set_accept_enabled(self, enabled: bool) -> None:
        """Stop or resume accepting; when stopping for good, drain and close the listeners."""
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # paused for back-pressure (worker_connections): the listeners stay
        for listener in self.sockets:
            with contextlib.suppress(OSError):
                listener.setblocking(False)
                while self.accept(listener):
                    pass
                listener.close()

    def accept(self, listener: Any) -> bool:
        """Accept a connection and wait for its first bytes in the event loop.

        Returns:
            Whether a connection was accepted (``False``: none was waiting, or it was left to
            a worker holding fewer, see :mod:`.balance`).
        """
        shared = getattr(self, "_balance", None)
        if (
            self.alive
            and shared is not None
            and shared[1] is not None
            and not shared[0].may_accept(shared[1], self.nr_conns)
        ):
            # Another worker holds fewer connections and was woken for this one too: leave it
            # to that one. The pause bounds how often this loop wakes meanwhile.
            time.sleep(balance.YIELD_S)
            return False
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return False
        self.nr_conns += 1
        self._publish()
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking
        # gunicorn's own path for a connection that sent nothing yet ("deferred"): the poller
        # hands it to a thread when it becomes readable, murder_pending closes it on timeout.
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )
        return True

    def enqueue_req(self, conn: Any) -> None:
        """Queue a readable connection for a thread; its receiving time starts now."""
        conn.readable_since = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        """Handle a request; the application finds the deadline in :data:`current`."""
        left = conn.readable_since + self.read_timeout - time.monotonic()
        if left <= 0:  # its time ran out while it waited for a thread
            left = GRACE_S if arrived(_unread(conn)) else 0.0
        ticket = DEADLINES.arm(conn.sock, left)
        current.ticket = ticket
        try:
            return super().handle(conn)
        finally:
            current.ticket = None
            DEADLINES.disarm(ticket)


def _unread(conn: Any) -> bytes:
    """What the connection received and nobody read yet: buffered by gunicorn, then the socket's."""
    buffered: bytes = conn.parser.unreader.buf.getvalue() if conn.parser is not None else b""
    try:
        waiting: bytes = conn.sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:  # nothing there (BlockingIOError), or the client is gone
        waiting = b""
    return buffered + waiting
