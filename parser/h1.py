"""HTTP/1.x heads, body framing and chunked bodies: the semantic layer above ``scan_head``.

Theory of operation
-------------------
A proxy that forwards HTTP/1.1 must agree with every backend on where each message ends,
or a request can hide a second one in its body (request smuggling). So this module decides
framing once, strictly, and refuses anything two honest implementations could read two
ways. It is sans-IO (h11's rule): bytes in, results or :class:`ParseError` out, no socket,
no clock, no logging.

The work is split in two layers:

1. ``scan_head`` (native C or pure Python, chosen by ``pysozu.parser``; both follow
   ``SCANNER.md``) finds the end of the head and checks its syntax: start line, tokens,
   CRLF line endings, no obs-fold, no control bytes, size limits. It returns spans (offsets
   into the caller's buffer), never copies.
2. This module reads the few headers that matter for framing and routing (their ids come
   from the scanner, so no name is compared here) and applies RFC 9112 §6 and RFC 9110:

Framing of a **request** (RFC 9112 §6.1-6.3), first matching row wins:

==========================================  =============================================
Headers                                     Result
==========================================  =============================================
Content-Length and Transfer-Encoding        400 ``CL_TE`` (never guess which one wins)
more than one Content-Length line           400 ``DUPLICATE_CL`` (even if equal)
Content-Length not 1*18DIGIT                400 ``BAD_CL`` (no sign, space, list, hex)
Transfer-Encoding in HTTP/1.0               400 ``TE_HTTP10`` (§6.1: framing is faulty)
a coding that is not a token list           400 ``BAD_TE``
a coding we do not know                     501 ``UNKNOWN_TE``
chunked more than once                      400 ``DUPLICATE_CHUNKED``
final coding not chunked                    400 ``CHUNKED_NOT_FINAL``
Transfer-Encoding (final chunked)           ``CHUNKED``
Content-Length over ``Limits.max_body``     413 ``BODY_TOO_LARGE``
Content-Length: n                           ``LENGTH`` n (0 included)
neither, or the method is CONNECT           ``NONE`` (§9.3.6 of RFC 9110: no content)
==========================================  =============================================

Framing of a **response** (RFC 9112 §6.3); the same syntax checks run first (CL+TE,
duplicate or bad CL, bad TE list, TE in HTTP/1.0), each raised with status 502, the answer
a proxy gives for a backend that breaks the rules:

==========================================  =============================================
Response                                    Result
==========================================  =============================================
to HEAD, 1xx, 204, 304                      ``NONE`` (a Content-Length is reported only)
2xx to CONNECT                              ``NONE`` and ``tunnel`` (the bytes after are
                                            the tunnel's)
Transfer-Encoding, final coding chunked     ``CHUNKED`` (chunked twice: 502)
Transfer-Encoding, another final coding     ``CLOSE_DELIMITED``
Content-Length: n                           ``LENGTH`` n
neither                                     ``CLOSE_DELIMITED``
==========================================  =============================================

Persistence (RFC 9112 §9.3): HTTP/1.1 (and 1.x, x > 1) keeps the connection unless a
Connection option is ``close``; HTTP/1.0 only with ``keep-alive`` and without ``close``; a
close-delimited or tunnel response never keeps it.

Other request rules: HTTP/1.1 needs exactly one Host (RFC 9112 §3.2; its value is checked
against RFC 3986's host [":" port], commas refused); HTTP/1.0 may omit it. The target must
be in the form the method allows (RFC 9112 §3.2): ``CONNECT`` takes authority-form only,
``*`` is for ``OPTIONS`` only, and the others take origin-form (``/...``) or absolute-form
(``scheme://...``). ``Expect: 100-continue`` and ``Upgrade`` count from HTTP/1.1 on (RFC
9110 §10.1.1 and §7.8 tell a server to ignore them in HTTP/1.0).

Bodies are read by :class:`ChunkedDecoder` and :class:`LengthBody`, which consume what they
are fed and report the payload as spans of it; a close-delimited body needs no decoder.
The serializers build heads and chunks, and refuse (``ValueError``) anything that the
parser would refuse or read differently: a serializer that can emit a smuggling vector is
a bug.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from . import _pyscan, errors
from .errors import ParseError, error

__all__ = [
    "DEFAULT_LIMITS",
    "LAST_CHUNK",
    "BodyKind",
    "ChunkedDecoder",
    "LengthBody",
    "Limits",
    "RequestHead",
    "ResponseHead",
    "TargetForm",
    "parse_request_head",
    "parse_response_head",
    "remember",
    "serialize_chunk",
    "serialize_last_chunk",
    "serialize_request_head",
    "serialize_response_head",
    "simple_response_head",
    "trusted_request_head",
]

_T = TypeVar("_T")
_K = TypeVar("_K")
Buffer = bytes | bytearray | memoryview
ScanHead = Callable[[Buffer, int, int, bool, int, int], tuple[int, list[int]]]
# scan_head_ids (SCANNER.md, "The id mask"): (rc, spans, mask). The spans are a list with
# both scanners: compiled, a list of ints is indexed natively, an array through the
# generic protocol (a boxed int per read).
ScanHeadIds = Callable[[Buffer, int, int, bool, int, int], tuple[int, list[int], int]]
# simple_response_head's answer from (buf, length, max_head, max_headers)
SimpleResponse = Callable[[Buffer, int, int, int], tuple[int, int, int, int, int] | None]

# The active scanner; ``pysozu.parser.set_backend`` swaps it. The head parsers call
# ``_scan_ids``, the trailer section and ``pysozu.parser.scan_head`` call ``_scan``.
_scan: ScanHead = _pyscan.scan_head
_scan_ids: ScanHeadIds = _pyscan.scan_head_ids


def _set_scanner(scan: ScanHead, scan_ids: ScanHeadIds, simple: SimpleResponse) -> None:
    global _scan, _scan_ids, _simple
    _scan = scan
    _scan_ids = scan_ids
    _simple = simple


# Header ids of SCANNER.md used here, and their bits in the id mask.
_CONTENT_LENGTH: Final = 1
_TRANSFER_ENCODING: Final = 2
_CONNECTION: Final = 3
_HOST: Final = 4
_UPGRADE: Final = 5
_EXPECT: Final = 6
_CL_BIT: Final = 1 << _CONTENT_LENGTH
_TE_BIT: Final = 1 << _TRANSFER_ENCODING
_FRAMING_BITS: Final = _CL_BIT | _TE_BIT
_CONNECTION_BIT: Final = 1 << _CONNECTION
_HOST_BIT: Final = 1 << _HOST
_UPGRADE_BIT: Final = 1 << _UPGRADE
_EXPECT_BIT: Final = 1 << _EXPECT
_USED_BITS: Final = _FRAMING_BITS | _CONNECTION_BIT | _HOST_BIT | _UPGRADE_BIT | _EXPECT_BIT
# "more than one line has this id" bits of the mask
_CL_REPEATED: Final = _CL_BIT << _pyscan.REPEATED_SHIFT
_TE_REPEATED: Final = _TE_BIT << _pyscan.REPEATED_SHIFT
_CONNECTION_REPEATED: Final = _CONNECTION_BIT << _pyscan.REPEATED_SHIFT
_HOST_REPEATED: Final = _HOST_BIT << _pyscan.REPEATED_SHIFT
_NO_IDS: Final[list[int]] = []  # never written


class BodyKind(enum.IntEnum):
    """How the body of a message is delimited (RFC 9112 §6.3)."""

    NONE = 0  # no body: the next message starts right after the head
    LENGTH = 1  # Content-Length bytes
    CHUNKED = 2  # chunked transfer coding: read with ChunkedDecoder
    CLOSE_DELIMITED = 3  # until the server closes (responses only)


class TargetForm(enum.IntEnum):
    """The four forms of a request target (RFC 9112 §3.2)."""

    ORIGIN = 0  # /path?query
    ABSOLUTE = 1  # http://host/path (proxies; the authority replaces Host)
    AUTHORITY = 2  # host:port (CONNECT only)
    ASTERISK = 3  # * (OPTIONS only)


# Enum members as module constants: an Enum attribute lookup costs more than a global.
_NONE: Final = BodyKind.NONE
_LENGTH: Final = BodyKind.LENGTH
_CHUNKED: Final = BodyKind.CHUNKED
_CLOSE_DELIMITED: Final = BodyKind.CLOSE_DELIMITED
_ORIGIN: Final = TargetForm.ORIGIN
_ABSOLUTE_FORM: Final = TargetForm.ABSOLUTE
_AUTHORITY_FORM: Final = TargetForm.AUTHORITY
_ASTERISK: Final = TargetForm.ASTERISK


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a peer may make the parser hold.

    Attributes:
        max_head: the largest head, leading empty lines and final CRLF included (431, or
            414 when the request line alone does not fit). Also bounds a trailer section.
        max_headers: the most header lines in a head (431), and trailer fields.
        max_body: the largest request body, declared or chunked (413); ``None``: no limit.
    """

    max_head: int = 16384
    max_headers: int = 100
    max_body: int | None = None


