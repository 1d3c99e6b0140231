/* Tenant isolation in the database itself: row-level security as the
 * service role (through the store and with raw SQL), forced on the owner,
 * and token hashes reachable only through the lookup function. */
#include "test_store_fixture.h"

static void setup(void)
{
    t_migrate();
    struct cv_store *st = t_open(t_app_url());
    t_seed_master(st, 1);
    t_seed_tenant(st, "tenant-a");
    t_seed_tenant(st, "tenant-b");
    struct cv_server_row s;
    t_server(&s, "tenant-a", "shared-id");
    T_OK(cv_store_server_insert(st, &s, NULL));
    t_server(&s, "tenant-b", "shared-id");
    snprintf(s.server_name, sizeof(s.server_name), "B's server");
    T_OK(cv_store_server_insert(st, &s, NULL));
    t_server(&s, "tenant-b", "only-in-b");
    T_OK(cv_store_server_insert(st, &s, NULL));
    struct cv_token_row t;
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), "b admin");
    snprintf(t.role, sizeof(t.role), "tenant-admin");
    snprintf(t.tenant_id, sizeof(t.tenant_id), "tenant-b");
    snprintf(t.id, sizeof(t.id), "00000000-0000-4000-8000-0000000000bb");
    memset(t.verifier, 0x5c, sizeof(t.verifier));
    t.has_verifier = 1;
    uint8_t h[CV_TOKEN_HASH_BYTES];
    memset(h, 0xbb, sizeof(h));
    T_OK(cv_store_token_insert(st, &t, h, NULL));
    struct cv_audit_event ev = {.tenant_id = "tenant-b", .actor = "x", .role = "admin", .action = "tenant.create",
                                .outcome = "success"};
    T_OK(cv_store_audit_insert(st, &ev));
    cv_store_close(st);
}

struct seen {
    unsigned n;
    int saw_b;
};

static int collect(void *arg, const struct cv_server_row *row)
{
    struct seen *s = arg;
    s->n++;
    s->saw_b |= strcmp(row->tenant_id, "tenant-a") != 0 || strcmp(row->server_name, "B's server") == 0;
    return 0;
}

START_TEST(store_sees_one_tenant)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_server_row got;
    T_ERR(cv_store_server_get(st, "tenant-a", "only-in-b", 1, &got), CV_ERR_NOT_FOUND);
    T_OK(cv_store_server_get(st, "tenant-a", "shared-id", 1, &got));
    ck_assert_str_eq(got.tenant_id, "tenant-a");
    ck_assert_str_ne(got.server_name, "B's server");
    cv_server_row_free(&got);
    struct seen seen = {0};
    uint64_t total = 0;
    T_OK(cv_store_server_list(st, "tenant-a", 100, 0, collect, &seen, &total));
    ck_assert_uint_eq(total, 1);
    ck_assert_uint_eq(seen.n, 1);
    ck_assert_int_eq(seen.saw_b, 0);
    T_ERR(cv_store_server_delete(st, "tenant-a", "only-in-b", NULL), CV_ERR_NOT_FOUND);
    struct cv_server_row s;
    t_server(&s, "tenant-a", "only-in-b");
    T_ERR(cv_store_server_update(st, &s, 1, NULL), CV_ERR_NOT_FOUND);
    cv_store_close(st);
}
END_TEST

/* A session default in the URL must not widen any transaction's scope: the
 * store sets both settings in every transaction. */
START_TEST(session_default_cannot_widen_scope)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s&options=-c%%20credvault.scope%%3Dplatform%%20-c%%20credvault.tenant_id%%3Dtenant-b",
             t_app_url());
    PGconn *pg = t_pg(url);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 3); /* the URL alone would widen it */
    PQfinish(pg);
    struct cv_store *st = t_open(url);
    struct seen seen = {0};
    uint64_t total = 0;
    T_OK(cv_store_server_list(st, "tenant-a", 100, 0, collect, &seen, &total));
    ck_assert_uint_eq(total, 1);
    ck_assert_int_eq(seen.saw_b, 0);
    struct cv_server_row got;
    T_ERR(cv_store_server_get(st, "tenant-a", "only-in-b", 0, &got), CV_ERR_NOT_FOUND);
    cv_store_close(st);
}
END_TEST

