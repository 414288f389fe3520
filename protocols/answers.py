"""Default answers: the HTTP responses the proxy writes by itself.

Theory of operation
-------------------
When the proxy cannot (or must not) forward a request, it answers on its own: a redirect
(301, 302, 308), a client error (400, 401, 404, 408, 413, 414, 421, 429, 431), a request the
proxy does not implement (501, 505) or a gateway error (502, 503, 504, 507). Each of those
answers comes from a *template*: a complete raw HTTP/1.x response (status line, header lines,
an empty line, a body) that may carry ``%NAME`` placeholders, as in Sōzu's
``lib/src/protocol/kawa_h1/answers.rs``. This module is pure: bytes in, bytes out, no sockets,
no clock, no logging.

Four of those statuses are not Sōzu's: 414 (URI Too Long), 431 (Request Header Fields Too
Large), 501 (Not Implemented: an unknown transfer coding) and 505 (HTTP Version Not
Supported) are answers of the HTTP/1 request parser (``parser/errors.py``) for which Sōzu has
no template. They take the placeholders of 400 (the parse-error details, the parser's reason
as ``%MESSAGE``), and 414 and 431 also ``%CAPACITY`` (the head size limit). They are answered
before the request is routed (except a 431 for a chunked body's trailers), so in practice
only the listener's templates and the built-in ones apply to them.

**Parsing happens once, at configuration time.** :meth:`Template.parse` checks the text and
cuts it into pieces so that :meth:`Template.render` is a join:

* Line endings of the head may be CRLF or LF (or mixed); the head is rewritten with CRLF. The
  body is kept byte for byte: it is everything after the first empty line.
* The status line must be ``HTTP/1.0`` or ``HTTP/1.1``, a space, the three-digit code the
  template is registered for, and an optional reason phrase. It is re-emitted as
  ``HTTP/1.x CODE REASON``.
* Header names are tokens (RFC 9110 §5.6.2) followed directly by ``:``; values hold no control
  byte except HTAB; obsolete line folding, a bare CR, ``Transfer-Encoding`` and a second
  ``Content-Length`` are refused. Errors are :class:`AnswerError` (a :class:`ValueError`) with
  the line number and the reason.
* Placeholders are recognised in header values (anywhere in the value) and in the body. The
  names are those of Sōzu, and each status accepts Sōzu's set for it (the parser's statuses:
  see above; :data:`STATUS_PLACEHOLDERS`); ``%WWW_AUTHENTICATE`` and ``%RETRY_AFTER`` are
  header-only, ``%MESSAGE``, ``%SUCCESSFULLY_PARSED``, ``%PARTIALLY_PARSED`` and ``%INVALID``
  body-only. A known name used where it is not available is an error at parse time (Sōzu
  silently leaves it as text); any other ``%word`` (``100%``, ``%20``) is plain text.

**Rendering** takes a mapping from placeholder names (without the ``%``) to values (``str``
is encoded as UTF-8, ``bytes`` taken as is, ``int`` written in decimal; a missing name is the
empty string) and substitutes in one pass: a value that contains ``%ROUTE`` is not expanded
again.

* *Header values are escaped, never refused*: every control byte (0x00-0x1F, HTAB included,
  and 0x7F) of a value becomes ``%XX`` (upper-case hex), the way a URL would carry it. So no
  value can add a header line, end the head early or smuggle a NUL; answering must not fail
  on the hot path because a request carried odd bytes.
* *Elision*: a header line that holds a placeholder and whose value is empty once substituted
  (blanks stripped) is left out, as Sōzu does for ``WWW-Authenticate: %WWW_AUTHENTICATE``
  and ``Retry-After: %RETRY_AFTER``; here the rule applies to every placeholder line, so
  ``Sozu-Id: %REQUEST_ID`` disappears when there is no request id. A header line written
  empty in the template (no placeholder) is kept.
* *Body values* are inserted as they are, except when the template declares
  ``Content-Type: text/html`` (or XHTML): then ``& < > " '`` are written as HTML entities, so
  a path or a parser message reflected in the page cannot inject markup. The built-in
  templates declare ``text/html``; a Sōzu template (no ``Content-Type``) gets Sōzu's verbatim
  behaviour.
* *Content-Length*: if the template has a ``Content-Length`` line, its value (whatever was
  written) is replaced by the length of the rendered body. A template without one gets none
  (as in Sōzu): its body is delimited by the end of the connection.

**Closing.** :attr:`Template.closes` is true when the template says ``Connection: close``
(``close`` among the tokens of a ``Connection`` line) *or* has no ``Content-Length``: such an
answer is only delimited by the close (RFC 9112 §6.3), so keeping the connection would leave
the client waiting. Every built-in template closes, like Sōzu's.

**Registry.** :class:`Answers` holds one listener's templates. :meth:`Answers.render` looks a
status up in the cluster's templates, then in the listener's, then among the built-in ones
(the order of Sōzu's ``HttpAnswers::get`` and of ``doc/configure.md``, "Custom HTTP answer
templates"). Every template is parsed when it is set; a status outside
:data:`ANSWER_STATUSES` or an invalid template is refused then, and a failed update leaves the
registry as it was. :meth:`Answers.set_cluster` *replaces* the cluster's templates (Sōzu
merges them into the previous ones, which keeps an override the operator has removed).

**Sources.** Configuration values are inline template text or ``file://PATH``;
:func:`load_template_source` resolves them (a relative ``PATH`` against ``base_dir``), before
the text reaches :class:`Answers`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

__all__ = [
    "ANSWER_STATUSES",
    "BODY_ONLY_PLACEHOLDERS",
    "BUILTIN_TEMPLATE_TEXTS",
    "HEADER_ONLY_PLACEHOLDERS",
    "MAX_TEMPLATE_SIZE",
    "PLACEHOLDERS",
    "STATUS_PLACEHOLDERS",
    "AnswerError",
    "Answers",
    "RenderedAnswer",
    "Template",
    "builtin_template",
    "load_template_source",
]


class AnswerError(ValueError):
    """An answer template, its source or its status code is not acceptable."""


#: Every placeholder name the engine knows (written ``%NAME`` in a template).
PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {
        "REQUEST_ID", "CLUSTER_ID", "BACKEND_ID", "ROUTE", "REDIRECT_LOCATION",
        "WWW_AUTHENTICATE", "RETRY_AFTER", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
        "PARTIALLY_PARSED", "INVALID", "CAPACITY", "DURATION",
    }
)
#: Placeholders only allowed in header values (their purpose is a header line that is
#: elided when they are empty).
HEADER_ONLY_PLACEHOLDERS: Final[frozenset[str]] = frozenset({"WWW_AUTHENTICATE", "RETRY_AFTER"})
#: Placeholders only allowed in the body (free-form diagnostics).
BODY_ONLY_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    {"MESSAGE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID"}
)


def _names(*extra: str) -> frozenset[str]:
    return frozenset(("ROUTE", "REQUEST_ID", *extra))


#: The placeholders each status accepts: the variable sets of Sōzu's ``HttpAnswers::template``,
#: and for the parser's statuses that Sōzu lacks (414, 431, 501, 505) the set of 400 (plus
#: ``CAPACITY``, the head size limit, for 414 and 431).
STATUS_PLACEHOLDERS: Final[Mapping[int, frozenset[str]]] = MappingProxyType(
    {
        301: _names("REDIRECT_LOCATION"),
        302: _names("REDIRECT_LOCATION"),
        308: _names("REDIRECT_LOCATION"),
        400: _names("MESSAGE", "PHASE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID"),
        401: _names("WWW_AUTHENTICATE"),
        404: _names(),
        408: _names("DURATION"),
        413: _names("CAPACITY", "MESSAGE", "PHASE"),
        414: _names(
            "CAPACITY", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID",
        ),
        421: _names(),
        429: _names("CLUSTER_ID", "RETRY_AFTER"),
        431: _names(
            "CAPACITY", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID",
        ),
        501: _names("MESSAGE", "PHASE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID"),
        502: _names(
            "CLUSTER_ID", "BACKEND_ID", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
            "PARTIALLY_PARSED", "INVALID",
        ),
        503: _names("CLUSTER_ID", "BACKEND_ID", "MESSAGE"),
        504: _names("CLUSTER_ID", "BACKEND_ID", "DURATION"),
        505: _names("MESSAGE", "PHASE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID"),
        507: _names("CLUSTER_ID", "BACKEND_ID", "CAPACITY", "MESSAGE", "PHASE"),
    }
)
#: The status codes that have a default answer and may be customised.
ANSWER_STATUSES: Final[tuple[int, ...]] = tuple(sorted(STATUS_PLACEHOLDERS))

#: Largest template accepted, inline or from a file.
MAX_TEMPLATE_SIZE: Final = 1 << 20

_FILE_SCHEME: Final = "file://"

# Longest names first, so the alternation can never stop at a shorter name sharing a prefix.
_PLACEHOLDER_RE: Final = re.compile(
    rb"%("
    + b"|".join(n.encode() for n in sorted(PLACEHOLDERS, key=lambda n: (-len(n), n)))
    + rb")"
)
_STATUS_LINE_RE: Final = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: (.*))?", re.DOTALL)
_TOKEN_RE: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Bytes a header value (or reason phrase) may not hold: controls except HTAB, and DEL.
_BAD_FIELD_BYTE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Bytes of a substituted header value that are percent-encoded.
_ESCAPED_IN_HEADER: Final = re.compile(rb"[\x00-\x1f\x7f]")
_OWS: Final = b" \t"
_HTML_TYPES: Final = frozenset({b"text/html", b"application/xhtml+xml"})


class RenderedAnswer(NamedTuple):
    """A rendered answer: the bytes to write, and whether to close the connection after."""

    data: bytes
    close: bool


class _DynamicLine:
    """A header line whose value holds placeholders: ``prefix`` is ``b"Name: "``."""

    __slots__ = ("parts", "prefix")

    def __init__(self, prefix: bytes, parts: tuple[bytes | str, ...]) -> None:
        self.prefix = prefix
        self.parts = parts


class _LengthLine:
    """The template's ``Content-Length`` line, rewritten with the rendered body length."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix


