"""The TOML configuration file, in Sōzu's ``config.toml`` layout.

Theory of operation
-------------------
A configuration file describes two things: the server (command socket, buffers, timeouts…),
which becomes a frozen :class:`ServerConfig`, and the routing (``[[listeners]]`` and
``[clusters.NAME]`` with their frontends and backends), which becomes a list of ordinary
:class:`~pysozu.command.Request` objects, exactly those a client could have sent on the
command socket.  A proxy therefore starts by replaying ``FileConfig.requests``, and a reload
is :meth:`pysozu.state.ConfigState.diff` between the running state and the new file's.

The file is read with the standard library's :mod:`tomllib`, then every key is checked here:
an unknown key or a bad value raises :class:`ConfigError` naming the key as a dotted path
(``clusters.app.backends[0].weight``) and the line where it appears.  :mod:`tomllib` keeps
no positions, so a small position scanner (:class:`_Positions`) walks the already-validated
TOML text once and records where each key, table header and array element starts.

Sōzu's behaviour is kept where it applies: listener timeouts default to the server-wide
ones; a frontend on an address with no listener gets a default listener of its protocol
(TCP, HTTP, or HTTPS for an http frontend with a certificate); a TCP cluster's
``proxy_protocol`` comes from its ``send_proxy`` key and its listeners' ``expect_proxy``
(the enum names are accepted too, as ``proxy_protocol``); a TCP frontend may give a
``hostname`` (pysozu's SNI passthrough: an exact name or ``*.suffix``); a backend's weight
defaults to 100; listeners are activated (after all routing requests) unless
``activate_listeners = false``; a relative ``command_socket`` or ``saved_state`` is relative to
the file's directory.

HTTP (``protocol = "http"`` listeners and clusters): a frontend needs ``hostname`` and may give
``path`` with ``path_type`` (PREFIX, the default, REGEX or EQUALS), ``method``, ``position``,
``redirect``, ``redirect_scheme``, ``redirect_template``, rewrites (``rewrite_host``,
``rewrite_path`` with ``$HOST[n]``/``$PATH[n]``, ``rewrite_port``), ``required_auth`` and header
edits ``{ position, key, value }`` (an empty value deletes the header); a listener and a cluster
may set ``max_body_size`` (bytes, 0: unlimited); a listener takes ``h2c`` (cleartext HTTP/2 with
prior knowledge, default true) and Sōzu's HTTP/2 knobs (``h2_max_concurrent_streams``,
``h2_initial_connection_window``, the ``h2_max_*_per_window`` flood limits…, see
:data:`pysozu.command.H2_LISTENER_FIELDS`), on http and https alike; enum words are accepted in
any case, with ``-`` or ``_`` (``use-https``).  An answer template (listener or cluster
``answers`` table, keyed by status code) is inline text or ``file://PATH``; files are read here,
relative to the configuration file, so the requests and the saved state carry the template
itself and a reload notices a changed file.  Sōzu's legacy ``answer_NNN = "PATH"`` listener keys
(and a cluster's ``answer_503``) name files too; an empty template is skipped as Sōzu does.  A
cluster's ``health_check`` table becomes its ADD_CLUSTER ``health_check``.  An http cluster's
``backend_tls`` table (TLS to its backends) becomes its ``backend_tls``, a relative ``ca_file``
being relative to the configuration file.
PROXY-protocol keys on HTTP clusters are refused (Sōzu ignores them silently).

HTTPS (``protocol = "https"`` listeners; frontends of http clusters on them): a listener takes
the HTTP listener's keys plus Sōzu's TLS ones, ``tls_versions`` (Sōzu's file spellings
``TLS_V12``/``TLS_V13``, or the channel's ``TLS_V1_2``/``TLS_V1_3``; older versions are
refused), ``cipher_list``, ``cipher_suites``, ``signature_algorithms``, ``groups_list`` (each
name checked against OpenSSL here), ``send_tls13_tickets``, ``alpn_protocols``,
``strict_sni_binding``, ``disable_http11`` (HTTP/2 only, which needs ``h2`` among the ALPN
protocols) and an ``hsts`` table (``enabled`` required, as in
Sōzu; then ``max_age``, ``include_subdomains``, ``preload``, ``force_replace_backend``).
``certificate``, ``certificate_chain`` and ``key`` are FILE PATHS, relative to the
configuration file, read and checked here (PEM that parses, a key that matches), so the
requests carry PEM text: on a listener they are its default certificate; on a frontend they
become an ADD_CERTIFICATE on the frontend's listener, placed before its ADD_HTTPS_FRONTEND
and sent once per listener however many frontends share it (skipped when it is the
listener's default certificate; frontends that share it and disagree on its
``certificate_chain`` or ``tls_versions`` are refused).  A certificate file holding several
certificates (a "fullchain") serves the first and chains the others before those of
``certificate_chain``.
A frontend's ``tls_versions`` go with its certificate, its ``hsts`` overrides the listener's.
A frontend on an https listener is an HTTPS frontend; without a certificate of its own it is
served by the listener's other certificates, and a file that gives that listener none at all
(no default certificate, no frontend certificate) is refused, as Sōzu does.  A frontend with a
certificate on an address with no listener gets a default HTTPS listener (Sōzu's defaults, no
default certificate: its frontends' certificates serve it).  TLS keys on an http listener or
frontend are refused.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from pysozu.command import (
    ALPN_PROTOCOLS,
    ANSWER_CODES,
    H2_LISTENER_FIELDS,
    HEADER_POSITIONS,
    LOAD_BALANCING_ALGORITHMS,
    LOAD_METRICS,
    PATH_RULE_KINDS,
    PROXY_PROTOCOL_CONFIGS,
    REDIRECT_POLICIES,
    REDIRECT_SCHEMES,
    RULE_POSITIONS,
    TLS_VERSIONS,
    CommandError,
    Request,
    check_alpn_protocols,
    check_answers,
    check_authorized_hash,
    check_backend_alpn,
    check_backend_server_name,
    check_disable_http11,
    check_expected_status,
    check_h2_field,
    check_header_name,
    check_header_value,
    check_method,
    check_path_rule,
    check_port,
    check_probe_uri,
    check_realm,
    check_tls_versions,
    check_token,
    check_wire_text,
    format_address,
    make_request,
    normalise_hostname,
    normalise_sni_hostname,
    parse_address,
)
from pysozu.protocols.certificates import (
    CertificateError,
    parse_certificate,
    split_certificate_chain,
)
from pysozu.protocols.tls import TlsSettings
from pysozu.state import ConfigState, StateError

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "ConfigError",
    "FileConfig",
    "ServerConfig",
    "default_config",
    "load_config",
    "normalise_tls_version",
    "parse_config",
]

_Path = tuple[str | int, ...]
_T = TypeVar("_T")


class ConfigError(ValueError):
    """A configuration file is invalid.

    ``key`` is the dotted path of the offending key (or None), ``line`` its 1-based line in
    the file (or None when it cannot be placed), ``reason`` the bare explanation.
    """

    def __init__(
        self,
        reason: str,
        *,
        source: str = "<string>",
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.key = key
        self.line = line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


@dataclass(frozen=True)
class ServerConfig:
    """Server-wide settings; defaults as in Sōzu's ``command/src/config.rs``."""

    command_socket: str = "./pysozu.sock"
    command_buffer_size: int = 1_000_000
    max_command_buffer_size: int = 2_000_000
    max_connections: int = 10_000
    min_buffers: int = 1
    max_buffers: int = 1_000
    buffer_size: int = 16_393
    front_timeout: int = 60
    back_timeout: int = 30
    connect_timeout: int = 3
    request_timeout: int = 10
    zombie_check_interval: int = 1_800
    accept_queue_timeout: int = 60
    evict_on_queue_full: bool = False
    max_connections_per_ip: int = 0
    retry_after: int = 60
    log_level: str = "info"
    log_target: str = "stdout"
    log_colored: bool = False
    access_logs_target: str | None = None
    #: "ascii" (Sōzu's text layout) or "json" (one object per line)
    access_logs_format: str = "ascii"
    #: the [metrics] table: StatsD collector address, tags or dotted names, name prefix
    metrics_address: str | None = None
    metrics_tagged: bool = True
    metrics_prefix: str = "sozu"
    #: where the main process serves the metrics of every worker in Prometheus's text format
    metrics_prometheus_address: str | None = None
    #: worker processes under a main process (the number of CPUs unless set); 0: one
    #: process that is both main and worker (tests, debugging, embedding)
    worker_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    worker_automatic_restart: bool = True
    worker_timeout: int = 10
    activate_listeners: bool = True
    saved_state: str | None = None
    automatic_state_save: bool = False
    pid_file_path: str | None = None
    handle_process_affinity: bool = False
    ctl_command_timeout: int = 1_000
    disable_cluster_metrics: bool = False


