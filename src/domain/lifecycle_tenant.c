/* A tenant's keys over their life: rotation (asked for, or automatic at an
 * encryption or age limit), the record rewrap job, the minimum decryption
 * version, destruction of retired versions, crypto-shredding. Admin only,
 * except reading rewrap progress; audited; never returns or logs key material. */
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/lifecycle.h"
#include "domain/token_cache.h"

static cv_result require_admin(const struct cv_principal *p)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN, CV_ERR_FORBIDDEN, "this action needs an admin token");
    return CV_OK;
}

/* A tenant id that cannot exist is "not found", like one that does not. */
static cv_result check_tenant_id(const char *tenant_id)
{
    CV_ENSURE(tenant_id && cv_tenant_id_valid(tenant_id), CV_ERR_NOT_FOUND, "tenant not found");
    return CV_OK;
}

static cv_result tenant_not_found(cv_result r)
{
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
    return r;
}

/* Who background and automatic actions are recorded as. */
static void system_principal(struct cv_principal *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->role = CV_ROLE_ADMIN;
    p->request_id = "";
}

/* The event of a change to the tenant's keys: its target is "<tenant>/"
 * followed by the version the store picks (store_lifecycle.h). */
static void version_event(struct cv_audit_event *ev, char prefix[CV_TENANT_ID_MAX_BYTES + 2],
                          const struct cv_principal *p, const char *tenant_id, const char *action)
{
    snprintf(prefix, CV_TENANT_ID_MAX_BYTES + 2, "%s/", tenant_id);
    cv_audit_event_init(ev, p, tenant_id, action, prefix, "success");
}

/* ---- rotation ---- */

/* Adds version newest+1 under the current master. With `expect` set (an
 * automatic rotation) nothing happens unless `expect` is still the newest:
 * of many writers that saw the limit at once, one rotates. *version gets
 * the newest version afterwards. */
static cv_result rotate(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, uint32_t expect,
                        const char *why, uint32_t *version, uint32_t *previous)
{
    for (int attempt = 0; attempt < CV_LC_ROTATE_ATTEMPTS; attempt++) {
        struct cv_tenant_key_row cur, next;
        CV_GUARD(tenant_not_found(cv_store_tenant_key_current(app->store, tenant_id, &cur)));
        *version = *previous = cur.ref.version;
        if (expect && cur.ref.version != expect) return CV_OK; /* another writer or instance rotated */
        CV_ENSURE(cur.ref.version < INT32_MAX, CV_ERR_CONFLICT, "no key version is left for %s", tenant_id);
        memset(&next, 0, sizeof(next));
        snprintf(next.ref.tenant_id, sizeof(next.ref.tenant_id), "%s", tenant_id);
        next.ref.version = cur.ref.version + 1;
        next.ref.master_version = cv_lifecycle_master_version(app);
        snprintf(next.state, sizeof(next.state), "active");
        CV_GUARD(cv_hsm_tenant_key_generate(app->hsm, &next.ref));
        int added = 0;
        struct cv_audit_event ev;
        char prefix[CV_TENANT_ID_MAX_BYTES + 2];
        version_event(&ev, prefix, p, tenant_id, expect ? "tenant_key.auto_rotate" : "tenant_key.rotate");
        cv_result r = cv_store_lc_tenant_key_add(app->store, &next, cur.ref.version, &ev, &added);
        if (r.err == CV_ERR_NOT_FOUND) {
            /* the master version went away under us (retired by another
             * instance before this one heard of it): follow the database */
            CV_GUARD(cv_lifecycle_refresh_master(app));
            continue;
        }
        CV_GUARD(r);
        if (!added) {
            if (expect) return CV_OK;
            continue; /* a concurrent rotation took newest+1: go one further */
        }
        *version = next.ref.version;
        char v[16], mv[16];
        snprintf(v, sizeof(v), "%u", next.ref.version);
        snprintf(mv, sizeof(mv), "%u", next.ref.master_version);
        cv_log(CV_LOG_INFO, "tenant_key_rotated", "tenant", tenant_id, "version", v, "master_version", mv, "reason",
               why, NULL);
        cv_audit_committed(app, 1);
        return CV_OK;
    }
    CV_BAIL(CV_ERR_UNAVAILABLE, "rotations of %s kept racing each other; try again", tenant_id);
}

