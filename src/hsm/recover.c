/* Faults while running, one policy per class (names.h): a transient answer
 * is retried with backoff inside a short budget; a lost session is healed
 * by one re-open (module re-initialised, login, sessions, handles) and one
 * retry; an absent or foreign token and a refused PIN open the breaker at
 * once. While the breaker is open every call fails in microseconds without
 * touching the module, and one background thread re-checks until the token
 * (the same token) answers. Never retries an answer about the data. */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "internal.h"

#define BACKOFF_CAP_MS 30000U
#define TRANSIENT_BUDGET_MS 500U /* what one call may spend retrying a transient fault */
#define RECHECK_MS 500U          /* the background re-check while the breaker is open */
#define RELOGIN_MAX_MS 4000U     /* a refused PIN: re-login interval doubles up to this */

cv_result cv_hsm_connect(struct cv_hsm *hsm, CK_RV *rv)
{
    hsm->foreign = 0; /* set again only by this connect's identity check */
    CV_GUARD(cv_hsm_module_initialize(hsm, rv));
    CV_GUARD(cv_hsm_token_select(hsm, rv));
    CV_GUARD(cv_hsm_token_capabilities(hsm, rv));
    CV_GUARD(cv_hsm_sessions_open(hsm, rv));
    CV_GUARD(cv_hsm_keys_scan(hsm, hsm->owner, rv));
    CV_GUARD(cv_hsm_identity_check(hsm, rv));
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
        /* a token name that matches nothing is NOT_FOUND with this rv: not retried */
        int transient = r.err != CV_ERR_NOT_FOUND &&
                        (*rv == CKR_TOKEN_NOT_PRESENT || *rv == CKR_DEVICE_ERROR || *rv == CKR_DEVICE_REMOVED ||
                         *rv == CKR_FUNCTION_FAILED);
        if (cv_ok(r) || !transient || attempt > hsm->retries) return r;
        char a[16];
        snprintf(a, sizeof(a), "%u", attempt);
        cv_log(CV_LOG_WARN, "hsm_open_retry", "rv", cv_hsm_rv_name(*rv), "attempt", a, (char *)NULL);
        cv_hsm_disconnect(hsm);
        sleep_ms(backoff_for(hsm, attempt));
    }
}

/* Logs of an outage: its first failure, then counts per interval, then the
 * recovery (log.h); never a line per request. */
static struct cv_log_burst unavailable_burst, foreign_burst;

static void log_open(struct cv_hsm *hsm, enum cv_hsm_fault fault, CK_RV rv, const char *detail)
{
    if (fault == CV_HSM_FAULT_FOREIGN) {
        if (cv_log_burst_failed(&foreign_burst, "hsm_token_foreign"))
            cv_log(CV_LOG_ERROR, "hsm_token_foreign", "message", detail, (char *)NULL);
        return;
    }
    (void)hsm;
    if (cv_log_burst_failed(&unavailable_burst, "hsm_unavailable"))
        cv_log(CV_LOG_ERROR, "hsm_unavailable", "class", cv_hsm_fault_name(fault), "rv", cv_hsm_rv_text(rv).s,
               "error", detail, (char *)NULL);
}

static void *recheck_main(void *arg);

/* Opens the breaker (callers fail at once from now on) and wakes the
 * background re-check, starting it the first time. */
static void trip(struct cv_hsm *hsm, enum cv_hsm_fault fault, CK_RV rv, const char *detail)
{
    atomic_store(&hsm->broken_rv, rv != CKR_OK ? rv : CKR_GENERAL_ERROR);
    atomic_store(&hsm->fault, (int)fault);
    int was = atomic_exchange(&hsm->healthy, 0);
    if (was) {
        cv_metric_set(hsm->metrics, CV_M_HSM_UP, 0);
        log_open(hsm, fault, rv, detail);
    } else if (fault == CV_HSM_FAULT_FOREIGN) {
        log_open(hsm, fault, rv, detail);
    }
    pthread_mutex_lock(&hsm->recheck_mu);
    if (!hsm->recheck_started && !hsm->recheck_stop &&
        pthread_create(&hsm->recheck_th, NULL, recheck_main, hsm) == 0)
        hsm->recheck_started = 1;
    pthread_cond_broadcast(&hsm->recheck_cv);
    pthread_mutex_unlock(&hsm->recheck_mu);
}

