"""HPACK: the stateless encoder, checked by an independent decoder (the ``hpack`` package),
and the decoder, checked against RFC 7541's examples, the ``hpack`` package's encoder and
every error §5 and §6 name."""

from __future__ import annotations

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import given
from hypothesis import strategies as st

from pysozu.parser.h2_hpack import (
    STATIC_TABLE,
    Decoder,
    HeaderListTooLarge,
    HpackError,
    encode_headers,
    huffman_codes,
    huffman_decode,
    table_size_update,
)

names = st.one_of(st.sampled_from([n for n, _ in STATIC_TABLE]),
                  st.binary(min_size=1, max_size=300).map(lambda b: b.lower()))
values = st.one_of(st.sampled_from([v for _, v in STATIC_TABLE]), st.binary(max_size=400))


@given(st.lists(st.tuples(names, values), max_size=40))
def test_any_header_list_decodes_back(headers):
    decoder = hpack.Decoder(max_header_list_size=1 << 24)
    assert list(decoder.decode(encode_headers(headers), raw=True)) == headers
    assert not decoder.header_table.dynamic_entries  # literals without indexing


def test_static_pairs_are_one_byte_and_names_are_indexed():
    assert encode_headers([(b":status", b"200")]) == b"\x88"
    assert encode_headers([(b"accept-encoding", b"gzip, deflate")]) == b"\x90"
    # content-length (index 28) without indexing: 0000 + index 28 needs the 4-bit prefix
    # (15) and one continuation byte (13), then the raw value
    assert encode_headers([(b"content-length", b"13")]) == b"\x0f\x0d\x0213"


def test_long_strings_use_multi_byte_lengths():
    value = b"v" * 1000
    block = encode_headers([(b"x-long", value)])
    assert list(hpack.Decoder().decode(block, raw=True)) == [(b"x-long", value)]


def test_table_size_update_is_accepted_first():
    decoder = hpack.Decoder()
    block = table_size_update(0) + encode_headers([(b":status", b"204")])
    assert list(decoder.decode(block, raw=True)) == [(b":status", b"204")]
    assert table_size_update(0) == b"\x20"
    assert table_size_update(4096) == b"\x3f\xe1\x1f"


# -- the decoder ------------------------------------------------------------------------------

huffman = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def test_canonical_codes_are_appendix_b():
    codes = huffman_codes()
    assert [code for code, _ in codes] == list(REQUEST_CODES)
    assert [length for _, length in codes] == list(REQUEST_CODES_LENGTH)
    # a few rows of the table as printed in the RFC
    assert codes[0] == (0x1FF8, 13)
    assert codes[ord("a")] == (0x3, 5)
    assert codes[256] == (0x3FFFFFFF, 30)


@given(st.binary(max_size=200))
def test_huffman_decodes_what_an_independent_encoder_codes(data):
    assert huffman_decode(huffman.encode(data)) == data


@pytest.mark.parametrize("encoded, why", [
    (b"\xff\xff\xff\xff", "EOS"),           # 30 ones: the EOS symbol, then padding
    (b"\x1f\xff\xff", "padding"),            # 'a' (00011) then 19 bits of ones
    (b"\x1e", "padding"),                      # 'a' then 110: padding with a zero bit
    (b"\xff", "padding"),                      # 8 bits of ones: padding longer than 7 bits
])
def test_huffman_refuses_eos_and_bad_padding(encoded, why):
    with pytest.raises(HpackError, match=why):
        huffman_decode(encoded)


def test_huffman_accepts_up_to_7_bits_of_ones_padding():
    assert huffman_decode(b"\x1f") == b"a"      # 00011 + 111
    assert huffman_decode(b"") == b""


