"""Command requests and responses: the messages spoken on a pysozu channel.

Theory of operation
-------------------
A proxy is driven by *requests* (add a cluster, add a backend, activate a listener…) and
answers every request id with a *response*.  On the wire (see ``DESIGN.md``) a request is one
JSON object holding its ``id``, its ``type`` and the fields of Sōzu's ``command.proto`` message
for that type side by side, in snake_case::

    {"id": "r1", "type": "ADD_BACKEND", "cluster_id": "app", "backend_id": "app-0",
     "address": "127.0.0.1:8000"}

Requests arrive from untrusted clients, so :func:`parse_request` validates everything before a
request reaches :class:`pysozu.state.ConfigState` or a proxy: the JSON types, the enums, the
``host:port`` addresses (normalised, so ``[0::1]:80`` and ``[::1]:80`` compare equal), required
and unknown fields.  Defaults are filled as in Sōzu, so every consumer sees every field of a
request type and never has to guess a default.  Validation is data driven: :data:`REQUEST_SPECS`
maps each request type to a table of :class:`FieldSpec`; supporting a new request type means
adding a row to that table.

Beyond types, a few fields carry rules of their own, checked here because a bad value would
otherwise reach the wire or the router much later: HTTP host names (normalised to lower-case
ASCII, IDNA for non-ASCII labels, ``*.`` wildcards, ``/regex/`` labels), path rules (a REGEX
must compile with :mod:`re`), header edits (names are RFC 9110 tokens, values carry no CR,
LF, NUL or other control byte, so a configured header can never inject a second header or
message), answer templates (keyed by the status codes that have a default answer), health
check probes and log filters, the HTTP/2 settings' ranges (:data:`H2_LISTENER_FIELDS`), and one
rule across fields: an HTTPS listener with ``disable_http11`` must offer ``h2``.  The same
checks are public (:func:`normalise_hostname`, :func:`check_path_rule`, …) so
:mod:`pysozu.config` reports them against a TOML key and line.
This module does no I/O: an answer template ``"file://PATH"`` is kept as written.

Responses are plain dicts ``{"id", "status", "message", "content"}`` built by :func:`ok`,
:func:`processing` and :func:`failure`; pushed events use id ``"EVENT"`` (:func:`event`).
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pysozu.reactor.channel import json_kind

__all__ = [
    "ALPN_PROTOCOLS",
    "ANSWER_CODES",
    "DEFAULT_SOZU_ID_HEADER",
    "DEFAULT_STICKY_NAME",
    "EVENT_KINDS",
    "H2_LISTENER_FIELDS",
    "HEADER_POSITIONS",
    "LISTENER_TYPES",
    "LOAD_BALANCING_ALGORITHMS",
    "LOAD_METRICS",
    "LOG_LEVELS",
    "METRICS_CONFIGURATIONS",
    "PATH_RULE_KINDS",
    "PROXY_PROTOCOL_CONFIGS",
    "REDIRECT_POLICIES",
    "REDIRECT_SCHEMES",
    "REQUEST_SPECS",
    "RESPONSE_STATUSES",
    "RULE_POSITIONS",
    "TLS_VERSIONS",
    "CommandError",
    "FieldSpec",
    "Request",
    "check_alpn_protocols",
    "check_answers",
    "check_authorized_hash",
    "check_backend_alpn",
    "check_backend_server_name",
    "check_disable_http11",
    "check_expected_status",
    "check_fingerprint",
    "check_h2_field",
    "check_header_name",
    "check_header_value",
    "check_log_filter",
    "check_method",
    "check_path_rule",
    "check_port",
    "check_probe_uri",
    "check_realm",
    "check_tls_versions",
    "check_token",
    "check_wire_text",
    "event",
    "failure",
    "format_address",
    "make_request",
    "normalise_hostname",
    "normalise_sni_hostname",
    "ok",
    "parse_address",
    "parse_request",
    "parse_response",
    "processing",
    "request_or_failure",
]


class CommandError(ValueError):
    """A request or response is malformed; the message says exactly what is wrong."""


# --------------------------------------------------------------------------------------------
# Enumerations (names as in Sōzu's command.proto)
# --------------------------------------------------------------------------------------------

#: ``LoadBalancingAlgorithms``; Sōzu's UDP-only HRW and MAGLEV are not supported.
LOAD_BALANCING_ALGORITHMS: Final = ("ROUND_ROBIN", "RANDOM", "LEAST_LOADED", "POWER_OF_TWO")
#: ``LoadMetric``: how LEAST_LOADED and POWER_OF_TWO measure a backend's load.
LOAD_METRICS: Final = ("CONNECTIONS", "REQUESTS", "CONNECTION_TIME")
#: ``ProxyProtocolConfig``: what a TCP cluster does with PROXY protocol headers.
PROXY_PROTOCOL_CONFIGS: Final = ("EXPECT_HEADER", "SEND_HEADER", "RELAY_HEADER")
#: ``ListenerType`` (Sōzu's UDP is not supported).
LISTENER_TYPES: Final = ("HTTP", "HTTPS", "TCP")
#: ``ResponseStatus``.
RESPONSE_STATUSES: Final = ("OK", "PROCESSING", "FAILURE")
#: ``PathRuleKind``: how an HTTP frontend's path is compared with the request's.
PATH_RULE_KINDS: Final = ("PREFIX", "REGEX", "EQUALS")
#: ``RulePosition``: which part of a listener's router holds a frontend (tried PRE, then the
#: host name TREE, then POST).
RULE_POSITIONS: Final = ("PRE", "TREE", "POST")
#: ``RedirectPolicy``: forward to the cluster, answer 301/302/308, or answer 401.
REDIRECT_POLICIES: Final = ("FORWARD", "PERMANENT", "FOUND", "PERMANENT_REDIRECT", "UNAUTHORIZED")
#: ``RedirectScheme``: the scheme of a redirect's ``Location``.
REDIRECT_SCHEMES: Final = ("USE_SAME", "USE_HTTP", "USE_HTTPS")
#: ``HeaderPosition`` (Sōzu's ``HEADER_POSITION_UNSPECIFIED`` is refused, as its worker does).
HEADER_POSITIONS: Final = ("REQUEST", "RESPONSE", "BOTH")
#: ``MetricsConfiguration``: what CONFIGURE_METRICS does to the local metrics.
METRICS_CONFIGURATIONS: Final = ("ENABLED", "DISABLED", "CLEAR")
#: Status codes that have a built-in answer, hence the keys an ``answers`` map may override:
#: Sōzu's default answers plus the parser's 414, 431, 501 and 505.
ANSWER_CODES: Final = (
    "301", "302", "308", "400", "401", "404", "408", "413", "414", "421", "429", "431", "501",
    "502", "503", "504", "505", "507",
)  # fmt: skip
#: Level names of a LOGGING filter (Sōzu's, which are the ``log`` crate's).
LOG_LEVELS: Final = ("off", "error", "warn", "info", "debug", "trace")
#: ``TlsVersion``: what an HTTPS listener may negotiate. Sōzu ignores (with an error log) the
#: versions before TLS 1.2; pysozu refuses them with a FAILURE.
TLS_VERSIONS: Final = ("SSL_V2", "SSL_V3", "TLS_V1_0", "TLS_V1_1", "TLS_V1_2", "TLS_V1_3")
#: ALPN protocols an HTTPS listener can serve; Sōzu's default offer, in its order of preference.
ALPN_PROTOCOLS: Final = ("h2", "http/1.1")
#: Sōzu's default name of the sticky-session cookie.
DEFAULT_STICKY_NAME: Final = "SOZUBALANCEID"
#: Sōzu's default name of the header carrying each request's id.
DEFAULT_SOZU_ID_HEADER: Final = "Sozu-Id"
#: ``EventKind``: what a worker may push with id ``"EVENT"``.
EVENT_KINDS: Final = frozenset(
    {
        "BACKEND_DOWN",
        "BACKEND_UP",
        "NO_AVAILABLE_BACKENDS",
        "REMOVED_BACKEND_HAS_NO_CONNECTIONS",
        "CLUSTER_ADDED",
        "CLUSTER_REMOVED",
        "FRONTEND_ADDED",
        "FRONTEND_REMOVED",
        "CERTIFICATE_ADDED",
        "CERTIFICATE_REMOVED",
        "CERTIFICATE_REPLACED",
        "LISTENER_ACTIVATED",
        "LISTENER_DEACTIVATED",
        "CONFIGURATION_RELOADED",
        "WORKER_KILLED",
        "WORKER_RELAUNCHED",
        "LOGGING_LEVEL_CHANGED",
        "METRICS_CONFIGURED",
        "LISTENER_UPDATED",
        "STATE_LOADED",
        "STATE_SAVED",
        "LISTENER_ADDED",
        "LISTENER_REMOVED",
        "SOZU_STOP_REQUESTED",
        "MAIN_UPGRADED",
        "WORKER_UPGRADED",
        "EVENTS_SUBSCRIBED",
        "HEALTH_CHECK_HEALTHY",
        "HEALTH_CHECK_UNHEALTHY",
        "CLUSTER_RECOVERED",
        "METRIC_DETAIL_CHANGED",
    }
)

_UINT32_MAX: Final = 2**32 - 1
_UINT64_MAX: Final = 2**64 - 1
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1

#: HTTP/2 listener fields (Sōzu's ``h2_*`` knobs of ``HttpListenerConfig`` and
#: ``HttpsListenerConfig``, plus pysozu's ``h2_initial_window_size`` and ``h2_max_frame_size``):
#: name -> (default, lowest, highest).  The windows and the frame size are bounded by RFC 9113
#: (§6.5.2, §6.9.1; the connection window never shrinks below the protocol's 65535); the flood
#: limits count frames, so 0 would refuse every peer.  ``h2_max_header_table_size`` is the HPACK
#: decoder table we advertise (pysozu's default 4096, the protocol's; Sōzu's is 65536) and may be
#: 0, which turns the dynamic table off (RFC 7541 §4.2).  Sōzu's ``h2_stream_shrink_ratio`` and
#: ``h2_stream_idle_timeout_seconds`` are not taken: pysozu's HTTP/2 streams hold no buffers of
#: their own to shrink, and have no idle timer besides the connection's ``front_timeout``.
H2_LISTENER_FIELDS: Final[dict[str, tuple[int, int, int]]] = {
    "h2_max_concurrent_streams": (100, 1, _UINT32_MAX),
    "h2_initial_window_size": (65_535, 1, _INT32_MAX),
    "h2_initial_connection_window": (1_048_576, 65_535, _INT32_MAX),
    "h2_max_frame_size": (16_384, 16_384, 16_777_215),
    "h2_max_header_list_size": (65_536, 1, _UINT32_MAX),
    "h2_max_header_table_size": (4_096, 0, _UINT32_MAX),
    "h2_max_header_fields": (128, 1, _UINT32_MAX),
    "h2_max_rst_stream_per_window": (100, 1, _UINT32_MAX),
    "h2_max_ping_per_window": (100, 1, _UINT32_MAX),
    "h2_max_settings_per_window": (50, 1, _UINT32_MAX),
    "h2_max_empty_data_per_window": (100, 1, _UINT32_MAX),
    "h2_max_window_update_stream0_per_window": (100, 1, _UINT32_MAX),
    "h2_max_continuation_frames": (20, 1, _UINT32_MAX),
    "h2_max_glitch_count": (100, 1, _UINT32_MAX),
    "h2_max_rst_stream_lifetime": (10_000, 1, _UINT32_MAX),
    "h2_max_rst_stream_abusive_lifetime": (50, 1, _UINT32_MAX),
    "h2_max_rst_stream_emitted_lifetime": (500, 1, _UINT32_MAX),
    # soft stop: seconds HTTP/2 clients get between the first GOAWAY and the forced close
    "h2_graceful_shutdown_deadline_seconds": (5, 1, _UINT32_MAX),
}


# --------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------

_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _invalid_address(s: object) -> CommandError:
    return CommandError(f"invalid address {s!r} (expected host:port)")


def parse_address(s: str) -> tuple[str, int]:
    """Split ``"host:port"`` (``"[v6]:port"`` for IPv6) into a normalised host and a port.

    IP literals are normalised by :mod:`ipaddress` (so one address has one spelling, which
    keeps state keys and diffs exact); names must be RFC 1123 host names and are lower-cased.
    """
    if not isinstance(s, str):
        raise _invalid_address(s)
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or s[end + 1 : end + 2] != ":":
            raise _invalid_address(s)
        host_text, port_text = s[1:end], s[end + 2 :]
        try:
            host = str(ipaddress.IPv6Address(host_text))
        except ValueError:
            raise CommandError(
                f"invalid address {s!r}: {host_text!r} is not an IPv6 address"
            ) from None
    else:
        host_text, sep, port_text = s.rpartition(":")
        if not sep or not host_text:
            raise _invalid_address(s)
        if ":" in host_text:
            raise CommandError(f"invalid address {s!r}: write IPv6 addresses as [host]:port")
        host = _normalise_host(s, host_text)
    if not port_text.isascii() or not port_text.isdigit():
        raise CommandError(f"invalid address {s!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if port > 65535:
        raise CommandError(f"invalid address {s!r}: port {port} is out of range 0..65535")
    return host, port


def _normalise_host(s: str, host: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if (
        len(host) > 253
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()  # "1.2.3.999" is a bad IPv4 address, not a host name
    ):
        raise CommandError(f"invalid address {s!r}: {host!r} is not an IP address or host name")
    return host.lower()


def format_address(host: str, port: int) -> str:
    """Join a host and a port into the wire form, bracketing IPv6 hosts."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _normalise_address(s: str) -> str:
    return format_address(*parse_address(s))


