/* Runs a rewrap job batch by batch (serve worker and CLI): records are
 * decrypted under their version and sealed under the newest (AAD as in
 * seal.c); tenant keys are rewrapped in the token. Plaintext only in wiped
 * secret memory, one record at a time, never parsed or logged; a row that
 * does not decrypt is skipped, logged, and ends the job 'failed' at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/lifecycle.h"

#define REWRAP_MAX_KEY_VERSIONS 1024 /* versions of one tenant a batch looks up */

struct cv_rewrap_run {
    struct cv_app *app;
    struct cv_key_job_row job;
    struct cv_store_skip *skip;
    struct cv_tenant_key_row *keys; /* record jobs: the tenant's versions, read per batch */
    size_t nkeys;
    uint32_t target;
};

cv_result cv_rewrap_run_new(struct cv_app *app, const struct cv_key_job_row *job, struct cv_rewrap_run **out)
{
    struct cv_rewrap_run *run = calloc(1, sizeof(*run));
    CV_ENSURE(run != NULL, CV_ERR_MEMORY, "out of memory");
    run->skip = calloc(1, sizeof(*run->skip));
    run->keys = calloc(REWRAP_MAX_KEY_VERSIONS, sizeof(*run->keys));
    if (!run->skip || !run->keys) {
        cv_rewrap_run_free(run);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    run->app = app;
    run->job = *job;
    *out = run;
    return CV_OK;
}

void cv_rewrap_run_free(struct cv_rewrap_run *run)
{
    if (!run) return;
    free(run->skip);
    if (run->keys) cv_wipe(run->keys, REWRAP_MAX_KEY_VERSIONS * sizeof(*run->keys));
    free(run->keys);
    free(run);
}

const struct cv_key_job_row *cv_rewrap_run_job(const struct cv_rewrap_run *run) { return &run->job; }

static void log_skip(const struct cv_key_job_row *job, const char *row, const char *why)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)job->id);
    cv_log(CV_LOG_ERROR, "rewrap_row_skipped", "job", id, "tenant", job->tenant_id, "row", row, "reason", why, NULL);
}

/* ---- master: one tenant key under the job's master version ---- */

static cv_result master_one(void *arg, const struct cv_key_ref *in, struct cv_key_ref *out)
{
    struct cv_rewrap_run *run = arg;
    cv_result r = cv_hsm_tenant_key_rewrap(run->app->hsm, in, run->job.target_version, out);
    if (r.err == CV_ERR_CRYPTO) {
        char row[CV_TENANT_ID_MAX_BYTES + 16];
        snprintf(row, sizeof(row), "%s/%u", in->tenant_id, in->version);
        log_skip(&run->job, row, "the wrapped key or its binding does not verify");
    }
    return r;
}

/* ---- records: one record under the tenant's newest version ---- */

static const struct cv_tenant_key_row *find_key(const struct cv_rewrap_run *run, uint32_t version)
{
    for (size_t i = 0; i < run->nkeys; i++)
        if (run->keys[i].ref.version == version) return &run->keys[i];
    return NULL;
}

static cv_result skip_record(const struct cv_rewrap_run *run, const char *server_id, const char *why)
{
    log_skip(&run->job, server_id, why);
    return cv_fail(CV_ERR_CRYPTO, "decryption failed");
}

