/* The HTTP/1.x head scanner (parser/SCANNER.md): a SIMD path where the CPU has SSE4.2,
 * scalar C everywhere else, chosen once at run time.
 *
 * Each scan of the SIMD path looks at 16 bytes at once: a few compares (SSE2) or a nibble
 * lookup (PSHUFB, SSSE3: every SSE4.2 CPU has it) turn a block into a mask with one bit per
 * byte that stops the scan (PMOVMSKB), and the first set bit is the answer. Each byte class
 * is searched for by its complement. These take a cycle or two each, where the PCMPESTRI
 * range search of picohttpparser (this file's first version) takes about ten: header names
 * and values are short, so that latency was most of the cost of a scan. The end-of-head
 * search tests three shifted blocks at once for '\n' followed by '\n' or "\r\n". Loads are
 * unaligned and only happen while a whole block lies before the scan's end; the last bytes
 * go through the scalar loop, so nothing past buf[length - 1] is ever read.
 *
 * The SIMD functions carry __attribute__((target("sse4.2"))): the file builds without
 * -msse4.2 and runs on any x86-64; __builtin_cpu_supports("sse4.2") decides which path
 * runs. On other architectures (or with -DPYSOZU_NO_SSE42) only the scalar path is
 * compiled.
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

/* ---- SIMD helpers (SSE4.2 CPUs) ------------------------------------------------------- */

#if PYSOZU_HAVE_SSE42

#define SSE42 __attribute__((target("sse4.2")))
#define SSE42_INLINE static inline __attribute__((always_inline, target("sse4.2")))
#define LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))

/* 16-byte classifiers: one bit per byte (PMOVMSKB), set where the byte stops a scan. */

/* Not a tchar: a nibble lookup (PSHUFB). lo[c & 15] has bit h set when the byte h * 16 +
 * (c & 15) is a tchar, for h = 2..7 (no tchar is outside 0x21-0x7E); hi[c >> 4] is bit h for
 * those high nibbles and 0 for the others. A byte is a tchar when the two share a bit. */
SSE42_INLINE unsigned
stops_tchar(__m128i v)
{
    const __m128i lo_lut = _mm_setr_epi8(
        (char)0xE8, (char)0xFC, (char)0xF8, (char)0xFC, (char)0xFC, (char)0xFC, (char)0xFC,
        (char)0xFC, (char)0xF8, (char)0xF8, (char)0xF4, 0x54, (char)0xD0, 0x54, (char)0xF4,
        0x70);
    const __m128i hi_lut = _mm_setr_epi8(
        0, 0, 0x04, 0x08, 0x10, 0x20, 0x40, (char)0x80, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i nibble = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_shuffle_epi8(lo_lut, _mm_and_si128(v, nibble));
    __m128i hi = _mm_shuffle_epi8(hi_lut, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
    __m128i tchar = _mm_and_si128(lo, hi);
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(tchar, _mm_setzero_si128()));
}

/* Not in 0x21-0x7E: below 0x21 as a signed byte (0x00-0x20 and 0x80-0xFF), or DEL. */
SSE42_INLINE unsigned
stops_target(__m128i v)
{
    __m128i low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x21));
    __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, del));
}

/* Not HTAB, SP, 0x21-0x7E or 0x80-0xFF: a control byte other than HTAB, or DEL. */
SSE42_INLINE unsigned
stops_value(__m128i v)
{
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v); /* v <= 0x1F */
    __m128i tab = _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'));
    __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, ctl), del));
}

/* CR or LF. */
SSE42_INLINE unsigned
stops_crlf(__m128i v)
{
    __m128i cr = _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'));
    __m128i lf = _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(cr, lf));
}

/* The first byte in [i, end) that `classify` stops on, or end: 16 bytes at a time while 16
 * remain, then the scalar loop. */
#define SKIP_SIMD(name, classify, mask)                                                  \
    SSE42_INLINE size_t                                                                  \
    name(const unsigned char *b, size_t i, size_t end)                                   \
    {                                                                                    \
        while (i < end && end - i >= 16) {                                               \
            unsigned m = classify(LOAD(b + i));                                          \
            if (m)                                                                       \
                return i + (size_t)__builtin_ctz(m);                                     \
            i += 16;                                                                     \
        }                                                                                \
        return skip_scalar(b, i, end, mask);                                             \
    }

SKIP_SIMD(skip_tchar_sse42, stops_tchar, C_TCHAR)
SKIP_SIMD(skip_target_sse42, stops_target, C_TARGET)
SKIP_SIMD(skip_value_sse42, stops_value, C_VALUE)

SSE42_INLINE size_t
find_lf_sse42(const unsigned char *b, size_t i, size_t end)
{
    const __m128i lf = _mm_set1_epi8('\n');
    while (i < end && end - i >= 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(LOAD(b + i), lf));
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
    return find_lf_scalar(b, i, end);
}

/* The end of the head: the blocks at i, i + 1 and i + 2 give, for each position of the
 * first one, whether it holds a '\n' followed by '\n' or by "\r\n"; the first such '\n'
 * ends the head. The loads stay below `length` (18 bytes from i); the rest is scalar. */
