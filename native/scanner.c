/* The HTTP/1.x head scanner (parser/SCANNER.md): SSE4.2 where the CPU has it, scalar C
 * everywhere else, chosen once at run time.
 *
 * The SIMD idea is picohttpparser's: PCMPESTRI in "ranges" mode compares 16 bytes against up
 * to 8 inclusive byte ranges at once and gives the index of the first byte inside one of
 * them. Each byte class is searched for by its complement (the bytes that stop a scan).
 * The tchar class needs 10 stop ranges, one too many, so its last range starts at '{' and
 * also stops on '|' and '~' (both tchars): a tchar stop is confirmed with the 256-entry
 * table, and a false stop just moves on. The end-of-head search wants every '\n', so it
 * takes them 16 bytes at a time as a bit mask (PCMPESTRM). Loads are unaligned and only
 * happen while 16 bytes remain before the scan's end; the last 0 to 15 bytes go through the
 * scalar loop, so nothing past buf[length - 1] is ever read.
 *
 * The SSE4.2 functions carry __attribute__((target("sse4.2"))): the file builds without
 * -msse4.2 and runs on any x86-64; __builtin_cpu_supports decides which path runs. On other
 * architectures (or with -DPYSOZU_NO_SSE42) only the scalar path is compiled.
 */
#include "scanner.h"

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(PYSOZU_NO_SSE42)
#define PYSOZU_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define PYSOZU_HAVE_SSE42 0
#endif

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* Byte classes: 1 tchar (RFC 9110 5.6.2), 2 request-target (0x21-0x7E),
 * 4 field value and reason phrase (HTAB, SP, 0x21-0x7E, 0x80-0xFF). */
#define C_TCHAR 1
#define C_TARGET 2
#define C_VALUE 4

static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,  /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 0x10 */
    4, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,  /* 0x20  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6,  /* 0x30 0-9:;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* 0x40 @A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7,  /* 0x50 P-Z[\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  /* 0x60 `a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0,  /* 0x70 p-z{|}~DEL */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0x80 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0x90 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xA0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xB0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xC0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xD0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xE0 */
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,  /* 0xF0 */
};

/* ---- header names ------------------------------------------------------------------- */

/* ASCII lower case; the names below are letters and '-', and for a tchar c,
 * (c | 0x20) equals a lower-case letter or '-' only when c is that letter (either case)
 * or '-' itself, so OR-ing 0x20 compares tchar names case-insensitively and exactly. */
static int
name_is(const unsigned char *s, const char *lower, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if ((s[i] | 0x20) != (unsigned char)lower[i])
            return 0;
    }
    return 1;
}

/* SCANNER.md's header_id: 0 for any other name. */
static int32_t
header_id(const unsigned char *s, size_t n)
{
    switch (n) {
    case 2:
        return name_is(s, "te", 2) ? 8 : 0;
    case 4:
        return name_is(s, "host", 4) ? 4 : 0;
    case 6:
        if (name_is(s, "cookie", 6))
            return 7;
        return name_is(s, "expect", 6) ? 6 : 0;
    case 7:
        if (name_is(s, "upgrade", 7))
            return 5;
        return name_is(s, "trailer", 7) ? 9 : 0;
    case 9:
        if (name_is(s, "forwarded", 9))
            return 13;
        return name_is(s, "x-real-ip", 9) ? 16 : 0;
    case 10:
        if (name_is(s, "connection", 10))
            return 3;
        return name_is(s, "keep-alive", 10) ? 10 : 0;
    case 12:
        return name_is(s, "x-request-id", 12) ? 17 : 0;
    case 14:
        return name_is(s, "content-length", 14) ? 1 : 0;
    case 15:
        return name_is(s, "x-forwarded-for", 15) ? 12 : 0;
    case 16:
        if (name_is(s, "proxy-connection", 16))
            return 11;
        return name_is(s, "x-forwarded-port", 16) ? 15 : 0;
    case 17:
        if (name_is(s, "transfer-encoding", 17))
            return 2;
        return name_is(s, "x-forwarded-proto", 17) ? 14 : 0;
    default:
        return 0;
    }
}

/* ---- scalar helpers ----------------------------------------------------------------- */

static inline size_t
skip_scalar(const unsigned char *b, size_t i, size_t end, unsigned char mask)
{
    while (end - i >= 4) {
        if (!(cls[b[i]] & mask))
            return i;
        if (!(cls[b[i + 1]] & mask))
            return i + 1;
        if (!(cls[b[i + 2]] & mask))
            return i + 2;
        if (!(cls[b[i + 3]] & mask))
            return i + 3;
        i += 4;
    }
    while (i < end && (cls[b[i]] & mask))
        i++;
    return i;
}

