/* MCP server credentials: deploy, masked read, validate, update, list, get,
 * delete — all within the caller's tenant. Full values never leave here
 * except sealed; names are stored beside the record so that validation needs
 * no decryption. Another tenant's server is "not found", like a missing one. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "credvault/crypto.h"
#include "credvault/envname.h"
#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/record_bind.h"
#include "domain/seal.h"

/* The seed's note said "Full values are never exposed via API", which a
 * tenant-admin could disprove by minting a workload token: say what holds. */
#define MASK_NOTE                                                                                                      \
    "Credentials are masked for security. Full values are delivered only to a workload token bound to this server."
#define UPDATE_RETRIES 3


static cv_result require_tenant_role(const struct cv_principal *p, int write)
{
    if (write)
        CV_ENSURE(p->role == CV_ROLE_TENANT_ADMIN, CV_ERR_FORBIDDEN, "this action needs a tenant-admin token");
    else
        CV_ENSURE(p->role == CV_ROLE_TENANT_ADMIN || p->role == CV_ROLE_AUDITOR, CV_ERR_FORBIDDEN,
                  "this action needs a tenant-admin or auditor token");
    CV_ENSURE(p->tenant_id[0] != '\0', CV_ERR_FORBIDDEN, "this token belongs to no tenant");
    return CV_OK;
}

/* An id that cannot exist is simply not found, like another tenant's. */
static cv_result check_server_id(const char *server_id)
{
    CV_ENSURE(cv_server_id_valid(server_id), CV_ERR_NOT_FOUND, "server not found");
    return CV_OK;
}

static cv_result check_env(const struct cv_app *app, json_t *tmpl, json_t *env, int allow_null)
{
    const struct cv_config *cfg = app->cfg;
    CV_ENSURE(json_is_object(env), CV_ERR_INPUT, "env must be an object of strings");
    CV_ENSURE(json_object_size(env) <= cfg->max_env_keys, CV_ERR_INPUT, "env has more than %u keys",
              cfg->max_env_keys);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        size_t kn = strlen(k);
        CV_ENSURE(kn > 0 && kn <= cfg->max_env_name_bytes, CV_ERR_INPUT,
                  "env names must be 1 to %zu bytes (CREDVAULT_MAX_ENV_NAME_BYTES)", cfg->max_env_name_bytes);
        CV_ENSURE(cv_env_name_valid(k), CV_ERR_INPUT,
                  "env name '%.64s' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", k);
        /* removing a name is always allowed: it is how a map written before
         * the rule is cleaned */
        if (allow_null && json_is_null(v)) continue;
        const char *why = cv_env_name_forbidden(k);
        if (why)
            return cv_fail_code(CV_ERR_INPUT, "env_name_forbidden",
                                "env name '%.64s' %s; it is refused whatever the template says (docs/workload.md)", k,
                                why);
        CV_ENSURE(tmpl != NULL, CV_ERR_INPUT,
                  "this server's template is no longer in the catalog, so no name can be added or changed; "
                  "names can still be removed (null in a merge)");
        if (!cv_catalog_allows_name(tmpl, k))
            return cv_fail_code(CV_ERR_INPUT, "env_name_not_in_template",
                                "template %.64s does not accept env name '%.64s': it accepts its requiredEnv and "
                                "optionalEnv names and those matching its customEnv patterns (GET /api/mcp/templates)",
                                json_string_value(json_object_get(tmpl, "id")), k);
        int is_file = 0;
        size_t vn = 0;
        const char *text = cv_env_value(v, &vn, &is_file);
        CV_ENSURE(text != NULL, CV_ERR_INPUT,
                  "env value of '%.64s' must be a string, or {\"file\":\"<content>\"} for a file", k);
        CV_ENSURE(strlen(text) == vn, CV_ERR_INPUT,
                  "env value of '%.64s' holds a NUL character, which an environment or a text file cannot carry", k);
        if (is_file)
            CV_ENSURE(vn <= cfg->max_file_value_bytes, CV_ERR_INPUT,
                      "file content of '%.64s' is longer than %zu bytes (CREDVAULT_MAX_FILE_VALUE_BYTES)", k,
                      cfg->max_file_value_bytes);
        else
            CV_ENSURE(vn <= cfg->max_env_value_bytes, CV_ERR_INPUT,
                      "env value of '%.64s' is longer than %zu bytes (CREDVAULT_MAX_ENV_VALUE_BYTES)", k,
                      cfg->max_env_value_bytes);
    }
    return CV_OK;
}