_Segment = bytes | _DynamicLine | _LengthLine
_Value = str | bytes | int


def _to_bytes(value: _Value | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return b"%d" % value


def _escape_control(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match[0][0]


def _header_value(value: _Value | None) -> bytes:
    data = _to_bytes(value)
    if _ESCAPED_IN_HEADER.search(data) is not None:
        data = _ESCAPED_IN_HEADER.sub(_escape_control, data)
    return data


def _html_escape(data: bytes) -> bytes:
    return (
        data.replace(b"&", b"&amp;")
        .replace(b"<", b"&lt;")
        .replace(b">", b"&gt;")
        .replace(b'"', b"&quot;")
        .replace(b"'", b"&#x27;")
    )


def _split(data: bytes) -> tuple[bytes | str, ...]:
    """Cut ``data`` around its placeholders: literal bytes and placeholder names, in order."""
    parts: list[bytes | str] = []
    start = 0
    for match in _PLACEHOLDER_RE.finditer(data):
        if match.start() > start:
            parts.append(data[start : match.start()])
        parts.append(match[1].decode("ascii"))
        start = match.end()
    if start < len(data):
        parts.append(data[start:])
    return tuple(parts)


def _check_status(status: int) -> frozenset[str]:
    allowed = STATUS_PLACEHOLDERS.get(status)
    if allowed is None or isinstance(status, bool):
        known = ", ".join(str(s) for s in ANSWER_STATUSES)
        raise AnswerError(f"no answer is defined for status {status!r} (known statuses: {known})")
    return allowed


class Template:
    """One parsed answer template; build it with :meth:`parse`, use it with :meth:`render`.

    Attributes (read them, do not change them): ``status`` (the code of the status line),
    ``closes`` (the connection must be closed after this answer), ``has_content_length``,
    ``escapes_html`` (body values are HTML-escaped) and ``placeholders`` (the names used).
    """

    __slots__ = (
        "_body",
        "_head",
        "_static",
        "closes",
        "escapes_html",
        "has_content_length",
        "placeholders",
        "status",
    )

    def __init__(
        self,
        status: int,
        head: tuple[_Segment, ...],
        body: tuple[bytes | str, ...],
        *,
        closes: bool,
        has_content_length: bool,
        escapes_html: bool,
        placeholders: frozenset[str],
    ) -> None:
        self.status = status
        self._head = head
        self._body = body
        self.closes = closes
        self.has_content_length = has_content_length
        self.escapes_html = escapes_html
        self.placeholders = placeholders
        # A template without placeholders renders to the same bytes every time.
        self._static: bytes | None = None
        if not placeholders:
            self._static = self.render({}).data

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.placeholders))
        return f"<Template {self.status} closes={self.closes} placeholders=[{names}]>"

    @classmethod
    def parse(cls, text: str | bytes, status: int) -> Template:
        """Check ``text`` as the answer for ``status`` and pre-cut it; :class:`AnswerError`
        says what is wrong (and on which line)."""
        allowed = _check_status(status)
        raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        where = f"answer template for {status}"
        if len(raw) > MAX_TEMPLATE_SIZE:
            raise AnswerError(f"{where}: {len(raw)} bytes, more than {MAX_TEMPLATE_SIZE}")
        if not raw:
            raise AnswerError(f"{where}: the template is empty")
        if raw.startswith(_FILE_SCHEME.encode()):
            raise AnswerError(
                f"{where}: {raw[:60]!r} is a file:// source, not a template; "
                "resolve it with load_template_source() first"
            )
        lines: list[bytes] = []
        pos = 0
        while True:
            end = raw.find(b"\n", pos)
            if end < 0:
                raise AnswerError(
                    f"{where}: the head must end with an empty line (CRLF CRLF or LF LF) "
                    "before the body"
                )
            line = raw[pos:end]
            pos = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                break
            lines.append(line)
        body = raw[pos:]
        if not lines:
            raise AnswerError(
                f"{where}: the template must start with a status line such as "
                f"'HTTP/1.1 {status} ...'"
            )

        # Status line.
        first = lines[0]
        match = _STATUS_LINE_RE.fullmatch(first)
        if match is None:
            raise AnswerError(
                f"{where}: line 1 {first[:80]!r} is not a status line "
                f"'HTTP/1.0 or HTTP/1.1, a space, a 3-digit code, a space, a reason'"
            )
        version, code, reason = match[1], int(match[2]), match[3] or b""
        if code != status:
            raise AnswerError(f"{where}: the status line says {code}, expected {status}")
        if _BAD_FIELD_BYTE.search(reason) is not None:
            raise AnswerError(f"{where}: line 1: control byte in the reason phrase")
        head: list[_Segment] = [b"HTTP/1.%s %d %s\r\n" % (version, code, reason)]

        # Header lines.
        used: set[str] = set()
        closes = False
        content_length = False
        escapes_html = False
        for number, line in enumerate(lines[1:], start=2):
            at = f"{where}: line {number}"
            if line[:1] in (b" ", b"\t"):
                raise AnswerError(f"{at}: obsolete line folding (a line starting with a blank)")
            colon = line.find(b":")
            if colon < 0:
                raise AnswerError(f"{at}: {line[:80]!r} is not a 'Name: value' header line")
            name, value = line[:colon], line[colon + 1 :].strip(_OWS)
            if _TOKEN_RE.fullmatch(name) is None:
                if name[-1:] in (b" ", b"\t"):
                    raise AnswerError(f"{at}: blank between the header name and ':'")
                raise AnswerError(f"{at}: {name[:80]!r} is not a valid header name (token)")
            if _BAD_FIELD_BYTE.search(value) is not None:
                raise AnswerError(f"{at}: control byte (CR, LF, NUL, ...) in the header value")
            lower = name.lower()
            prefix = name + b": "
            if lower == b"transfer-encoding":
                raise AnswerError(
                    f"{at}: Transfer-Encoding is not supported in answer templates "
                    "(the body is static; write a Content-Length line or none)"
                )
            if lower == b"content-length":
                if content_length:
                    raise AnswerError(f"{at}: a second Content-Length line")
                content_length = True
                head.append(_LengthLine(prefix))
                continue
            if lower == b"connection":
                tokens = {t.strip(_OWS).lower() for t in value.split(b",")}
                closes = closes or b"close" in tokens
            elif lower == b"content-type":
                media = value.split(b";", 1)[0].strip(_OWS).lower()
                escapes_html = media in _HTML_TYPES
            parts = _split(value)
            names = [p for p in parts if isinstance(p, str)]
            if not names:
                head.append(prefix + value + b"\r\n")
                continue
            for placeholder in names:
                if placeholder not in allowed:
                    raise AnswerError(_unavailable(at, placeholder, status, allowed))
                if placeholder in BODY_ONLY_PLACEHOLDERS:
                    raise AnswerError(f"{at}: %{placeholder} may only be used in the body")
                used.add(placeholder)
            head.append(_DynamicLine(prefix, parts))

        # Body.
        body_parts = _split(body)
        for part in body_parts:
            if not isinstance(part, str):
                continue
            placeholder = part
            if placeholder not in allowed:
                raise AnswerError(_unavailable(f"{where}: body", placeholder, status, allowed))
            if placeholder in HEADER_ONLY_PLACEHOLDERS:
                raise AnswerError(
                    f"{where}: body: %{placeholder} may only be used in a header value"
                )
            used.add(placeholder)

        return cls(
            status,
            _merge(head),
            body_parts,
            closes=closes or not content_length,
            has_content_length=content_length,
            escapes_html=escapes_html,
            placeholders=frozenset(used),
        )

    def render(self, variables: Mapping[str, str | bytes | int]) -> RenderedAnswer:
        """Substitute ``variables`` (names without ``%``) and return the answer's bytes and
        whether the connection must be closed after it."""
        if self._static is not None:
            return RenderedAnswer(self._static, self.closes)
        get = variables.get
        if self.escapes_html:
            body = b"".join(
                [p if isinstance(p, bytes) else _html_escape(_to_bytes(get(p))) for p in self._body]
            )
        else:
            body = b"".join(
                [p if isinstance(p, bytes) else _to_bytes(get(p)) for p in self._body]
            )
        out: list[bytes] = []
        for segment in self._head:
            if isinstance(segment, bytes):
                out.append(segment)
            elif isinstance(segment, _DynamicLine):
                value = b"".join(
                    [p if isinstance(p, bytes) else _header_value(get(p)) for p in segment.parts]
                ).strip(_OWS)
                if value:
                    out.append(segment.prefix + value + b"\r\n")
            else:
                out.append(segment.prefix + b"%d\r\n" % len(body))
        out.append(b"\r\n")
        out.append(body)
        return RenderedAnswer(b"".join(out), self.closes)


