/* Reading GigaChad GRC's mcp_credentials from its own database, for the
 * legacy import: one connection of its own (never one of credvault's), one
 * REPEATABLE READ READ ONLY transaction so that every pass sees the same
 * rows, a cursor fetched in batches so memory stays bounded. It only reads;
 * it never logs the URL (a password may be in it) nor a row's values. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/log.h"
#include "credvault/store_import.h"
#include "store/pq.h"

#define LEGACY_FETCH_ROWS 100
#define LEGACY_CONNECT_TIMEOUT_S 10
#define LEGACY_STATEMENT_TIMEOUT_MS 300000 /* a count or a batch on a large, busy table */
#define LEGACY_NCOLS 9

/* Timestamps: a naive TIMESTAMP (what GigaChad's NOW() wrote) is read in the
 * session's TimeZone, the database's default, which is the one NOW() used;
 * ::timestamptz leaves a TIMESTAMPTZ column as it is. */
#define LEGACY_MS(col) "floor(extract(epoch FROM " col "::timestamptz) * 1000)::int8"
#define LEGACY_SELECT                                                                                        \
    "SELECT id::text, server_id::text, template_id::text, server_name::text, encrypted_env::text,"            \
    " configured_integrations::text, " LEGACY_MS("created_at") ", created_by::text, "                       \
    LEGACY_MS("last_updated") " FROM mcp_credentials ORDER BY created_at, id"

struct cv_legacy_db {
    PGconn *pg;
    struct cv_conninfo ci;
    PGresult *batch; /* the current FETCH result */
    int next;        /* next row of it */
    int open;        /* the cursor is declared */
    int exhausted;   /* the last FETCH returned fewer rows than asked */
    uint64_t ordinal;
};

void cv_legacy_row_free(struct cv_legacy_row *row)
{
    if (!row) return;
    free(row->encrypted_env);
    free(row->configured_integrations);
    memset(row, 0, sizeof(*row));
}

