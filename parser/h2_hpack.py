"""A stateless HPACK encoder (RFC 7541) for the header blocks this proxy sends.

Theory of operation
-------------------
Decoding stays with the ``hpack`` package (DESIGN.md): the peer's encoder decides what it
sends, and the decoder must follow every instruction. Encoding is ours to choose, and a
proxy's responses are mostly unique values (dates, request ids) that a dynamic table would
not pay for, while the ``hpack`` package's encoder searches its table linearly and Huffman
codes in Python on every field. So this encoder keeps no state:

* a field whose name and value are in the static table (Appendix A) is one byte (indexed);
* a field whose name is in the static table is a literal *without indexing* with that
  name's index; any other field is a literal without indexing with a literal name
  (RFC 7541 §6.2.2: the peer's decoder table is never touched);
* strings are sent raw (no Huffman coding, §5.2 allows either).

``table_size_update(size)`` is the dynamic table size update (§6.3) that must start the
first block after the peer lowers SETTINGS_HEADER_TABLE_SIZE; an encoder without a table
always asks for 0.
"""

from __future__ import annotations

from typing import Final

__all__ = ["STATIC_TABLE", "encode_headers", "table_size_update"]

#: RFC 7541 Appendix A (index = position + 1)
STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"),
    (b"accept-charset", b""), (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""), (b"accept-ranges", b""), (b"accept", b""),
    (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
)  # fmt: skip

_FULL: Final[dict[tuple[bytes, bytes], bytes]] = {}
_NAME: Final[dict[bytes, bytes]] = {}


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """§5.1: ``value`` with an N-bit prefix, ``first`` holding the pattern bits above it."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


for _index, (_name, _value) in enumerate(STATIC_TABLE, 1):
    if _value:
        _FULL.setdefault((_name, _value), _integer(_index, 7, 0x80))
    _NAME.setdefault(_name, _integer(_index, 4, 0x00))
del _index, _name, _value

#: string lengths below 127 are one byte (H bit 0): most names and values
_SHORT: Final = tuple(bytes((n,)) for n in range(127))


def _string(data: bytes) -> bytes:
    n = len(data)
    return (_SHORT[n] if n < 127 else _integer(n, 7, 0x00)) + data


def encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A header block for ``headers`` (names lowercase, as HTTP/2 requires)."""
    full = _FULL
    names = _NAME
    parts: list[bytes] = []
    for name, value in headers:
        indexed = full.get((name, value))
        if indexed is not None:
            parts.append(indexed)
            continue
        prefix = names.get(name)
        if prefix is not None:
            parts.append(prefix)
        else:
            parts.append(b"\x00")
            parts.append(_string(name))
        parts.append(_string(value))
    return b"".join(parts)


def table_size_update(size: int) -> bytes:
    """§6.3: the dynamic table size update that may start a header block."""
    return _integer(size, 5, 0x20)
