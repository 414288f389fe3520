"""Backends seen from a client: retries on connect failure, all-dead clusters, the circuit
breaker's BACKEND_DOWN / BACKEND_UP events, backup backends and load balancing."""

from __future__ import annotations

import itertools
import time
from collections import Counter

from pysozu.protocols.retry import DEFAULT_MAX_TRIES, ExponentialBackoffPolicy
from tests.conftest import connect, dead_address
from tests.e2e.helpers import (
    counters,
    echo,
    events_so_far,
    expect_eof,
    greeting,
    in_worker,
    kinds,
    wait_sessions,
)


def _backend(proxy, cluster_id: str, index: int):
    return proxy.worker.tcp.backends.get(cluster_id).backends[index]


# -- connect failures ---------------------------------------------------------------------------


def test_dead_backend_is_skipped_every_client_served(proxy, echo_backend):
    # round robin puts the dead backend first: the first client must be retried on the live one
    address = proxy.tcp_cluster("app", [dead_address(), echo_backend.address])
    for n in range(20):
        with connect(address) as client:
            echo(client, b"client %d" % n)
    assert echo_backend.accepted == 20
    assert counters(proxy)["backend.connections.error"] >= 1  # the dead one was tried
    assert "NO_AVAILABLE_BACKENDS" not in kinds(events_so_far(proxy))


def test_connect_retries_up_to_three_attempts(proxy, echo_backend):
    # two dead backends ahead of the live one, picked in list order (LEAST_LOADED breaks
    # ties on the first): the third attempt reaches the live one
    address = proxy.tcp_cluster(
        "app",
        [dead_address(), dead_address(), echo_backend.address],
        load_balancing="LEAST_LOADED",
    )
    with connect(address) as client:
        echo(client, b"third time lucky")
    assert counters(proxy)["backend.connections.error"] == 2


def test_gives_up_after_three_attempts(proxy, echo_backend):
    # three dead backends ahead of the live one: the client is closed after three failures
    # (Sōzu's CONN_RETRIES), even though a fourth backend would have worked
    address = proxy.tcp_cluster(
        "app",
        [dead_address(), dead_address(), dead_address(), echo_backend.address],
        load_balancing="LEAST_LOADED",
    )
    with connect(address) as client:
        expect_eof(client)
    assert counters(proxy)["backend.connections.error"] == 3
    assert echo_backend.accepted == 0
    # the live backend was never tried, so the cluster is not reported empty
    assert "NO_AVAILABLE_BACKENDS" not in kinds(events_so_far(proxy))
    with connect(address) as client:  # the dead ones are backing off: the live one serves
        echo(client, b"served")


def _assert_closed_promptly_with_event(proxy, address: str) -> None:
    started = time.monotonic()
    with connect(address) as client:
        client.sendall(b"anyone there?")
        expect_eof(client, timeout=2.0)
    assert time.monotonic() - started < 2.0
    event = proxy.channel.wait_event("NO_AVAILABLE_BACKENDS")
    assert event["content"]["cluster_id"] == "app"


def test_all_backends_dead_client_closed_promptly(proxy):
    address = proxy.tcp_cluster("app", [dead_address()])
    _assert_closed_promptly_with_event(proxy, address)


def test_more_dead_backends_than_attempts_client_closed_promptly(proxy):
    address = proxy.tcp_cluster("app", [dead_address() for _ in range(4)])
    # the first client spends its three attempts; the next one finds nothing left to try
    for _ in range(2):
        with connect(address) as client:
            expect_eof(client, timeout=2.0)
    assert "NO_AVAILABLE_BACKENDS" in kinds(events_so_far(proxy))
    assert counters(proxy)["backend.connections.error"] == 4


def test_exactly_three_dead_backends_reported(proxy):
    # three attempts, three failures, nothing left: reported at once
    address = proxy.tcp_cluster("app", [dead_address() for _ in range(3)])
    _assert_closed_promptly_with_event(proxy, address)


