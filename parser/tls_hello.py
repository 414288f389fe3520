"""TLS ClientHello parsing, pure: the first bytes of a connection in, SNI and ALPN out.

Theory of operation
-------------------
A TLS client speaks first, and its first flight is a ClientHello (RFC 8446 §4.1.2, RFC
5246 §7.4.1.2) inside one or more *handshake* records (content type 22). A proxy that routes
on the server name without terminating TLS (SNI passthrough) peeks at those bytes, so this
module reads them as they arrive, never consuming or changing anything:

* :func:`parse_client_hello` takes everything received so far and answers ``None`` while it
  is a valid but incomplete prefix (read more), a :class:`ClientHello` once the whole
  handshake message is there, or raises :class:`ClientHelloError` as soon as the bytes
  cannot be a ClientHello: another record type, an SSLv2-compatible hello, a record or
  handshake length out of bounds, a malformed body. The caller re-parses from the start on
  every read: a hello is small and bounded (:data:`MAX_HELLO_SIZE`), so a parse state
  carried between reads would buy little and could disagree with a fresh parse.
* Records are reassembled: the handshake message may be split over several records (any
  split is legal, even one byte per record), each record header is checked on the way.
  Bytes after the message (early data, a second flight) are not looked at.
* The body is parsed strictly (every length must match its container, extension types
  are unique, the SNI list holds at most one host name), since a proxy that reads a name
  differently from the backend is a routing bypass. The server name is lower-cased and a
  trailing dot dropped, the forms a router compares; ALPN names are decoded as Latin-1, a
  lossless mapping of their opaque bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_HELLO_SIZE",
    "ClientHello",
    "ClientHelloError",
    "parse_client_hello",
]

#: The largest ClientHello handshake message accepted (header included). Real hellos are
#: well under 2 KiB (post-quantum key shares bring them near 2 KiB): a larger one is refused
#: rather than buffered.
MAX_HELLO_SIZE: Final = 16384

_HANDSHAKE: Final = 22
_CLIENT_HELLO: Final = 1
_RECORD_HEADER: Final = 5
_HANDSHAKE_HEADER: Final = 4
#: RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes.
_MAX_RECORD: Final = 1 << 14
_EXT_SERVER_NAME: Final = 0
_EXT_ALPN: Final = 16
_HOST_NAME: Final = 0


class ClientHelloError(ValueError):
    """The bytes are not the start of a TLS ClientHello, or it is malformed."""


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What a router needs from a complete ClientHello.

    ``server_name`` is the SNI host name (lower-case, no trailing dot) or None when the
    client sent none; ``alpn`` the offered protocols, in the client's order.
    """

    server_name: str | None
    alpn: list[str] = field(default_factory=list)


def parse_client_hello(data: bytes | bytearray | memoryview) -> ClientHello | None:
    """Parse the first bytes of a connection (see module docstring).

    Returns None while ``data`` is a valid but incomplete prefix, the parsed hello when it is
    complete; raises :class:`ClientHelloError` when it cannot be a TLS ClientHello.
    """
    buf = bytes(data)
    size = len(buf)
    message = bytearray()  # the handshake message's bytes received so far
    wanted = -1  # its length, header included, once the header is known
    pos = 0
    while pos < size:
        if buf[pos] != _HANDSHAKE:
            if pos == 0 and buf[0] & 0x80:
                # SSLv2-compatible hello: a 2-byte length with the high bit set, then type 1
                raise ClientHelloError("SSLv2-compatible ClientHello is not supported")
            raise ClientHelloError(f"not a TLS handshake record (content type {buf[pos]})")
        if pos + 1 < size and buf[pos + 1] != 3:
            raise ClientHelloError(f"not a TLS record (version major {buf[pos + 1]})")
        if pos + _RECORD_HEADER > size:
            return None
        length = int.from_bytes(buf[pos + 3 : pos + _RECORD_HEADER], "big")
        if length == 0:
            raise ClientHelloError("empty handshake record")
        if length > _MAX_RECORD:
            raise ClientHelloError(f"record length {length} is over {_MAX_RECORD}")
        pos += _RECORD_HEADER
        message += buf[pos : pos + length]  # a record's first bytes count before its end
        pos += length
        if wanted < 0 and _check_header(message):
            wanted = _HANDSHAKE_HEADER + int.from_bytes(message[1:4], "big")
        if 0 <= wanted <= len(message):
            server_name, alpn = _parse_body(memoryview(message)[_HANDSHAKE_HEADER:wanted])
            return ClientHello(server_name, alpn)
    return None


