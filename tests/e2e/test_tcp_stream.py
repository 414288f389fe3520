"""Bulk data through the TCP proxy: many concurrent clients, and one very long stream.

The clients are driven by one ``selectors`` loop: each sends a window of a random pattern
and checks every echoed byte against the pattern as it arrives, so nothing is held twice
in memory and a byte lost, duplicated, reordered or crossed between connections fails at
the first wrong byte.
"""

from __future__ import annotations

import random
import selectors
import socket
import time

import pytest

from tests.conftest import connect

#: Pattern length: odd and not a power of two, so a dropped or repeated buffer-sized run
#: cannot line up with the pattern again.
PERIOD = (1 << 20) + 9
CHUNK = 256 * 1024


def _pattern() -> memoryview:
    base = random.Random(0x5020).randbytes(PERIOD)
    return memoryview(base + base)  # any window of <= PERIOD bytes is one slice


class _Client:
    __slots__ = ("done_sending", "offset", "received", "sent", "sock", "total")

    def __init__(self, sock: socket.socket, offset: int, total: int) -> None:
        self.sock = sock
        self.offset = offset
        self.total = total
        self.sent = 0
        self.received = 0
        self.done_sending = False


def echo_streams(address: str, sizes: list[int], timeout: float) -> None:
    """Open one connection per size, echo that many pattern bytes on each, concurrently,
    and verify every byte that comes back; each connection then sees a clean EOF."""
    pattern = _pattern()
    sel = selectors.DefaultSelector()
    clients = []
    try:
        for i, size in enumerate(sizes):
            sock = connect(address)
            sock.setblocking(False)
            client = _Client(sock, (i * 5003) % PERIOD, size)
            clients.append(client)
            sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)
        open_clients = len(clients)
        deadline = time.monotonic() + timeout
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while open_clients:
            assert time.monotonic() < deadline, "echo streams did not finish in time: " + ", ".join(
                f"{c.received}/{c.total}" for c in clients if c.received < c.total
            )
            for key, mask in sel.select(1.0):
                c: _Client = key.data
                if mask & selectors.EVENT_WRITE and not c.done_sending:
                    start = (c.offset + c.sent) % PERIOD
                    n = min(CHUNK, c.total - c.sent)
                    try:
                        c.sent += c.sock.send(pattern[start : start + n])
                    except BlockingIOError:
                        pass
                    if c.sent == c.total:
                        c.done_sending = True
                        c.sock.shutdown(socket.SHUT_WR)  # half-close: the echo ends too
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if mask & selectors.EVENT_READ:
                    try:
                        n = c.sock.recv_into(view)
                    except BlockingIOError:
                        continue
                    if n == 0:
                        assert c.received == c.total, (
                            f"EOF after {c.received} of {c.total} bytes"
                        )
                        sel.unregister(c.sock)
                        open_clients -= 1
                        continue
                    start = (c.offset + c.received) % PERIOD
                    if view[:n] != pattern[start : start + n]:
                        raise AssertionError(
                            f"corrupt echo at byte {c.received} of a {c.total}-byte stream"
                        )
                    c.received += n
                    assert c.received <= c.total, "more bytes came back than were sent"
    finally:
        sel.close()
        for client in clients:
            client.sock.close()


def test_200_clients_echo_1_mib_each(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    started = time.monotonic()
    echo_streams(address, [1 << 20] * 200, timeout=90)
    print(f"200 x 1 MiB: {time.monotonic() - started:.2f} s")
    assert echo_backend.accepted == 200


@pytest.mark.slow
def test_one_256_mib_stream(proxy, echo_backend):
    address = proxy.tcp_cluster("app", [echo_backend.address])
    started = time.monotonic()
    echo_streams(address, [256 << 20], timeout=100)
    print(f"256 MiB: {time.monotonic() - started:.2f} s")
