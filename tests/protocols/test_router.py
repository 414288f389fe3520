"""HTTP frontend router: hostname kinds, path precedence, PRE/TREE/POST order (Sōzu router)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysozu.protocols.router import (
    Frontend,
    PathRule,
    PathRuleKind,
    Router,
    RulePosition,
    split_host_port,
)

PRE, TREE, POST = RulePosition.PRE, RulePosition.TREE, RulePosition.POST
P, E, X = PathRule.prefix, PathRule.equals, PathRule.regex


def build(*frontends: Frontend[str]) -> Router[str]:
    router: Router[str] = Router()
    for frontend in frontends:
        router.add(frontend)
    return router


# --------------------------------------------------------------------------------------------
# Hostname kinds

HOST_CASES = [
    # (rule hostname, position, request host, matches)
    ("example.com", TREE, "example.com", True),
    ("example.com", TREE, "EXAMPLE.Com", True),
    ("example.com", TREE, "example.com.", True),
    ("Example.COM.", TREE, "example.com", True),
    ("example.com", TREE, "www.example.com", False),
    ("example.com", TREE, "example.org", False),
    ("example.com", TREE, "com", False),
    ("example.com", TREE, ".example.com", False),
    ("com", TREE, "com", True),
    ("com", TREE, "example.com", False),
    # wildcard: exactly one leftmost label
    ("*.example.com", TREE, "a.example.com", True),
    ("*.example.com", TREE, "A.Example.COM", True),
    ("*.example.com", TREE, "example.com", False),
    ("*.example.com", TREE, "a.b.example.com", False),
    ("*.example.com", TREE, ".example.com", False),
    ("*.example.com", PRE, "a.example.com", True),
    ("*.example.com", PRE, "example.com", False),
    ("*.example.com", PRE, "a.b.example.com", False),
    ("*.example.com", PRE, ".example.com", False),
    ("*.example.com", POST, "x.example.com", True),
    ("*.example.com", POST, "xexample.com", False),
    # '*': any host in PRE/POST, the root wildcard (single-label hosts) in the TREE
    ("*", PRE, "example.com", True),
    ("*", PRE, "a.b.c.d", True),
    ("*", POST, "localhost", True),
    ("*", TREE, "localhost", True),
    ("*", TREE, "example.com", False),
    # regex labels, anchored on the whole label
    ("/cdn[0-9]+/.example.com", TREE, "cdn1.example.com", True),
    ("/cdn[0-9]+/.example.com", TREE, "CDN12.example.com", True),
    ("/cdn[0-9]+/.example.com", TREE, "cdn.example.com", False),
    ("/cdn[0-9]+/.example.com", TREE, "cdn1x.example.com", False),
    ("/cdn[0-9]+/.example.com", TREE, "xcdn1.example.com", False),
    ("/cdn[0-9]+/.example.com", TREE, "cdn1.example.org", False),
    ("/cdn[0-9]+/.example.com", TREE, "a.cdn1.example.com", False),
    ("/cdn[0-9]+/.example.com", PRE, "cdn1.example.com", True),
    ("/cdn[0-9]+/.example.com", PRE, "attacker.cdn1.example.com", False),
    ("/cdn[0-9]+/.example.com", PRE, "cdn1.example.com.evil.org", False),
    ("/cdn[0-9]+/.example.com", PRE, "cdn1.exampleXcom", False),
    ("/a|b/.example.com", TREE, "a.example.com", True),
    ("/a|b/.example.com", TREE, "ab.example.com", False),
    ("/a|b/.example.com", TREE, "xb.example.com", False),
    ("/a|b/.example.com", POST, "b.example.com", True),
    ("/a|b/.example.com", POST, "ab.example.com", False),
    ("/[A-Z]+/.example.com", TREE, "abc.example.com", True),
    ("/[A-Z]+/.example.com", PRE, "abc.example.com", True),
    ("www./.*/.io", TREE, "www.sozu.io", True),
    ("www./.*/.io", TREE, "www.a.b.io", False),  # a TREE regex label is one label
    ("www./.*/.io", PRE, "www.a.b.io", True),  # a PRE/POST regex label may span dots
    ("/seg1/.foo./seg2/.com", TREE, "seg1.foo.seg2.com", True),
    ("/seg1/.foo./seg2/.com", POST, "seg1.foo.seg2.com", True),
    ("/a.c/", TREE, "abc", True),
    ("/a.c/", TREE, "a.c", False),
    ("*./cdn[0-9]+/.example.com", TREE, "x.cdn1.example.com", True),
    ("*./cdn[0-9]+/.example.com", TREE, "x.y.cdn1.example.com", False),
    ("*./cdn[0-9]+/.example.com", PRE, "x.cdn1.example.com", True),
    ("*./cdn[0-9]+/.example.com", PRE, "x.y.cdn1.example.com", False),
    # IPv6 literal hostnames are stored in the form split_host_port returns
    ("[::1]", TREE, "::1", True),
    ("[0:0::1]", PRE, "::1", True),
    # IDNA
    ("bücher.example", TREE, "xn--bcher-kva.example", True),
    ("bücher.example", TREE, "BÜCHER.example", True),
    ("*.bücher.example", TREE, "www.xn--bcher-kva.example", True),
    ("*.bücher.example", PRE, "www.bücher.example", True),
    ("xn--bcher-kva.example", POST, "bücher.example", True),
]


@pytest.mark.parametrize(("rule", "position", "host", "matches"), HOST_CASES)
def test_hostname_kinds(rule: str, position: RulePosition, host: str, matches: bool) -> None:
    router = build(Frontend(rule, "hit", position=position))
    assert router.lookup(host, "/", "GET") == ("hit" if matches else None)


@pytest.mark.parametrize(
    "hostname",
    [
        "",
        ".",
        "a..b",
        ".example.com",
        "foo.*.com",
        "*foo.example.com",
        "*.*.example.com",
        "a/b.com",
        "//.com",
        "/abc",
        "/a/b.com",
        "/[/.com",
        "[::1",
        "[zz]",
    ],
)
def test_invalid_hostnames_are_refused(hostname: str) -> None:
    router: Router[str] = Router()
    for position in RulePosition:
        with pytest.raises(ValueError):
            router.add(Frontend(hostname, "c", position=position))
    assert len(router) == 0


def test_invalid_path_regex_and_none_route_are_refused() -> None:
    router: Router[object] = Router()
    with pytest.raises(ValueError, match="path regex"):
        router.add(Frontend("example.com", "c", path=X("(")))
    with pytest.raises(ValueError, match="None"):
        router.add(Frontend("example.com", None))
    assert len(router) == 0


# --------------------------------------------------------------------------------------------
# Trie walk: exact child first, wildcard only on the last label, then regexes; no backtracking

TRIE_CASES = [
    # (TREE hostnames in add order (route = hostname), request host, expected route)
    (["*.example.com", "a.example.com"], "a.example.com", "a.example.com"),
    (["a.example.com", "*.example.com"], "b.example.com", "*.example.com"),
    # 'a' exists only as an interior label: the leaf lookup misses, the wildcard applies
    (["*.example.com", "b.a.example.com"], "a.example.com", "*.example.com"),
    (["*.example.com", "b.a.example.com"], "b.a.example.com", "b.a.example.com"),
    (["*.example.com", "b.a.example.com"], "c.a.example.com", None),
    # the wildcard comes before regex children on the last label
    (["/a/.example.com", "*.example.com"], "a.example.com", "*.example.com"),
    (["/a/.example.com", "b.example.com"], "a.example.com", "/a/.example.com"),
    # an exact interior child is taken even when it leads to a dead end
    (["y.a.example.com", "z./[a-z]/.example.com"], "z.a.example.com", None),
    (["y.a.example.com", "z./[a-z]/.example.com"], "z.b.example.com", "z./[a-z]/.example.com"),
    # regex children are tried in creation order; the first match is final
    (["q./a.*/.example.com", "r./ab/.example.com"], "r.ab.example.com", None),
    (["q./a.*/.example.com", "r./ab/.example.com"], "q.ab.example.com", "q./a.*/.example.com"),
    (["r./ab/.example.com", "q./a.*/.example.com"], "r.ab.example.com", "r./ab/.example.com"),
    (["/a.*/.example.com", "/ab/.example.com"], "ab.example.com", "/a.*/.example.com"),
    # a regex node used only as an interior node has no value of its own
    (["x./a/.example.com"], "a.example.com", None),
    (["x./a/.example.com", "/a/.example.com"], "a.example.com", "/a/.example.com"),
    (["x./a/.example.com", "/a/.example.com"], "x.a.example.com", "x./a/.example.com"),
    # Sōzu's multiple_children_including_one_with_wildcard
    (["*.sozu.io", "api.sozu.io"], "www.sozu.io", "*.sozu.io"),
    (["*.sozu.io", "api.sozu.io"], "api.sozu.io", "api.sozu.io"),
    # Sōzu's router_insert_remove_through_regex
    (["www./.*/.io", "www.doc./.*/.io"], "www.doc.sozu.io", "www.doc./.*/.io"),
    (["www./.*/.io", "www.doc./.*/.io"], "www.sozu.io", "www./.*/.io"),
]


@pytest.mark.parametrize(("hostnames", "host", "expected"), TRIE_CASES)
def test_trie_walk(hostnames: list[str], host: str, expected: str | None) -> None:
    router = build(*(Frontend(h, h) for h in hostnames))
    assert router.lookup(host, "/", "GET") == expected


# --------------------------------------------------------------------------------------------
# Path precedence inside one hostname slot

PATH_CASES = [
    # (rules in add order: (path rule, method, route), request path, method, expected)
    ([(P("/"), None, "root"), (P("/api"), None, "api"), (P("/api/v1"), None, "v1")],
     "/api/v1/x", "GET", "v1"),
    ([(P("/"), None, "root"), (P("/api"), None, "api"), (P("/api/v1"), None, "v1")],
     "/api/x", "GET", "api"),
    ([(P("/api/v1"), None, "v1"), (P("/api"), None, "api"), (P("/"), None, "root")],
     "/api/v1/x", "GET", "v1"),
    ([(P("/api/v1"), None, "v1"), (P("/api"), None, "api"), (P("/"), None, "root")],
     "/other", "GET", "root"),
    ([(P(""), None, "all")], "", "GET", "all"),
    ([(P(""), None, "all")], "/anything", "DELETE", "all"),
    ([(P("/api/long"), None, "long")], "/api", "GET", None),
    # EQUALS scores the full path length; ties go to the rule added last
    ([(P("/api"), None, "prefix"), (E("/api"), None, "equals")], "/api", "GET", "equals"),
    ([(E("/api"), None, "equals"), (P("/api"), None, "prefix")], "/api", "GET", "prefix"),
    ([(E("/a/b/c"), None, "equals"), (P("/a/b"), None, "prefix")], "/a/b/c", "GET", "equals"),
    ([(P("/a/b"), None, "prefix"), (E("/a/b/c"), None, "equals")], "/a/b/c", "GET", "equals"),
    ([(E("/api"), None, "equals"), (P("/"), None, "root")], "/api/", "GET", "root"),
    # EQUALS/REGEX naming the request method win at once
    ([(E("/api"), "GET", "equals"), (P("/api"), None, "prefix")], "/api", "GET", "equals"),
    ([(E("/api"), "GET", "equals"), (P("/api"), None, "prefix")], "/api", "POST", "prefix"),
    ([(P("/static/img"), None, "prefix"), (X(r"\.png$"), None, "regex")],
     "/static/img/x.png", "GET", "regex"),
    ([(X(r"\.png$"), None, "regex"), (P("/static/img"), None, "prefix")],
     "/static/img/x.png", "GET", "regex"),
    ([(X(r"\.png$"), None, "regex"), (P("/static/img/x.png"), None, "prefix")],
     "/static/img/x.png", "GET", "prefix"),
    ([(X(r"\.png$"), "GET", "regex"), (P("/static/img/x.png"), None, "prefix")],
     "/static/img/x.png", "GET", "regex"),
    ([(X("png"), None, "first"), (X(r"\.png$"), None, "second")], "/x.png", "GET", "second"),
    ([(X("png"), "GET", "first"), (X(r"\.png$"), "GET", "second")], "/x.png", "GET", "first"),
    ([(X("png"), None, "all"), (X(r"\.png$"), "GET", "get")], "/x.png", "GET", "get"),
    ([(X("png"), "POST", "post"), (P("/"), None, "root")], "/x.png", "GET", "root"),
    # REGEX is unanchored (Regex::is_match), as in Sōzu's code
    ([(X("api"), None, "regex")], "/v1/api/x", "GET", "regex"),
    ([(X("^/api$"), None, "regex")], "/api/x", "GET", None),
    ([(X("/hello[A-Z]+/"), None, "regex")], "/helloAB/", "GET", "regex"),
    # PREFIX rules of the same length: the later one wins whatever the methods
    ([(P("/api"), "GET", "get"), (P("/api"), None, "any")], "/api/x", "GET", "any"),
    ([(P("/api"), None, "any"), (P("/api"), "GET", "get")], "/api/x", "GET", "get"),
    ([(P("/api"), None, "any"), (P("/api"), "GET", "get")], "/api/x", "POST", "any"),
    # method filter
    ([(P("/"), "POST", "post")], "/", "GET", None),
    ([(P("/"), "POST", "post")], "/", "post", "post"),
    ([(P("/"), "get", "get")], "/", "GET", "get"),
    ([(P("/"), "PURGE", "purge")], "/", "purge", None),
    ([(P("/"), "PURGE", "purge")], "/", "PURGE", "purge"),
    ([(P("/a"), "GET", "get"), (P("/"), None, "root")], "/a", "HEAD", "root"),
]


@pytest.mark.parametrize(("rules", "path", "method", "expected"), PATH_CASES)
def test_path_precedence(
    rules: list[tuple[PathRule, str | None, str]], path: str, method: str, expected: str | None
) -> None:
    router = build(*(Frontend("example.com", r, path=p, method=m) for p, m, r in rules))
    assert router.lookup("example.com", path, method) == expected


@pytest.mark.parametrize(("rules", "path", "method", "expected"), PATH_CASES)
def test_pre_and_post_take_the_first_match(
    rules: list[tuple[PathRule, str | None, str]], path: str, method: str, expected: str | None
) -> None:
    """PRE and POST rules have no in-host precedence: the first full match wins."""
    for position in (PRE, POST):
        router = build(
            *(Frontend("example.com", r, path=p, method=m, position=position) for p, m, r in rules)
        )
        first = next(
            (
                r
                for p, m, r in rules
                if (m is None or norm_method(m) == norm_method(method))
                and ref_path_matches(p, path)
            ),
            None,
        )
        assert router.lookup("example.com", path, method) == first


def test_sozu_match_router() -> None:
    """Sōzu's router::tests::match_router, rule for rule."""
    router = build(
        Frontend("*", "acme", path=P("/.well-known/acme-challenge"), method="GET", position=PRE),
        Frontend("www.example.com", "example", path=P("/"), method="GET"),
        Frontend("*.test.example.com", "examplewildcard", path=X("/hello[A-Z]+/"), method="GET"),
        Frontend("/test[0-9]/.example.com", "exampleregex", path=P("/"), method="GET"),
    )
    assert router.lookup("www.example.com", "/helloA", "GET") == "example"
    assert router.lookup("www.example.com", "/.well-known/acme-challenge", "GET") == "acme"
    assert router.lookup("www.test.example.com", "/", "GET") is None
    assert router.lookup("www.test.example.com", "/helloAB/", "GET") == "examplewildcard"
    assert router.lookup("test1.example.com", "/helloAB/", "GET") == "exampleregex"


