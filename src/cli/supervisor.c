/* The supervisor of `credvault serve` with CREDVAULT_WORKERS > 1: binds one
 * SO_REUSEPORT socket per worker slot, makes the shared metrics and rate
 * limits, gives up root and forks the workers before any thread, PKCS#11 or
 * libpq state exists; then restarts the dead, speaks to systemd for all and
 * stops all. It opens no token and no database and reads nothing from the
 * network. */
#define _GNU_SOURCE /* sigtimedwait */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "credvault/buf.h"
#include "credvault/log.h"
#include "credvault/metrics.h"
#include "http/http.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
#define TICK_MS 100
#define STOP_GRACE_MS 30000 /* the drain (10 s) plus the last checkpoint, then SIGKILL */

struct slot {
    pid_t pid;
    int fd;
    int started_once;
    unsigned fails;   /* deaths in a row before the worker was ready */
    int64_t start_at; /* when the next start is due; 0: now */
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

unsigned cv_cli_workers_wanted(const struct cv_config *cfg)
{
    if (cfg->workers) return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > CV_METRICS_WORKERS_MAX ? CV_METRICS_WORKERS_MAX : (unsigned)n;
}

static void log_slot(enum cv_log_level level, const char *event, unsigned slot, pid_t pid, const char *k,
                     const char *v)
{
    char s[12], p[16];
    snprintf(s, sizeof(s), "%u", slot);
    snprintf(p, sizeof(p), "%d", (int)pid);
    cv_log(level, event, "worker", s, "pid", p, k, v, NULL);
}

static void describe(int status, char *out, size_t n)
{
    if (WIFSIGNALED(status)) snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else snprintf(out, n, "exit %d", WEXITSTATUS(status));
}

static pid_t spawn(unsigned i, struct slot *s, const struct cv_cli_worker *tmpl, cv_cli_worker_run run, void *arg,
                   pid_t parent)
{
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* the worker: the TLS key's pages came without their lock (fork keeps no mlock) */
    cv_secret_memory_relock();
    /* dies with the supervisor, speaks to systemd only through it */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(CV_EXIT_FAIL);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &chld, NULL); /* INT and TERM stay blocked: serve sigwaits on them */
    struct cv_cli_worker w = *tmpl;
    w.slot = i;
    w.listen_fd = s->fd;
    exit(run(arg, &w));
}

