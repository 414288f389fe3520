"""A test-side message reader over the sans-IO parser, and the ways of feeding it.

``Reader`` plays the proxy's part: it keeps the bytes received, calls the head parser with
``last_len`` until a head is complete, then feeds the body decoder, and records each message
as plain values (so that the records of two runs compare with ``==``). ``outcomes`` runs one
input whole, one byte at a time, and split in two at every offset: the parser must give the
same record every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from pysozu.parser import (
    DEFAULT_LIMITS,
    BodyKind,
    ChunkedDecoder,
    LengthBody,
    Limits,
    ParseError,
    RequestHead,
    ResponseHead,
    parse_request_head,
    parse_response_head,
)


@dataclass
class Outcome:
    """What a reader made of a whole input."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    error: tuple[int, str, int | None] | None = None  # (status, code, offset)
    leftover: bytes = b""  # bytes not consumed: tunnel data, or an incomplete message
    state: str = "head"  # where the reader stopped: head, body, close, tunnel, error


def snapshot(head: RequestHead | ResponseHead) -> dict[str, Any]:
    """Every field of a head as plain values."""
    fields: dict[str, Any] = {
        "version_minor": head.version_minor,
        "headers": list(head.iter_headers()),
        "spans": list(head.spans),
        "length": head.length,
        "body_kind": head.body,
        "content_length": head.content_length,
        "keep_alive": head.keep_alive,
        "upgrade": head.upgrade,
        "connection_tokens": head.connection_tokens,
    }
    if isinstance(head, RequestHead):
        fields.update(method=head.method, target=head.target, host=head.host,
                      expect_continue=head.expect_continue, target_form=head.target_form)
    else:
        fields.update(status=head.status, reason=head.reason, tunnel=head.tunnel,
                      informational=head.is_informational)
    return fields


class Reader:
    """Reads consecutive messages of one kind from bytes fed in pieces."""

    def __init__(self, kind: str, limits: Limits = DEFAULT_LIMITS,
                 request_method: bytes = b"GET") -> None:
        self.kind = kind
        self.limits = limits
        self.request_method = request_method
        self.buf = bytearray()
        self.last_len = 0
        self.out = Outcome()
        self.decoder: ChunkedDecoder | LengthBody | None = None
        self.current: dict[str, Any] | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data
        if self.out.state == "error":
            return
        try:
            self._run()
        except ParseError as e:
            self.out.error = (e.status, e.code, e.offset)
            self.out.state = "error"
            if self.current is not None and not self.current["complete"]:
                # how much of the body came out before the error depends on the feeding
                self.current["body"] = None

    def eof(self) -> Outcome:
        out = self.out
        if out.state == "close" and self.current is not None:
            self.current["complete"] = True
            out.state = "head"
        # after an error the reader stops: what it had buffered by then is meaningless
        out.leftover = b"" if out.state == "error" else bytes(self.buf)
        return out

    def _run(self) -> None:
        buf, out = self.buf, self.out
        while True:
            if out.state == "head":
                if self.kind == "request":
                    head: RequestHead | ResponseHead | None = parse_request_head(
                        buf, len(buf), self.last_len, self.limits)
                else:
                    head = parse_response_head(buf, len(buf), self.last_len,
                                               self.request_method, self.limits)
                if head is None:
                    self.last_len = len(buf)
                    return
                self.last_len = 0
                msg = snapshot(head)
                msg.update(body=b"", trailers=[], complete=False)
                out.messages.append(msg)
                self.current = msg
                del buf[: head.length]
                if head.upgrade is not None or msg.get("tunnel") or msg.get("method") == b"CONNECT":
                    msg["complete"] = True
                    out.state = "tunnel"
                    return
                if head.body == BodyKind.NONE:
                    msg["complete"] = True
                elif head.body == BodyKind.LENGTH:
                    assert head.content_length is not None
                    self.decoder = LengthBody(head.content_length)
                    out.state = "body"
                elif head.body == BodyKind.CHUNKED:
                    self.decoder = ChunkedDecoder(self.limits, response=self.kind == "response")
                    out.state = "body"
                else:
                    out.state = "close"
            elif out.state == "body":
                assert self.decoder is not None and self.current is not None
                n = self.decoder.feed(buf, 0, len(buf))
                body = b"".join(bytes(buf[s:e]) for s, e in self.decoder.data_spans)
                self.current["body"] += body
                del buf[:n]
                if not self.decoder.done:
                    return
                if isinstance(self.decoder, ChunkedDecoder):
                    self.current["trailers"] = self.decoder.trailers
                self.current["complete"] = True
                self.decoder = None
                out.state = "head"
            elif out.state == "close":
                assert self.current is not None
                self.current["body"] += bytes(buf)
                buf.clear()
                return
            else:  # tunnel
                return


def read(pieces: Iterable[bytes], kind: str, limits: Limits = DEFAULT_LIMITS,
         request_method: bytes = b"GET") -> Outcome:
    reader = Reader(kind, limits, request_method)
    for piece in pieces:
        reader.feed(piece)
    return reader.eof()


def splits(raw: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Every way a test feeds an input: one byte at a time, then in two at each offset."""
    yield "bytewise", [raw[i : i + 1] for i in range(len(raw))]
    for k in range(1, len(raw)):
        yield f"split@{k}", [raw[:k], raw[k:]]


def outcomes(raw: bytes, kind: str, limits: Limits = DEFAULT_LIMITS,
             request_method: bytes = b"GET") -> Outcome:
    """The outcome of ``raw`` read whole, after checking every other feeding agrees."""
    whole = read([raw], kind, limits, request_method)
    for name, pieces in splits(raw):
        other = read(pieces, kind, limits, request_method)
        assert other == whole, f"{name}: {other} != {whole}"
    return whole


def mutations(seeds: list[bytes], special: bytes, most: int) -> st.SearchStrategy[bytes]:
    """One of ``seeds`` with up to ``most`` bytes inserted, deleted or replaced, the new
    bytes drawn from ``special`` (the bytes that matter to a parser) or at random."""

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, most))):
            op = draw(st.sampled_from(["insert", "delete", "replace"]))
            i = draw(st.integers(0, len(data)))
            byte = draw(st.sampled_from(special) | st.integers(0, 255))
            if op == "insert":
                data.insert(i, byte)
            elif i < len(data):
                if op == "delete":
                    del data[i]
                else:
                    data[i] = byte
        return bytes(data)

    return mutated()
