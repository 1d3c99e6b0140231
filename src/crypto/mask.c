/* Masking of credential values for display (GET …/credentials): the first and
 * last 4 code points around "••••" for a value of 16 or more code points,
 * "••••••••" otherwise. It must never output a raw byte of a value that is not
 * strict UTF-8 (RFC 3629), never split a sequence, and never show more than 8
 * code points of any value. */
#include <string.h>

#include "credvault/crypto.h"

#define MASK_BULLET "\xe2\x80\xa2" /* U+2022 */
#define MASK_SHOWN_CODE_POINTS 4
#define MASK_MIN_CODE_POINTS 16
#define MASK_FULL MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET
#define MASK_MIDDLE MASK_BULLET MASK_BULLET MASK_BULLET MASK_BULLET

/* Length of the well-formed sequence starting at s[0] (Unicode 15, table 3-7),
 * or 0 when it is ill-formed: overlong, surrogate, above U+10FFFF, truncated. */
static size_t utf8_sequence_len(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c == 0xe0) { n = 3; lo = 0xa0; }
    else if (c == 0xed) { n = 3; hi = 0x9f; }
    else if (c >= 0xe1 && c <= 0xef) n = 3;
    else if (c == 0xf0) { n = 4; lo = 0x90; }
    else if (c == 0xf4) { n = 4; hi = 0x8f; }
    else if (c >= 0xf1 && c <= 0xf3) n = 4;
    else return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return n;
}

cv_result cv_mask_value(const char *value, size_t len, struct cv_buf *out)
{
    CV_ENSURE(value != NULL || len == 0, CV_ERR_INTERNAL, "null reference: value");
    CV_ENSURE_REF(out);
    const uint8_t *s = (const uint8_t *)value;

    /* One pass: validate, count, and remember where the 4th code point ends
     * and where each of the last 4 began (a ring of start offsets). */
    size_t count = 0, head_end = 0, ring[MASK_SHOWN_CODE_POINTS] = {0};
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len(s + i, len - i);
        if (n == 0) return cv_buf_append(out, MASK_FULL, sizeof(MASK_FULL) - 1);
        ring[count % MASK_SHOWN_CODE_POINTS] = i;
        count++;
        i += n;
        if (count == MASK_SHOWN_CODE_POINTS) head_end = i;
    }
    if (count < MASK_MIN_CODE_POINTS) return cv_buf_append(out, MASK_FULL, sizeof(MASK_FULL) - 1);

    /* the oldest entry of the ring is where the last 4 code points begin */
    size_t tail_start = ring[count % MASK_SHOWN_CODE_POINTS];
    size_t tail_len = len - tail_start;
    CV_GUARD(cv_buf_reserve(out, head_end + sizeof(MASK_MIDDLE) - 1 + tail_len));
    CV_GUARD(cv_buf_append(out, value, head_end));
    CV_GUARD(cv_buf_append(out, MASK_MIDDLE, sizeof(MASK_MIDDLE) - 1));
    CV_GUARD(cv_buf_append(out, value + tail_start, tail_len));
    return CV_OK;
}
