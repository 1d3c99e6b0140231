/* The audit trail end to end, against the real service on a fresh SoftHSM2
 * token and PostgreSQL cluster: every audited action leaves its event (never
 * a secret), GET /api/audit by role, filter and page, fail-closed writes,
 * checkpoints signed in the HSM, `audit verify` on an intact trail and after
 * direct SQL edits (changed, deleted, reordered, rewritten), and an export
 * that the openssl command line verifies alone. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_ops_fixture.h"
#include "credvault/json_alloc.h"

static char tok_a[160], tok_a_auditor[160], tok_b[160];
static char srv_a[160]; /* a server of tenant acme, deployed at start */

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY-audit"
#define DEPLOY_BODY                                                                                                    \
    "{\"env\":{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPLE\",\"AWS_SECRET_ACCESS_KEY\":\"" SECRET "\"}}"

/* The events of GET /api/audit?… as seen by `token` (the response is freed
 * by the caller). */
static struct cv_test_response audit_list(const char *token, const char *query)
{
    char path[512];
    snprintf(path, sizeof(path), "/api/audit%s%s", query && *query ? "?" : "", query ? query : "");
    struct cv_test_response r = cv_t_request(cl, "GET", path, token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    return r;
}

/* The first event (newest first) with this action and target, or NULL. */
static json_t *find_event(struct cv_test_response *r, const char *action, const char *target)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(cv_t_data(r), "events"), i, e) {
        const char *t = json_string_value(json_object_get(e, "target"));
        if (strcmp(json_string_value(json_object_get(e, "action")), action) == 0 &&
            (!target || (t && strcmp(t, target) == 0)))
            return e;
    }
    return NULL;
}

static void assert_event(json_t *e, const char *actor, const char *role, const char *tenant, const char *outcome)
{
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "actor")), actor);
    ck_assert_str_eq(json_string_value(json_object_get(e, "role")), role);
    if (tenant)
        ck_assert_str_eq(json_string_value(json_object_get(e, "tenantId")), tenant);
    else
        ck_assert(json_is_null(json_object_get(e, "tenantId")));
    ck_assert_str_eq(json_string_value(json_object_get(e, "outcome")), outcome);
    ck_assert(json_is_string(json_object_get(e, "at")));
    ck_assert_int_eq(strlen(json_string_value(json_object_get(e, "hash"))), 64);
    ck_assert_int_eq(strlen(json_string_value(json_object_get(e, "prevHash"))), 64);
    ck_assert_int_ge(json_integer_value(json_object_get(e, "seq")), 1);
}

