/* Reading the audit trail: the filtered, paged list behind GET /api/audit
 * (in the caller's tenant scope, or platform scope for admins), one chain in
 * sequence order for verify and export, and the chains' heads. Reads only;
 * every value is parsed strictly and a row that does not fit is an error. */
#include <stdlib.h>
#include <string.h>

#include "credvault/store_audit.h"
#include "store/pq.h"

/* clang-format off */
#define EVENT_COLS                                                                                            \
    "e.id, e.chain, e.seq, (extract(epoch FROM e.at) * 1000000)::int8, coalesce(e.tenant_id, ''), e.actor, "  \
    "e.role, e.action, coalesce(e.target, ''), e.outcome, coalesce(e.request_id, ''), e.detail_text, "         \
    "encode(e.prev_hash, 'hex'), encode(e.hash, 'hex'), encode(e.mac, 'hex')"
#define EVENT_NCOLS 15

CV_SQL_DEF(list_sql, AUDIT_LIST,
    "SELECT " EVENT_COLS " FROM audit_events e"
    " WHERE ($1::text IS NULL OR e.tenant_id = $1::text) AND (NOT $2::bool OR e.tenant_id IS NULL)"
    " AND ($3::int8 IS NULL OR e.at >= " CV_SQL_TS("$3") ")"
    " AND ($4::int8 IS NULL OR e.at < " CV_SQL_TS("$4") ")"
    " AND ($5::text IS NULL OR e.action = $5::text) AND ($6::text IS NULL OR e.actor = $6::text)"
    " AND ($7::int8 IS NULL OR e.id < $7::int8)"
    " ORDER BY e.id DESC LIMIT $8::int8",
    8);

CV_SQL_DEF(chain_sql, AUDIT_CHAIN,
    "SELECT " EVENT_COLS " FROM audit_events e WHERE e.chain = $1::text AND e.seq > $2::int8"
    " ORDER BY e.seq LIMIT $3::int8",
    3);

/* $2: only the heads no checkpoint has signed yet at their current seq */
CV_SQL_DEF(heads_sql, AUDIT_HEADS,
    "SELECT h.chain, coalesce(h.tenant_id, ''), h.seq, encode(h.hash, 'hex') FROM audit_heads h"
    " WHERE ($1::text IS NULL OR h.chain = $1::text OR split_part(h.chain, ':', 1) = $1::text) AND h.seq > 0 AND (NOT $2::bool OR NOT EXISTS"
    " (SELECT 1 FROM audit_checkpoint_heads c WHERE c.chain = h.chain AND c.seq = h.seq)) ORDER BY h.chain",
    2);

CV_SQL_DEF(ready_sql, AUDIT_READY,
    "SELECT current_setting('track_counts')::bool",
    0);
/* clang-format on */

static int chain_ok(const char *s)
{
    return cv_store_chain_valid(s);
}

