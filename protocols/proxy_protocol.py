"""PROXY protocol (HAProxy) v1 and v2 codec: pure functions over bytes, no sockets.

A proxy that sits in front of another proxy loses the client's address: the
backend only sees the front proxy's socket.  The PROXY protocol fixes that by
prefixing the TCP stream with one header describing the original connection.
Two wire formats exist (HAProxy's ``proxy-protocol.txt``):

Version 1 (text), one line of at most 107 bytes including the CRLF::

    PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\\r\\n
    PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\\r\\n
    PROXY UNKNOWN\\r\\n                 (anything up to the CRLF is ignored)

Fields are separated by exactly one space; IPv4 addresses are dotted quads,
IPv6 addresses any valid textual form, ports decimal in [0, 65535] with no
leading zeros.

Version 2 (binary), a 16-byte fixed part followed by ``len`` bytes::

    offset  size  field
    0       12    signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
    12      1     version (high nibble, must be 2) | command (0 LOCAL, 1 PROXY)
    13      1     family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) | transport (1 STREAM)
    14      2     len, big endian: address block + TLVs
    16      len   address block, then TLVs (type:1, length:2 big endian, value)

    INET  block: src addr (4)   dst addr (4)   src port (2) dst port (2) =  12 bytes
    INET6 block: src addr (16)  dst addr (16)  src port (2) dst port (2) =  36 bytes
    UNIX  block: src path (108) dst path (108), NUL padded              = 216 bytes
    UNSPEC block: empty; everything after the fixed part is TLVs.

Theory of operation of :func:`parse_header`: it is called with whatever bytes
have arrived so far on a fresh connection, and answers one of three things:

* a :class:`ProxyHeader` once a whole header is present (``header.length`` bytes
  must then be consumed; the rest belongs to the proxied protocol);
* ``None`` when the bytes are a strict prefix of some valid header, so the
  caller should read more and call again;
* :class:`ProxyProtocolError` as soon as the bytes cannot begin any valid header.

Validation is eager so that garbage is refused on the first read rather than
after a timeout: the first byte selects the version (``P`` for v1, ``\\r`` for
v2), the signature is compared as a prefix, the v2 version/command/family bytes
are checked as soon as they arrive, and the declared v2 length is checked
against the family's minimum and ``max_header_length`` before waiting for the
body.  For v1, complete fields of a partial line are fully checked and the field
being received is checked as a prefix (exactly for ports and IPv4; by character
set, length and ``::`` count for IPv6).  The line is only searched with
``bytes.find`` inside the first 107 bytes, so the cost is bounded whatever the
peer sends.

A ``LOCAL`` v2 header (health checks from the front proxy) still has its
address block validated, because its length delimits the header, but the
addresses are discarded as the spec requires: ``family`` reads ``"UNSPEC"`` and
both addresses are ``None``, so ``family == "UNSPEC"`` exactly when there is no
address to use.  A v1 ``UNKNOWN`` line is reported the same way.

This module imports only the standard library so that it can be tested and
fuzzed on its own.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MAX_HEADER_LENGTH",
    "MAX_V1_LENGTH",
    "MAX_V2_LENGTH",
    "V1_PREFIX",
    "V2_HEADER_LENGTH",
    "V2_SIGNATURE",
    "Address",
    "ProxyHeader",
    "ProxyProtocolError",
    "SocketAddress",
    "build_v1",
    "build_v2",
    "needed_bytes",
    "parse_header",
]

V1_PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Longest v1 line allowed by the spec, CRLF included ("PROXY TCP6" + 2 full
#: IPv6 literals + 2 ports + separators).
MAX_V1_LENGTH = 107
#: The v2 fixed part: signature, version/command, family, length.
V2_HEADER_LENGTH = 16
#: Largest v2 header the 16-bit length field can describe.
MAX_V2_LENGTH = V2_HEADER_LENGTH + 0xFFFF
#: Largest header of either version: enough buffer to always reach a verdict.
MAX_HEADER_LENGTH = MAX_V2_LENGTH

_MIN_V1_LENGTH = len(b"PROXY UNKNOWN\r\n")
_V2_FIXED = struct.Struct("!BBH")
_TLV_HEAD = struct.Struct("!BH")
_PORTS = struct.Struct("!HH")

_CMD_LOCAL = 0x0
_CMD_PROXY = 0x1
_COMMANDS = {_CMD_LOCAL: "LOCAL", _CMD_PROXY: "PROXY"}

_FAM_UNSPEC = 0x00
_FAM_TCP4 = 0x11
_FAM_TCP6 = 0x21
_FAM_UNIX = 0x31
# Accepted family/transport bytes -> (name, address block length).
_FAMILIES = {
    _FAM_UNSPEC: ("UNSPEC", 0),
    _FAM_TCP4: ("TCP4", 12),
    _FAM_TCP6: ("TCP6", 36),
    _FAM_UNIX: ("UNIX", 216),
}
_FAMILY_NAMES = {0x0: "AF_UNSPEC", 0x1: "AF_INET", 0x2: "AF_INET6", 0x3: "AF_UNIX"}
_TRANSPORT_NAMES = {0x0: "UNSPEC", 0x1: "STREAM", 0x2: "DGRAM"}
_UNIX_PATH_LENGTH = 108
_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"

_V1_PROTOCOLS = (b"TCP4", b"TCP6", b"UNKNOWN")
_V1_FIELD_NAMES = ("protocol", "source address", "destination address",
                   "source port", "destination port")
_EMPTY_FIELD = "v1 header has an empty field (extra or trailing space)"
_DIGITS = frozenset(b"0123456789")
_IPV6_CHARS = frozenset(b"0123456789abcdefABCDEF:.")
_MAX_IPV4_TEXT = len("255.255.255.255")
_MAX_IPV6_TEXT = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")

Address = tuple[str, int]
#: What builders accept: ``(host, port)`` or the 4-tuple ``getpeername()``
#: returns for AF_INET6 sockets (flow info and scope id are ignored).
SocketAddress = tuple[str, int] | tuple[str, int, int, int]
Buffer = bytes | bytearray | memoryview
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProxyProtocolError(ValueError):
    """The bytes are not, and cannot become, a valid PROXY protocol header.

    The connection should be closed: the spec forbids guessing or falling back
    to the real peer address when a header was expected.
    """


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One decoded header; ``raw`` is kept verbatim so it can be relayed as is.

    ``source``/``destination`` are ``(ip, port)`` for TCP4/TCP6, a path for UNIX
    (a leading NUL marks a Linux abstract socket) and ``None`` when ``family`` is
    ``"UNSPEC"`` (v2 AF_UNSPEC, v2 LOCAL command, v1 ``UNKNOWN``).
    """

    version: int
    command: str
    family: str
    source: Address | str | None
    destination: Address | str | None
    tlvs: tuple[tuple[int, bytes], ...]
    raw: bytes
    length: int