cv_result cv_lifecycle_key_for_write(struct cv_app *app, const char *tenant_id, struct cv_tenant_key_row *key)
{
    CV_GUARD(cv_store_tenant_key_current(app->store, tenant_id, key));
    const char *why = cv_lifecycle_rotation_due(key->encryptions, key->created_at_ms, cv_time_now_ms(),
                                                app->cfg->key_max_encryptions, app->cfg->key_max_age_days);
    if (!why) return CV_OK;
    struct cv_principal sys;
    system_principal(&sys, "credvault-auto-rotation");
    uint32_t v, prev;
    CV_GUARD(rotate(app, &sys, tenant_id, key->ref.version, why, &v, &prev));
    return cv_store_tenant_key_current(app->store, tenant_id, key);
}

cv_result cv_lifecycle_check_decrypt(const struct cv_tenant_key_row *key)
{
    const char *state = key->state;
    if (strcmp(state, "active") == 0) return CV_OK;
    char v[16];
    snprintf(v, sizeof(v), "%u", key->ref.version);
    cv_log(CV_LOG_WARN, "decrypt_refused", "tenant", key->ref.tenant_id, "key_version", v, "state", state, NULL);
    if (strcmp(state, "retired") == 0)
        return cv_fail_code(CV_ERR_CONFLICT, "key_version_retired",
                            "the credentials are sealed with key version %u, which is below the tenant's minimum "
                            "decryption version: it no longer decrypts",
                            key->ref.version);
    return cv_fail_code(CV_ERR_CONFLICT, "key_version_destroyed",
                        "the credentials are sealed with key version %u, which was destroyed: they cannot be "
                        "decrypted any more",
                        key->ref.version);
}

cv_result cv_tenant_key_rotate(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                               json_t **data)
{
    CV_GUARD(require_admin(p));
    CV_GUARD(check_tenant_id(tenant_id));
    uint32_t v, prev;
    CV_GUARD(rotate(app, p, tenant_id, 0, "requested", &v, &prev));
    *data = json_pack("{s:s, s:I, s:I, s:I}", "tenantId", tenant_id, "version", (json_int_t)v, "previousVersion",
                      (json_int_t)prev, "masterVersion", (json_int_t)cv_lifecycle_master_version(app));
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- record rewrap ---- */

cv_result cv_tenant_rewrap_start(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                 json_t **data, struct cv_key_job_row *job_out)
{
    CV_GUARD(require_admin(p));
    CV_GUARD(check_tenant_id(tenant_id));
    struct cv_key_job_row job;
    int started = 0;
    struct cv_audit_event ev;
    char prefix[CV_TENANT_ID_MAX_BYTES + 2];
    version_event(&ev, prefix, p, tenant_id, "tenant_key.rewrap_start");
    CV_GUARD(tenant_not_found(
        cv_store_lc_job_start(app->store, CV_JOB_RECORD_REWRAP, tenant_id, p->name, &ev, &job, &started)));
    cv_audit_committed(app, started ? 1 : 0);
    if (job_out) *job_out = job;
    if (!data) return CV_OK;
    json_t *doc = cv_lifecycle_job_json(&job);
    CV_ENSURE(doc != NULL, CV_ERR_MEMORY, "out of memory");
    json_object_set_new(doc, "started", json_boolean(started));
    *data = doc;
    return CV_OK;
}

cv_result cv_tenant_rewrap_status(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                  json_t **data)
{
    CV_ENSURE(p->role != CV_ROLE_WORKLOAD, CV_ERR_FORBIDDEN, "this token may not read key jobs");
    CV_GUARD(check_tenant_id(tenant_id));
    /* another tenant looks the same as one that does not exist */
    CV_ENSURE(p->role == CV_ROLE_ADMIN || strcmp(p->tenant_id, tenant_id) == 0, CV_ERR_NOT_FOUND, "tenant not found");
    struct cv_key_job_row job;
    cv_result r = cv_store_lc_job_latest(app->store, CV_JOB_RECORD_REWRAP, tenant_id, &job);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "no rewrap job for tenant %s", tenant_id);
    CV_GUARD(r);
    *data = cv_lifecycle_job_json(&job);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- minimum decryption version and destruction ---- */

cv_result cv_tenant_min_decrypt_set(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                    json_t *body, json_t **data)
{
    CV_GUARD(require_admin(p));
    CV_GUARD(check_tenant_id(tenant_id));
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) CV_ENSURE(strcmp(k, "version") == 0, CV_ERR_INPUT, "unknown field '%.64s'", k);
    json_t *jv = json_object_get(body, "version");
    CV_ENSURE(json_is_integer(jv) && json_integer_value(jv) >= 1 && json_integer_value(jv) <= INT32_MAX,
              CV_ERR_INPUT, "version must be a key version (1 or more)");
    uint32_t min = (uint32_t)json_integer_value(jv);
    uint64_t blocking = 0;
    struct cv_audit_event ev;
    char prefix[CV_TENANT_ID_MAX_BYTES + 2];
    version_event(&ev, prefix, p, tenant_id, "tenant_key.min_decrypt_version");
    CV_GUARD(tenant_not_found(
        cv_audit_change(app, cv_store_lc_min_decrypt_raise(app->store, tenant_id, min, &ev, &blocking), 1)));
    /* the retired versions' unwrapped copies leave the token now */
    cv_hsm_cache_drop_tenant(app->hsm, tenant_id);
    return cv_tenant_get(app, p, tenant_id, data);
}