DEFAULT_LIMITS: Final = Limits()

_OWS: Final = b" \t"
_KNOWN_CODINGS: Final = frozenset(
    (b"chunked", b"gzip", b"deflate", b"compress", b"x-gzip", b"x-compress")
)
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = re.compile(rb"[%s]+" % _TCHAR)
# transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*+"'
_CODING = re.compile(
    rb"([%s]+)((?:[ \t]*+;[ \t]*+[%s]+[ \t]*+=[ \t]*+(?:[%s]+|%s))*+)"
    % (_TCHAR, _TCHAR, _TCHAR, _QUOTED)
)
# RFC 3986 host (IP-literal, IPv4 or reg-name, without the comma a merged list would carry)
# and an optional port; percent-encoding is checked too.
_REG_NAME = rb"[A-Za-z0-9\-._~!$&'()*+;=]"  # unreserved / sub-delims, without ","
_HOST_NAME = (
    rb"(?:%s*+(?:%%[0-9A-Fa-f]{2}%s*+)*+" % (_REG_NAME, _REG_NAME)
    + rb"|\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+;=:]+\])"
)
_HOST_VALUE = re.compile(_HOST_NAME + rb"(?::[0-9]*)?")
_AUTHORITY = re.compile(_HOST_NAME + rb":[0-9]+")
_ABSOLUTE = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*://([^/?#]*)")
_FIELD_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)
_REASON = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")


def _bytes(buf: Buffer, start: int, end: int) -> bytes:
    return bytes(buf[start:end])