static enum cv_hsm_fault connect_fault(struct cv_hsm *hsm, cv_result r, CK_RV rv)
{
    if (hsm->foreign) return CV_HSM_FAULT_FOREIGN;
    if (r.err == CV_ERR_NOT_FOUND) return CV_HSM_FAULT_ABSENT; /* no token of that name now */
    enum cv_hsm_fault f = cv_hsm_rv_fault(rv);
    return f == CV_HSM_FAULT_NONE || f == CV_HSM_FAULT_SESSION ? CV_HSM_FAULT_TRANSIENT : f;
}

/* Re-opens everything under the exclusive lock; `seen` is the generation
 * the failed attempt ran in (0 from the background: always). Returns 1 when
 * the token answers again; on failure the breaker is open. */
static int recover(struct cv_hsm *hsm, uint64_t seen, int background)
{
    pthread_rwlock_wrlock(&hsm->state);
    if (!background && hsm->generation != seen && atomic_load(&hsm->healthy)) {
        pthread_rwlock_unlock(&hsm->state);
        return 1; /* another thread recovered meanwhile */
    }
    cv_hsm_disconnect(hsm);
    CK_RV rv = CKR_OK;
    cv_result r = cv_hsm_connect(hsm, &rv);
    hsm->generation++;
    cv_metric_inc_l(hsm->metrics, CV_M_HSM_RECOVERIES, cv_ok(r) ? "ok" : "failed", NULL, NULL);
    int ok = cv_ok(r);
    if (ok) {
        atomic_store(&hsm->broken_rv, CKR_OK);
        atomic_store(&hsm->fault, CV_HSM_FAULT_NONE);
        int was = atomic_exchange(&hsm->healthy, 1);
        cv_metric_set(hsm->metrics, CV_M_HSM_UP, 1);
        cv_log_burst_ok(&foreign_burst, "hsm_token_foreign");
        cv_log_burst_ok(&unavailable_burst, "hsm_unavailable");
        if (!was) cv_log(CV_LOG_INFO, "hsm_recovered", (char *)NULL);
    } else {
        /* leave nothing half open, and above all no session on a stranger */
        cv_hsm_sessions_close(hsm);
        enum cv_hsm_fault f = connect_fault(hsm, r, rv);
        trip(hsm, f, rv, cv_error_message());
    }
    pthread_rwlock_unlock(&hsm->state);
    return ok;
}

static void *recheck_main(void *arg)
{
    struct cv_hsm *hsm = arg;
    unsigned relogin_ms = RECHECK_MS;
    pthread_mutex_lock(&hsm->recheck_mu);
    while (!hsm->recheck_stop) {
        if (atomic_load(&hsm->healthy)) {
            relogin_ms = RECHECK_MS;
            pthread_cond_wait(&hsm->recheck_cv, &hsm->recheck_mu);
            continue;
        }
        /* each refused login counts toward the token's lockout: back off */
        unsigned wait = RECHECK_MS;
        if (atomic_load(&hsm->fault) == CV_HSM_FAULT_CREDENTIALS) {
            wait = relogin_ms;
            relogin_ms = relogin_ms * 2 > RELOGIN_MAX_MS ? RELOGIN_MAX_MS : relogin_ms * 2;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(wait % 1000) * 1000000L;
        until.tv_sec += wait / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!hsm->recheck_stop && pthread_cond_timedwait(&hsm->recheck_cv, &hsm->recheck_mu, &until) == 0) {
        }
        if (hsm->recheck_stop) break;
        pthread_mutex_unlock(&hsm->recheck_mu);
        (void)recover(hsm, 0, 1);
        cv_error_clear();
        pthread_mutex_lock(&hsm->recheck_mu);
    }
    pthread_mutex_unlock(&hsm->recheck_mu);
    return NULL;
}