# --------------------------------------------------------------------------------------------
# Field rules beyond types (public: pysozu.config reports them against a TOML key)
# --------------------------------------------------------------------------------------------
# Each raises CommandError with a bare reason; a FieldSpec ``check`` prefixes the field name.

#: RFC 9110 ``tchar``: the bytes of a token (header names, methods, cookie names).
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Bytes that must never reach a header value or a request line: C0 controls but HTAB, and DEL
#: (the set Sōzu's converter filters, so the config and the wire agree).
_FORBIDDEN_IN_VALUE: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SPACE_OR_CONTROL: Final = re.compile(r"[\x00-\x20\x7f]")
_HOSTNAME_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_AUTHORIZED_HASH: Final = re.compile(r"([^:\x00-\x20\x7f]+):([0-9A-Fa-f]{64})")


def check_token(value: str, what: str) -> str:
    """``value`` must be an RFC 9110 token (what header names, methods and cookie names are)."""
    if not _TOKEN.fullmatch(value):
        raise CommandError(f"{what} {value!r} is not a token (letters, digits and !#$%&'*+-.^_`|~)")
    return value


def check_header_name(name: str) -> str:
    """A header name to add, replace or delete: a token, so it cannot split the header block."""
    return check_token(name, "header name")


def check_header_value(value: str) -> str:
    """A header value: no CR, LF, NUL or other control byte (HTAB is allowed, as in RFC 9110),
    so a configured value can never start a new header or message on the wire."""
    if _FORBIDDEN_IN_VALUE.search(value):
        raise CommandError(
            f"header value {value!r} must not contain CR, LF, NUL or other control characters"
        )
    return value


