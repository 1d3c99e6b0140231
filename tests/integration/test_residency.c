/* Memory and hsm records are interchangeable: two `credvault serve` on one
 * database and one token folder, A with CREDVAULT_KEY_RESIDENCY=hsm and B with
 * memory. A record written through either opens through the other, to the
 * exact value (workload fetch) and masked; a tenant key rotation and a shred
 * through A reach B's in-memory keys over the key notifications. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "test_lifecycle_fixture.h"
#include "credvault/json_alloc.h"

#define DROP_BOUND_MS 1000 /* a shredded tenant's keys leave the other instance within 1 s */

static struct cv_test_service a, b;
static struct cv_test_client *ca, *cb;
static const char *admin;
static const struct lc_pair pair = {&a, &b, &ca, &cb, &admin};

/* The exact GITHUB_TOKEN of `server`, through a workload token bound to it. */
static void fetch_exact(struct cv_test_client *c, const char *workload, const char *server, const char *want)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/env", server);
    struct cv_test_response r = cv_t_request(c, "GET", path, workload, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *env = cv_t_json(&r, "data.env");
    ck_assert_ptr_nonnull(env);
    ck_assert_str_eq(json_string_value(json_object_get(env, "GITHUB_TOKEN")), want);
    cv_test_response_free(&r);
}

static void both_read(const char *tok, const char *work, const char *server, const char *want)
{
    char ma[64], mb[64];
    lc_masked(ca, tok, server, ma, sizeof(ma));
    lc_masked(cb, tok, server, mb, sizeof(mb));
    ck_assert_str_eq(ma, mb);
    fetch_exact(ca, work, server, want);
    fetch_exact(cb, work, server, want);
}

static long long wait_log(struct cv_test_service *s, const char *needle, long long bound_ms)
{
    long long start = lc_now_ms();
    while (!cv_test_service_log_contains(s, needle) && lc_now_ms() - start < bound_ms) lc_sleep_ms(20);
    ck_assert_msg(cv_test_service_log_contains(s, needle), "no %s in %s within %lld ms", needle, s->log_file,
                  bound_ms);
    return lc_now_ms() - start;
}

START_TEST(memory_and_hsm_records_are_interchangeable)
{
    char tok[160], id_a[160], id_b[160], work_a[160], work_b[160];
    /* each instance runs the residency it was given */
    ck_assert(cv_test_service_log_contains(&b, "\"event\":\"key_residency_memory\""));
    ck_assert(!cv_test_service_log_contains(&a, "\"event\":\"key_residency_memory\""));
    cv_t_tenant_create(ca, admin, "mix");
    cv_t_token_mint(ca, admin, "admin@mix", "tenant-admin", "mix", NULL, tok, sizeof(tok));
    /* written in the token (A), then in software (B) */
    ck_assert_int_eq(lc_deploy(ca, tok, "ghp_written_in_the_token_0123456789", id_a, sizeof(id_a)), 0);
    ck_assert_int_eq(lc_deploy(cb, tok, "ghp_written_in_memory_abcdefghijklm", id_b, sizeof(id_b)), 0);
    cv_t_token_mint(ca, admin, "work-a", "workload", "mix", id_a, work_a, sizeof(work_a));
    cv_t_token_mint(ca, admin, "work-b", "workload", "mix", id_b, work_b, sizeof(work_b));
    both_read(tok, work_a, id_a, "ghp_written_in_the_token_0123456789");
    both_read(tok, work_b, id_b, "ghp_written_in_memory_abcdefghijklm");
    /* one record format: the same members, IV and tag lengths */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT (SELECT string_agg(k, ',' ORDER BY k) FROM json_object_keys(encrypted_env::json) k) "
             "|| length(encrypted_env::json->>'iv') || length(encrypted_env::json->>'authTag')) FROM mcp_credentials "
             "WHERE server_id IN ('%s', '%s')",
             id_a, id_b);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);

    /* an update through B of A's record, read back through A */
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id_a);
    cv_t_expect_call(cb, "PUT", path, tok, "{\"env\":{\"GITHUB_TOKEN\":\"ghp_updated_in_memory_0123456789ab\"}}", 200,
                     NULL);
    both_read(tok, work_a, id_a, "ghp_updated_in_memory_0123456789ab");

    /* a tenant key rotation through A: B drops its copy and writes with version 2 */
    cv_t_expect_call(ca, "POST", "/api/tenants/mix/keys/rotate", admin, NULL, 201, NULL);
    wait_log(&b, "\"event\":\"key_cache_dropped\",\"tenant\":\"mix\"", LC_WAIT_MS);
    long v = 0;
    long long start = lc_now_ms();
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id_b);
    while (lc_now_ms() - start < LC_WAIT_MS) {
        cv_t_expect_call(cb, "PUT", path, tok, "{\"env\":{\"GITHUB_TOKEN\":\"ghp_version_two_from_memory_012345\"}}",
                         200, NULL);
        if ((v = lc_key_version(cb, tok, id_b)) == 2) break;
        lc_sleep_ms(50);
    }
    ck_assert_int_eq(v, 2);
    both_read(tok, work_b, id_b, "ghp_version_two_from_memory_012345");
    both_read(tok, work_a, id_a, "ghp_updated_in_memory_0123456789ab"); /* still version 1 until its rewrap */
}
END_TEST

START_TEST(shred_reaches_memory_keys_within_a_second)
{
    char tok[160], id[160], work[160];
    cv_t_tenant_create(ca, admin, "gone");
    cv_t_token_mint(ca, admin, "admin@gone", "tenant-admin", "gone", NULL, tok, sizeof(tok));
    ck_assert_int_eq(lc_deploy(ca, tok, "ghp_shredded_soon_0123456789abcdef", id, sizeof(id)), 0);
    cv_t_token_mint(ca, admin, "work-gone", "workload", "gone", id, work, sizeof(work));
    fetch_exact(cb, work, id, "ghp_shredded_soon_0123456789abcdef"); /* B holds the key in memory now */
    cv_t_expect_call(ca, "DELETE", "/api/tenants/gone?confirm=gone", admin, NULL, 200, NULL);
    long long shredded = lc_now_ms();
    long long took = wait_log(&b, "\"tenant\":\"gone\",\"cause\":\"tenant_shredded\"", DROP_BOUND_MS);
    fprintf(stderr, "shred reached the memory instance in %lld ms\n", took);
    /* its tokens stop working there within the same bound, on every worker */
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/env", id);
    took = lc_answers_within(cb, path, work, 401, shredded, DROP_BOUND_MS);
    fprintf(stderr, "its workload token was refused by the memory instance %lld ms after the shred\n", took);
    lc_answers_within(cb, "/api/mcp/servers", tok, 401, shredded, DROP_BOUND_MS);
}
END_TEST

static Suite *residency_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "residency", .timeout_s = 300};
    return cv_t_suite_new(&spec, CV_T_TESTS(memory_and_hsm_records_are_interchangeable,
                                            shred_reaches_memory_keys_within_a_second));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = residency_suite();
    static const char *const env_a[] = {"CREDVAULT_KEY_RESIDENCY=hsm", LC_NO_RATE_LIMITS, NULL};
    static const char *const env_b[] = {"CREDVAULT_KEY_RESIDENCY=memory", "CREDVAULT_LOG_LEVEL=debug",
                                        LC_NO_RATE_LIMITS, NULL};
    return lc_pair_run(&pair, suite, env_a, env_b);
}
