/* Master key versions in the database: rotation (register newest+1 and
 * start its rewrap), the rewrap batches that move tenant keys under it, and
 * retirement of an old version's row. Platform scope; rotation and
 * retirement serialise on one advisory lock, so two instances never pick
 * the same version. Stores wrapped bytes and bindings only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/lifecycle.h"

/* pg_advisory_xact_lock key of master-key changes ("cv-mstr" in ASCII) */
#define MASTER_LOCK_KEY "7167036157924942962"

CV_SQL_DEF(lock_sql, LC_MASTER_LOCK,
                                       "SELECT pg_advisory_xact_lock(" MASTER_LOCK_KEY ")", 0);

CV_SQL_DEF(newest_sql, LC_MASTER_NEWEST,
                                         "SELECT coalesce(max(version), 0) FROM master_keys", 0);

CV_SQL_DEF(insert_sql, LC_MASTER_INSERT,
    "INSERT INTO master_keys (version, state, canary_wrapped, canary_binding, canary_tenant_id, canary_version) "
    "VALUES ($1::int4, 'active', $2::bytea, $3::bytea, $4::text, $5::int4)",
    5);

CV_SQL_DEF(retire_older_sql, LC_MASTER_RETIRE_OLDER,
    "UPDATE master_keys SET state = 'retired' WHERE version < $1::int4 AND state = 'active'", 1);

CV_SQL_DEF(supersede_sql, LC_MASTER_JOB_SUPERSEDE,
    "UPDATE key_jobs SET state = 'superseded', finished_at = now(), updated_at = now() "
    "WHERE kind = 'master_rewrap' AND state = 'running'",
    0);

CV_SQL_DEF(job_insert_sql, LC_MASTER_JOB_INSERT,
    "INSERT INTO key_jobs AS j (kind, target_version, total, created_by) "
    "SELECT 'master_rewrap', $1::int4, count(*), $2::text FROM tenant_keys "
    " WHERE master_version < $1::int4 AND state <> 'destroyed' "
    "RETURNING " CV_LC_JOB_COLS,
    2);

static const struct cv_tx rotate_msgs = {.conflict = "master key version exists"};

cv_result cv_store_lc_master_rotate(struct cv_store *st, const char *actor, cv_store_master_make_cb make, void *arg,
                                    const struct cv_audit_event *ev, uint32_t *new_version,
                                    struct cv_key_job_row *job)
{
    CV_ENSURE_REF(make);
    CV_GUARD(cv_store_check_len("actor", actor, 0, CV_STORE_PRINCIPAL_MAX_BYTES));
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &lock_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &newest_sql);
    CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, 1));
    uint32_t newest;
    CV_GUARD_OUT(r, cv_pq_u32(q.res, 0, 0, &newest));
    cv_q_clear(&q, 1);
    if (newest >= INT32_MAX) {
        r = cv_fail(CV_ERR_CONFLICT, "no master key version is left");
        goto out;
    }
    uint32_t v = newest + 1;

    /* the token's part, while the lock keeps every other rotation out */
    struct cv_master_key_row row;
    memset(&row, 0, sizeof(row));
    CV_GUARD_OUT(r, make(arg, v, &row));
    CV_GUARD_OUT(r, cv_store_check_key_ref("canary", &row.canary));
    if (row.canary.master_version != v) {
        r = cv_fail(CV_ERR_INTERNAL, "the canary must be wrapped under the new master key");
        goto out;
    }
    cv_q_init(&q, &insert_sql);
    cv_q_i64(&q, v);
    cv_q_bytes(&q, row.canary.wrapped, row.canary.wrapped_len);
    cv_q_bytes(&q, row.canary.binding, CV_KEY_BINDING_BYTES);
    cv_q_text(&q, row.canary.tenant_id);
    cv_q_i64(&q, row.canary.version);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &rotate_msgs));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &retire_older_sql);
    cv_q_i64(&q, v);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &supersede_sql);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &job_insert_sql);
    cv_q_i64(&q, v);
    cv_q_text(&q, actor);
    CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, CV_LC_JOB_NCOLS));
    job->remaining = 0;
    CV_GUARD_OUT(r, cv_lc_job_row(q.res, 0, 0, job));
    job->remaining = job->total;
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "master_rotated", NULL, v));
    CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, v));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *new_version = v;
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- retirement ---- */

