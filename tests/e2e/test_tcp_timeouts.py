"""Front, back and connect timeouts of TCP listeners, measured from a real client.

Timeouts are whole seconds (``uint32`` in Sōzu's messages), so the shortest is 1 s; every
wait below is bounded a few seconds past the expected moment.
"""

from __future__ import annotations

import socket
import time

from tests.conftest import connect
from tests.e2e.helpers import (
    counters,
    echo,
    events_so_far,
    expect_eof,
    kinds,
    wait_for,
    wait_sessions,
)


def _cluster(proxy, backends: list[str], **timeouts) -> str:
    proxy.tcp_cluster("app", backends, listen=False)
    address = proxy.listen(**timeouts)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    return address


def _closed_after(client: socket.socket, low: float, high: float, started: float) -> float:
    expect_eof(client, timeout=high)
    elapsed = time.monotonic() - started
    assert low <= elapsed <= high, f"closed after {elapsed:.2f} s, expected {low}-{high} s"
    return elapsed


def test_front_timeout_closes_idle_client(proxy, echo_backend):
    address = _cluster(proxy, [echo_backend.address], front_timeout=1)
    started = time.monotonic()
    with connect(address) as client:
        _closed_after(client, 0.9, 3.0, started)
    assert counters(proxy)["client.timeout"] == 1
    wait_sessions(proxy, 0)


def test_front_timeout_is_reset_by_traffic(proxy, echo_backend):
    address = _cluster(proxy, [echo_backend.address], front_timeout=1)
    with connect(address) as client:
        started = time.monotonic()
        # keep talking for 2.5 timeouts: the session must survive (the pacing sleep is the
        # test's subject, traffic every 0.3 s, not a synchronisation)
        while True:
            echo(client, b"still here")
            last = time.monotonic()
            if last - started > 2.5:
                break
            time.sleep(0.3)
        assert counters(proxy).get("client.timeout", 0) == 0
        # then fall silent: closed about one timeout after the last traffic
        _closed_after(client, 0.9, 3.0, last)


def test_back_timeout_closes_idle_session(proxy, echo_backend):
    address = _cluster(proxy, [echo_backend.address], front_timeout=30, back_timeout=1)
    with connect(address) as client:
        echo(client, b"hello")
        started = time.monotonic()
        _closed_after(client, 0.9, 3.0, started)
    assert counters(proxy)["backend.timeout"] == 1
    assert counters(proxy).get("client.timeout", 0) == 0


def test_expect_proxy_client_silent_hits_front_timeout(proxy, echo_backend):
    address = _cluster(proxy, [echo_backend.address], expect_proxy=True, front_timeout=1)
    started = time.monotonic()
    with connect(address) as client:
        client.sendall(b"PROXY TCP4 ")  # a valid prefix, then nothing
        _closed_after(client, 0.9, 3.0, started)
    assert echo_backend.accepted == 0


def test_connect_timeout_gives_up_on_hanging_backend(proxy, black_hole):
    address = _cluster(proxy, [black_hole.address], connect_timeout=1)
    started = time.monotonic()
    with connect(address) as client:
        client.sendall(b"waiting")
        _closed_after(client, 0.9, 3.5, started)
    c = counters(proxy)
    assert c["backend.connect_timeout"] == 1
    assert "NO_AVAILABLE_BACKENDS" in kinds(events_so_far(proxy))


def test_connect_timeout_retries_another_backend(proxy, black_hole, echo_backend):
    # the hanging backend is first (round robin): after its connect timeout the client is
    # served by the live one, with what it sent meanwhile
    address = _cluster(proxy, [black_hole.address, echo_backend.address], connect_timeout=1)
    started = time.monotonic()
    with connect(address) as client:
        client.settimeout(5)
        echo(client, b"sent while the first connect hangs")
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed <= 3.5, elapsed
        echo(client, b"and afterwards")
    assert counters(proxy)["backend.connect_timeout"] == 1
    wait_for(lambda: echo_backend.accepted == 1)
