/* Key lifecycle use cases (issue 4): master key rotation and retirement,
 * tenant key rotation (by hand and automatic), record and master rewrap
 * jobs, the minimum decryption version, destruction of retired versions,
 * crypto-shredding, and the background threads of `serve` that follow other
 * instances (LISTEN/NOTIFY) and run rewrap jobs. Results are jansson
 * documents in the API's shapes, as in domain.h. Every action is audited. */
#ifndef CREDVAULT_DOMAIN_LIFECYCLE_H
#define CREDVAULT_DOMAIN_LIFECYCLE_H

#include "credvault/store_lifecycle.h"
#include "domain/domain.h"

#define CV_LC_JOBS_PER_PASS 64        /* running jobs a worker looks at per pass */
#define CV_LC_EVENTS_PAGE 256         /* key events read per catch-up query */
#define CV_LC_EVENTS_KEEP_S 86400     /* key events are pruned after a day */
#define CV_LC_SEEN_EVENTS 1024        /* recently handled event ids remembered */
#define CV_LC_ROTATE_ATTEMPTS 4       /* tries when rotations of one tenant race */
#define CV_LC_DESTROYED_LISTED 64     /* destroyed versions named in a reply */

/* ---- hooks for sealing and opening (src/domain/seal.c) ---- */

/* The key for a new write: the tenant's newest active version, rotated
 * first when it reached CREDVAULT_KEY_MAX_ENCRYPTIONS or is older than
 * CREDVAULT_KEY_MAX_AGE_DAYS. */
CV_RESULT cv_lifecycle_key_for_write(struct cv_app *app, const char *tenant_id, struct cv_tenant_key_row *key);
/* Whether a key version may still decrypt: CV_ERR_CONFLICT with code
 * "key_version_retired" below the tenant's minimum decryption version, and
 * "key_version_destroyed" after it was destroyed. */
CV_RESULT cv_lifecycle_check_decrypt(const struct cv_tenant_key_row *key);

/* ---- pure policy (unit-tested) ---- */

/* NULL when the version may keep encrypting, else why it must rotate
 * ("encryption limit", "age limit"). max_age_days 0: no age limit. */
const char *cv_lifecycle_rotation_due(uint64_t encryptions, int64_t created_at_ms, int64_t now_ms,
                                      uint64_t max_encryptions, unsigned max_age_days);
/* A key version from a path or body: 1 to INT32_MAX, decimal, no sign or
 * leading zero; CV_ERR_INPUT naming `what` otherwise. */
CV_RESULT cv_lifecycle_parse_version(const char *s, const char *what, uint32_t *out);
/* Progress of a job in percent (0..100) and its total (job.total, grown
 * when rows were added meanwhile). */
unsigned cv_lifecycle_job_percent(const struct cv_key_job_row *job, uint64_t *total);
/* The master key version new wraps use (app->master_version, read and
 * written atomically: the listener thread updates it). */
uint32_t cv_lifecycle_master_version(const struct cv_app *app);
void cv_lifecycle_set_master_version(struct cv_app *app, uint32_t v);
/* Follows the database's newest active master version, once the token
 * holds that key (another instance may have just made it). */
CV_RESULT cv_lifecycle_refresh_master(struct cv_app *app);

/* ---- master keys (admin) ---- */
CV_RESULT cv_master_keys_list(struct cv_app *app, const struct cv_principal *p, json_t **data);
/* Makes master newest+1, registers it and starts the rewrap of every tenant
 * key under it (a job; `job_out` gets it when not NULL). */
CV_RESULT cv_master_key_rotate(struct cv_app *app, const struct cv_principal *p, json_t **data,
                               struct cv_key_job_row *job_out);
/* Destroys master `version` in the token once no tenant key needs it. */
CV_RESULT cv_master_key_retire(struct cv_app *app, const struct cv_principal *p, const char *version, json_t **data);
/* Starts (or joins) a rewrap of the tenant keys still under older masters. */
CV_RESULT cv_master_rewrap_start(struct cv_app *app, const struct cv_principal *p, json_t **data,
                                 struct cv_key_job_row *job_out);
CV_RESULT cv_master_rewrap_status(struct cv_app *app, const struct cv_principal *p, json_t **data);

/* ---- tenant keys ---- */
CV_RESULT cv_tenant_key_rotate(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                               json_t **data);
CV_RESULT cv_tenant_rewrap_start(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                 json_t **data, struct cv_key_job_row *job_out);
/* Admin, or the tenant's own tenant-admin and auditor. */
CV_RESULT cv_tenant_rewrap_status(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                  json_t **data);
/* body {"version": N}: raises the minimum decryption version. */
CV_RESULT cv_tenant_min_decrypt_set(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                    json_t *body, json_t **data);
CV_RESULT cv_tenant_keys_destroy_retired(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                         json_t **data);
/* Crypto-shredding; `confirm` must equal tenant_id (CV_ERR_INPUT otherwise). */
CV_RESULT cv_tenant_shred(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                          const char *confirm, json_t **data);

/* The job document of the API ({"id", "kind", "state", "percent", …}). */
json_t *cv_lifecycle_job_json(const struct cv_key_job_row *job);

/* ---- running a job (the serve worker and the CLI) ---- */
struct cv_rewrap_run;
CV_RESULT cv_rewrap_run_new(struct cv_app *app, const struct cv_key_job_row *job, struct cv_rewrap_run **out);
/* One batch, or the end of the job. *finished = 1 once the job is no longer
 * running (done, failed or superseded, by this run or another instance);
 * *moved = rows this batch moved (0 and not finished: the remaining rows
 * are locked by another worker; try again later). */
CV_RESULT cv_rewrap_run_step(struct cv_rewrap_run *run, int *finished, unsigned *moved);
const struct cv_key_job_row *cv_rewrap_run_job(const struct cv_rewrap_run *run);
void cv_rewrap_run_free(struct cv_rewrap_run *run);

/* ---- background threads of `serve` ---- */
struct cv_lifecycle;
/* Starts the key-event listener (cache drops, master version pickup) and the
 * rewrap worker (resumes unfinished jobs). Each thread has its own store
 * connection. */
CV_RESULT cv_lifecycle_start(struct cv_app *app, struct cv_lifecycle **out);
/* Stops and joins both threads; NULL is a no-op. Call before cv_app_close. */
void cv_lifecycle_stop(struct cv_lifecycle *lc);

#endif
