"""Heads for the scanner tests: valid ones with their expected spans, one or more invalid
ones per error code with the expected offset, and incomplete ones.

Spans of the valid heads are derived while the head is assembled (``Head``), not by
scanning it, so they check the scanner against SCANNER.md's layout independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BARE_LF, BARE_CR, BAD_METHOD, BAD_TARGET, BAD_VERSION, VERSION_NOT_SUPPORTED = 1, 2, 3, 4, 5, 6
BAD_STATUS, BAD_REASON, BAD_HEADER_NAME, WS_BEFORE_COLON, OBS_FOLD = 7, 8, 9, 10, 11
BAD_HEADER_VALUE, HEAD_TOO_LARGE, URI_TOO_LONG, TOO_MANY_HEADERS = 12, 13, 14, 15

MAX_HEAD = 16384
MAX_HEADERS = 100

UA = (b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      b"Chrome/131.0.0.0 Safari/537.36")

# header name (any case) -> header_id
IDS = {
    b"content-length": 1, b"transfer-encoding": 2, b"connection": 3, b"host": 4,
    b"upgrade": 5, b"expect": 6, b"cookie": 7, b"te": 8, b"trailer": 9, b"keep-alive": 10,
    b"proxy-connection": 11, b"x-forwarded-for": 12, b"forwarded": 13,
    b"x-forwarded-proto": 14, b"x-forwarded-port": 15, b"x-real-ip": 16, b"x-request-id": 17,
}


@dataclass
class Head:
    """A head assembled piece by piece, recording the spans SCANNER.md promises."""

    is_request: bool
    data: bytearray = field(default_factory=bytearray)
    out: list[int] = field(default_factory=list)

    def add(self, piece: bytes) -> tuple[int, int]:
        start = len(self.data)
        self.data += piece
        return start, len(self.data)

    @classmethod
    def request(cls, method: bytes, target: bytes, minor: int,
                headers: list[tuple[bytes, bytes, bytes, bytes]], *, leading: int = 0) -> Head:
        """headers: (name, before, value, after): before/after are the OWS around value."""
        head = cls(True)
        head.add(b"\r\n" * leading)
        ms, me = head.add(method)
        head.add(b" ")
        ts, te = head.add(target)
        head.add(b" HTTP/1.%d\r\n" % minor)
        head.out = [2 * leading, ms, me, ts, te, minor, len(headers), 0]
        head._headers(headers)
        return head

    @classmethod
    def response(cls, minor: int, status: int, reason: bytes | None,
                 headers: list[tuple[bytes, bytes, bytes, bytes]]) -> Head:
        """reason None: "HTTP/1.x NNN\\r\\n" (no SP); b"": "HTTP/1.x NNN \\r\\n"."""
        head = cls(False)
        head.add(b"HTTP/1.%d %d" % (minor, status))
        if reason is None:
            rs = re = len(head.data)
        else:
            head.add(b" ")
            rs, re = head.add(reason)
        head.add(b"\r\n")
        head.out = [0, status, rs, re, 0, minor, len(headers), 0]
        head._headers(headers)
        return head

    def _headers(self, headers: list[tuple[bytes, bytes, bytes, bytes]]) -> None:
        for name, before, value, after in headers:
            ns, ne = self.add(name)
            self.add(b":" + before)
            vs, ve = self.add(value)
            self.add(after + b"\r\n")
            self.out += [IDS.get(name.lower(), 0), ns, ne, vs, ve]
        self.add(b"\r\n")

    @property
    def expected(self) -> tuple[int, list[int]]:
        return len(self.data), self.out


def h(name: bytes, value: bytes, before: bytes = b" ", after: bytes = b"") -> tuple[
        bytes, bytes, bytes, bytes]:
    return name, before, value, after


BROWSER = [
    h(b"Host", b"www.example.com"), h(b"User-Agent", UA),
    h(b"Accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    h(b"Accept-Language", b"en-GB,en;q=0.9,fr;q=0.8"),
    h(b"Accept-Encoding", b"gzip, deflate, br, zstd"), h(b"Connection", b"keep-alive"),
    h(b"Cookie", b"session=8f2a9c1e4b7d; theme=dark; _ga=GA1.2.1234567890.1700000000"),
    h(b"Upgrade-Insecure-Requests", b"1"), h(b"Sec-Fetch-Dest", b"document"),
    h(b"Sec-Fetch-Mode", b"navigate"), h(b"Sec-Fetch-Site", b"same-origin"),
    h(b"Sec-Fetch-User", b"?1"), h(b"Cache-Control", b"max-age=0"),
    h(b"Referer", b"https://www.example.com/catalog/items?page=2&sort=price"),
]

TCHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TARGET_BYTES = bytes(range(0x21, 0x7F))
VALUE_BYTES = bytes(b for b in range(0x21, 0x100) if b != 0x7F)


def valid_heads() -> list[tuple[str, Head]]:
    every_id = [h(name.upper() if i % 2 else name.title(), b"v%d" % i)
                for i, name in enumerate(IDS)]
    return [
        ("get-no-headers", Head.request(b"GET", b"/", 1, [])),
        ("browser-14", Head.request(b"GET", b"/catalog/items/42?ref=home", 1, BROWSER)),
        ("http-1.0", Head.request(b"GET", b"/index.html", 0, [h(b"Host", b"a")])),
        ("leading-crlf", Head.request(b"POST", b"/x", 1, [h(b"Content-Length", b"5")],
                                      leading=3)),
        ("every-header-id", Head.request(b"GET", b"/", 1, every_id)),
        ("repeated-ids", Head.request(b"GET", b"/", 1, [
            h(b"Host", b"a"), h(b"Connection", b"x"), h(b"Cookie", b"c"), h(b"host", b"b"),
            h(b"Connection", b"y"), h(b"Cookie", b"d"), h(b"Expect", b"e"),
            h(b"EXPECT", b"f")])),
        ("look-alike-names", Head.request(b"GET", b"/", 1, [
            h(b"Hosts", b"a"), h(b"Hos", b"b"), h(b"X-Forwarded-Fo", b"c"),
            h(b"Content-Lengthy", b"d"), h(b"T", b"e"), h(b"TE-", b"f"),
            h(b"x-forwarded-prot0", b"g"), h(b"Connectio", b"h")])),
        ("ows", Head.request(b"GET", b"/", 1, [
            h(b"A", b"b", b"", b""), h(b"A", b"b", b"  \t ", b" \t\t "),
            h(b"Empty", b"", b"", b""), h(b"Empty-Ows", b"", b" \t ", b""),
            h(b"Inner", b"a  b\tc", b"\t", b"\t")])),
        ("all-tchars-method-and-name", Head.request(TCHARS, b"/", 1, [
            h(TCHARS, b"x"), h(b"x" * 20 + b"|~|~" + b"y" * 20, b"z")])),
        ("all-target-bytes", Head.request(b"GET", TARGET_BYTES, 1, [h(b"Host", b"h")])),
        ("all-value-bytes", Head.request(b"GET", b"/", 1, [
            h(b"V", VALUE_BYTES), h(b"Utf8", "déjà vu ✓".encode())])),
        ("long-value", Head.request(b"GET", b"/" + b"p" * 3000, 1, [
            h(b"X-Long", b"v" * 5000), h(b"Y" * 300, b"w")])),
        ("response-200", Head.response(1, 200, b"OK", [h(b"Content-Length", b"12")])),
        ("response-404", Head.response(0, 404, b"Not Found", [])),
        ("response-no-reason", Head.response(1, 204, None, [h(b"Date", b"today")])),
        ("response-empty-reason", Head.response(1, 204, b"", [])),
        ("response-reason-bytes", Head.response(1, 999, b"\t" + VALUE_BYTES + b" ", [])),
        ("response-100", Head.response(1, 100, b"Continue", [])),
        ("response-browser", Head.response(1, 200, b"OK", BROWSER)),
    ]


REQ = b"GET / HTTP/1.1\r\n"
END = b"\r\n"


def _at(data: bytes, marker: bytes, plus: int = 0) -> int:
    return data.index(marker) + plus


# (name, data, is_request, max_head, max_headers, code, offset)
Invalid = tuple[str, bytes, bool, int, int, int, int]


def invalid_heads() -> list[Invalid]:
    cases: list[Invalid] = []

    def add(name: str, data: bytes, code: int, offset: int, *, is_request: bool = True,
            max_head: int = MAX_HEAD, max_headers: int = MAX_HEADERS) -> None:
        cases.append((name, data, is_request, max_head, max_headers, code, offset))

    d = b"GET / HTTP/1.1\nHost: a\r\n\r\n"
    add("bare-lf-start-line", d, BARE_LF, 14)
    d = REQ + b"Host: a\r\n\n"
    add("bare-lf-end", d, BARE_LF, len(d) - 1)
    d = b"\nGET / HTTP/1.1\r\n\r\n"
    add("bare-lf-first", d, BARE_LF, 0)
    d = b"\r\n\nGET / HTTP/1.1\r\n\r\n"
    add("bare-lf-after-skipped", d, BARE_LF, 2)
    d = REQ + b"Host: a\rb\r\n\r\n"
    add("bare-cr-value", d, BARE_CR, _at(d, b"\rb"))
    d = REQ + b"A: b\r\r\n\r\n"
    add("bare-cr-double", d, BARE_CR, _at(d, b"\r\r"))
    d = b"G@T / HTTP/1.1\r\nX: a\rb\r\n\r\n"
    add("bare-cr-wins-over-method", d, BARE_CR, _at(d, b"\rb"))
    d = b"HTTP/2.0 200 OK\r\nX: a\nb\r\n\r\n"
    add("bare-lf-wins-over-version", d, BARE_LF, _at(d, b"\nb"), is_request=False)

    add("method-empty", b" / HTTP/1.1\r\n\r\n", BAD_METHOD, 0)
    add("method-empty-after-crlf", b"\r\n / HTTP/1.1\r\n\r\n", BAD_METHOD, 2)
    add("method-bad-byte", b"G@T / HTTP/1.1\r\n\r\n", BAD_METHOD, 1)
    add("method-no-sp", b"GET\r\n\r\n", BAD_METHOD, 3)
    add("method-htab", b"GET\t/ HTTP/1.1\r\n\r\n", BAD_METHOD, 3)
    add("method-two-sp", b"GET  / HTTP/1.1\r\n\r\n", BAD_METHOD, 4)
    add("method-long-bad", b"M" * 40 + b"{ / HTTP/1.1\r\n\r\n", BAD_METHOD, 40)
    add("target-empty", b"GET \r\n\r\n", BAD_TARGET, 4)
    add("target-del", b"GET /a\x7fb HTTP/1.1\r\n\r\n", BAD_TARGET, 6)
    add("target-utf8", b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", BAD_TARGET, 5)
    add("target-no-sp", b"GET /\r\n\r\n", BAD_TARGET, 5)
    add("target-htab", b"GET /a\tb HTTP/1.1\r\n\r\n", BAD_TARGET, 6)
    add("target-long-nul", b"GET /" + b"a" * 50 + b"\x00 HTTP/1.1\r\n\r\n", BAD_TARGET, 55)
    add("version-trailing-sp", b"GET / HTTP/1.1 \r\n\r\n", BAD_VERSION, 6)
    add("version-lower", b"GET / http/1.1\r\n\r\n", BAD_VERSION, 6)
    add("version-no-dot", b"GET / HTTP/11\r\n\r\n", BAD_VERSION, 6)
    add("version-letter", b"GET / HTTP/1.x\r\n\r\n", BAD_VERSION, 6)
    add("version-short", b"GET / HTTP/1\r\n\r\n", BAD_VERSION, 6)
    add("version-two-digits", b"GET / HTTP/1.10\r\n\r\n", BAD_VERSION, 6)
    add("version-after-two-sp", b"GET /  HTTP/1.1\r\n\r\n", BAD_VERSION, 6)
    add("version-2-with-junk", b"GET / HTTP/2.0x\r\n\r\n", BAD_VERSION, 6)
    add("version-2", b"GET / HTTP/2.0\r\n\r\n", VERSION_NOT_SUPPORTED, 6)
    add("version-0.9", b"GET / HTTP/0.9\r\n\r\n", VERSION_NOT_SUPPORTED, 6)

    d = REQ + b"Ho(st: a\r\n\r\n"
    add("name-bad-byte", d, BAD_HEADER_NAME, _at(d, b"("))
    d = REQ + b": a\r\n\r\n"
    add("name-empty", d, BAD_HEADER_NAME, 16)
    d = REQ + b"Host\r\n\r\n"
    add("name-no-colon", d, BAD_HEADER_NAME, 20)
    d = REQ + b"A: b\r\n" + b"N" * 30 + b"\x80: x\r\n\r\n"
    add("name-high-byte", d, BAD_HEADER_NAME, _at(d, b"\x80"))
    d = REQ + b"Host : a\r\n\r\n"
    add("ws-before-colon-sp", d, WS_BEFORE_COLON, 20)
    d = REQ + b"Host\t: a\r\n\r\n"
    add("ws-before-colon-htab", d, WS_BEFORE_COLON, 20)
    d = REQ + b"A: b\r\n c\r\n\r\n"
    add("obs-fold", d, OBS_FOLD, _at(d, b" c"))
    d = REQ + b"\tA: b\r\n\r\n"
    add("obs-fold-first", d, OBS_FOLD, 16)
    d = REQ + b" A: b\r\n\r\n"
    add("obs-fold-before-too-many", d, OBS_FOLD, 16, max_headers=0)
    for byte in (b"\x00", b"\x01", b"\x0b", b"\x1f", b"\x7f"):
        d = REQ + b"A: b" + byte + b"c\r\n\r\n"
        add("value-%02x" % byte[0], d, BAD_HEADER_VALUE, _at(d, byte + b"c"))
    d = REQ + b"A: " + b"v" * 40 + b"\x00\r\n\r\n"
    add("value-long-nul", d, BAD_HEADER_VALUE, _at(d, b"\x00"))
    d = REQ + b"A: b\r\nB: c\r\n\r\n"
    add("too-many-1", d, TOO_MANY_HEADERS, _at(d, b"B:"), max_headers=1)
    add("too-many-0", d, TOO_MANY_HEADERS, 16, max_headers=0)

    d = REQ + b"Host: " + b"a" * 100
    add("head-too-large-open", d, HEAD_TOO_LARGE, 50, max_head=50)
    d = REQ + b"Host: a\r\n\r\n"
    add("head-too-large-found", d, HEAD_TOO_LARGE, len(d) - 1, max_head=len(d) - 1)
    add("uri-too-long-open", b"GET /" + b"a" * 100, URI_TOO_LONG, 50, max_head=50)
    add("uri-too-long-lf-at-limit", b"GET /" + b"a" * 45 + b"\nHost: x", URI_TOO_LONG, 50,
        max_head=50)
    add("uri-too-long-crlf-run", b"\r\n" * 40, URI_TOO_LONG, 50, max_head=50)
    d = b"HTTP/1.1 200 OK" + b"a" * 100
    add("response-too-large-no-lf", d, HEAD_TOO_LARGE, 50, is_request=False, max_head=50)

    def resp(name: str, data: bytes, code: int, offset: int) -> None:
        add(name, data, code, offset, is_request=False)

    resp("resp-version-letter", b"HTTP/1.x 200 OK\r\n\r\n", BAD_VERSION, 0)
    resp("resp-version-lower", b"http/1.1 200 OK\r\n\r\n", BAD_VERSION, 0)
    resp("resp-leading-crlf", b"\r\nHTTP/1.1 200 OK\r\n\r\n", BAD_VERSION, 0)
    resp("resp-version-short", b"HTTP/1\r\n\r\n", BAD_VERSION, 0)
    resp("resp-version-2", b"HTTP/2.0 200 OK\r\n\r\n", VERSION_NOT_SUPPORTED, 0)
    resp("resp-no-sp", b"HTTP/1.1200 OK\r\n\r\n", BAD_STATUS, 8)
    resp("resp-no-status", b"HTTP/1.1\r\n\r\n", BAD_STATUS, 8)
    resp("resp-status-0xx", b"HTTP/1.1 099 OK\r\n\r\n", BAD_STATUS, 9)
    resp("resp-status-two-sp", b"HTTP/1.1  200 OK\r\n\r\n", BAD_STATUS, 9)
    resp("resp-status-letter", b"HTTP/1.1 2x0 OK\r\n\r\n", BAD_STATUS, 10)
    resp("resp-status-2-digits", b"HTTP/1.1 20 OK\r\n\r\n", BAD_STATUS, 11)
    resp("resp-status-4-digits", b"HTTP/1.1 2000 OK\r\n\r\n", BAD_STATUS, 12)
    resp("resp-status-then-junk", b"HTTP/1.1 200x\r\n\r\n", BAD_STATUS, 12)
    resp("resp-status-then-htab", b"HTTP/1.1 200\tOK\r\n\r\n", BAD_STATUS, 12)
    resp("resp-reason-nul", b"HTTP/1.1 200 O\x00K\r\n\r\n", BAD_REASON, 14)
    resp("resp-reason-del", b"HTTP/1.1 200 " + b"r" * 40 + b"\x7f\r\n\r\n", BAD_REASON, 53)
    resp("resp-header-value", b"HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n", BAD_HEADER_VALUE, 20)
    return cases


# (name, data, is_request): incomplete at max_head MAX_HEAD
INCOMPLETE: list[tuple[str, bytes, bool]] = [
    ("empty", b"", True),
    ("cr", b"\r", True),
    ("crlf-only", b"\r\n\r\n\r\n", True),
    ("crlf-cr", b"\r\n\r", True),
    ("no-blank-line", REQ + b"Host: a\r\n", True),
    ("last-cr", REQ + b"Host: a\r\n\r", True),
    ("lf-cr-then-other", REQ + b"A: b\n\rx", True),
    ("response-open", b"HTTP/1.1 200 OK\r\nA: b", False),
    ("response-crlf-only", b"\r\n", False),
]


def corpus() -> list[tuple[str, bytes, bool, int, int]]:
    """Every input of this module: (name, data, is_request, max_head, max_headers)."""
    cases = [(name, bytes(head.data), head.is_request, MAX_HEAD, MAX_HEADERS)
             for name, head in valid_heads()]
    cases += [(name, data, req, mh, mx) for name, data, req, mh, mx, _, _ in invalid_heads()]
    cases += [(name, data, req, MAX_HEAD, MAX_HEADERS) for name, data, req in INCOMPLETE]
    return cases
