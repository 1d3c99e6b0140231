/* Tokens and bearer authentication (src/domain/tokens.c, auth.c) against
 * the in-memory store: who may mint what, the order of the checks, a token
 * shown once and stored as a hash, one answer for every refused bearer, and
 * an outage that is not mistaken for a bad token. */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "cv_test_suite.h"
#include "domain/domain.h"
#include "fakes.h"

#define AUTH_FAILED "missing or invalid bearer token"

static struct cv_app *app;
static struct cv_principal admin, alice, auditor, workload, bob;
static char server[64]; /* a server of acme, for workload tokens */

static void setup(void)
{
    app = cv_fake_app_new();
    admin = cv_fake_principal(CV_ROLE_ADMIN, NULL, NULL);
    alice = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "acme", NULL);
    auditor = cv_fake_principal(CV_ROLE_AUDITOR, "acme", NULL);
    workload = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", "github-1");
    bob = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "beta", NULL);
    cv_fake_tenant(app, "acme");
    cv_fake_tenant(app, "beta");
    json_t *b = cv_fake_json("{\"env\":{\"GITHUB_TOKEN\":\"ghp_0123456789abcdef\"}}"), *d = NULL;
    ck_assert(cv_ok(cv_credentials_deploy(app, &alice, "github", b, &d)));
    snprintf(server, sizeof(server), "%s", json_string_value(json_object_get(d, "id")));
    json_decref(b);
    json_decref(d);
    cv_fake_calls_clear();
}

static void teardown(void)
{
    cv_fake_app_free(app);
    app = NULL;
}

static void mint_refused(const struct cv_principal *p, const char *text, cv_err want, const char *fragment)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    cv_fake_expect_fail(cv_token_mint(app, p, b, &d), want, fragment);
    ck_assert_ptr_null(d);
    json_decref(b);
}

/* Mints `text` as `p`; the token into tok, its id into id (either may be NULL). */
static void mint(const struct cv_principal *p, const char *text, char *tok, char *id)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    ck_assert_msg(cv_ok(cv_token_mint(app, p, b, &d)), "mint %s: %s", text, cv_error_message());
    if (tok) snprintf(tok, 160, "%s", json_string_value(json_object_get(d, "token")));
    if (id) snprintf(id, CV_STORE_UUID_BYTES + 1, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(b);
    json_decref(d);
}

static void bearer_refused(const char *header)
{
    struct cv_principal p;
    memset(&p, 0x5a, sizeof(p));
    cv_fake_expect_fail(cv_auth_bearer(app, header, &p), CV_ERR_AUTH, NULL);
    ck_assert_str_eq(cv_error_message(), AUTH_FAILED); /* one answer, whatever was wrong */
}

static struct cv_principal bearer(const char *token)
{
    char header[200];
    snprintf(header, sizeof(header), "Bearer %s", token);
    struct cv_principal p;
    ck_assert_msg(cv_ok(cv_auth_bearer(app, header, &p)), "bearer: %s", cv_error_message());
    return p;
}

START_TEST(who_may_mint_what)
{
    /* auditors and workloads mint nothing, whatever the body */
    mint_refused(&auditor, "{\"x\":1}", CV_ERR_FORBIDDEN, NULL);
    mint_refused(&workload, "{\"name\":\"w\",\"role\":\"workload\",\"tenantId\":\"acme\"}", CV_ERR_FORBIDDEN, NULL);
    /* a tenant-admin: auditors and workloads of its own tenant only */
    mint_refused(&alice, "{\"name\":\"x\",\"role\":\"admin\"}", CV_ERR_FORBIDDEN, "only an admin");
    mint_refused(&alice, "{\"name\":\"x\",\"role\":\"tenant-admin\",\"tenantId\":\"acme\"}", CV_ERR_FORBIDDEN, NULL);
    mint_refused(&alice, "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"beta\"}", CV_ERR_FORBIDDEN, "own tenant");
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    char tok[160];
    mint(&alice, "{\"name\":\"audit-2\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", tok, NULL);
    struct cv_principal p = bearer(tok);
    ck_assert_int_eq(p.role, CV_ROLE_AUDITOR);
    ck_assert_str_eq(p.tenant_id, "acme");
    ck_assert_str_eq(p.name, "audit-2");
    /* an admin mints any role; admin tokens belong to no tenant */
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"admin\",\"tenantId\":\"acme\"}", CV_ERR_INPUT, "no tenant");
    mint(&admin, "{\"name\":\"root-2\",\"role\":\"admin\"}", tok, NULL);
    p = bearer(tok);
    ck_assert_int_eq(p.role, CV_ROLE_ADMIN);
    ck_assert_str_eq(p.tenant_id, "");
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.create", "success"), 2);
}
END_TEST

