/* The credential use cases (src/domain/credentials.c, seal.c) against the
 * in-memory HSM and store: who may do what, which input is refused and
 * which refusal wins when several apply, masking, and how store and HSM
 * failures reach the caller. Hostile cases first; every case makes its own
 * service context. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/config.h"
#include "cv_test_suite.h"
#include "domain/domain.h"
#include "fakes.h"

static struct cv_app *app;
static struct cv_principal admin, alice, auditor, workload, bob; /* alice, auditor: acme; bob: beta */

static void setup(void)
{
    app = cv_fake_app_new();
    admin = cv_fake_principal(CV_ROLE_ADMIN, NULL, NULL);
    alice = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "acme", NULL);
    auditor = cv_fake_principal(CV_ROLE_AUDITOR, "acme", NULL);
    bob = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "beta", NULL);
    cv_fake_tenant(app, "acme");
    cv_fake_tenant(app, "beta");
    workload = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", "github-0000000000001");
    cv_fake_calls_clear(); /* each case counts its own calls */
}

static void teardown(void)
{
    cv_fake_app_free(app);
    app = NULL;
}

/* Deploys `text` as `p`; asserts success; the server id into id. */
static void deploy(const struct cv_principal *p, const char *tmpl, const char *text, char *id, size_t n)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    cv_result r = cv_credentials_deploy(app, p, tmpl, b, &d);
    ck_assert_msg(cv_ok(r), "deploy: %s", cv_error_message());
    snprintf(id, n, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(b);
    json_decref(d);
}

/* A deploy that must fail with `err`; nothing is returned or stored. */
static void deploy_refused(const struct cv_principal *p, const char *tmpl, const char *text, cv_err err,
                           const char *fragment)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    unsigned before = cv_fake_server_count(app, "acme");
    cv_fake_expect_fail(cv_credentials_deploy(app, p, tmpl, b, &d), err, fragment);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(cv_fake_server_count(app, "acme"), before);
    json_decref(b);
}

/* The masked map of a server, as `p` reads it (caller decrefs). */
static json_t *masked(const struct cv_principal *p, const char *id)
{
    json_t *d = NULL;
    cv_result r = cv_credentials_masked(app, p, id, &d);
    ck_assert_msg(cv_ok(r), "masked read: %s", cv_error_message());
    return d;
}

#define GITHUB_BODY "{\"env\":{\"GITHUB_TOKEN\":\"ghp_0123456789abcdefghij\",\"GITHUB_ORG\":\"acme-org\"}}"

/* ---- roles ---- */

/* the paging document of a list; every list call here either fails (NULL) or is decref'd */
static json_t *meta;

START_TEST(roles_are_checked_before_anything_else)
{
    struct cv_principal nobody = cv_fake_principal(CV_ROLE_TENANT_ADMIN, NULL, NULL);
    const struct cv_principal *writers_not[] = {&admin, &auditor, &workload, &nobody};
    /* a bad body and an unknown template too: the role still decides first */
    json_t *bad = cv_fake_json("{\"env\":[],\"unknown\":1}"), *d = NULL;
    for (size_t i = 0; i < sizeof(writers_not) / sizeof(writers_not[0]); i++) {
        cv_fake_expect_fail(cv_credentials_deploy(app, writers_not[i], "no-such-template", bad, &d), CV_ERR_FORBIDDEN,
                            NULL);
        cv_fake_expect_fail(cv_credentials_update(app, writers_not[i], "github-1", bad, 0, "junk", &d),
                            CV_ERR_FORBIDDEN, NULL);
        cv_fake_expect_fail(cv_server_delete(app, writers_not[i], "github-1"), CV_ERR_FORBIDDEN, NULL);
    }
    const struct cv_principal *readers_not[] = {&admin, &workload, &nobody};
    for (size_t i = 0; i < sizeof(readers_not) / sizeof(readers_not[0]); i++) {
        cv_fake_expect_fail(cv_credentials_masked(app, readers_not[i], "github-1", &d), CV_ERR_FORBIDDEN, NULL);
        cv_fake_expect_fail(cv_credentials_validate(app, readers_not[i], "github-1", bad, &d), CV_ERR_FORBIDDEN, NULL);
        cv_fake_expect_fail(cv_server_get(app, readers_not[i], "github-1", &d), CV_ERR_FORBIDDEN, NULL);
        cv_fake_expect_fail(cv_server_list(app, readers_not[i], "junk", NULL, &d, &meta), CV_ERR_FORBIDDEN, NULL);
    }
    ck_assert_ptr_null(d);
    json_decref(bad);
    /* refused before the store or the HSM was asked anything */
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_*"), 0);
    /* an auditor reads */
    char id[64];
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    json_decref(masked(&auditor, id));
}
END_TEST

