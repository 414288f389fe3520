"""ChunkedDecoder and LengthBody fed in every way: whole, byte by byte, split at every offset,
with the body inside a larger buffer (``start``/``end``)."""

from __future__ import annotations

import pytest

from pysozu.parser import ChunkedDecoder, LengthBody, Limits, ParseError

BODY = (b"5;ext=1\r\nhello\r\n"
        b"1\r\n \r\n"
        b"a ; q=\"x;y\"\r\n0123456789\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n")
PAYLOAD = b"hello 0123456789"
TRAILERS = [(b"X-Checksum", b"abc"), (b"X-Empty", b"")]
NEXT = b"GET /next HTTP/1.1\r\n"


def decode(pieces: list[bytes], decoder: ChunkedDecoder | None = None) -> tuple[bytes, int]:
    """Feed pieces as a stream would arrive; return the payload and the bytes consumed."""
    decoder = decoder or ChunkedDecoder()
    payload = bytearray()
    consumed = 0
    for piece in pieces:
        n = decoder.feed(piece)
        for start, end in decoder.data_spans:
            assert 0 <= start <= end <= n
            payload += piece[start:end]
        consumed += n
        if decoder.done:
            break
        assert n == len(piece)  # an unfinished decoder takes everything it is given
    return bytes(payload), consumed


def test_whole_body_stops_at_its_end() -> None:
    decoder = ChunkedDecoder()
    payload, consumed = decode([BODY + NEXT], decoder)
    assert decoder.done
    assert payload == PAYLOAD
    assert consumed == len(BODY)
    assert decoder.trailers == TRAILERS
    assert decoder.received == len(PAYLOAD)
    assert decoder.feed(NEXT) == 0 and decoder.data_spans == []


def test_byte_by_byte() -> None:
    decoder = ChunkedDecoder()
    payload, consumed = decode([BODY[i : i + 1] for i in range(len(BODY))], decoder)
    assert (payload, consumed, decoder.trailers) == (PAYLOAD, len(BODY), TRAILERS)


@pytest.mark.parametrize("k", range(1, len(BODY) + len(NEXT)))
def test_every_split(k: int) -> None:
    data = BODY + NEXT
    decoder = ChunkedDecoder()
    payload, consumed = decode([data[:k], data[k:]], decoder)
    assert decoder.done
    assert (payload, consumed, decoder.trailers) == (PAYLOAD, len(BODY), TRAILERS)


def test_start_and_end_index_the_given_buffer() -> None:
    buf = bytearray(b"HEAD" + BODY + NEXT)
    decoder = ChunkedDecoder()
    n = decoder.feed(memoryview(buf), 4, len(buf))
    assert n == len(BODY) and decoder.done
    assert b"".join(bytes(buf[s:e]) for s, e in decoder.data_spans) == PAYLOAD
    decoder = ChunkedDecoder()
    assert decoder.feed(buf, 4, 10) == 6  # "5;ext=" of the size line, held until its CRLF
    assert decoder.data_spans == []
    n = decoder.feed(buf, 10, 20)
    assert n == 10 and decoder.data_spans == [(13, 18)]


def test_no_trailers_and_empty_body() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"0\r\n\r\nrest") == 5
    assert decoder.done and decoder.trailers == [] and decoder.received == 0


def test_sixteen_hex_digits_are_accepted() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"ffffffffffffffff\r\nabc") == 21
    assert decoder.data_spans == [(18, 21)] and not decoder.done


def size_line(n: int) -> bytes:
    """A size line of ``n`` bytes, CRLF included."""
    return b"1;" + b"a" * (n - 4) + b"\r\n"


@pytest.mark.parametrize("n", [4095, 4096])
def test_size_line_up_to_4096_bytes(n: int) -> None:
    data = size_line(n) + b"x\r\n0\r\n\r\n"
    for pieces in ([data], [data[:3000], data[3000:]], [data[: n - 1], data[n - 1 :]]):
        decoder = ChunkedDecoder()
        assert decode(pieces, decoder) == (b"x", len(data))


@pytest.mark.parametrize("cut", [None, 1, 3000, 4095])
def test_size_line_over_4096_bytes(cut: int | None) -> None:
    data = size_line(4097)
    pieces = [data] if cut is None else [data[:cut], data[cut:]]
    decoder = ChunkedDecoder()
    with pytest.raises(ParseError) as e:
        for piece in pieces:
            decoder.feed(piece)
    assert (e.value.status, e.value.code) == (400, "CHUNK_LINE_TOO_LONG")


def test_errors_carry_502_for_responses() -> None:
    with pytest.raises(ParseError) as e:
        ChunkedDecoder(response=True).feed(b"zz\r\n")
    assert (e.value.status, e.value.code) == (502, "BAD_CHUNK_SIZE")
    assert str(e.value) == "502 invalid chunk size"
    with pytest.raises(ParseError) as e:
        ChunkedDecoder(response=True).feed(b"0\r\nX : y\r\n\r\n")
    assert (e.value.status, e.value.code) == (502, "WS_BEFORE_COLON")


def test_body_limit() -> None:
    limits = Limits(max_body=10)
    decoder = ChunkedDecoder(limits)
    decoder.feed(b"a\r\n0123456789\r\n")
    with pytest.raises(ParseError) as e:
        decoder.feed(b"1\r\n")
    assert (e.value.status, e.value.code) == (413, "BODY_TOO_LARGE")
    # a response body is not bounded by max_body
    decoder = ChunkedDecoder(limits, response=True)
    assert decoder.feed(b"b\r\n0123456789a\r\n0\r\n\r\n") == 21 and decoder.done


def test_trailer_limits() -> None:
    decoder = ChunkedDecoder(Limits(max_headers=1))
    with pytest.raises(ParseError) as e:
        decoder.feed(b"0\r\nA: 1\r\nB: 2\r\n\r\n")
    assert (e.value.status, e.value.code) == (431, "TOO_MANY_TRAILERS")
    decoder = ChunkedDecoder(Limits(max_head=10))
    decoder.feed(b"0\r\nA: 12345")  # 7 bytes of trailers so far: waiting
    with pytest.raises(ParseError) as e:
        decoder.feed(b"6789\r\n\r\n")
    assert (e.value.status, e.value.code) == (431, "TRAILERS_TOO_LARGE")


def test_trailer_section_never_reads_past_its_end() -> None:
    decoder = ChunkedDecoder(Limits(max_head=32))
    data = b"0\r\nA: 1\r\n\r\n" + b"x" * 100_000
    assert decoder.feed(data) == 11
    assert decoder.trailers == [(b"A", b"1")]


def test_length_body() -> None:
    body = LengthBody(5)
    assert not body.done
    assert body.feed(b"abc") == 3 and body.data_spans == [(0, 3)] and body.remaining == 2
    assert body.feed(b"XXdeYY", 2, 6) == 2 and body.data_spans == [(2, 4)]
    assert body.done and body.remaining == 0
    assert body.feed(b"more") == 0 and body.data_spans == []
    empty = LengthBody(0)
    assert empty.done and empty.feed(b"x") == 0
