"""A custom protocol handler: a line-based echo service plugged into a pysozu listener.

Run it as a standalone proxy::

    python examples/echo_handler.py --listen 127.0.0.1:7000
    printf 'hello\\nworld\\n' | nc -q1 127.0.0.1 7000      # -> "echo: hello" / "echo: world"

How a handler plugs in: ``Worker.set_listener_handler(address, factory)`` makes every client
accepted on that listener a ``StateMachineSession`` whose first state is
``factory(session)``. The state follows the same contract as the built-in ones (PROXY
protocol, pipe...): the reactor feeds it readiness bits, calls ``ready``, and the state
answers CONTINUE, CLOSE or UPGRADE. It must read until EAGAIN and arm WRITABLE itself when
output is left over (edge-triggered epoll does not repeat itself).
"""

from __future__ import annotations

import argparse
import signal

from pysozu.command import make_request
from pysozu.reactor.readiness import READABLE, WRITABLE
from pysozu.reactor.session import (
    FrontReadinessState,
    SessionResult,
    SocketResult,
    StateMachineSession,
    StateResult,
)
from pysozu.worker import Worker

MAX_LINE = 4096
#: Seconds a client may stay silent before the handler closes it.
IDLE_TIMEOUT = 30.0


class LineEcho(FrontReadinessState):
    """Answers each line with ``echo: <line>``; closes on EOF or an over-long line."""

    NAME = "line_echo"

    def __init__(self, session: StateMachineSession, idle_timeout: float = IDLE_TIMEOUT) -> None:
        super().__init__(session)
        # The session calls self.timeout() when the client was idle for idle_timeout.
        self.idle = session.make_timeout(idle_timeout)
        self.idle.set()
        self.buffer = bytearray(MAX_LINE)
        self.view = memoryview(self.buffer)
        self.filled = 0
        self.output = bytearray()
        self.eof = False

    def ready(self, session: StateMachineSession) -> SessionResult:
        readiness = self.front_readiness
        if readiness.event & readiness.interest & READABLE:
            while self.filled < MAX_LINE:
                n, result = session.front.socket_read(self.view[self.filled :])
                if result is SocketResult.WOULD_BLOCK:
                    readiness.event &= ~READABLE
                    break
                if result is not SocketResult.CONTINUE:
                    self.eof = True
                    break
                self.filled += n
                self.idle.touch()
                self._take_lines()
            if self.filled == MAX_LINE:
                return SessionResult.CLOSE  # a line longer than we accept
        if self.output:
            n, result = session.front.socket_write(self.output)
            if result is SocketResult.ERROR:
                return SessionResult.CLOSE
            del self.output[:n]
            if self.output:
                readiness.interest |= WRITABLE  # the kernel said EAGAIN: wait for room
                if result is SocketResult.WOULD_BLOCK:
                    readiness.event &= ~WRITABLE
            else:
                readiness.interest &= ~WRITABLE
        if self.eof and not self.output:
            return SessionResult.CLOSE
        return SessionResult.CONTINUE

    def timeout(self, session: StateMachineSession, token: int) -> StateResult:
        session.front.socket_write(b"bye: idle\n")  # best effort, then close
        return StateResult.CLOSE_SESSION

    def close(self, session: StateMachineSession) -> None:
        self.idle.cancel()

    def _take_lines(self) -> None:
        data = self.buffer[: self.filled]
        end = data.rfind(b"\n")
        if end < 0:
            return
        for line in bytes(data[:end]).split(b"\n"):
            self.output += b"echo: " + line.rstrip(b"\r") + b"\n"
        rest = data[end + 1 :]
        self.buffer[: len(rest)] = rest
        self.filled = len(rest)


def build_worker(address: str, idle_timeout: float = IDLE_TIMEOUT) -> Worker:
    """A worker with one listener served by ``LineEcho``."""
    worker = Worker()
    worker.set_listener_handler(address, lambda session: LineEcho(session, idle_timeout))
    worker.apply(
        [
            make_request("echo-listener", "ADD_TCP_LISTENER", address=address),
            make_request("echo-activate", "ACTIVATE_LISTENER", address=address, proxy="TCP"),
        ]
    )
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:7000")
    args = parser.parse_args()
    worker = build_worker(args.listen)
    signal.signal(signal.SIGINT, lambda *_: worker.server.call_soon(worker.server.hard_stop))
    print(f"line echo listening on {args.listen}; Ctrl-C stops", flush=True)
    worker.run()
    worker.close()


if __name__ == "__main__":
    main()
