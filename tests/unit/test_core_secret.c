/* Secret memory, wiping and constant-time comparison (src/core/secret.c). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"

START_TEST(huge_allocation_refused)
{
    ck_assert_ptr_null(cv_secret_alloc(SIZE_MAX));
    ck_assert_ptr_null(cv_secret_alloc(SIZE_MAX - 8));
    cv_secret_free(NULL);
    cv_wipe(NULL, 10);
}
END_TEST

START_TEST(memeq)
{
    ck_assert_int_eq(cv_memeq("abcd", "abcd", 4), 1);
    ck_assert_int_eq(cv_memeq("abcd", "abce", 4), 0);
    ck_assert_int_eq(cv_memeq("xbcd", "abcd", 4), 0);
    ck_assert_int_eq(cv_memeq("\x80", "\x00", 1), 0);
    ck_assert_int_eq(cv_memeq("a", "b", 0), 1);
}
END_TEST

START_TEST(wipe)
{
    uint8_t p[16];
    memset(p, 0xaa, sizeof(p));
    cv_wipe(p + 4, 8);
    ck_assert_uint_eq(p[3], 0xaa);
    for (int i = 4; i < 12; i++) ck_assert_uint_eq(p[i], 0);
    ck_assert_uint_eq(p[12], 0xaa);
}
END_TEST

START_TEST(alloc_realloc_strdup)
{
    char *s = cv_secret_strdup("pin-1234");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "pin-1234");
    ck_assert_uint_eq((uintptr_t)s % 16, 0);
    char *t = cv_secret_realloc(s, 4096);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "pin-1234");
    char *u = cv_secret_realloc(t, 4); /* shrinking keeps the first bytes */
    ck_assert_ptr_nonnull(u);
    ck_assert_mem_eq(u, "pin-", 4);
    cv_secret_free(u);
    void *z = cv_secret_realloc(NULL, 32);
    ck_assert_ptr_nonnull(z);
    cv_secret_free(z);
    void *e = cv_secret_alloc(0);
    ck_assert_ptr_nonnull(e);
    cv_secret_free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_secret");
    TCase *tc = tcase_create("secret");
    tcase_add_test(tc, huge_allocation_refused);
    tcase_add_test(tc, memeq);
    tcase_add_test(tc, wipe);
    tcase_add_test(tc, alloc_realloc_strdup);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