def _unavailable(at: str, placeholder: str, status: int, allowed: frozenset[str]) -> str:
    names = ", ".join("%" + n for n in sorted(allowed))
    return f"{at}: %{placeholder} is not available in the {status} answer (available: {names})"


def _merge(segments: list[_Segment]) -> tuple[_Segment, ...]:
    """Join consecutive literal segments so rendering appends fewer pieces."""
    merged: list[_Segment] = []
    for segment in segments:
        if isinstance(segment, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] = merged[-1] + segment
        else:
            merged.append(segment)
    return tuple(merged)


def load_template_source(value: str, base_dir: str | None = None) -> str:
    """Resolve a configuration value: ``file://PATH`` is read from disk (UTF-8; a relative
    ``PATH`` is taken from ``base_dir`` when given, else from the working directory), anything
    else is inline template text and returned unchanged. Unreadable, oversized or non-UTF-8
    files raise :class:`AnswerError` naming the path."""
    if not value.startswith(_FILE_SCHEME):
        return value
    path = value[len(_FILE_SCHEME) :]
    if not path:
        raise AnswerError(f"answer template source {value!r}: no path after file://")
    if base_dir is not None and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TEMPLATE_SIZE + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise AnswerError(f"cannot read answer template file {path!r}: {reason}") from error
    if len(data) > MAX_TEMPLATE_SIZE:
        raise AnswerError(
            f"answer template file {path!r} is larger than {MAX_TEMPLATE_SIZE} bytes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AnswerError(
            f"answer template file {path!r} is not UTF-8 (invalid byte at offset {error.start})"
        ) from error


