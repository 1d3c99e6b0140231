/* The database's circuit breaker and the deadline of one round trip. A call
 * that lost the database opens the breaker: for the next half second every call
 * fails at once (no worker waits on a dead or frozen server), then one call
 * probes, and its success closes it. The log says the first failure, then
 * a count per interval, then the recovery: never a line per request. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include "credvault/log.h"
#include "store/pq.h"

int64_t cv_store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cv_result cv_store_breaker_admit(struct cv_store *st)
{
    int64_t until = atomic_load(&st->breaker_until);
    if (until == 0) return CV_OK;
    int64_t now = cv_store_now_ms();
    /* one caller per interval probes: it moves the window on */
    if (now >= until &&
        atomic_compare_exchange_strong(&st->breaker_until, &until, now + (int64_t)st->deadline_ms + CV_STORE_BREAKER_MS))
        return CV_OK;
    atomic_fetch_add(&st->breaker_refused, 1);
    int64_t logged = atomic_load(&st->breaker_logged);
    if (now - logged >= CV_STORE_BREAKER_LOG_MS && atomic_compare_exchange_strong(&st->breaker_logged, &logged, now)) {
        char n[24];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)atomic_exchange(&st->breaker_refused, 0));
        cv_log(CV_LOG_WARN, "db_unavailable_ongoing", "refused", n, NULL);
    }
    CV_BAIL(CV_ERR_UNAVAILABLE, "database unavailable");
}

void cv_store_breaker_failed(struct cv_store *st)
{
    int64_t now = cv_store_now_ms();
    int64_t was = atomic_exchange(&st->breaker_until, now + CV_STORE_BREAKER_MS);
    if (was == 0) {
        atomic_store(&st->breaker_since, now);
        atomic_store(&st->breaker_logged, now);
        atomic_store(&st->breaker_refused, 0);
        cv_log(CV_LOG_ERROR, "db_unavailable", "message", "calls fail at once until a probe succeeds", NULL);
    }
}

void cv_store_breaker_ok(struct cv_store *st)
{
    if (atomic_load(&st->breaker_until) == 0) return;
    if (atomic_exchange(&st->breaker_until, 0) == 0) return;
    char ms[24], n[24];
    snprintf(ms, sizeof(ms), "%lld", (long long)(cv_store_now_ms() - atomic_load(&st->breaker_since)));
    snprintf(n, sizeof(n), "%llu", (unsigned long long)atomic_exchange(&st->breaker_refused, 0));
    cv_log(CV_LOG_INFO, "db_recovered", "after_ms", ms, "refused", n, NULL);
}

int cv_conn_wait_result(struct cv_conn *c, int64_t deadline)
{
    PGconn *pg = c->pg;
    for (;;) {
        int flushed = PQflush(pg);
        if (flushed < 0) return 0;
        if (flushed == 0 && !PQisBusy(pg)) return 1;
        int64_t left = deadline - cv_store_now_ms();
        if (left <= 0) {
            c->timed_out = 1; /* a frozen server: its own statement_timeout cannot fire */
            return 0;
        }
        struct pollfd p = {.fd = PQsocket(pg), .events = (short)(POLLIN | (flushed ? POLLOUT : 0)), .revents = 0};
        if (p.fd < 0) return 0;
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR) return 0;
        if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(pg)) return 0;
    }
}