class _Head:
    """What requests and responses share: the spans, the headers, the framing.

    Offsets that the scanner already wrote in ``spans`` are read from there on demand
    (properties) rather than copied into attributes at every parse.
    """

    __slots__ = (
        "body",
        "buf",
        "connection_tokens",
        "content_length",
        "keep_alive",
        "length",
        "mask",
        "spans",
        "upgrade",
    )

    buf: Buffer
    length: int
    spans: list[int]
    body: BodyKind
    content_length: int | None
    keep_alive: bool
    upgrade: bytes | None
    connection_tokens: tuple[bytes, ...]
    #: the scanner's id mask (SCANNER.md): which header ids the head has, so that a caller
    #: can skip a walk over the headers when none it rewrites is there
    mask: int

    @property
    def head_start(self) -> int:
        """Offset of the start line (after a request's leading empty lines)."""
        return self.spans[0]

    @property
    def version_minor(self) -> int:
        return self.spans[5]

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.start_line()!r} headers={len(self)} "
            f"body={self.body.name} content_length={self.content_length} "
            f"keep_alive={self.keep_alive}>"
        )

    def start_line(self) -> bytes:
        """The first line of the head, without its CRLF."""
        end = self.spans[8 + 1] - 2 if self.spans[6] else self.length - 4
        return _bytes(self.buf, self.head_start, end)

    def __len__(self) -> int:
        """The number of header lines."""
        return self.spans[6]

    @property
    def headers(self) -> list[tuple[int, int, int, int, int]]:
        """``(id, name_start, name_end, value_start, value_end)`` per header line, in order.

        The offsets index the buffer given to the parser; ``id`` is the scanner's header id
        (``pysozu.parser.HEADER_IDS``, 0 for other names).
        """
        s = self.spans
        return [(s[i], s[i + 1], s[i + 2], s[i + 3], s[i + 4]) for i in range(8, len(s), 5)]

    def iter_headers(self) -> Iterator[tuple[bytes, bytes]]:
        """``(name, value)`` per header line, as received (value without surrounding OWS)."""
        s, buf = self.spans, self.buf
        for i in range(8, len(s), 5):
            yield bytes(buf[s[i + 1] : s[i + 2]]), bytes(buf[s[i + 3] : s[i + 4]])

    def get(self, name: bytes | str) -> list[bytes]:
        """The values of every header line named ``name`` (case-insensitive), in order."""
        lname = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        s, buf = self.spans, self.buf
        hid = _pyscan.HEADER_IDS.get(lname, 0)
        if hid:
            return [bytes(buf[s[i + 3] : s[i + 4]]) for i in range(8, len(s), 5) if s[i] == hid]
        return [
            bytes(buf[s[i + 3] : s[i + 4]])
            for i in range(8, len(s), 5)
            if s[i + 2] - s[i + 1] == len(lname)
            and bytes(buf[s[i + 1] : s[i + 2]]).lower() == lname
        ]

    @property
    def head(self) -> bytes:
        """A copy of the head's bytes (leading empty lines excluded)."""
        return _bytes(self.buf, self.head_start, self.length)


class RequestHead(_Head):
    """A parsed request head: spans into the caller's buffer, and the decisions about it.

    The spans (and the ``method``/``target`` properties that read them) are valid as long as
    the buffer keeps the head's bytes; the other attributes are plain values.

    Attributes:
        buf, length, head_start: the buffer, the head's length in it (leading empty lines
            and final CRLF included), the offset of the request line.
        spans: the scanner's output (SCANNER.md): start line, then 5 ints per header.
        method_start, method_end, target_start, target_end: spans of the request line.
        version_minor: x in HTTP/1.x.
        body, content_length: framing (see the module docstring).
        keep_alive: whether the connection may carry another request after this one.
        expect_continue: ``Expect: 100-continue`` in an HTTP/1.1 request.
        upgrade: the Upgrade value when Connection has ``upgrade`` (HTTP/1.1), else None.
        host: the authority: the absolute-form target's, else the Host value; None when an
            HTTP/1.0 request has neither.
        target_form: which of the four forms the target is in.
        connection_tokens: the Connection options, lowercase, in order.
    """

    __slots__ = ("_method", "_target", "expect_continue", "host", "target_form")

    expect_continue: bool
    host: bytes | None
    target_form: TargetForm
    # the method and target once read (or given by ``trusted_request_head``)
    _method: bytes | None
    _target: bytes | None

    @property
    def method_start(self) -> int:
        return self.spans[1]

    @property
    def method_end(self) -> int:
        return self.spans[2]

    @property
    def target_start(self) -> int:
        return self.spans[3]

    @property
    def target_end(self) -> int:
        return self.spans[4]

    @property
    def method(self) -> bytes:
        method = self._method
        if method is None:
            s = self.spans
            method = self._method = bytes(self.buf[s[1] : s[2]])
        return method

    @property
    def target(self) -> bytes:
        target = self._target
        if target is None:
            s = self.spans
            target = self._target = bytes(self.buf[s[3] : s[4]])
        return target


class ResponseHead(_Head):
    """A parsed response head (see :class:`RequestHead` for the shared attributes).

    Attributes:
        status: the status code (100-999).
        reason_start, reason_end: span of the reason phrase (may be empty).
        is_informational: a 1xx: another head follows (or, for 101, the new protocol).
        tunnel: a 2xx answer to CONNECT: the connection is now a tunnel.
        upgrade: the new protocol of a 101 Switching Protocols, else None.
    """

    __slots__ = ("is_informational", "status", "tunnel")

    status: int
    is_informational: bool
    tunnel: bool

    @property
    def reason_start(self) -> int:
        return self.spans[2]

    @property
    def reason_end(self) -> int:
        return self.spans[3]

    @property
    def reason(self) -> bytes:
        s = self.spans
        return bytes(self.buf[s[2] : s[3]])


