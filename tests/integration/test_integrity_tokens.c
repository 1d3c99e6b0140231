/* A database writer against API tokens, with only the service's own
 * database role (credvault_app), against the real service, token and
 * database: a token row inserted through credvault_token_insert with the
 * hash of a token of the writer's choosing, a real row given more power, a
 * row left without a verifier; and the one-time bind that keeps tokens
 * minted before verifiers working. Also: token names (printable, unique per
 * tenant and role) and the token id beside the name in audit events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/json_alloc.h"
#include "test_ops_fixture.h"

#define SECRET "ghp_integrity_0123456789abcdefABCDEF"
#define CHOSEN "cvt_4141414141414141414141414141414141414141414141414141414141414141"

static char tok_acme[160], srv_acme[160];

/* SQL as the service's own role, in platform scope (which that role may
 * set): what a writer with the service's credentials can do. */
#define AS_SERVICE "SET credvault.scope = 'platform'; "
static char *as_service(const char *sql, int *status)
{
    char full[2048];
    snprintf(full, sizeof(full), AS_SERVICE "%s", sql);
    return cv_t_psql_run("CREDVAULT_DATABASE_URL", full, status);
}

static long long count_sql(const char *sql)
{
    return cv_t_psql_int(sql);
}

static void env_path(char *path, size_t n)
{
    snprintf(path, n, "/api/mcp/servers/%s/env", srv_acme);
}

START_TEST(a_row_inserted_by_a_writer_does_not_authenticate)
{
    long long mismatches = count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.verifier_mismatch'");
    long long tokens = count_sql("SELECT count(*) FROM api_tokens");
    /* a workload token of the writer's choosing, for acme's server, through the
     * service's own function: with no verifier, and with one it made up */
    char sql[1024];
    int st;
    snprintf(sql, sizeof(sql),
             AS_SERVICE "SELECT id FROM credvault_token_insert('6d1f0a3e-0000-4000-8000-000000000001', 'acme', '%s', "
             "'forged-workload', 'workload', sha256('%s'::bytea), 'nobody', NULL, NULL)",
             srv_acme, CHOSEN);
    free(cv_t_psql_on("CREDVAULT_DATABASE_URL", sql));
    char path[256];
    env_path(path, sizeof(path));
    cv_t_expect_call(cl, "GET", path, CHOSEN, NULL, 401, "unauthorized");
    /* the same with a verifier of its own: still refused */
    free(cv_t_psql("DELETE FROM api_tokens WHERE name = 'forged-workload'"));
    snprintf(sql, sizeof(sql),
             AS_SERVICE "SELECT id FROM credvault_token_insert('6d1f0a3e-0000-4000-8000-000000000002', NULL, NULL, "
             "'forged-admin', 'admin', sha256('%s'::bytea), 'nobody', NULL, sha256('verifier'::bytea))",
             CHOSEN);
    free(cv_t_psql_on("CREDVAULT_DATABASE_URL", sql));
    cv_t_expect_call(cl, "GET", "/api/tenants", CHOSEN, NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "POST", "/api/tenants", CHOSEN, "{\"id\":\"forged-tenant\",\"name\":\"x\"}", 401,
                     "unauthorized");
    /* the old function, without a verifier, is gone; the table is out of reach */
    snprintf(sql, sizeof(sql),
             "SELECT credvault_token_insert(NULL, NULL, NULL, 'x', 'admin', sha256('%s'::bytea), 'x', NULL)", CHOSEN);
    char *out = as_service(sql, &st);
    ck_assert_msg(st != 0, "the 0004 insert still works: %s", out);
    free(out);
    out = as_service("INSERT INTO api_tokens (name, role, token_hash, created_by) VALUES "
                     "('x', 'admin', sha256('x'::bytea), 'x')",
                     &st);
    ck_assert_msg(st != 0 && strstr(out, "permission denied"), "%s", out);
    free(out);
    /* each refusal was logged and audited as a mismatch; nothing else changed */
    ck_assert_int_eq(count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.verifier_mismatch'"),
                     mismatches + 3);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.verifier_mismatch' AND "
                               "target = '6d1f0a3e-0000-4000-8000-000000000002'"),
                     2);
    ck_assert(cv_test_service_log_contains(&svc, "token_verifier_mismatch"));
    ck_assert_int_eq(count_sql("SELECT count(*) FROM tenants WHERE id = 'forged-tenant'"), 0);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM audit_events WHERE action = 'credentials.read_full' AND "
                               "actor LIKE 'forged%'"),
                     0);
    free(cv_t_psql("DELETE FROM api_tokens WHERE name LIKE 'forged-%'"));
    ck_assert_int_eq(count_sql("SELECT count(*) FROM api_tokens"), tokens);
    ck_assert(metric(svc.admin_token, "credvault_integrity_failures_total{kind=\"token\"}") >= 3);
}
END_TEST

