"""Load-balancing algorithms: pick one backend among the ones that can take a connection.

Theory of operation
-------------------
:class:`~pysozu.protocols.backends.BackendList` first narrows a cluster's backends down to the
candidates (those whose ``can_open()`` is true, primaries before backups, see
``backends.py``); an algorithm then picks one of them with ``next(candidates)``, or returns
``None`` when the sequence is empty. The rules are those of Sōzu's ``lib/src/load_balancing.rs``
for the keyless path that TCP and HTTP use:

* :class:`RoundRobin` — an unweighted cursor over the *current* candidate list: it picks
  ``candidates[cursor % len]`` and moves the cursor to ``(cursor + 1) % len``. The cursor is an
  index, not a backend: when the candidate list changes (a backend goes down or is removed) it
  simply lands on whatever is at that index now.
* :class:`Random` — weighted random choice on each candidate's ``weight``
  (``load_balancing_parameters.weight``, 100 when unset). A weight of 0 is never picked while
  another weight is positive. When no weighted draw is possible (all weights 0, or a negative
  weight — Rust's ``WeightedIndex::new`` refuses both) it falls back to a uniform choice.
* :class:`LeastLoaded` — the candidate with the smallest load; ties go to the earliest one.
* :class:`PowerOfTwo` — Sōzu's variant of "power of two choices": it keeps the *two
  lowest-load* candidates (ties: the earliest ones) and picks one of them with probability
  1/2 each. It is not the textbook "sample two at random, keep the lighter".
* Load metrics (:class:`LoadMetric`): ``CONNECTIONS`` (``active_connections``), ``REQUESTS``
  (``active_requests``) and ``CONNECTION_TIME``: the peak EWMA of the connect time multiplied
  by ``active_connections + 1`` (:class:`PeakEWMA`, Sōzu's ``lib/src/lib.rs`` ``PeakEWMA``,
  itself from Finagle). Reading the peak EWMA decays it toward 0 first, as in Sōzu.
* ``HRW`` and ``MAGLEV`` are flow-affine policies that Sōzu uses only for UDP with a flow key;
  with no key (every TCP/HTTP pick) both degrade to round-robin, so :func:`make_algorithm`
  maps them to :class:`RoundRobin`.

Algorithms are generic over any object with ``weight``, ``active_connections``,
``active_requests`` and ``peak_ewma_connection()`` (:class:`LoadBalanced`), so this module
does not import :mod:`~pysozu.protocols.backends`. Randomness goes through an injectable
:class:`random.Random` and time (for :class:`PeakEWMA`) through an injectable clock.
"""

from __future__ import annotations

import enum
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, Protocol, TypeVar

__all__ = [
    "DEFAULT_WEIGHT",
    "LeastLoaded",
    "LoadBalanced",
    "LoadBalancingAlgorithm",
    "LoadBalancingAlgorithms",
    "LoadMetric",
    "PeakEWMA",
    "PowerOfTwo",
    "Random",
    "RoundRobin",
    "make_algorithm",
    "parse_algorithm",
    "parse_metric",
]

#: Weight of a backend with no ``load_balancing_parameters`` (Sōzu ``DEFAULT_WEIGHT``).
DEFAULT_WEIGHT = 100

_DEFAULT_RNG = random.Random()


class LoadBalancingAlgorithms(enum.StrEnum):
    """Algorithm names, as in Sōzu's ``command.proto`` ``LoadBalancingAlgorithms``."""

    ROUND_ROBIN = "ROUND_ROBIN"
    RANDOM = "RANDOM"
    LEAST_LOADED = "LEAST_LOADED"
    POWER_OF_TWO = "POWER_OF_TWO"
    HRW = "HRW"
    MAGLEV = "MAGLEV"


class LoadMetric(enum.StrEnum):
    """How load is measured, as in Sōzu's ``command.proto`` ``LoadMetric``."""

    CONNECTIONS = "CONNECTIONS"
    REQUESTS = "REQUESTS"
    CONNECTION_TIME = "CONNECTION_TIME"


# proto numbering, so integer enum values read from JSON or TOML are accepted too
_ALGORITHMS_BY_NUMBER = tuple(LoadBalancingAlgorithms)
_METRICS_BY_NUMBER = tuple(LoadMetric)


