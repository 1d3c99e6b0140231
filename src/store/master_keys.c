/* master_keys: the platform's master key versions and their canaries
 * (platform scope; the table has no tenant). Stores wrapped bytes and
 * bindings only; a master key itself never leaves the token. */
#include <string.h>

#include "store/pq.h"

#define MASTER_COLS                                                                                       \
    "m.version, m.state, " CV_SQL_MS("m.created_at") ", encode(m.canary_wrapped, 'hex'), "               \
    "encode(m.canary_binding, 'hex'), m.canary_tenant_id, m.canary_version, "                             \
    "(SELECT count(*) FROM tenant_keys k WHERE k.master_version = m.version)"
#define MASTER_NCOLS 8

CV_SQL_DEF(insert_sql, MASTER_KEY_INSERT,
    "INSERT INTO master_keys (version, state, canary_wrapped, canary_binding, canary_tenant_id, canary_version) "
    "VALUES ($1::int4, $2::text, $3::bytea, $4::bytea, $5::text, $6::int4)",
    6);

CV_SQL_DEF(list_sql, MASTER_KEY_LIST,
                                       "SELECT " MASTER_COLS " FROM master_keys m ORDER BY m.version", 0);

CV_SQL_DEF(current_sql, MASTER_KEY_CURRENT,
    "SELECT " MASTER_COLS " FROM master_keys m WHERE m.state = 'active' ORDER BY m.version DESC LIMIT 1", 0);

static const struct cv_tx platform_read = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};

static cv_result master_row(const PGresult *res, int i, struct cv_master_key_row *row)
{
    memset(row, 0, sizeof(*row));
    size_t blen;
    CV_GUARD(cv_pq_u32(res, i, 0, &row->version));
    CV_GUARD(cv_pq_text(res, i, 1, row->state, sizeof(row->state)));
    CV_GUARD(cv_pq_i64(res, i, 2, &row->created_at_ms));
    CV_GUARD(cv_pq_hex(res, i, 3, row->canary.wrapped, 1, CV_WRAPPED_KEY_MAX_BYTES, &row->canary.wrapped_len));
    CV_GUARD(cv_pq_hex(res, i, 4, row->canary.binding, CV_KEY_BINDING_BYTES, CV_KEY_BINDING_BYTES, &blen));
    CV_GUARD(cv_pq_text(res, i, 5, row->canary.tenant_id, sizeof(row->canary.tenant_id)));
    CV_GUARD(cv_pq_u32(res, i, 6, &row->canary.version));
    row->canary.master_version = row->version;
    int64_t count;
    CV_GUARD(cv_pq_i64(res, i, 7, &count));
    row->tenant_keys = (uint64_t)count;
    return CV_OK;
}

cv_result cv_store_master_key_insert(struct cv_store *st, const struct cv_master_key_row *row)
{
    CV_ENSURE_REF(row);
    CV_ENSURE(row->version >= 1 && row->version <= INT32_MAX, CV_ERR_INPUT, "master key version out of range");
    const char *state = row->state[0] ? row->state : "active";
    CV_ENSURE(cv_store_fixed_ok(row->state, sizeof(row->state)) && cv_store_master_state_ok(state), CV_ERR_INPUT,
              "master key state must be active or retired");
    CV_GUARD(cv_store_check_key_ref("canary", &row->canary));
    CV_ENSURE(row->canary.master_version == row->version, CV_ERR_INPUT,
              "the canary must be wrapped under the master key it proves");

    struct cv_q q;
    cv_q_init(&q, &insert_sql);
    cv_q_i64(&q, row->version);
    cv_q_text(&q, state);
    cv_q_bytes(&q, row->canary.wrapped, row->canary.wrapped_len);
    cv_q_bytes(&q, row->canary.binding, CV_KEY_BINDING_BYTES);
    cv_q_text(&q, row->canary.tenant_id);
    cv_q_i64(&q, row->canary.version);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .conflict = "master key version exists"};
    cv_result r = cv_store_tx(st, &tx, &q, 1);
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_master_key_list(struct cv_store *st, cv_store_master_key_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, MASTER_NCOLS));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_master_key_row row;
        CV_GUARD_OUT(r, master_row(q.res, i, &row));
        if (cb(arg, &row)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_master_key_current(struct cv_store *st, struct cv_master_key_row *row)
{
    CV_ENSURE_REF(row);
    struct cv_q q;
    cv_q_init(&q, &current_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, MASTER_NCOLS));
    if (PQntuples(q.res) == 0) {
        r = cv_fail(CV_ERR_NOT_FOUND, "no active master key is registered");
        goto out;
    }
    CV_GUARD_OUT(r, master_row(q.res, 0, row));
out:
    cv_q_clear(&q, 1);
    return r;
}
