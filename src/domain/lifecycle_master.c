/* Master key versions: list, rotate (credvault-master-<n+1> in the token,
 * then a job that rewraps every tenant key under it: O(tenants), records
 * untouched), retire (destroyed in the token once no tenant key needs it),
 * and follow the newest version another instance made. Admin only; audited.
 * The master key itself never leaves the token. */
#include <stdio.h>
#include <string.h>

#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/lifecycle.h"

#define CANARY_TENANT "_canary" /* as in keys.c: not a valid tenant id, so it never collides */

static cv_result require_admin(const struct cv_principal *p)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN, CV_ERR_FORBIDDEN, "this action needs an admin token");
    return CV_OK;
}

static void label_of(uint32_t version, char out[48])
{
    snprintf(out, 48, CV_HSM_MASTER_LABEL_PREFIX "%u", version);
}

cv_result cv_lifecycle_refresh_master(struct cv_app *app)
{
    struct cv_master_key_row row;
    CV_GUARD(cv_store_master_key_current(app->store, &row));
    uint32_t cur = cv_lifecycle_master_version(app);
    if (row.version == cur) return CV_OK;
    char from[16], to[16];
    snprintf(from, sizeof(from), "%u", cur);
    snprintf(to, sizeof(to), "%u", row.version);
    int exists = 0;
    CV_GUARD(cv_hsm_master_exists(app->hsm, row.version, &exists));
    if (!exists) {
        /* keep wrapping under the old one: it still opens, and the master
         * rewrap moves these keys later */
        cv_log(CV_LOG_WARN, "master_key_not_in_token", "version", to, NULL);
        return CV_OK;
    }
    cv_lifecycle_set_master_version(app, row.version);
    cv_log(CV_LOG_INFO, "master_version_changed", "from", from, "to", to, NULL);
    return CV_OK;
}

/* ---- list ---- */

struct list_ctx {
    struct cv_app *app;
    json_t *arr;
    cv_result r;
};

static int add_version(void *arg, const struct cv_master_key_row *row)
{
    struct list_ctx *l = arg;
    int exists = 0;
    l->r = cv_hsm_master_exists(l->app->hsm, row->version, &exists);
    if (cv_failed(l->r)) return 1;
    char created[32], label[48];
    cv_time_iso8601(row->created_at_ms, created);
    label_of(row->version, label);
    return json_array_append_new(l->arr, json_pack("{s:I, s:s, s:s, s:s, s:I, s:b}", "version",
                                                    (json_int_t)row->version, "label", label, "state", row->state,
                                                    "createdAt", created, "tenantKeys", (json_int_t)row->tenant_keys,
                                                    "inToken", exists));
}

