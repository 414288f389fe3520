"""HTTP/2 <-> HTTP/1.1 translation (``protocols/h2_translate.py``), without sockets.

Every valid request is parsed back with ``parse_request_head`` (on both scanner backends);
every malformed one names its rule; the response reader is fed in every way a writer could
cut its output.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysozu import parser
from pysozu.parser import (
    BodyKind,
    ChunkedDecoder,
    Limits,
    ParseError,
    parse_request_head,
    parse_response_head,
)
from pysozu.parser.h1 import RequestHead
from pysozu.parser.h2_hpack import encode_headers
from pysozu.protocols.h2_translate import (
    LAST_CHUNK,
    H1Request,
    H1ResponseReader,
    Header,
    MalformedMessage,
    ResponseData,
    ResponseEvent,
    ResponseHeaders,
    ResponseTrailers,
    encode_chunk,
    request_to_h1,
    response_headers,
    trailers_to_h1,
)


@pytest.fixture(params=["native", "python"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test with each scanner backend (the reader and the parse-back use them)."""
    name = str(request.param)
    if name == "native" and not parser.NATIVE_AVAILABLE:
        pytest.skip("the native scanner is not built")
    previous = parser.BACKEND
    parser.set_backend(name)
    try:
        yield name
    finally:
        parser.set_backend(previous)


def pseudo(
    method: bytes = b"GET", path: bytes = b"/", authority: bytes | None = b"a.test"
) -> list[Header]:
    fields = [(b":method", method), (b":scheme", b"https")]
    if authority is not None:
        fields.append((b":authority", authority))
    return [*fields, (b":path", path)]


# --- request_to_h1: valid requests ----------------------------------------------------------

