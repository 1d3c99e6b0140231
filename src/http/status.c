/* The one table from error category to HTTP status (STYLE.md: "in one table in
 * src/http, and nowhere else"), with each category's default client message.
 * Pure data: no I/O, no libmicrohttpd. */
#include "internal.h"

struct status_row {
    unsigned status;
    bool hide_detail; /* log the detail, tell the client only the default */
    const char *message;
};

static const struct status_row table[CV_ERR__COUNT] = {
    [CV_ERR_NONE] = {500, true, "internal error"},
    [CV_ERR_INPUT] = {400, false, "the request is invalid"},
    [CV_ERR_TOO_LARGE] = {413, false, "the request is too large"},
    [CV_ERR_MEDIA] = {415, false, "the content type is not supported"},
    [CV_ERR_AUTH] = {401, false, "authentication is required"},
    [CV_ERR_FORBIDDEN] = {403, false, "the operation is not allowed"},
    [CV_ERR_NOT_FOUND] = {404, false, "not found"},
    [CV_ERR_CONFLICT] = {409, false, "the request conflicts with the current state"},
    [CV_ERR_PRECONDITION] = {412, false, "the precondition failed"},
    [CV_ERR_RATE_LIMITED] = {429, false, "too many requests"},
    [CV_ERR_UNAVAILABLE] = {503, false, "the service is temporarily unavailable"},
    /* every decrypt, unwrap or verify failure gets the same answer: no oracle */
    [CV_ERR_CRYPTO] = {500, true, "Failed to decrypt credentials"},
    [CV_ERR_INTERNAL] = {500, true, "internal error"},
    [CV_ERR_MEMORY] = {500, true, "internal error"},
};

static const struct status_row *row(cv_err err)
{
    if ((unsigned)err >= CV_ERR__COUNT) return &table[CV_ERR_INTERNAL];
    return &table[err];
}

unsigned cv_http_status_for(cv_err err) { return row(err)->status; }

const char *cv_http_status_default_message(cv_err err) { return row(err)->message; }

bool cv_http_status_hides_detail(cv_err err) { return row(err)->hide_detail; }