def parse_request_head(
    buf: Buffer, length: int | None = None, last_len: int = 0, limits: Limits = DEFAULT_LIMITS
) -> RequestHead | None:
    """Parse the request head at the start of ``buf[0:length]``.

    Args:
        buf: the bytes received so far (bytes, bytearray or memoryview); not copied.
        length: how many bytes of ``buf`` are valid (default: all).
        last_len: ``length`` at the previous call that returned None for this head (0 the
            first time): the search for the end resumes there instead of rescanning.
        limits: size bounds.

    Returns:
        The head, or None when more bytes are needed. The body (if any) starts at
        ``head.length``.

    Raises:
        ParseError: the head is invalid or too large; ``status`` is the answer to send.
    """
    if length is None:
        length = len(buf)
    rc, out, mask = _scan_ids(buf, length, last_len, True, limits.max_head, limits.max_headers)
    if rc <= 0:
        if rc == 0:
            return None
        raise error(-rc, out[0])
    h = RequestHead()
    h.buf = buf
    h.length = rc
    h.spans = out
    h.mask = mask
    h._method = h._target = None
    ms, me, ts, te, minor = out[1:6]
    # The id mask says which of the headers read below are there: no set of the ids, and
    # no search for the ones that are not.
    ids = out[8::5] if mask & _USED_BITS else _NO_IDS

    # Framing first: a smuggling attempt is reported as such, whatever else is wrong.
    if mask & _FRAMING_BITS:
        _framing(h, buf, out, ids, mask, minor, False)
    else:
        h.body = _NONE
        h.content_length = None
    if mask & _CONNECTION_BIT:
        if mask & _CONNECTION_REPEATED:
            connection = _connection_lines(buf, out, ids)
        else:  # the usual case, with a handful of distinct values: see _connection
            i = 11 + 5 * ids.index(_CONNECTION)
            value = buf[out[i] : out[i + 1]]
            if type(value) is not bytes:
                value = bytes(value)
            connection = _TOKENS.get(value) or _connection_value(value)
        tokens = connection[0]
        h.keep_alive = connection[1] if minor else connection[2]
    else:
        tokens = ()
        h.keep_alive = minor != 0
    h.connection_tokens = tokens

    # Target form and authority (RFC 9112 §3.2, §3.2.2).
    first = buf[ts]
    host: bytes | None = None
    if me - ms == 7 and buf[ms:me] == b"CONNECT":
        h.target_form = _AUTHORITY_FORM
        if not _is_authority(_bytes(buf, ts, te)):
            raise error("BAD_TARGET_FORM", ts)
        # RFC 9110 §9.3.6: a CONNECT request has no content; what follows its head is the
        # tunnel's, once a 2xx opens it (http-parser and llhttp read it the same way).
        h.body = _NONE
    elif first == 47:  # "/"
        h.target_form = _ORIGIN
    elif first == 42 and te - ts == 1:  # "*"
        h.target_form = _ASTERISK
        if buf[ms:me] != b"OPTIONS":
            raise error("BAD_TARGET_FORM", ts)
    else:
        h.target_form = _ABSOLUTE_FORM
        m = _ABSOLUTE.match(_bytes(buf, ts, te))
        if m is None:
            raise error("BAD_TARGET_FORM", ts)
        # RFC 9110 §4.2.1, §4.2.4: an http(s) authority has a host and no userinfo
        host = m.group(1)
        if not _HOST_VALUE.fullmatch(host) or host[:1] in (b"", b":"):
            raise error("BAD_TARGET", ts)

    # Host: exactly one in HTTP/1.1, at most one in HTTP/1.0 (RFC 9112 §3.2).
    if mask & _HOST_BIT:
        if mask & _HOST_REPEATED:
            raise error("DUPLICATE_HOST", _nth(out, ids, _HOST, 1))
        i = 11 + 5 * ids.index(_HOST)
        value = buf[out[i] : out[i + 1]]
        if type(value) is not bytes:
            value = bytes(value)
        if value not in _VALID_HOSTS:
            if _HOST_VALUE.fullmatch(value) is None:
                raise error("BAD_HOST", out[i])
            remember(_VALID_HOSTS, value, True)
        if host is None:
            host = value
    elif minor:
        raise error("MISSING_HOST")
    h.host = host

    max_body = limits.max_body
    if max_body is not None and h.body == _LENGTH:
        assert h.content_length is not None
        if h.content_length > max_body:
            raise error("BODY_TOO_LARGE", _nth(out, ids, _CONTENT_LENGTH, 0))

    h.expect_continue = False
    h.upgrade = None
    if minor and mask & (_EXPECT_BIT | _UPGRADE_BIT):
        if mask & _EXPECT_BIT:
            h.expect_continue = any(v.lower() == b"100-continue"
                                    for v in _values(buf, out, ids, _EXPECT))
        if mask & _UPGRADE_BIT and b"upgrade" in tokens:
            h.upgrade = b", ".join(_values(buf, out, ids, _UPGRADE))
    return h


def trusted_request_head(
    buf: Buffer, length: int, spans: list[int], mask: int, host: bytes,
    content_length: int | None, limits: Limits = DEFAULT_LIMITS,
    method: bytes | None = None, target: bytes | None = None,
) -> RequestHead | None:
    """The request head at the start of ``buf``, a head of ``length`` bytes this proxy wrote
    itself (``h2_translate.request_to_h1`` makes one of an HTTP/2 request), read from what
    the writer knows of it instead of scanning it: ``spans`` and ``mask`` as the scanner
    would give them (SCANNER.md), the Host value ``host`` (empty: no Host line), and
    ``content_length``, the value of its Content-Length line (None: no such line);
    ``method`` and ``target``, when given, are the request line's (what the head's
    properties would read from ``buf``).

    Returns what :func:`parse_request_head` would, or None whenever that might differ: the
    head breaks a limit, or holds what the parser refuses or reads in ways this function
    does not repeat (a bad or missing host, ``Expect``, ``Connection``, ``Upgrade``,
    repeated framing lines, a target that is not origin-form or ``*``). The caller then
    parses ``buf`` as usual.

    The writer guarantees the rest: CRLF line ends, a ``METHOD SP target SP HTTP/1.1``
    request line with a valid method and target, ``name: value`` lines with valid names and
    values without surrounding blanks. A test compares both functions over generated
    HTTP/2 requests.
    """
    if length > limits.max_head or length > len(buf) or spans[6] > limits.max_headers:
        return None
    if mask & _REFUSED_TRUSTED or not host:
        return None
    if mask & _TE_BIT and (mask & _CL_BIT or content_length is not None):
        return None
    first = buf[spans[3]]
    if first == 47:  # "/"
        form = _ORIGIN
    elif first == 42 and spans[4] - spans[3] == 1 and spans[2] == 7 \
            and bytes(buf[:7]) == b"OPTIONS":  # "*"
        form = _ASTERISK
    else:
        return None
    if host not in _VALID_HOSTS:
        if _HOST_VALUE.fullmatch(host) is None:
            return None
        remember(_VALID_HOSTS, host, True)
    if content_length is not None:
        if content_length >= 10**18:
            return None  # more than the parser's 18 digits
        max_body = limits.max_body
        if max_body is not None and content_length > max_body:
            return None
    h = RequestHead()
    h.buf = buf
    h.length = length
    h.spans = spans
    h.mask = mask
    h._method = method
    h._target = target
    h.body = _CHUNKED if mask & _TE_BIT else _LENGTH if content_length is not None else _NONE
    h.content_length = content_length
    h.keep_alive = True
    h.connection_tokens = ()
    h.target_form = form
    h.host = host
    h.expect_continue = False
    h.upgrade = None
    return h


