/* The documented API end to end: the real `credvault serve` on a fresh
 * SoftHSM2 token and PostgreSQL cluster, driven over HTTPS with libcurl.
 * Every endpoint's success and failure paths, every role's allowed and
 * refused calls, tenant isolation, tampering, and what a dump reveals. */
#include <check.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_test_api.h"
#include "cv_test_service.h"
#include "credvault/json_alloc.h"
#include "cv_test_suite.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;
static char tok_a[160], tok_a_auditor[160], tok_b[160]; /* tenant-admin A, auditor A, tenant-admin B */

#define SEED_ENV                                                                                                 \
    "{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPLE\",\"AWS_SECRET_ACCESS_KEY\":"                                 \
    "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\",\"GITHUB_TOKEN\":\"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"
#define SEED_DEPLOY "{\"env\":" SEED_ENV ",\"userId\":\"admin@company.com\",\"autoConnect\":false}"

/* ---- helpers ---- */

static int matches(const char *re, const char *s)
{
    regex_t rx;
    ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

/* ---- health ---- */

START_TEST(health_and_ready)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/healthz", NULL, NULL);
    cv_t_expect_status(&r, 200, NULL);
    cv_test_response_free(&r);
    r = cv_t_request(cl, "GET", "/readyz", NULL, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(cv_t_data(&r), "database")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(cv_t_data(&r), "hsm")), "ok");
    cv_test_response_free(&r);
}
END_TEST

/* ---- authentication ---- */

START_TEST(auth_refusals)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", NULL, NULL);
    cv_t_expect_status(&r, 401, "unauthorized");
    ck_assert_ptr_nonnull(cv_test_response_header(&r, "WWW-Authenticate"));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers",
                     "cvt_0000000000000000000000000000000000000000000000000000000000000000", NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", "not-a-token", NULL, 401, "unauthorized");
    const char *basic[] = {"Authorization: Basic YWRtaW46YWRtaW4=", NULL};
    r = cv_t_request_h(cl, "GET", "/api/mcp/servers", NULL, NULL, basic);
    cv_t_expect_status(&r, 401, "unauthorized");
    cv_test_response_free(&r);
}
END_TEST

/* ---- tenants ---- */

START_TEST(tenants_admin_only)
{
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, "{\"id\":\"acme\",\"name\":\"Acme again\"}", 409,
                     "tenant_exists");
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, "{\"id\":\"Bad_Id\",\"name\":\"x\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, "{\"id\":42}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, "{\"id\":\"ok-id\",\"extra\":1}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tenants", tok_a, "{\"id\":\"mine\",\"name\":\"x\"}", 403, "forbidden");
    cv_t_expect_call(cl, "GET", "/api/tenants", tok_a_auditor, NULL, 403, "forbidden");

    struct cv_test_response r = cv_t_request(cl, "GET", "/api/tenants", svc.admin_token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_ge(json_array_size(json_object_get(cv_t_data(&r), "tenants")), 2);
    cv_test_response_free(&r);

    r = cv_t_request(cl, "GET", "/api/tenants/acme", svc.admin_token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *keys = json_object_get(cv_t_data(&r), "keys");
    ck_assert_int_eq(json_array_size(keys), 1);
    json_t *k = json_array_get(keys, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(k, "version")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(k, "state")), "active");
    /* versions and states, never key material */
    ck_assert_ptr_null(strstr(r.body, "wrapped"));
    ck_assert_ptr_null(strstr(r.body, "binding"));
    cv_test_response_free(&r);

    cv_t_expect_call(cl, "GET", "/api/tenants/acme", tok_a, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", "/api/tenants/beta", tok_a, NULL, 404, "not_found");
    cv_t_expect_call(cl, "GET", "/api/tenants/nope", svc.admin_token, NULL, 404, "not_found");
}
END_TEST

/* ---- tokens ---- */

START_TEST(token_minting_rules)
{
    /* a tenant-admin mints auditor and workload tokens in its own tenant only */
    char t[160];
    cv_t_token_mint(cl, tok_a, "auditor-2", "auditor", "acme", NULL, t, sizeof(t));
    cv_t_expect_call(cl, "POST", "/api/tokens", tok_a, "{\"name\":\"x\",\"role\":\"admin\"}", 403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/tokens", tok_a,
                     "{\"name\":\"x\",\"role\":\"tenant-admin\",\"tenantId\":\"acme\"}", 403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/tokens", tok_a, "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"beta\"}",
                     403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/tokens", tok_a_auditor,
                     "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", 403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"x\",\"role\":\"root\",\"tenantId\":\"acme\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token, "{\"name\":\"x\",\"role\":\"auditor\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":\"7\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"ghost\"}", 404, NULL);
    cv_t_expect_call(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"acme\",\"serverId\":\"grc-evidence-1\"}",
                     404, NULL);

    /* the new token works, and stops working once revoked */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", t, NULL, 200, NULL);
    struct cv_test_response r =
        cv_t_request(cl, "POST", "/api/tokens", svc.admin_token,
                     "{\"name\":\"short\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":1}");
    cv_t_expect_status(&r, 201, NULL);
    char id[64], tok[160];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(cv_t_data(&r), "token")));
    ck_assert(json_is_string(json_object_get(cv_t_data(&r), "expiresAt")));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 200, NULL);
    char path[128];
    snprintf(path, sizeof(path), "/api/tokens/%s", id);
    cv_t_expect_call(cl, "DELETE", path, tok_b, NULL, 404, NULL); /* another tenant's token */
    cv_t_expect_call(cl, "DELETE", path, tok_a_auditor, NULL, 403, NULL);
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "DELETE", "/api/tokens/00000000-0000-0000-0000-000000000000", svc.admin_token, NULL, 404,
                     NULL);
}
END_TEST