def test_sozu_multiple_children_on_a_wildcard() -> None:
    router = build(Frontend("*.sozu.io", "base", method="GET"))
    assert router.lookup("www.sozu.io", "/api", "GET") == "base"
    router.add(Frontend("*.sozu.io", "api", path=P("/api"), method="GET"))
    assert router.lookup("www.sozu.io", "/ap", "GET") == "base"
    assert router.lookup("www.sozu.io", "/api", "GET") == "api"


# --------------------------------------------------------------------------------------------
# PRE, TREE, POST order

def test_pre_beats_tree_and_keeps_insertion_order() -> None:
    router = build(
        Frontend("example.com", "tree", path=P("/x/y")),
        Frontend("*", "pre-any", position=PRE),
        Frontend("example.com", "pre-exact", path=P("/x"), position=PRE),
    )
    assert router.lookup("example.com", "/x/y", "GET") == "pre-any"
    router.remove(Frontend("*", "", position=PRE))
    assert router.lookup("example.com", "/x/y", "GET") == "pre-exact"
    assert router.lookup("example.com", "/z", "GET") is None
    router.remove(Frontend("example.com", "", path=P("/x"), position=PRE))
    assert router.lookup("example.com", "/x/y", "GET") == "tree"


def test_tree_beats_post_and_misses_fall_through_to_post() -> None:
    router = build(
        Frontend("*", "post-any", position=POST),
        Frontend("example.com", "post-exact", position=POST),
        Frontend("example.com", "tree", path=P("/app"), method="GET"),
    )
    assert router.lookup("example.com", "/app", "GET") == "tree"
    # host found in the tree, no path rule matches: POST rules still apply, in order
    assert router.lookup("example.com", "/other", "GET") == "post-any"
    assert router.lookup("example.com", "/app", "POST") == "post-any"
    assert router.lookup("unknown.org", "/", "GET") == "post-any"
    router.remove(Frontend("*", "", position=POST))
    assert router.lookup("example.com", "/other", "GET") == "post-exact"
    assert router.lookup("unknown.org", "/", "GET") is None


