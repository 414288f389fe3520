"""The event loop: poller, sessions, listeners, timers, the command channel.

Theory of operation
-------------------
One ``Server`` is one single-threaded worker. Each pass of ``run_once``:

1. polls (timeout: the next timer deadline, at most one second, zero when accepts are
   pending);
2. bumps the registration *epoch*, then dispatches each event by fd. An fd registered during
   this pass carries the new epoch and its events from this batch are dropped: they were
   meant for a socket that was closed and whose number was reused (the generation guard);
3. for a session: stamps ``last_event``, feeds the bits (``update_readiness``) and runs it
   (``ready``); True means close it. A listener accepts; a channel reads requests;
4. runs due timers, resumes accepts left pending (accept budget, ``max_connections``
   hysteresis, EMFILE back-off), and, during a soft stop, drops the sessions that say they
   can go and answers OK once none is left.

Accepting stops when ``max_connections`` sessions are open and resumes under 90 % of it;
until then new clients wait in the kernel's backlog. A listener whose readiness was not
drained is remembered in ``_accept_ready`` because edge-triggered epoll will not report it
again.

Requests from the channel go to ``command_handler(server, request, reply)``, which the top
layer (``pysozu.worker``) provides; ``reply`` sends a response on the channel the request
came from. Events are pushed to every open channel.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

from . import metrics as m
from .channel import DEFAULT_MAX_FRAME, FrameError, WorkerChannel
from .metrics import Metrics
from .poller import Poller, make_poller
from .pool import BufferPool
from .readiness import READABLE, WRITABLE
from .session import ProxySession
from .timer import Timers

log = logging.getLogger("pysozu.server")

_SESSION, _LISTENER, _CHANNEL, _COMMAND_LISTENER, _WAKEUP = 0, 1, 2, 3, 4
#: Accepts per listener event before the loop polls again (fairness with live sessions).
ACCEPT_BUDGET: Final = 64
#: Pause before accepting again after EMFILE/ENFILE.
EMFILE_BACKOFF: Final = 0.1
_ACCEPT_RETRY_ERRNOS = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN}
_NO_FD_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

Reply = Callable[[dict[str, Any]], None]
CommandHandler = Callable[["Server", dict[str, Any], Reply], None]


class SessionFactory(Protocol):
    """What a listener calls to turn an accepted socket into a session."""

    def create_session(
        self, server: Server, sock: socket.socket, peer: Any, listener: Listener
    ) -> ProxySession | None: ...


#: requests that may bring their listening socket along (SCM_RIGHTS): ACTIVATE_LISTENER with
#: ``from_scm``, or an ADD_*_LISTENER that is ``active`` at once
_TAKES_SOCKET = frozenset({"ACTIVATE_LISTENER", "ADD_TCP_LISTENER", "ADD_HTTP_LISTENER",
                           "ADD_HTTPS_LISTENER"})


_STREAM: Final = socket.SOCK_STREAM


class Listener:
    """A listening address with the factory of its sessions; bound only while active."""

    __slots__ = ("address", "bound_address", "config", "factory", "sock", "sockaddr")

    def __init__(
        self, address: str, sockaddr: tuple[str, int], factory: SessionFactory, config: Any
    ) -> None:
        self.address = address
        self.sockaddr = sockaddr
        self.factory = factory
        self.config = config
        self.sock: socket.socket | None = None
        self.bound_address: str | None = None

    @property
    def active(self) -> bool:
        return self.sock is not None


class _Entry:
    __slots__ = ("epoch", "kind", "obj")

    def __init__(self, kind: int, obj: Any, epoch: int) -> None:
        self.kind = kind
        self.obj = obj
        self.epoch = epoch


def format_sockaddr(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_command_socket(path: str, backlog: int = 16) -> socket.socket:
    """A non-blocking listening unix socket at ``path``; a stale file left by a process that
    is gone is replaced, a live one is an error (EADDRINUSE)."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale socket file from a process that is gone
        else:
            raise OSError(errno.EADDRINUSE, f"a proxy already answers on {path}")
        finally:
            probe.close()
    return _listening(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path, backlog)