/* A tenant-admin revokes what it may mint — auditor and workload tokens of
 * its tenant — and nothing else: a peer tenant-admin is 403, unchanged. */
START_TEST(tenant_admin_revokes_only_auditor_and_workload_tokens)
{
    char carol[160], carol_id[64], path[128], sql[256];
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/tokens", svc.admin_token,
                                             "{\"name\":\"carol@acme.example\",\"role\":\"tenant-admin\","
                                             "\"tenantId\":\"acme\"}");
    cv_t_expect_status(&r, 201, NULL);
    snprintf(carol_id, sizeof(carol_id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    snprintf(carol, sizeof(carol), "%s", json_string_value(json_object_get(cv_t_data(&r), "token")));
    cv_test_response_free(&r);
    snprintf(path, sizeof(path), "/api/tokens/%s", carol_id);
    r = cv_t_request(cl, "DELETE", path, tok_a, NULL);
    cv_t_expect_status(&r, 403, "token_role_forbidden");
    ck_assert_ptr_nonnull(strstr(r.body, "auditor and workload"));
    cv_test_response_free(&r);
    /* nothing changed: the peer still works, its row is not revoked, the attempt is on record */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", carol, NULL, 200, NULL);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM api_tokens WHERE id = '%s' AND revoked_at IS NULL", carol_id);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'token.revoke' AND target = '%s' AND outcome = "
             "'denied' AND actor = 'alice@acme.example'",
             carol_id);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'token.revoke' AND target = '%s' AND outcome = "
             "'success'",
             carol_id);
    ck_assert_int_eq(cv_t_psql_int(sql), 0);
    /* a workload token of its tenant: revoked; its mint was recorded as the grant of full reads it is */
    char srv[160], wl[160];
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_revoke_case_1\"}}", srv, sizeof(srv));
    char body[512];
    snprintf(body, sizeof(body),
             "{\"name\":\"mcp-revoke-case\",\"role\":\"workload\",\"tenantId\":\"acme\",\"serverId\":\"%s\"}", srv);
    r = cv_t_request(cl, "POST", "/api/tokens", tok_a, body);
    cv_t_expect_status(&r, 201, NULL);
    char wl_id[64];
    snprintf(wl_id, sizeof(wl_id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    snprintf(wl, sizeof(wl), "%s", json_string_value(json_object_get(cv_t_data(&r), "token")));
    cv_test_response_free(&r);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'token.create_workload' AND target = '%s' AND "
             "actor = 'alice@acme.example' AND tenant_id = 'acme'",
             wl_id);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);
    snprintf(path, sizeof(path), "/api/tokens/%s", wl_id);
    cv_t_expect_call(cl, "DELETE", path, carol, NULL, 200, NULL);
    char env[256];
    snprintf(env, sizeof(env), "/api/mcp/servers/%s/env", srv);
    cv_t_expect_call(cl, "GET", env, wl, NULL, 401, "unauthorized");
    /* the platform admin may revoke a tenant-admin */
    snprintf(path, sizeof(path), "/api/tokens/%s", carol_id);
    cv_t_expect_call(cl, "DELETE", path, svc.admin_token, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", carol, NULL, 401, "unauthorized");
}
END_TEST

/* ---- templates ---- */