def _check_header(message: bytearray) -> bool:
    """Check the handshake header's bytes received so far; True once all four are there."""
    if message and message[0] != _CLIENT_HELLO:
        raise ClientHelloError(f"not a ClientHello (handshake type {message[0]})")
    if len(message) < _HANDSHAKE_HEADER:
        return False
    body = int.from_bytes(message[1:4], "big")
    if _HANDSHAKE_HEADER + body > MAX_HELLO_SIZE:
        raise ClientHelloError(f"ClientHello of {body} bytes is over {MAX_HELLO_SIZE}")
    return True


class _Reader:
    """Bounds-checked reads over one length-delimited part of the body."""

    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n > self.remaining():
            raise ClientHelloError(f"{what} runs past its container")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, width: int, what: str) -> int:
        return int.from_bytes(self.take(width, what), "big")

    def rest(self) -> bytes:
        out = bytes(self.data[self.pos :])
        self.pos = len(self.data)
        return out

    def vector(self, width: int, what: str) -> _Reader:
        """A sub-reader over a vector prefixed by a ``width``-byte length."""
        return _Reader(self.take(self.uint(width, f"{what} length"), what))


def _parse_body(body: memoryview) -> tuple[str | None, list[str]]:
    r = _Reader(body)
    r.take(2, "legacy_version")
    r.take(32, "random")
    session_id = r.vector(1, "session_id")
    if session_id.remaining() > 32:
        raise ClientHelloError("session_id longer than 32 bytes")
    suites = r.vector(2, "cipher_suites")
    if suites.remaining() == 0 or suites.remaining() % 2:
        raise ClientHelloError("cipher_suites must be a non-empty list of 2-byte values")
    if r.vector(1, "compression_methods").remaining() == 0:
        raise ClientHelloError("compression_methods is empty")
    server_name: str | None = None
    alpn: list[str] = []
    if r.remaining() == 0:  # a hello without extensions (TLS 1.2 and before)
        return server_name, alpn
    extensions = r.vector(2, "extensions")
    if r.remaining():
        raise ClientHelloError("bytes after the extensions")
    seen: set[int] = set()
    while extensions.remaining():
        ext_type = extensions.uint(2, "extension type")
        ext = extensions.vector(2, f"extension {ext_type}")
        if ext_type in seen:
            raise ClientHelloError(f"extension {ext_type} appears twice")
        seen.add(ext_type)
        if ext_type == _EXT_SERVER_NAME:
            server_name = _server_name(ext)
        elif ext_type == _EXT_ALPN:
            alpn = _alpn(ext)
    return server_name, alpn


def _server_name(ext: _Reader) -> str | None:
    names = ext.vector(2, "server_name_list")
    if ext.remaining():
        raise ClientHelloError("bytes after the server_name_list")
    if names.remaining() == 0:
        raise ClientHelloError("empty server_name_list")
    host: str | None = None
    while names.remaining():
        name_type = names.uint(1, "server name type")
        name = names.vector(2, "server name").rest()
        if name_type != _HOST_NAME:
            continue  # RFC 6066: unknown name types are for future use
        if host is not None:
            raise ClientHelloError("more than one host_name in server_name")
        if not name:
            raise ClientHelloError("empty host_name")
        if any(b <= 0x20 or b >= 0x7F for b in name):
            raise ClientHelloError("host_name is not printable ASCII")
        host = name.decode("ascii").lower().removesuffix(".")
        if not host:
            raise ClientHelloError("host_name is only a dot")
    return host


def _alpn(ext: _Reader) -> list[str]:
    protocols = ext.vector(2, "protocol_name_list")
    if ext.remaining():
        raise ClientHelloError("bytes after the protocol_name_list")
    if protocols.remaining() == 0:
        raise ClientHelloError("empty protocol_name_list")
    out: list[str] = []
    while protocols.remaining():
        name = protocols.vector(1, "protocol name").rest()
        if not name:
            raise ClientHelloError("empty protocol name")
        out.append(name.decode("latin-1"))
    return out