START_TEST(each_action_leaves_its_event)
{
    char id[160], path[256], rid[64];
    /* deploy, with the request id the client saw */
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/grc-evidence/deploy", tok_a, DEPLOY_BODY);
    cv_t_expect_status(&r, 201, NULL);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    snprintf(rid, sizeof(rid), "%s", cv_test_response_header(&r, "X-Request-Id"));
    cv_test_response_free(&r);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok_a_auditor, NULL, 200, NULL);
    cv_t_expect_call(cl, "PUT", path, tok_a,
                     "{\"env\":{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPLE\",\"AWS_SECRET_ACCESS_KEY\":\"" SECRET
                     "2\"}}",
                     200, NULL);
    char merge[300];
    snprintf(merge, sizeof(merge), "%s?merge=true", path);
    cv_t_expect_call(cl, "PUT", merge, tok_a, "{\"env\":{\"AWS_REGION\":\"eu-west-1\"}}", 200, NULL);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    cv_t_expect_call(cl, "POST", path, tok_a_auditor, "{\"requiredKeys\":[\"AWS_ACCESS_KEY_ID\"]}", 200, NULL);
    /* a workload token reads the full values: audited too */
    char tok_w[160], env_path[256];
    cv_t_token_mint(cl, tok_a, "deployer-1", "workload", "acme", id, tok_w, sizeof(tok_w));
    snprintf(env_path, sizeof(env_path), "/api/mcp/servers/%s/env", id);
    cv_t_expect_call(cl, "GET", env_path, tok_w, NULL, 200, NULL);
    /* a failed authentication */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers",
                     "cvt_0000000000000000000000000000000000000000000000000000000000000000", NULL, 401, "unauthorized");
    /* token revoke, server delete */
    char tok_x[160];
    struct cv_test_response m = cv_t_request(cl, "POST", "/api/tokens", tok_a,
                                             "{\"name\":\"short-lived\",\"role\":\"auditor\",\"tenantId\":\"acme\"}");
    cv_t_expect_status(&m, 201, NULL);
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", json_string_value(json_object_get(cv_t_data(&m), "id")));
    snprintf(tok_x, sizeof(tok_x), "%s", json_string_value(json_object_get(cv_t_data(&m), "token")));
    cv_test_response_free(&m);
    snprintf(path, sizeof(path), "/api/tokens/%s", tid);
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 200, NULL);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 200, NULL);
    /* a decrypt failure: one hex digit of a stored ciphertext flipped */
    char broken[160];
    cv_t_deploy(cl, tok_a, "grc-evidence", DEPLOY_BODY, broken, sizeof(broken));
    cv_t_record_flip(broken, "encrypted");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", broken);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 500, "decrypt_failed");

    r = audit_list(tok_a, "limit=200");
    json_t *e = find_event(&r, "credentials.deploy", id);
    assert_event(e, "alice@acme.example", "tenant-admin", "acme", "success");
    ck_assert_str_eq(json_string_value(json_object_get(e, "requestId")), rid);
    assert_event(find_event(&r, "credentials.read_masked", id), "audit@acme.example", "auditor", "acme", "success");
    assert_event(find_event(&r, "credentials.replace", id), "alice@acme.example", "tenant-admin", "acme", "success");
    assert_event(find_event(&r, "credentials.merge", id), "alice@acme.example", "tenant-admin", "acme", "success");
    assert_event(find_event(&r, "credentials.validate", id), "audit@acme.example", "auditor", "acme", "success");
    assert_event(find_event(&r, "credentials.read_full", id), "deployer-1", "workload", "acme", "success");
    assert_event(find_event(&r, "token.create", tid), "alice@acme.example", "tenant-admin", "acme", "success");
    assert_event(find_event(&r, "token.revoke", tid), "alice@acme.example", "tenant-admin", "acme", "success");
    assert_event(find_event(&r, "credentials.delete", id), "alice@acme.example", "tenant-admin", "acme", "success");
    e = find_event(&r, "credentials.decrypt_failed", broken);
    assert_event(e, "alice@acme.example", "tenant-admin", "acme", "error");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(e, "detail"), "keyVersion")), 1);
    assert_event(find_event(&r, "tenant.create", "acme"), "cli", "admin", "acme", "success");
    /* never a value, masked or not, and never a token */
    ck_assert_ptr_null(strstr(r.body, SECRET));
    ck_assert_ptr_null(strstr(r.body, "AKIAIOSFODNN7EXAMPLE"));
    ck_assert_ptr_null(strstr(r.body, "AKIA••••"));
    ck_assert_ptr_null(strstr(r.body, tok_x));
    ck_assert_ptr_null(strstr(r.body, tok_w));
    /* the tenant's chains (one per writer slot that wrote for it): none has a gap */
    ck_assert_int_ge(cv_t_psql_int("SELECT count(DISTINCT chain) FROM audit_events WHERE tenant_id = 'acme'"), 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM (SELECT chain FROM audit_events WHERE tenant_id = 'acme' "
                                   "GROUP BY chain HAVING max(seq) <> count(*)) x"),
                     0);
    cv_test_response_free(&r);

    /* the failed authentication is a platform event: anonymous, with the address */
    r = audit_list(svc.admin_token, "tenant=_platform&action=auth.failed");
    e = find_event(&r, "auth.failed", NULL);
    assert_event(e, "anonymous", "", NULL, "denied");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "detail"), "client")), "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "detail"), "route")), "/api/mcp/servers");
    cv_test_response_free(&r);
    /* nothing of it in a dump either */
    char *dump = cv_test_sh_output("pg_dump --data-only --table=audit_events \"$CV_PG_SUPERUSER_URL\"");
    ck_assert_ptr_nonnull(dump);
    ck_assert_ptr_nonnull(strstr(dump, "credentials.deploy"));
    ck_assert_ptr_null(strstr(dump, SECRET));
    free(dump);
}
END_TEST

