"""HPACK (RFC 7541): a stateless encoder for the header blocks this proxy sends, and the
decoder of the blocks its peers send.

Theory of operation
-------------------
**Encoding** is ours to choose, and a proxy's responses are mostly unique values (dates,
request ids) that a dynamic table would not pay for. So the encoder keeps no state:

* a field whose name and value are in the static table (Appendix A) is one byte (indexed);
* a field whose name is in the static table is a literal *without indexing* with that
  name's index; any other field is a literal without indexing with a literal name
  (RFC 7541 §6.2.2: the peer's decoder table is never touched);
* strings are sent raw (no Huffman coding, §5.2 allows either).

``table_size_update(size)`` is the dynamic table size update (§6.3) that must start the
first block after the peer lowers SETTINGS_HEADER_TABLE_SIZE; an encoder without a table
always asks for 0.

**Decoding** must follow whatever the peer's encoder chose. :class:`Decoder` keeps the
dynamic table of one connection (§2.3.2: newest entry first in index order, each entry
costing its name and value lengths plus 32 octets, the oldest evicted to stay within the
table size) and reads a block representation by representation (§6): indexed field,
literal with incremental indexing, literal without indexing or never indexed, dynamic
table size update. It refuses, with :class:`HpackError` (a COMPRESSION_ERROR for the
connection, RFC 9113 §4.3):

* an index of 0 or past the end of the tables (§2.3.3), an integer or string that runs
  past the end of the block, an integer beyond 2**32 (§5.1 allows any size; a bound keeps
  a crafted block from making huge numbers);
* a size update above the limit this side announced (SETTINGS_HEADER_TABLE_SIZE, §6.3), or
  after the first field of a block (§4.2);
* a Huffman string (§5.2) that holds the EOS symbol, or ends with more than 7 bits of
  padding, or with padding that is not the EOS code's leading 1-bits.

The header list a block decodes to is bounded while it is decoded: once its size (names,
values and 32 octets per field, as SETTINGS_MAX_HEADER_LIST_SIZE counts) passes the limit,
:class:`HeaderListTooLarge` stops it, so a block that repeats one large indexed entry (an
"HPACK bomb") costs no more than the limit.

Huffman decoding walks a table made at import from the code lengths of Appendix B (the
code is canonical: codes of one length are consecutive, in symbol order, so the lengths
alone give every code). The decoding tree has 256 inner nodes; the table gives, for each
node and each 4-bit nibble of input, the node reached and the symbol completed on the way
(at most one: no code is shorter than 5 bits), so a byte costs two lookups. A node is an
accepting end when the bits read since the last symbol are all 1s and fewer than 8.
"""

from __future__ import annotations

from typing import Final

from .h1 import remember

__all__ = [
    "STATIC_TABLE",
    "Decoder",
    "HeaderListTooLarge",
    "HpackError",
    "encode_field",
    "encode_headers",
    "encode_unique_field",
    "huffman_decode",
    "table_size_update",
]

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


def _static_names() -> dict[bytes, tuple[bytes, dict[bytes, bytes]]]:
    """name -> (its first index as a literal's 4-bit name prefix, value -> indexed field)."""
    names: dict[bytes, tuple[bytes, dict[bytes, bytes]]] = {}
    for index, (name, value) in enumerate(STATIC_TABLE, 1):
        if name not in names:
            names[name] = (_integer(index, 4, 0x00), {})
        if value:
            names[name][1].setdefault(value, _integer(index, 7, 0x80))
    return names


_STATIC_NAMES: Final = _static_names()

#: string lengths below 127 are one byte (H bit 0): most names and values
_SHORT: Final = tuple(bytes((n,)) for n in range(127))
_LITERAL_NAME: Final = b"\x00"  # literal without indexing, new name


def encode_field(field: tuple[bytes, bytes]) -> bytes:
    """One field's representation, as :func:`encode_headers` writes it (the same cache): a
    caller that keeps it may join such pieces into a header block itself."""
    encoded = _ENCODED.get(field)
    if encoded is None:
        encoded = _encode_field(field[0], field[1])
        if len(field[0]) + len(field[1]) <= _CACHE_FIELD_MAX:
            remember(_ENCODED, field, encoded, _CACHE_MAX)
    return encoded


def encode_unique_field(field: tuple[bytes, bytes]) -> bytes:
    """:func:`encode_field` for a field that will not be seen again (a request id): kept
    out of the cache, which it would only fill."""
    return _encode_field(field[0], field[1])


