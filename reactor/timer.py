"""Timers on a sorted list, and lazy timeouts that cost nothing per event.

Theory of operation
-------------------
``Timers`` keeps ``(deadline, seq, callback)`` entries in a ``SortedKeyList``; the server
asks ``next_deadline()`` to bound its poll timeout and calls ``run_due()`` after each poll.
Cancelling removes the entry (O(log n)).

Connection timeouts are reset on every read and write; re-sorting a timer that often
would cost more than the I/O. A ``Timeout`` therefore stays armed at its first deadline
and only records the loop time of the last activity (``touch``, one attribute store).
When the deadline comes it checks that time: if there was activity it re-arms itself for
``last + duration``, otherwise it fires. So a busy connection moves its timer at most
once per ``duration``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

from sortedcontainers import SortedKeyList

log = logging.getLogger("pysozu.timer")


class TimerEntry:
    __slots__ = ("active", "callback", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.active = True


def _key(entry: TimerEntry) -> tuple[float, int]:
    return (entry.deadline, entry.seq)


class Timers:
    """Deadlines on the loop's monotonic clock. ``now`` is refreshed once per loop pass."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.now = clock()
        self._entries: SortedKeyList = SortedKeyList(key=_key)
        self._seq = itertools.count()

    def update_now(self) -> float:
        self.now = now = self.clock()
        return now

    def schedule(self, delay: float, callback: Callable[[], None]) -> TimerEntry:
        entry = TimerEntry(self.now + delay, next(self._seq), callback)
        self._entries.add(entry)
        return entry

    def cancel(self, entry: TimerEntry | None) -> None:
        if entry is not None and entry.active:
            entry.active = False
            self._entries.discard(entry)

    def next_deadline(self) -> float | None:
        # SortedKeyList keeps its items in a list of sorted lists (``_lists``, documented in
        # sortedcontainers' implementation notes); reading it spares ``__getitem__``'s
        # index arithmetic, twice per loop pass
        lists = self._entries._lists
        return lists[0][0].deadline if lists else None

    def run_due(self) -> int:
        """Run every callback whose deadline has passed; returns how many ran."""
        entries = self._entries
        now = self.now
        ran = 0
        while entries and entries[0].deadline <= now:
            entry = entries.pop(0)
            entry.active = False
            try:
                entry.callback()
            except Exception:  # one failing callback must not stop the others or the loop
                log.exception("timer callback %r failed", entry.callback)
            ran += 1
        return ran

    def __len__(self) -> int:
        return len(self._entries)


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

    def touch(self) -> None:
        """Record activity: the timeout moves to ``now + duration`` (lazily)."""
        self.last = self._timers.now

    def cancel(self) -> None:
        self._timers.cancel(self._entry)
        self._entry = None

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