# (headers, end_stream, connect_allowed, head, chunked, content_length, authority)
VALID = [
    pytest.param(
        pseudo(), True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", False, None, b"a.test",
        id="get-end-stream",
    ),
    pytest.param(
        pseudo(), False, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n", True, None,
        b"a.test",
        id="get-with-data-chunked",
    ),
    pytest.param(
        pseudo(b"POST", b"/form"), True, False,
        b"POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n", False, None,
        b"a.test",
        id="post-end-stream-gets-cl0",
    ),
    pytest.param(
        pseudo(b"PUT"), True, False,
        b"PUT / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n", False, None, b"a.test",
        id="put-end-stream-gets-cl0",
    ),
    pytest.param(
        pseudo(b"PATCH"), True, False,
        b"PATCH / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n", False, None,
        b"a.test",
        id="patch-end-stream-gets-cl0",
    ),
    pytest.param(
        pseudo(b"DELETE"), True, False,
        b"DELETE / HTTP/1.1\r\nHost: a.test\r\n\r\n", False, None, b"a.test",
        id="delete-end-stream-nothing",
    ),
    pytest.param(
        [*pseudo(b"POST"), (b"content-length", b"5")], False, False,
        b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-length: 5\r\n\r\n", False, 5, b"a.test",
        id="post-content-length-kept",
    ),
    pytest.param(
        [*pseudo(b"POST"), (b"content-length", b"0")], True, False,
        b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-length: 0\r\n\r\n", False, 0, b"a.test",
        id="cl0-end-stream-kept",
    ),
    pytest.param(
        [*pseudo(b"POST"), (b"content-length", b"5"), (b"x", b"1"), (b"content-length", b"5")],
        False, False,
        b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-length: 5\r\nx: 1\r\n\r\n", False, 5,
        b"a.test",
        id="cl-equal-fields-folded",
    ),
    pytest.param(
        [*pseudo(b"POST"), (b"content-length", b"5, 5,5")], False, False,
        b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-length: 5\r\n\r\n", False, 5, b"a.test",
        id="cl-equal-list-folded",
    ),
    pytest.param(
        [*pseudo(b"POST"), (b"content-length", b"007"), (b"content-length", b"7")], False, False,
        b"POST / HTTP/1.1\r\nHost: a.test\r\ncontent-length: 7\r\n\r\n", False, 7, b"a.test",
        id="cl-leading-zeros-canonical",
    ),
    pytest.param(
        [*pseudo(), (b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2"), (b"cookie", b"c=3")],
        True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\ncookie: a=1; b=2; c=3\r\nx: y\r\n\r\n", False, None,
        b"a.test",
        id="cookies-joined-at-first",
    ),
    pytest.param(
        [*pseudo(), (b"x", b"y"), (b"cookie", b"a=1")], True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nx: y\r\ncookie: a=1\r\n\r\n", False, None, b"a.test",
        id="one-cookie-in-place",
    ),
    pytest.param(
        [*pseudo(), (b"te", b"trailers")], True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nte: trailers\r\n\r\n", False, None, b"a.test",
        id="te-trailers-kept",
    ),
    pytest.param(
        [*pseudo(), (b"te", b"TraiLers")], True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nte: TraiLers\r\n\r\n", False, None, b"a.test",
        id="te-trailers-any-case",
    ),
    pytest.param(
        pseudo(b"OPTIONS", b"*"), True, False,
        b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n", False, None, b"a.test",
        id="options-asterisk",
    ),
    pytest.param(
        [*pseudo(authority=None), (b"accept", b"*/*"), (b"host", b"b.test:8443")], True, False,
        b"GET / HTTP/1.1\r\nHost: b.test:8443\r\naccept: */*\r\n\r\n", False, None,
        b"b.test:8443",
        id="host-field-when-no-authority",
    ),
    pytest.param(
        [*pseudo(authority=b"A.Test"), (b"host", b"a.TEST")], True, False,
        b"GET / HTTP/1.1\r\nHost: A.Test\r\n\r\n", False, None, b"A.Test",
        id="host-equal-to-authority-not-repeated",
    ),
    pytest.param(
        [*pseudo(), (b"x-obs", b"caf\xe9 \x80\xff"), (b"x-tab", b"a\tb  c")], True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nx-obs: caf\xe9 \x80\xff\r\nx-tab: a\tb  c\r\n\r\n",
        False, None, b"a.test",
        id="obs-text-and-inner-whitespace",
    ),
    pytest.param(
        [*pseudo(), (b"x-empty", b""), (b"!#$%&'*+-.^_`|~09az", b"v")], True, False,
        b"GET / HTTP/1.1\r\nHost: a.test\r\nx-empty: \r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n", False,
        None, b"a.test",
        id="empty-value-and-every-tchar",
    ),
    pytest.param(
        pseudo(path=b"/a/b?q=1&r=%20#"), True, False,
        b"GET /a/b?q=1&r=%20# HTTP/1.1\r\nHost: a.test\r\n\r\n", False, None, b"a.test",
        id="path-with-query",
    ),
    pytest.param(
        [(b":authority", b"a.test:443"), (b":method", b"CONNECT")], False, True,
        b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", False, None,
        b"a.test:443",
        id="connect-allowed",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "end_stream", "connect_allowed", "head", "chunked", "content_length", "authority"),
    VALID,
)
def test_valid_request(
    backend: str,
    headers: list[Header],
    end_stream: bool,
    connect_allowed: bool,
    head: bytes,
    chunked: bool,
    content_length: int | None,
    authority: bytes,
) -> None:
    r = request_to_h1(headers, end_stream=end_stream, connect_allowed=connect_allowed)
    method = dict(headers)[b":method"]
    assert r == H1Request(head, method, chunked, content_length, authority)
    # the HTTP/1.1 machine reads the same request
    h = parse_request_head(r.head)
    assert h is not None and h.length == len(r.head)
    assert h.method == method
    assert h.target == (authority if method == b"CONNECT" else dict(headers)[b":path"])
    assert h.host == authority
    if chunked:
        assert h.body == BodyKind.CHUNKED
    elif method != b"CONNECT" and (content_length is not None or b"Content-Length" in head):
        assert (h.body, h.content_length) == (BodyKind.LENGTH, content_length or 0)
    else:
        assert h.body == BodyKind.NONE


def test_no_authority_no_host_line_is_left_to_the_h1_machine() -> None:
    r = request_to_h1(pseudo(authority=None), end_stream=True)
    assert r.head == b"GET / HTTP/1.1\r\n\r\n"
    assert r.authority == b""
    with pytest.raises(ParseError) as e:
        parse_request_head(r.head)
    assert (e.value.status, e.value.code) == (400, "MISSING_HOST")


# --- request_to_h1: malformed requests ------------------------------------------------------

NO_SCHEME = [(b":method", b"GET"), (b":authority", b"a.test"), (b":path", b"/")]
NO_PATH = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.test")]
NO_METHOD = [(b":scheme", b"https"), (b":authority", b"a.test"), (b":path", b"/")]

P = pseudo()
POST = pseudo(b"POST")


def bad(
    case: str, headers: list[Header], reason: str, *, end_stream: bool = True, connect: bool = False
) -> object:
    """A malformed case named ``case``: (headers, end_stream, connect_allowed, reason)."""
    return pytest.param(headers, end_stream, connect, reason, id=case)


MALFORMED = [
    # names
    bad("uppercase-name", [*P, (b"Accept", b"x")], "uppercase"),
    bad("uppercase-inside", [*P, (b"x-A", b"x")], "uppercase"),
    bad("space-in-name", [*P, (b"a b", b"x")], "invalid field name"),
    bad("delimiter-in-name", [*P, (b"a(b", b"x")], "invalid field name"),
    bad("empty-name", [*P, (b"", b"x")], "invalid field name"),
    bad("colon-in-name", [*P, (b"a:b", b"x")], "invalid field name"),
    bad("obs-text-name", [*P, (b"\xe9", b"x")], "invalid field name"),
    # values
    bad("nul-in-value", [*P, (b"x", b"a\x00b")], "NUL, CR or LF"),
    bad("cr-in-value", [*P, (b"x", b"a\rb")], "NUL, CR or LF"),
    bad("lf-in-value", [*P, (b"x", b"a\nb")], "NUL, CR or LF"),
    bad("leading-space", [*P, (b"x", b" a")], "whitespace"),
    bad("trailing-tab", [*P, (b"x", b"a\t")], "whitespace"),
    bad("only-space", [*P, (b"x", b" ")], "whitespace"),
    bad("control-byte", [*P, (b"x", b"a\x01b")], "control"),
    bad("del-byte", [*P, (b"x", b"a\x7fb")], "control"),
    bad("lf-in-cookie", [*P, (b"cookie", b"a\nb")], "NUL, CR or LF"),
    bad("crlf-in-host", [*P, (b"host", b"a.test\r\nx: y")], "NUL, CR or LF"),
    bad("crlf-in-authority", pseudo(authority=b"a.test\r\n"), "NUL, CR or LF"),
    # pseudo-headers
    bad("status-in-request", [*P, (b":status", b"200")], "not allowed"),
    bad("protocol", [*P, (b":protocol", b"websocket")], "not allowed"),
    bad("unknown-pseudo", [(b":foo", b"x"), *pseudo()], "not allowed"),
    bad("two-methods", [*P, (b":method", b"GET")], "more than one :method"),
    bad("two-paths", [*P, (b":path", b"/")], "more than one :path"),
    bad("two-schemes", [*P, (b":scheme", b"http")], "more than one :scheme"),
    bad("two-authorities", [*P, (b":authority", b"a.test")], "more than one :authority"),
    bad(
        "pseudo-after-regular", [*NO_PATH, (b"x", b"y"), (b":path", b"/")], "after a regular field"
    ),
    bad(
        "pseudo-after-cookie",
        [*NO_PATH, (b"cookie", b"y"), (b":path", b"/")],
        "after a regular field",
    ),
    # connection-specific fields
    bad("connection", [*P, (b"connection", b"close")], "connection-specific"),
    bad("proxy-connection", [*P, (b"proxy-connection", b"x")], "connection-specific"),
    bad("keep-alive", [*P, (b"keep-alive", b"timeout=5")], "connection-specific"),
    bad(
        "transfer-encoding",
        [*P, (b"transfer-encoding", b"chunked")],
        "connection-specific",
        end_stream=False,
    ),
    bad("upgrade", [*P, (b"upgrade", b"h2c")], "connection-specific"),
    bad("te-gzip", [*P, (b"te", b"gzip")], "te other than trailers"),
    bad("te-list", [*P, (b"te", b"trailers, gzip")], "te other than trailers"),
    # control data
    bad("no-method", NO_METHOD, "missing :method"),
    bad("no-scheme", NO_SCHEME, "missing :scheme"),
    bad("no-path", NO_PATH, "missing :path"),
    bad("empty-list", [], "missing :method"),
    bad("empty-path", pseudo(path=b""), "empty :path"),
    bad("relative-path", pseudo(path=b"a/b"), "neither origin-form"),
    bad("absolute-form-path", pseudo(path=b"http://a.test/"), "neither origin-form"),
    bad("asterisk-not-options", pseudo(path=b"*"), "neither origin-form"),
    bad("space-in-path", pseudo(path=b"/a b"), "invalid :path"),
    bad("obs-text-in-path", pseudo(path=b"/caf\xe9"), "invalid :path"),
    bad("tab-in-path", pseudo(path=b"/a\tb"), "invalid :path"),
    bad("space-in-method", pseudo(method=b"GE T"), "invalid :method"),
    bad("delimiter-in-method", pseudo(method=b"GET("), "invalid :method"),
    bad("empty-method", pseudo(method=b""), "invalid :method"),
    bad(
        "scheme-digit-first",
        [(b":method", b"GET"), (b":scheme", b"1http"), (b":path", b"/")],
        "invalid :scheme",
    ),
    bad(
        "scheme-space",
        [(b":method", b"GET"), (b":scheme", b"ht tp"), (b":path", b"/")],
        "invalid :scheme",
    ),
    bad(
        "scheme-empty",
        [(b":method", b"GET"), (b":scheme", b""), (b":path", b"/")],
        "invalid :scheme",
    ),
    # CONNECT
    bad(
        "connect-refused",
        [(b":method", b"CONNECT"), (b":authority", b"a.test:443")],
        "CONNECT is not supported",
        end_stream=False,
    ),
    bad("connect-refused-full", pseudo(b"CONNECT"), "CONNECT is not supported", end_stream=False),
    bad(
        "connect-with-path",
        pseudo(b"CONNECT"),
        "CONNECT with :scheme or :path",
        end_stream=False,
        connect=True,
    ),
    bad(
        "connect-with-scheme",
        [(b":method", b"CONNECT"), (b":scheme", b"https"), (b":authority", b"a:1")],
        "CONNECT with :scheme",
        end_stream=False,
        connect=True,
    ),
    bad(
        "connect-no-authority",
        [(b":method", b"CONNECT")],
        "without a valid :authority",
        end_stream=False,
        connect=True,
    ),
    bad(
        "connect-bad-authority",
        [(b":method", b"CONNECT"), (b":authority", b"a b:1")],
        "without a valid :authority",
        end_stream=False,
        connect=True,
    ),
    bad(
        "connect-content-length",
        [(b":method", b"CONNECT"), (b":authority", b"a:1"), (b"content-length", b"0")],
        "content-length in a CONNECT",
        end_stream=False,
        connect=True,
    ),
    # Host
    bad("host-differs", [*P, (b"host", b"b.test")], "host differs"),
    bad(
        "two-hosts",
        [*pseudo(authority=None), (b"host", b"a"), (b"host", b"a")],
        "more than one host",
    ),
    bad(
        "two-hosts-with-authority",
        [*P, (b"host", b"a.test"), (b"host", b"a.test")],
        "more than one host",
    ),
    bad("userinfo-authority", pseudo(authority=b"user@a.test"), "userinfo"),
    bad("userinfo-host", [*pseudo(authority=None), (b"host", b"u:p@a.test")], "userinfo"),
    # content-length
    bad(
        "cl-letters",
        [*POST, (b"content-length", b"abc")],
        "invalid content-length",
        end_stream=False,
    ),
    bad(
        "cl-negative",
        [*POST, (b"content-length", b"-1")],
        "invalid content-length",
        end_stream=False,
    ),
    bad("cl-plus", [*POST, (b"content-length", b"+1")], "invalid content-length", end_stream=False),
    bad(
        "cl-space", [*POST, (b"content-length", b"1 2")], "invalid content-length", end_stream=False
    ),
    bad(
        "cl-hex", [*POST, (b"content-length", b"0x10")], "invalid content-length", end_stream=False
    ),
    bad("cl-empty", [*POST, (b"content-length", b"")], "invalid content-length", end_stream=False),
    bad(
        "cl-19-digits",
        [*POST, (b"content-length", b"1" * 19)],
        "invalid content-length",
        end_stream=False,
    ),
    bad(
        "cl-empty-element",
        [*POST, (b"content-length", b"5,,5")],
        "invalid content-length",
        end_stream=False,
    ),
    bad(
        "cl-non-ascii",
        [*POST, (b"content-length", b"\xd9\xa1")],
        "invalid content-length",
        end_stream=False,
    ),
    bad("cl-list-differs", [*POST, (b"content-length", b"1, 2")], "differ", end_stream=False),
    bad(
        "cl-fields-differ",
        [*POST, (b"content-length", b"1"), (b"content-length", b"2")],
        "differ",
        end_stream=False,
    ),
    bad("cl-without-data", [*POST, (b"content-length", b"5")], "non-zero content-length"),
]


@pytest.mark.parametrize(("headers", "end_stream", "connect_allowed", "reason"), MALFORMED)
def test_malformed_request(
    headers: list[Header], end_stream: bool, connect_allowed: bool, reason: str
) -> None:
    with pytest.raises(MalformedMessage) as e:
        request_to_h1(headers, end_stream=end_stream, connect_allowed=connect_allowed)
    assert re.search(reason, e.value.reason), e.value.reason
    assert str(e.value) == e.value.reason


# --- request_to_h1: property ----------------------------------------------------------------

# the names request_to_h1 translates, checks or refuses: the property is about the others
TRANSLATED = {
    b"host", b"cookie", b"content-length", b"te", b"connection", b"proxy-connection",
    b"keep-alive", b"transfer-encoding", b"upgrade",
}  # fmt: skip
NAMES = st.from_regex(rb"[a-z0-9!#$%&'*+.^_`|~-]{1,12}", fullmatch=True).filter(
    lambda n: n not in TRANSLATED
)
VALUES = st.from_regex(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]{0,16}[\x21-\x7e\x80-\xff])?)?",
    fullmatch=True,
)
COOKIES = st.from_regex(rb"[a-z]{1,5}=[\x21-\x3a\x3c-\x7e]{0,8}", fullmatch=True)
FIELDS = st.lists(
    st.one_of(st.tuples(NAMES, VALUES), st.tuples(st.just(b"cookie"), COOKIES)), max_size=12
)