# --------------------------------------------------------------------------- built-in answers

_STYLE = (
    "body{font-family:sans-serif;margin:2em auto;max-width:46em;color:#222}"
    "pre{background:#f4f4f4;border:1px solid #ccc;border-radius:4px;padding:.8em}"
)


def _builtin(status: int, reason: str, text: str, details: str, *headers: str) -> str:
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Cache-Control: no-cache",
        "Connection: close",
        "Content-Type: text/html; charset=utf-8",
        "Content-Length: 0",  # only a marker: rendering writes the real body length
        *headers,
        "Sozu-Id: %REQUEST_ID",
    ]
    body = (
        "<!DOCTYPE html>\n"
        f"<html><head><meta charset=\"utf-8\"><title>{status} {reason}</title>"
        f"<style>{_STYLE}</style></head>\n"
        f"<body><h1>{status} {reason}</h1>\n"
        f"<p>{text}</p>\n"
        f"<pre>request id: %REQUEST_ID\nroute:      %ROUTE{details}</pre>\n"
        "<p><small>Answer generated by the pysozu proxy.</small></p></body></html>\n"
    )
    return "\r\n".join(head) + "\r\n\r\n" + body


_TARGET = "\ncluster:    %CLUSTER_ID\nbackend:    %BACKEND_ID"
_PARSE = (
    "\nphase:      %PHASE\nparsed:     %SUCCESSFULLY_PARSED"
    "\npartial:    %PARTIALLY_PARSED\ninvalid:    %INVALID"
)
_CAPACITY = "\nhead limit: %CAPACITY"


