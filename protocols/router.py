"""HTTP frontend router: ``(host, path, method)`` → the route of the matching frontend.

This is the Python counterpart of Sōzu's ``lib/src/router/mod.rs`` (``Router``, ``DomainRule``,
``PathRule``, ``MethodRule``) and ``lib/src/router/pattern_trie.rs`` (``TrieNode``). It is pure:
no sockets, no clock, nothing from the rest of pysozu. Each listener owns one :class:`Router`.

Theory of operation
-------------------
A :class:`Frontend` is a rule ``(hostname, path rule, method, position)`` plus an opaque
``route`` payload (a cluster id, a deny or redirect marker: whatever the caller stores) and an
optional ``key`` to remove it by. The router keeps three collections, as Sōzu does::

    pre   list of compiled frontends, tried in insertion order
    tree  hostname trie; each hostname slot holds a short list of (path, method) rules
    post  list of compiled frontends, tried in insertion order

:meth:`Router.lookup` tries ``pre``, then ``tree``, then ``post``; the first that yields a
frontend wins. A ``tree`` hostname slot that matches but has no matching path rule falls
through to ``post``.

Hostname patterns (``DomainRule::from_str``) are a dot-separated list of labels:

=====================  ===================================================================
``example.com``        exact (lowercased; non-ASCII labels go through IDNA to ``xn--``)
``*.example.com``      wildcard: ``*`` stands for exactly one non-empty leftmost label
``*``                  in PRE/POST any host; in the TREE the root wildcard, i.e. any
                       *single-label* host (``localhost``) — exactly what Sōzu's trie does
``/cdn[0-9]+/.x.com``  a label written ``/regex/`` (Python :mod:`re` syntax), matched
                       case-insensitively against the whole label (anchored both ends)
=====================  ===================================================================

Trie layout (TREE position)
~~~~~~~~~~~~~~~~~~~~~~~~~~~
Labels are walked right to left. Every :class:`_TrieNode` has:

* ``children``: ``label → node`` for labels that still have labels on their left (Sōzu's
  ``".label"`` keys);
* ``leaves``: ``label → rules`` for the leftmost label of an exact hostname (Sōzu's ``"label"``
  keys, which always carry a value);
* ``wildcard``: the rules of ``*.<this node>``;
* ``regexes``: ``[(source, node)]`` in creation order. A regex node serves both as a leaf (its
  ``value`` holds the rules of a hostname whose leftmost label is that regex) and as an
  interior node (its own children, leaves, wildcard and regexes).

Walking the host ``a.example.com``: ``com`` then ``example`` through ``children``; at the last
(leftmost) label ``a``: ``leaves['a']`` first, else the wildcard, else the first regex child
whose pattern matches ``a`` (its ``value``). For a label that is not the last one:
``children[label]`` first, else the first matching regex child. There is no backtracking: once a
step is taken, a dead end further left is a miss, even where another branch would have matched.
The cost is one dict probe per label plus one test per regex child tried, independent of the
number of frontends.

Precedence
~~~~~~~~~~
===========  ===============================================================================
step         rule
===========  ===============================================================================
1. PRE       first frontend in insertion order whose host, path and method all match
2. TREE      host → one trie slot (above); within the slot's rules, in insertion order:
             (a) the first EQUALS or REGEX rule that matches the path *and names the request
             method* wins at once;
             (b) otherwise, among the matching rules whose method matches (``None`` = any
             method), score a PREFIX rule by the prefix length and an EQUALS or REGEX rule by
             the full path length; the highest score wins, and a tie goes to the rule added
             *last* (this is Sōzu's scan ``size >= prefix_length`` written declaratively).
             An exact method therefore beats ``None`` only for EQUALS/REGEX rules; between
             two PREFIX rules of the same length the later one wins whatever their methods.
3. POST      first frontend in insertion order whose host, path and method all match
===========  ===============================================================================

Path rules: PREFIX is ``path.startswith(value)`` (``""`` matches everything), EQUALS is
``path == value``, REGEX is an **unanchored** :meth:`re.Pattern.search`, which is what Sōzu's
code does (``Regex::is_match``); write ``^…$`` to anchor.

Methods: ``None`` matches every method. Like Sōzu's ``Method::new``, the eight standard methods
(GET, POST, HEAD, OPTIONS, PUT, DELETE, TRACE, CONNECT) compare case-insensitively; any other
method is compared case-sensitively.

Where this departs from Sōzu (and why)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
* Request hosts are lowercased (and one trailing dot removed) before matching; Sōzu compares
  the raw bytes against IDNA-lowercased rules, so ``Example.COM`` missed there.
* Regex labels keep their source text and are compiled with :data:`re.IGNORECASE`. Sōzu runs
  TREE hostnames (regex labels included) through IDNA, which lowercases the pattern text
  (``\\D`` became ``\\d``, ``[A-Z]`` became ``[a-z]``), but leaves PRE/POST patterns alone.
* Regex labels are matched as a whole (:meth:`re.Pattern.fullmatch`). Sōzu writes
  ``\\A`` + pattern + ``\\z`` without a group, so an alternation ``/a|b/`` escaped its anchors.
* In PRE/POST a hostname with a regex label becomes one whole-host regex (labels joined by
  ``\\.``), so a regex label there may span dots, exactly as in Sōzu; in the TREE a regex label
  matches exactly one label. A leading ``*`` in such a pattern stands for ``[^.]+``.
* ``*`` is accepted only as the whole leftmost label (or as the whole hostname). Sōzu accepted
  ``*foo.example.com`` with different meanings in the tree and in PRE/POST.
* Empty hostnames, empty labels (``a..b``), empty regex labels and ``/`` inside a plain label
  are rejected with :class:`ValueError` (Sōzu's trie panicked on an empty hostname).
* EQUALS rules compare equal to each other by value: Sōzu's ``PathRule::eq`` returns false for
  two EQUALS rules, so it accepted duplicates and could never remove an EQUALS frontend.
* IDNA uses the standard library codec (IDNA 2003 / nameprep); Sōzu's ``idna`` crate follows
  UTS 46 (non-transitional), which differs for a few characters such as ``ß`` and ``ς``. A
  non-ASCII request host is IDNA-encoded before lookup (Sōzu's parser rejects it).
* A request host whose leftmost label is empty (``.example.com``) never matches in the TREE.
* Regexes use Python :mod:`re` syntax, not Rust ``regex`` syntax.
* ``lookup`` returns the route payload, so a ``None`` payload is refused at :meth:`Router.add`.
  Host and path captures for rewrites (Sōzu's ``RouteResult``) are not computed here;
  :meth:`Router.lookup_frontend` returns the matched :class:`Frontend` for that.

Removal is by key or by rule: ``remove(frontend)`` removes the frontend at the same position
with the same hostname, path rule and method (route and key are ignored, as in Sōzu's
``remove_http_front``). Removing the last rule of a trie slot prunes the emptied nodes.

``router.stats.comparisons`` counts rule comparisons (one per PRE/POST rule tried, per trie
label probe, per regex label tried and per rule of the trie slot reached); tests use it as a
deterministic measure of lookup cost.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from mypy_extensions import mypyc_attr

__all__ = [
    "Frontend",
    "PathRule",
    "PathRuleKind",
    "Router",
    "RouterStats",
    "RulePosition",
    "split_host_port",
]

R = TypeVar("R")


class PathRuleKind(enum.Enum):
    """How a :class:`PathRule` compares its value with the request path."""

    PREFIX = "PREFIX"
    REGEX = "REGEX"
    EQUALS = "EQUALS"


class RulePosition(enum.Enum):
    """Where a frontend goes in the router (Sōzu ``RulePosition``; TREE is the default)."""

    PRE = "PRE"
    TREE = "TREE"
    POST = "POST"


@dataclass(frozen=True, slots=True)
class PathRule:
    """Path part of a frontend rule: ``kind`` and ``value`` (Sōzu ``PathRule``)."""

    kind: PathRuleKind = PathRuleKind.PREFIX
    value: str = ""

    @classmethod
    def prefix(cls, value: str) -> PathRule:
        return cls(PathRuleKind.PREFIX, value)

    @classmethod
    def regex(cls, value: str) -> PathRule:
        return cls(PathRuleKind.REGEX, value)

    @classmethod
    def equals(cls, value: str) -> PathRule:
        return cls(PathRuleKind.EQUALS, value)


@mypyc_attr(native_class=False)  # mypyc bug: dataclass + Generic (mypyc/mypyc#827)
@dataclass(frozen=True, slots=True)
class Frontend(Generic[R]):
    """One frontend rule (the routing fields of Sōzu's ``RequestHttpFrontend``).

    ``route`` is the payload :meth:`Router.lookup` returns (never ``None``); ``key``, when set,
    identifies the frontend for :meth:`Router.remove` and must be unique within a router.
    """

    hostname: str
    route: R
    path: PathRule = PathRule()
    method: str | None = None
    position: RulePosition = RulePosition.TREE
    key: Hashable | None = None


class RouterStats:
    """Instrumentation counters of a :class:`Router`."""

    __slots__ = ("comparisons", "lookups")

    def __init__(self) -> None:
        self.lookups = 0
        self.comparisons = 0

    def reset(self) -> None:
        self.lookups = 0
        self.comparisons = 0


# --------------------------------------------------------------------------------------------
# Hostnames

_LITERAL: Final = 0
_WILDCARD: Final = 1
_REGEX: Final = 2

_Label = tuple[int, str, re.Pattern[str] | None]  # (kind, text, compiled regex label)

_STANDARD_METHODS = frozenset(
    ("GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "CONNECT")
)


def _normalize_method(method: str) -> str:
    """Sōzu's ``Method::new``: the standard methods are case-insensitive, others are not."""
    upper = method.upper()
    return upper if upper in _STANDARD_METHODS else method


# Characters that never belong in a plain label: '/' outside a /regex/ label, a port or bare
# IPv6 colon, brackets outside a whole "[v6]" hostname, URL delimiters, spaces and controls.
_FORBIDDEN_IN_LABEL = re.compile(r"[/:\[\]@?#\\\s\x00-\x1f\x7f]")


def _literal_label(label: str, hostname: str) -> str:
    if not label:
        raise ValueError(f"invalid hostname {hostname!r}: empty label")
    bad = _FORBIDDEN_IN_LABEL.search(label)
    if bad is not None:
        raise ValueError(f"invalid hostname {hostname!r}: {bad.group()!r} in a label")
    if "*" in label:
        raise ValueError(
            f"invalid hostname {hostname!r}: '*' must be the whole leftmost label"
        )
    label = label.lower()
    if not label.isascii():
        try:
            label = label.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid hostname {hostname!r}: IDNA: {exc}") from None
    return label


def _parse_hostname(hostname: str) -> tuple[str, tuple[_Label, ...]]:
    """Parse a frontend hostname into ``(canonical text, labels leftmost first)``.

    Raises :class:`ValueError` on anything the router cannot store.
    """
    text = hostname
    if text.endswith(".") and text != ".":
        text = text[:-1]
    if not text:
        raise ValueError(f"invalid hostname {hostname!r}: empty")
    if text == "*":
        return "*", ((_WILDCARD, "*", None),)
    if text.startswith("[") and text.endswith("]"):
        try:
            address = ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise ValueError(f"invalid hostname {hostname!r}: bad IPv6 literal") from None
        literal = address.compressed.lower()
        return literal, ((_LITERAL, literal, None),)

    labels: list[_Label] = []
    index = 0
    end = len(text)
    while True:
        if index < end and text[index] == "/":
            close = text.find("/", index + 1)
            if close < 0:
                raise ValueError(f"invalid hostname {hostname!r}: unterminated /regex/ label")
            source = text[index + 1 : close]
            if not source:
                raise ValueError(f"invalid hostname {hostname!r}: empty /regex/ label")
            try:
                compiled = re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(
                    f"invalid hostname {hostname!r}: regex {source!r}: {exc}"
                ) from None
            labels.append((_REGEX, source, compiled))
            index = close + 1
            if index < end and text[index] != ".":
                raise ValueError(
                    f"invalid hostname {hostname!r}: a /regex/ label must end at a '.'"
                )
        else:
            dot = text.find(".", index)
            stop = end if dot < 0 else dot
            raw = text[index:stop]
            if raw == "*":
                if labels:
                    raise ValueError(
                        f"invalid hostname {hostname!r}: '*' must be the whole leftmost label"
                    )
                labels.append((_WILDCARD, "*", None))
            else:
                labels.append((_LITERAL, _literal_label(raw, hostname), None))
            index = stop
        if index >= end:
            break
        index += 1  # skip the '.'
        if index >= end:
            raise ValueError(f"invalid hostname {hostname!r}: empty label")

    canonical = ".".join(f"/{text}/" if kind == _REGEX else text for kind, text, _ in labels)
    return canonical, tuple(labels)


def _host_matcher(canonical: str, labels: tuple[_Label, ...]) -> Callable[[str], bool]:
    """Sōzu's ``DomainRule::matches`` for PRE/POST rules, as a closure over one pattern."""
    if canonical == "*":
        return _any_host
    kinds = [kind for kind, _, _ in labels]
    if _REGEX in kinds:
        parts = []
        for kind, text, _ in labels:
            if kind == _REGEX:
                parts.append(f"(?:{text})")
            elif kind == _WILDCARD:
                parts.append(r"[^.]+")
            else:
                parts.append(re.escape(text))
        whole = re.compile(r"\.".join(parts), re.IGNORECASE)
        return lambda host: whole.fullmatch(host) is not None
    if kinds[0] == _WILDCARD:
        suffix = canonical[1:]  # ".example.com"
        cut = len(suffix)

        def wildcard(host: str) -> bool:
            if len(host) <= cut or not host.endswith(suffix):
                return False
            return "." not in host[:-cut]

        return wildcard
    return canonical.__eq__


def _normalize_host(host: str) -> str:
    """Request host as the router compares it: lowercase, no trailing dot, ASCII (IDNA)."""
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # cannot match an exact rule; PRE/POST ``*`` still may
    return host


def _parse_port(text: str, host_header: str) -> int:
    if not text or len(text) > 5 or not (text.isascii() and text.isdigit()):
        raise ValueError(f"invalid port in host {host_header!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in host {host_header!r}")
    return port


def split_host_port(host_header: str) -> tuple[str, int | None]:
    """Split a ``Host`` header / ``:authority`` into ``(hostname, port or None)``.

    The hostname is lowercased and loses one trailing dot. An IPv6 literal ``[::1]:8080`` comes
    back without brackets in compressed form (``::1``). Ports must be 1..65535 (Sōzu's
    ``hostname_and_port``). Raises :class:`ValueError` on an empty host, a bad port, an
    unterminated bracket or a bare IPv6 address.
    """
    if host_header.startswith("["):
        close = host_header.find("]")
        if close < 0:
            raise ValueError(f"unterminated IPv6 literal in host {host_header!r}")
        try:
            address = ipaddress.IPv6Address(host_header[1:close])
        except ValueError:
            raise ValueError(f"invalid IPv6 literal in host {host_header!r}") from None
        rest = host_header[close + 1 :]
        if not rest:
            port: int | None = None
        elif rest[0] == ":":
            port = _parse_port(rest[1:], host_header)
        else:
            raise ValueError(f"unexpected characters after IPv6 literal in {host_header!r}")
        return address.compressed.lower(), port

    host, sep, port_text = host_header.rpartition(":")
    if not sep:
        host, port = host_header, None
    else:
        if ":" in host:
            raise ValueError(f"IPv6 address without brackets in host {host_header!r}")
        port = _parse_port(port_text, host_header)
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise ValueError(f"empty hostname in host {host_header!r}")
    return host, port


# --------------------------------------------------------------------------------------------
# Compiled rules

_P_PREFIX = 0
_P_EQUALS = 1
_P_REGEX = 2

_KIND_CODES = {
    PathRuleKind.PREFIX: _P_PREFIX,
    PathRuleKind.EQUALS: _P_EQUALS,
    PathRuleKind.REGEX: _P_REGEX,
}


def _never(path: str) -> None:
    """``search`` of a rule that is not a REGEX rule (never called on the hot path)."""
    return None


def _any_host(host: str) -> bool:
    return True


_Identity = tuple[RulePosition, str, PathRuleKind, str, str | None]


class _Rule(Generic[R]):
    """One frontend compiled for matching."""

    __slots__ = (
        "frontend",
        "host_match",
        "identity",
        "kind",
        "labels",
        "method",
        "search",
        "size",
        "value",
    )

    def __init__(
        self,
        frontend: Frontend[R],
        identity: _Identity,
        labels: tuple[_Label, ...],
        method: str | None,
        host_match: Callable[[str], bool],
    ) -> None:
        self.frontend = frontend
        self.identity = identity
        self.labels = labels
        self.method = method
        self.host_match = host_match
        path = frontend.path
        self.kind = _KIND_CODES[path.kind]
        self.value = path.value
        self.size = len(path.value)
        self.search: Callable[[str], re.Match[str] | None] = _never
        if path.kind is PathRuleKind.REGEX:
            try:
                self.search = re.compile(path.value).search
            except re.error as exc:
                raise ValueError(f"invalid path regex {path.value!r}: {exc}") from None

    def path_matches(self, path: str) -> bool:
        kind = self.kind
        if kind == _P_PREFIX:
            return path.startswith(self.value)
        if kind == _P_EQUALS:
            return path == self.value
        return self.search(path) is not None


class _RegexEdge(Generic[R]):
    """A regex label child of a trie node."""

    __slots__ = ("fullmatch", "node", "source")

    def __init__(self, source: str, compiled: re.Pattern[str]) -> None:
        self.source = source
        self.fullmatch = compiled.fullmatch
        self.node: _TrieNode[R] = _TrieNode()


class _TrieNode(Generic[R]):
    """One trie level (see the module docstring for the layout)."""

    __slots__ = ("children", "leaves", "regexes", "value", "wildcard")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode[R]] = {}
        self.leaves: dict[str, list[_Rule[R]]] = {}
        self.regexes: list[_RegexEdge[R]] = []
        self.wildcard: list[_Rule[R]] | None = None
        self.value: list[_Rule[R]] | None = None  # regex nodes only: leftmost-label role

    def is_empty(self) -> bool:
        return not (
            self.children or self.leaves or self.regexes or self.wildcard or self.value
        )


