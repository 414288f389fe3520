from __future__ import annotations

import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pysozu.reactor.metrics import Histogram, Metrics, StatsdDrain


@given(st.integers(min_value=0, max_value=10**12))
def test_bucket_bounds_contain_their_values(value):
    bucket = Histogram.bucket_of(value)
    assert Histogram.bucket_upper(bucket) >= value
    if bucket:
        assert Histogram.bucket_upper(bucket - 1) < value  # buckets are ordered, contiguous
    assert Histogram.bucket_upper(bucket) <= value * 1.125 + 1  # within one sub-bucket


@given(st.lists(st.integers(min_value=-5, max_value=10**12), min_size=1, max_size=50))
def test_folded_samples_land_in_their_buckets(values):
    """``fold`` counts each sample in ``bucket_of``'s bucket (it inlines that function)."""
    h = Histogram()
    for v in values:
        h.record(v)
    h.fold()
    expected: dict[int, int] = {}
    for v in values:
        bucket = Histogram.bucket_of(max(v, 0))
        expected[bucket] = expected.get(bucket, 0) + 1
    assert h.buckets == expected


def test_percentiles_match_sorted_samples_within_bucket_error():
    rng = random.Random(3)
    values = [int(rng.lognormvariate(8, 1.5)) for _ in range(20_000)]
    h = Histogram()
    for v in values:
        h.record(v)
    values.sort()
    for p in (50, 90, 99, 99.9):
        exact = values[max(0, int(-(-len(values) * p // 100)) - 1)]
        got = h.percentile(p)
        assert exact <= got <= exact * 1.125 + 1, (p, exact, got)
    summary = h.summary()
    assert summary["count"] == len(values)
    assert summary["min"] == values[0] and summary["max"] == values[-1]
    assert summary["sum"] == sum(values)


def test_histogram_pending_samples_are_bounded_and_read_back():
    h = Histogram()
    for v in range(Histogram.PENDING * 3 + 5):
        h.record(v)
        assert len(h.pending) < Histogram.PENDING  # folded as it fills: memory is bounded
    assert h.pending  # the last few still wait...
    assert h.count == Histogram.PENDING * 3 + 5  # ...and reading counts them
    assert not h.pending
    h.record(-7)  # a clock step backwards counts as zero
    h.record(3)
    assert (h.min, h.max, h.count) == (0, Histogram.PENDING * 3 + 4, Histogram.PENDING * 3 + 7)
    assert h.total == sum(range(Histogram.PENDING * 3 + 5)) + 3


def test_empty_histogram():
    assert Histogram().percentile(99) == 0
    assert Histogram().summary()["count"] == 0


def test_metrics_scopes_and_filters():
    m = Metrics()
    m.incr("requests")
    m.incr_scoped("http.status.200", "app", "app-0", 2)
    m.incr_scoped("http.status.200", "other")
    m.record_time("response_time", 0.002, "app", "app-0")
    m.record_time("response_time", 0.004)
    snap = m.snapshot()
    assert snap["counters"]["requests"] == 1
    assert snap["counters"]["http.status.200"] == 3  # scoped counters also count globally
    assert snap["histograms"]["response_time"]["count"] == 1
    backend = snap["clusters"]["app"]["backends"]["app-0"]
    assert backend["http.status.200"] == 2
    assert backend["response_time"]["p50"] >= 2000
    only_other = m.snapshot(cluster_ids=["other"])
    assert list(only_other["clusters"]) == ["other"]
    assert only_other["counters"] == {}
    m.enabled = False
    m.record_time("response_time", 1.0, "app")
    assert "metrics" not in m.snapshot()["clusters"]["app"] or not m.snapshot()["clusters"][
        "app"]["metrics"]


def test_statsd_drain_sends_batched_lines():
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(5)
    try:
        m = Metrics()
        m.set_drain(StatsdDrain(collector.getsockname(), prefix="test"))
        m.incr("requests")
        m.gauge("client.connections", 3)
        m.record_time("response_time", 0.25, "app", "app-0")
        for _ in range(200):  # enough for several datagrams
            m.incr_scoped("http.status.200", "app")
        m.flush()
        lines: list[str] = []
        while len(lines) < 203:
            data, _ = collector.recvfrom(65536)
            assert len(data) <= StatsdDrain.MAX_DATAGRAM
            lines.extend(data.decode().split("\n"))
        assert "test.requests:1|c" in lines
        assert "test.client.connections:3|g" in lines
        assert "test.response_time,cluster_id=app,backend_id=app-0:250|ms" in lines
        assert lines.count("test.http.status.200,cluster_id=app:1|c") == 200
        m.set_drain(None)
    finally:
        collector.close()


@pytest.mark.parametrize("tagged,expected", [(False, "p.cluster.app.x:1|c")])
def test_statsd_untagged_names(tagged, expected):
    drain = StatsdDrain(("127.0.0.1", 9), prefix="p", tagged=tagged)
    try:
        drain.line("c", ("x", "app", None), 1)
        assert drain.lines == [expected]
    finally:
        drain.close()


@pytest.mark.parametrize("tagged,expected", [
    (True, ["p.conns,worker=3:5|g", "p.x,cluster_id=app:1|c"]),
    (False, ["p.worker.3.conns:5|g", "p.cluster.app.x:1|c"]),
])
def test_statsd_gauges_of_several_workers_stay_apart(tagged, expected):
    # counters add up at the collector; a gauge would be overwritten by the other worker's
    drain = StatsdDrain(("127.0.0.1", 9), prefix="p", tagged=tagged)
    drain.worker = 3
    try:
        drain.line("g", ("conns", None, None), 5)
        drain.line("c", ("x", "app", None), 1)
        assert drain.lines == expected
    finally:
        drain.close()