def test_same_rule_may_exist_once_per_position() -> None:
    router = build(
        Frontend("example.com", "post", position=POST),
        Frontend("example.com", "tree"),
        Frontend("example.com", "pre", position=PRE),
    )
    assert len(router) == 3
    assert router.lookup("example.com", "/", "GET") == "pre"
    assert router.remove(Frontend("example.com", "", position=PRE))
    assert router.lookup("example.com", "/", "GET") == "tree"
    assert router.remove(Frontend("example.com", ""))
    assert router.lookup("example.com", "/", "GET") == "post"


# --------------------------------------------------------------------------------------------
# Duplicates and removal

@pytest.mark.parametrize("position", list(RulePosition))
@pytest.mark.parametrize(
    ("first", "second"),
    [
        (Frontend("example.com", "a"), Frontend("example.com", "b")),
        (Frontend("Example.COM.", "a"), Frontend("example.com", "b")),
        (Frontend("bücher.example", "a"), Frontend("xn--bcher-kva.example", "b")),
        (Frontend("*.example.com", "a"), Frontend("*.EXAMPLE.com", "b")),
        (Frontend("/cdn/.example.com", "a"), Frontend("/cdn/.example.com", "b")),
        (Frontend("e.com", "a", path=E("/x")), Frontend("e.com", "b", path=E("/x"))),
        (Frontend("e.com", "a", path=X("^/x")), Frontend("e.com", "b", path=X("^/x"))),
        (Frontend("e.com", "a", method="get"), Frontend("e.com", "b", method="GET")),
    ],
)
def test_duplicate_add_is_an_error(
    position: RulePosition, first: Frontend[str], second: Frontend[str]
) -> None:
    router: Router[str] = Router()
    router.add(Frontend(first.hostname, first.route, first.path, first.method, position))
    with pytest.raises(ValueError, match="duplicate frontend"):
        router.add(Frontend(second.hostname, second.route, second.path, second.method, position))
    assert len(router) == 1
    assert next(iter(router)).route == "a"


