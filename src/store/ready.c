/* Start-up and liveness checks of the service's own connection: the schema
 * is the one this build knows, and the role is what the isolation design
 * assumes (not a superuser, no BYPASSRLS, owns nothing, row-level security
 * forced, token hashes unreadable). Refuses to start rather than run exposed. */
#include <stdio.h>
#include <string.h>

#include "store/pq.h"

#define TENANT_TABLES \
    "'tenants', 'tenant_keys', 'tenant_key_usage', 'mcp_credentials', 'api_tokens', 'audit_events', " \
    "'audit_heads', 'audit_checkpoint_heads'"

CV_SQL_DEF(ping_sql, PING, "SELECT 1", 0);

/* Everything about the role, and whether the ledger exists, in one row. */
CV_SQL_DEF(role_sql, READY_ROLE,
    "WITH ns AS (SELECT relnamespace AS oid FROM pg_class WHERE oid = to_regclass('schema_migrations'))"
    " SELECT r.rolname, r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM ns),"
    " (SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c, ns"
    "   WHERE c.relnamespace = ns.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    "   AND pg_has_role(r.oid, c.relowner, 'MEMBER')),"
    " (SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c, ns"
    "   WHERE c.relnamespace = ns.oid AND c.relname IN (" TENANT_TABLES ")"
    "   AND NOT (c.relrowsecurity AND c.relforcerowsecurity)),"
    " coalesce(has_table_privilege(to_regclass('api_tokens'), 'SELECT'), false)"
    " FROM pg_roles r WHERE r.rolname = current_user",
    0);

CV_SQL_DEF(versions_sql, READY_VERSIONS,
                                           "SELECT version FROM schema_migrations ORDER BY version", 0);

static const struct cv_tx plain_read = {.scope = CV_SCOPE_NONE, .flags = CV_TX_READ_ONLY};

cv_result cv_store_ping(struct cv_store *st)
{
    struct cv_q q;
    cv_q_init(&q, &ping_sql);
    cv_result r = cv_store_tx(st, &plain_read, &q, 1);
    cv_q_clear(&q, 1);
    return r;
}

static cv_result check_role(const PGresult *res, int *has_ledger)
{
    CV_GUARD(cv_pq_expect(res, 7));
    CV_ENSURE(PQntuples(res) == 1, CV_ERR_INTERNAL, "cannot read the connected role");
    char role[64], owned[512], unforced[256];
    int super, bypass, reads_tokens;
    CV_GUARD(cv_pq_text(res, 0, 0, role, sizeof(role)));
    CV_GUARD(cv_pq_bool(res, 0, 1, &super));
    CV_GUARD(cv_pq_bool(res, 0, 2, &bypass));
    CV_GUARD(cv_pq_bool(res, 0, 3, has_ledger));
    /* the lists are diagnostics: cut them rather than fail on a long one */
    snprintf(owned, sizeof(owned), "%.*s", (int)sizeof(owned) - 1, PQgetvalue(res, 0, 4));
    snprintf(unforced, sizeof(unforced), "%.*s", (int)sizeof(unforced) - 1, PQgetvalue(res, 0, 5));
    CV_GUARD(cv_pq_bool(res, 0, 6, &reads_tokens));
    CV_ENSURE(!super, CV_ERR_CONFLICT,
              "the database role %s is a superuser, which ignores row-level security: connect the service as a "
              "role without SUPERUSER (docs/database.md)", role);
    CV_ENSURE(!bypass, CV_ERR_CONFLICT,
              "the database role %s has BYPASSRLS: connect the service as a role without it (docs/database.md)",
              role);
    CV_ENSURE(owned[0] == '\0', CV_ERR_CONFLICT,
              "the database role %s owns (or may act as the owner of) credvault tables (%s): connect the service "
              "as a role that owns nothing, and migrate as the owner (docs/database.md)", role, owned);
    if (*has_ledger) {
        CV_ENSURE(unforced[0] == '\0', CV_ERR_CONFLICT,
                  "row-level security is not enabled and forced on %s: run `credvault migrate`", unforced);
        CV_ENSURE(!reads_tokens, CV_ERR_CONFLICT,
                  "the database role %s can read api_tokens directly: revoke SELECT on it (docs/database.md)", role);
    }
    return CV_OK;
}

static cv_result check_versions(const PGresult *res, const struct cv_migration_set *files)
{
    CV_GUARD(cv_pq_expect(res, 1));
    uint32_t newest_known = files->items[files->count - 1].version;
    int n = PQntuples(res);
    uint32_t newest_applied = 0;
    if (n > 0) CV_GUARD(cv_pq_u32(res, n - 1, 0, &newest_applied));
    CV_ENSURE(newest_applied <= newest_known, CV_ERR_CONFLICT,
              "the database schema is at version %u, newer than this build knows (%u): upgrade credvault",
              newest_applied, newest_known);
    size_t matched = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v;
        CV_GUARD(cv_pq_u32(res, i, 0, &v));
        for (size_t j = 0; j < files->count; j++) matched += files->items[j].version == v;
    }
    CV_ENSURE(matched == files->count && (size_t)n == files->count, CV_ERR_CONFLICT,
              "the database schema is at version %u but this build needs %u: run `credvault migrate`",
              newest_applied, newest_known);
    return CV_OK;
}

cv_result cv_store_check_ready(struct cv_store *st, const char *dir)
{
    struct cv_migration_set files;
    CV_GUARD(cv_store_migrations_list(dir, &files));
    struct cv_q q;
    cv_q_init(&q, &role_sql);
    cv_result r;
    int has_ledger = 0;
    CV_GUARD_OUT(r, cv_store_tx(st, &plain_read, &q, 1));
    CV_GUARD_OUT(r, check_role(q.res, &has_ledger));
    if (!has_ledger) {
        r = cv_fail(CV_ERR_CONFLICT, "the database has no credvault schema yet: run `credvault migrate`");
        goto out;
    }
    cv_q_clear(&q, 1);
    cv_q_init(&q, &versions_sql);
    CV_GUARD_OUT(r, cv_store_tx(st, &plain_read, &q, 1));
    CV_GUARD_OUT(r, check_versions(q.res, &files));
out:
    cv_q_clear(&q, 1);
    cv_store_migrations_free(&files);
    return r;
}