CV_SQL_DEF(forget_read_sql, LC_MASTER_FORGET_READ,
    "SELECT (SELECT coalesce(max(version), 0) FROM master_keys WHERE state = 'active'),"
    " EXISTS (SELECT 1 FROM master_keys WHERE version = $1::int4),"
    " (SELECT count(*) FROM tenant_keys WHERE master_version = $1::int4 AND state <> 'destroyed')",
    1);

/* A destroyed tenant key has no wrapped bytes, so no master key opens it;
 * it only keeps its row (records name it). Point it at the newest master so
 * that the foreign key does not hold the old one. */
CV_SQL_DEF(forget_destroyed_sql, LC_MASTER_FORGET_DESTROYED,
    "UPDATE tenant_keys SET master_version = $2::int4 WHERE master_version = $1::int4 AND state = 'destroyed'", 2);

CV_SQL_DEF(forget_delete_sql, LC_MASTER_FORGET_DELETE,
                                                "DELETE FROM master_keys WHERE version = $1::int4", 1);

static const struct cv_tx forget_msgs = {.fk = "the master key still wraps tenant keys", .fk_err = CV_ERR_CONFLICT};

cv_result cv_store_lc_master_forget(struct cv_store *st, uint32_t version, const struct cv_audit_event *ev,
                                    int *existed, uint64_t *wrapping, uint32_t *newest)
{
    *existed = 0;
    *wrapping = 0;
    *newest = 0;
    CV_ENSURE(version >= 1 && version <= INT32_MAX, CV_ERR_NOT_FOUND, "master key version not found");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &lock_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &forget_read_sql);
    cv_q_i64(&q, version);
    CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, 3));
    int64_t n;
    CV_GUARD_OUT(r, cv_pq_u32(q.res, 0, 0, newest));
    CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 1, existed));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 2, &n));
    *wrapping = (uint64_t)n;
    cv_q_clear(&q, 1);
    if (!*existed) goto out; /* nothing to delete; the caller looks at the token */
    if (version >= *newest) {
        r = cv_fail(CV_ERR_CONFLICT, "master key %u is the current one: rotate first", version);
        goto out;
    }
    if (*wrapping > 0) {
        r = cv_fail(CV_ERR_CONFLICT, "master key %u still wraps %llu tenant key%s: finish the master rewrap first",
                    version, (unsigned long long)*wrapping, *wrapping == 1 ? "" : "s");
        goto out;
    }
    cv_q_init(&q, &forget_destroyed_sql);
    cv_q_i64(&q, version);
    cv_q_i64(&q, *newest);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    cv_q_init(&q, &forget_delete_sql);
    cv_q_i64(&q, version);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &forget_msgs));
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_key_event(&tx, "master_retired", NULL, version));
    CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, 0));
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- rewrap batches ---- */

/* FOR NO KEY UPDATE: a row lock that keeps other workers off (SKIP LOCKED)
 * without blocking writers, whose foreign-key checks take KEY SHARE on these
 * rows. No ORDER BY: it would sort every remaining key per batch. */
CV_SQL_DEF(keys_sql, LC_MASTER_REWRAP_SELECT,
    "SELECT tenant_id, version, master_version, encode(wrapped_key, 'hex'), encode(binding, 'hex') "
    "FROM tenant_keys WHERE master_version < $1::int4 AND state <> 'destroyed' "
    " AND (tenant_id || '/' || version) <> ALL ($2::text[]) "
    "LIMIT $3::int8 FOR NO KEY UPDATE SKIP LOCKED",
    3);

CV_SQL_DEF(key_update_sql, LC_MASTER_REWRAP_UPDATE,
    "UPDATE tenant_keys SET master_version = $3::int4, wrapped_key = $4::bytea, binding = $5::bytea "
    "WHERE tenant_id = $1::text AND version = $2::int4",
    5);

