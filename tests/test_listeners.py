"""The SYN filter of a stopping server's listening sockets, on real sockets."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from missile_classifier.service.listeners import refuse_new_connections


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_a_refusing_listener_completes_no_new_connection_and_keeps_the_old_ones(
    family: socket.AddressFamily, host: str
) -> None:
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(8)
        address = listener.getsockname()[:2]
        served = socket.create_connection(address, timeout=1)
        server_side, _ = listener.accept()
        queued = socket.create_connection(address, timeout=1)
        assert refuse_new_connections(listener)
        with pytest.raises(TimeoutError):  # the SYN is dropped: no answer at all
            socket.create_connection(address, timeout=0.3)
        # A connection queued before the filter is still accepted, and data flows both ways
        # on one accepted before: only segments that open a connection are dropped.
        listener.settimeout(1)
        late, _ = listener.accept()
        late.settimeout(1)
        server_side.settimeout(1)
        queued.sendall(b"queued")
        assert late.recv(16) == b"queued"
        served.sendall(b"ping")
        assert server_side.recv(16) == b"ping"
        server_side.sendall(b"pong")
        assert served.recv(16) == b"pong"
        for sock in (queued, served, server_side, late):
            sock.close()
    with pytest.raises(ConnectionRefusedError):  # closed: the port answers with a reset
        socket.create_connection(address, timeout=1)


def test_a_unix_listener_is_left_alone(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "sock"))
        listener.listen(1)
        assert not refuse_new_connections(listener)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tmp_path / "sock"))
