/* Structured logging: one JSON object per line on stderr.
 * Callers pass names and non-secret values only; bodies and secrets never. */
#ifndef CREDVAULT_LOG_H
#define CREDVAULT_LOG_H

enum cv_log_level { CV_LOG_ERROR = 0, CV_LOG_WARN, CV_LOG_INFO, CV_LOG_DEBUG };

void cv_log_set_level(enum cv_log_level level);
int cv_log_level_parse(const char *s, enum cv_log_level *out); /* 0 on success */
int cv_log_enabled(enum cv_log_level level);

/* cv_log(CV_LOG_WARN, "hsm_retry", "rv", "CKR_DEVICE_ERROR", "attempt", "2", NULL);
 * Pairs of field name and string value, ended by NULL. */
void cv_log(enum cv_log_level level, const char *event, ...) __attribute__((sentinel));

/* A failure that may repeat on every request during an outage: the first
 * is logged in full (cv_log_burst_failed returns 1: the caller logs it),
 * the rest only counted, one line "<event>_repeated" with the count per
 * CV_LOG_BURST_INTERVAL_MS, and "<event>_recovered" at the next success.
 * Zero-initialise (static storage will do). */
#define CV_LOG_BURST_INTERVAL_MS 10000
struct cv_log_burst {
    _Atomic int failing;
    _Atomic long long since_ms, window_ms;
    _Atomic unsigned long long count;
};
int cv_log_burst_failed(struct cv_log_burst *b, const char *event);
void cv_log_burst_ok(struct cv_log_burst *b, const char *event);

#endif
