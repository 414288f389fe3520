"""The main process of ``pysozu start`` with ``worker_count >= 1``: it owns the
configuration and the listening sockets, and runs that many worker processes.

Theory of operation
-------------------
One Python process is one core, so production runs several workers (Sōzu's model). The main
process serves the command socket and keeps the authoritative :class:`ConfigState`; each
worker (``pysozu/worker_process.py``) is a ``Worker`` with one channel: a socketpair to the
main process.

* **Listeners** are bound once, here, when a listener is activated, and each worker gets
  the socket itself with its ACTIVATE_LISTENER request (SCM_RIGHTS on the channel, see
  ``reactor/channel.py``). Every worker accepts from the same queue, and a worker that stops
  (soft stop, upgrade) closes only its copy: nothing queued is lost, nothing is refused.
* **Fan-out**: a request from a client is checked against the state, sent to every worker
  under its own id, and answered when every worker answered: OK when all did, otherwise a
  FAILURE naming each worker that refused and why. The state takes the request when at
  least one worker did, so a request that every worker refuses changes nothing. Requests
  go to workers in the order they arrived (a channel is a stream) and one at a time per
  client.
* **Queries** (STATUS, QUERY_METRICS...) go to every worker too; their answers are merged:
  counters and gauges summed, each worker's part kept under ``workers``.
* **Workers that die** are replaced: a new process gets the current state (its requests,
  the listening sockets with them). Clients of other workers see nothing; a worker that
  keeps dying is restarted at most once a second.
* **Reload** (RELOAD_CONFIGURATION, ``pysozu reload``, SIGHUP) reads the configuration file
  again and sends only the difference; a file that does not load changes nothing.
* **Upgrade** (UPGRADE_WORKERS, ``pysozu upgrade``): new workers start on the installed code
  and get the state and the sockets; then the old ones get SOFT_STOP and drain.
* **Events** of every worker go to the clients that sent SUBSCRIBE_EVENTS, tagged with the
  worker's id.
* **Signals**: SIGTERM soft stop, SIGINT and SIGQUIT hard stop, SIGHUP reload; the PID file
  (``pid_file_path``) and the command socket file are removed on the way out.

The loop is a ``selectors`` loop over the command socket, its clients, the worker channels
and a wakeup pipe for signals: the main process does no proxying, so it needs nothing more.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pysozu.reactor.channel import FrameDecoder, FrameError, encode_frame
from pysozu.reactor.server import bind_listener, listen_command_socket

from .command import (
    CommandError,
    Request,
    failure,
    make_request,
    ok,
    parse_address,
    processing,
    request_or_failure,
)
from .config import ConfigError, FileConfig, load_config
from .state import ConfigState, StateError

log = logging.getLogger("pysozu.main")

#: requests the main process answers itself
_MAIN_ONLY = frozenset({"LIST_WORKERS", "LIST_FRONTENDS", "SUBSCRIBE_EVENTS",
                        "RELOAD_CONFIGURATION", "UPGRADE_WORKERS", "SAVE_STATE", "LOAD_STATE",
                        "SOFT_STOP", "HARD_STOP"})
#: requests that change nothing: fanned out, answers merged, the state untouched
_QUERIES = frozenset({"STATUS", "LIST_LISTENERS", "QUERY_CLUSTERS_HASHES",
                      "QUERY_CLUSTER_BY_ID", "QUERY_CLUSTERS_BY_DOMAIN",
                      "QUERY_CERTIFICATES_FROM_WORKERS", "QUERY_HEALTH_CHECKS",
                      "QUERY_MAX_CONNECTIONS_PER_IP", "QUERY_METRICS"})
_LISTENER_ADDS = frozenset({"ADD_TCP_LISTENER", "ADD_HTTP_LISTENER", "ADD_HTTPS_LISTENER"})
#: requests for which the main process binds the listening socket before the workers hear
_BINDS = _LISTENER_ADDS | {"ACTIVATE_LISTENER"}
#: requests a worker applies without the state knowing them (logging, metrics settings)
_UNSTATED = frozenset({"LOGGING", "CONFIGURE_METRICS"})

Reply = Callable[[dict[str, Any]], None]


class WorkerProcess:
    """One worker: its process and the main side of its channel."""

    def __init__(self, main: MainProcess, worker_id: int) -> None:
        self.main = main
        self.id = worker_id
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = json.dumps(dataclasses.asdict(main.config.server))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pysozu", "worker", "--channel-fd", str(theirs.fileno()),
             "--id", str(worker_id), "--server-config", config],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.decoder = FrameDecoder(main.config.server.max_command_buffer_size)
        #: sub-request id → callback with the worker's final answer
        self.pending: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.alive = True
        self.stopping = False
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict[str, Any], callback: Callable[[dict[str, Any]], None] | None,
             fds: list[int] | None = None) -> None:
        """Send one request (blocking: a worker reads its channel at every loop pass); a
        worker that cannot take it in time is treated as dead."""
        if callback is not None:
            self.pending[message["id"]] = callback
        data = encode_frame(message)
        try:
            self.sock.settimeout(self.main.config.server.worker_timeout)
            if fds:
                sent = socket.send_fds(self.sock, [data], fds)
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            else:
                self.sock.sendall(data)
        except OSError as e:
            log.error("worker %d does not take requests (%s): replacing it", self.id, e)
            self.main.worker_died(self)

    def read(self) -> list[dict[str, Any] | FrameError]:
        try:
            data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self.main.worker_died(self)
            return []
        return self.decoder.feed(data)

    def fail_pending(self, why: str) -> None:
        pending, self.pending = self.pending, {}
        for sub_id, callback in pending.items():
            callback(failure(sub_id, why))

    def close(self) -> None:
        self.alive = False
        try:
            self.sock.close()
        except OSError:
            pass


class Scrape:
    """A connection to the Prometheus endpoint: one GET, one answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""


