/* mcp_credentials: one MCP server's sealed credentials per row, always in
 * the tenant's own scope. Stores and returns ciphertext (encrypted_env) and
 * names only. Writes count one encryption on the key version in the same
 * statement, so the count can never miss a committed record. */
#include <stdlib.h>
#include <string.h>

#include "store/pq.h"

#define SERVER_COLS(env)                                                                                  \
    "id, tenant_id, server_id, template_id, server_name, " env ", configured_integrations::text, "      \
    "credential_names::text, key_version, revision, " CV_SQL_MS("created_at") ", "                       \
    CV_SQL_MS("last_updated") ", " CV_SQL_MS("expires_at") ", created_by, updated_by, encode(binding, 'hex')"
#define SERVER_NCOLS 16

/* One encryption on the written row's key version, in this backend's shard
 * of tenant_key_usage (migration 0002 says why it is sharded). */
#define COUNT_ONE(from)                                                                                   \
    " INSERT INTO tenant_key_usage AS u (tenant_id, version, shard, encryptions)"                        \
    " SELECT tenant_id, key_version, pg_backend_pid() % 16, 1 FROM " from                                \
    " ON CONFLICT (tenant_id, version, shard) DO UPDATE SET encryptions = u.encryptions + 1 RETURNING 1"

CV_SQL_DEF(insert_sql, SERVER_INSERT,
    "WITH ins AS ("
    " INSERT INTO mcp_credentials (id, tenant_id, server_id, template_id, server_name, encrypted_env,"
    "  configured_integrations, credential_names, key_version, expires_at, created_by, updated_by, binding)"
    " VALUES (coalesce($1::text, gen_random_uuid()::text), $2::text, $3::text, $4::text, $5::text, $6::text,"
    "  $7::jsonb, $8::jsonb, $9::int4, " CV_SQL_TS("$10") ", $11::text, $12::text, $13::bytea)"
    " RETURNING id, tenant_id, key_version, revision, created_at, last_updated),"
    " counted AS (" COUNT_ONE("ins") ")"
    " SELECT ins.id, ins.revision, " CV_SQL_MS("ins.created_at") ", " CV_SQL_MS("ins.last_updated")
    ", (SELECT count(*) FROM counted) FROM ins",
    13);

CV_SQL_DEF(get_sql, SERVER_GET,
    "SELECT " SERVER_COLS("CASE WHEN $3::bool THEN encrypted_env END")
    " FROM mcp_credentials WHERE tenant_id = $1::text AND server_id = $2::text",
    3);

/* The row, the tenant key its record names and the tenant scope in one
 * round trip: the masked read, validate and the workload fetch. The key's
 * columns are NULL when the version is missing (the row's record then
 * cannot open, which the caller reports). */
CV_SQL_DEF(get_keyed_sql, SERVER_GET_KEYED,
    "SELECT s.*, " CV_STORE_KEY_REF_COLS " FROM (SELECT " SERVER_COLS("CASE WHEN $3::bool THEN encrypted_env END")
    " FROM mcp_credentials WHERE tenant_id = $1::text AND server_id = $2::text) s"
    " LEFT JOIN tenant_keys k ON k.tenant_id = $1::text AND k.version = s.key_version",
    3);

/* The total comes with the page (one row of NULLs when the page is empty). */
CV_SQL_DEF(list_sql, SERVER_LIST,
    "SELECT n.total, p.* FROM (SELECT count(*) AS total FROM mcp_credentials WHERE tenant_id = $1::text) n"
    " LEFT JOIN LATERAL (SELECT " SERVER_COLS("NULL::text") ", created_at AS sort_at FROM mcp_credentials"
    " WHERE tenant_id = $1::text ORDER BY created_at DESC, server_id DESC LIMIT $2::int8 OFFSET $3::int8) p"
    " ON true ORDER BY p.sort_at DESC, p.server_id DESC",
    3);

/* One row always: the new revision when the update applied, and whether the
 * row existed (seen before the update) to tell "moved" from "absent". */
