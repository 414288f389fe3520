"""Rewrite templates and captures (``protocols/rewrite.py``), without sockets."""

from __future__ import annotations

import pytest

from pysozu.protocols.rewrite import CapturePlan, Rewrites, RewriteTemplate
from pysozu.protocols.router import Frontend, PathRule, RulePosition


def _front(hostname: str, path: PathRule | None = None,
           position: RulePosition = RulePosition.TREE) -> Frontend[str]:
    return Frontend(hostname=hostname, route="c", path=path or PathRule(), position=position)


def test_template_parts_and_render():
    t = RewriteTemplate.parse("/a/$PATH[1]/$HOST[0]", 1, 2, "rewrite_path")
    assert t.parts == ("/a/", (False, 1), "/", (True, 0))
    assert (t.host_used, t.path_used) == (1, 2)
    assert t.render(["h.test"], ["/p/q", "/q"]) == "/a//q/h.test"
    assert t.render([], []) == "/a//"  # missing captures render empty


@pytest.mark.parametrize(
    "text", ["$", "$HOST", "$HOST[]", "$HOST[x]", "$PATH[1", "a$b", "$host[0]"]
)
def test_malformed_templates(text):
    with pytest.raises(ValueError, match="must start"):
        RewriteTemplate.parse(text, 5, 5, "rewrite_host")


def test_capture_counts_follow_the_rules():
    assert CapturePlan(_front("a.test")).host_count == 1
    assert CapturePlan(_front("*.a.test")).host_count == 2
    assert CapturePlan(_front("*")).host_count == 1
    assert CapturePlan(_front("/(x)(y)?/./(z)/.test")).host_count == 4
    assert CapturePlan(_front("a.test", PathRule.equals("/x"))).path_count == 1
    assert CapturePlan(_front("a.test", PathRule.prefix("/x"))).path_count == 2
    assert CapturePlan(_front("a.test", PathRule.regex("(a)(b)(c)"))).path_count == 4


def test_tree_host_captures_left_to_right_per_label():
    front = _front("/([a-z]+)/./([0-9]+)-x/.test")
    r = Rewrites(front, "$HOST[2]-$HOST[1]", None, None)
    assert r.apply("abc.42-x.test", "/") == ("42-abc", None)


def test_pre_host_captures_may_span_dots():
    front = _front("/(.+)/.test", position=RulePosition.PRE)
    r = Rewrites(front, "$HOST[1]", None, None)
    assert r.apply("a.b.c.test", "/") == ("a.b.c", None)


def test_unmatched_optional_group_is_empty_and_path_gets_a_slash():
    front = _front("a.test", PathRule.regex(r"^/x(/y)?"))
    r = Rewrites(front, None, "$PATH[1]", None)
    assert r.apply("a.test", "/x") == (None, "/")
    assert r.apply("a.test", "/x/y/z") == (None, "/y")


def test_captures_computed_only_when_used():
    plan = Rewrites(_front("*.a.test", PathRule.prefix("/p")), "static.test", "/fixed", 80).plan
    assert (plan.host_needed, plan.path_needed) == (0, 0)
    assert plan.host("x.a.test") == [] and plan.path("/p/q") == []


def test_port_range_and_literal_checks():
    with pytest.raises(ValueError, match="rewrite_port"):
        Rewrites(_front("a.test"), None, None, 70000)
    with pytest.raises(ValueError, match="cannot be part of a host"):
        Rewrites(_front("a.test"), "a b", None, None)
    with pytest.raises(ValueError, match="request target"):
        Rewrites(_front("a.test"), None, "/a b", None)