SSE42_INLINE size_t
head_end_sse42(const unsigned char *b, size_t i, size_t length)
{
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    while (i < length && length - i >= 18) {
        __m128i v1 = LOAD(b + i + 1);
        __m128i next = _mm_or_si128(
            _mm_cmpeq_epi8(v1, lf),
            _mm_and_si128(_mm_cmpeq_epi8(v1, cr), _mm_cmpeq_epi8(LOAD(b + i + 2), lf)));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(LOAD(b + i), lf), next));
        if (m) {
            size_t p = i + (size_t)__builtin_ctz(m);
            return b[p + 1] == '\n' ? p + 2 : p + 3;
        }
        i += 16;
    }
    return head_end_scalar(b, i, length);
}

SSE42_INLINE int
check_crlf_sse42(const unsigned char *b, size_t i, size_t end, size_t *off)
{
    int err;
    while (i < end) {
        if (end - i >= 16) {
            unsigned m = stops_crlf(LOAD(b + i));
            if (!m) {
                i += 16;
                continue;
            }
            i += (size_t)__builtin_ctz(m);
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
#define SKIP_TCHAR(b, i, e) skip_tchar_sse42(b, i, e)
#define SKIP_TARGET(b, i, e) skip_target_sse42(b, i, e)
#define SKIP_VALUE(b, i, e) skip_value_sse42(b, i, e)
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

static inline int
scan_dispatch(const unsigned char *buf, size_t length, size_t last_len, int is_request,
              size_t max_head, int max_headers, int32_t *out, int want_mask)
{
    int p = __atomic_load_n(&path, __ATOMIC_RELAXED);
    if (length > (size_t)INT32_MAX)
        length = (size_t)INT32_MAX;
    if (p < 0)
        p = decide();
#if PYSOZU_HAVE_SSE42
    if (p)
        return scan_sse42(buf, length, last_len, is_request, max_head, max_headers, out,
                          want_mask);
#endif
    return scan_scalar(buf, length, last_len, is_request, max_head, max_headers, out,
                       want_mask);
}

int
pysozu_scan_head(const unsigned char *buf, size_t length, size_t last_len, int is_request,
                 size_t max_head, int max_headers, int32_t *out)
{
    return scan_dispatch(buf, length, last_len, is_request, max_head, max_headers, out, 0);
}

int
pysozu_scan_head_ids(const unsigned char *buf, size_t length, size_t last_len,
                     int is_request, size_t max_head, int max_headers, int32_t *out)
{
    return scan_dispatch(buf, length, last_len, is_request, max_head, max_headers, out, 1);
}

/* Header ids and mask bits of SCANNER.md that the simple-response test reads. */
#define ID_CONTENT_LENGTH 1
#define ID_TRANSFER_ENCODING 2
#define ID_CONNECTION 3
#define ID_UPGRADE 5
#define ID_KEEP_ALIVE 10
#define BIT(id) (1u << (id))
#define REPEATED(id) (1u << (PYSOZU_REPEATED_SHIFT + (id)))

int64_t
pysozu_simple_response(const unsigned char *buf, size_t length, size_t max_head,
                       int max_headers, int32_t *out)
{
    const uint32_t not_simple = BIT(ID_TRANSFER_ENCODING) | REPEATED(ID_CONTENT_LENGTH)
                                | REPEATED(ID_CONNECTION) | BIT(ID_KEEP_ALIVE)
                                | BIT(ID_UPGRADE);
    int rc = scan_dispatch(buf, length, 0, 0, max_head, max_headers, out, 1);
    if (rc <= 0)
        return -1;
    int32_t n = out[6];
    uint32_t mask = (uint32_t)out[8 + 5 * n];
    if ((mask & not_simple) || !(mask & BIT(ID_CONTENT_LENGTH)) || out[5] != 1)
        return -1;
    int32_t status = out[1];
    if (status < 200 || status > 599 || status == 204 || status == 304)
        return -1;
    int64_t content_length = -1;
    int32_t cut = rc - 2, cut_end = rc - 2;
    for (int32_t i = 0; i < n; i++) {
        const int32_t *h = out + 8 + 5 * i;
        if (h[0] == ID_CONTENT_LENGTH) {
            int32_t vs = h[3], ve = h[4];
            if (ve - vs < 1 || ve - vs > 18)
                return -1;
            int64_t v = 0;
            for (int32_t k = vs; k < ve; k++) {
                if (!IS_DIGIT(buf[k]))
                    return -1;
                v = v * 10 + (buf[k] - '0');
            }
            content_length = v;
        } else if (h[0] == ID_CONNECTION) {
            static const char keep_alive[] = "keep-alive";
            int32_t vs = h[3], ve = h[4];
            if (ve - vs != 10)
                return -1;
            for (int32_t k = 0; k < 10; k++) {
                unsigned char c = buf[vs + k];
                if (c >= 'A' && c <= 'Z')
                    c = (unsigned char)(c + 32);
                if (c != (unsigned char)keep_alive[k])
                    return -1;
            }
            cut = h[1];
            cut_end = i + 1 < n ? h[6] : rc - 2;
        }
    }
    out[0] = rc;
    out[1] = status;
    out[2] = cut;
    out[3] = cut_end;
    return content_length;
}
