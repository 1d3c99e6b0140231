/* Running an operation with recovery: when a session, login, handle or the
 * device goes away, one thread re-initialises the module, logs in, re-opens
 * sessions and re-finds handles while the others wait, then the operation is
 * retried with bounded exponential backoff. Never retries an answer about the
 * data (a wrong tag is not an outage) and never retries a refused PIN. */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "internal.h"

#define BACKOFF_CAP_MS 30000U

cv_result cv_hsm_connect(struct cv_hsm *hsm, CK_RV *rv)
{
    CV_GUARD(cv_hsm_module_initialize(hsm, rv));
    CV_GUARD(cv_hsm_token_select(hsm, rv));
    CV_GUARD(cv_hsm_token_capabilities(hsm, rv));
    CV_GUARD(cv_hsm_sessions_open(hsm, rv));
    CV_GUARD(cv_hsm_keys_scan(hsm, hsm->owner, rv));
    return CV_OK;
}

void cv_hsm_disconnect(struct cv_hsm *hsm)
{
    /* The unwrapped keys die with the sessions; their numbers may be reused
     * by new objects, so they are forgotten, never destroyed. */
    cv_hsm_cache_forget(hsm->cache);
    cv_hsm_sessions_forget(hsm);
    cv_hsm_module_finalize(hsm);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Backoff before retry `attempt` (1-based): backoff_ms doubled per attempt,
 * capped, with jitter in its upper half so instances do not retry in step. */
static unsigned backoff_for(const struct cv_hsm *hsm, unsigned attempt)
{
    unsigned ms = hsm->backoff_ms;
    for (unsigned i = 1; i < attempt && ms < BACKOFF_CAP_MS; i++) ms *= 2;
    if (ms > BACKOFF_CAP_MS) ms = BACKOFF_CAP_MS;
    if (ms < 2) return ms;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ms / 2 + (unsigned)((unsigned long)now.tv_nsec % (ms / 2 + 1));
}

/* At open: two processes opening one SoftHSM token folder at the same moment
 * occasionally see CKR_TOKEN_NOT_PRESENT, and a clustered HSM may be briefly
 * busy. Those are retried with the same backoff as operations; an answer about
 * the configuration (wrong PIN, no such token) is not. */
cv_result cv_hsm_connect_retrying(struct cv_hsm *hsm, CK_RV *rv)
{
    for (unsigned attempt = 1;; attempt++) {
        *rv = CKR_OK;
        cv_result r = cv_hsm_connect(hsm, rv);
        int transient = *rv == CKR_TOKEN_NOT_PRESENT || *rv == CKR_DEVICE_ERROR || *rv == CKR_DEVICE_REMOVED ||
                        *rv == CKR_FUNCTION_FAILED;
        if (cv_ok(r) || !transient || attempt > hsm->retries) return r;
        char a[16];
        snprintf(a, sizeof(a), "%u", attempt);
        cv_log(CV_LOG_WARN, "hsm_open_retry", "rv", cv_hsm_rv_name(*rv), "attempt", a, (char *)NULL);
        cv_hsm_disconnect(hsm);
        sleep_ms(backoff_for(hsm, attempt));
    }
}

/* Exclusive: waits for every attempt in flight to end. `seen` is the
 * generation the failed attempt ran in; if another thread recovered since,
 * there is nothing to do. */
/* Per request while the token is gone: the first in full, then counts (log.h). */
static struct cv_log_burst recover_burst, unavailable_burst;

static void recover(struct cv_hsm *hsm, uint64_t seen, CK_RV cause, unsigned attempt)
{
    pthread_rwlock_wrlock(&hsm->state);
    if (hsm->generation != seen && hsm->healthy) {
        pthread_rwlock_unlock(&hsm->state);
        return;
    }
    char attempt_text[16];
    snprintf(attempt_text, sizeof(attempt_text), "%u", attempt);
    if (!atomic_load(&recover_burst.failing))
        cv_log(CV_LOG_WARN, "hsm_recover", "rv", cv_hsm_rv_text(cause).s, "attempt", attempt_text, (char *)NULL);

    cv_hsm_disconnect(hsm);
    CK_RV rv = CKR_OK;
    cv_result r = cv_hsm_connect(hsm, &rv);
    hsm->generation++;
    cv_metric_inc_l(hsm->metrics, CV_M_HSM_RECOVERIES, cv_ok(r) ? "ok" : "failed", NULL, NULL);
    cv_metric_set(hsm->metrics, CV_M_HSM_UP, cv_ok(r));
    if (cv_ok(r)) {
        hsm->healthy = 1;
        hsm->broken_rv = CKR_OK;
        cv_log_burst_ok(&recover_burst, "hsm_recover_failed");
        cv_log(CV_LOG_INFO, "hsm_recovered", "attempt", attempt_text, (char *)NULL);
    } else {
        hsm->healthy = 0;
        hsm->broken_rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
        /* Leave nothing half open for the next try. */
        cv_hsm_sessions_close(hsm);
        if (cv_log_burst_failed(&recover_burst, "hsm_recover_failed"))
            cv_log(CV_LOG_WARN, "hsm_recover_failed", "rv", cv_hsm_rv_text(hsm->broken_rv).s, "attempt",
                   attempt_text, "error", cv_error_message(), (char *)NULL);
    }
    pthread_rwlock_unlock(&hsm->state);
}

/* Counts the operation and its time, retries included (metrics only). */
static cv_result observed(struct cv_hsm *hsm, const struct timespec *start, cv_result r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    cv_metric_observe(hsm->metrics, CV_M_HSM_DURATION, NULL,
                      (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9);
    cv_metric_inc_l(hsm->metrics, CV_M_HSM_OPERATIONS, cv_ok(r) ? "ok" : "error", NULL, NULL);
    return r;
}

static cv_result run(struct cv_hsm *hsm, cv_hsm_op op, void *arg);

cv_result cv_hsm_run(struct cv_hsm *hsm, cv_hsm_op op, void *arg)
{
    CV_ENSURE_REF(hsm);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    return observed(hsm, &start, run(hsm, op, arg));
}

static cv_result run(struct cv_hsm *hsm, cv_hsm_op op, void *arg)
{
    for (unsigned attempt = 0;; attempt++) {
        struct cv_hsm_lease lease;
        cv_result r = cv_hsm_lease_acquire(hsm, &lease);
        if (cv_ok(r)) {
            r = op(hsm, &lease, arg);
            cv_hsm_lease_release(hsm, &lease);
        }
        if (cv_failed(r) && lease.rv != CKR_OK)
            cv_metric_inc_l(hsm->metrics, CV_M_HSM_ERRORS, cv_hsm_rv_text(lease.rv).s, NULL, NULL);
        if (cv_ok(r)) cv_log_burst_ok(&unavailable_burst, "hsm_unavailable");
        if (cv_ok(r) || !lease.retry) return r;
        if (attempt >= hsm->retries) {
            char tries[16];
            snprintf(tries, sizeof(tries), "%u", attempt + 1);
            if (cv_log_burst_failed(&unavailable_burst, "hsm_unavailable"))
                cv_log(CV_LOG_ERROR, "hsm_unavailable", "rv", cv_hsm_rv_text(lease.rv).s, "attempts", tries,
                       (char *)NULL);
            return cv_fail(CV_ERR_UNAVAILABLE, "HSM unavailable (%s)", cv_hsm_rv_text(lease.rv).s);
        }
        /* The first retry follows a recovery at once (stale sessions after a
         * restart heal immediately); later ones back off. */
        if (attempt > 0) sleep_ms(backoff_for(hsm, attempt));
        recover(hsm, lease.generation, lease.rv, attempt + 1);
    }
}