# --------------------------------------------------------------------------------------------
# Router


class Router(Generic[R]):
    """PRE rules, hostname trie, POST rules: Sōzu's ``Router`` (see the module docstring)."""

    __slots__ = ("_by_identity", "_by_key", "_post", "_pre", "_root", "stats")

    def __init__(self) -> None:
        self._pre: list[_Rule[R]] = []
        self._post: list[_Rule[R]] = []
        self._root: _TrieNode[R] = _TrieNode()
        self._by_identity: dict[_Identity, _Rule[R]] = {}
        self._by_key: dict[Hashable, _Rule[R]] = {}
        self.stats = RouterStats()

    def __len__(self) -> int:
        return len(self._by_identity)

    def __iter__(self) -> Iterator[Frontend[R]]:
        """Every frontend, in insertion order."""
        return (rule.frontend for rule in list(self._by_identity.values()))

    # -- configuration ------------------------------------------------------------------------

    @staticmethod
    def _identity(frontend: Frontend[R]) -> tuple[_Identity, tuple[_Label, ...], str | None]:
        canonical, labels = _parse_hostname(frontend.hostname)
        method = None if frontend.method is None else _normalize_method(frontend.method)
        identity: _Identity = (
            frontend.position,
            canonical,
            frontend.path.kind,
            frontend.path.value,
            method,
        )
        return identity, labels, method

    def add(self, frontend: Frontend[R]) -> None:
        """Add a frontend. Raises :class:`ValueError` on a duplicate or an invalid rule."""
        if frontend.route is None:
            raise ValueError("a frontend's route must not be None (use a deny marker object)")
        identity, labels, method = self._identity(frontend)
        if identity in self._by_identity:
            position, host, kind, value, _ = identity
            raise ValueError(
                f"duplicate frontend: {position.name} hostname={host!r} "
                f"path={kind.name}:{value!r} method={method!r} is already routed to "
                f"{self._by_identity[identity].frontend.route!r}"
            )
        key = frontend.key
        if key is not None and key in self._by_key:
            raise ValueError(f"duplicate frontend key {key!r}")
        position = frontend.position
        if position is RulePosition.TREE:
            rule: _Rule[R] = _Rule(frontend, identity, labels, method, _any_host)
            slot = self._tree_slot(labels, create=True)
            assert slot is not None
            slot.append(rule)
        else:
            rule = _Rule(frontend, identity, labels, method, _host_matcher(identity[1], labels))
            (self._pre if position is RulePosition.PRE else self._post).append(rule)
        self._by_identity[identity] = rule
        if key is not None:
            self._by_key[key] = rule

    def remove(self, target: Frontend[R] | Hashable) -> bool:
        """Remove a frontend by rule (a :class:`Frontend`) or by key; False when absent."""
        if isinstance(target, Frontend):
            try:
                identity, _, _ = self._identity(target)
            except ValueError:
                return False
            rule = self._by_identity.get(identity)
        else:
            rule = self._by_key.get(target)
        if rule is None:
            return False
        del self._by_identity[rule.identity]
        key = rule.frontend.key
        if key is not None:
            del self._by_key[key]
        position = rule.identity[0]
        if position is RulePosition.TREE:
            self._tree_remove(rule)
        else:
            (self._pre if position is RulePosition.PRE else self._post).remove(rule)
        return True

    def _tree_slot(self, labels: tuple[_Label, ...], create: bool) -> list[_Rule[R]] | None:
        """The rule list of a hostname pattern (created on demand), or None."""
        node = self._root
        for kind, text, compiled in labels[:0:-1]:  # right to left, all but the leftmost
            if kind == _LITERAL:
                child = node.children.get(text)
                if child is None:
                    if not create:
                        return None
                    child = node.children[text] = _TrieNode()
                node = child
            else:  # _REGEX (a wildcard is only ever the leftmost label)
                edge = self._regex_edge(node, text, compiled, create)
                if edge is None:
                    return None
                node = edge.node
        kind, text, compiled = labels[0]
        if kind == _LITERAL:
            slot = node.leaves.get(text)
            if slot is None and create:
                slot = node.leaves[text] = []
            return slot
        if kind == _WILDCARD:
            if node.wildcard is None and create:
                node.wildcard = []
            return node.wildcard
        edge = self._regex_edge(node, text, compiled, create)
        if edge is None:
            return None
        if edge.node.value is None and create:
            edge.node.value = []
        return edge.node.value

    @staticmethod
    def _regex_edge(
        node: _TrieNode[R], source: str, compiled: re.Pattern[str] | None, create: bool
    ) -> _RegexEdge[R] | None:
        for edge in node.regexes:
            if edge.source == source:
                return edge
        if not create:
            return None
        assert compiled is not None
        edge = _RegexEdge(source, compiled)
        node.regexes.append(edge)
        return edge

    def _tree_remove(self, rule: _Rule[R]) -> None:
        # Record the path so that emptied nodes can be pruned bottom-up.
        node = self._root
        trail: list[tuple[_TrieNode[R], int, str]] = []  # (parent, kind, text) per step
        for kind, text, _ in rule.labels[:0:-1]:
            trail.append((node, kind, text))
            if kind == _LITERAL:
                node = node.children[text]
            else:
                edge = self._regex_edge(node, text, None, create=False)
                assert edge is not None
                node = edge.node
        kind, text, _ = rule.labels[0]
        if kind == _LITERAL:
            slot = node.leaves[text]
            slot.remove(rule)
            if not slot:
                del node.leaves[text]
        elif kind == _WILDCARD:
            assert node.wildcard is not None
            node.wildcard.remove(rule)
            if not node.wildcard:
                node.wildcard = None
        else:
            edge = self._regex_edge(node, text, None, create=False)
            assert edge is not None and edge.node.value is not None
            edge.node.value.remove(rule)
            if not edge.node.value:
                edge.node.value = None
            if edge.node.is_empty():
                node.regexes.remove(edge)
        while trail and node.is_empty():
            parent, kind, text = trail.pop()
            if kind == _LITERAL:
                del parent.children[text]
            else:
                parent.regexes = [e for e in parent.regexes if e.source != text]
            node = parent

    # -- lookup -------------------------------------------------------------------------------

    def lookup(self, host: str, path: str, method: str) -> R | None:
        """The route of the frontend matching ``host`` (no port), ``path`` and ``method``."""
        frontend = self.lookup_frontend(host, path, method)
        return None if frontend is None else frontend.route

    def lookup_frontend(self, host: str, path: str, method: str) -> Frontend[R] | None:
        """The frontend matching ``host`` (no port), ``path`` and ``method``, or None."""
        host = _normalize_host(host)
        if method not in _STANDARD_METHODS:
            method = _normalize_method(method)
        stats = self.stats
        stats.lookups += 1
        comparisons = 0
        try:
            for rule in self._pre:
                comparisons += 1
                if (
                    rule.host_match(host)
                    and (rule.method is None or rule.method == method)
                    and rule.path_matches(path)
                ):
                    return rule.frontend

            rules, probes = self._tree_lookup(host)
            comparisons += probes
            if rules is not None:
                comparisons += len(rules)
                found = self._select_path(rules, path, method)
                if found is not None:
                    return found.frontend

            for rule in self._post:
                comparisons += 1
                if (
                    rule.host_match(host)
                    and (rule.method is None or rule.method == method)
                    and rule.path_matches(path)
                ):
                    return rule.frontend
            return None
        finally:
            stats.comparisons += comparisons

    def _tree_lookup(self, host: str) -> tuple[list[_Rule[R]] | None, int]:
        """Walk the trie right to left: ``(slot rules or None, comparisons made)``."""
        labels = host.split(".")
        if not labels[0]:
            return None, 0
        node = self._root
        probes = 0
        index = len(labels) - 1
        while index:
            label = labels[index]
            probes += 1
            child = node.children.get(label)
            if child is None:
                for edge in node.regexes:
                    probes += 1
                    if edge.fullmatch(label) is not None:
                        child = edge.node
                        break
                else:
                    return None, probes
            node = child
            index -= 1
        label = labels[0]
        probes += 1
        rules = node.leaves.get(label)
        if rules is not None:
            return rules, probes
        if node.wildcard is not None:
            return node.wildcard, probes
        for edge in node.regexes:
            probes += 1
            if edge.fullmatch(label) is not None:
                return edge.node.value, probes
        return None, probes

    @staticmethod
    def _select_path(rules: list[_Rule[R]], path: str, method: str) -> _Rule[R] | None:
        """Sōzu's in-slot path precedence (see the table in the module docstring)."""
        best: _Rule[R] | None = None
        best_size = 0
        for rule in rules:
            kind = rule.kind
            if kind == _P_PREFIX:
                size = rule.size
                if size >= best_size and path.startswith(rule.value):
                    rule_method = rule.method
                    if rule_method is None or rule_method == method:
                        best = rule
                        best_size = size
                continue
            if kind == _P_EQUALS:
                if path != rule.value:
                    continue
            elif rule.search(path) is None:
                continue
            rule_method = rule.method
            if rule_method is None:
                best = rule
                best_size = len(path)
            elif rule_method == method:
                return rule
        return best