static cv_result parse_expires(json_t *body, int64_t *out, int *present)
{
    json_t *v = json_object_get(body, "expiresAt");
    *present = v != NULL;
    *out = 0;
    if (!v || json_is_null(v)) return CV_OK;
    CV_ENSURE(json_is_string(v), CV_ERR_INPUT, "expiresAt must be an ISO 8601 UTC time such as 2026-12-31T00:00:00Z");
    return cv_time_parse("expiresAt", json_string_value(v), CV_TIME_STRICT, out);
}

static json_t *names_of(json_t *env)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) json_array_append_new(a, json_string(k));
    return a;
}


_Static_assert(CV_SERVER_ID_MAX_BYTES >= CV_TEMPLATE_ID_MAX_BYTES + 1 + 13, "a server id is <template id>-<13 digits>");
static const char *template_transport(json_t *tmpl)
{
    const char *t = json_string_value(json_object_get(tmpl, "transport"));
    return t ? t : "stdio";
}

/* Unique within this process even when two deploys land in one millisecond,
 * and between the worker processes of one service: each takes the
 * milliseconds of its own residue (app->id_slot of id_slots). Across
 * instances the (tenant, server_id) key catches a clash and the retry steps
 * a random distance past it, so that two instances do not clash again. */
static void next_server_id(const struct cv_app *app, int attempt, const char *template_id,
                           char out[CV_SERVER_ID_MAX_BYTES + 1])
{
    static _Atomic int64_t last;
    int64_t k = app->id_slots > 1 ? app->id_slots : 1, slot = app->id_slots > 1 ? app->id_slot % k : 0;
    int64_t jump = 0;
    if (attempt > 0) {
        uint8_t b = 0;
        if (getrandom(&b, 1, 0) != 1) b = (uint8_t)attempt;
        jump = (1 + (b & 63)) * k;
    }
    int64_t now = cv_time_now_ms(), prev = atomic_load(&last), next;
    do {
        next = (now > prev ? now : prev + 1) + jump;
        next += ((slot - next % k) % k + k) % k;
    } while (!atomic_compare_exchange_weak(&last, &prev, next));
    snprintf(out, CV_SERVER_ID_MAX_BYTES + 1, "%s-%013lld", template_id, (long long)next);
}

/* ---- Idempotency-Key ---- */

/* The key's scope and the request's SHA-256 (route and canonical body;
 * the body itself is never kept). */