START_TEST(a_real_row_given_more_power_stops_working)
{
    char tok[160], path[256];
    cv_t_token_mint(cl, svc.admin_token, "ci-power", "auditor", "acme", NULL, tok, sizeof(tok));
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 200, NULL);
    /* the writer cannot update api_tokens as the service; as the owner it can,
     * and the verifier then gives it away */
    int st;
    char *out = as_service("UPDATE api_tokens SET role = 'tenant-admin' WHERE name = 'ci-power'", &st);
    ck_assert_msg(st != 0 && strstr(out, "permission denied"), "%s", out);
    free(out);
    free(cv_t_psql("UPDATE api_tokens SET role = 'tenant-admin' WHERE name = 'ci-power'"));
    /* a token verified moments ago may keep its old, verified power until the
     * edit's key event clears the cache; the edit's power it never gets */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", srv_acme);
    cv_t_expect_status_within(cl, "GET", "/api/mcp/servers", tok, 200, 401, 1000);
    cv_t_expect_call(cl, "DELETE", path, tok, NULL, 401, "unauthorized");
    free(cv_t_psql("UPDATE api_tokens SET role = 'auditor' WHERE name = 'ci-power'"));
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 200, NULL);
    /* a longer life is more power too */
    free(cv_t_psql("UPDATE api_tokens SET expires_at = now() + interval '1 day' WHERE name = 'ci-power'"));
    cv_t_expect_status_within(cl, "GET", "/api/mcp/servers", tok, 200, 401, 1000);
    cv_t_expect_call(cl, "GET", path, tok_acme, NULL, 200, NULL); /* the server is still there */
}
END_TEST

/* Tokens minted before verifiers: the upgrade's pending bind, replayed on a
 * live database by taking a row's verifier away and marking the bind pending
 * again (what migration 0014 leaves behind). */
START_TEST(tokens_minted_before_keep_working_bound_once)
{
    char old[160];
    cv_t_token_mint(cl, svc.admin_token, "ci-old", "auditor", "acme", NULL, old, sizeof(old));
    free(cv_t_psql("UPDATE api_tokens SET verifier = NULL WHERE name = 'ci-old'; "
                   "INSERT INTO api_tokens_bind_pending VALUES (true)"));
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", old, NULL, 401, "unauthorized");
    long long binds = count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.bind'");
    /* the next command that starts binds it, once, audited */
    char out[4096];
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", old, NULL, 200, NULL);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.bind'"), binds + 1);
    ck_assert_int_eq(count_sql("SELECT (detail->>'tokens')::int FROM audit_events WHERE action = 'token.bind' "
                               "ORDER BY id DESC LIMIT 1"),
                     1);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM api_tokens_bind_pending"), 0);
    /* after it, a row without a verifier stays refused, and no start binds it */
    char sql[512];
    snprintf(sql, sizeof(sql),
             AS_SERVICE "SELECT id FROM credvault_token_insert('6d1f0a3e-0000-4000-8000-000000000003', 'acme', NULL, "
             "'forged-late', 'tenant-admin', sha256('%s'::bytea), 'nobody', NULL, NULL)",
             CHOSEN);
    free(cv_t_psql_on("CREDVAULT_DATABASE_URL", sql));
    int st;
    char *r = as_service("SELECT credvault_token_bind_finish(ARRAY['6d1f0a3e-0000-4000-8000-000000000003'::uuid], "
                         "ARRAY[sha256('x'::bytea)])",
                         &st);
    ck_assert_msg(st == 0 && strcmp(r, "-1") == 0, "bind after the end: %s", r);
    free(r);
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", CHOSEN, NULL, 401, "unauthorized");
    ck_assert_int_eq(count_sql("SELECT count(*) FROM audit_events WHERE action = 'token.bind'"), binds + 1);
    ck_assert_int_eq(count_sql("SELECT count(*) FROM api_tokens WHERE verifier IS NULL"), 1);
    free(cv_t_psql("DELETE FROM api_tokens WHERE name = 'forged-late'"));
}
END_TEST

