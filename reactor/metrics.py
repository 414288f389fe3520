"""Counters, gauges and latency histograms kept in the worker, plus a StatsD drain.

Metric names are constants here, in one place, so a reader can find every metric the
project emits (the style of Sōzu's ``metrics/names.rs``). Updating a counter or gauge is
one dict operation; nothing is formatted on the hot path.

Latencies go to ``Histogram``: log-linear buckets (8 per power of two, so every value is
within 9 % of its bucket's bound) over microseconds, with exact count, sum, min and max. It
answers percentiles in O(buckets). A sample costs one list append: samples wait unsorted
(at most ``Histogram.PENDING`` of them) and are folded into the buckets in bulk, when the
histogram is read or the list is full, so memory stays bounded by the range of values, not
their number.

Each metric can be global or scoped to a cluster, or a cluster and a backend: the key is
``(name, cluster_id, backend_id)``, ``None`` where unscoped.

``StatsdDrain`` forwards every update as a StatsD line (``prefix.name:value|c``, ``|g``,
``|ms``, with ``,cluster_id=…,backend_id=…`` tags when scoped) over UDP. Lines are queued
and sent in datagrams of at most 1400 bytes when the loop calls ``flush`` once per pass; a
full socket buffer drops the batch (metrics must never slow the proxy down).
"""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar, Final

log = logging.getLogger("pysozu.metrics")

# -- names -----------------------------------------------------------------------------------
CLIENT_CONNECTIONS: Final = "client.connections"  # gauge: open frontend sessions
ACCEPTED: Final = "accept_queue.connections"  # counter: accepted sockets
ACCEPT_BACKPRESSURE: Final = "accept_queue.backpressure"  # gauge: 1 while max_connections is hit
ACCEPT_EMFILE: Final = "accept_queue.emfile"  # counter: accept failed for lack of descriptors
BUFFER_IN_USE: Final = "buffer.in_use"  # gauge
BUFFER_EXHAUSTED: Final = "buffer.exhausted"  # counter: session refused for want of a buffer
ZOMBIES: Final = "zombies"  # counter: sessions closed by the zombie sweep
INFINITE_LOOP: Final = "session.infinite_loop.error"  # counter: runaway session closed
SESSION_ERRORS: Final = "session.errors"  # counter: a session raised and was closed (a bug)
BACKEND_CONNECTIONS: Final = "backend.connections"  # gauge
BACKEND_CONNECT_ERROR: Final = "backend.connections.error"  # counter
BACKEND_DOWN: Final = "backend.down"  # counter
BACKEND_UP: Final = "backend.up"  # counter
NO_BACKEND: Final = "backend.unavailable"  # counter: no backend could be chosen
CONNECT_TIMEOUT: Final = "backend.connect_timeout"  # counter
FRONT_TIMEOUT: Final = "client.timeout"  # counter
BACK_TIMEOUT: Final = "backend.timeout"  # counter
#: counter: bad PROXY header, connection closed
PROXY_PROTOCOL_ERRORS: Final = "proxy_protocol.errors"
BYTES_IN: Final = "bytes_in"  # counter: bytes read from clients
BYTES_OUT: Final = "bytes_out"  # counter: bytes written to clients
CHANNEL_ERRORS: Final = "channel.errors"  # counter: invalid frames on the command channel
BACKEND_CONNECT_TIME: Final = "backend_connection_time"  # histogram (µs): connect duration

Key = tuple[str, str | None, str | None]
_PERCENTILES = (50.0, 90.0, 99.0, 99.9)


#: buckets a histogram starts with: values up to 2**15 - 1 (32 ms in microseconds)
_INITIAL_BUCKETS: Final = 8 * 12 + 8