# --------------------------------------------------------------------------- parsing


def parse_header(
    data: Buffer, *, max_header_length: int = MAX_HEADER_LENGTH
) -> ProxyHeader | None:
    """Decode the header at the start of ``data``.

    Returns ``None`` while ``data`` is a valid but incomplete prefix, and raises
    :class:`ProxyProtocolError` as soon as it cannot be one.  Headers longer than
    ``max_header_length`` (typically the session's buffer size) are refused
    from their fixed part, before their body is awaited.
    """
    buf = _as_bytes(data, max_header_length)
    n = len(buf)
    if n == 0:
        return None
    first = buf[0]
    if first == V1_PREFIX[0]:
        if not V1_PREFIX.startswith(buf[: len(V1_PREFIX)]):
            raise ProxyProtocolError(
                f"invalid PROXY protocol v1 signature {buf[:6]!r}, expected b'PROXY '"
            )
        if n < len(V1_PREFIX):
            return None
        return _parse_v1(buf, min(MAX_V1_LENGTH, max_header_length))
    if first == V2_SIGNATURE[0]:
        return _parse_v2(buf, max_header_length)
    raise ProxyProtocolError(
        f"not a PROXY protocol header: first byte 0x{first:02x} starts neither v1 nor v2"
    )


def needed_bytes(data: Buffer, *, max_header_length: int = MAX_HEADER_LENGTH) -> int:
    """Lower bound on how many more bytes :func:`parse_header` needs to decide.

    0 means it would return a header or raise right now.  For v2 the bound is
    exact once the fixed part is in, which lets a caller read (or peek) exactly
    the header and nothing of the proxied stream; v1 has no length field, so
    past its minimal size the answer is 1.
    """
    try:
        if parse_header(data, max_header_length=max_header_length) is not None:
            return 0
    except ProxyProtocolError:
        return 0
    n = len(data)
    if n and data[0] == V2_SIGNATURE[0]:
        if n < V2_HEADER_LENGTH:
            return V2_HEADER_LENGTH - n
        (payload_length,) = struct.unpack_from("!H", data, 14)
        return int(V2_HEADER_LENGTH + payload_length - n)
    return max(1, _MIN_V1_LENGTH - n)


