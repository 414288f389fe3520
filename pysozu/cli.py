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

Each verb that sends one request builds it with a *request builder* (``args.request``), a
pure function of the parsed arguments; :func:`request_for` exposes that mapping, so what a
command line sends is testable, and inspectable, without a proxy.  Options only meaningful
for HTTP (``--hostname``, ``--sticky-name``…) need ``--protocol http`` (or its short form
``--http``) and are refused otherwise, so a forgotten ``--http`` never silently makes a TCP
frontend; ``--protocol https`` (``--https``) takes them too, plus the TLS options, which are
refused without it.

Certificates travel as PEM text (Sōzu's ``CertificateAndKey``): ``--certificate``, ``--key``
and ``--certificate-chain`` name files that the *client* reads and checks (a certificate and
its matching key) before it connects, since the proxy may not see the client's files; an
unreadable file or bad PEM is an error (status 1) and nothing is sent.

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
import datetime
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
    DEFAULT_STICKY_NAME,
    H2_LISTENER_FIELDS,
    HEADER_POSITIONS,
    LOAD_BALANCING_ALGORITHMS,
    LOAD_METRICS,
    PATH_RULE_KINDS,
    PROXY_PROTOCOL_CONFIGS,
    REDIRECT_POLICIES,
    REDIRECT_SCHEMES,
    RULE_POSITIONS,
    CommandError,
    Request,
    check_fingerprint,
    check_h2_field,
    parse_address,
)
from pysozu.config import (
    ConfigError,
    FileConfig,
    default_config,
    load_config,
    normalise_tls_version,
)
from pysozu.protocols.certificates import (
    CertificateError,
    parse_certificate,
    split_certificate_chain,
)
from pysozu.reactor.channel import Channel, ChannelError
from pysozu.reactor.server import Server, format_sockaddr
from pysozu.state import StateError
from pysozu.worker import RequestFailed, Worker, tune_gc_for_serving

__all__ = [
    "DEFAULT_SOCKET",
    "DEFAULT_TIMEOUT",
    "CliError",
    "build_parser",
    "main",
    "request_for",
]

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

#: Builds the request of a client verb from its arguments: ``(type, fields)``.
RequestBuilder = Callable[[argparse.Namespace], tuple[str, dict[str, Any]]]
_Verb = Callable[["Client", argparse.Namespace], int]

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


def _answer(text: str) -> tuple[str, str]:
    """``CODE=TEMPLATE``; a relative ``file://`` path is made absolute, since the proxy (which
    reads it) may run in another folder."""
    code, sep, template = text.partition("=")
    if not sep or not code:
        raise argparse.ArgumentTypeError(f"an answer is CODE=TEMPLATE (got {text!r})")
    if template.startswith("file://"):
        path = template.removeprefix("file://")
        if path and not os.path.isabs(path):
            template = "file://" + os.path.abspath(path)
    return code, template


def _header(text: str) -> dict[str, str]:
    """``POSITION:KEY=VALUE``, a header edit of an HTTP frontend (empty VALUE: delete)."""
    position, sep, rest = text.partition(":")
    key, eq, value = rest.partition("=")
    upper = position.upper()
    if not sep or not eq or not key or upper not in HEADER_POSITIONS:
        raise argparse.ArgumentTypeError(
            "a header edit is POSITION:KEY=VALUE with POSITION request, response or both "
            f"(got {text!r})"
        )
    return {"position": upper, "key": key, "val": value}


