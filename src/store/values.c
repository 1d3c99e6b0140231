/* Strict parsing of the text the database returns. A value that does not fit
 * is a broken invariant (CV_ERR_INTERNAL), never silently truncated: a
 * hostile or corrupted database must not overflow a fixed-size row field. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "store/internal.h"

cv_result cv_store_parse_i64(const char *s, size_t len, int64_t *out)
{
    char tmp[24];
    CV_ENSURE(s && len > 0 && len < sizeof(tmp), CV_ERR_INTERNAL, "database returned a malformed number");
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    CV_ENSURE(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'), CV_ERR_INTERNAL,
              "database returned a malformed number");
    errno = 0;
    char *end;
    long long v = strtoll(tmp, &end, 10);
    CV_ENSURE(errno == 0 && *end == '\0', CV_ERR_INTERNAL, "database returned a malformed number");
    *out = (int64_t)v;
    return CV_OK;
}

cv_result cv_store_parse_u32(const char *s, size_t len, uint32_t *out)
{
    int64_t v = 0;
    CV_GUARD(cv_store_parse_i64(s, len, &v));
    CV_ENSURE(v >= 0 && v <= UINT32_MAX, CV_ERR_INTERNAL, "database returned a number out of range");
    *out = (uint32_t)v;
    return CV_OK;
}

cv_result cv_store_copy_text(char *dst, size_t cap, const char *src, size_t len)
{
    CV_ENSURE(cap > 0 && len < cap, CV_ERR_INTERNAL, "database returned a value longer than %zu bytes", cap - 1);
    CV_ENSURE(memchr(src, '\0', len) == NULL, CV_ERR_INTERNAL, "database returned a value with a NUL byte");
    memcpy(dst, src, len);
    dst[len] = '\0';
    return CV_OK;
}

cv_result cv_store_parse_hex(const char *s, size_t len, uint8_t *out, size_t min, size_t max, size_t *n)
{
    CV_ENSURE(len % 2 == 0 && len / 2 >= min && len / 2 <= max, CV_ERR_INTERNAL,
              "database returned a key field of the wrong length");
    cv_result r = cv_hex_decode(s, len, out, len / 2);
    CV_ENSURE(cv_ok(r), CV_ERR_INTERNAL, "database returned a malformed key field");
    *n = len / 2;
    return CV_OK;
}