def _as_bytes(data: Buffer, max_header_length: int) -> bytes:
    """Copy at most what any verdict can depend on: bytes has find(), views do not."""
    if isinstance(data, bytes):
        return data
    cap = max(MAX_V1_LENGTH, min(max_header_length, MAX_V2_LENGTH))
    return bytes(data[:cap])


def _parse_v2(buf: bytes, max_header_length: int) -> ProxyHeader | None:
    n = len(buf)
    if n < V2_HEADER_LENGTH:
        head = min(n, len(V2_SIGNATURE))
        if buf[:head] != V2_SIGNATURE[:head]:
            raise ProxyProtocolError(
                f"invalid PROXY protocol v2 signature {buf[:head].hex()}"
            )
        if n > 12:
            _check_v2_command(buf[12])
        if n > 13:
            _check_v2_family(buf[13])
        return None
    if buf[:12] != V2_SIGNATURE:
        raise ProxyProtocolError(f"invalid PROXY protocol v2 signature {buf[:12].hex()}")
    ver_cmd, fam, payload_length = _V2_FIXED.unpack_from(buf, 12)
    command = _check_v2_command(ver_cmd)
    family, address_length = _check_v2_family(fam)
    if payload_length < address_length:
        raise ProxyProtocolError(
            f"v2 address length {payload_length} too short for {family} "
            f"(needs at least {address_length})"
        )
    total = V2_HEADER_LENGTH + payload_length
    if total > max_header_length:
        raise ProxyProtocolError(
            f"v2 header of {total} bytes exceeds the {max_header_length}-byte limit"
        )
    if n < total:
        return None

    start = V2_HEADER_LENGTH
    source: Address | str | None = None
    destination: Address | str | None = None
    if fam == _FAM_TCP4:
        src_port, dst_port = _PORTS.unpack_from(buf, start + 8)
        source = ("{}.{}.{}.{}".format(*buf[start : start + 4]), src_port)
        destination = ("{}.{}.{}.{}".format(*buf[start + 4 : start + 8]), dst_port)
    elif fam == _FAM_TCP6:
        src_port, dst_port = _PORTS.unpack_from(buf, start + 32)
        source = (_v6_text(ipaddress.IPv6Address(buf[start : start + 16])), src_port)
        destination = (_v6_text(ipaddress.IPv6Address(buf[start + 16 : start + 32])), dst_port)
    elif fam == _FAM_UNIX:
        source = _unix_path(buf[start : start + _UNIX_PATH_LENGTH])
        destination = _unix_path(buf[start + _UNIX_PATH_LENGTH : start + 2 * _UNIX_PATH_LENGTH])
    tlvs = _parse_tlvs(buf, start + address_length, total)
    if command == "LOCAL":
        # The spec says to use the real endpoints: never let a LOCAL header
        # carry addresses that a consumer could mistake for the client's.
        family, source, destination = "UNSPEC", None, None
    raw = buf[:total] if n > total else buf
    return ProxyHeader(2, command, family, source, destination, tlvs, raw, total)