@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"HEAD", b"X-Y~1"]),
    path=st.from_regex(rb"/[\x21-\x7e]{0,20}", fullmatch=True),
    authority=st.from_regex(rb"[a-z0-9][a-z0-9.-]{0,15}(:[0-9]{1,5})?", fullmatch=True),
    order=st.permutations(range(4)),
    fields=FIELDS,
    end_stream=st.booleans(),
    content_length=st.one_of(st.none(), st.integers(0, 10**18 - 1)),
)
def test_request_head_parses_back_with_the_same_fields(
    method: bytes,
    path: bytes,
    authority: bytes,
    order: list[int],
    fields: list[Header],
    end_stream: bool,
    content_length: int | None,
) -> None:
    control = [(b":method", method), (b":scheme", b"https"), (b":authority", authority),
               (b":path", path)]  # fmt: skip
    headers = [control[i] for i in order] + fields
    if content_length is not None:
        if end_stream:
            content_length = 0
        headers.append((b"content-length", b"%d" % content_length))
    r = request_to_h1(headers, end_stream=end_stream)

    h = parse_request_head(r.head)
    assert h is not None and h.length == len(r.head)
    assert (h.method, h.target, h.host) == (method, path, authority)
    expected = [(b"host", authority)]
    cookies = [v for n, v in fields if n == b"cookie"]
    for name, value in fields:
        if name != b"cookie":
            expected.append((name, value))
        elif value is cookies[0]:
            expected.append((name, b"; ".join(cookies)))
    if content_length is not None:
        expected.append((b"content-length", b"%d" % content_length))
        assert (h.body, h.content_length, r.chunked) == (BodyKind.LENGTH, content_length, False)
    elif not end_stream:
        expected.append((b"transfer-encoding", b"chunked"))
        assert (h.body, r.chunked) == (BodyKind.CHUNKED, True)
    elif method in (b"POST", b"PUT", b"PATCH"):
        expected.append((b"content-length", b"0"))
        assert (h.body, h.content_length) == (BodyKind.LENGTH, 0)
    else:
        assert h.body == BodyKind.NONE
    assert [(n.lower(), v) for n, v in h.iter_headers()] == expected
    assert r.content_length == content_length