class Client:
    """A connection on the command socket."""

    def __init__(self, sock: socket.socket, max_frame: int,
                 blocked: Callable[[Client], None] | None = None) -> None:
        sock.setblocking(False)
        self.sock = sock
        #: called when answers are left over (the socket is full): watch for writability
        self.blocked = blocked
        self.decoder = FrameDecoder(max_frame)
        self.out = bytearray()
        self.subscribed = False
        self.closed = False
        #: requests waiting for the one in flight (answered in order)
        self.queue: deque[dict[str, Any]] = deque()
        self.busy = False

    def write(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        self.out += encode_frame(message)
        self.flush()

    def flush(self) -> None:
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                if self.blocked is not None:
                    self.blocked(self)
                return
            except OSError:
                self.closed = True
                return
            del self.out[:n]


class MainProcess:
    """See the module docstring."""

    def __init__(self, config: FileConfig, config_path: str | None) -> None:
        self.config = config
        self.config_path = config_path
        self.count = max(1, config.server.worker_count)
        self.state = ConfigState()
        self.sockets: dict[str, socket.socket] = {}  # listening sockets by address
        self.workers: dict[int, WorkerProcess] = {}
        self.retiring: dict[int, WorkerProcess] = {}  # old workers draining (upgrade)
        self.ids = itertools.count(0)
        self.sub_ids = itertools.count(1)
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.listener: socket.socket | None = None
        self.running = True
        self.stopping: str | None = None  # "soft" or "hard" once a stop began
        self.stop_replies: list[tuple[Client, str]] = []
        self.last_restart = 0.0
        #: when to start the workers that replace dead ones (monotonic times, in order)
        self.respawns: deque[float] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._signals: deque[int] = deque()
        self.prometheus: socket.socket | None = None

    # -- start ------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen on the command socket, load the configuration into the state (binding
        its active listeners), start the workers. ``OSError``: the command socket;
        ``ValueError``: the configuration."""
        server = self.config.server
        self.listener = listen_command_socket(server.command_socket, backlog=64)
        self.selector.register(self.listener, selectors.EVENT_READ, "command")
        for request in self.config.requests:
            self._apply_to_state(request)
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        if server.metrics_prometheus_address:
            try:
                self.prometheus = bind_listener(
                    parse_address(server.metrics_prometheus_address), backlog=64)
            except OSError as e:
                raise ValueError(f"cannot serve Prometheus metrics on "
                                 f"{server.metrics_prometheus_address}: {e.strerror or e}"
                                 ) from None
            self.selector.register(self.prometheus, selectors.EVENT_READ, "prometheus")
        if server.pid_file_path:
            with open(server.pid_file_path, "w", encoding="ascii") as f:
                f.write(f"{os.getpid()}\n")
        for _ in range(self.count):
            self._spawn()

    def _apply_to_state(self, request: Request) -> None:
        if request.type in _BINDS and (request.type == "ACTIVATE_LISTENER"
                                       or request.fields.get("active")):
            try:
                self._bind(request["address"])
            except OSError as e:
                raise ValueError(f"{request.type} {request.id}: cannot listen on "
                                 f"{request['address']}: {e.strerror or e}") from None
        self.state.apply(request)

    def _bind(self, address: str) -> socket.socket:
        sock = self.sockets.get(address)
        if sock is None:
            sock = bind_listener(parse_address(address))
            self.sockets[address] = sock
        return sock

    def _unbind(self, address: str) -> None:
        sock = self.sockets.pop(address, None)
        if sock is not None:
            sock.close()

    def _active_addresses(self) -> set[str]:
        return {address for listeners in self.state.list_listeners().values()
                for address, fields in listeners.items() if fields.get("active")}

    def _spawn(self, on_ready: Callable[[WorkerProcess], None] | None = None) -> WorkerProcess:
        """Start a worker and send it the state; ``on_ready`` once it took all of it."""
        worker = WorkerProcess(self, next(self.ids))
        self.workers[worker.id] = worker
        self.selector.register(worker.sock, selectors.EVENT_READ, worker)
        requests = self.state.generate_requests(f"W{worker.id}-INIT")
        left = len(requests)

        def answered(answer: dict[str, Any]) -> None:
            nonlocal left
            if answer.get("status") == "PROCESSING":
                return
            if answer.get("status") != "OK":
                log.error("worker %d refused %s: %s", worker.id, answer.get("id"),
                          answer.get("message"))
            left -= 1
            if left == 0 and on_ready is not None:
                on_ready(worker)

        for request in requests:
            self._send_to(worker, request, answered)
        if not requests and on_ready is not None:
            on_ready(worker)
        log.info("worker %d started (pid %d)", worker.id, worker.pid)
        return worker

    def _send_to(self, worker: WorkerProcess, request: Request,
                 callback: Callable[[dict[str, Any]], None] | None) -> None:
        message = request.to_dict()
        message["id"] = f"{request.id}#{next(self.sub_ids)}"
        fds = None
        if request.type == "ACTIVATE_LISTENER" or (
                request.type in _LISTENER_ADDS and request.fields.get("active")):
            sock = self.sockets.get(request["address"])
            if sock is not None:
                if request.type == "ACTIVATE_LISTENER":
                    message["from_scm"] = True
                fds = [sock.fileno()]
        worker.send(message, callback, fds)

    # -- loop -------------------------------------------------------------------------------
    def run(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno())
        old = {sig: signal.signal(sig, self._on_signal)
               for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                           signal.SIGCHLD)}
        try:
            while self.running:
                timeout = 1.0
                if self.respawns:
                    timeout = min(timeout, max(0.0, self.respawns[0] - time.monotonic()))
                for key, mask in self.selector.select(timeout=timeout):
                    if mask & selectors.EVENT_WRITE and isinstance(key.data, Client):
                        self._client_writable(key.data)
                    if mask & selectors.EVENT_READ:
                        self._ready(key.data, key.fileobj)
                self._handle_signals()
                self._reap()
                while self.respawns and self.respawns[0] <= time.monotonic():
                    self.respawns.popleft()
                    if not self.stopping:
                        self._spawn()
                if self.stopping and not self.workers and not self.retiring:
                    self.running = False
        finally:
            signal.set_wakeup_fd(-1)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            if signum == signal.SIGTERM:
                log.info("SIGTERM: soft stop")
                self.stop("soft")
            elif signum in (signal.SIGINT, signal.SIGQUIT):
                log.info("hard stop")
                self.stop("hard")
            elif signum == signal.SIGHUP:
                log.info("SIGHUP: reloading %s", self.config_path)
                error = self.reload(self.config_path, lambda answer: None)
                if error:
                    log.error("reload refused: %s", error)

    def _ready(self, data: Any, fileobj: Any) -> None:
        if data == "command":
            self._accept()
        elif data == "wake":
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
        elif data == "prometheus":
            self._accept_scrape()
        elif isinstance(data, Scrape):
            self._scrape_ready(data)
        elif isinstance(data, WorkerProcess):
            for message in data.read():
                self._from_worker(data, message)
        elif isinstance(data, Client):
            self._from_client(data)

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            client = Client(sock, self.config.server.max_command_buffer_size,
                            self._client_blocked)
            self.clients[sock.fileno()] = client
            self.selector.register(sock, selectors.EVENT_READ, client)

    def _from_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop_client(client)
            return
        for message in client.decoder.feed(data):
            if isinstance(message, FrameError):
                client.write({"id": message.id, "status": "FAILURE",
                              "message": message.message, "content": None})
                continue
            client.queue.append(message)
        self._next(client)
        client.flush()

    def _client_blocked(self, client: Client) -> None:
        """A client does not read its answers as fast as they come: wait until it can."""
        if not client.closed:
            try:
                self.selector.modify(client.sock,
                                     selectors.EVENT_READ | selectors.EVENT_WRITE, client)
            except (KeyError, ValueError):
                pass  # dropped meanwhile

    def _client_writable(self, client: Client) -> None:
        client.flush()
        if not client.out and not client.closed:
            try:
                self.selector.modify(client.sock, selectors.EVENT_READ, client)
            except (KeyError, ValueError):
                pass

    def _drop_client(self, client: Client) -> None:
        client.closed = True
        try:
            self.selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        self.clients.pop(client.sock.fileno(), None)
        client.sock.close()

    def _next(self, client: Client) -> None:
        """Handle the client's queued requests one at a time, in order."""
        while client.queue and not client.busy and not client.closed:
            message = client.queue.popleft()
            client.busy = True

            def done(answer: dict[str, Any], client: Client = client) -> None:
                client.write(answer)
                if answer.get("status") != "PROCESSING":
                    client.busy = False
                    self._next(client)

            self.handle(message, done, client)

    # -- Prometheus --------------------------------------------------------------------------
    def _accept_scrape(self) -> None:
        assert self.prometheus is not None
        try:
            sock, _ = self.prometheus.accept()
        except OSError:
            return
        sock.setblocking(False)
        scrape = Scrape(sock)
        self.selector.register(sock, selectors.EVENT_READ, scrape)

    def _scrape_ready(self, scrape: Scrape) -> None:
        try:
            data = scrape.sock.recv(8192)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        scrape.buf += data
        if not data or len(scrape.buf) > 16384:
            self._end_scrape(scrape, None)
            return
        if b"\r\n\r\n" not in scrape.buf:
            return
        self.selector.unregister(scrape.sock)
        line = scrape.buf.split(b"\r\n", 1)[0].split()
        if len(line) < 2 or line[0] != b"GET" or line[1].split(b"?")[0] not in (b"/metrics",
                                                                              b"/"):
            self._end_scrape(scrape, (404, "not found: GET /metrics\n"))
            return

        def answered(answer: dict[str, Any]) -> None:
            if answer.get("status") != "OK":
                self._end_scrape(scrape, (503, f"{answer.get('message', '')}\n"))
                return
            self._end_scrape(scrape, (200, prometheus_text(
                answer.get("content") or {}, self.config.server.metrics_prefix)))

        self._fan_out(make_request("PROMETHEUS", "QUERY_METRICS"), answered, merge=True)

    def _end_scrape(self, scrape: Scrape, answer: tuple[int, str] | None) -> None:
        sock = scrape.sock
        if answer is not None:
            status, body = answer
            data = body.encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; version=0.0.4"
                    f"\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n")
            try:
                sock.settimeout(self.config.server.worker_timeout)
                sock.sendall(head.encode() + data)
            except OSError:
                pass
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    # -- requests ---------------------------------------------------------------------------
    def handle(self, message: dict[str, Any], reply: Reply, client: Client | None) -> None:
        request = request_or_failure(message)
        if isinstance(request, dict):
            reply(request)
            return
        kind = request.type
        if kind in _MAIN_ONLY:
            self._main_request(request, reply, client)
        elif kind in _QUERIES:
            self._fan_out(request, reply, merge=True)
        else:
            if self.stopping:
                reply(failure(request.id, "the proxy is stopping"))
                return
            if kind not in _UNSTATED:
                try:
                    self.state.check(request)
                except (StateError, CommandError, ValueError) as e:
                    reply(failure(request.id, str(e)))
                    return
                if kind == "ACTIVATE_LISTENER" or (kind in _LISTENER_ADDS
                                                   and request.fields.get("active")):
                    try:
                        self._bind(request["address"])
                    except OSError as e:
                        reply(failure(request.id, f"cannot listen on {request['address']}: "
                                      f"{e.strerror or e}"))
                        return
            self._fan_out(request, reply, merge=False)

    def _fan_out(self, request: Request, reply: Reply, *, merge: bool) -> None:
        workers = list(self.workers.values())
        if not workers:
            reply(failure(request.id, "no worker is running"))
            return
        answers: dict[int, dict[str, Any]] = {}

        def collect(worker: WorkerProcess) -> Callable[[dict[str, Any]], None]:
            def got(answer: dict[str, Any]) -> None:
                if answer.get("status") == "PROCESSING":
                    return
                answers[worker.id] = answer
                if len(answers) == len(workers):
                    self._answered(request, workers, answers, reply, merge)
            return got

        for worker in workers:
            self._send_to(worker, request, collect(worker))

    def _answered(self, request: Request, workers: list[WorkerProcess],
                  answers: dict[int, dict[str, Any]], reply: Reply, merge: bool) -> None:
        failed = {wid: a for wid, a in answers.items() if a.get("status") != "OK"}
        if not merge and len(failed) < len(answers) and request.type not in _UNSTATED:
            try:
                self.state.apply(request)
            except (StateError, CommandError, ValueError) as e:
                log.error("state refused %s after workers took it: %s", request.type, e)
        if len(failed) == len(answers) and request.type in _BINDS \
                and request["address"] not in self._active_addresses():
            self._unbind(request["address"])  # bound for nothing: every worker refused
        if request.type in ("REMOVE_LISTENER", "DEACTIVATE_LISTENER") and not failed:
            self._unbind(request["address"])
        if failed:
            why = "; ".join(f"worker {wid}: {a.get('message', '')}"
                            for wid, a in sorted(failed.items()))
            reply(failure(request.id, why))
            return
        first = answers[workers[0].id]
        if request.type == "STATUS":
            first = {**first, "message": f"main process running, {len(workers)} workers"}
        if not merge:
            reply(ok(request.id, first.get("message", ""), first.get("content")))
            return
        contents = {str(wid): answers[wid].get("content") for wid in sorted(answers)}
        merged = _merge(request, contents)
        if request.type == "STATUS" and isinstance(merged, dict):
            merged["state_hash"] = self.state.hash()  # the main process's: the authority
        reply(ok(request.id, first.get("message", ""), merged))

    def _main_request(self, request: Request, reply: Reply, client: Client | None) -> None:
        kind = request.type
        if kind == "LIST_WORKERS":
            reply(ok(request.id, "", {"workers": [
                {"id": w.id, "pid": w.pid, "run_state": "RUNNING"}
                for w in self.workers.values()] + [
                {"id": w.id, "pid": w.pid, "run_state": "STOPPING"}
                for w in self.retiring.values()]}))
        elif kind == "LIST_FRONTENDS":
            reply(ok(request.id, "", {"http": self.state.http_frontends,
                                      "https": self.state.https_frontends,
                                      "tcp": list(self.state.tcp_frontends.values())}))
        elif kind == "SUBSCRIBE_EVENTS":
            if client is not None:
                client.subscribed = True
            reply(ok(request.id, "subscribed to the events of every worker"))
        elif kind == "SAVE_STATE":
            try:
                count = self.state.save(request["path"])
            except OSError as e:
                reply(failure(request.id, f"cannot save the state: {e.strerror or e}"))
                return
            reply(ok(request.id, f"saved {count} requests to {request['path']}"))
        elif kind == "LOAD_STATE":
            try:
                requests = ConfigState.load(request["path"])
                target = ConfigState.from_requests(requests)
            except (OSError, StateError, CommandError, ValueError) as e:
                reply(failure(request.id, f"cannot load the state: {e}"))
                return
            self._apply_diff(request.id, self.state.diff(target, f"{request.id}-LOAD"), reply,
                             f"loaded {len(requests)} requests from {request['path']}")
        elif kind == "RELOAD_CONFIGURATION":
            error = self.reload(request["path"] or self.config_path,
                                lambda answer: reply({**answer, "id": request.id}))
            if error:
                reply(failure(request.id, error))
        elif kind == "UPGRADE_WORKERS":
            self.upgrade(request.id, reply)
        elif kind in ("SOFT_STOP", "HARD_STOP"):
            if client is not None:
                self.stop_replies.append((client, request.id))
            reply(processing(request.id, "soft stop: draining connections"
                             if kind == "SOFT_STOP" else "hard stop"))
            self.stop("soft" if kind == "SOFT_STOP" else "hard")

    def reload(self, path: str | None, reply: Reply) -> str | None:
        """Read the configuration again and send the difference; an error message when the
        file does not load (nothing changed)."""
        if path is None:
            return "no configuration file to reload (pysozu start ran without -c)"
        try:
            config = load_config(path)
            target = ConfigState.from_requests(config.requests)
        except (ConfigError, StateError, CommandError, ValueError, OSError) as e:
            return f"the configuration was not reloaded: {e}"
        self._apply_diff("RELOAD", self.state.diff(target, "RELOAD"), reply)
        return None

    def _apply_diff(self, request_id: str, requests: list[Request], reply: Reply,
                    done: str = "") -> None:
        """Send ``requests`` one after the other; answer once all went through."""
        queue = deque(requests)
        errors: list[str] = []

        def step(answer: dict[str, Any] | None = None) -> None:
            if answer is not None and answer.get("status") == "FAILURE":
                errors.append(answer.get("message", ""))
            if not queue:
                if errors:
                    reply(failure(request_id, "; ".join(errors)))
                else:
                    reply(ok(request_id, done or f"{len(requests)} changes applied"))
                return
            self.handle(queue.popleft().to_dict(), step, None)

        step()

    def upgrade(self, request_id: str, reply: Reply) -> None:
        """New workers on the installed code first; once every one of them holds the whole
        state (and so accepts), the old ones stop accepting and drain."""
        old = dict(self.workers)
        for worker in old.values():
            self.retiring[worker.id] = worker
            worker.stopping = True
        self.workers = {}
        waiting = self.count

        def ready(worker: WorkerProcess) -> None:
            nonlocal waiting
            waiting -= 1
            if waiting:
                return
            for retired in old.values():
                if retired.alive:
                    self._send_to(retired, make_request(f"{request_id}-STOP", "SOFT_STOP"),
                                  None)
            reply(ok(request_id, f"{len(self.workers)} new workers serving; "
                     f"{len(old)} old ones draining"))

        for _ in range(self.count):
            self._spawn(ready)

    def stop(self, how: str) -> None:
        if self.stopping == "hard" or (self.stopping == how):
            return
        self.stopping = how
        kind = "SOFT_STOP" if how == "soft" else "HARD_STOP"
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            _unlink(self.config.server.command_socket)
        for address in list(self.sockets):  # no new client: connecting is refused at once
            self._unbind(address)
        for worker in [*self.workers.values(), *self.retiring.values()]:
            worker.stopping = True
            self._send_to(worker, make_request(f"MAIN-{kind}", kind), None)

    # -- workers ----------------------------------------------------------------------------
    def _from_worker(self, worker: WorkerProcess, message: dict[str, Any] | FrameError) -> None:
        if isinstance(message, FrameError):
            log.error("worker %d sent a bad frame: %s", worker.id, message.message)
            return
        if message.get("id") == "EVENT":
            event = {**message, "worker": worker.id}
            for client in list(self.clients.values()):
                if client.subscribed:
                    client.write(event)
            return
        sub_id = message.get("id")
        callback = worker.pending.get(sub_id) if isinstance(sub_id, str) else None
        if callback is None:
            return
        if message.get("status") != "PROCESSING":
            del worker.pending[sub_id]  # type: ignore[arg-type]
        callback(message)

    def worker_died(self, worker: WorkerProcess) -> None:
        if not worker.alive:
            return
        try:
            self.selector.unregister(worker.sock)
        except (KeyError, ValueError):
            pass
        worker.close()
        worker.fail_pending(f"worker {worker.id} exited")
        self.workers.pop(worker.id, None)
        self.retiring.pop(worker.id, None)
        if worker.stopping or self.stopping:
            log.info("worker %d stopped", worker.id)
            return
        log.error("worker %d (pid %d) died: starting another", worker.id, worker.pid)
        if self.config.server.worker_automatic_restart:
            # at most one restart a second: a worker that dies at once must not make a fork
            # loop (the loop starts it when due, see ``run``)
            due = max(time.monotonic(), self.last_restart + 1.0)
            self.last_restart = due
            self.respawns.append(due)

    def _reap(self) -> None:
        for worker in [*self.workers.values(), *self.retiring.values()]:
            if worker.proc.poll() is not None:
                self.worker_died(worker)
        if self.stopping and not self.workers and not self.retiring:
            for client, request_id in self.stop_replies:
                client.write(ok(request_id, "workers stopped"))
            self.stop_replies.clear()

    def close(self) -> None:
        for worker in [*self.workers.values(), *self.retiring.values()]:
            if worker.proc.poll() is None:
                worker.proc.kill()
            worker.proc.wait()
            worker.close()
        for client in list(self.clients.values()):
            client.flush()
            self._drop_client(client)
        for sock in self.sockets.values():
            sock.close()
        if self.listener is not None:
            self.listener.close()
            _unlink(self.config.server.command_socket)
        if self.config.server.pid_file_path:
            _unlink(self.config.server.pid_file_path)
        if self.prometheus is not None:
            self.prometheus.close()
            self.prometheus = None
        self.selector.close()