START_TEST(mint_checks_in_order)
{
    /* unknown fields first, then name, role, the numbers, then role rules */
    mint_refused(&admin, "{\"role\":\"root\",\"unknown\":1}", CV_ERR_INPUT, "unknown field 'unknown'");
    mint_refused(&admin, "{\"role\":\"root\"}", CV_ERR_INPUT, "name is required");
    mint_refused(&admin, "{\"name\":\"x\"}", CV_ERR_INPUT, "role is required");
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"root\",\"expiresInDays\":\"7\"}", CV_ERR_INPUT, "role must be");
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"auditor\",\"expiresInDays\":\"7\"}", CV_ERR_INPUT,
                 "expiresInDays");
    const char *refused[] = {
        "{\"name\":\"\",\"role\":\"auditor\",\"tenantId\":\"acme\"}",
        "{\"name\":7,\"role\":\"auditor\",\"tenantId\":\"acme\"}",
        "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":0}",
        "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":3651}",
        "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":1.5}",
        "{\"name\":\"x\",\"role\":\"auditor\"}",
        "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"Bad_Id\"}",
        "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"acme\"}",
        "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"serverId\":\"github-1\"}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        mint_refused(&admin, refused[i], CV_ERR_INPUT, NULL);
    char name[CV_STORE_PRINCIPAL_MAX_BYTES + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    json_t *b = json_pack("{s:s, s:s}", "name", name, "role", "admin"), *d = NULL;
    cv_fake_expect_fail(cv_token_mint(app, &admin, b, &d), CV_ERR_INPUT, "name must be");
    json_decref(b);
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
}
END_TEST

START_TEST(mint_looks_up_tenant_and_server)
{
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"ghost\"}", CV_ERR_NOT_FOUND,
                 "tenant not found");
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"acme\",\"serverId\":\"github-0\"}",
                 CV_ERR_NOT_FOUND, "server not found");
    /* acme's server is not beta's */
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"beta\",\"serverId\":\"%s\"}",
             server);
    mint_refused(&bob, body, CV_ERR_NOT_FOUND, "server not found");
    /* an outage is not "not found" */
    cv_fake_fail("cv_store_tenant_get", CV_ERR_UNAVAILABLE, 0);
    mint_refused(&admin, "{\"name\":\"x\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_store_server_get", CV_ERR_UNAVAILABLE, 0);
    snprintf(body, sizeof(body), "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"acme\",\"serverId\":\"%s\"}",
             server);
    mint_refused(&alice, body, CV_ERR_UNAVAILABLE, NULL);
    /* the token and its event are one store call: when it fails, no token and no event */
    cv_fake_fail("cv_store_token_insert", CV_ERR_UNAVAILABLE, 0);
    mint_refused(&alice, body, CV_ERR_UNAVAILABLE, NULL);
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.create", NULL), 0);
    char tok[160];
    mint(&alice, body, tok, NULL);
    struct cv_principal p = bearer(tok);
    ck_assert_int_eq(p.role, CV_ROLE_WORKLOAD);
    ck_assert_str_eq(p.server_id, server);
}
END_TEST

START_TEST(a_token_is_shown_once_and_stored_as_a_hash)
{
    json_t *b = cv_fake_json("{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"acme\",\"expiresInDays\":7}"),
           *d = NULL;
    ck_assert(cv_ok(cv_token_mint(app, &admin, b, &d)));
    json_decref(b);
    const char *tok = json_string_value(json_object_get(d, "token"));
    ck_assert_uint_eq(strlen(tok), strlen(CV_TOKEN_PREFIX) + 2 * CV_TOKEN_RANDOM_BYTES);
    ck_assert(strncmp(tok, CV_TOKEN_PREFIX, strlen(CV_TOKEN_PREFIX)) == 0);
    ck_assert(json_is_string(json_object_get(d, "expiresAt")));
    const char *id = json_string_value(json_object_get(d, "id"));
    ck_assert_uint_eq(strlen(id), CV_STORE_UUID_BYTES);
    /* the store was given the hash and the powers, nothing from which the token follows */
    uint8_t hash[CV_SHA256_BYTES];
    cv_crypto_sha256(tok, strlen(tok), hash);
    struct cv_token_row row;
    ck_assert(cv_ok(cv_store_token_lookup(app->store, hash, &row)));
    ck_assert_str_eq(row.id, id);
    ck_assert_str_eq(row.role, "auditor");
    ck_assert_str_eq(row.created_by, admin.name);
    ck_assert(row.expires_at_ms > cv_time_now_ms() + 6 * 86400000LL);
    ck_assert(row.expires_at_ms < cv_time_now_ms() + 8 * 86400000LL);
    ck_assert_ptr_null(memmem(&row, sizeof(row), tok + strlen(CV_TOKEN_PREFIX), 16));
    /* two mints never give the same token */
    char again[160];
    mint(&admin, "{\"name\":\"ci-2\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", again, NULL);
    ck_assert_str_ne(again, tok);
    json_decref(d);
}
END_TEST

