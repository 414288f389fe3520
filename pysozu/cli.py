"""The ``pysozu`` command line: start a proxy, or drive a running one.

Theory of operation
-------------------
``pysozu start`` is the only verb that runs a proxy: it reads a configuration (a TOML file,
or the built-in default), builds a :class:`~pysozu.worker.Worker`, opens its command socket,
replays the configuration's requests through ``Worker.apply`` (the very requests a client
could send, so a file and a live reconfiguration take the same path), optionally starts a
demo HTTP backend, and runs the loop in the main thread until a stop.

Every other verb is a *client*: it connects to the command socket of a running proxy, sends
one or a few requests in the channel's wire format (see ``pysozu.reactor.channel``), and
prints the answers. So the CLI holds no state of its own and can do nothing a user's script
could not do with :class:`~pysozu.reactor.channel.Channel`; the worker validates every
request and its FAILURE message is what the user sees.

Exit status: 0 when every request was answered OK, 1 on a FAILURE answer or an error that is
not the user's command line (unreachable socket, bad configuration file, address in use),
2 on a usage error (argparse). Errors are one line, ``pysozu: error: <message>`` on stderr,
never a traceback.

Signals (``start``): SIGINT asks for a soft stop (stop accepting, let connections finish), a
second SIGINT for a hard stop; SIGTERM for a hard stop. The handlers only queue the stop with
``Server.call_soon``: the loop is single-threaded and must never be changed from inside a
signal handler, which can interrupt it anywhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from pysozu.command import (
    LOAD_BALANCING_ALGORITHMS,
    LOAD_METRICS,
    PROXY_PROTOCOL_CONFIGS,
    Request,
    parse_address,
)
from pysozu.config import ConfigError, FileConfig, default_config, load_config
from pysozu.reactor.channel import Channel, ChannelError
from pysozu.reactor.server import Server
from pysozu.worker import RequestFailed, Worker

__all__ = ["DEFAULT_SOCKET", "DEFAULT_TIMEOUT", "CliError", "build_parser", "main"]

PROG = "pysozu"
#: Where clients look for the command socket when neither -s nor -c is given; it is also the
#: ``command_socket`` of the built-in configuration, so ``pysozu start`` and ``pysozu status``
#: run from the same directory find each other.
DEFAULT_SOCKET = "./pysozu.sock"
#: Seconds a client waits for an answer (a soft stop waits for the connections to drain, so
#: ``stop`` waits without limit unless --timeout is given).
DEFAULT_TIMEOUT = 10.0
_UNLIMITED = 10.0**7  # a socket timeout must be finite; this is four months

log = logging.getLogger("pysozu.cli")

_LOG_LEVELS = {
    "trace": logging.DEBUG,  # Sōzu's most verbose level
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,  # Sōzu's spelling
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class CliError(Exception):
    """An error shown as ``pysozu: error: <message>``; the command exits with status 1."""


# --------------------------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value > _UNLIMITED:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (got {text})")
    return value


def _uint(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative (got {value})")
    return value


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"a tag is KEY=VALUE (got {text!r})")
    return key, value


def _choice(choices: Sequence[str]) -> Callable[[str], str]:
    """An argparse type accepting enum names in any case (``round_robin``)."""

    def convert(text: str) -> str:
        upper = text.upper().replace("-", "_")
        if upper not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(choices)})"
            )
        return upper

    return convert


def _client_options() -> argparse.ArgumentParser:
    """Options every client verb accepts, before or after the verb.

    Their defaults are SUPPRESS so that a value given before the verb is not overwritten by
    the sub-parser's default; ``_client`` fills in the real defaults.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection options")
    group.add_argument(
        "-s",
        "--socket",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="command socket of the running proxy (default: the command_socket of the "
        f"--config file if given, else {DEFAULT_SOCKET})",
    )
    group.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="configuration file of the running proxy (only its command_socket is used)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print every response as raw JSON, one object per line",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=argparse.SUPPRESS,
        help=f"how long to wait for each answer (default {DEFAULT_TIMEOUT:g}; "
        "`stop` waits without limit)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    common = _client_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="Start a pysozu proxy, or reconfigure a running one through its "
        "command socket.",
        epilog="Run `pysozu VERB --help` for the options of each verb.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def leaf(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Callable[[Client, argparse.Namespace], int],
        help_text: str,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler, subparser=sub)
        return sub

    def branch(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        return sub.add_subparsers(dest=f"{name}_verb", metavar="VERB", required=True)

    # start ---------------------------------------------------------------------------------
    start = verbs.add_parser(
        "start",
        help="run a proxy in the foreground",
        description="Run a proxy in the foreground until `pysozu stop`, Ctrl-C (soft stop; "
        "twice: hard stop) or SIGTERM (hard stop). Without -c, the built-in configuration "
        "proxies 127.0.0.1:8080 to a demo HTTP backend on 127.0.0.1:8081.",
    )
    start.add_argument(
        "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML configuration"
    )
    start.add_argument(
        "--log-level",
        type=str.lower,
        choices=list(_LOG_LEVELS),
        default=None,
        help="log level (default: the configuration's log_level, info)",
    )
    start.set_defaults(run=_start)

    # status / stop -------------------------------------------------------------------------
    leaf(verbs, "status", _cmd_status, "show the worker's status and metrics")
    stop = leaf(verbs, "stop", _cmd_stop, "stop the proxy (soft: let connections finish)")
    stop.add_argument("--hard", action="store_true", help="close every connection at once")

    # state ---------------------------------------------------------------------------------
    state = branch("state", "inspect, save and load the whole configuration state")
    leaf(state, "list", _cmd_state_list, "list listeners and clusters")
    leaf(state, "hashes", _cmd_state_hashes, "show each cluster's configuration hash")
    save = leaf(state, "save", _cmd_state_save, "save the state to a file (on the proxy's host)")
    save.add_argument("path", metavar="PATH")
    load = leaf(state, "load", _cmd_state_load, "replay a saved state file")
    load.add_argument("path", metavar="PATH")

    # cluster -------------------------------------------------------------------------------
    cluster = branch("cluster", "add, remove or show clusters")
    add = leaf(cluster, "add", _cmd_cluster_add, "add a cluster (re-adding replaces it)")
    add.add_argument("cluster_id", metavar="ID")
    add.add_argument(
        "--load-balancing",
        type=_choice(LOAD_BALANCING_ALGORITHMS),
        metavar="|".join(LOAD_BALANCING_ALGORITHMS),
        help="default ROUND_ROBIN",
    )
    add.add_argument("--load-metric", type=_choice(LOAD_METRICS), metavar="|".join(LOAD_METRICS))
    add.add_argument(
        "--proxy-protocol",
        type=_choice(PROXY_PROTOCOL_CONFIGS),
        metavar="|".join(PROXY_PROTOCOL_CONFIGS),
    )
    add.add_argument("--sticky-session", action="store_true")
    remove = leaf(cluster, "remove", _cmd_cluster_remove, "remove a cluster")
    remove.add_argument("cluster_id", metavar="ID")
    show = leaf(cluster, "show", _cmd_cluster_show, "show a cluster, its frontends and backends")
    show.add_argument("cluster_id", metavar="ID")

    # backend -------------------------------------------------------------------------------
    backend = branch("backend", "add or remove backends")
    add = leaf(backend, "add", _cmd_backend_add, "add a backend to a cluster")
    add.add_argument("cluster_id", metavar="CLUSTER")
    add.add_argument("backend_id", metavar="BACKEND_ID")
    add.add_argument("address", metavar="ADDRESS", help="host:port")
    add.add_argument("--weight", type=int, metavar="N", help="load-balancing weight")
    add.add_argument("--backup", action="store_true", help="only used when no other is up")
    add.add_argument("--sticky-id", metavar="S")
    remove = leaf(backend, "remove", _cmd_backend_remove, "remove a backend from a cluster")
    remove.add_argument("cluster_id", metavar="CLUSTER")
    remove.add_argument("backend_id", metavar="BACKEND_ID")
    remove.add_argument("address", metavar="ADDRESS")

    # listener ------------------------------------------------------------------------------
    listener = branch("listener", "manage TCP listeners")

    def listener_options(sub: argparse.ArgumentParser, update: bool) -> None:
        if update:
            sub.add_argument(
                "--expect-proxy",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="expect a PROXY protocol header from clients",
            )
        else:
            sub.add_argument(
                "--expect-proxy",
                action="store_true",
                help="expect a PROXY protocol header from clients",
            )
        sub.add_argument("--public-address", metavar="A")
        for name in ("front", "back", "connect"):
            sub.add_argument(f"--{name}-timeout", type=_uint, metavar="N", help="seconds")

    add = leaf(listener, "add", _cmd_listener_add, "add a TCP listener and activate it")
    add.add_argument("address", metavar="ADDRESS")
    listener_options(add, update=False)
    add.add_argument("--inactive", action="store_true", help="add it without listening")
    update = leaf(listener, "update", _cmd_listener_update, "change a TCP listener's options")
    update.add_argument("address", metavar="ADDRESS")
    listener_options(update, update=True)
    update.set_defaults(check=_check_listener_update)
    for name, handler, text in (
        ("remove", _cmd_listener_remove, "remove a listener"),
        ("activate", _cmd_listener_activate, "start listening"),
        ("deactivate", _cmd_listener_deactivate, "stop accepting (open connections go on)"),
    ):
        leaf(listener, name, handler, text).add_argument("address", metavar="ADDRESS")
    leaf(listener, "list", _cmd_listener_list, "list listeners")

    # frontend ------------------------------------------------------------------------------
    frontend = branch("frontend", "route a TCP listener to a cluster")
    add = leaf(frontend, "add", _cmd_frontend_add, "route a listener's address to a cluster")
    add.add_argument("cluster_id", metavar="CLUSTER")
    add.add_argument("address", metavar="ADDRESS")
    add.add_argument(
        "--tag", type=_tag, action="append", default=[], metavar="KEY=VALUE", dest="tags"
    )
    remove = leaf(frontend, "remove", _cmd_frontend_remove, "remove a TCP frontend")
    remove.add_argument("cluster_id", metavar="CLUSTER")
    remove.add_argument("address", metavar="ADDRESS")
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pysozu")
    except Exception:  # not installed: running from a checkout
        return "unknown"


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (argparse exits 2 on usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check: Callable[[argparse.Namespace], None] | None = getattr(args, "check", None)
    if check is not None:  # usage checks argparse cannot express, before any connection
        check(args)
    try:
        run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
        if run is not None:
            return run(args)
        with _client(args) as client:
            handler: Callable[[Client, argparse.Namespace], int] = args.handler
            return handler(client, args)
    except CliError as e:
        _error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``pysozu state list | head -1``): stop quietly, and keep
        # the interpreter from failing again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# start
# --------------------------------------------------------------------------------------------


def _start(args: argparse.Namespace) -> int:
    path = getattr(args, "config", None)
    try:
        config = load_config(path) if path is not None else default_config()
    except ConfigError as e:
        raise CliError(str(e)) from None
    server_config = config.server
    log_handler = _setup_logging(
        args.log_level or server_config.log_level, server_config.log_target
    )
    try:
        return _serve(config)
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()


def _serve(config: FileConfig) -> int:
    server_config = config.server
    socket_path = server_config.command_socket
    worker = Worker(server_config)
    demos: list[DemoBackend] = []
    previous: dict[int, Any] = {}
    try:
        try:
            worker.listen_command_socket(socket_path)
        except OSError as e:
            raise CliError(
                f"cannot listen on the command socket {socket_path}: {e.strerror or e}"
            ) from None
        try:
            worker.apply(config.requests)
        except RequestFailed as e:
            raise CliError(f"the configuration was refused: {e}") from None
        if config.demo_backend:
            for address in _backend_addresses(config.requests):
                try:
                    demos.append(DemoBackend(address))
                except OSError as e:
                    raise CliError(
                        f"cannot start the demo backend on {address}: {e.strerror or e}"
                    ) from None
        previous = _install_signal_handlers(worker.server)
        _print_banner(worker, config, demos)
        worker.run()
        log.info("worker stopped")
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for demo in demos:
            demo.close()
        worker.server.close()  # also removes the command socket file


def _setup_logging(level_name: str, target: str) -> logging.Handler:
    """Log where the configuration says (Sōzu's ``log_level`` and ``log_target``); return the
    handler so that ``main`` can remove it (``main`` may run more than once in a process)."""
    level = _LOG_LEVELS.get(level_name.split(",")[0].strip().lower())
    if level is None:
        raise CliError(f"unknown log level {level_name!r} (choose from {', '.join(_LOG_LEVELS)})")
    handler: logging.Handler
    if target == "stdout":
        handler = logging.StreamHandler(sys.stdout)
    elif target == "stderr":
        handler = logging.StreamHandler(sys.stderr)
    elif target.startswith("file://"):
        try:
            handler = logging.FileHandler(target.removeprefix("file://"))
        except OSError as e:
            raise CliError(f"cannot open the log file {target}: {e.strerror or e}") from None
    else:
        raise CliError(
            f"log_target {target!r} is not supported (use stdout, stderr or file://PATH)"
        )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def _install_signal_handlers(server: Server) -> dict[int, Any]:
    """SIGINT: soft stop, then hard stop; SIGTERM: hard stop. Returns the old handlers.

    The handlers only queue work with ``call_soon`` (which is signal-safe): they may run in
    the middle of any loop step, where changing sessions or listeners would corrupt them.
    """
    interrupts = 0

    def notice(message: str) -> Callable[[], None]:
        def show() -> None:
            print(message, file=sys.stderr, flush=True)

        return show

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            server.call_soon(notice(f"{PROG}: soft stop (Ctrl-C again for a hard stop)"))
            server.call_soon(server.soft_stop)
        else:
            server.call_soon(notice(f"{PROG}: hard stop"))
            server.call_soon(server.hard_stop)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        server.call_soon(server.hard_stop)

    return {
        signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm),
    }


