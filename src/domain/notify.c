/* The background threads of `serve`: the listener follows key events
 * (LISTEN credvault_keys, plus a re-check every CREDVAULT_KEY_RECHECK_S),
 * dropping cached keys of changed tenants and picking up new master versions,
 * and the token cache on a revocation or a shred (it serves only while this
 * listener is connected and caught up); the worker runs unfinished rewrap jobs, whoever started them. Each thread
 * has its own store connection; neither holds key material beyond one batch. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "credvault/log.h"
#include "domain/lifecycle.h"
#include "domain/token_cache.h"

/* Short: the cache follows key events only while the listener is connected,
 * so after a database failover it must be back well within a second. */
#define LISTEN_BACKOFF_MAX_MS 250
#define CATCH_UP_RETRY_MS 100 /* a failed catch-up (say, the breaker still open) is tried again this soon */
#define WORKER_RETRY_MS 1000 /* after an error, or while another worker holds the rows */
#define PRUNE_EVERY_MS (3600 * 1000) /* key events older than CV_LC_EVENTS_KEEP_S go this often */

struct cv_lifecycle {
    struct cv_app *app;
    pthread_t listener, worker;
    int listener_started, worker_started;
    int wake[2]; /* the listener polls wake[0]; stop writes to wake[1] */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the worker waits here */
    int stop;
    int work; /* a job may have started: look again */
    int64_t last_logged_job; /* worker only: "rewrap_job_running" once per job */
};

static int stopping(struct cv_lifecycle *lc)
{
    pthread_mutex_lock(&lc->mu);
    int s = lc->stop;
    pthread_mutex_unlock(&lc->mu);
    return s;
}

static void wake_worker(struct cv_lifecycle *lc)
{
    pthread_mutex_lock(&lc->mu);
    lc->work = 1;
    pthread_cond_signal(&lc->cv);
    pthread_mutex_unlock(&lc->mu);
}

/* Sleeps up to ms unless stopped or woken; returns 1 when stopping. */
static int worker_sleep(struct cv_lifecycle *lc, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&lc->mu);
    while (!lc->stop && !lc->work)
        if (pthread_cond_timedwait(&lc->cv, &lc->mu, &until) == ETIMEDOUT) break;
    lc->work = 0;
    int s = lc->stop;
    pthread_mutex_unlock(&lc->mu);
    return s;
}

/* ---- listener ---- */

struct listen_state {
    struct cv_lifecycle *lc;
    int64_t last;                       /* highest event id handled */
    int64_t seen[CV_LC_SEEN_EVENTS];    /* recent ids (events may commit out of order) */
    size_t nseen, next;
    int master_changed;
};

static int seen_before(struct listen_state *s, int64_t id)
{
    for (size_t i = 0; i < s->nseen; i++)
        if (s->seen[i] == id) return 1;
    s->seen[s->next] = id;
    s->next = (s->next + 1) % CV_LC_SEEN_EVENTS;
    if (s->nseen < CV_LC_SEEN_EVENTS) s->nseen++;
    return 0;
}

static int handle_event(void *arg, const struct cv_key_event *ev)
{
    struct listen_state *s = arg;
    if (ev->id > s->last) s->last = ev->id;
    if (seen_before(s, ev->id)) return 0;
    struct cv_app *app = s->lc->app;
    if (strcmp(ev->kind, "tokens_changed") == 0 || strcmp(ev->kind, "tenant_shredded") == 0) {
        /* rare: forgetting every token costs one lookup each, never a stale answer */
        cv_token_cache_clear(app->token_cache);
        cv_log(CV_LOG_DEBUG, "token_cache_cleared", "cause", ev->kind, NULL);
    }
    if (strcmp(ev->kind, "tokens_changed") == 0) {
        return 0;
    } else if (strncmp(ev->kind, "master_", 7) == 0) {
        s->master_changed = 1;
        wake_worker(s->lc); /* a rotation starts a master rewrap */
    } else if (strcmp(ev->kind, "job_started") == 0) {
        wake_worker(s->lc);
    } else if (ev->tenant_id[0]) {
        /* rotated, retired, destroyed or shredded: this instance's unwrapped
         * copies of the tenant's keys leave the token */
        cv_hsm_cache_drop_tenant(app->hsm, ev->tenant_id);
        cv_log(CV_LOG_DEBUG, "key_cache_dropped", "tenant", ev->tenant_id, "cause", ev->kind, NULL);
    }
    return 0;
}

/* Reads every event not handled yet; a page that comes back full is
 * followed by the next one. */