class PeakEWMA:
    """Exponentially weighted moving average of a latency that jumps up at once on a peak.

    Units are seconds (Sōzu counts nanoseconds; the arithmetic is the same). ``decay`` is the
    time constant (1 s), ``rtt`` starts at 50 ms so that a new backend does not draw all the
    traffic before it has been measured.
    """

    __slots__ = ("_clock", "decay", "last_event", "rtt")

    def __init__(
        self,
        decay: float = 1.0,
        rtt: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.decay: float = decay
        self.rtt: float = rtt
        self._clock: Callable[[], float] = clock
        self.last_event: float = clock()

    def observe(self, rtt: float) -> None:
        """Feed one measurement (seconds): a higher value replaces the estimate at once."""
        now = self._clock()
        if rtt > self.rtt:
            self.rtt = rtt
        else:
            weight = math.exp(-(now - self.last_event) / self.decay)
            self.rtt = self.rtt * weight + rtt * (1.0 - weight)
        self.last_event = now

    def get(self, active: int) -> float:
        """Cost of a backend with ``active`` connections: decayed estimate * (active + 1)."""
        # decay first: the backend may not have been measured for a long time
        self.observe(0.0)
        return (active + 1) * self.rtt

    def __repr__(self) -> str:
        return f"PeakEWMA(rtt={self.rtt!r}, decay={self.decay!r})"


class LoadBalanced(Protocol):
    """What an algorithm reads from a backend."""

    @property
    def weight(self) -> int: ...

    @property
    def active_connections(self) -> int: ...

    @property
    def active_requests(self) -> int: ...

    def peak_ewma_connection(self) -> float: ...


B = TypeVar("B", bound=LoadBalanced)


def _measure(metric: LoadMetric, backend: LoadBalanced) -> float:
    if metric is LoadMetric.CONNECTIONS:
        return backend.active_connections
    if metric is LoadMetric.REQUESTS:
        return backend.active_requests
    return backend.peak_ewma_connection()


class LoadBalancingAlgorithm(ABC):
    """Picks one backend among the candidates; ``None`` only when there are none."""

    __slots__ = ()

    name: ClassVar[LoadBalancingAlgorithms]

    @abstractmethod
    def next(self, backends: Sequence[B]) -> B | None:
        """Pick the backend for the next connection."""


class RoundRobin(LoadBalancingAlgorithm):
    """Unweighted cursor over the current candidate list."""

    __slots__ = ("next_backend",)

    name = LoadBalancingAlgorithms.ROUND_ROBIN

    def __init__(self, next_backend: int = 0) -> None:
        self.next_backend: int = next_backend

    def next(self, backends: Sequence[B]) -> B | None:
        count = len(backends)
        if count == 0:
            return None
        chosen = backends[self.next_backend % count]
        self.next_backend = (self.next_backend + 1) % count
        return chosen

    def __repr__(self) -> str:
        return f"RoundRobin(next_backend={self.next_backend})"


class Random(LoadBalancingAlgorithm):
    """Weighted random choice (``weight``, default 100); uniform when weights are unusable."""

    __slots__ = ("rng",)

    name = LoadBalancingAlgorithms.RANDOM

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng: random.Random = rng if rng is not None else _DEFAULT_RNG

    def next(self, backends: Sequence[B]) -> B | None:
        if not backends:
            return None
        total = 0
        for backend in backends:
            weight = backend.weight
            if weight < 0:
                total = 0
                break
            total += weight
        if total <= 0:
            # no valid weighted distribution (all zero or a negative weight): uniform choice
            return backends[self.rng.randrange(len(backends))]
        point = self.rng.random() * total
        cumulative = 0
        for backend in backends:
            cumulative += backend.weight
            if point < cumulative:
                return backend
        # floating point edge (point rounded up to total): the last positive weight
        for backend in reversed(backends):
            if backend.weight > 0:
                return backend
        return backends[-1]  # unreachable: total > 0 implies a positive weight

    def __repr__(self) -> str:
        return "Random()"


class LeastLoaded(LoadBalancingAlgorithm):
    """The candidate with the lowest load; the earliest one on a tie."""

    __slots__ = ("metric",)

    name = LoadBalancingAlgorithms.LEAST_LOADED

    def __init__(self, metric: LoadMetric = LoadMetric.CONNECTIONS) -> None:
        self.metric: LoadMetric = metric

    def next(self, backends: Sequence[B]) -> B | None:
        best: B | None = None
        best_load = 0.0
        metric = self.metric
        for backend in backends:
            load = _measure(metric, backend)
            if best is None or load < best_load:
                best = backend
                best_load = load
        return best

    def __repr__(self) -> str:
        return f"LeastLoaded(metric={self.metric.value})"


class PowerOfTwo(LoadBalancingAlgorithm):
    """Keep the two lowest-load candidates, then pick one of them at random (1/2 each)."""

    __slots__ = ("metric", "rng")

    name = LoadBalancingAlgorithms.POWER_OF_TWO

    def __init__(
        self, metric: LoadMetric = LoadMetric.CONNECTIONS, rng: random.Random | None = None
    ) -> None:
        self.metric: LoadMetric = metric
        self.rng: random.Random = rng if rng is not None else _DEFAULT_RNG

    def next(self, backends: Sequence[B]) -> B | None:
        first: B | None = None
        second: B | None = None
        first_load = 0.0
        second_load = 0.0
        metric = self.metric
        for backend in backends:
            load = _measure(metric, backend)
            if first is None:
                first, first_load = backend, load
            elif load < first_load:
                second, second_load = first, first_load
                first, first_load = backend, load
            elif second is None or load < second_load:
                second, second_load = backend, load
        if first is None or second is None:
            return first
        # Sōzu: rng.random_bool(0.5) ? lighter : heavier
        return first if self.rng.random() < 0.5 else second

    def __repr__(self) -> str:
        return f"PowerOfTwo(metric={self.metric.value})"


def parse_algorithm(name: str | int | LoadBalancingAlgorithms) -> LoadBalancingAlgorithms:
    """Read an algorithm name (case-insensitive, ``round_robin``…) or its proto number."""
    if isinstance(name, LoadBalancingAlgorithms):
        return name
    if isinstance(name, int):
        if 0 <= name < len(_ALGORITHMS_BY_NUMBER):
            return _ALGORITHMS_BY_NUMBER[name]
        raise ValueError(f"unknown load balancing algorithm: {name!r}")
    try:
        return LoadBalancingAlgorithms(name.strip().upper())
    except ValueError:
        raise ValueError(f"unknown load balancing algorithm: {name!r}") from None


def parse_metric(metric: str | int | LoadMetric) -> LoadMetric:
    """Read a load metric name (case-insensitive, ``connections``…) or its proto number."""
    if isinstance(metric, LoadMetric):
        return metric
    if isinstance(metric, int):
        if 0 <= metric < len(_METRICS_BY_NUMBER):
            return _METRICS_BY_NUMBER[metric]
        raise ValueError(f"unknown load metric: {metric!r}")
    try:
        return LoadMetric(metric.strip().upper())
    except ValueError:
        raise ValueError(f"unknown load metric: {metric!r}") from None


def make_algorithm(
    name: str | int | LoadBalancingAlgorithms,
    metric: str | int | LoadMetric | None = None,
    rng: random.Random | None = None,
) -> LoadBalancingAlgorithm:
    """Build the algorithm named like Sōzu's ``LoadBalancingAlgorithms`` (else ``ValueError``).

    ``metric`` is read only by ``LEAST_LOADED`` and ``POWER_OF_TWO`` and defaults to
    ``CONNECTIONS``; ``HRW`` and ``MAGLEV`` give :class:`RoundRobin` (their keyless behaviour).
    """
    algorithm = parse_algorithm(name)
    load_metric = LoadMetric.CONNECTIONS if metric is None else parse_metric(metric)
    if algorithm is LoadBalancingAlgorithms.RANDOM:
        return Random(rng)
    if algorithm is LoadBalancingAlgorithms.LEAST_LOADED:
        return LeastLoaded(load_metric)
    if algorithm is LoadBalancingAlgorithms.POWER_OF_TWO:
        return PowerOfTwo(load_metric, rng)
    return RoundRobin()