START_TEST(templates_catalog)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/templates", tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *list = cv_t_data(&r); /* the array itself, as the frontend's templates.map reads it */
    ck_assert(json_is_array(list));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.json, "meta"), "total")),
                     json_array_size(list));
    const char *want[] = {"grc-evidence", "grc-compliance", "grc-ai-assistant", "github", "slack", "postgresql"};
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int found = 0;
        size_t i;
        json_t *t;
        json_array_foreach(list, i, t) {
            if (strcmp(json_string_value(json_object_get(t, "id")), want[w]) != 0) continue;
            found = 1;
            ck_assert(json_is_string(json_object_get(t, "description")));
            ck_assert(json_is_array(json_object_get(t, "requiredEnv")));
            ck_assert(json_is_array(json_object_get(t, "optionalEnv")));
            ck_assert_str_eq(json_string_value(json_object_get(t, "transport")), "stdio");
            ck_assert(json_array_size(json_object_get(t, "evidenceTypes")) > 0);
            if (strcmp(want[w], "grc-compliance") != 0) /* reads no credentials */
                ck_assert(json_array_size(json_object_get(t, "integrations")) > 0);
            if (strcmp(want[w], "grc-evidence") == 0) {
                ck_assert_str_eq(json_string_value(json_object_get(t, "name")), "GRC Evidence Collection Server");
                ck_assert_ptr_nonnull(strstr(r.body, "AWS S3 Bucket Configurations"));
            }
        }
        ck_assert_msg(found, "template %s missing", want[w]);
    }
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/mcp/templates", NULL, NULL, 401, NULL);
}
END_TEST

/* ---- deploy ---- */

START_TEST(deploy_seed_example)
{
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/grc-evidence/deploy", tok_a, SEED_DEPLOY);
    cv_t_expect_status(&r, 201, NULL);
    json_t *d = cv_t_data(&r);
    /* the seed's shape, and the transport the frontend shows */
    const char *keys[] = {"id", "name", "status", "templateId", "createdAt", "createdBy", "configuration", "transport"};
    ck_assert_int_eq(json_object_size(d), sizeof(keys) / sizeof(keys[0]));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) ck_assert_ptr_nonnull(json_object_get(d, keys[i]));
    ck_assert(matches("^grc-evidence-[0-9]{13}$", json_string_value(json_object_get(d, "id"))));
    ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "GRC Evidence Collection Server");
    ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "disconnected");
    ck_assert_str_eq(json_string_value(json_object_get(d, "templateId")), "grc-evidence");
    ck_assert(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                      json_string_value(json_object_get(d, "createdAt"))));
    /* identity from the token, never from the body's userId */
    ck_assert_str_eq(json_string_value(json_object_get(d, "createdBy")), "alice@acme.example");
    json_t *conf = json_object_get(d, "configuration");
    ck_assert_int_eq(json_object_size(conf), 2);
    json_t *integ = json_object_get(conf, "configuredIntegrations");
    ck_assert_int_eq(json_array_size(integ), 2);
    ck_assert_str_eq(json_string_value(json_array_get(integ, 0)), "AWS");
    ck_assert_str_eq(json_string_value(json_array_get(integ, 1)), "GitHub");
    ck_assert(json_array_size(json_object_get(conf, "evidenceTypes")) > 0);
    ck_assert_ptr_null(strstr(r.body, "wJalrXUtnFEMI"));
    char id[160];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
    cv_test_response_free(&r);

    /* the masked read of the seed */
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = cv_t_request(cl, "GET", path, tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    d = cv_t_data(&r);
    ck_assert_str_eq(json_string_value(json_object_get(d, "serverId")), id);
    json_t *c = json_object_get(d, "credentials");
    ck_assert_int_eq(json_object_size(c), 3);
    ck_assert_str_eq(json_string_value(json_object_get(c, "AWS_ACCESS_KEY_ID")), "AKIA••••MPLE");
    ck_assert_str_eq(json_string_value(json_object_get(c, "AWS_SECRET_ACCESS_KEY")), "wJal••••EKEY");
    ck_assert_str_eq(json_string_value(json_object_get(c, "GITHUB_TOKEN")), "ghp_••••xxxx");
    ck_assert_str_eq(json_string_value(json_object_get(d, "note")),
                     "Credentials are masked for security. Full values are delivered only to a workload token "
                     "bound to this server.");
    ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
    cv_test_response_free(&r);

    /* the validate call of the seed, and missing keys in request order */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    r = cv_t_request(cl, "POST", path, tok_a, "{\"requiredKeys\":[\"AWS_ACCESS_KEY_ID\",\"AWS_SECRET_ACCESS_KEY\"]}");
    cv_t_expect_status(&r, 200, NULL);
    ck_assert(json_is_true(json_object_get(cv_t_data(&r), "valid")));
    ck_assert_int_eq(json_array_size(json_object_get(cv_t_data(&r), "missing")), 0);
    cv_test_response_free(&r);
    r = cv_t_request(cl, "POST", path, tok_a_auditor,
                     "{\"requiredKeys\":[\"OKTA_DOMAIN\",\"GITHUB_TOKEN\",\"AZURE_CLIENT_ID\"]}");
    cv_t_expect_status(&r, 200, NULL);
    ck_assert(json_is_false(json_object_get(cv_t_data(&r), "valid")));
    json_t *missing = json_object_get(cv_t_data(&r), "missing");
    ck_assert_int_eq(json_array_size(missing), 2);
    ck_assert_str_eq(json_string_value(json_array_get(missing, 0)), "OKTA_DOMAIN");
    ck_assert_str_eq(json_string_value(json_array_get(missing, 1)), "AZURE_CLIENT_ID");
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "POST", path, tok_a, "{\"requiredKeys\":\"AWS\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", path, tok_a, "{\"requiredKeys\":[1]}", 400, NULL);
    cv_t_expect_call(cl, "POST", path, tok_a, "{}", 400, NULL);
}
END_TEST

