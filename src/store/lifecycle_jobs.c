/* Rewrap jobs: start (or join), progress, end, and the record rewrap batch.
 * The rows say what is left (a version below the target), so progress
 * survives a crash and any instance continues a job; FOR NO KEY UPDATE SKIP
 * LOCKED keeps workers off each other's rows. Ciphertext in, ciphertext
 * out: plaintext never reaches this layer. */
#include <stdlib.h>
#include <string.h>

#include "store/lifecycle.h"

/* Rows still below the job's target, counted when read. */
#define REMAINING                                                                                          \
    "CASE WHEN j.kind = 'master_rewrap' THEN (SELECT count(*) FROM tenant_keys k"                          \
    " WHERE k.master_version < j.target_version AND k.state <> 'destroyed')"                               \
    " ELSE (SELECT count(*) FROM mcp_credentials c"                                                        \
    " WHERE c.tenant_id = j.tenant_id AND c.key_version < j.target_version) END"

static const char *kind_name(enum cv_job_kind k)
{
    return k == CV_JOB_MASTER_REWRAP ? "master_rewrap" : "record_rewrap";
}

static cv_result check_kind_tenant(enum cv_job_kind kind, const char *tenant_id)
{
    CV_ENSURE(kind == CV_JOB_MASTER_REWRAP || kind == CV_JOB_RECORD_REWRAP, CV_ERR_INTERNAL, "unknown job kind");
    if (kind == CV_JOB_MASTER_REWRAP)
        CV_ENSURE(tenant_id == NULL || *tenant_id == '\0', CV_ERR_INTERNAL, "a master rewrap has no tenant");
    else
        CV_ENSURE(tenant_id && cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    return CV_OK;
}

/* The scope a job is read and written in: its tenant's, or the platform's. */
static const char *job_scope(enum cv_job_kind kind, const char *tenant_id)
{
    return kind == CV_JOB_MASTER_REWRAP ? NULL : tenant_id;
}

static cv_result read_job_with_remaining(const PGresult *res, int row, struct cv_key_job_row *job)
{
    CV_GUARD(cv_lc_job_row(res, row, 0, job));
    int64_t n;
    CV_GUARD(cv_pq_i64(res, row, CV_LC_JOB_NCOLS, &n));
    job->remaining = (uint64_t)n;
    return CV_OK;
}

/* ---- start ---- */

CV_SQL_DEF(start_record_sql, LC_JOB_START_RECORD,
    "INSERT INTO key_jobs AS j (kind, tenant_id, target_version, total, created_by) "
    "SELECT 'record_rewrap', $1::text, v.newest, (SELECT count(*) FROM mcp_credentials c"
    "  WHERE c.tenant_id = $1::text AND c.key_version < v.newest), $2::text "
    "FROM (SELECT max(version) AS newest FROM tenant_keys WHERE tenant_id = $1::text AND state = 'active') v "
    "WHERE v.newest IS NOT NULL ON CONFLICT DO NOTHING RETURNING " CV_LC_JOB_COLS ", " REMAINING,
    2);

CV_SQL_DEF(start_master_sql, LC_JOB_START_MASTER,
    "INSERT INTO key_jobs AS j (kind, target_version, total, created_by) "
    "SELECT 'master_rewrap', v.newest, (SELECT count(*) FROM tenant_keys k"
    "  WHERE k.master_version < v.newest AND k.state <> 'destroyed'), $1::text "
    "FROM (SELECT max(version) AS newest FROM master_keys WHERE state = 'active') v "
    "WHERE v.newest IS NOT NULL ON CONFLICT DO NOTHING RETURNING " CV_LC_JOB_COLS ", " REMAINING,
    1);

/* Joining a running record rewrap moves its target to the newest version. */
CV_SQL_DEF(join_record_sql, LC_JOB_JOIN_RECORD,
    "UPDATE key_jobs AS j SET target_version = greatest(j.target_version, (SELECT max(version) FROM tenant_keys"
    "  WHERE tenant_id = $1::text AND state = 'active')), updated_at = now() "
    "WHERE j.kind = 'record_rewrap' AND j.tenant_id = $1::text AND j.state = 'running' "
    "RETURNING " CV_LC_JOB_COLS ", " REMAINING,
    1);

CV_SQL_DEF(join_master_sql, LC_JOB_JOIN_MASTER,
    "SELECT " CV_LC_JOB_COLS ", " REMAINING " FROM key_jobs j WHERE j.kind = 'master_rewrap' AND j.state = 'running'",
    0);

/* Whether there is a version to move to at all (else: not found). */
CV_SQL_DEF(has_master_sql, LC_JOB_HAS_MASTER, "SELECT EXISTS (SELECT 1 FROM master_keys WHERE state = 'active')", 0);

CV_SQL_DEF(has_tenant_key_sql, LC_JOB_HAS_TENANT_KEY,
    "SELECT EXISTS (SELECT 1 FROM tenant_keys WHERE tenant_id = $1::text AND state = 'active')", 1);

/* A job that ends between "start" and "join" sends the start round again;
 * a job ending that often in one call means something else is wrong. */
#define JOB_START_ATTEMPTS 4

cv_result cv_store_lc_job_start(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id, const char *actor,
                                const struct cv_audit_event *ev, struct cv_key_job_row *job, int *started)
{
    *started = 0;
    CV_GUARD(check_kind_tenant(kind, tenant_id));
    CV_GUARD(cv_store_check_len("actor", actor, 0, CV_STORE_PRINCIPAL_MAX_BYTES));
    int master = kind == CV_JOB_MASTER_REWRAP;
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &start_master_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, job_scope(kind, tenant_id), &d, &tx));
    /* Each statement reads the newest committed rows (READ COMMITTED): the
     * running job that made the insert do nothing can end before the join
     * looks for it. Then no job runs, and the insert is tried again. */
    for (int attempt = 0; attempt < JOB_START_ATTEMPTS; attempt++) {
        cv_q_init(&q, master ? &start_master_sql : &start_record_sql);
        if (!master) cv_q_text(&q, tenant_id);
        cv_q_text(&q, actor);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
        CV_GUARD_OUT(r, cv_pq_expect(q.res, CV_LC_JOB_NCOLS + 1));
        if (PQntuples(q.res) == 1) {
            CV_GUARD_OUT(r, read_job_with_remaining(q.res, 0, job));
            cv_q_clear(&q, 1);
            CV_GUARD_OUT(r, cv_tx_key_event(&tx, "job_started", master ? NULL : tenant_id, job->target_version));
            CV_GUARD_OUT(r, cv_tx_audit(&tx, ev, job->target_version));
            CV_GUARD_OUT(r, cv_tx_commit(&tx));
            *started = 1;
            goto out;
        }
        cv_q_clear(&q, 1);
        /* a job is running already (or there is no key to move to) */
        cv_q_init(&q, master ? &join_master_sql : &join_record_sql);
        if (!master) cv_q_text(&q, tenant_id);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
        CV_GUARD_OUT(r, cv_pq_expect(q.res, CV_LC_JOB_NCOLS + 1));
        if (PQntuples(q.res) == 1) {
            CV_GUARD_OUT(r, read_job_with_remaining(q.res, 0, job));
            cv_q_clear(&q, 1);
            CV_GUARD_OUT(r, cv_tx_commit(&tx));
            goto out;
        }
        cv_q_clear(&q, 1);
        cv_q_init(&q, master ? &has_master_sql : &has_tenant_key_sql);
        if (!master) cv_q_text(&q, tenant_id);
        CV_GUARD_OUT(r, cv_tx_exec_row(&tx, &q, NULL, 1));
        int target_exists = 0;
        CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 0, &target_exists));
        cv_q_clear(&q, 1);
        if (!target_exists) break;
    }
    r = master ? cv_fail(CV_ERR_NOT_FOUND, "no active master key is registered")
               : cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- reads ---- */