@pytest.mark.parametrize(
    "other",
    [
        Frontend("example.com", "b", path=P("/x")),
        Frontend("example.com", "b", path=E("")),
        Frontend("example.com", "b", path=X("")),
        Frontend("example.com", "b", method="GET"),
        Frontend("www.example.com", "b"),
        Frontend("/example/.com", "b"),
        Frontend("example.com", "b", position=PRE),
    ],
)
def test_rules_differing_in_one_field_are_not_duplicates(other: Frontend[str]) -> None:
    router = build(Frontend("example.com", "a"), other)
    assert len(router) == 2


def test_duplicate_key_is_an_error() -> None:
    router = build(Frontend("a.com", "a", key="front-1"))
    with pytest.raises(ValueError, match="key"):
        router.add(Frontend("b.com", "b", key="front-1"))
    assert router.lookup("b.com", "/", "GET") is None


def test_removal_restores_previous_matches() -> None:
    router = build(
        Frontend("*.example.com", "wildcard", key="w"),
        Frontend("api.example.com", "api-root", key="root"),
        Frontend("api.example.com", "api-v1", path=P("/v1"), key="v1"),
        Frontend("api.example.com", "api-v1-eq", path=E("/v1/health"), key="eq"),
    )
    assert router.lookup("api.example.com", "/v1/health", "GET") == "api-v1-eq"
    assert router.remove("eq")
    assert router.lookup("api.example.com", "/v1/health", "GET") == "api-v1"
    assert router.remove(Frontend("api.example.com", "ignored", path=P("/v1")))
    assert router.lookup("api.example.com", "/v1/health", "GET") == "api-root"
    assert router.remove(Frontend("API.example.com.", "ignored"))
    assert router.lookup("api.example.com", "/v1/health", "GET") == "wildcard"
    assert router.remove("w")
    assert router.lookup("api.example.com", "/v1/health", "GET") is None
    assert len(router) == 0
    assert router._root.is_empty()  # every emptied trie node was pruned