CV_SQL_DEF(update_sql, SERVER_UPDATE,
    "WITH upd AS ("
    " UPDATE mcp_credentials SET encrypted_env = $3::text, key_version = $4::int4, credential_names = $5::jsonb,"
    "  configured_integrations = $6::jsonb, expires_at = " CV_SQL_TS("$7") ", updated_by = $8::text,"
    "  last_updated = now(), revision = revision + 1, binding = $10::bytea"
    " WHERE tenant_id = $1::text AND server_id = $2::text AND revision = $9::int8"
    " RETURNING tenant_id, key_version, revision, last_updated),"
    " counted AS (" COUNT_ONE("upd") ")"
    " SELECT upd.revision, " CV_SQL_MS("upd.last_updated") ","
    " EXISTS (SELECT 1 FROM mcp_credentials WHERE tenant_id = $1::text AND server_id = $2::text),"
    " (SELECT count(*) FROM counted)"
    " FROM (VALUES (1)) AS one (x) LEFT JOIN upd ON true",
    10);

CV_SQL_DEF(delete_sql, SERVER_DELETE,
    "DELETE FROM mcp_credentials WHERE tenant_id = $1::text AND server_id = $2::text RETURNING 1", 2);

void cv_server_row_free(struct cv_server_row *row)
{
    if (!row) return;
    free(row->encrypted_env);
    free(row->configured_integrations);
    free(row->credential_names);
    row->encrypted_env = row->configured_integrations = row->credential_names = NULL;
}

static cv_result server_row(const PGresult *res, int i, int c, struct cv_server_row *row)
{
    memset(row, 0, sizeof(*row));
    cv_result r;
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 0, row->id, sizeof(row->id)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 1, row->tenant_id, sizeof(row->tenant_id)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 2, row->server_id, sizeof(row->server_id)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 3, row->template_id, sizeof(row->template_id)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 4, row->server_name, sizeof(row->server_name)));
    CV_GUARD_OUT(r, cv_pq_dup(res, i, c + 5, CV_STORE_ENV_MAX_BYTES, &row->encrypted_env));
    CV_GUARD_OUT(r, cv_pq_dup(res, i, c + 6, CV_STORE_JSON_MAX_BYTES, &row->configured_integrations));
    CV_GUARD_OUT(r, cv_pq_dup(res, i, c + 7, CV_STORE_JSON_MAX_BYTES, &row->credential_names));
    CV_GUARD_OUT(r, cv_pq_u32(res, i, c + 8, &row->key_version));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, c + 9, &row->revision));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, c + 10, &row->created_at_ms));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, c + 11, &row->last_updated_ms));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, c + 12, &row->expires_at_ms));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 13, row->created_by, sizeof(row->created_by)));
    CV_GUARD_OUT(r, cv_pq_text(res, i, c + 14, row->updated_by, sizeof(row->updated_by)));
    if (!cv_pq_null(res, i, c + 15)) {
        size_t blen = 0;
        CV_GUARD_OUT(r, cv_pq_hex(res, i, c + 15, row->binding, CV_RECORD_BINDING_BYTES, CV_RECORD_BINDING_BYTES, &blen));
        row->has_binding = 1;
    }
out:
    if (cv_failed(r)) cv_server_row_free(row);
    return r;
}

static cv_result check_ids(const char *tenant_id, const char *server_id)
{
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(cv_server_id_valid(server_id), CV_ERR_INPUT, "invalid server id");
    return CV_OK;
}