CV_SQL_DEF(latest_sql, LC_JOB_LATEST,
    "SELECT " CV_LC_JOB_COLS ", " REMAINING " FROM key_jobs j "
    "WHERE j.kind = $1::text AND coalesce(j.tenant_id, '') = $2::text ORDER BY j.id DESC LIMIT 1",
    2);

CV_SQL_DEF(by_id_sql, LC_JOB_BY_ID, "SELECT " CV_LC_JOB_COLS ", " REMAINING " FROM key_jobs j WHERE j.id = $1::int8", 1);

CV_SQL_DEF(running_sql, LC_JOBS_RUNNING,
    "SELECT " CV_LC_JOB_COLS ", " REMAINING " FROM key_jobs j WHERE j.state = 'running' ORDER BY j.id LIMIT $1::int8",
    1);

/* One read-only statement in its own transaction; rows go to `each`. */
static cv_result read_jobs(struct cv_store *st, const char *scope_tenant, struct cv_q *q, cv_store_job_cb cb,
                           void *arg, struct cv_key_job_row *one)
{
    struct cv_tx_open tx;
    struct cv_tx d;
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, scope_tenant, &d, &tx));
    CV_GUARD_OUT(r, cv_tx_exec(&tx, q, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(q->res, CV_LC_JOB_NCOLS + 1));
    int n = PQntuples(q->res);
    if (one && n != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "no rewrap job found");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        struct cv_key_job_row job;
        memset(&job, 0, sizeof(job));
        CV_GUARD_OUT(r, read_job_with_remaining(q->res, i, &job));
        if (one) *one = job;
        else if (cb(arg, &job)) break;
    }
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
out:
    cv_q_clear(q, 1);
    cv_tx_abort(&tx);
    return r;
}