START_TEST(audit_api_roles_filters_and_pages)
{
    /* tenants see their own chain only; another tenant is "not found" */
    struct cv_test_response r = audit_list(tok_b, "limit=200");
    ck_assert_ptr_null(strstr(r.body, "\"acme\""));
    ck_assert_ptr_nonnull(find_event(&r, "tenant.create", "beta"));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/audit?tenant=acme", tok_b, NULL, 404, "not_found");
    cv_t_expect_call(cl, "GET", "/api/audit?tenant=beta", tok_b, NULL, 200, NULL);
    /* an admin sees every chain, or one */
    r = audit_list(svc.admin_token, "tenant=beta&limit=200");
    ck_assert_ptr_null(strstr(r.body, "\"tenantId\":\"acme\""));
    ck_assert_ptr_nonnull(find_event(&r, "tenant.create", "beta"));
    cv_test_response_free(&r);
    r = audit_list(svc.admin_token, "limit=200");
    ck_assert_ptr_nonnull(find_event(&r, "tenant.create", "beta"));
    ck_assert_ptr_nonnull(find_event(&r, "tenant.create", "acme"));
    cv_test_response_free(&r);
    /* filters */
    r = audit_list(tok_a_auditor, "action=tenant.create");
    json_t *events = json_object_get(cv_t_data(&r), "events");
    ck_assert_int_eq(json_array_size(events), 1);
    cv_test_response_free(&r);
    r = audit_list(tok_a, "actor=audit%40acme.example&limit=200");
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(cv_t_data(&r), "events"), i, e)
        ck_assert_str_eq(json_string_value(json_object_get(e, "actor")), "audit@acme.example");
    ck_assert_int_ge(json_array_size(json_object_get(cv_t_data(&r), "events")), 1);
    cv_test_response_free(&r);
    r = audit_list(tok_a, "from=2000-01-01&to=2000-01-02");
    ck_assert_int_eq(json_array_size(json_object_get(cv_t_data(&r), "events")), 0);
    cv_test_response_free(&r);
    r = audit_list(tok_a, "from=2000-01-01T00:00:00Z&limit=200");
    ck_assert_int_ge(json_array_size(json_object_get(cv_t_data(&r), "events")), 2);
    cv_test_response_free(&r);
    /* pages: newest first, `next` is the cursor, no event twice */
    r = audit_list(tok_a, "limit=2");
    events = json_object_get(cv_t_data(&r), "events");
    ck_assert_int_eq(json_array_size(events), 2);
    long long first = json_integer_value(json_object_get(json_array_get(events, 0), "id"));
    long long second = json_integer_value(json_object_get(json_array_get(events, 1), "id"));
    ck_assert_int_gt(first, second);
    const char *next = json_string_value(json_object_get(cv_t_data(&r), "next"));
    ck_assert_ptr_nonnull(next);
    char q[64];
    snprintf(q, sizeof(q), "limit=2&before=%s", next);
    cv_test_response_free(&r);
    r = audit_list(tok_a, q);
    events = json_object_get(cv_t_data(&r), "events");
    ck_assert_int_lt(json_integer_value(json_object_get(json_array_get(events, 0), "id")), second);
    cv_test_response_free(&r);
    /* refusals */
    char tok_w[160];
    cv_t_token_mint(cl, tok_a, "workload-2", "workload", "acme", srv_a, tok_w, sizeof(tok_w));
    cv_t_expect_call(cl, "GET", "/api/audit", tok_w, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "GET", "/api/audit", NULL, NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "GET", "/api/audit?limit=0", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/audit?limit=201", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/audit?from=yesterday", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/audit?from=2026-13-01", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/audit?before=-1", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/audit?tenant=Bad_Id", svc.admin_token, NULL, 400, NULL);
}
END_TEST

/* Grants (on) or takes away the service's right to append audit events:
 * both appending functions (one run, 0019; every run of a batch, 0021). */
static void audit_appends(int on)
{
    static const char *fns[] = {
        "credvault_audit_append_batch(text, text, boolean, boolean, bigint, bytea, timestamptz[], text[], text[], "
        "text[], text[], text[], text[], text[], bytea[], bytea[])",
        "credvault_audit_append_chains(boolean, text[], text[], bigint[], bytea[], integer[], timestamptz[], text[], "
        "text[], text[], text[], text[], text[], text[], bytea[], bytea[])"};
    for (size_t i = 0; i < 2; i++) {
        char sql[512];
        snprintf(sql, sizeof(sql), "%s EXECUTE ON FUNCTION %s %s credvault_app", on ? "GRANT" : "REVOKE", fns[i],
                 on ? "TO" : "FROM");
        free(cv_t_psql(sql));
    }
}