static cv_result idem_prepare(const struct cv_principal *p, const char *route, const char *target, int merge,
                              const char *if_match, json_t *body, const char *key, struct cv_store_idem *idem)
{
    size_t n = strlen(key);
    CV_ENSURE(n >= 1 && n <= CV_STORE_IDEM_KEY_MAX_BYTES, CV_ERR_INPUT, "Idempotency-Key must be 1 to %d characters",
              CV_STORE_IDEM_KEY_MAX_BYTES);
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(key[i] > 0x20 && key[i] < 0x7f, CV_ERR_INPUT, "Idempotency-Key must be printable ASCII");
    memset(idem, 0, sizeof(*idem));
    idem->key = key;
    idem->principal = p->token_id[0] ? p->token_id : p->name;
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    CV_ENSURE(canon != NULL, CV_ERR_MEMORY, "out of memory");
    size_t head = strlen(route) + strlen(target) + (if_match ? strlen(if_match) : 0) + 8, len = strlen(canon);
    char *buf = malloc(head + len + 1);
    if (!buf) {
        cv_json_free(canon);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    int h = snprintf(buf, head, "%s %s %d %s\n", route, target, merge, if_match ? if_match : "");
    memcpy(buf + h, canon, len);
    cv_crypto_sha256(buf, (size_t)h + len, idem->request_hash);
    cv_wipe(buf, (size_t)h + len);
    free(buf);
    cv_wipe(canon, len);
    cv_json_free(canon);
    return CV_OK;
}

/* A remembered key: the first answer for the same request, 409 for another. */
static cv_result idem_lookup(struct cv_app *app, const struct cv_principal *p, const struct cv_store_idem *idem,
                             int *found, char server_id[CV_SERVER_ID_MAX_BYTES + 1])
{
    int same = 0;
    CV_GUARD(cv_store_idem_get(app->store, p->tenant_id, idem, found, &same, server_id));
    if (*found && !same)
        return cv_fail_code(CV_ERR_CONFLICT, "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request");
    return CV_OK;
}

static json_t *deploy_json(json_t *tmpl, const struct cv_server_row *row, json_t *integrations)
{
    char created[32];
    cv_time_iso8601(row->created_at_ms, created);
    /* the seed's shape, with the transport the frontend shows beside the id */
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:O, s:O}}", "id", row->server_id, "name",
                     row->server_name, "status", "disconnected", "transport", template_transport(tmpl), "templateId",
                     row->template_id, "createdAt", created, "createdBy", row->created_by, "configuration",
                     "configuredIntegrations", integrations, "evidenceTypes", json_object_get(tmpl, "evidenceTypes"));
}

