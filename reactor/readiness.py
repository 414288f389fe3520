"""Readiness bits kept in user space, in the style of Sōzu's ``Readiness``.

Theory of operation
-------------------
Every socket is registered once with the poller. What the kernel reported (``event``) and
what the protocol state wants (``interest``) are kept side by side in a ``Readiness``; the
work to do is ``event & interest``. A state clears an ``event`` bit itself when a read or
write hits EAGAIN, and nothing else clears it: under edge-triggered epoll the kernel will not
say again that a socket is readable, so a bit cleared too early stalls the socket forever,
and a state that queues output must arm WRITABLE itself (``arm_writable``).

The bit values are those of epoll (``EPOLLIN``, ``EPOLLOUT``, ``EPOLLERR``, ``EPOLLHUP``) so
the poller converts an epoll mask with one ``&``.
"""

from __future__ import annotations

import select
from typing import Final

# Literals, so that compiled code (``pysozu.compiled``) inlines them; checked against
# the platform's epoll below.
READABLE: Final = 0x001  # EPOLLIN
WRITABLE: Final = 0x004  # EPOLLOUT
ERROR: Final = 0x008  # EPOLLERR
HUP: Final = 0x010  # EPOLLHUP
#: The peer shut its write side (epoll's EPOLLRDHUP, always reported with READABLE). A reader
#: that got less than it asked for may stop before EAGAIN unless this bit is set: with an
#: edge-triggered poller new data raises a new event, but an EOF that came with the data does
#: not, and must be read now.
READ_HUP: Final = 0x2000  # EPOLLRDHUP
ALL: Final = READABLE | WRITABLE | ERROR | HUP
NONE: Final = 0

for _name, _bit in (("EPOLLIN", READABLE), ("EPOLLOUT", WRITABLE), ("EPOLLERR", ERROR),
                    ("EPOLLHUP", HUP), ("EPOLLRDHUP", READ_HUP)):
    if getattr(select, _name, _bit) != _bit:  # pragma: no cover - no such Linux
        raise ImportError(f"select.{_name} is not {_bit:#x}: readiness bits must be epoll's")

_NAMES = ((READABLE, "R"), (WRITABLE, "W"), (ERROR, "E"), (HUP, "H"))


def ready_str(bits: int) -> str:
    """Short form of a set of bits for logs and ``print_state`` output, e.g. ``"RW"``."""
    return "".join(name for bit, name in _NAMES if bits & bit) or "-"


class Readiness:
    """What the kernel said (``event``) and what the state wants (``interest``)."""

    __slots__ = ("event", "interest")

    def __init__(self, interest: int = NONE, event: int = NONE) -> None:
        self.event = event
        self.interest = interest

    def filter_interest(self) -> int:
        """The bits that call for work now."""
        return self.event & self.interest

    def arm_writable(self) -> None:
        """Ask for WRITABLE and pretend it is ready, so the next pass tries to send.

        Sending first and waiting for the kernel only on EAGAIN saves a poll round trip.
        """
        self.interest |= WRITABLE
        self.event |= WRITABLE

    def signal_pending_read(self) -> None:
        """Mark readable without a kernel event (bytes already sit in a user-space buffer)."""
        self.event |= READABLE

    def reset(self) -> None:
        self.event = NONE
        self.interest = NONE

    def __repr__(self) -> str:
        return f"Readiness(event={ready_str(self.event)}, interest={ready_str(self.interest)})"