START_TEST(audit_write_failure_fails_the_operation)
{
    long long servers = cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'acme'");
    long long events = cv_t_psql_int("SELECT count(*) FROM audit_events");
    audit_appends(0);
    /* a change whose event cannot be written is not made at all */
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_a,
                                             "{\"env\":{\"GITHUB_TOKEN\":\"ghp_never_stored_0123456789\"}}");
    ck_assert_int_ge(r.status, 500);
    ck_assert(json_is_false(json_object_get(r.json, "success")));
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'acme'"), servers);
    char path[256], sql[512];
    snprintf(sql, sizeof(sql), "SELECT revision FROM mcp_credentials WHERE server_id = '%s'", srv_a);
    long long revision = cv_t_psql_int(sql);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv_a);
    r = cv_t_request(cl, "PUT", path, tok_a,
                     "{\"env\":{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPL2\",\"AWS_SECRET_ACCESS_KEY\":\"x\"}}");
    ck_assert_int_ge(r.status, 500);
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int(sql), revision);
    /* listing is not audited, so it still answers */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a, NULL, 200, NULL);
    char id[160];
    audit_appends(1);
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_readable_0123456789abcdef\"}}", id, sizeof(id));
    audit_appends(0);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    ck_assert_int_ge(r.status, 500);
    ck_assert_ptr_null(strstr(r.body, "ghp_"));
    cv_test_response_free(&r);
    /* and a failed authentication whose event cannot be written is not a quiet 401 */
    r = cv_t_request(cl, "GET", "/api/mcp/servers",
                     "cvt_1111111111111111111111111111111111111111111111111111111111111111", NULL);
    ck_assert_int_ge(r.status, 500);
    cv_test_response_free(&r);
    audit_appends(1);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 200, NULL);
    /* only the successful deploy and the read after the grant were recorded since */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events"), events + 2);
    ck_assert(cv_test_service_log_contains(&svc, "audit_write_failed"));
}
END_TEST

START_TEST(a_change_that_did_not_happen_leaves_no_event)
{
    /* the event rides in the change's transaction, and is written only when the change was */
    long long events = cv_t_psql_int("SELECT count(*) FROM audit_events");
    cv_t_expect_call(cl, "DELETE", "/api/mcp/servers/grc-evidence-0000000000000", tok_a, NULL, 404, "not_found");
    cv_t_expect_call(cl, "DELETE", "/api/tokens/00000000-0000-4000-8000-000000000000", tok_a, NULL, 404, "not_found");
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv_a);
    const char *stale[] = {"If-Match: \"99\"", NULL};
    struct cv_test_response r =
        cv_t_request_h(cl, "PUT", path, tok_a, "{\"env\":{\"AWS_ACCESS_KEY_ID\":\"x\"}}", stale);
    cv_t_expect_status(&r, 412, "precondition_failed");
    cv_test_response_free(&r);
    /* a server of another tenant cannot be deleted, nor its deletion recorded */
    char id[160];
    cv_t_deploy(cl, tok_b, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_beta_never_deleted_0123\"}}", id, sizeof(id));
    events = cv_t_psql_int("SELECT count(*) FROM audit_events");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 404, "not_found");
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events"), events);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action IN ('credentials.delete', "
                                   "'token.revoke', 'credentials.replace') AND (target LIKE 'grc-evidence-0000%' OR "
                                   "target = '00000000-0000-4000-8000-000000000000')"),
                     0);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'credentials.delete' AND "
             "target = '%s'",
             id);
    ck_assert_int_eq(cv_t_psql_int(sql), 0);
    cv_t_expect_call(cl, "DELETE", path, tok_b, NULL, 200, NULL);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);
}
END_TEST