static inline size_t
find_lf_scalar(const unsigned char *b, size_t i, size_t end)
{
    const unsigned char *p;
    if (i >= end)
        return end;
    p = memchr(b + i, '\n', end - i);
    return p ? (size_t)(p - b) : end;
}

/* Is the '\n' at p the end of the head? Its end, or 0. */
static inline size_t
end_at(const unsigned char *b, size_t p, size_t length)
{
    if (p + 1 < length) {
        if (b[p + 1] == '\n')
            return p + 2;
        if (b[p + 1] == '\r' && p + 2 < length && b[p + 2] == '\n')
            return p + 3;
    }
    return 0;
}

static inline size_t
head_end_scalar(const unsigned char *b, size_t i, size_t length)
{
    size_t p, e;
    while (i < length) {
        p = find_lf_scalar(b, i, length);
        if (p == length)
            return 0;
        if ((e = end_at(b, p, length)) != 0)
            return e;
        i = p + 1;
    }
    return 0;
}

/* From a CR or LF at i: consume a CRLF pair, or report the violation. */
static inline int
crlf_at(const unsigned char *b, size_t *i, size_t end, size_t *off)
{
    if (b[*i] == '\r' && *i + 1 < end && b[*i + 1] == '\n') {
        *i += 2;
        return 0;
    }
    *off = *i;
    return b[*i] == '\r' ? PYSOZU_BARE_CR : PYSOZU_BARE_LF;
}

static inline int
check_crlf_scalar(const unsigned char *b, size_t i, size_t end, size_t *off)
{
    int err;
    while (i < end) {
        unsigned char c = b[i];
        if (c == '\r' || c == '\n') {
            if ((err = crlf_at(b, &i, end, off)) != 0)
                return err;
        } else {
            i++;
        }
    }
    return 0;
}

#define SCAN_FN scan_scalar
#define SCAN_ATTR
#define FIND_LF(b, i, e) find_lf_scalar(b, i, e)
#define HEAD_END(b, i, e) head_end_scalar(b, i, e)
#define SKIP_TCHAR(b, i, e) skip_scalar(b, i, e, C_TCHAR)
#define SKIP_TARGET(b, i, e) skip_scalar(b, i, e, C_TARGET)
#define SKIP_VALUE(b, i, e) skip_scalar(b, i, e, C_VALUE)
#define CHECK_CRLF(b, i, e, off) check_crlf_scalar(b, i, e, off)
#include "scan_body.h"
#undef SCAN_FN
#undef SCAN_ATTR
#undef FIND_LF
#undef HEAD_END
#undef SKIP_TCHAR
#undef SKIP_TARGET
#undef SKIP_VALUE
#undef CHECK_CRLF

/* ---- SSE4.2 helpers ----------------------------------------------------------------- */

#if PYSOZU_HAVE_SSE42

#define SSE42 __attribute__((target("sse4.2")))
#define SSE42_INLINE static inline __attribute__((always_inline, target("sse4.2")))
#define RANGES (_SIDD_UBYTE_OPS | _SIDD_CMP_RANGES | _SIDD_POSITIVE_POLARITY \
                | _SIDD_LEAST_SIGNIFICANT)

/* Stop ranges (lo, hi pairs) of each scan: the complement of the class it skips. */
#define STOP_RANGES_TCHAR \
    _mm_setr_epi8(0x00, 0x20, 0x22, 0x22, 0x28, 0x29, 0x2C, 0x2C, \
                  0x2F, 0x2F, 0x3A, 0x40, 0x5B, 0x5D, 0x7B, (char)0xFF)