CV_SQL_DEF(job_progress_sql, LC_JOB_PROGRESS,
    "UPDATE key_jobs SET done = done + $2::int8, batches = batches + 1, updated_at = now() WHERE id = $1::int8", 2);

static const struct cv_tx rewrap_msgs = {.fk = "master key version not found"};

cv_result cv_store_lc_master_rewrap_batch(struct cv_store *st, const struct cv_key_job_row *job, unsigned limit,
                                          struct cv_store_skip *skip, cv_store_key_rewrap_cb cb, void *arg,
                                          unsigned *processed)
{
    *processed = 0;
    CV_ENSURE_REF(cb);
    CV_ENSURE(job->kind == CV_JOB_MASTER_REWRAP, CV_ERR_INTERNAL, "not a master rewrap");
    CV_ENSURE(limit >= 1 && limit <= CV_STORE_REWRAP_BATCH_MAX, CV_ERR_INPUT, "batch size out of range");
    char *skipped = cv_lc_skip_literal(skip);
    CV_ENSURE(skipped != NULL, CV_ERR_MEMORY, "out of memory");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q sel, q;
    cv_q_init(&sel, &keys_sql);
    cv_q_init(&q, &key_update_sql);
    cv_result r;
    unsigned moved = 0;
    CV_GUARD_OUT(r, cv_lc_begin(st, NULL, &d, &tx));
    cv_q_i64(&sel, job->target_version);
    cv_q_text(&sel, skipped);
    cv_q_i64(&sel, limit);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &sel, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(sel.res, 5));
    for (int i = 0; i < PQntuples(sel.res); i++) {
        struct cv_key_ref in, out;
        memset(&in, 0, sizeof(in));
        size_t blen;
        CV_GUARD_OUT(r, cv_pq_text(sel.res, i, 0, in.tenant_id, sizeof(in.tenant_id)));
        CV_GUARD_OUT(r, cv_pq_u32(sel.res, i, 1, &in.version));
        CV_GUARD_OUT(r, cv_pq_u32(sel.res, i, 2, &in.master_version));
        CV_GUARD_OUT(r, cv_pq_hex(sel.res, i, 3, in.wrapped, 1, CV_WRAPPED_KEY_MAX_BYTES, &in.wrapped_len));
        CV_GUARD_OUT(r, cv_pq_hex(sel.res, i, 4, in.binding, CV_KEY_BINDING_BYTES, CV_KEY_BINDING_BYTES, &blen));
        r = cb(arg, &in, &out);
        if (r.err == CV_ERR_CRYPTO) {
            char id[CV_STORE_SKIP_ID_MAX_BYTES + 1];
            snprintf(id, sizeof(id), "%s/%u", in.tenant_id, in.version);
            if (!cv_lc_skip_add(skip, id)) {
                r = cv_fail(CV_ERR_CONFLICT, "more than %d tenant keys failed to rewrap", CV_STORE_REWRAP_SKIP_MAX);
                goto out;
            }
            r = CV_OK;
            continue;
        }
        if (cv_failed(r)) goto out;
        CV_GUARD_OUT(r, cv_store_check_key_ref("rewrapped key", &out));
        if (out.master_version != job->target_version || out.version != in.version ||
            strcmp(out.tenant_id, in.tenant_id) != 0) {
            r = cv_fail(CV_ERR_INTERNAL, "the rewrapped key does not match its row");
            goto out;
        }
        cv_q_init(&q, &key_update_sql);
        cv_q_text(&q, out.tenant_id);
        cv_q_i64(&q, out.version);
        cv_q_i64(&q, out.master_version);
        cv_q_bytes(&q, out.wrapped, out.wrapped_len);
        cv_q_bytes(&q, out.binding, CV_KEY_BINDING_BYTES);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &rewrap_msgs));
        cv_q_clear(&q, 1);
        moved++;
    }
    cv_q_init(&q, &job_progress_sql);
    cv_q_i64(&q, job->id);
    cv_q_i64(&q, moved);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *processed = moved;
out:
    cv_q_clear(&sel, 1);
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    free(skipped);
    return r;
}