static cv_result deploy_replay(struct cv_app *app, const struct cv_principal *p, json_t *tmpl, const char *server_id,
                               json_t **data)
{
    struct cv_server_row row;
    memset(&row, 0, sizeof(row));
    cv_result r = cv_store_server_get(app->store, p->tenant_id, server_id, 0, &row);
    if (r.err == CV_ERR_NOT_FOUND)
        return cv_fail_code(CV_ERR_CONFLICT, "idempotency_key_reused",
                            "this Idempotency-Key deployed a server that was deleted since");
    CV_GUARD(r);
    json_t *integrations = row.configured_integrations ? json_loads(row.configured_integrations, 0, NULL) : NULL;
    *data = integrations ? deploy_json(tmpl, &row, integrations) : NULL;
    json_decref(integrations);
    cv_server_row_free(&row);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

cv_result cv_credentials_deploy(struct cv_app *app, const struct cv_principal *p, const char *template_id,
                                json_t *body, json_t **data)
{
    return cv_credentials_deploy_idem(app, p, template_id, body, NULL, data);
}

cv_result cv_credentials_deploy_idem(struct cv_app *app, const struct cv_principal *p, const char *template_id,
                                     json_t *body, const char *idem_key, json_t **data)
{
    CV_GUARD(require_tenant_role(p, 1));
    json_t *tmpl = cv_catalog_template(app->catalog, template_id);
    CV_ENSURE(tmpl != NULL, CV_ERR_NOT_FOUND, "unknown template '%.64s'", template_id);
    static const char *const known[] = {"env", "userId", "autoConnect", "expiresAt", "name"};
    CV_GUARD(cv_check_fields(body, known, sizeof(known) / sizeof(known[0])));
    json_t *env = json_object_get(body, "env");
    CV_ENSURE(env != NULL, CV_ERR_INPUT, "env is required");
    CV_GUARD(check_env(app, tmpl, env, 0));
    json_t *user = json_object_get(body, "userId"), *autoc = json_object_get(body, "autoConnect");
    /* userId is accepted for compatibility and ignored: identity is the token's */
    CV_ENSURE(!user || json_is_string(user) || json_is_null(user), CV_ERR_INPUT, "userId must be a string");
    CV_ENSURE(!autoc || json_is_boolean(autoc), CV_ERR_INPUT, "autoConnect must be true or false");
    json_t *jname = json_object_get(body, "name");
    CV_ENSURE(!jname || (json_is_string(jname) && json_string_length(jname) > 0 &&
                         json_string_length(jname) <= CV_STORE_NAME_MAX_BYTES &&
                         strlen(json_string_value(jname)) == json_string_length(jname)),
              CV_ERR_INPUT, "name must be 1 to %d bytes", CV_STORE_NAME_MAX_BYTES);
    int64_t expires;
    int has_expires;
    CV_GUARD(parse_expires(body, &expires, &has_expires));
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(tmpl, "requiredEnv"), i, req) {
        size_t len = 0;
        CV_ENSURE(cv_env_value(json_object_get(env, json_string_value(req)), &len, NULL) && len > 0, CV_ERR_INPUT,
                  "template %s requires %s", template_id, json_string_value(req));
    }

    struct cv_store_idem idem, *ip = NULL;
    char replay_id[CV_SERVER_ID_MAX_BYTES + 1];
    if (idem_key) {
        CV_GUARD(idem_prepare(p, "deploy", template_id, 0, NULL, body, idem_key, &idem));
        ip = &idem;
        int found = 0;
        CV_GUARD(idem_lookup(app, p, ip, &found, replay_id));
        if (found) return deploy_replay(app, p, tmpl, replay_id, data);
    }

    struct cv_server_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.tenant_id, sizeof(row.tenant_id), "%s", p->tenant_id);
    snprintf(row.template_id, sizeof(row.template_id), "%s", template_id);
    snprintf(row.server_name, sizeof(row.server_name), "%s",
             jname ? json_string_value(jname) : json_string_value(json_object_get(tmpl, "name")));
    snprintf(row.created_by, sizeof(row.created_by), "%s", p->name);
    snprintf(row.updated_by, sizeof(row.updated_by), "%s", p->name);
    row.expires_at_ms = expires;
    json_t *integrations = cv_catalog_configured_integrations(app->catalog, env);
    row.configured_integrations = cv_json_dump_malloc(json_incref(integrations));
    row.credential_names = cv_json_dump_malloc(names_of(env));
    cv_result r = CV_OK;
    if (!integrations || !row.configured_integrations || !row.credential_names) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        next_server_id(app, attempt, template_id, row.server_id);
        free(row.encrypted_env);
        row.encrypted_env = NULL;
        CV_GUARD_OUT(r, cv_seal_env(app, p->tenant_id, row.server_id, 1, env, &row.encrypted_env, &row.key_version));
        row.revision = 1;
        CV_GUARD_OUT(r, cv_record_binding_make(app->hsm, &row));
        /* the event commits with the row, or neither does */
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, p, p->tenant_id, "credentials.deploy", row.server_id, "success");
        r = cv_audit_change(app, cv_store_server_insert_idem(app->store, &row, &ev, ip), 1);
        if (r.err != CV_ERR_CONFLICT) break;
        if (ip) {
            /* the same key committed meanwhile (a concurrent retry), or an id clash */
            int found = 0;
            CV_GUARD_OUT(r, idem_lookup(app, p, ip, &found, replay_id));
            if (found) {
                r = deploy_replay(app, p, tmpl, replay_id, data);
                goto out;
            }
            r = cv_fail(CV_ERR_CONFLICT, "server already exists");
        }
    }
    if (cv_failed(r)) goto out;

    *data = deploy_json(tmpl, &row, integrations);
    if (!*data) r = cv_fail(CV_ERR_MEMORY, "out of memory");
out:
    json_decref(integrations);
    cv_server_row_free(&row);
    return r;
}