/* What insert and update both write. */
static cv_result check_sealed(const struct cv_server_row *row)
{
    CV_ENSURE(cv_store_fixed_ok(row->tenant_id, sizeof(row->tenant_id)) &&
                  cv_store_fixed_ok(row->server_id, sizeof(row->server_id)) &&
                  cv_store_fixed_ok(row->updated_by, sizeof(row->updated_by)),
              CV_ERR_INPUT, "server field is not terminated");
    CV_GUARD(check_ids(row->tenant_id, row->server_id));
    CV_GUARD(cv_store_check_len("encrypted_env", row->encrypted_env, 1, CV_STORE_ENV_MAX_BYTES));
    CV_GUARD(cv_store_check_len("configured_integrations", row->configured_integrations, 2, CV_STORE_JSON_MAX_BYTES));
    CV_GUARD(cv_store_check_len("credential_names", row->credential_names, 2, CV_STORE_JSON_MAX_BYTES));
    CV_ENSURE(row->key_version >= 1 && row->key_version <= INT32_MAX, CV_ERR_INPUT, "key version out of range");
    CV_GUARD(cv_store_check_ms("expires_at", row->expires_at_ms));
    CV_ENSURE(row->has_binding, CV_ERR_INTERNAL, "a record needs its binding");
    return CV_OK;
}

/* ---- idempotency keys (migration 0013) ---- */

CV_SQL_DEF(idem_prune_sql, IDEM_PRUNE,
    "DELETE FROM idempotency_keys WHERE tenant_id = $1::text AND created_at < now() - interval '"
    CV_STORE_IDEM_KEEP_SQL "'", 1);

CV_SQL_DEF(idem_insert_sql, IDEM_INSERT,
    "INSERT INTO idempotency_keys (tenant_id, principal, idem_key, request_hash, server_id) "
    "VALUES ($1::text, $2::text, $3::text, $4::bytea, $5::text)", 5);

CV_SQL_DEF(idem_get_sql, IDEM_GET,
    "SELECT server_id, request_hash = $4::bytea FROM idempotency_keys WHERE tenant_id = $1::text"
    " AND principal = $2::text AND idem_key = $3::text AND created_at >= now() - interval '"
    CV_STORE_IDEM_KEEP_SQL "'", 4);

static cv_result check_idem(const struct cv_store_idem *idem)
{
    CV_ENSURE_REF(idem);
    CV_GUARD(cv_store_check_len("idempotency key", idem->key, 1, CV_STORE_IDEM_KEY_MAX_BYTES));
    CV_GUARD(cv_store_check_len("principal", idem->principal, 1, CV_STORE_PRINCIPAL_MAX_BYTES));
    return CV_OK;
}

/* The two statements that remember `idem` in the write's transaction. */
static void bind_idem(struct cv_q q[2], const char *tenant_id, const struct cv_store_idem *idem, const char *server_id)
{
    cv_q_init(&q[0], &idem_prune_sql);
    cv_q_text(&q[0], tenant_id);
    cv_q_init(&q[1], &idem_insert_sql);
    cv_q_text(&q[1], tenant_id);
    cv_q_text(&q[1], idem->principal);
    cv_q_text(&q[1], idem->key);
    cv_q_bytes(&q[1], idem->request_hash, sizeof(idem->request_hash));
    cv_q_text(&q[1], server_id);
}

cv_result cv_store_idem_get(struct cv_store *st, const char *tenant_id, const struct cv_store_idem *idem, int *found,
                            int *same_request, char server_id[CV_SERVER_ID_MAX_BYTES + 1])
{
    *found = *same_request = 0;
    server_id[0] = '\0';
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_GUARD(check_idem(idem));
    struct cv_q q;
    cv_q_init(&q, &idem_get_sql);
    cv_q_text(&q, tenant_id);
    cv_q_text(&q, idem->principal);
    cv_q_text(&q, idem->key);
    cv_q_bytes(&q, idem->request_hash, sizeof(idem->request_hash));
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 2));
    if (PQntuples(q.res) == 1) {
        CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, server_id, CV_SERVER_ID_MAX_BYTES + 1));
        CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 1, same_request));
        *found = 1;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_server_insert(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev)
{
    return cv_store_server_insert_idem(st, row, ev, NULL);
}

