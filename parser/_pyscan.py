"""The pure-Python head scanner: ``scan_head`` exactly as ``parser/SCANNER.md`` specifies.

Theory of operation
-------------------
The contract is written as six ordered steps because the order decides which error wins.
Running them in that order, byte by byte, would cost ~100 µs per head in Python, so this
module has two paths that must agree on every input:

* the **fast path** (``scan_head_ids``, which ``scan_head`` calls) handles the common case,
  a complete and valid head, with a handful of C-level calls and no Python code per header
  line. One regex matches the start line and up to ``_CHUNK`` header lines at once (nested
  optional groups, two per line: name and value); ``Match.regs`` hands back every span in
  one call, ``zip`` splits them into starts and ends, and extended slice assignments lay
  them out as SCANNER.md's ``out``; header ids come from one ``map`` over a dict keyed by
  the names as received, and the id mask from a memo keyed by those ids. The patterns
  accept CR and LF only as a line's final CRLF, so a match that ends on the empty line has
  also passed step 4, and the end it finds is the first ``\n\r\n``. The head patterns
  refuse a line with trailing OWS (see ``_LINE``); from such a line on, and for heads with
  more than ``_CHUNK`` lines, ``_MORE_LINES`` matches the rest ``_CHUNK`` lines at a time,
  and the values it took are trimmed afterwards.
* the **reference path** (``_reference``) is the contract transcribed step by step. It
  runs when the fast path has no answer: the head is incomplete (a resumed scan first looks
  for the end in the new bytes only, so waiting costs little), too large, ended by a bare
  ``\n\n``, or invalid. It finds the exact error code and offset, using regexes for each
  "first byte that is not in class X" so that even an attacker's 16 KiB head costs no
  per-byte Python loop.

Every repeat that could give back what it took is possessive, so no input makes a regex
backtrack more than linearly (``test_pathological_lines_are_linear``).
``tests/parser/test_differential.py`` holds the two paths, and the native scanner, to the
same answers on random and mutated input.

Neither path copies the caller's buffer: ``bytes``, ``bytearray`` and ``memoryview`` all
support the regex engine, whose groups are ``bytes`` whatever the input type.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import (
    BAD_HEADER_NAME,
    BAD_HEADER_VALUE,
    BAD_METHOD,
    BAD_REASON,
    BAD_STATUS,
    BAD_TARGET,
    BAD_VERSION,
    BARE_CR,
    BARE_LF,
    HEAD_TOO_LARGE,
    OBS_FOLD,
    TOO_MANY_HEADERS,
    URI_TOO_LONG,
    VERSION_NOT_SUPPORTED,
    WS_BEFORE_COLON,
)

__all__ = ["HEADER_IDS", "scan_head", "scan_head_ids"]

Buffer = bytes | bytearray | memoryview

# Header ids of the contract (0 = any other name); keys are lowercase.
HEADER_IDS: Final[dict[bytes, int]] = {
    b"content-length": 1,
    b"transfer-encoding": 2,
    b"connection": 3,
    b"host": 4,
    b"upgrade": 5,
    b"expect": 6,
    b"cookie": 7,
    b"te": 8,
    b"trailer": 9,
    b"keep-alive": 10,
    b"proxy-connection": 11,
    b"x-forwarded-for": 12,
    b"forwarded": 13,
    b"x-forwarded-proto": 14,
    b"x-forwarded-port": 15,
    b"x-real-ip": 16,
    b"x-request-id": 17,
}


class _IdCache(dict[bytes, int]):
    """Header name exactly as received -> id, filled on first sight of each spelling.

    Looking the raw name up saves lowercasing every name of every head: ``map`` over
    ``__getitem__`` stays in C on a hit, and ``__missing__`` runs once per new spelling.
    The cache stops growing at ``_ID_CACHE_MAX`` entries so that a peer sending random
    names cannot make it grow without bound (misses are then computed, not stored).
    """

    __slots__ = ()

    def __missing__(self, name: bytes) -> int:
        hid = HEADER_IDS.get(name.lower(), 0)
        if len(self) < _ID_CACHE_MAX:
            self[name] = hid
        return hid


_ID_CACHE_MAX: Final = 4096
_IDS = _IdCache()
for _name, _hid in HEADER_IDS.items():
    _IDS[_name] = _hid
    _IDS[b"-".join(part.capitalize() for part in _name.split(b"-"))] = _hid
_IDS[b"TE"] = 8
_IDS[b"X-Real-IP"] = 16
_IDS[b"X-Request-ID"] = 17
_header_id = _IDS.__getitem__

# The id mask (SCANNER.md): bit id per id present, and for ids 1-6, bit REPEATED_SHIFT + id
# when more than one line has it.
REPEATED_SHIFT: Final = 18
REPEATED_IDS: Final = 0x7E
_COUNTED: Final = frozenset(range(1, 7))
_bit = [1 << i for i in range(18)].__getitem__

# RFC 9110 §5.6.2 tchar, and the byte classes of SCANNER.md.
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_FIELD = rb"\t\x20-\x7e\x80-\xff"  # HTAB / SP / VCHAR / obs-text: any value or reason byte

# Fast path. Each pattern accepts CR and LF only as a line's final CRLF, so a match that
# ends on the empty line has also passed step 4. A header line is two groups, the name and
# the value after the leading OWS: their spans are the four offsets SCANNER.md wants once
# trailing OWS is left out. Capturing the value without it would make the engine back off
# from every line's end (a third of the match's cost), so the lines of the head patterns
# refuse trailing OWS instead: a lookbehind at the CR costs one byte's check. A line that
# has some stops the match there, and the rest of the head is matched by _MORE_LINES, whose
# lines take it (in the value group), trimmed afterwards (_trim_values). Possessive repeats
# keep every match linear.
_LINE = rb"([%s]++):[ \t]*+([%s]*+)\r\n" % (_TCHAR, _FIELD)
_LINE_NO_TRAILING_OWS = rb"([%s]++):[ \t]*+([%s]*+)(?<![ \t])\r\n" % (_TCHAR, _FIELD)
_TRAILING_OWS = re.compile(rb"[ \t]\r\n")


def _nested(count: int, line: bytes = _LINE) -> bytes:
    """``(?:LINE(?:LINE(?:...)?+)?+)?+``: up to ``count`` header lines in one match.

    One match of a long pattern costs far less than one match per line (the regex engine's
    per-call overhead dominates short lines), and ``Match.regs`` then hands back every span
    at once. Nesting (rather than ``(?:LINE)?`` repeated) stops at the first line that does
    not match instead of retrying the same text ``count`` times. A line never has anything
    to give back, so the optional groups are possessive too: the engine then keeps no state
    to backtrack into them (an eighth of the match's time).
    """
    pattern = b""
    for _ in range(count):
        pattern = b"(?:" + line + pattern + b")?+"
    return pattern


# Header lines per match: more than a browser sends (a head with more is matched in several
# pieces). Match.regs holds every group, matched or not, so a larger piece costs every head.
_CHUNK: Final = 24
_REQUEST_HEAD = re.compile(rb"([%s]++) ([\x21-\x7e]++) HTTP/1\.([0-9])\r\n" % _TCHAR
                           + _nested(_CHUNK, _LINE_NO_TRAILING_OWS))
_RESPONSE_HEAD = re.compile(rb"HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?:\r\n| ([%s]*+)\r\n)" % _FIELD
                            + _nested(_CHUNK, _LINE_NO_TRAILING_OWS))
_MORE_LINES = re.compile(_nested(_CHUNK))
_FIRST_LINE_GROUP: Final = 4  # in both head patterns: 3 start-line groups, then the lines

# The groups to fetch the names of n header lines with, by n, when the name groups start at
# group 4 (a head pattern) or 1 (_MORE_LINES). A single group is fetched twice, so that
# Match.group always returns a tuple.
_HEAD_NAMES: Final = [(*range(4, 4 + 2 * n, 2),) if n > 1 else (4, 4) for n in range(_CHUNK + 1)]
_MORE_NAMES: Final = [(*range(1, 1 + 2 * n, 2),) if n > 1 else (1, 1) for n in range(_CHUNK + 1)]
_ZEROS: Final = [0] * (5 * _CHUNK)

# Reference path.
_END = re.compile(rb"\n\r?\n")
_LF = re.compile(rb"\n")
_CRLFS = re.compile(rb"(?:\r\n)*")
_BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_TCHARS = re.compile(rb"[%s]*" % _TCHAR)
_TARGET_CHARS = re.compile(rb"[\x21-\x7e]*")
_FIELD_CHARS = re.compile(rb"[%s]*" % _FIELD)
_OWS = re.compile(rb"[ \t]*")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")

_CR: Final = 13
_LF_BYTE: Final = 10
_COLON: Final = 58
_SP: Final = 32
_HTAB: Final = 9


def scan_head(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int]]:
    """Find, check and split an HTTP/1.x head in ``buf[0:length]`` (see SCANNER.md).

    Returns ``(rc, out)``: ``rc > 0`` is the head's length with the spans in ``out``;
    ``rc == 0`` means incomplete (``out == []``); ``rc < 0`` is ``-code`` of an error with
    ``out == [offset]``.
    """
    rc, out, _ = scan_head_ids(buf, length, last_len, is_request, max_head, max_headers)
    return rc, out


def scan_head_ids(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int], int]:
    """``scan_head``'s ``(rc, out)`` and the mask of the header ids present (SCANNER.md, "The
    id mask"; 0 unless ``rc > 0``).

    The common case, a complete head with up to ``_CHUNK`` header lines and no trailing OWS,
    is one match and a few C-level calls, written inline: a function call costs as much as
    any of them.
    """
    hs = 0
    if is_request and buf[0:2] == b"\r\n":
        hs = _skip_empty_lines(buf, length, max_head)
    limit = length if length < max_head else max_head
    start = last_len - 2 if last_len - 2 > hs else hs
    expected = 0
    if start > hs:
        # A resumed scan: look for the end in the new bytes only, as the contract says,
        # before matching the whole head again.
        end = _END.search(buf, start, limit)
        if end is None:
            return _slow(buf, length, last_len, is_request, max_head, max_headers)
        expected = end.end()
    m = (_REQUEST_HEAD if is_request else _RESPONSE_HEAD).match(buf, hs, limit)
    if m is None:
        return _slow(buf, length, last_len, is_request, max_head, max_headers)
    pos = m.end()
    last = m.lastindex or 0
    n = (last - 3) >> 1 if last > 3 else 0
    if pos > limit - 2 or buf[pos : pos + 2] != b"\r\n":
        # more lines than one match holds, a line with trailing OWS, a line that does not
        # match (the reference finds the error), or an incomplete head
        return _more_lines(m, n, buf, length, last_len, is_request, max_head, max_headers,
                           hs, expected)
    he = pos + 2
    if expected and he != expected:  # only when the caller broke the last_len promise
        return _slow(buf, length, last_len, is_request, max_head, max_headers)
    if n > max_headers:  # every line is valid: the first one past the limit is the error
        return -TOO_MANY_HEADERS, [m.start(_FIRST_LINE_GROUP + 2 * max(max_headers, 0))], 0
    regs = m.regs
    if is_request:
        (ms, me), (ts, te), (v, _) = regs[1:4]
        out = [hs, ms, me, ts, te, buf[v] - 48, n, 0]
    else:
        out = _status_line(regs, buf, n)
    if not n:
        return he, out, 0
    # The header records, from the name ids and the spans of Match.regs: name_start,
    # value_start, name_start, ... in starts, the matching ends in ends.
    ids = list(map(_header_id, m.group(*_HEAD_NAMES[n])))
    if n == 1:
        del ids[1]  # the group fetched twice
    starts, ends = zip(*regs[4 : 4 + 2 * n], strict=True)
    out += _ZEROS[: 5 * n]
    out[8::5] = ids
    out[9::5] = starts[0::2]
    out[10::5] = ends[0::2]
    out[11::5] = starts[1::2]
    out[12::5] = ends[1::2]
    # The id mask, a function of the ids in order, which repeat from head to head (names
    # the contract does not know all have id 0): a bounded memo answers for the usual ones.
    key = tuple(ids)
    mask = _MASKS.get(key)
    if mask is None:
        mask = _mask(ids)
        if len(_MASKS) >= _MASKS_MAX:
            _MASKS.clear()
        _MASKS[key] = mask
    return he, out, mask


def _status_line(regs: tuple[tuple[int, int], ...], buf: Buffer, n: int) -> list[int]:
    """The first 8 ints of a response's ``out`` from its head match, for n header lines."""
    rs, re_ = regs[3]
    if rs < 0:  # no reason phrase: an empty span at the CR
        rs = re_ = 12
    status = buf[9] * 100 + buf[10] * 10 + buf[11] - 5328  # 5328 = 111 * ord("0")
    return [0, status, rs, re_, 0, buf[7] - 48, n, 0]


_MASKS: dict[tuple[int, ...], int] = {}  # the ids of a head's lines -> their id mask
_MASKS_MAX: Final = 1024


def _repeated(ids: list[int], present: set[int], mask: int) -> int:
    """``mask`` with the "more than one line" bits of the ids 1-6 in ``ids``."""
    for hid in _COUNTED.intersection(present):
        if ids.count(hid) > 1:
            mask |= 1 << (REPEATED_SHIFT + hid)
    return mask


def _mask(ids: list[int]) -> int:
    """The id mask (SCANNER.md) of header lines with these ids."""
    present = set(ids)
    mask = sum(map(_bit, present))
    return _repeated(ids, present, mask) if mask & REPEATED_IDS else mask


def _more_lines(
    m: re.Match[bytes], n: int, buf: Buffer, length: int, last_len: int, is_request: bool,
    max_head: int, max_headers: int, hs: int, expected: int,
) -> tuple[int, list[int], int]:
    """The fast path's second half, when the head match stopped before the empty line: go
    on with _MORE_LINES, ``_CHUNK`` lines at a time, until the empty line; anything else
    (a line no pattern takes, an incomplete head) is the reference's."""
    limit = length if length < max_head else max_head
    pos = m.end()
    pieces = [(m, _FIRST_LINE_GROUP, n)] if n else []
    more_lines = False  # whether some lines came from _MORE_LINES (and may need a trim)
    while pos > limit - 2 or buf[pos : pos + 2] != b"\r\n":
        if pos > limit - 2 or (more_lines and n < _CHUNK):
            return _slow(buf, length, last_len, is_request, max_head, max_headers)
        more = _MORE_LINES.match(buf, pos, limit)
        assert more is not None  # an optional group matches the empty string
        more_lines = True
        pos = more.end()
        n = (more.lastindex or 0) >> 1
        if not n:
            return _slow(buf, length, last_len, is_request, max_head, max_headers)
        pieces.append((more, 1, n))
    he = pos + 2
    if expected and he != expected:
        return _slow(buf, length, last_len, is_request, max_head, max_headers)
    total = 0
    for piece, g, n in pieces:
        total += n
        if total > max_headers:  # every line is valid: the first one past the limit is it
            k = max_headers - (total - n) if max_headers > 0 else 0  # its index in piece
            return -TOO_MANY_HEADERS, [piece.start(g + 2 * k)], 0
    regs = m.regs
    if is_request:
        (ms, me), (ts, te), (v, _) = regs[1:4]
        out = [hs, ms, me, ts, te, buf[v] - 48, total, 0]
    else:
        out = _status_line(regs, buf, total)
    ids: list[int] = []
    for piece, g, n in pieces:
        names = piece.group(*(_HEAD_NAMES if g == _FIRST_LINE_GROUP else _MORE_NAMES)[n])
        piece_ids = list(map(_header_id, names))[:n]
        starts, ends = zip(*piece.regs[g : g + 2 * n], strict=True)
        i = len(out)
        j = i + 5 * n
        out += _ZEROS[: 5 * n]
        out[i:j:5] = piece_ids
        out[i + 1 : j : 5] = starts[0::2]
        out[i + 2 : j : 5] = ends[0::2]
        out[i + 3 : j : 5] = starts[1::2]
        out[i + 4 : j : 5] = ends[1::2]
        ids += piece_ids
    if more_lines:
        _trim_values(out, buf, he)
    return he, out, _mask(ids)


def _slow(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int], int]:
    """``_reference``, with the id mask."""
    rc, out = _reference(buf, length, last_len, is_request, max_head, max_headers)
    return rc, out, id_mask(out) if rc > 0 else 0