def bind_listener(sockaddr: tuple[str, int], backlog: int = 1024) -> socket.socket:
    """A non-blocking listening TCP socket (SO_REUSEADDR, no SO_REUSEPORT: a taken address
    is an error the caller reports)."""
    family = socket.AF_INET6 if ":" in sockaddr[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return _listening(sock, sockaddr, backlog)


def _listening(sock: socket.socket, address: Any, backlog: int) -> socket.socket:
    """Bind ``sock``, listen, make it non-blocking; closed again if any step fails."""
    try:
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """A single-threaded worker loop. See the module docstring for the loop's steps."""

    def __init__(
        self,
        *,
        max_connections: int = 10_000,
        buffer_size: int = 16_393,
        max_buffers: int = 1_000,
        min_buffers: int = 1,
        zombie_check_interval: float = 1_800,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        poller: Poller | str = "epoll",
        command_handler: CommandHandler | None = None,
    ) -> None:
        self.poller: Poller = make_poller(poller) if isinstance(poller, str) else poller
        self._level = self.poller.level_triggered
        self.timers = Timers()
        self.metrics = Metrics()
        self.pool = BufferPool(max_buffers, buffer_size, min_buffers)
        self.max_connections = max_connections
        self.zombie_check_interval = zombie_check_interval
        self.max_frame_size = max_frame_size
        self.command_handler = command_handler
        self.sessions: set[ProxySession] = set()
        self.listeners: dict[str, Listener] = {}
        self.channels: set[WorkerChannel] = set()
        self.scm_sockets: dict[str, socket.socket] = {}
        #: connections accepted per listener and loop pass; several worker processes that
        #: share a listening socket use a small one, so that a burst spreads over them
        self.accept_budget = ACCEPT_BUDGET
        #: called when a channel is dropped (a worker process ends when its main's goes)
        self.on_channel_closed: Callable[[WorkerChannel], None] | None = None
        self._entries: dict[int, _Entry] = {}
        self._epoch = 0
        self._accept_ready: set[Listener] = set()
        self._can_accept = True
        self._accept_paused_until = 0.0
        self._running = False
        self.shutting_down = False
        self._stop_replies: list[tuple[str, Reply]] = []
        self._command_listener: socket.socket | None = None
        self._command_path: str | None = None
        if zombie_check_interval > 0:
            self.timers.schedule(zombie_check_interval, self._zombie_check)
        # call_soon() from another thread or a signal handler: queue, then wake the poll.
        self._soon: deque[Callable[[], None]] = deque()
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_r.setblocking(False)
        self._wakeup_w.setblocking(False)
        self._entries[self._wakeup_r.fileno()] = _Entry(_WAKEUP, None, -1)
        self.poller.register(self._wakeup_r.fileno(), READABLE)

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the loop's thread at its next pass (thread- and signal-safe)."""
        self._soon.append(callback)
        try:
            self._wakeup_w.send(b"\0")
        except OSError:
            pass  # the pipe is full: the loop is already due to wake up

    def defer(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this loop pass has handled its events (the loop's thread
        only: unlike ``call_soon`` it does not wake the poll). Work that several events of
        one pass would each do, such as flushing a connection, is done once."""
        self._soon.append(callback)

    # -- clock --------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.timers.now

    # -- registration -------------------------------------------------------------------------
    def register(self, fd: int, session: ProxySession, interest: int = READABLE) -> None:
        """Map ``fd`` to ``session`` and start polling it (sessions call this for backends)."""
        self._entries[fd] = _Entry(_SESSION, session, self._epoch)
        self.poller.register(fd, interest)

    def rebind(self, fd: int, session: ProxySession, interest: int = READABLE) -> None:
        """Hand a registered ``fd`` to another session (an idle backend connection passing
        between HTTP/2 streams) without a round trip through the kernel's epoll set."""
        entry = self._entries.get(fd)
        if entry is None:
            self.register(fd, session, interest)
            return
        self._entries[fd] = _Entry(_SESSION, session, self._epoch)
        if self._level:  # an edge-triggered poller asked for everything once
            self.poller.update_interest(fd, interest)

    def unregister(self, fd: int) -> None:
        """Stop polling ``fd``; call before closing the socket."""
        if self._entries.pop(fd, None) is not None:
            self.poller.unregister(fd)

    def sync_interest(self, session: ProxySession) -> None:
        """Level-triggered pollers only: push the session's interests to the kernel."""
        update = self.poller.update_interest
        for token in session.tokens():
            update(token, session.interest(token))

    # -- channels -----------------------------------------------------------------------------
    def add_channel(self, sock: socket.socket) -> WorkerChannel:
        """Serve the command channel on ``sock`` (one end of a socketpair, or an accepted
        connection on the command socket)."""
        channel = WorkerChannel(sock, self.max_frame_size)
        self.channels.add(channel)
        self._entries[channel.fileno()] = _Entry(_CHANNEL, channel, self._epoch)
        self.poller.register(channel.fileno(), READABLE)
        return channel

    def listen_command_socket(self, path: str) -> None:
        """Accept channel connections on a unix socket (``command_socket`` in the config)."""
        sock = listen_command_socket(path)
        self._command_listener = sock
        self._command_path = path
        self._entries[sock.fileno()] = _Entry(_COMMAND_LISTENER, sock, self._epoch)
        self.poller.register(sock.fileno(), READABLE)

    def push_event(self, event: dict[str, Any]) -> None:
        """Send an event (id ``EVENT``) to every open channel."""
        for channel in list(self.channels):
            channel.write(event)
            self._after_channel_write(channel)

    def _after_channel_write(self, channel: WorkerChannel) -> None:
        if channel.closed:
            self._drop_channel(channel)
        elif self._level:
            # After EOF only writing is left (a level-triggered READABLE would fire forever).
            self.poller.update_interest(
                channel.fileno(),
                (0 if channel.eof else READABLE) | (WRITABLE if channel.pending_output else 0),
            )

    def _drop_channel(self, channel: WorkerChannel) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            fd = channel.fileno()
            if fd >= 0:
                self.unregister(fd)
            channel.close()
            if self.on_channel_closed is not None:
                self.on_channel_closed(channel)

    def _channel_ready(self, channel: WorkerChannel, bits: int) -> None:
        if bits & WRITABLE:
            channel.flush()
        messages = channel.read() if bits & ~WRITABLE else []
        for message in messages:
            reply = self._make_reply(channel)
            if isinstance(message, FrameError):
                self.metrics.incr(m.CHANNEL_ERRORS)
                reply(
                    {"id": message.id, "status": "FAILURE", "message": message.message,
                     "content": None}
                )
                continue
            if channel.fds and (message.get("from_scm") or message.get("active")) \
                    and message.get("type") in _TAKES_SOCKET \
                    and isinstance(message.get("address"), str):
                # the listening socket travelled with this request (SCM_RIGHTS)
                fd = channel.take_fd()
                if fd is not None:
                    old = self.scm_sockets.pop(message["address"], None)
                    if old is not None:
                        old.close()
                    self.scm_sockets[message["address"]] = socket.socket(fileno=fd)
            self._dispatch_command(message, reply)
        # A peer that shut its write side gets every answer to what it sent before EOF
        # (pipelined requests, then ``shutdown(SHUT_WR)``), then the channel is dropped.
        if channel.closed or (channel.eof and not channel.pending_output):
            self._drop_channel(channel)
        else:
            self._after_channel_write(channel)

    def _make_reply(self, channel: WorkerChannel) -> Reply:
        def reply(response: dict[str, Any]) -> None:
            if channel in self.channels:
                channel.write(response)
                self._after_channel_write(channel)

        return reply

    def _dispatch_command(self, message: dict[str, Any], reply: Reply) -> None:
        handler = self.command_handler
        if handler is None:
            reply({"id": str(message.get("id", "")), "status": "FAILURE",
                   "message": "this worker has no command handler", "content": None})
            return
        try:
            handler(self, message, reply)
        except Exception as e:  # a bug in a handler must not take the worker down
            log.exception("command handler failed on %r", message.get("type"))
            reply({"id": str(message.get("id", "")), "status": "FAILURE",
                   "message": f"internal error: {type(e).__name__}: {e}", "content": None})

    # -- listeners ----------------------------------------------------------------------------
    def add_listener(
        self, address: str, sockaddr: tuple[str, int], factory: SessionFactory, config: Any
    ) -> Listener:
        if address in self.listeners:
            raise ValueError(f"a listener already exists on {address}")
        listener = Listener(address, sockaddr, factory, config)
        self.listeners[address] = listener
        return listener

    def activate_listener(self, address: str, from_scm: bool = False) -> Listener:
        """Bind (or take the socket offered in ``scm_sockets``) and start accepting."""
        listener = self.listeners.get(address)
        if listener is None:
            raise KeyError(f"no listener on {address}")
        if listener.sock is not None:
            return listener
        if self.shutting_down:
            raise RuntimeError("the worker is shutting down")
        sock = self.scm_sockets.pop(address, None)
        if sock is None:
            if from_scm:
                raise KeyError(f"no listen socket was handed over for {address}")
            sock = bind_listener(listener.sockaddr)
        sock.setblocking(False)
        listener.sock = sock
        listener.bound_address = format_sockaddr(sock.getsockname())
        self._entries[sock.fileno()] = _Entry(_LISTENER, listener, self._epoch)
        self.poller.register(sock.fileno(), READABLE)
        return listener

    def deactivate_listener(self, address: str) -> Listener:
        """Stop accepting and close the listening socket; open sessions go on."""
        listener = self.listeners.get(address)
        if listener is None:
            raise KeyError(f"no listener on {address}")
        sock = listener.sock
        if sock is not None:
            self.unregister(sock.fileno())
            self._accept_ready.discard(listener)
            sock.close()
            listener.sock = None
        return listener

    def remove_listener(self, address: str) -> Listener:
        listener = self.deactivate_listener(address)
        del self.listeners[address]
        return listener

    # -- accept -------------------------------------------------------------------------------
    def _accept(self, listener: Listener) -> None:
        sock = listener.sock
        if sock is None:
            return
        if not self._can_accept or self.now < self._accept_paused_until:
            self._accept_ready.add(listener)
            if self._level:
                # a level-triggered poller would report the waiting backlog on every poll
                # and spin the loop: stop asking until accepting resumes
                self.poller.update_interest(sock.fileno(), 0)
            return
        if self._level:
            self.poller.update_interest(sock.fileno(), READABLE)
        # ``socket.accept`` reads the listener's family and type through Python properties
        # (enum conversions) for every connection; the raw accept and a socket built from
        # known values do the same work for a few µs less
        accept = sock._accept  # type: ignore[attr-defined]
        family = sock.family
        new_socket = socket.socket
        for _ in range(self.accept_budget):
            try:
                fd, peer = accept()
                client = new_socket(family, _STREAM, 0, fd)
            except BlockingIOError:
                self._accept_ready.discard(listener)
                return
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno in _NO_FD_ERRNOS:
                    self._accept_ready.add(listener)
                    self.pause_accepts()
                    log.warning("accept on %s: %s; backing off", listener.address, e)
                    return
                if e.errno in _ACCEPT_RETRY_ERRNOS:
                    continue
                log.error("accept on %s failed: %s", listener.address, e)
                self._accept_ready.discard(listener)
                return
            self.metrics.incr(m.ACCEPTED)
            self._create_session(listener, client, peer)
            if self._at_capacity():
                self._accept_ready.add(listener)
                return
        self._accept_ready.add(listener)  # budget spent: more may wait

    def _at_capacity(self) -> bool:
        return not self._can_accept

    def pause_accepts(self, delay: float = EMFILE_BACKOFF) -> None:
        """Out of descriptors (EMFILE): stop accepting for ``delay``; clients wait in the
        backlog instead of being accepted and dropped."""
        self.metrics.incr(m.ACCEPT_EMFILE)
        until = self.now + delay
        if until > self._accept_paused_until:
            self._accept_paused_until = until
            self.timers.schedule(delay, self._resume_accepts)
        for listener in self.listeners.values():
            if listener.sock is not None:
                self._accept_ready.add(listener)

    def _create_session(self, listener: Listener, client: socket.socket, peer: Any) -> None:
        client.setblocking(False)
        try:
            session = listener.factory.create_session(self, client, peer, listener)
        except Exception:
            log.exception("session factory failed on %s", listener.address)
            session = None
        if session is None:
            client.close()
            return
        self.sessions.add(session)
        self.register(session.frontend_token, session, session.interest(session.frontend_token))
        self.metrics.gauge(m.CLIENT_CONNECTIONS, len(self.sessions))
        if len(self.sessions) >= self.max_connections:
            self._can_accept = False
            self.metrics.gauge(m.ACCEPT_BACKPRESSURE, 1)

    def _resume_accepts(self) -> None:
        if not self._can_accept or self.now < self._accept_paused_until:
            return
        for listener in list(self._accept_ready):
            if listener.sock is None:
                self._accept_ready.discard(listener)
            else:
                self._accept(listener)
            if self._at_capacity():
                return

    # -- sessions -----------------------------------------------------------------------------
    def run_session(self, session: ProxySession) -> None:
        """Run a session outside an event (after a timer, or a change from the channel)."""
        if not getattr(session, "alive", True):
            return
        try:
            close = session.ready()
        except Exception:
            self._session_crashed(session)
            return
        if close:
            self.kill_session(session)
        elif self._level:
            self.sync_interest(session)

    def _session_crashed(self, session: ProxySession) -> None:
        log.exception("session %s failed; closing it", session.print_session())
        self.metrics.incr(m.SESSION_ERRORS)
        self.kill_session(session)

    def kill_session(self, session: ProxySession) -> None:
        """Close a session and forget every token it held. Idempotent."""
        if not getattr(session, "alive", True):
            return
        session.alive = False
        tokens = session.tokens()
        try:
            session.close()
        except Exception:
            log.exception("closing %s failed", session.print_session())
        entries = self._entries
        for token in tokens:
            entry = entries.get(token)
            if entry is not None and entry.obj is session:
                self.unregister(token)
        self.sessions.discard(session)
        count = len(self.sessions)
        self.metrics.gauge(m.CLIENT_CONNECTIONS, count)
        if not self._can_accept and count < self.max_connections * 0.9:
            self._can_accept = True
            self.metrics.gauge(m.ACCEPT_BACKPRESSURE, 0)

    def _zombie_check(self) -> None:
        limit = self.now - self.zombie_check_interval
        for session in [s for s in self.sessions if s.last_event < limit]:
            log.warning("closing zombie session %s", session.print_session())
            self.metrics.incr(m.ZOMBIES)
            self.kill_session(session)
        self.timers.schedule(self.zombie_check_interval, self._zombie_check)

    # -- stop ---------------------------------------------------------------------------------
    def soft_stop(self, request_id: str = "", reply: Reply | None = None) -> None:
        """Stop accepting, let sessions finish, then answer ``request_id`` with OK."""
        self.shutting_down = True
        if reply is not None:
            self._stop_replies.append((request_id, reply))
        for address in list(self.listeners):
            self.deactivate_listener(address)
        self._close_command_listener()

    def hard_stop(self) -> None:
        """Close every session and listener now; the loop ends after this pass."""
        self.shutting_down = True
        for address in list(self.listeners):
            self.deactivate_listener(address)
        for session in list(self.sessions):
            self.kill_session(session)
        self._close_command_listener()
        self._running = False

    def _close_command_listener(self) -> None:
        sock = self._command_listener
        if sock is not None:
            self.unregister(sock.fileno())
            sock.close()
            self._command_listener = None
            if self._command_path is not None:
                try:
                    os.unlink(self._command_path)
                except OSError:
                    pass

    def _check_shutdown(self) -> None:
        for session in list(self.sessions):
            if session.shutting_down():
                self.kill_session(session)
        if not self.sessions:
            self._running = False

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Run until a hard stop, or a soft stop once every session is gone."""
        self._running = True
        try:
            while self._running:
                self.run_once()
        finally:
            self._finish()

    def run_once(self, max_timeout: float = 1.0) -> None:
        timers = self.timers
        if (self._accept_ready and self._can_accept
                and timers.now >= self._accept_paused_until) or self._soon:
            timeout = 0.0
        else:
            deadline = timers.next_deadline()
            timeout = max_timeout
            if deadline is not None:
                timeout = min(max(deadline - timers.clock(), 0.0), max_timeout)
            if self.shutting_down:
                timeout = min(timeout, 0.1)
        events = self.poller.poll(timeout)
        now = timers.update_now()
        self._epoch = epoch = self._epoch + 1
        entries = self._entries
        level = self._level
        for fd, bits in events:
            entry = entries.get(fd)
            if entry is None or entry.epoch == epoch:
                continue
            if entry.kind == _SESSION:
                session = entry.obj
                session.last_event = now
                try:
                    session.update_readiness(fd, bits)
                    close = session.ready()
                except Exception:
                    # a bug in one protocol state costs its own connection, never the worker
                    self._session_crashed(session)
                    continue
                if close:
                    self.kill_session(session)
                elif level:
                    self.sync_interest(session)
            elif entry.kind == _LISTENER:
                self._accept(entry.obj)
            elif entry.kind == _CHANNEL:
                self._channel_ready(entry.obj, bits)
            elif entry.kind == _COMMAND_LISTENER:
                self._accept_command_connection(entry.obj)
            else:
                self._drain_wakeup()
        soon = self._soon
        while soon:
            callback = soon.popleft()
            try:
                callback()
            except Exception:
                log.exception("call_soon callback failed")
        if timers.next_deadline() is not None:
            timers.update_now()
            timers.run_due()
        if self._accept_ready and self._can_accept and now >= self._accept_paused_until:
            self._resume_accepts()
        if self.shutting_down:
            self._check_shutdown()
        if self.metrics.drain is not None:
            self.metrics.flush()

    def _drain_wakeup(self) -> None:
        try:
            while self._wakeup_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept_command_connection(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.error("command socket accept failed: %s", e)
                return
            self.add_channel(client)

    def _finish(self) -> None:
        for request_id, reply in self._stop_replies:
            reply({"id": request_id, "status": "OK", "message": "worker stopped", "content": None})
        self._stop_replies.clear()
        for channel in list(self.channels):
            if channel.pending_output:
                channel.sock.setblocking(True)
                channel.sock.settimeout(1.0)
                try:
                    channel.sock.sendall(channel._out)
                except OSError:
                    pass
        self._close_command_listener()

    def close(self) -> None:
        """Release everything (tests call it after ``run`` returns)."""
        for session in list(self.sessions):
            self.kill_session(session)
        for address in list(self.listeners):
            self.deactivate_listener(address)
        for channel in list(self.channels):
            self._drop_channel(channel)
        for sock in self.scm_sockets.values():
            sock.close()
        self.scm_sockets.clear()
        self._close_command_listener()
        self.unregister(self._wakeup_r.fileno())
        self._wakeup_r.close()
        self._wakeup_w.close()
        self.poller.close()