def test_no_available_backends_is_reported_once_until_served(proxy, make_backend):
    dead = dead_address()
    address = proxy.tcp_cluster("app", [dead])
    for _ in range(3):
        with connect(address) as client:
            expect_eof(client)
    assert kinds(events_so_far(proxy)).count("NO_AVAILABLE_BACKENDS") == 1
    # a backend that works is added: served, then losing it again is reported again
    live = make_backend()
    proxy.ok("ADD_BACKEND", cluster_id="app", backend_id="app-1", address=live.address)
    with connect(address) as client:
        echo(client, b"ok")
    wait_sessions(proxy, 0)
    proxy.ok("REMOVE_BACKEND", cluster_id="app", backend_id="app-1", address=live.address)
    with connect(address) as client:
        expect_eof(client)
    assert kinds(events_so_far(proxy)).count("NO_AVAILABLE_BACKENDS") == 1


# -- circuit breaker ----------------------------------------------------------------------------


def test_backend_down_after_retry_budget_then_up(proxy, make_backend):
    dead = dead_address()
    address = proxy.tcp_cluster("app", [dead])
    backend = _backend(proxy, "app", 0)
    # Sōzu counts a failure only once the previous back-off window (1 s, 1 s, up to 3 s...)
    # has passed. A clock that jumps 1000 s at every reading makes every failure count and
    # every retry allowed at once, so the budget is spent by consecutive connects.
    clock = itertools.count(0, 1000).__next__
    in_worker(
        proxy,
        lambda: setattr(
            backend, "retry_policy", ExponentialBackoffPolicy(DEFAULT_MAX_TRIES, clock=clock)
        ),
    )
    # each client makes three attempts on the only backend: 3 failures, then 6
    with connect(address) as client:
        expect_eof(client)
    assert backend.failures == 3
    assert "BACKEND_DOWN" not in kinds(events_so_far(proxy))
    with connect(address) as client:
        expect_eof(client)
    assert backend.failures == DEFAULT_MAX_TRIES
    events = events_so_far(proxy)
    assert kinds(events).count("BACKEND_DOWN") == 1
    down = next(e for e in events if e["kind"] == "BACKEND_DOWN")
    assert (down["backend_id"], down["address"], down["cluster_id"]) == ("app-0", dead, "app")
    with connect(address) as client:  # already down: no second event
        expect_eof(client)
    assert "BACKEND_DOWN" not in kinds(events_so_far(proxy))
    assert counters(proxy)["backend.down"] == 1
    # the backend comes back on the same port: the next probe succeeds -> BACKEND_UP
    make_backend(port=int(dead.rsplit(":", 1)[1]))
    with connect(address) as client:
        echo(client, b"back")
    events = events_so_far(proxy)
    assert kinds(events).count("BACKEND_UP") == 1
    assert backend.failures == 0 and not backend.is_down()


def test_failure_window_is_not_counted_twice(proxy):
    # with the real clock a dead backend is tried once, then waits out its 1 s window:
    # clients in that window are refused without another attempt or another failure
    address = proxy.tcp_cluster("app", [dead_address()])
    for _ in range(5):
        with connect(address) as client:
            expect_eof(client)
    backend = _backend(proxy, "app", 0)
    assert backend.failures == 1
    assert counters(proxy)["backend.connections.error"] == 1


# -- backups ------------------------------------------------------------------------------------


def test_backup_backend_unused_while_primary_opens(proxy, make_echo_backend):
    primary, backup = make_echo_backend(greeting=b"P"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [primary.address])
    proxy.ok(
        "ADD_BACKEND",
        cluster_id="app",
        backend_id="app-backup",
        address=backup.address,
        backup=True,
    )
    for _ in range(6):
        sock, who = greeting(address)
        sock.close()
        assert who == b"P"
    assert backup.accepted == 0


