"""Load balancing through the HTTP proxy: which backend serves each request of a fixed
sequence, for every algorithm and load metric a cluster can name in ADD_CLUSTER.

Every backend is a recording ``HttpBackend`` whose name starts each response body, so a
pick is read from the response itself. Rules the tests rely on (``protocols/http.py``):

* a backend is picked when a *backend connection* is opened: a keep-alive client reuses
  its backend connection for the next request of the same cluster, so distribution tests
  open a fresh client connection per request (``_fresh``) unless they say otherwise;
* ``active_connections`` counts open backend connections (an idle keep-alive one too);
  ``active_requests`` counts requests sent to a backend and not yet answered. It drops
  in the very loop pass that writes the last byte of the response, so the next request
  of a client always sees it; a closed client's backend connection, though, is dropped
  when the worker notices the close, hence the explicit ``_wait_loads`` barriers;
* load is made with ``/hold`` requests to a backend whose ``release`` is cleared: they stay
  in flight until the test releases them; a backend that takes them is put alone in its
  cluster first, and the others are added once the load is in place.

Randomised algorithms either get loose bounds whose failure probability is below 1e-9,
or a seeded generator injected into the cluster's algorithm in the worker thread, and an
exact expected sequence computed here from the documented rule.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pysozu.protocols.backends import BackendList
from pysozu.protocols.load_balancing import (
    LeastLoaded,
    PeakEWMA,
    PowerOfTwo,
    Random,
    RoundRobin,
)
from tests.conftest import WAIT, Proxy
from tests.e2e.helpers import in_worker, wait_for
from tests.e2e.http_helpers import (
    HttpBackend,
    RawClient,
    fetch,
    get_request,
    http_app,
)

# -- helpers -------------------------------------------------------------------------------------


def _who(body: bytes) -> str:
    """The backend that wrote a response body (``"<name> <method> <path>"``)."""
    return body.split(b" ", 1)[0].decode()


def _fresh(address: str, path: str = "/") -> str:
    """One request on a new client connection (closed after): the backend that served it."""
    response = fetch(address, path)
    assert response.status == 200, (response.status, response.body)
    return _who(response.body)


def _lb(proxy: Proxy, cluster_id: str = "app") -> BackendList:
    backends = proxy.worker.upstreams.backends.get(cluster_id)
    assert backends is not None, f"no backend list for {cluster_id}"
    return backends


def _loads(proxy: Proxy, cluster_id: str = "app") -> dict[str, tuple[int, int]]:
    """Backend id -> (active_connections, active_requests), read in the worker thread."""
    lb = _lb(proxy, cluster_id)
    return in_worker(
        proxy,
        lambda: {b.backend_id: (b.active_connections, b.active_requests) for b in lb.backends},
    )


def _wait_loads(proxy: Proxy, expected: dict[str, tuple[int, int]], what: str = "") -> None:
    """Wait until the listed backends have exactly these (connections, requests)."""

    def reached() -> bool:
        loads = _loads(proxy)
        return all(loads.get(k) == v for k, v in expected.items())

    try:
        wait_for(reached, what=what or f"backend loads {expected}")
    except AssertionError as e:
        raise AssertionError(f"{e}; loads are {_loads(proxy)}") from None


def _add_backend(proxy: Proxy, backend_id: str, address: str, weight: int | None = None,
                 cluster_id: str = "app") -> None:
    fields: dict[str, Any] = {}
    if weight is not None:
        fields["load_balancing_parameters"] = {"weight": weight}
    proxy.ok("ADD_BACKEND", cluster_id=cluster_id, backend_id=backend_id, address=address,
             **fields)


def _seed(proxy: Proxy, seed: int, cluster_id: str = "app") -> None:
    """Give the cluster's (randomised) algorithm its own seeded generator, in the worker."""
    algorithm = _lb(proxy, cluster_id).algorithm
    assert hasattr(algorithm, "rng"), algorithm
    in_worker(proxy, lambda: setattr(algorithm, "rng", random.Random(seed)))


@contextmanager
def _clients() -> Iterator[list[RawClient]]:
    """Client connections kept open for the test, all closed at the end."""
    opened: list[RawClient] = []
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


