/* The version of the libpq this process runs with, as PQlibVersion reports
 * it, for `credvault version` and the build-info metric. */
#include <stdio.h>

#include <libpq-fe.h>

#include "credvault/store_version.h"

void cv_store_libpq_version(char *out, size_t size)
{
    int v = PQlibVersion();
    snprintf(out, size, "%d.%d", v / 10000, v % 10000);
}