static cv_result record_one(void *arg, const char *server_id, uint32_t key_version, int64_t revision, const char *env,
                            char **sealed)
{
    struct cv_rewrap_run *run = arg;
    const char *tenant = run->job.tenant_id;
    *sealed = NULL;
    const struct cv_tenant_key_row *old = find_key(run, key_version), *target = find_key(run, run->target);
    if (!target) return cv_fail(CV_ERR_INTERNAL, "the target key version is missing");
    if (!old) return skip_record(run, server_id, "key version unknown");
    /* the minimum decryption version holds for rewraps too: a record under
     * a retired version is not carried forward */
    if (strcmp(old->state, "active") != 0) return skip_record(run, server_id, "key version retired or destroyed");

    struct cv_record rec;
    cv_record_init(&rec);
    struct cv_buf aad = CV_BUF_EMPTY, pt = CV_BUF_EMPTY, out = CV_BUF_EMPTY;
    cv_buf_init(&aad, 1024);
    cv_buf_init_secret(&pt, CV_HSM_GCM_MAX_BYTES);
    cv_buf_init(&out, 4 * CV_HSM_GCM_MAX_BYTES);
    cv_result r = CV_OK;
    if (cv_failed(cv_record_decode(env, strlen(env), &rec))) {
        r = skip_record(run, server_id, "malformed record");
        goto out;
    }
    if (strcmp(rec.tenant_id, tenant) != 0 || rec.key_version != key_version) {
        r = skip_record(run, server_id, "record kid does not match its row");
        goto out;
    }
    if (rec.ct.len == 0 || rec.ct.len > CV_HSM_GCM_MAX_BYTES) {
        r = skip_record(run, server_id, "record size out of range");
        goto out;
    }
    CV_GUARD_OUT(r, cv_record_aad_rev(tenant, server_id, key_version, rec.v, revision, &aad));
    CV_GUARD_OUT(r, cv_buf_reserve(&pt, rec.ct.len));
    r = cv_hsm_gcm_decrypt(run->app->hsm, &old->ref, aad.data, aad.len, rec.iv, rec.ct.data, rec.ct.len, rec.tag,
                           pt.data);
    if (r.err == CV_ERR_CRYPTO) {
        r = skip_record(run, server_id, "authentication failed");
        goto out;
    }
    if (cv_failed(r)) goto out;
    pt.len = rec.ct.len;
    /* the same plaintext under the new version, in the current format: new
     * IV, new AAD; the revision (and the row's binding) stay */
    cv_buf_reset(&aad);
    CV_GUARD_OUT(r, cv_record_aad_rev(tenant, server_id, target->ref.version, CV_RECORD_VERSION, revision, &aad));
    CV_GUARD_OUT(r, cv_hsm_gcm_encrypt(run->app->hsm, &target->ref, aad.data, aad.len, pt.data, pt.len, rec.iv,
                                       rec.ct.data, rec.tag));
    rec.v = CV_RECORD_VERSION;
    rec.key_version = target->ref.version;
    CV_GUARD_OUT(r, cv_record_encode(&rec, &out));
    *sealed = strdup((const char *)out.data);
    if (!*sealed) r = cv_fail(CV_ERR_MEMORY, "out of memory");
out:
    cv_record_wipe(&rec);
    cv_buf_free(&aad);
    cv_buf_free(&pt);
    cv_buf_free(&out);
    return r;
}

struct keys_ctx {
    struct cv_rewrap_run *run;
    uint32_t newest_active;
    int overflow;
};

static int add_key(void *arg, const struct cv_tenant_key_row *row)
{
    struct keys_ctx *k = arg;
    if (k->run->nkeys >= REWRAP_MAX_KEY_VERSIONS) {
        k->overflow = 1;
        return 1;
    }
    k->run->keys[k->run->nkeys++] = *row;
    if (strcmp(row->state, "active") == 0 && row->ref.version > k->newest_active) k->newest_active = row->ref.version;
    return 0;
}

static cv_result load_keys(struct cv_rewrap_run *run)
{
    cv_wipe(run->keys, run->nkeys * sizeof(*run->keys));
    run->nkeys = 0;
    struct keys_ctx k = {.run = run, .newest_active = 0, .overflow = 0};
    CV_GUARD(cv_store_tenant_key_list(run->app->store, run->job.tenant_id, add_key, &k));
    CV_ENSURE(!k.overflow, CV_ERR_CONFLICT, "tenant %s has more than %d key versions: raise the minimum decryption "
              "version and destroy retired versions first", run->job.tenant_id, REWRAP_MAX_KEY_VERSIONS);
    CV_ENSURE(k.newest_active > 0, CV_ERR_NOT_FOUND, "tenant %s has no active key", run->job.tenant_id);
    run->target = k.newest_active;
    return CV_OK;
}