/* ---- which refusal wins ---- */

START_TEST(deploy_validation_order)
{
    /* template before fields */
    deploy_refused(&alice, "no-such-template", "{\"unknown\":1}", CV_ERR_NOT_FOUND, "unknown template");
    /* unknown fields before the env */
    deploy_refused(&alice, "github", "{\"env\":[],\"unknown\":1}", CV_ERR_INPUT, "unknown field 'unknown'");
    deploy_refused(&alice, "github", "{\"expiresAt\":\"tomorrow\"}", CV_ERR_INPUT, "env is required");
    /* the env before the other members */
    deploy_refused(&alice, "github", "{\"env\":{\"1A\":\"x\"},\"autoConnect\":\"yes\",\"expiresAt\":\"tomorrow\"}",
                   CV_ERR_INPUT, "'1A'");
    deploy_refused(&alice, "github", "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"autoConnect\":\"yes\",\"expiresAt\":\"x\"}",
                   CV_ERR_INPUT, "autoConnect");
    /* expiresAt before the template's required names */
    deploy_refused(&alice, "github", "{\"env\":{\"GITHUB_ORG\":\"x\"},\"expiresAt\":\"tomorrow\"}", CV_ERR_INPUT,
                   "expiresAt");
    deploy_refused(&alice, "github", "{\"env\":{\"GITHUB_ORG\":\"x\"}}", CV_ERR_INPUT, "requires GITHUB_TOKEN");
    /* none of it reached the store or the HSM */
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_*"), 0);
}
END_TEST

