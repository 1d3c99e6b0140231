/* A deliberate layer violation for checks.layers_refuse: an object that calls
 * the store. Given to scripts/check-layers as http it must be refused; as the
 * domain, accepted. Never linked into anything. */
#include "credvault/store.h"

cv_result cv_checks_calls_store(struct cv_store *st);

cv_result cv_checks_calls_store(struct cv_store *st) { return cv_store_ping(st); }