cv_result cv_store_lc_job_latest(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id,
                                 struct cv_key_job_row *job)
{
    CV_GUARD(check_kind_tenant(kind, tenant_id));
    struct cv_q q;
    cv_q_init(&q, &latest_sql);
    cv_q_text(&q, kind_name(kind));
    cv_q_text(&q, tenant_id ? tenant_id : "");
    return read_jobs(st, job_scope(kind, tenant_id), &q, NULL, NULL, job);
}

cv_result cv_store_lc_job_refresh(struct cv_store *st, struct cv_key_job_row *job)
{
    CV_GUARD(check_kind_tenant(job->kind, job->kind == CV_JOB_MASTER_REWRAP ? NULL : job->tenant_id));
    struct cv_q q;
    cv_q_init(&q, &by_id_sql);
    cv_q_i64(&q, job->id);
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    memcpy(tenant, job->tenant_id, sizeof(tenant));
    return read_jobs(st, job_scope(job->kind, tenant), &q, NULL, NULL, job);
}

cv_result cv_store_lc_jobs_running(struct cv_store *st, unsigned limit, cv_store_job_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(limit >= 1 && limit <= CV_STORE_LIST_MAX, CV_ERR_INPUT, "limit out of range");
    struct cv_q q;
    cv_q_init(&q, &running_sql);
    cv_q_i64(&q, limit);
    return read_jobs(st, NULL, &q, cb, arg, NULL);
}

/* ---- end ---- */

/* Destroyed tenant keys have nothing a master key opens; they follow the
 * master rewrap so that the old master no longer counts them as its keys. */
CV_SQL_DEF(end_destroyed_sql, LC_JOB_END_DESTROYED,
    "UPDATE tenant_keys SET master_version = $1::int4 WHERE state = 'destroyed' AND master_version < $1::int4", 1);

CV_SQL_DEF(end_sql, LC_JOB_END,
    "WITH rem AS (SELECT " REMAINING " AS n FROM key_jobs j WHERE j.id = $1::int8) "
    "UPDATE key_jobs AS j SET state = CASE WHEN rem.n = 0 THEN 'done' ELSE 'failed' END,"
    " failed = CASE WHEN rem.n = 0 THEN j.failed ELSE $2::int8 END, finished_at = now(), updated_at = now() "
    "FROM rem WHERE j.id = $1::int8 AND j.state = 'running' AND (rem.n = 0 OR rem.n <= $2::int8) "
    "RETURNING " CV_LC_JOB_COLS ", rem.n",
    2);