def _backend_addresses(requests: list[Request]) -> list[str]:
    """The distinct backend addresses of the configuration, in order.

    ``demo_backend`` is a server-wide switch, so the demo answers on every backend address
    the configuration names (the built-in configuration has exactly one).
    """
    addresses: list[str] = []
    for request in requests:
        if request.type == "ADD_BACKEND" and request["address"] not in addresses:
            addresses.append(request["address"])
    return addresses


def _print_banner(worker: Worker, config: FileConfig, demos: list[DemoBackend]) -> None:
    out = sys.stdout
    state = worker.state
    frontends = state.tcp_frontends
    print(f"{PROG} {_version()} running, pid {os.getpid()}", file=out)
    print(f"  command socket: {os.path.abspath(config.server.command_socket)}", file=out)
    try_address: str | None = None
    demo_addresses = {d.address for d in demos}
    for address, fields in state.tcp_listeners.items():
        listener = worker.server.listeners.get(address)
        bound = listener.bound_address if listener is not None else None
        shown = bound or address
        front = frontends.get(address)
        route = ""
        if front is not None:
            cluster_id = front["cluster_id"]
            backends = [b["address"] for b in state.backends(cluster_id)]
            route = f" -> cluster {cluster_id} ({', '.join(backends) or 'no backend yet'})"
            if try_address is None and demo_addresses.intersection(backends):
                try_address = shown
        status = "active" if fields["active"] else "inactive"
        print(f"  tcp listener {shown}{route}, {status}", file=out)
    for demo in demos:
        print(f"  demo HTTP backend on {demo.address}", file=out)
    if try_address is not None:
        print(f"try: curl http://{try_address}/", file=out)
    print("stop: Ctrl-C (soft stop; twice: hard stop) or `pysozu stop`", file=out)
    out.flush()