# RFC 7541 Appendix C.3 (raw strings) and C.4 (Huffman), three requests on one connection
RFC_REQUESTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com"), (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]
RFC_C3 = ["828684410f7777772e6578616d706c652e636f6d",
          "828684be58086e6f2d6361636865",
          "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]
RFC_C4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff",
          "828684be5886a8eb10649cbf",
          "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]
RFC_TABLES = [
    (57, [(b":authority", b"www.example.com")]),
    (110, [(b":authority", b"www.example.com"), (b"cache-control", b"no-cache")]),
    (164, [(b":authority", b"www.example.com"), (b"cache-control", b"no-cache"),
           (b"custom-key", b"custom-value")]),
]


@pytest.mark.parametrize("blocks", [RFC_C3, RFC_C4], ids=["C.3", "C.4"])
def test_rfc_7541_request_examples(blocks):
    decoder = Decoder(1 << 16)
    for block, expected, (size, entries) in zip(blocks, RFC_REQUESTS, RFC_TABLES, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == expected
        assert decoder.size == size
        assert decoder.entries == entries  # oldest first


def test_rfc_7541_eviction_example_c5():
    # C.5: responses with a 256-octet table; the third evicts the two oldest entries
    decoder = Decoder(1 << 16, max_table_size=256)
    decoder.decode(table_size_update(256))
    blocks = [
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120"
        "474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d",
        "4803333037c1c0bf",
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a6970"
        "7738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d61"
        "67653d333630303b2076657273696f6e3d31",
    ]
    first = decoder.decode(bytes.fromhex(blocks[0]))
    assert first == [(b":status", b"302"), (b"cache-control", b"private"),
                     (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                     (b"location", b"https://www.example.com")]
    assert decoder.size == 222
    assert decoder.decode(bytes.fromhex(blocks[1]))[0] == (b":status", b"307")
    assert decoder.size == 222  # ":status 307" pushed ":status 302" out
    third = decoder.decode(bytes.fromhex(blocks[2]))
    assert third[0] == (b":status", b"200")
    assert third[-1] == (b"set-cookie",
                         b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
    assert decoder.size == 215
    assert [name for name, _ in decoder.entries] == [b"date", b"content-encoding",
                                                     b"set-cookie"]


header_lists = st.lists(st.tuples(names, values), max_size=30)


@given(st.lists(header_lists, min_size=1, max_size=6), st.sampled_from([0, 256, 4096]))
def test_decodes_what_the_hpack_package_encodes(lists, table_size):
    encoder = hpack.Encoder()
    decoder = Decoder(1 << 24)
    if table_size != 4096:
        encoder.header_table_size = table_size  # the encoder signals it in its next block
    for headers in lists:
        assert decoder.decode(encoder.encode(headers)) == headers
    # the same table on both sides: entries newest first in the package
    assert decoder.entries[::-1] == list(encoder.header_table.dynamic_entries)


def test_never_indexed_and_without_indexing_leave_the_table_alone():
    block = b"\x10\x01a\x01b" + b"\x00\x01c\x01d"  # never indexed, then without indexing
    decoder = Decoder(1 << 16)
    assert decoder.decode(block) == [(b"a", b"b"), (b"c", b"d")]
    assert decoder.entries == [] and decoder.size == 0


def test_an_entry_larger_than_the_table_empties_it():
    decoder = Decoder(1 << 16, max_table_size=100)
    decoder.decode(table_size_update(100) + b"\x40\x01a\x01b")
    assert decoder.size == 34
    decoder.decode(b"\x40\x01x" + bytes([70]) + b"v" * 70)  # 1 + 70 + 32 > 100
    assert decoder.entries == [] and decoder.size == 0


def test_size_update_evicts_and_may_come_twice_at_the_start():
    decoder = Decoder(1 << 16)
    decoder.decode(b"\x40\x01a\x01b\x40\x01c\x01d")
    assert decoder.size == 68
    assert decoder.decode(table_size_update(40) + table_size_update(4096) + b"\xbe") == \
        [(b"c", b"d")]
    assert decoder.entries == [(b"c", b"d")]


@pytest.mark.parametrize("block, why", [
    (b"\x80", "index 0"),                               # §6.1: index 0
    (b"\xbe", "index 62"),                              # first dynamic index, table empty
    (b"\xff\x80\x80\x80\x80\x10", "too large"),          # an integer past 2**32
    (b"\xff", "past the end"),                          # an integer cut short
    (b"\x00\x05ab", "past the end"),                    # a string cut short
    (b"\x00", "missing"),                               # a literal with no name string
    (b"\x40\x01a", "missing"),                          # ... and with no value string
    (b"\x3f\xe2\x1f", "above the announced 4096"),      # size update to 4097
    (b"\x82\x20", "after a field"),                     # §4.2: size update after a field
    (b"\x00\x81\xff\x00", "padding"),                    # a Huffman name of 8 one-bits
], ids=["index-0", "empty-dynamic", "huge-int", "short-int", "short-string", "no-name",
        "no-value", "update-too-big", "update-late", "bad-huffman"])
def test_bad_blocks_are_refused(block, why):
    with pytest.raises(HpackError, match=why):
        Decoder(1 << 16).decode(block)


def test_the_header_list_limit_stops_a_bomb_early():
    decoder = Decoder(max_header_list_size=8192)
    big = b"\x40\x01x\x7f\xa1\x1e" + b"b" * 4000  # x: 4000 b's, indexed (entry 62)
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(big + b"\xbe" * 10_000)
    # exactly at the limit is accepted: (1 + 4000 + 32) * 2 = 8066 <= 8192
    assert len(Decoder(8066).decode(big + b"\xbe")) == 2
    with pytest.raises(HeaderListTooLarge):
        Decoder(8065).decode(big + b"\xbe")