cv_result cv_store_lc_job_end(struct cv_store *st, struct cv_key_job_row *job, uint64_t failed,
                              const struct cv_audit_event *ev, int *ended)
{
    *ended = 0;
    CV_GUARD(check_kind_tenant(job->kind, job->kind == CV_JOB_MASTER_REWRAP ? NULL : job->tenant_id));
    CV_ENSURE(failed <= INT64_MAX, CV_ERR_INPUT, "failed count out of range");
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q q;
    cv_q_init(&q, &end_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_lc_begin(st, job_scope(job->kind, job->tenant_id), &d, &tx));
    if (job->kind == CV_JOB_MASTER_REWRAP) {
        cv_q_init(&q, &end_destroyed_sql);
        cv_q_i64(&q, job->target_version);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
        cv_q_clear(&q, 1);
        cv_q_init(&q, &end_sql);
    }
    cv_q_i64(&q, job->id);
    cv_q_i64(&q, (int64_t)failed);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, CV_LC_JOB_NCOLS + 1));
    int ended_here = PQntuples(q.res) == 1;
    if (ended_here) CV_GUARD_OUT(r, read_job_with_remaining(q.res, 0, job));
    cv_q_clear(&q, 1);
    if (ended_here) {
        struct cv_audit_event e = *ev;
        e.outcome = strcmp(job->state, "done") == 0 ? "success" : "error";
        CV_GUARD_OUT(r, cv_tx_audit(&tx, &e, job->target_version));
    }
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *ended = ended_here;
out:
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    return r;
}

/* ---- record rewrap batch ---- */

/* FOR NO KEY UPDATE SKIP LOCKED: other workers skip these rows; a client's
 * update of one waits for the batch (a few milliseconds) and then applies.
 * No ORDER BY: any rows will do, and sorting would read every remaining row
 * per batch (quadratic in the tenant's records) instead of stopping at LIMIT. */
CV_SQL_DEF(records_sql, LC_RECORD_REWRAP_SELECT,
    "SELECT id, server_id, key_version, encrypted_env, revision FROM mcp_credentials "
    "WHERE tenant_id = $1::text AND key_version < $2::int4 AND server_id <> ALL ($3::text[]) "
    "LIMIT $4::int8 FOR NO KEY UPDATE SKIP LOCKED",
    4);

/* Not a content change: revision and last_updated stay, so a client's
 * If-Match taken before the rewrap still holds. */
CV_SQL_DEF(record_update_sql, LC_RECORD_REWRAP_UPDATE,
    "UPDATE mcp_credentials SET encrypted_env = $3::text, key_version = $4::int4 "
    "WHERE tenant_id = $1::text AND id = $2::text",
    4);

/* The batch's encryptions, in this backend's shard (migration 0002). */
CV_SQL_DEF(count_sql, LC_RECORD_REWRAP_COUNT,
    "INSERT INTO tenant_key_usage AS u (tenant_id, version, shard, encryptions) "
    "VALUES ($1::text, $2::int4, pg_backend_pid() % 16, $3::int8) "
    "ON CONFLICT (tenant_id, version, shard) DO UPDATE SET encryptions = u.encryptions + EXCLUDED.encryptions",
    3);

CV_SQL_DEF(record_progress_sql, LC_RECORD_REWRAP_PROGRESS,
    "UPDATE key_jobs SET done = done + $2::int8, batches = batches + 1,"
    " target_version = greatest(target_version, $3::int4), updated_at = now() WHERE id = $1::int8",
    3);

static const struct cv_tx record_msgs = {.fk = "tenant key not found"};

