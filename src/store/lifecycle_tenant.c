/* A tenant's key versions over their life: rotation, the minimum decryption
 * version, destruction of retired versions, crypto-shredding. Each is one
 * transaction that locks the tenant row first (FOR NO KEY UPDATE: writers'
 * foreign-key checks take KEY SHARE and are not blocked), so changes to one
 * tenant's keys queue. Never holds an unwrapped key. */
#include <string.h>

#include "store/lifecycle.h"

CV_SQL_DEF(lock_sql, LC_TENANT_LOCK,
    "SELECT t.min_decrypt_version, (SELECT coalesce(max(k.version), 0) FROM tenant_keys k WHERE k.tenant_id = t.id) "
    "FROM tenants t WHERE t.id = $1::text FOR NO KEY UPDATE OF t",
    1);

/* Locks the tenant row; CV_ERR_NOT_FOUND when there is none (in this scope). */
static cv_result lock_tenant(struct cv_tx_open *tx, const char *tenant_id, uint32_t *min, uint32_t *newest)
{
    struct cv_q q;
    cv_q_init(&q, &lock_sql);
    cv_q_text(&q, tenant_id);
    CV_GUARD(cv_tx_exec(tx, &q, NULL));
    cv_result r = cv_pq_expect(q.res, 2);
    if (cv_ok(r) && PQntuples(q.res) != 1) r = cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
    if (cv_ok(r)) r = cv_pq_u32(q.res, 0, 0, min);
    if (cv_ok(r)) r = cv_pq_u32(q.res, 0, 1, newest);
    cv_q_clear(&q, 1);
    if (cv_failed(r)) cv_tx_abort(tx);
    return r;
}

/* ---- rotation ---- */

CV_SQL_DEF(key_insert_sql, LC_TENANT_KEY_INSERT,
    "INSERT INTO tenant_keys (tenant_id, version, master_version, wrapped_key, binding, state) "
    "VALUES ($1::text, $2::int4, $3::int4, $4::bytea, $5::bytea, 'active')",
    5);

static const struct cv_tx insert_msgs = {.conflict = "tenant key version exists", .fk = "master key version not found"};

cv_result cv_store_lc_tenant_key_add(struct cv_store *st, const struct cv_tenant_key_row *key, uint32_t expect_newest,
                                     const struct cv_audit_event *ev, int *added)
{
    *added = 0;
    CV_ENSURE_REF(key);
    const struct cv_key_ref *k = &key->ref;
    CV_GUARD(cv_store_check_key_ref("tenant key", k));
    CV_ENSURE(expect_newest < INT32_MAX && k->version == expect_newest + 1, CV_ERR_INPUT,
              "a new key version must follow the newest one");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &key_insert_sql);
    cv_result r;
    uint32_t min, newest;
    CV_GUARD_OUT(r, cv_lc_begin(st, k->tenant_id, &d, &tx));
    CV_GUARD_OUT(r, lock_tenant(&tx, k->tenant_id, &min, &newest));
    if (newest != expect_newest) goto out; /* another rotation won; nothing to write */
    cv_q_text(&q, k->tenant_id);
    cv_q_i64(&q, k->version);
    cv_q_i64(&q, k->master_version);
    cv_q_bytes(&q, k->wrapped, k->wrapped_len);
    cv_q_bytes(&q, k->binding, CV_KEY_BINDING_BYTES);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &insert_msgs));
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "tenant_key_rotated", k->tenant_id, k->version));
    CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, k->version));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *added = 1;
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- minimum decryption version ---- */

/* FOR UPDATE, not NO KEY UPDATE: it must wait for writers that hold KEY SHARE
 * on these rows (migration 0008), and make new ones wait for the outcome. */
CV_SQL_DEF(lock_old_sql, LC_TENANT_LOCK_OLD_KEYS,
    "SELECT version FROM tenant_keys WHERE tenant_id = $1::text AND version < $2::int4 ORDER BY version FOR UPDATE",
    2);

CV_SQL_DEF(count_below_sql, LC_TENANT_RECORDS_BELOW,
    "SELECT count(*) FROM mcp_credentials WHERE tenant_id = $1::text AND key_version < $2::int4", 2);

