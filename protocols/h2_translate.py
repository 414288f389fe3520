"""HTTP/2 messages to HTTP/1.1 bytes and back, for one stream: validation and translation.

Theory of operation
-------------------
An HTTP/2 stream (RFC 9113) is served by the HTTP/1.1 proxy machine (``http.py``): its
request is written to that machine as HTTP/1.1 bytes, and the HTTP/1.1 response bytes the
machine writes back are read here and turned into HTTP/2 HEADERS, DATA and trailers. So
routing, header rules, retries and access logs exist once. This module is sans-IO and pure
(h11's rule): field lists and bytes in, bytes, events or exceptions out; no socket, no
clock. A message HTTP/2 calls malformed (RFC 9113 §8.1.1) raises :class:`MalformedMessage`,
which the connection turns into a stream error of type PROTOCOL_ERROR; a bad HTTP/1.1
response raises ``ParseError`` with status 502, as in ``http.py``.

Request fields (:func:`request_to_h1`), checked in one pass over the decoded list:

* **Names** (§8.2, §8.2.1): tokens of RFC 9110 tchar, lowercase (an uppercase letter is
  malformed: HPACK does not fold case); a leading ``:`` only on the four request
  pseudo-headers ``:method``, ``:scheme``, ``:authority``, ``:path`` (§8.3.1), each at most
  once and all before the first regular field (§8.3). ``:status`` and unknown ones, among
  them ``:protocol`` (no extended CONNECT here), are malformed.
* **Values** (§8.2.1): no NUL, CR or LF (they would split an HTTP/1.1 line: request
  smuggling), no leading or trailing SP/HTAB; the other control bytes (and DEL) are refused
  too, since the HTTP/1.1 parser refuses them; obs-text (0x80-0xFF) passes.
* **Connection-specific fields** (§8.2.2): ``connection``, ``proxy-connection``,
  ``keep-alive``, ``transfer-encoding`` and ``upgrade`` are malformed; ``te`` only with the
  value ``trailers``, which is forwarded.
* **Control data** (§8.3.1): ``:method`` a token; ``:scheme`` ``ALPHA *(ALPHA / DIGIT / "+"
  / "-" / ".")`` (RFC 3986 §3.1; not forwarded: an origin-form target has none); ``:path``
  non-empty visible ASCII (it becomes the request-target, where a space or a control byte
  would change the request line), starting with ``/``, or ``*`` for OPTIONS only.
  CONNECT (§8.5) is refused unless the caller allows it; then only ``:method`` and
  ``:authority`` may be there, and the head is ``CONNECT authority HTTP/1.1``.
* **Host** (§8.3.1, RFC 9110 §7.2): ``:authority``, else the ``host`` field, becomes the
  first header line, ``Host: ...``; a ``host`` field that differs from ``:authority``
  (case-insensitive), a second ``host`` field, or userinfo (``@``) in the authority are
  malformed. With neither there is no Host line, and the HTTP/1.1 machine answers 400, as
  it does for a bad Host value (the authority's syntax is its business).
* **Cookie** (§8.2.3): HPACK may split the cookie into several fields, which HTTP/1.1
  does not allow; they are joined with ``"; "`` into one line, where the first one was.
* **Framing** (§8.1, RFC 9112 §6): HTTP/2 frames the body; HTTP/1.1 needs it said in the
  head. ``content-length`` must be 1 to 18 digits; several values (fields or a list) that
  are all equal fold into one line, different ones are malformed, and so is a non-zero
  one on a stream that ends with its HEADERS (§8.1.1). Then:

  ================================  =========================================
  Request                           Head gets
  ================================  =========================================
  content-length present            that one line (the DATA must match it)
  ends with HEADERS, POST/PUT/PATCH ``Content-Length: 0`` (no backend waits)
  ends with HEADERS, other methods  nothing
  DATA follows, no content-length   ``Transfer-Encoding: chunked``
  ================================  =========================================

  and the body goes through :func:`encode_chunk` and :func:`trailers_to_h1` when chunked.

Trailers (:func:`trailers_to_h1`) follow the name and value rules; pseudo-headers (§8.1),
the framing and routing fields (``content-length``, ``transfer-encoding``, ``host``: RFC
9110 §6.5.1) and the connection-specific ones (``te`` included) are malformed.

Responses: :class:`H1ResponseReader` reads what the HTTP/1.1 machine writes, in any pieces,
with the shared parser (``parse_response_head``, ``LengthBody``, ``ChunkedDecoder``), and
yields events: 1xx heads (informational HEADERS; a 101 cannot happen over HTTP/2, §8.6),
the final head (:func:`response_headers`: ``:status`` first, names lowercased, the
connection-specific fields, ``te`` among them, and those the Connection field names
dropped; a 2xx to CONNECT is read as a close-delimited tunnel), body payload without the chunk
framing, then the end of the stream: on the last DATA, or as trailers.
"""

