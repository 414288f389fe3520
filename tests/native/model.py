"""A slow, literal reading of parser/SCANNER.md, step by step, for the native tests.

It is not the pure backend (parser/_pyscan.py): it exists so that the C scanner is checked
against the contract as written, in the contract's own order (the C runs the CR/LF pass
only when the parse fails; this model runs it first, as step 4 says). Where SCANNER.md
leaves a choice open, the choice is the one noted in a comment here and in the C.
"""

from __future__ import annotations

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
TARGET = frozenset(range(0x21, 0x7F))
VALUE = frozenset([0x09, 0x20, *range(0x21, 0x7F), *range(0x80, 0x100)])
OWS = frozenset(b" \t")
DIGITS = frozenset(b"0123456789")

HEADER_IDS = {
    b"content-length": 1, b"transfer-encoding": 2, b"connection": 3, b"host": 4,
    b"upgrade": 5, b"expect": 6, b"cookie": 7, b"te": 8, b"trailer": 9, b"keep-alive": 10,
    b"proxy-connection": 11, b"x-forwarded-for": 12, b"forwarded": 13,
    b"x-forwarded-proto": 14, b"x-forwarded-port": 15, b"x-real-ip": 16, b"x-request-id": 17,
}

BARE_LF, BARE_CR, BAD_METHOD, BAD_TARGET, BAD_VERSION, VERSION_NOT_SUPPORTED = 1, 2, 3, 4, 5, 6
BAD_STATUS, BAD_REASON, BAD_HEADER_NAME, WS_BEFORE_COLON, OBS_FOLD = 7, 8, 9, 10, 11
BAD_HEADER_VALUE, HEAD_TOO_LARGE, URI_TOO_LONG, TOO_MANY_HEADERS = 12, 13, 14, 15


class _Error(Exception):
    def __init__(self, code: int, offset: int) -> None:
        self.code = code
        self.offset = offset


def _skip(b: bytes, i: int, allowed: frozenset[int]) -> int:
    while i < len(b) and b[i] in allowed:
        i += 1
    return i


def scan_head(buf: bytes | bytearray | memoryview, length: int, last_len: int,
              is_request: bool, max_head: int, max_headers: int) -> tuple[int, list[int]]:
    b = bytes(buf[:length])
    # 1. leading empty lines
    hs = 0
    if is_request:
        while b[hs:hs + 2] == b"\r\n":
            hs += 2
    # 2. end of head
    end = 0
    p = b.find(b"\n", max(hs, last_len - 2))
    while p >= 0:
        if b[p + 1:p + 2] == b"\n":
            end = p + 2
            break
        if b[p + 1:p + 3] == b"\r\n":
            end = p + 3
            break
        p = b.find(b"\n", p + 1)
    # 3. size
    if (end == 0 and length > max_head) or end > max_head:
        code = HEAD_TOO_LARGE
        if is_request:
            first = b.find(b"\n", hs)
            if first < 0 or first >= max_head:
                code = URI_TOO_LONG
        return -code, [max_head]
    if end == 0:
        return 0, []
    head = b[:end]
    try:
        # 4. line endings
        for i in range(hs, end):
            if head[i] == 0x0A and (i == 0 or head[i - 1] != 0x0D):
                raise _Error(BARE_LF, i)
            if head[i] == 0x0D and head[i + 1:i + 2] != b"\n":
                raise _Error(BARE_CR, i)
        # 5. start line
        out = [0] * 8
        if is_request:
            q = _skip(head, hs, TCHAR)
            if q == hs or head[q] != 0x20:
                raise _Error(BAD_METHOD, q)
            if head[q + 1] == 0x20:  # "exactly one SP": a second SP is BAD_METHOD
                raise _Error(BAD_METHOD, q + 1)
            t = q + 1
            u = _skip(head, t, TARGET)
            if u == t or head[u] != 0x20:
                raise _Error(BAD_TARGET, u)
            v = u + 1
            ver = head[v:v + 10]
            # the whole shape (CRLF included) first, then the major digit
            if (len(ver) < 10 or ver[:5] != b"HTTP/" or ver[5] not in DIGITS or ver[6] != 0x2E
                    or ver[7] not in DIGITS or ver[8:] != b"\r\n"):
                raise _Error(BAD_VERSION, v)
            if ver[5] != 0x31:
                raise _Error(VERSION_NOT_SUPPORTED, v)
            out[:7] = [hs, hs, q, t, u, ver[7] - 0x30, 0]
            p = v + 10
        else:
            ver = head[:8]
            if (len(ver) < 8 or ver[:5] != b"HTTP/" or ver[5] not in DIGITS or ver[6] != 0x2E
                    or ver[7] not in DIGITS):
                raise _Error(BAD_VERSION, 0)
            if ver[5] != 0x31:
                raise _Error(VERSION_NOT_SUPPORTED, 0)
            # SP, three digits (first 1-9), then SP or CR: anything else is BAD_STATUS
            if head[8] != 0x20:
                raise _Error(BAD_STATUS, 8)
            if not 0x31 <= head[9] <= 0x39:
                raise _Error(BAD_STATUS, 9)
            for i in (10, 11):
                if head[i] not in DIGITS:
                    raise _Error(BAD_STATUS, i)
            status = int(head[9:12])
            if head[12] == 0x0D:
                rs = re = 12  # empty reason without SP: the span is empty at the CR
            elif head[12] == 0x20:
                rs = 13
                re = _skip(head, rs, VALUE)
                if head[re] != 0x0D:
                    raise _Error(BAD_REASON, re)
            else:
                raise _Error(BAD_STATUS, 12)
            out[:7] = [0, status, rs, re, 0, ver[7] - 0x30, 0]
            p = re + 2
        # 6. header lines
        n = 0
        while head[p] != 0x0D:
            if head[p] in OWS:  # checked before the header count
                raise _Error(OBS_FOLD, p)
            n += 1
            if n > max_headers:
                raise _Error(TOO_MANY_HEADERS, p)
            q = _skip(head, p, TCHAR)
            if q == p or head[q] != 0x3A:
                raise _Error(WS_BEFORE_COLON if q != p and head[q] in OWS else BAD_HEADER_NAME,
                             q)
            vs = _skip(head, q + 1, OWS)
            cr = _skip(head, vs, VALUE)
            if head[cr] != 0x0D:
                raise _Error(BAD_HEADER_VALUE, cr)
            ve = cr
            while ve > vs and head[ve - 1] in OWS:
                ve -= 1
            out += [HEADER_IDS.get(head[p:q].lower(), 0), p, q, vs, ve]
            p = cr + 2
        out[6] = n
        return end, out
    except _Error as error:
        return -error.code, [error.offset]
