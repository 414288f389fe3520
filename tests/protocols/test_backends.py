"""Backends, backend lists and the backend map (Sōzu lib/src/backends.rs)."""

from __future__ import annotations

import random

import pytest

from pysozu.protocols.backends import (
    AvailabilityChange,
    Backend,
    BackendList,
    BackendMap,
    BackendStatus,
    NoAvailableBackend,
    format_address,
    parse_address,
)
from pysozu.protocols.load_balancing import (
    LeastLoaded,
    LoadMetric,
    PowerOfTwo,
    Random,
    RoundRobin,
)
from pysozu.protocols.retry import RetryAction


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(
    clock: FakeClock,
    backend_id: str,
    port: int,
    sticky_id: str | None = None,
    weight: int | None = None,
    backup: bool = False,
) -> Backend:
    return Backend(
        backend_id,
        f"127.0.0.1:{port}",
        sticky_id,
        weight,
        backup,
        clock=clock,
        rng=random.Random(1),
    )


def put_in_backoff(backend: Backend) -> None:
    backend.failure()
    assert backend.retry_policy.can_try() is RetryAction.WAIT


def take_down(backend: Backend, clock: FakeClock) -> bool:
    """Fail until the retry budget is spent, waiting out each window; returns the last result."""
    went_down = False
    for _ in range(backend.retry_policy.max_tries):
        clock.advance(backend.retry_policy.remaining_wait())
        went_down = backend.failure()
    return went_down


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "formatted"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000), "127.0.0.1:8000"),
        ("[::1]:80", ("::1", 80), "[::1]:80"),
        ("[0:0::0001]:443", ("::1", 443), "[::1]:443"),
        (" 10.0.0.2:9 ", ("10.0.0.2", 9), "10.0.0.2:9"),
        ("Backend.Local:8080", ("backend.local", 8080), "backend.local:8080"),
        (("::1", 81), ("::1", 81), "[::1]:81"),
    ],
)
def test_parse_and_format_address(
    text: str | tuple[str, int], expected: tuple[str, int], formatted: str
) -> None:
    assert parse_address(text) == expected
    assert format_address(*expected) == formatted


@pytest.mark.parametrize(
    "bad",
    [
        "127.0.0.1",
        "::1:80",
        "[::1]80",
        "[::1]",
        "1.2.3.4:99999",
        "1.2.3.4:-1",
        ":80",
        "1.2.3.4:http",
        "a b:80",
        "[1.2.3.4]:80",
        "1.2.3.4:\uff18\uff10",
    ],
)
def test_parse_address_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_address(bad)


# -- Backend ---------------------------------------------------------------------------------


def test_backend_defaults(clock: FakeClock) -> None:
    b = Backend("app-0", "[::1]:8000", clock=clock)
    assert b.backend_id == "app-0"
    assert b.address == "[::1]:8000"
    assert b.sockaddr == ("::1", 8000)
    assert b.sticky_id == "app-0"
    assert b.weight == 100
    assert b.backup is False
    assert b.status is BackendStatus.NORMAL
    assert b.retry_policy.max_tries == 6
    assert (b.active_connections, b.active_requests, b.failures) == (0, 0, 0)
    assert b.connection_time.rtt == 0.05
    assert b.healthy
    assert b.can_open()
    assert not hasattr(b, "__dict__")  # __slots__


def test_backend_explicit_fields(clock: FakeClock) -> None:
    b = Backend("a", "10.0.0.1:1", sticky_id="s1", weight=7, backup=True, clock=clock)
    assert (b.sticky_id, b.weight, b.backup) == ("s1", 7, True)
    assert Backend("b", "10.0.0.1:1", backup=None).backup is False