def _keep_open_request(address: str, opened: list[RawClient], path: str = "/") -> str:
    """One request on a new keep-alive client that stays open (its backend connection too,
    idle once answered): the backend that served it."""
    client = RawClient(address)
    opened.append(client)
    response = client.request(get_request(path))
    assert response.status == 200, (response.status, response.body)
    return _who(response.body)


def _hold(proxy: Proxy, address: str, backend: HttpBackend, backend_id: str, k: int,
          opened: list[RawClient]) -> list[RawClient]:
    """``k`` ``/hold`` requests in flight on ``backend`` (which must be the only backend of
    the cluster, or the one the algorithm picks): their clients, not yet answered."""
    backend.release.clear()
    held = []
    for _ in range(k):
        client = RawClient(address)
        opened.append(client)
        client.send(get_request("/hold"))
        held.append(client)
    _wait_loads(proxy, {backend_id: (k, k)}, f"{k} requests in flight on {backend_id}")
    return held


def _release(backend: HttpBackend, held: list[RawClient]) -> None:
    backend.release.set()
    for client in held:
        response = client.response()
        assert response.status == 200
        assert response.body == f"{backend.name} GET /hold".encode()


def _three(make_http_backend: Any) -> list[HttpBackend]:
    return [make_http_backend(name) for name in ("a", "b", "c")]


# -- round robin (HRW / MAGLEV: refused) ------------------------------------------------------


def test_round_robin_exact_cycle_on_fresh_connections(proxy, make_http_backend):
    backends = _three(make_http_backend)
    address = http_app(proxy, [b.address for b in backends], load_balancing="ROUND_ROBIN")
    assert isinstance(_lb(proxy).algorithm, RoundRobin)
    picks = [_fresh(address, f"/r{n}") for n in range(12)]
    assert picks == ["a", "b", "c"] * 4
    for offset, backend in enumerate(backends):
        assert backend.paths() == [f"/r{n}" for n in range(offset, 12, 3)]


def test_round_robin_picks_per_backend_connection_not_per_request(proxy, make_http_backend):
    backends = _three(make_http_backend)
    address = http_app(proxy, [b.address for b in backends], load_balancing="ROUND_ROBIN")
    with RawClient(address) as client:
        # one keep-alive client: its backend connection is reused, no new pick is made
        seen = [_who(client.request(get_request(f"/k{n}")).body) for n in range(5)]
        assert seen == ["a"] * 5
        assert backends[0].connections == 1
        # meanwhile other clients go on with the cycle
        assert [_fresh(address) for _ in range(4)] == ["b", "c", "a", "b"]
        assert _who(client.request(get_request("/k5")).body) == "a"
    assert backends[0].connections == 2  # its own connection, plus the fresh client's


def test_round_robin_cursor_after_a_backend_is_removed(proxy, make_http_backend):
    a, b, c = _three(make_http_backend)
    address = http_app(proxy, [a.address, b.address, c.address], load_balancing="ROUND_ROBIN")
    assert [_fresh(address) for _ in range(4)] == ["a", "b", "c", "a"]
    # the cursor is an index (now 1) over the current list: [a, c] -> c, a, c...
    proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-1", address=b.address)
    assert [_fresh(address) for _ in range(4)] == ["c", "a", "c", "a"]
    assert len(b.paths()) == 1


@pytest.mark.parametrize("algorithm", ["HRW", "MAGLEV"])
def test_hrw_and_maglev_are_refused_by_the_channel(proxy, make_http_backend, algorithm):
    # HRW and Maglev need a flow key (UDP in Sōzu); an HTTP pick has none, and the channel
    # (pysozu/command.py LOAD_BALANCING_ALGORITHMS) refuses them rather than silently
    # running round robin. A refused upsert leaves the cluster's algorithm and cursor alone.
    backends = _three(make_http_backend)
    answer = proxy.request("ADD_CLUSTER", cluster_id="other", load_balancing=algorithm)
    assert answer["status"] == "FAILURE" and algorithm in answer["message"], answer
    assert proxy.worker.upstreams.backends.get("other") is None
    address = http_app(proxy, [b.address for b in backends], load_balancing="ROUND_ROBIN")
    assert [_fresh(address, "/same") for _ in range(2)] == ["a", "b"]
    answer = proxy.request("ADD_CLUSTER", cluster_id="app", load_balancing=algorithm)
    assert answer["status"] == "FAILURE", answer
    assert isinstance(_lb(proxy).algorithm, RoundRobin)
    assert [_fresh(address, "/same") for _ in range(4)] == ["c", "a", "b", "c"]


