/* Routes for operations: audit, metrics, reports. */
#include "http/routes.h"

size_t cv_routes_ops(const struct cv_http_route **out)
{
    *out = NULL;
    return 0;
}