def check_method(method: str) -> str:
    """An HTTP method to match: a token (methods are case-sensitive, so it is kept as given)."""
    return check_token(method, "method")


def check_wire_text(value: str) -> str:
    """Text copied into a request line or header (rewrite templates, realms)."""
    if _FORBIDDEN_IN_VALUE.search(value):
        raise CommandError(f"{value!r} must not contain CR, LF, NUL or other control characters")
    return value


def check_port(port: int) -> int:
    """A TCP port a client is sent to (0 is not one)."""
    if not 1 <= port <= 65535:
        raise CommandError(f"must be a port between 1 and 65535 (got {port})")
    return port


def normalise_hostname(hostname: str) -> str:
    """Check an HTTP frontend's host name and return its canonical spelling.

    Sōzu's forms are kept: ``*`` (any host), ``*.example.com`` (a wildcard for exactly one
    leftmost label), labels written ``/regex/`` (kept verbatim; each regex must compile), and
    exact names.  Exact and wildcard names are lower-cased and non-ASCII labels converted to
    IDNA, as the router compares them, so one rule has one spelling in the state.  A port is
    refused: a frontend's port is its listener's.
    """
    if not hostname:
        raise CommandError("must not be empty")
    if _SPACE_OR_CONTROL.search(hostname):
        raise CommandError(f"host name {hostname!r} must not contain spaces or control characters")
    if hostname == "*":
        return hostname
    if "/" in hostname:
        parts = hostname.split("/")
        if len(parts) % 2 == 0:
            raise CommandError(
                f"host name {hostname!r} has an unterminated regular expression "
                "(a regex label is written /regex/)"
            )
        for regex in parts[1::2]:
            if not regex:
                raise CommandError(f"host name {hostname!r} has an empty regular expression")
            try:
                re.compile(regex)
            except re.error as exc:
                raise CommandError(
                    f"host name {hostname!r}: invalid regular expression {regex!r}: {exc}"
                ) from None
        return hostname
    wildcard = hostname.startswith("*.")
    name = hostname[2:] if wildcard else hostname
    if "*" in name:
        raise CommandError(
            f"host name {hostname!r}: a wildcard is only allowed as the whole first label "
            "(*.example.com)"
        )
    if ":" in name:
        raise CommandError(
            f"host name {hostname!r} must not contain a port (the listener gives the port)"
        )
    try:
        ascii_name = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        raise CommandError(f"{hostname!r} is not a valid host name") from None
    ascii_name = ascii_name.lower()
    if len(ascii_name) > 253 or not all(
        _HOSTNAME_LABEL.fullmatch(label) for label in ascii_name.split(".")
    ):
        raise CommandError(f"{hostname!r} is not a valid host name")
    return f"*.{ascii_name}" if wildcard else ascii_name


def check_path_rule(kind: str, value: str) -> None:
    """A frontend's path rule: no spaces or controls (no request path has them), and a REGEX
    must compile, so a bad pattern is refused when configured rather than when routing."""
    if _SPACE_OR_CONTROL.search(value):
        raise CommandError(f"path {value!r} must not contain spaces or control characters")
    if kind == "REGEX":
        try:
            re.compile(value)
        except re.error as exc:
            raise CommandError(f"invalid regular expression {value!r}: {exc}") from None


def check_answers(answers: Mapping[str, str], *, allow_empty: bool = False) -> dict[str, str]:
    """An ``answers`` map: status code -> template (inline text or ``file://PATH``).

    Only codes with a built-in answer can be overridden.  ``allow_empty`` is for UPDATE
    patches, where an empty template means "keep the current one" (Sōzu's rule).
    """
    for code, template in answers.items():
        if code not in ANSWER_CODES:
            raise CommandError(
                f"no answer for status {code!r} (answers exist for {', '.join(ANSWER_CODES)})"
            )
        if not template and not allow_empty:
            raise CommandError(f"the answer template for {code} must not be empty")
        if template == "file://":
            raise CommandError(f"the answer template for {code} names no file (file://PATH)")
    return dict(answers)


