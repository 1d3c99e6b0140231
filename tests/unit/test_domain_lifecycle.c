/* The key lifecycle's pure rules: when a key version must rotate, how key
 * versions are parsed, how a job's progress is computed, and the decrypt
 * check by key state. No HSM, no database. Hostile cases first. */
#include <check.h>
#include <limits.h>
#include <string.h>

#include "domain/lifecycle.h"
#include "credvault/json_alloc.h"

#define DAY_MS INT64_C(86400000)

START_TEST(rotation_due_limits)
{
    int64_t now = INT64_C(1800000000000);
    /* at the limit, not one past it: the count includes this version's writes */
    ck_assert_str_eq(cv_lifecycle_rotation_due(1000, now, now, 1000, 0), "encryption limit");
    ck_assert_str_eq(cv_lifecycle_rotation_due(UINT64_MAX, now, now, 1000, 0), "encryption limit");
    ck_assert_ptr_null(cv_lifecycle_rotation_due(999, now, now, 1000, 0));
    /* age: exactly max days rotates; a day less does not; 0 disables it */
    ck_assert_str_eq(cv_lifecycle_rotation_due(0, now - 30 * DAY_MS, now, 1000, 30), "age limit");
    ck_assert_ptr_null(cv_lifecycle_rotation_due(0, now - 29 * DAY_MS, now, 1000, 30));
    ck_assert_ptr_null(cv_lifecycle_rotation_due(0, now - 3650 * DAY_MS, now, 1000, 0));
    /* an unknown creation time never looks old */
    ck_assert_ptr_null(cv_lifecycle_rotation_due(0, 0, now, 1000, 30));
    /* the count wins when both apply */
    ck_assert_str_eq(cv_lifecycle_rotation_due(1000, now - 40 * DAY_MS, now, 1000, 30), "encryption limit");
    /* the default setting stays far below the GCM random-IV bound of 2^32 */
    ck_assert_ptr_null(cv_lifecycle_rotation_due(UINT64_C(999999999), now, now, UINT64_C(1000000000), 365));
}
END_TEST

START_TEST(version_parsing)
{
    uint32_t v = 7;
    const char *bad[] = {NULL, "", "0", "-1", "+1", "01", "1a", "a", " 1", "1 ", "2147483648", "99999999999", "1.5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_result r = cv_lifecycle_parse_version(bad[i], "v", &v);
        ck_assert_msg(r.err == CV_ERR_INPUT, "accepted '%s'", bad[i] ? bad[i] : "(null)");
        ck_assert_uint_eq(v, 7);
    }
    ck_assert(cv_ok(cv_lifecycle_parse_version("1", "v", &v)));
    ck_assert_uint_eq(v, 1);
    ck_assert(cv_ok(cv_lifecycle_parse_version("2147483647", "v", &v)));
    ck_assert_uint_eq(v, INT32_MAX);
}
END_TEST

static struct cv_key_job_row job(const char *state, uint64_t total, uint64_t done, uint64_t remaining)
{
    struct cv_key_job_row j;
    memset(&j, 0, sizeof(j));
    snprintf(j.state, sizeof(j.state), "%s", state);
    j.total = total;
    j.done = done;
    j.remaining = remaining;
    return j;
}

START_TEST(job_progress)
{
    uint64_t total;
    struct cv_key_job_row j = job("running", 200, 50, 150);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, &total), 25);
    ck_assert_uint_eq(total, 200);
    /* rows written under an old version meanwhile grow the total */
    j = job("running", 200, 150, 100);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, &total), 60);
    ck_assert_uint_eq(total, 250);
    /* never 100 while running, even with nothing left (not yet ended) */
    j = job("running", 10, 10, 0);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, NULL), 99);
    j = job("done", 10, 10, 0);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, NULL), 100);
    /* an empty job is complete; a count beyond the total cannot underflow */
    j = job("running", 0, 0, 0);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, NULL), 100);
    j = job("failed", 5, 3, 2);
    ck_assert_uint_eq(cv_lifecycle_job_percent(&j, NULL), 60);
}
END_TEST

START_TEST(decrypt_check_by_state)
{
    struct cv_tenant_key_row k;
    memset(&k, 0, sizeof(k));
    snprintf(k.ref.tenant_id, sizeof(k.ref.tenant_id), "acme");
    k.ref.version = 3;
    snprintf(k.state, sizeof(k.state), "retired");
    cv_result r = cv_lifecycle_check_decrypt(&k);
    ck_assert_int_eq(r.err, CV_ERR_CONFLICT);
    ck_assert_str_eq(cv_error_code(), "key_version_retired");
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "version 3"));
    snprintf(k.state, sizeof(k.state), "destroyed");
    r = cv_lifecycle_check_decrypt(&k);
    ck_assert_int_eq(r.err, CV_ERR_CONFLICT);
    ck_assert_str_eq(cv_error_code(), "key_version_destroyed");
    snprintf(k.state, sizeof(k.state), "bogus");
    ck_assert_int_eq(cv_lifecycle_check_decrypt(&k).err, CV_ERR_CONFLICT); /* unknown states refuse too */
    snprintf(k.state, sizeof(k.state), "active");
    ck_assert(cv_ok(cv_lifecycle_check_decrypt(&k)));
}
END_TEST

START_TEST(job_document)
{
    struct cv_key_job_row j = job("running", 4, 1, 3);
    j.id = 9;
    j.kind = CV_JOB_RECORD_REWRAP;
    snprintf(j.tenant_id, sizeof(j.tenant_id), "acme");
    j.target_version = 2;
    json_t *d = cv_lifecycle_job_json(&j);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(json_string_value(json_object_get(d, "kind")), "record_rewrap");
    ck_assert_str_eq(json_string_value(json_object_get(d, "tenantId")), "acme");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "percent")), 25);
    ck_assert(json_is_null(json_object_get(d, "finishedAt")) || !json_object_get(d, "finishedAt"));
    json_decref(d);
    j.kind = CV_JOB_MASTER_REWRAP;
    d = cv_lifecycle_job_json(&j);
    ck_assert_ptr_nonnull(d);
    ck_assert(!json_is_string(json_object_get(d, "tenantId")));
    ck_assert_str_eq(json_string_value(json_object_get(d, "unit")), "tenant keys");
    json_decref(d);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *s = suite_create("domain_lifecycle");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, rotation_due_limits);
    tcase_add_test(tc, version_parsing);
    tcase_add_test(tc, job_progress);
    tcase_add_test(tc, decrypt_check_by_state);
    tcase_add_test(tc, job_document);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