void cv_hsm_recheck_stop(struct cv_hsm *hsm)
{
    pthread_mutex_lock(&hsm->recheck_mu);
    hsm->recheck_stop = 1;
    int started = hsm->recheck_started;
    pthread_cond_broadcast(&hsm->recheck_cv);
    pthread_mutex_unlock(&hsm->recheck_mu);
    if (started) pthread_join(hsm->recheck_th, NULL);
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

/* What a caller (and through it an API client) is told: no CK_RV name, no
 * detail; those are in the log and in credvault_hsm_errors_total. */
static cv_result unavailable(void)
{
    return cv_fail_code(CV_ERR_UNAVAILABLE, "hsm_unavailable", "HSM unavailable");
}

static cv_result run(struct cv_hsm *hsm, cv_hsm_op op, void *arg);

cv_result cv_hsm_run(struct cv_hsm *hsm, cv_hsm_op op, void *arg)
{
    CV_ENSURE_REF(hsm);
    /* the breaker: an open one costs an atomic load */
    if (!atomic_load(&hsm->healthy)) {
        CK_RV rv = atomic_load(&hsm->broken_rv);
        cv_metric_inc_l(hsm->metrics, CV_M_HSM_ERRORS, cv_hsm_rv_text(rv).s, NULL, NULL);
        (void)cv_log_burst_failed(atomic_load(&hsm->fault) == CV_HSM_FAULT_FOREIGN ? &foreign_burst
                                                                                    : &unavailable_burst,
                                  atomic_load(&hsm->fault) == CV_HSM_FAULT_FOREIGN ? "hsm_token_foreign"
                                                                                    : "hsm_unavailable");
        return unavailable();
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    return observed(hsm, &start, run(hsm, op, arg));
}

static cv_result run(struct cv_hsm *hsm, cv_hsm_op op, void *arg)
{
    int64_t t0 = now_ms();
    int reopened = 0;
    for (unsigned attempt = 0;; attempt++) {
        struct cv_hsm_lease lease;
        cv_result r = cv_hsm_lease_acquire(hsm, &lease);
        if (cv_ok(r)) {
            r = op(hsm, &lease, arg);
            cv_hsm_lease_release(hsm, &lease);
        }
        if (cv_ok(r)) {
            /* ends a burst of failures that never opened the breaker (one atomic load otherwise) */
            cv_log_burst_ok(&unavailable_burst, "hsm_unavailable");
            return r;
        }
        if (lease.broken) return unavailable();
        if (lease.rv != CKR_OK) cv_metric_inc_l(hsm->metrics, CV_M_HSM_ERRORS, cv_hsm_rv_text(lease.rv).s, NULL, NULL);
        if (!lease.retry) {
            /* not an outage (bad input, a bug); but a PKCS#11 name never reaches a client */
            if (r.err != CV_ERR_UNAVAILABLE && r.err != CV_ERR_AUTH) return r;
            log_open(hsm, CV_HSM_FAULT_NONE, lease.rv, cv_error_message());
            return unavailable();
        }
        enum cv_hsm_fault fault = cv_hsm_rv_fault(lease.rv);
        if (fault == CV_HSM_FAULT_SESSION && !reopened) {
            reopened = 1;
            if (!recover(hsm, lease.generation, 0)) return unavailable();
            continue;
        }
        if (fault == CV_HSM_FAULT_TRANSIENT || fault == CV_HSM_FAULT_SESSION) {
            unsigned wait = backoff_for(hsm, attempt + 1);
            if (attempt < hsm->retries && now_ms() - t0 + wait <= TRANSIENT_BUDGET_MS) {
                sleep_ms(wait);
                continue;
            }
        }
        /* absent, foreign, refused, or a transient fault that outlasted the budget */
        trip(hsm, fault == CV_HSM_FAULT_NONE || fault == CV_HSM_FAULT_SESSION ? CV_HSM_FAULT_TRANSIENT : fault,
             lease.rv, cv_error_message());
        return unavailable();
    }
}