START_TEST(checkpoints_are_signed_by_the_sealer)
{
    /* CREDVAULT_AUDIT_CHECKPOINT_EVENTS=5: a few events wake the sealer */
    long long before = cv_t_psql_int("SELECT count(*) FROM audit_checkpoints");
    for (int i = 0; i < 6; i++)
        cv_t_expect_call(cl, "GET", "/api/audit?limit=1", tok_a_auditor, NULL, 200, NULL);
    long long after = before;
    for (int i = 0; i < 100 && after == before; i++) {
        sleep_ms(100);
        after = cv_t_psql_int("SELECT count(*) FROM audit_checkpoints");
    }
    ck_assert_int_gt(after, before);
    /* one line of checkpoints: each names its predecessor's payload hash */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_checkpoints c WHERE c.prev_hash <> "
                                   "coalesce((SELECT sha256(convert_to(p.payload, 'UTF8')) FROM audit_checkpoints p "
                                   "WHERE p.id < c.id ORDER BY p.id DESC LIMIT 1), decode(repeat('00', 32), 'hex'))"),
                     0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_checkpoints WHERE key_label <> 'credvault-audit-1'"), 0);
    /* the service role cannot rewrite them */
    int st;
    free(cv_t_psql_run(NULL, "SET ROLE credvault_app; UPDATE audit_checkpoints SET heads = 2", &st));
    ck_assert_int_ne(st, 0);
    free(cv_t_psql_run(NULL,
                       "SET ROLE credvault_app; INSERT INTO audit_events (actor, role, action, outcome) VALUES "
                       "('x', 'x', 'x', 'success')",
                       &st));
    ck_assert_int_ne(st, 0);
    /* the private key was made in the token and can never leave it; it signs and nothing else */
    char *objs = cv_test_sh_output("pkcs11-tool --module \"$CREDVAULT_PKCS11_MODULE\" --token-label cv-test --login "
                                   "--pin \"$(cat \"$CREDVAULT_HSM_PIN_FILE\")\" --list-objects --type privkey 2>&1");
    ck_assert_ptr_nonnull(objs);
    const char *key = strstr(objs, "label:      credvault-audit-1");
    ck_assert_msg(key != NULL, "no audit key in: %s", objs);
    ck_assert_ptr_nonnull(strstr(key, "Usage:      sign\n"));
    ck_assert_ptr_nonnull(strstr(key, "sensitive, always sensitive, never extractable, local"));
    free(objs);
}
END_TEST

START_TEST(verify_passes_on_an_intact_trail)
{
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    int rc = cli_out("audit verify", out, sizeof(out));
    ck_assert_msg(rc == 0, "verify failed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "OK: every chain is intact"));
    ck_assert_ptr_nonnull(strstr(out, "signing key sha256:"));
    rc = cli_out("audit verify --json", out, sizeof(out));
    ck_assert_int_eq(rc, 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_true(json_object_get(j, "ok")));
    ck_assert_int_ge(json_integer_value(json_object_get(j, "chains")), 3);
    ck_assert_int_ge(json_integer_value(json_object_get(j, "checkpoints")), 1);
    json_decref(j);
}
END_TEST

START_TEST(export_verifies_with_openssl_alone)
{
    char out[65536];
    int rc = cli_out("audit export --tenant acme --out \"$CV_TEST_TMP/export\"", out, sizeof(out));
    ck_assert_msg(rc == 0, "export failed: %s", out);
    /* the documented commands, openssl and a POSIX shell only */
    char *res = cv_test_sh_output("sh \"$CV_TEST_TMP/export/verify.sh\" 2>&1; echo rc=$?");
    ck_assert_msg(strstr(res, "rc=0") && strstr(res, "OK:"), "verify.sh: %s", res);
    free(res);
    /* one checkpoint by hand, exactly as docs/operations.md shows */
    res = cv_test_sh_output("cd \"$CV_TEST_TMP/export\" && p=$(ls checkpoints/*.sig | head -n 1) && "
                            "openssl dgst -sha256 -verify public-key.pem -signature \"$p\" \"${p%.sig}.txt\"");
    ck_assert_msg(strstr(res, "Verified OK") != NULL, "openssl: %s", res);
    free(res);
    /* the key's fingerprint is the one verify prints */
    res = cv_test_sh_output("openssl pkey -pubin -in \"$CV_TEST_TMP/export/public-key.pem\" -outform DER | "
                            "openssl dgst -sha256 -r | cut -d' ' -f1");
    res[strcspn(res, "\n")] = '\0';
    char verify_out[65536];
    ck_assert_int_eq(cli_out("audit verify --tenant acme", verify_out, sizeof(verify_out)), 0);
    ck_assert_msg(strstr(verify_out, res) != NULL, "fingerprint %s not in %s", res, verify_out);
    free(res);
    /* only this tenant: no other tenant's name or events */
    ck_assert_int_ne(cv_test_sh("grep -rq beta \"$CV_TEST_TMP/export\""), 0);
    ck_assert_int_ne(cv_test_sh("grep -rq 'chain:9:_platform' \"$CV_TEST_TMP/export\""), 0);
    /* a changed event, or a signature of another payload, fails the script */
    ck_assert_int_eq(
        cv_test_sh("cp -r \"$CV_TEST_TMP/export\" \"$CV_TEST_TMP/export2\" && "
                   "set -- \"$CV_TEST_TMP\"/export2/events-*/0000000002.txt && [ -f \"$1\" ] && "
                   "sed -i 's/^outcome:7:success$/outcome:6:denied/' \"$1\""),
        0);
    ck_assert_int_ne(cv_test_sh("sh \"$CV_TEST_TMP/export2/verify.sh\" >/dev/null 2>&1"), 0);
    ck_assert_int_eq(
        cv_test_sh("rm -rf \"$CV_TEST_TMP/export3\" && cp -r \"$CV_TEST_TMP/export\" \"$CV_TEST_TMP/export3\" && "
                   "cd \"$CV_TEST_TMP/export3/checkpoints\" && set -- *.txt && "
                   "printf 'x' >> \"$(ls *.txt | grep -v head | head -n 1)\""),
        0);
    ck_assert_int_ne(cv_test_sh("sh \"$CV_TEST_TMP/export3/verify.sh\" >/dev/null 2>&1"), 0);
    /* an export never overwrites */
    ck_assert_int_ne(cli_out("audit export --tenant acme --out \"$CV_TEST_TMP/export\" 2>/dev/null", out, sizeof(out)),
                     0);
}
END_TEST

/* ---- tampering (each in its own tenant's chain) ---- */

/* What a tampering case broke is put back after it, failed or not
 * (restore_tampered), so that a case which verifies the whole trail passes
 * whichever cases ran before it. */
static char saved_chain[96]; /* a chain saved by chain_save, or "" */
static char tchain[96];      /* the chain tenant_with_events filled (its reads'), */
static long long tchain_n;   /* and how many events it holds */
static int forged;           /* the first checkpoint's signature was saved and forged */

/* The chain's events and head as they are now. */
static void chain_save(const char *chain)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "CREATE TABLE \"saved-%s\" AS SELECT * FROM audit_events WHERE chain = '%s'; "
             "CREATE TABLE \"saved-head-%s\" AS SELECT * FROM audit_heads WHERE chain = '%s'",
             chain, chain, chain, chain);
    free(cv_t_psql(sql));
    snprintf(saved_chain, sizeof(saved_chain), "%s", chain);
}