START_TEST(raw_app_role_without_scope_sees_nothing)
{
    PGconn *pg = t_pg(t_app_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 0);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM tenants"), 0);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM tenant_keys"), 0);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events"), 0);
    ck_assert_str_eq(t_fails(pg, "SELECT count(*) FROM api_tokens"), "42501");
    /* writes outside the scope are refused or touch nothing */
    ck_assert_int_eq(t_int(pg, "WITH d AS (DELETE FROM mcp_credentials RETURNING 1) SELECT count(*) FROM d"), 0);
    ck_assert_str_eq(t_fails(pg, "INSERT INTO tenants (id, name, created_by) VALUES ('rogue', 'r', 'x')"), "42501");
    PQfinish(pg);
}
END_TEST

START_TEST(raw_app_role_in_tenant_a_scope)
{
    PGconn *pg = t_pg(t_app_url());
    t_run(pg, "BEGIN");
    t_run(pg, "SELECT set_config('credvault.tenant_id', 'tenant-a', true), set_config('credvault.scope', 'tenant', true)");
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 1);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'tenant-b'"), 0);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM tenants"), 1);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events"), 0);
    ck_assert_int_eq(t_int(pg, "WITH u AS (UPDATE mcp_credentials SET server_name = 'pwned' WHERE tenant_id = "
                               "'tenant-b' RETURNING 1) SELECT count(*) FROM u"), 0);
    /* the token lookup crosses tenants for its one query, then the scope is ours again */
    uint8_t h[CV_TOKEN_HASH_BYTES];
    memset(h, 0xbb, sizeof(h));
    char sql[256];
    char hex[2 * CV_TOKEN_HASH_BYTES + 1];
    for (size_t i = 0; i < sizeof(h); i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM credvault_token_by_hash(decode('%s', 'hex'))", hex);
    ck_assert_int_eq(t_int(pg, sql), 1);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 1);
    ck_assert_int_eq(t_int(pg, "SELECT (current_setting('credvault.scope') = 'tenant')::int"), 1);
    /* revoke through the function is confined to the caller's scope */
    snprintf(sql, sizeof(sql), "SELECT credvault_token_revoke(id)::int FROM credvault_token_by_hash(decode('%s', 'hex'))",
             hex);
    ck_assert_int_eq(t_int(pg, sql), 0);
    ck_assert_str_eq(t_fails(pg, "INSERT INTO mcp_credentials (tenant_id, server_id, template_id, server_name, "
                                 "encrypted_env, key_version, created_by, updated_by) VALUES ('tenant-b', 'x', 't', "
                                 "'n', '{}', 1, 'x', 'x')"),
                     "42501");
    PQfinish(pg);
}
END_TEST

START_TEST(app_role_privileges_are_minimal)
{
    PGconn *pg = t_pg(t_app_url());
    ck_assert_str_eq(t_fails(pg, "SELECT token_hash FROM api_tokens"), "42501");
    ck_assert_str_eq(t_fails(pg, "UPDATE api_tokens SET revoked_at = NULL"), "42501");
    ck_assert_str_eq(t_fails(pg, "UPDATE audit_events SET outcome = 'success'"), "42501");
    ck_assert_str_eq(t_fails(pg, "DELETE FROM audit_events"), "42501");
    ck_assert_str_eq(t_fails(pg, "DELETE FROM schema_migrations"), "42501");
    ck_assert_str_eq(t_fails(pg, "ALTER TABLE mcp_credentials DISABLE ROW LEVEL SECURITY"), "42501");
    ck_assert_str_eq(t_fails(pg, "CREATE TABLE rogue (x int)"), "42501");
    ck_assert_str_eq(t_fails(pg, "SET ROLE credvault_owner"), "42501");
    PQfinish(pg);
}
END_TEST

START_TEST(owner_obeys_policies_too)
{
    PGconn *pg = t_pg(t_owner_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 0); /* FORCE */
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM api_tokens"), 0);
    PQfinish(pg);
    pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials"), 3);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM pg_class WHERE relname IN ('tenants', 'tenant_keys', "
                               "'mcp_credentials', 'api_tokens', 'audit_events', 'tenant_key_usage') AND relrowsecurity AND "
                               "relforcerowsecurity"),
                     6);
    PQfinish(pg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_rls");
    TCase *tc = tcase_create("isolation");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, store_sees_one_tenant);
    tcase_add_test(tc, session_default_cannot_widen_scope);
    tcase_add_test(tc, raw_app_role_without_scope_sees_nothing);
    tcase_add_test(tc, raw_app_role_in_tenant_a_scope);
    tcase_add_test(tc, app_role_privileges_are_minimal);
    tcase_add_test(tc, owner_obeys_policies_too);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