static cv_result event_row(const PGresult *res, int i, struct cv_audit_row *row)
{
    memset(row, 0, sizeof(*row));
    size_t n;
    cv_result r;
    CV_GUARD_OUT(r, cv_pq_i64(res, i, 0, &row->id));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 1, row->chain, sizeof(row->chain)));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, 2, &row->seq));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, 3, &row->at_us));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 4, row->tenant_id, sizeof(row->tenant_id)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 5, row->actor, sizeof(row->actor)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 6, row->role, sizeof(row->role)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 7, row->action, sizeof(row->action)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 8, row->target, sizeof(row->target)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 9, row->outcome, sizeof(row->outcome)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 10, row->request_id, sizeof(row->request_id)));
    CV_GUARD_OUT(r, cv_pq_dup(res, i, 11, CV_AUDIT_DETAIL_MAX_BYTES, &row->detail));
    CV_GUARD_OUT(r, cv_pq_hex(res, i, 12, row->prev, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
    CV_GUARD_OUT(r, cv_pq_hex(res, i, 13, row->hash, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
    if (!cv_pq_null(res, i, 14)) {
        CV_GUARD_OUT(r, cv_pq_hex(res, i, 14, row->mac, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
        row->has_mac = 1;
    }
out:
    if (cv_failed(r)) {
        free(row->detail);
        row->detail = NULL;
    }
    return r;
}

/* Hands every row to cb (which may stop early); counts the rows seen. */
static cv_result each_event(const PGresult *res, cv_store_audit_cb cb, void *arg, unsigned *rows)
{
    CV_GUARD(cv_pq_expect(res, EVENT_NCOLS));
    for (int i = 0; i < PQntuples(res); i++) {
        struct cv_audit_row row;
        CV_GUARD(event_row(res, i, &row));
        if (rows) (*rows)++;
        int stop = cb(arg, &row);
        free(row.detail);
        if (stop) break;
    }
    return CV_OK;
}

cv_result cv_store_audit_list(struct cv_store *st, const char *tenant_id, const struct cv_audit_filter *f,
                              cv_store_audit_cb cb, void *arg)
{
    CV_ENSURE_REF(f);
    CV_ENSURE_REF(cb);
    CV_ENSURE(tenant_id == NULL || cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(f->limit >= 1 && f->limit <= CV_AUDIT_PAGE_MAX, CV_ERR_INPUT, "limit must be 1 to %d", CV_AUDIT_PAGE_MAX);
    CV_ENSURE(f->from_ms >= 0 && f->to_ms >= 0 && f->before_id >= 0, CV_ERR_INPUT, "negative filter");
    if (f->action) CV_GUARD(cv_store_check_len("action", f->action, 1, CV_AUDIT_ACTION_MAX_BYTES));
    if (f->actor) CV_GUARD(cv_store_check_len("actor", f->actor, 1, CV_STORE_PRINCIPAL_MAX_BYTES));
    /* a tenant's caller sees only its tenant, whatever the filter says */
    const char *only = tenant_id ? tenant_id : f->tenant_id;
    CV_ENSURE(only == NULL || cv_tenant_id_valid(only), CV_ERR_INPUT, "invalid tenant id");
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_q_text(&q, only);
    cv_q_text(&q, !tenant_id && f->platform_only ? "t" : "f");
    cv_q_ms_opt(&q, f->from_ms);
    cv_q_ms_opt(&q, f->to_ms);
    cv_q_text(&q, f->action);
    cv_q_text(&q, f->actor);
    if (f->before_id)
        cv_q_i64(&q, f->before_id);
    else
        cv_q_text(&q, NULL);
    cv_q_i64(&q, f->limit);
    const struct cv_tx tx = {
        .scope = tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, each_event(q.res, cb, arg, NULL));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_chain_read(struct cv_store *st, const char *chain, int64_t after_seq, unsigned limit,
                                    cv_store_audit_cb cb, void *arg, unsigned *rows)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(chain_ok(chain), CV_ERR_INPUT, "invalid audit chain");
    CV_ENSURE(after_seq >= 0 && limit >= 1 && limit <= CV_AUDIT_PAGE_MAX, CV_ERR_INPUT, "bad chain page");
    if (rows) *rows = 0;
    struct cv_q q;
    cv_q_init(&q, &chain_sql);
    cv_q_text(&q, chain);
    cv_q_i64(&q, after_seq);
    cv_q_i64(&q, limit);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, each_event(q.res, cb, arg, rows));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_heads(struct cv_store *st, const char *chain, int unsealed_only, cv_store_audit_head_cb cb,
                               void *arg)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(chain == NULL || chain_ok(chain), CV_ERR_INPUT, "invalid audit chain");
    struct cv_q q;
    cv_q_init(&q, &heads_sql);
    cv_q_text(&q, chain);
    cv_q_text(&q, unsealed_only ? "t" : "f");
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 4));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_audit_head h;
        size_t n;
        memset(&h, 0, sizeof(h));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 0, h.chain, sizeof(h.chain)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 1, h.tenant_id, sizeof(h.tenant_id)));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 2, &h.seq));
        CV_GUARD_OUT(r, cv_pq_hex(q.res, i, 3, h.hash, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
        if (cb(arg, &h)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_check_ready(struct cv_store *st)
{
    struct cv_q q;
    cv_q_init(&q, &ready_sql);
    const struct cv_tx tx = {.scope = CV_SCOPE_NONE, .flags = CV_TX_READ_ONLY};
    cv_result r;
    int on = 0;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    if (PQntuples(q.res) == 1) CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 0, &on));
    if (!on)
        r = cv_fail(CV_ERR_CONFLICT, "the database has track_counts off: audit events of changes need it (and "
                                     "autovacuum too); set track_counts = on");
out:
    cv_q_clear(&q, 1);
    return r;
}
