/* Routes for operations: the audit trail (GET /api/audit), Prometheus
 * metrics (GET /metrics) and the stale-credentials report. Authenticate,
 * call the use case, reply; the rules live in src/domain. /metrics answers
 * the scrape token of CREDVAULT_METRICS_TOKEN_FILE or an admin token, never
 * anyone else: label values name tenants and routes. */
#include "credvault/metrics.h"
#include "domain/audit.h"
#include "http/ratelimit.h"
#include "http/routes.h"

static void audit_list(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    const struct cv_audit_query q = {
        .tenant = cv_http_query(req, "tenant"),
        .from = cv_http_query(req, "from"),
        .to = cv_http_query(req, "to"),
        .action = cv_http_query(req, "action"),
        .actor = cv_http_query(req, "actor"),
        .limit = cv_http_query(req, "limit"),
        .before = cv_http_query(req, "before"),
    };
    cv_result r = cv_audit_list(a, &p, &q, &data);
    cv_routes_finish(res, r, 200, data);
}

static void stale(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_principal p;
    json_t *data = NULL;
    if (!cv_routes_authenticate(a, req, res, &p)) return;
    cv_result r = cv_credentials_stale(a, &p, cv_http_query(req, "olderThanDays"), cv_http_query(req, "limit"),
                                       cv_http_query(req, "offset"), &data);
    cv_routes_finish(res, r, 200, data);
}

static void metrics(void *a, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_app *app = a;
    if (cv_metrics_token_ok(app, cv_http_header(req, "Authorization"))) {
        if (!cv_routes_admit_address(app, req, res)) return;
    } else {
        struct cv_principal p;
        if (!cv_routes_authenticate(a, req, res, &p)) return;
        if (p.role != CV_ROLE_ADMIN) {
            cv_routes_finish(res, cv_fail(CV_ERR_FORBIDDEN, "metrics need the metrics token or an admin token"), 0,
                             NULL);
            return;
        }
    }
    struct cv_buf text;
    cv_buf_init(&text, CV_METRICS_RENDER_MAX_BYTES);
    cv_result r = cv_metrics_collect(app, &text);
    if (cv_ok(r)) {
        cv_http_reply_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", (const char *)text.data, text.len);
    } else {
        cv_routes_finish(res, r, 0, NULL);
    }
    cv_buf_free(&text);
}

/* Literal segments before ":param" ones: /api/mcp/credentials/stale matches
 * no core route (those are /api/mcp/servers/… and /api/mcp/templates/…). */
static const struct cv_http_route routes[] = {
    {"GET", "/api/audit", audit_list},
    {"GET", "/api/mcp/credentials/stale", stale},
    {"GET", "/metrics", metrics},
};

size_t cv_routes_ops(const struct cv_http_route **out)
{
    *out = routes;
    return sizeof(routes) / sizeof(routes[0]);
}