# --- trusted_request_head: the parse the HTTP/2 streams skip ---------------------------------

HEAD_ATTRIBUTES = ("length", "spans", "mask", "body", "content_length", "keep_alive",
                   "connection_tokens", "target_form", "host", "expect_continue", "upgrade",
                   "method", "target", "version_minor", "head_start")


def assert_same_head(trusted: RequestHead, parsed: RequestHead) -> None:
    for name in HEAD_ATTRIBUTES:
        assert getattr(trusted, name) == getattr(parsed, name), name
    assert list(trusted.iter_headers()) == list(parsed.iter_headers())


# names with a scanner id among them: the shortcut must classify them as the scanner does
ANY_NAMES = st.one_of(NAMES, st.sampled_from(
    [b"expect", b"te", b"x-forwarded-for", b"forwarded", b"x-request-id", b"x-real-ip",
     b"sozu-id", b"trailer", b"x-forwarded-proto", b"x-forwarded-port"]))
HOSTS = st.one_of(
    st.from_regex(rb"[a-z0-9][a-z0-9.-]{0,15}(:[0-9]{1,5})?", fullmatch=True),
    st.from_regex(rb"[\x21-\x7e]{1,12}", fullmatch=True).filter(lambda v: b"@" not in v),
    st.sampled_from([b"[::1]:8080", b"a b", b":80", b"a.test:", b"\xff.test"]),
)