def encode_headers(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A header block for ``headers`` (names lowercase, as HTTP/2 requires).

    Each short field's representation is kept in a cache: a stateless encoder writes a
    field the same way every time, and a proxy sends the same fields again and again
    (status, server, content type). Emptied when full (:func:`encode_field`)."""
    return b"".join([encode_field(field) for field in headers])


def _encode_field(name: bytes, value: bytes) -> bytes:
    short = _SHORT
    entry = _STATIC_NAMES.get(name)
    if entry is None:
        n = len(name)
        parts = [_LITERAL_NAME, short[n] if n < 127 else _integer(n, 7, 0x00), name]
    else:
        indexed = entry[1].get(value)
        if indexed is not None:
            return indexed
        parts = [entry[0]]
    n = len(value)
    parts += (short[n] if n < 127 else _integer(n, 7, 0x00), value)
    return b"".join(parts)


#: field -> its representation; see encode_headers
_ENCODED: Final[dict[tuple[bytes, bytes], bytes]] = {}
_CACHE_MAX: Final = 4096
_CACHE_FIELD_MAX: Final = 256


def table_size_update(size: int) -> bytes:
    """§6.3: the dynamic table size update that may start a header block."""
    return _integer(size, 5, 0x20)


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


class HpackError(ValueError):
    """A header block that does not decode: a connection error COMPRESSION_ERROR."""


class HeaderListTooLarge(HpackError):
    """The decoded header list passed the announced SETTINGS_MAX_HEADER_LIST_SIZE."""


#: RFC 7541 Appendix B: the code length of each symbol, 0-255 and EOS (256)
HUFFMAN_LENGTHS: Final[tuple[int, ...]] = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7,
    7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21,
    23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24,
    21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
)  # fmt: skip

_EOS: Final = 256
# a transition: the next node in the low 8 bits, then these flags, then the symbol
_EMIT: Final = 0x100
_FAIL: Final = 0x200
_SYMBOL_SHIFT: Final = 10


def huffman_codes() -> list[tuple[int, int]]:
    """(code, length) of each symbol, from the canonical assignment of the lengths."""
    order = sorted(range(len(HUFFMAN_LENGTHS)), key=lambda sym: (HUFFMAN_LENGTHS[sym], sym))
    codes = [(0, 0)] * len(HUFFMAN_LENGTHS)
    code = -1
    previous = HUFFMAN_LENGTHS[order[0]]
    for sym in order:
        length = HUFFMAN_LENGTHS[sym]
        code = (code + 1) << (length - previous)
        previous = length
        codes[sym] = (code, length)
    return codes


def _huffman_tables() -> tuple[list[int], list[bool]]:
    """The nibble transition table and the accepting nodes (see the module docstring)."""
    # the tree: children[node] = [node or ~symbol for bit 0, same for bit 1]; node 0 is root
    children: list[list[int | None]] = [[None, None]]
    for sym, (code, length) in enumerate(huffman_codes()):
        node = 0
        for shift in range(length - 1, -1, -1):
            bit = (code >> shift) & 1
            if shift == 0:
                children[node][bit] = ~sym
            else:
                nxt = children[node][bit]
                if nxt is None:
                    nxt = len(children)
                    children.append([None, None])
                    children[node][bit] = nxt
                node = nxt
    if len(children) != 256 or any(c is None for pair in children for c in pair):
        raise AssertionError("the Huffman lengths do not make a full code")  # pragma: no cover
    # accepting nodes: reached from the root by 0 to 7 one-bits
    accept = [False] * 256
    node = 0
    for _ in range(8):
        accept[node] = True
        nxt = children[node][1]
        if nxt is None or nxt < 0:  # pragma: no cover - the EOS code is 30 ones
            break
        node = nxt
    table = [0] * (256 * 16)
    for start in range(256):
        for nibble in range(16):
            node = start
            entry = 0
            for shift in (3, 2, 1, 0):
                child = children[node][(nibble >> shift) & 1]
                assert child is not None
                if child < 0:
                    sym = ~child
                    if sym == _EOS:
                        entry = _FAIL
                        break
                    entry = _EMIT | (sym << _SYMBOL_SHIFT)
                    node = 0
                else:
                    node = child
            table[(start << 4) | nibble] = entry if entry & _FAIL else entry | node
    return table, accept


_TABLES: Final = _huffman_tables()
HUFFMAN_TABLE: Final[list[int]] = _TABLES[0]
HUFFMAN_ACCEPT: Final[list[bool]] = _TABLES[1]


def huffman_decode(data: bytes) -> bytes:
    """§5.2: the octets of a Huffman-coded string; raises :class:`HpackError`."""
    table = HUFFMAN_TABLE
    out = bytearray()
    node = 0
    for byte in data:
        entry = table[(node << 4) | (byte >> 4)]
        if entry & _EMIT:
            out.append(entry >> _SYMBOL_SHIFT)
        entry = table[((entry & 0xFF) << 4) | (byte & 0x0F)]
        if entry & _FAIL:
            raise HpackError("the Huffman string holds the EOS symbol")
        if entry & _EMIT:
            out.append(entry >> _SYMBOL_SHIFT)
        node = entry & 0xFF
    if not HUFFMAN_ACCEPT[node]:
        raise HpackError("the Huffman string ends with bad padding")
    return bytes(out)


#: integers past this are refused (§5.1 sets no bound; no table, string or list needs more)
MAX_INTEGER: Final = 1 << 32
#: RFC 7541 §4.1: what an entry costs beyond its name and value
ENTRY_OVERHEAD: Final = 32
_STATIC_COUNT: Final = len(STATIC_TABLE)


class Decoder:
    """The decoding side of one HTTP/2 connection's HPACK context (see the module
    docstring).

    ``max_header_list_size`` bounds each decoded list; ``max_table_size`` is the
    SETTINGS_HEADER_TABLE_SIZE this side announced, the most a size update may ask for.
    The table starts at the protocol's 4,096 octets (RFC 9113 §6.5.2) until the peer's
    encoder says otherwise.
    """

    __slots__ = ("entries", "max_header_list_size", "max_table_size", "size", "table_size")

    def __init__(self, max_header_list_size: int, max_table_size: int = 4096) -> None:
        self.max_header_list_size = max_header_list_size
        self.max_table_size = max_table_size
        #: the table size the encoder chose (§4.2), at most ``max_table_size`` once it spoke
        self.table_size = 4096
        #: the dynamic table, oldest first (index 62 is the last one)
        self.entries: list[tuple[bytes, bytes]] = []
        self.size = 0

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The header list of one complete header block; raises :class:`HpackError`."""
        headers: list[tuple[bytes, bytes]] = []
        limit = self.max_header_list_size
        total = 0
        pos = 0
        end = len(block)
        while pos < end:
            first = block[pos]
            if first & 0x80:  # §6.1 indexed field
                index, pos = _read_integer(block, pos, 7)
                field = self._field(index)
            elif first & 0x40:  # §6.2.1 literal with incremental indexing
                index, pos = _read_integer(block, pos, 6)
                field, pos = self._literal(block, pos, index)
                self._add(field)
            elif first & 0x20:  # §6.3 dynamic table size update
                if headers:
                    raise HpackError("a dynamic table size update after a field")
                size, pos = _read_integer(block, pos, 5)
                if size > self.max_table_size:
                    raise HpackError(f"a dynamic table size update to {size}, above "
                                     f"the announced {self.max_table_size}")
                self.table_size = size
                self._evict(size)
                continue
            else:  # §6.2.2 and §6.2.3 literal without indexing, never indexed
                index, pos = _read_integer(block, pos, 4)
                field, pos = self._literal(block, pos, index)
            total += _entry_size(field)
            if total > limit:
                raise HeaderListTooLarge(f"the header list passes {limit} octets")
            headers.append(field)
        return headers

    def _field(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= _STATIC_COUNT:
            return STATIC_TABLE[index - 1]
        dynamic = index - _STATIC_COUNT
        entries = self.entries
        if index == 0 or dynamic > len(entries):
            raise HpackError(f"index {index} is not in the tables")
        return entries[len(entries) - dynamic]

    def _literal(self, block: bytes, pos: int, index: int) -> tuple[tuple[bytes, bytes], int]:
        if index:
            name = self._field(index)[0]
        else:
            name, pos = _string_at(block, pos)
        value, pos = _string_at(block, pos)
        return (name, value), pos

    def _add(self, field: tuple[bytes, bytes]) -> None:
        cost = _entry_size(field)
        if cost > self.table_size:
            # §4.4: an entry larger than the table empties it and is not added
            self.entries.clear()
            self.size = 0
            return
        self._evict(self.table_size - cost)
        self.entries.append(field)
        self.size += cost

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until the table holds at most ``room`` octets."""
        entries = self.entries
        size = self.size
        drop = 0
        while size > room:
            size -= _entry_size(entries[drop])
            drop += 1
        if drop:
            del entries[:drop]
            self.size = size


def _entry_size(field: tuple[bytes, bytes]) -> int:
    """§4.1: what a field costs in the dynamic table, and in SETTINGS_MAX_HEADER_LIST_SIZE
    (RFC 9113 §6.5.2 counts the same way)."""
    return len(field[0]) + len(field[1]) + ENTRY_OVERHEAD


def _read_integer(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """§5.1: the integer whose N-bit prefix starts at ``pos``, and the position after it."""
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(block)
    while True:
        if pos >= end:
            raise HpackError("an integer runs past the end of the block")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if value > MAX_INTEGER:
            raise HpackError("an integer is too large")
        if not byte & 0x80:
            return value, pos
        shift += 7


def _string_at(block: bytes, pos: int) -> tuple[bytes, int]:
    """§5.2: the string literal at ``pos`` (Huffman decoded if so flagged), and the
    position after it."""
    if pos >= len(block):
        raise HpackError("a string is missing at the end of the block")
    huffman = block[pos] & 0x80
    length, pos = _read_integer(block, pos, 7)
    end = pos + length
    if end > len(block):
        raise HpackError("a string runs past the end of the block")
    data = block[pos:end]
    return (huffman_decode(data) if huffman else data), end