static void restore_tampered(void)
{
    char sql[2048];
    if (saved_chain[0]) {
        const char *c = saved_chain;
        /* every column but the generated ones, rows as they were saved */
        snprintf(
            sql, sizeof(sql),
            "BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; "
            "DELETE FROM audit_events WHERE chain = '%s'; "
            "DO $$ DECLARE cols text; BEGIN SELECT string_agg(quote_ident(column_name), ', ' ORDER BY "
            "ordinal_position) INTO cols FROM information_schema.columns WHERE table_name = 'audit_events' AND "
            "table_schema = current_schema() AND is_generated = 'NEVER'; EXECUTE format('INSERT INTO audit_events "
            "(%%s) SELECT %%s FROM %%I', cols, cols, 'saved-%s'); END $$; "
            "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; "
            "UPDATE audit_heads h SET seq = s.seq, hash = s.hash FROM \"saved-head-%s\" s WHERE h.chain = s.chain; "
            "DROP TABLE \"saved-%s\", \"saved-head-%s\"; COMMIT",
            c, c, c, c, c);
        saved_chain[0] = '\0';
        free(cv_t_psql(sql));
    }
    if (forged) {
        forged = 0;
        free(cv_t_psql("BEGIN; ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only; "
                       "UPDATE audit_checkpoints c SET signature = s.signature FROM \"saved-signature\" s "
                       "WHERE c.id = s.id; DROP TABLE \"saved-signature\"; "
                       "ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only; COMMIT"));
    }
    /* audit_write_failure_fails_the_operation takes it away for a while */
    audit_appends(1);
}