START_TEST(deploy_field_checks)
{
    const char *refused[] = {
        "{\"env\":[]}",
        "{\"env\":\"GITHUB_TOKEN=x\"}",
        "{\"env\":{\"GITHUB_TOKEN\":1}}",
        "{\"env\":{\"GITHUB_TOKEN\":null}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\\u0000y\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"A-B\":\"x\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"\":\"x\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"LD_PRELOAD\":\"/tmp/evil.so\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"NODE_OPTIONS\":\"--require /tmp/evil.js\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"\"}}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"userId\":7}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"autoConnect\":1}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"name\":\"\"}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"name\":3}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"expiresAt\":\"2026-12-31T00:00:00\"}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"expiresAt\":\"2026-13-01T00:00:00Z\"}",
        "{\"env\":{\"GITHUB_TOKEN\":\"x\"},\"expiresAt\":1767139200}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        deploy_refused(&alice, "github", refused[i], CV_ERR_INPUT, NULL);
    /* a refused value is never repeated back; the name is */
    deploy_refused(&alice, "github", "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"LD_PRELOAD\":\"/tmp/evil.so\"}}", CV_ERR_INPUT,
                   "LD_PRELOAD");
    ck_assert_ptr_null(strstr(cv_error_message(), "evil"));
    ck_assert_str_eq(cv_error_code(), "env_name_forbidden");
    /* the allow-list: a name the template does not declare, nor its customEnv
     * pattern matches, is refused and named; the pattern needs a suffix */
    const char *not_declared[] = {"{\"env\":{\"GITHUB_TOKEN\":\"x\",\"SOMETHING_ELSE\":\"v\"}}",
                                  "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"MCP_\":\"v\"}}",
                                  "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"XMCP_A\":\"v\"}}"};
    for (size_t i = 0; i < sizeof(not_declared) / sizeof(not_declared[0]); i++) {
        deploy_refused(&alice, "github", not_declared[i], CV_ERR_INPUT, "does not accept");
        ck_assert_str_eq(cv_error_code(), "env_name_not_in_template");
    }
    /* the forbidden family wins over the template's own lists */
    deploy_refused(&alice, "github", "{\"env\":{\"GITHUB_TOKEN\":\"x\",\"SHELLOPTS\":\"xtrace\"}}", CV_ERR_INPUT,
                   "SHELLOPTS");
    ck_assert_str_eq(cv_error_code(), "env_name_forbidden");

    /* the limits are the configured ones, one past each */
    const struct cv_config *cfg = app->cfg;
    json_t *env = json_object();
    json_object_set_new(env, "GITHUB_TOKEN", json_string("x"));
    for (unsigned i = 1; i < cfg->max_env_keys; i++) {
        char k[32];
        snprintf(k, sizeof(k), "MCP_K%u", i);
        json_object_set_new(env, k, json_string("v"));
    }
    json_t *b = json_pack("{s:O}", "env", env), *d = NULL;
    ck_assert(cv_ok(cv_credentials_deploy(app, &alice, "github", b, &d))); /* exactly at the limit */
    json_decref(d);
    d = NULL;
    json_object_set_new(env, "MCP_ONE_TOO_MANY", json_string("v"));
    cv_fake_expect_fail(cv_credentials_deploy(app, &alice, "github", b, &d), CV_ERR_INPUT, "more than");
    json_decref(b);
    json_decref(env);
    char *long_value = malloc(cfg->max_env_value_bytes + 2);
    memset(long_value, 'v', cfg->max_env_value_bytes + 1);
    long_value[cfg->max_env_value_bytes + 1] = '\0';
    b = json_pack("{s:{s:s}}", "env", "GITHUB_TOKEN", long_value);
    cv_fake_expect_fail(cv_credentials_deploy(app, &alice, "github", b, &d), CV_ERR_INPUT, "longer than");
    json_decref(b);
    long_value[cfg->max_env_value_bytes] = '\0';
    b = json_pack("{s:{s:s}}", "env", "GITHUB_TOKEN", long_value);
    ck_assert(cv_ok(cv_credentials_deploy(app, &alice, "github", b, &d)));
    json_decref(b);
    json_decref(d);
    free(long_value);
    /* what is accepted: userId for compatibility (ignored), autoConnect, a name, an expiry */
    char id[64];
    deploy(&alice, "github",
           "{\"env\":{\"GITHUB_TOKEN\":\"ghp_x\"},\"userId\":\"mallory@evil.example\",\"autoConnect\":false,"
           "\"name\":\"My GitHub\",\"expiresAt\":\"2030-01-02T03:04:05.678Z\"}",
           id, sizeof(id));
    json_t *g = NULL;
    ck_assert(cv_ok(cv_server_get(app, &auditor, id, &g)));
    ck_assert_str_eq(json_string_value(json_object_get(g, "name")), "My GitHub");
    ck_assert_str_eq(json_string_value(json_object_get(g, "createdBy")), alice.name); /* never the body's userId */
    ck_assert_str_eq(json_string_value(json_object_get(g, "expiresAt")), "2030-01-02T03:04:05.678Z");
    json_decref(g);
}
END_TEST

/* ---- what is stored and shown ---- */

START_TEST(deploy_stores_only_ciphertext_and_names)
{
    char id[64];
    deploy(&alice, "grc-evidence",
           "{\"env\":{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPLE\",\"AWS_SECRET_ACCESS_KEY\":"
           "\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}}",
           id, sizeof(id));
    const char *rec = cv_fake_record(app, "acme", id);
    ck_assert_ptr_nonnull(rec);
    ck_assert_ptr_null(strstr(rec, "AKIAIOSFODNN7EXAMPLE"));
    ck_assert_ptr_null(strstr(rec, "wJalrXUtnFEMI"));
    ck_assert_ptr_nonnull(strstr(rec, "\"kid\":\"acme/1\""));
    json_t *g = NULL;
    ck_assert(cv_ok(cv_server_get(app, &auditor, id, &g)));
    json_t *names = json_object_get(g, "credentialNames");
    ck_assert_int_eq(json_array_size(names), 2);
    ck_assert_str_eq(json_string_value(json_array_get(names, 0)), "AWS_ACCESS_KEY_ID");
    ck_assert_int_eq(json_integer_value(json_object_get(g, "revision")), 1);
    char *text = json_dumps(g, 0);
    ck_assert_ptr_null(strstr(text, "AKIAIOSFODNN7EXAMPLE"));
    ck_assert_ptr_null(strstr(text, "encrypted"));
    cv_json_free(text);
    json_decref(g);
    /* one encryption counted on the key that sealed it, one event */
    json_t *t = NULL;
    ck_assert(cv_ok(cv_tenant_get(app, &admin, "acme", &t)));
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(t, "keys"), 0), "encryptions")),
                     1);
    json_decref(t);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.deploy", "success"), 1);
}
END_TEST

