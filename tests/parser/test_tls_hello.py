"""The ClientHello parser of SNI passthrough: real hellos from Python's ``ssl`` (made at test
time with memory BIOs, so no capture and no key is stored), split at every byte and over
many records, hand-built malformed hellos, and property tests that arbitrary bytes only ever
give None, a hello or a ``ClientHelloError``."""

from __future__ import annotations

import ssl
import struct
from collections.abc import Iterator
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pysozu.parser.tls_hello import (
    MAX_HELLO_SIZE,
    ClientHello,
    ClientHelloError,
    parse_client_hello,
)


@pytest.fixture(autouse=True)
def parser_backend() -> Iterator[str]:
    """This parser does not use the HTTP scanner: run once, not once per scanner backend."""
    yield "none"


@cache
def ssl_hello(server_name: str | None, alpn: tuple[str, ...] = (), tls12: bool = False) -> bytes:
    """The first flight of a Python ``ssl`` client: its ClientHello records."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def records(message: bytes, sizes: list[int], version: bytes = b"\x03\x01") -> bytes:
    """``message`` (a handshake message) framed as handshake records of the given sizes
    (the last record takes what is left)."""
    out = bytearray()
    pos = 0
    for size in [*sizes, len(message)]:
        chunk = message[pos : pos + size]
        if not chunk:
            break
        out += b"\x16" + version + struct.pack("!H", len(chunk)) + chunk
        pos += len(chunk)
    return bytes(out)


def message_of(hello: bytes) -> bytes:
    """The handshake message of a single-record hello."""
    assert hello[0] == 22
    length = struct.unpack("!H", hello[3:5])[0]
    return hello[5 : 5 + length]


def vec(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "big") + data


def ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!H", ext_type) + vec(2, data)


def sni_ext(*names: bytes, name_type: int = 0) -> bytes:
    return ext(0, vec(2, b"".join(bytes([name_type]) + vec(2, n) for n in names)))


def alpn_ext(*protocols: bytes) -> bytes:
    return ext(16, vec(2, b"".join(vec(1, p) for p in protocols)))


def build(
    extensions: bytes | None = b"",
    *,
    session_id: bytes = b"",
    suites: bytes = b"\x13\x01",
    compression: bytes = b"\x00",
    trailing: bytes = b"",
) -> bytes:
    """A hand-built ClientHello handshake message (None: no extensions block at all)."""
    body = b"\x03\x03" + bytes(32) + vec(1, session_id) + vec(2, suites) + vec(1, compression)
    if extensions is not None:
        body += vec(2, extensions)
    body += trailing
    return b"\x01" + len(body).to_bytes(3, "big") + body


# -- real hellos ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alpn", "tls12", "expected"),
    [
        ("a.test", (), False, ClientHello("a.test", [])),
        ("WWW.Example.COM.", (), False, ClientHello("www.example.com", [])),
        (None, (), False, ClientHello(None, [])),
        ("b.test", ("h2", "http/1.1"), False, ClientHello("b.test", ["h2", "http/1.1"])),
        (None, ("http/1.1",), False, ClientHello(None, ["http/1.1"])),
        ("old.test", (), True, ClientHello("old.test", [])),
    ],
    ids=["sni", "sni-case-dot", "no-sni", "sni-alpn", "alpn-only", "tls12"],
)
def test_real_hellos(
    name: str | None, alpn: tuple[str, ...], tls12: bool, expected: ClientHello
) -> None:
    assert parse_client_hello(ssl_hello(name, alpn, tls12)) == expected


@pytest.mark.parametrize("name", ["a.test", None])
def test_every_prefix_of_a_real_hello_is_incomplete(name: str | None) -> None:
    hello = ssl_hello(name, ("h2",))
    for end in range(len(hello)):
        assert parse_client_hello(hello[:end]) is None, end
        assert parse_client_hello(memoryview(hello)[:end]) is None, end
    assert parse_client_hello(bytearray(hello)) == ClientHello(name, ["h2"])


def test_bytes_after_the_hello_are_not_looked_at() -> None:
    hello = ssl_hello("a.test")
    assert parse_client_hello(hello + b"\x17\x03\x03garbage")
    assert parse_client_hello(hello + b"\xff" * 100) == ClientHello("a.test", [])


def test_real_hello_split_over_two_records_at_every_byte() -> None:
    message = message_of(ssl_hello("split.test", ("h2",)))
    expected = ClientHello("split.test", ["h2"])
    for cut in range(1, len(message)):
        framed = records(message, [cut])
        assert parse_client_hello(framed) == expected, cut
        # and the framed stream is incomplete until its last byte
        assert parse_client_hello(framed[:-1]) is None, cut


def test_real_hello_in_one_byte_records() -> None:
    message = message_of(ssl_hello("tiny.test"))
    framed = records(message, [1] * len(message))
    assert len(framed) == 6 * len(message)
    assert parse_client_hello(framed) == ClientHello("tiny.test", [])
    for end in range(0, len(framed), 7):
        assert parse_client_hello(framed[:end]) is None


def test_hello_without_extensions() -> None:
    assert parse_client_hello(records(build(None), [])) == ClientHello(None, [])


def test_unknown_name_types_are_skipped() -> None:
    extensions = ext(0, vec(2, b"\x07" + vec(2, b"opaque") + b"\x00" + vec(2, b"Host.Test")))
    assert parse_client_hello(records(build(extensions), [])) == ClientHello("host.test", [])


# -- malformed -----------------------------------------------------------------------------------

MALFORMED: list[tuple[bytes, str]] = [
    (b"\x17\x03\x03\x00\x05hello", "content type 23"),
    (b"GET / HTTP/1.1\r\n", "content type 71"),
    (b"\x80\x2e\x01\x03\x01", "SSLv2"),
    (b"\x16\x02", "version major 2"),
    (b"\x16\x03\x01\x00\x00", "empty handshake record"),
    (b"\x16\x03\x01\x40\x01", "record length 16385"),
    (records(b"\x02\x00\x00\x00", []), "handshake type 2"),
    (b"\x16\x03\x01\x00\x01\x02", "handshake type 2"),
    (records(b"\x01" + (MAX_HELLO_SIZE - 3).to_bytes(3, "big"), []), "over 16384"),
    (records(build(b"")[:20], []) + b"\x15\x03\x03\x00\x02\x02\x28", "content type 21"),
    (records(b"\x01\x00\x00\x00", []), "legacy_version runs past"),
    (records(build(suites=b""), []), "cipher_suites must be"),
    (records(build(suites=b"\x13"), []), "cipher_suites must be"),
    (records(build(compression=b""), []), "compression_methods is empty"),
    (records(build(session_id=bytes(33)), []), "longer than 32"),
    (records(build(b"", trailing=b"x"), []), "bytes after the extensions"),
    (records(build(b"\x00\x00\x00\x05ab"), []), "runs past"),
    (records(build(sni_ext(b"a.test") + sni_ext(b"b.test")), []), "extension 0 appears twice"),
    (records(build(sni_ext(b"a.test", b"b.test")), []), "more than one host_name"),
    (records(build(ext(0, vec(2, b""))), []), "empty server_name_list"),
    (records(build(sni_ext(b"")), []), "empty host_name"),
    (records(build(sni_ext(b".")), []), "only a dot"),
    (records(build(sni_ext("é.test".encode())), []), "not printable ASCII"),
    (records(build(sni_ext(b"a test")), []), "not printable ASCII"),
    (records(build(ext(0, vec(2, b"\x00" + vec(2, b"a.test")) + b"x")), []), "bytes after"),
    (records(build(ext(16, vec(2, b""))), []), "empty protocol_name_list"),
    (records(build(alpn_ext(b"h2", b"")), []), "empty protocol name"),
    (records(build(ext(16, vec(2, b"\x05h2"))), []), "runs past"),
]


@pytest.mark.parametrize(
    ("data", "reason"), MALFORMED, ids=[f"{i}-{r}" for i, (_, r) in enumerate(MALFORMED)]
)
def test_malformed_hellos_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ClientHelloError, match=reason):
        parse_client_hello(data)


def test_garbage_is_refused_from_its_first_byte() -> None:
    for first in range(256):
        if first == 22:
            assert parse_client_hello(bytes([first])) is None
        else:
            with pytest.raises(ClientHelloError):
                parse_client_hello(bytes([first]))


def test_a_hello_at_the_size_bound_is_accepted() -> None:
    padding = ext(21, bytes(MAX_HELLO_SIZE - len(build(sni_ext(b"big.test"))) - 4))
    message = build(sni_ext(b"big.test") + padding)
    assert len(message) == MAX_HELLO_SIZE
    assert parse_client_hello(records(message, [10000])) == ClientHello("big.test", [])


def test_client_hello_error_is_a_value_error() -> None:
    assert issubclass(ClientHelloError, ValueError)


# -- properties ----------------------------------------------------------------------------------


def _outcome(data: bytes) -> ClientHello | str | None:
    try:
        return parse_client_hello(data)
    except ClientHelloError as exc:
        return f"error: {exc}"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    result = _outcome(data)
    assert result is None or isinstance(result, ClientHello | str)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_in_a_handshake_record_never_crash(body: bytes) -> None:
    for data in (records(body, []), records(b"\x01" + vec(3, body), [7]), body):
        result = _outcome(data)
        assert result is None or isinstance(result, ClientHello | str)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_real_hellos_never_crash(data: st.DataObject) -> None:
    hello = bytearray(ssl_hello("mutate.test", ("h2", "http/1.1")))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(hello) - 1))
        hello[index] = data.draw(st.integers(0, 255))
    end = data.draw(st.integers(0, len(hello)))
    result = _outcome(bytes(hello[:end]))
    assert result is None or isinstance(result, ClientHello | str)


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
_NAMES = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_PROTOCOLS = st.lists(st.binary(min_size=1, max_size=20), max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    name=st.none() | _NAMES,
    protocols=_PROTOCOLS,
    sizes=st.lists(st.integers(1, 200), max_size=10),
    upper=st.booleans(),
)
def test_built_hellos_parse_back_at_any_framing(
    name: str | None, protocols: list[bytes], sizes: list[int], upper: bool
) -> None:
    extensions = ext(43, b"\x02\x03\x04")  # supported_versions: any other extension
    if name is not None:
        extensions += sni_ext((name.upper() if upper else name).encode())
    if protocols:
        extensions += alpn_ext(*protocols)
    framed = records(build(extensions), sizes)
    expected = ClientHello(name, [p.decode("latin-1") for p in protocols])
    assert parse_client_hello(framed) == expected
    for end in range(0, len(framed), 3):
        assert parse_client_hello(framed[:end]) is None
