/* The store's one transaction engine. Every statement travels in libpq
 * pipeline mode: prepared on first use on this connection (ids from the
 * registry), parameters always as parameters, results read in order, one
 * SQLSTATE mapping for every failure. A transaction's audit events ride in
 * it, so a change commits with its events or not at all. Never retries a
 * write whose outcome is unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "credvault/store_audit.h"
#include "credvault/store_lifecycle.h"
#include "store/pq.h"

#define CV_TX_MAX_STATEMENTS 8

static const char *const sql_names[] = {
#define CV_SQL_NAME(id, name) name,
    CV_STORE_STATEMENTS(CV_SQL_NAME)
#undef CV_SQL_NAME
};
_Static_assert(sizeof(sql_names) / sizeof(sql_names[0]) == CV_SQL__COUNT, "one name per statement");

const char *cv_sql_name(const struct cv_sql *sql)
{
    return sql->id < CV_SQL__COUNT ? sql_names[sql->id] : "?";
}

CV_SQL_DEF(scope_sql, SCOPE,
           "SELECT set_config('credvault.tenant_id', $1::text, true), set_config('credvault.scope', $2::text, true)",
           2);
CV_SQL_DEF(begin_sql, BEGIN, "BEGIN", 0);
CV_SQL_DEF(commit_sql, COMMIT, "COMMIT", 0);

/* Before the statements of a CV_TX_EVENTS_IF_CHANGED transaction: how many
 * rows this backend's transaction statistics say were changed so far. Those
 * counts only grow inside a transaction, so the difference that
 * credvault_audit_append() sees is exactly the statements'. */
CV_SQL_DEF(mark_sql, AUDIT_MARK,
           "SELECT set_config('credvault.audit_base', (SELECT coalesce(sum(t.n_tup_ins + t.n_tup_upd + t.n_tup_del), 0)"
           " FROM pg_catalog.pg_stat_xact_user_tables t)::text, true)",
           0);

CV_SQL_DEF(key_event_sql, KEY_EVENT,
           "WITH e AS (INSERT INTO key_events (kind, tenant_id, version) VALUES ($1::text, $2::text, $3::int4) "
           "RETURNING id) SELECT pg_notify('" CV_STORE_KEY_EVENTS_CHANNEL "', e.id::text) FROM e",
           3);

/* ---- events ---- */

cv_result cv_store_check_event(const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(ev);
    CV_ENSURE(ev->tenant_id == NULL || cv_tenant_id_valid(ev->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_GUARD(cv_store_check_len("actor", ev->actor, 0, CV_STORE_PRINCIPAL_MAX_BYTES));
    CV_GUARD(cv_store_check_len("role", ev->role ? ev->role : "", 0, CV_STORE_ROLE_MAX_BYTES));
    CV_GUARD(cv_store_check_len("action", ev->action, 1, CV_AUDIT_ACTION_MAX_BYTES));
    if (ev->target) CV_GUARD(cv_store_check_len("target", ev->target, 0, CV_AUDIT_TARGET_MAX_BYTES));
    CV_ENSURE(cv_store_outcome_ok(ev->outcome), CV_ERR_INPUT, "outcome must be success, denied or error");
    if (ev->request_id) CV_GUARD(cv_store_check_len("request id", ev->request_id, 0, CV_AUDIT_REQUEST_ID_MAX_BYTES));
    if (ev->detail) CV_GUARD(cv_store_check_len("detail", ev->detail, 2, CV_AUDIT_DETAIL_MAX_BYTES));
    CV_ENSURE(ev->detail == NULL || ev->detail[0] == '{', CV_ERR_INPUT, "audit detail must be a JSON object");
    if (ev->actor_id) CV_GUARD(cv_store_check_len("actor id", ev->actor_id, 1, CV_STORE_UUID_BYTES));
    return CV_OK;
}

/* An event may only go where row-level security lets it: a platform event
 * needs platform scope; a tenant's event its own tenant's scope or platform. */
static cv_result check_event_scope(const struct cv_tx *tx, const struct cv_audit_event *ev)
{
    CV_ENSURE(tx->scope != CV_SCOPE_NONE, CV_ERR_INTERNAL, "an audit event needs a scoped transaction");
    if (tx->scope == CV_SCOPE_TENANT)
        CV_ENSURE(ev->tenant_id && tx->tenant_id && strcmp(ev->tenant_id, tx->tenant_id) == 0, CV_ERR_INTERNAL,
                  "an audit event outside its transaction's tenant");
    return CV_OK;
}

void cv_store_set_audit_mac(struct cv_store *st, cv_store_audit_mac_fn fn, void *arg)
{
    st->audit_mac = fn;
    st->audit_mac_arg = arg;
}

static int actor_id_plain(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '-'))
            return 0;
    return 1;
}