def id_mask(out: list[int]) -> int:
    """The id mask (SCANNER.md) of a successful scan's ``out``."""
    return _mask(out[8 : 8 + 5 * out[6] : 5])


def _trim_values(out: list[int], buf: Buffer, he: int) -> None:
    """End each value span before its trailing OWS, if any line has some."""
    first = out[9]  # the first header line: the start line's own blanks are not OWS
    if type(buf) is memoryview:
        if _TRAILING_OWS.search(buf, first, he) is None:
            return
    elif buf.find(b" \r\n", first, he) < 0 and buf.find(b"\t\r\n", first, he) < 0:
        return
    for i in range(12, len(out), 5):
        vs = out[i - 1]
        ve = out[i]
        while ve > vs and buf[ve - 1] in (_SP, _HTAB):
            ve -= 1
        out[i] = ve


def _skip_empty_lines(buf: Buffer, length: int, max_head: int) -> int:
    """Step 1: the offset after the leading CRLF pairs of a request.

    The run is only followed up to ``max_head + 2``: a head that starts beyond ``max_head``
    is too large (414) whatever comes next, so the exact start no longer matters.
    """
    m = _CRLFS.match(buf, 0, length if length < max_head + 2 else max_head + 2)
    assert m is not None  # a pattern that matches the empty string always matches
    return m.end()