static void stop_all(struct slot *slots, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (slots[i].pid > 0) kill(slots[i].pid, SIGTERM);
    int64_t until = now_ms() + STOP_GRACE_MS;
    for (;;) {
        int left = 0;
        for (unsigned i = 0; i < n; i++) {
            if (slots[i].pid <= 0) continue;
            int st;
            pid_t r = waitpid(slots[i].pid, &st, WNOHANG);
            if (r == slots[i].pid || (r < 0 && errno == ECHILD)) {
                slots[i].pid = 0;
                continue;
            }
            left++;
        }
        if (!left) return;
        if (now_ms() > until) {
            for (unsigned i = 0; i < n; i++)
                if (slots[i].pid > 0) {
                    log_slot(CV_LOG_WARN, "worker_stop_timeout", i, slots[i].pid, "action", "SIGKILL");
                    kill(slots[i].pid, SIGKILL);
                }
            until = INT64_MAX;
        }
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
}

int cv_cli_supervise(const struct cv_config *cfg, const struct cv_cli_privileges *priv, unsigned n,
                     cv_cli_worker_run run, void *arg)
{
    int rc = CV_EXIT_FAIL;
    struct slot slots[CV_METRICS_WORKERS_MAX];
    struct cv_cli_worker tmpl = {0};
    struct cv_buf cert = CV_BUF_EMPTY, key = CV_BUF_EMPTY;
    for (unsigned i = 0; i < n; i++) slots[i] = (struct slot){.pid = 0, .fd = -1};

    unsigned port = 0;
    if (cv_failed(cv_http_listen_probe(cfg->listen, &port))) {
        cv_cli_report("listen");
        return CV_EXIT_FAIL;
    }
    for (unsigned i = 0; i < n; i++) {
        if (cv_failed(cv_http_listen_shared(cfg->listen, port, &slots[i].fd))) {
            cv_cli_report("listen");
            goto out;
        }
    }
    /* read while still root: a worker started later runs as the user */
    if (cfg->tls && cfg->tls_cert && cfg->tls_key) {
        if (cv_failed(cv_http_tls_read(cfg->tls_cert, cfg->tls_key, &cert, &key))) {
            cv_cli_report("listen");
            goto out;
        }
        tmpl.tls_cert = &cert;
        tmpl.tls_key = &key;
    }
    if (cv_failed(cv_metrics_new_shared(n, &tmpl.metrics)) || cv_failed(cv_http_limits_new_shared(cfg, &tmpl.limiter))) {
        cv_cli_report("workers");
        goto out;
    }
    if (cv_failed(cv_cli_privileges_drop(priv))) {
        cv_cli_report("user");
        goto out;
    }
    uint64_t wd_us = 0;
    int watchdog = cv_cli_supervisor_watchdog_us(&wd_us);
    tmpl.watchdog_us = watchdog ? wd_us : 0;
    tmpl.workers = n;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    pid_t self = getpid();
    char nbuf[12], pbuf[12];
    snprintf(nbuf, sizeof(nbuf), "%u", n);
    snprintf(pbuf, sizeof(pbuf), "%u", port);
    cv_log(CV_LOG_INFO, "supervisor_starting", "workers", nbuf, "listen", cfg->listen, "port", pbuf, NULL);

    int announced = 0, was_healthy = 1;
    int64_t last_ping = 0;
    for (;;) {
        int64_t now = now_ms();
        for (unsigned i = 0; i < n; i++) {
            struct slot *s = &slots[i];
            if (s->pid > 0 || now < s->start_at) continue;
            /* the first start goes one worker at a time: a fresh database's
             * first-run writes (master key registration, bindings) are made
             * once, not raced, and SoftHSM opened by two processes at the same
             * instant sometimes finds no token (docs/hsm.md) */
            if (!announced && i > 0 &&
                !(slots[i - 1].pid > 0 && cv_metrics_worker_state(tmpl.metrics, i - 1, NULL, NULL)))
                continue;
            pid_t pid = spawn(i, s, &tmpl, run, arg, self);
            if (pid < 0) {
                cv_log(CV_LOG_ERROR, "worker_fork_failed", "error", strerror(errno), NULL);
                s->start_at = now + BACKOFF_FIRST_MS;
                continue;
            }
            s->pid = pid;
            cv_metrics_worker_started(tmpl.metrics, i, pid);
            if (s->started_once) cv_metric_inc(tmpl.metrics, CV_M_WORKER_RESTARTS);
            s->started_once = 1;
            log_slot(CV_LOG_INFO, "worker_started", i, pid, NULL, NULL);
        }
        struct timespec wait = {0, TICK_MS * 1000 * 1000};
        siginfo_t si;
        int sig = sigtimedwait(&sigs, &si, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            cv_log(CV_LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
            cv_cli_supervisor_notify("STOPPING=1\nSTATUS=stopping");
            stop_all(slots, n);
            cv_log(CV_LOG_INFO, "supervisor_stopped", NULL);
            rc = CV_EXIT_OK;
            goto out;
        }
        int status;
        pid_t dead;
        while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
            unsigned i = 0;
            while (i < n && slots[i].pid != dead) i++;
            if (i == n) continue;
            int was_ready = cv_metrics_worker_state(tmpl.metrics, i, NULL, NULL);
            char how[96];
            describe(status, how, sizeof(how));
            log_slot(CV_LOG_WARN, "worker_exited", i, dead, "status", how);
            slots[i].pid = 0;
            cv_metrics_worker_started(tmpl.metrics, i, 0);
            cv_http_listen_pause(slots[i].fd); /* its queue is reset; new connections go to the others */
            if (!announced && !was_ready) {
                /* a worker that cannot start now will not start later: the
                 * message it printed is the reason; stop with it */
                stop_all(slots, n);
                rc = WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : CV_EXIT_FAIL;
                goto out;
            }
            if (was_ready) {
                slots[i].fails = 0;
                slots[i].start_at = 0;
            } else {
                /* dying at start again and again: a broken dependency, not a crash; do not spin */
                unsigned f = slots[i].fails < 16 ? slots[i].fails : 16;
                int64_t delay = (int64_t)BACKOFF_FIRST_MS << f;
                if (delay > BACKOFF_MAX_MS) delay = BACKOFF_MAX_MS;
                slots[i].fails++;
                slots[i].start_at = now_ms() + delay;
                char d[24];
                snprintf(d, sizeof(d), "%lld", (long long)delay);
                log_slot(CV_LOG_WARN, "worker_restart_delayed", i, dead, "delay_ms", d);
            }
        }
        now = now_ms();
        if (!announced) {
            unsigned ready = 0;
            for (unsigned i = 0; i < n; i++) ready += slots[i].pid > 0 && cv_metrics_worker_state(tmpl.metrics, i, NULL, NULL);
            if (ready == n) {
                cv_log(CV_LOG_INFO, "serving", "workers", nbuf, "listen", cfg->listen, "port", pbuf, "key_residency",
                       cfg->key_residency, NULL);
                cv_cli_supervisor_notify("READY=1\nSTATUS=serving");
                announced = 1;
            }
        }
        /* systemd's keep-alive speaks for every worker: sent only while each
         * live worker beat healthy within the period */
        if (watchdog && announced && (uint64_t)(now - last_ping) * 1000 >= wd_us / 2) {
            unsigned healthy = 0, live = 0;
            for (unsigned i = 0; i < n; i++) {
                if (slots[i].pid <= 0) continue;
                live++;
                int64_t age;
                int ok;
                if (cv_metrics_worker_state(tmpl.metrics, i, &age, &ok) && ok && (uint64_t)age * 1000 < wd_us)
                    healthy++;
            }
            if (live && healthy == live) {
                cv_cli_supervisor_notify(was_healthy ? "WATCHDOG=1" : "WATCHDOG=1\nSTATUS=serving");
                was_healthy = 1;
            } else if (was_healthy) {
                cv_cli_supervisor_notify("STATUS=not ready: the HSM or the database does not answer");
                was_healthy = 0;
            }
            last_ping = now;
        }
    }
out:
    for (unsigned i = 0; i < n; i++)
        if (slots[i].fd >= 0) close(slots[i].fd);
    cv_buf_free(&key);
    cv_buf_free(&cert);
    cv_http_limits_free(tmpl.limiter);
    cv_metrics_free(tmpl.metrics);
    return rc;
}
