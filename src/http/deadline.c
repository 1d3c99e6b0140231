/* Whole-request deadline. libmicrohttpd's own timeout is an idle timeout: a
 * client sending one header line every few seconds keeps a connection (and a
 * slot of the per-address limit) for as long as it likes. A watchdog thread
 * shuts down the socket of any connection whose request is not whole within
 * CREDVAULT_REQUEST_DEADLINE_MS; libmicrohttpd then sees the socket fail and
 * closes the connection on its own thread. Never closes a descriptor itself. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "credvault/log.h"
#include "deadline.h"

struct slot {
    struct slot *prev, *next;
    struct cv_http_deadline *d;
    int fd;
    long long since_ms; /* opened, or previous response completed */
    bool whole;         /* the current request is complete: handled, not timed */
    bool cut;
};

struct cv_http_deadline {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    long long deadline_ms;
    struct slot head; /* circular list, guarded by mu */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watch(void *arg)
{
    struct cv_http_deadline *d = arg;
    long long tick = d->deadline_ms / 10 < 250 ? d->deadline_ms / 10 : 250;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)(tick % 1000) * 1000000L;
        until.tv_sec += tick / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&d->wake, &d->mu, &until);
        long long now = now_ms();
        unsigned cut = 0;
        for (struct slot *s = d->head.next; s != &d->head; s = s->next)
            if (!s->whole && !s->cut && now - s->since_ms >= d->deadline_ms) cut++;
        if (!cut) continue;
        /* logged before any socket is shut: whoever sees the cut finds the line */
        char n[16], ms[24];
        snprintf(n, sizeof(n), "%u", cut);
        snprintf(ms, sizeof(ms), "%lld", d->deadline_ms);
        cv_log(CV_LOG_WARN, "http_request_deadline", "connections", n, "deadline_ms", ms, NULL);
        for (struct slot *s = d->head.next; s != &d->head; s = s->next) {
            if (s->whole || s->cut || now - s->since_ms < d->deadline_ms) continue;
            /* the descriptor stays libmicrohttpd's: it is still open while the
             * slot is listed (removal comes before close, under this lock) */
            shutdown(s->fd, SHUT_RDWR);
            s->cut = true;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

cv_result cv_http_deadline_start(unsigned deadline_ms, struct cv_http_deadline **out)
{
    *out = NULL;
    CV_ENSURE(deadline_ms >= 100, CV_ERR_INPUT, "CREDVAULT_REQUEST_DEADLINE_MS must be at least 100");
    struct cv_http_deadline *d = calloc(1, sizeof(*d));
    CV_ENSURE(d != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->wake, NULL);
    d->deadline_ms = deadline_ms;
    d->head.next = d->head.prev = &d->head;
    if (pthread_create(&d->thread, NULL, watch, d) != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->mu);
        free(d);
        CV_BAIL(CV_ERR_UNAVAILABLE, "cannot start the request deadline thread");
    }
    *out = d;
    return CV_OK;
}

void cv_http_deadline_stop(struct cv_http_deadline *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    while (d->head.next != &d->head) { /* none once the daemon has stopped; freed in any case */
        struct slot *s = d->head.next;
        s->next->prev = s->prev;
        s->prev->next = s->next;
        free(s);
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void cv_http_deadline_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                    enum MHD_ConnectionNotificationCode toe)
{
    struct cv_http_deadline *d = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct slot *s = ci ? calloc(1, sizeof(*s)) : NULL;
        *socket_context = s;
        if (!s) return; /* untimed, as before; the idle timeout still applies */
        s->d = d;
        s->fd = ci->connect_fd;
        s->since_ms = now_ms();
        pthread_mutex_lock(&d->mu);
        s->next = d->head.next;
        s->prev = &d->head;
        d->head.next->prev = s;
        d->head.next = s;
        pthread_mutex_unlock(&d->mu);
        return;
    }
    struct slot *s = *socket_context;
    if (!s) return;
    pthread_mutex_lock(&d->mu);
    s->next->prev = s->prev;
    s->prev->next = s->next;
    pthread_mutex_unlock(&d->mu);
    *socket_context = NULL;
    free(s);
}

/* Called on the connection's own thread; the watchdog reads the slot under
 * the deadline's lock, reached through the slot. */
static void mark(struct MHD_Connection *conn, bool whole)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct slot *s = ci ? ci->socket_context : NULL;
    if (!s) return;
    pthread_mutex_lock(&s->d->mu);
    s->whole = whole;
    if (!whole) s->since_ms = now_ms();
    pthread_mutex_unlock(&s->d->mu);
}

void cv_http_deadline_request_whole(struct MHD_Connection *conn) { mark(conn, true); }
void cv_http_deadline_request_done(struct MHD_Connection *conn) { mark(conn, false); }