def _merge(request: Request, contents: dict[str, Any]) -> Any:
    """One answer for a query every worker answered: for STATUS and QUERY_METRICS the sums
    a single worker's answer would have (QUERY_METRICS with ``workers``: each worker's own
    instead), for the others the first worker's, with each one's under ``workers``."""
    kind = request.type
    first = next(iter(contents.values()))
    if kind == "QUERY_METRICS":
        if request.fields.get("workers"):
            return {"workers": contents}
        if request.fields.get("list"):
            return {"metric_names": sorted({name for c in contents.values()
                                            if isinstance(c, dict)
                                            for name in c.get("metric_names", [])})}
    if kind == "STATUS" and all(isinstance(c, dict) for c in contents.values()):
        merged = {k: v for k, v in first.items() if k not in ("worker_id", "pid")}
        merged["sessions"] = sum(c.get("sessions", 0) for c in contents.values())
        merged["buffers_in_use"] = sum(c.get("buffers_in_use", 0) for c in contents.values())
        merged["metrics"] = _sum_metrics([c.get("metrics") or {} for c in contents.values()])
        merged["workers"] = contents
        return merged
    if kind == "QUERY_METRICS" and all(isinstance(c, dict) for c in contents.values()):
        return _sum_metrics(list(contents.values()))
    if isinstance(first, dict):
        return {**first, "workers": contents}
    return first


