"""Serializers: they refuse what the parser refuses, and parse(serialize(x)) round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysozu.parser import (
    LAST_CHUNK,
    BodyKind,
    ChunkedDecoder,
    parse_request_head,
    parse_response_head,
    serialize_chunk,
    serialize_last_chunk,
    serialize_request_head,
    serialize_response_head,
)
from tests.parser.cases import CASES

TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
token = st.text(TCHARS, min_size=1, max_size=12).map(str.encode)
VISIBLE = "".join(map(chr, [*range(0x21, 0x7F), *range(0x80, 0x100)]))
inner = st.text(VISIBLE + " \t", max_size=24).map(lambda t: t.encode("latin-1"))
# a field value as the parser returns it: no CTL, no surrounding blanks
value = inner.map(lambda v: v.strip(b" \t"))
# names the framing and routing rules leave alone
free_name = token.filter(lambda n: n.lower() not in {
    b"content-length", b"transfer-encoding", b"host", b"connection", b"upgrade", b"expect"})
target = st.text("abcxyz0123456789-._~!$&'()*+,;=:@%/?", max_size=30).map(
    lambda t: b"/" + t.encode())
headers = st.lists(st.tuples(free_name, value), max_size=12)
framing = st.sampled_from([[], [(b"Content-Length", b"0")], [(b"Content-Length", b"12345")],
                           [(b"Transfer-Encoding", b"chunked")],
                           [(b"Transfer-Encoding", b"gzip, chunked")],
                           [(b"Connection", b"close")], [(b"Connection", b"keep-alive")],
                           [(b"Expect", b"100-continue")],
                           [(b"Connection", b"upgrade"), (b"Upgrade", b"websocket")]])


def request_fields(data: bytes) -> tuple[object, ...]:
    head = parse_request_head(data)
    assert head is not None and head.length == len(data)
    return (head.method, head.target, head.version_minor, list(head.iter_headers()),
            head.body, head.content_length, head.keep_alive, head.upgrade,
            head.expect_continue, head.host)


@settings(max_examples=300, deadline=None)
# CONNECT takes an authority, never the origin-form targets made here (the serializer
# refuses that pair, as the parser does: hypothesis finds it now and then)
@given(method=token.filter(lambda m: m != b"CONNECT"), target=target, hdrs=headers,
       extra=framing, minor=st.sampled_from([0, 1]),
       host=st.sampled_from([b"example.com", b"a.example:8080", b"[::1]", b""]))
def test_request_round_trip(method: bytes, target: bytes, hdrs: list[tuple[bytes, bytes]],
                            extra: list[tuple[bytes, bytes]], minor: int, host: bytes) -> None:
    if minor == 0 and extra and extra[0][0] == b"Transfer-Encoding":
        extra = []  # HTTP/1.0 has no Transfer-Encoding: the serializer would refuse it
    fields = [(b"Host", host), *hdrs, *extra]
    data = serialize_request_head(method, target, fields, minor)
    head = parse_request_head(data)
    assert head is not None and head.length == len(data)
    assert (head.method, head.target, head.version_minor) == (method, target, minor)
    assert list(head.iter_headers()) == fields
    # serialize(parse(x)) == x, and it parses to the same message again
    again = serialize_request_head(head.method, head.target, head.iter_headers(),
                                   head.version_minor)
    assert again == data
    assert request_fields(again) == request_fields(data)


@settings(max_examples=300, deadline=None)
@given(status=st.integers(100, 999), reason=inner,
       hdrs=headers, extra=framing, minor=st.sampled_from([0, 1]),
       method=st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"]))
def test_response_round_trip(status: int, reason: bytes, hdrs: list[tuple[bytes, bytes]],
                             extra: list[tuple[bytes, bytes]], minor: int,
                             method: bytes) -> None:
    if minor == 0 and extra and extra[0][0] == b"Transfer-Encoding":
        extra = []
    fields = [*hdrs, *extra]
    data = serialize_response_head(status, reason, fields, minor, request_method=method)
    head = parse_response_head(data, request_method=method)
    assert head is not None and head.length == len(data)
    assert (head.status, head.reason, head.version_minor) == (status, reason, minor)
    assert list(head.iter_headers()) == fields
    again = serialize_response_head(head.status, head.reason, head.iter_headers(),
                                     head.version_minor, request_method=method)
    assert again == data
    other = parse_response_head(again, request_method=method)
    assert other is not None
    assert (other.body, other.content_length, other.keep_alive, other.tunnel) == (
        head.body, head.content_length, head.keep_alive, head.tunnel)


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None and c.messages
                                  and "method" in c.messages[0]], ids=lambda c: c.id)
def test_table_requests_round_trip(case: object) -> None:
    """Every valid request of the table, re-serialized, parses to the same message."""
    raw: bytes = case.raw  # type: ignore[attr-defined]
    head = parse_request_head(raw, limits=case.limits)  # type: ignore[attr-defined]
    if head is None:
        return
    data = serialize_request_head(head.method, head.target, head.iter_headers(),
                                  head.version_minor)
    assert request_fields(data) == request_fields(raw[head.head_start : head.length])


@pytest.mark.parametrize(("args", "message"), [
    ((b"GE T", b"/", []), "invalid method"),
    ((b"", b"/", []), "invalid method"),
    ((b"GET", b"/a b", []), "invalid request target"),
    ((b"GET", b"", []), "invalid request target"),
    ((b"GET", b"/\x00", []), "invalid request target"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X Y", b"v")]), "invalid header name"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X", b"a\r\nEvil: 1")]), "invalid value"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X", b"a\nb")]), "invalid value"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X", b"\x00")]), "invalid value"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X", b" padded")]), "invalid value"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"X", b"padded\t")]), "invalid value"),
    ((b"GET", b"/", []), "without Host"),
    ((b"GET", b"/", [(b"Host", b"a"), (b"Host", b"b")]), "more than one Host"),
    ((b"POST", b"/", [(b"Host", b"a"), (b"Content-Length", b"1"),
                      (b"Transfer-Encoding", b"chunked")]), "Content-Length with Transfer"),
    ((b"POST", b"/", [(b"Host", b"a"), (b"Content-Length", b"1"),
                      (b"Content-Length", b"1")]), "more than one Content-Length"),
    ((b"POST", b"/", [(b"Host", b"a"), (b"Content-Length", b"-1")]), "invalid Content-Length"),
    ((b"POST", b"/", [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked, gzip")]),
     "not the final"),
    ((b"CONNECT", b"/", [(b"Host", b"a")]), "target form"),
])
def test_request_serializer_refuses(args: tuple[bytes, bytes, list[tuple[bytes, bytes]]],
                                    message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serialize_request_head(*args)


def test_request_serializer_version() -> None:
    with pytest.raises(ValueError, match="minor version"):
        serialize_request_head(b"GET", b"/", [(b"Host", b"a")], 10)
    with pytest.raises(ValueError, match=r"Transfer-Encoding in an HTTP/1\.0"):
        serialize_request_head(b"POST", b"/", [(b"Transfer-Encoding", b"chunked")], 0)
    assert serialize_request_head(b"GET", b"/", [], 0) == b"GET / HTTP/1.0\r\n\r\n"


def test_response_serializer_refuses() -> None:
    with pytest.raises(ValueError, match="status"):
        serialize_response_head(99, b"x", [])
    with pytest.raises(ValueError, match="status"):
        serialize_response_head(1000, b"x", [])
    with pytest.raises(ValueError, match="reason"):
        serialize_response_head(200, b"O\r\nK", [])
    with pytest.raises(ValueError, match="reason"):
        serialize_response_head(200, b"\x7f", [])
    with pytest.raises(ValueError, match="Content-Length with"):
        serialize_response_head(200, b"OK", [(b"Transfer-Encoding", b"chunked"),
                                             (b"Content-Length", b"3")])
    with pytest.raises(ValueError, match="chunked applied more than once"):
        serialize_response_head(200, b"OK", [(b"Transfer-Encoding", b"chunked, chunked")])
    assert serialize_response_head(204, b"", [], 1) == b"HTTP/1.1 204 \r\n\r\n"


def test_chunks_round_trip() -> None:
    parts = [b"a", b"hello world", bytes(range(256)) * 20, memoryview(b"view")]
    body = b"".join(serialize_chunk(p) for p in parts) + serialize_chunk(b"")
    body += serialize_last_chunk([(b"X-Sum", b"1"), (b"X-Empty", b"")])
    decoder = ChunkedDecoder()
    assert decoder.feed(body) == len(body) and decoder.done
    assert b"".join(body[s:e] for s, e in decoder.data_spans) == b"".join(bytes(p) for p in parts)
    assert decoder.trailers == [(b"X-Sum", b"1"), (b"X-Empty", b"")]
    assert serialize_chunk(b"") == b""
    assert serialize_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert serialize_last_chunk() == LAST_CHUNK == b"0\r\n\r\n"


@pytest.mark.parametrize("name", [b"Content-Length", b"transfer-encoding", b"HOST"])
def test_last_chunk_refuses_framing_trailers(name: bytes) -> None:
    with pytest.raises(ValueError, match="not allowed in trailers"):
        serialize_last_chunk([(name, b"1")])


def test_last_chunk_refuses_bad_fields() -> None:
    with pytest.raises(ValueError):
        serialize_last_chunk([(b"X", b"a\r\nb")])


def test_parsed_body_kinds_of_serialized_heads() -> None:
    data = serialize_request_head(b"POST", b"/", [(b"Host", b"a"),
                                                  (b"Transfer-Encoding", b"chunked")])
    head = parse_request_head(data)
    assert head is not None and head.body == BodyKind.CHUNKED
