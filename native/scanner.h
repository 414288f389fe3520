/* The HTTP/1.x head scanner: one call finds, checks and splits a request or response head.
 *
 * parser/SCANNER.md is the contract (the same one parser/_pyscan.py implements in Python):
 * return codes, the layout of `out`, which error wins and at which offset.
 */
#ifndef PYSOZU_SCANNER_H
#define PYSOZU_SCANNER_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: a failed scan returns -code and stores the offset of the bad byte in out[0]. */
#define PYSOZU_BARE_LF 1
#define PYSOZU_BARE_CR 2
#define PYSOZU_BAD_METHOD 3
#define PYSOZU_BAD_TARGET 4
#define PYSOZU_BAD_VERSION 5
#define PYSOZU_VERSION_NOT_SUPPORTED 6
#define PYSOZU_BAD_STATUS 7
#define PYSOZU_BAD_REASON 8
#define PYSOZU_BAD_HEADER_NAME 9
#define PYSOZU_WS_BEFORE_COLON 10
#define PYSOZU_OBS_FOLD 11
#define PYSOZU_BAD_HEADER_VALUE 12
#define PYSOZU_HEAD_TOO_LARGE 13
#define PYSOZU_URI_TOO_LONG 14
#define PYSOZU_TOO_MANY_HEADERS 15

/* Scan buf[0:length]. Returns the head's length (> 0) with the spans in `out`, 0 when the
 * head is incomplete, or -code with out[0] = offset. `out` must have room for
 * 8 + 5 * max_headers ints (8 when max_headers <= 0). Only buf[0:length] is read, never more.
 * Offsets are int32: buffers longer than INT32_MAX bytes are scanned as if they were
 * INT32_MAX long. */
int pysozu_scan_head(const unsigned char *buf, size_t length, size_t last_len,
                     int is_request, size_t max_head, int max_headers, int32_t *out);

/* The id mask of SCANNER.md: bit `id` (0-17) when a header line has that id (0: a name
 * with none), and bit PYSOZU_REPEATED_SHIFT + id when more than one line has it, for the
 * ids 1-6 only (the ones the semantic layer reads). */
#define PYSOZU_REPEATED_SHIFT 18
#define PYSOZU_REPEATED_IDS 0x7Eu /* ids 1-6 */

/* pysozu_scan_head, and on success out[8 + 5n] (n = out[6]) = the id mask. `out` must have
 * room for 9 + 5 * max_headers ints (9 when max_headers <= 0). */
int pysozu_scan_head_ids(const unsigned char *buf, size_t length, size_t last_len,
                         int is_request, size_t max_head, int max_headers, int32_t *out);

/* SCANNER.md's simple response (h1.simple_response_head): a complete HTTP/1.1 response head
 * at the start of buf[0:length] with a final status (200-599 but 204 and 304), exactly one
 * Content-Length of 1 to 18 digits, no Transfer-Encoding, Keep-Alive or Upgrade, and at
 * most one Connection line, valued exactly "keep-alive" (any case). Returns its content
 * length, with out[0] = the head's length, out[1] = the status, out[2:4] = the span of the
 * Connection line to cut (empty at the final CRLF when there is none); -1 for any other
 * head, complete or not, valid or not. `out` as for pysozu_scan_head_ids. */
int64_t pysozu_simple_response(const unsigned char *buf, size_t length, size_t max_head,
                               int max_headers, int32_t *out);

/* 1 when pysozu_scan_head uses the SSE4.2 path, 0 for the scalar one. */
int pysozu_scanner_simd(void);

/* Tests: force the scalar path (1) or go back to the CPU's best (0). */
void pysozu_scanner_force_scalar(int force);

#endif
