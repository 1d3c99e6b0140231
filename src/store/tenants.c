/* tenants: create (with the first key, in one transaction), get and list.
 * Creating and listing are platform-scope operations; get runs in the
 * tenant's own scope, so row-level security alone decides visibility.
 * A tenant never exists without its first key. */
#include <string.h>

#include "store/pq.h"

#define TENANT_COLS                                                                                       \
    "t.id, t.name, " CV_SQL_MS("t.created_at") ", "                                                      \
    "coalesce((SELECT max(k.version) FROM tenant_keys k WHERE k.tenant_id = t.id AND k.state = 'active'), 0), " \
    "t.min_decrypt_version"
#define TENANT_NCOLS 5

CV_SQL_DEF(insert_sql, TENANT_INSERT,
    "INSERT INTO tenants (id, name, created_by, min_decrypt_version) VALUES ($1::text, $2::text, $3::text, $4::int4)",
    4);

CV_SQL_DEF(key_insert_sql, TENANT_KEY_INSERT,
    "INSERT INTO tenant_keys (tenant_id, version, master_version, wrapped_key, binding, state) "
    "VALUES ($1::text, $2::int4, $3::int4, $4::bytea, $5::bytea, $6::text)",
    6);

CV_SQL_DEF(get_sql, TENANT_GET,
                                      "SELECT " TENANT_COLS " FROM tenants t WHERE t.id = $1::text", 1);

/* The total comes with the page (one row of NULLs when the page is empty). */
CV_SQL_DEF(list_sql, TENANT_LIST,
    "SELECT n.total, p.* FROM (SELECT count(*) AS total FROM tenants) n "
    "LEFT JOIN LATERAL (SELECT " TENANT_COLS " FROM tenants t ORDER BY t.id LIMIT $1::int8 OFFSET $2::int8) p "
    "ON true ORDER BY p.id",
    2);

static cv_result tenant_row(const PGresult *res, int i, int col, struct cv_tenant_row *row)
{
    memset(row, 0, sizeof(*row));
    CV_GUARD(cv_pq_text(res, i, col + 0, row->id, sizeof(row->id)));
    CV_GUARD(cv_pq_text(res, i, col + 1, row->name, sizeof(row->name)));
    CV_GUARD(cv_pq_i64(res, i, col + 2, &row->created_at_ms));
    CV_GUARD(cv_pq_u32(res, i, col + 3, &row->current_key_version));
    CV_GUARD(cv_pq_u32(res, i, col + 4, &row->min_decrypt_version));
    return CV_OK;
}

cv_result cv_store_tenant_create(struct cv_store *st, const struct cv_tenant_row *tenant,
                                 const struct cv_tenant_key_row *first_key, const char *created_by,
                                 const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(tenant);
    CV_ENSURE_REF(first_key);
    CV_ENSURE(cv_store_fixed_ok(tenant->id, sizeof(tenant->id)) && cv_tenant_id_valid(tenant->id), CV_ERR_INPUT,
              "invalid tenant id");
    CV_ENSURE(cv_store_fixed_ok(tenant->name, sizeof(tenant->name)), CV_ERR_INPUT, "tenant name is not terminated");
    CV_GUARD(cv_store_check_len("tenant name", tenant->name, 1, CV_STORE_NAME_MAX_BYTES));
    CV_GUARD(cv_store_check_len("created_by", created_by ? created_by : "", 0, CV_STORE_PRINCIPAL_MAX_BYTES));
    CV_ENSURE(tenant->min_decrypt_version <= INT32_MAX, CV_ERR_INPUT, "min_decrypt_version out of range");
    const struct cv_key_ref *k = &first_key->ref;
    CV_GUARD(cv_store_check_key_ref("tenant key", k));
    CV_ENSURE(strcmp(k->tenant_id, tenant->id) == 0 && k->version >= 1, CV_ERR_INPUT,
              "the first key must belong to the new tenant");
    const char *state = first_key->state[0] ? first_key->state : "active";
    CV_ENSURE(cv_store_fixed_ok(first_key->state, sizeof(first_key->state)) && cv_store_key_state_ok(state) &&
                  strcmp(state, "destroyed") != 0,
              CV_ERR_INPUT, "the first key must be active or retired");

    struct cv_q q[2];
    cv_q_init(&q[0], &insert_sql);
    cv_q_text(&q[0], tenant->id);
    cv_q_text(&q[0], tenant->name);
    cv_q_text(&q[0], created_by ? created_by : "");
    cv_q_i64(&q[0], tenant->min_decrypt_version ? tenant->min_decrypt_version : 1);
    cv_q_init(&q[1], &key_insert_sql);
    cv_q_text(&q[1], k->tenant_id);
    cv_q_i64(&q[1], k->version);
    cv_q_i64(&q[1], k->master_version);
    cv_q_bytes(&q[1], k->wrapped, k->wrapped_len);
    cv_q_bytes(&q[1], k->binding, CV_KEY_BINDING_BYTES);
    cv_q_text(&q[1], state);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0,
                             .conflict = "tenant already exists",
                             .fk = "master key version not found"};
    cv_result r = cv_store_tx(st, &tx, q, 2);
    cv_q_clear(q, 2);
    return r;
}

cv_result cv_store_tenant_get(struct cv_store *st, const char *tenant_id, struct cv_tenant_row *row)
{
    CV_ENSURE_REF(row);
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    struct cv_q q;
    cv_q_init(&q, &get_sql);
    cv_q_text(&q, tenant_id);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, TENANT_NCOLS));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
        goto out;
    }
    CV_GUARD_OUT(r, tenant_row(q.res, 0, 0, row));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_tenant_list(struct cv_store *st, unsigned limit, unsigned offset, cv_store_tenant_cb cb,
                               void *arg, uint64_t *total)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(limit <= CV_STORE_LIST_MAX && offset <= CV_STORE_OFFSET_MAX, CV_ERR_INPUT,
              "limit must be at most %d", CV_STORE_LIST_MAX);
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_q_i64(&q, limit);
    cv_q_i64(&q, offset);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1 + TENANT_NCOLS));
    if (PQntuples(q.res) < 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    int64_t n;
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &n));
    if (total) *total = (uint64_t)n;
    for (int i = 0; i < PQntuples(q.res) && !cv_pq_null(q.res, i, 1); i++) {
        struct cv_tenant_row row;
        CV_GUARD_OUT(r, tenant_row(q.res, i, 1, &row));
        if (cb(arg, &row)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}