static cv_result get_row(struct cv_app *app, const struct cv_principal *p, const char *server_id, int with_env,
                         struct cv_server_row *row)
{
    CV_GUARD(check_server_id(server_id));
    memset(row, 0, sizeof(*row));
    cv_result r = cv_store_server_get(app->store, p->tenant_id, server_id, with_env, row);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "server not found");
    return r;
}

/* The row with its tenant key, in one round trip (masked read, validate). */
static cv_result get_row_keyed(struct cv_app *app, const struct cv_principal *p, const char *server_id, int with_env,
                               struct cv_server_row *row, struct cv_tenant_key_row *key, int *has_key)
{
    CV_GUARD(check_server_id(server_id));
    cv_result r = cv_store_server_get_keyed(app->store, p->tenant_id, server_id, with_env, row, key, has_key);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "server not found");
    return r;
}

cv_result cv_credentials_masked(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                json_t **data)
{
    CV_GUARD(require_tenant_role(p, 0));
    struct cv_server_row row;
    struct cv_tenant_key_row key;
    int has_key = 0;
    CV_GUARD(get_row_keyed(app, p, server_id, 1, &row, &key, &has_key));
    json_t *env = NULL, *masked = NULL, *files = NULL;
    struct cv_buf m = CV_BUF_EMPTY;
    cv_buf_init(&m, 64);
    cv_result r;
    CV_GUARD_OUT(r, cv_open_env_keyed(app, p, &row, has_key ? &key : NULL, &env));
    masked = json_object();
    files = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        /* a file's content is masked like any value; the marker is only its name in "files" */
        size_t len = 0;
        int is_file = 0;
        const char *text = cv_env_value(v, &len, &is_file);
        cv_buf_reset(&m);
        CV_GUARD_OUT(r, cv_mask_value(text, len, &m));
        json_object_set_new(masked, k, json_stringn((const char *)m.data, m.len));
        if (is_file) json_array_append_new(files, json_string(k));
    }
    CV_GUARD_OUT(r, cv_audit(app, p, p->tenant_id, "credentials.read_masked", server_id, "success"));
    *data = json_pack("{s:s, s:O, s:s}", "serverId", row.server_id, "credentials", masked, "note", MASK_NOTE);
    if (*data && json_array_size(files) > 0) json_object_set(*data, "files", files);
    if (!*data) r = cv_fail(CV_ERR_MEMORY, "out of memory");
out:
    json_decref(env);
    json_decref(masked);
    json_decref(files);
    cv_buf_free(&m);
    cv_server_row_free(&row);
    return r;
}

cv_result cv_credentials_validate(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                  json_t *body, json_t **data)
{
    CV_GUARD(require_tenant_role(p, 0));
    static const char *const known[] = {"requiredKeys"};
    CV_GUARD(cv_check_fields(body, known, 1));
    json_t *req = json_object_get(body, "requiredKeys");
    CV_ENSURE(json_is_array(req), CV_ERR_INPUT, "requiredKeys must be an array of names");
    CV_ENSURE(json_array_size(req) <= CV_VALIDATE_MAX_KEYS, CV_ERR_INPUT, "requiredKeys has more than %d names",
              CV_VALIDATE_MAX_KEYS);
    size_t i;
    json_t *k;
    json_array_foreach(req, i, k) CV_ENSURE(json_is_string(k), CV_ERR_INPUT, "requiredKeys must hold strings only");

    struct cv_server_row row;
    CV_GUARD(get_row(app, p, server_id, 0, &row));
    /* the names answer for the record only if the service wrote them */
    cv_result r = cv_record_binding_check(app, p, &row);
    if (cv_failed(r)) {
        cv_server_row_free(&row);
        return r;
    }
    json_t *names = json_loads(row.credential_names ? row.credential_names : "[]", 0, NULL);
    json_t *missing = json_array();
    if (!json_is_array(names) || !missing) {
        r = cv_fail(CV_ERR_INTERNAL, "stored credential names are unreadable");
        goto out;
    }
    json_array_foreach(req, i, k) {
        int found = 0;
        size_t j;
        json_t *n;
        json_array_foreach(names, j, n) found |= json_equal(n, k);
        if (!found) json_array_append(missing, k);
    }
    CV_GUARD_OUT(r, cv_audit(app, p, p->tenant_id, "credentials.validate", server_id, "success"));
    *data = json_pack("{s:b, s:O}", "valid", json_array_size(missing) == 0, "missing", missing);
    if (!*data) r = cv_fail(CV_ERR_MEMORY, "out of memory");
out:
    json_decref(names);
    json_decref(missing);
    cv_server_row_free(&row);
    return r;
}

