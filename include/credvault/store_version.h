/* The run-time version of libpq, apart from store.h so a caller that only
 * reports versions needs nothing else of the store. */
#ifndef CREDVAULT_STORE_VERSION_H
#define CREDVAULT_STORE_VERSION_H

#include <stddef.h>

/* libpq's version as "15.5" (PQlibVersion: major * 10000 + minor). */
void cv_store_libpq_version(char *out, size_t size);

#endif