START_TEST(deploy_refusals)
{
    const char *p = "/api/mcp/templates/grc-evidence/deploy";
    cv_t_expect_call(cl, "POST", "/api/mcp/templates/no-such-template/deploy", tok_a, SEED_DEPLOY, 404, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"userId\":\"x\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":[]}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":1}}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":null}}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"1ABC\":\"x\"}}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"A-B\":\"x\"}}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\\u0000y\"}}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"LD_PRELOAD\":\"/tmp/evil.so\"}}", 400, "env_name_forbidden");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"NODE_OPTIONS\":\"--require /tmp/evil.js\"}}", 400, "env_name_forbidden");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"BASH_ENV\":\"/tmp/evil.sh\"}}", 400, "env_name_forbidden");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"autoConnect\":\"yes\"}", 400, NULL);
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"expiresAt\":\"tomorrow\"}", 400, NULL);
    /* a date that does not exist, or a field that is not all digits, is refused, never normalised
     * (2026-02-31 once became 2026-03-03) */
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"expiresAt\":\"2026-02-31T00:00:00Z\"}", 400,
                "invalid_request");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"expiresAt\":\"2026-+1-01T00:00:00Z\"}", 400,
                "invalid_request");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"expiresAt\":\"2026-12-31T00:00:00+01:00\"}", 400,
                "invalid_request");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"x\"},\"unknown\":1}", 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/mcp/templates/github/deploy", tok_a, "{\"env\":{\"GITHUB_ORG\":\"acme\"}}", 400, NULL);
    /* malformed JSON, duplicate keys, wrong media type */
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":", 400, "invalid_json");
    cv_t_expect_call(cl, "POST", p, tok_a, "{\"env\":{\"GITHUB_ORG\":\"1\",\"GITHUB_ORG\":\"2\"}}", 400, "invalid_json");
    const char *text[] = {"Content-Type: text/plain", NULL};
    struct cv_test_response r = cv_t_request_h(cl, "POST", p, tok_a, SEED_DEPLOY, text);
    cv_t_expect_status(&r, 415, NULL);
    cv_test_response_free(&r);
    /* roles: auditors and admins cannot deploy */
    cv_t_expect_call(cl, "POST", p, tok_a_auditor, SEED_DEPLOY, 403, "forbidden");
    cv_t_expect_call(cl, "POST", p, svc.admin_token, SEED_DEPLOY, 403, "forbidden");

    /* too many keys: the limit is CREDVAULT_MAX_ENV_KEYS (64) */
    char body[8192] = "{\"env\":{";
    for (int i = 0; i < 65; i++) {
        char kv[32];
        snprintf(kv, sizeof(kv), "%s\"MCP_K%d\":\"v\"", i ? "," : "", i);
        strcat(body, kv);
    }
    strcat(body, "}}");
    cv_t_expect_call(cl, "POST", p, tok_a, body, 400, NULL);
    /* a value over CREDVAULT_MAX_ENV_VALUE_BYTES (8192) */
    const char *head = "{\"env\":{\"GITHUB_ORG\":\"";
    size_t hn = strlen(head);
    char *big = malloc(hn + 9000 + 64);
    memcpy(big, head, hn);
    memset(big + hn, 'x', 9000);
    strcpy(big + hn + 9000, "\"}}");
    cv_t_expect_call(cl, "POST", p, tok_a, big, 400, NULL);
    free(big);
    /* a body over CREDVAULT_MAX_BODY_BYTES (64 KiB) */
    size_t n = 70 * 1024;
    char *huge = malloc(hn + n + 64);
    memcpy(huge, head, hn);
    memset(huge + hn, 'y', n);
    strcpy(huge + hn + n, "\"}}");
    /* several times: the client is still sending when the limit is reached, and
     * must get the 413, never a reset connection */
    for (int i = 0; i < 5; i++)
        cv_t_expect_call(cl, "POST", p, tok_a, huge, 413, NULL);
    free(huge);
}
END_TEST