def _check_v2_command(ver_cmd: int) -> str:
    version = ver_cmd >> 4
    if version != 2:
        raise ProxyProtocolError(f"unsupported PROXY protocol v2 version nibble {version}")
    command = _COMMANDS.get(ver_cmd & 0x0F)
    if command is None:
        raise ProxyProtocolError(f"unknown PROXY protocol v2 command 0x{ver_cmd & 0x0F:x}")
    return command


def _check_v2_family(fam: int) -> tuple[str, int]:
    known = _FAMILIES.get(fam)
    if known is not None:
        return known
    family = _FAMILY_NAMES.get(fam >> 4)
    transport = _TRANSPORT_NAMES.get(fam & 0x0F)
    if family is None:
        raise ProxyProtocolError(f"unknown PROXY protocol v2 address family 0x{fam >> 4:x}")
    if transport is None:
        raise ProxyProtocolError(f"unknown PROXY protocol v2 transport protocol 0x{fam & 0x0F:x}")
    raise ProxyProtocolError(
        f"unsupported PROXY protocol v2 family/protocol {family}/{transport} (0x{fam:02x}): "
        "only STREAM over AF_INET, AF_INET6 or AF_UNIX, or AF_UNSPEC, is accepted"
    )


def _parse_tlvs(buf: bytes, pos: int, end: int) -> tuple[tuple[int, bytes], ...]:
    tlvs: list[tuple[int, bytes]] = []
    while pos < end:
        if end - pos < _TLV_HEAD.size:
            raise ProxyProtocolError(
                f"v2 TLV header at offset {pos} overruns the header ({end - pos} bytes left)"
            )
        kind, length = _TLV_HEAD.unpack_from(buf, pos)
        pos += _TLV_HEAD.size
        if pos + length > end:
            raise ProxyProtocolError(
                f"v2 TLV 0x{kind:02x} of length {length} overruns the header "
                f"({end - pos} bytes left)"
            )
        tlvs.append((kind, buf[pos : pos + length]))
        pos += length
    return tuple(tlvs)


def _unix_path(block: bytes) -> str:
    """NUL-padded sun_path to str; a leading NUL keeps an abstract socket's name."""
    if block[:1] == b"\x00":
        name = block[1:].rstrip(b"\x00")
        path = b"\x00" + name if name else b""
    else:
        path = block.split(b"\x00", 1)[0]
    return path.decode("utf-8", "surrogateescape")


def _parse_v1(buf: bytes, limit: int) -> ProxyHeader | None:
    end = buf.find(b"\r\n", len(V1_PREFIX), limit)
    if end < 0:
        if len(buf) >= limit:
            raise ProxyProtocolError(f"v1 header has no CRLF within the first {limit} bytes")
        body = buf[len(V1_PREFIX) :]
        if body.endswith(b"\r"):
            body = body[:-1]
        _check_v1_prefix(body)
        return None
    family, source, destination = _parse_v1_line(buf[len(V1_PREFIX) : end])
    total = end + 2
    raw = buf[:total] if len(buf) > total else buf
    return ProxyHeader(1, "PROXY", family, source, destination, (), raw, total)


def _parse_v1_line(line: bytes) -> tuple[str, Address | None, Address | None]:
    fields = line.split(b" ")
    protocol = _v1_protocol(fields[0])
    if protocol == b"UNKNOWN":
        return "UNSPEC", None, None
    if b"" in fields:
        raise ProxyProtocolError(_EMPTY_FIELD)
    if len(fields) != 5:
        raise ProxyProtocolError(
            f"v1 {protocol.decode()} line has {len(fields) - 1} fields after the protocol, "
            "expected 4"
        )
    v6 = protocol == b"TCP6"
    src_ip = _v1_address(fields[1], v6, 1)
    dst_ip = _v1_address(fields[2], v6, 2)
    return protocol.decode(), (src_ip, _v1_port(fields[3], 3)), (dst_ip, _v1_port(fields[4], 4))