def test_remove_of_an_absent_frontend_returns_false() -> None:
    router = build(Frontend("example.com", "a", key="k"))
    assert not router.remove("other-key")
    assert not router.remove(Frontend("example.com", "a", position=PRE))
    assert not router.remove(Frontend("example.com", "a", method="GET"))
    assert not router.remove(Frontend("example.com", "a", path=P("/x")))
    assert not router.remove(Frontend("a..b", "a"))  # invalid: cannot be present
    assert router.remove(Frontend("example.com", "whatever", key="ignored"))
    assert not router.remove("k")  # the key went with the frontend
    assert not router.remove(Frontend("example.com", "a"))


def test_remove_prunes_regex_and_wildcard_nodes() -> None:
    hostnames = [
        "www./.*/.io",
        "www.doc./.*/.io",
        "*.doc./.*/.io",
        "/x+/.io",
        "*.io",
        "a.b.c.io",
        "*",
    ]
    router = build(*(Frontend(h, h) for h in hostnames))
    assert router.lookup("www.doc.sozu.io", "/", "GET") == "www.doc./.*/.io"
    assert router.remove(Frontend("www./.*/.io", ""))
    assert router.lookup("www.sozu.io", "/", "GET") is None
    assert router.lookup("www.doc.sozu.io", "/", "GET") == "www.doc./.*/.io"
    assert router.lookup("zz.doc.sozu.io", "/", "GET") == "*.doc./.*/.io"
    for hostname in hostnames[1:]:
        assert router.remove(Frontend(hostname, ""))
    assert router._root.is_empty()
    # re-adding after a full prune works like a fresh router
    router.add(Frontend("www./.*/.io", "again"))
    assert router.lookup("www.sozu.io", "/", "GET") == "again"


