"""Pipe: raw bytes both ways between a frontend and a backend socket.

Theory of operation
-------------------
Two pooled buffers, one per direction: ``to_back`` holds bytes read from the frontend not
yet written to the backend, ``to_front`` the reverse. Each is a window ``[start, end)``.

* A side is read while its readiness says READABLE and the buffer it fills has room. A
  full buffer drops READABLE from the interest (back-pressure) and the bit stays in
  ``event``: under edge-triggered epoll the kernel will not repeat it, so reading resumes
  from user space as soon as the other side drains the buffer.
* Whatever is read is written at once; only what the kernel refuses (EAGAIN) waits for
  WRITABLE.
* Half-close: EOF on one side (a 0-byte read) stops reading it; once its buffer is
  drained the other side gets a FIN (``shutdown(SHUT_WR)``) and keeps its own direction
  open. The pipe ends when both directions are done, or on an error on either socket.
* A session that still connects its backend sets ``back_connected = False``: the pipe reads
  the client meanwhile but writes nothing to the backend until the session says it is up.

Sōzu's ``protocol/pipe.rs`` is the model; WebSocket sessions reuse this state after a
``101 Switching Protocols``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pysozu.reactor import metrics as m
from pysozu.reactor.readiness import ERROR, HUP, NONE, READABLE, WRITABLE, Readiness
from pysozu.reactor.session import (
    MAX_LOOP_ITERATIONS,
    SessionResult,
    SessionState,
    SocketHandler,
    SocketResult,
)

if TYPE_CHECKING:
    from pysozu.reactor.session import StateMachineSession
    from pysozu.reactor.timer import Timeout

_CONTINUE = SocketResult.CONTINUE
_WOULD_BLOCK = SocketResult.WOULD_BLOCK
_CLOSED = SocketResult.CLOSED


class Pipe(SessionState):
    """Copies bytes both ways with back-pressure and half-close (see module docstring)."""

    RANK = 100
    NAME = "pipe"

    __slots__ = (
        "back",
        "back_connected",
        "back_eof",
        "back_readiness",
        "back_shut",
        "back_timeout",
        "back_token",
        "bytes_in",
        "bytes_out",
        "error",
        "front",
        "front_eof",
        "front_readiness",
        "front_shut",
        "front_timeout",
        "front_token",
        "on_close",
        "to_back",
        "to_back_end",
        "to_back_mv",
        "to_back_start",
        "to_front",
        "to_front_end",
        "to_front_mv",
        "to_front_start",
    )

    def __init__(
        self,
        front: SocketHandler,
        front_token: int,
        front_readiness: Readiness,
        back: SocketHandler | None,
        back_token: int,
        back_readiness: Readiness,
        to_back: bytearray,
        to_front: bytearray,
        *,
        to_back_start: int = 0,
        to_back_end: int = 0,
        to_front_start: int = 0,
        to_front_end: int = 0,
        back_connected: bool = True,
        front_timeout: Timeout | None = None,
        back_timeout: Timeout | None = None,
    ) -> None:
        self.front = front
        self.front_token = front_token
        self.front_readiness = front_readiness
        self.back = back
        self.back_token = back_token
        self.back_readiness = back_readiness
        self.to_back = to_back
        self.to_back_mv = memoryview(to_back)
        self.to_back_start = to_back_start
        self.to_back_end = to_back_end
        self.to_front = to_front
        self.to_front_mv = memoryview(to_front)
        self.to_front_start = to_front_start
        self.to_front_end = to_front_end
        self.back_connected = back_connected
        #: called by ``close`` (the state that built this pipe releases what it owns)
        self.on_close: Callable[[StateMachineSession, Pipe], None] | None = None
        self.front_timeout = front_timeout
        self.back_timeout = back_timeout
        self.front_eof = False
        self.back_eof = False
        self.front_shut = False
        self.back_shut = False
        self.error = ""
        self.bytes_in = 0
        self.bytes_out = 0
        front_readiness.interest |= READABLE | HUP | ERROR
        back_readiness.interest |= READABLE | HUP | ERROR
        if to_back_end > to_back_start:
            back_readiness.interest |= WRITABLE
        if to_front_end > to_front_start:
            front_readiness.arm_writable()
        front_readiness.signal_pending_read()  # bytes may wait in the kernel already

    # -- wiring -------------------------------------------------------------------------------
    def set_back(self, back: SocketHandler | None, token: int) -> None:
        """A retry replaced the backend socket (only before anything was written to it)."""
        self.back = back
        self.back_token = token
        # the session reset the readiness when it closed the failed socket: ask for the
        # new one's bytes again, or the backend's answer would never be read
        self.back_readiness.interest |= READABLE | HUP | ERROR

    def update_readiness(self, token: int, events: int) -> None:
        if events & (HUP | ERROR):
            events |= READABLE  # the read that follows tells EOF from error
        if token == self.front_token:
            self.front_readiness.event |= events
        elif token == self.back_token:
            self.back_readiness.event |= events

    def interest(self, token: int) -> int:
        if token == self.front_token:
            return self.front_readiness.interest
        if token == self.back_token:
            return self.back_readiness.interest
        return NONE

    # -- the pump -----------------------------------------------------------------------------
    def ready(self, session: StateMachineSession) -> SessionResult:
        front_r = self.front_readiness
        back_r = self.back_readiness
        for _ in range(MAX_LOOP_ITERATIONS):
            front_work = front_r.event & front_r.interest
            back_work = back_r.event & back_r.interest if self.back_connected else 0
            if not (front_work & (READABLE | WRITABLE) or back_work & (READABLE | WRITABLE)):
                break
            if front_work & READABLE and not self.read_front():
                return SessionResult.CLOSE
            if back_work & WRITABLE and not self.write_back():
                return SessionResult.CLOSE
            if back_work & READABLE and not self.read_back():
                return SessionResult.CLOSE
            if front_r.event & front_r.interest & WRITABLE and not self.write_front():
                return SessionResult.CLOSE
        else:
            session.server.metrics.incr(m.INFINITE_LOOP)
            self.error = "infinite loop"
            return SessionResult.CLOSE
        if self.front_eof and self.back_eof and self.front_shut and self.back_shut:
            return SessionResult.CLOSE
        return SessionResult.CONTINUE

    def read_front(self) -> bool:
        """Fill ``to_back`` from the frontend; False on a socket error."""
        end = self.to_back_end
        size = len(self.to_back)
        if end == size and self.to_back_start:
            self._compact_to_back()
            end = self.to_back_end
        read = self.front.socket_read
        mv = self.to_back_mv
        front_r = self.front_readiness
        while end < size:
            n, result = read(mv[end:])
            if result is _CONTINUE:
                end += n
                self.bytes_in += n
            elif result is _WOULD_BLOCK:
                front_r.event &= ~READABLE
                break
            elif result is _CLOSED:
                front_r.event &= ~READABLE
                front_r.interest &= ~READABLE
                self.front_eof = True
                break
            else:
                self.error = "frontend read error"
                return False
        else:
            front_r.interest &= ~READABLE  # buffer full: wait until the backend drains it
        if end != self.to_back_end:
            self.to_back_end = end
            if self.front_timeout is not None:
                self.front_timeout.touch()
            self.back_readiness.interest |= WRITABLE
        elif self.front_eof and end == self.to_back_start:
            self._shut_back()
        return True

    def write_back(self) -> bool:
        start = self.to_back_start
        end = self.to_back_end
        back_r = self.back_readiness
        back = self.back
        if back is None:
            return True
        write = back.socket_write
        mv = self.to_back_mv
        while start < end:
            n, result = write(mv[start:end])
            if result is _CONTINUE:
                start += n
            elif result is _WOULD_BLOCK:
                back_r.event &= ~WRITABLE
                break
            else:
                self.error = "backend write error"
                return False
        if start != self.to_back_start and self.back_timeout is not None:
            self.back_timeout.touch()
        if start == end:
            self.to_back_start = self.to_back_end = 0
            back_r.interest &= ~WRITABLE
            if self.front_eof:
                self._shut_back()
            else:
                self.front_readiness.interest |= READABLE
        else:
            self.to_back_start = start
        return True

    def read_back(self) -> bool:
        back = self.back
        if back is None:
            return True
        end = self.to_front_end
        size = len(self.to_front)
        if end == size and self.to_front_start:
            self._compact_to_front()
            end = self.to_front_end
        read = back.socket_read
        mv = self.to_front_mv
        back_r = self.back_readiness
        while end < size:
            n, result = read(mv[end:])
            if result is _CONTINUE:
                end += n
            elif result is _WOULD_BLOCK:
                back_r.event &= ~READABLE
                break
            elif result is _CLOSED:
                back_r.event &= ~READABLE
                back_r.interest &= ~READABLE
                self.back_eof = True
                break
            else:
                self.error = "backend read error"
                return False
        else:
            back_r.interest &= ~READABLE
        if end != self.to_front_end:
            self.to_front_end = end
            if self.back_timeout is not None:
                self.back_timeout.touch()
            self.front_readiness.interest |= WRITABLE
        elif self.back_eof and end == self.to_front_start:
            self._shut_front()
        return True

    def write_front(self) -> bool:
        start = self.to_front_start
        end = self.to_front_end
        front_r = self.front_readiness
        write = self.front.socket_write
        mv = self.to_front_mv
        while start < end:
            n, result = write(mv[start:end])
            if result is _CONTINUE:
                start += n
                self.bytes_out += n
            elif result is _WOULD_BLOCK:
                front_r.event &= ~WRITABLE
                break
            else:
                self.error = "frontend write error"
                return False
        if start != self.to_front_start and self.front_timeout is not None:
            self.front_timeout.touch()
        if start == end:
            self.to_front_start = self.to_front_end = 0
            front_r.interest &= ~WRITABLE
            if self.back_eof:
                self._shut_front()
            else:
                self.back_readiness.interest |= READABLE
        else:
            self.to_front_start = start
        return True

    def _compact_to_back(self) -> None:
        start, end = self.to_back_start, self.to_back_end
        # bytes() first: the regions may overlap and a buffer copy onto itself is undefined
        self.to_back[: end - start] = bytes(self.to_back_mv[start:end])
        self.to_back_start, self.to_back_end = 0, end - start

    def _compact_to_front(self) -> None:
        start, end = self.to_front_start, self.to_front_end
        self.to_front[: end - start] = bytes(self.to_front_mv[start:end])
        self.to_front_start, self.to_front_end = 0, end - start

    def _shut_back(self) -> None:
        if not self.back_shut and self.back is not None and self.back_connected:
            self.back_shut = True
            self.back.shutdown_write()

    def _shut_front(self) -> None:
        if not self.front_shut:
            self.front_shut = True
            self.front.shutdown_write()

    # -- lifecycle ----------------------------------------------------------------------------
    def backend_connected(self) -> None:
        """The session's backend is up: flush what the client already sent."""
        self.back_connected = True
        if self.to_back_end > self.to_back_start:
            self.back_readiness.arm_writable()
        elif self.front_eof:
            self._shut_back()

    def shutting_down(self, session: StateMachineSession) -> bool:
        # A byte stream has no safe point to cut: soft stop waits for both ends to finish.
        return False

    def close(self, session: StateMachineSession) -> None:
        metrics = session.server.metrics
        metrics.incr(m.BYTES_IN, self.bytes_in)
        metrics.incr(m.BYTES_OUT, self.bytes_out)
        self.bytes_in = self.bytes_out = 0
        self.to_back_mv.release()
        self.to_front_mv.release()
        if self.on_close is not None:
            self.on_close(session, self)

    def print_state(self) -> str:
        return (
            f"Pipe(front={self.front_readiness}, back={self.back_readiness}, "
            f"to_back={self.to_back_end - self.to_back_start}, "
            f"to_front={self.to_front_end - self.to_front_start}, "
            f"eof={self.front_eof}/{self.back_eof}, shut={self.front_shut}/{self.back_shut})"
        )
