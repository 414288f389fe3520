/* The body of pysozu_scan_head, included twice by scanner.c: once with the SSE4.2 helpers
 * (and the SSE4.2 target attribute, so they inline), once with the scalar ones.
 *
 * The includer defines:
 *   SCAN_FN             the function's name
 *   SCAN_ATTR           its attributes
 *   FIND_LF(b, i, e)    the first '\n' in b[i:e], or e
 *   HEAD_END(b, i, e)   the end of the head (after the first '\n' in b[i:e] followed by
 *                       "\n" or "\r\n" within b[:e]), or 0 when there is none yet
 *   SKIP_TCHAR(b, i, e) the first byte in b[i:e] that is not a tchar, or e
 *   SKIP_TARGET(b, i, e) ... not in 0x21-0x7E
 *   SKIP_VALUE(b, i, e)  ... not HTAB, SP, 0x21-0x7E or 0x80-0xFF
 *   CHECK_CRLF(b, i, e, off) 0 when every CR in b[i:e] precedes an LF and every LF follows
 *                       a CR; else BARE_CR or BARE_LF, with *off the first violation
 *
 * Theory of operation (the order of SCANNER.md is the order in which errors win):
 *  1. skip leading CRLF pairs (requests);
 *  2. find the end of the head (a '\n' followed by "\n" or "\r\n"), from last_len - 2;
 *  3. size limits, which win over everything else;
 *  4./5./6. the CR/LF check comes before the start line and the headers in the contract,
 *     but a successful parse of lines 5 and 6 has already seen every CR and LF of the head
 *     in a CRLF pair (no byte class lets CR or LF through), so the separate CR/LF pass only
 *     runs when the parse fails: if it finds a violation, that violation wins.
 * Every scan of the parse stays below the head's end: its last byte is '\n', which no byte
 * class accepts, so every scan stops on or before it.
 */