# -- random ----------------------------------------------------------------------------------


def test_random_follows_weights_and_never_picks_weight_zero(proxy, make_http_backend):
    light1, light2, heavy, zero = (make_http_backend(n) for n in ("l1", "l2", "heavy", "zero"))
    address = http_app(proxy, [], load_balancing="RANDOM")
    _add_backend(proxy, "l1", light1.address, 100)
    _add_backend(proxy, "l2", light2.address, 100)
    _add_backend(proxy, "heavy", heavy.address, 400)
    _add_backend(proxy, "zero", zero.address, 0)
    assert isinstance(_lb(proxy).algorithm, Random)
    counts = Counter(_fresh(address) for _ in range(300))
    # shares 1/6, 1/6, 2/3, 0. With the real generator: a light backend left out has
    # probability (5/6)**300 < 1e-23; heavy <= a light one is an 11-sigma event (< 1e-25)
    assert counts["zero"] == 0 and zero.requests == []
    assert counts["l1"] > 0 and counts["l2"] > 0
    assert counts["heavy"] > counts["l1"] and counts["heavy"] > counts["l2"], counts
    assert sum(counts.values()) == 300


def test_random_all_weights_zero_falls_back_to_uniform(proxy, make_http_backend):
    a, b = make_http_backend("a"), make_http_backend("b")
    address = http_app(proxy, [], load_balancing="RANDOM")
    _add_backend(proxy, "a", a.address, 0)
    _add_backend(proxy, "b", b.address, 0)
    counts = Counter(_fresh(address) for _ in range(60))
    # uniform: one side left out has probability 2 * 2**-60
    assert set(counts) == {"a", "b"}, counts


def _weighted_reference(seed: int, names: list[str], weights: list[int], n: int) -> list[str]:
    """The documented rule of ``Random``: point = U[0, 1) * total, first cumulative above."""
    rng = random.Random(seed)
    total = sum(weights)
    picks = []
    for _ in range(n):
        point = rng.random() * total
        cumulative = 0
        for name, weight in zip(names, weights, strict=True):
            cumulative += weight
            if point < cumulative:
                picks.append(name)
                break
    return picks


def test_random_seeded_gives_the_exact_weighted_sequence(proxy, make_http_backend):
    a, b, z = make_http_backend("a"), make_http_backend("b"), make_http_backend("z")
    address = http_app(proxy, [], load_balancing="RANDOM")
    _add_backend(proxy, "a", a.address, 100)
    _add_backend(proxy, "z", z.address, 0)
    _add_backend(proxy, "b", b.address, 300)
    _seed(proxy, 20240601)
    expected = _weighted_reference(20240601, ["a", "z", "b"], [100, 0, 300], 40)
    assert set(expected) == {"a", "b"}  # the seed shows both sides
    assert [_fresh(address) for _ in range(40)] == expected


# -- least loaded ------------------------------------------------------------------------------


def _loaded_first_then_two(proxy, make_http_backend, opened, *, k: int = 2, **cluster: Any):
    """Cluster "app" with backend a (app-0) holding ``k`` requests in flight, then b (app-1)
    and c (app-2) added: (listener address, backends, held clients)."""
    a, b, c = _three(make_http_backend)
    address = http_app(proxy, [a.address], **cluster)
    held = _hold(proxy, address, a, "app-0", k, opened)
    _add_backend(proxy, "app-1", b.address)
    _add_backend(proxy, "app-2", c.address)
    return address, (a, b, c), held