cv_result cv_store_server_insert_idem(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev,
                                     const struct cv_store_idem *idem)
{
    if (idem) CV_GUARD(check_idem(idem));
    CV_ENSURE_REF(row);
    CV_GUARD(check_sealed(row));
    CV_ENSURE(cv_store_fixed_ok(row->id, sizeof(row->id)) && (row->id[0] == '\0' || cv_store_uuid_ok(row->id)),
              CV_ERR_INPUT, "record id must be a UUID");
    CV_ENSURE(cv_store_fixed_ok(row->template_id, sizeof(row->template_id)) &&
                  cv_store_fixed_ok(row->server_name, sizeof(row->server_name)) &&
                  cv_store_fixed_ok(row->created_by, sizeof(row->created_by)),
              CV_ERR_INPUT, "server field is not terminated");
    CV_ENSURE(cv_template_id_valid(row->template_id), CV_ERR_INPUT, "invalid template id");

    struct cv_q q;
    cv_q_init(&q, &insert_sql);
    cv_q_text_opt(&q, row->id);
    cv_q_text(&q, row->tenant_id);
    cv_q_text(&q, row->server_id);
    cv_q_text(&q, row->template_id);
    cv_q_text(&q, row->server_name);
    cv_q_text(&q, row->encrypted_env);
    cv_q_text(&q, row->configured_integrations);
    cv_q_text(&q, row->credential_names);
    cv_q_i64(&q, row->key_version);
    cv_q_ms_opt(&q, row->expires_at_ms);
    cv_q_text(&q, row->created_by);
    cv_q_text(&q, row->updated_by);
    cv_q_bytes(&q, row->binding, CV_RECORD_BINDING_BYTES);
    /* unconditional event: a VALUES insert adds its row or fails the
     * transaction, so the statistics read of CV_TX_EVENTS_IF_CHANGED (a
     * third of a deploy's database time) would only confirm it */
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT,
                             .tenant_id = row->tenant_id,
                             .events = ev,
                             .nevents = ev ? 1 : 0,
                             .conflict = "server already exists",
                             .fk = "tenant key not found"};
    cv_result r;
    struct cv_q qs[3];
    qs[0] = q;
    if (idem) bind_idem(&qs[1], row->tenant_id, idem, row->server_id);
    r = cv_store_tx(st, &tx, qs, idem ? 3 : 1);
    q = qs[0];
    if (idem) cv_q_clear(&qs[1], 2);
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 5));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, row->id, sizeof(row->id)));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 1, &row->revision));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 2, &row->created_at_ms));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 3, &row->last_updated_ms));
out:
    cv_q_clear(&q, 1);
    return r;
}

/* One server's row (and, for the keyed statement, its key columns after it),
 * read under the tenant's scope; not found unless exactly one row. */
static cv_result get_one(struct cv_store *st, const struct cv_sql *sql, int ncols, const char *tenant_id,
                         const char *server_id, int with_env, struct cv_q *q)
{
    CV_GUARD(check_ids(tenant_id, server_id));
    cv_q_init(q, sql);
    cv_q_text(q, tenant_id);
    cv_q_text(q, server_id);
    cv_q_text(q, with_env ? "t" : "f");
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    CV_GUARD(cv_store_tx(st, &tx, q, 1));
    CV_GUARD(cv_pq_expect(q->res, ncols));
    CV_ENSURE(PQntuples(q->res) == 1, CV_ERR_NOT_FOUND, "server not found");
    return CV_OK;
}

