"""Connection retry policy of a backend: exponential back-off with a "down" threshold.

Theory of operation
-------------------
Every backend owns one :class:`ExponentialBackoffPolicy` (``max_tries=6``). It is the circuit
breaker of the proxy: it decides whether a new connection may be attempted to that backend
*right now* (:meth:`~ExponentialBackoffPolicy.can_try`) and whether the backend is considered
*down* (:meth:`~ExponentialBackoffPolicy.is_down`). The rules are those of Sōzu's
``lib/src/retry.rs`` (``ExponentialBackoffPolicy`` and its ``RetryPolicy`` implementation):

* The policy remembers the time of its last change (``last_try``), the back-off window
  (``wait``, whole seconds) and the number of counted failures (``current_tries``).
* :meth:`~ExponentialBackoffPolicy.fail` does nothing while the current window is still
  running (``now - last_try < wait``): failures of the connections that were already in flight
  when the first one failed are not counted twice. Otherwise it draws a new window: with
  ``n = current_tries`` *before* the increment, ``max_secs = max(1, 2**n)`` (``2**64 - 1`` once
  ``n >= 64``, like Rust's ``checked_shl`` fallback); the wait is exactly 1 s when
  ``max_secs == 1`` and a uniformly random whole number of seconds in ``[1, max_secs)``
  otherwise. So the successive windows are 1, 1, [1,3], [1,7], [1,15], [1,31] seconds.
  ``current_tries`` then grows by one, saturating at ``max_tries``.
* :meth:`~ExponentialBackoffPolicy.can_try` answers :attr:`RetryAction.OKAY` once
  ``now - last_try >= wait`` and :attr:`RetryAction.WAIT` before. A fresh policy (wait 0)
  answers OKAY at once.
* :meth:`~ExponentialBackoffPolicy.is_down` is ``current_tries >= max_tries``.
* **Already down**: Sōzu's exponential policy overrides the trait default that would refuse
  every try once the budget is spent. A down backend therefore still answers OKAY once its
  window has passed, so one probe connection is let through now and then; each further failed
  probe draws a new window in ``[1, 2**max_tries)`` seconds (``current_tries`` stays at
  ``max_tries``), and the first success brings the backend back up.
* :meth:`~ExponentialBackoffPolicy.succeed` resets the policy: ``current_tries = 0``,
  ``wait = 0``, ``last_try = now``.

Time is read through an injectable ``clock`` (seconds, ``time.monotonic`` by default) and the
random draw goes through an injectable :class:`random.Random`, so tests are deterministic.
This module never emits events: the caller compares :meth:`is_down` before and after
:meth:`fail` / :meth:`succeed` (see :mod:`pysozu.protocols.backends`).
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

__all__ = ["DEFAULT_MAX_TRIES", "ExponentialBackoffPolicy", "RetryAction"]

#: Sōzu creates every backend's policy with ``ExponentialBackoffPolicy::new(6)``.
DEFAULT_MAX_TRIES = 6

# ``1u64.checked_shl(n).unwrap_or(u64::MAX)`` in retry.rs: shifts of 64 bits or more saturate.
_U64_MAX = (1 << 64) - 1

# Shared default generator: creating one ``random.Random()`` per backend would read
# os.urandom each time for no benefit.
_DEFAULT_RNG = random.Random()


class RetryAction(enum.Enum):
    """Answer of :meth:`ExponentialBackoffPolicy.can_try`."""

    OKAY = "OKAY"
    """A connection may be attempted now."""
    WAIT = "WAIT"
    """The back-off window is still running: do not connect."""


class ExponentialBackoffPolicy:
    """Exponential back-off circuit breaker of one backend (Sōzu ``lib/src/retry.rs``)."""

    __slots__ = ("_clock", "_rng", "current_tries", "last_try", "max_tries", "wait")

    def __init__(
        self,
        max_tries: int = DEFAULT_MAX_TRIES,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_tries < 0:
            raise ValueError(f"max_tries must be >= 0, got {max_tries}")
        self.max_tries: int = max_tries
        self.current_tries: int = 0
        self._clock: Callable[[], float] = clock
        self._rng: random.Random = rng if rng is not None else _DEFAULT_RNG
        self.last_try: float = clock()
        self.wait: int = 0

    def fail(self) -> None:
        """Record a failed connection attempt (ignored while a back-off window runs)."""
        now = self._clock()
        if now - self.last_try < self.wait:
            # already backing off: this failure belongs to the same burst
            return
        tries = self.current_tries
        max_secs = max(1, 1 << tries) if tries < 64 else _U64_MAX
        self.wait = 1 if max_secs == 1 else self._rng.randrange(1, max_secs)
        self.last_try = now
        self.current_tries = min(tries + 1, self.max_tries)

    def succeed(self) -> None:
        """Record a successful connection: the policy starts afresh."""
        self.wait = 0
        self.last_try = self._clock()
        self.current_tries = 0

    def can_try(self) -> RetryAction:
        """OKAY once the back-off window has passed (even when down), WAIT before."""
        if self._clock() - self.last_try >= self.wait:
            return RetryAction.OKAY
        return RetryAction.WAIT

    def is_down(self) -> bool:
        """Whether the failure budget is spent (``current_tries >= max_tries``)."""
        return self.current_tries >= self.max_tries

    def remaining_wait(self) -> float:
        """Seconds until :meth:`can_try` answers OKAY (0.0 when it already does)."""
        return max(0.0, self.last_try + self.wait - self._clock())

    def __repr__(self) -> str:
        return (
            f"ExponentialBackoffPolicy(max_tries={self.max_tries}, "
            f"current_tries={self.current_tries}, wait={self.wait})"
        )
