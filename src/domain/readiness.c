/* /readyz without waiting on a dependency: the probes run on a thread of
 * their own, started on first use; a caller takes a result under a
 * quarter second old, else asks for a probe and waits for it at most
 * CV_READY_WAIT_MS. A hung HSM or a frozen database thus holds the probe
 * thread, never an HTTP worker for longer than that. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "credvault/hsm.h"
#include "credvault/store.h"
#include "domain/ops.h"

#define CV_READY_FRESH_MS 250
#define CV_READY_WAIT_MS 700

struct cv_readiness {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int stop;
    uint64_t asked, done; /* probe generations */
    int64_t checked_ms;   /* when the last probe finished; 0: never */
    int hsm_ok, db_ok;
    struct cv_app *app;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *probe_main(void *arg)
{
    struct cv_readiness *rd = arg;
    pthread_mutex_lock(&rd->mu);
    for (;;) {
        while (!rd->stop && rd->asked <= rd->done) pthread_cond_wait(&rd->cv, &rd->mu);
        if (rd->stop) break;
        uint64_t gen = rd->asked;
        pthread_mutex_unlock(&rd->mu);
        int hsm_ok = cv_ok(cv_hsm_ping(rd->app->hsm));
        int db_ok = cv_ok(cv_store_ping(rd->app->store));
        cv_error_clear(); /* a probe's detail is for the log, not for /readyz */
        pthread_mutex_lock(&rd->mu);
        rd->hsm_ok = hsm_ok;
        rd->db_ok = db_ok;
        rd->checked_ms = now_ms();
        rd->done = gen;
        pthread_cond_broadcast(&rd->cv);
    }
    pthread_mutex_unlock(&rd->mu);
    cv_store_thread_done(rd->app->store);
    return NULL;
}

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;

static struct cv_readiness *readiness(struct cv_app *app)
{
    pthread_mutex_lock(&start_mu);
    struct cv_readiness *rd = app->readiness;
    if (!rd && (rd = calloc(1, sizeof(*rd))) != NULL) {
        rd->app = app;
        pthread_mutex_init(&rd->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&rd->cv, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&rd->th, NULL, probe_main, rd) != 0) {
            pthread_cond_destroy(&rd->cv);
            pthread_mutex_destroy(&rd->mu);
            free(rd);
            rd = NULL;
        }
        app->readiness = rd;
    }
    pthread_mutex_unlock(&start_mu);
    return rd;
}

cv_result cv_app_ready(struct cv_app *app)
{
    struct cv_readiness *rd = readiness(app);
    CV_ENSURE(rd != NULL, CV_ERR_UNAVAILABLE, "not ready: cannot start the readiness probe");
    pthread_mutex_lock(&rd->mu);
    int answered = rd->checked_ms && now_ms() - rd->checked_ms < CV_READY_FRESH_MS;
    if (!answered) {
        uint64_t want = rd->done + 1;
        if (rd->asked < want) rd->asked = want;
        pthread_cond_broadcast(&rd->cv);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)CV_READY_WAIT_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (rd->done < want && pthread_cond_timedwait(&rd->cv, &rd->mu, &until) == 0) {
        }
        answered = rd->done >= want;
    }
    int hsm_ok = rd->hsm_ok, db_ok = rd->db_ok;
    pthread_mutex_unlock(&rd->mu);
    if (!answered)
        return cv_fail_code(CV_ERR_UNAVAILABLE, "not_ready", "not ready: the HSM or the database did not answer within %d ms",
                            CV_READY_WAIT_MS);
    if (hsm_ok && db_ok) return CV_OK;
    return cv_fail_code(CV_ERR_UNAVAILABLE, "not_ready", "not ready: HSM %s, database %s",
                        hsm_ok ? "ok" : "unavailable", db_ok ? "ok" : "unavailable");
}

void cv_app_ready_stop(struct cv_app *app)
{
    struct cv_readiness *rd = app->readiness;
    if (!rd) return;
    pthread_mutex_lock(&rd->mu);
    rd->stop = 1;
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
    pthread_join(rd->th, NULL);
    pthread_cond_destroy(&rd->cv);
    pthread_mutex_destroy(&rd->mu);
    free(rd);
    app->readiness = NULL;
}