START_TEST(masked_read_masks_every_value)
{
    char id[64];
    deploy(&alice, "grc-ai-assistant",
           "{\"env\":{\"OPENAI_API_KEY\":\"sk-proj-abcdefghijklmnopqrstuvwxyz\",\"MCP_AI_MODEL\":\"large\","
           "\"MCP_EXACTLY_16\":\"0123456789abcdef\",\"MCP_FIFTEEN\":\"0123456789abcde\",\"MCP_UTF8\":\"ééééééééééééééééé\"}}",
           id, sizeof(id));
    json_t *d = masked(&auditor, id);
    json_t *c = json_object_get(d, "credentials");
    ck_assert_int_eq(json_object_size(c), 5);
    ck_assert_str_eq(json_string_value(json_object_get(c, "OPENAI_API_KEY")), "sk-p••••wxyz");
    ck_assert_str_eq(json_string_value(json_object_get(c, "MCP_AI_MODEL")), "••••••••");
    ck_assert_str_eq(json_string_value(json_object_get(c, "MCP_EXACTLY_16")), "0123••••cdef");
    ck_assert_str_eq(json_string_value(json_object_get(c, "MCP_FIFTEEN")), "••••••••");
    ck_assert_str_eq(json_string_value(json_object_get(c, "MCP_UTF8")), "éééé••••éééé");
    ck_assert_str_eq(json_string_value(json_object_get(d, "serverId")), id);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(d, "note")), "masked"));
    char *text = json_dumps(d, 0);
    ck_assert_ptr_null(strstr(text, "abcdefghijklmnop"));
    ck_assert_ptr_null(strstr(text, "large"));
    cv_json_free(text);
    json_decref(d);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.read_masked", "success"), 1);
}
END_TEST

START_TEST(validate_reads_names_and_never_decrypts)
{
    char id[64];
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    json_t *d = NULL;
    /* malformed requests are refused before the store is asked */
    unsigned gets = cv_fake_calls("cv_store_server_get");
    const char *bad[] = {"{}", "{\"requiredKeys\":\"GITHUB_TOKEN\"}", "{\"requiredKeys\":[1]}",
                         "{\"requiredKeys\":[],\"x\":1}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = cv_fake_json(bad[i]);
        cv_fake_expect_fail(cv_credentials_validate(app, &auditor, id, b, &d), CV_ERR_INPUT, NULL);
        json_decref(b);
    }
    json_t *many = json_array();
    for (int i = 0; i <= CV_VALIDATE_MAX_KEYS; i++)
        json_array_append_new(many, json_string("K"));
    json_t *b = json_pack("{s:o}", "requiredKeys", many);
    cv_fake_expect_fail(cv_credentials_validate(app, &auditor, id, b, &d), CV_ERR_INPUT, "more than");
    json_decref(b);
    ck_assert_uint_eq(cv_fake_calls("cv_store_server_get"), gets);
    ck_assert_ptr_null(d);

    b = cv_fake_json("{\"requiredKeys\":[\"OKTA_DOMAIN\",\"GITHUB_TOKEN\",\"AZURE_CLIENT_ID\",\"GITHUB_ORG\"]}");
    ck_assert(cv_ok(cv_credentials_validate(app, &auditor, id, b, &d)));
    json_decref(b);
    ck_assert(json_is_false(json_object_get(d, "valid")));
    json_t *missing = json_object_get(d, "missing");
    ck_assert_int_eq(json_array_size(missing), 2); /* in the order asked */
    ck_assert_str_eq(json_string_value(json_array_get(missing, 0)), "OKTA_DOMAIN");
    ck_assert_str_eq(json_string_value(json_array_get(missing, 1)), "AZURE_CLIENT_ID");
    json_decref(d);
    /* names are stored beside the record: the token never decrypted anything */
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_gcm_decrypt"), 0);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.validate", "success"), 1);
}
END_TEST

/* ---- how failures reach the caller ---- */

