"""Make a listening TCP socket stop completing new connections, so that closing it loses none.

Closing a listening socket resets every connection the kernel completed for it that nobody
accepted yet; those clients have sent a request and get "connection reset", not knowing whether
it was served. A stopping worker accepts every queued connection before it closes its listener
(:mod:`~missile_classifier.service.worker`), but the kernel can complete one more between the
last ``accept`` and the ``close``: a few microseconds, or a whole GIL switch interval (5 ms) when
a request thread takes the interpreter in between, which a test under load hit in 2 of 10 runs
one morning (docs/reliability.md).

:func:`refuse_new_connections` closes that gap with a classic BPF filter on the socket that
drops SYN segments. From then on the kernel answers no new connection attempt: its client sends
the SYN again (Linux: after 1 s), finds the port closed and gets "connection refused", which a
client or balancer retries elsewhere. Handshakes already under way complete (their ACK passes)
and the drain accepts them; only one whose ACK is still on the wire when the drain ends, a round
trip at most, can be reset.
"""

from __future__ import annotations

import ctypes
import socket
import sys
from typing import Any

#: ``SO_ATTACH_FILTER`` from ``<asm-generic/socket.h>`` (the socket module does not export it).
SO_ATTACH_FILTER = 26


class _Instruction(ctypes.Structure):
    """``struct sock_filter``: one classic BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _Program(ctypes.Structure):
    """``struct sock_fprog``: the instructions the kernel copies when the filter is attached."""

    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Instruction))]


_SYN = 0x02
#: A TCP socket's filter sees the segment from its TCP header on; byte 13 holds the flags. A
#: listening socket gets a SYN only from a client opening a connection: drop it (return 0),
#: keep everything else (return "all of it").
_DROP_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]
    (0x45, 0, 1, _SYN),  # jset #0x02 → next; else skip one
    (0x06, 0, 0, 0),  # ret #0: drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1: keep
)


def refuse_new_connections(listener: Any) -> bool:
    """Attach the SYN-dropping filter to a listening socket.

    Args:
        listener: A listening socket, or an object with the socket's methods (gunicorn's).

    Returns:
        Whether the filter is attached: ``False`` for a socket that is not TCP, or off Linux.
    """
    if not sys.platform.startswith("linux"):
        return False
    if listener.family not in (socket.AF_INET, socket.AF_INET6):
        return False  # a Unix socket: no handshake in flight, nothing to filter
    instructions = (_Instruction * len(_DROP_SYN))(*(_Instruction(*i) for i in _DROP_SYN))
    program = _Program(len(_DROP_SYN), instructions)
    # The kernel copies the instructions during the call; ``instructions`` outlives it.
    listener.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(program))
    return True
