/* Store input checks (src/store/validate.c): hostile identifiers first. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

START_TEST(uuids_exact)
{
    ck_assert(cv_store_uuid_ok("123e4567-e89b-12d3-a456-426614174000"));
    ck_assert(cv_store_uuid_ok("123E4567-E89B-12D3-A456-426614174000"));
    ck_assert(!cv_store_uuid_ok("123e4567-e89b-12d3-a456-42661417400"));   /* short */
    ck_assert(!cv_store_uuid_ok("123e4567-e89b-12d3-a456-4266141740000")); /* long */
    ck_assert(!cv_store_uuid_ok("123e4567xe89b-12d3-a456-426614174000"));
    ck_assert(!cv_store_uuid_ok("123e4567-e89b-12d3-a456-42661417400g"));
    ck_assert(!cv_store_uuid_ok("' OR 1=1 --"));
    ck_assert(!cv_store_uuid_ok(""));
    ck_assert(!cv_store_uuid_ok(NULL));
}
END_TEST

START_TEST(enumerations_closed)
{
    ck_assert(!cv_store_token_role_ok("Admin"));
    ck_assert(!cv_store_token_role_ok("admin "));
    ck_assert(!cv_store_token_role_ok(""));
    ck_assert(!cv_store_token_role_ok(NULL));
    ck_assert(cv_store_token_role_ok("tenant-admin"));
    ck_assert(cv_store_token_role_ok("workload"));
    ck_assert(!cv_store_master_state_ok("destroyed"));
    ck_assert(cv_store_key_state_ok("destroyed"));
    ck_assert(!cv_store_outcome_ok("ok"));
    ck_assert(cv_store_outcome_ok("denied"));
}
END_TEST

START_TEST(lengths_and_times)
{
    ck_assert_int_eq(cv_store_check_len("x", NULL, 0, 4).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_store_check_len("x", "", 1, 4).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_store_check_len("x", "abcde", 1, 4).err, CV_ERR_INPUT);
    ck_assert(cv_ok(cv_store_check_len("x", "abcd", 1, 4)));
    ck_assert_int_eq(cv_store_check_ms("t", -1).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_store_check_ms("t", CV_STORE_TIME_MAX_MS + 1).err, CV_ERR_INPUT);
    ck_assert(cv_ok(cv_store_check_ms("t", 0)));
    char fixed[4] = {'a', 'b', 'c', 'd'};
    ck_assert(!cv_store_fixed_ok(fixed, sizeof(fixed))); /* no terminator inside */
    fixed[3] = '\0';
    ck_assert(cv_store_fixed_ok(fixed, sizeof(fixed)));
}
END_TEST

START_TEST(key_refs_bounded)
{
    struct cv_key_ref k;
    memset(&k, 0, sizeof(k));
    strcpy(k.tenant_id, "acme");
    k.version = 1;
    k.master_version = 1;
    k.wrapped_len = 0;
    ck_assert_int_eq(cv_store_check_key_ref("k", &k).err, CV_ERR_INPUT);
    k.wrapped_len = CV_WRAPPED_KEY_MAX_BYTES + 1;
    ck_assert_int_eq(cv_store_check_key_ref("k", &k).err, CV_ERR_INPUT);
    k.wrapped_len = 40;
    k.master_version = 0;
    ck_assert_int_eq(cv_store_check_key_ref("k", &k).err, CV_ERR_INPUT);
    k.master_version = 0x80000000u;
    ck_assert_int_eq(cv_store_check_key_ref("k", &k).err, CV_ERR_INPUT);
    k.master_version = 1;
    memset(k.tenant_id, 'a', sizeof(k.tenant_id));
    ck_assert_int_eq(cv_store_check_key_ref("k", &k).err, CV_ERR_INPUT);
    strcpy(k.tenant_id, "acme");
    ck_assert(cv_ok(cv_store_check_key_ref("k", &k)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_validate");
    TCase *tc = tcase_create("inputs");
    tcase_add_test(tc, uuids_exact);
    tcase_add_test(tc, enumerations_closed);
    tcase_add_test(tc, lengths_and_times);
    tcase_add_test(tc, key_refs_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