def test_least_loaded_connections_counts_idle_keepalive_connections(proxy, make_http_backend):
    with _clients() as opened:
        address, (a, b, c), held = _loaded_first_then_two(
            proxy, make_http_backend, opened, load_balancing="LEAST_LOADED",
            load_metric="CONNECTIONS")
        lb = _lb(proxy)
        assert isinstance(lb.algorithm, LeastLoaded) and lb.algorithm.metric == "CONNECTIONS"
        # each probe keeps its client (so its idle backend connection) open; loads before
        # each pick (a, b, c): 200 -> b, 210 -> c, 211 -> b, 221 -> c, 222 -> a (tie: the
        # first), 322 -> b, 332 -> c
        picks = [_keep_open_request(address, opened) for _ in range(7)]
        assert picks == ["b", "c", "b", "c", "a", "b", "c"]
        assert _loads(proxy) == {"app-0": (3, 2), "app-1": (3, 0), "app-2": (3, 0)}
        assert (len(b.requests), len(c.requests)) == (3, 3)
        _release(a, held)
        _wait_loads(proxy, {"app-0": (3, 0)})
        for client in opened:
            client.close()
        # closing every client closes every backend connection: the counts go back to 0
        _wait_loads(proxy, {f"app-{n}": (0, 0) for n in range(3)})
        # all equal again: ties go to the first backend, on every fresh connection
        for _ in range(3):
            assert _fresh(address) == "a"
            _wait_loads(proxy, {"app-0": (0, 0)})


def test_least_loaded_requests_ignores_idle_connections(proxy, make_http_backend):
    with _clients() as opened:
        address, (a, _b, c), held = _loaded_first_then_two(
            proxy, make_http_backend, opened, load_balancing="LEAST_LOADED",
            load_metric="REQUESTS")
        # same probes as with CONNECTIONS, but an answered request no longer counts: b and c
        # stay at 0 requests, a has 2 in flight, and the tie always goes to b
        picks = [_keep_open_request(address, opened) for _ in range(6)]
        assert picks == ["b"] * 6
        assert _loads(proxy) == {"app-0": (2, 2), "app-1": (6, 0), "app-2": (0, 0)}
        assert c.requests == []
        # once a's requests are answered, it is the first of three equal backends again
        _release(a, held)
        _wait_loads(proxy, {"app-0": (2, 0)})
        assert _keep_open_request(address, opened) == "a"
        assert _keep_open_request(address, opened, "/hold") == "a"  # released: answers
        assert _loads(proxy)["app-0"] == (4, 0)


def test_load_counters_return_to_zero_when_clients_abort_held_requests(proxy,
                                                                        make_http_backend):
    # clients that go away while their requests are in flight must not leave load behind:
    # a leaked count would steer LEAST_LOADED / POWER_OF_TWO away from that backend forever
    with _clients() as opened:
        address, (a, _b, _c), held = _loaded_first_then_two(
            proxy, make_http_backend, opened, k=3, load_balancing="LEAST_LOADED",
            load_metric="REQUESTS")
        for client in held:
            client.close()
        a.release.set()
        _wait_loads(proxy, {"app-0": (0, 0)}, "app-0 back to no connection, no request")
        assert _fresh(address) == "a"  # the first of three idle backends again
        _wait_loads(proxy, {f"app-{n}": (0, 0) for n in range(3)})


# -- power of two --------------------------------------------------------------------------------


def test_power_of_two_never_picks_the_strictly_most_loaded_of_three(proxy, make_http_backend):
    with _clients() as opened:
        address, (a, b, c), held = _loaded_first_then_two(
            proxy, make_http_backend, opened, load_balancing="POWER_OF_TWO",
            load_metric="CONNECTIONS")
        assert isinstance(_lb(proxy).algorithm, PowerOfTwo)
        counts: Counter[str] = Counter()
        for _ in range(40):
            # loads (2, 0, 0) before every pick: the two lowest are b and c, 1/2 each
            counts[_fresh(address)] += 1
            _wait_loads(proxy, {"app-1": (0, 0), "app-2": (0, 0)})
        # a never; b or c left out has probability 2 * 2**-40
        assert counts["a"] == 0 and set(counts) == {"b", "c"}, counts
        assert (len(b.requests), len(c.requests)) == (counts["b"], counts["c"])
        assert [r.path for r in a.requests] == []  # the held ones are not answered yet
        _release(a, held)


