"""Timers on a binary heap with lazy cancellation, and lazy timeouts that cost nothing per
event.

Theory of operation
-------------------
``Timers`` keeps ``(deadline, seq, entry)`` tuples in a binary heap (``heapq``, in C); the
server asks ``next_deadline()`` to bound its poll timeout and calls ``run_due()`` after
each poll. Cancelling only marks the entry inactive (O(1)); a dead entry is dropped when it
reaches the top of the heap, and the heap is rebuilt without its dead entries when they
outnumber the live ones (so memory stays proportional to the live timers). Every
connection arms and cancels a few timers (the TLS handshake's, the request timeout), and a
``SortedKeyList`` insertion and removal cost about 3 µs of Python against 0.5 µs here: a
short-lived connection's budget is a few dozen µs (``docs/architecture.md``, "Timers").

Connection timeouts are reset on every read and write; re-sorting a timer that often
would cost more than the I/O. A ``Timeout`` therefore stays armed at its first deadline
and only records the loop time of the last activity (``touch``, one attribute store).
When the deadline comes it checks that time: if there was activity it re-arms itself for
``last + duration``, otherwise it fires. So a busy connection moves its timer at most
once per ``duration``.

Owners that live a few milliseconds and almost never time out (HTTP/2 streams: a stream's
request, front and backend timeouts) would still each push a heap entry, cancel it and
leave it dead in the heap. A ``PolledTimeout`` instead joins ``Timers.polled``, a
``TimeoutGroup``: arming adds it to a dict, cancelling removes it, and one heap entry for
the whole group checks its members' ``last + duration`` every ``POLL_INTERVAL`` (sooner
when a member's duration is shorter). A member fires up to that interval late.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Final

log = logging.getLogger("pysozu.timer")


class TimerEntry:
    __slots__ = ("active", "callback", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.active = True


#: dead entries tolerated in the heap beyond twice the live ones, before a rebuild
_COMPACT_SLACK: Final = 1024


def noop() -> None:
    """The callback of a timeout that has none (yet, or any more: see ``Timeout.close``)."""


class Timers:
    """Deadlines on the loop's monotonic clock. ``now`` is refreshed once per loop pass."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.now = clock()
        self._polled: TimeoutGroup | None = None
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._live = 0
        self._seq = 0  # ties on a deadline run in scheduling order

    @property
    def polled(self) -> TimeoutGroup:
        r"""The group of ``PolledTimeout``\ s of this loop (made on first use)."""
        group = self._polled
        if group is None:
            group = self._polled = TimeoutGroup(self)
        return group

    def update_now(self) -> float:
        self.now = now = self.clock()
        return now

    def schedule(self, delay: float, callback: Callable[[], None]) -> TimerEntry:
        deadline = self.now + delay
        self._seq = seq = self._seq + 1
        entry = TimerEntry(deadline, seq, callback)
        heap = self._heap
        self._live = live = self._live + 1
        if len(heap) > 2 * live + _COMPACT_SLACK:  # the heap only grows here
            heap[:] = [item for item in heap if item[2].active]
            heapify(heap)
        heappush(heap, (deadline, seq, entry))
        return entry

    def cancel(self, entry: TimerEntry | None) -> None:
        if entry is not None and entry.active:
            entry.active = False
            entry.callback = noop  # what the callback holds is freed now, not at the deadline
            self._live -= 1

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            top = heap[0]
            if top[2].active:
                return top[0]
            heappop(heap)
        return None

    def run_due(self) -> int:
        """Run every callback whose deadline has passed; returns how many ran."""
        heap = self._heap
        now = self.now
        ran = 0
        while heap and heap[0][0] <= now:
            entry = heappop(heap)[2]
            if not entry.active:
                continue
            entry.active = False
            self._live -= 1
            try:
                entry.callback()
            except Exception:  # one failing callback must not stop the others or the loop
                log.exception("timer callback %r failed", entry.callback)
            ran += 1
        return ran

    def __len__(self) -> int:
        """Live (scheduled, not cancelled, not yet run) timers."""
        return self._live