def _prom_name(prefix: str, name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in f"{prefix}_{name}")
    return cleaned if not cleaned[:1].isdigit() else f"_{cleaned}"


def _prom_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
               for k, v in sorted(labels.items()))
    return "{" + ",".join(escaped) + "}"


def prometheus_text(metrics: dict[str, Any], prefix: str = "sozu") -> str:
    """The merged QUERY_METRICS of every worker in Prometheus's text exposition format:
    counters, gauges, and each histogram as a summary (its quantiles are the highest
    worker's, see ``_sum_metrics``); cluster and backend metrics carry those as labels."""
    families: dict[str, tuple[str, list[str]]] = {}

    def sample(name: str, kind: str, labels: dict[str, str], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        family = families.setdefault(_prom_name(prefix, name), (kind, []))
        family[1].append(f"{_prom_name(prefix, name)}{_prom_labels(labels)} {value}")

    def summary(name: str, labels: dict[str, str], data: dict[str, Any]) -> None:
        base = _prom_name(prefix, name)
        _, lines = families.setdefault(base, ("summary", []))
        for key, value in data.items():
            if key.startswith("p") and key[1:].replace(".", "", 1).isdigit():
                quantile = str(float(key[1:]) / 100)
                lines.append(f"{base}{_prom_labels({**labels, 'quantile': quantile})} {value}")
        lines.append(f"{base}_sum{_prom_labels(labels)} {data.get('sum', 0)}")
        lines.append(f"{base}_count{_prom_labels(labels)} {data.get('count', 0)}")

    def scoped(values: dict[str, Any], labels: dict[str, str]) -> None:
        for name, value in sorted(values.items()):
            if isinstance(value, dict) and value.keys() >= _SUMMARY:
                summary(name, labels, value)
            else:
                sample(name, "counter", labels, value)  # scoped values are counters

    for name, value in sorted((metrics.get("counters") or {}).items()):
        sample(name, "counter", {}, value)
    for name, value in sorted((metrics.get("gauges") or {}).items()):
        sample(name, "gauge", {}, value)
    for name, value in sorted((metrics.get("histograms") or {}).items()):
        if isinstance(value, dict):
            summary(name, {}, value)
    for cluster_id, cluster in sorted((metrics.get("clusters") or {}).items()):
        if not isinstance(cluster, dict):
            continue
        scoped(cluster.get("metrics") or {}, {"cluster": cluster_id})
        for backend_id, values in sorted((cluster.get("backends") or {}).items()):
            if isinstance(values, dict):
                scoped(values, {"cluster": cluster_id, "backend": backend_id})
    out: list[str] = []
    for name, (kind, lines) in families.items():
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)
    return "\n".join(out) + "\n"


