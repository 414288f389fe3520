"""The stateless HPACK encoder, checked by an independent decoder (the ``hpack`` package)."""

from __future__ import annotations

import hpack
from hypothesis import given
from hypothesis import strategies as st

from pysozu.parser.h2_hpack import STATIC_TABLE, encode_headers, table_size_update

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
