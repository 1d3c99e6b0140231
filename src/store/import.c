/* Inserting an imported record: the same row as a deploy writes, sealed the
 * same way, but with the legacy created_at and last_updated kept, in the
 * tenant's own scope. Counts one encryption in the same statement, like every
 * write of a record. Never reads or writes anything but ciphertext and names. */
#include <string.h>

#include "credvault/store_import.h"
#include "store/pq.h"


CV_SQL_DEF(import_sql, SERVER_IMPORT,
    "WITH ins AS ("
    " INSERT INTO mcp_credentials (tenant_id, server_id, template_id, server_name, encrypted_env,"
    "  configured_integrations, credential_names, key_version, expires_at, created_by, updated_by,"
    "  created_at, last_updated, binding)"
    " VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::jsonb, $7::jsonb, $8::int4, " CV_SQL_TS("$9")
    ", $10::text, $11::text, coalesce(" CV_SQL_TS("$12") ", now()), coalesce(" CV_SQL_TS("$13") ", now()),"
    " $14::bytea)"
    " RETURNING id, tenant_id, key_version, revision, created_at, last_updated),"
    " counted AS ("
    " INSERT INTO tenant_key_usage AS u (tenant_id, version, shard, encryptions)"
    " SELECT tenant_id, key_version, pg_backend_pid() % 16, 1 FROM ins"
    " ON CONFLICT (tenant_id, version, shard) DO UPDATE SET encryptions = u.encryptions + 1 RETURNING 1)"
    " SELECT ins.id, ins.revision, " CV_SQL_MS("ins.created_at") ", " CV_SQL_MS("ins.last_updated")
    ", (SELECT count(*) FROM counted) FROM ins",
    14);

static cv_result check_row(const struct cv_server_row *row)
{
    CV_ENSURE(cv_store_fixed_ok(row->tenant_id, sizeof(row->tenant_id)) &&
                  cv_store_fixed_ok(row->server_id, sizeof(row->server_id)) &&
                  cv_store_fixed_ok(row->template_id, sizeof(row->template_id)) &&
                  cv_store_fixed_ok(row->server_name, sizeof(row->server_name)) &&
                  cv_store_fixed_ok(row->created_by, sizeof(row->created_by)) &&
                  cv_store_fixed_ok(row->updated_by, sizeof(row->updated_by)),
              CV_ERR_INPUT, "server field is not terminated");
    CV_ENSURE(cv_tenant_id_valid(row->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(cv_server_id_valid(row->server_id), CV_ERR_INPUT, "invalid server id");
    CV_ENSURE(cv_template_id_valid(row->template_id), CV_ERR_INPUT, "invalid template id");
    CV_GUARD(cv_store_check_len("encrypted_env", row->encrypted_env, 1, CV_STORE_ENV_MAX_BYTES));
    CV_GUARD(cv_store_check_len("configured_integrations", row->configured_integrations, 2, CV_STORE_JSON_MAX_BYTES));
    CV_GUARD(cv_store_check_len("credential_names", row->credential_names, 2, CV_STORE_JSON_MAX_BYTES));
    CV_ENSURE(row->key_version >= 1 && row->key_version <= INT32_MAX, CV_ERR_INPUT, "key version out of range");
    CV_GUARD(cv_store_check_ms("expires_at", row->expires_at_ms));
    CV_GUARD(cv_store_check_ms("created_at", row->created_at_ms));
    CV_GUARD(cv_store_check_ms("last_updated", row->last_updated_ms));
    CV_ENSURE(row->has_binding, CV_ERR_INTERNAL, "a record needs its binding");
    return CV_OK;
}

cv_result cv_store_server_import(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(row);
    CV_GUARD(check_row(row));

    struct cv_q q;
    cv_q_init(&q, &import_sql);
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
    cv_q_ms_opt(&q, row->created_at_ms);
    cv_q_ms_opt(&q, row->last_updated_ms);
    cv_q_bytes(&q, row->binding, CV_RECORD_BINDING_BYTES);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT,
                             .tenant_id = row->tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0,
                             .conflict = "server already exists",
                             .fk = "tenant key not found"};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
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
