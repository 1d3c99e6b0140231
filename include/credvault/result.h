/* The one result type every fallible function returns, and the guard macros.
 * The category decides the HTTP status (one table in src/http); the message is
 * client-safe and must never contain key material or credential values. */
#ifndef CREDVAULT_RESULT_H
#define CREDVAULT_RESULT_H

#include <stdbool.h>

typedef enum cv_err {
    CV_ERR_NONE = 0,
    CV_ERR_INPUT,        /* malformed or invalid input */
    CV_ERR_TOO_LARGE,    /* input over a named limit */
    CV_ERR_MEDIA,        /* wrong content type */
    CV_ERR_AUTH,         /* missing or wrong credentials */
    CV_ERR_FORBIDDEN,    /* authenticated, not allowed */
    CV_ERR_NOT_FOUND,    /* absent, or owned by another tenant */
    CV_ERR_CONFLICT,     /* exists already, or state forbids it */
    CV_ERR_PRECONDITION, /* stale revision (If-Match) */
    CV_ERR_RATE_LIMITED, /* over a rate limit */
    CV_ERR_UNAVAILABLE,  /* HSM or database not reachable */
    CV_ERR_CRYPTO,       /* decrypt/unwrap/verify failed; always the same answer */
    CV_ERR_INTERNAL,     /* a bug or a broken invariant */
    CV_ERR_MEMORY,       /* allocation failed */
    CV_ERR__COUNT
} cv_err;

typedef struct cv_result {
    cv_err err;
} cv_result;

#define CV_MUST_USE __attribute__((warn_unused_result))
#define CV_RESULT CV_MUST_USE cv_result
#define CV_OK ((cv_result){CV_ERR_NONE})

static inline bool cv_ok(cv_result r) { return r.err == CV_ERR_NONE; }
static inline bool cv_failed(cv_result r) { return r.err != CV_ERR_NONE; }

/* Records the error for this thread and returns it. `code` is the API error code
 * ("invalid_json"); NULL picks the category's default. */
CV_RESULT cv_fail_code(cv_err err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define cv_fail(err, ...) cv_fail_code((err), NULL, __VA_ARGS__)

/* Last error recorded on this thread. */
cv_err cv_error_category(void);
const char *cv_error_code(void);    /* never NULL */
const char *cv_error_message(void); /* never NULL; client-safe */
void cv_error_clear(void);
const char *cv_err_name(cv_err err); /* "input", "auth", … */

/* Propagate a failure; the body reads as the happy path. */
#define CV_GUARD(expr)                                                                   \
    do {                                                                                 \
        cv_result cv__r = (expr);                                                        \
        if (cv__r.err != CV_ERR_NONE) return cv__r;                                      \
    } while (0)

/* Store a failure in `res` and jump to the function's single cleanup label. */
#define CV_GUARD_OUT(res, expr)                                                          \
    do {                                                                                 \
        (res) = (expr);                                                                  \
        if ((res).err != CV_ERR_NONE) goto out;                                          \
    } while (0)

#define CV_ENSURE(cond, err, ...)                                                        \
    do {                                                                                 \
        if (!(cond)) return cv_fail((err), __VA_ARGS__);                                 \
    } while (0)

#define CV_ENSURE_REF(p) CV_ENSURE((p) != NULL, CV_ERR_INTERNAL, "null reference: %s", #p)

#define CV_BAIL(err, ...) return cv_fail((err), __VA_ARGS__)

#endif
