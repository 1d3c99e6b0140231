/* Workload delivery (src/domain/workload.c) against the in-memory HSM and
 * store: full values for the workload token of that one server and for
 * nothing else, every answer audited (refusals too), no values without
 * their event, and names the loader obeys refused again at delivery. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_test_suite.h"
#include "domain/domain.h"
#include "domain/record_bind.h"
#include "domain/seal.h"
#include "domain/workload.h"
#include "fakes.h"

#define GH_TOKEN "ghp_workload_value_0123456789abcdef"

static struct cv_app *app;
static struct cv_principal admin, alice, auditor, wl, wl_other, wl_beta;
static char server[64], other[64];

static void deploy(const char *text, char *id, size_t n)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    ck_assert_msg(cv_ok(cv_credentials_deploy(app, &alice, "github", b, &d)), "deploy: %s", cv_error_message());
    snprintf(id, n, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(b);
    json_decref(d);
}

static void setup(void)
{
    app = cv_fake_app_new();
    admin = cv_fake_principal(CV_ROLE_ADMIN, NULL, NULL);
    alice = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "acme", NULL);
    auditor = cv_fake_principal(CV_ROLE_AUDITOR, "acme", NULL);
    cv_fake_tenant(app, "acme");
    cv_fake_tenant(app, "beta");
    deploy("{\"env\":{\"GITHUB_TOKEN\":\"" GH_TOKEN "\",\"GITHUB_ORG\":\"acme-org\"}}", server, sizeof(server));
    deploy("{\"env\":{\"GITHUB_TOKEN\":\"ghp_the_other_server_0123456789\"}}", other, sizeof(other));
    wl = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", server);
    wl_other = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", other);
    wl_beta = cv_fake_principal(CV_ROLE_WORKLOAD, "beta", server); /* the same id, in another tenant */
    cv_fake_calls_clear();
}

static void teardown(void)
{
    cv_fake_app_free(app);
    app = NULL;
}

/* A refusal: the error, no data, no value in the message, and a "denied" event. */
static void refused(const struct cv_principal *p, const char *id, cv_err want)
{
    json_t *d = (json_t *)1;
    unsigned denied = cv_fake_audit_count(app, "credentials.read_full", "denied");
    cv_fake_expect_fail(cv_workload_env(app, p, id, &d), want, NULL);
    ck_assert_ptr_null(d);
    ck_assert_ptr_null(strstr(cv_error_message(), GH_TOKEN));
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.read_full", "denied"), denied + 1);
}

START_TEST(only_the_servers_own_workload_token_reads_it)
{
    /* other roles: forbidden, before any lookup */
    refused(&admin, server, CV_ERR_FORBIDDEN);
    refused(&alice, server, CV_ERR_FORBIDDEN);
    refused(&auditor, server, CV_ERR_FORBIDDEN);
    ck_assert_uint_eq(cv_fake_calls("cv_store_server_get*"), 0);
    /* another server of the tenant, a server that does not exist, the same id in
     * another tenant: one answer, so ids cannot be probed */
    refused(&wl_other, server, CV_ERR_NOT_FOUND);
    char first[256];
    snprintf(first, sizeof(first), "%s", cv_error_message());
    refused(&wl, "github-0000000000000", CV_ERR_NOT_FOUND);
    ck_assert_str_eq(cv_error_message(), first);
    refused(&wl_beta, server, CV_ERR_NOT_FOUND);
    ck_assert_str_eq(cv_error_message(), first);
    struct cv_principal unbound = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", NULL);
    refused(&unbound, server, CV_ERR_NOT_FOUND);
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_gcm_decrypt"), 0);

    json_t *d = NULL;
    ck_assert(cv_ok(cv_workload_env(app, &wl, server, &d)));
    ck_assert_str_eq(json_string_value(json_object_get(d, "serverId")), server);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "revision")), 1);
    json_t *env = json_object_get(d, "env");
    ck_assert_int_eq(json_object_size(env), 2);
    ck_assert_str_eq(json_string_value(json_object_get(env, "GITHUB_TOKEN")), GH_TOKEN);
    ck_assert_str_eq(json_string_value(json_object_get(env, "GITHUB_ORG")), "acme-org");
    json_decref(d);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.read_full", "success"), 1);
}
END_TEST

START_TEST(no_values_without_their_event)
{
    json_t *d = NULL;
    /* the event of a success cannot be written: no values */
    cv_fake_fail("cv_store_audit_append", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_workload_env(app, &wl, server, &d), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_ptr_null(d);
    /* the event of a refusal cannot be written: that failure is the answer */
    cv_fake_fail("cv_store_audit_append", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_workload_env(app, &alice, server, &d), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.read_full", NULL), 0);
    /* the store or the token away, a record that does not open */
    cv_fake_fail("cv_store_server_get_keyed", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_workload_env(app, &wl, server, &d), CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_hsm_gcm_decrypt", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_workload_env(app, &wl, server, &d), CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_hsm_gcm_decrypt", CV_ERR_CRYPTO, 0);
    cv_fake_expect_fail(cv_workload_env(app, &wl, server, &d), CV_ERR_CRYPTO, "Failed to decrypt credentials");
    ck_assert_str_eq(cv_error_code(), "decrypt_failed");
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(cv_fake_audit_count(app, "credentials.read_full", "success"), 0);
}
END_TEST

START_TEST(loader_names_are_refused_at_delivery_too)
{
    /* a map deploy would refuse, written by another path (an older catalog, an import) */
    json_t *env = cv_fake_json("{\"GITHUB_TOKEN\":\"" GH_TOKEN "\",\"LD_PRELOAD\":\"/tmp/evil.so\"}");
    struct cv_server_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.tenant_id, sizeof(row.tenant_id), "acme");
    snprintf(row.server_id, sizeof(row.server_id), "github-planted");
    snprintf(row.template_id, sizeof(row.template_id), "github");
    snprintf(row.server_name, sizeof(row.server_name), "planted");
    ck_assert(cv_ok(cv_seal_env(app, "acme", row.server_id, 1, env, &row.encrypted_env, &row.key_version)));
    json_decref(env);
    row.credential_names = strdup("[\"GITHUB_TOKEN\",\"LD_PRELOAD\"]");
    row.configured_integrations = strdup("[]");
    row.revision = 1;
    ck_assert(cv_ok(cv_record_binding_make(app->hsm, &row)));
    ck_assert(cv_ok(cv_store_server_insert(app->store, &row, NULL)));
    cv_server_row_free(&row);
    struct cv_principal p = cv_fake_principal(CV_ROLE_WORKLOAD, "acme", "github-planted");
    refused(&p, "github-planted", CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "LD_PRELOAD"));
    ck_assert_ptr_null(strstr(cv_error_message(), "evil"));
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "domain_workload", .setup = setup, .teardown = teardown};
    Suite *s =
        cv_t_suite_new(&spec, CV_T_TESTS(only_the_servers_own_workload_token_reads_it, no_values_without_their_event,
                                         loader_names_are_refused_at_delivery_too));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
