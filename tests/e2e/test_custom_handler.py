"""The documented way to plug a custom SessionState into a listener (examples/)."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from tests.conftest import WAIT, recv_all

_spec = importlib.util.spec_from_file_location(
    "echo_handler", Path(__file__).parents[2] / "examples" / "echo_handler.py"
)
assert _spec is not None and _spec.loader is not None
echo_handler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(echo_handler)


@pytest.fixture
def echo_worker():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    address = "127.0.0.1:%d" % sock.getsockname()[1]
    sock.close()  # the example binds by itself, as a standalone proxy would
    worker = echo_handler.build_worker(address, idle_timeout=1.0)
    worker.start_thread()
    try:
        yield worker, address
    finally:
        worker.stop_thread()


def test_custom_state_answers_lines(echo_worker):
    _, address = echo_worker
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as client:
        client.sendall(b"hello\nwor")
        client.sendall(b"ld\r\n")
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b"echo: hello\necho: world\n"


def test_custom_state_large_output_uses_writable(echo_worker):
    """More output than the socket buffer: the state must arm WRITABLE and finish later."""
    _, address = echo_worker
    host, port = address.split(":")
    lines = b"".join(b"line %06d\n" % i for i in range(60_000))
    expected = b"".join(b"echo: line %06d\n" % i for i in range(60_000))
    with socket.create_connection((host, int(port)), timeout=WAIT) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        client.sendall(lines)
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == expected


def test_custom_state_timeout_closes_idle_client(echo_worker):
    """The state's timeout (``session.make_timeout``) fires for a silent client."""
    _, address = echo_worker
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as client:
        client.sendall(b"one\n")
        # then silence: the 1 s idle timeout of the handler closes the connection
        assert recv_all(client) == b"echo: one\nbye: idle\n"
