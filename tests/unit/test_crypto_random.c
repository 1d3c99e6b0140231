/* Random bytes (src/crypto/random.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

START_TEST(null_refused)
{
    ck_assert_int_eq(cv_crypto_random(NULL, 1).err, CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_crypto_random(NULL, 0)));
}
END_TEST

START_TEST(outputs_differ)
{
    uint8_t a[32], b[32], zero[32] = {0};
    ck_assert(cv_ok(cv_crypto_random(a, sizeof(a))));
    ck_assert(cv_ok(cv_crypto_random(b, sizeof(b))));
    ck_assert_mem_ne(a, b, sizeof(a));
    ck_assert_mem_ne(a, zero, sizeof(a));
}
END_TEST

START_TEST(large_request_filled_to_the_end)
{
    /* more than one internal chunk; the last kilobyte must be written too */
    size_t n = 3 * 1024 * 1024 + 17;
    uint8_t *p = calloc(1, n);
    ck_assert_ptr_nonnull(p);
    ck_assert(cv_ok(cv_crypto_random(p, n)));
    uint8_t zero[1024] = {0};
    ck_assert_mem_ne(p + n - sizeof(zero), zero, sizeof(zero));
    free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crypto_random");
    TCase *tc = tcase_create("random");
    tcase_add_test(tc, null_refused);
    tcase_add_test(tc, outputs_differ);
    tcase_add_test(tc, large_request_filled_to_the_end);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
