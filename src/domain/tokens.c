/* API tokens: minted from 32 random bytes, shown once, stored as a SHA-256
 * hash with its HSM verifier (token_verify.c). An admin mints any role; a
 * tenant-admin mints, and revokes, auditor and workload tokens in its own
 * tenant only. A workload token is bound to one server, and its mint is
 * audited as the grant of full reads it is. */
#include <stdio.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/crypto.h"
#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/token_cache.h"
#include "domain/token_verify.h"

static cv_result opt_string(json_t *body, const char *key, size_t max, const char **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v)) return CV_OK;
    CV_ENSURE(json_is_string(v), CV_ERR_INPUT, "%s must be a string", key);
    const char *s = json_string_value(v);
    CV_ENSURE(*s && strlen(s) == json_string_length(v) && strlen(s) <= max, CV_ERR_INPUT,
              "%s must be 1 to %zu bytes without NUL", key, max);
    *out = s;
    return CV_OK;
}

cv_result cv_token_mint(struct cv_app *app, const struct cv_principal *p, json_t *body, json_t **data)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN || p->role == CV_ROLE_TENANT_ADMIN, CV_ERR_FORBIDDEN,
              "this token may not mint tokens");
    static const char *const known[] = {"name", "role", "tenantId", "serverId", "expiresInDays"};
    CV_GUARD(cv_check_fields(body, known, sizeof(known) / sizeof(known[0])));
    const char *name, *role_s, *tenant, *server;
    CV_GUARD(opt_string(body, "name", CV_STORE_PRINCIPAL_MAX_BYTES, &name));
    CV_GUARD(opt_string(body, "role", CV_STORE_ROLE_MAX_BYTES, &role_s));
    CV_GUARD(opt_string(body, "tenantId", CV_TENANT_ID_MAX_BYTES, &tenant));
    CV_GUARD(opt_string(body, "serverId", CV_SERVER_ID_MAX_BYTES, &server));
    CV_ENSURE(name != NULL, CV_ERR_INPUT, "name is required");
    CV_ENSURE(role_s != NULL, CV_ERR_INPUT, "role is required");
    CV_GUARD(cv_token_name_check(name));
    enum cv_role role;
    CV_ENSURE(cv_role_parse(role_s, &role) == 0, CV_ERR_INPUT,
              "role must be admin, tenant-admin, auditor or workload");
    json_t *jdays = json_object_get(body, "expiresInDays");
    json_int_t days = 0;
    if (jdays && !json_is_null(jdays)) {
        CV_ENSURE(json_is_integer(jdays), CV_ERR_INPUT, "expiresInDays must be a whole number");
        days = json_integer_value(jdays);
        CV_ENSURE(days >= 1 && days <= CV_TOKEN_MAX_DAYS, CV_ERR_INPUT, "expiresInDays must be 1 to %d",
                  CV_TOKEN_MAX_DAYS);
    }

    if (role == CV_ROLE_ADMIN) {
        CV_ENSURE(p->role == CV_ROLE_ADMIN, CV_ERR_FORBIDDEN, "only an admin may mint admin tokens");
        CV_ENSURE(tenant == NULL, CV_ERR_INPUT, "admin tokens belong to no tenant");
    } else {
        CV_ENSURE(tenant != NULL, CV_ERR_INPUT, "tenantId is required for role %s", role_s);
        CV_ENSURE(cv_tenant_id_valid(tenant), CV_ERR_INPUT, "tenantId is not a valid tenant id");
    }
    if (p->role == CV_ROLE_TENANT_ADMIN) {
        CV_ENSURE(role == CV_ROLE_AUDITOR || role == CV_ROLE_WORKLOAD, CV_ERR_FORBIDDEN,
                  "a tenant-admin may mint auditor and workload tokens only");
        CV_ENSURE(strcmp(tenant, p->tenant_id) == 0, CV_ERR_FORBIDDEN,
                  "a tenant-admin may mint tokens in its own tenant only");
    }
    if (role == CV_ROLE_WORKLOAD) {
        CV_ENSURE(server != NULL, CV_ERR_INPUT, "serverId is required for a workload token");
        CV_ENSURE(cv_server_id_valid(server), CV_ERR_INPUT, "serverId is not a valid server id");
    } else {
        CV_ENSURE(server == NULL, CV_ERR_INPUT, "serverId is only for workload tokens");
    }
    if (tenant) {
        struct cv_tenant_row t;
        cv_result r = cv_store_tenant_get(app->store, tenant, &t);
        if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "tenant not found");
        CV_GUARD(r);
    }
    if (server) {
        struct cv_server_row s;
        memset(&s, 0, sizeof(s));
        cv_result r = cv_store_server_get(app->store, tenant, server, 0, &s);
        cv_server_row_free(&s);
        if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "server not found");
        CV_GUARD(r);
    }

    uint8_t raw[CV_TOKEN_RANDOM_BYTES];
    char token[sizeof(CV_TOKEN_PREFIX) + 2 * CV_TOKEN_RANDOM_BYTES];
    CV_GUARD(cv_crypto_random(raw, sizeof(raw)));
    memcpy(token, CV_TOKEN_PREFIX, strlen(CV_TOKEN_PREFIX));
    cv_hex_encode(raw, sizeof(raw), token + strlen(CV_TOKEN_PREFIX));
    cv_wipe(raw, sizeof(raw));
    uint8_t hash[CV_SHA256_BYTES];
    cv_crypto_sha256(token, strlen(token), hash);

    struct cv_token_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.name, sizeof(row.name), "%s", name);
    snprintf(row.role, sizeof(row.role), "%s", cv_role_name(role));
    snprintf(row.tenant_id, sizeof(row.tenant_id), "%s", tenant ? tenant : "");
    snprintf(row.server_id, sizeof(row.server_id), "%s", server ? server : "");
    snprintf(row.created_by, sizeof(row.created_by), "%s", p->name);
    row.expires_at_ms = days ? cv_time_now_ms() + (int64_t)days * 86400000 : 0;
    /* the id is chosen here so that the event, which commits with the token, can name it */
    cv_result r = cv_audit_uuid(row.id);
    if (cv_ok(r)) r = cv_token_verifier_make(app->hsm, &row, hash, row.verifier);
    row.has_verifier = cv_ok(r);
    struct cv_audit_event ev;
    /* a workload token reads full values: its mint is how anyone who may
     * mint one (a tenant-admin) reaches them, so the event says so */
    cv_audit_event_init(&ev, p, tenant, role == CV_ROLE_WORKLOAD ? "token.create_workload" : "token.create", row.id,
                        "success");
    if (cv_ok(r)) r = cv_audit_change(app, cv_store_token_insert(app->store, &row, hash, &ev), 1);
    if (cv_failed(r)) {
        cv_wipe(token, sizeof(token));
        return r;
    }
    char expires[32] = "";
    if (row.expires_at_ms) cv_time_iso8601(row.expires_at_ms, expires);
    *data = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s}", "id", row.id, "name", row.name, "role",
                      row.role, "tenantId", tenant, "serverId", server, "expiresAt",
                      row.expires_at_ms ? expires : NULL, "token", token);
    cv_wipe(token, sizeof(token));
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

