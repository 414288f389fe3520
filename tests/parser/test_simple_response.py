"""``simple_response_head``: the fast path's classifier agrees with ``parse_response_head``.

Whenever it says "simple", the full parser must say the same things (length, status,
Content-Length body, keep-alive, no field named by Connection) and the cut must be exactly
the one Connection line; whenever the full parser refuses a head or finds it incomplete,
the classifier must say None. Run on both scanner backends (the folder's conftest).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pysozu.parser import (
    BodyKind,
    ParseError,
    parse_response_head,
    simple_response_head,
)

from .cases import CASES
from .helpers import mutations

NGINX = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Fri, 27 Nov 2026 02:00:00 GMT\r\n"
         b"Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
         b"hello")


def check_agreement(data: bytes, method: bytes = b"GET") -> tuple[int, ...] | None:
    simple = simple_response_head(data, len(data))
    try:
        head = parse_response_head(data, len(data), 0, method)
    except ParseError:
        assert simple is None
        return None
    if head is None:
        assert simple is None
        return None
    if simple is None or method in (b"HEAD", b"CONNECT"):
        return None  # the general path takes any head; HEAD and CONNECT are kept off it
    length, status, content_length, cut, cut_end = simple
    assert (head.length, head.status) == (length, status)
    assert head.body == BodyKind.LENGTH and head.content_length == content_length
    assert head.keep_alive and not head.is_informational and head.upgrade is None
    assert set(head.connection_tokens) <= {b"keep-alive"}
    assert head.version_minor == 1
    removed = data[cut:cut_end]
    kept = data[:cut] + data[cut_end:length]
    if head.get(b"connection"):
        assert removed.lower().startswith(b"connection:") and removed.endswith(b"\r\n")
    else:
        assert removed == b""
    assert b"\r\nconnection:" not in kept.lower()
    assert kept.endswith(b"\r\n\r\n")
    return simple


def test_the_usual_nginx_response_is_simple():
    simple = check_agreement(NGINX)
    assert simple is not None
    length, status, content_length, cut, cut_end = simple
    assert (length, status, content_length) == (len(NGINX) - 5, 200, 5)
    assert NGINX[cut:cut_end] == b"Connection: keep-alive\r\n"


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\nX: y\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 503 \r\nContent-Length: 0\r\nConnection:keep-alive\r\n\r\n",
])
def test_simple_variants(head):
    assert check_agreement(head) is not None


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, x-hop\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
    b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",  # incomplete
    b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",  # invalid
])
def test_not_simple(head):
    assert simple_response_head(head, len(head)) is None
    check_agreement(head)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "response"], ids=lambda c: c.id)
def test_table_responses(case):
    check_agreement(case.raw, case.request_method)


SEEDS = [
    NGINX,
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
]
SPECIAL = b"\r\n\x00 \t:\x7f\x80\xff,"


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutations(SEEDS, SPECIAL, 3), method=st.sampled_from([b"GET", b"POST"]))
def test_mutated_responses_agree(data, method):
    check_agreement(data, method)
