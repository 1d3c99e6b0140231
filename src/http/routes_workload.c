/* Routes for workload delivery of full credentials. */
#include "http/routes.h"

size_t cv_routes_workload(const struct cv_http_route **out)
{
    *out = NULL;
    return 0;
}
