/* The API route table (src/http/routes.c). */
#ifndef CREDVAULT_HTTP_ROUTES_H
#define CREDVAULT_HTTP_ROUTES_H

#include <stddef.h>

#include "http/http.h"

const struct cv_http_route *cv_api_routes(size_t *n);

#endif