# what trusted_request_head leaves to the parser: repeated framing or host lines, and the
# fields whose reading it does not repeat
_REFUSED_TRUSTED: Final = (_CL_REPEATED | _TE_REPEATED | _HOST_REPEATED | _CONNECTION_BIT
                           | _EXPECT_BIT | _UPGRADE_BIT)


def parse_response_head(
    buf: Buffer,
    length: int | None = None,
    last_len: int = 0,
    request_method: bytes = b"GET",
    limits: Limits = DEFAULT_LIMITS,
) -> ResponseHead | None:
    """Parse the response head at the start of ``buf[0:length]``.

    ``request_method`` is the method of the request this answers: a response to HEAD has
    no body, a 2xx to CONNECT opens a tunnel. Every error carries status 502 (the backend
    broke the protocol); ``code`` says how. Other arguments as :func:`parse_request_head`.
    """
    if length is None:
        length = len(buf)
    rc, out, mask = _scan_ids(buf, length, last_len, False, limits.max_head,
                              limits.max_headers)
    if rc <= 0:
        if rc == 0:
            return None
        raise error(-rc, out[0], response=True)
    h = ResponseHead()
    h.buf = buf
    h.length = rc
    h.spans = out
    h.mask = mask
    h.status = status = out[1]
    minor = out[5]
    ids = out[8::5] if mask & _USED_BITS else _NO_IDS
    if mask & _FRAMING_BITS:
        _framing(h, buf, out, ids, mask, minor, True)
    else:
        h.body = _CLOSE_DELIMITED
        h.content_length = None
    if mask & _CONNECTION_BIT:
        tokens, keep_alive_11, keep_alive_10 = _connection(buf, out, ids, mask)
        h.keep_alive = keep_alive_11 if minor else keep_alive_10
    else:
        tokens = ()
        h.keep_alive = minor != 0
    h.connection_tokens = tokens
    h.is_informational = informational = status < 200
    h.tunnel = tunnel = request_method == b"CONNECT" and 200 <= status < 300
    if informational or tunnel or status == 204 or status == 304 or request_method == b"HEAD":
        h.body = _NONE
    if tunnel or h.body == _CLOSE_DELIMITED:
        h.keep_alive = False
    h.upgrade = None
    if status == 101 and mask & _UPGRADE_BIT and b"upgrade" in tokens:
        h.upgrade = b", ".join(_values(buf, out, ids, _UPGRADE))
    return h


#: mask bits that keep a response off the simple path: Transfer-Encoding, a second
#: Content-Length or Connection line, Keep-Alive (10), Upgrade
_NOT_SIMPLE: Final = (_TE_BIT | _CL_REPEATED | _CONNECTION_REPEATED | 1 << 10 | _UPGRADE_BIT)
_KEEP_ALIVE_TOKEN: Final = b"keep-alive"


def simple_response_head(
    buf: Buffer, length: int, limits: Limits = DEFAULT_LIMITS
) -> tuple[int, int, int, int, int] | None:
    """Classify the common keep-alive response in one pass, for a proxy's fast path.

    The simple kind: a complete and valid HTTP/1.1 head, a final status (200-599 but 204
    and 304), exactly one Content-Length, no Transfer-Encoding, no Keep-Alive or Upgrade
    field, and at most one Connection line, whose value is exactly ``keep-alive`` (any
    case). For that kind it means what :func:`parse_response_head` would say (body of
    Content-Length bytes, keep-alive, no field named by Connection) without building a
    head.

    Returns:
        ``(head length, status, content length, cut start, cut end)``, where
        ``buf[cut start:cut end]`` is the Connection line to drop (empty when there is
        none), or None for every other head, complete or not, valid or not: the caller
        then parses it with :func:`parse_response_head`, which reports errors and handles
        the rest. The answer does not depend on the request's method: a response to HEAD
        or CONNECT is the caller's to keep off this path.
    """
    return _simple(buf, length, limits.max_head, limits.max_headers)


def pure_simple_response(
    buf: Buffer, length: int, max_head: int, max_headers: int
) -> tuple[int, int, int, int, int] | None:
    """``simple_response_head`` over the active ``_scan_ids``: what the pure backend runs
    (the native one does it all in one C call, ``pysozu_simple_response``)."""
    rc, out, mask = _scan_ids(buf, length, 0, False, max_head, max_headers)
    if rc <= 0 or mask & _NOT_SIMPLE or not mask & _CL_BIT or out[5] != 1:
        return None
    status = out[1]
    if status < 200 or status > 599 or status == 204 or status == 304:
        return None
    ids = out[8::5]
    i = 11 + 5 * ids.index(_CONTENT_LENGTH)
    value = bytes(buf[out[i] : out[i + 1]])
    if not (0 < len(value) <= 18 and value.isdigit()):
        return None
    cut = cut_end = rc - 2
    if mask & _CONNECTION_BIT:
        k = ids.index(_CONNECTION)
        base = 8 + 5 * k
        if bytes(buf[out[base + 3] : out[base + 4]]).lower() != _KEEP_ALIVE_TOKEN:
            return None
        cut = out[base + 1]
        if k + 1 < out[6]:
            cut_end = out[base + 6]
    return rc, status, int(value), cut, cut_end


_simple: SimpleResponse = pure_simple_response


