/* One store call = one transaction = one round trip: in libpq pipeline mode
 * the scope (set_config, transaction-local), the statements (each prepared
 * on first use on this connection) and one Sync are sent together. The
 * server runs everything before the Sync as one implicit transaction and
 * commits at the Sync; the first error rolls it all back. Never string-builds
 * SQL and never retries a write whose outcome is unknown. */
#include <string.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "store/audit_tx.h"
#include "store/pq.h"

#define CV_TX_MAX_STATEMENTS 8

static const struct cv_sql scope_sql = {
    CV_SQL_SCOPE, "scope",
    "SELECT set_config('credvault.tenant_id', $1::text, true), set_config('credvault.scope', $2::text, true)", 2};

struct step {
    struct cv_q *q;
    int prepare; /* this step is the Parse of q's statement */
};

struct run {
    struct step steps[2 * (CV_TX_MAX_STATEMENTS + 3)]; /* + scope, + an attached audit event's two */
    size_t nsteps;
    int all_sent;        /* the Sync went out: the server may have committed */
    PGresult *error;     /* first error, owned */
    const char *failed;  /* its statement's name */
};

enum outcome { RUN_OK, RUN_SQL_ERROR, RUN_LOST };

static int send_step(struct cv_conn *c, struct run *run, struct cv_q *q)
{
    const struct cv_sql *sql = q->sql;
    uint64_t bit = UINT64_C(1) << sql->id;
    if (!(c->prepared & bit)) {
        if (!PQsendPrepare(c->pg, sql->name, sql->text, sql->nparams, NULL)) return 0;
        run->steps[run->nsteps++] = (struct step){q, 1};
    }
    if (!PQsendQueryPrepared(c->pg, sql->name, q->n, q->values, q->lengths, q->formats, 0)) return 0;
    run->steps[run->nsteps++] = (struct step){q, 0};
    return 1;
}

/* Reads one step's result and the NULL that ends it. 0: the connection is
 * unusable (gone, or libpq and we disagree about what comes next). */
static int read_step(struct cv_conn *c, struct run *run, const struct step *s)
{
    PGresult *res = PQgetResult(c->pg);
    if (!res) return 0;
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_FATAL_ERROR) {
        if (!run->error) {
            run->error = res;
            run->failed = s->q->sql->name;
            res = NULL;
        }
    } else if (s->prepare) {
        if (t == PGRES_COMMAND_OK) c->prepared |= UINT64_C(1) << s->q->sql->id;
    } else if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
        s->q->res = res;
        res = NULL;
    }
    PQclear(res);
    PGresult *extra = PQgetResult(c->pg);
    if (extra) {
        PQclear(extra);
        return 0;
    }
    return PQstatus(c->pg) == CONNECTION_OK;
}

static enum outcome run_once(struct cv_conn *c, struct cv_q *all[], size_t n, struct run *run)
{
    if (!PQenterPipelineMode(c->pg)) return RUN_LOST;
    for (size_t i = 0; i < n; i++)
        if (!send_step(c, run, all[i])) return RUN_LOST;
    if (!PQpipelineSync(c->pg)) return RUN_LOST;
    run->all_sent = 1;
    for (size_t i = 0; i < run->nsteps; i++)
        if (!read_step(c, run, &run->steps[i])) return RUN_LOST;
    PGresult *sync = PQgetResult(c->pg);
    int synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || !PQexitPipelineMode(c->pg)) return RUN_LOST;
    if (!run->error) return RUN_OK;
    return cv_store_sqlstate_drops(PQresultErrorField(run->error, PG_DIAG_SQLSTATE)) ? RUN_LOST : RUN_SQL_ERROR;
}

/* The server reported the failure against one of our statements, so the
 * implicit transaction was rolled back: running it again cannot apply it twice. */
