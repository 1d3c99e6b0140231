/* Times as text: the one ISO 8601 / RFC 3339 UTC parser and formatter. Every
 * time that crosses an API, a command line or an import is read here, so a
 * date that does not exist (2026-02-31) or a field that is not all digits
 * (2026-+1-01) is refused everywhere instead of being normalised by timegm. */
#ifndef CREDVAULT_ISOTIME_H
#define CREDVAULT_ISOTIME_H

#include <stdint.h>

#include "credvault/result.h"

#define CV_TIME_TEXT_BYTES 32                  /* "YYYY-MM-DDTHH:MM:SS.mmmZ" and a NUL, with room */
#define CV_TIME_MAX_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

/* What a caller accepts besides the strict form YYYY-MM-DDTHH:MM:SS[.f…]Z
 * (1 to 9 fraction digits, kept to the millisecond; years 1970-9999; no leap
 * second, as POSIX time has none; uppercase T and Z only). */
enum cv_time_forms {
    CV_TIME_STRICT = 0,
    CV_TIME_DATE = 1u << 0,    /* also YYYY-MM-DD, meaning its midnight UTC */
    CV_TIME_OFFSET = 1u << 1,  /* also a space for T, a +HH:MM / +HHMM / +HH offset, or no zone
                                * (UTC): how PostgreSQL exports timestamps; legacy import only */
};

/* Epoch milliseconds of `s`. CV_ERR_INPUT names `what` (the field) and never
 * quotes the input. `*ms` is written only on success. */
CV_RESULT cv_time_parse(const char *what, const char *s, unsigned forms, int64_t *ms);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for epoch milliseconds in [0, CV_TIME_MAX_MS];
 * values outside are clamped to that range. */
void cv_time_iso8601(int64_t ms, char out[CV_TIME_TEXT_BYTES]);

#endif