def test_power_of_two_with_two_backends_still_sends_half_to_the_loaded_one(
        proxy, make_http_backend):
    # Sōzu's variant keeps the two lowest-load candidates and flips a coin between them:
    # with only two backends, the loaded one is still picked half of the time (the textbook
    # "sample two, keep the lighter" would always take the idle one here)
    a, b = make_http_backend("a"), make_http_backend("b")
    with _clients() as opened:
        address = http_app(proxy, [a.address], load_balancing="POWER_OF_TWO",
                           load_metric="REQUESTS")
        held = _hold(proxy, address, a, "app-0", 3, opened)
        _add_backend(proxy, "app-1", b.address)
        _seed(proxy, 7)
        rng = random.Random(7)
        # loads (3, 0): the lighter is b, the heavier a; rng.random() < 0.5 takes the lighter
        expected = ["b" if rng.random() < 0.5 else "a" for _ in range(20)]
        assert set(expected) == {"a", "b"}
        # REQUESTS: an answered probe no longer counts, so the loads stay (3, 0) throughout
        picks = [_fresh(address) for _ in range(20)]
        assert picks == expected
        assert _loads(proxy)["app-0"][1] == 3
        _release(a, held)


# -- connection time (peak EWMA) -----------------------------------------------------------------


class _FrozenEWMA(PeakEWMA):
    """A peak EWMA on a clock that never moves: no decay, so its estimate changes only on a
    peak (a connect slower than it), and it records every connect time it is fed."""

    def __init__(self, rtt: float) -> None:
        super().__init__(rtt=rtt, clock=lambda: 0.0)
        self.connects: list[float] = []
        self._reading = False

    def observe(self, rtt: float) -> None:
        if not self._reading:  # get() feeds a 0 to decay first: not a connect
            self.connects.append(rtt)
        super().observe(rtt)

    def get(self, active: int) -> float:
        self._reading = True
        try:
            return super().get(active)
        finally:
            self._reading = False


def test_connection_time_cost_is_ewma_times_connections_plus_one(proxy, make_http_backend):
    # Loopback connects take microseconds and jitter with the machine's load, so which of two
    # real backends "connects faster" is not deterministic. Instead each backend gets an
    # estimate the test sets, on a frozen clock (no decay): 4 s and 8.8 s, above the 3 s
    # connect timeout, so no successful connect can be a peak that raises them. The picks
    # then follow the metric's formula, estimate * (active_connections + 1), exactly.
    a, b = make_http_backend("a"), make_http_backend("b")
    address = http_app(proxy, [a.address, b.address], load_balancing="LEAST_LOADED",
                       load_metric="CONNECTION_TIME")
    lb = _lb(proxy)
    fast, slow = _FrozenEWMA(4.0), _FrozenEWMA(8.8)

    def install() -> None:
        lb.backends[0].connection_time = fast
        lb.backends[1].connection_time = slow

    in_worker(proxy, install)
    with _clients() as opened:
        # costs (a, b) before each pick, with every probe's connection kept open:
        # (4, 8.8) a, (8, 8.8) a, (12, 8.8) b, (12, 17.6) a, (16, 17.6) a, (20, 17.6) b...
        picks = [_keep_open_request(address, opened) for _ in range(9)]
        assert picks == ["a", "a", "b"] * 3
        # every backend connection the HTTP proxy opened fed its connect time, once
        assert len(fast.connects) == 6 and len(slow.connects) == 3
        assert all(0 <= t < WAIT for t in fast.connects + slow.connects)
        assert (fast.rtt, slow.rtt) == (4.0, 8.8)