def _add_answer_option(group: Any) -> None:
    """``--answer CODE=TEMPLATE``, shared by clusters and HTTP listeners."""
    group.add_argument(
        "--answer",
        type=_answer,
        action="append",
        default=[],
        dest="answers",
        metavar="CODE=TEMPLATE",
        help="replace a default answer: inline text or file://PATH (repeatable)",
    )


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
        description="Run a proxy in the foreground: a main process and `worker_count` "
        "worker processes (default: one per CPU), until `pysozu stop`, SIGTERM (soft stop), "
        "Ctrl-C or SIGQUIT (hard stop); SIGHUP reloads the configuration file. With "
        "worker_count = 0, one process is main and worker, and Ctrl-C is a soft stop (twice: "
        "hard). Without -c, the built-in configuration (one worker) proxies 127.0.0.1:8080 to "
        "two demo HTTP backends on 127.0.0.1:8081 and 8082.",
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

    # main process ---------------------------------------------------------------------------
    reload = leaf(verbs, "reload", _cmd_reload,
                  "re-read the configuration file and apply only what changed")
    reload.add_argument("--file", metavar="FILE", default=None,
                        help="another configuration file (default: the one it started with)")
    leaf(verbs, "upgrade", _cmd_upgrade,
         "start workers on the installed code, then let the old ones drain")
    leaf(verbs, "workers", _cmd_workers, "list the worker processes")

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
    add = leaf(
        cluster,
        "add",
        _cmd_cluster_add,
        "add a cluster (re-adding replaces its whole configuration, health check included)",
    )
    add.set_defaults(request=_cluster_add_request)
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
    add.add_argument(
        "--max-connections-per-ip",
        type=_uint,
        metavar="N",
        help="connections per client IP, over the global limit (0: unlimited)",
    )
    add.add_argument("--retry-after", type=_uint, metavar="SECONDS", help="of a 429 answer")
    http = add.add_argument_group("HTTP cluster options")
    http.add_argument(
        "--https-redirect", action="store_true", help="redirect plain HTTP requests to HTTPS"
    )
    http.add_argument("--https-redirect-port", type=_uint, metavar="PORT")
    http.add_argument("--max-body-size", type=_uint, metavar="BYTES",
                      help="largest request body, over the listener's (0: unlimited)")
    _add_answer_option(http)
    http.add_argument("--http2", action="store_true", help="the backends speak HTTP/2 (h2c)")
    http.add_argument(
        "--authorized-hash",
        action="append",
        default=[],
        dest="authorized_hashes",
        metavar="USER:SHA256",
        help="a basic-auth credential for frontends with --required-auth (repeatable)",
    )
    http.add_argument("--www-authenticate", metavar="REALM", help="the basic-auth realm")
    tls = add.add_argument_group("TLS to the backends (HTTP clusters; any option turns it on)")
    tls.add_argument("--backend-tls", action="store_true",
                     help="speak TLS to the backends, verified against the system CAs")
    tls.add_argument("--backend-tls-no-verify", action="store_true",
                     help="accept any backend certificate")
    tls.add_argument("--backend-tls-ca", metavar="FILE",
                     help="trust the CAs of this PEM file (read by the proxy) instead")
    tls.add_argument("--backend-tls-server-name", metavar="NAME",
                     help="the SNI to send and the name to verify (default: the backend's IP)")
    remove = leaf(cluster, "remove", _cmd_cluster_remove, "remove a cluster")
    remove.set_defaults(request=_cluster_remove_request)
    remove.add_argument("cluster_id", metavar="ID")
    show = leaf(cluster, "show", _cmd_cluster_show, "show a cluster, its frontends and backends")
    show.set_defaults(request=_cluster_show_request)
    show.add_argument("cluster_id", metavar="ID")

    # backend -------------------------------------------------------------------------------
    backend = branch("backend", "add or remove backends")
    add = leaf(backend, "add", _cmd_backend_add, "add a backend to a cluster")
    add.set_defaults(request=_backend_add_request)
    add.add_argument("cluster_id", metavar="CLUSTER")
    add.add_argument("backend_id", metavar="BACKEND_ID")
    add.add_argument("address", metavar="ADDRESS", help="host:port")
    add.add_argument("--weight", type=int, metavar="N", help="load-balancing weight")
    add.add_argument("--backup", action="store_true", help="only used when no other is up")
    add.add_argument("--sticky-id", metavar="S")
    remove = leaf(backend, "remove", _cmd_backend_remove, "remove a backend from a cluster")
    remove.set_defaults(request=_backend_remove_request)
    remove.add_argument("cluster_id", metavar="CLUSTER")
    remove.add_argument("backend_id", metavar="BACKEND_ID")
    remove.add_argument("address", metavar="ADDRESS")

    # listener ------------------------------------------------------------------------------
    listener = branch("listener", "manage TCP, HTTP and HTTPS listeners")

    def listener_options(sub: argparse.ArgumentParser, update: bool) -> None:
        _protocol_option(sub)
        flag: dict[str, Any] = (
            {"action": argparse.BooleanOptionalAction, "default": None}
            if update
            else {"action": "store_true", "default": None}
        )
        sub.add_argument(
            "--expect-proxy", help="expect a PROXY protocol header from clients", **flag
        )
        sub.add_argument("--public-address", metavar="A")
        for name in ("front", "back", "connect"):
            sub.add_argument(f"--{name}-timeout", type=_uint, metavar="N", help="seconds")
        http = sub.add_argument_group("HTTP listener options (with --http or --https)")
        http.add_argument(
            "--request-timeout", type=_uint, metavar="N", help="seconds to receive a request"
        )
        http.add_argument(
            "--sticky-name",
            metavar="COOKIE",
            help=f"sticky session cookie name (default {DEFAULT_STICKY_NAME})",
        )
        _add_answer_option(http)
        http.add_argument("--sozu-id-header", metavar="NAME", help="default Sozu-Id")
        http.add_argument("--elide-x-real-ip", help="drop a client's X-Real-IP header", **flag)
        http.add_argument("--send-x-real-ip", help="send the client's IP as X-Real-IP", **flag)
        http.add_argument("--max-body-size", type=_uint, metavar="BYTES",
                          help="largest request body, 413 beyond it (0: unlimited)")
        _h2_listener_options(sub)
        _tls_listener_options(sub)

    add = leaf(listener, "add", _cmd_listener_add, "add a listener and activate it")
    add.set_defaults(request=_listener_add_request, check=_check_listener)
    add.add_argument("address", metavar="ADDRESS")
    listener_options(add, update=False)
    add.add_argument("--inactive", action="store_true", help="add it without listening")
    update = leaf(listener, "update", _cmd_listener_update, "change a listener's options")
    update.set_defaults(request=_listener_update_request, check=_check_listener_update)
    update.add_argument("address", metavar="ADDRESS")
    listener_options(update, update=True)
    for name, handler, builder, text in (
        ("remove", _cmd_listener_remove, _listener_remove_request, "remove a listener"),
        ("activate", _cmd_listener_activate, _listener_activate_request, "start listening"),
        (
            "deactivate",
            _cmd_listener_deactivate,
            _listener_deactivate_request,
            "stop accepting (open connections go on)",
        ),
    ):
        sub = leaf(listener, name, handler, text)
        sub.set_defaults(request=builder)
        sub.add_argument("address", metavar="ADDRESS")
        _protocol_option(sub)
    leaf(listener, "list", _cmd_listener_list, "list listeners").set_defaults(
        request=_listener_list_request
    )

    # frontend ------------------------------------------------------------------------------
    frontend = branch(
        "frontend", "route a TCP listener, or HTTP or HTTPS requests, to a cluster"
    )

    def frontend_positionals(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "cluster_id",
            metavar="CLUSTER",
            help="the cluster; '-' for none (an HTTP route that only denies or redirects)",
        )
        sub.add_argument("address", metavar="ADDRESS", help="the listener's address")
        _protocol_option(sub)

    add = leaf(frontend, "add", _cmd_frontend_add, "route a listener's traffic to a cluster")
    add.set_defaults(request=_frontend_add_request, check=_check_frontend)
    frontend_positionals(add)
    add.add_argument(
        "--tag", type=_tag, action="append", default=[], metavar="KEY=VALUE", dest="tags"
    )
    _rule_options(add, full=True)
    _hsts_options(add.add_argument_group("HTTPS frontend options (with --https)"), "frontend")
    remove = leaf(frontend, "remove", _cmd_frontend_remove, "remove a frontend")
    remove.set_defaults(request=_frontend_remove_request, check=_check_frontend)
    frontend_positionals(remove)
    _rule_options(remove, full=False)

    # certificate ---------------------------------------------------------------------------
    certificate = branch("certificate", "add, replace, remove or list HTTPS certificates")
    add = leaf(certificate, "add", _cmd_certificate_add, "add a certificate to an HTTPS listener")
    add.set_defaults(request=_certificate_add_request, check=_check_certificate)
    _certificate_options(add)
    replace = leaf(
        certificate, "replace", _cmd_certificate_replace,
        "replace a listener's certificate by another (a renewal)",
    )
    replace.set_defaults(request=_certificate_replace_request, check=_check_certificate)
    replace.add_argument("--old-fingerprint", required=True, type=_fingerprint, metavar="FP",
                         help="the certificate to replace (hex SHA-256, see `certificate list`)")
    _certificate_options(replace)
    remove = leaf(certificate, "remove", _cmd_certificate_remove,
                  "remove a certificate from an HTTPS listener")
    remove.set_defaults(request=_certificate_remove_request)
    remove.add_argument("--address", required=True, metavar="ADDRESS",
                        help="the HTTPS listener's address")
    remove.add_argument("--fingerprint", required=True, type=_fingerprint, metavar="FP")
    listing = leaf(certificate, "list", _cmd_certificate_list,
                   "list the certificates of every HTTPS listener")
    listing.set_defaults(request=_certificate_list_request)
    only = listing.add_mutually_exclusive_group()
    only.add_argument("--domain", metavar="NAME", help="only those serving this name")
    only.add_argument("--fingerprint", type=_fingerprint, metavar="FP",
                      help="only this one, with its PEM certificate and chain")

    # query ---------------------------------------------------------------------------------
    query = branch("query", "ask the proxy about its routing")
    domain = leaf(
        query, "domain", _cmd_query_domain, "show the clusters with an HTTP frontend on a host"
    )
    domain.set_defaults(request=_query_domain_request)
    domain.add_argument("hostname", metavar="HOSTNAME")
    domain.add_argument(
        "--path", metavar="PATH", help="only frontends whose path rule is exactly PATH"
    )

    # metrics / logging ---------------------------------------------------------------------
    metrics = leaf(verbs, "metrics", _cmd_metrics, "query, enable, disable or clear metrics")
    metrics.set_defaults(request=_metrics_request, check=_check_metrics)
    metrics.add_argument("--list", action="store_true", help="list the available metric names")
    metrics.add_argument("--cluster", action="append", default=[], dest="cluster_ids", metavar="ID")
    metrics.add_argument("--backend", action="append", default=[], dest="backend_ids", metavar="ID")
    metrics.add_argument(
        "--metric", action="append", default=[], dest="metric_names", metavar="NAME"
    )
    metrics.add_argument("--no-clusters", action="store_true", help="only proxy-wide metrics")
    metrics.add_argument("--workers", action="store_true", help="each worker's, not merged")
    configure = metrics.add_mutually_exclusive_group()
    for word, value in (("enable", "ENABLED"), ("disable", "DISABLED"), ("clear", "CLEAR")):
        configure.add_argument(
            f"--{word}",
            action="store_const",
            const=value,
            dest="configure",
            help=f"{word} metrics collection" if word != "clear" else "wipe collected metrics",
        )
    logging_verb = leaf(verbs, "logging", _cmd_logging, "change the log level of the proxy")
    logging_verb.set_defaults(request=_logging_request)
    logging_verb.add_argument(
        "filter",
        metavar="LEVEL",
        help="off, error, warn, info, debug or trace, or a Sōzu filter such as "
        "'info,pysozu.worker=debug'",
    )

    # health checks -------------------------------------------------------------------------
    health = branch("health-check", "set, remove or list clusters' active health checks")
    hc_set = leaf(health, "set", _cmd_health_check_set, "probe a cluster's backends over HTTP")
    hc_set.set_defaults(request=_health_check_set_request)
    hc_set.add_argument("cluster_id", metavar="CLUSTER")
    hc_set.add_argument(
        "--uri", required=True, metavar="PATH", help="the probe's path, e.g. /health"
    )
    # --probe-timeout: --timeout is the client's own wait for an answer.
    for name, text in (
        ("interval", "seconds between probes (default 10)"),
        ("probe-timeout", "seconds a probe may take (default 5)"),
        ("healthy-threshold", "successes that make a backend healthy (default 3)"),
        ("unhealthy-threshold", "failures that make a backend unhealthy (default 3)"),
    ):
        hc_set.add_argument(f"--{name}", type=_uint, metavar="N", help=text)
    hc_set.add_argument("--expected-status", type=_uint, metavar="CODE", help="default 0: any 2xx")
    hc_remove = leaf(health, "remove", _cmd_health_check_remove, "stop probing a cluster")
    hc_remove.set_defaults(request=_health_check_remove_request)
    hc_remove.add_argument("cluster_id", metavar="CLUSTER")
    hc_list = leaf(health, "list", _cmd_health_check_list, "show health checks")
    hc_list.set_defaults(request=_health_check_list_request)
    hc_list.add_argument("cluster_id", metavar="CLUSTER", nargs="?")

    # per-IP limit --------------------------------------------------------------------------
    limit = leaf(
        verbs,
        "max-connections-per-ip",
        _cmd_max_connections_per_ip,
        "show or set the global limit of connections per client IP (0: unlimited)",
    )
    limit.set_defaults(request=_max_connections_per_ip_request)
    limit.add_argument("limit", metavar="N", type=_uint, nargs="?", help="the new limit")
    return parser