class DemoBackend:
    """A tiny HTTP/1.1 server in a daemon thread, so the default proxy has something to reach.

    It is a convenience for trying pysozu out (``demo_backend = true``), not part of the
    proxy: it runs outside the reactor, on the standard library's threading HTTP server.
    """

    def __init__(self, address: str) -> None:
        host, port = parse_address(address)
        self.address = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.httpd = _DemoServer((host, port), family, address)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"pysozu-demo-{address}",
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5.0)


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sockaddr: tuple[str, int], family: int, address: str) -> None:
        self.address_family = family
        self.backend_address = address
        super().__init__(sockaddr, _DemoHandler)


class _DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so several requests share a proxied connection
    server_version = "pysozu-demo"

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        backend = getattr(self.server, "backend_address", "?")
        body = (
            f"Hello from pysozu! GET {self.path} was proxied to the demo backend {backend}.\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("demo backend: %s - %s", self.address_string(), format % args)


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


class Client:
    """A connection to a running proxy, and how to show its answers.

    ``call`` sends one request and returns its final answer; with ``--json`` every answer
    (PROCESSING ones included) is printed as it arrives, and the verb's own text is not.
    A FAILURE answer raises :class:`CliError` with the worker's message.
    """

    def __init__(self, path: str, timeout: float | None, as_json: bool) -> None:
        self.path = path
        self.timeout = timeout
        self.as_json = as_json
        try:
            self.channel = Channel.connect(path, timeout=timeout or DEFAULT_TIMEOUT)
        except OSError as e:
            raise CliError(
                f"cannot reach the proxy at {path}: {e.strerror or e}; is `pysozu start` running?"
            ) from None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()

    def call(
        self,
        request_type: str,
        *,
        wait: float | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Send a request and return its final (OK) answer."""
        timeout = self.timeout or wait or DEFAULT_TIMEOUT
        try:
            request_id = self.channel.send({"type": request_type, **fields})
            while True:
                answer: dict[str, Any] = self.channel.read_response(request_id, timeout)
                if self.as_json:
                    self.emit_json(answer)
                if answer.get("status") == "PROCESSING":
                    if on_progress is not None:
                        on_progress(answer)
                    continue
                break
        except ChannelError as e:
            raise CliError(f"no answer from the proxy at {self.path}: {e}") from None
        except OSError as e:
            raise CliError(f"lost the proxy at {self.path}: {e.strerror or e}") from None
        if answer.get("status") != "OK":
            raise CliError(str(answer.get("message") or f"{request_type} failed"))
        return answer

    def emit_json(self, answer: dict[str, Any]) -> None:
        print(json.dumps(answer, ensure_ascii=False), flush=True)

    def say(self, text: str) -> None:
        """Print human-readable output (nothing with --json)."""
        if not self.as_json:
            print(text, flush=True)


def _client(args: argparse.Namespace) -> Client:
    path: str | None = getattr(args, "socket", None)
    if path is None:
        config_path = getattr(args, "config", None)
        if config_path is not None:
            try:
                path = load_config(config_path).server.command_socket
            except ConfigError as e:
                raise CliError(str(e)) from None
        else:
            path = DEFAULT_SOCKET
    return Client(path, getattr(args, "timeout", None), getattr(args, "json", False))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _pretty(value: Any, indent: int = 0) -> list[str]:
    """Render nested dicts and lists as indented ``key: value`` lines."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        if not value:
            return [f"{pad}(none)"]
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_pretty(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                sub = _pretty(item, indent + 1)
                lines.append(f"{pad}- {sub[0].strip()}")
                lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return "(none)"
    return str(value)


def _listener_lines(content: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, listeners in sorted(content.items()):
        kind = key.removesuffix("_listeners").upper()
        lines.append(f"{kind} listeners ({len(listeners)}):")
        for address, config in listeners.items():
            words = ["active" if config.get("active") else "inactive"]
            bound = config.get("bound_address")
            if bound and bound != address:
                words.append(f"bound to {bound}")
            if config.get("expect_proxy"):
                words.append("expects PROXY protocol")
            if config.get("public_address"):
                words.append(f"public address {config['public_address']}")
            words.append(
                "timeouts front {}s, back {}s, connect {}s".format(
                    config.get("front_timeout"),
                    config.get("back_timeout"),
                    config.get("connect_timeout"),
                )
            )
            lines.append(f"  {address}  " + ", ".join(words))
    if not lines:
        lines.append("no listeners")
    return lines


def _cluster_lines(cluster_id: str, info: dict[str, Any], hash_value: int | None) -> list[str]:
    config = info.get("configuration", {})
    head = f"cluster {cluster_id}: {config.get('load_balancing', '?')}"
    if config.get("load_metric"):
        head += f" ({config['load_metric']})"
    if config.get("proxy_protocol"):
        head += f", PROXY protocol {config['proxy_protocol']}"
    if config.get("sticky_session"):
        head += ", sticky sessions"
    if hash_value is not None:
        head += f", hash {hash_value}"
    lines = [head]
    frontends = info.get("tcp_frontends", [])
    for front in frontends:
        tags = front.get("tags") or {}
        tag_text = " " + " ".join(f"{k}={v}" for k, v in tags.items()) if tags else ""
        lines.append(f"  frontend {front['address']}{tag_text}")
    if not frontends:
        lines.append("  no frontend")
    backends = info.get("backends", [])
    for back in backends:
        words = [f"  backend {back['backend_id']} {back['address']}"]
        weight = (back.get("load_balancing_parameters") or {}).get("weight")
        if weight is not None:
            words.append(f"weight {weight}")
        if back.get("backup"):
            words.append("backup")
        if back.get("sticky_id"):
            words.append(f"sticky id {back['sticky_id']}")
        lines.append(", ".join(words))
    if not backends:
        lines.append("  no backend")
    return lines


# --------------------------------------------------------------------------------------------
# Client verbs
# --------------------------------------------------------------------------------------------


def _cmd_status(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("STATUS")
    client.say(answer.get("message") or "OK")
    content = answer.get("content")
    if isinstance(content, dict):
        listeners = content.get("listeners")
        if isinstance(listeners, dict):
            content["listeners"] = {
                a: "active" if on else "inactive" for a, on in listeners.items()
            }
        client.say("\n".join(_pretty(content, 1)))
    return 0


def _cmd_stop(client: Client, args: argparse.Namespace) -> int:
    def progress(answer: dict[str, Any]) -> None:
        client.say(answer.get("message") or "stopping")

    request_type = "HARD_STOP" if args.hard else "SOFT_STOP"
    answer = client.call(request_type, wait=_UNLIMITED, on_progress=progress)
    client.say(answer.get("message") or "stopped")
    return 0


def _cmd_state_list(client: Client, args: argparse.Namespace) -> int:
    listeners = client.call("LIST_LISTENERS")["content"] or {}
    hashes = (client.call("QUERY_CLUSTERS_HASHES")["content"] or {}).get("cluster_hashes", {})
    lines = _listener_lines(listeners)
    lines.append(f"clusters ({len(hashes)}):")
    for cluster_id, hash_value in hashes.items():
        info = client.call("QUERY_CLUSTER_BY_ID", cluster_id=cluster_id)["content"] or {}
        lines.extend("  " + line for line in _cluster_lines(cluster_id, info, hash_value))
    client.say("\n".join(lines))
    return 0


def _cmd_state_hashes(client: Client, args: argparse.Namespace) -> int:
    hashes = (client.call("QUERY_CLUSTERS_HASHES")["content"] or {}).get("cluster_hashes", {})
    client.say("\n".join(f"{k} {v}" for k, v in hashes.items()) or "no clusters")
    return 0


def _cmd_state_save(client: Client, args: argparse.Namespace) -> int:
    # The proxy writes the file from its own working directory: send an absolute path so the
    # file lands where the user means.
    answer = client.call("SAVE_STATE", path=os.path.abspath(args.path))
    client.say(answer.get("message") or f"state saved to {args.path}")
    return 0


def _cmd_state_load(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("LOAD_STATE", path=os.path.abspath(args.path))
    client.say(answer.get("message") or f"state loaded from {args.path}")
    return 0


def _cmd_cluster_add(client: Client, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {"cluster_id": args.cluster_id}
    if args.load_balancing:
        fields["load_balancing"] = args.load_balancing
    if args.load_metric:
        fields["load_metric"] = args.load_metric
    if args.proxy_protocol:
        fields["proxy_protocol"] = args.proxy_protocol
    if args.sticky_session:
        fields["sticky_session"] = True
    answer = client.call("ADD_CLUSTER", **fields)
    client.say(answer.get("message") or f"cluster {args.cluster_id} added")
    return 0


def _cmd_cluster_remove(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("REMOVE_CLUSTER", cluster_id=args.cluster_id)
    client.say(answer.get("message") or f"cluster {args.cluster_id} removed")
    return 0


def _cmd_cluster_show(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("QUERY_CLUSTER_BY_ID", cluster_id=args.cluster_id)
    client.say("\n".join(_cluster_lines(args.cluster_id, answer["content"] or {}, None)))
    return 0


def _cmd_backend_add(client: Client, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {
        "cluster_id": args.cluster_id,
        "backend_id": args.backend_id,
        "address": args.address,
    }
    if args.weight is not None:
        fields["load_balancing_parameters"] = {"weight": args.weight}
    if args.backup:
        fields["backup"] = True
    if args.sticky_id is not None:
        fields["sticky_id"] = args.sticky_id
    answer = client.call("ADD_BACKEND", **fields)
    client.say(
        answer.get("message")
        or f"backend {args.backend_id} ({args.address}) added to cluster {args.cluster_id}"
    )
    return 0


def _cmd_backend_remove(client: Client, args: argparse.Namespace) -> int:
    answer = client.call(
        "REMOVE_BACKEND",
        cluster_id=args.cluster_id,
        backend_id=args.backend_id,
        address=args.address,
    )
    client.say(
        answer.get("message")
        or f"backend {args.backend_id} ({args.address}) removed from cluster {args.cluster_id}"
    )
    return 0


def _listener_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"address": args.address}
    if args.expect_proxy is not None:
        fields["expect_proxy"] = args.expect_proxy
    if args.public_address is not None:
        fields["public_address"] = args.public_address
    for name in ("front_timeout", "back_timeout", "connect_timeout"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    return fields


def _cmd_listener_add(client: Client, args: argparse.Namespace) -> int:
    # One request (``active`` set) rather than ADD then ACTIVATE: the worker binds the socket
    # as part of adding and drops the listener if that fails, so a busy port leaves nothing
    # half-configured behind.
    fields = _listener_fields(args)
    fields["active"] = not args.inactive
    answer = client.call("ADD_TCP_LISTENER", **fields)
    if args.inactive:
        text = f"TCP listener {args.address} added (inactive)"
    else:
        bound = (answer.get("content") or {}).get("bound_address") or args.address
        text = f"TCP listener {args.address} added, listening on {bound}"
    client.say(answer.get("message") or text)
    return 0


def _check_listener_update(args: argparse.Namespace) -> None:
    if len(_listener_fields(args)) == 1:
        subparser: argparse.ArgumentParser = args.subparser
        subparser.error("nothing to update: give at least one option")


def _cmd_listener_update(client: Client, args: argparse.Namespace) -> int:
    fields = _listener_fields(args)
    answer = client.call("UPDATE_TCP_LISTENER", **fields)
    client.say(answer.get("message") or f"TCP listener {args.address} updated")
    return 0


def _cmd_listener_remove(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("REMOVE_LISTENER", address=args.address, proxy="TCP")
    client.say(answer.get("message") or f"TCP listener {args.address} removed")
    return 0


def _cmd_listener_activate(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("ACTIVATE_LISTENER", address=args.address, proxy="TCP")
    bound = (answer.get("content") or {}).get("bound_address") or args.address
    client.say(answer.get("message") or f"TCP listener {args.address} listening on {bound}")
    return 0


def _cmd_listener_deactivate(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("DEACTIVATE_LISTENER", address=args.address, proxy="TCP")
    client.say(answer.get("message") or f"TCP listener {args.address} deactivated")
    return 0


def _cmd_listener_list(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("LIST_LISTENERS")
    client.say("\n".join(_listener_lines(answer["content"] or {})))
    return 0


def _cmd_frontend_add(client: Client, args: argparse.Namespace) -> int:
    answer = client.call(
        "ADD_TCP_FRONTEND", cluster_id=args.cluster_id, address=args.address, tags=dict(args.tags)
    )
    client.say(answer.get("message") or f"frontend {args.address} -> cluster {args.cluster_id}")
    return 0


def _cmd_frontend_remove(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("REMOVE_TCP_FRONTEND", cluster_id=args.cluster_id, address=args.address)
    client.say(answer.get("message") or f"frontend {args.address} removed")
    return 0
