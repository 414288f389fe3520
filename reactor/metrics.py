"""Counters and gauges kept in the worker, readable through the command channel.

Metric names are constants here, in one place, so a reader can find every metric the
project emits (the style of Sōzu's ``metrics/names.rs``). Updating a metric is one dict
operation; nothing is formatted on the hot path.
"""

from __future__ import annotations

from collections import defaultdict

# -- names -----------------------------------------------------------------------------------
CLIENT_CONNECTIONS = "client.connections"  # gauge: open frontend sessions
ACCEPTED = "accept_queue.connections"  # counter: accepted sockets
ACCEPT_BACKPRESSURE = "accept_queue.backpressure"  # gauge: 1 while max_connections is hit
ACCEPT_EMFILE = "accept_queue.emfile"  # counter: accept failed for lack of descriptors
BUFFER_IN_USE = "buffer.in_use"  # gauge
BUFFER_EXHAUSTED = "buffer.exhausted"  # counter: session refused for want of a buffer
ZOMBIES = "zombies"  # counter: sessions closed by the zombie sweep
INFINITE_LOOP = "session.infinite_loop.error"  # counter: runaway session closed
BACKEND_CONNECTIONS = "backend.connections"  # gauge
BACKEND_CONNECT_ERROR = "backend.connections.error"  # counter
BACKEND_DOWN = "backend.down"  # counter
BACKEND_UP = "backend.up"  # counter
NO_BACKEND = "backend.unavailable"  # counter: no backend could be chosen
CONNECT_TIMEOUT = "backend.connect_timeout"  # counter
FRONT_TIMEOUT = "client.timeout"  # counter
BACK_TIMEOUT = "backend.timeout"  # counter
PROXY_PROTOCOL_ERRORS = "proxy_protocol.errors"  # counter: bad PROXY header, connection closed
BYTES_IN = "bytes_in"  # counter: bytes read from clients
BYTES_OUT = "bytes_out"  # counter: bytes written to clients
CHANNEL_ERRORS = "channel.errors"  # counter: invalid frames on the command channel


class Metrics:
    """In-process metrics: plain dicts, cheap to update, copied out on query."""

    __slots__ = ("counters", "gauges")

    def __init__(self) -> None:
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.gauges: defaultdict[str, int] = defaultdict(int)

    def incr(self, name: str, value: int = 1) -> None:
        self.counters[name] += value

    def gauge(self, name: str, value: int) -> None:
        self.gauges[name] = value

    def gauge_add(self, name: str, delta: int) -> None:
        self.gauges[name] += delta

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"counters": dict(self.counters), "gauges": dict(self.gauges)}

    def clear(self) -> None:
        self.counters.clear()
        self.gauges.clear()