def test_iteration_and_lookup_frontend() -> None:
    a = Frontend("a.com", "A", key=1)
    b = Frontend("*", "B", position=POST)
    router = build(a, b)
    assert list(router) == [a, b]
    assert router.lookup_frontend("a.com", "/", "GET") is a
    assert router.lookup_frontend("zzz", "/", "GET") is b


# --------------------------------------------------------------------------------------------
# split_host_port

@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM:8080", ("example.com", 8080)),
        ("example.com.", ("example.com", None)),
        ("example.com.:80", ("example.com", 80)),
        ("localhost:65535", ("localhost", 65535)),
        ("localhost:1", ("localhost", 1)),
        ("localhost:080", ("localhost", 80)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
        ("[2001:DB8::1]:443", ("2001:db8::1", 443)),
        ("[0:0:0:0:0:0:0:1]", ("::1", None)),
        ("[::ffff:192.0.2.1]:80", ("::ffff:c000:201", 80)),
        ("BÜCHER.example", ("bücher.example", None)),
    ],
)
def test_split_host_port(header: str, expected: tuple[str, int | None]) -> None:
    assert split_host_port(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        ".",
        ":80",
        "example.com:",
        "example.com:0",
        "example.com:65536",
        "example.com:99999999999999999999",
        "example.com:8a",
        "example.com:+80",
        "example.com:٣",
        "::1",
        "a:b:80",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[::1]:0",
        "[zz]:80",
        "[127.0.0.1]",
    ],
)
def test_split_host_port_rejects(header: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(header)


def test_split_host_port_feeds_lookup() -> None:
    router = build(Frontend("example.com", "e"), Frontend("[::1]", "v6"))
    host, _ = split_host_port("EXAMPLE.com.:8443")
    assert router.lookup(host, "/", "GET") == "e"
    host, port = split_host_port("[::1]:8080")
    assert (router.lookup(host, "/", "GET"), port) == ("v6", 8080)


# --------------------------------------------------------------------------------------------
# Flat cost: rule comparisons per lookup do not grow with the number of frontends

def _comparison_profile(size: int) -> dict[str, int]:
    router: Router[str] = Router()
    for i in range(size):
        router.add(Frontend(f"host{i}.example.com", f"c{i}", key=i))
    router.add(Frontend("*.wild.example.com", "wild"))
    router.add(Frontend("/cdn[0-9]+/.example.net", "cdn"))
    router.add(Frontend("api.example.com", "api-root"))
    router.add(Frontend("api.example.com", "api-v1", path=P("/v1")))
    router.add(Frontend("api.example.com", "api-eq", path=E("/v1/health"), method="GET"))
    queries = {
        "first": ("host0.example.com", "/", "c0"),
        "last": (f"host{size - 1}.example.com", "/", f"c{size - 1}"),
        "case": ("HOST5.Example.com.", "/x", "c5"),
        "wildcard": ("a.wild.example.com", "/", "wild"),
        "regex": ("cdn42.example.net", "/", "cdn"),
        "paths": ("api.example.com", "/v1/health", "api-eq"),
        "miss-host": ("nohost.example.com", "/", None),
        "miss-tld": ("host1.example.org", "/", None),
    }
    profile = {}
    for name, (host, path, expected) in queries.items():
        before = router.stats.comparisons
        assert router.lookup(host, path, "GET") == expected
        profile[name] = router.stats.comparisons - before
    return profile


def test_lookup_cost_is_flat_in_the_number_of_frontends() -> None:
    """Micro-benchmark (deterministic): comparisons per lookup for 10, 1 000, 10 000 hosts."""
    profiles = {size: _comparison_profile(size) for size in (10, 1_000, 10_000)}
    assert profiles[10] == profiles[1_000] == profiles[10_000], profiles
    # three labels, one rule: the trie walk costs one probe per label plus one per path rule
    assert profiles[10]["first"] == 4
    assert profiles[10]["paths"] == 3 + 3


def test_stats_count_lookups() -> None:
    router = build(Frontend("*", "a", position=PRE))
    router.stats.reset()
    router.lookup("x", "/", "GET")
    router.lookup("y", "/", "GET")
    assert (router.stats.lookups, router.stats.comparisons) == (2, 2)


# --------------------------------------------------------------------------------------------
# Differential test against a naive reference of the same precedence rules

STANDARD = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE", "CONNECT"}

# A hostname as labels, leftmost first: ("lit", text) | ("wild", "*") | ("re", source).
Spec = tuple[tuple[str, str], ...]


def spec_hostname(spec: Spec) -> str:
    return ".".join(f"/{text}/" if kind == "re" else text for kind, text in spec)


def norm_method(method: str) -> str:
    return method.upper() if method.upper() in STANDARD else method


def label_matches(label: tuple[str, str], part: str) -> bool:
    kind, text = label
    if kind == "lit":
        return part == text
    if kind == "wild":
        return part != "" and "." not in part
    return re.fullmatch(text, part, re.IGNORECASE) is not None


def ref_domain_matches(spec: Spec, host: str) -> bool:
    """PRE/POST host rule: some split of the host at dots matches label by label."""
    if spec == (("wild", "*"),):
        return True
    dots = [i for i, c in enumerate(host) if c == "."]
    for cut in itertools.combinations(dots, len(spec) - 1):
        bounds = [-1, *cut, len(host)]
        parts = [host[bounds[i] + 1 : bounds[i + 1]] for i in range(len(spec))]
        if all(label_matches(lab, part) for lab, part in zip(spec, parts, strict=True)):
            return True
    return False


def ref_path_matches(rule: PathRule, path: str) -> bool:
    if rule.kind is PathRuleKind.PREFIX:
        return path.startswith(rule.value)
    if rule.kind is PathRuleKind.EQUALS:
        return path == rule.value
    return re.search(rule.value, path) is not None


@dataclass
class RefRule:
    spec: Spec
    path: PathRule
    method: str | None
    position: RulePosition
    key: int

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.position, self.spec, self.path, self.method)


