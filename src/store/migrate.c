/* cv_store_migrate: applies each missing migration file in its own
 * transaction, with its schema_migrations row, under an advisory lock so
 * that concurrent migrators queue instead of racing. Runs as the owning
 * role on its own connection. Never touches a schema that holds a migration
 * it does not know (a newer build's). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/log.h"
#include "store/pq.h"

/* "cvmigrat" as a big-endian int8: the one advisory lock credvault takes */
#define MIGRATE_LOCK "7167036156481266036"

struct ledger {
    uint32_t *versions; /* ascending */
    size_t count;
};

static cv_result fail_with(PGconn *pg, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    cv_store_log_result_error("migrate_failed", what, res, CV_LOG_ERROR);
    if (!state || cv_store_sqlstate_drops(state) || PQstatus(pg) != CONNECTION_OK)
        return cv_fail(CV_ERR_UNAVAILABLE, "database unavailable during %s", what);
    if (strcmp(state, "55P03") == 0)
        return cv_fail(CV_ERR_UNAVAILABLE, "%s: timed out waiting for a lock (another migration, or a long "
                                           "transaction, holds it)", what);
    /* the operator runs this: the server's primary message and hint help
     * and quote no row (DETAIL, which can, is left out) */
    return cv_fail(CV_ERR_INTERNAL, "%s failed: %s%s%s", what, msg ? msg : "error", hint ? " (" : "",
                   hint ? hint : "");
}

static cv_result exec_ok(PGconn *pg, PGresult *res, const char *what)
{
    ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    cv_result r = CV_OK;
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) r = fail_with(pg, res, what);
    PQclear(res);
    return r;
}

static cv_result exec(PGconn *pg, const char *sql, const char *what) { return exec_ok(pg, PQexec(pg, sql), what); }

static void ledger_free(struct ledger *l)
{
    free(l->versions);
    memset(l, 0, sizeof(*l));
}

/* In the current (locked) transaction: which versions are applied. */
static cv_result ledger_read(PGconn *pg, struct ledger *l)
{
    memset(l, 0, sizeof(*l));
    PGresult *res = PQexec(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return exec_ok(pg, res, "reading schema_migrations");
    int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) return CV_OK;
    res = PQexec(pg, "SELECT version FROM schema_migrations ORDER BY version");
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) return exec_ok(pg, res, "reading schema_migrations");
    cv_result r = CV_OK;
    int n = PQntuples(res);
    l->versions = calloc((size_t)n + 1, sizeof(*l->versions));
    if (!l->versions) r = cv_fail(CV_ERR_MEMORY, "out of memory");
    for (int i = 0; cv_ok(r) && i < n; i++) r = cv_pq_u32(res, i, 0, &l->versions[i]);
    if (cv_ok(r)) l->count = (size_t)n;
    PQclear(res);
    if (cv_failed(r)) ledger_free(l);
    return r;
}

static int has(const struct ledger *l, uint32_t v)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->versions[i] == v) return 1;
    return 0;
}

/* Every applied version must be one of ours: a newer or unknown one means
 * a newer build migrated this database, and this one must not touch it. */
static cv_result ledger_known(const struct ledger *l, const struct cv_migration_set *files)
{
    uint32_t newest = files->items[files->count - 1].version;
    for (size_t i = 0; i < l->count; i++) {
        int known = 0;
        for (size_t j = 0; j < files->count; j++) known |= files->items[j].version == l->versions[i];
        CV_ENSURE(known, CV_ERR_CONFLICT,
                  "the database schema has migration %04u, which this build does not know (its newest is %04u): "
                  "upgrade credvault instead of migrating with this one",
                  l->versions[i], newest);
    }
    return CV_OK;
}

/* One transaction: lock, re-read the ledger, apply if still missing. */
static cv_result apply_one(PGconn *pg, const struct cv_migration_set *files, const struct cv_migration *m,
                           int *did)
{
    *did = 0;
    struct ledger l = {0};
    char *sql = NULL;
    cv_result r;
    CV_GUARD_OUT(r, exec(pg, "BEGIN", "BEGIN"));
    CV_GUARD_OUT(r, exec(pg, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", "waiting for the migration lock"));
    /* data migrations see every tenant's rows (row-level security is forced
     * on the owner too) */
    CV_GUARD_OUT(r, exec(pg, "SELECT set_config('credvault.tenant_id', '', true), "
                             "set_config('credvault.scope', 'platform', true)", "setting the scope"));
    CV_GUARD_OUT(r, ledger_read(pg, &l));
    CV_GUARD_OUT(r, ledger_known(&l, files));
    if (has(&l, m->version)) {
        r = exec(pg, "COMMIT", "COMMIT");
        goto out;
    }
    CV_GUARD_OUT(r, cv_store_migration_read(m, &sql));
    CV_GUARD_OUT(r, exec(pg, sql, m->name));
    if (PQtransactionStatus(pg) != PQTRANS_INTRANS) {
        r = cv_fail(CV_ERR_INPUT, "%s ends the transaction itself; migration files must not hold BEGIN, COMMIT "
                                  "or ROLLBACK", m->name);
        goto out;
    }
    char version[16];
    snprintf(version, sizeof(version), "%u", m->version);
    const char *params[2] = {version, m->name};
    CV_GUARD_OUT(r, exec_ok(pg,
                            PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1::int4, $2::text)",
                                         2, NULL, params, NULL, NULL, 0),
                            "recording the migration"));
    CV_GUARD_OUT(r, exec(pg, "COMMIT", "COMMIT"));
    *did = 1;
    cv_log(CV_LOG_INFO, "migration_applied", "migration", m->name, NULL);
out:
    free(sql);
    ledger_free(&l);
    if (cv_failed(r) && PQtransactionStatus(pg) != PQTRANS_IDLE && PQstatus(pg) == CONNECTION_OK)
        PQclear(PQexec(pg, "ROLLBACK"));
    return r;
}

cv_result cv_store_migrate(const struct cv_store_options *owner, const char *dir, unsigned *applied)
{
    CV_ENSURE_REF(owner);
    if (applied) *applied = 0;
    struct cv_migration_set files;
    CV_GUARD(cv_store_migrations_list(dir, &files));
    struct cv_conninfo ci;
    PGconn *pg = NULL;
    cv_result r;
    const struct cv_store_params p = {
        .url = owner->url,
        .password = owner->password,
        .connect_timeout_s = owner->connect_timeout_s,
        .statement_timeout_ms = owner->statement_timeout_ms, /* 0: DDL may take long */
        .lock_timeout_ms = CV_STORE_MIGRATE_LOCK_TIMEOUT_MS,
        .application_name = "credvault-migrate",
    };
    memset(&ci, 0, sizeof(ci));
    CV_GUARD_OUT(r, cv_store_conninfo_init(&ci, &p));
    CV_GUARD_OUT(r, cv_store_connect(&ci, &pg, NULL));
    for (size_t i = 0; i < files.count; i++) {
        int did;
        CV_GUARD_OUT(r, apply_one(pg, &files, &files.items[i], &did));
        if (did && applied) (*applied)++;
    }
out:
    if (pg) PQfinish(pg);
    cv_store_conninfo_free(&ci);
    cv_store_migrations_free(&files);
    return r;
}