@given(
    method=st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS", b"X-Y~1"]),
    path=st.one_of(st.from_regex(rb"/[\x21-\x7e]{0,20}", fullmatch=True), st.just(b"*")),
    authority=st.one_of(st.none(), HOSTS),
    fields=st.lists(st.one_of(st.tuples(ANY_NAMES, VALUES), st.tuples(st.just(b"cookie"),
                                                                      COOKIES)), max_size=12),
    end_stream=st.booleans(),
    content_length=st.one_of(st.none(), st.integers(0, 10**19)),
    limits=st.one_of(st.just(Limits()), st.builds(
        Limits, max_head=st.sampled_from([64, 160, 8192]), max_headers=st.sampled_from([2, 5]),
        max_body=st.sampled_from([None, 0, 100]))),
)
@settings(max_examples=400)
def test_trusted_request_head_is_what_the_parser_reads(
    method: bytes,
    path: bytes,
    authority: bytes | None,
    fields: list[Header],
    end_stream: bool,
    content_length: int | None,
    limits: Limits,
) -> None:
    """Wherever the shortcut answers, it answers what the parser says (with the active
    scanner: the native one once built, which its own tests hold to the Python one); where
    the parser refuses the head (a bad host, a limit), the shortcut leaves it to it."""
    headers = pseudo(method, path, authority) + fields
    if content_length is not None:
        headers.append((b"content-length", b"%d" % content_length))
    try:
        r = request_to_h1(headers, end_stream=end_stream)
    except MalformedMessage:
        return
    buf = bytearray(r.head) + b"body"  # what follows the head in a machine's buffer
    trusted = r.trusted_head(memoryview(buf), limits)
    try:
        parsed = parse_request_head(memoryview(buf), limits=limits)
    except ParseError:
        assert trusted is None
        return
    assert parsed is not None
    assert (r.spans, r.mask) == (parsed.spans, parsed.mask)  # the writer's, the scanner's
    if trusted is not None:
        assert_same_head(trusted, parsed)


@pytest.mark.parametrize("headers", [
    pseudo(),
    [*pseudo(b"POST"), (b"content-length", b"12"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
    [*pseudo(b"OPTIONS", b"*"), (b"user-agent", b"t/1"), (b"x-forwarded-for", b"10.0.0.1")],
    [*pseudo(b"PUT", authority=b"[::1]:8080"), (b"te", b"trailers"), (b"accept", b"*/*")],
])
@pytest.mark.parametrize("end_stream", [True, False])
def test_usual_requests_take_the_trusted_head(backend: str, headers: list[Header],
                                              end_stream: bool) -> None:
    if end_stream and any(n == b"content-length" for n, _ in headers):
        headers = [f for f in headers if f[0] != b"content-length"]
    r = request_to_h1(headers, end_stream=end_stream)
    trusted = r.trusted_head(r.head, Limits())
    parsed = parse_request_head(r.head)
    assert trusted is not None and parsed is not None
    assert_same_head(trusted, parsed)


@pytest.mark.parametrize(("headers", "limits"), [
    (pseudo(authority=None), Limits()),  # no host: MISSING_HOST is the parser's to say
    (pseudo(authority=b"a b"), Limits()),  # BAD_HOST
    ([*pseudo(), (b"expect", b"100-continue")], Limits()),  # read by the parser only
    (pseudo(), Limits(max_head=20)),  # 431
    ([*pseudo(), (b"a", b"1"), (b"b", b"2")], Limits(max_headers=2)),  # 431
    ([*pseudo(b"POST"), (b"content-length", b"101")], Limits(max_body=100)),  # 413
])
def test_the_trusted_head_leaves_what_the_parser_refuses_or_reads_to_it(
    headers: list[Header], limits: Limits
) -> None:
    r = request_to_h1(headers, end_stream=False)
    assert r.trusted_head(r.head, limits) is None


# --- trailers and chunks --------------------------------------------------------------------

TRAILERS = [
    pytest.param([], LAST_CHUNK, id="none"),
    pytest.param([(b"grpc-status", b"0")], b"0\r\ngrpc-status: 0\r\n\r\n", id="one"),
    pytest.param(
        [(b"x-sum", b"abc"), (b"x-obs", b"\xe9 \xff"), (b"x-empty", b"")],
        b"0\r\nx-sum: abc\r\nx-obs: \xe9 \xff\r\nx-empty: \r\n\r\n",
        id="several-obs-text-empty",
    ),
]


@pytest.mark.parametrize(("headers", "expected"), TRAILERS)
def test_trailers(backend: str, headers: list[Header], expected: bytes) -> None:
    data = trailers_to_h1(headers)
    assert data == expected
    decoder = ChunkedDecoder()
    body = encode_chunk(b"hello") + data
    assert decoder.feed(body) == len(body) and decoder.done
    assert decoder.trailers == headers


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([(b":status", b"200")], "pseudo-header", id="pseudo"),
        pytest.param([(b":path", b"/")], "pseudo-header", id="request-pseudo"),
        pytest.param([(b"X-Sum", b"1")], "uppercase", id="uppercase"),
        pytest.param([(b"a b", b"1")], "invalid field name", id="bad-name"),
        pytest.param([(b"", b"1")], "invalid field name", id="empty-name"),
        pytest.param([(b"x", b"1\r\ny: 2")], "NUL, CR or LF", id="crlf-value"),
        pytest.param([(b"x", b"1 ")], "whitespace", id="trailing-space"),
        pytest.param([(b"x", b"\x1f")], "control", id="control-byte"),
        pytest.param([(b"content-length", b"5")], "not allowed in trailers", id="content-length"),
        pytest.param([(b"transfer-encoding", b"chunked")], "not allowed", id="transfer-encoding"),
        pytest.param([(b"host", b"a.test")], "not allowed in trailers", id="host"),
        pytest.param([(b"connection", b"close")], "not allowed in trailers", id="connection"),
        pytest.param([(b"keep-alive", b"1")], "not allowed in trailers", id="keep-alive"),
        pytest.param([(b"proxy-connection", b"1")], "not allowed", id="proxy-connection"),
        pytest.param([(b"upgrade", b"h2c")], "not allowed in trailers", id="upgrade"),
        pytest.param([(b"te", b"trailers")], "not allowed in trailers", id="te"),
        pytest.param([(b"x", b"1"), (b"host", b"a")], "not allowed", id="after-a-good-one"),
    ],
)
def test_malformed_trailers(headers: list[Header], reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        trailers_to_h1(headers)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", b"", id="empty"),
        pytest.param(memoryview(b""), b"", id="empty-view"),
        pytest.param(b"hello", b"5\r\nhello\r\n", id="hello"),
        pytest.param(memoryview(b"xhellox")[1:-1], b"5\r\nhello\r\n", id="view"),
        pytest.param(b"a" * 255, b"ff\r\n" + b"a" * 255 + b"\r\n", id="hex-size"),
        pytest.param(b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n", id="framing-bytes-inside"),
    ],
)
def test_encode_chunk(backend: str, data: bytes | memoryview, expected: bytes) -> None:
    chunk = encode_chunk(data)
    assert chunk == expected and type(chunk) is bytes
    decoder = ChunkedDecoder()
    body = chunk + LAST_CHUNK
    assert decoder.feed(body) == len(body) and decoder.done
    assert b"".join(body[s:e] for s, e in decoder.data_spans) == bytes(data)