START_TEST(every_refused_bearer_gets_one_answer)
{
    char tok[160], id[CV_STORE_UUID_BYTES + 1];
    mint(&alice, "{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", tok, id);
    char header[400];
    bearer_refused(NULL);
    bearer_refused("");
    bearer_refused("Basic YWRtaW46YWRtaW4=");
    bearer_refused("Bearer");
    bearer_refused("Bearer cvt_");
    bearer_refused("Bearer cvt_0000000000000000000000000000000000000000000000000000000000000000");
    snprintf(header, sizeof(header), "bearer %s", tok); /* the scheme is case-sensitive here */
    bearer_refused(header);
    snprintf(header, sizeof(header), "Bearer %s", tok + strlen(CV_TOKEN_PREFIX)); /* no prefix */
    bearer_refused(header);
    snprintf(header, sizeof(header), "Bearer %s%s", tok, tok); /* too long */
    bearer_refused(header);
    /* lookups stop at the cheap checks */
    ck_assert_uint_eq(cv_fake_calls("cv_store_token_lookup"), 1);
    /* revoked, expired, or a role the service does not know: the same answer */
    ck_assert(cv_ok(cv_token_revoke(app, &alice, id)));
    snprintf(header, sizeof(header), "Bearer %s", tok);
    bearer_refused(header);
    const char *stale = "cvt_1111111111111111111111111111111111111111111111111111111111111111";
    const char *odd = "cvt_2222222222222222222222222222222222222222222222222222222222222222";
    struct cv_token_row row;
    uint8_t hash[CV_SHA256_BYTES];
    memset(&row, 0, sizeof(row));
    snprintf(row.name, sizeof(row.name), "old");
    snprintf(row.role, sizeof(row.role), "auditor");
    snprintf(row.tenant_id, sizeof(row.tenant_id), "acme");
    row.expires_at_ms = cv_time_now_ms() - 1000;
    cv_crypto_sha256(stale, strlen(stale), hash);
    ck_assert(cv_ok(cv_store_token_insert(app->store, &row, hash, NULL)));
    memset(row.id, 0, sizeof(row.id));
    snprintf(row.role, sizeof(row.role), "root");
    row.expires_at_ms = 0;
    cv_crypto_sha256(odd, strlen(odd), hash);
    ck_assert(cv_ok(cv_store_token_insert(app->store, &row, hash, NULL)));
    snprintf(header, sizeof(header), "Bearer %s", stale);
    bearer_refused(header);
    snprintf(header, sizeof(header), "Bearer %s", odd);
    bearer_refused(header);
    /* but the database away is an outage, not a bad token */
    mint(&alice, "{\"name\":\"ci-2\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", tok, NULL);
    cv_fake_fail("cv_store_token_lookup", CV_ERR_UNAVAILABLE, 0);
    snprintf(header, sizeof(header), "Bearer %s", tok);
    struct cv_principal p;
    cv_fake_expect_fail(cv_auth_bearer(app, header, &p), CV_ERR_UNAVAILABLE, NULL);
    p = bearer(tok);
    ck_assert_str_eq(p.name, "ci-2");
}
END_TEST