@dataclass
class Reference:
    """A flat list of live rules; no trie, no index."""

    rules: list[RefRule] = field(default_factory=list)
    births: dict[Spec, int] = field(default_factory=dict)  # regex trie node → creation tick
    tick: int = 0

    def add(self, rule: RefRule) -> bool:
        if any(r.identity == rule.identity for r in self.rules):
            return False
        self.rules.append(rule)
        if rule.position is TREE:
            for i, (kind, _) in enumerate(rule.spec):
                if kind == "re" and rule.spec[i:] not in self.births:
                    self.births[rule.spec[i:]] = self.tick
                    self.tick += 1
        return True

    def remove(self, key: int) -> bool:
        found = [r for r in self.rules if r.key == key]
        if not found:
            return False
        self.rules.remove(found[0])
        tree = [r.spec for r in self.rules if r.position is TREE]
        for suffix in list(self.births):
            if not any(s[len(s) - len(suffix) :] == suffix and len(s) >= len(suffix) for s in tree):
                del self.births[suffix]
        return True

    def tree_slot(self, host: str) -> Spec | None:
        """The TREE hostname pattern the trie walk reaches for ``host`` (no backtracking)."""
        labels = host.split(".")
        if not labels[0]:
            return None
        cands = {r.spec for r in self.rules if r.position is TREE}
        for i in range(len(labels) - 1, -1, -1):
            label = labels[i]
            depth = len(labels) - 1 - i  # labels already walked, from the right

            def at(s: Spec, depth: int = depth) -> tuple[str, str]:
                return s[len(s) - 1 - depth]

            regex_nodes = sorted(
                {s[len(s) - 1 - depth :] for s in cands if len(s) > depth and at(s)[0] == "re"},
                key=self.births.__getitem__,
            )
            if i == 0:
                for s in cands:
                    if len(s) == depth + 1 and at(s) == ("lit", label):
                        return s
                for s in cands:
                    if len(s) == depth + 1 and at(s)[0] == "wild":
                        return s
                for node in regex_nodes:
                    if label_matches(node[0], label):
                        return node if node in cands else None
                return None
            interior = {s for s in cands if len(s) > depth + 1 and at(s) == ("lit", label)}
            if not interior:
                for node in regex_nodes:
                    if label_matches(node[0], label):
                        interior = {s for s in cands if s[len(s) - 1 - depth :] == node}
                        break
                else:
                    return None
            cands = interior
        raise AssertionError("unreachable")

    def lookup(self, host: str, path: str, method: str) -> int | None:
        host = host.lower().removesuffix(".")
        method = norm_method(method)

        def full_match(r: RefRule) -> bool:
            return (
                ref_domain_matches(r.spec, host)
                and ref_path_matches(r.path, path)
                and (r.method is None or r.method == method)
            )

        for r in self.rules:
            if r.position is PRE and full_match(r):
                return r.key
        slot = self.tree_slot(host)
        if slot is not None:
            rules = [r for r in self.rules if r.position is TREE and r.spec == slot]
            matching = [r for r in rules if ref_path_matches(r.path, path)]
            for r in matching:
                if r.path.kind is not PathRuleKind.PREFIX and r.method == method:
                    return r.key
            scored = [
                (len(r.path.value) if r.path.kind is PathRuleKind.PREFIX else len(path), r)
                for r in matching
                if r.method is None or r.method == method
            ]
            if scored:
                best = max(score for score, _ in scored)
                return [r for score, r in scored if score == best][-1].key
        for r in self.rules:
            if r.position is POST and full_match(r):
                return r.key
        return None