static cv_result catch_up(struct listen_state *s)
{
    struct cv_app *app = s->lc->app;
    for (int page = 0; page < 64; page++) {
        unsigned n = 0;
        int64_t before = s->last;
        CV_GUARD(cv_store_lc_events_since(app->store, s->last, CV_LC_EVENTS_PAGE, handle_event, s, &n));
        if (n < CV_LC_EVENTS_PAGE || s->last == before) break;
    }
    if (s->master_changed) {
        s->master_changed = 0;
        CV_GUARD(cv_lifecycle_refresh_master(app));
    }
    return CV_OK;
}

/* Everything may have changed while we were not listening for longer than
 * events are kept: forget every cached key (they unwrap again on use). */
static void drop_everything(struct cv_app *app)
{
    cv_hsm_cache_drop_all(app->hsm);
    cv_log(CV_LOG_WARN, "key_cache_dropped", "reason", "key events may have been missed", NULL);
}

/* Sleeps up to ms unless stopped (the stop byte makes wake[0] readable);
 * returns 1 when stopping. */
static int listener_sleep(struct cv_lifecycle *lc, unsigned ms)
{
    struct pollfd p = {.fd = lc->wake[0], .events = POLLIN, .revents = 0};
    (void)poll(&p, 1, (int)ms); /* EINTR or a timeout: the caller looks again */
    return stopping(lc);
}

static struct cv_log_burst recheck_burst; /* retried every CATCH_UP_RETRY_MS: one line per outage */

static void *listener_main(void *arg)
{
    struct cv_lifecycle *lc = arg;
    struct cv_app *app = lc->app;
    struct listen_state *s = calloc(1, sizeof(*s));
    struct cv_store_listener *l = NULL;
    unsigned recheck_ms = app->cfg->key_recheck_s * 1000u, backoff = 100, wait_ms = recheck_ms;
    int64_t last_ok_ms = cv_time_now_ms(), last_prune_ms = 0;
    if (!s) {
        cv_log(CV_LOG_ERROR, "key_listener_failed", "reason", "out of memory", NULL);
        return NULL;
    }
    s->lc = lc;
    /* start from now: this instance's cache is empty at start */
    while (!stopping(lc) && cv_failed(cv_store_lc_events_head(app->store, &s->last)))
        if (listener_sleep(lc, 1000)) break;
    while (!stopping(lc)) {
        if (!l) {
            if (cv_failed(cv_store_listener_open(app->store, &l))) {
                l = NULL;
                if (listener_sleep(lc, backoff)) break;
                backoff = backoff * 2 > LISTEN_BACKOFF_MAX_MS ? LISTEN_BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = 100;
            /* events committed while no LISTEN was on (say, on a standby
             * promoted meanwhile) are only in the table: read it at once */
            wait_ms = 0;
            cv_log(CV_LOG_DEBUG, "key_listener_connected", NULL);
            if (cv_time_now_ms() - last_ok_ms > (int64_t)CV_LC_EVENTS_KEEP_S * 1000 / 2) drop_everything(app);
        }
        int notified = 0;
        cv_result r = cv_store_listener_wait(l, wait_ms, lc->wake[0], &notified);
        if (stopping(lc)) break;
        if (cv_failed(r)) {
            /* a revocation may come while nobody listens: stop serving from memory */
            cv_token_cache_set_live(app->token_cache, 0);
            cv_store_listener_close(l);
            l = NULL;
        }
        /* on a notification, on a timeout (the periodic re-check) and after
         * a lost connection alike: the table says what changed */
        r = catch_up(s);
        if (cv_ok(r) && !notified) r = cv_lifecycle_refresh_master(app);
        wait_ms = cv_ok(r) ? recheck_ms : CATCH_UP_RETRY_MS;
        /* live again only once listening and caught up with the table */
        cv_token_cache_set_live(app->token_cache, cv_ok(r) && l != NULL);
        if (cv_ok(r)) {
            last_ok_ms = cv_time_now_ms();
            cv_log_burst_ok(&recheck_burst, "key_recheck_failed");
        } else if (cv_log_burst_failed(&recheck_burst, "key_recheck_failed")) {
            cv_log(CV_LOG_WARN, "key_recheck_failed", "message", cv_error_message(), NULL);
        }
        if (cv_ok(r) && cv_time_now_ms() - last_prune_ms > PRUNE_EVERY_MS) {
            uint64_t pruned;
            if (cv_ok(cv_store_lc_events_prune(app->store, CV_LC_EVENTS_KEEP_S, &pruned)))
                last_prune_ms = cv_time_now_ms();
        }
        if (!l && listener_sleep(lc, backoff)) break;
    }
    cv_token_cache_set_live(app->token_cache, 0);
    cv_store_listener_close(l);
    free(s);
    cv_store_thread_done(app->store);
    return NULL;
}

/* ---- worker ---- */

struct job_list {
    struct cv_key_job_row jobs[CV_LC_JOBS_PER_PASS];
    size_t n;
};

static int collect(void *arg, const struct cv_key_job_row *job)
{
    struct job_list *l = arg;
    if (l->n < CV_LC_JOBS_PER_PASS) l->jobs[l->n++] = *job;
    return 0;
}

/* Runs one job until it ends, stalls (rows held elsewhere) or we stop.
 * Returns 1 when work is left that this pass could not do. */
static int run_job(struct cv_lifecycle *lc, const struct cv_key_job_row *job)
{
    struct cv_app *app = lc->app;
    struct cv_rewrap_run *run = NULL;
    if (cv_failed(cv_rewrap_run_new(app, job, &run))) return 1;
    int pending = 0;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)job->id);
    if (job->id != lc->last_logged_job) {
        lc->last_logged_job = job->id;
        cv_log(CV_LOG_INFO, "rewrap_job_running", "job", id, "tenant", job->tenant_id, NULL);
    }
    while (!stopping(lc)) {
        int finished = 0;
        unsigned moved = 0;
        cv_result r = cv_rewrap_run_step(run, &finished, &moved);
        if (cv_failed(r)) {
            cv_log(CV_LOG_WARN, "rewrap_batch_failed", "job", id, "message", cv_error_message(), NULL);
            pending = 1;
            break;
        }
        if (finished) break;
        if (moved == 0) {
            pending = 1;
            break;
        }
        if (app->cfg->rewrap_pause_ms && worker_sleep(lc, app->cfg->rewrap_pause_ms)) break;
    }
    cv_rewrap_run_free(run);
    return pending;
}

