"""Request rewrites of a frontend: ``rewrite_host`` / ``rewrite_path`` templates with captures.

The counterpart of Sōzu's ``RewriteParts`` (``lib/src/router/mod.rs``) and of the capture
collection in its ``RouteResult``. Pure: strings in, strings out.

Theory of operation
-------------------
A frontend may rewrite the host and the path of the requests it forwards (and of the
``Location`` of the redirects it answers). A rewrite is a *template*: literal text with
``$HOST[n]`` and ``$PATH[n]`` references to *captures* of the request that matched the
frontend's rules:

==============  ===========================================================================
``$HOST[0]``    the whole request host, as the router compared it (lowercase, no port)
``$HOST[1..]``  left to right: the label a leading ``*`` stood for, then the groups of each
                ``/regex/`` label in the order the labels are written
``$PATH[0]``    the whole request target path (query string included, as routed)
``$PATH[1]``    for a PREFIX rule: what follows the prefix
``$PATH[1..]``  for a REGEX rule: the regex's groups, in order (an unmatched group is ``""``)
==============  ===========================================================================

An EQUALS path rule and an exact hostname give only index 0. Sōzu's trie collects host
captures in the order it walks labels; here they are always left to right, in both the TREE
and PRE/POST positions, so a template reads the same wherever the frontend sits.

**Parsing happens once, when the frontend is added** (:meth:`RewriteTemplate.parse`): the text
is cut into literal and capture parts, and a reference the frontend's rules can never fill
(``$PATH[1]`` on an EQUALS rule, ``$HOST[3]`` with two groups), a ``$`` that does not start
``$HOST[digits]`` or ``$PATH[digits]``, or a missing ``]`` is refused with a
:class:`ValueError` that names the template. **At request time** :class:`CapturePlan` computes
only the captures some template of the frontend uses (none at all when no template refers to
one), and :meth:`RewriteTemplate.render` is a join.

The rendered host and path are checked by the caller before they reach the backend
(:func:`valid_host`, :func:`valid_path`): a capture is request data, and a request line or a
``Host`` header must not be able to carry a space, a control byte or a second header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .router import _REGEX, _WILDCARD, Frontend, PathRuleKind, RulePosition, _parse_hostname

__all__ = ["CapturePlan", "RewriteTemplate", "Rewrites", "valid_host", "valid_path"]

_REFERENCE = re.compile(r"\$(HOST|PATH)\[([0-9]+)\]")
_HOST_OK = re.compile(r"[A-Za-z0-9.\-_~!$&'()*+,;=:%\[\]]+")
_PATH_OK = re.compile(r"/[\x21-\x7e]*|\*")
_PATH_TEXT = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class RewriteTemplate:
    """A parsed rewrite template: literal strings and ``(is_host, index)`` capture references."""

    source: str
    parts: tuple[str | tuple[bool, int], ...]
    host_used: int  # highest $HOST index used + 1 (0: none)
    path_used: int  # highest $PATH index used + 1

    @classmethod
    def parse(cls, template: str, host_count: int, path_count: int, what: str) -> RewriteTemplate:
        """Parse ``template`` for a frontend whose rules give ``host_count`` host captures and
        ``path_count`` path captures; :class:`ValueError` (naming ``what``) when invalid."""
        if not template:
            raise ValueError(f"{what}: empty template")
        parts: list[str | tuple[bool, int]] = []
        host_used = path_used = 0
        pos = 0
        while pos < len(template):
            dollar = template.find("$", pos)
            if dollar < 0:
                parts.append(template[pos:])
                break
            if dollar > pos:
                parts.append(template[pos:dollar])
            match = _REFERENCE.match(template, dollar)
            if match is None:
                raise ValueError(
                    f"{what} {template!r}: '$' at offset {dollar} must start $HOST[n] or $PATH[n]"
                )
            is_host = match.group(1) == "HOST"
            index = int(match.group(2))
            limit = host_count if is_host else path_count
            if index >= limit:
                name = "$HOST" if is_host else "$PATH"
                raise ValueError(
                    f"{what} {template!r}: {name}[{index}] does not exist: this frontend's "
                    f"{'hostname' if is_host else 'path rule'} gives indices 0..{limit - 1}"
                )
            if is_host:
                host_used = max(host_used, index + 1)
            else:
                path_used = max(path_used, index + 1)
            parts.append((is_host, index))
            pos = match.end()
        return cls(template, tuple(parts), host_used, path_used)

    def render(self, host_captures: list[str], path_captures: list[str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                captures = host_captures if part[0] else path_captures
                index = part[1]
                out.append(captures[index] if index < len(captures) else "")
        return "".join(out)


class CapturePlan:
    """How to compute the captures of one frontend's rules (built when the frontend is added).

    ``host_count`` / ``path_count`` bound the indices a template may use; ``host_needed`` /
    ``path_needed`` (set by :meth:`need`) say how many are computed per request.
    """

    __slots__ = (
        "_host_regex",
        "_label_regexes",
        "_path_regex",
        "_prefix_len",
        "host_count",
        "host_needed",
        "path_count",
        "path_needed",
    )

    def __init__(self, frontend: Frontend[Any]) -> None:
        _canonical, labels = _parse_hostname(frontend.hostname)
        groups = 0
        label_regexes: list[re.Pattern[str] | None] = []
        whole: list[str] = []
        for label_kind, text, compiled in labels:
            if label_kind == _WILDCARD:
                groups += 1
                label_regexes.append(re.compile(r"([^.]+)"))
                whole.append(r"([^.]+)")
            elif label_kind == _REGEX:
                assert compiled is not None
                groups += compiled.groups
                label_regexes.append(compiled)
                whole.append(f"(?:{text})")
            else:
                label_regexes.append(None)
                whole.append(re.escape(text))
        self.host_count = 1 + (groups if frontend.hostname != "*" else 0)
        self._label_regexes: list[re.Pattern[str] | None] | None = None
        self._host_regex: re.Pattern[str] | None = None
        if groups and frontend.hostname != "*":
            if frontend.position == RulePosition.TREE:
                # in the trie each pattern label matched exactly one host label
                self._label_regexes = label_regexes
            else:
                self._host_regex = re.compile(r"\.".join(whole), re.IGNORECASE)
        path_kind = frontend.path.kind
        self._prefix_len = -1
        self._path_regex: re.Pattern[str] | None = None
        self.path_count: int
        if path_kind == PathRuleKind.PREFIX:
            self.path_count = 2
            self._prefix_len = len(frontend.path.value)
        elif path_kind == PathRuleKind.REGEX:
            self._path_regex = re.compile(frontend.path.value)
            self.path_count = 1 + self._path_regex.groups
        else:
            self.path_count = 1
        self.host_needed = self.path_needed = 0

    def need(self, template: RewriteTemplate) -> None:
        self.host_needed = max(self.host_needed, template.host_used)
        self.path_needed = max(self.path_needed, template.path_used)

    def host(self, host: str) -> list[str]:
        """The host captures of ``host`` (as the router compared it) that templates use."""
        if not self.host_needed:
            return []
        captures = [host]
        if self.host_needed > 1:
            if self._label_regexes is not None:
                names = host.split(".")
                if len(names) == len(self._label_regexes):
                    for name, regex in zip(names, self._label_regexes, strict=True):
                        if regex is not None:
                            m = regex.fullmatch(name)
                            if m is not None:
                                captures.extend(g or "" for g in m.groups())
            elif self._host_regex is not None:
                m = self._host_regex.fullmatch(host)
                if m is not None:
                    captures.extend(g or "" for g in m.groups())
        return captures

    def path(self, path: str) -> list[str]:
        """The path captures of ``path`` (the routed target) that templates use."""
        if not self.path_needed:
            return []
        captures = [path]
        if self.path_needed > 1:
            if self._prefix_len >= 0:
                captures.append(path[self._prefix_len :])
            elif self._path_regex is not None:
                m = self._path_regex.search(path)
                if m is not None:
                    captures.extend(g or "" for g in m.groups())
        return captures


def valid_host(value: str) -> bool:
    """Whether a rendered host (with an optional ``:port``) can go into a ``Host`` header."""
    return bool(_HOST_OK.fullmatch(value))


def valid_path(value: str) -> bool:
    """Whether a rendered path can be a request target (origin form, or ``*``)."""
    return bool(_PATH_OK.fullmatch(value))


class Rewrites:
    """A frontend's ``rewrite_host`` / ``rewrite_path`` / ``rewrite_port``, parsed once.

    :meth:`apply` gives ``(host or None, path or None)`` for one request: ``None`` where the
    frontend does not rewrite that part. A rendered path that does not start with ``/``
    (``$PATH[1]`` of a request that is exactly the prefix) gets one, so the request line
    stays valid. :class:`ValueError` from the constructor names the bad field.
    """

    __slots__ = ("host", "path", "plan", "port")

    def __init__(
        self, frontend: Frontend[Any], host: str | None, path: str | None, port: int | None,
    ) -> None:
        plan = CapturePlan(frontend)
        self.plan = plan
        self.host = self.path = None
        if host:
            self.host = RewriteTemplate.parse(host, plan.host_count, plan.path_count,
                                              "rewrite_host")
            for part in self.host.parts:
                if isinstance(part, str) and not valid_host(part):
                    raise ValueError(f"rewrite_host {host!r}: {part!r} cannot be part of a host")
            plan.need(self.host)
        if path:
            self.path = RewriteTemplate.parse(path, plan.host_count, plan.path_count,
                                              "rewrite_path")
            for part in self.path.parts:
                if isinstance(part, str) and not _PATH_TEXT.fullmatch(part):
                    raise ValueError(
                        f"rewrite_path {path!r}: {part!r} has a byte a request target cannot hold"
                    )
            plan.need(self.path)
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"rewrite_port {port}: not a TCP port (1..65535)")
        self.port = port

    def apply(self, host: str, path: str) -> tuple[str | None, str | None]:
        plan = self.plan
        host_captures = plan.host(host)
        path_captures = plan.path(path)
        new_host = new_path = None
        if self.host is not None:
            new_host = self.host.render(host_captures, path_captures)
        if self.path is not None:
            new_path = self.path.render(host_captures, path_captures)
            if not new_path.startswith("/"):
                new_path = "/" + new_path
        return new_host, new_path
