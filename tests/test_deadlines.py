"""The per-request receive deadline: a socket's read side is shut when its time runs out."""

from __future__ import annotations

import os
import select
import signal
import socket
import time

from missile_classifier.service.deadlines import Deadlines


def _wait_for(condition: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_deadline_that_runs_out_shuts_the_read_side_and_a_disarmed_one_does_not() -> None:
    deadlines = Deadlines()
    late, late_peer = socket.socketpair()
    kept, kept_peer = socket.socketpair()
    with late, late_peer, kept, kept_peer:
        keep = deadlines.arm(kept, 0.05)
        expire = deadlines.arm(late, 0.1)  # later than the earliest: the watcher must reach it
        deadlines.disarm(keep)
        assert _wait_for(lambda: expire.expired)
        late.settimeout(1)
        assert late.recv(1) == b""  # end of file: a blocked read would wake
        time.sleep(0.1)
        assert not keep.expired
        kept_peer.sendall(b"x")
        kept.settimeout(1)
        assert kept.recv(1) == b"x"
        assert deadlines.pending() == 0


def test_an_earlier_deadline_wakes_the_watcher_waiting_for_a_later_one() -> None:
    deadlines = Deadlines()
    far, far_peer = socket.socketpair()
    near, near_peer = socket.socketpair()
    with far, far_peer, near, near_peer:
        deadlines.arm(far, 30)
        time.sleep(0.05)  # the watcher now waits 30 s for the first
        ticket = deadlines.arm(near, 0.05)
        started = time.monotonic()
        assert _wait_for(lambda: ticket.expired)
        assert time.monotonic() - started < 2
        assert deadlines.pending() == 1


def test_a_forked_worker_runs_its_own_watcher() -> None:
    # Gunicorn forks workers from a process that may have used the deadlines: the child gets
    # the object but not its thread, and must start one of its own.
    deadlines = Deadlines()
    first, first_peer = socket.socketpair()
    with first, first_peer:
        deadlines.disarm(deadlines.arm(first, 0.01))  # the parent's watcher is running
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report whether its deadline fired
            ok = False
            try:
                sock, _peer = socket.socketpair()
                ticket = deadlines.arm(sock, 0.05)
                ok = _wait_for(lambda: ticket.expired, 3.0)
            finally:
                os.write(write, b"1" if ok else b"0")
                os._exit(0)
        os.close(write)
        # A child stuck on a lock held by a thread the fork did not copy never answers.
        answered, _, _ = select.select([read], [], [], 10)
        answer = os.read(read, 1) if answered else b""
        os.close(read)
        if not answered:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert answer == b"1"
