"""Load-balancing algorithms (Sōzu lib/src/load_balancing.rs) and the peak EWMA (lib/src/lib.rs)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from pysozu.protocols.backends import Backend
from pysozu.protocols.load_balancing import (
    DEFAULT_WEIGHT,
    LeastLoaded,
    LoadBalancingAlgorithms,
    LoadMetric,
    PeakEWMA,
    PowerOfTwo,
    Random,
    RoundRobin,
    make_algorithm,
    parse_algorithm,
    parse_metric,
)


class FakeClock:
    def __init__(self, now: float = 50.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class Stub:
    name: str
    weight: int = DEFAULT_WEIGHT
    active_connections: int = 0
    active_requests: int = 0
    cost: float = 0.0

    def peak_ewma_connection(self) -> float:
        return self.cost


class FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def names(picks: list[Stub | None]) -> list[str]:
    return [p.name if p is not None else "-" for p in picks]


# -- round robin -----------------------------------------------------------------------------


def test_round_robin_cycles_in_order() -> None:
    backends = [Stub("a"), Stub("b"), Stub("c")]
    rr = RoundRobin()
    assert names([rr.next(backends) for _ in range(7)]) == ["a", "b", "c", "a", "b", "c", "a"]


def test_round_robin_is_unweighted() -> None:
    backends = [Stub("a", weight=1000), Stub("b", weight=1)]
    rr = RoundRobin()
    assert names([rr.next(backends) for _ in range(4)]) == ["a", "b", "a", "b"]


def test_round_robin_empty_returns_none() -> None:
    rr = RoundRobin()
    assert rr.next([]) is None
    assert rr.next_backend == 0


def test_round_robin_cursor_is_an_index_over_the_current_list() -> None:
    # Sōzu's it_should_find_backend_with_roundrobin_when_some_backends_were_removed
    backends = [Stub("toto"), Stub("voto"), Stub("yoto")]
    rr = RoundRobin(next_backend=1)
    assert rr.next(backends) is backends[1]
    del backends[1]
    assert rr.next(backends) is backends[0]


def test_round_robin_cursor_wraps_on_a_shorter_list() -> None:
    rr = RoundRobin()
    five = [Stub(str(i)) for i in range(5)]
    for _ in range(4):
        rr.next(five)
    assert rr.next_backend == 4
    two = [Stub("x"), Stub("y")]
    # 4 % 2 == 0
    assert rr.next(two) is two[0]
    assert rr.next_backend == 1


# -- random ----------------------------------------------------------------------------------


def test_random_weighted_proportions() -> None:
    backends = [Stub("light", weight=100), Stub("heavy", weight=300), Stub("zero", weight=0)]
    algo = Random(random.Random(1234))
    counts = Counter(names([algo.next(backends) for _ in range(40_000)]))
    assert counts["zero"] == 0
    assert abs(counts["light"] / 40_000 - 0.25) < 0.015
    assert abs(counts["heavy"] / 40_000 - 0.75) < 0.015


def test_random_default_weight_is_100_so_equal_shares() -> None:
    backends = [
        Backend("a", "10.0.0.1:80"),
        Backend("b", "10.0.0.2:80"),
        Backend("c", "10.0.0.3:80", weight=200),
    ]
    assert backends[0].weight == 100
    algo = Random(random.Random(99))
    picks = [algo.next(backends) for _ in range(40_000)]
    counts = Counter(p.backend_id for p in picks if p is not None)
    assert abs(counts["a"] / 40_000 - 0.25) < 0.015
    assert abs(counts["b"] / 40_000 - 0.25) < 0.015
    assert abs(counts["c"] / 40_000 - 0.50) < 0.015


def test_random_all_zero_weights_fall_back_to_uniform() -> None:
    backends = [Stub("a", weight=0), Stub("b", weight=0), Stub("c", weight=0)]
    algo = Random(random.Random(5))
    counts = Counter(names([algo.next(backends) for _ in range(30_000)]))
    for name in "abc":
        assert abs(counts[name] / 30_000 - 1 / 3) < 0.015


def test_random_negative_weight_falls_back_to_uniform() -> None:
    # WeightedIndex::new refuses a negative weight: Sōzu then picks uniformly among all
    backends = [Stub("a", weight=-1), Stub("b", weight=0), Stub("c", weight=100)]
    algo = Random(random.Random(6))
    counts = Counter(names([algo.next(backends) for _ in range(30_000)]))
    for name in "abc":
        assert abs(counts[name] / 30_000 - 1 / 3) < 0.015


def test_random_edges_and_determinism() -> None:
    assert Random(random.Random(1)).next([]) is None
    only = Stub("only", weight=7)
    assert Random(random.Random(1)).next([only]) is only
    backends = [Stub(str(i), weight=i + 1) for i in range(5)]
    a = Random(random.Random(42))
    b = Random(random.Random(42))
    picks_a = names([a.next(backends) for _ in range(50)])
    assert picks_a == names([b.next(backends) for _ in range(50)])
    assert len(set(picks_a)) > 1


def test_random_draw_boundaries() -> None:
    backends = [Stub("a", weight=1), Stub("z", weight=0), Stub("b", weight=3)]
    # point = r * 4: [0, 1) -> a, [1, 4) -> b; the zero weight is never hit
    assert Random(FixedRng(0.0)).next(backends) is backends[0]
    assert Random(FixedRng(0.2499)).next(backends) is backends[0]
    assert Random(FixedRng(0.25)).next(backends) is backends[2]
    assert Random(FixedRng(0.9999999)).next(backends) is backends[2]


# -- least loaded ----------------------------------------------------------------------------


def test_least_loaded_picks_the_minimum_connections() -> None:
    backends = [
        Stub("nolo", active_connections=10),
        Stub("philo", active_connections=20),
        Stub("yolo", active_connections=1),
    ]
    assert LeastLoaded().next(backends) is backends[2]


def test_least_loaded_tie_goes_to_the_first() -> None:
    backends = [
        Stub("a", active_connections=3),
        Stub("b", active_connections=1),
        Stub("c", active_connections=1),
    ]
    assert LeastLoaded(LoadMetric.CONNECTIONS).next(backends) is backends[1]


def test_least_loaded_requests_metric() -> None:
    backends = [
        Stub("a", active_connections=0, active_requests=9),
        Stub("b", active_connections=9, active_requests=2),
    ]
    assert LeastLoaded(LoadMetric.REQUESTS).next(backends) is backends[1]
    assert LeastLoaded(LoadMetric.CONNECTIONS).next(backends) is backends[0]


def test_least_loaded_connection_time_metric() -> None:
    backends = [Stub("a", cost=0.3), Stub("b", cost=0.1), Stub("c", cost=0.2)]
    assert LeastLoaded(LoadMetric.CONNECTION_TIME).next(backends) is backends[1]


def test_least_loaded_connection_time_on_real_backends() -> None:
    clock = FakeClock()
    slow = Backend("slow", "10.0.0.1:80", clock=clock)
    fast = Backend("fast", "10.0.0.2:80", clock=clock)
    slow.set_connection_time(0.5)
    fast.set_connection_time(0.2)
    algo = LeastLoaded(LoadMetric.CONNECTION_TIME)
    assert algo.next([slow, fast]) is fast
    # cost = rtt * (active_connections + 1): three connections on fast make it dearer
    fast.active_connections = 3
    assert algo.next([slow, fast]) is slow


def test_least_loaded_empty() -> None:
    assert LeastLoaded().next([]) is None


# -- power of two ----------------------------------------------------------------------------


def test_power_of_two_keeps_the_two_lowest_and_picks_either() -> None:
    backends = [
        Stub("five", active_connections=5),
        Stub("one", active_connections=1),
        Stub("three", active_connections=3),
        Stub("two", active_connections=2),
        Stub("nine", active_connections=9),
    ]
    algo = PowerOfTwo(LoadMetric.CONNECTIONS, random.Random(11))
    counts = Counter(names([algo.next(backends) for _ in range(4000)]))
    assert set(counts) == {"one", "two"}
    assert abs(counts["one"] / 4000 - 0.5) < 0.04


def test_power_of_two_heavier_candidate_after_the_two_lightest_is_ignored() -> None:
    # the running fold must not let a later, heavier backend displace the lightest one
    backends = [
        Stub("one", active_connections=1),
        Stub("two", active_connections=2),
        Stub("three", active_connections=3),
    ]
    assert PowerOfTwo(rng=FixedRng(0.0)).next(backends) is backends[0]
    assert PowerOfTwo(rng=FixedRng(0.99)).next(backends) is backends[1]


def test_power_of_two_coin_orientation() -> None:
    # random_bool(0.5) true -> the lighter candidate
    backends = [Stub("heavy", active_connections=4), Stub("light", active_connections=0)]
    assert PowerOfTwo(rng=FixedRng(0.49)).next(backends) is backends[1]
    assert PowerOfTwo(rng=FixedRng(0.5)).next(backends) is backends[0]


def test_power_of_two_ties_keep_the_earliest() -> None:
    backends = [Stub("a"), Stub("b"), Stub("c")]
    algo = PowerOfTwo(rng=random.Random(3))
    counts = Counter(names([algo.next(backends) for _ in range(500)]))
    assert set(counts) == {"a", "b"}


def test_power_of_two_small_lists() -> None:
    only = Stub("only", active_connections=50)
    assert PowerOfTwo(rng=FixedRng(0.9)).next([only]) is only
    assert PowerOfTwo().next([]) is None


def test_power_of_two_requests_metric() -> None:
    backends = [
        Stub("a", active_requests=7),
        Stub("b", active_requests=1),
        Stub("c", active_requests=0),
    ]
    algo = PowerOfTwo(LoadMetric.REQUESTS, random.Random(8))
    assert set(names([algo.next(backends) for _ in range(200)])) == {"b", "c"}


# -- peak EWMA -------------------------------------------------------------------------------


def test_peak_ewma_defaults_and_peak() -> None:
    clock = FakeClock()
    ewma = PeakEWMA(clock=clock)
    assert ewma.rtt == 0.05
    assert ewma.decay == 1.0
    ewma.observe(0.3)
    assert ewma.rtt == 0.3  # a higher latency is taken at once


def test_peak_ewma_decays_toward_lower_observations() -> None:
    clock = FakeClock()
    ewma = PeakEWMA(clock=clock)
    ewma.observe(0.3)
    clock.now += 1.0
    ewma.observe(0.1)
    w = math.exp(-1.0)
    assert ewma.rtt == pytest.approx(0.3 * w + 0.1 * (1 - w))
    # no elapsed time: weight 1, the estimate does not move
    before = ewma.rtt
    ewma.observe(0.0)
    assert ewma.rtt == pytest.approx(before)


def test_peak_ewma_get_decays_then_scales_by_active_plus_one() -> None:
    clock = FakeClock()
    ewma = PeakEWMA(clock=clock)
    ewma.observe(0.2)
    clock.now += 2.0
    cost = ewma.get(3)
    assert ewma.rtt == pytest.approx(0.2 * math.exp(-2.0))
    assert cost == pytest.approx(4 * 0.2 * math.exp(-2.0))
    assert ewma.last_event == clock.now


# -- factory ---------------------------------------------------------------------------------


def test_make_algorithm_names() -> None:
    rng = random.Random(0)
    assert isinstance(make_algorithm("ROUND_ROBIN", None, rng), RoundRobin)
    assert isinstance(make_algorithm("round_robin", None, rng), RoundRobin)
    random_algo = make_algorithm("random", None, rng)
    assert isinstance(random_algo, Random) and random_algo.rng is rng
    least = make_algorithm("LEAST_LOADED", None, rng)
    assert isinstance(least, LeastLoaded) and least.metric is LoadMetric.CONNECTIONS
    least = make_algorithm("least_loaded", "connection_time", rng)
    assert isinstance(least, LeastLoaded) and least.metric is LoadMetric.CONNECTION_TIME
    p2c = make_algorithm("POWER_OF_TWO", "REQUESTS", rng)
    assert isinstance(p2c, PowerOfTwo) and p2c.metric is LoadMetric.REQUESTS and p2c.rng is rng
    # keyless HRW / Maglev behave as round-robin in Sōzu
    assert isinstance(make_algorithm("HRW", None, rng), RoundRobin)
    assert isinstance(make_algorithm("maglev", None, rng), RoundRobin)


def test_make_algorithm_proto_numbers_and_errors() -> None:
    assert isinstance(make_algorithm(1, None, None), Random)
    assert isinstance(make_algorithm(3, 2, None), PowerOfTwo)
    assert parse_algorithm(0) is LoadBalancingAlgorithms.ROUND_ROBIN
    assert parse_metric(1) is LoadMetric.REQUESTS
    with pytest.raises(ValueError, match="unknown load balancing algorithm"):
        make_algorithm("weighted_round_robin", None, None)
    with pytest.raises(ValueError, match="unknown load metric"):
        make_algorithm("LEAST_LOADED", "latency", None)
    with pytest.raises(ValueError):
        parse_algorithm(6)
    with pytest.raises(ValueError):
        parse_metric(-1)
