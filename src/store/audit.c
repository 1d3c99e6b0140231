/* Appending audit events: alone (its own transaction, durable or not), or
 * attached to the write transaction of the change it records, through
 * credvault_audit_append() (migration 0010), which chains the event under its
 * chain's head lock. The service role cannot insert into audit_events any
 * other way. An event never carries a secret, so nothing here is wiped. */
#include <stdlib.h>
#include <string.h>

#include "credvault/store_audit.h"
#include "store/audit_tx.h"

#define APPEND_SQL                                                                                                     \
    "SELECT event_id, event_chain, event_seq, encode(event_hash, 'hex') FROM credvault_audit_append("                  \
    "$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::bool, $10::bool)"

static const struct cv_sql append_sql = {CV_SQL_AUDIT_INSERT, "audit_append", APPEND_SQL, 10};

/* Before an attached event's change: how many rows this backend's
 * transaction statistics say were changed so far. Those counts only grow
 * inside a transaction (they are flushed between transactions), so the
 * difference that credvault_audit_append() sees is exactly the change's. */
static const struct cv_sql mark_sql = {
    CV_SQL_AUDIT_ID(12), "audit_mark",
    "SELECT set_config('credvault.audit_base', (SELECT coalesce(sum(t.n_tup_ins + t.n_tup_upd + t.n_tup_del), 0)"
    " FROM pg_catalog.pg_stat_xact_user_tables t)::text, true)",
    0};

static cv_result check_event(const struct cv_audit_event *ev)
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
    return CV_OK;
}

/* after_change: the event rides in the change's transaction, and is written
 * only if that transaction changed a row (migration 0010 says how). */
static void bind_event(struct cv_q *q, const struct cv_audit_event *ev, int durable, int after_change)
{
    cv_q_init(q, &append_sql);
    cv_q_text(q, ev->tenant_id);
    cv_q_text(q, ev->actor);
    cv_q_text(q, ev->role ? ev->role : "");
    cv_q_text(q, ev->action);
    cv_q_text(q, ev->target);
    cv_q_text(q, ev->outcome);
    cv_q_text_opt(q, ev->request_id);
    cv_q_text(q, ev->detail);
    cv_q_text(q, durable ? "t" : "f");
    cv_q_text(q, after_change ? "t" : "f");
}

