/* Multi-round-trip transactions for the key lifecycle (why: store/lifecycle.h),
 * the key-event append every lifecycle change makes, and rewrap skip lists.
 * Parameters always travel as parameters. A connection that breaks mid-way is
 * replaced and the call fails with CV_ERR_UNAVAILABLE; nothing is retried
 * here (a COMMIT in flight has an unknown outcome; every step may run again). */
#include <stdlib.h>
#include <string.h>

#include "credvault/log.h"
#include "store/lifecycle.h"

static const struct cv_sql begin_sql = {CV_SQL__COUNT, "lc_begin", "BEGIN", 0};
static const struct cv_sql scope_sql = {
    CV_SQL__COUNT, "lc_scope",
    "SELECT set_config('credvault.tenant_id', $1::text, true), set_config('credvault.scope', $2::text, true)", 2};
static const struct cv_sql commit_sql = {CV_SQL__COUNT, "lc_commit", "COMMIT", 0};

/* The event row and its notification in one statement; NOTIFY is sent at
 * commit, so a listener never hears of a change it cannot read yet. */
static const struct cv_sql event_sql = {
    CV_SQL__COUNT, "lc_event",
    "WITH e AS (INSERT INTO key_events (kind, tenant_id, version) VALUES ($1::text, $2::text, $3::int4) RETURNING id)"
    " SELECT pg_notify('" CV_STORE_KEY_EVENTS_CHANNEL "', e.id::text) FROM e",
    3};

static void lc_close(struct cv_lc_tx *tx, int broken)
{
    if (!tx->open) return;
    tx->open = 0;
    if (broken || tx->c->pg != tx->pg) {
        if (tx->c->pg == tx->pg) cv_conn_reset(tx->c);
        return;
    }
    PGresult *res = PQexec(tx->pg, "ROLLBACK");
    int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok || PQtransactionStatus(tx->pg) != PQTRANS_IDLE) cv_conn_reset(tx->c);
}

void cv_lc_abort(struct cv_lc_tx *tx)
{
    if (tx) lc_close(tx, 0);
}

static cv_result sql_failure(struct cv_lc_tx *tx, const struct cv_q *q, PGresult *res, const struct cv_tx *msgs)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int lost = !state || cv_store_sqlstate_drops(state) || PQstatus(tx->pg) != CONNECTION_OK;
    if (lost) {
        if (res) cv_store_log_result_error("db_connection_lost", q->sql->name, res, CV_LOG_WARN);
        else cv_log(CV_LOG_WARN, "db_connection_lost", "statement", q->sql->name, "message", PQerrorMessage(tx->pg),
                    NULL);
        PQclear(res);
        lc_close(tx, 1);
        return cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
    }
    cv_err e = cv_store_sqlstate_err(state, msgs ? msgs->fk_err : CV_ERR_NONE);
    int level = e == CV_ERR_INTERNAL ? CV_LOG_ERROR : e == CV_ERR_UNAVAILABLE ? CV_LOG_WARN : CV_LOG_DEBUG;
    cv_store_log_result_error("db_error", q->sql->name, res, level);
    PQclear(res);
    lc_close(tx, 0);
    if (strcmp(state, "23503") == 0) return cv_fail(e, "%s", msgs && msgs->fk ? msgs->fk : "not found");
    switch (e) {
    case CV_ERR_CONFLICT:
        return cv_fail(e, "%s", msgs && msgs->conflict ? msgs->conflict : "already exists");
    case CV_ERR_INPUT:
        return cv_fail(e, "the database refused a value");
    case CV_ERR_UNAVAILABLE:
        return cv_fail(e, "database unavailable");
    default:
        return cv_fail(CV_ERR_INTERNAL, "database error");
    }
}

cv_result cv_lc_exec(struct cv_lc_tx *tx, struct cv_q *q, const struct cv_tx *msgs)
{
    CV_ENSURE(tx->open, CV_ERR_INTERNAL, "statement %s outside a transaction", q->sql->name);
    CV_ENSURE(q->n == q->sql->nparams, CV_ERR_INTERNAL, "statement %s: %d parameters, expected %d", q->sql->name,
              q->n, q->sql->nparams);
    if (tx->c->pg != tx->pg) {
        /* another store call on this thread replaced the connection: the
         * transaction, its locks and its writes are gone */
        tx->open = 0;
        CV_BAIL(CV_ERR_INTERNAL, "the transaction of %s was lost", q->sql->name);
    }
    PGresult *res = PQexecParams(tx->pg, q->sql->text, q->n, NULL, q->values, q->lengths, q->formats, 0);
    ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
        q->res = res;
        return CV_OK;
    }
    return sql_failure(tx, q, res, msgs);
}

