/* The key-event log other instances follow, and the LISTEN connection that
 * tells them when to look. A notification carries only an event id; the
 * rows are read back in platform scope, so a lost or forged notification
 * costs at most one extra read. The listener owns its own connection (a
 * LISTEN must stay on one session), outside the per-thread pool. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/log.h"
#include "store/lifecycle.h"

#define EVENT_COLS "id, kind, coalesce(tenant_id, ''), coalesce(version, 0)"

CV_SQL_DEF(since_sql, LC_EVENTS_SINCE,
    "SELECT " EVENT_COLS " FROM key_events WHERE id > $1::int8"
    " OR at > now() - $2::int8 * interval '1 second' ORDER BY id LIMIT $3::int8",
    3);

CV_SQL_DEF(head_sql, LC_EVENTS_HEAD,
                                       "SELECT coalesce(max(id), 0) FROM key_events", 0);

CV_SQL_DEF(prune_sql, LC_EVENTS_PRUNE,
    "WITH d AS (DELETE FROM key_events WHERE at < now() - $1::int8 * interval '1 second' RETURNING 1)"
    " SELECT count(*) FROM d",
    1);

cv_result cv_store_lc_events_since(struct cv_store *st, int64_t after, unsigned limit, cv_store_key_event_cb cb,
                                   void *arg, unsigned *count)
{
    *count = 0;
    CV_ENSURE_REF(cb);
    CV_ENSURE(limit >= 1 && limit <= CV_STORE_EVENTS_PAGE_MAX, CV_ERR_INPUT, "limit out of range");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &since_sql);
    cv_q_i64(&q, after);
    cv_q_i64(&q, CV_STORE_EVENT_WINDOW_S);
    cv_q_i64(&q, limit);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 4));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    /* after the commit: callbacks never hold a transaction open */
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_key_event ev;
        memset(&ev, 0, sizeof(ev));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 0, &ev.id));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 1, ev.kind, sizeof(ev.kind)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 2, ev.tenant_id, sizeof(ev.tenant_id)));
        CV_GUARD_OUT(r, cv_pq_u32(q.res, i, 3, &ev.version));
        (*count)++;
        if (cb(arg, &ev)) break;
    }
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

cv_result cv_store_lc_events_head(struct cv_store *st, int64_t *head)
{
    *head = 0;
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &head_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, 1));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, head));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

cv_result cv_store_lc_events_prune(struct cv_store *st, unsigned keep_s, uint64_t *pruned)
{
    *pruned = 0;
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &prune_sql);
    cv_q_i64(&q, keep_s);
    cv_result r;
    int64_t n;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, 1));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &n));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *pruned = (uint64_t)n;
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- LISTEN ---- */

struct cv_store_listener {
    PGconn *pg;
    int fatal; /* set by the notice receiver when the server says FATAL */
};

void cv_store_listener_close(struct cv_store_listener *l)
{
    if (!l) return;
    if (l->pg) PQfinish(l->pg);
    free(l);
}

cv_result cv_store_listener_open(struct cv_store *st, struct cv_store_listener **out)
{
    *out = NULL;
    struct cv_store_listener *l = calloc(1, sizeof(*l));
    CV_ENSURE(l != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result r = cv_store_connect(&st->ci, &l->pg, &l->fatal);
    if (cv_ok(r)) {
        PGresult *res = PQexec(l->pg, "LISTEN " CV_STORE_KEY_EVENTS_CHANNEL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            cv_store_log_result_error("db_error", "lc_listen", res, CV_LOG_WARN);
            r = cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
        }
        PQclear(res);
    }
    if (cv_failed(r)) {
        cv_store_listener_close(l);
        return r;
    }
    *out = l;
    return CV_OK;
}

static int drain(struct cv_store_listener *l)
{
    int n = 0;
    PGnotify *nt;
    while ((nt = PQnotifies(l->pg)) != NULL) {
        n++;
        PQfreemem(nt);
    }
    return n;
}

cv_result cv_store_listener_wait(struct cv_store_listener *l, unsigned timeout_ms, int wake_fd, int *notified)
{
    *notified = 0;
    CV_ENSURE_REF(l);
    CV_ENSURE(PQstatus(l->pg) == CONNECTION_OK && !l->fatal, CV_ERR_UNAVAILABLE, "database unavailable");
    if (drain(l)) {
        *notified = 1;
        return CV_OK;
    }
    struct pollfd p[2] = {{.fd = PQsocket(l->pg), .events = POLLIN, .revents = 0},
                          {.fd = wake_fd, .events = POLLIN, .revents = 0}};
    CV_ENSURE(p[0].fd >= 0, CV_ERR_UNAVAILABLE, "database unavailable");
    int rc = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms);
    if (rc <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) return CV_OK; /* timeout, wake or EINTR */
    if (!PQconsumeInput(l->pg) || PQstatus(l->pg) != CONNECTION_OK || l->fatal) {
        cv_log(CV_LOG_WARN, "db_connection_lost", "statement", "lc_listen", "message", PQerrorMessage(l->pg), NULL);
        CV_BAIL(CV_ERR_UNAVAILABLE, "database unavailable");
    }
    *notified = drain(l) > 0;
    return CV_OK;
}
