/* The tenant use cases (src/domain/tenants.c) against the in-memory HSM and
 * store: admin only, the order of the checks, what a tenant document shows
 * (versions and states, never key material), and how failures map. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cv_test_suite.h"
#include "domain/domain.h"
#include "fakes.h"

static struct cv_app *app;
static struct cv_principal admin, alice, auditor, workload, bob;

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
    cv_fake_calls_clear();
}

static void teardown(void)
{
    cv_fake_app_free(app);
    app = NULL;
}

/* cv_tenant_create of `text` as `p` fails with `want`; nothing is returned. */
static void create_refused(const struct cv_principal *p, const char *text, cv_err want, const char *fragment)
{
    json_t *b = cv_fake_json(text), *d = NULL;
    cv_fake_expect_fail(cv_tenant_create(app, p, b, &d), want, fragment);
    ck_assert_ptr_null(d);
    json_decref(b);
}

START_TEST(only_an_admin_creates_and_lists)
{
    const struct cv_principal *others[] = {&alice, &auditor, &workload};
    json_t *d = NULL;
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        create_refused(others[i], "{\"id\":\"mine\"}", CV_ERR_FORBIDDEN, "admin");
        create_refused(others[i], "{\"id\":42,\"x\":1}", CV_ERR_FORBIDDEN, NULL); /* the role before the body */
        cv_fake_expect_fail(cv_tenant_list(app, others[i], NULL, NULL, &d), CV_ERR_FORBIDDEN, NULL);
    }
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_*"), 0);
}
END_TEST

START_TEST(create_checks_in_order)
{
    create_refused(&admin, "{}", CV_ERR_INPUT, "id must be a string");
    create_refused(&admin, "{\"id\":42,\"name\":7}", CV_ERR_INPUT, "id must be a string");
    create_refused(&admin, "{\"id\":\"ok\",\"name\":7}", CV_ERR_INPUT, "name must be a string");
    create_refused(&admin, "{\"id\":\"Bad_Id\",\"extra\":1}", CV_ERR_INPUT, "id must be");
    create_refused(&admin, "{\"id\":\"-leading-dash\"}", CV_ERR_INPUT, "id must be");
    create_refused(&admin, "{\"id\":\"ok\",\"name\":\"\"}", CV_ERR_INPUT, "name must be");
    create_refused(&admin, "{\"id\":\"ok\",\"name\":\"a\\u0000b\"}", CV_ERR_INPUT, "name must be");
    create_refused(&admin, "{\"id\":\"ok\",\"extra\":1}", CV_ERR_INPUT, "unknown field 'extra'");
    char long_id[80];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    json_t *b = json_pack("{s:s}", "id", long_id), *d = NULL;
    cv_fake_expect_fail(cv_tenant_create(app, &admin, b, &d), CV_ERR_INPUT, "id must be");
    json_decref(b);
    /* none of it made a key or touched the store */
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    ck_assert_uint_eq(cv_fake_calls("cv_hsm_*"), 0);
    long_id[64] = '\0'; /* 64 is the limit */
    b = json_pack("{s:s}", "id", long_id);
    ck_assert(cv_ok(cv_tenant_create(app, &admin, b, &d)));
    json_decref(b);
    json_decref(d);
}
END_TEST

START_TEST(create_failures_leave_no_tenant)
{
    json_t *d = NULL;
    /* an id taken: its own code */
    create_refused(&admin, "{\"id\":\"acme\"}", CV_ERR_CONFLICT, "exists");
    ck_assert_str_eq(cv_error_code(), "tenant_exists");
    /* the token cannot make the key, or the row and its event cannot be written */
    const char *fns[] = {"cv_hsm_tenant_key_generate", "cv_store_tenant_create"};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        cv_fake_fail(fns[i], CV_ERR_UNAVAILABLE, 0);
        create_refused(&admin, "{\"id\":\"gamma\"}", CV_ERR_UNAVAILABLE, NULL);
        cv_fake_expect_fail(cv_tenant_get(app, &admin, "gamma", &d), CV_ERR_NOT_FOUND, "tenant not found");
    }
    ck_assert_uint_eq(cv_fake_audit_count(app, "tenant.create", NULL), 2); /* acme and beta, from setup */
    /* and then it works, with its event */
    json_t *b = cv_fake_json("{\"id\":\"gamma\",\"name\":\"Gamma Inc\"}");
    ck_assert(cv_ok(cv_tenant_create(app, &admin, b, &d)));
    json_decref(b);
    ck_assert_str_eq(json_string_value(json_object_get(d, "id")), "gamma");
    ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "Gamma Inc");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "currentKeyVersion")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "minDecryptVersion")), 1);
    json_decref(d);
    ck_assert_uint_eq(cv_fake_audit_count(app, "tenant.create", "success"), 3);
}
END_TEST