/* ---- the step ---- */

/* The end of a job is recorded by the event that commits with it
 * (cv_store_lc_job_end); this logs it. */
static void report_end(struct cv_rewrap_run *run)
{
    const struct cv_key_job_row *job = &run->job;
    int master = job->kind == CV_JOB_MASTER_REWRAP;
    int ok = strcmp(job->state, "done") == 0;
    char id[24], done[24], failed[24], target[CV_TENANT_ID_MAX_BYTES + 48];
    snprintf(id, sizeof(id), "%lld", (long long)job->id);
    snprintf(done, sizeof(done), "%llu", (unsigned long long)job->done);
    snprintf(failed, sizeof(failed), "%llu", (unsigned long long)job->failed);
    if (master) snprintf(target, sizeof(target), CV_HSM_MASTER_LABEL_PREFIX "%u", job->target_version);
    else snprintf(target, sizeof(target), "%s/%u", job->tenant_id, job->target_version);
    cv_log(ok ? CV_LOG_INFO : CV_LOG_ERROR, ok ? "rewrap_done" : "rewrap_failed", "job", id, "target", target,
           "moved", done, "failed", failed, NULL);
}

static cv_result end_job(struct cv_rewrap_run *run, int *ended)
{
    struct cv_key_job_row *job = &run->job;
    int master = job->kind == CV_JOB_MASTER_REWRAP;
    struct cv_principal sys;
    memset(&sys, 0, sizeof(sys));
    snprintf(sys.name, sizeof(sys.name), "credvault-rewrap");
    sys.role = CV_ROLE_ADMIN;
    sys.request_id = "";
    char prefix[CV_TENANT_ID_MAX_BYTES + 2];
    if (master) snprintf(prefix, sizeof(prefix), CV_HSM_MASTER_LABEL_PREFIX);
    else snprintf(prefix, sizeof(prefix), "%s/", job->tenant_id);
    struct cv_audit_event ev;
    /* the outcome is set by the store: success when done, error when failed */
    cv_audit_event_init(&ev, &sys, master ? NULL : job->tenant_id,
                        master ? "master_key.rewrap_complete" : "tenant_key.rewrap_complete", prefix, "success");
    CV_GUARD(cv_store_lc_job_end(run->app->store, job, run->skip->n, &ev, ended));
    cv_audit_committed(run->app, *ended ? 1 : 0);
    return CV_OK;
}

cv_result cv_rewrap_run_step(struct cv_rewrap_run *run, int *finished, unsigned *moved)
{
    struct cv_app *app = run->app;
    *finished = 0;
    *moved = 0;
    if (strcmp(run->job.state, "running") != 0) {
        *finished = 1;
        return CV_OK;
    }
    unsigned limit = app->cfg->rewrap_batch_size;
    if (run->job.kind == CV_JOB_MASTER_REWRAP) {
        CV_GUARD(cv_store_lc_master_rewrap_batch(app->store, &run->job, limit, run->skip, master_one, run, moved));
    } else {
        CV_GUARD(load_keys(run));
        CV_GUARD(cv_store_lc_record_rewrap_batch(app->store, &run->job, run->target, limit, run->skip, record_one,
                                                 run, moved));
    }
    CV_GUARD(cv_store_lc_job_refresh(app->store, &run->job));
    if (strcmp(run->job.state, "running") != 0) {
        *finished = 1;
        return CV_OK;
    }
    /* nothing moved: either the job is complete, or only rows this run had
     * to skip remain, or another worker holds the rest (try again later) */
    if (*moved == 0 && run->job.remaining <= run->skip->n) {
        int ended = 0;
        CV_GUARD(end_job(run, &ended));
        if (ended) report_end(run);
        else CV_GUARD(cv_store_lc_job_refresh(app->store, &run->job));
        *finished = strcmp(run->job.state, "running") != 0;
    }
    return CV_OK;
}