static void *worker_main(void *arg)
{
    struct cv_lifecycle *lc = arg;
    struct cv_app *app = lc->app;
    struct job_list *list = calloc(1, sizeof(*list));
    if (!list) {
        cv_log(CV_LOG_ERROR, "rewrap_worker_failed", "reason", "out of memory", NULL);
        return NULL;
    }
    unsigned idle_ms = app->cfg->key_recheck_s * 1000u;
    while (!stopping(lc)) {
        list->n = 0;
        int pending = 0;
        if (cv_failed(cv_store_lc_jobs_running(app->store, CV_LC_JOBS_PER_PASS, collect, list))) {
            cv_log(CV_LOG_WARN, "rewrap_jobs_unreadable", "message", cv_error_message(), NULL);
            pending = 1;
        }
        for (size_t i = 0; i < list->n && !stopping(lc); i++) pending |= run_job(lc, &list->jobs[i]);
        if (worker_sleep(lc, pending ? WORKER_RETRY_MS : idle_ms)) break;
    }
    free(list);
    cv_store_thread_done(app->store);
    return NULL;
}

/* ---- start and stop ---- */

cv_result cv_lifecycle_start(struct cv_app *app, struct cv_lifecycle **out)
{
    *out = NULL;
    struct cv_lifecycle *lc = calloc(1, sizeof(*lc));
    CV_ENSURE(lc != NULL, CV_ERR_MEMORY, "out of memory");
    lc->app = app;
    lc->wake[0] = lc->wake[1] = -1;
    pthread_mutex_init(&lc->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&lc->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pipe(lc->wake) != 0 || fcntl(lc->wake[1], F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(lc->wake[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(lc->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
        cv_lifecycle_stop(lc);
        CV_BAIL(CV_ERR_INTERNAL, "cannot create a pipe: %s", strerror(errno));
    }
    lc->listener_started = pthread_create(&lc->listener, NULL, listener_main, lc) == 0;
    lc->worker_started = lc->listener_started && pthread_create(&lc->worker, NULL, worker_main, lc) == 0;
    if (!lc->worker_started) {
        cv_lifecycle_stop(lc);
        CV_BAIL(CV_ERR_INTERNAL, "cannot start the key lifecycle threads");
    }
    *out = lc;
    return CV_OK;
}

void cv_lifecycle_stop(struct cv_lifecycle *lc)
{
    if (!lc) return;
    pthread_mutex_lock(&lc->mu);
    lc->stop = 1;
    pthread_cond_broadcast(&lc->cv);
    pthread_mutex_unlock(&lc->mu);
    if (lc->wake[1] >= 0) {
        ssize_t w = write(lc->wake[1], "x", 1);
        (void)w; /* a full pipe wakes the listener just as well */
    }
    if (lc->listener_started) pthread_join(lc->listener, NULL);
    if (lc->worker_started) pthread_join(lc->worker, NULL);
    if (lc->wake[0] >= 0) close(lc->wake[0]);
    if (lc->wake[1] >= 0) close(lc->wake[1]);
    pthread_cond_destroy(&lc->cv);
    pthread_mutex_destroy(&lc->mu);
    free(lc);
}
