/* A change and its audit event commit together or not at all. With every
 * insert into audit_events refused by a trigger (a fixture of this test), a
 * master rotation, a tenant key rotation, a key destruction, a tenant shred,
 * a deploy and a token mint each fail and leave no trace; with the trigger
 * gone, each succeeds. Real SoftHSM2 token, real PostgreSQL, real HTTPS. */
#include "credvault/json_alloc.h"
#include "test_lifecycle_fixture.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;
static const char *admin;

static void refuse_audit(int on)
{
    char *out = cv_t_psql(on ? "CREATE FUNCTION cv_test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$BEGIN RAISE EXCEPTION 'audit writes refused by the test'; END$$; "
                             "CREATE TRIGGER cv_test_refuse_audit BEFORE INSERT ON audit_events "
                             "FOR EACH ROW EXECUTE FUNCTION cv_test_refuse_audit();"
                           : "DROP TRIGGER cv_test_refuse_audit ON audit_events; "
                             "DROP FUNCTION cv_test_refuse_audit();");
    free(out); /* cv_t_psql fails the case when psql does */
}

/* Everything a lifecycle change could leave behind, as one comparable line. */
static char *state(void)
{
    return cv_t_psql("SELECT (SELECT count(*) FROM master_keys) || '/' || (SELECT coalesce(max(version), 0) FROM "
                   "master_keys WHERE state = 'active') || '/' || (SELECT count(*) FROM key_jobs) || '/' || "
                   "(SELECT count(*) FROM key_events) || '/' || (SELECT string_agg(tenant_id || ':' || version || ':' "
                   "|| state || ':' || (wrapped_key IS NOT NULL), ',' ORDER BY tenant_id, version) FROM tenant_keys) "
                   "|| '/' || (SELECT count(*) FROM tenants) || '/' || (SELECT count(*) FROM mcp_credentials) || '/' "
                   "|| (SELECT count(*) FROM api_tokens) || '/' || (SELECT min_decrypt_version FROM tenants WHERE "
                   "id = 'af') || '/' || (SELECT count(*) FROM audit_events)");
}

static void expect_refused(const char *method, const char *path, const char *token, const char *body)
{
    char *before = state();
    struct cv_test_response r = cv_t_request(cl, method, path, token, body);
    ck_assert_msg(r.status >= 500, "%s %s with audit refused: %ld %s", method, path, r.status, r.body);
    ck_assert(json_is_false(json_object_get(r.json, "success")));
    /* the reason stays in the log: the client learns nothing of the database */
    ck_assert_ptr_null(strstr(r.body, "refused by the test"));
    cv_test_response_free(&r);
    char *after = state();
    ck_assert_msg(strcmp(before, after) == 0, "%s %s left a trace: %s -> %s", method, path, before, after);
    free(before);
    free(after);
}

START_TEST(every_change_fails_with_its_event)
{
    char tok[160], server[128], m[64];
    cv_t_tenant_create(cl, admin, "af");
    cv_t_token_mint(cl, admin, "admin@af.example", "tenant-admin", "af", NULL, tok, sizeof(tok));
    /* a retired version 1 (no record uses it), so that destruction has work */
    cv_t_expect_call(cl, "POST", "/api/tenants/af/keys/rotate", admin, NULL, 201, NULL);
    cv_t_expect_call(cl, "PUT", "/api/tenants/af/min-decrypt-version", admin, "{\"version\":2}", 200, NULL);
    ck_assert_int_eq(lc_deploy(cl, tok, "ghp_auditfailtest0000000000000000000001", server, sizeof(server)), 0);
    lc_masked(cl, tok, server, m, sizeof(m));
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM tenant_keys WHERE tenant_id = 'af' AND state = 'retired'"), 1);

    refuse_audit(1);
    expect_refused("POST", "/api/admin/master-keys/rotate", admin, NULL);
    expect_refused("POST", "/api/tenants/af/keys/rotate", admin, NULL);
    expect_refused("POST", "/api/tenants/af/keys/destroy-retired", admin, NULL);
    expect_refused("DELETE", "/api/tenants/af?confirm=af", admin, NULL);
    expect_refused("POST", "/api/mcp/templates/github/deploy", tok, "{\"env\":{\"GITHUB_TOKEN\":\"ghp_x\"}}");
    expect_refused("POST", "/api/tokens", admin, "{\"name\":\"later\",\"role\":\"auditor\",\"tenantId\":\"af\"}");
    /* the tenant is intact: its record still opens under its key */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM master_keys"), 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT max(version) FROM tenant_keys WHERE tenant_id = 'af'"), 2);
    refuse_audit(0);
    lc_masked(cl, tok, server, m, sizeof(m));

    /* the same changes go through once their events can be written */
    cv_t_expect_call(cl, "POST", "/api/admin/master-keys/rotate", admin, NULL, 202, NULL);
    cv_t_expect_call(cl, "POST", "/api/tenants/af/keys/rotate", admin, NULL, 201, NULL);
    cv_t_expect_call(cl, "POST", "/api/tenants/af/keys/destroy-retired", admin, NULL, 200, NULL);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM master_keys"), 2);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'master_key.rotate' AND "
                                 "target = 'credvault-master-2' AND outcome = 'success'"),
                     1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'tenant_key.rotate' AND "
                                 "target = 'af/3'"),
                     1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'tenant_key.destroy' AND "
                                 "target = 'af/1'"),
                     1);
    cv_t_expect_call(cl, "DELETE", "/api/tenants/af?confirm=af", admin, NULL, 200, NULL);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM tenants WHERE id = 'af'"), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'tenant.shred' AND target = 'af' "
                                 "AND outcome = 'success'"),
                     1);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    static const struct cv_t_suite_spec spec = {.name = "lifecycle_audit_fail", .timeout_s = 120};
    Suite *suite = cv_t_suite_new(&spec, CV_T_TESTS(every_change_fails_with_its_event));
    if (cv_test_service_start(&svc, lc_default_env) != 0) return 1;
    admin = svc.admin_token;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        failed++;
    }
    return failed ? 1 : 0;
}