START_TEST(get_shows_versions_never_keys)
{
    json_t *d = NULL;
    /* another tenant's looks like one that does not exist; a workload reads none */
    cv_fake_expect_fail(cv_tenant_get(app, &alice, "beta", &d), CV_ERR_NOT_FOUND, "tenant not found");
    char theirs[256];
    snprintf(theirs, sizeof(theirs), "%s", cv_error_message());
    cv_fake_expect_fail(cv_tenant_get(app, &admin, "nobody", &d), CV_ERR_NOT_FOUND, "tenant not found");
    ck_assert_str_eq(cv_error_message(), theirs);
    cv_fake_expect_fail(cv_tenant_get(app, &workload, "acme", &d), CV_ERR_FORBIDDEN, NULL);
    ck_assert_ptr_null(d);
    /* the database away */
    cv_fake_fail("cv_store_tenant_get", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_tenant_get(app, &admin, "acme", &d), CV_ERR_UNAVAILABLE, NULL);
    cv_fake_fail("cv_store_tenant_key_list", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_tenant_get(app, &auditor, "acme", &d), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_ptr_null(d);

    const struct cv_principal *readers[] = {&admin, &alice, &auditor};
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        ck_assert(cv_ok(cv_tenant_get(app, readers[i], "acme", &d)));
        json_t *keys = json_object_get(d, "keys");
        ck_assert_int_eq(json_array_size(keys), 1);
        json_t *k = json_array_get(keys, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(k, "version")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(k, "state")), "active");
        ck_assert_int_eq(json_integer_value(json_object_get(k, "masterVersion")), 1);
        ck_assert_int_eq(json_object_size(k), 5); /* version, state, masterVersion, createdAt, encryptions */
        char *text = json_dumps(d, 0);
        ck_assert_ptr_null(strstr(text, "wrapped"));
        ck_assert_ptr_null(strstr(text, "binding"));
        cv_json_free(text);
        json_decref(d);
        d = NULL;
    }
}
END_TEST

START_TEST(list_pages)
{
    json_t *d = NULL;
    cv_fake_expect_fail(cv_tenant_list(app, &admin, "201", NULL, &d), CV_ERR_INPUT, "limit");
    cv_fake_expect_fail(cv_tenant_list(app, &admin, NULL, "-3", &d), CV_ERR_INPUT, "offset");
    ck_assert_uint_eq(cv_fake_calls("cv_store_*"), 0);
    cv_fake_fail("cv_store_tenant_list", CV_ERR_UNAVAILABLE, 0);
    cv_fake_expect_fail(cv_tenant_list(app, &admin, NULL, NULL, &d), CV_ERR_UNAVAILABLE, NULL);
    ck_assert_ptr_null(d);
    ck_assert(cv_ok(cv_tenant_list(app, &admin, "1", "1", &d)));
    ck_assert_int_eq(json_integer_value(json_object_get(d, "total")), 2);
    json_t *list = json_object_get(d, "tenants");
    ck_assert_int_eq(json_array_size(list), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")), "beta");
    json_decref(d);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "domain_tenants", .setup = setup, .teardown = teardown};
    Suite *s =
        cv_t_suite_new(&spec, CV_T_TESTS(only_an_admin_creates_and_lists, create_checks_in_order,
                                         create_failures_leave_no_tenant, get_shows_versions_never_keys, list_pages));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