def _framing(h: _Head, buf: Buffer, out: list[int], ids: list[int], mask: int,
             minor: int, response: bool) -> None:
    """Content-Length and Transfer-Encoding: RFC 9112 §6.1-6.3 (see the tables above)."""
    content_length: int | None = None
    body = _CLOSE_DELIMITED if response else _NONE
    if mask & _CL_BIT:
        if mask & _TE_BIT:
            second = max(_nth(out, ids, _CONTENT_LENGTH, 0) or 0,
                         _nth(out, ids, _TRANSFER_ENCODING, 0) or 0)
            raise error("CL_TE", second, response=response)
        if mask & _CL_REPEATED:
            raise error("DUPLICATE_CL", _nth(out, ids, _CONTENT_LENGTH, 1), response=response)
        i = 11 + 5 * ids.index(_CONTENT_LENGTH)
        value = _bytes(buf, out[i], out[i + 1])
        if not (0 < len(value) <= 18 and value.isdigit()):
            raise error("BAD_CL", out[i], response=response)
        content_length = int(value)
        body = _LENGTH
    else:  # Transfer-Encoding
        at = out[9 + 5 * ids.index(_TRANSFER_ENCODING)]
        if not minor:
            raise error("TE_HTTP10", at, response=response)
        if mask & _TE_REPEATED:
            codings = _codings(_values(buf, out, ids, _TRANSFER_ENCODING))
        else:  # one line: its value is likely one the memo has
            i = 11 + 5 * ids.index(_TRANSFER_ENCODING)
            value = _bytes(buf, out[i], out[i + 1])
            if value in _CODINGS:
                codings = _CODINGS[value]
            else:
                codings = _codings([value])
                if len(value) <= _CODINGS_KEY_MAX:
                    remember(_CODINGS, value, codings)
        if codings is None:
            raise error("BAD_TE", at, response=response)
        if not response and any(c not in _KNOWN_CODINGS for c in codings):
            raise error("UNKNOWN_TE", at)  # RFC 9112 §6.1: 501 for a coding we cannot undo
        if codings.count(b"chunked") > 1:
            raise error("DUPLICATE_CHUNKED", at, response=response)
        if codings[-1] == b"chunked":
            body = _CHUNKED
        elif not response:  # §6.3: the request's length cannot be determined
            raise error("CHUNKED_NOT_FINAL", at)
        # a response whose final coding is not chunked is delimited by the close (§6.3)
    h.body = body
    h.content_length = content_length


_Connection = tuple[tuple[bytes, ...], bool, bool]


def _connection(buf: Buffer, out: list[int], ids: list[int],
                mask: int) -> _Connection:
    """The options of every Connection line, lowercase, in order (empty elements dropped),
    and whether they keep the connection in HTTP/1.1 (no ``close``) and in HTTP/1.0
    (``keep-alive`` and no ``close``). ``parse_request_head`` has the one-line case
    inline."""
    if mask & _CONNECTION_REPEATED:
        return _connection_lines(buf, out, ids)
    i = 11 + 5 * ids.index(_CONNECTION)
    value = buf[out[i] : out[i + 1]]
    if type(value) is not bytes:
        value = bytes(value)
    return _TOKENS.get(value) or _connection_value(value)


def _connection_value(value: bytes) -> _Connection:
    """_connection's answer for one Connection line, remembered (a handful of distinct
    values: keep-alive, close, upgrade...)."""
    known = _connection_of(_split_tokens([value]))
    remember(_TOKENS, value, known)
    return known


def _connection_lines(buf: Buffer, out: list[int], ids: list[int]) -> _Connection:
    return _connection_of(_split_tokens(_values(buf, out, ids, _CONNECTION)))


def _connection_of(tokens: tuple[bytes, ...]) -> _Connection:
    close = b"close" in tokens
    return tokens, not close, not close and b"keep-alive" in tokens


def _split_tokens(values: list[bytes]) -> tuple[bytes, ...]:
    return tuple(
        t for v in values for t in (p.strip(_OWS).lower() for p in v.split(b",")) if t
    )


# Memos of pure functions of a header value, for the values every request repeats (a
# proxy sees few distinct Host and Connection values). Bounded: a peer sending new values
# only makes them start over.
_MEMO_SIZE: Final = 1024
_VALID_HOSTS: Final[dict[bytes, bool]] = {}
_TOKENS: Final[dict[bytes, _Connection]] = {}  # a Connection value -> _connection's answer
_CODINGS: Final[dict[bytes, tuple[bytes, ...] | None]] = {}  # a Transfer-Encoding value -> _codings
_CODINGS_KEY_MAX: Final = 256  # longer values are not remembered: they are not the usual ones