cv_result cv_store_lc_record_rewrap_batch(struct cv_store *st, const struct cv_key_job_row *job, uint32_t target,
                                          unsigned limit, struct cv_store_skip *skip, cv_store_record_rewrap_cb cb,
                                          void *arg, unsigned *processed)
{
    *processed = 0;
    CV_ENSURE_REF(cb);
    CV_ENSURE(job->kind == CV_JOB_RECORD_REWRAP, CV_ERR_INTERNAL, "not a record rewrap");
    CV_ENSURE(cv_tenant_id_valid(job->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(limit >= 1 && limit <= CV_STORE_REWRAP_BATCH_MAX, CV_ERR_INPUT, "batch size out of range");
    CV_ENSURE(target >= 1 && target <= INT32_MAX, CV_ERR_INPUT, "key version out of range");
    char *skipped = cv_lc_skip_literal(skip);
    CV_ENSURE(skipped != NULL, CV_ERR_MEMORY, "out of memory");
    const char *tenant = job->tenant_id;
    struct cv_tx_open tx;
    struct cv_tx d;
    struct cv_q sel, q;
    cv_q_init(&sel, &records_sql);
    cv_q_init(&q, &record_update_sql);
    cv_result r;
    unsigned moved = 0;
    char *sealed = NULL;
    CV_GUARD_OUT(r, cv_lc_begin(st, tenant, &d, &tx));
    cv_q_text(&sel, tenant);
    cv_q_i64(&sel, target);
    cv_q_text(&sel, skipped);
    cv_q_i64(&sel, limit);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &sel, NULL));
    CV_GUARD_OUT(r, cv_pq_expect(sel.res, 5));
    for (int i = 0; i < PQntuples(sel.res); i++) {
        char server[CV_SERVER_ID_MAX_BYTES + 1];
        uint32_t version;
        int64_t revision;
        CV_GUARD_OUT(r, cv_pq_text(sel.res, i, 1, server, sizeof(server)));
        CV_GUARD_OUT(r, cv_pq_u32(sel.res, i, 2, &version));
        CV_GUARD_OUT(r, cv_pq_i64(sel.res, i, 4, &revision));
        r = cb(arg, server, version, revision, PQgetvalue(sel.res, i, 3), &sealed);
        if (r.err == CV_ERR_CRYPTO) {
            if (!cv_lc_skip_add(skip, server)) {
                r = cv_fail(CV_ERR_CONFLICT, "more than %d records failed to rewrap", CV_STORE_REWRAP_SKIP_MAX);
                goto out;
            }
            r = CV_OK;
            continue;
        }
        if (cv_failed(r)) goto out;
        CV_GUARD_OUT(r, cv_store_check_len("encrypted_env", sealed, 1, CV_STORE_ENV_MAX_BYTES));
        cv_q_init(&q, &record_update_sql);
        cv_q_text(&q, tenant);
        cv_q_text(&q, PQgetvalue(sel.res, i, 0));
        cv_q_text(&q, sealed);
        cv_q_i64(&q, target);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &record_msgs));
        cv_q_clear(&q, 1);
        free(sealed);
        sealed = NULL;
        moved++;
    }
    if (moved > 0) {
        cv_q_init(&q, &count_sql);
        cv_q_text(&q, tenant);
        cv_q_i64(&q, target);
        cv_q_i64(&q, moved);
        CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, &record_msgs));
        cv_q_clear(&q, 1);
    }
    cv_q_init(&q, &record_progress_sql);
    cv_q_i64(&q, job->id);
    cv_q_i64(&q, moved);
    cv_q_i64(&q, target);
    CV_GUARD_OUT(r, cv_tx_exec(&tx, &q, NULL));
    cv_q_clear(&q, 1);
    CV_GUARD_OUT(r, cv_tx_commit(&tx));
    *processed = moved;
out:
    free(sealed);
    cv_q_clear(&sel, 1);
    cv_q_clear(&q, 1);
    cv_tx_abort(&tx);
    free(skipped);
    return r;
}