def check_authorized_hash(entry: str) -> str:
    """A basic-auth credential ``user:hex(sha256(password))``; the hex is lower-cased, the form
    the proxy compares with."""
    match = _AUTHORIZED_HASH.fullmatch(entry)
    if match is None:
        raise CommandError(
            f"credential {entry!r} must be USER:SHA256 (the SHA-256 of the password "
            "in 64 hex digits)"
        )
    return f"{match.group(1)}:{match.group(2).lower()}"


def check_probe_uri(uri: str) -> str:
    """A health check's request target: an absolute path with no space or control byte, so it
    cannot smuggle a second request into the probe (Sōzu's ``validate_health_check_config``)."""
    if not uri.startswith("/"):
        raise CommandError(f"the probe URI must start with '/' (got {uri!r})")
    if _SPACE_OR_CONTROL.search(uri):
        raise CommandError(f"the probe URI {uri!r} must not contain spaces or control characters")
    return uri


def check_expected_status(status: int) -> int:
    """0 (any 2xx) or one HTTP status code."""
    if status != 0 and not 100 <= status <= 599:
        raise CommandError(f"must be 0 (any 2xx) or a status between 100 and 599 (got {status})")
    return status


def _check_positive(value: int) -> int:
    # A zero interval, timeout or threshold would make the health checker spin or never decide.
    if value == 0:
        raise CommandError("must be greater than 0")
    return value


def check_log_filter(spec: str) -> str:
    """A LOGGING filter in Sōzu's grammar (``parse_logging_spec``): comma-separated directives
    ``LEVEL``, ``MODULE=LEVEL`` or ``MODULE=`` (every level), then optionally ``/REGEX`` that
    messages must match.  Levels: off, error, warn, info, debug, trace (any case)."""
    if not spec.strip():
        raise CommandError("must not be empty")
    if _FORBIDDEN_IN_VALUE.search(spec):
        raise CommandError(f"log filter {spec!r} must not contain control characters")
    directives, _, regex = spec.partition("/")
    if "/" in regex:
        raise CommandError(f"log filter {spec!r} has more than one '/'")
    found = False
    for directive in directives.split(","):
        if not directive.strip():
            continue
        found = True
        parts = directive.split("=")
        if len(parts) > 2:
            raise CommandError(f"log directive {directive!r} has more than one '='")
        level = parts[-1].strip()
        if len(parts) == 2 and not parts[0].strip():
            raise CommandError(f"log directive {directive!r} names no module")
        if (len(parts) == 1 or level) and level.lower() not in LOG_LEVELS:
            raise CommandError(
                f"invalid log level in {directive!r} (choose from {', '.join(LOG_LEVELS)})"
            )
    if regex:
        try:
            re.compile(regex)
        except re.error as exc:
            raise CommandError(f"invalid regular expression {regex!r}: {exc}") from None
    elif not found:
        raise CommandError(f"log filter {spec!r} names no level")
    return spec


def _check_cookie_name(name: str) -> str:
    return check_token(name, "cookie name")


def _check_answers_patch(answers: Mapping[str, str]) -> dict[str, str]:
    return check_answers(answers, allow_empty=True)


def _check_authorized_hashes(entries: list[str]) -> list[str]:
    return [check_authorized_hash(entry) for entry in entries]


def check_realm(realm: str) -> str:
    """A basic-auth realm, sent as ``WWW-Authenticate: Basic realm="…"``: besides controls,
    a quote or a backslash would end or escape that quoted string early."""
    check_wire_text(realm)
    if '"' in realm or "\\" in realm:
        raise CommandError(f"realm {realm!r} must not contain '\"' or '\\'")
    return realm


def check_tls_versions(versions: list[str]) -> list[str]:
    """TLS versions by Sōzu's names; a name outside ``TlsVersion`` is refused here, an old
    version by the worker (it names what it supports)."""
    for version in versions:
        if version not in TLS_VERSIONS:
            raise CommandError(
                f"unknown TLS version {version!r} (one of {', '.join(TLS_VERSIONS)})"
            )
    return list(dict.fromkeys(versions))


def _check_certificate_names(names: list[str]) -> list[str]:
    for name in names:
        if not name or any(c.isspace() for c in name):
            raise CommandError(f"invalid server name {name!r}")
    return names


def check_alpn_protocols(protocols: list[str]) -> list[str]:
    """ALPN protocol ids the listener offers, in its order of preference."""
    for protocol in protocols:
        if protocol not in ALPN_PROTOCOLS:
            raise CommandError(
                f"unsupported ALPN protocol {protocol!r} (one of {', '.join(ALPN_PROTOCOLS)})"
            )
    return list(dict.fromkeys(protocols))


def check_h2_field(name: str, value: int) -> int:
    """An HTTP/2 listener field (:data:`H2_LISTENER_FIELDS`) within its range."""
    _, low, high = H2_LISTENER_FIELDS[name]
    if not low <= value <= high:
        raise CommandError(f"must be between {low} and {high} (got {value})")
    return value


def check_disable_http11(fields: Mapping[str, Any]) -> None:
    """An HTTPS listener that turns HTTP/1.1 off must offer ``h2``, or it serves nothing."""
    if fields.get("disable_http11") and "h2" not in (fields.get("alpn_protocols") or ()):
        raise CommandError("disable_http11 needs 'h2' in alpn_protocols")


def check_cluster_protocols(fields: Mapping[str, Any]) -> None:
    """HTTP/2 to backends is cleartext (h2c) only: with ``backend_tls`` the backends would
    get HTTP/1.1 over TLS while ``http2`` says they speak HTTP/2."""
    if fields.get("http2") and fields.get("backend_tls"):
        raise CommandError("http2 with backend_tls is not supported: HTTP/2 to backends is "
                           "h2c (cleartext) only")


def check_backend_alpn(protocols: list[str]) -> list[str]:
    """ALPN ids offered to TLS backends: only ``http/1.1`` is spoken to them for now."""
    for protocol in protocols:
        if protocol != "http/1.1":
            raise CommandError(
                f"ALPN protocol {protocol!r} is not spoken to backends (only 'http/1.1' until "
                "HTTP/2 to backends lands)"
            )
    return list(dict.fromkeys(protocols))


def check_backend_server_name(name: str) -> str:
    """The name a TLS backend is asked for (SNI) and checked against: a host name
    (normalised; no wildcard, regex or port) or an IP address (checked, never sent)."""
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    normalised = normalise_hostname(name)
    if "*" in normalised or "/" in normalised:
        raise CommandError(f"{name!r} must be one host name (no wildcard or regex)")
    return normalised


