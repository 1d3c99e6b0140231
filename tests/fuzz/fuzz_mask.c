/* Fuzzes cv_mask_value. The output must be either the full mask, or a prefix
 * and a suffix of the input around "••••" that start and end on code point
 * boundaries and hold at most 4 code points (16 bytes) each. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

#define B "\xe2\x80\xa2"
#define FULL B B B B B B B B
#define MID B B B B

static int is_continuation(uint8_t c) { return c >= 0x80 && c <= 0xbf; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cv_buf out;
    cv_buf_init(&out, size + 64);
    if (cv_failed(cv_mask_value((const char *)data, size, &out))) abort();

    if (!(out.len == sizeof(FULL) - 1 && memcmp(out.data, FULL, out.len) == 0)) {
        /* the input may hold bullets itself, so try every head length */
        int matched = 0;
        for (size_t head = 4; head <= 16 && !matched; head++) {
            if (out.len < head + sizeof(MID) - 1) break;
            size_t tail = out.len - head - (sizeof(MID) - 1);
            if (tail < 4 || tail > 16 || head + tail > size) continue;
            if (memcmp(out.data, data, head) != 0) continue;
            if (memcmp(out.data + head, MID, sizeof(MID) - 1) != 0) continue;
            if (memcmp(out.data + head + sizeof(MID) - 1, data + size - tail, tail) != 0) continue;
            if (is_continuation(data[head]) || is_continuation(data[size - tail])) continue;
            matched = 1;
        }
        if (!matched) abort();
    }
    cv_buf_free(&out);
    cv_error_clear();
    return 0;
}