SCAN_ATTR static int
SCAN_FN(const unsigned char *b, size_t length, size_t last_len, int is_request,
        size_t max_head, int max_headers, int32_t *out, int want_mask)
{
    size_t hs = 0, from, end, p, q, v, w, ve;
    int err, n;
    size_t off;
    int32_t *o, id;
    uint32_t mask = 0, repeated = 0;

    /* 1. leading empty lines */
    if (is_request) {
        while (length - hs >= 2 && b[hs] == '\r' && b[hs + 1] == '\n')
            hs += 2;
    }

    /* 2. end of head */
    from = hs;
    if (last_len >= 2 && last_len - 2 > from)
        from = last_len - 2;
    end = HEAD_END(b, from, length);

    /* 3. size */
    if (end == 0 ? length > max_head : end > max_head) {
        err = PYSOZU_HEAD_TOO_LARGE;
        if (is_request) {
            size_t lim = length < max_head ? length : max_head;
            if (hs >= lim || FIND_LF(b, hs, lim) == lim)
                err = PYSOZU_URI_TOO_LONG;
        }
        out[0] = (int32_t)max_head;
        return -err;
    }
    if (end == 0)
        return 0;

    /* 5. start line */
    if (is_request) {
        p = hs;
        q = SKIP_TCHAR(b, p, end);
        if (q == p || b[q] != ' ') {
            err = PYSOZU_BAD_METHOD; off = q;
            goto fail;
        }
        out[1] = (int32_t)p;
        out[2] = (int32_t)q;
        p = q + 1;
        if (b[p] == ' ') { /* exactly one SP after the method */
            err = PYSOZU_BAD_METHOD; off = p;
            goto fail;
        }
        q = SKIP_TARGET(b, p, end);
        if (q == p || b[q] != ' ') {
            err = PYSOZU_BAD_TARGET; off = q;
            goto fail;
        }
        out[3] = (int32_t)p;
        out[4] = (int32_t)q;
        p = q + 1;
        if (end - p < 10 || memcmp(b + p, "HTTP/", 5) != 0 || !IS_DIGIT(b[p + 5])
            || b[p + 6] != '.' || !IS_DIGIT(b[p + 7]) || b[p + 8] != '\r' || b[p + 9] != '\n') {
            err = PYSOZU_BAD_VERSION; off = p;
            goto fail;
        }
        if (b[p + 5] != '1') {
            err = PYSOZU_VERSION_NOT_SUPPORTED; off = p;
            goto fail;
        }
        out[0] = (int32_t)hs;
        out[5] = b[p + 7] - '0';
        p += 10;
    } else {
        if (end < 9 || memcmp(b, "HTTP/", 5) != 0 || !IS_DIGIT(b[5]) || b[6] != '.'
            || !IS_DIGIT(b[7])) {
            err = PYSOZU_BAD_VERSION; off = 0;
            goto fail;
        }
        if (b[5] != '1') {
            err = PYSOZU_VERSION_NOT_SUPPORTED; off = 0;
            goto fail;
        }
        /* b[8] exists (end >= 9); each later read follows a byte that was not the final LF */
        err = PYSOZU_BAD_STATUS;
        if (b[8] != ' ') { off = 8; goto fail; }
        if (b[9] < '1' || b[9] > '9') { off = 9; goto fail; }
        if (!IS_DIGIT(b[10])) { off = 10; goto fail; }
        if (!IS_DIGIT(b[11])) { off = 11; goto fail; }
        out[0] = 0;
        out[1] = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
        out[5] = b[7] - '0';
        if (b[12] == '\r') {
            q = 12;
        } else if (b[12] == ' ') {
            q = SKIP_VALUE(b, 13, end);
            if (b[q] != '\r') {
                err = PYSOZU_BAD_REASON; off = q;
                goto fail;
            }
        } else {
            off = 12; /* a fourth digit or any other byte: the code is not exactly 3 digits */
            goto fail;
        }
        if (b[q + 1] != '\n') {
            err = PYSOZU_BARE_CR; off = q; /* the CR/LF pass reports it (or an earlier one) */
            goto fail;
        }
        out[2] = (int32_t)(q == 12 ? 12 : 13);
        out[3] = (int32_t)q;
        out[4] = 0;
        p = q + 2;
    }

    /* 6. header lines */
    n = 0;
    o = out + 8;
    for (;;) {
        if (p >= end) { /* cannot happen: a line never ends on the head's last byte */
            err = PYSOZU_BAD_HEADER_NAME; off = end - 1;
            goto fail;
        }
        if (b[p] == '\r') {
            if (b[p + 1] != '\n') {
                err = PYSOZU_BARE_CR; off = p;
                goto fail;
            }
            p += 2;
            break;
        }
        if (b[p] == ' ' || b[p] == '\t') {
            err = PYSOZU_OBS_FOLD; off = p;
            goto fail;
        }
        if (++n > max_headers) {
            err = PYSOZU_TOO_MANY_HEADERS; off = p;
            goto fail;
        }
        q = SKIP_TCHAR(b, p, end);
        if (q == p || b[q] != ':') {
            err = (q != p && (b[q] == ' ' || b[q] == '\t')) ? PYSOZU_WS_BEFORE_COLON
                                                            : PYSOZU_BAD_HEADER_NAME;
            off = q;
            goto fail;
        }
        v = q + 1;
        while (b[v] == ' ' || b[v] == '\t')
            v++;
        w = SKIP_VALUE(b, v, end);
        if (b[w] != '\r') {
            err = PYSOZU_BAD_HEADER_VALUE; off = w;
            goto fail;
        }
        if (b[w + 1] != '\n') {
            err = PYSOZU_BARE_CR; off = w;
            goto fail;
        }
        ve = w;
        while (ve > v && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        id = header_id(b + p, q - p);
        repeated |= mask & ((uint32_t)1 << id);
        mask |= (uint32_t)1 << id;
        o[0] = id;
        o[1] = (int32_t)p;
        o[2] = (int32_t)q;
        o[3] = (int32_t)v;
        o[4] = (int32_t)ve;
        o += 5;
        p = w + 2;
    }
    out[6] = n;
    out[7] = 0;
    if (want_mask) /* out[8 + 5n]: SCANNER.md's id mask */
        *o = (int32_t)(mask | (repeated & PYSOZU_REPEATED_IDS) << PYSOZU_REPEATED_SHIFT);
    if (p != end) {
        /* Only when last_len broke its promise and the search skipped an earlier end: the
         * head is still buf[0:end] (step 2), so step 4 still covers all of it. */
        err = CHECK_CRLF(b, hs, end, &off);
        if (err) {
            out[0] = (int32_t)off;
            return -err;
        }
    }
    return (int)end;

fail:
    {
        size_t crlf_off = 0;
        int crlf_err = CHECK_CRLF(b, hs, end, &crlf_off);
        if (crlf_err) {
            out[0] = (int32_t)crlf_off;
            return -crlf_err;
        }
    }
    out[0] = (int32_t)off;
    return -err;
}
