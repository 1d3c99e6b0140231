/* Small rules of the key lifecycle with no I/O: when a key version must
 * rotate, how versions are parsed, how a job's progress is shown, and the
 * atomic master version. Kept apart so unit tests reach them without an HSM
 * or a database. */
#include <stdio.h>
#include <string.h>

#include "domain/lifecycle.h"

#define MS_PER_DAY INT64_C(86400000)

const char *cv_lifecycle_rotation_due(uint64_t encryptions, int64_t created_at_ms, int64_t now_ms,
                                      uint64_t max_encryptions, unsigned max_age_days)
{
    /* GCM with random 96-bit IVs is safe for about 2^32 encryptions under
     * one key (NIST SP 800-38D §8.3); the setting keeps far below that */
    if (max_encryptions > 0 && encryptions >= max_encryptions) return "encryption limit";
    if (max_age_days > 0 && created_at_ms > 0 && now_ms - created_at_ms >= (int64_t)max_age_days * MS_PER_DAY)
        return "age limit";
    return NULL;
}

cv_result cv_lifecycle_parse_version(const char *s, const char *what, uint32_t *out)
{
    CV_ENSURE(s && *s >= '1' && *s <= '9' && strlen(s) <= 10, CV_ERR_INPUT, "%s must be a key version (1 or more)",
              what);
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        CV_ENSURE(*p >= '0' && *p <= '9', CV_ERR_INPUT, "%s must be a key version (1 or more)", what);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    CV_ENSURE(v <= INT32_MAX, CV_ERR_INPUT, "%s is out of range", what);
    *out = (uint32_t)v;
    return CV_OK;
}

unsigned cv_lifecycle_job_percent(const struct cv_key_job_row *job, uint64_t *total)
{
    /* rows written under an old version after the job started (a writer
     * that read the key just before the rotation) grow the work */
    uint64_t t = job->total;
    if (job->done + job->remaining > t) t = job->done + job->remaining;
    if (total) *total = t;
    if (strcmp(job->state, "done") == 0 || t == 0) return 100;
    uint64_t left = job->remaining > t ? t : job->remaining;
    unsigned pct = (unsigned)(((t - left) * 100) / t);
    return pct > 99 ? 99 : pct; /* 100 only once the job says done */
}

uint32_t cv_lifecycle_master_version(const struct cv_app *app)
{
    return __atomic_load_n(&app->master_version, __ATOMIC_ACQUIRE);
}

void cv_lifecycle_set_master_version(struct cv_app *app, uint32_t v)
{
    __atomic_store_n(&app->master_version, v, __ATOMIC_RELEASE);
}

json_t *cv_lifecycle_job_json(const struct cv_key_job_row *job)
{
    char created[32], updated[32], finished[32];
    cv_time_iso8601(job->created_at_ms, created);
    cv_time_iso8601(job->updated_at_ms, updated);
    if (job->finished_at_ms) cv_time_iso8601(job->finished_at_ms, finished);
    uint64_t total;
    unsigned pct = cv_lifecycle_job_percent(job, &total);
    int master = job->kind == CV_JOB_MASTER_REWRAP;
    return json_pack("{s:I, s:s, s:s?, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:s?}", "id",
                     (json_int_t)job->id, "kind", master ? "master_rewrap" : "record_rewrap", "tenantId",
                     master ? NULL : job->tenant_id, "targetVersion", (json_int_t)job->target_version, "state",
                     job->state, "total", (json_int_t)total, "done", (json_int_t)job->done, "remaining",
                     (json_int_t)job->remaining, "failed", (json_int_t)job->failed, "batches",
                     (json_int_t)job->batches, "percent", (json_int_t)pct, "unit",
                     master ? "tenant keys" : "records", "createdBy", job->created_by, "createdAt", created,
                     "updatedAt", updated, "finishedAt", job->finished_at_ms ? finished : NULL);
}
