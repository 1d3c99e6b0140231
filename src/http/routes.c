/* The API's routes: authenticate, parse, call the use case, reply. No
 * business rule lives here; identity always comes from the bearer token,
 * never from a body. */
#include <stdio.h>
#include <string.h>

#include "domain/domain.h"
#include "domain/audit.h"
#include "domain/ops.h"
#include "http/http.h"
#include "http/ratelimit.h"
#include "http/routes.h"

/* Rate limits wrap the token check (src/http/ratelimit.c): the client
 * address's bucket and its failed-authentication penalty before it, the
 * token's bucket after it; a failure is counted, slows the address and is
 * audited (actor "anonymous"). */
int cv_routes_authenticate(void *a, struct cv_http_request *req, struct cv_http_response *res,
                           struct cv_principal *p)
{
    struct cv_app *app = a;
    if (!cv_routes_admit_address(app, req, res)) return 0;
    cv_result r = cv_auth_bearer(app, cv_http_header(req, "Authorization"), p);
    if (cv_failed(r)) {
        cv_http_reply_error(res, cv_routes_auth_failed(app, req, r));
        return 0;
    }
    p->request_id = cv_http_request_id(req);
    return cv_routes_admit_token(app, req, res, p);
}

/* Authenticates and parses a JSON object body; replies on failure. */
int cv_routes_authenticate_json(void *app, struct cv_http_request *req, struct cv_http_response *res,
                                struct cv_principal *p, json_t **body)
{
    if (!cv_routes_authenticate(app, req, res, p)) return 0;
    cv_result r = cv_http_json_body(req, body);
    if (cv_failed(r)) {
        cv_http_reply_error(res, r);
        return 0;
    }
    return 1;
}

void cv_routes_finish(struct cv_http_response *res, cv_result r, unsigned status, json_t *data)
{
    if (cv_failed(r)) {
        json_decref(data);
        cv_http_reply_error(res, r);
        return;
    }
    cv_http_reply(res, status, data);
}

void cv_routes_finish_list(struct cv_http_response *res, cv_result r, json_t *items, json_t *meta)
{
    if (cv_failed(r)) {
        json_decref(items);
        json_decref(meta);
        cv_http_reply_error(res, r);
        return;
    }
    cv_http_reply_list(res, 200, items, meta);
}

static void etag(struct cv_http_response *res, json_t *server)
{
    json_t *rev = json_object_get(server, "revision");
    if (!json_is_integer(rev)) return;
    char v[32];
    snprintf(v, sizeof(v), "\"%lld\"", (long long)json_integer_value(rev));
    cv_http_header_add(res, "ETag", v);
}

static void health(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)a;
    (void)req;
    cv_http_reply(res, 200, json_pack("{s:s}", "status", "alive"));
}

static void ready(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)req;
    cv_result r = cv_app_ready(a);
    if (cv_ok(r)) {
        cv_http_reply(res, 200, json_pack("{s:s, s:s, s:s}", "status", "ready", "hsm", "ok", "database", "ok"));
        return;
    }
    cv_http_reply_error(res, r);
}

static void tenants_create(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    cv_result r = cv_tenant_create(a, &p, body, &data);
    json_decref(body);
    cv_routes_finish(res, r, 201, data);
}

