/* What the key-lifecycle files of src/store share: the transaction they
 * begin (through the one engine, tx.c), rewrap skip lists and job rows. */
#include <stdlib.h>
#include <string.h>

#include "store/lifecycle.h"

cv_result cv_lc_begin(struct cv_store *st, const char *tenant_id, struct cv_tx *d, struct cv_tx_open *o)
{
    memset(d, 0, sizeof(*d));
    memset(o, 0, sizeof(*o));
    CV_ENSURE(tenant_id == NULL || cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    d->scope = tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM;
    d->tenant_id = tenant_id;
    return cv_tx_begin(st, d, o);
}

int cv_lc_skip_add(struct cv_store_skip *skip, const char *id)
{
    if (skip->n >= CV_STORE_REWRAP_SKIP_MAX || strlen(id) > CV_STORE_SKIP_ID_MAX_BYTES) return 0;
    memcpy(skip->ids[skip->n], id, strlen(id) + 1);
    skip->n++;
    return 1;
}

char *cv_lc_skip_literal(const struct cv_store_skip *skip)
{
    /* every byte may need a backslash, plus quotes and a comma per id */
    size_t n = skip ? skip->n : 0;
    char *out = malloc(3 + n * (2 * CV_STORE_SKIP_ID_MAX_BYTES + 3));
    if (!out) return NULL;
    char *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *s = skip->ids[i]; *s; s++) {
            if (*s == '"' || *s == '\\') *p++ = '\\';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

cv_result cv_lc_job_row(const PGresult *res, int row, int col, struct cv_key_job_row *job)
{
    uint64_t remaining = job->remaining;
    memset(job, 0, sizeof(*job));
    job->remaining = remaining;
    char kind[32];
    int64_t v;
    CV_GUARD(cv_pq_i64(res, row, col + 0, &job->id));
    CV_GUARD(cv_pq_text(res, row, col + 1, kind, sizeof(kind)));
    CV_ENSURE(strcmp(kind, "master_rewrap") == 0 || strcmp(kind, "record_rewrap") == 0, CV_ERR_INTERNAL,
              "database returned an unknown job kind");
    job->kind = kind[0] == 'm' ? CV_JOB_MASTER_REWRAP : CV_JOB_RECORD_REWRAP;
    CV_GUARD(cv_pq_text(res, row, col + 2, job->tenant_id, sizeof(job->tenant_id)));
    CV_GUARD(cv_pq_u32(res, row, col + 3, &job->target_version));
    CV_GUARD(cv_pq_text(res, row, col + 4, job->state, sizeof(job->state)));
    CV_GUARD(cv_pq_i64(res, row, col + 5, &v));
    job->total = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 6, &v));
    job->done = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 7, &v));
    job->failed = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 8, &v));
    job->batches = (uint64_t)v;
    CV_GUARD(cv_pq_i64(res, row, col + 9, &job->created_at_ms));
    CV_GUARD(cv_pq_i64(res, row, col + 10, &job->updated_at_ms));
    CV_GUARD(cv_pq_i64(res, row, col + 11, &job->finished_at_ms));
    CV_GUARD(cv_pq_text(res, row, col + 12, job->created_by, sizeof(job->created_by)));
    return CV_OK;
}