def _redirect(status: int, reason: str) -> str:
    return _builtin(
        status,
        reason,
        'The resource is now at <a href="%REDIRECT_LOCATION">%REDIRECT_LOCATION</a>.',
        "",
        "Location: %REDIRECT_LOCATION",
    )


#: The text of every built-in answer, to read or copy into a custom template.
BUILTIN_TEMPLATE_TEXTS: Final[Mapping[int, str]] = MappingProxyType(
    {
        301: _redirect(301, "Moved Permanently"),
        302: _redirect(302, "Found"),
        308: _redirect(308, "Permanent Redirect"),
        400: _builtin(
            400, "Bad Request", "The proxy could not parse this request. %MESSAGE", _PARSE
        ),
        401: _builtin(
            401,
            "Unauthorized",
            "Valid credentials are required to reach this resource.",
            "",
            "WWW-Authenticate: %WWW_AUTHENTICATE",
        ),
        404: _builtin(404, "Not Found", "No frontend serves this host and path.", ""),
        408: _builtin(
            408,
            "Request Timeout",
            "The request did not arrive completely within %DURATION.",
            "",
        ),
        413: _builtin(
            413,
            "Payload Too Large",
            "The request body is larger than this service accepts. %MESSAGE",
            "\nphase:      %PHASE\nbody limit: %CAPACITY",
        ),
        414: _builtin(
            414,
            "URI Too Long",
            "The request line (method, target and version) is longer than the proxy accepts. "
            "%MESSAGE",
            _CAPACITY + _PARSE,
        ),
        421: _builtin(
            421,
            "Misdirected Request",
            "This connection cannot serve the requested host (it does not match the TLS "
            "server name). Open a new connection for that host.",
            "",
        ),
        429: _builtin(
            429,
            "Too Many Requests",
            "Too many connections from your address to this service. Retry later.",
            "\ncluster:    %CLUSTER_ID",
            "Retry-After: %RETRY_AFTER",
        ),
        431: _builtin(
            431,
            "Request Header Fields Too Large",
            "The request's header fields are too large or too many for the proxy. %MESSAGE",
            _CAPACITY + _PARSE,
        ),
        501: _builtin(
            501,
            "Not Implemented",
            "The proxy does not implement what this request needs (such as its transfer "
            "coding). %MESSAGE",
            _PARSE,
        ),
        502: _builtin(
            502,
            "Bad Gateway",
            "The backend server sent a response the proxy could not accept. %MESSAGE",
            _TARGET + _PARSE,
        ),
        503: _builtin(
            503,
            "Service Unavailable",
            "No backend server is available for this request. %MESSAGE",
            _TARGET,
        ),
        504: _builtin(
            504,
            "Gateway Timeout",
            "The backend server did not answer within %DURATION.",
            _TARGET,
        ),
        505: _builtin(
            505,
            "HTTP Version Not Supported",
            "The proxy does not support the HTTP version of this request: it speaks HTTP/1.0 "
            "and HTTP/1.1. %MESSAGE",
            _PARSE,
        ),
        507: _builtin(
            507,
            "Insufficient Storage",
            "The backend response head did not fit in %CAPACITY bytes (parser phase: %PHASE). "
            "%MESSAGE",
            _TARGET,
        ),
    }
)

