/* The store's part of `credvault import-legacy`: reading GigaChad GRC's
 * mcp_credentials table from its own database (a separate, read-only
 * connection that never touches credvault's), and inserting sealed records
 * that keep their original dates. No libpq type crosses this header. */
#ifndef CREDVAULT_STORE_IMPORT_H
#define CREDVAULT_STORE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"
#include "credvault/store.h"

#define CV_LEGACY_ID_MAX_BYTES 128                   /* the legacy row id (a UUID in practice) */
#define CV_LEGACY_ENV_TEXT_MAX_BYTES (256 * 1024)    /* one encrypted_env text */
#define CV_LEGACY_INTEGRATIONS_MAX_BYTES (16 * 1024) /* configured_integrations JSON text */
#define CV_LEGACY_ROWS_MAX 1000000u
#define CV_LEGACY_REASON_MAX_BYTES 200

/* One row of the legacy table as read, before any check beyond lengths.
 * A field that does not fit its array leaves `defect` set (the row is then
 * reported and skipped, never truncated). */
struct cv_legacy_row {
    uint64_t ordinal;                                    /* 1-based position (the line, for a file) */
    char id[CV_LEGACY_ID_MAX_BYTES + 1];                 /* "" when NULL */
    char server_id[CV_SERVER_ID_MAX_BYTES + 1];
    char template_id[CV_TEMPLATE_ID_MAX_BYTES + 1];
    char server_name[CV_STORE_NAME_MAX_BYTES + 1];
    char created_by[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    int has_server_name, has_created_by;                 /* 0 when NULL */
    char *encrypted_env;                                 /* heap; NULL when NULL */
    char *configured_integrations;                       /* heap JSON text; NULL when NULL */
    int64_t created_at_ms, last_updated_ms;              /* epoch ms */
    int has_created_at, has_last_updated;                /* 0 when NULL */
    char defect[CV_LEGACY_REASON_MAX_BYTES + 1];         /* why the row cannot be used, or "" */
};
void cv_legacy_row_free(struct cv_legacy_row *row);
/* Sets row->defect (printf-style) unless one is already set. */
void cv_legacy_row_defect(struct cv_legacy_row *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the legacy database (GigaChad GRC's, not credvault's) ---- */
struct cv_legacy_db;
/* Connects with `url` (libpq syntax) and opens one REPEATABLE READ, READ
 * ONLY transaction, so that every pass over the table sees one snapshot.
 * Connection failures are CV_ERR_UNAVAILABLE; the log has libpq's message
 * (never the URL, which may hold a password). */
CV_RESULT cv_store_legacy_open(const char *url, struct cv_legacy_db **out);
CV_RESULT cv_store_legacy_count(struct cv_legacy_db *db, uint64_t *n);
/* Starts (again) at the first row, ordered by created_at then id. */
CV_RESULT cv_store_legacy_rewind(struct cv_legacy_db *db);
/* The next row, or *done = 1 after the last. `row` is freed and refilled. */
CV_RESULT cv_store_legacy_next(struct cv_legacy_db *db, struct cv_legacy_row *row, int *done);
void cv_store_legacy_close(struct cv_legacy_db *db);

/* ---- credvault's side ---- */
/* Like cv_store_server_insert, but created_at and last_updated come from
 * row->created_at_ms and row->last_updated_ms (0: now), so an imported
 * record keeps its history. Counts one encryption on the key version in the
 * same transaction. CV_ERR_CONFLICT when the server id exists in the tenant. */
CV_RESULT cv_store_server_import(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev);

#endif