def _check_v1_prefix(body: bytes) -> None:
    """Raise unless ``body`` (after ``PROXY ``, CR stripped) can still become a line."""
    fields = body.split(b" ")
    partial = fields.pop()
    if not fields:
        if not any(p.startswith(partial) for p in _V1_PROTOCOLS):
            raise ProxyProtocolError(f"unknown v1 protocol {partial!r}")
        return
    protocol = _v1_protocol(fields[0])
    if protocol == b"UNKNOWN":
        return
    index = len(fields)
    if index > 4:
        raise ProxyProtocolError(
            f"v1 {protocol.decode()} line has more than 4 fields after the protocol"
        )
    if b"" in fields:
        raise ProxyProtocolError(_EMPTY_FIELD)
    v6 = protocol == b"TCP6"
    for i in range(1, index):
        if i < 3:
            _v1_address(fields[i], v6, i)
        else:
            _v1_port(fields[i], i)
    if index < 3:
        _v1_address_prefix(partial, v6, index)
    else:
        _v1_port_prefix(partial, index)


def _v1_protocol(field: bytes) -> bytes:
    if field not in _V1_PROTOCOLS:
        if not field:
            raise ProxyProtocolError(_EMPTY_FIELD)
        raise ProxyProtocolError(f"unknown v1 protocol {field!r}")
    return field


def _v1_address(field: bytes, v6: bool, index: int) -> str:
    name = _V1_FIELD_NAMES[index]
    if b"%" in field:
        raise ProxyProtocolError(f"v1 {name} {field!r} has a scope id, meaningless here")
    try:
        text = field.decode("ascii")
        if v6:
            return _v6_text(ipaddress.IPv6Address(text))
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    try:
        other = ipaddress.ip_address(field.decode("ascii"))
    except ValueError:
        other = None
    if other is not None:
        raise ProxyProtocolError(
            f"v1 {name} {field!r} is IPv{other.version} but the protocol is "
            f"{'TCP6' if v6 else 'TCP4'}"
        )
    raise ProxyProtocolError(f"v1 {name} {field!r} is not a valid IPv{6 if v6 else 4} address")


def _v1_address_prefix(field: bytes, v6: bool, index: int) -> None:
    name = _V1_FIELD_NAMES[index]
    if v6:
        if (
            len(field) > _MAX_IPV6_TEXT
            or not _IPV6_CHARS.issuperset(field)
            or b":::" in field
            or field.count(b"::") > 1
        ):
            raise ProxyProtocolError(f"v1 {name} {field!r} cannot start an IPv6 address")
        return
    octets = field.split(b".")
    if len(field) > _MAX_IPV4_TEXT or len(octets) > 4:
        raise ProxyProtocolError(f"v1 {name} {field!r} cannot start an IPv4 address")
    last = octets.pop()
    for octet in octets:
        if not _is_decimal(octet, 255):
            raise ProxyProtocolError(f"v1 {name} {field!r} cannot start an IPv4 address")
    if last and not _is_decimal(last, 255):
        raise ProxyProtocolError(f"v1 {name} {field!r} cannot start an IPv4 address")


def _v1_port(field: bytes, index: int) -> int:
    if not _is_decimal(field, 0xFFFF):
        raise ProxyProtocolError(
            f"v1 {_V1_FIELD_NAMES[index]} {field!r} is not a decimal in [0, 65535] "
            "without leading zeros"
        )
    return int(field)


def _v1_port_prefix(field: bytes, index: int) -> None:
    if field and not _is_decimal(field, 0xFFFF):
        raise ProxyProtocolError(
            f"v1 {_V1_FIELD_NAMES[index]} {field!r} is not a decimal in [0, 65535] "
            "without leading zeros"
        )


def _is_decimal(field: bytes, maximum: int) -> bool:
    """ASCII digits only (int() would accept '+1', ' 1', '1_0'), no leading zero."""
    return (
        0 < len(field) <= len(str(maximum))
        and _DIGITS.issuperset(field)
        and (field[0] != 0x30 or len(field) == 1)
        and int(field) <= maximum
    )


# -------------------------------------------------------------------------- building


