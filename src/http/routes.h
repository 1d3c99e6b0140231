/* The API route table (src/http/routes.c). */
#ifndef CREDVAULT_HTTP_ROUTES_H
#define CREDVAULT_HTTP_ROUTES_H

#include <stddef.h>

#include "domain/domain.h"
#include "http/http.h"

const struct cv_http_route *cv_api_routes(size_t *n);
/* The service's rate limiter (app->limiter), from its configuration: made
 * before the server starts, freed after it stopped (src/http/ratelimit.c). */
CV_RESULT cv_routes_limits_open(struct cv_app *app);
void cv_routes_limits_close(struct cv_app *app);

/* Each area keeps its routes in its own file (routes_<area>.c). */
size_t cv_routes_keys(const struct cv_http_route **out);     /* key lifecycle */
size_t cv_routes_ops(const struct cv_http_route **out);      /* audit, metrics, reports */
size_t cv_routes_workload(const struct cv_http_route **out); /* workload credential delivery */

/* Shared by the route files: authenticate the bearer token (replies 401 on
 * failure), optionally parse a JSON body; finish replies with data or the error. */
int cv_routes_authenticate(void *app, struct cv_http_request *req, struct cv_http_response *res,
                           struct cv_principal *p);
int cv_routes_authenticate_json(void *app, struct cv_http_request *req, struct cv_http_response *res,
                                struct cv_principal *p, json_t **body);
void cv_routes_finish(struct cv_http_response *res, cv_result r, unsigned status, json_t *data);
/* The same for a list answered as {"data":[…],"meta":{…}}. */
void cv_routes_finish_list(struct cv_http_response *res, cv_result r, json_t *items, json_t *meta);

#endif