_SUMMARY = frozenset({"count", "sum", "min", "max", "mean"})


def _sum_metrics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters and gauges summed key by key, recursively. A histogram summary (``count``,
    ``sum``, ``min``, ``max``, ``mean``, ``pNN``) merges as such: counts and sums add up,
    min and max are the extremes, the mean is recomputed, and each percentile is the highest
    worker's (an upper bound: the buckets stay in the workers)."""
    dicts = [p for p in parts if isinstance(p, dict)]
    if dicts and all(p.keys() >= _SUMMARY for p in dicts):
        count = sum(p["count"] for p in dicts)
        total = sum(p["sum"] for p in dicts)
        merged: dict[str, Any] = {"count": count, "sum": total,
                                  "min": min(p["min"] for p in dicts),
                                  "max": max(p["max"] for p in dicts),
                                  "mean": total / count if count else 0}
        for key in dicts[0]:
            if key not in _SUMMARY:
                merged[key] = max(p.get(key, 0) for p in dicts)
        return merged
    out: dict[str, Any] = {}
    for part in dicts:
        for key, value in part.items():
            if key == "workers":
                continue
            seen = out.get(key)
            if isinstance(value, dict):
                out[key] = _sum_metrics([seen, value]) if isinstance(seen, dict) else value
            elif isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and isinstance(seen, (int, float)):
                out[key] = seen + value
            elif seen is None:
                out[key] = value
    return out


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