def test_can_open_requires_normal_okay_and_healthy(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    put_in_backoff(b)
    assert not b.can_open()
    clock.advance(1)
    assert b.can_open()
    b.healthy = False
    assert not b.can_open()
    b.healthy = True
    b.set_closing()
    assert not b.can_open()


def test_failure_reports_the_down_transition_once(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    results = []
    for _ in range(6):
        clock.advance(b.retry_policy.remaining_wait())
        results.append(b.failure())
    assert results == [False, False, False, False, False, True]
    assert b.is_down()
    assert b.failures == 6
    # further failures while down never report the transition again
    clock.advance(b.retry_policy.remaining_wait())
    assert b.failure() is False
    assert b.failure() is False
    assert b.failures == 8


def test_failures_inside_a_window_count_but_do_not_advance_the_policy(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    for _ in range(10):
        assert b.failure() is False
    assert b.failures == 10
    assert b.retry_policy.current_tries == 1
    assert not b.is_down()


def test_success_reports_up_only_when_it_was_down(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    assert b.success() is False
    put_in_backoff(b)
    assert b.success() is False  # back-off is not "down"
    assert b.can_open()
    assert take_down(b, clock) is True
    clock.advance(b.retry_policy.remaining_wait())
    # a down backend lets a probe through once its window has passed
    assert b.can_open()
    assert b.success(0.02) is True
    assert b.failures == 0
    assert b.retry_policy.current_tries == 0
    assert not b.is_down()
    assert b.can_open()
    assert b.success() is False


def test_down_backend_cannot_open_inside_its_window(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    take_down(b, clock)
    assert b.retry_policy.can_try() is RetryAction.WAIT
    assert not b.can_open()
    assert not b.is_available()


def test_success_feeds_connection_time(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    b.success(0.4)
    assert b.connection_time.rtt == 0.4
    b.set_connection_time(0.9)
    assert b.connection_time.rtt == 0.9
    b.active_connections = 2
    assert b.peak_ewma_connection() == pytest.approx(3 * 0.9)


def test_connection_counting_and_closing(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    assert b.inc_connections() and b.inc_connections()
    assert b.active_connections == 2
    assert b.dec_connections() is False
    assert b.active_connections == 1
    b.set_closing()
    assert b.inc_connections() is False  # a closing backend takes no new connection
    assert b.active_connections == 1
    assert b.dec_connections() is True  # last one: emit REMOVED_BACKEND_HAS_NO_CONNECTIONS
    assert b.status is BackendStatus.CLOSED
    assert b.drained
    assert b.dec_connections() is False
    assert b.active_connections == 0


def test_dec_connections_never_goes_negative(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    assert b.dec_connections() is False
    assert b.active_connections == 0


def test_retire(clock: FakeClock) -> None:
    idle = make(clock, "a", 1)
    assert idle.retire() is True
    assert idle.status is BackendStatus.CLOSED
    busy = make(clock, "b", 2)
    busy.inc_connections()
    assert busy.retire() is False
    assert busy.status is BackendStatus.CLOSING


def test_is_available_counts_a_backoff_window_but_not_down(clock: FakeClock) -> None:
    b = make(clock, "a", 1)
    put_in_backoff(b)
    assert b.is_available()
    take_down(b, clock)
    assert not b.is_available()


# -- BackendList -----------------------------------------------------------------------------


def test_default_algorithm_is_random() -> None:
    assert isinstance(BackendList().algorithm, Random)


def test_add_updates_in_place_and_keeps_runtime_state(clock: FakeClock) -> None:
    backends = BackendList()
    first = backends.add(make(clock, "a", 1, weight=10))
    put_in_backoff(first)
    first.inc_connections()
    again = backends.add(make(clock, "a", 1, sticky_id="new", weight=20, backup=True))
    assert again is first
    assert len(backends) == 1
    assert (first.sticky_id, first.weight, first.backup) == ("new", 20, True)
    assert first.failures == 1 and first.active_connections == 1
    # same address, another id: a second backend
    other = backends.add(make(clock, "b", 1))
    assert other is not first
    assert len(backends) == 2


def test_round_robin_skips_backends_that_cannot_open(clock: FakeClock) -> None:
    backends = BackendList(RoundRobin())
    a, b, c = (backends.add(make(clock, n, p)) for n, p in (("a", 1), ("b", 2), ("c", 3)))
    assert [backends.next_available() for _ in range(3)] == [a, b, c]
    put_in_backoff(b)
    picks = [backends.next_available() for _ in range(4)]
    assert b not in picks
    assert set(picks) == {a, c}
    c.set_closing()
    assert [backends.next_available() for _ in range(2)] == [a, a]


def test_least_loaded_over_the_list(clock: FakeClock) -> None:
    backends = BackendList(LeastLoaded(LoadMetric.CONNECTIONS))
    a = backends.add(make(clock, "a", 1))
    b = backends.add(make(clock, "b", 2))
    a.inc_connections()
    assert backends.next_available() is b
    b.inc_connections()
    b.inc_connections()
    assert backends.next_available() is a
    put_in_backoff(a)
    assert backends.next_available() is b


def test_backups_only_when_no_primary_can_open(clock: FakeClock) -> None:
    backends = BackendList(RoundRobin())
    primary1 = backends.add(make(clock, "p1", 1))
    primary2 = backends.add(make(clock, "p2", 2))
    backup = backends.add(make(clock, "bk", 3, backup=True))
    picks = {backends.next_available() for _ in range(10)}
    assert picks == {primary1, primary2}
    put_in_backoff(primary1)
    assert {backends.next_available() for _ in range(10)} == {primary2}
    put_in_backoff(primary2)
    assert {backends.next_available() for _ in range(10)} == {backup}
    clock.advance(1)  # both primaries' 1 s windows pass
    assert {backends.next_available() for _ in range(10)} == {primary1, primary2}
    assert backends.fail_open is False


def test_nothing_when_every_backend_waits(clock: FakeClock) -> None:
    backends = BackendList()
    for n, p in (("a", 1), ("b", 2)):
        put_in_backoff(backends.add(make(clock, n, p)))
    backup = backends.add(make(clock, "c", 3, backup=True))
    put_in_backoff(backup)
    assert backends.next_available() is None
    assert BackendList().next_available() is None


def test_fail_open_picks_unhealthy_normal_okay_backends(clock: FakeClock) -> None:
    backends = BackendList(RoundRobin())
    a = backends.add(make(clock, "a", 1))
    b = backends.add(make(clock, "b", 2, backup=True))
    c = backends.add(make(clock, "c", 3))
    for backend in (a, b, c):
        backend.healthy = False
    c.set_closing()
    assert backends.available(False) == [] and backends.available(True) == []
    assert {backends.next_available() for _ in range(6)} == {a, b}
    assert backends.fail_open is True
    # fail-open respects the back-off window
    put_in_backoff(a)
    assert {backends.next_available() for _ in range(6)} == {b}
    put_in_backoff(b)
    assert backends.next_available() is None
    # a healthy backend again: the regular path, latch cleared
    clock.advance(1)
    a.healthy = True
    assert backends.next_available() is a
    assert backends.fail_open is False


def test_find_sticky(clock: FakeClock) -> None:
    backends = BackendList()
    a = backends.add(make(clock, "a", 1, sticky_id="s-a"))
    b = backends.add(make(clock, "b", 2))
    assert backends.find_sticky("s-a") is a
    assert backends.find_sticky("b") is b  # sticky id defaults to the backend id
    assert backends.find_sticky("nope") is None
    put_in_backoff(a)
    assert backends.find_sticky("s-a") is None
    # the first match decides, as in Sōzu: a later backend with the same id is not tried
    backends.add(make(clock, "a2", 3, sticky_id="s-a"))
    assert backends.find_sticky("s-a") is None


def test_list_remove_by_address_and_id(clock: FakeClock) -> None:
    backends = BackendList()
    a = backends.add(make(clock, "a", 1))
    a_variant = backends.add(make(clock, "a-bis", 1))
    b = backends.add(make(clock, "b", 2))
    assert backends.remove("127.0.0.1:1", "a-bis") == [a_variant]
    assert backends.backends == [a, b]
    a.inc_connections()
    backends.add(make(clock, "a-ter", 1))
    removed = backends.remove(("127.0.0.1", 1))
    assert [r.backend_id for r in removed] == ["a", "a-ter"]
    assert backends.backends == [b]
    assert a.status is BackendStatus.CLOSING
    assert removed[1].status is BackendStatus.CLOSED
    assert backends.remove("127.0.0.1:9") == []
    assert not backends.has_backend("127.0.0.1:1")
    assert backends.find_backend("127.0.0.1:2") is b


# -- BackendMap ------------------------------------------------------------------------------


def test_backend_from_cluster_id_errors() -> None:
    backends = BackendMap()
    with pytest.raises(NoAvailableBackend, match="no available backend for cluster unknown"):
        backends.backend_from_cluster_id("unknown")
    backends.set_load_balancing("empty", "ROUND_ROBIN")
    with pytest.raises(NoAvailableBackend) as info:
        backends.backend_from_cluster_id("empty")
    assert info.value.cluster_id == "empty"
    assert str(info.value) == "no available backend for cluster empty"


def test_backend_from_cluster_id_when_every_backend_waits(clock: FakeClock) -> None:
    backends = BackendMap()
    a = backends.add_backend("app", make(clock, "a", 1))
    assert backends.backend_from_cluster_id("app") is a
    put_in_backoff(a)
    with pytest.raises(NoAvailableBackend):
        backends.backend_from_cluster_id("app")
    clock.advance(1)
    assert backends.backend_from_cluster_id("app") is a


def test_set_load_balancing_before_and_after_backends(clock: FakeClock) -> None:
    rng = random.Random(4)
    backends = BackendMap(rng)
    backends.set_load_balancing("app", "round_robin")
    a = backends.add_backend("app", make(clock, "a", 1))
    b = backends.add_backend("app", make(clock, "b", 2))
    cluster = backends.get("app")
    assert cluster is not None and isinstance(cluster.algorithm, RoundRobin)
    assert [backends.backend_from_cluster_id("app") for _ in range(4)] == [a, b, a, b]
    backends.set_load_balancing("app", "POWER_OF_TWO", "REQUESTS")
    assert isinstance(cluster.algorithm, PowerOfTwo)
    assert cluster.algorithm.metric is LoadMetric.REQUESTS
    assert cluster.algorithm.rng is rng
    # a cluster that got backends before its policy uses Random, with the map's rng
    backends.add_backend("other", make(clock, "c", 3))
    other = backends.get("other")
    assert other is not None and isinstance(other.algorithm, Random)
    assert other.algorithm.rng is rng


def test_backend_from_sticky_session(clock: FakeClock) -> None:
    backends = BackendMap()
    backends.set_load_balancing("app", "ROUND_ROBIN")
    one = backends.add_backend("app", make(clock, "app-1", 9001, sticky_id="server-1"))
    two = backends.add_backend("app", make(clock, "app-2", 9000, sticky_id="server-2"))
    three = backends.add_backend("app", make(clock, "app-3", 3456, sticky_id="server-3"))
    assert backends.backend_from_sticky_session("app", "server-2") is two
    assert backends.backend_from_sticky_session("app", "server-3") is three
    # unknown sticky id: normal load balancing
    assert backends.backend_from_sticky_session("app", "nope") is one
    # sticky backend that cannot open: normal load balancing among the others
    put_in_backoff(two)
    picks = {backends.backend_from_sticky_session("app", "server-2") for _ in range(4)}
    assert picks == {one, three}
    with pytest.raises(NoAvailableBackend):
        backends.backend_from_sticky_session("missing", "server-1")


def test_remove_backend_without_connections_is_drained_at_once(clock: FakeClock) -> None:
    backends = BackendMap()
    a = backends.add_backend("app", make(clock, "a", 1))
    b = backends.add_backend("app", make(clock, "b", 2))
    removed = backends.remove_backend("app", "127.0.0.1:1")
    assert removed is a
    assert removed.drained  # the caller pushes REMOVED_BACKEND_HAS_NO_CONNECTIONS now
    assert not backends.has_backend("app", a)
    assert backends.has_backend("app", b)
    assert all(backends.backend_from_cluster_id("app") is b for _ in range(10))


def test_remove_backend_with_live_connections(clock: FakeClock) -> None:
    backends = BackendMap()
    a = backends.add_backend("app", make(clock, "a", 1))
    backends.add_backend("app", make(clock, "b", 2))
    a.inc_connections()
    a.inc_connections()
    removed = backends.remove_backend("app", "127.0.0.1:1", "a")
    assert removed is a
    assert not removed.drained
    assert removed.status is BackendStatus.CLOSING
    # live sessions keep their reference and can still report on it
    assert removed.success() is False
    assert removed.inc_connections() is False
    assert removed.dec_connections() is False
    assert removed.dec_connections() is True  # now the event
    assert removed.drained
    assert backends.find_backend("app", "127.0.0.1:1") is None


def test_remove_backend_unknown(clock: FakeClock) -> None:
    backends = BackendMap()
    assert backends.remove_backend("nope", "127.0.0.1:1") is None
    backends.add_backend("app", make(clock, "a", 1))
    assert backends.remove_backend("app", "127.0.0.1:2") is None
    assert backends.remove_backend("app", "127.0.0.1:1", "other-id") is None
    assert backends.remove_backends("app", "[::1]:1") == []


def test_remove_backends_every_backend_at_the_address(clock: FakeClock) -> None:
    backends = BackendMap()
    a = backends.add_backend("app", make(clock, "a", 1))
    a2 = backends.add_backend("app", make(clock, "a2", 1))
    assert backends.remove_backends("app", "127.0.0.1:1") == [a, a2]
    assert backends.available_backends("app") == 0


def test_readding_a_removed_backend_is_a_fresh_one(clock: FakeClock) -> None:
    backends = BackendMap()
    old = backends.add_backend("app", make(clock, "a", 1))
    old.inc_connections()
    backends.remove_backend("app", "127.0.0.1:1")
    new = backends.add_backend("app", make(clock, "a", 1))
    assert new is not old
    assert new.status is BackendStatus.NORMAL
    assert old.status is BackendStatus.CLOSING
    assert backends.backend_from_cluster_id("app") is new


def test_remove_cluster(clock: FakeClock) -> None:
    backends = BackendMap()
    a = backends.add_backend("app", make(clock, "a", 1))
    b = backends.add_backend("app", make(clock, "b", 2))
    b.inc_connections()
    assert backends.remove_cluster("app") == [a, b]
    assert "app" not in backends
    assert a.drained and b.status is BackendStatus.CLOSING
    assert backends.remove_cluster("app") == []
    with pytest.raises(NoAvailableBackend):
        backends.backend_from_cluster_id("app")


def test_has_backend_is_by_address(clock: FakeClock) -> None:
    backends = BackendMap()
    backends.add_backend("app", make(clock, "a", 1))
    same_address = make(clock, "zzz", 1)
    assert backends.has_backend("app", same_address)
    assert not backends.has_backend("other", same_address)
    assert not backends.has_backend("app", make(clock, "a", 2))


def test_available_backends_count(clock: FakeClock) -> None:
    backends = BackendMap()
    assert backends.available_backends("app") == 0
    a = backends.add_backend("app", make(clock, "a", 1))
    b = backends.add_backend("app", make(clock, "b", 2))
    c = backends.add_backend("app", make(clock, "c", 3, backup=True))
    assert backends.available_backends("app") == 3
    put_in_backoff(a)
    assert backends.available_backends("app") == 3  # a window is not "down"
    take_down(b, clock)
    assert backends.available_backends("app") == 2
    c.healthy = False
    assert backends.available_backends("app") == 1


def test_update_availability_transitions(clock: FakeClock) -> None:
    backends = BackendMap()
    assert backends.update_availability("app") is None
    backends.set_load_balancing("app", "ROUND_ROBIN")
    assert backends.update_availability("app") is None  # empty: never ALL_DOWN
    a = backends.add_backend("app", make(clock, "a", 1))
    assert backends.update_availability("app") is None
    assert take_down(a, clock) is True
    assert backends.update_availability("app") is AvailabilityChange.NO_AVAILABLE_BACKENDS
    assert backends.update_availability("app") is None  # latched
    clock.advance(a.retry_policy.remaining_wait())
    assert backends.backend_from_cluster_id("app") is a
    assert a.success() is True
    assert backends.update_availability("app") is AvailabilityChange.CLUSTER_RECOVERED
    assert backends.update_availability("app") is None
    take_down(a, clock)
    assert backends.update_availability("app") is AvailabilityChange.NO_AVAILABLE_BACKENDS
    backends.remove_backend("app", a.address)
    # the cluster is empty again: AVAILABLE, reported as a recovery of the latch
    assert backends.update_availability("app") is AvailabilityChange.CLUSTER_RECOVERED


def test_weighted_random_through_the_map(clock: FakeClock) -> None:
    backends = BackendMap(random.Random(2024))
    heavy = backends.add_backend("app", make(clock, "heavy", 1, weight=300))
    light = backends.add_backend("app", make(clock, "light", 2))
    never = backends.add_backend("app", make(clock, "never", 3, weight=0))
    picks = [backends.backend_from_cluster_id("app") for _ in range(20_000)]
    assert picks.count(never) == 0
    assert abs(picks.count(heavy) / 20_000 - 0.75) < 0.02
    assert abs(picks.count(light) / 20_000 - 0.25) < 0.02