START_TEST(read_errors_map_to_their_categories)
{
    char id[64], other[64], theirs[64];
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    deploy(&alice, "github", GITHUB_BODY, other, sizeof(other)); /* the same values: a record of the same length */
    deploy(&bob, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_beta_0123456789abcdef\"}}", theirs, sizeof(theirs));
    json_t *d = NULL;
    /* absent, another tenant's, and an id too long to exist: the same answer */
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, "github-0000000000000", &d), CV_ERR_NOT_FOUND,
                        "server not found");
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, theirs, &d), CV_ERR_NOT_FOUND, "server not found");
    char huge[CV_SERVER_ID_MAX_BYTES + 8];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    unsigned gets = cv_fake_calls("cv_store_server_get*");
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, huge, &d), CV_ERR_NOT_FOUND, "server not found");
    ck_assert_uint_eq(cv_fake_calls("cv_store_server_get*"), gets);

    /* the database or the token away: unavailable, never "not found" or "decrypt failed" */
    cv_fake_fail("cv_store_server_get_keyed", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, id, &d), CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_store_server_get", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_server_get(app, &alice, id, &d), CV_ERR_UNAVAILABLE, NULL);
    /* the key comes with the row: one store call for a masked read */
    unsigned keys = cv_fake_calls("cv_store_tenant_key_get"), stores = cv_fake_calls("cv_store_*");
    ck_assert(cv_ok(cv_credentials_masked(app, &alice, id, &d)));
    json_decref(d);
    d = NULL;
    ck_assert_uint_eq(cv_fake_calls("cv_store_tenant_key_get"), keys);
    ck_assert_uint_eq(cv_fake_calls("cv_store_*") - stores, 2); /* the row with its key, and the audit event */
    cv_fake_fail("cv_hsm_gcm_decrypt", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, id, &d), CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_store_server_list", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_server_list(app, &alice, NULL, NULL, &d, &meta), CV_ERR_UNAVAILABLE, NULL);

    /* a refusal of the token, a flipped bit, a record moved to another row, garbage:
     * one answer, "decrypt_failed", whatever the cause */
    cv_fake_fail("cv_hsm_gcm_decrypt", CV_ERR_CRYPTO, 0);
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, id, &d), CV_ERR_CRYPTO, "Failed to decrypt credentials");
    ck_assert_str_eq(cv_error_code(), "decrypt_failed");
    char *rec = cv_fake_record(app, "acme", id);
    char *digit = strstr(rec, "\"encrypted\":\"") + strlen("\"encrypted\":\""), was = *digit;
    *digit = was == '0' ? '1' : '0';
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, id, &d), CV_ERR_CRYPTO, "Failed to decrypt credentials");
    ck_assert_str_eq(cv_error_code(), "decrypt_failed");
    *digit = was;
    json_decref(masked(&alice, id)); /* put back, it opens again */
    char *copy = strdup(cv_fake_record(app, "acme", other));
    char *mine = cv_fake_record(app, "acme", id);
    ck_assert_uint_eq(strlen(copy), strlen(mine));
    memcpy(mine, copy, strlen(copy)); /* the other server's valid record, on this row: its AAD differs */
    free(copy);
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, id, &d), CV_ERR_CRYPTO, "Failed to decrypt credentials");
    strcpy(cv_fake_record(app, "acme", other), "{}");
    cv_fake_expect_fail(cv_credentials_masked(app, &alice, other, &d), CV_ERR_CRYPTO, "Failed to decrypt credentials");
    ck_assert_ptr_null(d);

    /* an event that cannot be written fails the read: nothing is shown unaudited */
    cv_fake_fail("cv_store_audit_append", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_credentials_masked(app, &bob, theirs, &d), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(write_errors_store_nothing)
{
    char id[64];
    /* the token cannot seal: nothing stored, no event */
    cv_fake_fail("cv_hsm_gcm_encrypt", CV_ERR_UNAVAILABLE, 0);
    deploy_refused(&alice, "github", GITHUB_BODY, CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_store_tenant_key_current", CV_ERR_UNAVAILABLE, 0);
    deploy_refused(&alice, "github", GITHUB_BODY, CV_ERR_UNAVAILABLE, NULL);
    /* the row and its event are one store call: when it fails, neither is stored */
    cv_fake_fail("cv_store_server_insert", CV_ERR_UNAVAILABLE, 0);
    deploy_refused(&alice, "github", GITHUB_BODY, CV_ERR_UNAVAILABLE, NULL);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.deploy", NULL), 0);
    /* an id taken meanwhile (another instance in the same millisecond): a new id, once more */
    unsigned inserts = cv_fake_calls("cv_store_server_insert");
    cv_fake_fail("cv_store_server_insert", CV_ERR_CONFLICT, 0);
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    ck_assert_uint_eq(cv_fake_calls("cv_store_server_insert"), inserts + 2);
    ck_assert_uint_eq(cv_fake_server_count(app, "acme"), 1);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.deploy", "success"), 1);

    /* delete: a failure leaves the server; absent is "not found" without an event */
    cv_fake_fail("cv_store_server_delete", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_server_delete(app, &alice, id), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_uint_eq(cv_fake_server_count(app, "acme"), 1);
    cv_fake_expect_fail(cv_server_delete(app, &bob, id), CV_ERR_NOT_FOUND, "server not found");
    ck_assert_uint_eq(cv_fake_server_count(app, "acme"), 1);
    ck_assert(cv_ok(cv_server_delete(app, &alice, id)));
    ck_assert_uint_eq(cv_fake_server_count(app, "acme"), 0);
    cv_fake_expect_fail(cv_server_delete(app, &alice, id), CV_ERR_NOT_FOUND, "server not found");
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.delete", NULL), 1);
}
END_TEST

/* ---- updates ---- */

START_TEST(update_revisions_and_merges)
{
    char id[64];
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    json_t *d = NULL, *b = cv_fake_json("{\"env\":{\"GITHUB_TOKEN\":\"ghp_second_value_0123456789\"}}");
    /* If-Match is read before the store is asked */
    unsigned gets = cv_fake_calls("cv_store_server_get");
    const char *bad[] = {"abc", "\"0\"", "\"-1\"", "\"\"", "W/\"x\"", "\"12345678901234567890\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cv_fake_expect_fail(cv_credentials_update(app, &alice, id, b, 0, bad[i], &d), CV_ERR_INPUT, "If-Match");
    ck_assert_uint_eq(cv_fake_calls("cv_store_server_get"), gets);
    /* a stale revision is refused and changes nothing */
    cv_fake_expect_fail(cv_credentials_update(app, &alice, id, b, 0, "\"7\"", &d), CV_ERR_PRECONDITION, "revision 1");
    ck_assert_ptr_null(d);
    /* another writer got in between: without If-Match, read again and write */
    cv_fake_fail("cv_store_server_update", CV_ERR_PRECONDITION, 0);
    ck_assert(cv_ok(cv_credentials_update(app, &alice, id, b, 0, NULL, &d)));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "revision")), 2);
    json_decref(d);
    d = NULL;
    json_decref(b);
    /* a replace must still hold the template's required names */
    b = cv_fake_json("{\"env\":{\"GITHUB_ORG\":\"x\"}}");
    cv_fake_expect_fail(cv_credentials_update(app, &alice, id, b, 0, NULL, &d), CV_ERR_INPUT, "requires GITHUB_TOKEN");
    json_decref(b);
    /* merge: adds and replaces what is named, removes a null, keeps the rest */
    b = cv_fake_json("{\"env\":{\"GITHUB_ORG\":null,\"GITHUB_API_URL\":\"https://github.example/api\"}}");
    ck_assert(cv_ok(cv_credentials_update(app, &alice, id, b, 1, "\"2\"", &d)));
    json_decref(b);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "revision")), 3);
    json_decref(d);
    d = masked(&alice, id);
    json_t *c = json_object_get(d, "credentials");
    ck_assert_int_eq(json_object_size(c), 2);
    ck_assert_str_eq(json_string_value(json_object_get(c, "GITHUB_TOKEN")), "ghp_••••6789");
    ck_assert_ptr_nonnull(json_object_get(c, "GITHUB_API_URL"));
    json_decref(d);
    /* a merge that removes a required name is refused */
    b = cv_fake_json("{\"env\":{\"GITHUB_TOKEN\":null}}");
    d = NULL;
    cv_fake_expect_fail(cv_credentials_update(app, &alice, id, b, 1, NULL, &d), CV_ERR_INPUT, "requires GITHUB_TOKEN");
    json_decref(b);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.replace", "success"), 1);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.merge", "success"), 1);
    /* another tenant's server cannot be updated: not found */
    b = cv_fake_json("{\"env\":{\"GITHUB_TOKEN\":\"ghp_overwritten_0123456789\"}}");
    cv_fake_expect_fail(cv_credentials_update(app, &bob, id, b, 0, NULL, &d), CV_ERR_NOT_FOUND, "server not found");
    json_decref(b);
}
END_TEST