class Histogram:
    """Log-linear histogram of non-negative integers (see module docstring)."""

    __slots__ = ("_count", "_counts", "_max", "_min", "_total", "pending")
    SUB: Final = 8  # buckets per power of two
    #: samples kept unsorted before they are folded into the buckets
    PENDING: Final = 1024

    def __init__(self) -> None:
        #: samples per bucket, indexed by bucket (a list: compiled, an index is a native
        #: read; grown when a sample lands past its end)
        self._counts: list[int] = [0] * _INITIAL_BUCKETS
        #: samples not folded yet: ``record`` is one append on the proxy's hot path (two
        #: samples per request); the buckets are brought up to date when read, or when
        #: this list reaches ``PENDING`` (memory stays bounded)
        self.pending: list[int] = []
        self._count = 0
        self._total = 0
        self._min = 0
        self._max = 0

    @classmethod
    def bucket_of(cls, value: int) -> int:
        if value < cls.SUB:
            return value
        shift = value.bit_length() - 4  # keep the top 4 bits: 8 sub-buckets per octave
        return (shift << 3) + (value >> shift)

    @classmethod
    def bucket_upper(cls, bucket: int) -> int:
        """The largest value that falls in ``bucket``."""
        if bucket < cls.SUB:
            return bucket
        shift, top = divmod(bucket, cls.SUB)
        top += cls.SUB  # restore the implicit leading bit
        shift -= 1
        return ((top + 1) << shift) - 1

    def record(self, value: int) -> None:
        pending = self.pending
        pending.append(value)
        if len(pending) >= self.PENDING:
            self.fold()

    def fold(self) -> None:
        """Count the pending samples into the buckets, min, max and sum."""
        pending = self.pending
        if not pending:
            return
        low = min(pending)
        if low < 0:
            pending = [v if v > 0 else 0 for v in pending]
            low = 0
        high = max(pending)
        if self._count == 0 or low < self._min:
            self._min = low
        if high > self._max:
            self._max = high
        self._count += len(pending)
        self._total += sum(pending)
        counts = self._counts
        for value in pending:
            if value < 8:
                bucket = value
            else:
                # bucket_of, inlined, with value.bit_length() - 4 counted in native shifts
                # (compiled, the method is a generic call: most of a fold's time)
                shift = 0
                rest = value >> 4
                while rest:
                    rest >>= 1
                    shift += 1
                bucket = (shift << 3) + (value >> shift)
            if bucket >= len(counts):
                counts.extend([0] * (bucket + 1 - len(counts)))
            counts[bucket] += 1
        self.pending = []

    @property
    def buckets(self) -> dict[int, int]:
        """bucket -> samples folded so far, for the buckets that have any."""
        return {bucket: n for bucket, n in enumerate(self._counts) if n}

    @property
    def count(self) -> int:
        self.fold()
        return self._count

    @property
    def total(self) -> int:
        self.fold()
        return self._total

    @property
    def min(self) -> int:
        self.fold()
        return self._min

    @property
    def max(self) -> int:
        self.fold()
        return self._max

    def percentile(self, p: float) -> int:
        """An upper bound within one bucket (≤ 12.5 %) of the ``p``-th percentile."""
        if not self.count:
            return 0
        rank = max(1, -(-self.count * p // 100))
        seen = 0
        for bucket, n in enumerate(self._counts):
            seen += n
            if n and seen >= rank:
                return min(self.bucket_upper(bucket), self.max)
        return self.max

    def summary(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {
            "count": self.count,
            "sum": self.total,
            "min": self.min,
            "max": self.max,
            "mean": self.total / self.count if self.count else 0,
        }
        for p in _PERCENTILES:
            out[f"p{p:g}"] = self.percentile(p)
        return out


class StatsdDrain:
    """Batches StatsD lines and sends them over UDP (see module docstring)."""

    MAX_DATAGRAM: ClassVar[int] = 1400

    def __init__(self, address: tuple[str, int], prefix: str = "pysozu", tagged: bool = True):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.address = address
        self.prefix = prefix
        self.tagged = tagged
        self.lines: list[str] = []
        self.dropped = 0
        #: the worker process sending (several workers feed one collector): gauges carry
        #: it, since a collector keeps one value per gauge name and tags; counters and
        #: timers add up at the collector whoever sends them
        self.worker: int | None = None

    def line(self, kind: str, key: Key, value: int) -> None:
        name, cluster_id, backend_id = key
        tags = ""
        if self.tagged and cluster_id is not None:
            tags = f",cluster_id={cluster_id}"
            if backend_id is not None:
                tags += f",backend_id={backend_id}"
        elif cluster_id is not None:
            name = f"cluster.{cluster_id}.{name}" if backend_id is None else (
                f"cluster.{cluster_id}.backend.{backend_id}.{name}")
        if kind == "g" and self.worker is not None:
            if self.tagged:
                tags += f",worker={self.worker}"
            else:
                name = f"worker.{self.worker}.{name}"
        self.lines.append(f"{self.prefix}.{name}{tags}:{value}|{kind}")

    def flush(self) -> None:
        if not self.lines:
            return
        batch: list[str] = []
        size = 0
        for line in self.lines:
            if batch and size + len(line) + 1 > self.MAX_DATAGRAM:
                self._send("\n".join(batch))
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
        if batch:
            self._send("\n".join(batch))
        self.lines.clear()

    def _send(self, payload: str) -> None:
        try:
            self.sock.sendto(payload.encode(), self.address)
        except OSError:
            self.dropped += 1  # full buffer or unreachable collector: never block the proxy

    def close(self) -> None:
        self.sock.close()


class Metrics:
    """In-process metrics: plain dicts, cheap to update, copied out on query."""

    __slots__ = ("counters", "drain", "enabled", "gauges", "histograms", "scoped")

    def __init__(self) -> None:
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.gauges: defaultdict[str, int] = defaultdict(int)
        self.histograms: dict[Key, Histogram] = {}
        #: counters scoped to a cluster/backend: (name, cluster, backend) -> value
        self.scoped: defaultdict[Key, int] = defaultdict(int)
        self.drain: StatsdDrain | None = None
        #: CONFIGURE_METRICS DISABLED stops local aggregation of histograms and scoped counters
        self.enabled = True

    def incr(self, name: str, value: int = 1) -> None:
        self.counters[name] += value
        if self.drain is not None:
            self.drain.line("c", (name, None, None), value)

    def incr_each(self, names: Iterable[str]) -> None:
        """``incr`` of each name, one call for all (a TLS handshake counts several)."""
        counters = self.counters
        drain = self.drain
        for name in names:
            counters[name] += 1
            if drain is not None:
                drain.line("c", (name, None, None), 1)

    def incr_scoped(
        self, name: str, cluster_id: str | None, backend_id: str | None = None, value: int = 1
    ) -> None:
        """A counter per cluster (and backend); also counted globally."""
        self.counters[name] += value
        if self.enabled:
            self.scoped[(name, cluster_id, backend_id)] += value
        if self.drain is not None:
            self.drain.line("c", (name, cluster_id, backend_id), value)

    def gauge(self, name: str, value: int) -> None:
        self.gauges[name] = value
        if self.drain is not None:
            self.drain.line("g", (name, None, None), value)

    def gauge_add(self, name: str, delta: int) -> None:
        self.gauges[name] += delta
        if self.drain is not None:
            self.drain.line("g", (name, None, None), self.gauges[name])

    def record_time(
        self,
        name: str,
        seconds: float,
        cluster_id: str | None = None,
        backend_id: str | None = None,
    ) -> None:
        """A latency sample, kept in microseconds."""
        micros = int(seconds * 1e6)
        if self.enabled:
            key = (name, cluster_id, backend_id)
            histogram = self.histograms.get(key)
            if histogram is None:
                histogram = self.histograms[key] = Histogram()
            histogram.record(micros)
        if self.drain is not None:
            self.drain.line("ms", (name, cluster_id, backend_id), micros // 1000)

    def flush(self) -> None:
        """Called by the loop once per pass: sends the batched StatsD lines."""
        if self.drain is not None:
            self.drain.flush()

    def set_drain(self, drain: StatsdDrain | None) -> None:
        if self.drain is not None:
            self.drain.close()
        self.drain = drain

    def snapshot(
        self,
        cluster_ids: list[str] | None = None,
        backend_ids: list[str] | None = None,
        names: list[str] | None = None,
    ) -> dict[str, Any]:
        """Everything, or what the filters select (QUERY_METRICS)."""
        def wanted(key: Key) -> bool:
            name, cluster_id, backend_id = key
            if names and name not in names:
                return False
            if cluster_ids and cluster_id not in cluster_ids:
                return False
            return not (backend_ids and backend_id not in backend_ids)

        out: dict[str, Any] = {
            "counters": {k: v for k, v in self.counters.items() if not names or k in names},
            "gauges": {k: v for k, v in self.gauges.items() if not names or k in names},
            "histograms": {},
            "clusters": {},
        }
        for key, histogram in self.histograms.items():
            if not wanted(key):
                continue
            name, cluster_id, backend_id = key
            if cluster_id is None:
                out["histograms"][name] = histogram.summary()
            else:
                self._scope(out, cluster_id, backend_id)[name] = histogram.summary()
        for key, value in self.scoped.items():
            if wanted(key):
                name, cluster_id, backend_id = key
                if cluster_id is not None:
                    self._scope(out, cluster_id, backend_id)[name] = value
        if cluster_ids or backend_ids:
            out["counters"], out["gauges"], out["histograms"] = {}, {}, {}
        return out

    @staticmethod
    def _scope(out: dict[str, Any], cluster_id: str, backend_id: str | None) -> dict[str, Any]:
        cluster = out["clusters"].setdefault(cluster_id, {"metrics": {}, "backends": {}})
        if backend_id is None:
            metrics: dict[str, Any] = cluster["metrics"]
            return metrics
        backend: dict[str, Any] = cluster["backends"].setdefault(backend_id, {})
        return backend

    def clear(self) -> None:
        self.counters.clear()
        self.gauges.clear()
        self.histograms.clear()
        self.scoped.clear()
