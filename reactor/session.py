"""The interfaces through which the reactor drives sessions.

Theory of operation
-------------------
The reactor knows three things about a connection and nothing of its protocol:

* a ``ProxySession`` is what the reactor stores under every token (file descriptor) of the
  connection: the frontend socket and each backend socket map to the same object. The
  reactor feeds it kernel events (``update_readiness``), asks it to work (``ready``), and
  closes it when ``ready`` answers True, when a timer says so, or on soft/hard stop.
* a ``SessionState`` is one protocol step inside a session (PROXY protocol, TLS handshake,
  HTTP, pipe, or a user's own). States return what should happen next instead of raising:
  ``SessionResult.UPGRADE`` asks the session to replace the state by ``state.upgrade()``,
  which must rank higher (states move forward only), and the new state runs at once on the
  bytes the old one already buffered.
* a ``SocketHandler`` reads and writes bytes for a state, so the same state works over a
  plain socket or a TLS connection.

``StateMachineSession`` ties these together for the common case of one frontend socket and
one state at a time, and is the public way to plug a custom protocol into a listener (see
``examples/echo_handler.py``).
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

from mypy_extensions import mypyc_attr

from .readiness import HUP, NONE, READABLE, WRITABLE, Readiness, ready_str
from .timer import Timeout

if TYPE_CHECKING:
    from .server import Listener, Server

#: A session whose inner loop runs this many rounds without settling is closed and counted.
MAX_LOOP_ITERATIONS: Final = 10_000
#: Upgrades in one ``ready`` call before the session counts as runaway (the built-in chain
#: has at most four steps).
MAX_UPGRADES: Final = 16


class SessionResult(enum.Enum):
    """What a state's ``ready`` asks of its session."""

    CONTINUE = 0
    CLOSE = 1
    UPGRADE = 2


class StateResult(enum.Enum):
    """What a state's ``timeout`` (or an inner step) asks of its session."""

    CONTINUE = 0
    CLOSE_BACKEND = 1
    CLOSE_SESSION = 2
    CONNECT_BACKEND = 3
    UPGRADE = 4


class SocketResult(enum.Enum):
    CONTINUE = 0
    WOULD_BLOCK = 1
    CLOSED = 2
    ERROR = 3