struct deploy_thread {
    char ids[8][160];
};

static void *deploy_many(void *arg)
{
    struct deploy_thread *t = arg;
    struct cv_test_client *c = cv_test_client_new(svc.base_url, svc.ca_file);
    for (int i = 0; i < 8; i++) {
        struct cv_test_response r;
        memset(&r, 0, sizeof(r));
        if (cv_test_request(c, "POST", "/api/mcp/templates/slack/deploy", tok_a,
                            "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-123456789012-abcdefghijkl\"}}", NULL, &r) == 0 &&
            r.status == 201)
            snprintf(t->ids[i], sizeof(t->ids[i]), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
        cv_test_response_free(&r);
    }
    cv_test_client_free(c);
    return NULL;
}

START_TEST(deploy_ids_unique_under_concurrency)
{
    struct deploy_thread t[4];
    pthread_t th[4];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, deploy_many, &t[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int a = 0; a < 32; a++) {
        const char *x = t[a / 8].ids[a % 8];
        ck_assert_msg(matches("^slack-[0-9]{13}$", x), "deploy %d failed or bad id '%s'", a, x);
        for (int b = a + 1; b < 32; b++) ck_assert_str_ne(x, t[b / 8].ids[b % 8]);
    }
}
END_TEST

/* ---- list, get, update, delete ---- */

START_TEST(list_get_update_delete)
{
    char id[160], path[256], other[160];
    /* two more of its own, so that a page of 2 is not the whole list whatever ran before */
    for (int i = 0; i < 2; i++)
        cv_t_deploy(cl, tok_a, "slack", "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-123456789012-listing\"}}", other,
                    sizeof(other));
    cv_t_deploy(cl, tok_a, "grc-ai-assistant", "{\"env\":{\"OPENAI_API_KEY\":\"sk-proj-abcdefghijklmnopqrstuvwxyz\"}}",
                id, sizeof(id));

    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers?limit=2", tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_array_size(cv_t_data(&r)), 2);
    ck_assert_int_ge(json_integer_value(json_object_get(json_object_get(r.json, "meta"), "total")), 3);
    ck_assert_ptr_null(strstr(r.body, "encrypted"));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers?limit=0x10", tok_a, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers?limit=100000", tok_a, NULL, 400, NULL);

    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    r = cv_t_request(cl, "GET", path, tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "revision")), 1);
    ck_assert_str_eq(cv_test_response_header(&r, "ETag"), "\"1\"");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(cv_t_data(&r), "credentialNames"), 0)),
                     "OPENAI_API_KEY");
    cv_test_response_free(&r);

    /* replace */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = cv_t_request(cl, "PUT", path, tok_a, "{\"env\":{\"ANTHROPIC_API_KEY\":\"sk-ant-0123456789abcdef\"}}");
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "revision")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(cv_t_data(&r), "updatedBy")), "alice@acme.example");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(cv_t_data(&r), "configuration"), "configuredIntegrations"), 0)),
                     "Anthropic");
    cv_test_response_free(&r);
    /* an expiry on a date that does not exist is refused and changes nothing (the If-Match "2" below holds) */
    cv_t_expect_call(cl, "PUT", path, tok_a, "{\"env\":{\"MCP_X\":\"y\"},\"expiresAt\":\"2026-02-31T00:00:00Z\"}", 400,
                "invalid_request");
    cv_t_expect_call(cl, "PUT", path, tok_a, "{\"env\":{\"MCP_X\":\"y\"},\"expiresAt\":\"2026-+1-01T00:00:00Z\"}", 400,
                "invalid_request");
    /* a stale If-Match is refused and changes nothing */
    const char *stale[] = {"If-Match: \"1\"", NULL};
    r = cv_t_request_h(cl, "PUT", path, tok_a, "{\"env\":{\"MCP_X\":\"y\"}}", stale);
    cv_t_expect_status(&r, 412, NULL);
    cv_test_response_free(&r);
    const char *bad[] = {"If-Match: abc", NULL};
    r = cv_t_request_h(cl, "PUT", path, tok_a, "{\"env\":{\"MCP_X\":\"y\"}}", bad);
    cv_t_expect_status(&r, 400, NULL);
    cv_test_response_free(&r);
    /* merge with the current revision: adds one key, removes none */
    char merge[300];
    snprintf(merge, sizeof(merge), "%s?merge=true", path);
    const char *cur[] = {"If-Match: \"2\"", NULL};
    r = cv_t_request_h(cl, "PUT", merge, tok_a, "{\"env\":{\"MCP_AI_MODEL\":\"large\"}}", cur);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_str_eq(cv_test_response_header(&r, "ETag"), "\"3\"");
    cv_test_response_free(&r);
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *c = json_object_get(cv_t_data(&r), "credentials");
    ck_assert_int_eq(json_object_size(c), 2);
    ck_assert_str_eq(json_string_value(json_object_get(c, "ANTHROPIC_API_KEY")), "sk-a••••cdef");
    ck_assert_str_eq(json_string_value(json_object_get(c, "MCP_AI_MODEL")), "••••••••");
    cv_test_response_free(&r);
    /* merge with null removes a key */
    cv_t_expect_call(cl, "PUT", merge, tok_a, "{\"env\":{\"MCP_AI_MODEL\":null}}", 200, NULL);
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    ck_assert_int_eq(json_object_size(json_object_get(cv_t_data(&r), "credentials")), 1);
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "PUT", path, tok_a_auditor, "{\"env\":{\"MCP_X\":\"y\"}}", 403, NULL);
    char badmerge[300];
    snprintf(badmerge, sizeof(badmerge), "%s?merge=yes", path);
    cv_t_expect_call(cl, "PUT", badmerge, tok_a, "{\"env\":{\"MCP_X\":\"y\"}}", 400, NULL);

    /* delete */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    cv_t_expect_call(cl, "DELETE", path, tok_a_auditor, NULL, 403, NULL);
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 404, "not_found");
    cv_t_expect_call(cl, "DELETE", path, tok_a, NULL, 404, "not_found");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 404, "not_found");
}
END_TEST