def remember(memo: dict[_K, _T], key: _K, value: _T, size: int = _MEMO_SIZE) -> None:
    """Store in a memo of a pure function bounded to ``size`` entries: a full one starts
    over (a peer sending new values only makes it refill; the usual ones come back at
    once)."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value


def _codings(values: list[bytes]) -> tuple[bytes, ...] | None:
    """The lowercase coding names of Transfer-Encoding lines, or None if one is malformed.

    Empty list elements are skipped (RFC 9110 §5.6.1); an empty list is malformed, and so
    is any parameter on ``chunked`` (it has none) or a quoted string holding a comma, which
    a naive splitter elsewhere could cut in two.
    """
    codings = []
    for value in values:
        for element in value.split(b","):
            element = element.strip(_OWS)
            if not element:
                continue
            m = _CODING.fullmatch(element)
            if m is None:
                return None
            name = m.group(1).lower()
            if name == b"chunked" and m.group(2):
                return None
            codings.append(name)
    return tuple(codings) or None


def _is_authority(target: bytes) -> bool:
    """authority-form (RFC 9112 §3.2.3): host ":" port, both present, no userinfo."""
    return target[:1] != b":" and _AUTHORITY.fullmatch(target) is not None


def _values(buf: Buffer, out: list[int], ids: list[int], hid: int) -> list[bytes]:
    """The values of the header lines with id ``hid``, in order."""
    i = ids.index(hid)
    if ids.count(hid) == 1:  # the usual case: no scan of every line
        i = 11 + 5 * i
        return [bytes(buf[out[i] : out[i + 1]])]
    return [bytes(buf[out[11 + 5 * k] : out[12 + 5 * k]]) for k, x in enumerate(ids) if x == hid]


def _nth(out: list[int], ids: list[int], hid: int, nth: int) -> int | None:
    """The name offset of the ``nth`` (0-based) header line with id ``hid``, if any."""
    seen = 0
    for k, i in enumerate(ids):
        if i == hid:
            if seen == nth:
                return out[9 + 5 * k]
            seen += 1
    return None


# --- bodies -------------------------------------------------------------------------------

_MAX_CHUNK_LINE: Final = 4096
_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*+;[ \t]*+[%s]++(?:[ \t]*+=[ \t]*+(?:[%s]++|%s))?)*+" % (_TCHAR, _TCHAR, _QUOTED)
)
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_LF = re.compile(rb"\n")
_TRAILER_PREFIX: Final = b"HTTP/1.1 200 OK\r\n"
_FORBIDDEN_TRAILERS: Final = frozenset((_CONTENT_LENGTH, _TRANSFER_ENCODING, _HOST))

# ChunkedDecoder states
_SIZE: Final = 0  # reading "size[;ext]\r\n"
_DATA: Final = 1  # reading chunk data
_DATA_CR: Final = 2  # expecting the CR after chunk data
_DATA_LF: Final = 3  # expecting the LF after it
_TRAILERS: Final = 4  # reading the trailer section up to its empty line
_DONE: Final = 5


class ChunkedDecoder:
    """A sans-IO reader of a chunked body (RFC 9112 §7.1), fed as bytes arrive.

    ``feed`` consumes as much as it can and returns how many bytes it took; it never reads
    past the body's final CRLF, so what follows (a pipelined message) stays with the caller.
    After each call, ``data_spans`` lists the ``(start, end)`` offsets of payload bytes in
    the fed buffer, ready to be copied or re-framed (e.g. into HTTP/2 DATA frames).

    Everything is checked: hex sizes of at most 16 digits (no sign, no ``0x``, no space
    before the CRLF unless extensions follow), extensions ``;name[=token|quoted-string]``
    with optional whitespace around ``;`` and ``=``, CRLF (never a bare CR or LF) after the
    size line and the data, and trailer fields under the rules of heads (the same scanner
    checks them); Content-Length, Transfer-Encoding and Host are refused in trailers. A size
    line longer than 4096 bytes or a trailer section over ``limits.max_head`` is refused, so
    memory stays bounded whatever the peer sends.

    Attributes:
        done: the last chunk and the trailer section have been read.
        data_spans: payload spans of the last ``feed``.
        trailers: ``(name, value)`` of each trailer field, once ``done``.
        received: payload bytes so far.

    ``limits.max_body`` bounds request bodies only (413); a response body is the backend's
    business, as for Content-Length.
    """

    __slots__ = ("_last_len", "_limits", "_pending", "_remaining", "_response", "_state",
                 "data_spans", "done", "received", "trailers")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, *, response: bool = False) -> None:
        """``response``: the body comes from a backend, so errors carry status 502."""
        self._limits = limits
        self._response = response
        self._state = _SIZE
        self._remaining = 0
        self._pending = bytearray()
        self._last_len = 0
        self.done = False
        self.data_spans: list[tuple[int, int]] = []
        self.trailers: list[tuple[bytes, bytes]] = []
        self.received = 0

    @property
    def limits(self) -> Limits:
        """The limits this body is held to (what an answer to a refused body quotes)."""
        return self._limits

    def feed(self, data: Buffer, start: int = 0, end: int | None = None) -> int:
        """Consume body bytes from ``data[start:end]``; return how many were consumed.

        Raises:
            ParseError: the body breaks the chunked syntax or a limit.
        """
        if end is None:
            end = len(data)
        spans: list[tuple[int, int]] = []
        self.data_spans = spans
        pos = start
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                spans.append((pos, pos + take))
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_CR
            elif state == _SIZE:
                pos = self._size_line(data, pos, end)
            elif state == _DATA_CR:
                c = data[pos]
                if c != 13:
                    self._fail("BARE_LF_IN_BODY" if c == 10 else "BAD_CHUNK_END")
                pos += 1
                self._state = _DATA_LF
            elif state == _DATA_LF:
                if data[pos] != 10:
                    self._fail("BARE_CR_IN_BODY")
                pos += 1
                self._state = _SIZE
            elif state == _TRAILERS:
                pos = self._trailer_section(data, pos, end)
            else:
                break
        return pos - start

    def _fail(self, code: str) -> None:
        raise error(code, response=self._response)

    def _size_line(self, data: Buffer, pos: int, end: int) -> int:
        pending = self._pending
        room = _MAX_CHUNK_LINE - len(pending)
        limit = end if end - pos < room else pos + room
        m = _LF.search(data, pos, limit)
        if m is None:
            if limit - pos >= room:
                self._fail("CHUNK_LINE_TOO_LONG")
            pending += data[pos:end]
            return end
        lf = m.start()
        if pending:
            pending += data[pos : lf + 1]
            line = bytes(pending)
            pending.clear()
        else:
            line = bytes(data[pos : lf + 1])
        if len(line) < 2 or line[-2] != 13:
            self._fail("BARE_LF_IN_BODY")
        if 13 in line[:-2]:
            self._fail("BARE_CR_IN_BODY")
        hexits = _HEX.match(line)
        assert hexits is not None
        digits = hexits.end()
        if digits == 0:
            self._fail("BAD_CHUNK_SIZE")
        if digits > 16:
            self._fail("CHUNK_SIZE_TOO_LARGE")
        if digits != len(line) - 2 and _CHUNK_EXT.fullmatch(line, digits, len(line) - 2) is None:
            rest = line[digits:].lstrip(_OWS)
            self._fail("BAD_CHUNK_EXT" if rest[:1] == b";" else "BAD_CHUNK_SIZE")
        size = int(line[:digits], 16)
        self.received += size
        max_body = self._limits.max_body
        if max_body is not None and self.received > max_body and not self._response:
            raise error("BODY_TOO_LARGE", response=self._response)
        if size:
            self._remaining = size
            self._state = _DATA
        else:
            self._state = _TRAILERS
        return lf + 1

    def _trailer_section(self, data: Buffer, pos: int, end: int) -> int:
        pending = self._pending
        if not pending:
            if end - pos >= 2 and data[pos] == 13 and data[pos + 1] == 10:  # no trailers
                self._finish()
                return pos + 2
            pending += _TRAILER_PREFIX
        # Reuse the head scanner: the section is a head's header lines after a status line.
        cap = len(_TRAILER_PREFIX) + self._limits.max_head
        old = len(pending)
        take = min(end - pos, cap + 1 - old)  # one byte past the cap is enough to decide
        pending += data[pos : pos + take]
        rc, out = _scan(pending, len(pending), self._last_len, False, cap,
                        self._limits.max_headers)
        if rc == 0:
            self._last_len = len(pending)
            return pos + take
        if rc < 0:
            code = -rc
            name = ("TRAILERS_TOO_LARGE" if code == errors.HEAD_TOO_LARGE else
                    "TOO_MANY_TRAILERS" if code == errors.TOO_MANY_HEADERS else code)
            raise error(name, response=self._response)
        trailers = []
        for i in range(8, len(out), 5):
            if out[i] in _FORBIDDEN_TRAILERS:
                self._fail("FORBIDDEN_TRAILER")
            trailers.append((bytes(pending[out[i + 1] : out[i + 2]]),
                             bytes(pending[out[i + 3] : out[i + 4]])))
        self.trailers = trailers
        pending.clear()
        self._finish()
        return pos + (rc - old)

    def _finish(self) -> None:
        self._state = _DONE
        self.done = True


class LengthBody:
    """A body of ``Content-Length`` bytes, with :class:`ChunkedDecoder`'s interface."""

    __slots__ = ("data_spans", "done", "remaining")

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0
        self.data_spans: list[tuple[int, int]] = []

    def feed(self, data: Buffer, start: int = 0, end: int | None = None) -> int:
        """Take up to the remaining body bytes from ``data[start:end]``; return how many."""
        if end is None:
            end = len(data)
        take = min(self.remaining, end - start)
        self.data_spans = [(start, start + take)] if take > 0 else []
        if take > 0:
            self.remaining -= take
            self.done = not self.remaining
            return take
        return 0