# --- response_headers -----------------------------------------------------------------------

RESPONSE_HEADS = [
    pytest.param(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
        b"X-Obs: caf\xe9\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
        b"GET",
        [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"5"),
         (b"x-obs", b"caf\xe9"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        id="names-lowercased-values-kept",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
        b"Proxy-Connection: x\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\nTE: trailers\r\n"
        b"Server: s\r\n\r\n",
        b"GET",
        [(b":status", b"200"), (b"server", b"s")],
        id="hop-by-hop-dropped",
    ),
    pytest.param(
        b"HTTP/1.1 404 Not Found\r\nConnection: X-Secret, close\r\nx-secret: 1\r\n"
        b"Connection: x-other\r\nX-Other: 2\r\nX-Kept: 3\r\n\r\n",
        b"GET",
        [(b":status", b"404"), (b"x-kept", b"3")],
        id="connection-named-dropped",
    ),
    pytest.param(
        b"HTTP/1.0 304 Not Modified\r\nETag:  \"x\"  \r\nContent-Length: 10\r\n\r\n",
        b"GET",
        [(b":status", b"304"), (b"etag", b'"x"'), (b"content-length", b"10")],
        id="304-http10-ows-trimmed",
    ),
    pytest.param(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
        b"GET",
        [(b":status", b"103"), (b"link", b"</s.css>; rel=preload")],
        id="informational",
    ),
    pytest.param(b"HTTP/1.1 599\r\n\r\n", b"HEAD", [(b":status", b"599")], id="no-reason"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "method", "expected"), RESPONSE_HEADS)
def test_response_headers(backend: str, head: bytes, method: bytes, expected: list[Header]) -> None:
    for buf in (head, bytearray(head), memoryview(head + b"body")):
        parsed = parse_response_head(buf, request_method=method)
        assert parsed is not None
        assert response_headers(parsed, buf) == expected


# --- H1ResponseReader -----------------------------------------------------------------------

Summary = list[tuple[str, object, bool]]


def summarize(events: list[ResponseEvent]) -> Summary:
    """Events with consecutive DATA merged (how a writer cuts its bytes must not matter),
    after checking that nothing follows the end of the stream and no DATA is empty but the
    one that ends it."""
    out: Summary = []
    ended = False
    for ev in events:
        assert not ended, f"{ev!r} after the end of the stream"
        if isinstance(ev, ResponseHeaders):
            kind = "1xx" if ev.informational else "headers"
            assert not (ev.informational and ev.end_stream)
            out.append((kind, ev.headers, ev.end_stream))
            ended = ev.end_stream
        elif isinstance(ev, ResponseData):
            assert ev.data or ev.end_stream, "empty DATA that ends nothing"
            assert type(ev.data) is bytes
            if out and out[-1][0] == "data":
                data = out[-1][1]
                assert isinstance(data, bytes)
                out[-1] = ("data", data + ev.data, ev.end_stream)
            else:
                out.append(("data", ev.data, ev.end_stream))
            ended = ev.end_stream
        else:
            assert isinstance(ev, ResponseTrailers)
            out.append(("trailers", ev.headers, True))
            ended = True
    return out


def read(pieces: list[bytes], method: bytes = b"GET", eof: bool = False) -> Summary:
    reader = H1ResponseReader(method)
    events: list[ResponseEvent] = []
    for piece in pieces:
        events += reader.feed(piece)
    if eof:
        events += reader.eof()
    assert reader.done
    assert reader.feed(b"more bytes after the end") == []
    assert reader.eof() == []
    return summarize(events)


def every_split(data: bytes) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for k in range(1, len(data)):
        yield [data[:k], data[k:]]


OK = [(b":status", b"200")]

CL_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello world"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n"
)
CHUNKED_END = b"0\r\n\r\n"
CHUNKED_TRAILERS = b"0\r\nGrpc-Status: 0\r\nX-Sum: abc\r\n\r\n"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        pytest.param(
            CL_RESPONSE,
            [("headers", [*OK, (b"content-length", b"11"), (b"x-a", b"1")], False),
             ("data", b"hello world", True)],
            id="content-length",
        ),
        pytest.param(
            CHUNKED + CHUNKED_END,
            [("headers", OK, False), ("data", b"hello world", True)],
            id="chunked",
        ),
        pytest.param(
            CHUNKED + CHUNKED_TRAILERS,
            [("headers", OK, False), ("data", b"hello world", False),
             ("trailers", [(b"grpc-status", b"0"), (b"x-sum", b"abc")], True)],
            id="chunked-trailers",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            [("1xx", [(b":status", b"100")], False),
             ("1xx", [(b":status", b"103"), (b"link", b"</a>")], False),
             ("headers", [*OK, (b"content-length", b"2")], False),
             ("data", b"ok", True)],
            id="100-103-200",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            [("1xx", [(b":status", b"100")], False), ("headers", [(b":status", b"204")], True)],
            id="100-204",
        ),
    ],
)  # fmt: skip
def test_reader_every_split(backend: str, message: bytes, expected: Summary) -> None:
    for pieces in every_split(message):
        assert read(pieces) == expected, pieces
        assert read([bytearray(p) for p in pieces]) == expected
        assert read([memoryview(b"!" + p + b"!")[1:-1] for p in pieces]) == expected