/* ---- tenant isolation ---- */

START_TEST(tenant_isolation)
{
    char id[160], path[256];
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_isolation_secret_0123456789\"}}", id,
                sizeof(id));
    const char *suffix[] = {"", "/credentials"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/api/mcp/servers/%s%s", id, suffix[i]);
        cv_t_expect_call(cl, "GET", path, tok_b, NULL, 404, "not_found");
    }
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    cv_t_expect_call(cl, "POST", path, tok_b, "{\"requiredKeys\":[\"GITHUB_TOKEN\"]}", 404, "not_found");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "PUT", path, tok_b, "{\"env\":{\"GITHUB_TOKEN\":\"overwritten\"}}", 404, "not_found");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    cv_t_expect_call(cl, "DELETE", path, tok_b, NULL, 404, "not_found");
    /* B's list shows none of A's servers */
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers?limit=200", tok_b, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_ptr_null(strstr(r.body, id));
    ck_assert_int_eq(json_array_size(cv_t_data(&r)), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.json, "meta"), "total")), 0);
    cv_test_response_free(&r);
    /* A's server is intact */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cv_t_data(&r), "credentials"), "GITHUB_TOKEN")),
                     "ghp_••••6789");
    cv_test_response_free(&r);
}
END_TEST

/* ---- tampering and what storage reveals ---- */