/* A server as the frontend reads it: integrations and evidence types under
 * `configuration`, the transport from its template (which the catalog may
 * since have dropped: then stdio and no evidence types). */
static json_t *server_json(const struct cv_app *app, const struct cv_server_row *row)
{
    char created[32], updated[32], expires[32];
    cv_time_iso8601(row->created_at_ms, created);
    cv_time_iso8601(row->last_updated_ms, updated);
    if (row->expires_at_ms) cv_time_iso8601(row->expires_at_ms, expires);
    json_t *tmpl = cv_catalog_template(app->catalog, row->template_id);
    json_t *evidence = json_object_get(tmpl, "evidenceTypes");
    json_t *integ = json_loads(row->configured_integrations ? row->configured_integrations : "[]", 0, NULL);
    json_t *names = json_loads(row->credential_names ? row->credential_names : "[]", 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:o, s:o}, s:o, s:I, s:I, s:s, s:s, s:s, s:s, s:s?}", "id",
                     row->server_id, "name", row->server_name, "status", "disconnected", "transport",
                     template_transport(tmpl), "templateId", row->template_id, "configuration",
                     "configuredIntegrations", integ ? integ : json_array(), "evidenceTypes",
                     evidence ? json_incref(evidence) : json_array(), "credentialNames", names ? names : json_array(),
                     "keyVersion", (json_int_t)row->key_version, "revision", (json_int_t)row->revision, "createdAt",
                     created, "createdBy", row->created_by, "lastUpdated", updated, "updatedBy", row->updated_by,
                     "expiresAt", row->expires_at_ms ? expires : NULL);
}

struct list_ctx {
    struct cv_app *app;
    json_t *arr;
    json_t *withheld; /* ids of rows whose binding failed: audited once the list is read */
    cv_result r;
};

static int add_server(void *arg, const struct cv_server_row *row)
{
    struct list_ctx *l = arg;
    /* one edited row is withheld (logged, counted, audited), not the whole
     * list failed: the other servers still answer for themselves */
    cv_result r = cv_record_binding_check(l->app, NULL, row);
    if (r.err == CV_ERR_INTERNAL && strcmp(cv_error_code(), CV_INTEGRITY_ERROR_CODE) == 0) {
        cv_error_clear();
        return json_array_append_new(l->withheld, json_string(row->server_id));
    }
    if (cv_failed(r)) {
        l->r = r;
        return 1;
    }
    return json_array_append_new(l->arr, server_json(l->app, row));
}

cv_result cv_server_list(struct cv_app *app, const struct cv_principal *p, const char *limit, const char *offset,
                         json_t **items, json_t **meta)
{
    CV_GUARD(require_tenant_role(p, 0));
    unsigned lim, off;
    CV_GUARD(cv_page_params(limit, offset, &lim, &off));
    struct list_ctx l = {.app = app, .arr = json_array(), .withheld = json_array(), .r = CV_OK};
    uint64_t total = 0;
    cv_result r = CV_OK;
    if (!l.arr || !l.withheld) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    CV_GUARD_OUT(r, cv_store_server_list(app->store, p->tenant_id, lim, off, add_server, &l, &total));
    CV_GUARD_OUT(r, l.r);
    size_t i;
    json_t *id;
    json_array_foreach(l.withheld, i, id) {
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, p, p->tenant_id, "credentials.integrity_failed", json_string_value(id), "error");
        if (cv_failed(cv_store_audit_append(app->store, &ev, 1))) cv_error_clear();
    }
    r = cv_page_meta(l.arr, total, lim, off, items, meta);
    l.arr = NULL; /* owned by *items, or freed */
    if (cv_ok(r) && json_array_size(l.withheld) > 0)
        json_object_set_new(*meta, "integrityErrors", json_integer((json_int_t)json_array_size(l.withheld)));