cv_result cv_store_seal_event(struct cv_store *st, const struct cv_audit_event *ev, const char *target,
                              struct cv_sealed_event *out)
{
    memset(out, 0, sizeof(*out));
    out->ev = *ev;
    out->ev.target = target;
    if (ev->actor_id && actor_id_plain(ev->actor_id)) {
        const char *rest = ev->detail ? ev->detail + 1 : "}"; /* a detail is a JSON object: after its '{' */
        size_t n = strlen(ev->actor_id) + strlen(rest) + 16;
        out->detail = malloc(n);
        CV_ENSURE(out->detail != NULL, CV_ERR_MEMORY, "out of memory");
        snprintf(out->detail, n, "{\"actorId\":\"%s\"%s%s", ev->actor_id, *rest == '}' ? "" : ",", rest);
        CV_ENSURE(strlen(out->detail) <= CV_AUDIT_DETAIL_MAX_BYTES, CV_ERR_INPUT, "audit detail too long");
        out->ev.detail = out->detail;
    }
    if (st->audit_mac) {
        CV_GUARD(st->audit_mac(st->audit_mac_arg, &out->ev, out->mac));
        out->has_mac = 1;
    }
    return CV_OK;
}

void cv_store_sealed_free(struct cv_sealed_event *se, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(se[i].detail);
        se[i].detail = NULL;
    }
}

static cv_result check_events(const struct cv_tx *tx)
{
    CV_ENSURE(tx->nevents <= CV_TX_MAX_EVENTS, CV_ERR_INTERNAL, "too many audit events in one transaction");
    CV_ENSURE(tx->nevents == 0 || tx->events, CV_ERR_INTERNAL, "audit events missing");
    for (size_t i = 0; i < tx->nevents; i++) {
        CV_GUARD(cv_store_check_event(&tx->events[i]));
        CV_GUARD(check_event_scope(tx, &tx->events[i]));
    }
    return CV_OK;
}

static void bind_scope(struct cv_q *q, const struct cv_tx *tx)
{
    /* both, always: a session default (say, from the URL's options) must
     * never leak into a transaction */
    cv_q_init(q, &scope_sql);
    cv_q_text(q, tx->scope == CV_SCOPE_TENANT ? tx->tenant_id : "");
    cv_q_text(q, tx->scope == CV_SCOPE_TENANT ? "tenant" : "platform");
}

/* ---- the pipeline ---- */

struct step {
    struct cv_q *q;
    int prepare; /* this step is the Parse of q's statement */
};

#define RUN_MAX_STEPS (2 * (CV_TX_MAX_STATEMENTS + CV_AUDIT_BATCH_MAX + 3))

struct run {
    struct step steps[RUN_MAX_STEPS];
    size_t nsteps;
    uint64_t parsing[CV_SQL_PREPARED_WORDS]; /* Parse already sent in this pipeline */
    int all_sent;       /* the Sync went out: the server may have committed */
    PGresult *error;    /* first error, owned */
    const char *failed; /* its statement's name */
};