def build_v1(source: SocketAddress | None, destination: SocketAddress | None) -> bytes:
    """Encode a v1 line; both addresses ``None`` gives ``PROXY UNKNOWN``.

    Mixed IPv4/IPv6 endpoints are sent as TCP6 with the IPv4 one mapped
    (``::ffff:a.b.c.d``), as HAProxy does.
    """
    if source is None and destination is None:
        return b"PROXY UNKNOWN\r\n"
    src, dst, src_port, dst_port = _endpoints(source, destination)
    if src.version == 4:
        protocol, src_text, dst_text = "TCP4", str(src), str(dst)
    else:
        protocol, src_text, dst_text = "TCP6", _v6_text(src), _v6_text(dst)
    return f"PROXY {protocol} {src_text} {dst_text} {src_port} {dst_port}\r\n".encode("ascii")


def build_v2(
    source: SocketAddress | None,
    destination: SocketAddress | None,
    command: str = "PROXY",
    tlvs: Iterable[tuple[int, bytes]] = (),
) -> bytes:
    """Encode a v2 header byte-for-byte as HAProxy emits it.

    ``LOCAL`` ignores the addresses and sends AF_UNSPEC with an empty block;
    ``PROXY`` with both addresses ``None`` sends AF_UNSPEC too.  TLVs follow the
    address block in the order given.
    """
    tlv_bytes = _encode_tlvs(tlvs)
    if command == "LOCAL":
        return _v2(_CMD_LOCAL, _FAM_UNSPEC, tlv_bytes)
    if command != "PROXY":
        raise ProxyProtocolError(f"unknown PROXY protocol command {command!r}")
    if source is None and destination is None:
        return _v2(_CMD_PROXY, _FAM_UNSPEC, tlv_bytes)
    src, dst, src_port, dst_port = _endpoints(source, destination)
    fam = _FAM_TCP4 if src.version == 4 else _FAM_TCP6
    block = src.packed + dst.packed + _PORTS.pack(src_port, dst_port)
    return _v2(_CMD_PROXY, fam, block + tlv_bytes)


def _v2(command: int, fam: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise ProxyProtocolError(f"v2 payload of {len(payload)} bytes exceeds 65535")
    return V2_SIGNATURE + _V2_FIXED.pack(0x20 | command, fam, len(payload)) + payload


def _encode_tlvs(tlvs: Iterable[tuple[int, bytes]]) -> bytes:
    parts: list[bytes] = []
    for kind, value in tlvs:
        if not 0 <= kind <= 0xFF:
            raise ProxyProtocolError(f"TLV type {kind} is not a byte")
        if len(value) > 0xFFFF:
            raise ProxyProtocolError(f"TLV 0x{kind:02x} value of {len(value)} bytes exceeds 65535")
        parts.append(_TLV_HEAD.pack(kind, len(value)))
        parts.append(bytes(value))
    return b"".join(parts)



def _endpoints(
    source: SocketAddress | None, destination: SocketAddress | None
) -> tuple[_IP, _IP, int, int]:
    if source is None or destination is None:
        raise ProxyProtocolError("source and destination must both be given or both be None")
    src, src_port = _endpoint(source, "source")
    dst, dst_port = _endpoint(destination, "destination")
    if src.version != dst.version:
        src, dst = _to_v6(src), _to_v6(dst)
    return src, dst, src_port, dst_port


def _endpoint(address: SocketAddress, name: str) -> tuple[_IP, int]:
    host, port = address[0], address[1]
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ProxyProtocolError(f"{name} port {port!r} is not in [0, 65535]")
    try:
        # The scope id ("fe80::1%eth0") means nothing on the receiving host.
        ip = ipaddress.ip_address(host.partition("%")[0])
    except (ValueError, AttributeError) as exc:
        raise ProxyProtocolError(f"{name} address {host!r} is not an IP address") from exc
    return ip, port


def _v6_text(ip: _IP) -> str:
    """RFC 5952 text, with IPv4-mapped addresses as ``::ffff:a.b.c.d`` like inet_ntop.

    Python before 3.13 prints them in hex (``::ffff:102:304``); pin one form so
    headers and logs do not depend on the interpreter.
    """
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return f"::ffff:{mapped}" if mapped is not None else str(ip)


def _to_v6(ip: _IP) -> ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address):
        return ip
    return ipaddress.IPv6Address(_V4_MAPPED_PREFIX + ip.packed)