void cv_legacy_row_defect(struct cv_legacy_row *row, const char *fmt, ...)
{
    if (row->defect[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row->defect, sizeof(row->defect), fmt, ap);
    va_end(ap);
}

/* Runs one statement without parameters; the server's primary message (about
 * the legacy schema, never about row values) goes into the error. */
static cv_result exec(struct cv_legacy_db *db, const char *what, const char *sql, ExecStatusType want,
                      PGresult **out)
{
    PGresult *res = PQexec(db->pg, sql);
    if (PQresultStatus(res) != want) {
        cv_store_log_result_error("legacy_db_error", what, res, CV_LOG_WARN);
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        int gone = PQstatus(db->pg) != CONNECTION_OK;
        cv_result r = cv_fail(gone ? CV_ERR_UNAVAILABLE : CV_ERR_INPUT, "the legacy database: %s: %.200s", what,
                              msg ? msg : gone ? "the connection was lost" : "unexpected result");
        PQclear(res);
        return r;
    }
    if (out) *out = res;
    else PQclear(res);
    return CV_OK;
}

cv_result cv_store_legacy_open(const char *url, struct cv_legacy_db **out)
{
    CV_ENSURE(url && *url, CV_ERR_INPUT, "no URL for the legacy database");
    struct cv_legacy_db *db = calloc(1, sizeof(*db));
    CV_ENSURE(db != NULL, CV_ERR_MEMORY, "out of memory");
    const struct cv_store_params p = {.url = url,
                                      .connect_timeout_s = LEGACY_CONNECT_TIMEOUT_S,
                                      .statement_timeout_ms = LEGACY_STATEMENT_TIMEOUT_MS,
                                      .application_name = "credvault-import-legacy"};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_conninfo_init(&db->ci, &p));
    r = cv_store_connect(&db->ci, &db->pg, NULL);
    if (cv_failed(r)) {
        r = cv_fail(r.err, "cannot connect to the legacy database (libpq's message is in the log line above)");
        goto out;
    }
    CV_GUARD_OUT(r, exec(db, "begin", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", PGRES_COMMAND_OK, NULL));
out:
    if (cv_failed(r)) {
        cv_store_legacy_close(db);
        return r;
    }
    *out = db;
    return CV_OK;
}

void cv_store_legacy_close(struct cv_legacy_db *db)
{
    if (!db) return;
    PQclear(db->batch);
    if (db->pg) PQfinish(db->pg); /* ends the read-only transaction */
    cv_store_conninfo_free(&db->ci);
    free(db);
}

cv_result cv_store_legacy_count(struct cv_legacy_db *db, uint64_t *n)
{
    CV_ENSURE_REF(db);
    PGresult *res = NULL;
    CV_GUARD(exec(db, "count", "SELECT count(*) FROM mcp_credentials", PGRES_TUPLES_OK, &res));
    int64_t v = 0;
    cv_result r = CV_OK;
    if (PQntuples(res) != 1 || PQnfields(res) != 1) r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
    else r = cv_pq_i64(res, 0, 0, &v);
    PQclear(res);
    CV_GUARD(r);
    CV_ENSURE(v >= 0 && (uint64_t)v <= CV_LEGACY_ROWS_MAX, CV_ERR_TOO_LARGE,
              "the legacy table has %lld rows; at most %u are imported in one run", (long long)v,
              CV_LEGACY_ROWS_MAX);
    *n = (uint64_t)v;
    return CV_OK;
}

cv_result cv_store_legacy_rewind(struct cv_legacy_db *db)
{
    CV_ENSURE_REF(db);
    PQclear(db->batch);
    db->batch = NULL;
    db->next = 0;
    db->exhausted = 0;
    db->ordinal = 0;
    if (db->open) {
        db->open = 0;
        CV_GUARD(exec(db, "close cursor", "CLOSE cv_legacy", PGRES_COMMAND_OK, NULL));
    }
    CV_GUARD(exec(db, "select", "DECLARE cv_legacy NO SCROLL CURSOR FOR " LEGACY_SELECT, PGRES_COMMAND_OK, NULL));
    db->open = 1;
    return CV_OK;
}

/* A text column into a fixed array; too long (or a NUL, which PostgreSQL
 * text cannot hold) marks the row instead of truncating it. */
static void text_col(const PGresult *res, int i, int c, const char *name, char *dst, size_t cap, int *present,
                     struct cv_legacy_row *row)
{
    dst[0] = '\0';
    if (present) *present = !PQgetisnull(res, i, c);
    if (PQgetisnull(res, i, c)) return;
    size_t len = (size_t)PQgetlength(res, i, c);
    if (len >= cap) {
        cv_legacy_row_defect(row, "%s is longer than %zu bytes", name, cap - 1);
        return;
    }
    if (cv_failed(cv_store_copy_text(dst, cap, PQgetvalue(res, i, c), len))) {
        cv_error_clear();
        cv_legacy_row_defect(row, "%s holds a NUL byte", name);
    }
}

static cv_result heap_col(const PGresult *res, int i, int c, const char *name, size_t max, char **dst,
                          struct cv_legacy_row *row)
{
    *dst = NULL;
    if (PQgetisnull(res, i, c)) return CV_OK;
    if ((size_t)PQgetlength(res, i, c) > max) {
        cv_legacy_row_defect(row, "%s is longer than %zu bytes", name, max);
        return CV_OK;
    }
    return cv_pq_dup(res, i, c, max, dst);
}

static void time_col(const PGresult *res, int i, int c, const char *name, int64_t *ms, int *present,
                     struct cv_legacy_row *row)
{
    *present = !PQgetisnull(res, i, c);
    *ms = 0;
    if (!*present) return;
    if (cv_failed(cv_pq_i64(res, i, c, ms)) || *ms < 0) {
        cv_error_clear();
        *present = 0;
        cv_legacy_row_defect(row, "%s is out of range (before 1970, or not a time)", name);
    }
}

cv_result cv_store_legacy_next(struct cv_legacy_db *db, struct cv_legacy_row *row, int *done)
{
    CV_ENSURE_REF(db);
    CV_ENSURE(db->open, CV_ERR_INTERNAL, "legacy cursor is not open");
    cv_legacy_row_free(row);
    *done = 0;
    if (!db->batch || db->next >= PQntuples(db->batch)) {
        PQclear(db->batch);
        db->batch = NULL;
        db->next = 0;
        if (db->exhausted) {
            *done = 1;
            return CV_OK;
        }
        char sql[64];
        snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM cv_legacy", LEGACY_FETCH_ROWS);
        CV_GUARD(exec(db, "fetch", sql, PGRES_TUPLES_OK, &db->batch));
        CV_ENSURE(PQnfields(db->batch) == LEGACY_NCOLS, CV_ERR_INTERNAL, "unexpected database result");
        db->exhausted = PQntuples(db->batch) < LEGACY_FETCH_ROWS;
        if (PQntuples(db->batch) == 0) {
            *done = 1;
            return CV_OK;
        }
    }
    const PGresult *res = db->batch;
    int i = db->next++;
    row->ordinal = ++db->ordinal;
    text_col(res, i, 0, "id", row->id, sizeof(row->id), NULL, row);
    text_col(res, i, 1, "server_id", row->server_id, sizeof(row->server_id), NULL, row);
    text_col(res, i, 2, "template_id", row->template_id, sizeof(row->template_id), NULL, row);
    text_col(res, i, 3, "server_name", row->server_name, sizeof(row->server_name), &row->has_server_name, row);
    text_col(res, i, 7, "created_by", row->created_by, sizeof(row->created_by), &row->has_created_by, row);
    time_col(res, i, 6, "created_at", &row->created_at_ms, &row->has_created_at, row);
    time_col(res, i, 8, "last_updated", &row->last_updated_ms, &row->has_last_updated, row);
    cv_result r;
    CV_GUARD_OUT(r, heap_col(res, i, 4, "encrypted_env", CV_LEGACY_ENV_TEXT_MAX_BYTES, &row->encrypted_env, row));
    CV_GUARD_OUT(r, heap_col(res, i, 5, "configured_integrations", CV_LEGACY_INTEGRATIONS_MAX_BYTES,
                             &row->configured_integrations, row));
out:
    if (cv_failed(r)) cv_legacy_row_free(row);
    return r;
}
