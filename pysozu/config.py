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
ones; a TCP frontend on an address with no listener gets a default TCP listener; a TCP
cluster's ``proxy_protocol`` comes from its ``send_proxy`` key and its listeners'
``expect_proxy`` (the enum names are accepted too, as ``proxy_protocol``); a backend's weight
defaults to 100; listeners are activated (after all routing requests) unless
``activate_listeners = false``; a relative ``command_socket`` or ``saved_state`` is relative to
the file's directory.  HTTP and HTTPS listeners and clusters are refused for now.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pysozu.command import (
    LOAD_BALANCING_ALGORITHMS,
    LOAD_METRICS,
    PROXY_PROTOCOL_CONFIGS,
    CommandError,
    Request,
    format_address,
    make_request,
    parse_address,
)
from pysozu.state import ConfigState, StateError

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "ConfigError",
    "FileConfig",
    "ServerConfig",
    "default_config",
    "load_config",
    "parse_config",
]

_Path = tuple[str | int, ...]


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
    worker_count: int = 1
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
    "worker_count": "posint",
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

_LISTENER_KEYS: Final = frozenset(
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
_CLUSTER_KEYS: Final = frozenset(
    {
        "protocol",
        "frontends",
        "backends",
        "load_balancing",
        "load_metric",
        "sticky_session",
        "https_redirect",
        "send_proxy",
        "proxy_protocol",
        "max_connections_per_ip",
        "retry_after",
    }
)
_FRONTEND_KEYS: Final = frozenset({"address", "tags"})
_HTTP_FRONTEND_KEYS: Final = frozenset(
    {
        "hostname",
        "path",
        "path_type",
        "method",
        "certificate",
        "key",
        "certificate_chain",
        "tls_versions",
        "position",
        "redirect",
        "redirect_scheme",
        "redirect_template",
        "rewrite_host",
        "rewrite_path",
        "rewrite_port",
        "required_auth",
        "headers",
        "hsts",
    }
)
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
# A TCP listener on 127.0.0.1:8080 forwards every connection to 127.0.0.1:8081,
# where `pysozu start` also runs a small demo HTTP backend (demo_backend = true).
command_socket = "./pysozu.sock"
demo_backend = true

[[listeners]]
protocol = "tcp"
address = "127.0.0.1:8080"

[clusters.demo]
protocol = "tcp"
load_balancing = "ROUND_ROBIN"
frontends = [{ address = "127.0.0.1:8080" }]
backends = [{ address = "127.0.0.1:8081", backend_id = "demo-0" }]
"""


def default_config() -> FileConfig:
    """The configuration of :data:`DEFAULT_CONFIG_TOML`."""
    return parse_config(DEFAULT_CONFIG_TOML, source="<default config>")


def load_config(path: str | os.PathLike[str]) -> FileConfig:
    """Read and check a configuration file.

    Relative ``command_socket`` and ``saved_state`` paths are made relative to the file's
    directory (as Sōzu does), so the proxy does not depend on the working directory.
    """
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file: {exc}", source=source) from None
    config = parse_config(text, source=source)
    base = Path(path).parent
    changes: dict[str, Any] = {}
    for name in ("command_socket", "saved_state"):
        value = getattr(config.server, name)
        if value is not None and not os.path.isabs(value):
            changes[name] = os.path.normpath(base / value)
    if changes:
        config.server = dataclasses.replace(config.server, **changes)
    return config


def parse_config(text: str, source: str = "<string>") -> FileConfig:
    """Parse and check configuration text; ``source`` names it in error messages."""
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
    return _Builder(text, source).build(data)


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

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self._positions: _Positions | None = None
        self.listeners: list[tuple[_Path, dict[str, Any]]] = []
        self.listener_at: dict[str, dict[str, Any]] = {}
        self.frontend_owner: dict[str, str] = {}

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
        if not isinstance(value, str):
            raise self.error(path, "must be a string")
        upper = value.upper()
        if upper not in choices:
            raise self.error(path, f"must be one of {', '.join(choices)} (got {value!r})")
        return upper

    def protocol(self, path: _Path, table: dict[str, Any], what: str, supported: str) -> None:
        if "protocol" not in table:
            raise self.error(path, f"missing key 'protocol' for a {what}")
        protocol = table["protocol"]
        if not isinstance(protocol, str):
            raise self.error((*path, "protocol"), "must be a string")
        if protocol.lower() in ("http", "https", "udp") and protocol.lower() != supported:
            raise self.error(
                (*path, "protocol"),
                f"{protocol.lower()} {what}s are not supported yet (only {supported!r})",
            )
        if protocol.lower() != supported:
            raise self.error((*path, "protocol"), f"must be {supported!r} (got {protocol!r})")

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
            if key in _SERVER_KINDS:
                settings[key] = self.value((key,), value, _SERVER_KINDS[key])
            elif key not in ("listeners", "clusters", "demo_backend"):
                raise self.error((key,), "unknown key")
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

        items: list[tuple[str, dict[str, Any]]] = [
            ("ADD_TCP_LISTENER", fields) for _, fields in self.listeners
        ]
        items.extend(cluster_requests)
        if server.activate_listeners:
            items.extend(
                ("ACTIVATE_LISTENER", {"address": fields["address"], "proxy": "TCP"})
                for _, fields in self.listeners
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

    def listener(self, path: _Path, raw: Any, server: ServerConfig) -> None:
        if not isinstance(raw, dict):
            raise self.error(path, "must be a table (a listener)")
        self.protocol(path, raw, "listener", "tcp")
        table = self.table(path, raw, _LISTENER_KEYS, "a tcp listener")
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
            if fields["expect_proxy"]:
                raise self.error(
                    (*path, "public_address"), "public_address is incompatible with expect_proxy"
                )
        for key in ("front_timeout", "back_timeout", "connect_timeout"):
            fields[key] = self.value((*path, key), table.get(key, getattr(server, key)), "uint32")
        self.listeners.append((path, fields))
        self.listener_at[address] = fields

    def cluster(
        self, path: _Path, name: str, raw: Any, server: ServerConfig
    ) -> list[tuple[str, dict[str, Any]]]:
        if not isinstance(raw, dict):
            raise self.error(path, "must be a table (a cluster)")
        if not name:
            raise self.error(path, "a cluster name must not be empty")
        self.protocol(path, raw, "cluster", "tcp")
        table = self.table(path, raw, _CLUSTER_KEYS, "a tcp cluster")
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

        frontends: list[dict[str, Any]] = []
        seen: set[str] = set()
        frontends_raw = self.array((*path, "frontends"), table.get("frontends", []), "tables")
        for index, raw_front in enumerate(frontends_raw):
            front_path = (*path, "frontends", index)
            if isinstance(raw_front, dict):
                for key in raw_front:
                    if key in _HTTP_FRONTEND_KEYS:
                        raise self.error((*front_path, key), "only valid for http frontends")
            front = self.table(front_path, raw_front, _FRONTEND_KEYS, "a tcp frontend")
            address = self.value(
                (*front_path, "address"),
                self.required(front_path, front, "address", "a frontend"),
                "address",
            )
            owner = self.frontend_owner.get(address)
            if address in seen or owner is not None:
                other = "this cluster" if address in seen else f"cluster {owner!r}"
                raise self.error(
                    (*front_path, "address"), f"{other} already has a frontend on {address}"
                )
            seen.add(address)
            tags = self.value((*front_path, "tags"), front.get("tags", {}), "str_map")
            frontends.append({"cluster_id": name, "address": address, "tags": tags})
            if address not in self.listener_at:  # Sōzu creates a default listener
                fields = {"address": address, "expect_proxy": False}
                for key in ("front_timeout", "back_timeout", "connect_timeout"):
                    fields[key] = getattr(server, key)
                self.listeners.append((front_path, fields))
                self.listener_at[address] = fields
        for front in frontends:
            self.frontend_owner[front["address"]] = name

        config["proxy_protocol"] = self.proxy_protocol(path, table, frontends)

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

        return [
            ("ADD_CLUSTER", config),
            *(("ADD_TCP_FRONTEND", f) for f in frontends),
            *(("ADD_BACKEND", b) for b in backends),
        ]

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
        expects = {self.listener_at[f["address"]]["expect_proxy"] for f in frontends}
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