/* A tenant with a few events in its chain, all covered by a checkpoint. */
static void tenant_with_events(const char *tenant)
{
    char body[256], tok[160], id[160], path[256];
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"%s\"}", tenant, tenant);
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, body, 201, NULL);
    char name[64];
    snprintf(name, sizeof(name), "admin@%s", tenant);
    cv_t_token_mint(cl, svc.admin_token, name, "tenant-admin", tenant, NULL, tok, sizeof(tok));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_tamper_0123456789abcdef\"}}", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    /* one after the other, the reads' events go to one chain (the writer
     * slot of the connection that wrote their batches), with the deploy's
     * when the same connection served both: at least five events there */
    for (int i = 0; i < 5; i++) cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT chain FROM audit_events WHERE tenant_id = '%s' AND action = 'credentials.read_masked' LIMIT 1",
             tenant);
    char *c = cv_t_psql(sql);
    ck_assert_ptr_nonnull(c);
    snprintf(tchain, sizeof(tchain), "%.*s", (int)strcspn(c, "\n"), c);
    free(c);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE chain = '%s'", tchain);
    tchain_n = cv_t_psql_int(sql);
    ck_assert_int_ge(tchain_n, 5);
    char out[4096];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    snprintf(path, sizeof(path), "audit verify --tenant %s", tenant);
    ck_assert_msg(cli_out(path, out, sizeof(out)) == 0, "not intact before the edit: %s", out);
    chain_save(tchain);
}

/* Runs SQL with the append-only trigger off, as an attacker with superuser rights can. */
/* `sql` with each CHAIN replaced by the chain tenant_with_events filled. */
static void psql_chain(const char *before, const char *sql, const char *after)
{
    char with[4096] = "", full[8192];
    size_t n = 0;
    for (const char *p = sql; *p && n + sizeof(tchain) < sizeof(with);) {
        if (strncmp(p, "CHAIN", 5) == 0) {
            n += (size_t)snprintf(with + n, sizeof(with) - n, "%s", tchain);
            p += 5;
        } else {
            with[n++] = *p++;
            with[n] = '\0';
        }
    }
    snprintf(full, sizeof(full), "%s%s%s", before, with, after);
    free(cv_t_psql(full));
}

static void tamper(const char *sql)
{
    psql_chain("BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; ", sql,
               "; ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT");
}

static void expect_broken(const char *tenant, const char *first_link, const char *reason)
{
    char args[128], out[65536];
    snprintf(args, sizeof(args), "audit verify --tenant %s", tenant);
    int rc = cli_out(args, out, sizeof(out));
    ck_assert_msg(rc == 1, "verify should fail: %s", out);
    char want[256];
    snprintf(want, sizeof(want), "BROKEN chain %s: first broken link at event %s", tchain, first_link);
    ck_assert_msg(strstr(out, want) != NULL, "expected '%s' in: %s", want, out);
    ck_assert_msg(strstr(out, reason) != NULL, "expected '%s' in: %s", reason, out);
    ck_assert_ptr_nonnull(strstr(out, "FAILED"));
}

START_TEST(verify_names_a_changed_event)
{
    tenant_with_events("tamper-change");
    tamper("UPDATE audit_events SET target = 'someone-else' WHERE chain = 'CHAIN' AND seq = 3");
    expect_broken("tamper-change", "3", "was changed");
    /* the whole trail says so too, and other chains stay intact */
    char out[65536];
    ck_assert_int_eq(cli_out("audit verify", out, sizeof(out)), 1);
    ck_assert_ptr_null(strstr(out, "BROKEN chain acme"));
}
END_TEST

START_TEST(verify_names_a_deleted_event)
{
    tenant_with_events("tamper-delete");
    tamper("DELETE FROM audit_events WHERE chain = 'CHAIN' AND seq = 2");
    expect_broken("tamper-delete", "2", "is missing");
}
END_TEST

START_TEST(verify_names_reordered_events)
{
    tenant_with_events("tamper-order");
    tamper("UPDATE audit_events SET seq = 1000000 WHERE chain = 'CHAIN' AND seq = 2; "
           "UPDATE audit_events SET seq = 2 WHERE chain = 'CHAIN' AND seq = 3; "
           "UPDATE audit_events SET seq = 3 WHERE chain = 'CHAIN' AND seq = 1000000");
    expect_broken("tamper-order", "2", "does not follow event 1");
}
END_TEST