def _check_backend_tls(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("ca") and fields.get("ca_file"):
        raise CommandError("give either ca (an inline PEM bundle) or ca_file, not both")
    return fields


_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")


def check_fingerprint(fingerprint: str) -> str:
    """A certificate fingerprint: 64 hex digits (SHA-256 of the DER), any case."""
    value = fingerprint.strip().lower()
    if not _FINGERPRINT.fullmatch(value):
        raise CommandError(
            f"invalid fingerprint {fingerprint!r} (64 hex digits of SHA-256 expected)"
        )
    return value


def _check_path_object(rule: dict[str, Any]) -> dict[str, Any]:
    check_path_rule(rule["kind"], rule["value"])
    return rule


# --------------------------------------------------------------------------------------------
# Field specifications
# --------------------------------------------------------------------------------------------

_MISSING: Final = object()


@dataclass(frozen=True)
class FieldSpec:
    """How one field of a request is checked and defaulted.

    ``kind`` is one of ``str``, ``bool``, ``uint32``, ``uint64``, ``int32``, ``address``,
    ``enum`` (one of ``choices``), ``str_map`` (object of strings), ``str_list``, ``object``
    (a nested message described by ``fields``) or ``object_list`` (a list of such messages).
    A field that is not ``required`` and is absent (or ``null``) takes ``default``; ``None``
    means "optional, unset".  ``check``, when set, runs on a given value once its kind is
    checked: it returns the value (possibly normalised) or raises :class:`CommandError` with
    a bare reason, which is reported with the field's name.
    """

    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    fields: Mapping[str, FieldSpec] | None = None
    nonempty: bool = False
    check: Callable[[Any], Any] | None = None


def _req(kind: str, **kwargs: Any) -> FieldSpec:
    return FieldSpec(kind, required=True, **kwargs)


def _opt(kind: str, default: Any = None, **kwargs: Any) -> FieldSpec:
    return FieldSpec(kind, default=default, **kwargs)


_ID: Final = _req("str", nonempty=True)
_ADDRESS: Final = _req("address")
_PROXY: Final = _req("enum", choices=LISTENER_TYPES)

_HEALTH_CHECK: Final[dict[str, FieldSpec]] = {
    "uri": _req("str", check=check_probe_uri),
    "interval": _opt("uint32", 10, check=_check_positive),
    "timeout": _opt("uint32", 5, check=_check_positive),
    "healthy_threshold": _opt("uint32", 3, check=_check_positive),
    "unhealthy_threshold": _opt("uint32", 3, check=_check_positive),
    "expected_status": _opt("uint32", 0, check=check_expected_status),
}

_BACKEND_TLS: Final[dict[str, FieldSpec]] = {
    "verify": _opt("bool", True),
    "ca_file": _opt("str", nonempty=True),
    "ca": _opt("str", nonempty=True),
    "server_name": _opt("str", nonempty=True, check=check_backend_server_name),
    "alpn_protocols": _opt("str_list", ["http/1.1"], check=check_backend_alpn),
}

_CLUSTER: Final[dict[str, FieldSpec]] = {
    "cluster_id": _ID,
    "sticky_session": _opt("bool", False),
    "https_redirect": _opt("bool", False),
    "proxy_protocol": _opt("enum", choices=PROXY_PROTOCOL_CONFIGS),
    "load_balancing": _opt("enum", "ROUND_ROBIN", choices=LOAD_BALANCING_ALGORITHMS),
    "load_metric": _opt("enum", choices=LOAD_METRICS),
    "answer_503": _opt("str"),
    "http2": _opt("bool", False),
    "answers": _opt("str_map", {}, check=check_answers),
    "https_redirect_port": _opt("uint32", check=check_port),
    "authorized_hashes": _opt("str_list", [], check=_check_authorized_hashes),
    "www_authenticate": _opt("str", check=check_realm),
    "max_connections_per_ip": _opt("uint64"),
    "retry_after": _opt("uint32"),
    "health_check": _opt("object", fields=_HEALTH_CHECK),
    # pysozu's own (beyond Sōzu): speak TLS to the backends
    "backend_tls": _opt("object", fields=_BACKEND_TLS, check=_check_backend_tls),
    # pysozu's own: the largest request body (bytes) for this cluster, over the listener's;
    # 0 is unlimited
    "max_body_size": _opt("uint64"),
}

def normalise_sni_hostname(hostname: str) -> str:
    """A TCP frontend's host name (SNI passthrough): an exact name or a ``*.suffix`` wildcard
    for one leftmost label, normalised as :func:`normalise_hostname` does.  ``*`` and regex
    labels are refused: the frontend without a host name is the listener's default route,
    and a TLS server name is matched by a dictionary lookup, never a scan of patterns."""
    name = normalise_hostname(hostname)
    if name == "*":
        raise CommandError("'*' is not a TCP frontend host name (leave hostname out instead)")
    if "/" in name:
        raise CommandError(f"host name {hostname!r}: a TCP frontend takes no regular expression")
    return name


#: pysozu's own ``hostname`` (SNI passthrough, beyond Sōzu): route on the TLS server name.
_TCP_FRONTEND: Final[dict[str, FieldSpec]] = {
    "cluster_id": _ID,
    "address": _ADDRESS,
    "hostname": _opt("str", check=normalise_sni_hostname),
    "tags": _opt("str_map", {}),
}

_PATH_RULE: Final[dict[str, FieldSpec]] = {
    "kind": _opt("enum", "PREFIX", choices=PATH_RULE_KINDS),
    "value": _opt("str", ""),
}

_HEADER: Final[dict[str, FieldSpec]] = {
    "position": _req("enum", choices=HEADER_POSITIONS),
    "key": _req("str", check=check_header_name),
    "val": _req("str", check=check_header_value),  # empty: delete the header
}

#: Sōzu's ``RequestHttpFrontend``.  ``cluster_id`` absent: a route answered by the proxy
#: itself (deny with 401, or a redirect).
_HTTP_FRONTEND: Final[dict[str, FieldSpec]] = {
    "cluster_id": _opt("str", nonempty=True),
    "address": _ADDRESS,
    "hostname": _req("str", check=normalise_hostname),
    "path": _opt(
        "object", {"kind": "PREFIX", "value": ""}, fields=_PATH_RULE, check=_check_path_object
    ),
    "method": _opt("str", check=check_method),
    "position": _opt("enum", "TREE", choices=RULE_POSITIONS),
    "tags": _opt("str_map", {}),
    "redirect": _opt("enum", "FORWARD", choices=REDIRECT_POLICIES),
    "redirect_scheme": _opt("enum", "USE_SAME", choices=REDIRECT_SCHEMES),
    "redirect_template": _opt("str"),
    "rewrite_host": _opt("str", check=check_wire_text),
    "rewrite_path": _opt("str", check=check_wire_text),
    "rewrite_port": _opt("uint32", check=check_port),
    "required_auth": _opt("bool", False),
    "headers": _opt("object_list", [], fields=_HEADER),
}

_HTTP_LISTENER: Final[dict[str, FieldSpec]] = {
    "address": _ADDRESS,
    "public_address": _opt("address"),
    "expect_proxy": _opt("bool", False),
    "sticky_name": _opt("str", DEFAULT_STICKY_NAME, check=_check_cookie_name),
    "front_timeout": _opt("uint32", 60),
    "back_timeout": _opt("uint32", 30),
    "connect_timeout": _opt("uint32", 3),
    "request_timeout": _opt("uint32", 10),
    "answers": _opt("str_map", {}, check=check_answers),
    "sozu_id_header": _opt("str", DEFAULT_SOZU_ID_HEADER, check=check_header_name),
    "elide_x_real_ip": _opt("bool", False),
    "send_x_real_ip": _opt("bool", False),
    # pysozu's own (nginx's client_max_body_size): largest request body, 0 is unlimited
    "max_body_size": _opt("uint64", 0),
    # pysozu's own (Sōzu has no cleartext HTTP/2): serve HTTP/2 to clients that open with its
    # preface (prior knowledge, RFC 9113 §3.3); no effect on HTTPS, where ALPN decides
    "h2c": _opt("bool", True),
    **{name: _opt("uint32", default, check=functools.partial(check_h2_field, name))
       for name, (default, _, _) in H2_LISTENER_FIELDS.items()},
}

_HTTP_LISTENER_PATCH: Final[dict[str, FieldSpec]] = {
    "address": _ADDRESS,
    "public_address": _opt("address"),
    "expect_proxy": _opt("bool"),
    "sticky_name": _opt("str", check=_check_cookie_name),
    "front_timeout": _opt("uint32"),
    "back_timeout": _opt("uint32"),
    "connect_timeout": _opt("uint32"),
    "request_timeout": _opt("uint32"),
    "answers": _opt("str_map", check=_check_answers_patch),
    "sozu_id_header": _opt("str", check=check_header_name),
    "elide_x_real_ip": _opt("bool"),
    "send_x_real_ip": _opt("bool"),
    "max_body_size": _opt("uint64"),
    "h2c": _opt("bool"),
    **{name: _opt("uint32", check=functools.partial(check_h2_field, name))
       for name in H2_LISTENER_FIELDS},
}

#: Sōzu's ``HstsConfig``: the ``Strict-Transport-Security`` header of HTTPS answers.
_HSTS: Final[dict[str, FieldSpec]] = {
    "enabled": _opt("bool", False),
    "max_age": _opt("uint32", 31536000),
    "include_subdomains": _opt("bool", False),
    "preload": _opt("bool", False),
    # replace a header the backend sent (by default the backend's own wins)
    "force_replace_backend": _opt("bool", False),
}

#: ``RequestHttpFrontend`` on an HTTPS listener: the HTTP fields plus ``hsts``, which
#: overrides the listener's.
_HTTPS_FRONTEND: Final[dict[str, FieldSpec]] = {
    **_HTTP_FRONTEND,
    "hsts": _opt("object", fields=_HSTS),
}

#: Sōzu's ``CertificateAndKey``: PEM texts; ``names`` replaces the certificate's own names.
_CERTIFICATE_AND_KEY: Final[dict[str, FieldSpec]] = {
    "certificate": _req("str", nonempty=True),
    "certificate_chain": _opt("str_list", []),
    "key": _req("str", nonempty=True),
    "versions": _opt("str_list", [], check=check_tls_versions),
    "names": _opt("str_list", [], check=_check_certificate_names),
}

#: The TLS fields of Sōzu's ``HttpsListenerConfig`` (defaults of ADD_HTTPS_LISTENER).
_TLS_LISTENER: Final[dict[str, FieldSpec]] = {
    "versions": _opt("str_list", ["TLS_V1_2", "TLS_V1_3"], check=check_tls_versions),
    # empty: Sōzu's default lists (see pysozu.protocols.tls)
    "cipher_list": _opt("str_list", []),
    "cipher_suites": _opt("str_list", []),
    "signature_algorithms": _opt("str_list", []),
    "groups_list": _opt("str_list", []),
    # the listener's default certificate, served when no other fits the SNI
    "certificate": _opt("str"),
    "certificate_chain": _opt("str_list", []),
    "key": _opt("str"),
    "send_tls13_tickets": _opt("uint64", 4),
    "alpn_protocols": _opt("str_list", list(ALPN_PROTOCOLS), check=check_alpn_protocols),
    "strict_sni_binding": _opt("bool", True),
    "disable_http11": _opt("bool", False),
    "hsts": _opt("object", fields=_HSTS),
}

#: Request type -> field name -> spec.
REQUEST_SPECS: Final[dict[str, dict[str, FieldSpec]]] = {
    "STATUS": {},
    # the main process's own requests (pysozu start with worker_count >= 1)
    "LIST_WORKERS": {},
    "LIST_FRONTENDS": {},
    "SUBSCRIBE_EVENTS": {},
    "RELOAD_CONFIGURATION": {"path": _opt("str")},
    "UPGRADE_WORKERS": {},
    "SOFT_STOP": {},
    "HARD_STOP": {},
    "LIST_LISTENERS": {},
    "QUERY_CLUSTERS_HASHES": {},
    "SAVE_STATE": {"path": _req("str", nonempty=True)},
    "LOAD_STATE": {"path": _req("str", nonempty=True)},
    "QUERY_CLUSTER_BY_ID": {"cluster_id": _ID},
    # Sōzu's QueryClusterByDomain: clusters with an HTTP frontend on exactly this host name
    # (and, when given, whose path rule's value is exactly ``path``).
    "QUERY_CLUSTERS_BY_DOMAIN": {
        "hostname": _req("str", check=normalise_hostname),
        "path": _opt("str"),
    },
    "ADD_CLUSTER": _CLUSTER,
    "REMOVE_CLUSTER": {"cluster_id": _ID},
    "ADD_BACKEND": {
        "cluster_id": _ID,
        "backend_id": _ID,
        "address": _ADDRESS,
        "sticky_id": _opt("str"),
        "load_balancing_parameters": _opt("object", fields={"weight": _req("int32")}),
        "backup": _opt("bool"),
    },
    "REMOVE_BACKEND": {"cluster_id": _ID, "backend_id": _ID, "address": _ADDRESS},
    "ADD_TCP_LISTENER": {
        "address": _ADDRESS,
        "public_address": _opt("address"),
        "expect_proxy": _opt("bool", False),
        "front_timeout": _opt("uint32", 60),
        "back_timeout": _opt("uint32", 30),
        "connect_timeout": _opt("uint32", 3),
        "active": _opt("bool", False),
    },
    # A partial patch: ``None`` means "keep the listener's current value".
    "UPDATE_TCP_LISTENER": {
        "address": _ADDRESS,
        "public_address": _opt("address"),
        "expect_proxy": _opt("bool"),
        "front_timeout": _opt("uint32"),
        "back_timeout": _opt("uint32"),
        "connect_timeout": _opt("uint32"),
    },
    # Sōzu's HttpListenerConfig without the deprecated ``http_answers`` (``answers`` replaces
    # it); its HTTP/2 knobs serve h2c (cleartext HTTP/2 with prior knowledge).
    "ADD_HTTP_LISTENER": {**_HTTP_LISTENER, "active": _opt("bool", False)},
    # A partial patch: ``None`` keeps a value; ``answers`` is merged into the listener's map
    # (an empty template keeps that code's current one, as in Sōzu).
    "UPDATE_HTTP_LISTENER": _HTTP_LISTENER_PATCH,
    # Sōzu's HttpsListenerConfig: the HTTP listener's fields (HTTP/2 knobs included) plus
    # TLS; ``disable_http11`` needs ``h2`` among the ALPN protocols (:data:`_REQUEST_CHECKS`).
    "ADD_HTTPS_LISTENER": {**_HTTP_LISTENER, **_TLS_LISTENER, "active": _opt("bool", False)},
    # A partial patch like UPDATE_HTTP_LISTENER; TLS changes apply to the next handshakes.
    "UPDATE_HTTPS_LISTENER": {
        **_HTTP_LISTENER_PATCH,
        **{name: _opt(spec.kind, check=spec.check, fields=spec.fields)
           for name, spec in _TLS_LISTENER.items()},
    },
    "REMOVE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY},
    "ACTIVATE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY, "from_scm": _opt("bool", False)},
    "DEACTIVATE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY, "to_scm": _opt("bool", False)},
    "ADD_TCP_FRONTEND": _TCP_FRONTEND,
    "REMOVE_TCP_FRONTEND": _TCP_FRONTEND,
    # Removal finds the frontend by its rule (address, hostname, path, method, position) and
    # cluster; the other fields are ignored.
    "ADD_HTTP_FRONTEND": _HTTP_FRONTEND,
    "REMOVE_HTTP_FRONTEND": _HTTP_FRONTEND,
    "ADD_HTTPS_FRONTEND": _HTTPS_FRONTEND,
    "REMOVE_HTTPS_FRONTEND": _HTTPS_FRONTEND,
    # Certificates of an HTTPS listener, known by the hex SHA-256 of their DER.
    "ADD_CERTIFICATE": {
        "address": _ADDRESS,
        "certificate": _req("object", fields=_CERTIFICATE_AND_KEY),
        "expired_at": _opt("uint64"),
    },
    "REPLACE_CERTIFICATE": {
        "address": _ADDRESS,
        "new_certificate": _req("object", fields=_CERTIFICATE_AND_KEY),
        "old_fingerprint": _req("str", check=check_fingerprint),
        "new_expired_at": _opt("uint64"),
    },
    "REMOVE_CERTIFICATE": {
        "address": _ADDRESS,
        "fingerprint": _req("str", check=check_fingerprint),
    },
    # Sōzu's QueryCertificatesFilters: every certificate, those for a domain, or one.
    "QUERY_CERTIFICATES_FROM_WORKERS": {
        "filters": _opt("object", {"domain": None, "fingerprint": None}, fields={
            "domain": _opt("str", check=normalise_hostname),
            "fingerprint": _opt("str", check=check_fingerprint),
        }),
    },
    "SET_HEALTH_CHECK": {"cluster_id": _ID, "config": _req("object", fields=_HEALTH_CHECK)},
    "REMOVE_HEALTH_CHECK": {"cluster_id": _ID},
    "QUERY_HEALTH_CHECKS": {"cluster_id": _opt("str", nonempty=True)},
    # Sōzu's global per-(cluster, source IP) connection limit; 0 is unlimited.  A cluster's
    # own ``max_connections_per_ip`` wins over it.
    "SET_MAX_CONNECTIONS_PER_IP": {"limit": _req("uint64")},
    "QUERY_MAX_CONNECTIONS_PER_IP": {},
    "QUERY_METRICS": {
        "list": _opt("bool", False),
        "cluster_ids": _opt("str_list", []),
        "backend_ids": _opt("str_list", []),
        "metric_names": _opt("str_list", []),
        "no_clusters": _opt("bool", False),
        "workers": _opt("bool", False),
    },
    "CONFIGURE_METRICS": {"configuration": _req("enum", choices=METRICS_CONFIGURATIONS)},
    "LOGGING": {"filter": _req("str", check=check_log_filter)},
}

#: Request type -> a rule across its fields, run once each field is checked.  An UPDATE's
#: patch is judged against the listener it changes, by :class:`pysozu.state.ConfigState`.
_REQUEST_CHECKS: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "ADD_HTTPS_LISTENER": check_disable_http11,
    "ADD_CLUSTER": check_cluster_protocols,
}