@dataclass
class FileConfig:
    """A parsed configuration: server settings and the requests that build the routing."""

    server: ServerConfig
    requests: list[Request]
    demo_backend: bool = False


#: Value kinds of the server keys (the ServerConfig field names).
_SERVER_KINDS: Final[dict[str, str]] = {
    "command_socket": "nonempty_str",
    "command_buffer_size": "posint",
    "max_command_buffer_size": "posint",
    "max_connections": "posint",
    "min_buffers": "uint64",
    "max_buffers": "posint",
    "buffer_size": "posint",
    "front_timeout": "uint32",
    "back_timeout": "uint32",
    "connect_timeout": "uint32",
    "request_timeout": "uint32",
    "zombie_check_interval": "uint32",
    "accept_queue_timeout": "uint32",
    "evict_on_queue_full": "bool",
    "max_connections_per_ip": "uint64",
    "retry_after": "uint32",
    "log_level": "nonempty_str",
    "log_target": "nonempty_str",
    "log_colored": "bool",
    "access_logs_target": "str",
    "access_logs_format": "str",
    "metrics_address": "str",
    "metrics_tagged": "bool",
    "metrics_prefix": "nonempty_str",
    "metrics_prometheus_address": "str",
    "worker_count": "uint32",
    "worker_automatic_restart": "bool",
    "worker_timeout": "uint32",
    "activate_listeners": "bool",
    "saved_state": "nonempty_str",
    "automatic_state_save": "bool",
    "pid_file_path": "nonempty_str",
    "handle_process_affinity": "bool",
    "ctl_command_timeout": "uint64",
    "disable_cluster_metrics": "bool",
}
assert set(_SERVER_KINDS) == {f.name for f in dataclasses.fields(ServerConfig)}

_TCP_LISTENER_KEYS: Final = frozenset(
    {
        "protocol",
        "address",
        "public_address",
        "expect_proxy",
        "front_timeout",
        "back_timeout",
        "connect_timeout",
    }
)
_HTTP_LISTENER_KEYS: Final = _TCP_LISTENER_KEYS | frozenset(
    {
        "sticky_name",
        "request_timeout",
        "answers",
        "sozu_id_header",
        "elide_x_real_ip",
        "send_x_real_ip",
        "max_body_size",
        "h2c",
        *H2_LISTENER_FIELDS,  # Sōzu's HTTP/2 knobs, for h2c and HTTPS alike
        *(f"answer_{code}" for code in ANSWER_CODES),  # Sōzu's legacy per-status file paths
    }
)
#: The TLS keys of Sōzu's HTTPS listeners (which take the HTTP listener's keys too).
_TLS_LISTENER_KEYS: Final = frozenset(
    {
        "certificate",
        "certificate_chain",
        "key",
        "tls_versions",
        "cipher_list",
        "cipher_suites",
        "signature_algorithms",
        "groups_list",
        "send_tls13_tickets",
        "alpn_protocols",
        "strict_sni_binding",
        "disable_http11",
        "hsts",
    }
)
_HTTPS_LISTENER_KEYS: Final = _HTTP_LISTENER_KEYS | _TLS_LISTENER_KEYS
_COMMON_CLUSTER_KEYS: Final = frozenset(
    {
        "protocol",
        "frontends",
        "backends",
        "load_balancing",
        "load_metric",
        "sticky_session",
        "https_redirect",
        "max_connections_per_ip",
        "retry_after",
        "health_check",
    }
)
_TCP_CLUSTER_KEYS: Final = _COMMON_CLUSTER_KEYS | frozenset({"send_proxy", "proxy_protocol"})
_HTTP_CLUSTER_KEYS: Final = _COMMON_CLUSTER_KEYS | frozenset(
    {
        "answers",
        "answer_503",
        "http2",
        "https_redirect_port",
        "authorized_hashes",
        "www_authenticate",
        "max_body_size",
        "backend_tls",
    }
)
#: ``hostname`` is pysozu's own (SNI passthrough): the TLS server name this frontend serves.
_TCP_FRONTEND_KEYS: Final = frozenset({"address", "hostname", "tags"})
_HTTP_FRONTEND_KEYS: Final = frozenset(
    {
        "address",
        "tags",
        "hostname",
        "path",
        "path_type",
        "method",
        "position",
        "redirect",
        "redirect_scheme",
        "redirect_template",
        "rewrite_host",
        "rewrite_path",
        "rewrite_port",
        "required_auth",
        "headers",
    }
)
#: Keys of Sōzu's HTTPS frontends (a frontend with a certificate is an HTTPS one).
_HTTPS_FRONTEND_KEYS: Final = frozenset(
    {"certificate", "key", "certificate_chain", "tls_versions", "hsts"}
)
#: The certificate files of a listener or frontend (paths; the requests carry their PEM).
_CERTIFICATE_FILES: Final = ("certificate", "certificate_chain", "key")
#: ``hsts`` tables (Sōzu's ``FileHstsConfig``): ``enabled`` is required.
_HSTS_KEYS: Final = frozenset(
    {"enabled", "max_age", "include_subdomains", "preload", "force_replace_backend"}
)
#: TLS version spellings: Sōzu's configuration file (``TlsVersion::from_str``), the
#: channel's names and OpenSSL's, matched in upper case with ``-`` as ``_``.
_TLS_VERSION_WORDS: Final = {
    **{name: name for name in TLS_VERSIONS},
    "TLSV1": "TLS_V1_0",
    "TLS_V10": "TLS_V1_0",
    "TLS_V11": "TLS_V1_1",
    "TLS_V12": "TLS_V1_2",
    "TLS_V13": "TLS_V1_3",
    "TLSV1.0": "TLS_V1_0",
    "TLSV1.1": "TLS_V1_1",
    "TLSV1.2": "TLS_V1_2",
    "TLSV1.3": "TLS_V1_3",
}
#: Listener TLS keys whose names OpenSSL checks (file key -> ADD_HTTPS_LISTENER field).
_TLS_NAME_LISTS: Final = {
    "tls_versions": "versions",
    "cipher_list": "cipher_list",
    "cipher_suites": "cipher_suites",
    "signature_algorithms": "signature_algorithms",
    "groups_list": "groups_list",
}
_HEADER_KEYS: Final = frozenset({"position", "key", "value"})
_HEALTH_CHECK_KEYS: Final = frozenset(
    {
        "uri",
        "interval",
        "timeout",
        "healthy_threshold",
        "unhealthy_threshold",
        "expected_status",
    }
)
#: ``[clusters.NAME.backend_tls]`` (pysozu's own: TLS to the backends)
_BACKEND_TLS_KEYS: Final = frozenset({"verify", "ca_file", "ca", "server_name", "alpn_protocols"})
#: Sōzu ignores PROXY-protocol keys on HTTP clusters; refusing them says they do nothing.
_NOT_FOR_HTTP_CLUSTERS: Final = (
    "only valid for tcp clusters (HTTP clusters do not use the PROXY protocol)"
)
#: Listener protocol -> request type that adds such a listener.
_ADD_LISTENER: Final = {
    "TCP": "ADD_TCP_LISTENER",
    "HTTP": "ADD_HTTP_LISTENER",
    "HTTPS": "ADD_HTTPS_LISTENER",
}
_BACKEND_KEYS: Final = frozenset({"address", "weight", "backend_id", "sticky_id", "backup"})
#: Spellings accepted for ``proxy_protocol``: the enum names and short lower-case words.
_PROXY_PROTOCOL_WORDS: Final = {
    "expect": "EXPECT_HEADER",
    "send": "SEND_HEADER",
    "relay": "RELAY_HEADER",
}
_DEFAULT_WEIGHT: Final = 100
_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR: Final = re.compile(r"[^,\]}#\n]+")  # numbers, booleans, dates: up to a delimiter