_BUILTIN: Final[Mapping[int, Template]] = MappingProxyType(
    {status: Template.parse(text, status) for status, text in BUILTIN_TEMPLATE_TEXTS.items()}
)


def builtin_template(status: int) -> Template:
    """The parsed built-in template of ``status`` (:class:`AnswerError` if there is none)."""
    _check_status(status)
    return _BUILTIN[status]


# --------------------------------------------------------------------------- registry

_Sources = Mapping[int, str | bytes] | Mapping[str, str | bytes]


def _status_key(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        status = key
    elif isinstance(key, str) and len(key) == 3 and key.isascii() and key.isdigit():
        status = int(key)
    else:
        raise AnswerError(f"answer key {key!r} is not an HTTP status code")
    _check_status(status)
    return status


def _parse_all(templates: _Sources, scope: str) -> dict[int, Template]:
    parsed: dict[int, Template] = {}
    for key, text in templates.items():
        try:
            status = _status_key(key)
            if not text:
                continue  # an empty value means "no override", as Sōzu's config loader
            parsed[status] = Template.parse(text, status)
        except AnswerError as error:
            raise AnswerError(f"{scope}: {error}") from None
    return parsed


class Answers:
    """The answer templates of one listener, with per-cluster overrides.

    ``listener_templates`` maps a status (``503`` or ``"503"``) to template text (resolve
    ``file://`` sources with :func:`load_template_source` first; an empty text is skipped).
    Everything is parsed here and in :meth:`set_cluster` / :meth:`set_listener`; rendering
    never parses.
    """

    __slots__ = ("_clusters", "_listener")

    def __init__(self, listener_templates: _Sources | None = None) -> None:
        self._listener: dict[int, Template] = _parse_all(listener_templates or {}, "listener")
        self._clusters: dict[str, dict[int, Template]] = {}

    def set_listener(self, templates: _Sources) -> None:
        """Replace the listener's templates (all parsed first: on error nothing changes)."""
        self._listener = _parse_all(templates, "listener")

    def set_cluster(self, cluster_id: str, templates: _Sources) -> None:
        """Replace the overrides of ``cluster_id`` (all parsed first: on error nothing
        changes). An empty mapping removes them."""
        parsed = _parse_all(templates, f"cluster {cluster_id!r}")
        if parsed:
            self._clusters[cluster_id] = parsed
        else:
            self._clusters.pop(cluster_id, None)

    def remove_cluster(self, cluster_id: str) -> None:
        """Drop the overrides of ``cluster_id`` (nothing happens if it has none)."""
        self._clusters.pop(cluster_id, None)

    def has_cluster(self, cluster_id: str) -> bool:
        """Whether ``cluster_id`` has overrides."""
        return cluster_id in self._clusters

    def template(self, status: int, cluster_id: str | None = None) -> Template:
        """The template that answers ``status``: the cluster's, else the listener's, else the
        built-in one."""
        if cluster_id is not None:
            overrides = self._clusters.get(cluster_id)
            if overrides is not None:
                found = overrides.get(status)
                if found is not None:
                    return found
        found = self._listener.get(status)
        if found is not None:
            return found
        return builtin_template(status)

    def render(
        self,
        status: int,
        cluster_id: str | None,
        variables: Mapping[str, str | bytes | int],
    ) -> RenderedAnswer:
        """Render the answer for ``status`` (see :meth:`template`): ``(data, close)``."""
        return self.template(status, cluster_id).render(variables)
