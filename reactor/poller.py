"""Pollers: edge-triggered epoll, and a level-triggered ``selectors`` fallback.

Facts about epoll that this module relies on
---------------------------------------------
* An fd is registered once, for IN|OUT|RDHUP with EPOLLET, for its whole life: interest is
  kept in user space (``Readiness``), so there is no ``epoll_ctl`` per state change.
* Edge-triggered means a readiness is reported once per change. A reader must read until
  EAGAIN (or remember the socket is still readable), or it will never hear of it again.
* epoll watches the open file description, not the fd number: closing the last fd removes
  it from the set. Python's ``select.epoll.poll`` only gives back the fd number, so the
  server guards against an fd that was closed and reused within one poll batch (see
  ``Server`` and its registration epochs).
* EPOLLRDHUP (peer shut its write side) is reported as READABLE (plus ``READ_HUP``): the
  read that follows returns 0, which is how a state learns of a half-close. A reader may
  stop after a short read (the socket was drained, new data raises a new event) unless
  ``READ_HUP`` came: then the EOF is already there and no further event will say so.

The fallback (``SelectorPoller``) asks the kernel only for what sessions want: after each
session runs, the server hands it every token's interest (``update_interest``), and it
re-registers when the mask changed. It is slower but portable, and every reactor test runs
on both to show the sessions do not depend on which one drives them.
"""

from __future__ import annotations

import select
import selectors
from typing import Final, Protocol

from .readiness import ERROR, HUP, READ_HUP, READABLE, WRITABLE

_EPOLL_MASK: Final = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_KEEP: Final = READABLE | WRITABLE | ERROR | HUP
_RDHUP: Final = select.EPOLLRDHUP


class Poller(Protocol):
    """The tiny interface the server needs from a poller."""

    #: True for pollers that need ``update_interest`` after every session run.
    level_triggered: bool

    def register(self, fd: int, interest: int) -> None: ...

    def unregister(self, fd: int) -> None: ...

    def update_interest(self, fd: int, interest: int) -> None: ...

    def poll(self, timeout: float) -> list[tuple[int, int]]: ...

    def close(self) -> None: ...


class EpollPoller:
    """Edge-triggered ``select.epoll``: one registration per fd lifetime."""

    level_triggered = False

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._poll = self._epoll.poll

    def register(self, fd: int, interest: int) -> None:
        # ``interest`` is ignored: edge-triggered registration asks for everything once.
        self._epoll.register(fd, _EPOLL_MASK)

    def unregister(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # already closed: the kernel dropped it with the last descriptor

    def update_interest(self, fd: int, interest: int) -> None:
        pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        """Ready fds with their bits converted to ``Readiness`` values."""
        try:
            events = self._poll(timeout)
        except InterruptedError:
            return []
        out: list[tuple[int, int]] = []
        for fd, mask in events:
            bits = mask & _KEEP
            if mask & _RDHUP:
                bits |= READABLE | READ_HUP
            out.append((fd, bits))  # compiled: a direct list append, not a bound method
        return out

    def close(self) -> None:
        self._epoll.close()


class SelectorPoller:
    """Level-triggered ``selectors`` poller, registered per interest (the portable oracle)."""

    level_triggered = True

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._masks: dict[int, int] = {}

    @staticmethod
    def _to_selector(interest: int) -> int:
        mask = 0
        if interest & READABLE:
            mask |= selectors.EVENT_READ
        if interest & WRITABLE:
            mask |= selectors.EVENT_WRITE
        return mask

    def register(self, fd: int, interest: int) -> None:
        mask = self._to_selector(interest)
        self._masks[fd] = mask
        if mask:
            self._selector.register(fd, mask)

    def unregister(self, fd: int) -> None:
        mask = self._masks.pop(fd, None)
        if mask:
            try:
                self._selector.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass

    def update_interest(self, fd: int, interest: int) -> None:
        old = self._masks.get(fd)
        if old is None:
            return
        mask = self._to_selector(interest)
        if mask == old:
            return
        self._masks[fd] = mask
        try:
            if not old:
                self._selector.register(fd, mask)
            elif not mask:
                self._selector.unregister(fd)
            else:
                self._selector.modify(fd, mask)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        if not self._selector.get_map():
            # An empty selector would return at once on some platforms; sleep the timeout.
            select.select([], [], [], max(timeout, 0))
            return []
        out = []
        for key, mask in self._selector.select(timeout):
            bits = 0
            if mask & selectors.EVENT_READ:
                bits |= READABLE
            if mask & selectors.EVENT_WRITE:
                bits |= WRITABLE
            out.append((key.fd, bits))
        return out

    def close(self) -> None:
        self._selector.close()


def make_poller(kind: str = "epoll") -> Poller:
    """``"epoll"`` (Linux, default) or ``"selectors"`` (level-triggered fallback)."""
    if kind == "epoll" and hasattr(select, "epoll"):
        return EpollPoller()
    if kind in ("epoll", "selectors"):
        return SelectorPoller()
    raise ValueError(f"unknown poller {kind!r} (expected 'epoll' or 'selectors')")