CV_SQL_DEF(raise_sql, LC_TENANT_MIN_RAISE, "UPDATE tenants SET min_decrypt_version = $2::int4 WHERE id = $1::text", 2);

/* A count(*) of the tenant's rows; `version` is the second parameter when
 * the statement takes one. */
static cv_result exec_count(struct cv_tx_open *tx, const struct cv_sql *sql, const char *tenant_id, uint32_t version,
                            uint64_t *n)
{
    struct cv_q q;
    cv_q_init(&q, sql);
    cv_q_text(&q, tenant_id);
    if (sql->nparams == 2) cv_q_i64(&q, version);
    CV_GUARD(cv_tx_exec_row(tx, &q, NULL, 1));
    int64_t v;
    cv_result r = cv_pq_i64(q.res, 0, 0, &v);
    cv_q_clear(&q, 1);
    *n = (uint64_t)v;
    return r;
}

static cv_result exec_tenant_version(struct cv_tx_open *tx, const struct cv_sql *sql, const char *tenant_id,
                                     uint32_t version)
{
    struct cv_q q;
    cv_q_init(&q, sql);
    cv_q_text(&q, tenant_id);
    cv_q_i64(&q, version);
    CV_GUARD(cv_tx_exec(tx, &q, NULL));
    cv_q_clear(&q, 1);
    return CV_OK;
}

cv_result cv_store_lc_min_decrypt_raise(struct cv_store *st, const char *tenant_id, uint32_t min_version,
                                        const struct cv_audit_event *ev, uint64_t *blocking)
{
    *blocking = 0;
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(min_version >= 1 && min_version <= INT32_MAX, CV_ERR_INPUT, "the version must be at least 1");
    struct cv_tx_open tx;
    struct cv_tx d;
    cv_result r;
    uint32_t min, newest;
    CV_GUARD_OUT(r, cv_lc_begin(st, tenant_id, &d, &tx));
    CV_GUARD_OUT(r, lock_tenant(&tx, tenant_id, &min, &newest));
    if (min_version < min) {
        r = cv_fail(CV_ERR_INPUT, "the minimum decryption version of %s is %u and never decreases", tenant_id, min);
        goto out;
    }
    if (min_version > newest) {
        r = cv_fail(CV_ERR_INPUT, "%s has no key version %u (newest: %u)", tenant_id, min_version, newest);
        goto out;
    }
    if (min_version == min) { /* already there: the request is recorded all the same */
        CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, min_version));
        CV_GUARD_OUT(r, cv_tx_commit(&tx));
        goto out;
    }
    CV_GUARD_OUT(r, exec_tenant_version(&tx, &lock_old_sql, tenant_id, min_version));
    /* counted after the lock: a write that committed meanwhile is seen */
    CV_GUARD_OUT(r, exec_count(&tx, &count_below_sql, tenant_id, min_version, blocking));
    if (*blocking > 0) {
        r = cv_fail_code(CV_ERR_CONFLICT, "records_need_older_key",
                         "%llu record%s of %s still use a key version below %u: rewrap them first",
                         (unsigned long long)*blocking, *blocking == 1 ? "" : "s", tenant_id, min_version);
        goto out;
    }
    CV_GUARD_OUT(r, exec_tenant_version(&tx, &raise_sql, tenant_id, min_version));
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "tenant_keys_retired", tenant_id, min_version));
    CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, min_version));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_tx_abort(&tx);
    return r;
}

/* ---- destruction of retired versions ---- */

CV_SQL_DEF(lock_retired_sql, LC_TENANT_LOCK_RETIRED,
    "SELECT version FROM tenant_keys WHERE tenant_id = $1::text AND state = 'retired' ORDER BY version FOR UPDATE", 1);

CV_SQL_DEF(count_retired_use_sql, LC_TENANT_RECORDS_ON_RETIRED,
    "SELECT count(*) FROM mcp_credentials c JOIN tenant_keys k"
    " ON k.tenant_id = c.tenant_id AND k.version = c.key_version "
    "WHERE c.tenant_id = $1::text AND k.state = 'retired'",
    1);