from __future__ import annotations

import re
from typing import Final

from pysozu.parser import HEADER_IDS
from pysozu.parser._pyscan import REPEATED_SHIFT
from pysozu.parser.errors import ParseError
from pysozu.parser.h1 import (
    DEFAULT_LIMITS,
    LAST_CHUNK,
    BodyKind,
    Buffer,
    ChunkedDecoder,
    LengthBody,
    Limits,
    RequestHead,
    ResponseHead,
    parse_response_head,
    remember,
    trusted_request_head,
)
from pysozu.parser.h2_hpack import encode_field, encode_unique_field

__all__ = [
    "CONNECTION_FIELDS",
    "LAST_CHUNK",
    "H1Request",
    "H1ResponseReader",
    "Header",
    "MalformedMessage",
    "ResponseData",
    "ResponseEvent",
    "ResponseHeaders",
    "ResponseTrailers",
    "content_length_value",
    "encode_chunk",
    "h2_fields",
    "request_to_h1",
    "response_headers",
    "trailers_to_h1",
]

Header = tuple[bytes, bytes]


class MalformedMessage(Exception):
    """RFC 9113 §8.1.1: a malformed request/response/trailers -> stream error PROTOCOL_ERROR.

    ``reason`` says which rule was broken, for logs and tests.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Record:
    """Equality and repr by ``_key``, for the plain classes of this module: not
    dataclasses, because compiled, a dataclass's generated ``__init__`` would still run as
    Python bytecode, once per request."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._key()!r}"


class H1Request(_Record):
    """An HTTP/2 request as the HTTP/1.1 machine will read it.

    Attributes:
        head: the HTTP/1.1 request head, final CRLF included.
        method: the ``:method``.
        chunked: the body must be sent chunk-encoded (:func:`encode_chunk`, then
            :data:`LAST_CHUNK` or :func:`trailers_to_h1`): no content-length, and the
            stream did not end with the HEADERS.
        content_length: the request's own content-length, if it had one (the DATA of the
            stream must add up to it, §8.1.1); None when it had none, even when the head
            got ``Content-Length: 0`` for an empty POST.
        authority: ``:authority``, else the ``host`` field; ``b""`` when neither.
        spans, mask, target: what the scanner would say of ``head`` (SCANNER.md) and its
            request target, known while writing it, for ``h1.trusted_request_head``; None
            for a request made by hand. Not part of equality (they follow from ``head``).
    """

    __slots__ = ("authority", "chunked", "content_length", "head", "mask", "method", "spans",
                 "target")

    def __init__(self, head: bytes, method: bytes, chunked: bool, content_length: int | None,
                 authority: bytes, spans: list[int] | None = None, mask: int = 0,
                 target: bytes | None = None) -> None:
        self.head = head
        self.method = method
        self.chunked = chunked
        self.content_length = content_length
        self.authority = authority
        self.spans = spans
        self.mask = mask
        self.target = target

    def _key(self) -> tuple[object, ...]:
        return (self.head, self.method, self.chunked, self.content_length, self.authority)

    def trusted_head(self, buf: Buffer, limits: Limits) -> RequestHead | None:
        """``h1.trusted_request_head`` of this request's head, now at the start of ``buf``:
        the parsed head without a parse, or None when the parser must read it."""
        spans = self.spans
        if spans is None:
            return None
        content_length = self.content_length
        if content_length is None and self.mask & _CONTENT_LENGTH_BIT:
            content_length = 0  # the "Content-Length: 0" of a POST without body
        return trusted_request_head(buf, len(self.head), spans, self.mask, self.authority,
                                    content_length, limits, self.method, self.target)


# --- validation -----------------------------------------------------------------------------

_TCHAR_LOWER = rb"!#$%&'*+\-.^_`|~0-9a-z"
_NAME = re.compile(rb"[%s]+" % _TCHAR_LOWER)
_UPPER = re.compile(rb"[A-Z]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")
# field-value of RFC 9110 §5.5 as the HTTP/1.1 parser takes it, with §8.2.1's rules: no
# control byte but HTAB inside, none of SP/HTAB at either end; obs-text allowed.
_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
_NUL_CR_LF = re.compile(rb"[\x00\r\n]")
_OWS: Final = b" \t"