static void tenants_list(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_list(a, &p, cv_http_query(req, "limit"), cv_http_query(req, "offset"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void tenants_get(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_get(a, &p, cv_http_param(req, "id"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void tokens_create(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    cv_result r = cv_token_mint(a, &p, body, &data);
    json_decref(body);
    cv_routes_finish(res, r, 201, data);
}

static void tokens_revoke(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    const char *id = cv_http_param(req, "id");
    cv_result r = cv_token_revoke(a, &p, id);
    cv_routes_finish(res, r, 200, cv_ok(r) ? json_pack("{s:s, s:b}", "id", id, "revoked", 1) : NULL);
}

static void templates_list(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *items = NULL, *meta = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_templates_list(a, &p, &items, &meta);
    cv_routes_finish_list(res, r, items, meta);
}

static void deploy(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    cv_result r = cv_credentials_deploy_idem(a, &p, cv_http_param(req, "templateId"), body,
                                             cv_http_header(req, "Idempotency-Key"), &data);
    json_decref(body);
    cv_routes_finish(res, r, 201, data);
}

static void servers_list(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *items = NULL, *meta = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_server_list(a, &p, cv_http_query(req, "limit"), cv_http_query(req, "offset"), &items, &meta);
    cv_routes_finish_list(res, r, items, meta);
}

static void servers_get(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_server_get(a, &p, cv_http_param(req, "serverId"), &data);
    if (cv_ok(r)) etag(res, data);
    cv_routes_finish(res, r, 200, data);
}

static void servers_delete(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    const char *id = cv_http_param(req, "serverId");
    cv_result r = cv_server_delete(a, &p, id);
    cv_routes_finish(res, r, 200, cv_ok(r) ? json_pack("{s:s, s:b}", "id", id, "deleted", 1) : NULL);
}

static void credentials_masked(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_credentials_masked(a, &p, cv_http_param(req, "serverId"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void credentials_update(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    const char *merge = cv_http_query(req, "merge");
    cv_result r = CV_OK;
    if (merge && strcmp(merge, "true") != 0 && strcmp(merge, "false") != 0)
        r = cv_fail(CV_ERR_INPUT, "merge must be true or false");
    if (cv_ok(r))
        r = cv_credentials_update_idem(a, &p, cv_http_param(req, "serverId"), body,
                                       merge && strcmp(merge, "true") == 0, cv_http_header(req, "If-Match"),
                                       cv_http_header(req, "Idempotency-Key"), &data);
    json_decref(body);
    if (cv_ok(r)) etag(res, data);
    cv_routes_finish(res, r, 200, data);
}

static void credentials_validate(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    cv_result r = cv_credentials_validate(a, &p, cv_http_param(req, "serverId"), body, &data);
    json_decref(body);
    cv_routes_finish(res, r, 200, data);
}

static const struct cv_http_route routes[] = {
    {"GET", "/healthz", health},
    {"GET", "/readyz", ready},
    {"POST", "/api/tenants", tenants_create},
    {"GET", "/api/tenants", tenants_list},
    {"GET", "/api/tenants/:id", tenants_get},
    {"POST", "/api/tokens", tokens_create},
    {"DELETE", "/api/tokens/:id", tokens_revoke},
    {"GET", "/api/mcp/templates", templates_list},
    {"POST", "/api/mcp/templates/:templateId/deploy", deploy},
    {"GET", "/api/mcp/servers", servers_list},
    {"GET", "/api/mcp/servers/:serverId", servers_get},
    {"DELETE", "/api/mcp/servers/:serverId", servers_delete},
    {"GET", "/api/mcp/servers/:serverId/credentials", credentials_masked},
    {"PUT", "/api/mcp/servers/:serverId/credentials", credentials_update},
    {"POST", "/api/mcp/servers/:serverId/credentials/validate", credentials_validate},
};

#define ROUTES_MAX 64

/* The core table, then each area's. Built once, before the server starts. */
const struct cv_http_route *cv_api_routes(size_t *n)
{
    static struct cv_http_route all[ROUTES_MAX];
    static size_t count;
    if (count) {
        *n = count;
        return all;
    }
    size_t (*const areas[])(const struct cv_http_route **) = {cv_routes_keys, cv_routes_ops, cv_routes_workload};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) all[count++] = routes[i];
    for (size_t a = 0; a < sizeof(areas) / sizeof(areas[0]); a++) {
        const struct cv_http_route *r;
        size_t k = areas[a](&r);
        for (size_t i = 0; i < k && count < ROUTES_MAX; i++) all[count++] = r[i];
    }
    *n = count;
    return all;
}
