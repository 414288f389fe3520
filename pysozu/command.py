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

Responses are plain dicts ``{"id", "status", "message", "content"}`` built by :func:`ok`,
:func:`processing` and :func:`failure`; pushed events use id ``"EVENT"`` (:func:`event`).
This module does no I/O.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pysozu.reactor.channel import json_kind

__all__ = [
    "EVENT_KINDS",
    "LISTENER_TYPES",
    "LOAD_BALANCING_ALGORITHMS",
    "LOAD_METRICS",
    "PROXY_PROTOCOL_CONFIGS",
    "REQUEST_SPECS",
    "RESPONSE_STATUSES",
    "CommandError",
    "FieldSpec",
    "Request",
    "event",
    "failure",
    "format_address",
    "make_request",
    "ok",
    "parse_address",
    "parse_request",
    "parse_response",
    "processing",
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
# Field specifications
# --------------------------------------------------------------------------------------------

_MISSING: Final = object()


@dataclass(frozen=True)
class FieldSpec:
    """How one field of a request is checked and defaulted.

    ``kind`` is one of ``str``, ``bool``, ``uint32``, ``uint64``, ``int32``, ``address``,
    ``enum`` (one of ``choices``), ``str_map`` (object of strings), ``str_list`` or ``object``
    (a nested message described by ``fields``).  A field that is not ``required`` and is absent
    (or ``null``) takes ``default``; ``None`` means "optional, unset".
    """

    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    fields: Mapping[str, FieldSpec] | None = None
    nonempty: bool = False


def _req(kind: str, **kwargs: Any) -> FieldSpec:
    return FieldSpec(kind, required=True, **kwargs)


def _opt(kind: str, default: Any = None, **kwargs: Any) -> FieldSpec:
    return FieldSpec(kind, default=default, **kwargs)


_ID: Final = _req("str", nonempty=True)
_ADDRESS: Final = _req("address")
_PROXY: Final = _req("enum", choices=LISTENER_TYPES)

_CLUSTER: Final[dict[str, FieldSpec]] = {
    "cluster_id": _ID,
    "sticky_session": _opt("bool", False),
    "https_redirect": _opt("bool", False),
    "proxy_protocol": _opt("enum", choices=PROXY_PROTOCOL_CONFIGS),
    "load_balancing": _opt("enum", "ROUND_ROBIN", choices=LOAD_BALANCING_ALGORITHMS),
    "load_metric": _opt("enum", choices=LOAD_METRICS),
    "answer_503": _opt("str"),
    "http2": _opt("bool", False),
    "answers": _opt("str_map", {}),
    "https_redirect_port": _opt("uint32"),
    "authorized_hashes": _opt("str_list", []),
    "www_authenticate": _opt("str"),
    "max_connections_per_ip": _opt("uint64"),
    "retry_after": _opt("uint32"),
}

_TCP_FRONTEND: Final[dict[str, FieldSpec]] = {
    "cluster_id": _ID,
    "address": _ADDRESS,
    "tags": _opt("str_map", {}),
}

#: Request type -> field name -> spec.  Later protocols add rows (ADD_HTTP_LISTENER, …).
REQUEST_SPECS: Final[dict[str, dict[str, FieldSpec]]] = {
    "STATUS": {},
    "SOFT_STOP": {},
    "HARD_STOP": {},
    "LIST_LISTENERS": {},
    "QUERY_CLUSTERS_HASHES": {},
    "SAVE_STATE": {"path": _req("str", nonempty=True)},
    "LOAD_STATE": {"path": _req("str", nonempty=True)},
    "QUERY_CLUSTER_BY_ID": {"cluster_id": _ID},
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
    "REMOVE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY},
    "ACTIVATE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY, "from_scm": _opt("bool", False)},
    "DEACTIVATE_LISTENER": {"address": _ADDRESS, "proxy": _PROXY, "to_scm": _opt("bool", False)},
    "ADD_TCP_FRONTEND": _TCP_FRONTEND,
    "REMOVE_TCP_FRONTEND": _TCP_FRONTEND,
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
}
_INT_RANGES: Final = {
    "uint32": (0, _UINT32_MAX),
    "uint64": (0, _UINT64_MAX),
    "int32": (_INT32_MIN, _INT32_MAX),
}


def _check_value(name: str, spec: FieldSpec, value: Any, request_type: str) -> Any:
    """Return the normalised ``value`` of field ``name``, or raise :class:`CommandError`."""
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
    return Request(request_id, request_type, _check_fields(body, specs, request_type))


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
