/* The legacy database as a source of rows for the import: a thin adapter
 * over the store's read-only reader (src/store/legacy_source.c), and the one
 * close function for every source. */
#include <stdlib.h>

#include "domain/legacy.h"

static cv_result db_count(void *impl, uint64_t *n) { return cv_store_legacy_count(impl, n); }
static cv_result db_rewind(void *impl) { return cv_store_legacy_rewind(impl); }
static cv_result db_next(void *impl, struct cv_legacy_row *row, int *done) { return cv_store_legacy_next(impl, row, done); }
static void db_close(void *impl) { cv_store_legacy_close(impl); }

cv_result cv_legacy_source_db(const char *url, struct cv_legacy_source *out)
{
    struct cv_legacy_db *db;
    CV_GUARD(cv_store_legacy_open(url, &db));
    *out = (struct cv_legacy_source){.impl = db, .count = db_count, .rewind = db_rewind, .next = db_next,
                                     .close = db_close};
    return CV_OK;
}

void cv_legacy_source_close(struct cv_legacy_source *src)
{
    if (!src || !src->impl) return;
    src->close(src->impl);
    src->impl = NULL;
}
