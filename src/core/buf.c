/* Bounded buffers. Growth is checked against `max` and against size_t
 * overflow; every free wipes, so a buffer that once held a secret by mistake
 * does not leave it in the heap. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"

void cv_buf_init(struct cv_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void cv_buf_init_secret(struct cv_buf *b, size_t max)
{
    cv_buf_init(b, max);
    b->secret = 1;
}

void cv_buf_free(struct cv_buf *b)
{
    if (b->data) {
        cv_wipe(b->data, b->cap);
        if (b->secret) cv_secret_free(b->data);
        else free(b->data);
    }
    int secret = b->secret;
    size_t max = b->max;
    memset(b, 0, sizeof(*b));
    b->secret = secret;
    b->max = max;
}

void cv_buf_reset(struct cv_buf *b)
{
    if (b->data) cv_wipe(b->data, b->cap);
    b->len = 0;
    b->pos = 0;
}

cv_result cv_size_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) return cv_fail(CV_ERR_TOO_LARGE, "size overflow");
    *out = a + b;
    return CV_OK;
}

cv_result cv_size_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return cv_fail(CV_ERR_TOO_LARGE, "size overflow");
    *out = a * b;
    return CV_OK;
}

cv_result cv_buf_reserve(struct cv_buf *b, size_t extra)
{
    size_t need;
    CV_GUARD(cv_size_add(b->len, extra, &need));
    CV_ENSURE(need <= b->max, CV_ERR_TOO_LARGE, "input exceeds the limit of %zu bytes", b->max);
    /* +1 keeps room for cv_buf_terminate */
    CV_GUARD(cv_size_add(need, 1, &need));
    if (need <= b->cap) return CV_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->max < SIZE_MAX && cap > b->max + 1) cap = b->max + 1; /* max + 1 would wrap to 0 */
    uint8_t *p;
    if (b->secret) {
        p = cv_secret_realloc(b->data, cap);
    } else {
        /* realloc could leave a copy behind; allocate, copy, wipe, free */
        p = malloc(cap);
        if (p && b->data) {
            memcpy(p, b->data, b->len);
            cv_wipe(b->data, b->cap);
            free(b->data);
        }
    }
    CV_ENSURE(p != NULL, CV_ERR_MEMORY, "out of memory");
    b->data = p;
    b->cap = cap;
    return CV_OK;
}

cv_result cv_buf_append(struct cv_buf *b, const void *p, size_t n)
{
    if (n == 0) return CV_OK;
    CV_GUARD(cv_buf_reserve(b, n));
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return CV_OK;
}

cv_result cv_buf_append_str(struct cv_buf *b, const char *s) { return cv_buf_append(b, s, strlen(s)); }

cv_result cv_buf_append_u8(struct cv_buf *b, uint8_t v) { return cv_buf_append(b, &v, 1); }

cv_result cv_buf_append_u32be(struct cv_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return cv_buf_append(b, x, sizeof(x));
}

cv_result cv_buf_terminate(struct cv_buf *b)
{
    CV_GUARD(cv_buf_reserve(b, 0));
    b->data[b->len] = '\0';
    return CV_OK;
}

size_t cv_buf_remaining(const struct cv_buf *b) { return b->len - b->pos; }

cv_result cv_buf_read(struct cv_buf *b, void *out, size_t n)
{
    CV_ENSURE(cv_buf_remaining(b) >= n, CV_ERR_INPUT, "truncated input");
    if (n) memcpy(out, b->data + b->pos, n);
    b->pos += n;
    return CV_OK;
}

cv_result cv_buf_read_u32be(struct cv_buf *b, uint32_t *v)
{
    uint8_t x[4];
    CV_GUARD(cv_buf_read(b, x, sizeof(x)));
    *v = (uint32_t)x[0] << 24 | (uint32_t)x[1] << 16 | (uint32_t)x[2] << 8 | x[3];
    return CV_OK;
}

void cv_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

cv_result cv_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len)
{
    CV_ENSURE(out_len <= SIZE_MAX / 2 && in_len == 2 * out_len, CV_ERR_INPUT,
              "hex field has the wrong length");
    for (size_t i = 0; i < out_len; i++) {
        int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
        CV_ENSURE(hi >= 0 && lo >= 0, CV_ERR_INPUT, "hex field has a character that is not lowercase hex");
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return CV_OK;
}
