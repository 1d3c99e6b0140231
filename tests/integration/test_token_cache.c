/* Two `credvault serve` processes on one database and one token folder, and
 * the token cache of each: a token that instance B has cached stops working
 * on B within 1 s of its revocation through A, and of its tenant's
 * deletion through A; and B stops serving from its cache as soon as its
 * LISTEN connection is lost (a revocation it could not hear is then found
 * in the database). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/json_alloc.h"
#include "test_lifecycle_fixture.h"

#define PROPAGATION_MS 1000 /* the promise: every instance within 1 s */

static struct cv_test_service a, b;
static struct cv_test_client *ca, *cb;
static const char *admin;
static const struct lc_pair pair = {&a, &b, &ca, &cb, &admin};

/* A tenant with one server, and an auditor token that B has just used (and
 * so cached). */
static void setup_tenant(const char *tenant, char *auditor, size_t n, char *path, size_t pn)
{
    char owner[160], id[160], name[96];
    cv_t_tenant_create(ca, admin, tenant);
    snprintf(name, sizeof(name), "owner@%s", tenant);
    cv_t_token_mint(ca, admin, name, "tenant-admin", tenant, NULL, owner, sizeof(owner));
    snprintf(name, sizeof(name), "auditor@%s", tenant);
    cv_t_token_mint(ca, owner, name, "auditor", tenant, NULL, auditor, n);
    ck_assert_int_eq(lc_deploy(ca, owner, "ghp_token_cache_0123456789abcdef", id, sizeof(id)), 0);
    snprintf(path, pn, "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cb, "GET", path, auditor, NULL, 200, NULL);
    cv_t_expect_call(cb, "GET", path, auditor, NULL, 200, NULL);
}

static void token_id(const char *name, char *out, size_t n)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT id FROM api_tokens WHERE name = '%s'", name);
    char *id = cv_t_psql(sql);
    ck_assert_msg(strlen(id) == 36, "no token named %s: %s", name, id);
    snprintf(out, n, "%s", id);
    free(id);
}

START_TEST(a_revoked_token_stops_working_on_a_second_instance_within_1s)
{
    char tok[160], path[256], id[64], del[128];
    setup_tenant("revoke", tok, sizeof(tok), path, sizeof(path));
    token_id("auditor@revoke", id, sizeof(id));
    snprintf(del, sizeof(del), "/api/tokens/%s", id);
    cv_t_expect_call(ca, "DELETE", del, admin, NULL, 200, NULL);
    long took = cv_t_expect_status_within(cb, "GET", path, tok, 200, 401, PROPAGATION_MS);
    fprintf(stderr, "revocation reached the other instance in %ld ms\n", took);
    ck_assert_int_le(took, PROPAGATION_MS);
    cv_t_expect_call(ca, "GET", path, tok, NULL, 401, "unauthorized");
}
END_TEST

START_TEST(a_deleted_tenants_token_stops_working_on_a_second_instance_within_1s)
{
    char tok[160], path[256];
    setup_tenant("shred", tok, sizeof(tok), path, sizeof(path));
    cv_t_expect_call(ca, "DELETE", "/api/tenants/shred?confirm=shred", admin, NULL, 200, NULL);
    /* 404 may come first: the row is gone while B still knows the token */
    long long start = lc_now_ms();
    for (;;) {
        struct cv_test_response r = cv_t_request(cb, "GET", path, tok, NULL);
        long got = r.status;
        cv_test_response_free(&r);
        if (got == 401) break;
        ck_assert_msg(got == 200 || got == 404, "answered %ld before 401", got);
        ck_assert_msg(lc_now_ms() - start < PROPAGATION_MS, "the deleted tenant's token still works on B (%ld)", got);
        lc_sleep_ms(10);
    }
    fprintf(stderr, "tenant deletion reached the other instance in %lld ms\n", lc_now_ms() - start);
}
END_TEST

START_TEST(a_lost_listener_stops_the_cache)
{
    char tok[160], path[256];
    setup_tenant("deaf", tok, sizeof(tok), path, sizeof(path));
    /* revoked with the triggers off: no key event, only the row says so. B
     * answers from its cache (which shows it has one), A from the database. */
    free(cv_t_psql("SET session_replication_role = replica; "
                   "UPDATE api_tokens SET revoked_at = now() WHERE name = 'auditor@deaf'"));
    cv_t_expect_call(ca, "GET", path, tok, NULL, 401, "unauthorized");
    cv_t_expect_call(cb, "GET", path, tok, NULL, 200, NULL);
    /* with the LISTEN connections gone, a revocation could be missed: B stops
     * serving from its cache at once, and finds the row revoked */
    free(cv_t_psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE query = 'LISTEN credvault_keys'"));
    long took = cv_t_expect_status_within(cb, "GET", path, tok, 200, 401, PROPAGATION_MS);
    fprintf(stderr, "a lost listener stopped the cache in %ld ms\n", took);
    /* and after the listener is back, the cache serves again (other tokens) */
    char owner[160];
    cv_t_token_mint(ca, admin, "again@deaf", "tenant-admin", "deaf", NULL, owner, sizeof(owner));
    cv_t_expect_call(cb, "GET", "/api/mcp/servers", owner, NULL, 200, NULL);
}
END_TEST

static Suite *token_cache_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "token_cache", .timeout_s = 300};
    return cv_t_suite_new(&spec, CV_T_TESTS(a_revoked_token_stops_working_on_a_second_instance_within_1s,
                                            a_deleted_tenants_token_stops_working_on_a_second_instance_within_1s,
                                            a_lost_listener_stops_the_cache));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = token_cache_suite();
    return lc_pair_run(&pair, suite, lc_default_env, lc_default_env);
}