#define STOP_RANGES_TARGET \
    _mm_setr_epi8(0x00, 0x20, 0x7F, (char)0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
#define STOP_RANGES_VALUE \
    _mm_setr_epi8(0x00, 0x08, 0x0A, 0x1F, 0x7F, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
#define STOP_RANGES_LF \
    _mm_setr_epi8(0x0A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
#define STOP_RANGES_CRLF \
    _mm_setr_epi8(0x0A, 0x0A, 0x0D, 0x0D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

/* Skip the bytes of class `mask` from i: the first byte in [i, end) outside it, or end.
 * When the stop ranges are not `exact` (tchar), a stop is a candidate that the table
 * confirms; otherwise (a constant) the confirming load is compiled out. */
SSE42_INLINE size_t
skip_sse42(const unsigned char *b, size_t i, size_t end, __m128i stops, int nstops,
           unsigned char mask, int exact)
{
    while (end - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        int k = _mm_cmpestri(stops, nstops, v, 16, RANGES);
        if (k == 16) {
            i += 16;
            continue;
        }
        i += (size_t)k;
        if (exact || !(cls[b[i]] & mask))
            return i;
        i++; /* a false stop: '|' or '~' in a run of tchars */
    }
    return skip_scalar(b, i, end, mask);
}

SSE42_INLINE size_t
find_lf_sse42(const unsigned char *b, size_t i, size_t end)
{
    const __m128i lf = STOP_RANGES_LF;
    while (i < end && end - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        int k = _mm_cmpestri(lf, 2, v, 16, RANGES);
        if (k != 16)
            return i + (size_t)k;
        i += 16;
    }
    while (i < end && b[i] != '\n')
        i++;
    return i < end ? i : end;
}

/* The end-of-head search looks at every '\n' of the head, so it takes them 16 bytes at a
 * time as a bit mask (PCMPESTRM): the blocks do not wait on each other, unlike a chain of
 * PCMPESTRI calls that each restart after the previous '\n'. */
SSE42_INLINE size_t
head_end_sse42(const unsigned char *b, size_t i, size_t length)
{
    const __m128i lf = STOP_RANGES_LF;
    size_t e;
    while (i < length && length - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        unsigned mask = (unsigned)_mm_cvtsi128_si32(
            _mm_cmpestrm(lf, 2, v, 16, RANGES | _SIDD_BIT_MASK));
        while (mask) {
            if ((e = end_at(b, i + (size_t)__builtin_ctz(mask), length)) != 0)
                return e;
            mask &= mask - 1;
        }
        i += 16;
    }
    return head_end_scalar(b, i, length);
}

SSE42_INLINE int
check_crlf_sse42(const unsigned char *b, size_t i, size_t end, size_t *off)
{
    const __m128i crlf = STOP_RANGES_CRLF;
    int err;
    while (i < end) {
        if (end - i >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
            int k = _mm_cmpestri(crlf, 4, v, 16, RANGES);
            if (k == 16) {
                i += 16;
                continue;
            }
            i += (size_t)k;
        } else if (b[i] != '\r' && b[i] != '\n') {
            i++;
            continue;
        }
        if ((err = crlf_at(b, &i, end, off)) != 0)
            return err;
    }
    return 0;
}

#define SCAN_FN scan_sse42
#define SCAN_ATTR SSE42
#define FIND_LF(b, i, e) find_lf_sse42(b, i, e)
#define HEAD_END(b, i, e) head_end_sse42(b, i, e)
#define SKIP_TCHAR(b, i, e) skip_sse42(b, i, e, STOP_RANGES_TCHAR, 16, C_TCHAR, 0)
#define SKIP_TARGET(b, i, e) skip_sse42(b, i, e, STOP_RANGES_TARGET, 4, C_TARGET, 1)
#define SKIP_VALUE(b, i, e) skip_sse42(b, i, e, STOP_RANGES_VALUE, 6, C_VALUE, 1)
#define CHECK_CRLF(b, i, e, off) check_crlf_sse42(b, i, e, off)
#include "scan_body.h"

static int
cpu_has_sse42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

#else

static int
cpu_has_sse42(void)
{
    return 0;
}

#endif /* PYSOZU_HAVE_SSE42 */

/* ---- dispatch ----------------------------------------------------------------------- */

/* -1: not decided yet; 0: scalar; 1: SSE4.2. Relaxed atomics: every thread that decides
 * stores the same value. */
static int path = -1;
static int forced_scalar = 0;

static int
decide(void)
{
    int p = (!__atomic_load_n(&forced_scalar, __ATOMIC_RELAXED) && cpu_has_sse42()) ? 1 : 0;
    __atomic_store_n(&path, p, __ATOMIC_RELAXED);
    return p;
}

int
pysozu_scanner_simd(void)
{
    int p = __atomic_load_n(&path, __ATOMIC_RELAXED);
    return p < 0 ? decide() : p;
}

void
pysozu_scanner_force_scalar(int force)
{
    __atomic_store_n(&forced_scalar, force ? 1 : 0, __ATOMIC_RELAXED);
    decide();
}

int
pysozu_scan_head(const unsigned char *buf, size_t length, size_t last_len, int is_request,
                 size_t max_head, int max_headers, int32_t *out)
{
    int p = __atomic_load_n(&path, __ATOMIC_RELAXED);
    if (length > (size_t)INT32_MAX)
        length = (size_t)INT32_MAX;
    if (p < 0)
        p = decide();
#if PYSOZU_HAVE_SSE42
    if (p)
        return scan_sse42(buf, length, last_len, is_request, max_head, max_headers, out);
#endif
    return scan_scalar(buf, length, last_len, is_request, max_head, max_headers, out);
}
