/* The service manager's side of `credvault serve` (sd_notify): READY once the
 * token and the database answer, STOPPING on the way out, and WATCHDOG
 * pings while both keep answering, so systemd restarts an instance whose
 * HSM or database has stopped answering. Outside systemd every call is a
 * no-op (no NOTIFY_SOCKET). A worker process (CREDVAULT_WORKERS > 1) never
 * speaks to systemd: it beats into its slot of the shared registry and the
 * supervisor speaks for all (src/cli/supervisor.c). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "cli/cli.h"
#include "credvault/log.h"
#include "credvault/metrics.h"
#include "domain/ops.h"

struct cv_cli_watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    uint64_t interval_us;
    struct cv_app *app;
    struct cv_metrics *beat; /* a worker: beat here instead of notifying */
    int probe;               /* a worker: run the readiness probe on each beat */
};

void cv_cli_notify_ready(void) { (void)sd_notify(0, "READY=1\nSTATUS=serving"); }

void cv_cli_notify_stopping(void) { (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping"); }

static void *watchdog_main(void *arg)
{
    struct cv_cli_watchdog *w = arg;
    int was_healthy = 1;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(w->interval_us / 1000000);
        until.tv_nsec += (long)(w->interval_us % 1000000) * 1000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!w->stop && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
        if (w->stop) break;
        pthread_mutex_unlock(&w->mu);
        if (w->beat) {
            int ok = !w->probe || cv_ok(cv_app_ready(w->app));
            if (!ok) {
                cv_log(CV_LOG_WARN, "watchdog: not ready, no keep-alive sent", "detail", cv_error_message(), NULL);
                cv_error_clear();
            }
            cv_metrics_worker_beat(w->beat, ok);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        /* the same probe as /readyz; a missed ping is what makes systemd act */
        int healthy = cv_ok(cv_app_ready(w->app));
        if (healthy) {
            (void)sd_notify(0, was_healthy ? "WATCHDOG=1" : "WATCHDOG=1\nSTATUS=serving");
        } else {
            cv_log(CV_LOG_WARN, "watchdog: not ready, no keep-alive sent", "detail", cv_error_message(), NULL);
            (void)sd_notify(0, "STATUS=not ready: the HSM or the database does not answer");
            cv_error_clear();
        }
        was_healthy = healthy;
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int watchdog_run(struct cv_app *app, uint64_t interval_us, struct cv_metrics *beat, int probe,
                        struct cv_cli_watchdog **out)
{
    struct cv_cli_watchdog *w = calloc(1, sizeof(*w));
    if (!w) return -1;
    w->interval_us = interval_us;
    w->app = app;
    w->beat = beat;
    w->probe = probe;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int cv_cli_watchdog_start(struct cv_app *app, struct cv_cli_watchdog **out)
{
    *out = NULL;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return 0;
    return watchdog_run(app, usec / 2, NULL, 0, out); /* twice per period, as sd_watchdog_enabled(3) advises */
}

int cv_cli_worker_beat_start(struct cv_app *app, uint64_t watchdog_us, struct cv_cli_watchdog **out)
{
    *out = NULL;
    /* the supervisor pings systemd only when every worker beat within the period */
    uint64_t interval = watchdog_us && watchdog_us / 4 < 1000000 ? watchdog_us / 4 : 1000000;
    cv_metrics_worker_beat(app->metrics, 1); /* at once: its descriptors show before the first period */
    return watchdog_run(app, interval, app->metrics, watchdog_us != 0, out);
}

void cv_cli_supervisor_notify(const char *state) { (void)sd_notify(0, state); }

int cv_cli_supervisor_watchdog_us(uint64_t *usec)
{
    *usec = 0;
    return sd_watchdog_enabled(0, usec) > 0 && *usec > 0;
}

void cv_cli_watchdog_stop(struct cv_cli_watchdog *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
