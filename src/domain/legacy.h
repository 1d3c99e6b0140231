/* Import of GigaChad GRC's mcp_credentials (`credvault import-legacy`):
 * sources (the legacy database, or the table exported as JSON lines) and the
 * use case that decrypts each record in software with the legacy key and
 * seals it again under the tenant's HSM-held key. */
#ifndef CREDVAULT_DOMAIN_LEGACY_H
#define CREDVAULT_DOMAIN_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/crypto_legacy.h" /* CV_LEGACY_PASSPHRASE_MAX_BYTES bounds key_len */
#include "credvault/store_import.h"
#include "domain/domain.h"

#define CV_LEGACY_LINE_MAX_BYTES ((size_t)1024 * 1024) /* one JSON line of an export */
/* How many well-formed records are tried before the key is judged: if none
 * of the first this-many decrypts, the key is wrong and nothing is written. */
#define CV_LEGACY_KEY_PROBE_ROWS 16
#define CV_LEGACY_INTEGRATIONS_MAX 64

/* A pass over the legacy rows, from a database or a file. */
struct cv_legacy_source {
    void *impl;
    CV_RESULT (*count)(void *impl, uint64_t *n);
    CV_RESULT (*rewind)(void *impl);
    CV_RESULT (*next)(void *impl, struct cv_legacy_row *row, int *done);
    void (*close)(void *impl);
};
/* The legacy database at `url` (libpq syntax), read in one read-only snapshot. */
CV_RESULT cv_legacy_source_db(const char *url, struct cv_legacy_source *out);
/* A regular file of JSON lines, one row per line, as
 *   SELECT row_to_json(t) FROM (SELECT id, server_id, …) t
 * writes them (docs/migration-from-gigachad.md). Blank lines are skipped. */
CV_RESULT cv_legacy_source_file(const char *path, struct cv_legacy_source *out);
void cv_legacy_source_close(struct cv_legacy_source *src);

enum cv_legacy_outcome {
    CV_LEGACY_IMPORTED,      /* sealed and stored */
    CV_LEGACY_WOULD_IMPORT,  /* --dry-run: it would have been */
    CV_LEGACY_PRESENT,       /* the tenant has this server id already: untouched */
    CV_LEGACY_FAILED,        /* reported with its reason and skipped */
};

struct cv_legacy_result {
    uint64_t ordinal;          /* position in the source (a file's line number) */
    const char *legacy_id;     /* the legacy row id, or "" */
    const char *server_id;     /* or "" */
    enum cv_legacy_outcome outcome;
    const char *reason;        /* FAILED only; never holds a value */
};

struct cv_legacy_summary {
    uint64_t total, imported, present, failed;
};

struct cv_legacy_import_options {
    const char *tenant_id;
    const uint8_t *key;  /* the legacy key's bytes (secret memory, the caller's) */
    size_t key_len;
    int dry_run;
    void (*report)(void *arg, const struct cv_legacy_result *r);
    /* after each row of the writing pass: rows done so far of `total` */
    void (*progress)(void *arg, uint64_t done, uint64_t total, const struct cv_legacy_summary *s);
    void *arg;
};

/* Imports every row of `src` into the tenant: first the key is tried on the
 * first rows (CV_LEGACY_KEY_PROBE_ROWS) and, if it opens none of them, the
 * import stops with CV_ERR_AUTH before anything is written; then each row is
 * checked, decrypted, sealed with cv_seal_env and stored with its server id,
 * name, creator and dates, and audited. A row that fails is reported and
 * skipped; a server id the tenant already has is left alone ("already
 * present"), so a second run imports nothing twice. Plaintext is wiped as
 * soon as it is sealed. Fatal errors (database or HSM unavailable) stop the
 * run; rows stored before stay stored, and a re-run carries on. */
CV_RESULT cv_legacy_import(struct cv_app *app, const struct cv_principal *p, struct cv_legacy_source *src,
                           const struct cv_legacy_import_options *opt, struct cv_legacy_summary *summary);

#endif