START_TEST(names_are_printable_and_unique)
{
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"evil\\u001b[2Jname\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", 400,
                     "invalid_request");
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"two\\nlines\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", 400, "invalid_request");
    char tok[160];
    cv_t_token_mint(cl, svc.admin_token, "reader", "auditor", "acme", NULL, tok, sizeof(tok));
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/tokens", svc.admin_token,
                                             "{\"name\":\"reader\",\"role\":\"auditor\",\"tenantId\":\"acme\"}");
    cv_t_expect_status(&r, 409, "conflict");
    ck_assert_msg(strstr(cv_t_json_str(&r, "error.message"), "name exists already"), "%s", r.body);
    cv_test_response_free(&r);
    /* the database refuses it as well, whoever asks */
    int st;
    char *out = as_service("SELECT id FROM credvault_token_insert('6d1f0a3e-0000-4000-8000-000000000004', 'acme', "
                           "NULL, 'reader', 'auditor', sha256('dup'::bytea), 'x', NULL, NULL)",
                           &st);
    ck_assert_msg(st != 0 && strstr(out, "api_tokens_name_key"), "%s", out);
    free(out);
    out = as_service("SELECT id FROM credvault_token_insert('6d1f0a3e-0000-4000-8000-000000000005', 'acme', "
                     "NULL, E'bell\\x07', 'auditor', sha256('bell'::bytea), 'x', NULL, NULL)",
                     &st);
    ck_assert_msg(st != 0 && strstr(out, "api_tokens_name_printable_check"), "%s", out);
    free(out);
    /* another role or tenant may use the name */
    cv_t_token_mint(cl, svc.admin_token, "reader", "tenant-admin", "acme", NULL, tok, sizeof(tok));
    cv_t_token_mint(cl, svc.admin_token, "reader", "auditor", "beta", NULL, tok, sizeof(tok));
}
END_TEST

START_TEST(events_name_the_token_id_beside_the_name)
{
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/tokens", svc.admin_token,
                                             "{\"name\":\"deployer\",\"role\":\"tenant-admin\",\"tenantId\":\"acme\"}");
    cv_t_expect_status(&r, 201, NULL);
    char id[64], tok[160], sid[160];
    snprintf(id, sizeof(id), "%s", cv_t_json_str(&r, "data.id"));
    snprintf(tok, sizeof(tok), "%s", cv_t_json_str(&r, "data.token"));
    cv_test_response_free(&r);
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"" SECRET "\"}}", sid, sizeof(sid));
    r = cv_t_request(cl, "GET", "/api/audit?action=credentials.deploy&actor=deployer", tok, NULL);
    cv_t_expect_status(&r, 200, NULL);
    cv_t_expect_json_str(&r, "data.events.0.actor", "deployer");
    cv_t_expect_json_str(&r, "data.events.0.actorId", id);
    cv_t_expect_json_str(&r, "data.events.0.detail.actorId", id);
    cv_test_response_free(&r);
    /* the chain still verifies: the id is part of what the hash covers */
    char out[65536];
    ck_assert_msg(cli_out("audit verify --tenant acme", out, sizeof(out)) == 0, "%s", out);
}
END_TEST

static Suite *integrity_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "integrity_tokens", .timeout_s = 180};
    return cv_t_suite_new(&spec, CV_T_TESTS(a_row_inserted_by_a_writer_does_not_authenticate,
                                            a_real_row_given_more_power_stops_working,
                                            tokens_minted_before_keep_working_bound_once,
                                            names_are_printable_and_unique, events_name_the_token_id_beside_the_name));
}

int main(void)
{
    cv_json_alloc_install();
    Suite *suite = integrity_suite();
    /* the attacks fail authentication many times from one address */
    static const char *const env[] = {"CREDVAULT_RATE_AUTH_FAILURES=0", NULL};
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name Acme >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name admin@acme --role tenant-admin --tenant acme", tok_acme, sizeof(tok_acme)))
        return 1;
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    if (cv_test_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_acme,
                        "{\"env\":{\"GITHUB_TOKEN\":\"" SECRET "\"}}", NULL, &r) != 0 ||
        r.status != 201)
        return 1;
    snprintf(srv_acme, sizeof(srv_acme), "%s", json_string_value(json_object_get(json_object_get(r.json, "data"), "id")));
    cv_test_response_free(&r);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
    }
    return failed || st != 0 ? 1 : 0;
}