# --- serializers --------------------------------------------------------------------------

LAST_CHUNK: Final = b"0\r\n\r\n"



def _check_limits(data: bytes, lines: int) -> Limits:
    """Limits that let the serializer's own check pass any size: the head's own length and
    header count (at least the default count, so that the native scanner's output buffer
    for it is reused)."""
    return Limits(max_head=len(data), max_headers=max(lines, DEFAULT_LIMITS.max_headers))


def _header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    lines: list[bytes] = []
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if not _FIELD_VALUE.fullmatch(value):
            raise ValueError(
                f"invalid value for {name!r}: {value!r} (control byte, or surrounding blanks "
                "a parser would strip)"
            )
        lines += (name, b": ", value, b"\r\n")
    return lines


def serialize_request_head(
    method: bytes, target: bytes, headers: Iterable[tuple[bytes, bytes]], version_minor: int = 1
) -> bytes:
    """The bytes of a request head, final CRLF included.

    Raises:
        ValueError: the head would be invalid or ambiguous: a bad token or value, or one
            that ``parse_request_head`` refuses (CL with TE, no Host in HTTP/1.1...).
    """
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"invalid method {method!r}")
    if not _TARGET.fullmatch(target):
        raise ValueError(f"invalid request target {target!r}")
    if not 0 <= version_minor <= 9:
        raise ValueError(f"invalid HTTP/1 minor version {version_minor!r}")
    lines = _header_lines(headers)
    data = b"".join([method, b" ", target, b" HTTP/1.%d\r\n" % version_minor, *lines, b"\r\n"])
    try:
        parse_request_head(data, limits=_check_limits(data, len(lines) // 4))
    except ParseError as e:
        raise ValueError(f"refusing to serialize a request the parser rejects: {e}") from None
    return data


def serialize_response_head(
    status: int, reason: bytes, headers: Iterable[tuple[bytes, bytes]], version_minor: int = 1,
    request_method: bytes = b"GET",
) -> bytes:
    """The bytes of a response head, final CRLF included.

    Raises:
        ValueError: as :func:`serialize_request_head`.
    """
    if not 100 <= status <= 999:
        raise ValueError(f"invalid status {status!r}")
    if not _REASON.fullmatch(reason):
        raise ValueError(f"invalid reason phrase {reason!r}")
    if not 0 <= version_minor <= 9:
        raise ValueError(f"invalid HTTP/1 minor version {version_minor!r}")
    lines = _header_lines(headers)
    data = b"".join([b"HTTP/1.%d %d " % (version_minor, status), reason, b"\r\n", *lines,
                     b"\r\n"])
    try:
        parse_response_head(data, request_method=request_method,
                            limits=_check_limits(data, len(lines) // 4))
    except ParseError as e:
        raise ValueError(f"refusing to serialize a response the parser rejects: {e}") from None
    return data


def serialize_chunk(data: Buffer) -> bytes:
    """One chunk holding ``data``; empty data gives ``b""`` (an empty chunk would end the
    body: use :data:`LAST_CHUNK` or :func:`serialize_last_chunk` for that)."""
    if not len(data):
        return b""
    return b"%x\r\n%s\r\n" % (len(data), bytes(data))


def serialize_last_chunk(trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """The last chunk and the trailer section.

    Raises:
        ValueError: a bad field, or a field not allowed in trailers (framing, Host).
    """
    lines = _header_lines(trailers)
    for name in lines[0::4]:
        if _pyscan.HEADER_IDS.get(name.lower(), 0) in _FORBIDDEN_TRAILERS:
            raise ValueError(f"{name!r} is not allowed in trailers")
    return b"".join([b"0\r\n", *lines, b"\r\n"])
