/* Request paths: split at '/' first, then percent-decode each segment, so an
 * encoded slash can never create or hide a segment. Bounded by
 * CV_HTTP_PATH_MAX_BYTES and CV_HTTP_SEGMENT_MAX_BYTES; never allocates. */
#include <string.h>

#include "internal.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

cv_result cv_http_percent_decode(const char *in, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            CV_ENSURE(n - i >= 3, CV_ERR_INPUT, "malformed percent escape in the request URI");
            int h = hex_digit(in[i + 1]), l = hex_digit(in[i + 2]);
            CV_ENSURE(h >= 0 && l >= 0, CV_ERR_INPUT, "malformed percent escape in the request URI");
            c = (unsigned char)(h << 4 | l);
            i += 2;
        }
        /* control characters (and NUL) have no place in ids or query values */
        CV_ENSURE(c >= 0x20 && c != 0x7f, CV_ERR_INPUT, "control character in the request URI");
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return CV_OK;
}

cv_result cv_http_path_parse(const char *raw, struct cv_http_path *out)
{
    size_t len = strlen(raw);
    out->n = 0;
    CV_ENSURE(len <= CV_HTTP_PATH_MAX_BYTES, CV_ERR_TOO_LARGE, "the request path is longer than %d bytes",
              CV_HTTP_PATH_MAX_BYTES);
    CV_ENSURE(raw[0] == '/', CV_ERR_INPUT, "the request path must start with '/'");
    if (len == 1) return CV_OK; /* "/" has no segments */
    size_t used = 0;
    const char *p = raw + 1;
    const char *end = raw + len;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        CV_ENSURE(out->n < CV_HTTP_MAX_SEGMENTS, CV_ERR_INPUT, "the request path has more than %d segments",
                  CV_HTTP_MAX_SEGMENTS);
        size_t raw_n = (size_t)(seg_end - p);
        /* each segment decodes to at most raw_n bytes plus its NUL: room is certain */
        char *dst = out->storage + used;
        size_t dec_n;
        CV_GUARD(cv_http_percent_decode(p, raw_n, dst, &dec_n));
        CV_ENSURE(dec_n <= CV_HTTP_SEGMENT_MAX_BYTES, CV_ERR_TOO_LARGE,
                  "a request path segment is longer than %d bytes", CV_HTTP_SEGMENT_MAX_BYTES);
        out->seg[out->n++] = dst;
        used += dec_n + 1;
        if (!slash) break;
        p = slash + 1;
    }
    return CV_OK;
}