/* ---- listing and paging ---- */

START_TEST(list_paging_and_tenant_scope)
{
    char id[64];
    json_t *d = NULL;
    const char *bad[][2] = {{"0x10", NULL}, {"100000", NULL}, {"-1", NULL}, {"", NULL}, {NULL, "x"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cv_fake_expect_fail(cv_server_list(app, &auditor, bad[i][0], bad[i][1], &d, &meta), CV_ERR_INPUT, NULL);
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    for (int i = 0; i < 3; i++)
        deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    deploy(&bob, "github", GITHUB_BODY, id, sizeof(id));
    ck_assert(cv_ok(cv_server_list(app, &auditor, "2", "1", &d, &meta)));
    ck_assert_int_eq(json_array_size(d), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "total")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "limit")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "offset")), 1);
    json_decref(d);
    json_decref(meta);
    ck_assert(cv_ok(cv_server_list(app, &bob, NULL, NULL, &d, &meta)));
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "total")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "limit")), CV_LIST_DEFAULT_LIMIT);
    json_decref(d);
    json_decref(meta);
}
END_TEST

/* ---- keys at their limits ---- */

START_TEST(sealing_rotates_a_key_at_its_encryption_limit)
{
    ((struct cv_config *)app->cfg)->key_max_encryptions = 2;
    char ids[3][64];
    for (int i = 0; i < 3; i++)
        deploy(&alice, "github", GITHUB_BODY, ids[i], sizeof(ids[i]));
    ck_assert_ptr_nonnull(strstr(cv_fake_record(app, "acme", ids[1]), "\"kid\":\"acme/1\""));
    ck_assert_ptr_nonnull(strstr(cv_fake_record(app, "acme", ids[2]), "\"kid\":\"acme/2\""));
    ck_assert_uint_eq(cv_fake_audit_count(app, "tenant_key.auto_rotate", "success"), 1);
    /* every record still opens */
    for (int i = 0; i < 3; i++)
        json_decref(masked(&auditor, ids[i]));
    /* version 2 has one encryption: one more write, then it is due again; when
     * that rotation fails, so does the write, and nothing is stored */
    char id[64];
    deploy(&alice, "github", GITHUB_BODY, id, sizeof(id));
    ck_assert_ptr_nonnull(strstr(cv_fake_record(app, "acme", id), "\"kid\":\"acme/2\""));
    cv_fake_fail("cv_hsm_tenant_key_generate", CV_ERR_UNAVAILABLE, 0);
    deploy_refused(&alice, "github", GITHUB_BODY, CV_ERR_UNAVAILABLE, NULL);
    ck_assert_uint_eq(cv_fake_audit_count(app, "tenant_key.auto_rotate", "success"), 1);
}
END_TEST