START_TEST(tampered_record_is_decrypt_failed)
{
    char id[160], other[160], path[256], sql[1024];
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_tamper_target_abcdefghij\"}}", id, sizeof(id));
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_tamper_donor_abcdefghijk\"}}", other,
                sizeof(other));

    /* flip one hex digit of the ciphertext */
    cv_t_record_flip(id, "encrypted");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    struct cv_test_response r = cv_t_request(cl, "GET", path, tok_a, NULL);
    cv_t_expect_status(&r, 500, "decrypt_failed");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
                     "Failed to decrypt credentials");
    cv_test_response_free(&r);
    ck_assert(cv_test_service_log_contains(&svc, id));

    /* a whole valid record copied onto another server's row does not decrypt either (AAD) */
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET encrypted_env = (SELECT encrypted_env FROM mcp_credentials WHERE "
             "server_id = '%s') WHERE server_id = '%s' RETURNING 1",
             other, id);
    free(cv_t_psql(sql));
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    cv_t_expect_status(&r, 500, "decrypt_failed");
    cv_test_response_free(&r);

    /* garbage in the column */
    snprintf(sql, sizeof(sql), "UPDATE mcp_credentials SET encrypted_env = '{}' WHERE server_id = '%s' RETURNING 1",
             id);
    free(cv_t_psql(sql));
    r = cv_t_request(cl, "GET", path, tok_a, NULL);
    cv_t_expect_status(&r, 500, "decrypt_failed");
    cv_test_response_free(&r);
    /* the service keeps serving */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", other);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 200, NULL);
}
END_TEST

START_TEST(no_plaintext_in_dump_or_log)
{
    const char *secret = "s3cr3t-value-that-must-never-be-stored-9f8e7d";
    char body[512], id[160];
    snprintf(body, sizeof(body), "{\"env\":{\"JAMF_URL\":\"https://jamf.example\",\"JAMF_USERNAME\":\"svc\","
                                 "\"JAMF_PASSWORD\":\"%s\"}}",
             secret);
    cv_t_deploy(cl, tok_a, "grc-evidence", body, id, sizeof(id));
    char *dump = cv_test_sh_output("pg_dump --no-owner \"$CV_PG_SUPERUSER_URL\"");
    ck_assert_ptr_nonnull(dump);
    ck_assert_msg(strlen(dump) > 1000, "pg_dump printed too little");
    ck_assert_ptr_nonnull(strstr(dump, id)); /* the row is in the dump… */
    ck_assert_ptr_null(strstr(dump, secret)); /* …its value is not */
    ck_assert_ptr_null(strstr(dump, "wJalrXUtnFEMI"));
    ck_assert_ptr_null(strstr(dump, "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    ck_assert_ptr_null(strstr(dump, svc.admin_token)); /* tokens: hashes only */
    ck_assert_ptr_null(strstr(dump, tok_a));
    free(dump);
    ck_assert(!cv_test_service_log_contains(&svc, secret));
    ck_assert(!cv_test_service_log_contains(&svc, "wJalrXUtnFEMI"));
    ck_assert(!cv_test_service_log_contains(&svc, tok_a));
}
END_TEST

START_TEST(keep_alive_and_unknown_routes)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/healthz", NULL, NULL);
    cv_test_response_free(&r);
    r = cv_t_request(cl, "GET", "/api/mcp/templates", tok_a, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_msg(r.reused, "the second request opened a new connection");
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/nothing-here", tok_a, NULL, 404, NULL);
    cv_t_expect_call(cl, "PATCH", "/api/tenants", svc.admin_token, NULL, 405, NULL);
}
END_TEST

/* ---- the PIN in the environment ---- */

static int holds(const char *buf, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k && i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0) return 1;
    return 0;
}

/* serve reads CREDVAULT_HSM_PIN once and takes it out of its environment.
 * /proc/<pid>/environ shows the block the process started with, not environ,
 * so the bytes there must be overwritten, not only unset. */
START_TEST(serve_scrubs_inline_pin)
{
    char pin[256] = "";
    FILE *f = fopen(getenv("CREDVAULT_HSM_PIN_FILE"), "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(pin, sizeof(pin), f));
    fclose(f);
    pin[strcspn(pin, "\n")] = '\0';
    ck_assert_uint_ge(strlen(pin), 8);
    static char setting[300];
    snprintf(setting, sizeof(setting), "CREDVAULT_HSM_PIN=%s", pin);
    const char *env[] = {setting, NULL};
    struct cv_test_service pinned;
    memset(&pinned, 0, sizeof(pinned));
    ck_assert_int_eq(cv_test_service_start(&pinned, env), 0);

    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pinned.pid);
    static char block[1 << 20];
    size_t n = 0;
    FILE *e = fopen(path, "r");
    if (e) {
        n = fread(block, 1, sizeof(block), e);
        fclose(e);
    }
    if (n == 0 && geteuid() != 0) {
        /* serve is not dumpable, so only root (or CAP_SYS_PTRACE) may read its
         * environ: that is itself the first protection; the scrub is checked
         * where the tests run as root */
        fprintf(stderr, "serve_scrubs_inline_pin: %s is closed to uid %u; scrub not observed\n", path,
                (unsigned)geteuid());
    } else {
        ck_assert_msg(n > 0, "cannot read %s", path);
        ck_assert_msg(holds(block, n, "CREDVAULT_LISTEN="), "not serve's environment block");
        ck_assert_msg(!holds(block, n, "CREDVAULT_HSM_PIN="), "the variable is still in %s", path);
        ck_assert_msg(!holds(block, n, pin), "the PIN is still in %s", path);
    }
    /* it serves on the PIN it read */
    struct cv_test_client *c = cv_test_client_new(pinned.base_url, pinned.ca_file);
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(cv_test_request(c, "GET", "/readyz", NULL, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    cv_test_response_free(&r);
    cv_test_client_free(c);
    ck_assert_int_eq(cv_test_service_stop(&pinned), 0);
}
END_TEST

/* ---- start-up checks ---- */

START_TEST(canary_mismatch_refuses_to_start)
{
    /* a second, unrelated token: its master key cannot open this database's canary */
    const char *cmd =
        "set -e; d=\"$CV_TEST_TMP/other-hsm\"; eval \"$(\"$CV_SOURCE_DIR/hsm-config/make-softhsm-token\" \"$d\" other "
        "| sed 's/^/export /')\"; \"$CREDVAULT_BIN\" hsm init >/dev/null; "
        "rc=0; timeout 30 \"$CREDVAULT_BIN\" serve > \"$CV_TEST_TMP/canary.log\" 2>&1 || rc=$?; echo $rc > \"$CV_TEST_TMP/canary.rc\"";
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    char *rc = cv_test_sh_output("cat \"$CV_TEST_TMP/canary.rc\"");
    ck_assert_int_ne(atoi(rc), 0);
    free(rc);
    char *log = cv_test_sh_output("cat \"$CV_TEST_TMP/canary.log\"");
    ck_assert_msg(strstr(log, "credvault-master-1") != NULL, "message does not name the key: %s", log);
    free(log);
}
END_TEST

START_TEST(database_outage_is_503_then_recovers)
{
    ck_assert_int_eq(cv_test_sh("\"$CV_SOURCE_DIR/scripts/pg-cluster\" stop \"$CV_PG_DIR\" >/dev/null"), 0);
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a, NULL);
    cv_t_expect_status(&r, 503, NULL);
    cv_test_response_free(&r);
    r = cv_t_request(cl, "GET", "/readyz", NULL, NULL);
    cv_t_expect_status(&r, 503, "not_ready");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
                     "not ready: HSM ok, database unavailable");
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_test_sh("\"$CV_SOURCE_DIR/scripts/pg-cluster\" start \"$CV_PG_DIR\" >/dev/null"), 0);
    /* the breaker's probe (every 500 ms) and the readiness probe find it back */
    cv_t_expect_recovery(cl, "GET", "/api/mcp/servers", tok_a, 200, 5000);
    cv_t_expect_recovery(cl, "GET", "/readyz", NULL, 200, 2000);
}
END_TEST