@pytest.mark.parametrize(
    ("message", "method", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD",
            [("headers", [*OK, (b"content-length", b"5")], True)], id="head",
        ),
        pytest.param(
            b"HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n", b"GET",
            [("headers", [(b":status", b"204"), (b"x", b"1")], True)], id="204",
        ),
        pytest.param(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", b"GET",
            [("headers", [(b":status", b"304"), (b"content-length", b"9")], True)], id="304",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"POST",
            [("headers", [*OK, (b"content-length", b"0")], True)], id="content-length-0",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokIGNORED", b"GET",
            [("headers", [*OK, (b"content-length", b"2")], False), ("data", b"ok", True)],
            id="bytes-after-the-end-ignored",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n0\r\nConnection: close\r\nTE: x\r\nKeep-Alive: 1\r\n\r\n", b"GET",
            [("headers", OK, False), ("data", b"ok", True)],
            id="trailers-all-hop-by-hop",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nok\r\n0\r\nUpgrade: x\r\nX-T: 1\r\n\r\n", b"GET",
            [("headers", OK, False), ("data", b"ok", False), ("trailers", [(b"x-t", b"1")], True)],
            id="trailers-some-hop-by-hop",
        ),
    ],
)  # fmt: skip
def test_reader_bodiless_and_edges(
    backend: str, message: bytes, method: bytes, expected: Summary
) -> None:
    for pieces in every_split(message):
        assert read(pieces, method) == expected


def test_reader_content_length_one_byte_at_a_time(backend: str) -> None:
    reader = H1ResponseReader(b"GET")
    head_len = CL_RESPONSE.index(b"\r\n\r\n") + 4
    for i in range(len(CL_RESPONSE)):
        events = reader.feed(CL_RESPONSE[i : i + 1])
        if i < head_len - 1:
            assert events == []
        elif i == head_len - 1:
            assert [type(e) for e in events] == [ResponseHeaders]
        else:
            last = i == len(CL_RESPONSE) - 1
            assert events == [ResponseData(CL_RESPONSE[i : i + 1], last)]
            assert reader.done == last


def test_reader_chunked_spans_of_one_feed_make_one_event(backend: str) -> None:
    reader = H1ResponseReader(b"GET")
    events = reader.feed(CHUNKED + b"1\r\n!\r\n")
    assert events[1:] == [ResponseData(b"hello world!", False)]
    assert reader.feed(CHUNKED_END) == [ResponseData(b"", True)]
    assert reader.done


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n", id="http11-no-length"),
        pytest.param(b"HTTP/1.0 200 OK\r\n\r\n", id="http10"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", id="te-not-chunked"),
    ],
)
def test_reader_close_delimited(backend: str, head: bytes) -> None:
    body = b"until the end"
    for pieces in every_split(head + body):
        summary = read(pieces, eof=True)
        assert summary[0][0] == "headers" and summary[0][2] is False
        assert summary[1:] == [("data", body, True)]
    reader = H1ResponseReader(b"GET")
    assert [type(e) for e in reader.feed(head)] == [ResponseHeaders]
    assert reader.feed(b"x") == [ResponseData(b"x", False)]
    assert not reader.done
    assert reader.eof() == [ResponseData(b"", True)]
    assert reader.done