/* The bytes are gone from the live row; dead row versions, WAL and backups
 * keep them until vacuum, WAL recycling and backup expiry (docs/operations.md). */
CV_SQL_DEF(destroy_sql, LC_TENANT_DESTROY_RETIRED,
    "UPDATE tenant_keys SET wrapped_key = NULL, binding = NULL, state = 'destroyed' "
    "WHERE tenant_id = $1::text AND state = 'retired' RETURNING version",
    1);

cv_result cv_store_lc_keys_destroy_retired(struct cv_store *st, const char *tenant_id,
                                           const struct cv_audit_event *ev, uint32_t *versions, size_t max,
                                           size_t *n, uint64_t *blocking)
{
    *n = 0;
    *blocking = 0;
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &lock_retired_sql);
    cv_result r;
    uint32_t min, newest;
    CV_GUARD_OUT(r, cv_lc_begin(st, tenant_id, &d, &tx));
    CV_GUARD_OUT(r, lock_tenant(&tx, tenant_id, &min, &newest));
    cv_q_text(&q, tenant_id);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    int retired = PQntuples(q.res);
    cv_q_clear(&q, 1);
    if (retired == 0) goto out;
    CV_GUARD_OUT(r, exec_count(&tx, &count_retired_use_sql, tenant_id, 0, blocking));
    if (*blocking > 0) {
        r = cv_fail_code(CV_ERR_CONFLICT, "records_need_retired_key",
                         "%llu record%s of %s still use a retired key version: destroying it would lose them",
                         (unsigned long long)*blocking, *blocking == 1 ? "" : "s", tenant_id);
        goto out;
    }
    cv_q_init(&q, &destroy_sql);
    cv_q_text(&q, tenant_id);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    uint32_t highest = 0;
    for (int i = 0; i < PQntuples(q.res); i++) {
        uint32_t v;
        CV_GUARD_OUT(r, cv_pq_u32(q.res, i, 0, &v));
        if (*n < max) versions[*n] = v;
        if (v > highest) highest = v;
        (*n)++;
    }
    /* the results are read: the events may use the connection now */
    struct cv_q destroyed = q;
    q.res = NULL;
    for (int i = 0; i < PQntuples(destroyed.res); i++) {
        uint32_t v;
        r = cv_pq_u32(destroyed.res, i, 0, &v);
        if (cv_ok(r)) r = cv_tx_audit(&tx, ev, v);
        if (cv_failed(r)) break;
    }
    cv_q_clear(&destroyed, 1);
    if (cv_failed(r)) goto out;
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "tenant_keys_destroyed", tenant_id, highest));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- crypto-shredding ---- */

CV_SQL_DEF(shred_lock_sql, LC_SHRED_LOCK,
    "SELECT (SELECT count(*) FROM mcp_credentials c WHERE c.tenant_id = t.id),"
    " (SELECT count(*) FROM tenant_keys k WHERE k.tenant_id = t.id AND k.state <> 'destroyed') "
    "FROM tenants t WHERE t.id = $1::text FOR UPDATE OF t",
    1);

/* Cascades to tenant_keys, tenant_key_usage, mcp_credentials, api_tokens and
 * key_jobs; referential actions run as the tables' owner, so the service
 * role needs no privilege on api_tokens for it. audit_events has no foreign
 * key and keeps the trail. */
CV_SQL_DEF(shred_delete_sql, LC_SHRED_DELETE,
                                               "DELETE FROM tenants WHERE id = $1::text", 1);

cv_result cv_store_lc_tenant_shred(struct cv_store *st, const char *tenant_id, const struct cv_audit_event *ev,
                                   struct cv_store_shred_counts *counts)
{
    memset(counts, 0, sizeof(*counts));
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &shred_lock_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    cv_q_text(&q, tenant_id);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 2));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
        goto out;
    }
    int64_t v;
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &v));
    counts->records = (uint64_t)v;
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 1, &v));
    counts->key_versions = (uint64_t)v;
    cv_q_clear(&q, 1);
    cv_q_init(&q, &shred_delete_sql);
    cv_q_text(&q, tenant_id);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "tenant_shredded", tenant_id, 0));
    CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, 0));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}