enum outcome { RUN_OK, RUN_SQL_ERROR, RUN_LOST };

static int is_prepared(const struct cv_conn *c, enum cv_sql_id id)
{
    return (c->prepared[id / 64] >> (id % 64)) & 1;
}

static int send_step(struct cv_conn *c, struct run *run, struct cv_q *q)
{
    const struct cv_sql *sql = q->sql;
    /* one Parse per statement and pipeline: a batch may run a statement
     * several times (a head per chain), and a second Parse of the same
     * name fails (42P05) */
    uint64_t bit = UINT64_C(1) << (sql->id % 64);
    if (!is_prepared(c, sql->id) && !(run->parsing[sql->id / 64] & bit)) {
        if (!PQsendPrepare(c->pg, cv_sql_name(sql), sql->text, sql->nparams, NULL)) return 0;
        run->parsing[sql->id / 64] |= bit;
        run->steps[run->nsteps++] = (struct step){q, 1};
    }
    if (!PQsendQueryPrepared(c->pg, cv_sql_name(sql), q->n, q->values, q->lengths, q->formats, 0)) return 0;
    run->steps[run->nsteps++] = (struct step){q, 0};
    return 1;
}

/* Reads one step's result and the NULL that ends it. 0: the connection is
 * unusable (gone, or libpq and we disagree about what comes next). */
static int read_step(struct cv_conn *c, struct run *run, const struct step *s, int64_t deadline)
{
    if (!cv_conn_wait_result(c, deadline)) return 0;
    PGresult *res = PQgetResult(c->pg);
    if (!res) return 0;
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_FATAL_ERROR) {
        if (!run->error) {
            run->error = res;
            run->failed = cv_sql_name(s->q->sql);
            res = NULL;
        }
    } else if (s->prepare) {
        if (t == PGRES_COMMAND_OK) c->prepared[s->q->sql->id / 64] |= UINT64_C(1) << (s->q->sql->id % 64);
    } else if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
        s->q->res = res;
        res = NULL;
    }
    PQclear(res);
    if (!cv_conn_wait_result(c, deadline)) return 0;
    PGresult *extra = PQgetResult(c->pg);
    if (extra) {
        PQclear(extra);
        return 0;
    }
    return PQstatus(c->pg) == CONNECTION_OK;
}

/* Sends all[0..n) and a Sync, reads every result. Outside BEGIN the Sync
 * commits (or rolls back) the implicit transaction; inside, it only ends
 * this batch and the transaction stays open. */
static enum outcome run_once(struct cv_conn *c, struct cv_q *all[], size_t n, struct run *run)
{
    memset(run, 0, sizeof(*run));
    /* non-blocking, so that no send and no read outlives the deadline */
    int64_t deadline = cv_store_now_ms() + (int64_t)c->st->deadline_ms;
    if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) return RUN_LOST;
    for (size_t i = 0; i < n; i++)
        if (!send_step(c, run, all[i])) return RUN_LOST;
    if (!PQpipelineSync(c->pg)) return RUN_LOST;
    run->all_sent = 1;
    for (size_t i = 0; i < run->nsteps; i++)
        if (!read_step(c, run, &run->steps[i], deadline)) return RUN_LOST;
    if (!cv_conn_wait_result(c, deadline)) return RUN_LOST;
    PGresult *sync = PQgetResult(c->pg);
    int synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || !PQexitPipelineMode(c->pg) || PQsetnonblocking(c->pg, 0) != 0) return RUN_LOST;
    if (!run->error) return RUN_OK;
    return cv_store_sqlstate_drops(PQresultErrorField(run->error, PG_DIAG_SQLSTATE)) ? RUN_LOST : RUN_SQL_ERROR;
}

/* Per request during an outage: the first in full, then counts (log.h). */
static struct cv_log_burst lost_burst, unavailable_burst;

