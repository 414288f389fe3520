"""The table: HTTP/1.x requests and responses, valid and invalid, with their verdicts.

A valid case lists the messages it holds, each with the fields to check (the rest of the
snapshot is free); an invalid case gives the status and code of the ParseError, and where it
matters the offset (``at``: an int, or bytes whose first occurrence in the input is the
offending byte). ``test_table.py`` runs every case whole, one byte at a time and split at
every offset, on both scanner backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pysozu.parser import BodyKind, Limits, TargetForm

NONE, LENGTH, CHUNKED, CLOSE = (BodyKind.NONE, BodyKind.LENGTH, BodyKind.CHUNKED,
                                BodyKind.CLOSE_DELIMITED)
LIMITS = Limits(max_head=1024, max_headers=32, max_body=1 << 20)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "request" or "response"
    raw: bytes
    messages: tuple[dict[str, Any], ...] = ()
    error: tuple[int, str] | None = None
    at: int | bytes | None = None
    limits: Limits = LIMITS
    request_method: bytes = b"GET"
    complete: bool = True  # the last message is complete once the input ends
    leftover: bytes = b""

    @property
    def offset(self) -> int | None:
        return self.raw.index(self.at) if isinstance(self.at, bytes) else self.at


def m(*lines: bytes | str, body: bytes = b"") -> bytes:
    """A head from its lines (CRLF added), then ``body``."""
    raw = [ln.encode("latin-1") if isinstance(ln, str) else ln for ln in lines]
    return b"".join(ln + b"\r\n" for ln in raw) + b"\r\n" + body


HOST = "Host: example.com"
CASES: list[Case] = []


def ok(id: str, raw: bytes, *more: dict[str, Any], kind: str = "request", **fields: Any) -> None:
    """A valid input: one message with ``fields``, then ``more`` messages."""
    opts = {k: fields.pop(k) for k in ("limits", "request_method", "complete", "leftover")
            if k in fields}
    CASES.append(Case(id, kind, raw, (fields, *more), **opts))


def bad(id: str, raw: bytes, status: int, code: str, at: int | bytes | None = None,
        kind: str = "request", **opts: Any) -> None:
    CASES.append(Case(id, kind, raw, error=(status, code), at=at, **opts))


def okr(id: str, raw: bytes, *more: dict[str, Any], **fields: Any) -> None:
    ok(id, raw, *more, kind="response", **fields)


def badr(id: str, raw: bytes, code: str, at: int | bytes | None = None, **opts: Any) -> None:
    """An invalid response: the proxy answers 502 whatever the code."""
    bad(id, raw, 502, code, at, kind="response", **opts)


# ---------------------------------------------------------------- valid requests: basics
ok("get-minimal", m("GET / HTTP/1.1", HOST), method=b"GET", target=b"/", version_minor=1,
   headers=[(b"Host", b"example.com")], body_kind=NONE, keep_alive=True, host=b"example.com",
   content_length=None, upgrade=None, expect_continue=False, target_form=TargetForm.ORIGIN,
   spans=[0, 0, 3, 4, 5, 1, 1, 0, 4, 16, 20, 22, 33])
ok("leading-crlf", b"\r\n\r\n" + m("GET /x HTTP/1.1", HOST), method=b"GET", target=b"/x",
   spans=[4, 4, 7, 8, 10, 1, 1, 0, 4, 21, 25, 27, 38])
ok("http10-no-host", m("GET / HTTP/1.0"), version_minor=0, host=None, keep_alive=False,
   headers=[])
ok("http10-keep-alive", m("GET / HTTP/1.0", "Connection: keep-alive"), keep_alive=True,
   connection_tokens=(b"keep-alive",))
ok("http10-keep-alive-and-close", m("GET / HTTP/1.0", "Connection: keep-alive, close"),
   keep_alive=False)
ok("http11-close", m("GET / HTTP/1.1", HOST, "Connection: close"), keep_alive=False,
   connection_tokens=(b"close",))
ok("http11-close-mixed-case", m("GET / HTTP/1.1", HOST, "connection: Foo, CLOSE"),
   keep_alive=False, connection_tokens=(b"foo", b"close"))
ok("http11-two-connection-lines", m("GET / HTTP/1.1", HOST, "Connection: a", "Connection: b,,c"),
   keep_alive=True, connection_tokens=(b"a", b"b", b"c"))
ok("http19-like-11", m("GET / HTTP/1.9", HOST), version_minor=9, keep_alive=True)
ok("http19-needs-host-rule-of-11", m("GET / HTTP/1.9", HOST, "Expect: 100-continue"),
   expect_continue=True)
ok("post-length", m("POST /f HTTP/1.1", HOST, "Content-Length: 5", body=b"hello"),
   method=b"POST", body_kind=LENGTH, content_length=5, body=b"hello")
ok("post-length-zero", m("POST / HTTP/1.1", HOST, "Content-Length: 0"), body_kind=LENGTH,
   content_length=0, body=b"")
ok("post-length-leading-zeros", m("POST / HTTP/1.1", HOST, "Content-Length: 0003", body=b"abc"),
   content_length=3, body=b"abc")
ok("post-length-18-digits", m("POST / HTTP/1.1", HOST, "Content-Length: 000000000000000004",
                              body=b"abcd"), content_length=4, body=b"abcd")
ok("post-length-ows", m("POST / HTTP/1.1", HOST, "Content-Length: \t 2 \t", body=b"ab"),
   content_length=2, body=b"ab")
ok("content-length-lowercase-name", m("POST / HTTP/1.1", HOST, "content-length: 1", body=b"x"),
   content_length=1, body=b"x")
ok("content-length-uppercase-name", m("POST / HTTP/1.1", HOST, "CONTENT-LENGTH: 1", body=b"x"),
   content_length=1, body=b"x")
ok("post-chunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                     body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
   body_kind=CHUNKED, body=b"hello world", trailers=[], content_length=None)
ok("post-chunked-extensions", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                body=b"5;a=b;c\r\nhello\r\n0;last\r\n\r\n"), body=b"hello")
ok("post-chunked-ext-bws", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                             body=b"5 ; a = b\t;\tc\r\nhello\r\n0\r\n\r\n"), body=b"hello")
ok("post-chunked-ext-quoted", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                body=b'5;a="x, \\"y\\";z"\r\nhello\r\n0\r\n\r\n'), body=b"hello")
ok("post-chunked-uppercase-hex", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                   body=b"A\r\n0123456789\r\n0\r\n\r\n"), body=b"0123456789")
ok("post-chunked-leading-zeros", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                   body=b"0002\r\nhi\r\n000\r\n\r\n"), body=b"hi")
ok("post-chunked-trailers", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                              body=b"2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Other:  v v \r\n\r\n"),
   body=b"hi", trailers=[(b"X-Sum", b"1"), (b"X-Other", b"v v")])
ok("post-chunked-te-case", m("POST / HTTP/1.1", HOST, "transfer-encoding: CHUNKED",
                             body=b"0\r\n\r\n"), body_kind=CHUNKED)
ok("post-chunked-te-trailing-ows", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked \t",
                                     body=b"0\r\n\r\n"), body_kind=CHUNKED)
ok("post-gzip-chunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip, chunked",
                          body=b"1\r\nz\r\n0\r\n\r\n"), body_kind=CHUNKED, body=b"z")
ok("post-te-two-lines", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip",
                          "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), body_kind=CHUNKED)
ok("post-te-empty-elements", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: ,gzip, ,chunked,",
                               body=b"0\r\n\r\n"), body_kind=CHUNKED)
ok("post-te-coding-params", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip;q=1, chunked",
                              body=b"0\r\n\r\n"), body_kind=CHUNKED)
ok("pipelined-two-gets", m("GET /a HTTP/1.1", HOST) + m("GET /b HTTP/1.1", HOST),
   {"target": b"/b", "complete": True}, target=b"/a")
ok("pipelined-post-then-get", m("POST /a HTTP/1.1", HOST, "Content-Length: 3", body=b"abc")
   + m("GET /b HTTP/1.1", HOST), {"target": b"/b", "body": b""}, target=b"/a", body=b"abc")
ok("pipelined-chunked-then-get", m("POST /a HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                   body=b"1\r\nx\r\n0\r\n\r\n") + m("GET /b HTTP/1.1", HOST),
   {"target": b"/b"}, body=b"x")
ok("empty-line-between-messages", m("POST / HTTP/1.1", HOST, "Content-Length: 1", body=b"x")
   + b"\r\n" + m("GET /b HTTP/1.1", HOST), {"target": b"/b"}, body=b"x")
ok("incomplete-body", m("POST / HTTP/1.1", HOST, "Content-Length: 10", body=b"abc"),
   body=b"abc", complete=False)
ok("incomplete-chunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                           body=b"5\r\nhel"), body=b"hel", complete=False)

# ---------------------------------------------------------------- valid requests: targets
ok("target-query-fragment", m("GET /a/b?c=d&e#f HTTP/1.1", HOST), target=b"/a/b?c=d&e#f")
ok("target-percent-quotes", m('GET /with_"quotes"?x=%41 HTTP/1.1', HOST),
   target=b'/with_"quotes"?x=%41')
ok("target-all-visible", m("GET /!$&'()*+,;=:@-._~[]{}|^`\\<> HTTP/1.1", HOST),
   target=b"/!$&'()*+,;=:@-._~[]{}|^`\\<>")
ok("target-absolute", m("GET http://other.example:8080/p?q HTTP/1.1", HOST),
   target=b"http://other.example:8080/p?q", target_form=TargetForm.ABSOLUTE,
   host=b"other.example:8080")
ok("target-absolute-no-path", m("GET https://other.example HTTP/1.1", HOST),
   host=b"other.example", target_form=TargetForm.ABSOLUTE)
ok("target-absolute-http10-no-host", m("GET http://h.example/ HTTP/1.0"), host=b"h.example")
ok("target-absolute-ipv6", m("GET http://[::1]:80/ HTTP/1.1", HOST), host=b"[::1]:80")
ok("target-authority-connect", m("CONNECT example.com:443 HTTP/1.1", HOST),
   target_form=TargetForm.AUTHORITY, body_kind=NONE, method=b"CONNECT")
ok("target-authority-connect-ipv6", m("CONNECT [2001:db8::1]:443 HTTP/1.1", HOST),
   target=b"[2001:db8::1]:443")
ok("connect-data-is-tunnel", m("CONNECT a.example:443 HTTP/1.0", "Content-Length: 3",
                               body=b"abc"), body_kind=NONE, content_length=3,
   leftover=b"abc")
ok("target-asterisk-options", m("OPTIONS * HTTP/1.1", HOST), target=b"*",
   target_form=TargetForm.ASTERISK)

# ---------------------------------------------------------------- valid requests: methods
for _method in ("DELETE", "PATCH", "M-SEARCH", "PROPFIND", "get", "X!#$%&'*+-.^_`|~9",
                "A", "MKCALENDAR"):
    ok(f"method-{_method}", m(f"{_method} / HTTP/1.1", HOST), method=_method.encode())

# ---------------------------------------------------------------- valid requests: headers
ok("header-no-space", m("GET / HTTP/1.1", "Host:example.com"), host=b"example.com")
ok("header-empty-value", m("GET / HTTP/1.1", HOST, "X-Empty:", "X-Blank:  \t "),
   headers=[(b"Host", b"example.com"), (b"X-Empty", b""), (b"X-Blank", b"")],
   spans=[0, 0, 3, 4, 5, 1, 3, 0, 4, 16, 20, 22, 33, 0, 35, 42, 43, 43,
          0, 45, 52, 57, 57])
ok("header-inner-spaces", m("GET / HTTP/1.1", HOST, "X-A:  a  b\tc \t"),
   headers=[(b"Host", b"example.com"), (b"X-A", b"a  b\tc")])
ok("header-obs-text", m("GET / HTTP/1.1", HOST, b"X-Name: caf\xc3\xa9 \xff"),
   headers=[(b"Host", b"example.com"), (b"X-Name", b"caf\xc3\xa9 \xff")])
ok("header-value-colons", m("GET / HTTP/1.1", HOST, "X-Url: http://a:b@c:1/d"),
   headers=[(b"Host", b"example.com"), (b"X-Url", b"http://a:b@c:1/d")])
ok("header-name-tchars", m("GET / HTTP/1.1", HOST, "!#$%&'*+-.^_`|~09azAZ: v"),
   headers=[(b"Host", b"example.com"), (b"!#$%&'*+-.^_`|~09azAZ", b"v")])
ok("header-value-quotes-ctl-free", m("GET / HTTP/1.1", HOST, 'X-Q: "a\\"b"'),
   headers=[(b"Host", b"example.com"), (b"X-Q", b'"a\\"b"')])
ok("header-max-count", m("GET / HTTP/1.1", HOST, *[f"X-{i}: {i}" for i in range(31)]),
   version_minor=1)
ok("host-empty-http11", m("GET / HTTP/1.1", "Host:"), host=b"")
ok("host-with-port", m("GET / HTTP/1.1", "Host: example.com:8080"), host=b"example.com:8080")
ok("host-ipv6", m("GET / HTTP/1.1", "Host: [::1]:8080"), host=b"[::1]:8080")
ok("host-ipv4", m("GET / HTTP/1.1", "Host: 10.0.0.1"), host=b"10.0.0.1")
ok("host-percent", m("GET / HTTP/1.1", "Host: ex%41mple.com"), host=b"ex%41mple.com")
ok("host-lowercase-name", m("GET / HTTP/1.1", "hOsT: a.example"), host=b"a.example")
ok("expect-continue", m("POST / HTTP/1.1", HOST, "Expect: 100-continue", "Content-Length: 1",
                        body=b"x"), expect_continue=True)
ok("expect-continue-case", m("POST / HTTP/1.1", HOST, "expect: 100-Continue"),
   expect_continue=True)
ok("expect-other", m("POST / HTTP/1.1", HOST, "Expect: something"), expect_continue=False)
ok("expect-http10-ignored", m("POST / HTTP/1.0", "Expect: 100-continue"), expect_continue=False)
ok("upgrade-websocket", m("GET /chat HTTP/1.1", HOST, "Connection: Upgrade",
                          "Upgrade: websocket", body=b"\x81\x00"), upgrade=b"websocket",
   leftover=b"\x81\x00")
ok("upgrade-two-protocols", m("GET / HTTP/1.1", HOST, "Connection: keep-alive, upgrade",
                              "Upgrade: h2c, websocket"), upgrade=b"h2c, websocket")
ok("upgrade-header-without-connection", m("GET / HTTP/1.1", HOST, "Upgrade: websocket"),
   upgrade=None)
ok("connection-upgrade-without-upgrade", m("GET / HTTP/1.1", HOST, "Connection: upgrade"),
   upgrade=None)
ok("upgrade-http10-ignored", m("GET / HTTP/1.0", "Connection: upgrade", "Upgrade: websocket"),
   upgrade=None)
ok("cookie-and-forwarded", m("GET / HTTP/1.1", HOST, "Cookie: a=b", "X-Forwarded-For: 1.2.3.4",
                             "Forwarded: for=1.2.3.4"),
   spans=[0, 0, 3, 4, 5, 1, 4, 0, 4, 16, 20, 22, 33, 7, 35, 41, 43, 46,
          12, 48, 63, 65, 72, 13, 74, 83, 85, 96])
ok("body-limit-exact", m("POST / HTTP/1.1", HOST, "Content-Length: 4", body=b"abcd"),
   limits=Limits(max_body=4), body=b"abcd")
ok("head-limit-exact", m("GET / HTTP/1.1", HOST), limits=Limits(max_head=37), target=b"/")
ok("headers-limit-exact", m("GET / HTTP/1.1", HOST, "A: 1"), limits=Limits(max_headers=2))

# ---------------------------------------------------------------- request smuggling: CL / TE
bad("cl-te", m("POST / HTTP/1.1", HOST, "Content-Length: 5", "Transfer-Encoding: chunked"),
    400, "CL_TE", b"Transfer")
bad("te-cl", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked", "Content-Length: 5"),
    400, "CL_TE", b"Content")
bad("cl-te-zero", m("POST / HTTP/1.1", HOST, "Content-Length: 0", "Transfer-Encoding: chunked"),
    400, "CL_TE")
bad("cl-te-identity", m("POST / HTTP/1.1", HOST, "Content-Length: 1",
                        "Transfer-Encoding: identity"), 400, "CL_TE")
bad("cl-dup-same", m("POST / HTTP/1.1", HOST, "Content-Length: 5", "Content-Length: 5"),
    400, "DUPLICATE_CL", 55)
bad("cl-dup-differ", m("POST / HTTP/1.1", HOST, "Content-Length: 5", "Content-Length: 6"),
    400, "DUPLICATE_CL")
bad("cl-dup-case", m("POST / HTTP/1.1", HOST, "content-length: 5", "CONTENT-LENGTH: 5"),
    400, "DUPLICATE_CL")
for _i, _value in enumerate(["+5", "-5", "5 5", "5,5", "5, 5", "0x5", "5.0", "5e1", "", "five",
                             "1234567890123456789", "99999999999999999999", "5\t5",
                             "\xd9\xa5", "0 5", "\"5\""]):
    bad(f"cl-bad-{_i}", m("POST / HTTP/1.1", HOST, f"Content-Length: {_value}"), 400, "BAD_CL")
bad("cl-over-limit", m("POST / HTTP/1.1", HOST, "Content-Length: 5"), 413, "BODY_TOO_LARGE",
    limits=Limits(max_body=4))
bad("te-chunked-chunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, chunked"),
    400, "DUPLICATE_CHUNKED")
bad("te-chunked-two-lines", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                              "Transfer-Encoding: chunked"), 400, "DUPLICATE_CHUNKED")
bad("te-chunked-then-gzip", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked, gzip"),
    400, "CHUNKED_NOT_FINAL")
bad("te-chunked-then-gzip-lines", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked",
                                    "Transfer-Encoding: gzip"), 400, "CHUNKED_NOT_FINAL")
bad("te-gzip-only", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip"), 400,
    "CHUNKED_NOT_FINAL")
bad("te-unknown", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: foo"), 501, "UNKNOWN_TE")
bad("te-unknown-then-chunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: foo, chunked"),
    501, "UNKNOWN_TE")
bad("te-identity", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: identity"), 501,
    "UNKNOWN_TE")
bad("te-xchunked", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: xchunked"), 501, "UNKNOWN_TE")
bad("te-chunked-suffix", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunkedx"), 501,
    "UNKNOWN_TE")
bad("te-chunked-param", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked;a=b"), 400,
    "BAD_TE")
bad("te-empty", m("POST / HTTP/1.1", HOST, "Transfer-Encoding:"), 400, "BAD_TE")
bad("te-commas", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: , ,"), 400, "BAD_TE")
bad("te-quoted", m("POST / HTTP/1.1", HOST, 'Transfer-Encoding: "chunked"'), 400, "BAD_TE")
bad("te-space-inside", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chun ked"), 400, "BAD_TE")
bad("te-semicolon", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked;"), 400, "BAD_TE")
bad("te-http10", m("POST / HTTP/1.0", "Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400,
    "TE_HTTP10")
bad("te-vtab", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked\x0b"), 400,
    "BAD_HEADER_VALUE", b"\x0b")
bad("te-obs-fold", m("POST / HTTP/1.1", HOST, "Transfer-Encoding:", " chunked"), 400,
    "OBS_FOLD", b" chunked")
bad("te-obs-fold-tab", m("POST / HTTP/1.1", HOST, "Transfer-Encoding: gzip", "\tchunked"), 400,
    "OBS_FOLD", b"\tchunked")
bad("te-space-before-colon", m("POST / HTTP/1.1", HOST, "Transfer-Encoding : chunked"), 400,
    "WS_BEFORE_COLON", b" :")
bad("te-tab-before-colon", m("POST / HTTP/1.1", HOST, "Transfer-Encoding\t: chunked"), 400,
    "WS_BEFORE_COLON", b"\t")
bad("te-leading-space-first-header", m("POST / HTTP/1.1", " Transfer-Encoding: chunked", HOST),
    400, "OBS_FOLD", 17)
bad("te-after-bare-lf", b"POST / HTTP/1.1\r\nHost: a\r\n\nTransfer-Encoding: chunked\r\n\r\n",
    400, "BARE_LF", 26)
bad("te-line-bare-lf", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\n\r\n",
    400, "BARE_LF", b"\n\r\n")
bad("te-line-bare-cr", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\r\n\r\n",
    400, "BARE_CR", b"\r\r")
bad("te-name-cr", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\r: chunked\r\n\r\n",
    400, "BARE_CR", b"\r:")
bad("cl-name-nul", m("POST / HTTP/1.1", HOST, "Content-Length\x00: 5"), 400,
    "BAD_HEADER_NAME", b"\x00")
bad("cl-value-nul", m("POST / HTTP/1.1", HOST, "Content-Length: 5\x00"), 400,
    "BAD_HEADER_VALUE", b"\x00")

# ---------------------------------------------------------------- chunked body errors
_TE = ("POST / HTTP/1.1", HOST, "Transfer-Encoding: chunked")
for _id, _body, _code in [
    ("chunk-0x", b"0x5\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-negative", b"-1\r\nx\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-plus", b"+1\r\nx\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-leading-space", b" 5\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-trailing-space", b"5 \r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-trailing-tab", b"5\t\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-empty-size", b"\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-non-hex", b"g\r\nx\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-hex-then-junk", b"5x\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_SIZE"),
    ("chunk-17-digits", b"00000000000000005\r\nhello\r\n0\r\n\r\n", "CHUNK_SIZE_TOO_LARGE"),
    ("chunk-huge", b"fffffffffffffffff\r\nx\r\n", "CHUNK_SIZE_TOO_LARGE"),
    ("chunk-ext-empty-name", b"5;\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_EXT"),
    ("chunk-ext-empty-value", b"5;a=\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_EXT"),
    ("chunk-ext-bad-name", b"5;a@b\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_EXT"),
    ("chunk-ext-unterminated-quote", b'5;a="x\r\nhello\r\n0\r\n\r\n', "BAD_CHUNK_EXT"),
    ("chunk-ext-space-in-value", b"5;a=b c\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_EXT"),
    ("chunk-ext-nul", b"5;a\x00\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_EXT"),
    ("chunk-ext-ctl-in-quote", b'5;a="\x01"\r\nhello\r\n0\r\n\r\n', "BAD_CHUNK_EXT"),
    ("chunk-size-bare-lf", b"5\nhello\r\n0\r\n\r\n", "BARE_LF_IN_BODY"),
    ("chunk-size-bare-cr", b"5\rhello\r\n0\r\n\r\n", "BARE_CR_IN_BODY"),
    ("chunk-data-no-crlf", b"5\r\nhello0\r\n\r\n", "BAD_CHUNK_END"),
    ("chunk-data-too-long", b"3\r\nhello\r\n0\r\n\r\n", "BAD_CHUNK_END"),
    ("chunk-data-bare-lf", b"5\r\nhello\n0\r\n\r\n", "BARE_LF_IN_BODY"),
    ("chunk-data-bare-cr", b"5\r\nhello\rX0\r\n\r\n", "BARE_CR_IN_BODY"),
    ("chunk-last-bare-lf", b"0\n\r\n", "BARE_LF_IN_BODY"),
    ("chunk-end-bare-lf", b"0\r\n\n", "BARE_LF"),
    ("chunk-trailer-obs-fold", b"0\r\nA: b\r\n c\r\n\r\n", "OBS_FOLD"),
    ("chunk-trailer-ws-colon", b"0\r\nA : b\r\n\r\n", "WS_BEFORE_COLON"),
    ("chunk-trailer-bad-name", b"0\r\nA@: b\r\n\r\n", "BAD_HEADER_NAME"),
    ("chunk-trailer-no-colon", b"0\r\nAb\r\n\r\n", "BAD_HEADER_NAME"),
    ("chunk-trailer-nul", b"0\r\nA: \x00\r\n\r\n", "BAD_HEADER_VALUE"),
    ("chunk-trailer-bare-lf", b"0\r\nA: b\n\r\n", "BARE_LF"),
    ("chunk-trailer-bare-cr", b"0\r\nA: b\rc\r\n\r\n", "BARE_CR"),
    ("chunk-trailer-content-length", b"0\r\nContent-Length: 5\r\n\r\n", "FORBIDDEN_TRAILER"),
    ("chunk-trailer-te", b"0\r\ntransfer-encoding: chunked\r\n\r\n", "FORBIDDEN_TRAILER"),
    ("chunk-trailer-host", b"0\r\nHost: evil\r\n\r\n", "FORBIDDEN_TRAILER"),
    ("chunk-line-too-long", b"1;" + b"a" * 4100 + b"\r\nx\r\n0\r\n\r\n", "CHUNK_LINE_TOO_LONG"),
]:
    bad(_id, m(*_TE, body=_body), 400, _code)
bad("chunk-over-body-limit", m(*_TE, body=b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), 413,
    "BODY_TOO_LARGE", limits=Limits(max_body=4))
bad("chunk-trailers-too-many", m(*_TE, body=b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 431,
    "TOO_MANY_TRAILERS", limits=Limits(max_headers=2))
bad("chunk-trailers-too-large", m(*_TE, body=b"0\r\nA: " + b"x" * 80 + b"\r\n\r\n"), 431,
    "TRAILERS_TOO_LARGE", limits=Limits(max_head=80))

# ---------------------------------------------------------------- line endings, controls
bad("request-line-bare-lf", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "BARE_LF", 14)
bad("request-line-bare-cr", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "BARE_CR", 14)
bad("all-bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", 400, "BARE_LF", 14)
bad("final-bare-lf", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "BARE_LF", 25)
bad("leading-bare-lf", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BARE_LF", 0)
bad("leading-crlf-then-bare-lf", b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BARE_LF", 2)
bad("method-bare-cr", b"GE\rT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BARE_CR", 2)
bad("target-bare-cr", b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BARE_CR", 5)
bad("value-bare-cr", b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "BARE_CR", 23)
bad("value-bare-lf", b"GET / HTTP/1.1\r\nHost: a\nb: c\r\n\r\n", 400, "BARE_LF", 23)
bad("name-bare-lf", b"GET / HTTP/1.1\r\nHo\nst: a\r\n\r\n", 400, "BARE_LF", 18)
bad("bare-cr-beats-earlier-error", b"G@T / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, "BARE_CR")
bad("bare-lf-beats-earlier-error", b"GET / HTTP/2.0\r\nX: a\nb\r\n\r\n", 400, "BARE_LF")
for _i, _byte in enumerate([0x00, 0x01, 0x08, 0x0B, 0x0C, 0x0E, 0x1B, 0x1F, 0x7F]):
    _c = bytes([_byte])
    bad(f"value-ctl-{_byte:02x}", m("GET / HTTP/1.1", HOST, b"X: a" + _c + b"b"), 400,
        "BAD_HEADER_VALUE", _c)
for _byte in (0x00, 0x09, 0x7F, 0x80, 0xFF, 0x20, 0x2C, 0x28, 0x22, 0x2F, 0x40, 0x5B):
    _c = bytes([_byte])
    bad(f"name-byte-{_byte:02x}", m("GET / HTTP/1.1", HOST, b"X" + _c + b"Y: v"), 400,
        "WS_BEFORE_COLON" if _byte in (0x09, 0x20) else "BAD_HEADER_NAME", _c + b"Y")
for _byte in (0x00, 0x09, 0x7F, 0x80, 0xFF, 0x0B):
    _c = bytes([_byte])
    bad(f"target-byte-{_byte:02x}", m(b"GET /a" + _c + b"b HTTP/1.1", HOST), 400,
        "BAD_TARGET", _c)
for _byte in (0x00, 0x7F, 0x80, 0x2F, 0x28, 0x3A, 0x09):
    _c = bytes([_byte])
    bad(f"method-byte-{_byte:02x}", m(b"G" + _c + b"T / HTTP/1.1", HOST), 400, "BAD_METHOD", 1)
bad("reason-nul-in-request-version", m(b"GET / HTTP/1.1\x00", HOST), 400, "BAD_VERSION", 6)

# ---------------------------------------------------------------- start line
bad("http2-version", m("GET / HTTP/2.0", HOST), 505, "VERSION_NOT_SUPPORTED", 6)
bad("http09-version", m("GET / HTTP/0.9", HOST), 505, "VERSION_NOT_SUPPORTED", 6)
bad("http3-version", m("GET / HTTP/3.0", HOST), 505, "VERSION_NOT_SUPPORTED", 6)
bad("http09-simple", b"GET /\r\n\r\n", 400, "BAD_TARGET", 5)
bad("lowercase-http", m("GET / http/1.1", HOST), 400, "BAD_VERSION", 6)
bad("version-two-digits-major", m("GET / HTTP/11.1", HOST), 400, "BAD_VERSION", 6)
bad("version-two-digits-minor", m("GET / HTTP/1.10", HOST), 400, "BAD_VERSION", 6)
bad("version-no-minor", m("GET / HTTP/1", HOST), 400, "BAD_VERSION", 6)
bad("version-trailing-space", m("GET / HTTP/1.1 ", HOST), 400, "BAD_VERSION", 6)
bad("version-ihttp", m("GET / IHTTP/1.0", HOST), 400, "BAD_VERSION", 6)
bad("version-hts", m("GET / HTS/1.1", HOST), 400, "BAD_VERSION", 6)
bad("double-sp-after-method", m("GET  / HTTP/1.1", HOST), 400, "BAD_METHOD", 4)
bad("double-sp-after-target", m("GET /  HTTP/1.1", HOST), 400, "BAD_VERSION", 6)
bad("tab-after-method", m("GET\t/ HTTP/1.1", HOST), 400, "BAD_METHOD", 3)
bad("leading-space", m(" GET / HTTP/1.1", HOST), 400, "BAD_METHOD", 0)
bad("empty-method", m("/ HTTP/1.1", HOST), 400, "BAD_METHOD", 0)
bad("no-target", m("GET HTTP/1.1", HOST), 400, "BAD_TARGET", 12)
bad("method-not-token", m("hello world / HTTP/1.1", HOST), 400, "BAD_VERSION", 12)
bad("target-form-origin-for-connect", m("CONNECT / HTTP/1.1", HOST), 400, "BAD_TARGET_FORM", 8)
bad("target-form-connect-no-port", m("CONNECT example.com HTTP/1.1", HOST), 400,
    "BAD_TARGET_FORM")
bad("target-form-connect-empty-port", m("CONNECT example.com: HTTP/1.1", HOST), 400,
    "BAD_TARGET_FORM")
bad("target-form-connect-userinfo", m("CONNECT u@example.com:443 HTTP/1.1", HOST), 400,
    "BAD_TARGET_FORM")
bad("target-form-asterisk-get", m("GET * HTTP/1.1", HOST), 400, "BAD_TARGET_FORM", 4)
bad("target-form-relative", m("GET foo HTTP/1.1", HOST), 400, "BAD_TARGET_FORM", 4)
bad("target-form-authority-get", m("GET example.com:80 HTTP/1.1", HOST), 400,
    "BAD_TARGET_FORM")
bad("target-absolute-userinfo", m("GET http://u:p@h.example/ HTTP/1.1", HOST), 400,
    "BAD_TARGET")
bad("target-absolute-empty-host", m("GET http:///p HTTP/1.1", HOST), 400, "BAD_TARGET")
bad("target-absolute-bad-port", m("GET http://h:8x/ HTTP/1.1", HOST), 400, "BAD_TARGET")

# ---------------------------------------------------------------- Host
bad("host-missing", m("GET / HTTP/1.1"), 400, "MISSING_HOST")
bad("host-missing-absolute", m("GET http://a.example/ HTTP/1.1"), 400, "MISSING_HOST")
bad("host-duplicate", m("GET / HTTP/1.1", HOST, "Host: other.example"), 400, "DUPLICATE_HOST",
    b"Host: other")
bad("host-duplicate-same", m("GET / HTTP/1.1", HOST, HOST), 400, "DUPLICATE_HOST")
bad("host-duplicate-http10", m("GET / HTTP/1.0", HOST, "host: a"), 400, "DUPLICATE_HOST")
for _i, _host in enumerate(["a b", "a,b", "a@b", "a/b", "a:b:c", "[::1", "a:80x", "a\\b",
                            "%zz", "a?b", "a#b"]):
    bad(f"host-bad-{_i}", m("GET / HTTP/1.1", f"Host: {_host}"), 400, "BAD_HOST")

# ---------------------------------------------------------------- header lines
bad("obs-fold-middle", m("GET / HTTP/1.1", HOST, "X-A: 1", " 2", "X-B: 3"), 400, "OBS_FOLD",
    b" 2")
bad("obs-fold-tab", m("GET / HTTP/1.1", HOST, "X-A: 1", "\t2"), 400, "OBS_FOLD", b"\t2")
bad("obs-fold-empty-continuation", m("GET / HTTP/1.1", HOST, "X-A: 1", " "), 400, "OBS_FOLD")
bad("empty-name", m("GET / HTTP/1.1", HOST, ": v"), 400, "BAD_HEADER_NAME", b": v")
bad("no-colon", m("GET / HTTP/1.1", HOST, "Foo"), 400, "BAD_HEADER_NAME", b"\r\n\r\n")
bad("name-space-inside", m("GET / HTTP/1.1", HOST, "Foo Bar: v"), 400, "WS_BEFORE_COLON",
    b" Bar")
bad("name-at", m("GET / HTTP/1.1", HOST, "Fo@: Failure"), 400, "BAD_HEADER_NAME", b"@")
bad("name-brace", m("GET / HTTP/1.1", HOST, "{X}: v"), 400, "BAD_HEADER_NAME", b"{")
bad("name-utf8", m("GET / HTTP/1.1", HOST, "Caf\xc3\xa9: v"), 400, "BAD_HEADER_NAME", b"\xc3")
bad("value-del", m("GET / HTTP/1.1", HOST, "X: \x7f"), 400, "BAD_HEADER_VALUE", b"\x7f")
bad("value-esc-sequence", m("GET / HTTP/1.1", HOST, "X: \x1b[31m"), 400, "BAD_HEADER_VALUE")
bad("too-many-headers", m("GET / HTTP/1.1", HOST, "A: 1", "B: 2"), 431, "TOO_MANY_HEADERS",
    b"B: 2", limits=Limits(max_headers=2))
bad("too-many-headers-zero", m("GET / HTTP/1.1", HOST), 431, "TOO_MANY_HEADERS", 16,
    limits=Limits(max_headers=0))
bad("too-many-headers-before-bad-line", m("GET / HTTP/1.1", HOST, "A: 1", "B@: 2"), 431,
    "TOO_MANY_HEADERS", limits=Limits(max_headers=2))
bad("obs-fold-before-too-many", m("GET / HTTP/1.1", HOST, " x"), 400, "OBS_FOLD",
    limits=Limits(max_headers=1))
bad("too-many-default", m("GET / HTTP/1.1", *[f"X-{i}: {i}" for i in range(101)]), 431,
    "TOO_MANY_HEADERS", limits=Limits())

# ---------------------------------------------------------------- sizes: 414 vs 431
_SMALL = Limits(max_head=64)
bad("uri-too-long", m("GET /" + "a" * 80 + " HTTP/1.1", HOST), 414, "URI_TOO_LONG", 64,
    limits=_SMALL)
bad("uri-too-long-incomplete", b"GET /" + b"a" * 80, 414, "URI_TOO_LONG", 64, limits=_SMALL)
bad("uri-too-long-line-ends-at-limit", b"GET /" + b"a" * 58 + b"\r\nHost: a\r\n\r\n", 414,
    "URI_TOO_LONG", 64, limits=_SMALL)
bad("head-too-large", m("GET / HTTP/1.1", HOST, "X: " + "b" * 60), 431, "HEAD_TOO_LARGE", 64,
    limits=_SMALL)
bad("head-too-large-incomplete", b"GET / HTTP/1.1\r\nX: " + b"b" * 60, 431, "HEAD_TOO_LARGE",
    64, limits=_SMALL)
bad("head-too-large-by-one", m("GET / HTTP/1.1", HOST), 431, "HEAD_TOO_LARGE", 36,
    limits=Limits(max_head=36))
bad("leading-crlf-count-in-size", b"\r\n" * 20 + m("GET / HTTP/1.1", HOST), 431,
    "HEAD_TOO_LARGE", 64, limits=_SMALL)
bad("leading-crlf-past-limit", b"\r\n" * 40 + m("GET / HTTP/1.1", HOST), 414,
    "URI_TOO_LONG", 64, limits=_SMALL)
bad("only-crlf-over-limit", b"\r\n" * 40, 414, "URI_TOO_LONG", 64, limits=_SMALL)
bad("too-large-beats-bad-bytes", b"\x00" * 70, 414, "URI_TOO_LONG", 64, limits=_SMALL)
bad("head-too-large-default", m("GET / HTTP/1.1", HOST, "X: " + "b" * 16400), 431,
    "HEAD_TOO_LARGE", 16384, limits=Limits())
# no message at all yet: not an error
CASES.append(Case("incomplete-head", "request", b"GET / HTTP/1.1\r\nHost: a\r\n",
                  leftover=b"GET / HTTP/1.1\r\nHost: a\r\n"))
CASES.append(Case("only-crlf", "request", b"\r\n\r\n", leftover=b"\r\n\r\n"))
CASES.append(Case("incomplete-response", "response", b"HTTP/1.1 200 OK\r\n",
                  leftover=b"HTTP/1.1 200 OK\r\n"))

# ---------------------------------------------------------------- valid responses
_OK = "HTTP/1.1 200 OK"
okr("resp-length", m(_OK, "Content-Length: 5", body=b"hello"), status=200, reason=b"OK",
    version_minor=1, body_kind=LENGTH, content_length=5, body=b"hello", keep_alive=True,
    headers=[(b"Content-Length", b"5")], spans=[0, 200, 13, 15, 0, 1, 1, 0,
                                                 1, 17, 31, 33, 34])
okr("resp-chunked", m(_OK, "Transfer-Encoding: chunked", body=b"2\r\nOK\r\n0\r\n\r\n"),
    body_kind=CHUNKED, body=b"OK")
okr("resp-chunked-trailers", m(_OK, "Transfer-Encoding: chunked",
                               body=b"2\r\nOK\r\n0\r\nX-Digest: abc\r\n\r\n"),
    trailers=[(b"X-Digest", b"abc")])
okr("resp-close-delimited", m(_OK, "Content-Type: text/plain", body=b"until close"),
    body_kind=CLOSE, keep_alive=False, body=b"until close")
okr("resp-te-gzip", m(_OK, "Transfer-Encoding: gzip", body=b"zzz"), body_kind=CLOSE,
    body=b"zzz", keep_alive=False)
okr("resp-te-chunked-identity", m(_OK, "Transfer-Encoding: chunked, identity",
                                  body=b"2\r\nOK\r\n0\r\n\r\n"),
    body_kind=CLOSE, body=b"2\r\nOK\r\n0\r\n\r\n")
okr("resp-te-unknown", m(_OK, "Transfer-Encoding: foo", body=b"x"), body_kind=CLOSE)
okr("resp-te-gzip-chunked", m(_OK, "Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
    body_kind=CHUNKED)
okr("resp-204", m("HTTP/1.1 204 No Content", "Content-Length: 0"), body_kind=NONE,
    content_length=0, status=204)
okr("resp-204-with-te", m("HTTP/1.1 204 No Content", "Transfer-Encoding: chunked"),
    body_kind=NONE)
okr("resp-304", m("HTTP/1.1 304 Not Modified", "Content-Length: 100"), body_kind=NONE,
    content_length=100)
okr("resp-head", m(_OK, "Content-Length: 100"), body_kind=NONE, content_length=100,
    request_method=b"HEAD")
okr("resp-head-chunked", m(_OK, "Transfer-Encoding: chunked"), body_kind=NONE,
    request_method=b"HEAD")
okr("resp-100-then-200", m("HTTP/1.1 100 Continue") + m(_OK, "Content-Length: 2", body=b"ok"),
    {"status": 200, "body": b"ok", "informational": False},
    status=100, informational=True, body_kind=NONE)
okr("resp-103-then-200", m("HTTP/1.1 103 Early Hints", "Link: </s.css>")
    + m(_OK, "Content-Length: 0"), {"status": 200}, status=103, informational=True)
okr("resp-101", m("HTTP/1.1 101 Switching Protocols", "Connection: upgrade", "Upgrade: h2c",
                  body=b"proto"), upgrade=b"h2c", informational=True, leftover=b"proto")
okr("resp-101-no-upgrade-token", m("HTTP/1.1 101 Switching Protocols", "Upgrade: h2c"),
    upgrade=None, informational=True)
okr("resp-connect-200", m(_OK, "Content-Length: 10", body=b"tunnel"), tunnel=True,
    body_kind=NONE, keep_alive=False, request_method=b"CONNECT", leftover=b"tunnel")
okr("resp-connect-407", m("HTTP/1.1 407 Proxy Auth", "Content-Length: 1", body=b"x"),
    tunnel=False, body=b"x", request_method=b"CONNECT")
okr("resp-http10-keep-alive", m("HTTP/1.0 200 OK", "Connection: keep-alive",
                                "Content-Length: 1", body=b"x"), keep_alive=True,
    version_minor=0)
okr("resp-http10-default-close", m("HTTP/1.0 200 OK", "Content-Length: 1", body=b"x"),
    keep_alive=False)
okr("resp-http10-close-delimited", m("HTTP/1.0 200 OK", "Connection: keep-alive",
                                     body=b"abc"), keep_alive=False, body_kind=CLOSE,
    body=b"abc")
okr("resp-http11-close", m(_OK, "Connection: close", "Content-Length: 0"), keep_alive=False)
okr("resp-no-reason", m("HTTP/1.1 200", "Content-Length: 0"), reason=b"",
    spans=[0, 200, 12, 12, 0, 1, 1, 0, 1, 14, 28, 30, 31])
okr("resp-empty-reason", m("HTTP/1.1 200 ", "Content-Length: 0"), reason=b"",
    spans=[0, 200, 13, 13, 0, 1, 1, 0, 1, 15, 29, 31, 32])
okr("resp-reason-spaces", m("HTTP/1.1 404 Not  Found \t", "Content-Length: 0"),
    reason=b"Not  Found \t")
okr("resp-reason-obs-text", m(b"HTTP/1.1 500 Ori\xc3\xabntatieprobleem", "Content-Length: 0"),
    reason=b"Ori\xc3\xabntatieprobleem")
okr("resp-status-999", m("HTTP/1.1 999 Weird", "Content-Length: 0"), status=999)
okr("resp-status-100-only", m("HTTP/1.1 100 Continue"), status=100, complete=True)
okr("resp-pipelined", m(_OK, "Content-Length: 1", body=b"a") + m(_OK, "Content-Length: 1",
                                                                  body=b"b"),
    {"body": b"b"}, body=b"a")
okr("resp-many-headers", m(_OK, *[f"X-{i}: {i}" for i in range(31)], "Content-Length: 0"),
    body_kind=LENGTH)
okr("resp-header-obs-text", m(_OK, b"Server: \xe2\x98\x83", "Content-Length: 0"),
    headers=[(b"Server", b"\xe2\x98\x83"), (b"Content-Length", b"0")])
okr("resp-set-cookie-twice", m(_OK, "Set-Cookie: a=1", "Set-Cookie: b=2", "Content-Length: 0"),
    headers=[(b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2"), (b"Content-Length", b"0")])
okr("resp-max-body-ignored", m(_OK, "Content-Length: 10", body=b"0123456789"),
    limits=Limits(max_body=1), body=b"0123456789")

# ---------------------------------------------------------------- invalid responses
badr("resp-cl-te", m(_OK, "Content-Length: 1", "Transfer-Encoding: chunked"), "CL_TE")
badr("resp-te-cl", m(_OK, "Transfer-Encoding: anything", "Content-Length: 1"), "CL_TE")
badr("resp-cl-dup", m(_OK, "Content-Length: 0", "Content-Length: 1"), "DUPLICATE_CL")
badr("resp-cl-bad", m(_OK, "Content-Length: 1x"), "BAD_CL")
badr("resp-cl-huge", m(_OK, "Content-Length: 18446744073709551616"), "BAD_CL")
badr("resp-cl-negative", m(_OK, "Content-Length: -1"), "BAD_CL")
badr("resp-te-chunked-twice", m(_OK, "Transfer-Encoding: chunked, chunked"),
     "DUPLICATE_CHUNKED")
badr("resp-te-empty", m(_OK, "Transfer-Encoding: ,"), "BAD_TE")
badr("resp-te-http10", m("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), "TE_HTTP10")
badr("resp-status-two-digits", m("HTTP/1.1 20 OK"), "BAD_STATUS", 11)
badr("resp-status-four-digits", m("HTTP/1.1 2000 OK"), "BAD_STATUS", 12)
badr("resp-status-letter", m("HTTP/1.1 2x0 OK"), "BAD_STATUS", 10)
badr("resp-status-zero-first", m("HTTP/1.1 099 OK"), "BAD_STATUS", 9)
badr("resp-status-double-sp", m("HTTP/1.1  200 OK"), "BAD_STATUS", 9)
badr("resp-status-missing", m("HTTP/1.1"), "BAD_STATUS", 8)
badr("resp-status-tab", m("HTTP/1.1\t200 OK"), "BAD_STATUS", 8)
badr("resp-status-then-tab", m("HTTP/1.1 200\tOK"), "BAD_STATUS", 12)
badr("resp-version-ten", m("HTTP/1.10 200 OK"), "BAD_STATUS", 8)
badr("resp-version-2", m("HTTP/2.0 200 OK"), "VERSION_NOT_SUPPORTED", 0)
badr("resp-version-0", m("HTTP/0.9 200 OK"), "VERSION_NOT_SUPPORTED", 0)
badr("resp-version-lower", m("http/1.1 200 OK"), "BAD_VERSION", 0)
badr("resp-version-ice", m("ICE/1.0 200 OK"), "BAD_VERSION", 0)
badr("resp-leading-crlf", b"\r\n" + m(_OK, "Content-Length: 0"), "BAD_VERSION", 0)
badr("resp-reason-nul", m("HTTP/1.1 200 O\x00K"), "BAD_REASON", 14)
badr("resp-reason-del", m("HTTP/1.1 200 OK\x7f"), "BAD_REASON", 15)
badr("resp-reason-bare-cr", b"HTTP/1.1 200 O\rK\r\n\r\n", "BARE_CR", 14)
badr("resp-bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "BARE_LF", 15)
badr("resp-all-bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "BARE_LF", 15)
badr("resp-header-cr-no-lf", b"HTTP/1.1 200 OK\r\nFoo: 1\rBar: 1\r\n\r\n", "BARE_CR", 23)
badr("resp-obs-fold", m(_OK, "X: a", " b"), "OBS_FOLD")
badr("resp-ws-before-colon", m(_OK, "Content-Length : 0"), "WS_BEFORE_COLON")
badr("resp-bad-name", m(_OK, "Fo@: Failure"), "BAD_HEADER_NAME", b"@")
badr("resp-ctl-value", m(_OK, "Foo: F\x01ailure"), "BAD_HEADER_VALUE", b"\x01")
badr("resp-too-large", m(_OK, "X: " + "a" * 80), "HEAD_TOO_LARGE", 64, limits=_SMALL)
badr("resp-too-large-status-line", m("HTTP/1.1 200 " + "a" * 80), "HEAD_TOO_LARGE", 64,
     limits=_SMALL)
badr("resp-too-many-headers", m(_OK, "A: 1", "B: 2", "C: 3"), "TOO_MANY_HEADERS", b"C: 3",
     limits=Limits(max_headers=2))
badr("resp-chunk-bad-size", m(_OK, "Transfer-Encoding: chunked", body=b"zz\r\n"),
     "BAD_CHUNK_SIZE")
badr("resp-chunk-no-crlf", m(_OK, "Transfer-Encoding: chunked", body=b"1\r\nab"),
     "BAD_CHUNK_END")
badr("resp-chunk-trailer-cl", m(_OK, "Transfer-Encoding: chunked",
                                body=b"0\r\nContent-Length: 1\r\n\r\n"), "FORBIDDEN_TRAILER")
badr("resp-100-then-bad", m("HTTP/1.1 100 Continue") + m("HTTP/1.1 200 OK", "X : y"),
     "WS_BEFORE_COLON")