def _reference(
    buf: Buffer, length: int, last_len: int, is_request: bool, max_head: int, max_headers: int
) -> tuple[int, list[int]]:
    """SCANNER.md step by step: the authority when the fast path has no answer."""
    # 1. leading empty lines
    hs = 0
    if is_request and buf[0:2] == b"\r\n":
        hs = _skip_empty_lines(buf, length, max_head)
    # 2. end of head, searched only below max_head: an end beyond it is an error anyway
    limit = length if length < max_head else max_head
    start = last_len - 2 if last_len - 2 > hs else hs
    m = _END.search(buf, start, limit)
    # 3. size
    if m is None:
        if length <= max_head:
            return 0, []
        code = HEAD_TOO_LARGE
        if is_request and (hs >= limit or _LF.search(buf, hs, limit) is None):
            code = URI_TOO_LONG
        return -code, [max_head]
    he = m.end()
    out = [0] * 8
    rc = _lines(buf, hs, he, is_request, max_headers, out)
    if rc < 0 or rc != he:
        # 4. line endings win over any error of steps 5 and 6; they also cover the rest
        # of the head when an empty line came before its end (a caller that broke the
        # last_len promise), as the native scanner does.
        bare = _BARE.search(buf, hs, he)
        if bare is not None:
            p = bare.start()
            return -(BARE_LF if buf[p] == 10 else BARE_CR), [p]
        if rc < 0:
            return rc, [out[0]]
    return he, out


