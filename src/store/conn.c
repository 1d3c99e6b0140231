/* One connection per calling thread, found through a pthread key owned by
 * the store, made on first use, checked before every reuse and remade after
 * it broke. Never shared between threads; the list exists only so that
 * cv_store_close can finish connections of threads that did not say goodbye. */
#include <string.h>
#include <poll.h>
#include <stdlib.h>

#include "credvault/log.h"
#include "store/pq.h"

static void unlink_conn(struct cv_conn *c)
{
    struct cv_store *st = c->st;
    pthread_mutex_lock(&st->lock);
    if (c->prev) c->prev->next = c->next;
    else if (st->conns == c) st->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&st->lock);
}

void cv_conn_reset(struct cv_conn *c)
{
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    memset(c->prepared, 0, sizeof(c->prepared));
    c->fatal = 0;
    c->timed_out = 0;
    /* the session ended: its slot is free again, and its heads unknown */
    c->slot = 0;
    c->nheads = 0;
}

void cv_conn_release(struct cv_conn *c)
{
    if (!c) return;
    unlink_conn(c);
    cv_conn_reset(c);
    free(c->heads);
    free(c);
}

/* A connection that sat idle may have been closed by the server (restart,
 * pg_terminate_backend, failover): the socket is then readable while we
 * expect nothing. Reading until it is quiet lets libpq see the FATAL and the
 * EOF behind it, without a round trip. */
static int still_usable(struct cv_conn *c)
{
    PGconn *pg = c->pg;
    if (c->fatal || PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE ||
        PQpipelineStatus(pg) != PQ_PIPELINE_OFF)
        return 0;
    for (int i = 0; i < 8; i++) {
        int fd = PQsocket(pg);
        if (fd < 0) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
        if (poll(&p, 1, 0) <= 0) break;
        if (!PQconsumeInput(pg)) return 0;
        PGnotify *n;
        while ((n = PQnotifies(pg)) != NULL) PQfreemem(n);
        if (c->fatal || PQstatus(pg) != CONNECTION_OK) return 0;
    }
    return !PQisBusy(pg);
}

cv_result cv_conn_get(struct cv_store *st, struct cv_conn **out)
{
    struct cv_conn *c = pthread_getspecific(st->key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        CV_ENSURE(c != NULL, CV_ERR_MEMORY, "out of memory");
        c->st = st;
        if (pthread_setspecific(st->key, c) != 0) {
            free(c);
            CV_BAIL(CV_ERR_MEMORY, "out of memory");
        }
        pthread_mutex_lock(&st->lock);
        c->next = st->conns;
        if (st->conns) st->conns->prev = c;
        st->conns = c;
        pthread_mutex_unlock(&st->lock);
    }
    if (c->pg && !still_usable(c)) {
        const char *why = PQerrorMessage(c->pg);
        cv_log(CV_LOG_WARN, "db_connection_lost", "message", *why ? why : "the server ended the idle connection",
               NULL);
        cv_conn_reset(c);
    }
    if (!c->pg) {
        cv_result r = cv_store_connect(&st->ci, &c->pg, &c->fatal);
        if (cv_failed(r)) {
            cv_store_breaker_failed(st);
            return r;
        }
        memset(c->prepared, 0, sizeof(c->prepared));
    }
    *out = c;
    return CV_OK;
}