static cv_result sql_error(struct cv_store *st, const struct cv_tx *msgs, const struct run *run)
{
    const char *state = PQresultErrorField(run->error, PG_DIAG_SQLSTATE);
    if (!state) state = "";
    cv_err e = cv_store_sqlstate_err(state, msgs ? msgs->fk_err : CV_ERR_NONE);
    cv_metric_inc_l(st->metrics, CV_M_DB_ERRORS, cv_err_name(e), NULL, NULL);
    int level = e == CV_ERR_INTERNAL ? CV_LOG_ERROR : e == CV_ERR_UNAVAILABLE ? CV_LOG_WARN : CV_LOG_DEBUG;
    if (e != CV_ERR_UNAVAILABLE || cv_log_burst_failed(&unavailable_burst, "db_error_unavailable"))
        cv_store_log_result_error("db_error", run->failed, run->error, level);
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


static void log_ok(void)
{
    cv_log_burst_ok(&lost_burst, "db_connection_lost");
    cv_log_burst_ok(&unavailable_burst, "db_error_unavailable");
}

static void log_lost(struct cv_conn *c, const struct run *run)
{
    cv_metric_inc_l(c->st->metrics, CV_M_DB_ERRORS, "connection_lost", NULL, NULL);
    if (!cv_log_burst_failed(&lost_burst, "db_connection_lost")) return;
    if (run->error) cv_store_log_result_error("db_connection_lost", run->failed, run->error, CV_LOG_WARN);
    else cv_log(CV_LOG_WARN, "db_connection_lost", "message", PQerrorMessage(c->pg), NULL);
}

static cv_result check_statements(struct cv_q *qs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(qs[i].n == qs[i].sql->nparams, CV_ERR_INTERNAL, "statement %s: %d parameters, expected %d",
                  cv_sql_name(qs[i].sql), qs[i].n, qs[i].sql->nparams);
    return CV_OK;
}

static cv_result check_tx(const struct cv_tx *tx)
{
    CV_ENSURE_REF(tx);
    if (tx->scope == CV_SCOPE_TENANT)
        CV_ENSURE(cv_tenant_id_valid(tx->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    return check_events(tx);
}

/* ---- one round trip ---- */

cv_result cv_store_run(struct cv_conn *c, struct cv_q *all[], size_t n)
{
    struct run run;
    enum outcome o = run_once(c, all, n, &run);
    if (o != RUN_LOST) cv_store_breaker_ok(c->st);
    if (o == RUN_OK) return CV_OK;
    for (size_t i = 0; i < n; i++) cv_q_clear(all[i], 1);
    cv_result r;
    if (o == RUN_SQL_ERROR) {
        r = sql_error(c->st, NULL, &run);
    } else {
        log_lost(c, &run);
        cv_conn_reset(c);
        cv_store_breaker_failed(c->st);
        r = cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
    }
    PQclear(run.error);
    return r;
}

static cv_result tx_run(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n,
                        struct cv_sealed_event *sealed, size_t nsealed)
{
    int if_changed = (tx->flags & CV_TX_EVENTS_IF_CHANGED) && nsealed > 0;
    int durable = !(tx->flags & CV_TX_EVENTS_ASYNC);
    struct cv_q scope, mark;
    struct cv_q *all[CV_TX_MAX_STATEMENTS + CV_AUDIT_BATCH_MAX + 2];
    cv_result r = CV_OK;
    for (int attempt = 0;; attempt++) {
        struct cv_conn *c;
        /* the retry after a dropped connection is part of this call */
        r = attempt == 0 ? cv_store_breaker_admit(st) : CV_OK;
        if (cv_ok(r)) r = cv_conn_get(st, &c);
        if (cv_failed(r)) {
            cv_metric_inc_l(st->metrics, CV_M_DB_ERRORS, "connect", NULL, NULL);
            break;
        }
        struct cv_chain_plan plan;
        memset(&plan, 0, sizeof(plan));
        if (nsealed) {
            r = cv_chain_plan_make(c, tx, sealed, nsealed, durable, if_changed, &plan);
            if (cv_failed(r)) {
                cv_chain_forget(c);
                cv_chain_plan_free(&plan);
                break;
            }
        }
        size_t total = 0;
        if (tx->scope != CV_SCOPE_NONE) {
            bind_scope(&scope, tx);
            all[total++] = &scope;
        }
        if (if_changed) {
            cv_q_init(&mark, &mark_sql);
            all[total++] = &mark;
        }
        for (size_t i = 0; i < n; i++) all[total++] = &qs[i];
        total += cv_chain_plan_statements(&plan, all + total);
        struct run run;
        enum outcome o = run_once(c, all, total, &run);
        if (tx->scope != CV_SCOPE_NONE) cv_q_clear(&scope, 1);
        if (if_changed) cv_q_clear(&mark, 1);
        if (o != RUN_LOST) cv_store_breaker_ok(st);
        if (o == RUN_OK) {
            cv_chain_plan_applied(c, &plan);
            cv_chain_plan_free(&plan);
            log_ok();
            break;
        }
        cv_chain_forget(c);
        cv_chain_plan_free(&plan);
        cv_q_clear(qs, n);
        if (o == RUN_SQL_ERROR) {
            r = sql_error(st, tx, &run);
            PQclear(run.error);
            break;
        }
        /* the server named the failing statement: the implicit transaction
         * was rolled back, so running it again cannot apply it twice */
        int rolled_back = run.error && PQresultErrorField(run.error, PG_DIAG_SQLSTATE) != NULL;
        /* not after the deadline: a frozen server would cost a connect
         * timeout more */
        int retry = attempt == 0 && !c->timed_out && (!run.all_sent || rolled_back || (tx->flags & CV_TX_READ_ONLY));
        log_lost(c, &run);
        PQclear(run.error);
        cv_conn_reset(c);
        if (!retry) {
            cv_store_breaker_failed(st);
            r = cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
            break;
        }
    }
    return r;
}

cv_result cv_store_tx(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n)
{
    CV_ENSURE_REF(st);
    CV_ENSURE(n <= CV_TX_MAX_STATEMENTS && (n >= 1 || tx->nevents >= 1), CV_ERR_INTERNAL, "bad statement count");
    CV_GUARD(check_tx(tx));
    CV_GUARD(check_statements(qs, n));
    struct cv_sealed_event sealed[CV_TX_MAX_EVENTS];
    for (size_t i = 0; i < tx->nevents; i++) {
        cv_result sr = cv_store_seal_event(st, &tx->events[i], tx->events[i].target, &sealed[i]);
        if (cv_failed(sr)) {
            cv_store_sealed_free(sealed, i + 1);
            return sr;
        }
    }
    cv_result r = tx_run(st, tx, qs, n, sealed, tx->nevents);
    cv_store_sealed_free(sealed, tx->nevents);
    return r;
}

cv_result cv_store_tx_sealed(struct cv_store *st, const struct cv_tx *tx, struct cv_q *qs, size_t n,
                             struct cv_sealed_event *sealed, size_t nsealed)
{
    CV_ENSURE_REF(st);
    CV_ENSURE(tx && tx->nevents == 0 && nsealed >= 1 && nsealed <= CV_AUDIT_BATCH_MAX && n <= CV_TX_MAX_STATEMENTS,
              CV_ERR_INTERNAL, "bad audit batch");
    CV_GUARD(check_tx(tx));
    CV_GUARD(check_statements(qs, n));
    for (size_t i = 0; i < nsealed; i++) CV_GUARD(check_event_scope(tx, &sealed[i].ev));
    return tx_run(st, tx, qs, n, sealed, nsealed);
}

/* ---- several round trips ---- */

static void tx_close(struct cv_tx_open *o, int broken)
{
    if (!o->open) return;
    o->open = 0;
    /* heads moved inside the transaction are not the database's any more */
    if (o->c->pg == o->pg) cv_chain_forget(o->c);
    if (broken || o->c->pg != o->pg) {
        if (o->c->pg == o->pg) cv_conn_reset(o->c);
        return;
    }
    /* within the deadline too: a frozen server must not hold the abort */
    int ok = PQsendQuery(o->pg, "ROLLBACK") && cv_conn_wait_result(o->c, cv_store_now_ms() + o->st->deadline_ms);
    PGresult *res = ok ? PQgetResult(o->pg) : NULL;
    ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok && cv_conn_wait_result(o->c, cv_store_now_ms() + o->st->deadline_ms)) {
        res = PQgetResult(o->pg);
        if (res) ok = 0;
        PQclear(res);
    }
    if (!ok || PQtransactionStatus(o->pg) != PQTRANS_IDLE) cv_conn_reset(o->c);
}

void cv_tx_abort(struct cv_tx_open *o)
{
    if (o) tx_close(o, 0);
}

/* One batch of an open transaction; on failure the transaction is closed. */
static cv_result tx_batch(struct cv_tx_open *o, struct cv_q *all[], size_t n, const struct cv_tx *msgs)
{
    CV_ENSURE(o->open, CV_ERR_INTERNAL, "statement %s outside a transaction", cv_sql_name(all[0]->sql));
    if (o->c->pg != o->pg) {
        /* another store call on this thread replaced the connection: the
         * transaction, its locks and its writes are gone */
        o->open = 0;
        CV_BAIL(CV_ERR_INTERNAL, "the transaction of %s was lost", cv_sql_name(all[0]->sql));
    }
    struct run run;
    enum outcome out = run_once(o->c, all, n, &run);
    if (out != RUN_LOST) cv_store_breaker_ok(o->st);
    else cv_store_breaker_failed(o->st);
    if (out == RUN_OK) {
        log_ok();
        return CV_OK;
    }
    for (size_t i = 0; i < n; i++) cv_q_clear(all[i], 1);
    cv_result r;
    if (out == RUN_SQL_ERROR) {
        r = sql_error(o->st, msgs ? msgs : o->tx, &run);
        tx_close(o, 0);
    } else {
        log_lost(o->c, &run);
        tx_close(o, 1);
        r = cv_fail(CV_ERR_UNAVAILABLE, "database unavailable");
    }
    PQclear(run.error);
    return r;
}

cv_result cv_tx_begin(struct cv_store *st, const struct cv_tx *tx, struct cv_tx_open *o)
{
    memset(o, 0, sizeof(*o));
    CV_ENSURE_REF(st);
    CV_GUARD(check_tx(tx));
    CV_ENSURE(tx->scope != CV_SCOPE_NONE, CV_ERR_INTERNAL, "a transaction needs a scope");
    CV_ENSURE(!(tx->flags & CV_TX_EVENTS_IF_CHANGED), CV_ERR_INTERNAL, "conditional events need one round trip");
    o->st = st;
    o->tx = tx;
    CV_GUARD(cv_store_breaker_admit(st));
    cv_result got = cv_conn_get(st, &o->c);
    if (cv_failed(got)) {
        cv_metric_inc_l(st->metrics, CV_M_DB_ERRORS, "connect", NULL, NULL);
        return got;
    }
    o->pg = o->c->pg;
    o->open = 1;
    struct cv_q begin, scope;
    cv_q_init(&begin, &begin_sql);
    bind_scope(&scope, tx);
    struct cv_q *all[] = {&begin, &scope};
    cv_result r = tx_batch(o, all, 2, NULL);
    cv_q_clear(&begin, 1);
    cv_q_clear(&scope, 1);
    return r;
}

cv_result cv_tx_exec(struct cv_tx_open *o, struct cv_q *q, const struct cv_tx *msgs)
{
    CV_GUARD(check_statements(q, 1));
    struct cv_q *all[] = {q};
    return tx_batch(o, all, 1, msgs);
}

cv_result cv_tx_exec_row(struct cv_tx_open *o, struct cv_q *q, const struct cv_tx *msgs, int ncols)
{
    CV_GUARD(cv_tx_exec(o, q, msgs));
    cv_result r = cv_pq_expect(q->res, ncols);
    if (cv_ok(r) && PQntuples(q->res) != 1) r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
    if (cv_failed(r)) {
        cv_q_clear(q, 1);
        tx_close(o, 0);
    }
    return r;
}

cv_result cv_tx_audit(struct cv_tx_open *o, const struct cv_audit_event *ev, uint32_t version)
{
    cv_result r = cv_store_check_event(ev);
    if (cv_ok(r)) r = check_event_scope(o->tx, ev);
    char target[CV_AUDIT_TARGET_MAX_BYTES + 1];
    if (cv_ok(r) && version) {
        int len = snprintf(target, sizeof(target), "%s%u", ev->target ? ev->target : "", version);
        if (len < 0 || (size_t)len >= sizeof(target)) r = cv_fail(CV_ERR_INPUT, "audit target too long");
    }
    if (cv_failed(r)) {
        tx_close(o, 0);
        return r;
    }
    struct cv_sealed_event se;
    r = cv_store_seal_event(o->st, ev, version ? target : ev->target, &se);
    struct cv_chain_plan plan;
    memset(&plan, 0, sizeof(plan));
    if (cv_ok(r)) r = cv_chain_plan_make(o->c, o->tx, &se, 1, 1, 0, &plan);
    if (cv_ok(r)) {
        struct cv_q *all[1];
        r = tx_batch(o, all, cv_chain_plan_statements(&plan, all), NULL);
    }
    /* applied at once: a later failure closes the transaction, which forgets the heads */
    if (cv_ok(r)) cv_chain_plan_applied(o->c, &plan);
    else tx_close(o, 0);
    cv_chain_plan_free(&plan);
    cv_store_sealed_free(&se, 1);
    return r;
}

cv_result cv_tx_key_event(struct cv_tx_open *o, const char *kind, const char *tenant_id, uint32_t version)
{
    struct cv_q q;
    cv_q_init(&q, &key_event_sql);
    cv_q_text(&q, kind);
    cv_q_text_opt(&q, tenant_id);
    if (version) cv_q_i64(&q, version);
    else cv_q_text(&q, NULL);
    cv_result r = cv_tx_exec(o, &q, NULL);
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_tx_commit(struct cv_tx_open *o)
{
    const struct cv_tx *tx = o->tx;
    struct cv_q commit;
    struct cv_sealed_event sealed[CV_TX_MAX_EVENTS];
    CV_ENSURE(o->open, CV_ERR_INTERNAL, "commit outside a transaction");
    for (size_t i = 0; i < tx->nevents; i++) {
        cv_result sr = cv_store_seal_event(o->st, &tx->events[i], tx->events[i].target, &sealed[i]);
        if (cv_failed(sr)) {
            cv_store_sealed_free(sealed, i + 1);
            tx_close(o, 0);
            return sr;
        }
    }
    struct cv_chain_plan plan;
    memset(&plan, 0, sizeof(plan));
    cv_result r = tx->nevents ? cv_chain_plan_make(o->c, tx, sealed, tx->nevents, 1, 0, &plan) : CV_OK;
    if (cv_ok(r)) {
        struct cv_q *all[CV_TX_MAX_EVENTS + 1];
        size_t n = cv_chain_plan_statements(&plan, all);
        cv_q_init(&commit, &commit_sql);
        all[n++] = &commit;
        r = tx_batch(o, all, n, NULL);
        cv_q_clear(&commit, 1);
        if (cv_ok(r)) {
            o->open = 0;
            cv_chain_plan_applied(o->c, &plan);
        }
    } else {
        tx_close(o, 0);
    }
    cv_chain_plan_free(&plan);
    cv_store_sealed_free(sealed, tx->nevents);
    return r;
}