DEFAULT_CONFIG_TOML: Final = """\
# pysozu built-in configuration, used when no configuration file is given.
# An HTTP listener on 127.0.0.1:8080 routes every host to the cluster "demo", whose two
# backends (127.0.0.1:8081 and 127.0.0.1:8082) are small demo HTTP servers that
# `pysozu start` runs itself (demo_backend = true): successive `curl` calls alternate
# between them (round robin). One worker process: each worker balances on its own, so
# with several the alternation would depend on which worker accepted each connection.
command_socket = "./pysozu.sock"
demo_backend = true
worker_count = 1

[[listeners]]
protocol = "http"
address = "127.0.0.1:8080"

[clusters.demo]
protocol = "http"
load_balancing = "ROUND_ROBIN"
frontends = [{ address = "127.0.0.1:8080", hostname = "*", position = "PRE" }]
backends = [
  { address = "127.0.0.1:8081", backend_id = "demo-0" },
  { address = "127.0.0.1:8082", backend_id = "demo-1" },
]
"""


def default_config() -> FileConfig:
    """The configuration of :data:`DEFAULT_CONFIG_TOML`."""
    return parse_config(DEFAULT_CONFIG_TOML, source="<default config>")


def load_config(path: str | os.PathLike[str]) -> FileConfig:
    """Read and check a configuration file.

    Relative ``command_socket`` and ``saved_state`` paths, and ``file://`` answer templates,
    are relative to the file's directory (as Sōzu does for the first two), so the proxy does
    not depend on the working directory.
    """
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file: {exc}", source=source) from None
    base = Path(path).parent
    config = parse_config(text, source=source, base_dir=base)
    changes: dict[str, Any] = {}
    for name in ("command_socket", "saved_state"):
        value = getattr(config.server, name)
        if value is not None and not os.path.isabs(value):
            changes[name] = os.path.normpath(base / value)
    if changes:
        config.server = dataclasses.replace(config.server, **changes)
    return config


