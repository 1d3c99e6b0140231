/* Routes for key lifecycle: master and tenant key rotation, rewrap, shredding. */
#include "http/routes.h"

size_t cv_routes_keys(const struct cv_http_route **out)
{
    *out = NULL;
    return 0;
}