def _lines(buf: Buffer, hs: int, he: int, is_request: bool, max_headers: int,
           out: list[int]) -> int:
    """Steps 5 and 6, assuming step 4 passes (the caller checks it when this fails).

    Returns the offset after the empty line with the spans in ``out``, or ``-code`` with the
    offset in ``out[0]``. Every byte class excludes CR and LF, so no scan passes the CR or LF
    that ends the line it is on, and every index read lies inside the head (whose last byte
    is an LF). A CR met where a line should end must be followed by LF, else the line was
    cut by a bare CR: that is reported as BARE_CR and the caller's step 4 finds the first one.
    """
    if is_request:
        p = _skip(_TCHARS, buf, hs, he)
        if p == hs or buf[p] != _SP:
            return _fail(out, BAD_METHOD, p)
        t = p + 1
        if buf[t] == _SP:  # exactly one SP after the method
            return _fail(out, BAD_METHOD, t)
        q = _skip(_TARGET_CHARS, buf, t, he)
        if q == t or buf[q] != _SP:
            return _fail(out, BAD_TARGET, q)
        v = q + 1
        if _VERSION.match(buf, v, he) is None or buf[v + 8 : v + 10] != b"\r\n":
            return _fail(out, BAD_VERSION, v)
        if buf[v + 5] != 49:
            return _fail(out, VERSION_NOT_SUPPORTED, v)
        out[0:6] = [hs, hs, p, t, q, buf[v + 7] - 48]
        pos = v + 10
    else:
        # the version is the 8 bytes "HTTP/" DIGIT "." DIGIT; the SP after it belongs to
        # the status ("then one SP, then exactly 3 digits ... else BAD_STATUS")
        if _VERSION.match(buf, 0, he) is None:
            return _fail(out, BAD_VERSION, 0)
        if buf[5] != 49:
            return _fail(out, VERSION_NOT_SUPPORTED, 0)
        if buf[8] != _SP:
            return _fail(out, BAD_STATUS, 8)
        if not 49 <= buf[9] <= 57:
            return _fail(out, BAD_STATUS, 9)
        for i in (10, 11):
            if not 48 <= buf[i] <= 57:
                return _fail(out, BAD_STATUS, i)
        c = buf[12]
        if c == _CR:
            rs = re_ = 12
        elif c == _SP:
            rs = 13
            re_ = _skip(_FIELD_CHARS, buf, 13, he)
            if buf[re_] != _CR:
                return _fail(out, BAD_REASON, re_)
        else:  # a fourth digit or any other byte: the code is not exactly 3 digits
            return _fail(out, BAD_STATUS, 12)
        if buf[re_ + 1] != _LF_BYTE:
            return _fail(out, BARE_CR, re_)
        out[0:6] = [0, (buf[9] - 48) * 100 + (buf[10] - 48) * 10 + buf[11] - 48, rs, re_, 0,
                    buf[7] - 48]
        pos = re_ + 2
    n = 0
    while True:
        c = buf[pos]
        if c == _CR:
            if buf[pos + 1] != _LF_BYTE:
                return _fail(out, BARE_CR, pos)
            out[6] = n
            return pos + 2
        if c in (_SP, _HTAB):
            return _fail(out, OBS_FOLD, pos)
        n += 1
        if n > max_headers:
            return _fail(out, TOO_MANY_HEADERS, pos)
        q = _skip(_TCHARS, buf, pos, he)
        c = buf[q]
        if q == pos or c != _COLON:
            code = WS_BEFORE_COLON if q != pos and c in (_SP, _HTAB) else BAD_HEADER_NAME
            return _fail(out, code, q)
        vs = _skip(_OWS, buf, q + 1, he)
        w = _skip(_FIELD_CHARS, buf, vs, he)
        if buf[w] != _CR:
            return _fail(out, BAD_HEADER_VALUE, w)
        if buf[w + 1] != _LF_BYTE:
            return _fail(out, BARE_CR, w)
        ve = w
        while ve > vs and buf[ve - 1] in (_SP, _HTAB):
            ve -= 1
        out += (HEADER_IDS.get(bytes(buf[pos:q]).lower(), 0), pos, q, vs, ve)
        pos = w + 2


def _skip(pattern: re.Pattern[bytes], buf: Buffer, pos: int, end: int) -> int:
    """The first offset at or after ``pos`` whose byte is not in ``pattern``'s class."""
    m = pattern.match(buf, pos, end)
    assert m is not None  # class* matches the empty string
    return m.end()


def _fail(out: list[int], code: int, offset: int) -> int:
    out[0] = offset
    return -code
