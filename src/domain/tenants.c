/* Tenants: creation (with the first key, generated and wrapped in the HSM),
 * listing and detail. Key versions and states are shown, never key material. */
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/lifecycle.h"

static cv_result require_admin(const struct cv_principal *p)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN, CV_ERR_FORBIDDEN, "this action needs an admin token");
    return CV_OK;
}

static json_t *tenant_json(const struct cv_tenant_row *t)
{
    char created[32];
    cv_time_iso8601(t->created_at_ms, created);
    return json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", t->id, "name", t->name, "createdAt", created,
                     "currentKeyVersion", (json_int_t)t->current_key_version, "minDecryptVersion",
                     (json_int_t)t->min_decrypt_version);
}

cv_result cv_tenant_create(struct cv_app *app, const struct cv_principal *p, json_t *body, json_t **data)
{
    CV_GUARD(require_admin(p));
    json_t *jid = json_object_get(body, "id"), *jname = json_object_get(body, "name");
    CV_ENSURE(json_is_string(jid), CV_ERR_INPUT, "id must be a string");
    CV_ENSURE(jname == NULL || json_is_string(jname), CV_ERR_INPUT, "name must be a string");
    const char *id = json_string_value(jid);
    CV_ENSURE(cv_tenant_id_valid(id), CV_ERR_INPUT,
              "id must be 1 to 64 characters of a-z, 0-9 and '-', starting with a letter or digit");
    const char *name = jname ? json_string_value(jname) : id;
    CV_ENSURE(*name && strlen(name) <= CV_STORE_NAME_MAX_BYTES && strlen(name) == json_string_length(jname ? jname : jid),
              CV_ERR_INPUT, "name must be 1 to %d bytes without NUL", CV_STORE_NAME_MAX_BYTES);
    static const char *const known[] = {"id", "name"};
    CV_GUARD(cv_check_fields(body, known, 2));

    struct cv_tenant_row t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.name, sizeof(t.name), "%s", name);
    t.current_key_version = 1;
    t.min_decrypt_version = 1;
    struct cv_tenant_key_row key;
    memset(&key, 0, sizeof(key));
    snprintf(key.ref.tenant_id, sizeof(key.ref.tenant_id), "%s", id);
    key.ref.version = 1;
    snprintf(key.state, sizeof(key.state), "active");
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, id, "tenant.create", id, "success");
    cv_result r;
    for (int attempt = 0;; attempt++) {
        key.ref.master_version = cv_lifecycle_master_version(app);
        CV_GUARD(cv_hsm_tenant_key_generate(app->hsm, &key.ref));
        r = cv_audit_change(app, cv_store_tenant_create(app->store, &t, &key, p->name, &ev), 1);
        if (r.err != CV_ERR_NOT_FOUND || attempt > 0) break;
        /* the master version was retired by another instance before this
         * one heard of it: follow the database and wrap again */
        CV_GUARD(cv_lifecycle_refresh_master(app));
        if (cv_lifecycle_master_version(app) == key.ref.master_version) break;
    }
    if (r.err == CV_ERR_CONFLICT) return cv_fail_code(CV_ERR_CONFLICT, "tenant_exists", "tenant '%s' exists", id);
    CV_GUARD(r);
    CV_GUARD(cv_store_tenant_get(app->store, id, &t));
    *data = tenant_json(&t);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

struct list_ctx {
    json_t *arr;
};

static int add_tenant(void *arg, const struct cv_tenant_row *row)
{
    struct list_ctx *l = arg;
    return json_array_append_new(l->arr, tenant_json(row));
}

cv_result cv_tenant_list(struct cv_app *app, const struct cv_principal *p, const char *limit, const char *offset,
                         json_t **data)
{
    CV_GUARD(require_admin(p));
    unsigned lim, off;
    CV_GUARD(cv_page_params(limit, offset, &lim, &off));
    struct list_ctx l = {.arr = json_array()};
    CV_ENSURE(l.arr != NULL, CV_ERR_MEMORY, "out of memory");
    uint64_t total = 0;
    cv_result r = cv_store_tenant_list(app->store, lim, off, add_tenant, &l, &total);
    if (cv_failed(r)) {
        json_decref(l.arr);
        return r;
    }
    return cv_page_doc("tenants", l.arr, total, lim, off, data);
}

static int add_key(void *arg, const struct cv_tenant_key_row *row)
{
    struct list_ctx *l = arg;
    char created[32];
    cv_time_iso8601(row->created_at_ms, created);
    return json_array_append_new(l->arr, json_pack("{s:I, s:s, s:I, s:s, s:I}", "version",
                                                   (json_int_t)row->ref.version, "state", row->state,
                                                   "masterVersion", (json_int_t)row->ref.master_version,
                                                   "createdAt", created, "encryptions",
                                                   (json_int_t)row->encryptions));
}

cv_result cv_tenant_get(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, json_t **data)
{
    /* an admin sees any tenant; a tenant's own tokens see their own, and
     * another tenant looks the same as one that does not exist */
    CV_ENSURE(p->role != CV_ROLE_WORKLOAD, CV_ERR_FORBIDDEN, "this token may not read tenants");
    CV_ENSURE(p->role == CV_ROLE_ADMIN || strcmp(p->tenant_id, tenant_id) == 0, CV_ERR_NOT_FOUND, "tenant not found");
    struct cv_tenant_row t;
    cv_result r = cv_store_tenant_get(app->store, tenant_id, &t);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
    CV_GUARD(r);
    struct list_ctx l = {.arr = json_array()};
    CV_ENSURE(l.arr != NULL, CV_ERR_MEMORY, "out of memory");
    r = cv_store_tenant_key_list(app->store, tenant_id, add_key, &l);
    if (cv_failed(r)) {
        json_decref(l.arr);
        return r;
    }
    json_t *doc = tenant_json(&t);
    if (!doc || json_object_set_new(doc, "keys", l.arr) != 0) {
        json_decref(doc);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    *data = doc;
    return CV_OK;
}
