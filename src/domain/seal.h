/* Sealing and opening of credential maps (domain-internal). */
#ifndef CREDVAULT_DOMAIN_SEAL_H
#define CREDVAULT_DOMAIN_SEAL_H

#include "domain/domain.h"

/* Encrypts `env` with the tenant's current key, as the record of `revision`
 * (format 3: the revision is in the AAD); *record_out is malloc'ed. */
CV_RESULT cv_seal_env(struct cv_app *app, const char *tenant_id, const char *server_id, int64_t revision, json_t *env,
                      char **record_out, uint32_t *key_version);
/* Checks the row's binding (record_bind.h), then decrypts its record into a
 * JSON object whose values are strings or {"file":"…"} (wiped on decref). A
 * failure is audited for the request of `p` (NULL off a request). */
CV_RESULT cv_open_env(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row,
                      json_t **env_out);
/* The same with the tenant key read together with the row
 * (cv_store_server_get_keyed); with `key` NULL (the version is gone) it is
 * looked up as cv_open_env does. */
CV_RESULT cv_open_env_keyed(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row,
                            const struct cv_tenant_key_row *key, json_t **env_out);

#endif
