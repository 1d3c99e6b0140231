/* Reading PGresult values into fixed-size row fields. Every read checks the
 * shape and the length first; a value that does not fit is CV_ERR_INTERNAL,
 * never truncated. Results are owned by the caller; nothing here clears. */
#include <stdlib.h>
#include <string.h>

#include "store/pq.h"

cv_result cv_pq_expect(const PGresult *res, int nfields)
{
    CV_ENSURE(res && PQresultStatus(res) == PGRES_TUPLES_OK, CV_ERR_INTERNAL, "unexpected database result");
    CV_ENSURE(PQnfields(res) == nfields, CV_ERR_INTERNAL, "database returned %d columns, expected %d",
              PQnfields(res), nfields);
    return CV_OK;
}

int cv_pq_null(const PGresult *res, int row, int col) { return PQgetisnull(res, row, col); }

cv_result cv_pq_text(const PGresult *res, int row, int col, char *dst, size_t cap)
{
    if (PQgetisnull(res, row, col)) {
        dst[0] = '\0';
        return CV_OK;
    }
    return cv_store_copy_text(dst, cap, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

cv_result cv_pq_i64(const PGresult *res, int row, int col, int64_t *out)
{
    *out = 0;
    if (PQgetisnull(res, row, col)) return CV_OK;
    return cv_store_parse_i64(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), out);
}

cv_result cv_pq_u32(const PGresult *res, int row, int col, uint32_t *out)
{
    *out = 0;
    if (PQgetisnull(res, row, col)) return CV_OK;
    return cv_store_parse_u32(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), out);
}

cv_result cv_pq_bool(const PGresult *res, int row, int col, int *out)
{
    const char *v = PQgetvalue(res, row, col);
    CV_ENSURE(!PQgetisnull(res, row, col) && PQgetlength(res, row, col) == 1 && (v[0] == 't' || v[0] == 'f'),
              CV_ERR_INTERNAL, "database returned a malformed boolean");
    *out = v[0] == 't';
    return CV_OK;
}

cv_result cv_pq_dup(const PGresult *res, int row, int col, size_t max, char **out)
{
    *out = NULL;
    if (PQgetisnull(res, row, col)) return CV_OK;
    size_t len = (size_t)PQgetlength(res, row, col);
    CV_ENSURE(len <= max, CV_ERR_INTERNAL, "database returned a value longer than %zu bytes", max);
    char *s = malloc(len + 1);
    CV_ENSURE(s != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result r = cv_store_copy_text(s, len + 1, PQgetvalue(res, row, col), len);
    if (cv_failed(r)) {
        free(s);
        return r;
    }
    *out = s;
    return CV_OK;
}

cv_result cv_pq_hex(const PGresult *res, int row, int col, uint8_t *out, size_t min, size_t max, size_t *n)
{
    *n = 0;
    if (PQgetisnull(res, row, col)) {
        CV_ENSURE(min == 0, CV_ERR_INTERNAL, "database returned no key bytes");
        return CV_OK;
    }
    return cv_store_parse_hex(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), out, min, max, n);
}