cv_result cv_store_server_get(struct cv_store *st, const char *tenant_id, const char *server_id, int with_env,
                              struct cv_server_row *row)
{
    CV_ENSURE_REF(row);
    memset(row, 0, sizeof(*row));
    struct cv_q q = {0};
    cv_result r = get_one(st, &get_sql, SERVER_NCOLS, tenant_id, server_id, with_env, &q);
    if (cv_ok(r)) r = server_row(q.res, 0, 0, row);
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_server_get_keyed(struct cv_store *st, const char *tenant_id, const char *server_id, int with_env,
                                    struct cv_server_row *row, struct cv_tenant_key_row *key, int *has_key)
{
    CV_ENSURE_REF(row);
    CV_ENSURE_REF(key);
    memset(row, 0, sizeof(*row));
    memset(key, 0, sizeof(*key));
    *has_key = 0;
    struct cv_q q = {0};
    cv_result r;
    CV_GUARD_OUT(r, get_one(st, &get_keyed_sql, SERVER_NCOLS + CV_STORE_KEY_REF_NCOLS, tenant_id, server_id,
                            with_env, &q));
    CV_GUARD_OUT(r, server_row(q.res, 0, 0, row));
    if (!cv_pq_null(q.res, 0, SERVER_NCOLS)) {
        r = cv_store_key_ref_read(q.res, 0, SERVER_NCOLS, key);
        if (cv_failed(r)) {
            cv_server_row_free(row);
            goto out;
        }
        *has_key = 1;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_server_list(struct cv_store *st, const char *tenant_id, unsigned limit, unsigned offset,
                               cv_store_server_cb cb, void *arg, uint64_t *total)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(limit <= CV_STORE_LIST_MAX && offset <= CV_STORE_OFFSET_MAX, CV_ERR_INPUT,
              "limit must be at most %d", CV_STORE_LIST_MAX);
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_q_text(&q, tenant_id);
    cv_q_i64(&q, limit);
    cv_q_i64(&q, offset);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1 + SERVER_NCOLS + 1));
    if (PQntuples(q.res) < 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    int64_t n;
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &n));
    if (total) *total = (uint64_t)n;
    for (int i = 0; i < PQntuples(q.res) && !cv_pq_null(q.res, i, 1); i++) {
        struct cv_server_row row;
        CV_GUARD_OUT(r, server_row(q.res, i, 1, &row));
        int stop = cb(arg, &row);
        cv_server_row_free(&row);
        if (stop) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_server_update(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                 const struct cv_audit_event *ev)
{
    return cv_store_server_update_idem(st, row, expected_revision, ev, NULL);
}

cv_result cv_store_server_update_idem(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                     const struct cv_audit_event *ev, const struct cv_store_idem *idem)
{
    if (idem) CV_GUARD(check_idem(idem));
    CV_ENSURE_REF(row);
    CV_GUARD(check_sealed(row));
    CV_ENSURE(expected_revision >= 1, CV_ERR_PRECONDITION, "the server's credentials changed; read them again");

    struct cv_q q;
    cv_q_init(&q, &update_sql);
    cv_q_text(&q, row->tenant_id);
    cv_q_text(&q, row->server_id);
    cv_q_text(&q, row->encrypted_env);
    cv_q_i64(&q, row->key_version);
    cv_q_text(&q, row->credential_names);
    cv_q_text(&q, row->configured_integrations);
    cv_q_ms_opt(&q, row->expires_at_ms);
    cv_q_text(&q, row->updated_by);
    cv_q_i64(&q, expected_revision);
    cv_q_bytes(&q, row->binding, CV_RECORD_BINDING_BYTES);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT,
                             .tenant_id = row->tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0,
                             .fk = "tenant key not found"};
    cv_result r;
    int existed = 0;
    struct cv_q qs[3];
    qs[0] = q;
    if (idem) bind_idem(&qs[1], row->tenant_id, idem, row->server_id);
    r = cv_store_tx(st, &tx, qs, idem ? 3 : 1);
    q = qs[0];
    if (idem) cv_q_clear(&qs[1], 2);
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 4));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    if (cv_pq_null(q.res, 0, 0)) {
        CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 2, &existed));
        r = existed ? cv_fail(CV_ERR_PRECONDITION, "the server's credentials changed; read them again")
                    : cv_fail(CV_ERR_NOT_FOUND, "server not found");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &row->revision));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 1, &row->last_updated_ms));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_server_delete(struct cv_store *st, const char *tenant_id, const char *server_id,
                                 const struct cv_audit_event *ev)
{
    CV_GUARD(check_ids(tenant_id, server_id));
    struct cv_q q;
    cv_q_init(&q, &delete_sql);
    cv_q_text(&q, tenant_id);
    cv_q_text(&q, server_id);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT,
                             .tenant_id = tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    if (PQntuples(q.res) != 1) r = cv_fail(CV_ERR_NOT_FOUND, "server not found");
out:
    cv_q_clear(&q, 1);
    return r;
}
