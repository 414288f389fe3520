"""PROXY protocol codec: spec examples, hand-computed bytes, errors, prefixes, fuzzing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysozu.protocols.proxy_protocol import (
    MAX_HEADER_LENGTH,
    MAX_V1_LENGTH,
    MAX_V2_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    build_v1,
    build_v2,
    needed_bytes,
    parse_header,
)

SIG = "0d0a0d0a000d0a515549540a"
V6_MAX = ":".join(["ffff"] * 8)
UNIX_SRC = b"/tmp/a.sock".ljust(108, b"\x00").hex()
UNIX_DST = b"\x00abstract".ljust(108, b"\x00").hex()


def h(text: str) -> bytes:
    """Hex with spaces allowed, so expected bytes can be laid out field by field."""
    return bytes.fromhex(text.replace(" ", ""))


# ------------------------------------------------------------------ valid headers

# (wire bytes, version, command, family, source, destination, tlvs)
VALID = [
    # v1, examples from the spec.
    (
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        1, "PROXY", "TCP4", ("255.255.255.255", 65535), ("255.255.255.255", 65535), (),
    ),
    (
        f"PROXY TCP6 {V6_MAX} {V6_MAX} 65535 65535\r\n".encode(),
        1, "PROXY", "TCP6", (V6_MAX, 65535), (V6_MAX, 65535), (),
    ),
    (b"PROXY UNKNOWN\r\n", 1, "PROXY", "UNSPEC", None, None, ()),
    # The worst case the spec sizes its 107 bytes on: UNKNOWN ignores the rest.
    (
        f"PROXY UNKNOWN {V6_MAX} {V6_MAX} 65535 65535\r\n".encode(),
        1, "PROXY", "UNSPEC", None, None, (),
    ),
    (
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        1, "PROXY", "TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), (),
    ),
    (
        b"PROXY TCP4 0.0.0.0 10.0.0.1 0 80\r\n",
        1, "PROXY", "TCP4", ("0.0.0.0", 0), ("10.0.0.1", 80), (),
    ),
    # Any valid IPv6 text is accepted and normalised.
    (
        b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:1.2.3.4 1 2\r\n",
        1, "PROXY", "TCP6", ("2001:db8::1", 1), ("::ffff:1.2.3.4", 2), (),
    ),
    # v2 TCP4 192.168.0.1:56324 -> 192.168.0.11:443.
    (
        h(f"{SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb"),
        2, "PROXY", "TCP4", ("192.168.0.1", 56324), ("192.168.0.11", 443), (),
    ),
    # v2 TCP6 2001:db8::1:12345 -> 2001:db8::2:80.
    (
        h(
            f"{SIG} 21 21 0024 20010db8000000000000000000000001"
            " 20010db8000000000000000000000002 3039 0050"
        ),
        2, "PROXY", "TCP6", ("2001:db8::1", 12345), ("2001:db8::2", 80), (),
    ),
    # v2 TCP4 with ALPN (0x01) "h2" and NOOP (0x04) empty TLVs.
    (
        h(f"{SIG} 21 11 0014 7f000001 7f000002 1f90 0050 01 0002 6832 04 0000"),
        2, "PROXY", "TCP4", ("127.0.0.1", 8080), ("127.0.0.2", 80),
        ((0x01, b"h2"), (0x04, b"")),
    ),
    # v2 LOCAL: what HAProxy sends for health checks.
    (h(f"{SIG} 20 00 0000"), 2, "LOCAL", "UNSPEC", None, None, ()),
    (h(f"{SIG} 20 00 0005 01 0002 6832"), 2, "LOCAL", "UNSPEC", None, None, ((1, b"h2"),)),
    # LOCAL with a populated block: validated, framed, but the addresses are dropped.
    (
        h(f"{SIG} 20 11 000f 7d190a01 0a040508 1f90 1068 05 0000"),
        2, "LOCAL", "UNSPEC", None, None, ((5, b""),),
    ),
    # PROXY over AF_UNSPEC: no addresses, TLVs right after the fixed part.
    (h(f"{SIG} 21 00 0004 02 0001 61"), 2, "PROXY", "UNSPEC", None, None, ((2, b"a"),)),
    # v2 UNIX, a path and a Linux abstract socket.
    (
        h(f"{SIG} 21 31 00d8 {UNIX_SRC} {UNIX_DST}"),
        2, "PROXY", "UNIX", "/tmp/a.sock", "\x00abstract", (),
    ),
]


@pytest.mark.parametrize(
    ("wire", "version", "command", "family", "source", "destination", "tlvs"), VALID
)
def test_parse_valid(wire, version, command, family, source, destination, tlvs):
    for data in (wire, wire + b"GET / HTTP/1.1\r\n", bytearray(wire), memoryview(wire + b"x")):
        header = parse_header(data)
        assert header == ProxyHeader(
            version, command, family, source, destination, tlvs, wire, len(wire)
        )
        assert type(header.raw) is bytes
        assert needed_bytes(data) == 0


@pytest.mark.parametrize("wire", [case[0] for case in VALID])
def test_every_prefix_is_incomplete(wire):
    for k in range(len(wire)):
        assert parse_header(wire[:k]) is None, wire[:k]
        assert parse_header(memoryview(wire)[:k]) is None
        assert needed_bytes(wire[:k]) >= 1
        assert k + needed_bytes(wire[:k]) <= len(wire)


def test_needed_bytes_is_exact_for_v2():
    wire = build_v2(("10.0.0.1", 1), ("10.0.0.2", 2), tlvs=[(1, b"h2")])
    assert needed_bytes(b"") == 15  # the shortest header, "PROXY UNKNOWN\r\n"
    assert needed_bytes(wire[:5]) == 11
    for k in range(16, len(wire)):
        assert needed_bytes(wire[:k]) == len(wire) - k
    assert needed_bytes(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2") == 1
    assert needed_bytes(b"garbage") == 0


def test_v1_line_of_exactly_107_bytes_is_accepted():
    line = f"PROXY UNKNOWN {V6_MAX} {V6_MAX} 65535 65535\r\n".encode()
    assert len(line) == MAX_V1_LENGTH
    assert parse_header(line) is not None
    assert parse_header(line[:-1]) is None


# ---------------------------------------------------------------------- builders

BUILD_V2 = [
    (
        ("192.168.0.1", 56324), ("192.168.0.11", 443), "PROXY", (),
        f"{SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb",
    ),
    (
        ("2001:db8::1", 12345), ("2001:db8::2", 80), "PROXY", (),
        f"{SIG} 21 21 0024 20010db8000000000000000000000001"
        " 20010db8000000000000000000000002 3039 0050",
    ),
    # Mixed families: the IPv4 side is mapped to ::ffff:1.2.3.4 and AF_INET6 is used.
    (
        ("1.2.3.4", 1), ("::1", 2), "PROXY", (),
        f"{SIG} 21 21 0024 00000000000000000000ffff01020304"
        " 00000000000000000000000000000001 0001 0002",
    ),
    (
        ("::1", 2), ("1.2.3.4", 1), "PROXY", (),
        f"{SIG} 21 21 0024 00000000000000000000000000000001"
        " 00000000000000000000ffff01020304 0002 0001",
    ),
    # getpeername() of an AF_INET6 socket: flow info and scope id are dropped.
    (
        ("fe80::1%eth0", 443, 0, 2), ("fe80::2", 80, 0, 2), "PROXY", (),
        f"{SIG} 21 21 0024 fe800000000000000000000000000001"
        " fe800000000000000000000000000002 01bb 0050",
    ),
    (
        ("10.0.0.1", 1), ("10.0.0.2", 2), "PROXY", [(0x01, b"h2"), (0xEA, b"")],
        f"{SIG} 21 11 0014 0a000001 0a000002 0001 0002 01 0002 6832 ea 0000",
    ),
    (None, None, "LOCAL", (), f"{SIG} 20 00 0000"),
    (("10.0.0.1", 1), ("10.0.0.2", 2), "LOCAL", (), f"{SIG} 20 00 0000"),
    (
        None, None, "LOCAL", [(0x02, b"example.com")],
        f"{SIG} 20 00 000e 02 000b {b'example.com'.hex()}",
    ),
    (None, None, "PROXY", (), f"{SIG} 21 00 0000"),
]


@pytest.mark.parametrize(("source", "destination", "command", "tlvs", "expected"), BUILD_V2)
def test_build_v2(source, destination, command, tlvs, expected):
    wire = build_v2(source, destination, command, tlvs)
    assert wire == h(expected)
    assert wire.startswith(V2_SIGNATURE)
    header = parse_header(wire)
    assert header is not None
    assert header.command == command
    assert header.tlvs == tuple(tlvs)
    assert header.length == len(wire)


BUILD_V1 = [
    (
        ("192.168.0.1", 56324), ("192.168.0.11", 443),
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
    ),
    (("2001:db8::1", 1, 0, 0), ("2001:db8::2", 2), b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
    (("1.2.3.4", 1), ("::1", 2), b"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n"),
    (None, None, b"PROXY UNKNOWN\r\n"),
]


@pytest.mark.parametrize(("source", "destination", "expected"), BUILD_V1)
def test_build_v1(source, destination, expected):
    wire = build_v1(source, destination)
    assert wire == expected
    header = parse_header(wire)
    assert header is not None
    if source is None:
        assert header.source is None
    else:
        assert header.source is not None and header.source[1] == source[1]


BUILD_ERRORS = [
    (lambda: build_v2(("1.2.3.4", 1), None), "both be given"),
    (lambda: build_v1(None, ("1.2.3.4", 1)), "both be given"),
    (lambda: build_v2(("1.2.3.4", 65536), ("1.2.3.4", 1)), "source port"),
    (lambda: build_v2(("1.2.3.4", 1), ("1.2.3.4", -1)), "destination port"),
    (lambda: build_v1(("example.com", 1), ("1.2.3.4", 1)), "not an IP address"),
    (lambda: build_v2(None, None, "FOO"), "unknown PROXY protocol command"),
    (lambda: build_v2(None, None, "LOCAL", [(256, b"")]), "not a byte"),
    (lambda: build_v2(None, None, "LOCAL", [(1, b"x" * 65536)]), "exceeds 65535"),
    (lambda: build_v2(None, None, "LOCAL", [(1, b"x" * 40000)] * 2), "exceeds 65535"),
]


@pytest.mark.parametrize(("call", "fragment"), BUILD_ERRORS)
def test_build_errors(call, fragment):
    with pytest.raises(ProxyProtocolError, match=fragment):
        call()


# --------------------------------------------------------------------- invalid

INVALID = [
    # Signatures.
    (b"GET / HTTP/1.1\r\n", "first byte 0x47"),
    (b"proxy TCP4", "first byte 0x70"),
    (b"PROXX", "v1 signature"),
    (b"PROXY\r\n", "v1 signature"),
    (b"\r\n\r\n\x01", "v2 signature"),
    (b"\r\r", "v2 signature"),
    (h(f"{SIG[:-2]}0b 21 11 000c") + bytes(12), "v2 signature"),
    # v1 framing.
    (b"PROXY UNKNOWN " + b"x" * 93, "no CRLF within the first 107 bytes"),
    (f"PROXY UNKNOWN {V6_MAX} {V6_MAX} 65535 655350\r\n".encode(), "no CRLF within"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown v1 protocol"),
    (b"PROXY TCPX", "unknown v1 protocol"),
    (b"PROXY UNKNOWNX\r\n", "unknown v1 protocol"),
    (b"PROXY \r\n", "empty field"),
    (b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "empty field"),
    (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "empty field"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "empty field"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "3 fields after the protocol, expected 4"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "5 fields after the protocol, expected 4"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "destination port"),
    # v1 addresses.
    (b"PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n", "source address b'256.1.1.1' is not a valid IPv4"),
    (b"PROXY TCP4 01.1.1.1 1.1.1.1 1 2\r\n", "is not a valid IPv4"),
    (b"PROXY TCP4 1.1.1 1.1.1.1 1 2\r\n", "is not a valid IPv4"),
    (b"PROXY TCP4 1.1.1.\xff 1.1.1.1 1 2\r\n", "is not a valid IPv4"),
    (b"PROXY TCP4 localhost 1.1.1.1 1 2\r\n", "is not a valid IPv4"),
    (b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "destination address b'::1' is IPv6 but the protocol"),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "is IPv4 but the protocol is TCP6"),
    (b"PROXY TCP6 ::1 ::g 1 2\r\n", "is not a valid IPv6"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "scope id"),
    # v1 ports.
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port b'65536'"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "without leading zeros"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", "without leading zeros"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "source port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 8_0 2\r\n", "source port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", "destination port"),
    # v1 garbage is refused before the CRLF arrives.
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", "more than 4 fields"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3", "more than 4 fields"),
    (b"PROXY TCP4 1.2.3.4  ", "empty field"),
    (b"PROXY TCP4 1.2.3.256", "cannot start an IPv4"),
    (b"PROXY TCP4 1.2.3.4.", "cannot start an IPv4"),
    (b"PROXY TCP4 1.02", "cannot start an IPv4"),
    (b"PROXY TCP4 ::1", "cannot start an IPv4"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 99999", "source port"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 01", "source port"),
    (b"PROXY TCP6 ::1 1:::", "cannot start an IPv6"),
    (b"PROXY TCP6 1::2::", "cannot start an IPv6"),
    (b"PROXY TCP6 ::x", "cannot start an IPv6"),
    (b"PROXY TCP6 ::1\rX", "cannot start an IPv6"),
    # v2 version, command, family, checked as soon as their byte arrives.
    (h(f"{SIG} 11"), "version nibble 1"),
    (h(f"{SIG} 31 11 000c") + bytes(12), "version nibble 3"),
    (h(f"{SIG} 01"), "version nibble 0"),
    (h(f"{SIG} 22"), "unknown PROXY protocol v2 command 0x2"),
    (h(f"{SIG} 2f 11 000c") + bytes(12), "command 0xf"),
    (h(f"{SIG} 21 41"), "address family 0x4"),
    (h(f"{SIG} 21 f1 000c") + bytes(12), "address family 0xf"),
    (h(f"{SIG} 21 13"), "transport protocol 0x3"),
    (h(f"{SIG} 21 12 000c") + bytes(12), "AF_INET/DGRAM (0x12): only STREAM"),
    (h(f"{SIG} 21 22"), "AF_INET6/DGRAM"),
    (h(f"{SIG} 21 32"), "AF_UNIX/DGRAM"),
    (h(f"{SIG} 21 10"), "AF_INET/UNSPEC"),
    (h(f"{SIG} 21 01"), "AF_UNSPEC/STREAM"),
    (h(f"{SIG} 20 12 000c") + bytes(12), "only STREAM"),  # LOCAL does not excuse a bad family
    # v2 lengths.
    (h(f"{SIG} 21 11 000b"), "address length 11 too short for TCP4 (needs at least 12)"),
    (h(f"{SIG} 21 21 0023"), "address length 35 too short for TCP6 (needs at least 36)"),
    (h(f"{SIG} 21 31 00d7"), "address length 215 too short for UNIX (needs at least 216)"),
    (h(f"{SIG} 20 11 0000"), "too short for TCP4"),
    # v2 TLVs.
    (h(f"{SIG} 20 00 0002 0100"), "TLV header at offset 16 overruns"),
    (h(f"{SIG} 21 11 000e 01020304 05060708 0001 0002 01 00"), "TLV header at offset 28"),
    (h(f"{SIG} 20 00 0004 01 0002 68"), "TLV 0x01 of length 2 overruns the header (1 bytes left)"),
    (h(f"{SIG} 20 00 0008 01 0000 ea 0003 6832"), "TLV 0xea of length 3 overruns"),
]


@pytest.mark.parametrize(("data", "fragment"), INVALID)
def test_invalid(data, fragment):
    with pytest.raises(ProxyProtocolError) as info:
        parse_header(data)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    assert needed_bytes(data) == 0


def test_max_header_length_is_checked_before_the_body_arrives():
    wire = build_v2(None, None, "LOCAL", [(1, b"x" * 100)])
    assert parse_header(wire, max_header_length=len(wire)) is not None
    with pytest.raises(ProxyProtocolError, match="v2 header of 119 bytes exceeds the 118-byte"):
        parse_header(wire[:16], max_header_length=len(wire) - 1)
    with pytest.raises(ProxyProtocolError, match="no CRLF within the first 20 bytes"):
        parse_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", max_header_length=20)


def test_constants():
    assert bytes.fromhex(SIG) == V2_SIGNATURE
    assert MAX_V1_LENGTH == 107
    assert MAX_V2_LENGTH == MAX_HEADER_LENGTH == 16 + 65535


# ------------------------------------------------------------------ round trips


@given(
    st.ip_addresses(v=4),
    st.ip_addresses(v=4),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4),
)
def test_round_trip_v4(src, dst, sport, dport, tlvs):
    wire = build_v2((str(src), sport), (str(dst), dport), tlvs=tlvs)
    assert parse_header(wire) == ProxyHeader(
        2, "PROXY", "TCP4", (str(src), sport), (str(dst), dport), tuple(tlvs), wire, len(wire)
    )
    line = build_v1((str(src), sport), (str(dst), dport))
    header = parse_header(line)
    assert header is not None
    assert (header.family, header.source, header.destination) == (
        "TCP4", (str(src), sport), (str(dst), dport)
    )


@given(st.ip_addresses(v=6), st.ip_addresses(v=6), st.integers(0, 65535), st.integers(0, 65535))
def test_round_trip_v6(src, dst, sport, dport):
    v2 = parse_header(build_v2((str(src), sport), (str(dst), dport)))
    v1 = parse_header(build_v1((str(src), sport), (str(dst), dport)))
    assert v2 is not None and v1 is not None
    assert v2.family == v1.family == "TCP6"
    assert v2.source == v1.source
    assert v2.destination == v1.destination
    assert v2.source is not None and v2.destination is not None
    assert (v2.source[1], v2.destination[1]) == (sport, dport)
    assert ipaddress.ip_address(v2.source[0]) == src
    assert ipaddress.ip_address(v2.destination[0]) == dst


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4))
def test_round_trip_local(tlvs):
    wire = build_v2(("1.2.3.4", 1), ("5.6.7.8", 2), "LOCAL", tlvs)
    assert parse_header(wire) == ProxyHeader(
        2, "LOCAL", "UNSPEC", None, None, tuple(tlvs), wire, len(wire)
    )


# --------------------------------------------------------------------- fuzzing

_SEEDS = [case[0] for case in VALID]


@st.composite
def near_headers(draw):
    """Valid headers with a few bytes replaced, cut or appended: reaches deep paths."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.sampled_from([0x00, 0x0A, 0x0D, 0x20, 0x2E, 0x30, 0x3A, 0xFF, data[i]]))
    data = data[: draw(st.integers(0, len(data)))]
    return bytes(data) + draw(st.binary(max_size=8))


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=300), near_headers()))
def test_random_bytes_never_raise_anything_else(data):
    outcomes = []
    for k in range(len(data) + 1):
        try:
            outcomes.append(parse_header(data[:k]))
        except ProxyProtocolError:
            outcomes.append("error")
    # Verdicts are monotonic: None until a header or an error, which then stick.
    verdict = next((o for o in outcomes if o is not None), None)
    if verdict is None:
        return
    first = outcomes.index(verdict)
    assert all(o is None for o in outcomes[:first])
    assert all(o == verdict for o in outcomes[first:])
    if isinstance(verdict, ProxyHeader):
        assert verdict.length == first
        assert verdict.raw == data[:first]