START_TEST(names_are_printable_and_unique_per_tenant_and_role)
{
    mint_refused(&admin, "{\"name\":\"a\\u0007b\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_INPUT,
                 "no control characters");
    mint_refused(&admin, "{\"name\":\"a\\nb\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_INPUT,
                 "no control characters");
    mint_refused(&admin, "{\"name\":\"a\\u0085b\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_INPUT,
                 "no control characters");
    mint_refused(&admin, "{\"name\":\"a\\u007fb\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_INPUT,
                 "no control characters");
    mint_refused(&admin, "{\"name\":\"   \",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_INPUT, "blank");
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    mint(&admin, "{\"name\":\"Zoë ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", NULL, NULL);
    mint_refused(&admin, "{\"name\":\"Zoë ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", CV_ERR_CONFLICT,
                 "exists already");
    /* the same name in another role or tenant is another token */
    mint(&admin, "{\"name\":\"Zoë ci\",\"role\":\"tenant-admin\",\"tenantId\":\"acme\"}", NULL, NULL);
    mint(&admin, "{\"name\":\"Zoë ci\",\"role\":\"auditor\",\"tenantId\":\"beta\"}", NULL, NULL);
}
END_TEST

/* A row the service did not write, or whose powers were edited, does not
 * authenticate: the verifier is made by the HSM over hash and powers. */
START_TEST(a_row_not_written_by_the_service_does_not_authenticate)
{
    const char *chosen = "cvt_3333333333333333333333333333333333333333333333333333333333333333";
    struct cv_token_row row;
    uint8_t hash[CV_SHA256_BYTES];
    memset(&row, 0, sizeof(row));
    snprintf(row.id, sizeof(row.id), "00000000-0000-4000-8000-00000000f0f0");
    snprintf(row.name, sizeof(row.name), "forged");
    snprintf(row.role, sizeof(row.role), "admin");
    cv_crypto_sha256(chosen, strlen(chosen), hash);
    /* a verifier of the attacker's making: anything but the HSM's */
    memset(row.verifier, 0xab, sizeof(row.verifier));
    row.has_verifier = 1;
    ck_assert(cv_ok(cv_store_token_insert(app->store, &row, hash, NULL)));
    char header[200];
    snprintf(header, sizeof(header), "Bearer %s", chosen);
    bearer_refused(header);
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.verifier_mismatch", "denied"), 1);
    /* a real token whose row is given more power (another role) stops working */
    char tok[160], id[CV_STORE_UUID_BYTES + 1];
    mint(&alice, "{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", tok, id);
    (void)bearer(tok);
    cv_crypto_sha256(tok, strlen(tok), hash);
    ck_assert(cv_ok(cv_store_token_lookup(app->store, hash, &row)));
    ck_assert(cv_ok(cv_fake_token_set_role(app->store, id, "tenant-admin")));
    snprintf(header, sizeof(header), "Bearer %s", tok);
    bearer_refused(header);
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.verifier_mismatch", "denied"), 2);
}
END_TEST

START_TEST(revoke_in_scope)
{
    char tok[160], id[CV_STORE_UUID_BYTES + 1], bobs[CV_STORE_UUID_BYTES + 1];
    mint(&alice, "{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}", tok, id);
    mint(&bob, "{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"beta\"}", NULL, bobs);
    cv_fake_calls_clear();
    cv_fake_expect_fail(cv_token_revoke(app, &auditor, id), CV_ERR_FORBIDDEN, NULL);
    cv_fake_expect_fail(cv_token_revoke(app, &workload, id), CV_ERR_FORBIDDEN, NULL);
    cv_fake_expect_fail(cv_token_revoke(app, &alice, "not-a-uuid"), CV_ERR_NOT_FOUND, "token not found");
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    /* another tenant's token is "not found", and keeps working */
    cv_fake_expect_fail(cv_token_revoke(app, &alice, bobs), CV_ERR_NOT_FOUND, "token not found");
    cv_fake_expect_fail(cv_token_revoke(app, &bob, id), CV_ERR_NOT_FOUND, "token not found");
    bearer(tok);
    cv_fake_fail("cv_store_token_revoke_roles", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_token_revoke(app, &alice, id), CV_ERR_UNAVAILABLE, NULL);
    bearer(tok);
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.revoke", NULL), 0);
    /* an admin revokes any tenant's */
    ck_assert(cv_ok(cv_token_revoke(app, &admin, id)));
    ck_assert(cv_ok(cv_token_revoke(app, &bob, bobs)));
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.revoke", "success"), 2);
    /* a peer tenant-admin is out of reach: 403, unchanged, the attempt audited as denied */
    char peer_tok[160], peer[CV_STORE_UUID_BYTES + 1];
    mint(&admin, "{\"name\":\"peer\",\"role\":\"tenant-admin\",\"tenantId\":\"acme\"}", peer_tok, peer);
    cv_fake_expect_fail(cv_token_revoke(app, &alice, peer), CV_ERR_FORBIDDEN, "auditor and workload");
    ck_assert_str_eq(cv_error_code(), "token_role_forbidden");
    bearer(peer_tok);
    ck_assert_uint_eq(cv_fake_audit_count(app, "token.revoke", "denied"), 1);
    ck_assert(cv_ok(cv_token_revoke(app, &admin, peer)));
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "domain_tokens", .setup = setup, .teardown = teardown};
    Suite *s =
        cv_t_suite_new(&spec, CV_T_TESTS(who_may_mint_what, mint_checks_in_order, mint_looks_up_tenant_and_server,
                                         a_token_is_shown_once_and_stored_as_a_hash,
                                         every_refused_bearer_gets_one_answer, names_are_printable_and_unique_per_tenant_and_role,
                                            a_row_not_written_by_the_service_does_not_authenticate, revoke_in_scope));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