static cv_result read_place(const PGresult *res, struct cv_audit_place *place)
{
    CV_GUARD(cv_pq_expect(res, 4));
    /* no row: an attached event whose transaction changed nothing */
    CV_ENSURE(PQntuples(res) == 1, CV_ERR_NOT_FOUND, "the audit append wrote no event");
    if (!place) return CV_OK;
    size_t n = 0;
    CV_GUARD(cv_pq_i64(res, 0, 0, &place->id));
    CV_GUARD(cv_pq_text(res, 0, 1, place->chain, sizeof(place->chain)));
    CV_GUARD(cv_pq_i64(res, 0, 2, &place->seq));
    CV_GUARD(cv_pq_hex(res, 0, 3, place->hash, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
    return CV_OK;
}

cv_result cv_store_audit_append(struct cv_store *st, const struct cv_audit_event *ev, int durable,
                                struct cv_audit_place *place)
{
    CV_GUARD(check_event(ev));
    struct cv_q q;
    bind_event(&q, ev, durable, 0);
    const struct cv_tx tx = {.scope = ev->tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM, .tenant_id = ev->tenant_id};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, read_place(q.res, place));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_insert(struct cv_store *st, const struct cv_audit_event *ev)
{
    return cv_store_audit_append(st, ev, 1, NULL);
}

/* ---- attached events ---- */

/* This thread's staged event: copies of the strings the statement points at. */
static _Thread_local struct {
    int active;
    int written;
    const struct cv_store *st;
    int has_tenant;
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    char actor[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    char role[CV_STORE_ROLE_MAX_BYTES + 1];
    char action[CV_AUDIT_ACTION_MAX_BYTES + 1];
    int has_target;
    char target[CV_AUDIT_TARGET_MAX_BYTES + 1];
    char outcome[CV_AUDIT_OUTCOME_MAX_BYTES + 1];
    char request_id[CV_AUDIT_REQUEST_ID_MAX_BYTES + 1];
    char *detail;
    struct cv_q q;
    struct cv_q mark;
    struct cv_audit_place place;
} staged;

static void copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0; /* lengths were checked against cap */
    if (n >= cap) n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

cv_result cv_store_audit_attach(struct cv_store *st, const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(st);
    CV_GUARD(check_event(ev));
    CV_ENSURE(!staged.active, CV_ERR_CONFLICT, "an audit event is attached already on this thread");
    char *detail = NULL;
    if (ev->detail) {
        detail = strdup(ev->detail);
        CV_ENSURE(detail != NULL, CV_ERR_MEMORY, "out of memory");
    }
    memset(&staged.place, 0, sizeof(staged.place));
    staged.st = st;
    staged.written = 0;
    staged.has_tenant = ev->tenant_id != NULL;
    copy(staged.tenant, sizeof(staged.tenant), ev->tenant_id);
    copy(staged.actor, sizeof(staged.actor), ev->actor);
    copy(staged.role, sizeof(staged.role), ev->role);
    copy(staged.action, sizeof(staged.action), ev->action);
    staged.has_target = ev->target != NULL;
    copy(staged.target, sizeof(staged.target), ev->target);
    copy(staged.outcome, sizeof(staged.outcome), ev->outcome);
    copy(staged.request_id, sizeof(staged.request_id), ev->request_id);
    staged.detail = detail;
    const struct cv_audit_event copyev = {
        .tenant_id = staged.has_tenant ? staged.tenant : NULL,
        .actor = staged.actor,
        .role = staged.role,
        .action = staged.action,
        .target = staged.has_target ? staged.target : NULL,
        .outcome = staged.outcome,
        .request_id = staged.request_id,
        .detail = staged.detail,
    };
    /* the change's own transaction commits synchronously: so does its event */
    bind_event(&staged.q, &copyev, 1, 1);
    cv_q_init(&staged.mark, &mark_sql);
    staged.active = 1;
    return CV_OK;
}

int cv_store_audit_detach(struct cv_store *st, struct cv_audit_place *place)
{
    (void)st;
    if (!staged.active) return 0;
    int written = staged.written;
    if (written && place) *place = staged.place;
    cv_q_clear(&staged.q, 1);
    cv_q_clear(&staged.mark, 1);
    free(staged.detail);
    memset(&staged, 0, sizeof(staged));
    return written;
}

struct cv_q *cv_store_audit_staged(struct cv_store *st, const struct cv_tx *tx, struct cv_q **mark)
{
    *mark = NULL;
    if (!staged.active || staged.written || staged.st != st) return NULL;
    if ((tx->flags & CV_TX_READ_ONLY) || tx->scope == CV_SCOPE_NONE) return NULL;
    /* a platform event needs platform scope; a tenant's event fits its own
     * tenant's scope or platform scope (row-level security agrees) */
    if (tx->scope == CV_SCOPE_TENANT &&
        (!staged.has_tenant || !tx->tenant_id || strcmp(tx->tenant_id, staged.tenant) != 0))
        return NULL;
    *mark = &staged.mark;
    return &staged.q;
}

void cv_store_audit_staged_done(struct cv_q *q, struct cv_q *mark, int committed)
{
    if (!q) return;
    /* no row back: the change changed nothing, and no event was written */
    if (committed && q == &staged.q && q->res && PQntuples(q->res) == 1 && cv_ok(read_place(q->res, &staged.place)))
        staged.written = 1;
    cv_q_clear(q, 1);
    if (mark) cv_q_clear(mark, 1);
}