cv_result cv_token_revoke(struct cv_app *app, const struct cv_principal *p, const char *token_id)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN || p->role == CV_ROLE_TENANT_ADMIN, CV_ERR_FORBIDDEN,
              "this token may not revoke tokens");
    CV_ENSURE(strlen(token_id) == CV_STORE_UUID_BYTES, CV_ERR_NOT_FOUND, "token not found");
    const char *scope = p->role == CV_ROLE_ADMIN ? NULL : p->tenant_id;
    /* a tenant-admin revokes what it may mint: auditor and workload tokens of
     * its tenant, never a peer tenant-admin (docs/api.md) */
    const char *roles = p->role == CV_ROLE_ADMIN ? NULL : "{auditor,workload}";
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, scope, "token.revoke", token_id, "success");
    cv_result r = cv_audit_change(app, cv_store_token_revoke_roles(app->store, scope, token_id, roles, &ev), 1);
    /* here at once; other instances when they hear the key event */
    if (cv_ok(r)) cv_token_cache_clear(app->token_cache);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "token not found");
    if (r.err == CV_ERR_FORBIDDEN) {
        CV_GUARD(cv_audit(app, p, scope, "token.revoke", token_id, "denied"));
        return cv_fail_code(CV_ERR_FORBIDDEN, "token_role_forbidden",
                            "a tenant-admin may revoke auditor and workload tokens of its tenant only");
    }
    return r;
}