_PROTOCOLS = ("TCP", "HTTP", "HTTPS")


def _protocol_option(sub: argparse.ArgumentParser) -> None:
    group = sub.add_mutually_exclusive_group()
    group.add_argument(
        "--protocol",
        type=_choice(_PROTOCOLS),
        default="TCP",
        metavar="tcp|http|https",
        help="the listener's protocol (default tcp)",
    )
    for word in ("http", "https"):
        group.add_argument(
            f"--{word}",
            dest="protocol",
            action="store_const",
            const=word.upper(),
            default="TCP",
            help=f"same as --protocol {word}",
        )


def _tls_versions(text: str) -> list[str]:
    """``TLS_V12,TLS_V13``: Sōzu's file spellings or the channel's (``TLS_V1_2``)."""
    try:
        return [normalise_tls_version(word) for word in _names(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(text: str) -> list[str]:
    """A comma-separated list of names (ciphers, groups, ALPN protocols…)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME...] (got {text!r})")
    return names


def _fingerprint(text: str) -> str:
    try:
        return check_fingerprint(text)
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _certificate_file_options(group: Any, required: bool) -> None:
    """``--certificate``, ``--key`` and ``--certificate-chain`` (PEM files read here)."""
    group.add_argument("--certificate", required=required, metavar="FILE",
                       help="PEM certificate (a file of several: the others are its chain)")
    group.add_argument("--key", required=required, metavar="FILE", help="its PEM private key")
    group.add_argument("--certificate-chain", "--chain", metavar="FILE",
                       help="PEM intermediate certificates")


def _hsts_options(group: Any, scope: str) -> None:
    """Sōzu's HSTS policy: ``--hsts``/``--no-hsts`` and its parameters (which imply it)."""
    group.add_argument("--hsts", action=argparse.BooleanOptionalAction, default=None,
                       help="send Strict-Transport-Security (--no-hsts: an explicit off"
                       + (", over the listener's)" if scope == "frontend" else ")"))
    group.add_argument("--hsts-max-age", type=_uint, metavar="SECONDS",
                       help="default 31536000 (a year)")
    for name, text in (("include-subdomains", "add includeSubDomains"),
                       ("preload", "add preload"),
                       ("force-replace-backend", "replace a backend's own header")):
        group.add_argument(f"--hsts-{name}", action="store_true", default=None, help=text)


def _h2_value(name: str) -> Callable[[str], int]:
    """An argparse type for the HTTP/2 field ``name``: an integer within its range."""

    def convert(text: str) -> int:
        value = _uint(text)
        try:
            return check_h2_field(name, value)
        except CommandError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _h2_listener_options(sub: argparse.ArgumentParser) -> None:
    """``--h2c``/``--no-h2c`` and one ``--h2-…`` option per HTTP/2 field (Sōzu's names)."""
    h2 = sub.add_argument_group("HTTP/2 listener options (with --http or --https)")
    h2.add_argument("--h2c", action=argparse.BooleanOptionalAction, default=None,
                    help="serve cleartext HTTP/2 to clients with prior knowledge (default on; "
                    "HTTP listeners)")
    for name, (default, _, _) in H2_LISTENER_FIELDS.items():
        unit = "SECONDS" if name.endswith("_seconds") else "N"
        h2.add_argument("--" + name.replace("_", "-"), type=_h2_value(name), metavar=unit,
                        help=f"default {default}")


def _tls_listener_options(sub: argparse.ArgumentParser) -> None:
    tls = sub.add_argument_group("HTTPS listener options (with --https)")
    tls.add_argument("--tls-versions", type=_tls_versions, metavar="V,V",
                     help="e.g. TLS_V12,TLS_V13 (the default)")
    tls.add_argument("--cipher-list", type=_names, metavar="NAME,...",
                     help="TLS 1.2 ciphers (OpenSSL or rustls names)")
    tls.add_argument("--cipher-suites", type=_names, metavar="NAME,...", help="TLS 1.3 suites")
    tls.add_argument("--signature-algorithms", type=_names, metavar="NAME,...")
    tls.add_argument("--groups", type=_names, dest="groups_list", metavar="NAME,...",
                     help="key exchange groups, e.g. x25519,P-256")
    tls.add_argument("--alpn", type=_names, dest="alpn_protocols", metavar="PROTO,...",
                     help="ALPN protocols, in order of preference (default h2,http/1.1)")
    tls.add_argument("--disable-http11", action=argparse.BooleanOptionalAction, default=None,
                     help="serve HTTP/2 only (needs h2 in --alpn; default off)")
    tls.add_argument("--send-tls13-tickets", type=_uint, metavar="N",
                     help="session tickets per handshake (0: no resumption by ticket)")
    tls.add_argument("--strict-sni-binding", action=argparse.BooleanOptionalAction,
                     default=None, help="421 when Host differs from the SNI (default on)")
    _certificate_file_options(tls, required=False)
    _hsts_options(tls, "listener")


def _certificate_options(sub: argparse.ArgumentParser) -> None:
    """The options of ``certificate add`` and ``certificate replace``."""
    sub.add_argument("--address", required=True, metavar="ADDRESS",
                     help="the HTTPS listener's address")
    _certificate_file_options(sub, required=True)
    sub.add_argument("--names", nargs="+", action="extend", metavar="NAME",
                     help="serve it for these names instead of its own")
    sub.add_argument("--tls-versions", type=_tls_versions, metavar="V,V")
    sub.add_argument("--expired-at", type=_uint, metavar="UNIX_TIME",
                     help="the expiry that ranks it among certificates for a name")


def _rule_options(sub: argparse.ArgumentParser, full: bool) -> None:
    """The options of an HTTP frontend: its rule (all verbs) and its actions (``full``)."""
    sub.add_argument(
        "--hostname",
        metavar="HOST",
        help="http: exact name, *.suffix, * (any) or /regex/ labels; tcp: route on the TLS "
        "server name (SNI passthrough), exact name or *.suffix",
    )
    rule = sub.add_argument_group("HTTP frontend options (with --http)")
    rule.add_argument("--path", metavar="PATH", help="path rule (default: every path)")
    rule.add_argument(
        "--path-type",
        type=_choice(PATH_RULE_KINDS),
        metavar="prefix|regex|equals",
        help="how --path is compared (default prefix)",
    )
    rule.add_argument("--method", metavar="METHOD", help="only this method (default: any)")
    rule.add_argument(
        "--position",
        type=_choice(RULE_POSITIONS),
        metavar="pre|tree|post",
        help="router part: before, in or after the host name tree (default tree)",
    )
    if not full:
        return
    rule.add_argument(
        "--redirect",
        type=_choice(REDIRECT_POLICIES),
        metavar="forward|permanent|found|permanent-redirect|unauthorized",
        help="forward to the cluster (default), answer 301/302/308, or 401",
    )
    rule.add_argument(
        "--redirect-scheme",
        type=_choice(REDIRECT_SCHEMES),
        metavar="use-same|use-http|use-https",
    )
    rule.add_argument("--redirect-template", metavar="TEMPLATE", help="answer of a redirect")
    rule.add_argument("--rewrite-host", metavar="TEMPLATE", help="with $HOST[n] and $PATH[n]")
    rule.add_argument("--rewrite-path", metavar="TEMPLATE", help="with $HOST[n] and $PATH[n]")
    rule.add_argument("--rewrite-port", type=_uint, metavar="PORT")
    rule.add_argument(
        "--required-auth",
        action="store_true",
        default=None,
        help="require HTTP basic auth against the cluster's authorized hashes",
    )
    rule.add_argument(
        "--header",
        type=_header,
        action="append",
        default=[],
        dest="headers",
        metavar="POSITION:KEY=VALUE",
        help="set a request, response or both header; an empty VALUE deletes it (repeatable)",
    )


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
    try:
        if check is not None:  # usage checks argparse cannot express (and files the verb
            check(args)  # reads), before any connection
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


def request_for(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The request a client verb sends, as ``(type, fields)``, built without connecting.

    Usage errors exit as in :func:`main` (``SystemExit`` with status 2); a verb that sends
    several requests or none (``state list``, ``stop``, ``start``) raises :class:`CliError`.
    """
    args = build_parser().parse_args(list(argv))
    check: Callable[[argparse.Namespace], None] | None = getattr(args, "check", None)
    if check is not None:
        check(args)
    builder: RequestBuilder | None = getattr(args, "request", None)
    if builder is None:
        raise CliError(f"`{' '.join(argv)}` does not send one request")
    return builder(args)


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
        if config.server.worker_count >= 1:
            return _serve_main(config, path)
        return _serve(config)
    finally:
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()


def _serve_main(config: FileConfig, path: str | None) -> int:
    """A main process and ``worker_count`` worker processes (``pysozu/main_process.py``)."""
    from types import SimpleNamespace

    from .main_process import MainProcess

    main = MainProcess(config, os.path.abspath(path) if path is not None else None)
    demos: list[DemoBackend] = []
    try:
        try:
            main.start()
        except OSError as e:
            raise CliError(
                f"cannot listen on the command socket {config.server.command_socket}: "
                f"{e.strerror or e}"
            ) from None
        except (StateError, CommandError, ValueError) as e:
            raise CliError(f"the configuration was refused: {e}") from None
        demos += _start_demos(config)
        listeners = {address: SimpleNamespace(bound_address=format_sockaddr(sock.getsockname()))
                     for address, sock in main.sockets.items()}
        view = SimpleNamespace(state=main.state, server=SimpleNamespace(listeners=listeners))
        _print_banner(view, config, demos,  # type: ignore[arg-type]
                      f"{main.count} worker process{'es' if main.count > 1 else ''}; stop: "
                      "`pysozu stop` or SIGTERM (soft), Ctrl-C (hard); reload: SIGHUP or "
                      "`pysozu reload`")
        main.run()
        log.info("main process stopped")
        return 0
    finally:
        for demo in demos:
            demo.close()
        main.close()


def _start_demos(config: FileConfig) -> list[DemoBackend]:
    """The demo backends of ``demo_backend = true``, one per backend address."""
    demos: list[DemoBackend] = []
    if config.demo_backend:
        for address in _backend_addresses(config.requests):
            try:
                demos.append(DemoBackend(address))
            except OSError as e:
                for demo in demos:
                    demo.close()
                raise CliError(
                    f"cannot start the demo backend on {address}: {e.strerror or e}"
                ) from None
    return demos


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
        demos += _start_demos(config)
        previous = _install_signal_handlers(worker.server)
        log.info("HTTP parser backend: %s", _parser_backend())
        _print_banner(worker, config, demos)
        tune_gc_for_serving()
        worker.run()
        log.info("worker stopped")
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for demo in demos:
            demo.close()
        worker.close()  # also removes the command socket file


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


def _print_banner(
    worker: Worker, config: FileConfig, demos: list[DemoBackend],
    stop_hint: str = "stop: Ctrl-C (soft stop; twice: hard stop) or `pysozu stop`",
) -> None:
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
        routes: list[str] = []
        for (front_address, hostname), front in sorted(frontends.items()):
            if front_address != address:
                continue
            cluster_id = front["cluster_id"]
            backends = [b["address"] for b in state.backends(cluster_id)]
            sni = f" {hostname}" if hostname else ""  # SNI passthrough route
            routes.append(
                f"{sni} -> cluster {cluster_id} ({', '.join(backends) or 'no backend yet'})"
            )
            if try_address is None and demo_addresses.intersection(backends):
                try_address = shown
        route = ",".join(routes)
        status = "active" if fields["active"] else "inactive"
        print(f"  tcp listener {shown}{route}, {status}", file=out)
    for scheme, listeners, http_fronts in (
        ("http", state.http_listeners, state.http_frontends),
        ("https", state.https_listeners, state.https_frontends),
    ):
        for address, fields in listeners.items():
            listener = worker.server.listeners.get(address)
            shown = (listener.bound_address if listener is not None else None) or address
            clusters = sorted({f["cluster_id"] for f in http_fronts
                               if f["address"] == address and f.get("cluster_id")})
            backends = [b["address"] for c in clusters for b in state.backends(c)]
            route = f" -> clusters {', '.join(clusters)}" if clusters else ""
            if try_address is None and scheme == "http" and demo_addresses.intersection(backends):
                try_address = shown
            status = "active" if fields["active"] else "inactive"
            print(f"  {scheme} listener {shown}{route}, {status}", file=out)
    for demo in demos:
        print(f"  demo HTTP backend on {demo.address}", file=out)
    print(f"  HTTP parser: {_parser_backend()}", file=out)
    if try_address is not None:
        print(f"try: curl http://{try_address}/", file=out)
    print(stop_hint, file=out)
    out.flush()


def _parser_backend() -> str:
    """Which head scanner serves HTTP: the native one (SIMD or scalar C) or pure Python."""
    from pysozu import native, parser

    if parser.BACKEND == "native":
        return "native (" + ("SSE4.2" if native.SIMD else "scalar C") + ")"
    return "python (pure; build the native scanner with `python -m pysozu.native`)"


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
        if not isinstance(listeners, dict):
            continue
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
            timeouts = "timeouts front {}s, back {}s, connect {}s".format(
                config.get("front_timeout"),
                config.get("back_timeout"),
                config.get("connect_timeout"),
            )
            if config.get("request_timeout") is not None:
                timeouts += f", request {config['request_timeout']}s"
            words.append(timeouts)
            sticky = config.get("sticky_name")
            if sticky and sticky != DEFAULT_STICKY_NAME:
                words.append(f"sticky cookie {sticky}")
            if config.get("answers"):
                words.append("custom answers " + " ".join(sorted(config["answers"])))
            if kind == "HTTP" and config.get("h2c") is False:
                words.append("no h2c")
            words.extend(_h2_words(config))
            if kind == "HTTPS":
                words.extend(_tls_words(config))
            lines.append(f"  {address}  " + ", ".join(words))
    if not lines:
        lines.append("no listeners")
    return lines


def _h2_words(config: dict[str, Any]) -> list[str]:
    """The HTTP/2 fields of a listener that differ from their defaults."""
    changed = [f"{name.removeprefix('h2_')} {config[name]}"
               for name, (default, _, _) in H2_LISTENER_FIELDS.items()
               if config.get(name) is not None and config[name] != default]
    return [f"HTTP/2 {', '.join(changed)}"] if changed else []


def _tls_words(config: dict[str, Any]) -> list[str]:
    """What an HTTPS listener's line shows of its TLS settings (never its key)."""
    versions = [str(v).removeprefix("TLS_V").replace("_", ".") for v in config.get("versions")
                or ()]
    words = [f"TLS {', '.join(versions)}" if versions else "TLS 1.2, 1.3"]
    if config.get("alpn_protocols"):
        words.append(f"ALPN {','.join(config['alpn_protocols'])}")
    if config.get("disable_http11"):
        words.append("HTTP/1.1 disabled")
    if config.get("certificate"):
        words.append("default certificate")
    if config.get("strict_sni_binding") is False:
        words.append("no strict SNI binding")
    hsts = _hsts_text(config.get("hsts"))
    if hsts:
        words.append(hsts)
    return words


def _hsts_text(hsts: Any) -> str | None:
    if not isinstance(hsts, dict):
        return None
    if not hsts.get("enabled"):
        return "HSTS off"
    text = f"HSTS max-age {hsts.get('max_age')}"
    for key, word in (("include_subdomains", "includeSubDomains"), ("preload", "preload")):
        if hsts.get(key):
            text += f" {word}"
    return text


def _http_frontend_text(front: dict[str, Any], scheme: str = "http") -> str:
    path = front.get("path") or {}
    kind, value = path.get("kind", "PREFIX"), path.get("value", "")
    text = f"{scheme} frontend {front.get('hostname')}"
    if value or kind != "PREFIX":
        text += f" path {kind.lower()} {value}"
    words = [f"{text} on {front.get('address')}"]
    if front.get("method"):
        words.append(f"method {front['method']}")
    if front.get("position", "TREE") != "TREE":
        words.append(f"position {front['position']}")
    if front.get("redirect", "FORWARD") != "FORWARD":
        words.append(f"redirect {front['redirect']}")
    if front.get("required_auth"):
        words.append("basic auth")
    if front.get("headers"):
        words.append(f"{len(front['headers'])} header edit(s)")
    hsts = _hsts_text(front.get("hsts"))
    if hsts:
        words.append(hsts)
    tags = front.get("tags") or {}
    if tags:
        words.append(" ".join(f"{k}={v}" for k, v in tags.items()))
    return ", ".join(words)


def _cluster_lines(cluster_id: str, info: dict[str, Any], hash_value: int | None) -> list[str]:
    config = info.get("configuration", {})
    head = f"cluster {cluster_id}: {config.get('load_balancing', '?')}"
    if config.get("load_metric"):
        head += f" ({config['load_metric']})"
    if config.get("proxy_protocol"):
        head += f", PROXY protocol {config['proxy_protocol']}"
    if config.get("sticky_session"):
        head += ", sticky sessions"
    if config.get("https_redirect"):
        head += ", redirects to HTTPS"
    if hash_value is not None:
        head += f", hash {hash_value}"
    lines = [head]
    health = config.get("health_check")
    if health:
        lines.append(
            f"  health check {health.get('uri')} every {health.get('interval')}s "
            f"(timeout {health.get('timeout')}s)"
        )
    http_frontends = info.get("http_frontends", [])
    lines.extend(f"  {_http_frontend_text(front)}" for front in http_frontends)
    https_frontends = info.get("https_frontends") or []
    lines.extend(f"  {_http_frontend_text(front, 'https')}" for front in https_frontends)
    frontends = info.get("tcp_frontends", [])
    for front in frontends:
        tags = front.get("tags") or {}
        tag_text = " " + " ".join(f"{k}={v}" for k, v in tags.items()) if tags else ""
        sni = f" for {front['hostname']}" if front.get("hostname") else ""
        lines.append(f"  frontend {front['address']}{sni}{tag_text}")
    if not frontends and not http_frontends and not https_frontends:
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


def _cmd_reload(client: Client, args: argparse.Namespace) -> int:
    path = os.path.abspath(args.file) if args.file else None
    answer = client.call("RELOAD_CONFIGURATION", path=path, wait=_UNLIMITED)
    client.say(answer.get("message") or "reloaded")
    return 0


def _cmd_upgrade(client: Client, args: argparse.Namespace) -> int:
    answer = client.call("UPGRADE_WORKERS", wait=_UNLIMITED)
    client.say(answer.get("message") or "upgraded")
    return 0


def _cmd_workers(client: Client, args: argparse.Namespace) -> int:
    workers = (client.call("LIST_WORKERS")["content"] or {}).get("workers", [])
    client.say("\n".join(f"worker {w['id']}: pid {w['pid']}, {w['run_state'].lower()}"
                         for w in workers) or "no worker")
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


def _send(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """Send the verb's request (built by ``args.request``) and return its OK answer."""
    builder: RequestBuilder = args.request
    request_type, fields = builder(args)
    return client.call(request_type, **fields)


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The options among ``names`` that the user gave (None: not given), by field name."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# -- clusters and backends --------------------------------------------------------------------


def _cluster_add_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    fields: dict[str, Any] = {"cluster_id": args.cluster_id}
    fields.update(
        _given(
            args,
            "load_balancing",
            "load_metric",
            "proxy_protocol",
            "max_connections_per_ip",
            "retry_after",
            "https_redirect_port",
            "www_authenticate",
            "max_body_size",
        )
    )
    for name in ("sticky_session", "https_redirect", "http2"):
        if getattr(args, name):
            fields[name] = True
    if args.answers:
        fields["answers"] = dict(args.answers)
    if args.authorized_hashes:
        fields["authorized_hashes"] = list(args.authorized_hashes)
    backend_tls: dict[str, Any] = {}
    if args.backend_tls_no_verify:
        backend_tls["verify"] = False
    if args.backend_tls_ca:
        backend_tls["ca_file"] = os.path.abspath(args.backend_tls_ca)  # the proxy's cwd differs
    if args.backend_tls_server_name:
        backend_tls["server_name"] = args.backend_tls_server_name
    if backend_tls or args.backend_tls:
        fields["backend_tls"] = backend_tls
    return "ADD_CLUSTER", fields


def _cluster_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "REMOVE_CLUSTER", {"cluster_id": args.cluster_id}


def _cluster_show_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "QUERY_CLUSTER_BY_ID", {"cluster_id": args.cluster_id}


def _confirming(describe: Callable[[argparse.Namespace], str]) -> _Verb:
    """A verb that sends its request and prints the worker's message, or ``describe(args)``
    when the answer has none."""

    def run(client: Client, args: argparse.Namespace) -> int:
        answer = _send(client, args)
        client.say(answer.get("message") or describe(args))
        return 0

    return run


_cmd_cluster_add = _confirming(lambda args: f"cluster {args.cluster_id} added")


_cmd_cluster_remove = _confirming(lambda args: f"cluster {args.cluster_id} removed")


def _cmd_cluster_show(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say("\n".join(_cluster_lines(args.cluster_id, answer["content"] or {}, None)))
    return 0


def _backend_add_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
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
    return "ADD_BACKEND", fields


def _backend_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "REMOVE_BACKEND", {
        "cluster_id": args.cluster_id,
        "backend_id": args.backend_id,
        "address": args.address,
    }


def _cmd_backend_add(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say(
        answer.get("message")
        or f"backend {args.backend_id} ({args.address}) added to cluster {args.cluster_id}"
    )
    return 0


def _cmd_backend_remove(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say(
        answer.get("message")
        or f"backend {args.backend_id} ({args.address}) removed from cluster {args.cluster_id}"
    )
    return 0


# -- listeners --------------------------------------------------------------------------------

#: Listener options (dest names) that only an HTTP listener has.
_HTTP_LISTENER_OPTIONS = (
    "request_timeout",
    "sticky_name",
    "answers",
    "sozu_id_header",
    "elide_x_real_ip",
    "send_x_real_ip",
    "max_body_size",
    "h2c",
    *H2_LISTENER_FIELDS,
)


#: Options (dest names) that only HTTPS listeners, or frontends (``hsts*``), have.
_HSTS_OPTIONS = (
    "hsts",
    "hsts_max_age",
    "hsts_include_subdomains",
    "hsts_preload",
    "hsts_force_replace_backend",
)
#: the HTTPS listener options sent as the request's fields of the same names
_TLS_SETTING_OPTIONS = (
    "cipher_list",
    "cipher_suites",
    "signature_algorithms",
    "groups_list",
    "alpn_protocols",
    "disable_http11",
    "send_tls13_tickets",
    "strict_sni_binding",
)
_TLS_LISTENER_OPTIONS = (
    "tls_versions",
    *_TLS_SETTING_OPTIONS,
    "certificate",
    "key",
    "certificate_chain",
    *_HSTS_OPTIONS,
)


def _option_flag(name: str) -> str:
    return {
        "answers": "--answer",
        "headers": "--header",
        "tags": "--tag",
        "groups_list": "--groups",
        "alpn_protocols": "--alpn",
    }.get(name, "--" + name.replace("_", "-"))


def _refuse_http_options(args: argparse.Namespace, names: Sequence[str]) -> None:
    """HTTP-only options without --http (or --https) are a usage error, not a TCP request."""
    if args.protocol in ("HTTP", "HTTPS"):
        return
    for name in names:
        if getattr(args, name) not in (None, []):
            subparser: argparse.ArgumentParser = args.subparser
            subparser.error(f"{_option_flag(name)} needs --protocol http (or --http, --https)")


def _refuse_tls_options(args: argparse.Namespace, names: Sequence[str]) -> None:
    """TLS options without --https are a usage error (``--no-…`` forms included)."""
    if args.protocol == "HTTPS":
        return
    for name in names:
        if getattr(args, name, None) not in (None, []):
            subparser: argparse.ArgumentParser = args.subparser
            subparser.error(f"{_option_flag(name)} needs --protocol https (or --https)")


def _hsts_fields(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``hsts`` object of the HSTS options (None: none given)."""
    details = _given(args, "hsts_max_age", "hsts_include_subdomains", "hsts_preload",
                     "hsts_force_replace_backend")
    fields = {name.removeprefix("hsts_"): value for name, value in details.items()}
    if args.hsts is False:
        if fields:
            subparser: argparse.ArgumentParser = args.subparser
            subparser.error("--no-hsts takes no other --hsts-… option")
        return {"enabled": False}
    if args.hsts or fields:
        return {"enabled": True, **fields}
    return None


def _read_pem(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CliError(f"cannot read the {what} file {path}: {reason}") from None


def _certificate_files(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--certificate``, ``--key`` and ``--certificate-chain``, read and checked here (the
    proxy may run on another host): Sōzu's ``CertificateAndKey`` PEM texts, None when none
    is given. Unreadable files or PEM that does not make a certificate and its key raise
    :class:`CliError`, so nothing is sent."""
    given = [name for name in ("certificate", "key", "certificate_chain")
             if getattr(args, name) is not None]
    if not given:
        return None
    if args.certificate is None or args.key is None:
        subparser: argparse.ArgumentParser = args.subparser
        subparser.error(f"{_option_flag(given[0])} needs both --certificate and --key")
    certificates = split_certificate_chain(_read_pem(args.certificate, "certificate"))
    if not certificates:
        raise CliError(f"no PEM certificate in {args.certificate}")
    chain = certificates[1:]  # a "fullchain" file
    if args.certificate_chain is not None:
        linked = split_certificate_chain(_read_pem(args.certificate_chain, "certificate chain"))
        if not linked:
            raise CliError(f"no PEM certificate in {args.certificate_chain}")
        chain.extend(linked)
    key = _read_pem(args.key, "key")
    try:
        parse_certificate(certificates[0], key, chain, getattr(args, "names", None) or ())
    except CertificateError as exc:  # named after the file it is about
        path = getattr(args, exc.part, None) if exc.part != "certificate" else None
        raise CliError(f"{path or args.certificate}: {exc}") from None
    return {"certificate": certificates[0], "certificate_chain": chain, "key": key}


def _check_listener(args: argparse.Namespace) -> None:
    _refuse_http_options(args, _HTTP_LISTENER_OPTIONS)
    _refuse_tls_options(args, _TLS_LISTENER_OPTIONS)
    if args.protocol == "HTTPS":
        args.hsts_fields = _hsts_fields(args)
        args.pem = _certificate_files(args)


def _listener_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"address": args.address}
    fields.update(
        _given(
            args,
            "expect_proxy",
            "public_address",
            "front_timeout",
            "back_timeout",
            "connect_timeout",
        )
    )
    if args.protocol in ("HTTP", "HTTPS"):
        fields.update(
            _given(
                args,
                "request_timeout",
                "sticky_name",
                "sozu_id_header",
                "elide_x_real_ip",
                "send_x_real_ip",
                "max_body_size",
                "h2c",
                *H2_LISTENER_FIELDS,
            )
        )
        if args.answers:
            fields["answers"] = dict(args.answers)
    if args.protocol == "HTTPS":
        fields.update(_given(args, *_TLS_SETTING_OPTIONS))
        if args.tls_versions is not None:
            fields["versions"] = args.tls_versions
        if getattr(args, "hsts_fields", None) is not None:
            fields["hsts"] = args.hsts_fields
        if getattr(args, "pem", None) is not None:
            fields.update(args.pem)
    return fields


def _listener_add_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    # One request (``active`` set) rather than ADD then ACTIVATE: the proxy binds the socket
    # as part of adding and drops the listener if that fails, so a busy port leaves nothing
    # half-configured behind.
    fields = _listener_fields(args)
    fields["active"] = not args.inactive
    return f"ADD_{args.protocol}_LISTENER", fields


def _listener_update_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return f"UPDATE_{args.protocol}_LISTENER", _listener_fields(args)


def _listener_ref(args: argparse.Namespace) -> dict[str, Any]:
    return {"address": args.address, "proxy": args.protocol}


def _listener_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "REMOVE_LISTENER", _listener_ref(args)


def _listener_activate_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "ACTIVATE_LISTENER", _listener_ref(args)


def _listener_deactivate_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "DEACTIVATE_LISTENER", _listener_ref(args)


def _listener_list_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "LIST_LISTENERS", {}


def _cmd_listener_add(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    if args.inactive:
        text = f"{args.protocol} listener {args.address} added (inactive)"
    else:
        bound = (answer.get("content") or {}).get("bound_address") or args.address
        text = f"{args.protocol} listener {args.address} added, listening on {bound}"
    client.say(answer.get("message") or text)
    return 0


def _check_listener_update(args: argparse.Namespace) -> None:
    _check_listener(args)
    if len(_listener_fields(args)) == 1:
        subparser: argparse.ArgumentParser = args.subparser
        subparser.error("nothing to update: give at least one option")


_cmd_listener_update = _confirming(lambda args: f"{args.protocol} listener {args.address} updated")


_cmd_listener_remove = _confirming(lambda args: f"{args.protocol} listener {args.address} removed")


def _cmd_listener_activate(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    bound = (answer.get("content") or {}).get("bound_address") or args.address
    client.say(
        answer.get("message") or f"{args.protocol} listener {args.address} listening on {bound}"
    )
    return 0


_cmd_listener_deactivate = _confirming(
    lambda args: f"{args.protocol} listener {args.address} deactivated"
)


def _cmd_listener_list(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say("\n".join(_listener_lines(answer["content"] or {})))
    return 0


# -- frontends --------------------------------------------------------------------------------

#: Frontend options (dest names) that only an HTTP frontend has (a TCP frontend takes
#: ``--hostname`` too: SNI passthrough).
_HTTP_RULE_OPTIONS = ("path", "path_type", "method", "position")
_HTTP_ACTION_OPTIONS = (
    "redirect",
    "redirect_scheme",
    "redirect_template",
    "rewrite_host",
    "rewrite_path",
    "rewrite_port",
    "required_auth",
    "headers",
)


def _check_frontend(args: argparse.Namespace) -> None:
    subparser: argparse.ArgumentParser = args.subparser
    options = [*_HTTP_RULE_OPTIONS, *(n for n in _HTTP_ACTION_OPTIONS if hasattr(args, n))]
    _refuse_http_options(args, options)
    _refuse_tls_options(args, _HSTS_OPTIONS)
    if args.protocol == "TCP" and args.cluster_id == "-":
        subparser.error("a TCP frontend needs a cluster ('-' is for HTTP routes)")
    if args.protocol != "TCP" and args.hostname is None:
        subparser.error(f"--hostname is required for an {args.protocol} frontend")
    if args.protocol == "HTTPS" and hasattr(args, "hsts"):
        args.hsts_fields = _hsts_fields(args)


def _http_rule(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "address": args.address,
        "hostname": args.hostname,
        "path": {"kind": args.path_type or "PREFIX", "value": args.path or ""},
    }
    if args.cluster_id != "-":
        fields["cluster_id"] = args.cluster_id
    fields.update(_given(args, "method", "position"))
    return fields


def _frontend_add_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.protocol == "TCP":
        return "ADD_TCP_FRONTEND", {
            "cluster_id": args.cluster_id,
            "address": args.address,
            **_given(args, "hostname"),
            "tags": dict(args.tags),
        }
    fields = _http_rule(args)
    fields["tags"] = dict(args.tags)
    fields.update(
        _given(
            args,
            "redirect",
            "redirect_scheme",
            "redirect_template",
            "rewrite_host",
            "rewrite_path",
            "rewrite_port",
            "required_auth",
        )
    )
    if args.headers:
        fields["headers"] = list(args.headers)
    if getattr(args, "hsts_fields", None) is not None:
        fields["hsts"] = args.hsts_fields
    return f"ADD_{args.protocol}_FRONTEND", fields


def _frontend_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.protocol == "TCP":
        return "REMOVE_TCP_FRONTEND", {
            "cluster_id": args.cluster_id,
            "address": args.address,
            **_given(args, "hostname"),
        }
    return f"REMOVE_{args.protocol}_FRONTEND", _http_rule(args)


def _frontend_words(args: argparse.Namespace) -> str:
    if args.protocol == "TCP":
        sni = f" for {args.hostname}" if args.hostname else ""
        return f"frontend {args.address}{sni}"
    path = f" path {args.path}" if args.path else ""
    return f"{args.protocol.lower()} frontend {args.hostname}{path} on {args.address}"


def _cmd_frontend_add(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    target = "no cluster" if args.cluster_id == "-" else f"cluster {args.cluster_id}"
    client.say(answer.get("message") or f"{_frontend_words(args)} -> {target}")
    return 0


_cmd_frontend_remove = _confirming(lambda args: f"{_frontend_words(args)} removed")


# -- certificates -----------------------------------------------------------------------------


def _check_certificate(args: argparse.Namespace) -> None:
    args.pem = _certificate_files(args)


def _certificate_and_key(args: argparse.Namespace) -> dict[str, Any]:
    """Sōzu's ``CertificateAndKey`` of ``certificate add`` and ``replace``."""
    certificate = dict(args.pem)
    if args.names:
        certificate["names"] = list(args.names)
    if args.tls_versions is not None:
        certificate["versions"] = args.tls_versions
    return certificate


def _certificate_add_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    fields = {"address": args.address, "certificate": _certificate_and_key(args)}
    fields.update(_given(args, "expired_at"))
    return "ADD_CERTIFICATE", fields


def _certificate_replace_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    fields = {
        "address": args.address,
        "new_certificate": _certificate_and_key(args),
        "old_fingerprint": args.old_fingerprint,
    }
    if args.expired_at is not None:
        fields["new_expired_at"] = args.expired_at
    return "REPLACE_CERTIFICATE", fields


def _certificate_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "REMOVE_CERTIFICATE", {"address": args.address, "fingerprint": args.fingerprint}


def _certificate_list_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "QUERY_CERTIFICATES_FROM_WORKERS", {
        "filters": {"domain": args.domain, "fingerprint": args.fingerprint}
    }


def _answered_fingerprint(answer: dict[str, Any]) -> str:
    content = answer.get("content")
    return str(content.get("fingerprint", "?")) if isinstance(content, dict) else "?"


def _cmd_certificate_add(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say(answer.get("message") or
               f"certificate {_answered_fingerprint(answer)} added to {args.address}")
    return 0


def _cmd_certificate_replace(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say(answer.get("message") or f"certificate {args.old_fingerprint} replaced by "
               f"{_answered_fingerprint(answer)} on {args.address}")
    return 0


_cmd_certificate_remove = _confirming(
    lambda args: f"certificate {args.fingerprint} removed from {args.address}"
)


def _certificate_lines(content: dict[str, Any]) -> list[str]:
    """A QUERY_CERTIFICATES_FROM_WORKERS answer as a table (address, fingerprint, names,
    expiry, default), then the PEM texts when the answer carries them."""
    rows: list[tuple[str, ...]] = []
    pems: list[str] = []
    for address, certificates in sorted((content.get("certificates") or {}).items()):
        for cert in certificates:
            expired_at = cert.get("expired_at")
            expiry = (
                datetime.datetime.fromtimestamp(expired_at, datetime.UTC)
                .strftime("%Y-%m-%d %H:%M:%S UTC")
                if isinstance(expired_at, int) else "-"
            )
            rows.append((address, str(cert.get("fingerprint")),
                         ", ".join(cert.get("names") or ()) or "-", expiry,
                         "yes" if cert.get("default") else "no"))
            if cert.get("certificate"):
                pems.append(cert["certificate"].rstrip("\n"))
                pems.extend(pem.rstrip("\n") for pem in cert.get("certificate_chain") or ())
    if not rows:
        return ["no certificates"]
    header = ("ADDRESS", "FINGERPRINT", "NAMES", "EXPIRES", "DEFAULT")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in (header, *rows)]
    return lines + pems


def _cmd_certificate_list(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say("\n".join(_certificate_lines(answer.get("content") or {})))
    return 0


# -- queries, metrics, logging, health checks, limits -----------------------------------------


def _query_domain_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "QUERY_CLUSTERS_BY_DOMAIN", {"hostname": args.hostname, **_given(args, "path")}


def _cluster_infos(content: Any) -> list[dict[str, Any]]:
    """Cluster informations from a query answer: a list, or an object holding one list."""
    if isinstance(content, dict):
        lists = [v for v in content.values() if isinstance(v, list)]
        content = lists[0] if len(lists) == 1 else []
    if not isinstance(content, list):
        return []
    return [info for info in content if isinstance(info, dict)]


def _cmd_query_domain(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    lines: list[str] = []
    for info in _cluster_infos(answer.get("content")):
        cluster_id = str((info.get("configuration") or {}).get("cluster_id", "?"))
        lines.extend(_cluster_lines(cluster_id, info, None))
    client.say("\n".join(lines) or f"no cluster has a frontend on {args.hostname}")
    return 0


def _check_metrics(args: argparse.Namespace) -> None:
    query_options = (
        args.list,
        args.cluster_ids,
        args.backend_ids,
        args.metric_names,
        args.no_clusters,
        args.workers,
    )
    if args.configure is not None and any(query_options):
        subparser: argparse.ArgumentParser = args.subparser
        subparser.error("--enable, --disable and --clear take no query option")


def _metrics_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.configure is not None:
        return "CONFIGURE_METRICS", {"configuration": args.configure}
    return "QUERY_METRICS", {
        "list": args.list,
        "cluster_ids": list(args.cluster_ids),
        "backend_ids": list(args.backend_ids),
        "metric_names": list(args.metric_names),
        "no_clusters": args.no_clusters,
        "workers": args.workers,
    }


def _cmd_metrics(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    if args.configure is not None:
        client.say(answer.get("message") or f"metrics {args.configure.lower()}")
    else:
        client.say("\n".join(_pretty(answer.get("content") or {})))
    return 0


def _logging_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "LOGGING", {"filter": args.filter}


_cmd_logging = _confirming(lambda args: f"logging set to {args.filter}")


def _health_check_set_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    config: dict[str, Any] = {"uri": args.uri}
    config.update(
        _given(args, "interval", "healthy_threshold", "unhealthy_threshold", "expected_status")
    )
    if args.probe_timeout is not None:
        config["timeout"] = args.probe_timeout
    return "SET_HEALTH_CHECK", {"cluster_id": args.cluster_id, "config": config}


def _health_check_remove_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "REMOVE_HEALTH_CHECK", {"cluster_id": args.cluster_id}


def _health_check_list_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "QUERY_HEALTH_CHECKS", _given(args, "cluster_id")


_cmd_health_check_set = _confirming(lambda args: f"health check set on cluster {args.cluster_id}")


_cmd_health_check_remove = _confirming(
    lambda args: f"health check removed from cluster {args.cluster_id}"
)


def _cmd_health_check_list(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    client.say("\n".join(_pretty(answer.get("content") or {})))
    return 0


def _max_connections_per_ip_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.limit is None:
        return "QUERY_MAX_CONNECTIONS_PER_IP", {}
    return "SET_MAX_CONNECTIONS_PER_IP", {"limit": args.limit}


def _cmd_max_connections_per_ip(client: Client, args: argparse.Namespace) -> int:
    answer = _send(client, args)
    if args.limit is not None:
        client.say(answer.get("message") or f"max connections per IP set to {args.limit}")
    else:
        content = answer.get("content")
        limit = content.get("limit") if isinstance(content, dict) else content
        client.say(f"max connections per IP: {limit} (0: unlimited)")
    return 0