def parse_config(
    text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None
) -> FileConfig:
    """Parse and check configuration text; ``source`` names it in error messages, and
    relative answer template files are looked up in ``base_dir`` (default: the working
    directory)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        if match:
            line: int | None = int(match.group(1))
        elif "at end of document" in str(exc):
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
        else:  # pragma: no cover - tomllib always gives a position
            line = None
        raise ConfigError(f"invalid TOML: {exc}", source=source, line=line) from None
    return _Builder(text, source, base_dir).build(data)


def normalise_tls_version(word: str) -> str:
    """A TLS version by the channel's name (``TLS_V1_2``) from any accepted spelling (Sōzu's
    file ``TLS_V12``, ``TLSv1.2``…, in any case); :class:`ValueError` when unknown."""
    name = _TLS_VERSION_WORDS.get(word.strip().upper().replace("-", "_"))
    if name is None:
        raise ValueError(
            f"unknown TLS version {word!r} (TLS_V12 or TLS_V13, also written TLS_V1_2, TLS_V1_3)"
        )
    return name


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            out += f".{name}" if out else name
    return out


class _Builder:
    """Checks the decoded TOML and turns it into a :class:`FileConfig`."""

    def __init__(
        self, text: str, source: str, base_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.text = text
        self.source = source
        self.base_dir = None if base_dir is None else Path(base_dir)
        self._positions: _Positions | None = None
        #: (protocol, ADD_*_LISTENER fields), in file order (default listeners included).
        self.listeners: list[tuple[str, dict[str, Any]]] = []
        self.listener_at: dict[str, tuple[str, dict[str, Any]]] = {}
        #: TCP frontend (address, hostname or "") -> cluster; HTTP frontend rule -> cluster.
        self.frontend_owner: dict[tuple[str, str], str] = {}
        self.http_rule_owner: dict[tuple[str, ...], str] = {}
        #: HTTPS listener address -> fingerprint -> (the certificate as sent, where it was
        #: given): its certificates, the default one included
        self.certificates: dict[str, dict[str, tuple[dict[str, Any], _Path]]] = {}
        #: HTTPS frontends with no certificate of their own: (path, listener address)
        self.uncertified: list[tuple[_Path, str]] = []

    def error(self, path: _Path, reason: str) -> ConfigError:
        if self._positions is None:
            self._positions = _Positions(self.text)
        return ConfigError(
            reason, source=self.source, key=_dotted(path) or None, line=self._positions.line(path)
        )

    # -- scalar checks -------------------------------------------------------------------------

    def value(self, path: _Path, value: Any, kind: str) -> Any:
        if kind in ("str", "nonempty_str"):
            if not isinstance(value, str):
                raise self.error(path, "must be a string")
            if kind == "nonempty_str" and not value:
                raise self.error(path, "must not be empty")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.error(path, "must be a boolean (true or false)")
            return value
        if kind in ("posint", "uint32", "uint64", "weight"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(path, "must be an integer")
            low, high = {
                "posint": (1, 2**63 - 1),
                "uint32": (0, 2**32 - 1),
                "uint64": (0, 2**64 - 1),
                "weight": (0, 255),
            }[kind]
            if not low <= value <= high:
                raise self.error(path, f"must be between {low} and {high} (got {value})")
            return value
        if kind == "address":
            if not isinstance(value, str):
                raise self.error(path, 'must be a string like "127.0.0.1:8080"')
            try:
                return format_address(*parse_address(value))
            except CommandError as exc:
                raise self.error(path, str(exc)) from None
        if kind == "str_map":
            if not isinstance(value, dict):
                raise self.error(path, "must be a table of strings")
            for k, v in value.items():
                if not isinstance(v, str):
                    raise self.error((*path, k), "must be a string")
            return dict(value)
        raise AssertionError(kind)

    def table(self, path: _Path, value: Any, allowed: frozenset[str], what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be a table ({what})")
        for key in value:
            if key not in allowed:
                raise self.error((*path, key), f"unknown key for {what}")
        return value

    def choice(self, path: _Path, value: Any, choices: tuple[str, ...]) -> str:
        """An enum name in any case, ``-`` standing for ``_`` (``use-https``)."""
        if not isinstance(value, str):
            raise self.error(path, "must be a string")
        upper = value.upper().replace("-", "_")
        if upper not in choices:
            raise self.error(path, f"must be one of {', '.join(choices)} (got {value!r})")
        return upper

    def checked(self, path: _Path, check: Callable[..., _T], *args: Any) -> _T:
        """Run one of :mod:`pysozu.command`'s field rules, reporting a refusal at ``path``."""
        try:
            return check(*args)
        except CommandError as exc:
            raise self.error(path, str(exc)) from None

    def protocol(
        self, path: _Path, table: dict[str, Any], what: str, supported: tuple[str, ...]
    ) -> str:
        """The table's ``protocol``, lower-cased, one of ``supported``."""
        if "protocol" not in table:
            raise self.error(path, f"missing key 'protocol' for a {what}")
        protocol = table["protocol"]
        if not isinstance(protocol, str):
            raise self.error((*path, "protocol"), "must be a string")
        word = protocol.lower()
        if word in supported:
            return word
        if word == "https" and what == "cluster":
            reason = (
                "must be 'tcp' or 'http' (got 'https'): HTTPS frontends belong to http "
                "clusters (a frontend on an https listener, or with a certificate)"
            )
        elif word == "udp":
            reason = f"udp {what}s are not supported yet"
        else:
            *first, last = map(repr, supported)
            reason = f"must be {', '.join(first)} or {last} (got {protocol!r})"
        raise self.error((*path, "protocol"), reason)

    def keys(
        self,
        path: _Path,
        table: dict[str, Any],
        allowed: frozenset[str],
        what: str,
        elsewhere: dict[str, frozenset[str]],
    ) -> None:
        """Refuse keys not in ``allowed``; a key valid for another kind of table (``what``
        of another protocol) says so, since it is most likely a wrong ``protocol``."""
        for key in table:
            if key in allowed:
                continue
            for reason, keys in elsewhere.items():
                if key in keys:
                    raise self.error((*path, key), reason)
            raise self.error((*path, key), f"unknown key for {what}")

    def template(self, path: _Path, file: str) -> str:
        """The text of an answer template file (relative to the configuration's folder)."""
        if not file:
            raise self.error(path, "names no file (write file://PATH)")
        return self.read_text_file(path, file, "the answer template")

    def read_text_file(self, path: _Path, file: str, what: str) -> str:
        """A UTF-8 file named in the configuration, relative to its folder; ``what`` names it
        in the error. Bytes, not read_text: newline translation would turn CRLF into LF."""
        target = Path(file)
        if not target.is_absolute() and self.base_dir is not None:
            target = self.base_dir / target
        try:
            return target.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise self.error(path, f"cannot read {what} {file}: {reason}") from None

    def answers(self, path: _Path, value: Any) -> dict[str, str]:
        """An ``answers`` table: status code -> inline template or ``file://PATH``."""
        table = self.value(path, value, "str_map")
        out: dict[str, str] = {}
        for code, template in table.items():
            key_path = (*path, code)
            if code not in ANSWER_CODES:
                self.checked(key_path, check_answers, {code: template})
            if template.startswith("file://"):
                template = self.template(key_path, template.removeprefix("file://"))
            if template:  # Sōzu skips empty templates (a stub in example files)
                out[code] = template
        return out

    def health_check(self, path: _Path, raw: Any) -> dict[str, Any]:
        table = self.table(path, raw, _HEALTH_CHECK_KEYS, "a health check")
        uri = self.value((*path, "uri"), self.required(path, table, "uri", "a health check"), "str")
        config: dict[str, Any] = {"uri": self.checked((*path, "uri"), check_probe_uri, uri)}
        for key in ("interval", "timeout", "healthy_threshold", "unhealthy_threshold"):
            if key in table:
                config[key] = self.value((*path, key), table[key], "uint32")
                if config[key] == 0:
                    raise self.error((*path, key), "must be greater than 0")
        if "expected_status" in table:
            status = self.value((*path, "expected_status"), table["expected_status"], "uint32")
            config["expected_status"] = self.checked(
                (*path, "expected_status"), check_expected_status, status
            )
        return config

    def backend_tls(self, path: _Path, raw: Any) -> dict[str, Any]:
        """A cluster's ``backend_tls`` table; a relative ``ca_file`` is relative to the
        configuration file's folder (the worker reads it when the cluster is added)."""
        table = self.table(path, raw, _BACKEND_TLS_KEYS, "backend TLS settings")
        config: dict[str, Any] = {}
        if "verify" in table:
            config["verify"] = self.value((*path, "verify"), table["verify"], "bool")
        if "ca" in table:
            config["ca"] = self.value((*path, "ca"), table["ca"], "nonempty_str")
        if "ca_file" in table:
            if "ca" in table:
                raise self.error((*path, "ca_file"), "give either ca or ca_file, not both")
            target = Path(self.value((*path, "ca_file"), table["ca_file"], "nonempty_str"))
            if not target.is_absolute() and self.base_dir is not None:
                target = self.base_dir / target
            config["ca_file"] = str(target)
        if "server_name" in table:
            name = self.value((*path, "server_name"), table["server_name"], "nonempty_str")
            config["server_name"] = self.checked(
                (*path, "server_name"), check_backend_server_name, name)
        if "alpn_protocols" in table:
            protocols = [
                self.value((*path, "alpn_protocols", i), p, "str")
                for i, p in enumerate(self.array((*path, "alpn_protocols"),
                                                 table["alpn_protocols"], "strings"))
            ]
            config["alpn_protocols"] = self.checked(
                (*path, "alpn_protocols"), check_backend_alpn, protocols)
        return config

    def required(self, path: _Path, table: dict[str, Any], key: str, what: str) -> Any:
        if key not in table:
            raise self.error(path, f"missing key {key!r} for {what}")
        return table[key]

    def array(self, path: _Path, value: Any, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, f"must be an array of {what}")
        return value

    # -- sections ------------------------------------------------------------------------------

    def build(self, data: dict[str, Any]) -> FileConfig:
        settings: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SERVER_KINDS and not key.startswith("metrics_"):
                settings[key] = self.value((key,), value, _SERVER_KINDS[key])
            elif key == "metrics":
                settings.update(self.metrics(value))
            elif key not in ("listeners", "clusters", "demo_backend"):
                raise self.error((key,), "unknown key")
        if settings.get("access_logs_format", "ascii") not in ("ascii", "json"):
            raise self.error(("access_logs_format",), "must be 'ascii' or 'json'")
        demo_backend = self.value(("demo_backend",), data.get("demo_backend", False), "bool")
        server = ServerConfig(**settings)
        if server.command_buffer_size > server.max_command_buffer_size:
            key = (
                "command_buffer_size"
                if "command_buffer_size" in settings
                else "max_command_buffer_size"
            )
            raise self.error((key,), "command_buffer_size must not exceed max_command_buffer_size")
        if server.min_buffers > server.max_buffers:  # Sōzu clamps rather than refuses
            server = dataclasses.replace(server, min_buffers=server.max_buffers)

        for index, listener in enumerate(
            self.array(("listeners",), data.get("listeners", []), "tables")
        ):
            self.listener(("listeners", index), listener, server)
        clusters = data.get("clusters", {})
        if not isinstance(clusters, dict):
            raise self.error(("clusters",), "must be a table of clusters")
        cluster_requests: list[tuple[str, dict[str, Any]]] = []
        for name, cluster in clusters.items():
            cluster_requests.extend(self.cluster(("clusters", name), name, cluster, server))
        for path, address in self.uncertified:
            if not self.certificates.get(address):
                raise self.error(
                    path,
                    f"the https listener {address} has no certificate: give this frontend "
                    "certificate and key files, or the listener a default certificate",
                )

        items: list[tuple[str, dict[str, Any]]] = [
            (_ADD_LISTENER[proxy], fields) for proxy, fields in self.listeners
        ]
        items.extend(cluster_requests)
        if server.activate_listeners:
            items.extend(
                ("ACTIVATE_LISTENER", {"address": fields["address"], "proxy": proxy})
                for proxy, fields in self.listeners
            )
        requests: list[Request] = []
        for index, (request_type, fields) in enumerate(items):
            try:
                requests.append(make_request(f"CONFIG-{index}", request_type, **fields))
            except CommandError as exc:  # pragma: no cover - the checks above come first
                raise ConfigError(str(exc), source=self.source) from None
        try:
            ConfigState.from_requests(requests)
        except StateError as exc:  # pragma: no cover - the checks above come first
            raise ConfigError(str(exc), source=self.source) from None
        return FileConfig(server=server, requests=requests, demo_backend=demo_backend)

    def metrics(self, raw: Any) -> dict[str, Any]:
        """Sōzu's ``[metrics]`` table: ``address`` (StatsD over UDP), ``tagged_metrics``,
        ``prefix``."""
        if not isinstance(raw, dict):
            raise self.error(("metrics",), "must be a table")
        out: dict[str, Any] = {}
        # prometheus_address is pysozu's own: served by the main process
        addresses = {"address": "metrics_address",
                     "prometheus_address": "metrics_prometheus_address"}
        for key, value in raw.items():
            if key in addresses:
                address = self.value(("metrics", key), value, "nonempty_str")
                try:
                    parse_address(address)
                except CommandError as exc:
                    raise self.error(("metrics", key), str(exc)) from None
                out[addresses[key]] = address
            elif key == "tagged_metrics":
                out["metrics_tagged"] = self.value(("metrics", key), value, "bool")
            elif key == "prefix":
                out["metrics_prefix"] = self.value(("metrics", key), value, "nonempty_str")
            else:
                raise self.error(("metrics", key), "unknown key for metrics")
        return out

    def listener(self, path: _Path, raw: Any, server: ServerConfig) -> None:
        if not isinstance(raw, dict):
            raise self.error(path, "must be a table (a listener)")
        protocol = self.protocol(path, raw, "listener", ("tcp", "http", "https"))
        https_only = "only valid for https listeners"
        if protocol == "https":
            self.keys(path, raw, _HTTPS_LISTENER_KEYS, "an https listener", {})
        elif protocol == "http":
            self.keys(
                path,
                raw,
                _HTTP_LISTENER_KEYS,
                "an http listener",
                {https_only: _TLS_LISTENER_KEYS},
            )
        else:
            self.keys(
                path,
                raw,
                _TCP_LISTENER_KEYS,
                "a tcp listener",
                {
                    "only valid for http listeners": _HTTP_LISTENER_KEYS,
                    https_only: _TLS_LISTENER_KEYS,
                },
            )
        table = raw
        address = self.value(
            (*path, "address"), self.required(path, table, "address", "a listener"), "address"
        )
        if address in self.listener_at:
            raise self.error((*path, "address"), f"another listener already uses {address}")
        fields: dict[str, Any] = {
            "address": address,
            "expect_proxy": self.value(
                (*path, "expect_proxy"), table.get("expect_proxy", False), "bool"
            ),
        }
        if "public_address" in table:
            fields["public_address"] = self.value(
                (*path, "public_address"), table["public_address"], "address"
            )
            if fields["expect_proxy"] and protocol == "tcp":
                raise self.error(
                    (*path, "public_address"), "public_address is incompatible with expect_proxy"
                )
        timeouts = ["front_timeout", "back_timeout", "connect_timeout"]
        if protocol != "tcp":
            timeouts.append("request_timeout")
            self.http_listener_keys(path, table, fields)
        if protocol == "https":
            self.tls_listener_keys(path, table, fields)
        for key in timeouts:
            fields[key] = self.value((*path, key), table.get(key, getattr(server, key)), "uint32")
        self.add_listener(protocol.upper(), fields)

    def http_listener_keys(
        self, path: _Path, table: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        if "sticky_name" in table:
            name = self.value((*path, "sticky_name"), table["sticky_name"], "str")
            fields["sticky_name"] = self.checked(
                (*path, "sticky_name"), check_token, name, "cookie name"
            )
        if "sozu_id_header" in table:
            header = self.value((*path, "sozu_id_header"), table["sozu_id_header"], "str")
            fields["sozu_id_header"] = self.checked(
                (*path, "sozu_id_header"), check_header_name, header
            )
        for key in ("elide_x_real_ip", "send_x_real_ip"):
            if key in table:
                fields[key] = self.value((*path, key), table[key], "bool")
        if "max_body_size" in table:
            fields["max_body_size"] = self.value(
                (*path, "max_body_size"), table["max_body_size"], "uint64"
            )
        if "h2c" in table:
            fields["h2c"] = self.value((*path, "h2c"), table["h2c"], "bool")
        for key in H2_LISTENER_FIELDS:
            if key in table:
                number = self.value((*path, key), table[key], "uint32")
                fields[key] = self.checked((*path, key), check_h2_field, key, number)
        answers: dict[str, str] = {}
        for code in ANSWER_CODES:  # legacy keys first: the answers table wins, as in Sōzu
            key = f"answer_{code}"
            if key in table:
                file = self.value((*path, key), table[key], "str")
                template = self.template((*path, key), file)
                if template:
                    answers[code] = template
        if "answers" in table:
            answers.update(self.answers((*path, "answers"), table["answers"]))
        fields["answers"] = answers

    def tls_listener_keys(
        self, path: _Path, table: dict[str, Any], fields: dict[str, Any]
    ) -> None:
        """The TLS keys of an https listener (see the module docstring)."""
        for key, name in _TLS_NAME_LISTS.items():
            if key not in table:
                continue
            words = self.string_list((*path, key), table[key])
            if key == "tls_versions":
                if not words:
                    raise self.error((*path, key), "must name at least one TLS version")
                words = self.tls_versions((*path, key), words)
            try:  # the names OpenSSL would refuse when the listener is added
                TlsSettings.from_fields({name: words})
            except ValueError as exc:
                raise self.error((*path, key), str(exc)) from None
            fields[name] = words
        if "send_tls13_tickets" in table:
            fields["send_tls13_tickets"] = self.value(
                (*path, "send_tls13_tickets"), table["send_tls13_tickets"], "uint64"
            )
        if "alpn_protocols" in table:
            protocols = self.string_list((*path, "alpn_protocols"), table["alpn_protocols"])
            if not protocols:
                raise self.error((*path, "alpn_protocols"), "must name at least one protocol")
            fields["alpn_protocols"] = self.checked(
                (*path, "alpn_protocols"), check_alpn_protocols, protocols
            )
        for key in ("strict_sni_binding", "disable_http11"):
            if key in table:
                fields[key] = self.value((*path, key), table[key], "bool")
        if fields.get("disable_http11"):
            self.checked(
                (*path, "disable_http11"),
                check_disable_http11,
                {"alpn_protocols": ALPN_PROTOCOLS, **fields},
            )
        if "hsts" in table:
            fields["hsts"] = self.hsts((*path, "hsts"), table["hsts"])
        files = self.certificate_files(path, table)
        if files is not None:
            certificate, fingerprint = files
            fields.update(certificate)
            self.certificates[fields["address"]] = {fingerprint: (certificate, path)}

    def string_list(self, path: _Path, raw: Any) -> list[str]:
        return [
            self.value((*path, index), item, "str")
            for index, item in enumerate(self.array(path, raw, "strings"))
        ]

    def tls_versions(self, path: _Path, words: list[str]) -> list[str]:
        """TLS versions in any accepted spelling, as the channel names them."""
        names: list[str] = []
        for index, word in enumerate(words):
            try:
                names.append(normalise_tls_version(word))
            except ValueError as exc:
                raise self.error((*path, index), str(exc)) from None
        return self.checked(path, check_tls_versions, names)

    def hsts(self, path: _Path, raw: Any) -> dict[str, Any]:
        """An ``hsts`` table (Sōzu's ``FileHstsConfig``): ``enabled`` is required, and an
        enabled policy without ``max_age`` gets the channel's default (one year)."""
        table = self.table(path, raw, _HSTS_KEYS, "an hsts table")
        if "enabled" not in table:
            raise self.error(
                path,
                "missing key 'enabled' for an hsts table (true enables it, false turns off a "
                "listener's policy)",
            )
        config: dict[str, Any] = {}
        for key in ("enabled", "include_subdomains", "preload", "force_replace_backend"):
            if key in table:
                config[key] = self.value((*path, key), table[key], "bool")
        if "max_age" in table:
            config["max_age"] = self.value((*path, "max_age"), table["max_age"], "uint32")
        return config

    def pem_file(self, path: _Path, raw: Any, what: str) -> str:
        """The text of a PEM file (relative to the configuration's folder)."""
        return self.read_text_file(path, self.value(path, raw, "nonempty_str"),
                                   f"the {what} file")

    def certificate_files(
        self, path: _Path, table: dict[str, Any]
    ) -> tuple[dict[str, Any], str] | None:
        """The ``certificate``, ``certificate_chain`` and ``key`` files of a listener or
        frontend, read and checked: ``({certificate, certificate_chain, key}, fingerprint)``
        with PEM texts, or None when none of them is given."""
        given = [key for key in _CERTIFICATE_FILES if key in table]
        if not given:
            return None
        for key in ("certificate", "key"):
            if key not in table:
                raise self.error(
                    (*path, given[0]), f"needs both certificate and key (missing {key!r})"
                )
        cert_path = (*path, "certificate")
        text = self.pem_file(cert_path, table["certificate"], "certificate")
        certificates = split_certificate_chain(text)
        if not certificates:
            raise self.error(cert_path, f"no PEM certificate in {table['certificate']}")
        chain = certificates[1:]  # a "fullchain" file: the others are its chain
        if "certificate_chain" in table:
            chain_path = (*path, "certificate_chain")
            text = self.pem_file(chain_path, table["certificate_chain"], "certificate chain")
            linked = split_certificate_chain(text)
            if not linked:
                raise self.error(
                    chain_path, f"no PEM certificate in {table['certificate_chain']}"
                )
            chain.extend(linked)
        key = self.pem_file((*path, "key"), table["key"], "key")
        try:
            parsed = parse_certificate(certificates[0], key, chain)
        except CertificateError as exc:
            raise self.error((*path, exc.part), str(exc)) from None
        files = {"certificate": certificates[0], "certificate_chain": chain, "key": key}
        return files, parsed.fingerprint

    def add_listener(self, proxy: str, fields: dict[str, Any]) -> None:
        self.listeners.append((proxy, fields))
        self.listener_at[fields["address"]] = (proxy, fields)

    def default_listener(self, proxy: str, address: str, server: ServerConfig) -> None:
        """Sōzu gives a frontend on an unknown address a listener with default settings."""
        fields: dict[str, Any] = {"address": address, "expect_proxy": False}
        timeouts = ["front_timeout", "back_timeout", "connect_timeout"]
        if proxy != "TCP":
            timeouts.append("request_timeout")
        for key in timeouts:
            fields[key] = getattr(server, key)
        self.add_listener(proxy, fields)

    def cluster(
        self, path: _Path, name: str, raw: Any, server: ServerConfig
    ) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(raw, dict):
            raise self.error(path, "must be a table (a cluster)")
        if not name:
            raise self.error(path, "a cluster name must not be empty")
        protocol = self.protocol(path, raw, "cluster", ("tcp", "http"))
        if protocol == "http":
            self.keys(
                path,
                raw,
                _HTTP_CLUSTER_KEYS,
                "an http cluster",
                {_NOT_FOR_HTTP_CLUSTERS: _TCP_CLUSTER_KEYS},
            )
        else:
            self.keys(
                path,
                raw,
                _TCP_CLUSTER_KEYS,
                "a tcp cluster",
                {"only valid for http clusters": _HTTP_CLUSTER_KEYS},
            )
        table = raw
        config: dict[str, Any] = {"cluster_id": name}
        for key in ("sticky_session", "https_redirect"):
            if key in table:
                config[key] = self.value((*path, key), table[key], "bool")
        for key, kind in (("max_connections_per_ip", "uint64"), ("retry_after", "uint32")):
            if key in table:
                config[key] = self.value((*path, key), table[key], kind)
        if "load_balancing" in table:
            config["load_balancing"] = self.choice(
                (*path, "load_balancing"), table["load_balancing"], LOAD_BALANCING_ALGORITHMS
            )
        if "load_metric" in table:
            config["load_metric"] = self.choice(
                (*path, "load_metric"), table["load_metric"], LOAD_METRICS
            )
        if "health_check" in table:
            config["health_check"] = self.health_check(
                (*path, "health_check"), table["health_check"]
            )

        frontends_raw = self.array((*path, "frontends"), table.get("frontends", []), "tables")
        frontend_requests: list[tuple[str, dict[str, Any]]]
        if protocol == "http":
            self.http_cluster_keys(path, table, config)
            frontend_requests = [
                item
                for i, f in enumerate(frontends_raw)
                for item in self.http_frontend((*path, "frontends", i), f, name, server)
            ]
        else:
            frontends = self.tcp_frontends(path, frontends_raw, name, server)
            config["proxy_protocol"] = self.proxy_protocol(path, table, frontends)
            frontend_requests = [("ADD_TCP_FRONTEND", f) for f in frontends]
        return [
            ("ADD_CLUSTER", config),
            *frontend_requests,
            *(("ADD_BACKEND", b) for b in self.backends(path, table, name)),
        ]

    def http_cluster_keys(self, path: _Path, table: dict[str, Any], config: dict[str, Any]) -> None:
        if "backend_tls" in table:
            config["backend_tls"] = self.backend_tls((*path, "backend_tls"), table["backend_tls"])
        if "max_body_size" in table:
            config["max_body_size"] = self.value(
                (*path, "max_body_size"), table["max_body_size"], "uint64"
            )
        if "answers" in table:
            config["answers"] = self.answers((*path, "answers"), table["answers"])
        if "answer_503" in table:  # Sōzu's legacy key: a file path
            file = self.value((*path, "answer_503"), table["answer_503"], "str")
            config["answer_503"] = self.template((*path, "answer_503"), file) or None
        if "http2" in table:
            config["http2"] = self.value((*path, "http2"), table["http2"], "bool")
        if "https_redirect_port" in table:
            port = self.value(
                (*path, "https_redirect_port"), table["https_redirect_port"], "uint32"
            )
            config["https_redirect_port"] = self.checked(
                (*path, "https_redirect_port"), check_port, port
            )
        if "authorized_hashes" in table:
            entries = self.array(
                (*path, "authorized_hashes"), table["authorized_hashes"], "strings"
            )
            hashes: list[str] = []
            for index, entry in enumerate(entries):
                entry_path = (*path, "authorized_hashes", index)
                entry = self.value(entry_path, entry, "str")
                hashes.append(self.checked(entry_path, check_authorized_hash, entry))
            config["authorized_hashes"] = hashes
        if "www_authenticate" in table:
            realm = self.value((*path, "www_authenticate"), table["www_authenticate"], "str")
            config["www_authenticate"] = self.checked(
                (*path, "www_authenticate"), check_realm, realm
            )

    def tcp_frontends(
        self, path: _Path, frontends_raw: list[Any], name: str, server: ServerConfig
    ) -> list[dict[str, Any]]:
        frontends: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for index, raw_front in enumerate(frontends_raw):
            front_path = (*path, "frontends", index)
            if isinstance(raw_front, dict):
                self.keys(
                    front_path,
                    raw_front,
                    _TCP_FRONTEND_KEYS,
                    "a tcp frontend",
                    {"only valid for http frontends": _HTTP_FRONTEND_KEYS | _HTTPS_FRONTEND_KEYS},
                )
            front = self.table(front_path, raw_front, _TCP_FRONTEND_KEYS, "a tcp frontend")
            address = self.value(
                (*front_path, "address"),
                self.required(front_path, front, "address", "a frontend"),
                "address",
            )
            hostname: str | None = None
            if "hostname" in front:
                hostname = self.value((*front_path, "hostname"), front["hostname"], "str")
                hostname = self.checked(
                    (*front_path, "hostname"), normalise_sni_hostname, hostname
                )
            key = (address, hostname or "")
            owner = self.frontend_owner.get(key)
            if key in seen or owner is not None:
                other = "this cluster" if key in seen else f"cluster {owner!r}"
                where = address + (f" for {hostname}" if hostname else "")
                raise self.error(
                    (*front_path, "address"), f"{other} already has a frontend on {where}"
                )
            listener = self.listener_at.get(address)
            if listener is not None and listener[0] != "TCP":
                raise self.error(
                    (*front_path, "address"),
                    f"{address} is an {listener[0].lower()} listener; a tcp frontend needs a "
                    "tcp listener",
                )
            seen.add(key)
            tags = self.value((*front_path, "tags"), front.get("tags", {}), "str_map")
            fields: dict[str, Any] = {"cluster_id": name, "address": address, "tags": tags}
            if hostname is not None:
                fields["hostname"] = hostname
            frontends.append(fields)
            if listener is None:
                self.default_listener("TCP", address, server)
        self.frontend_owner.update(dict.fromkeys(seen, name))
        return frontends

    def http_frontend(
        self, path: _Path, raw: Any, name: str, server: ServerConfig
    ) -> list[tuple[str, dict[str, Any]]]:
        """An http cluster's frontend: its ADD_HTTP(S)_FRONTEND, after the ADD_CERTIFICATE
        of its certificate when it brings one the listener does not have yet."""
        front = self.table(
            path, raw, _HTTP_FRONTEND_KEYS | _HTTPS_FRONTEND_KEYS, "an http frontend"
        )
        address = self.value(
            (*path, "address"), self.required(path, front, "address", "a frontend"), "address"
        )
        hostname = self.value(
            (*path, "hostname"), self.required(path, front, "hostname", "an http frontend"), "str"
        )
        hostname = self.checked((*path, "hostname"), normalise_hostname, hostname)
        kind = "PREFIX"
        if "path_type" in front:
            if "path" not in front:
                raise self.error((*path, "path_type"), "path_type needs a path")
            kind = self.choice((*path, "path_type"), front["path_type"], PATH_RULE_KINDS)
        value = self.value((*path, "path"), front.get("path", ""), "str")
        self.checked((*path, "path"), check_path_rule, kind, value)
        fields: dict[str, Any] = {
            "cluster_id": name,
            "address": address,
            "hostname": hostname,
            "path": {"kind": kind, "value": value},
            "tags": self.value((*path, "tags"), front.get("tags", {}), "str_map"),
        }
        if "method" in front:
            method = self.value((*path, "method"), front["method"], "str")
            fields["method"] = self.checked((*path, "method"), check_method, method)
        for key, choices in (
            ("position", RULE_POSITIONS),
            ("redirect", REDIRECT_POLICIES),
            ("redirect_scheme", REDIRECT_SCHEMES),
        ):
            if key in front:
                fields[key] = self.choice((*path, key), front[key], choices)
        if "redirect_template" in front:
            template = self.value((*path, "redirect_template"), front["redirect_template"], "str")
            if template.startswith("file://"):  # read here, like answers: the state carries it
                template = self.template(
                    (*path, "redirect_template"), template.removeprefix("file://")
                )
            fields["redirect_template"] = template
        for key in ("rewrite_host", "rewrite_path"):
            if key in front:
                text = self.value((*path, key), front[key], "str")
                fields[key] = self.checked((*path, key), check_wire_text, text)
        if "rewrite_port" in front:
            port = self.value((*path, "rewrite_port"), front["rewrite_port"], "uint32")
            fields["rewrite_port"] = self.checked((*path, "rewrite_port"), check_port, port)
        if "required_auth" in front:
            fields["required_auth"] = self.value(
                (*path, "required_auth"), front["required_auth"], "bool"
            )
        if "headers" in front:
            fields["headers"] = self.headers((*path, "headers"), front["headers"])

        rule = (
            address,
            hostname,
            kind,
            value,
            fields.get("method") or "",
            fields.get("position", "TREE"),
        )
        owner = self.http_rule_owner.get(rule)
        if owner is not None:
            other = "this cluster" if owner == name else f"cluster {owner!r}"
            raise self.error(path, f"{other} already has a frontend with this rule")
        self.http_rule_owner[rule] = name
        tls_keys = [key for key in front if key in _HTTPS_FRONTEND_KEYS]
        listener = self.listener_at.get(address)
        if listener is None:
            proxy = "HTTPS" if any(key in front for key in _CERTIFICATE_FILES) else "HTTP"
        elif listener[0] == "TCP":
            raise self.error(
                (*path, "address"),
                f"{address} is a tcp listener; an http frontend needs an http or https listener",
            )
        else:
            proxy = listener[0]
        if proxy == "HTTP":
            if tls_keys:
                reason = "only valid for https frontends"
                if listener is None:  # no certificate: no default https listener either
                    reason += " (with certificate and key files)"
                else:
                    reason += f" ({address} is an http listener)"
                raise self.error((*path, tls_keys[0]), reason)
            if listener is None:
                self.default_listener("HTTP", address, server)
            return [("ADD_HTTP_FRONTEND", fields)]

        requests: list[tuple[str, dict[str, Any]]] = []
        files = self.certificate_files(path, front)
        if "tls_versions" in front and files is None:
            raise self.error(
                (*path, "tls_versions"), "only valid with certificate and key (they apply to it)"
            )
        if "hsts" in front:
            fields["hsts"] = self.hsts((*path, "hsts"), front["hsts"])
        if listener is None:
            self.default_listener("HTTPS", address, server)
        known = self.certificates.setdefault(address, {})
        if files is None:
            self.uncertified.append((path, address))
        else:
            certificate = dict(files[0])
            if "tls_versions" in front:
                words = self.string_list((*path, "tls_versions"), front["tls_versions"])
                certificate["versions"] = self.tls_versions((*path, "tls_versions"), words)
            if files[1] not in known:
                known[files[1]] = (certificate, path)
                requests.append(
                    ("ADD_CERTIFICATE", {"address": address, "certificate": certificate})
                )
            else:  # sent once: its uses must not disagree on its chain or versions
                sent, where = known[files[1]]
                for key in ("certificate_chain", "versions"):
                    if key in certificate and key in sent and certificate[key] != sent[key]:
                        name = "tls_versions" if key == "versions" else key
                        raise self.error(
                            (*path, name),
                            f"this certificate is also given at {_dotted(where)} with another "
                            f"{name} (a certificate is added once per listener)",
                        )
        requests.append(("ADD_HTTPS_FRONTEND", fields))
        return requests

    def headers(self, path: _Path, raw: Any) -> list[dict[str, str]]:
        """Header edits ``{ position, key, value }`` (Sōzu's file spelling of ``val``)."""
        edits: list[dict[str, str]] = []
        for index, raw_edit in enumerate(self.array(path, raw, "tables")):
            edit_path = (*path, index)
            edit = self.table(edit_path, raw_edit, _HEADER_KEYS, "a header edit")
            for key in ("position", "key", "value"):
                self.required(edit_path, edit, key, "a header edit")
            position = self.choice((*edit_path, "position"), edit["position"], HEADER_POSITIONS)
            key = self.value((*edit_path, "key"), edit["key"], "str")
            val = self.value((*edit_path, "value"), edit["value"], "str")
            edits.append(
                {
                    "position": position,
                    "key": self.checked((*edit_path, "key"), check_header_name, key),
                    "val": self.checked((*edit_path, "value"), check_header_value, val),
                }
            )
        return edits

    def backends(self, path: _Path, table: dict[str, Any], name: str) -> list[dict[str, Any]]:
        backends: list[dict[str, Any]] = []
        ids: set[str] = set()
        backends_raw = self.array((*path, "backends"), table.get("backends", []), "tables")
        for index, raw_backend in enumerate(backends_raw):
            back_path = (*path, "backends", index)
            back = self.table(back_path, raw_backend, _BACKEND_KEYS, "a backend")
            address = self.value(
                (*back_path, "address"),
                self.required(back_path, back, "address", "a backend"),
                "address",
            )
            backend_id = self.value(
                (*back_path, "backend_id"),
                back.get("backend_id", f"{name}-{index}"),
                "nonempty_str",
            )
            if backend_id in ids:
                raise self.error(
                    (*back_path, "backend_id"), f"backend id {backend_id!r} is used twice"
                )
            if any(b["address"] == address for b in backends):
                raise self.error(
                    (*back_path, "address"), f"backend address {address} is used twice"
                )
            ids.add(backend_id)
            weight = self.value(
                (*back_path, "weight"), back.get("weight", _DEFAULT_WEIGHT), "weight"
            )
            backend: dict[str, Any] = {
                "cluster_id": name,
                "backend_id": backend_id,
                "address": address,
                "load_balancing_parameters": {"weight": weight},
            }
            if "sticky_id" in back:
                backend["sticky_id"] = self.value(
                    (*back_path, "sticky_id"), back["sticky_id"], "nonempty_str"
                )
            if "backup" in back:
                backend["backup"] = self.value((*back_path, "backup"), back["backup"], "bool")
            backends.append(backend)
        return backends

    def proxy_protocol(
        self, path: _Path, table: dict[str, Any], frontends: list[dict[str, Any]]
    ) -> str | None:
        """Sōzu's rule: send_proxy and the listeners' expect_proxy give the PROXY mode."""
        if "proxy_protocol" in table:
            if "send_proxy" in table:
                raise self.error(
                    (*path, "proxy_protocol"), "give either send_proxy or proxy_protocol, not both"
                )
            value = table["proxy_protocol"]
            if isinstance(value, str) and value.lower() in _PROXY_PROTOCOL_WORDS:
                return _PROXY_PROTOCOL_WORDS[value.lower()]
            choices = (*PROXY_PROTOCOL_CONFIGS, *_PROXY_PROTOCOL_WORDS)
            return self.choice((*path, "proxy_protocol"), value, choices)
        send = self.value((*path, "send_proxy"), table.get("send_proxy", False), "bool")
        expects = {self.listener_at[f["address"]][1]["expect_proxy"] for f in frontends}
        if len(expects) > 1:
            raise self.error(
                (*path, "frontends"),
                "frontends mix listeners with and without expect_proxy",
            )
        expect = expects == {True}
        if send:
            return "RELAY_HEADER" if expect else "SEND_HEADER"
        return "EXPECT_HEADER" if expect else None


# --------------------------------------------------------------------------------------------
# Key positions
# --------------------------------------------------------------------------------------------


class _Positions:
    """Where each key path starts in a TOML text that :mod:`tomllib` already accepted.

    Paths are tuples of keys and array indexes, as :func:`_dotted` renders them.  The scan is
    forgiving: on anything unexpected it stops and keeps what it found, since it only serves
    to put a line number on an error message.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[_Path, int] = {}
        self._aot_count: dict[_Path, int] = {}
        try:
            self._document()
        except (IndexError, ValueError, tomllib.TOMLDecodeError):
            pass

    def line(self, path: _Path) -> int | None:
        """The line of ``path``, or of its nearest located ancestor."""
        for end in range(len(path), 0, -1):
            offset = self.found.get(path[:end])
            if offset is not None:
                return self.text.count("\n", 0, offset) + 1
        return None

    # -- scanning ------------------------------------------------------------------------------

    def _skip(self, newlines: bool = True) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _resolve(self, key: _Path, upto: int) -> _Path:
        """Insert the current index after each array-of-tables prefix of ``key[:upto]``."""
        out: list[str | int] = []
        for index, part in enumerate(key):
            out.append(part)
            if index < upto and tuple(out) in self._aot_count:
                out.append(self._aot_count[tuple(out)] - 1)
        return tuple(out)

    def _document(self) -> None:
        table: _Path = ()
        text = self.text
        while True:
            self._skip()
            if self.pos >= len(text):
                return
            start = self.pos
            if text.startswith("[[", start):
                self.pos += 2
                key = self._key()
                base = self._resolve(key, len(key) - 1)
                index = self._aot_count.get(base, 0)
                self._aot_count[base] = index + 1
                table = (*base, index)
                self.found.setdefault(base, start)
                self.found[table] = start
                self._expect("]]")
            elif text[start] == "[":
                self.pos += 1
                key = self._key()
                table = self._resolve(key, len(key))
                self.found.setdefault(table, start)
                self._expect("]")
            else:
                key = self._key()
                self._expect("=")
                self._record(table, key, start)
                self._value((*table, *key))

    def _record(self, table: _Path, key: _Path, start: int) -> None:
        """Record a (possibly dotted) key and each of its prefixes at ``start``."""
        for end in range(1, len(key) + 1):
            self.found.setdefault((*table, *key[:end]), start)

    def _expect(self, token: str) -> None:
        self._skip(newlines=False)
        if not self.text.startswith(token, self.pos):
            raise ValueError(f"expected {token!r}")
        self.pos += len(token)
        self._skip(newlines=False)

    def _key(self) -> _Path:
        parts: list[str | int] = []
        text = self.text
        while True:
            self._skip(newlines=False)
            start = self.pos
            if text[start] in "\"'":
                self._string()
                parts.append(tomllib.loads(f"k = {text[start : self.pos]}")["k"])
            else:
                match = _BARE_KEY.match(text, start)
                if match is None:
                    raise ValueError("expected a key")
                parts.append(match.group())
                self.pos = match.end()
            self._skip(newlines=False)
            if self.pos < len(text) and text[self.pos] == ".":
                self.pos += 1
                continue
            return tuple(parts)

    def _string(self) -> None:
        text = self.text
        quote = text[self.pos]
        if text.startswith(quote * 3, self.pos):
            self.pos += 3
            while not text.startswith(quote * 3, self.pos):
                self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
                if self.pos >= len(text):
                    raise ValueError("unterminated string")
            self.pos += 3
            while self.pos < len(text) and text[self.pos] == quote:  # up to two quotes may end it
                self.pos += 1
            return
        self.pos += 1
        while text[self.pos] != quote:
            self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
        self.pos += 1

    def _value(self, path: _Path) -> None:
        text = self.text
        self._skip(newlines=False)
        c = text[self.pos]
        if c in "\"'":
            self._string()
        elif c == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip()
                if text[self.pos] == "]":
                    self.pos += 1
                    return
                self.found.setdefault((*path, index), self.pos)
                self._value((*path, index))
                self._skip()
                if text[self.pos] == ",":
                    self.pos += 1
                    index += 1
        elif c == "{":
            self.pos += 1
            while True:
                self._skip()
                if text[self.pos] == "}":
                    self.pos += 1
                    return
                start = self.pos
                key = self._key()
                self._expect("=")
                self._record(path, key, start)
                self._value((*path, *key))
                self._skip()
                if text[self.pos] == ",":
                    self.pos += 1
        else:
            match = _SCALAR.match(text, self.pos)
            if match is None:
                raise ValueError("expected a value")
            self.pos = match.end()
