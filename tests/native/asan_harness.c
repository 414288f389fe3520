/* Runs pysozu_scan_head under AddressSanitizer and UBSan on every prefix of a corpus, with
 * each input ending exactly at a PROT_NONE guard page (an over-read past buf[length - 1]
 * faults) and again in a malloc'd block of exactly `length` bytes (ASan's redzones catch an
 * over- or under-read on either side). Both placements must agree. pysozu_scan_head_ids
 * runs on both placements too, with an `out` of exactly 9 + 5 * max_headers ints: it must
 * give the same answer, and its mask is printed.
 *
 * Corpus file, one case a line: "<is_request> <max_head> <max_headers> <hex bytes>".
 * Output, one line a call (tests/native/test_asan.py computes the same lines in Python):
 *   "<case> <prefix length> <last_len> <path> <rc> [out...] [mask=<id mask>]"
 * where path is "simd" or "scalar", and out is the 8 + 5n spans then the id mask on success,
 * the offset on an error, nothing when incomplete. Each prefix is scanned with last_len 0 and with the
 * last_len of the previous incomplete prefix (the resume the contract allows).
 * First line: "simd-available <0|1>". Exit status 0 unless something went wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scanner.h"

#define MAX_INPUT (1 << 20)

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void
print_result(int ncase, size_t len, size_t last_len, const char *path, int rc,
             const int32_t *out, int32_t mask)
{
    printf("%d %zu %zu %s %d", ncase, len, last_len, path, rc);
    if (rc > 0) {
        int i, n = 8 + 5 * out[6];
        for (i = 0; i < n; i++)
            printf(" %d", (int)out[i]);
        printf(" mask=%d", (int)mask);
    } else if (rc < 0) {
        printf(" %d", (int)out[0]);
    }
    printf("\n");
}

/* Scan `len` bytes placed at the end of the guarded region and in an exact malloc block,
 * with both entry points; `ids` and `ids2` are the scan_head_ids outputs (one int more). */
static int
scan_both(unsigned char *guard, const unsigned char *data, size_t len, size_t last_len,
          int is_request, size_t max_head, int max_headers, int32_t *out, int32_t *out2,
          int32_t *ids, int32_t *ids2, int32_t *mask)
{
    unsigned char *at_guard = guard - len;
    unsigned char *heap;
    int rc, rc2, rc3, rc4, n;
    memcpy(at_guard, data, len);
    rc = pysozu_scan_head(at_guard, len, last_len, is_request, max_head, max_headers, out);
    rc3 = pysozu_scan_head_ids(at_guard, len, last_len, is_request, max_head, max_headers,
                               ids);
    heap = malloc(len ? len : 1);
    if (heap == NULL) {
        perror("malloc");
        exit(2);
    }
    memcpy(heap, data, len);
    rc2 = pysozu_scan_head(heap, len, last_len, is_request, max_head, max_headers, out2);
    rc4 = pysozu_scan_head_ids(heap, len, last_len, is_request, max_head, max_headers, ids2);
    free(heap);
    n = rc > 0 ? 8 + 5 * out[6] : (rc < 0 ? 1 : 0);
    if (rc != rc2 || (n && memcmp(out, out2, sizeof(int32_t) * (size_t)n) != 0)) {
        fprintf(stderr, "MISMATCH between placements: rc %d vs %d\n", rc, rc2);
        exit(3);
    }
    /* scan_head_ids: the same answer, and the same mask after it on both placements */
    if (rc3 != rc || rc4 != rc || (n && (memcmp(out, ids, sizeof(int32_t) * (size_t)n) != 0
                                         || memcmp(ids, ids2, sizeof(int32_t) * (size_t)n) != 0
                                         || (rc > 0 && ids[n] != ids2[n])))) {
        fprintf(stderr, "MISMATCH of scan_head_ids: rc %d, %d, %d\n", rc, rc3, rc4);
        exit(4);
    }
    *mask = rc > 0 ? ids[n] : 0;
    return rc;
}

int
main(int argc, char **argv)
{
    FILE *f;
    static char line[2 * MAX_INPUT + 256];
    long page = sysconf(_SC_PAGESIZE);
    size_t region = ((MAX_INPUT + (size_t)page - 1) / (size_t)page) * (size_t)page;
    unsigned char *map, *guard, *data;
    int ncase = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "r");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    map = mmap(NULL, region + (size_t)page, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    guard = map + region;
    if (mprotect(guard, (size_t)page, PROT_NONE) != 0) {
        perror("mprotect");
        return 2;
    }
    data = malloc(MAX_INPUT);
    if (data == NULL)
        return 2;

    pysozu_scanner_force_scalar(0);
    printf("simd-available %d\n", pysozu_scanner_simd());

    while (fgets(line, sizeof line, f) != NULL) {
        int is_request, max_headers, consumed = 0, path;
        size_t max_head, len = 0, plen;
        const char *hex;
        if (sscanf(line, "%d %zu %d %n", &is_request, &max_head, &max_headers, &consumed) != 3) {
            fprintf(stderr, "bad corpus line %d\n", ncase);
            return 2;
        }
        for (hex = line + consumed; hexval(hex[0]) >= 0 && hexval(hex[1]) >= 0; hex += 2) {
            if (len == MAX_INPUT) {
                fprintf(stderr, "input too long\n");
                return 2;
            }
            data[len++] = (unsigned char)(hexval(hex[0]) * 16 + hexval(hex[1]));
        }
        {
            size_t cap = max_headers > 0 ? (size_t)max_headers : 0;
            int32_t *out = malloc(sizeof(int32_t) * (8 + 5 * cap));
            int32_t *out2 = malloc(sizeof(int32_t) * (8 + 5 * cap));
            int32_t *ids = malloc(sizeof(int32_t) * (9 + 5 * cap));
            int32_t *ids2 = malloc(sizeof(int32_t) * (9 + 5 * cap));
            int32_t mask = 0;
            if (out == NULL || out2 == NULL || ids == NULL || ids2 == NULL)
                return 2;
            for (path = 0; path < 2; path++) {
                const char *name = path ? "scalar" : "simd";
                size_t last = 0;
                pysozu_scanner_force_scalar(path);
                for (plen = 0; plen <= len; plen++) {
                    int rc = scan_both(guard, data, plen, 0, is_request, max_head, max_headers,
                                       out, out2, ids, ids2, &mask);
                    print_result(ncase, plen, 0, name, rc, out, mask);
                    if (last) {
                        rc = scan_both(guard, data, plen, last, is_request, max_head,
                                       max_headers, out, out2, ids, ids2, &mask);
                        print_result(ncase, plen, last, name, rc, out, mask);
                    }
                    if (rc == 0)
                        last = plen;
                }
            }
            free(out);
            free(out2);
            free(ids);
            free(ids2);
        }
        ncase++;
    }
    fclose(f);
    free(data);
    munmap(map, region + (size_t)page);
    return 0;
}
