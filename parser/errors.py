"""Parse errors: every rejection names the status a proxy answers and why.

Two families of codes share one namespace of names:

* the **scanner codes** 1-15 of ``SCANNER.md``, returned as ``-code`` by both backends of
  ``scan_head`` (they are part of the C ABI: never renumber them);
* the **semantic codes** found above the scanner (framing, Host, chunked bodies), which
  only the shared Python layer raises, so their numbers are private to it.

The status is what a proxy answers to the client that sent the bad message (400, 413, 414,
431, 501, 505). A bad *response* from a backend is not the client's fault: the proxy answers
502 instead, and ``ParseError.upstream`` builds that variant with the same code and reason.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CODE_NAMES",
    "ERRORS",
    "ParseError",
    "error",
]

# Scanner codes (SCANNER.md "Error codes"; shared with native/scanner.h).
BARE_LF: Final = 1
BARE_CR: Final = 2
BAD_METHOD: Final = 3
BAD_TARGET: Final = 4
BAD_VERSION: Final = 5
VERSION_NOT_SUPPORTED: Final = 6
BAD_STATUS: Final = 7
BAD_REASON: Final = 8
BAD_HEADER_NAME: Final = 9
WS_BEFORE_COLON: Final = 10
OBS_FOLD: Final = 11
BAD_HEADER_VALUE: Final = 12
HEAD_TOO_LARGE: Final = 13
URI_TOO_LONG: Final = 14
TOO_MANY_HEADERS: Final = 15

# name -> (status, reason). The first 15 entries are the scanner codes, in code order.
ERRORS: Final[dict[str, tuple[int, str]]] = {
    "BARE_LF": (400, "bare LF (lines must end with CRLF)"),
    "BARE_CR": (400, "bare CR (CR only before LF)"),
    "BAD_METHOD": (400, "invalid method"),
    "BAD_TARGET": (400, "invalid request target"),
    "BAD_VERSION": (400, "invalid HTTP version"),
    "VERSION_NOT_SUPPORTED": (505, "HTTP version not supported"),
    "BAD_STATUS": (400, "invalid status code"),
    "BAD_REASON": (400, "invalid reason phrase"),
    "BAD_HEADER_NAME": (400, "invalid header name"),
    "WS_BEFORE_COLON": (400, "whitespace between header name and colon"),
    "OBS_FOLD": (400, "obsolete line folding"),
    "BAD_HEADER_VALUE": (400, "invalid header value"),
    "HEAD_TOO_LARGE": (431, "head too large"),
    "URI_TOO_LONG": (414, "URI too long"),
    "TOO_MANY_HEADERS": (431, "too many headers"),
    # Framing (RFC 9112 §6): the request-smuggling surface.
    "CL_TE": (400, "Content-Length with Transfer-Encoding"),
    "DUPLICATE_CL": (400, "more than one Content-Length"),
    "BAD_CL": (400, "invalid Content-Length"),
    "BAD_TE": (400, "invalid Transfer-Encoding"),
    "UNKNOWN_TE": (501, "unknown transfer coding"),
    "DUPLICATE_CHUNKED": (400, "chunked applied more than once"),
    "CHUNKED_NOT_FINAL": (400, "chunked is not the final transfer coding"),
    "TE_HTTP10": (400, "Transfer-Encoding in an HTTP/1.0 message"),
    "BODY_TOO_LARGE": (413, "body too large"),
    # Request semantics.
    "MISSING_HOST": (400, "HTTP/1.1 request without Host"),
    "DUPLICATE_HOST": (400, "more than one Host"),
    "BAD_HOST": (400, "invalid Host"),
    "BAD_TARGET_FORM": (400, "request target form not allowed for this method"),
    # Chunked bodies (RFC 9112 §7.1).
    "BAD_CHUNK_SIZE": (400, "invalid chunk size"),
    "CHUNK_SIZE_TOO_LARGE": (400, "chunk size too large"),
    "BAD_CHUNK_EXT": (400, "invalid chunk extension"),
    "CHUNK_LINE_TOO_LONG": (400, "chunk size line too long"),
    "BAD_CHUNK_END": (400, "chunk data not followed by CRLF"),
    "BARE_LF_IN_BODY": (400, "bare LF in chunked framing"),
    "BARE_CR_IN_BODY": (400, "bare CR in chunked framing"),
    "TRAILERS_TOO_LARGE": (431, "trailer section too large"),
    "TOO_MANY_TRAILERS": (431, "too many trailer fields"),
    "FORBIDDEN_TRAILER": (400, "framing or routing field in trailers"),
}

# Scanner code -> name (index 0 unused).
CODE_NAMES: Final[tuple[str, ...]] = ("", *list(ERRORS)[:15])


class ParseError(Exception):
    """A message the parser refuses, with the answer a proxy gives to its sender.

    Attributes:
        status: the HTTP status to answer (400, 413, 414, 431, 501, 505; 502 for a bad
            response from a backend).
        reason: a short human-readable cause.
        code: a stable machine-readable name (``"BARE_LF"``, ``"CL_TE"``...), for logs,
            metrics and tests.
        offset: the offset of the offending byte in the parsed buffer, when one is known.
    """

    __slots__ = ("code", "offset", "reason", "status")

    def __init__(self, status: int, reason: str, code: str, offset: int | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.code = code
        self.offset = offset

    def __repr__(self) -> str:
        return f"ParseError({self.status}, {self.reason!r}, {self.code!r}, {self.offset!r})"

    def upstream(self) -> ParseError:
        """The same error found in a backend's response: the client gets 502."""
        return ParseError(502, self.reason, self.code, self.offset)


def error(code: str | int, offset: int | None = None, *, response: bool = False) -> ParseError:
    """Build the ``ParseError`` for a code name (or a scanner code number)."""
    name = CODE_NAMES[code] if isinstance(code, int) else code
    status, reason = ERRORS[name]
    return ParseError(502 if response else status, reason, name, offset)
