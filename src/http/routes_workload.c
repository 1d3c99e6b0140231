/* Routes for workload delivery of full credentials: the one response of the
 * API that carries plaintext values. Authorisation is the use case's
 * (cv_workload_env); this file only authenticates and replies. The framework
 * sends Cache-Control: no-store on every /api response and wipes response
 * bodies before freeing them. */
#include "domain/workload.h"
#include "http/routes.h"

static void env_fetch(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_workload_env(a, &p, cv_http_param(req, "serverId"), &data);
    cv_routes_finish(res, r, 200, data);
}

static const struct cv_http_route routes[] = {
    {"GET", "/api/mcp/servers/:serverId/env", env_fetch},
};

size_t cv_routes_workload(const struct cv_http_route **out)
{
    *out = routes;
    return sizeof(routes) / sizeof(routes[0]);
}