static Suite *api_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "api", .timeout_s = 120};
    return cv_t_suite_new(&spec, CV_T_TESTS(health_and_ready, auth_refusals, tenants_admin_only, token_minting_rules,
                                            tenant_admin_revokes_only_auditor_and_workload_tokens, templates_catalog,
                                            deploy_seed_example, deploy_refusals,
                                            deploy_ids_unique_under_concurrency, list_get_update_delete,
                                            tenant_isolation, tampered_record_is_decrypt_failed,
                                            no_plaintext_in_dump_or_log, keep_alive_and_unknown_routes,
                                            canary_mismatch_refuses_to_start, database_outage_is_503_then_recovers,
                                            serve_scrubs_inline_pin));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = api_suite();
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    /* two tenants, a tenant-admin for each and an auditor for the first */
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0) return 1;
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    if (cv_test_request(cl, "POST", "/api/tenants", svc.admin_token, "{\"id\":\"beta\",\"name\":\"Beta\"}", NULL, &r) != 0 ||
        r.status != 201) {
        fprintf(stderr, "creating tenant beta failed: %ld %s\n", r.status, r.body);
        return 1;
    }
    cv_test_response_free(&r);
    if (cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name audit@acme.example --role auditor --tenant acme", tok_a_auditor,
                    sizeof(tok_a_auditor)) ||
        cv_test_cli("token create --name bob@beta.example --role tenant-admin --tenant beta", tok_b, sizeof(tok_b)))
        return 1;

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