_KIND_NAMES: Final = {
    "str": "a string",
    "bool": "a boolean",
    "uint32": "an integer",
    "uint64": "an integer",
    "int32": "an integer",
    "address": "a string",
    "enum": "a string",
    "str_map": "an object of strings",
    "str_list": "a list of strings",
    "object": "an object",
    "object_list": "a list of objects",
}
_INT_RANGES: Final = {
    "uint32": (0, _UINT32_MAX),
    "uint64": (0, _UINT64_MAX),
    "int32": (_INT32_MIN, _INT32_MAX),
}


def _check_value(name: str, spec: FieldSpec, value: Any, request_type: str) -> Any:
    """Return the normalised ``value`` of field ``name``, or raise :class:`CommandError`."""
    value = _check_kind(name, spec, value, request_type)
    if spec.check is not None:
        try:
            value = spec.check(value)
        except CommandError as exc:
            raise CommandError(f"field {name!r}: {exc}") from None
    return value


def _check_kind(name: str, spec: FieldSpec, value: Any, request_type: str) -> Any:
    kind = spec.kind
    wrong_type = CommandError(f"field {name!r} must be {_KIND_NAMES[kind]}")
    if kind in ("str", "address", "enum"):
        if not isinstance(value, str):
            raise wrong_type
        if spec.nonempty and not value:
            raise CommandError(f"field {name!r} must not be empty")
        if kind == "address":
            try:
                return _normalise_address(value)
            except CommandError as exc:
                raise CommandError(f"field {name!r}: {exc}") from None
        if kind == "enum" and value not in spec.choices:
            raise CommandError(
                f"field {name!r} must be one of {', '.join(spec.choices)} (got {value!r})"
            )
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong_type
        return value
    if kind in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong_type
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise CommandError(f"field {name!r} must be between {low} and {high} (got {value})")
        return value
    if kind == "str_map":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise wrong_type
        return dict(value)
    if kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong_type
        return list(value)
    if kind == "object":
        if not isinstance(value, dict):
            raise wrong_type
        assert spec.fields is not None
        return _check_fields(value, spec.fields, request_type, prefix=f"{name}.")
    if kind == "object_list":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise wrong_type
        assert spec.fields is not None
        return [
            _check_fields(item, spec.fields, request_type, prefix=f"{name}[{index}].")
            for index, item in enumerate(value)
        ]
    raise AssertionError(f"unknown field kind {kind!r}")  # a bug in REQUEST_SPECS