/* The worker processes of one service make disjoint server ids: worker k of
 * n takes the milliseconds ≡ k mod n, so two workers deploying into one
 * tenant in the same millisecond never clash. */
START_TEST(workers_make_disjoint_server_ids)
{
    app->id_slot = 1;
    app->id_slots = 3;
    char ids[6][64];
    for (int i = 0; i < 6; i++) {
        deploy(&alice, "github", GITHUB_BODY, ids[i], sizeof(ids[i]));
        const char *digits = strrchr(ids[i], '-');
        ck_assert_ptr_nonnull(digits);
        long long ms = strtoll(digits + 1, NULL, 10);
        ck_assert_msg(ms % 3 == 1, "%s is not worker 1's of 3", ids[i]);
        for (int j = 0; j < i; j++) ck_assert_str_ne(ids[i], ids[j]);
    }
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "domain_credentials", .setup = setup, .teardown = teardown};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(roles_are_checked_before_anything_else, deploy_validation_order,
                                                deploy_field_checks, deploy_stores_only_ciphertext_and_names,
                                                masked_read_masks_every_value, validate_reads_names_and_never_decrypts,
                                                read_errors_map_to_their_categories, write_errors_store_nothing,
                                                update_revisions_and_merges, list_paging_and_tenant_scope,
                                                sealing_rotates_a_key_at_its_encryption_limit,
                                                workers_make_disjoint_server_ids));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