cv_result cv_lc_exec_row(struct cv_lc_tx *tx, struct cv_q *q, const struct cv_tx *msgs, int ncols)
{
    CV_GUARD(cv_lc_exec(tx, q, msgs));
    cv_result r = cv_pq_expect(q->res, ncols);
    if (cv_ok(r) && PQntuples(q->res) != 1) r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
    if (cv_failed(r)) {
        cv_q_clear(q, 1);
        lc_close(tx, 0);
    }
    return r;
}

cv_result cv_lc_begin(struct cv_store *st, const char *tenant_id, struct cv_lc_tx *tx)
{
    memset(tx, 0, sizeof(*tx));
    CV_ENSURE(tenant_id == NULL || cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    tx->st = st;
    CV_GUARD(cv_conn_get(st, &tx->c));
    tx->pg = tx->c->pg;
    tx->open = 1;
    struct cv_q q;
    cv_q_init(&q, &begin_sql);
    CV_GUARD(cv_lc_exec(tx, &q, NULL));
    cv_q_clear(&q, 1);
    /* both settings, always, as the rest of the store does */
    cv_q_init(&q, &scope_sql);
    cv_q_text(&q, tenant_id ? tenant_id : "");
    cv_q_text(&q, tenant_id ? "tenant" : "platform");
    CV_GUARD(cv_lc_exec(tx, &q, NULL));
    cv_q_clear(&q, 1);
    return CV_OK;
}

cv_result cv_lc_commit(struct cv_lc_tx *tx)
{
    struct cv_q q;
    cv_q_init(&q, &commit_sql);
    CV_GUARD(cv_lc_exec(tx, &q, NULL));
    cv_q_clear(&q, 1);
    tx->open = 0;
    return CV_OK;
}

cv_result cv_lc_event(struct cv_lc_tx *tx, const char *kind, const char *tenant_id, uint32_t version)
{
    struct cv_q q;
    cv_q_init(&q, &event_sql);
    cv_q_text(&q, kind);
    cv_q_text_opt(&q, tenant_id);
    if (version) cv_q_i64(&q, version);
    else cv_q_text(&q, NULL);
    CV_GUARD(cv_lc_exec(tx, &q, NULL));
    cv_q_clear(&q, 1);
    return CV_OK;
}

int cv_lc_skip_add(struct cv_store_skip *skip, const char *id)
{
    if (skip->n >= CV_STORE_REWRAP_SKIP_MAX || strlen(id) > CV_STORE_SKIP_ID_MAX_BYTES) return 0;
    memcpy(skip->ids[skip->n], id, strlen(id) + 1);
    skip->n++;
    return 1;
}

char *cv_lc_skip_literal(const struct cv_store_skip *skip)
{
    /* every byte may need a backslash, plus quotes and a comma per id */
    size_t n = skip ? skip->n : 0;
    char *out = malloc(3 + n * (2 * CV_STORE_SKIP_ID_MAX_BYTES + 3));
    if (!out) return NULL;
    char *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *s = skip->ids[i]; *s; s++) {
            if (*s == '"' || *s == '\\') *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

cv_result cv_lc_job_row(const PGresult *res, int row, int col, struct cv_key_job_row *job)
{
    uint64_t remaining = job->remaining;
    memset(job, 0, sizeof(*job));
    job->remaining = remaining;
    char kind[32];
    int64_t v;
    CV_GUARD(cv_pq_i64(res, row, col + 0, &job->id));
    CV_GUARD(cv_pq_text(res, row, col + 1, kind, sizeof(kind)));
    CV_ENSURE(strcmp(kind, "master_rewrap") == 0 || strcmp(kind, "record_rewrap") == 0, CV_ERR_INTERNAL,
              "database returned an unknown job kind");
    job->kind = kind[0] == 'm' ? CV_JOB_MASTER_REWRAP : CV_JOB_RECORD_REWRAP;
    CV_GUARD(cv_pq_text(res, row, col + 2, job->tenant_id, sizeof(job->tenant_id)));
    CV_GUARD(cv_pq_u32(res, row, col + 3, &job->target_version));
    CV_GUARD(cv_pq_text(res, row, col + 4, job->state, sizeof(job->state)));
    CV_GUARD(cv_pq_i64(res, row, col + 5, &v));
    job->total = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 6, &v));
    job->done = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 7, &v));
    job->failed = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 8, &v));
    job->batches = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 9, &job->created_at_ms));
    CV_GUARD(cv_pq_i64(res, row, col + 10, &job->updated_at_ms));
    CV_GUARD(cv_pq_i64(res, row, col + 11, &job->finished_at_ms));
    CV_GUARD(cv_pq_text(res, row, col + 12, job->created_by, sizeof(job->created_by)));
    return CV_OK;
}