def _check_fields(
    obj: Mapping[str, Any], specs: Mapping[str, FieldSpec], request_type: str, prefix: str = ""
) -> dict[str, Any]:
    for key in obj:
        if key not in specs:
            raise CommandError(f"unknown field {prefix + str(key)!r} for {request_type}")
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        value = obj.get(name, _MISSING)
        if value is _MISSING or (value is None and not spec.required):
            if spec.required:
                raise CommandError(f"missing field {prefix + name!r} for {request_type}")
            out[name] = copy.deepcopy(spec.default)
        else:
            out[name] = _check_value(prefix + name, spec, value, request_type)
    return out


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A validated request: every field of its type is present and normalised.

    Build one with :func:`parse_request` (untrusted input) or :func:`make_request`; a
    hand-built ``Request`` skips validation.
    """

    id: str
    type: str
    fields: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: id, type and the fields side by side (a deep copy)."""
        return {"id": self.id, "type": self.type, **copy.deepcopy(self.fields)}

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


def parse_request(obj: Any) -> Request:
    """Validate a decoded JSON request and return it normalised, with defaults filled."""
    if not isinstance(obj, dict):
        raise CommandError(f"a request must be a JSON object, not {json_kind(obj)}")
    if "id" not in obj:
        raise CommandError("missing field 'id'")
    request_id = obj["id"]
    if not isinstance(request_id, str) or not request_id:
        raise CommandError("field 'id' must be a non-empty string")
    if request_id == "EVENT":
        raise CommandError("id 'EVENT' is reserved for pushed events")
    if "type" not in obj:
        raise CommandError("missing field 'type'")
    request_type = obj["type"]
    if not isinstance(request_type, str):
        raise CommandError("field 'type' must be a string")
    specs = REQUEST_SPECS.get(request_type)
    if specs is None:
        raise CommandError(f"unknown request type {request_type!r}")
    body = {k: v for k, v in obj.items() if k not in ("id", "type")}
    fields = _check_fields(body, specs, request_type)
    check = _REQUEST_CHECKS.get(request_type)
    if check is not None:
        check(fields)
    return Request(request_id, request_type, fields)


