/* tenant_keys: reading a tenant's wrapped keys, in that tenant's scope.
 * Wrapped bytes and bindings are checked for exact lengths on the way out;
 * a destroyed version has none. Never holds an unwrapped key. */
#include <string.h>

#include "store/pq.h"

/* encryptions: the base count plus the write shards (migration 0002) */
#define KEY_COLS                                                                                          \
    CV_STORE_KEY_REF_COLS ", " CV_SQL_MS("k.created_at") ", k.encryptions + coalesce((SELECT sum(u.encryptions) "        \
    "FROM tenant_key_usage u WHERE u.tenant_id = k.tenant_id AND u.version = k.version), 0)::int8"
#define KEY_NCOLS 8

CV_SQL_DEF(get_sql, TENANT_KEY_GET,
    "SELECT " KEY_COLS " FROM tenant_keys k WHERE k.tenant_id = $1::text AND k.version = $2::int4", 2);

CV_SQL_DEF(current_sql, TENANT_KEY_CURRENT,
    "SELECT " KEY_COLS " FROM tenant_keys k WHERE k.tenant_id = $1::text AND k.state = 'active' "
    "ORDER BY k.version DESC LIMIT 1",
    1);

CV_SQL_DEF(list_sql, TENANT_KEY_LIST,
                                       "SELECT " KEY_COLS " FROM tenant_keys k WHERE k.tenant_id = $1::text ORDER BY k.version",
                                       1);

/* The first CV_STORE_KEY_REF_NCOLS columns from c: what a decrypt needs. */
cv_result cv_store_key_ref_read(const PGresult *res, int i, int c, struct cv_tenant_key_row *row)
{
    memset(row, 0, sizeof(*row));
    CV_GUARD(cv_pq_text(res, i, c + 0, row->ref.tenant_id, sizeof(row->ref.tenant_id)));
    CV_GUARD(cv_pq_u32(res, i, c + 1, &row->ref.version));
    CV_GUARD(cv_pq_u32(res, i, c + 2, &row->ref.master_version));
    CV_GUARD(cv_pq_text(res, i, c + 5, row->state, sizeof(row->state)));
    size_t min = strcmp(row->state, "destroyed") == 0 ? 0 : 1;
    size_t blen;
    CV_GUARD(cv_pq_hex(res, i, c + 3, row->ref.wrapped, min, CV_WRAPPED_KEY_MAX_BYTES, &row->ref.wrapped_len));
    CV_GUARD(cv_pq_hex(res, i, c + 4, row->ref.binding, min ? CV_KEY_BINDING_BYTES : 0, CV_KEY_BINDING_BYTES, &blen));
    CV_ENSURE(blen == CV_KEY_BINDING_BYTES || blen == 0, CV_ERR_INTERNAL, "database returned a short binding");
    return CV_OK;
}

static cv_result key_row(const PGresult *res, int i, struct cv_tenant_key_row *row)
{
    CV_GUARD(cv_store_key_ref_read(res, i, 0, row));
    CV_GUARD(cv_pq_i64(res, i, 6, &row->created_at_ms));
    int64_t n;
    CV_GUARD(cv_pq_i64(res, i, 7, &n));
    row->encryptions = (uint64_t)n;
    return CV_OK;
}

static cv_result fetch(struct cv_store *st, const struct cv_sql *sql, const char *tenant_id, int64_t version,
                       struct cv_q *q)
{
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    cv_q_init(q, sql);
    cv_q_text(q, tenant_id);
    if (version >= 0) cv_q_i64(q, version);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    CV_GUARD(cv_store_tx(st, &tx, q, 1));
    return cv_pq_expect(q->res, KEY_NCOLS);
}

static cv_result fetch_one(struct cv_store *st, const struct cv_sql *sql, const char *tenant_id, int64_t version,
                           struct cv_tenant_key_row *row)
{
    CV_ENSURE_REF(row);
    struct cv_q q;
    cv_q_init(&q, sql);
    cv_result r;
    CV_GUARD_OUT(r, fetch(st, sql, tenant_id, version, &q));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "tenant key not found");
        goto out;
    }
    CV_GUARD_OUT(r, key_row(q.res, 0, row));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_tenant_key_get(struct cv_store *st, const char *tenant_id, uint32_t version,
                                  struct cv_tenant_key_row *row)
{
    CV_ENSURE(version >= 1 && version <= INT32_MAX, CV_ERR_NOT_FOUND, "tenant key not found");
    return fetch_one(st, &get_sql, tenant_id, version, row);
}

cv_result cv_store_tenant_key_current(struct cv_store *st, const char *tenant_id, struct cv_tenant_key_row *row)
{
    return fetch_one(st, &current_sql, tenant_id, -1, row);
}

cv_result cv_store_tenant_key_list(struct cv_store *st, const char *tenant_id, cv_store_tenant_key_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_result r;
    CV_GUARD_OUT(r, fetch(st, &list_sql, tenant_id, -1, &q));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_tenant_key_row row;
        CV_GUARD_OUT(r, key_row(q.res, i, &row));
        if (cb(arg, &row)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}