# What request_to_h1 does with a name other than "append the line".
_METHOD: Final = 1
_SCHEME_: Final = 2
_AUTHORITY: Final = 3
_PATH: Final = 4
_HOST: Final = 5
_COOKIE: Final = 6
_CONTENT_LENGTH: Final = 7
_TE: Final = 8
_CONNECTION_SPECIFIC: Final = 9
_SPECIAL: Final[dict[bytes, int]] = {
    b":method": _METHOD,
    b":scheme": _SCHEME_,
    b":authority": _AUTHORITY,
    b":path": _PATH,
    b"host": _HOST,
    b"cookie": _COOKIE,
    b"content-length": _CONTENT_LENGTH,
    b"te": _TE,
    b"connection": _CONNECTION_SPECIFIC,
    b"proxy-connection": _CONNECTION_SPECIFIC,
    b"keep-alive": _CONNECTION_SPECIFIC,
    b"transfer-encoding": _CONNECTION_SPECIFIC,
    b"upgrade": _CONNECTION_SPECIFIC,
}
#: the connection-specific fields of RFC 9113 §8.2.2, which HTTP/2 never carries
CONNECTION_FIELDS: Final = frozenset(
    (b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te")
)
# RFC 9110 §6.5.1 (framing, routing) and §8.2.2 (connection-specific): never in trailers.
_FORBIDDEN_TRAILERS: Final = CONNECTION_FIELDS | {b"content-length", b"host"}
_BODY_METHODS: Final = frozenset((b"POST", b"PUT", b"PATCH"))
_PSEUDO_REQUEST: Final = frozenset((b":method", b":scheme", b":authority", b":path"))
#: (name, value) fields whose syntax passed (a regular field, :method, :scheme,
#: :authority or :path; each name has one rule), with a regular field's HTTP/1.1 line: clients
#: send the same fields on every request (HPACK indexes them for that), and a lookup is
#: cheaper than two regular expressions and a line to build. Bounded in field size and in
#: count (emptied when full).
_CHECKED: Final[dict[tuple[bytes, bytes], bytes]] = {}
# scanner header ids of the lines request_to_h1 writes itself (SCANNER.md)
_HOST_ID: Final = HEADER_IDS[b"host"]
_COOKIE_ID: Final = HEADER_IDS[b"cookie"]
_CONTENT_LENGTH_ID: Final = HEADER_IDS[b"content-length"]
_TRANSFER_ENCODING_ID: Final = HEADER_IDS[b"transfer-encoding"]
_TE_ID: Final = HEADER_IDS[b"te"]
_CONTENT_LENGTH_BIT: Final = 1 << _CONTENT_LENGTH_ID
_REPEAT_COUNTED_MAX: Final = HEADER_IDS[b"expect"]  # ids 1-6 have a "repeated" bit
_CHECKED_MAX: Final = 4096
_CHECKED_FIELD_MAX: Final = 256


def _bad_name(name: bytes) -> MalformedMessage:
    """Why ``name`` is not a field name a request may carry (the slow path)."""
    if name[:1] == b":":
        if name in _PSEUDO_REQUEST:
            return MalformedMessage(f"pseudo-header {name!r} after a regular field")
        return MalformedMessage(f"pseudo-header {name!r} not allowed in a request")
    if _UPPER.search(name):
        return MalformedMessage(f"uppercase in field name {name!r}")
    return MalformedMessage(f"invalid field name {name!r}")


def _bad_value(name: bytes, value: bytes) -> MalformedMessage:
    """Why ``value`` is not a field value (the slow path)."""
    if _NUL_CR_LF.search(value):
        return MalformedMessage(f"NUL, CR or LF in the value of {name!r}")
    if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
        return MalformedMessage(f"leading or trailing whitespace in the value of {name!r}")
    return MalformedMessage(f"control byte in the value of {name!r}")


def content_length_value(value: bytes) -> int:
    """RFC 9110 §8.6: 1*DIGIT (at most 18, so it fits an int64), or a list of equal ones."""
    if 0 < len(value) <= 18 and value.isdigit():
        return int(value)
    found: int | None = None
    for element in value.split(b","):
        element = element.strip(_OWS)
        if not (0 < len(element) <= 18 and element.isdigit()):
            raise MalformedMessage(f"invalid content-length {value!r}")
        n = int(element)
        if found is not None and n != found:
            raise MalformedMessage(f"content-length values differ: {value!r}")
        found = n
    assert found is not None  # split gives at least one element
    return found


# --- requests -------------------------------------------------------------------------------


def request_to_h1(
    headers: list[Header], *, end_stream: bool, connect_allowed: bool = False
) -> H1Request:
    """Validate a request's decoded field list and build its HTTP/1.1 head.

    ``end_stream``: the HEADERS frame ended the stream (no body). ``connect_allowed``: the
    caller can tunnel a CONNECT stream (RFC 9113 §8.5); otherwise CONNECT is refused.

    Raises:
        MalformedMessage: the request is malformed (RFC 9113 §8.1.1, §8.2, §8.3).
    """
    method: bytes | None = None
    scheme: bytes | None = None
    authority: bytes | None = None
    path: bytes | None = None
    host_seen = False
    regular = False
    cookie_at = -1
    cookies: list[bytes] = []
    content_length: int | None = None
    path_field = (b"", b"")
    path_known = False
    # slot 0: the request line, slot 1: the Host line; both known only at the end. Then one
    # line per slot, whose header id and name length are in ``meta`` (for the spans)
    parts: list[bytes] = [b"", b""]
    meta: list[int] = []
    # no local aliases of bound methods (``get = d.get``): compiled, a direct call of a dict
    # method or a regular expression is cheaper than making and calling the bound method
    checked = _CHECKED
    for field in headers:
        name, value = field
        kind = _SPECIAL.get(name)
        if kind is None:
            line = checked.get(field)
            if line is None:
                if _NAME.fullmatch(name) is None:
                    raise _bad_name(name)
                if _VALUE.fullmatch(value) is None:
                    raise _bad_value(name, value)
                line = b"%s: %s\r\n" % (name, value)
                if len(name) + len(value) <= _CHECKED_FIELD_MAX:
                    remember(checked, field, line, _CHECKED_MAX)
            parts.append(line)
            meta += (HEADER_IDS.get(name, 0), len(name))
            regular = True
            continue
        if kind <= _PATH:  # a pseudo-header
            if regular:
                raise _bad_name(name)
            known = field in checked
            if kind == _METHOD:
                if method is not None:
                    raise MalformedMessage("more than one :method")
                if not known and _TOKEN.fullmatch(value) is None:
                    raise MalformedMessage(f"invalid :method {value!r}")
                method = value
            elif kind == _PATH:
                if path is not None:
                    raise MalformedMessage("more than one :path")
                path = value
                path_field = field
                path_known = known
                known = True  # checked after the loop (CONNECT has its own rules)
            elif kind == _AUTHORITY:
                if authority is not None:
                    raise MalformedMessage("more than one :authority")
                if not known:
                    if _VALUE.fullmatch(value) is None:
                        raise _bad_value(name, value)
                    if value.find(b"@") >= 0:
                        raise MalformedMessage("userinfo in the authority")
                authority = value
            else:
                if scheme is not None:
                    raise MalformedMessage("more than one :scheme")
                if not known and _SCHEME.fullmatch(value) is None:
                    raise MalformedMessage(f"invalid :scheme {value!r}")
                scheme = value
            if not known and len(value) <= _CHECKED_FIELD_MAX:
                remember(checked, field, b"", _CHECKED_MAX)
            continue
        regular = True
        if _VALUE.fullmatch(value) is None:
            raise _bad_value(name, value)
        if kind == _COOKIE:
            if cookie_at < 0:
                cookie_at = len(parts)  # the line's slot, written at the end
                parts.append(b"")
                meta += (_COOKIE_ID, 6)
            cookies.append(value)
        elif kind == _HOST:
            if host_seen:
                raise MalformedMessage("more than one host field")
            host_seen = True
            if authority is None:
                authority = value
            elif value.lower() != authority.lower():
                raise MalformedMessage("host differs from :authority")
        elif kind == _CONTENT_LENGTH:
            n = content_length_value(value)
            if content_length is None:
                content_length = n
                parts.append(b"content-length: %d\r\n" % n)  # one line for equal values
                meta += (_CONTENT_LENGTH_ID, 14)
            elif n != content_length:
                raise MalformedMessage("content-length values differ")
        elif kind == _TE:
            if value.lower() != b"trailers":
                raise MalformedMessage(f"te other than trailers: {value!r}")
            parts.append(b"te: %s\r\n" % value)
            meta += (_TE_ID, 2)
        else:
            raise MalformedMessage(f"connection-specific field {name!r}")

    if method is None:
        raise MalformedMessage("missing :method")
    chunked = False
    if method == b"CONNECT":
        if not connect_allowed:
            raise MalformedMessage("CONNECT is not supported over HTTP/2 here")
        if scheme is not None or path is not None:
            raise MalformedMessage("CONNECT with :scheme or :path")
        if authority is None or _TARGET.fullmatch(authority) is None:
            raise MalformedMessage("CONNECT without a valid :authority")
        if content_length is not None:
            raise MalformedMessage("content-length in a CONNECT request")
        target = authority
    else:
        if scheme is None:
            raise MalformedMessage("missing :scheme")
        if path is None:
            raise MalformedMessage("missing :path")
        if not path:
            raise MalformedMessage("empty :path")
        if not path_known:
            if _TARGET.fullmatch(path) is None:
                raise MalformedMessage(f"invalid :path {path!r}")
            if len(path) <= _CHECKED_FIELD_MAX:
                remember(checked, path_field, b"", _CHECKED_MAX)
        if path[0] != 47 and not (path == b"*" and method == b"OPTIONS"):  # 47: "/"
            raise MalformedMessage(f":path {path!r} is neither origin-form nor * for OPTIONS")
        target = path
        if content_length is not None:
            if end_stream and content_length:
                raise MalformedMessage("non-zero content-length on a stream without DATA")
        elif not end_stream:
            parts.append(b"Transfer-Encoding: chunked\r\n")
            meta += (_TRANSFER_ENCODING_ID, 17)
            chunked = True
        elif method in _BODY_METHODS:
            parts.append(b"Content-Length: 0\r\n")
            meta += (_CONTENT_LENGTH_ID, 14)
    # (:authority was checked above) find, not ``in``: bytes.__contains__ first tries its
    # argument as an integer, and the TypeError it formats and drops costs more than a search
    if host_seen and authority is not None and authority.find(b"@") >= 0:
        raise MalformedMessage("userinfo in the authority")

    request_line = parts[0] = b"%s %s HTTP/1.1\r\n" % (method, target)
    if cookie_at >= 0:
        parts[cookie_at] = b"cookie: %s\r\n" % (
            b"; ".join([c for c in cookies if c]) if len(cookies) > 1 else cookies[0])
    # the spans the scanner would write for this head (SCANNER.md), and its id mask
    n = len(meta) >> 1
    pos = len(request_line)
    mask = 0
    spans = [0, 0, len(method), len(method) + 1, len(method) + 1 + len(target), 1, n, 0]
    if authority is not None:
        host_line = parts[1] = b"Host: %s\r\n" % authority
        spans[6] = n + 1
        spans += (_HOST_ID, pos, pos + 4, pos + 6, pos + len(host_line) - 2)
        pos += len(host_line)
        mask = 1 << _HOST_ID
    for k in range(n):
        line = parts[k + 2]
        hid = meta[2 * k]
        name_end = pos + meta[2 * k + 1]
        spans += (hid, pos, name_end, name_end + 2, pos + len(line) - 2)
        pos += len(line)
        bit = 1 << hid
        if mask & bit and 0 < hid <= _REPEAT_COUNTED_MAX:
            mask |= bit << REPEATED_SHIFT
        mask |= bit
    parts.append(b"\r\n")
    return H1Request(
        head=b"".join(parts),
        method=method,
        chunked=chunked,
        content_length=content_length,
        authority=b"" if authority is None else authority,
        spans=spans,
        mask=mask,
        target=target,
    )


def trailers_to_h1(headers: list[Header]) -> bytes:
    """The last chunk and the trailer section of a chunked HTTP/1.1 body.

    Raises:
        MalformedMessage: a pseudo-header, a bad name or value, or a field not allowed in
            trailers (framing, routing, connection-specific).
    """
    if not headers:
        return LAST_CHUNK
    parts: list[bytes] = [b"0\r\n"]
    for name, value in headers:
        if _NAME.fullmatch(name) is None:
            if name[:1] == b":":
                raise MalformedMessage(f"pseudo-header {name!r} in trailers")
            raise _bad_name(name)
        if _VALUE.fullmatch(value) is None:
            raise _bad_value(name, value)
        if name in _FORBIDDEN_TRAILERS:
            raise MalformedMessage(f"{name!r} not allowed in trailers")
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def encode_chunk(data: bytes | memoryview) -> bytes:
    """One chunk holding ``data`` (one copy); ``b""`` for empty data, which as a chunk
    would end the body."""
    n = len(data)
    if not n:
        return b""
    return b"".join((b"%x\r\n" % n, data, b"\r\n"))


# --- responses ------------------------------------------------------------------------------

# Header ids (SCANNER.md) of the fields HTTP/2 must not carry (RFC 9113 §8.2.2).
_HOP_IDS: Final = frozenset(HEADER_IDS[n] for n in CONNECTION_FIELDS)
#: field name as a backend spelled it -> lowercase (bounded: a backend sending random names
#: only makes the misses lower their name each time)
_LOWERED: Final[dict[bytes, bytes]] = {}
_LOWERED_MAX: Final = 512


def h2_fields(
    head: RequestHead | ResponseHead, buf: bytes | bytearray | memoryview, *,
    keep_te_trailers: bool = False,
) -> list[Header]:
    """The fields of an HTTP/1.x head parsed over ``buf``, for HTTP/2: names lowercased
    (§8.2), values as received, without the connection-specific fields and those the
    Connection field names (RFC 9110 §7.6.1). ``keep_te_trailers``: a request keeps
    ``te: trailers``, the one TE value HTTP/2 allows (§8.2.2)."""
    fields: list[Header] = []
    tokens = head.connection_tokens
    hop = _HOP_IDS
    lowered = _LOWERED
    s: list[int] = list(head.spans)
    # slices of bytes are one allocation each; of a memoryview, two
    data = buf if isinstance(buf, bytes) else bytes(buf[: head.length])
    for i in range(8, len(s), 5):
        if s[i] in hop:
            value = data[s[i + 3] : s[i + 4]]
            if not (keep_te_trailers and s[i] == _TE_ID and value.lower() == b"trailers"):
                continue
            fields.append((b"te", value))
            continue
        raw = data[s[i + 1] : s[i + 2]]
        name = lowered.get(raw)
        if name is None:
            name = raw.lower()
            if len(lowered) < _LOWERED_MAX:
                lowered[raw] = name
        if tokens and name in tokens:
            continue
        fields.append((name, data[s[i + 3] : s[i + 4]]))
    return fields


def _trusted_fields(head: bytes, id_line: bytes = b"", id_field: Header = (b"", b""),
                    encoded: list[bytes] | None = None) -> list[Header]:
    """The HTTP/2 fields of a response head this proxy wrote itself from a parsed one
    (``H1ResponseReader.expect_head``): every line is known to be ``name:OWS value OWS``;
    names are lowercased and the connection-specific fields dropped, as :func:`h2_fields`
    does (the fields a Connection header named were already left out of the head).

    A backend repeats most of its lines from response to response (server, content type,
    length, the date within a second): each short line's field is kept in a cache, so a
    repeated line costs one lookup and hands over the same tuple (which the HPACK encoder's
    own cache then finds by identity). ``id_line`` is the line with the request id the
    proxy added, whose field is ``id_field``: it never repeats, so it is not cached, nor
    are the backend's lines that end with the same id (an echoed X-Request-Id). The cache
    is emptied when full: other lines that never repeat only make it start over now and
    then. ``encoded``, when given, gets each field's HPACK representation (cached with the
    field: the encoder is stateless, so a field is always written the same way)."""
    fields: list[Header] = []
    cache = _LINE_FIELDS
    lines = head.split(b"\r\n")
    for k in range(1, len(lines) - 2):  # after the status line, before the empty line
        line = lines[k]
        entry = cache.get(line)
        if entry is None:
            if line == id_line:
                fields.append(id_field)
                if encoded is not None:
                    encoded.append(encode_unique_field(id_field))
                continue
            field = _line_field(line)
            entry = (field, encode_field(field) if field[0] else b"")
            if len(line) <= _LINE_CACHE_LINE_MAX and not (
                    id_line and line.endswith(id_field[1])):
                remember(cache, line, entry, _LINE_CACHE_MAX)
        field = entry[0]
        if field[0]:  # an empty name: a dropped line
            fields.append(field)
            if encoded is not None:
                encoded.append(entry[1])
    return fields


def _line_field(line: bytes) -> Header:
    """One trusted ``name:OWS value OWS`` line as a field; ``(b"", b"")`` for a
    connection-specific one."""
    colon = line.find(b":")
    name = line[:colon].lower()
    if name in CONNECTION_FIELDS:
        return (b"", b"")
    return (name, line[colon + 1 :].strip(b" \t"))


#: status code -> its ``:status`` field
_STATUS_FIELDS: Final[dict[int, tuple[Header, bytes]]] = {}
#: trusted response line -> its field (empty name: dropped); see _trusted_fields
_LINE_FIELDS: Final[dict[bytes, tuple[Header, bytes]]] = {}
_LINE_CACHE_MAX: Final = 4096
_LINE_CACHE_LINE_MAX: Final = 256


def response_headers(head: ResponseHead, buf: bytes | bytearray | memoryview) -> list[Header]:
    """The HTTP/2 field list of an HTTP/1.x response head parsed over ``buf``: ``:status``
    first, then :func:`h2_fields`."""
    return [(b":status", b"%d" % head.status), *h2_fields(head, buf)]


class ResponseHeaders(_Record):
    """A response head for a HEADERS frame: a 1xx (``informational``), or the final one
    (``end_stream`` when it has no body). ``block``: the HPACK header block of ``headers``
    when the reader already has it (a trusted head: each line's encoding is cached with its
    field), else None; not part of equality (it follows from ``headers``)."""

    __slots__ = ("block", "end_stream", "headers", "informational")

    def __init__(self, headers: list[Header], end_stream: bool, informational: bool,
                 block: bytes | None = None) -> None:
        self.headers = headers
        self.end_stream = end_stream
        self.informational = informational
        self.block = block

    def _key(self) -> tuple[object, ...]:
        return (self.headers, self.end_stream, self.informational)


class ResponseData(_Record):
    """Body payload for DATA frames (may be empty when it only ends the stream)."""

    __slots__ = ("data", "end_stream")

    def __init__(self, data: bytes, end_stream: bool) -> None:
        self.data = data
        self.end_stream = end_stream

    def _key(self) -> tuple[object, ...]:
        return (self.data, self.end_stream)


class ResponseTrailers(_Record):
    """The trailer section of a chunked body: a HEADERS frame that ends the stream."""

    __slots__ = ("headers",)

    def __init__(self, headers: list[Header]) -> None:
        self.headers = headers

    def _key(self) -> tuple[object, ...]:
        return (self.headers,)


ResponseEvent = ResponseHeaders | ResponseData | ResponseTrailers

# H1ResponseReader states
_HEAD: Final = 0  # reading heads (1xx, then the final one)
_BODY: Final = 1  # reading a Content-Length or chunked body
_CLOSE: Final = 2  # reading a close-delimited body (or a CONNECT tunnel)
_DONE: Final = 3


def _truncated() -> ParseError:
    return ParseError(502, "response truncated", "TRUNCATED")


class H1ResponseReader:
    """The HTTP/1.1 response one stream's HTTP/1 machine writes, turned into HTTP/2 events.

    Sans-IO: ``feed`` takes every byte it is given (a partial head is kept until it is
    complete, body bytes are passed on at once), ``eof`` says the writer closed. Bytes after
    the end of the final response are ignored: the writer sends none.
    """

    __slots__ = ("_body", "_buf", "_hint", "_last_len", "_limits", "_method", "_state", "done")

    def __init__(self, request_method: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
        """``request_method``: a response to HEAD has no body (RFC 9110 §9.3.2)."""
        self._method = request_method
        self._limits = limits
        self._state = _HEAD
        self._buf = bytearray()  # a partial head
        self._last_len = 0
        self._body: LengthBody | ChunkedDecoder | None = None
        self._hint: tuple[bytes, int, BodyKind, int, bytes, Header] | None = None
        self.done = False

    def expect_head(self, head: bytes, status: int, body: BodyKind, content_length: int,
                    id_line: bytes = b"", id_field: Header = (b"", b"")) -> None:
        """Say that the next bytes fed are exactly ``head``, a final response head the
        HTTP/1.1 machine made from one it parsed, with that status and framing (the
        parser's ``body``, a tunnel as ``CLOSE_DELIMITED``). The reader then takes the
        fields from those trusted lines instead of parsing the head a second time; bytes
        that are not that head are parsed as usual. ``id_line``: the line (without its
        CRLF) in which the proxy wrote the request id, whose field is ``id_field``: it is
        new at every response, so it is neither parsed nor cached."""
        self._hint = (head, status, body, content_length, id_line, id_field)

    def feed(self, data: Buffer) -> list[ResponseEvent]:
        """Consume all of ``data``; return the events it completes.

        Raises:
            ParseError: an invalid response (status 502).
            MalformedMessage: a 101, which HTTP/2 cannot carry (RFC 9113 §8.6).
        """
        events: list[ResponseEvent] = []
        if not len(data):
            return events
        state = self._state
        start = 0
        if state == _HEAD:
            hint = self._hint
            if hint is not None:
                self._hint = None
                head = hint[0]
                if not self._buf and (data is head or (
                        isinstance(data, memoryview) and data.obj is head
                        and len(data) == len(head))):
                    status = _STATUS_FIELDS.get(hint[1])
                    if status is None:  # at most 900 of them (100-999)
                        field = (b":status", b"%d" % hint[1])
                        status = _STATUS_FIELDS[hint[1]] = (field, encode_field(field))
                    encoded = [status[1]]
                    fields = [status[0], *_trusted_fields(head, hint[4], hint[5], encoded)]
                    self._start_body(fields, hint[2], hint[3], events, b"".join(encoded))
                    return events
            buf = self._buf
            if buf:
                buf += data
                data = buf
            start = self._heads(data, events)
            if start < 0:
                return events
            state = self._state
        if state == _BODY:
            self._read_body(data, start, events)
        elif state == _CLOSE and start < len(data):
            events.append(ResponseData(bytes(data[start:]), False))
        if self._buf:
            self._buf.clear()
        return events

    def eof(self) -> list[ResponseEvent]:
        """The writer closed: end a close-delimited body, else the response must be done.

        Raises:
            ParseError: the response is incomplete (``code`` ``"TRUNCATED"``, status 502).
        """
        if self.done:
            return []
        if self._state == _CLOSE:
            self._finish()
            return [ResponseData(b"", True)]
        raise _truncated()

    def _finish(self) -> None:
        self._state = _DONE
        self.done = True
        self._body = None

    def _heads(self, data: Buffer, events: list[ResponseEvent]) -> int:
        """Read heads from ``data``: the offset where the body starts (the state says if
        there is one), or -1 when the head is incomplete (then kept in ``_buf``)."""
        buf = self._buf
        buffered = data is buf
        pos = 0
        limits = self._limits
        method = self._method
        while True:
            view = data if pos == 0 else memoryview(data)[pos:]
            head = parse_response_head(
                view, last_len=self._last_len, request_method=method, limits=limits
            )
            if head is None:
                if not buffered:
                    buf += view
                self._last_len = len(buf)
                return -1
            self._last_len = 0
            status = head.status
            if status == 101:
                raise MalformedMessage("101 over HTTP/2")
            fields = response_headers(head, view)
            pos += head.length
            if head.is_informational:
                events.append(ResponseHeaders(fields, False, True))
                if buffered:  # keep parsing at offset 0 of our own buffer
                    del view, head
                    del buf[:pos]
                    pos = 0
                continue
            body = head.body
            if head.tunnel:  # a 2xx to CONNECT: the bytes after are the tunnel's
                body = BodyKind.CLOSE_DELIMITED
            self._start_body(fields, body, head.content_length or 0, events)
            return pos

    def _start_body(self, fields: list[Header], body: BodyKind, content_length: int,
                    events: list[ResponseEvent], block: bytes | None = None) -> None:
        """The final head is read: its HEADERS event (with its header block when the
        caller has it), and the state for what follows."""
        if body == BodyKind.NONE or (body == BodyKind.LENGTH and not content_length):
            events.append(ResponseHeaders(fields, True, False, block))
            self._finish()
            return
        events.append(ResponseHeaders(fields, False, False, block))
        if body == BodyKind.LENGTH:
            self._body = LengthBody(content_length)
            self._state = _BODY
        elif body == BodyKind.CHUNKED:
            self._body = ChunkedDecoder(self._limits, response=True)
            self._state = _BODY
        else:
            self._state = _CLOSE

    def _read_body(self, data: Buffer, start: int, events: list[ResponseEvent]) -> None:
        body = self._body
        assert body is not None
        end = len(data)
        if start >= end:
            return
        body.feed(data, start, end)
        spans = body.data_spans
        if not spans:
            payload = b""
        elif len(spans) == 1:
            s, e = spans[0]
            payload = bytes(data[s:e])
        else:
            view = memoryview(data)
            payload = b"".join([view[s:e] for s, e in spans])
            view.release()
        if not body.done:
            if payload:
                events.append(ResponseData(payload, False))
            return
        if isinstance(body, ChunkedDecoder) and body.trailers:
            trailers = [
                (lname, value)
                for name, value in body.trailers
                if (lname := name.lower()) not in CONNECTION_FIELDS
            ]
            if trailers:
                if payload:
                    events.append(ResponseData(payload, False))
                events.append(ResponseTrailers(trailers))
                self._finish()
                return
        events.append(ResponseData(payload, True))
        self._finish()
