"""Session states that read or write a PROXY protocol header before the pipe starts.

Theory of operation
-------------------
``ExpectProxyProtocol`` (listener ``expect_proxy``) reads the start of the client stream
straight into the session's frontend→backend buffer, at most ``EXPECT_WINDOW`` bytes, and
parses it on every read: ``None`` (a valid prefix) waits, an error closes the connection
and is counted, a header records the real client address. The header bytes are then
dropped from the buffer — or kept, for a cluster that *relays* the header to its backend
(``RelayProxyProtocol``). Bytes that followed the header stay in the buffer for the pipe.
A client that closes before sending a byte is closed silently (a TCP health check).

``SendProxyProtocol`` (cluster ``SEND_HEADER``) waits for the backend connection, writes a
v2 header naming the client and the address it connected to, and only then lets the pipe
read the client: nothing can overtake the header.

Both upgrade through ``TcpSession.next_state`` to the next step of the chain
Expect/Relay → Send → Pipe, the order of Sōzu's ``proxy_protocol/{expect,relay,send}.rs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pysozu.reactor import metrics as m
from pysozu.reactor.readiness import ERROR, HUP, READABLE, WRITABLE
from pysozu.reactor.session import (
    MAX_LOOP_ITERATIONS,
    SessionResult,
    SessionState,
    SocketResult,
    StateMachineSession,
)

from .proxy_protocol import ProxyHeader, ProxyProtocolError, parse_header

if TYPE_CHECKING:
    from .tcp import TcpSession

#: The longest header accepted, v2 with a few TLVs included (Sōzu accepts 232 bytes).
EXPECT_WINDOW = 536


def read_proxy_header(
    read: Callable[[memoryview], tuple[int, SocketResult]], buf: memoryview, count: int
) -> tuple[int, ProxyHeader | str | None]:
    """Read the client into ``buf[count:EXPECT_WINDOW]`` and parse what came so far.

    Returns ``(bytes now in buf, outcome)``: a :class:`ProxyHeader` when it is complete;
    ``None`` when the socket is drained and the header not complete yet (wait for the next
    event); a ``str`` when the connection must close: why, or ``""`` to close silently (a
    client gone before its first byte, a socket error). Shared by the TCP and HTTP states.
    """
    for _ in range(MAX_LOOP_ITERATIONS):
        n, result = read(buf[count:EXPECT_WINDOW])
        if result is SocketResult.WOULD_BLOCK:
            return count, None
        if result is SocketResult.CLOSED:
            return count, "client closed in the middle of the PROXY header" if count else ""
        if result is SocketResult.ERROR:
            return count, ""
        count += n
        try:
            header = parse_header(buf[:count], max_header_length=EXPECT_WINDOW)
        except ProxyProtocolError as e:
            return count, str(e)
        if header is not None:
            return count, header
        if count >= EXPECT_WINDOW:
            return count, f"PROXY header longer than {EXPECT_WINDOW} bytes"
    return count, ""


def _tcp(session: StateMachineSession) -> TcpSession:
    return session  # type: ignore[return-value]


class ExpectProxyProtocol(SessionState):
    """Read and check the client's PROXY header (v1 or v2)."""

    RANK = 10
    NAME = "proxy.expect"

    def __init__(self, session: TcpSession, keep_header: bool = False) -> None:
        self.session = session
        self.keep_header = keep_header
        self.header: ProxyHeader | None = None
        self.read = 0
        self.error = ""
        session.front_readiness.interest = READABLE | HUP | ERROR

    def update_readiness(self, token: int, events: int) -> None:
        self.session.update_front_back_readiness(token, events)

    def interest(self, token: int) -> int:
        return self.session.readiness_interest(token)

    def ready(self, session: StateMachineSession) -> SessionResult:
        tcp = _tcp(session)
        readiness = tcp.front_readiness
        if not readiness.event & (READABLE | HUP | ERROR):
            return SessionResult.CONTINUE
        count, outcome = read_proxy_header(tcp.front.socket_read, tcp.to_back_mv, self.read)
        if count != self.read:
            self.read = count
            tcp.front_timeout.touch()
        if outcome is None:
            readiness.event &= ~READABLE
            return SessionResult.CONTINUE
        if isinstance(outcome, str):
            if outcome:
                self._fail(tcp, outcome)
            return SessionResult.CLOSE
        self.header = outcome
        tcp.proxy_header = outcome
        if outcome.command == "PROXY" and outcome.source is not None:
            tcp.client_address = outcome.source
        tcp.to_back_start = 0 if self.keep_header else outcome.length
        tcp.to_back_end = count
        return SessionResult.UPGRADE

    def _fail(self, tcp: TcpSession, message: str) -> None:
        self.error = message
        tcp.server.metrics.incr(m.PROXY_PROTOCOL_ERRORS)
        tcp.log_debug("bad PROXY protocol header: %s", message)

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        return _tcp(session).next_state(self)

    def shutting_down(self, session: StateMachineSession) -> bool:
        return False  # the client's bytes may be on their way (bounded by front_timeout)

    def print_state(self) -> str:
        return f"ExpectProxyProtocol(read={self.read}, keep={self.keep_header})"


class RelayProxyProtocol(ExpectProxyProtocol):
    """Read the client's header and hand it to the backend unchanged."""

    RANK = 11
    NAME = "proxy.relay"

    def __init__(self, session: TcpSession) -> None:
        super().__init__(session, keep_header=True)


class SendProxyProtocol(SessionState):
    """Write a v2 header to the backend before any client byte."""

    RANK = 20
    NAME = "proxy.send"

    def __init__(self, session: TcpSession, header: bytes) -> None:
        self.session = session
        self.header = header
        self.sent = 0
        session.front_readiness.interest = HUP | ERROR  # the client waits for the header
        session.back_readiness.interest = WRITABLE | HUP | ERROR

    def update_readiness(self, token: int, events: int) -> None:
        self.session.update_front_back_readiness(token, events)

    def interest(self, token: int) -> int:
        return self.session.readiness_interest(token)

    def backend_connected(self) -> None:
        self.session.back_readiness.arm_writable()

    def set_back(self, back: object, token: int) -> None:
        """A retry changed the backend socket: start the header again."""
        self.sent = 0

    def ready(self, session: StateMachineSession) -> SessionResult:
        tcp = _tcp(session)
        back = tcp.back
        readiness = tcp.back_readiness
        if not tcp.back_connected or back is None or not readiness.event & WRITABLE:
            return SessionResult.CONTINUE
        header = self.header
        while self.sent < len(header):
            n, result = back.socket_write(header[self.sent :])
            if result is SocketResult.CONTINUE:
                self.sent += n
            elif result is SocketResult.WOULD_BLOCK:
                readiness.event &= ~WRITABLE
                return SessionResult.CONTINUE
            else:
                return SessionResult.CLOSE
        readiness.interest &= ~WRITABLE
        return SessionResult.UPGRADE

    def upgrade(self, session: StateMachineSession) -> SessionState | None:
        return _tcp(session).next_state(self)

    def shutting_down(self, session: StateMachineSession) -> bool:
        return False

    def print_state(self) -> str:
        return f"SendProxyProtocol(sent={self.sent}/{len(self.header)})"


__all__ = [
    "EXPECT_WINDOW",
    "ExpectProxyProtocol",
    "RelayProxyProtocol",
    "SendProxyProtocol",
]