def test_backup_backend_serves_when_no_primary_opens(proxy, make_echo_backend):
    backup = make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [dead_address(), dead_address()])
    proxy.ok(
        "ADD_BACKEND",
        cluster_id="app",
        backend_id="app-backup",
        address=backup.address,
        backup=True,
    )
    for _ in range(4):
        sock, who = greeting(address)
        with sock:
            assert who == b"B"
            echo(sock, b"via backup")
    assert backup.accepted == 4


# -- load balancing -----------------------------------------------------------------------------


def test_round_robin_alternates(proxy, make_echo_backend):
    a, b = make_echo_backend(greeting=b"A"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [a.address, b.address], load_balancing="ROUND_ROBIN")
    seen = []
    for _ in range(8):
        sock, who = greeting(address)
        sock.close()
        seen.append(who)
    assert seen == [b"A", b"B"] * 4


def test_least_loaded_picks_backend_with_fewer_connections(proxy, make_echo_backend):
    a, b = make_echo_backend(greeting=b"A"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster(
        "app", [a.address, b.address], load_balancing="LEAST_LOADED", load_metric="CONNECTIONS"
    )
    held: dict[bytes, list] = {b"A": [], b"B": []}

    def open_one() -> bytes:
        sock, who = greeting(address)
        held[who].append(sock)
        return who

    try:
        # the emptier backend each time; a tie goes to the first in the list
        assert [open_one() for _ in range(4)] == [b"A", b"B", b"A", b"B"]
        for sock in held[b"B"]:
            sock.close()
        held[b"B"].clear()
        wait_sessions(proxy, 2)  # the proxy has closed B's backend connections
        # A holds 2, B none: B twice in a row (round robin would alternate), then the tie
        assert [open_one() for _ in range(3)] == [b"B", b"B", b"A"]
    finally:
        for socks in held.values():
            for sock in socks:
                sock.close()


def test_weighted_random_never_picks_weight_zero(proxy, make_echo_backend):
    heavy, zero = make_echo_backend(greeting=b"H"), make_echo_backend(greeting=b"Z")
    proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="RANDOM")
    proxy.ok(
        "ADD_BACKEND",
        cluster_id="app",
        backend_id="heavy",
        address=heavy.address,
        load_balancing_parameters={"weight": 100},
    )
    proxy.ok(
        "ADD_BACKEND",
        cluster_id="app",
        backend_id="zero",
        address=zero.address,
        load_balancing_parameters={"weight": 0},
    )
    address = proxy.listen()
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address=address)
    for _ in range(20):
        sock, who = greeting(address)
        sock.close()
        assert who == b"H"
    assert zero.accepted == 0


def test_random_spreads_over_backends(proxy, make_echo_backend):
    a, b = make_echo_backend(greeting=b"A"), make_echo_backend(greeting=b"B")
    address = proxy.tcp_cluster("app", [a.address, b.address], load_balancing="RANDOM")
    seen = Counter()
    for _ in range(40):  # both equal weights: all 40 on one side has probability 2**-39
        sock, who = greeting(address)
        sock.close()
        seen[who] += 1
    assert set(seen) == {b"A", b"B"}


def test_power_of_two_never_picks_the_most_loaded(proxy, make_echo_backend):
    backends = [make_echo_backend(greeting=g) for g in (b"A", b"B", b"C")]
    address = proxy.tcp_cluster(
        "app",
        [b.address for b in backends],
        load_balancing="POWER_OF_TWO",
        load_metric="CONNECTIONS",
    )
    held: dict[bytes, list] = {b"A": [], b"B": [], b"C": []}
    try:
        for _ in range(12):
            loads = sorted(len(s) for s in held.values())
            sock, who = greeting(address)
            # the pick is one of the two least loaded: its load is at most the second lowest
            assert len(held[who]) <= loads[1], (who, {k: len(v) for k, v in held.items()})
            held[who].append(sock)
    finally:
        for socks in held.values():
            for sock in socks:
                sock.close()