out:
    json_decref(l.arr);
    json_decref(l.withheld);
    return r;
}

/* The server document, once the row's binding shows the service wrote the
 * names and expiry it shows. */
static cv_result bound_server_json(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                   json_t **data)
{
    struct cv_server_row row;
    CV_GUARD(get_row(app, p, server_id, 0, &row));
    /* the names and expiry it shows answer for the record only if the service wrote them */
    cv_result r = cv_record_binding_check(app, p, &row);
    if (cv_failed(r)) {
        cv_server_row_free(&row);
        return r;
    }
    *data = server_json(app, &row);
    cv_server_row_free(&row);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

cv_result cv_server_get(struct cv_app *app, const struct cv_principal *p, const char *server_id, json_t **data)
{
    CV_GUARD(require_tenant_role(p, 0));
    return bound_server_json(app, p, server_id, data);
}

cv_result cv_server_delete(struct cv_app *app, const struct cv_principal *p, const char *server_id)
{
    CV_GUARD(require_tenant_role(p, 1));
    CV_GUARD(check_server_id(server_id));
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, p->tenant_id, "credentials.delete", server_id, "success");
    cv_result r = cv_audit_change(app, cv_store_server_delete(app->store, p->tenant_id, server_id, &ev), 1);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "server not found");
    return r;
}

static cv_result parse_if_match(const char *h, int64_t *rev)
{
    *rev = 0;
    if (!h) return CV_OK;
    const char *s = h;
    if (strncmp(s, "W/", 2) == 0) s += 2;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    CV_ENSURE(n > 0 && n <= 18, CV_ERR_INPUT, "If-Match must hold a revision such as \"3\"");
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        CV_ENSURE(s[i] >= '0' && s[i] <= '9', CV_ERR_INPUT, "If-Match must hold a revision such as \"3\"");
        v = v * 10 + (s[i] - '0');
    }
    CV_ENSURE(v > 0, CV_ERR_INPUT, "If-Match must hold a revision such as \"3\"");
    *rev = v;
    return CV_OK;
}

cv_result cv_credentials_update(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                json_t *body, int merge, const char *if_match, json_t **data)
{
    return cv_credentials_update_idem(app, p, server_id, body, merge, if_match, NULL, data);
}