START_TEST(verify_catches_a_rewritten_chain_through_its_checkpoint)
{
    tenant_with_events("tamper-rewrite");
    /* change event 2, then recompute every hash after it and the head, as a
     * careful attacker would (each event's anchor kept): the chain is
     * consistent in itself, but event 2's HSM anchor does not fit its new
     * content, nor would the checkpoint that signed a later event */
    tamper("UPDATE audit_events SET outcome = 'denied' WHERE chain = 'CHAIN' AND seq = 2; "
           "DO $$ DECLARE r record; v_prev bytea := (SELECT hash FROM audit_events WHERE chain = 'CHAIN' "
           "AND seq = 1); v_hash bytea; BEGIN FOR r IN SELECT * FROM audit_events WHERE chain = 'CHAIN' AND "
           "seq >= 2 ORDER BY seq LOOP v_hash := sha256(credvault_audit_canon2(r.chain, r.seq, v_prev, r.at, "
           "r.tenant_id, r.actor, r.role, r.action, r.target, r.outcome, r.request_id, r.detail_text, r.mac)); UPDATE "
           "audit_events SET prev_hash = v_prev, hash = v_hash WHERE id = r.id; v_prev := v_hash; END LOOP; UPDATE "
           "audit_heads SET hash = v_prev WHERE chain = 'CHAIN'; END $$");
    expect_broken("tamper-rewrite", "2", "does not match its HSM anchor");
}
END_TEST

START_TEST(verify_catches_a_cut_tail)
{
    tenant_with_events("tamper-tail");
    /* the newest event deleted: the head still names it */
    char sql[512], last[24], before[24], why[96];
    snprintf(last, sizeof(last), "%lld", tchain_n);
    snprintf(before, sizeof(before), "%lld", tchain_n - 1);
    snprintf(sql, sizeof(sql), "DELETE FROM audit_events WHERE chain = 'CHAIN' AND seq = %s", last);
    tamper(sql);
    expect_broken("tamper-tail", last, "deleted at the end");
    /* and with the head moved back to match, the checkpoint still names it */
    snprintf(sql, sizeof(sql),
             "UPDATE audit_heads SET seq = %s, hash = (SELECT hash FROM audit_events WHERE chain = 'CHAIN' "
             "AND seq = %s) WHERE chain = 'CHAIN'",
             before, before);
    psql_chain("", sql, "");
    snprintf(why, sizeof(why), "signed event %s but the chain ends at %s", last, before);
    expect_broken("tamper-tail", last, why);
}
END_TEST

START_TEST(verify_catches_a_forged_checkpoint)
{
    /* at least one checkpoint to forge, whatever ran before (the sealer may not have made one yet) */
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    forged = 1; /* the one forged is saved first, in the same transaction, and put back after the case */
    free(cv_t_psql("BEGIN; CREATE TABLE \"saved-signature\" AS SELECT id, signature FROM audit_checkpoints "
                   "WHERE id = (SELECT min(id) FROM audit_checkpoints); "
                   "ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only; "
                   "UPDATE audit_checkpoints SET signature = signature || '\\x00'::bytea WHERE id = "
                   "(SELECT id FROM \"saved-signature\"); "
                   "ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only; COMMIT"));
    ck_assert_int_eq(cli_out("audit verify", out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "the signature does not verify") != NULL, "%s", out);
}
END_TEST

static Suite *ops_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "ops_audit", .timeout_s = 180, .teardown = restore_tampered};
    return cv_t_suite_new(&spec, CV_T_TESTS(each_action_leaves_its_event, audit_api_roles_filters_and_pages,
                                            audit_write_failure_fails_the_operation,
                                            a_change_that_did_not_happen_leaves_no_event,
                                            checkpoints_are_signed_by_the_sealer, verify_passes_on_an_intact_trail,
                                            export_verifies_with_openssl_alone, verify_names_a_changed_event,
                                            verify_names_a_deleted_event, verify_names_reordered_events,
                                            verify_catches_a_rewritten_chain_through_its_checkpoint,
                                            verify_catches_a_cut_tail, verify_catches_a_forged_checkpoint));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = ops_suite();
    static const char *const env[] = {"CREDVAULT_AUDIT_CHECKPOINT_EVENTS=5", "CREDVAULT_AUDIT_CHECKPOINT_S=3", NULL};
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name audit@acme.example --role auditor --tenant acme", tok_a_auditor,
                    sizeof(tok_a_auditor)) ||
        cv_test_cli("token create --name bob@beta.example --role tenant-admin --tenant beta", tok_b, sizeof(tok_b)))
        return 1;
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    if (cv_test_request(cl, "POST", "/api/mcp/templates/grc-evidence/deploy", tok_a, DEPLOY_BODY, NULL, &r) != 0 ||
        r.status != 201)
        return 1;
    snprintf(srv_a, sizeof(srv_a), "%s", json_string_value(json_object_get(json_object_get(r.json, "data"), "id")));
    cv_test_response_free(&r);

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
        failed++;
    }
    return failed ? 1 : 0;
}