cv_result cv_master_keys_list(struct cv_app *app, const struct cv_principal *p, json_t **data)
{
    CV_GUARD(require_admin(p));
    struct list_ctx l = {.app = app, .arr = json_array(), .r = CV_OK};
    CV_ENSURE(l.arr != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result r = cv_store_master_key_list(app->store, add_version, &l);
    if (cv_ok(r)) r = l.r;
    json_t *job = NULL;
    if (cv_ok(r)) {
        struct cv_key_job_row row;
        r = cv_store_lc_job_latest(app->store, CV_JOB_MASTER_REWRAP, NULL, &row);
        if (cv_ok(r)) job = cv_lifecycle_job_json(&row);
        else if (r.err == CV_ERR_NOT_FOUND) r = CV_OK;
    }
    if (cv_failed(r)) {
        json_decref(l.arr);
        return r;
    }
    *data = json_pack("{s:I, s:o, s:o}", "current", (json_int_t)cv_lifecycle_master_version(app), "versions", l.arr,
                      "rewrap", job ? job : json_null());
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- rotate ---- */

/* Inside the rotation's transaction (the advisory lock is held): the token's
 * part. A key left by a rotation that died before its commit is reused: it
 * was made by us and nothing was ever wrapped under it. */
static cv_result make_master(void *arg, uint32_t version, struct cv_master_key_row *row)
{
    struct cv_app *app = arg;
    int exists = 0;
    CV_GUARD(cv_hsm_master_exists(app->hsm, version, &exists));
    if (!exists) CV_GUARD(cv_hsm_master_create(app->hsm, version));
    memset(row, 0, sizeof(*row));
    row->version = version;
    snprintf(row->state, sizeof(row->state), "active");
    snprintf(row->canary.tenant_id, sizeof(row->canary.tenant_id), "%s", CANARY_TENANT);
    row->canary.version = 1;
    row->canary.master_version = version;
    return cv_hsm_tenant_key_generate(app->hsm, &row->canary);
}

cv_result cv_master_key_rotate(struct cv_app *app, const struct cv_principal *p, json_t **data,
                               struct cv_key_job_row *job_out)
{
    CV_GUARD(require_admin(p));
    uint32_t previous = cv_lifecycle_master_version(app), v = 0;
    struct cv_key_job_row job;
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, NULL, "master_key.rotate", CV_HSM_MASTER_LABEL_PREFIX, "success");
    CV_GUARD(cv_audit_change(app, cv_store_lc_master_rotate(app->store, p->name, make_master, app, &ev, &v, &job), 1));
    cv_lifecycle_set_master_version(app, v);
    char label[48], mv[16];
    label_of(v, label);
    snprintf(mv, sizeof(mv), "%u", v);
    cv_log(CV_LOG_INFO, "master_key_rotated", "label", label, "version", mv, "by", p->name, NULL);
    if (job_out) *job_out = job;
    if (!data) return CV_OK;
    *data = json_pack("{s:I, s:s, s:I, s:o}", "version", (json_int_t)v, "label", label, "previousVersion",
                      (json_int_t)previous, "rewrap", cv_lifecycle_job_json(&job));
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- retire ---- */

cv_result cv_master_key_retire(struct cv_app *app, const struct cv_principal *p, const char *version, json_t **data)
{
    CV_GUARD(require_admin(p));
    uint32_t v;
    CV_GUARD(cv_lifecycle_parse_version(version, "the master key version", &v));
    int existed = 0;
    uint64_t wrapping = 0;
    uint32_t newest = 0;
    char label[48];
    label_of(v, label);
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, NULL, "master_key.retire", label, "success");
    cv_result r = cv_audit_change(app, cv_store_lc_master_forget(app->store, v, &ev, &existed, &wrapping, &newest), 1);
    if (r.err == CV_ERR_CONFLICT) {
        cv_result a = cv_audit(app, p, NULL, "master_key.retire", label, "denied");
        if (cv_failed(a)) return a;
        if (v >= newest)
            return cv_fail_code(CV_ERR_CONFLICT, "master_key_current", "%s is the current master key: rotate first",
                                label);
        return cv_fail_code(CV_ERR_CONFLICT, "master_key_in_use",
                            "%s still wraps %llu tenant key%s: run `credvault master rewrap` (or wait for the "
                            "running rewrap) first",
                            label, (unsigned long long)wrapping, wrapping == 1 ? "" : "s");
    }
    CV_GUARD(r);
    int in_token = 0;
    CV_GUARD(cv_hsm_master_exists(app->hsm, v, &in_token));
    /* without a row, only a key an interrupted retirement left behind may go */
    CV_ENSURE(existed || (in_token && v < newest), CV_ERR_NOT_FOUND, "master key version %u not found", v);
    if (in_token) CV_GUARD(cv_hsm_master_destroy(app->hsm, v));
    cv_log(CV_LOG_WARN, "master_key_retired", "label", label, "by", p->name, NULL);
    /* without a row, this run's change was the token's alone: its event follows it */
    if (!existed) CV_GUARD(cv_audit(app, p, NULL, "master_key.retire", label, "success"));
    *data = json_pack("{s:I, s:s, s:b}", "version", (json_int_t)v, "label", label, "destroyed", in_token);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- rewrap ---- */

cv_result cv_master_rewrap_start(struct cv_app *app, const struct cv_principal *p, json_t **data,
                                 struct cv_key_job_row *job_out)
{
    CV_GUARD(require_admin(p));
    struct cv_key_job_row job;
    int started = 0;
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, NULL, "master_key.rewrap_start", CV_HSM_MASTER_LABEL_PREFIX, "success");
    CV_GUARD(cv_store_lc_job_start(app->store, CV_JOB_MASTER_REWRAP, NULL, p->name, &ev, &job, &started));
    cv_audit_committed(app, started ? 1 : 0);
    if (job_out) *job_out = job;
    if (!data) return CV_OK;
    json_t *doc = cv_lifecycle_job_json(&job);
    CV_ENSURE(doc != NULL, CV_ERR_MEMORY, "out of memory");
    json_object_set_new(doc, "started", json_boolean(started));
    *data = doc;
    return CV_OK;
}

cv_result cv_master_rewrap_status(struct cv_app *app, const struct cv_principal *p, json_t **data)
{
    CV_GUARD(require_admin(p));
    struct cv_key_job_row job;
    cv_result r = cv_store_lc_job_latest(app->store, CV_JOB_MASTER_REWRAP, NULL, &job);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "no master rewrap has run yet");
    CV_GUARD(r);
    *data = cv_lifecycle_job_json(&job);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}