cv_result cv_credentials_update_idem(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                     json_t *body, int merge, const char *if_match, const char *idem_key,
                                     json_t **data)
{
    CV_GUARD(require_tenant_role(p, 1));
    struct cv_store_idem idem, *ip = NULL;
    char replay_id[CV_SERVER_ID_MAX_BYTES + 1];
    if (idem_key) {
        CV_GUARD(check_server_id(server_id));
        CV_GUARD(idem_prepare(p, "update", server_id, merge, if_match, body, idem_key, &idem));
        ip = &idem;
        int found = 0;
        CV_GUARD(idem_lookup(app, p, ip, &found, replay_id));
        if (found) return bound_server_json(app, p, server_id, data); /* a remembered update: the server as it is now */
    }
    static const char *const known[] = {"env", "expiresAt"};
    CV_GUARD(cv_check_fields(body, known, 2));
    int64_t want_rev;
    CV_GUARD(parse_if_match(if_match, &want_rev));
    json_t *env = json_object_get(body, "env");
    CV_ENSURE(env != NULL, CV_ERR_INPUT, "env is required");
    int64_t expires;
    int has_expires;
    CV_GUARD(parse_expires(body, &expires, &has_expires));

    cv_result r = CV_OK;
    for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
        struct cv_server_row row;
        CV_GUARD(get_row(app, p, server_id, merge, &row));
        json_t *tmpl = cv_catalog_template(app->catalog, row.template_id);
        json_t *next = NULL, *integrations = NULL;
        r = check_env(app, tmpl, env, merge);
        if (cv_ok(r) && want_rev && row.revision != want_rev)
            r = cv_fail(CV_ERR_PRECONDITION, "the server's credentials changed (revision %lld); read them again",
                        (long long)row.revision);
        /* a replace keeps the revision and maybe the expiry: they must be the service's */
        if (cv_ok(r) && !merge) r = cv_record_binding_check(app, p, &row);
        if (cv_failed(r)) goto next;
        if (merge) {
            CV_GUARD_OUT(r, cv_open_env(app, p, &row, &next));
            const char *k;
            json_t *v;
            json_object_foreach(env, k, v) {
                if (json_is_null(v)) json_object_del(next, k);
                else json_object_set(next, k, v);
            }
            if (json_object_size(next) > app->cfg->max_env_keys) {
                r = cv_fail(CV_ERR_INPUT, "env has more than %u keys", app->cfg->max_env_keys);
                goto out;
            }
        } else {
            next = json_incref(env);
        }
        if (tmpl) {
            size_t i;
            json_t *req;
            json_array_foreach(json_object_get(tmpl, "requiredEnv"), i, req) {
                size_t len = 0;
                if (!cv_env_value(json_object_get(next, json_string_value(req)), &len, NULL) || len == 0) {
                    r = cv_fail(CV_ERR_INPUT, "template %s requires %s", row.template_id, json_string_value(req));
                    goto next;
                }
            }
        }
        free(row.encrypted_env);
        row.encrypted_env = NULL;
        CV_GUARD_OUT(r, cv_seal_env(app, p->tenant_id, row.server_id, row.revision + 1, next, &row.encrypted_env,
                                    &row.key_version));
        integrations = cv_catalog_configured_integrations(app->catalog, next);
        free(row.configured_integrations);
        free(row.credential_names);
        row.configured_integrations = cv_json_dump_malloc(integrations);
        row.credential_names = cv_json_dump_malloc(names_of(next));
        integrations = NULL;
        if (has_expires) row.expires_at_ms = expires;
        snprintf(row.updated_by, sizeof(row.updated_by), "%s", p->name);
        /* bound as the revision the update makes */
        row.revision++;
        r = cv_record_binding_make(app->hsm, &row);
        row.revision--;
        if (cv_failed(r)) goto out;
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, p, p->tenant_id, merge ? "credentials.merge" : "credentials.replace", server_id,
                            "success");
        r = cv_audit_change(app, cv_store_server_update_idem(app->store, &row, row.revision, &ev, ip), 1);
        if (r.err == CV_ERR_CONFLICT && ip) {
            /* the same key committed meanwhile: a concurrent retry */
            int found = 0;
            r = idem_lookup(app, p, ip, &found, replay_id);
            if (cv_ok(r)) r = found ? bound_server_json(app, p, server_id, data) : cv_fail(CV_ERR_CONFLICT, "conflict");
            goto out;
        }
        if (r.err == CV_ERR_PRECONDITION && !want_rev) goto next; /* raced another writer: read again */
        if (cv_ok(r)) {
            *data = server_json(app, &row);
            if (!*data) r = cv_fail(CV_ERR_MEMORY, "out of memory");
        }
    out:
        json_decref(next);
        json_decref(integrations);
        cv_server_row_free(&row);
        return r;
    next:
        json_decref(next);
        json_decref(integrations);
        cv_server_row_free(&row);
        if (r.err != CV_ERR_PRECONDITION || want_rev) return r;
    }
    return r;
}