def request_or_failure(message: Any) -> Request | dict[str, Any]:
    """The validated request of a decoded channel message, or the FAILURE answering it
    (with the message's id when it has a usable one)."""
    try:
        return parse_request(message)
    except CommandError as e:
        request_id = message.get("id") if isinstance(message, dict) else None
        return failure(request_id if isinstance(request_id, str) else "", str(e))


def make_request(request_id: str, request_type: str, **fields: Any) -> Request:
    """Build and validate a request from Python values (used by state and config code)."""
    return parse_request({"id": request_id, "type": request_type, **fields})


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------


def _response(request_id: str, status: str, message: str, content: Any) -> dict[str, Any]:
    return {"id": request_id, "status": status, "message": message, "content": content}


def ok(request_id: str, message: str = "", content: Any = None) -> dict[str, Any]:
    """The request succeeded; ``content`` carries query answers."""
    return _response(request_id, "OK", message, content)


def processing(request_id: str, message: str = "") -> dict[str, Any]:
    """The request was accepted and a final answer with the same id will follow."""
    return _response(request_id, "PROCESSING", message, None)


def failure(request_id: str, message: str) -> dict[str, Any]:
    """The request failed; ``message`` says why."""
    return _response(request_id, "FAILURE", message, None)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A pushed event (Sōzu's ``Event``), e.g. ``event("BACKEND_DOWN", cluster_id="app")``."""
    if kind not in EVENT_KINDS:
        raise CommandError(f"unknown event kind {kind!r}")
    content = {"type": "EVENT", "kind": kind, **fields}
    return _response("EVENT", "PROCESSING", "", content)


def parse_response(obj: Any) -> dict[str, Any]:
    """Check that a decoded JSON object is a well-formed response and return it."""
    if not isinstance(obj, dict):
        raise CommandError(f"a response must be a JSON object, not {json_kind(obj)}")
    for key in obj:
        if key not in ("id", "status", "message", "content"):
            raise CommandError(f"unknown field {key!r} in response")
    for key in ("id", "status", "message"):
        if key not in obj:
            raise CommandError(f"missing field {key!r} in response")
        if not isinstance(obj[key], str):
            raise CommandError(f"field {key!r} of a response must be a string")
    if obj["status"] not in RESPONSE_STATUSES:
        raise CommandError(
            f"field 'status' must be one of {', '.join(RESPONSE_STATUSES)} (got {obj['status']!r})"
        )
    return {
        "id": obj["id"],
        "status": obj["status"],
        "message": obj["message"],
        "content": obj.get("content"),
    }