@mypyc_attr(allow_interpreted_subclasses=True)
class SocketHandler:
    """Non-blocking byte I/O on one socket; subclasses add TLS.

    Reads go into a caller's buffer (``recv_into``), so no bytes object is made per read.
    """

    __slots__ = ("_recv_into", "_send", "_sendmsg", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._recv_into = sock.recv_into
        self._send = sock.send
        self._sendmsg = sock.sendmsg

    def fileno(self) -> int:
        return self.sock.fileno()

    def socket_read(self, buf: memoryview) -> tuple[int, SocketResult]:
        """Read once into ``buf``: (bytes read, CONTINUE | WOULD_BLOCK | CLOSED | ERROR)."""
        try:
            n = self._recv_into(buf)
        except BlockingIOError:
            return 0, SocketResult.WOULD_BLOCK
        except InterruptedError:
            return 0, SocketResult.CONTINUE
        except OSError:
            return 0, SocketResult.ERROR
        if n == 0:
            return 0, SocketResult.CLOSED
        return n, SocketResult.CONTINUE

    def socket_write(self, data: Any) -> tuple[int, SocketResult]:
        """Write once from ``data``: (bytes written, CONTINUE | WOULD_BLOCK | ERROR)."""
        try:
            return self._send(data), SocketResult.CONTINUE
        except BlockingIOError:
            return 0, SocketResult.WOULD_BLOCK
        except InterruptedError:
            return 0, SocketResult.CONTINUE
        except OSError:
            return 0, SocketResult.ERROR

    def socket_write_vectored(self, buffers: Sequence[Any]) -> tuple[int, SocketResult]:
        """Write several buffers with one system call (``sendmsg``), as ``socket_write``.

        A subclass whose transport cannot gather (TLS) may send the first buffer only: the
        caller goes on with what was not written, as after any short write.
        """
        try:
            return self._sendmsg(buffers), SocketResult.CONTINUE
        except BlockingIOError:
            return 0, SocketResult.WOULD_BLOCK
        except InterruptedError:
            return 0, SocketResult.CONTINUE
        except OSError:
            return 0, SocketResult.ERROR

    def shutdown_write(self) -> None:
        """Send FIN (half-close): the peer reads EOF but can still send to us."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@mypyc_attr(allow_interpreted_subclasses=True)
class ProxySession:
    """What the reactor stores under each of a connection's tokens.

    Subclasses implement ``ready``, ``update_readiness``, ``close``, ``tokens`` and
    ``interest``; the rest has working defaults.
    """

    #: Name used in metrics and in ``print_session`` (``"tcp"``, ``"http"``, ...).
    protocol: ClassVar[str] = "custom"

    frontend_token: int
    server: Server
    #: Loop time of the last kernel event on any of the session's sockets (zombie sweep).
    last_event: float
    #: Set while the reactor holds the session, cleared by ``Server.kill_session``.
    alive: bool

    def update_readiness(self, token: int, events: int) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        """Do all the work that the readiness allows; True means "close me"."""
        raise NotImplementedError

    def close(self) -> None:
        """Release sockets (through ``server.unregister``), buffers and timers. Idempotent."""
        raise NotImplementedError

    def tokens(self) -> list[int]:
        """Every token this session holds in the reactor (frontend first)."""
        raise NotImplementedError

    def interest(self, token: int) -> int:
        """What the session wants from ``token``: used by level-triggered pollers only."""
        raise NotImplementedError

    def shutting_down(self) -> bool:
        """Soft stop is under way: True once the session can be dropped without loss."""
        return False

    def print_session(self) -> str:
        return f"{type(self).__name__}(front={self.frontend_token})"


@mypyc_attr(allow_interpreted_subclasses=True)
class SessionState:
    """One protocol step of a ``StateMachineSession``.

    ``RANK`` orders the built-in states (PROXY protocol < TLS handshake < HTTP/HTTP2 <
    pipe); an upgrade must go to a strictly higher rank. Custom states may use any rank.
    """

    __slots__ = ()  # subclasses may declare slots (hot, per-connection objects)

    RANK: ClassVar[int] = 0
    #: Name used in metrics gauges (``protocol.<name>``) and ``print_state``.
    NAME: ClassVar[str] = "custom"

    def ready(self, session: StateMachineSession) -> SessionResult:
        raise NotImplementedError

    def update_readiness(self, token: int, events: int) -> None:
        raise NotImplementedError

    def interest(self, token: int) -> int:
        raise NotImplementedError

    def timeout(self, session: StateMachineSession, token: int) -> StateResult:
        """A timer set by this state fired; the default closes the session."""
        return StateResult.CLOSE_SESSION

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        """Build the next state after ``ready`` answered UPGRADE; None refuses the upgrade."""
        return None

    def shutting_down(self, session: StateMachineSession) -> bool:
        """Soft stop: True when this state can be dropped now."""
        return True

    def close(self, session: StateMachineSession) -> None:
        """Release what the state owns (not the frontend socket: the session owns it)."""

    def print_state(self) -> str:
        return type(self).__name__


#: Builds the first state of a session on a listener with a custom protocol.
StateFactory = Callable[["StateMachineSession"], SessionState]


@mypyc_attr(allow_interpreted_subclasses=True)
class FrontReadinessState(SessionState):
    """Base for states that only deal with the frontend socket: keeps its ``Readiness``."""

    __slots__ = ("front_readiness", "front_token")

    def __init__(self, session: StateMachineSession, interest: int = READABLE) -> None:
        self.front_readiness = Readiness(interest | HUP)
        self.front_token = session.frontend_token

    def update_readiness(self, token: int, events: int) -> None:
        if token == self.front_token:
            self.front_readiness.event |= events

    def interest(self, token: int) -> int:
        return self.front_readiness.interest if token == self.front_token else NONE


@mypyc_attr(allow_interpreted_subclasses=True)
class StateMachineSession(ProxySession):
    """A session made of one frontend socket and a forward-only chain of states.

    Protocols that need more (backend sockets, retries) subclass it; the TCP proxy does.
    """

    protocol = "custom"
    __slots__ = (
        "alive",
        "front",
        "front_socket",
        "frontend_token",
        "handoff_timeout",
        "last_event",
        "listener",
        "peer_address",
        "server",
        "state",
    )  # the base class keeps a __dict__ (created only when a subclass sets other names)

    def __init__(
        self,
        server: Server,
        sock: socket.socket,
        peer: Any,
        listener: Listener | None,
        state_factory: StateFactory | None = None,
    ) -> None:
        self.server = server
        self.listener = listener
        self.front_socket = sock
        self.front = SocketHandler(sock)
        self.peer_address = peer
        self.frontend_token = sock.fileno()
        self.last_event = server.now
        self.alive = True
        #: a timeout a state leaves armed for the next one to take over (``Timeout.reuse``):
        #: the TLS handshake's timer becomes HTTP's request timer; a state that upgrades
        #: closes it if the next state did not take it
        self.handoff_timeout: Timeout | None = None
        self.state: SessionState | None = None
        if state_factory is not None:
            self.state = state_factory(self)

    def take_handoff_timeout(self) -> Timeout | None:
        """The timeout the previous state left (``handoff_timeout``), now this caller's."""
        timeout = self.handoff_timeout
        self.handoff_timeout = None
        return timeout

    # -- reactor side ------------------------------------------------------------------------
    def update_readiness(self, token: int, events: int) -> None:
        state = self.state
        if state is not None:
            state.update_readiness(token, events)

    def ready(self) -> bool:
        upgrades = 0
        while True:
            state = self.state
            if state is None:
                return True
            result = state.ready(self)
            if result is SessionResult.CONTINUE:
                return False
            if result is SessionResult.CLOSE:
                return True
            upgrades += 1
            if upgrades > MAX_UPGRADES:
                self.server.metrics.incr("session.infinite_loop.error")
                return True
            if not self.upgrade():
                return True

    def upgrade(self) -> bool:
        """Replace the state by the one it builds; False if it refused or went backwards."""
        old = self.state
        if old is None:
            return False
        new = old.upgrade(self)
        if new is None or new.RANK <= old.RANK:
            self.server.metrics.incr("session.failed_upgrade")
            return False
        self.state = new
        self.server.metrics.gauge_add(f"protocol.{old.NAME}", -1)
        self.server.metrics.gauge_add(f"protocol.{new.NAME}", 1)
        return True

    def tokens(self) -> list[int]:
        return [self.frontend_token]

    def interest(self, token: int) -> int:
        state = self.state
        return state.interest(token) if state is not None else NONE

    def shutting_down(self) -> bool:
        state = self.state
        return True if state is None else state.shutting_down(self)

    def make_timeout(self, duration: float, token: int | None = None) -> Timeout:
        """A lazy timeout whose expiry calls ``state.timeout(session, token)``.

        Arm it with ``set()``; ``touch()`` it on activity (cheap: see ``reactor.timer``).
        The session cancels nothing by itself: a state cancels its timeouts in ``close``.
        """
        target = self.frontend_token if token is None else token
        return Timeout(self.server.timers, duration, lambda: self.on_timeout(target))

    def on_timeout(self, token: int) -> None:
        """Timer callback for a state's timeout: act on its ``StateResult``."""
        state = self.state
        if not self.alive or state is None:
            return
        result = state.timeout(self, token)
        if result is StateResult.CLOSE_SESSION:
            self.server.kill_session(self)
        elif result is not StateResult.CONTINUE:
            self.server.run_session(self)

    def close(self) -> None:
        if self.state is not None:
            self.server.metrics.gauge_add(f"protocol.{self.state.NAME}", -1)
            self.state.close(self)
            self.state = None
        self.server.unregister(self.frontend_token)
        self.front.close()

    def print_session(self) -> str:
        state = self.state.print_state() if self.state is not None else "closed"
        name = type(self).__name__
        return f"{name}(front={self.frontend_token}, peer={self.peer_address}, {state})"


__all__ = [
    "HUP",
    "MAX_LOOP_ITERATIONS",
    "READABLE",
    "WRITABLE",
    "FrontReadinessState",
    "ProxySession",
    "Readiness",
    "SessionResult",
    "SessionState",
    "SocketHandler",
    "SocketResult",
    "StateFactory",
    "StateMachineSession",
    "StateResult",
    "ready_str",
]