static int rolled_back(const struct run *run)
{
    const char *state = run->error ? PQresultErrorField(run->error, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL;
}

static cv_result sql_error(const struct cv_tx *tx, const struct run *run)
{
    const char *state = PQresultErrorField(run->error, PG_DIAG_SQLSTATE);
    if (!state) state = "";
    cv_err e = cv_store_sqlstate_err(state, tx->fk_err);
    cv_metric_inc_l(CV_M_DB_ERRORS, cv_err_name(e), NULL, NULL);
    int level = e == CV_ERR_INTERNAL ? CV_LOG_ERROR : e == CV_ERR_UNAVAILABLE ? CV_LOG_WARN : CV_LOG_DEBUG;
    cv_store_log_result_error("db_error", run->failed, run->error, level);
    if (strcmp(state, "23503") == 0) return cv_fail(e, "%s", tx->fk ? tx->fk : "not found");
    switch (e) {
    case CV_ERR_CONFLICT:
        return cv_fail(e, "%s", tx->conflict ? tx->conflict : "already exists");
    case CV_ERR_INPUT:
        return cv_fail(e, "the database refused a value");
    case CV_ERR_UNAVAILABLE:
        return cv_fail(e, "database unavailable");
    default:
        return cv_fail(CV_ERR_INTERNAL, "database error");
    }
}

cv_result cv_store_tx(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n)
{
    CV_ENSURE_REF(st);
    CV_ENSURE(n >= 1 && n <= CV_TX_MAX_STATEMENTS, CV_ERR_INTERNAL, "bad statement count");
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(qs[i].n == qs[i].sql->nparams, CV_ERR_INTERNAL, "statement %s: %d parameters, expected %d",
                  qs[i].sql->name, qs[i].n, qs[i].sql->nparams);

    struct cv_q scope;
    cv_q_init(&scope, &scope_sql);
    struct cv_q *all[CV_TX_MAX_STATEMENTS + 3];
    size_t total = 0;
    if (tx->scope != CV_SCOPE_NONE) {
        CV_ENSURE(tx->scope == CV_SCOPE_PLATFORM || cv_tenant_id_valid(tx->tenant_id), CV_ERR_INPUT,
                  "invalid tenant id");
        /* both, always: a session default (say, from the URL's options)
         * must never leak into a transaction */
        cv_q_text(&scope, tx->scope == CV_SCOPE_TENANT ? tx->tenant_id : "");
        cv_q_text(&scope, tx->scope == CV_SCOPE_TENANT ? "tenant" : "platform");
        all[total++] = &scope;
    }
    /* an audit event attached by the caller commits with this change, and
     * only if it changed a row: a mark before it, the event after (src/store/audit.c) */
    struct cv_q *audit_mark = NULL, *audit = cv_store_audit_staged(st, tx, &audit_mark);
    if (audit) all[total++] = audit_mark;
    for (size_t i = 0; i < n; i++) all[total++] = &qs[i];
    if (audit) all[total++] = audit;

    for (int attempt = 0;; attempt++) {
        struct cv_conn *c;
        cv_result got = cv_conn_get(st, &c);
        if (cv_failed(got)) {
            cv_metric_inc_l(CV_M_DB_ERRORS, "connect", NULL, NULL);
            return got;
        }
        struct run run;
        memset(&run, 0, sizeof(run));
        enum outcome o = run_once(c, all, total, &run);
        PQclear(scope.res);
        scope.res = NULL;
        cv_store_audit_staged_done(audit, audit_mark, o == RUN_OK);
        if (o == RUN_OK) return CV_OK;
        cv_q_clear(qs, n);
        if (o == RUN_SQL_ERROR) {
            cv_result r = sql_error(tx, &run);
            PQclear(run.error);
            return r;
        }
        int retry = attempt == 0 && (!run.all_sent || rolled_back(&run) || (tx->flags & CV_TX_READ_ONLY));
        if (run.error) cv_store_log_result_error("db_connection_lost", run.failed, run.error, CV_LOG_WARN);
        else cv_log(CV_LOG_WARN, "db_connection_lost", "message", PQerrorMessage(c->pg), NULL);
        PQclear(run.error);
        cv_metric_inc_l(CV_M_DB_ERRORS, "connection_lost", NULL, NULL);
        cv_conn_reset(c);
        if (!retry) return cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
    }
}
