/* Identifiers shared by every layer, with their syntax and size limits, once:
 * tenant id, server id, template id and the key reference ("kid") of a record.
 * Each may appear in a URL path, a log line, a kid or an AAD without escaping,
 * so none of them may hold a byte outside its set. */
#ifndef CREDVAULT_IDS_H
#define CREDVAULT_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"

/* Tenant id: 1..64 of [a-z0-9-], first alphanumeric. Lowercase only, so no
 * tenant has an uppercase alias of another. */
#define CV_TENANT_ID_MAX_BYTES 64
/* Server and template ids: [A-Za-z0-9._-], first a letter or digit (GigaChad
 * GRC's template ids; a server id is "<template id>-<13 digits>"). */
#define CV_SERVER_ID_MAX_BYTES 128
#define CV_TEMPLATE_ID_MAX_BYTES 64
/* Key reference: "<tenant id>/<version>", the version 1..4294967295 in
 * decimal without sign or leading zero, so one key has one spelling. */
#define CV_KEY_VERSION_MAX_DIGITS 10
#define CV_KEY_ID_MAX_BYTES (CV_TENANT_ID_MAX_BYTES + 1 + CV_KEY_VERSION_MAX_DIGITS)

/* 1 when `s` (NUL-terminated, may be NULL) is a valid id of that kind. */
int cv_tenant_id_valid(const char *s);
int cv_server_id_valid(const char *s);
int cv_template_id_valid(const char *s);

/* Parses `n` bytes (no NUL needed) as a key reference. On failure CV_ERR_INPUT
 * and the outputs are untouched. */
CV_RESULT cv_key_id_parse(const char *s, size_t n, char tenant_id[CV_TENANT_ID_MAX_BYTES + 1], uint32_t *version);
/* Writes "<tenant>/<version>" and a NUL; CV_ERR_INPUT for an invalid tenant
 * or version 0. Returns the length through `len` (may be NULL). */
CV_RESULT cv_key_id_format(const char *tenant_id, uint32_t version, char out[CV_KEY_ID_MAX_BYTES + 1], size_t *len);

#endif