LITERALS = ["a", "b", "ab", "x"]
REGEXES = ["[ab]", "a.*", ".*", "b+", "a|ab", "x"]
literal_label = st.sampled_from(LITERALS).map(lambda t: ("lit", t))
regex_label = st.sampled_from(REGEXES).map(lambda t: ("re", t))
leftmost_label = st.one_of(
    literal_label, literal_label, regex_label, st.just(("wild", "*"))
)
inner_label = st.one_of(literal_label, literal_label, regex_label)
specs = st.one_of(
    st.just((("wild", "*"),)),
    st.builds(
        lambda first, rest: (first, *rest), leftmost_label, st.lists(inner_label, max_size=2)
    ),
)
path_rules = st.one_of(
    st.sampled_from(["", "/", "/a", "/ab", "/a/b", "/b"]).map(P),
    st.sampled_from(["/", "/a", "/ab", "/a/b"]).map(E),
    st.sampled_from(["^/a", "b$", "/a.*", "a"]).map(X),
)
HOST_LABELS = ["a", "b", "ab", "x", "bb", "aab", "c"]
PATHS = ["", "/", "/a", "/ab", "/a/b", "/b", "/ab/c"]
random_hosts = st.lists(st.sampled_from(HOST_LABELS), min_size=1, max_size=4).map(".".join)


def rules_from(pool: list[Spec]) -> st.SearchStrategy[tuple[object, ...]]:
    return st.tuples(
        st.sampled_from(pool),
        path_rules,
        st.sampled_from([None, "GET", "POST"]),
        st.sampled_from([TREE, TREE, TREE, PRE, POST]),
    )


def host_for(spec: Spec) -> st.SearchStrategy[str]:
    """A host built to match ``spec`` label by label (sometimes with one more label)."""
    parts = []
    for kind, text in spec:
        if kind == "lit":
            parts.append(st.just(text))
        else:
            fitting = [h for h in HOST_LABELS if label_matches((kind, text), h)]
            parts.append(st.sampled_from(fitting or HOST_LABELS))
    extra = st.one_of(st.just(""), st.just(""), st.sampled_from(HOST_LABELS).map(lambda h: h + "."))
    return st.builds(lambda e, labels: e + ".".join(labels), extra, st.tuples(*parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lookup_agrees_with_naive_reference(data: st.DataObject) -> None:
    pool = data.draw(st.lists(specs, min_size=1, max_size=6, unique=True), label="hostnames")
    ops = data.draw(
        st.lists(
            st.one_of(
                rules_from(pool).map(lambda r: ("add", r)),
                rules_from(pool).map(lambda r: ("add", r)),
                rules_from(pool).map(lambda r: ("add", r)),
                st.integers(0, 30).map(lambda k: ("rm", k)),
            ),
            min_size=2,
            max_size=30,
        ),
        label="operations",
    )
    router: Router[int] = Router()
    reference = Reference()
    for key, (op, arg) in enumerate(ops):
        if op == "add":
            spec, path, method, position = arg  # type: ignore[misc]
            frontend = Frontend(spec_hostname(spec), key, path, method, position, key=key)
            expected = reference.add(
                RefRule(spec, path, None if method is None else norm_method(method), position, key)
            )
            if expected:
                router.add(frontend)
            else:
                with pytest.raises(ValueError, match="duplicate"):
                    router.add(frontend)
        else:
            assert router.remove(arg) == reference.remove(arg)  # type: ignore[arg-type]
        assert len(router) == len(reference.rules)

    probes = st.tuples(
        st.one_of(random_hosts, st.sampled_from(pool).flatmap(host_for)),
        st.sampled_from(PATHS),
        st.sampled_from(["GET", "get", "POST", "PUT"]),
        st.booleans(),
    )
    for host, path, method, shout in data.draw(st.lists(probes, min_size=1, max_size=20)):
        asked = host.upper() + "." if shout else host
        assert router.lookup(asked, path, method) == reference.lookup(asked, path, method), (
            asked,
            path,
            method,
        )