class Timeout:
    """A timeout reset by activity without touching the sorted list (see module doc)."""

    __slots__ = ("_entry", "_timers", "callback", "duration", "last")

    def __init__(self, timers: Timers, duration: float, callback: Callable[[], None]) -> None:
        self._timers = timers
        self.duration = duration
        self.callback = callback
        self.last = timers.now
        self._entry: TimerEntry | None = None

    def set(self, duration: float | None = None) -> None:
        """(Re)arm from now, optionally with a new duration.

        An armed entry due no later than the new deadline is kept: its expiry re-arms for
        what is left (as after ``touch``). Only a deadline moved earlier re-sorts the list,
        so a keep-alive connection switching between two timeouts stays cheap.
        """
        if duration is not None:
            self.duration = duration
        timers = self._timers
        now = self.last = timers.now
        entry = self._entry
        if entry is not None and entry.active and entry.deadline <= now + self.duration:
            return
        timers.cancel(entry)
        self._entry = timers.schedule(self.duration, self._expire)

    def reuse(self, duration: float, callback: Callable[[], None]) -> Timeout:
        """Serve another owner (the next state of a session) with a new duration and
        callback; the armed entry stays where it is and re-arms lazily, as after ``touch``,
        so the hand-over costs no timer entry. Returns ``self``."""
        self.duration = duration
        self.callback = callback
        return self

    def touch(self) -> None:
        """Record activity: the timeout moves to ``now + duration`` (lazily)."""
        self.last = self._timers.now

    def cancel(self) -> None:
        entry = self._entry
        if entry is not None:
            self._timers.cancel(entry)
            self._entry = None

    def close(self) -> None:
        """Cancel for good, and let go of the callback: an owner's bound method there
        makes a reference cycle that only the garbage collector would free."""
        self.cancel()
        self.callback = noop

    @property
    def armed(self) -> bool:
        return self._entry is not None

    def _expire(self) -> None:
        timers = self._timers
        remaining = self.last + self.duration - timers.now
        if remaining > 0:
            self._entry = timers.schedule(remaining, self._expire)
            return
        self._entry = None
        self.callback()


#: how often a ``TimeoutGroup`` looks at its members (at most)
POLL_INTERVAL: Final = 1.0


class TimeoutGroup:
    """Timeouts checked together by one timer entry (see the module docstring)."""

    def __init__(self, timers: Timers, interval: float = POLL_INTERVAL) -> None:
        self.timers = timers
        self.interval = interval
        self.members: dict[PolledTimeout, None] = {}
        self._tick: TimerEntry | None = None

    def add(self, member: PolledTimeout) -> None:
        self.members[member] = None
        due = member.last + min(member.duration, self.interval)
        tick = self._tick
        if tick is None or due < tick.deadline:
            self._arm(due)

    def _arm(self, at: float) -> None:
        timers = self.timers
        timers.cancel(self._tick)
        self._tick = timers.schedule(max(at - timers.now, 0.0), self._check)

    def _check(self) -> None:
        self._tick = None
        now = self.timers.now
        members = self.members
        due = [m for m in members if m.last + m.duration <= now]
        for member in due:
            if member in members:  # an earlier callback may have cancelled it
                del members[member]
                try:
                    member.callback()
                except Exception:  # as in run_due: the other members still fire
                    log.exception("timer callback %r failed", member.callback)
        if members:
            soonest = min(m.last + m.duration for m in members)
            self._arm(min(soonest, now + self.interval))


class PolledTimeout(Timeout):
    """A ``Timeout`` with the same interface whose arming costs no heap entry: it is one
    member of a ``TimeoutGroup`` (see the module docstring)."""

    __slots__ = ("_group",)

    def __init__(self, group: TimeoutGroup, duration: float,
                 callback: Callable[[], None]) -> None:
        super().__init__(group.timers, duration, callback)
        self._group = group

    def set(self, duration: float | None = None) -> None:
        if duration is not None:
            self.duration = duration
        self.last = self._timers.now
        self._group.add(self)

    def cancel(self) -> None:
        self._group.members.pop(self, None)

    @property
    def armed(self) -> bool:
        return self in self._group.members


class UnarmedTimeout(Timeout):
    """Stands in for a timeout its owner may never need, so that owner does not build one
    per connection: an HTTP session's backend timers before it opens a backend (a client
    that only handshakes never does). Touching, cancelling and closing it cost nothing;
    arming it is a bug, and says so. One instance (``UNARMED``) serves every owner."""

    __slots__ = ()

    def __init__(self) -> None:  # no timers: nothing is ever scheduled
        self.last = 0.0
        self.duration = 0.0
        self.callback = noop
        self._entry = None

    def set(self, duration: float | None = None) -> None:
        raise RuntimeError("an unarmed timeout cannot be set: give the owner a Timeout first")

    def reuse(self, duration: float, callback: Callable[[], None]) -> Timeout:
        raise RuntimeError("an unarmed timeout cannot be reused")

    def touch(self) -> None:
        pass


#: the shared stand-in (see ``UnarmedTimeout``)
UNARMED: Final = UnarmedTimeout()