def test_reader_connect_tunnel_reads_until_eof(backend: str) -> None:
    reader = H1ResponseReader(b"CONNECT")
    events = reader.feed(b"HTTP/1.1 200 Connection Established\r\n\r\ntunnel")
    assert events == [ResponseHeaders(OK, False, False), ResponseData(b"tunnel", False)]
    assert reader.eof() == [ResponseData(b"", True)]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Le", id="partial-head"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="only-100"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", id="short-body"),
        pytest.param(CHUNKED, id="chunked-no-last-chunk"),
        pytest.param(CHUNKED + b"0\r\nX: 1\r\n", id="chunked-partial-trailers"),
        pytest.param(CHUNKED + b"5\r\nhel", id="chunked-partial-chunk"),
    ],
)
def test_reader_truncated(backend: str, message: bytes) -> None:
    reader = H1ResponseReader(b"GET")
    reader.feed(message)
    assert not reader.done
    with pytest.raises(ParseError) as e:
        reader.eof()
    assert (e.value.status, e.value.code) == (502, "TRUNCATED")


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", id="101"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", id="100-101"),
    ],
)
def test_reader_101_is_refused(backend: str, message: bytes) -> None:
    for pieces in every_split(message):
        reader = H1ResponseReader(b"GET")
        with pytest.raises(MalformedMessage, match="101 over HTTP/2"):
            for piece in pieces:
                reader.feed(piece)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", "BAD_STATUS", id="bad-status"),
        pytest.param(b"HTTP/2.0 200 OK\r\n\r\n", "VERSION_NOT_SUPPORTED", id="version"),
        pytest.param(b"HTTP/1.1 200 OK\nX: 1\r\n\r\n", "BARE_LF", id="bare-lf"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n", "BAD_HEADER_VALUE", id="control"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "CL_TE", id="cl-te",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "BAD_CL", id="bad-cl"),
        pytest.param(CHUNKED + b"zz\r\n", "BAD_CHUNK_SIZE", id="bad-chunk-size"),
        pytest.param(CHUNKED + b"2\r\nokX", "BAD_CHUNK_END", id="bad-chunk-end"),
        pytest.param(CHUNKED + b"0\r\nHost: a\r\n\r\n", "FORBIDDEN_TRAILER", id="host-trailer"),
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", "TOO_MANY_HEADERS",
                     id="too-many-headers"),
    ],
)  # fmt: skip
def test_reader_invalid_response(backend: str, message: bytes, code: str) -> None:
    for pieces in ([message], [message[i : i + 1] for i in range(len(message))]):
        reader = H1ResponseReader(b"GET")
        with pytest.raises(ParseError) as e:
            for piece in pieces:
                reader.feed(piece)
        assert (e.value.status, e.value.code) == (502, code)


def test_reader_partial_head_is_bounded() -> None:
    reader = H1ResponseReader(b"GET", parser.Limits(max_head=64))
    reader.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ParseError) as e:
        for _ in range(10):
            reader.feed(b"X-Long: " + b"a" * 20 + b"\r\n")
    assert (e.value.status, e.value.code) == (502, "HEAD_TOO_LARGE")


def test_fields_checked_once_are_remembered_only_when_valid():
    """request_to_h1 remembers fields that passed its syntax checks (clients repeat them):
    the same bad field is refused on every request, and a good one still passes beside a
    bad one with the same name."""
    good = (b"x-seen", b"a value")
    assert b"x-seen: a value" in request_to_h1([*pseudo(), good], end_stream=True).head
    assert b"x-seen: a value" in request_to_h1([*pseudo(), good], end_stream=True).head
    for _ in range(2):
        with pytest.raises(MalformedMessage):
            request_to_h1([*pseudo(), (b"x-seen", b"bad\x00value")], end_stream=True)
        with pytest.raises(MalformedMessage):
            request_to_h1([(b":method", b"G T"), *pseudo()[1:]], end_stream=True)
        with pytest.raises(MalformedMessage):
            request_to_h1([*pseudo(authority=b"a b\r\n")], end_stream=True)
        with pytest.raises(MalformedMessage, match="userinfo"):
            request_to_h1([*pseudo(authority=b"u@a.test")], end_stream=True)
        with pytest.raises(MalformedMessage, match="invalid :path"):
            request_to_h1([*pseudo(path=b"/a b")], end_stream=True)
        assert request_to_h1([*pseudo(path=b"/ab")], end_stream=True).head.startswith(
            b"GET /ab HTTP/1.1\r\n")


# --- H1ResponseReader.expect_head: a head the machine wrote, not parsed again -----------------

HINTED_HEADS = [
    (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nSozu-Id: 01\r\n\r\n",
     b"hello"),
    (b"HTTP/1.1 200 OK\r\nContent-Type:  text/plain \t\r\nTransfer-Encoding: chunked\r\n"
     b"Connection: close\r\nKeep-Alive: timeout=5\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    (b"HTTP/1.1 204 No Content\r\nX-A: b:c\r\n\r\n", b""),
    (b"HTTP/1.1 200 OK\r\nX-Empty:\r\n\r\n", b"until the end"),
]


@pytest.mark.parametrize("message", HINTED_HEADS, ids=["length", "chunked-ows-hop", "204",
                                                      "close-delimited"])
def test_reader_expected_head_reads_as_the_parsed_one(backend: str, message) -> None:
    head, body = message
    parsed_reader = H1ResponseReader(b"GET")
    parsed = parsed_reader.feed(head)
    parsed_head = parse_response_head(head, request_method=b"GET")
    assert parsed_head is not None
    rest = parsed_reader.feed(body)
    # the second time, every line comes from the line cache; the third, the request id's
    # line is named (it is then taken as the field given, not parsed)
    for id_line in (b"", b"", b"Sozu-Id: 01"):
        hinted_reader = H1ResponseReader(b"GET")
        hinted_reader.expect_head(head, parsed_head.status, parsed_head.body,
                                  parsed_head.content_length or 0, id_line,
                                  (b"sozu-id", b"01"))
        events = hinted_reader.feed(memoryview(head))
        assert events == parsed
        # the HEADERS come with their HPACK block, the encoder's bytes for those fields
        assert events[0].block == encode_headers(events[0].headers)
        assert hinted_reader.feed(body) == rest
        assert hinted_reader.done == parsed_reader.done


def test_reader_takes_the_expected_head_only_for_that_object(backend: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    reader = H1ResponseReader(b"GET")
    # the status told with the head is what the HEADERS get: the head is not parsed again
    reader.expect_head(head, 299, BodyKind.LENGTH, 0)
    assert reader.feed(head)[0].headers[0] == (b":status", b"299")
    # equal bytes in another object (or after other bytes) are parsed as usual
    reader = H1ResponseReader(b"GET")
    reader.expect_head(head, 299, BodyKind.LENGTH, 0)
    assert reader.feed(bytes(bytearray(head)))[0].headers[0] == (b":status", b"200")
