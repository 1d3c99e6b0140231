/* Routes for key lifecycle: master and tenant key rotation, rewrap jobs and
 * their progress, the minimum decryption version, destruction of retired
 * versions, and crypto-shredding of a tenant. Authentication and the reply
 * only: every rule lives in src/domain/lifecycle*.c. */
#include <string.h>

#include "domain/lifecycle.h"
#include "http/routes.h"

static void master_list(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_master_keys_list(a, &p, &data);
    cv_routes_finish(res, r, 200, data);
}

static void master_rotate(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_master_key_rotate(a, &p, &data, NULL);
    /* 202: the key exists now; its rewrap of tenant keys runs in the background */
    cv_routes_finish(res, r, 202, data);
}

static void master_rewrap_start(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_master_rewrap_start(a, &p, &data, NULL);
    cv_routes_finish(res, r, 202, data);
}

static void master_rewrap_status(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_master_rewrap_status(a, &p, &data);
    cv_routes_finish(res, r, 200, data);
}

static void master_retire(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_master_key_retire(a, &p, cv_http_param(req, "version"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void tenant_rotate(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_key_rotate(a, &p, cv_http_param(req, "id"), &data);
    cv_routes_finish(res, r, 201, data);
}

static void tenant_rewrap_start(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_rewrap_start(a, &p, cv_http_param(req, "id"), &data, NULL);
    cv_routes_finish(res, r, 202, data);
}

static void tenant_rewrap_status(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_rewrap_status(a, &p, cv_http_param(req, "id"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void tenant_min_decrypt(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *body, *data = NULL;
    if (!cv_routes_authenticate_json(a, req, res, &p, &body)) return;
    cv_result r = cv_tenant_min_decrypt_set(a, &p, cv_http_param(req, "id"), body, &data);
    json_decref(body);
    cv_routes_finish(res, r, 200, data);
}

static void tenant_destroy_retired(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_keys_destroy_retired(a, &p, cv_http_param(req, "id"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void tenant_shred(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_tenant_shred(a, &p, cv_http_param(req, "id"), cv_http_query(req, "confirm"), &data);
    cv_routes_finish(res, r, 200, data);
}

/* Literal segments before ":param" segments of the same shape. */
static const struct cv_http_route routes[] = {
    {"GET", "/api/admin/master-keys", master_list},
    {"POST", "/api/admin/master-keys/rotate", master_rotate},
    {"POST", "/api/admin/master-keys/rewrap", master_rewrap_start},
    {"GET", "/api/admin/master-keys/rewrap", master_rewrap_status},
    {"POST", "/api/admin/master-keys/:version/retire", master_retire},
    {"POST", "/api/tenants/:id/keys/rotate", tenant_rotate},
    {"POST", "/api/tenants/:id/keys/destroy-retired", tenant_destroy_retired},
    {"PUT", "/api/tenants/:id/min-decrypt-version", tenant_min_decrypt},
    {"POST", "/api/tenants/:id/rewrap", tenant_rewrap_start},
    {"GET", "/api/tenants/:id/rewrap", tenant_rewrap_status},
    {"DELETE", "/api/tenants/:id", tenant_shred},
};

size_t cv_routes_keys(const struct cv_http_route **out)
{
    *out = routes;
    return sizeof(routes) / sizeof(routes[0]);
}