def test_connection_time_metric_avoids_a_backend_with_held_connections(proxy,
                                                                       make_http_backend):
    # the same formula with equal estimates: a backend holding connections costs more
    with _clients() as opened:
        address, (a, _b, _c), held = _loaded_first_then_two(
            proxy, make_http_backend, opened, load_balancing="LEAST_LOADED",
            load_metric="CONNECTION_TIME")
        lb = _lb(proxy)
        ewmas = [_FrozenEWMA(4.0) for _ in range(3)]

        def install() -> None:
            for backend, ewma in zip(lb.backends, ewmas, strict=True):
                backend.connection_time = ewma

        in_worker(proxy, install)
        # costs in units of 4 s: (3, 1, 1) -> b (tie: the first), (3, 2, 1) -> c,
        # (3, 2, 2) -> b, (3, 3, 2) -> c, (3, 3, 3) -> a
        picks = [_keep_open_request(address, opened) for _ in range(5)]
        assert picks == ["b", "c", "b", "c", "a"]
        _release(a, held)


# -- live changes --------------------------------------------------------------------------------


def test_switching_load_balancing_live_with_add_cluster(proxy, make_http_backend):
    backends = _three(make_http_backend)
    address = http_app(proxy, [b.address for b in backends], load_balancing="ROUND_ROBIN")
    assert [_fresh(address) for _ in range(4)] == ["a", "b", "c", "a"]

    # ADD_CLUSTER on an existing cluster is an upsert: same backends, new algorithm
    proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="LEAST_LOADED",
             load_metric="CONNECTIONS")
    assert isinstance(_lb(proxy).algorithm, LeastLoaded)
    assert [b.backend_id for b in _lb(proxy).backends] == ["app-0", "app-1", "app-2"]
    _wait_loads(proxy, {f"app-{n}": (0, 0) for n in range(3)})
    for _ in range(4):  # nothing loaded: every tie goes to the first backend
        assert _fresh(address) == "a"
        _wait_loads(proxy, {"app-0": (0, 0)})

    # back to round robin: a fresh algorithm, its cursor starts at the first backend again
    proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="ROUND_ROBIN")
    assert [_fresh(address) for _ in range(3)] == ["a", "b", "c"]

    # and to weighted random, seeded: the exact sequence of the weights now in place
    proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="RANDOM")
    _seed(proxy, 99)
    expected = _weighted_reference(99, ["a", "b", "c"], [100, 100, 100], 12)
    assert [_fresh(address) for _ in range(12)] == expected
    assert sum(len(b.requests) for b in backends) == 4 + 4 + 3 + 12


def test_switching_live_keeps_an_open_keepalive_backend_connection(proxy, make_http_backend):
    # a switch changes the next picks only: a client's open backend connection stays
    backends = _three(make_http_backend)
    address = http_app(proxy, [b.address for b in backends], load_balancing="ROUND_ROBIN")
    with RawClient(address) as client:
        assert _who(client.request(get_request("/1")).body) == "a"
        assert _fresh(address) == "b"
        proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="LEAST_LOADED",
                 load_metric="CONNECTIONS")
        # a holds the keep-alive client's idle connection: least loaded takes b, not a
        assert _loads(proxy)["app-0"] == (1, 0)
        _wait_loads(proxy, {"app-1": (0, 0)})
        assert _fresh(address) == "b"
        _wait_loads(proxy, {"app-1": (0, 0)})
        assert _who(client.request(get_request("/2")).body) == "a"  # same connection
        assert backends[0].connections == 1


def test_weights_change_with_backend_upsert(proxy, make_http_backend):
    # a second ADD_BACKEND for the same id and address updates its weight in place
    a, b = make_http_backend("a"), make_http_backend("b")
    address = http_app(proxy, [], load_balancing="RANDOM")
    _add_backend(proxy, "a", a.address, 100)
    _add_backend(proxy, "b", b.address, 100)
    assert {_fresh(address) for _ in range(40)} == {"a", "b"}  # fails w.p. 2 * 2**-40
    _add_backend(proxy, "b", b.address, 0)
    assert [x.weight for x in _lb(proxy).backends] == [100, 0]
    assert {_fresh(address) for _ in range(20)} == {"a"}


def test_cluster_without_load_balancing_field_is_round_robin(proxy, make_http_backend):
    backends = _three(make_http_backend)
    address = http_app(proxy, [b.address for b in backends])
    assert isinstance(_lb(proxy).algorithm, RoundRobin)
    assert [_fresh(address) for _ in range(6)] == ["a", "b", "c"] * 2