cv_result cv_tenant_keys_destroy_retired(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                                         json_t **data)
{
    CV_GUARD(require_admin(p));
    CV_GUARD(check_tenant_id(tenant_id));
    uint32_t versions[CV_LC_DESTROYED_LISTED];
    size_t n = 0;
    uint64_t blocking = 0;
    struct cv_audit_event ev;
    char prefix[CV_TENANT_ID_MAX_BYTES + 2];
    version_event(&ev, prefix, p, tenant_id, "tenant_key.destroy");
    CV_GUARD(tenant_not_found(cv_store_lc_keys_destroy_retired(app->store, tenant_id, &ev, versions,
                                                               CV_LC_DESTROYED_LISTED, &n, &blocking)));
    cv_audit_committed(app, (unsigned)n);
    cv_hsm_cache_drop_tenant(app->hsm, tenant_id);
    json_t *list = json_array();
    CV_ENSURE(list != NULL, CV_ERR_MEMORY, "out of memory");
    for (size_t i = 0; i < n && i < CV_LC_DESTROYED_LISTED; i++) json_array_append_new(list, json_integer(versions[i]));
    *data = json_pack("{s:s, s:o, s:I}", "tenantId", tenant_id, "destroyed", list, "count", (json_int_t)n);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- crypto-shredding ---- */

cv_result cv_tenant_shred(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                          const char *confirm, json_t **data)
{
    CV_GUARD(require_admin(p));
    CV_GUARD(check_tenant_id(tenant_id));
    if (!confirm || strcmp(confirm, tenant_id) != 0) {
        /* recorded first: a failed audit write must not replace this answer */
        CV_GUARD(cv_audit(app, p, tenant_id, "tenant.shred", tenant_id, "denied"));
        CV_BAIL(CV_ERR_INPUT,
                "deleting a tenant destroys its keys and every credential sealed under them, for good: "
                "repeat the tenant id as ?confirm=%s",
                tenant_id);
    }
    struct cv_store_shred_counts counts;
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, tenant_id, "tenant.shred", tenant_id, "success");
    CV_GUARD(tenant_not_found(cv_audit_change(app, cv_store_lc_tenant_shred(app->store, tenant_id, &ev, &counts), 1)));
    /* here at once; other instances when they hear the key event */
    cv_hsm_cache_drop_tenant(app->hsm, tenant_id);
    cv_token_cache_clear(app->token_cache);
    char rec[24], keys[24];
    snprintf(rec, sizeof(rec), "%llu", (unsigned long long)counts.records);
    snprintf(keys, sizeof(keys), "%llu", (unsigned long long)counts.key_versions);
    cv_log(CV_LOG_WARN, "tenant_shredded", "tenant", tenant_id, "records", rec, "key_versions", keys, "by", p->name,
           NULL);
    *data = json_pack("{s:s, s:b, s:I, s:I}", "id", tenant_id, "deleted", 1, "records", (json_int_t)counts.records,
                      "keyVersionsDestroyed", (json_int_t)counts.key_versions);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}
