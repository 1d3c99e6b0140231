/* Thread-local last error. Messages are formatted by callers that know they
 * hold no secret; this file only stores them, bounded. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "credvault/result.h"

#define CV_ERROR_MESSAGE_MAX_BYTES 256

#define CV_ERROR_CODE_MAX_BYTES 48

static _Thread_local struct {
    cv_err err;
    char code[CV_ERROR_CODE_MAX_BYTES]; /* copied: callers may pass a buffer of their own */
    char message[CV_ERROR_MESSAGE_MAX_BYTES];
} last;

static const char *const names[CV_ERR__COUNT] = {
    [CV_ERR_NONE] = "none",
    [CV_ERR_INPUT] = "invalid_request",
    [CV_ERR_TOO_LARGE] = "payload_too_large",
    [CV_ERR_MEDIA] = "unsupported_media_type",
    [CV_ERR_AUTH] = "unauthorized",
    [CV_ERR_FORBIDDEN] = "forbidden",
    [CV_ERR_NOT_FOUND] = "not_found",
    [CV_ERR_CONFLICT] = "conflict",
    [CV_ERR_PRECONDITION] = "precondition_failed",
    [CV_ERR_RATE_LIMITED] = "rate_limited",
    [CV_ERR_UNAVAILABLE] = "unavailable",
    [CV_ERR_CRYPTO] = "decrypt_failed",
    [CV_ERR_INTERNAL] = "internal_error",
    [CV_ERR_MEMORY] = "out_of_memory",
};

const char *cv_err_name(cv_err err)
{
    if ((unsigned)err >= CV_ERR__COUNT) return "internal_error";
    return names[err];
}

cv_result cv_fail_code(cv_err err, const char *code, const char *fmt, ...)
{
    if (err == CV_ERR_NONE || (unsigned)err >= CV_ERR__COUNT) err = CV_ERR_INTERNAL;
    last.err = err;
    /* a code may be the previous error's own (re-raising it), so copy via a temporary */
    char tmp[CV_ERROR_CODE_MAX_BYTES];
    snprintf(tmp, sizeof(tmp), "%s", code ? code : "");
    memcpy(last.code, tmp, sizeof(tmp));
    /* the arguments may be the previous message itself: format into a temporary */
    char msg[CV_ERROR_MESSAGE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) msg[0] = '\0';
    memcpy(last.message, msg, sizeof(msg));
    return (cv_result){err};
}

cv_err cv_error_category(void) { return last.err; }
const char *cv_error_code(void) { return last.code[0] ? last.code : cv_err_name(last.err); }
const char *cv_error_message(void) { return last.message; }

void cv_error_clear(void)
{
    last.err = CV_ERR_NONE;
    last.code[0] = '\0';
    last.message[0] = '\0';
}
