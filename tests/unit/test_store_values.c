/* Parsing what the database returns (src/store/values.c): a value that does
 * not fit must fail, never be truncated or wrapped. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

START_TEST(numbers_strict)
{
    int64_t v;
    ck_assert_int_eq(cv_store_parse_i64("", 0, &v).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_i64("12a", 3, &v).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_i64(" 12", 3, &v).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_i64("+12", 3, &v).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_i64("99999999999999999999", 20, &v).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_i64("123456789012345678901234567890", 30, &v).err, CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_store_parse_i64("-9223372036854775808", 20, &v)));
    ck_assert(v == INT64_MIN);
    ck_assert(cv_ok(cv_store_parse_i64("42xyz", 2, &v))); /* only len bytes are read */
    ck_assert_int_eq(v, 42);
    uint32_t u;
    ck_assert_int_eq(cv_store_parse_u32("-1", 2, &u).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_parse_u32("4294967296", 10, &u).err, CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_store_parse_u32("4294967295", 10, &u)));
    ck_assert_uint_eq(u, UINT32_MAX);
}
END_TEST

START_TEST(text_never_truncated)
{
    char dst[4];
    ck_assert_int_eq(cv_store_copy_text(dst, sizeof(dst), "abcd", 4).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_copy_text(dst, sizeof(dst), "a\0b", 3).err, CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_store_copy_text(dst, sizeof(dst), "abc", 3)));
    ck_assert_str_eq(dst, "abc");
}
END_TEST

START_TEST(hex_lengths_exact)
{
    uint8_t out[4];
    size_t n;
    ck_assert_int_eq(cv_store_parse_hex("abc", 3, out, 1, 4, &n).err, CV_ERR_INTERNAL);          /* odd */
    ck_assert_int_eq(cv_store_parse_hex("0011223344", 10, out, 1, 4, &n).err, CV_ERR_INTERNAL);  /* 5 > 4 */
    ck_assert_int_eq(cv_store_parse_hex("", 0, out, 1, 4, &n).err, CV_ERR_INTERNAL);             /* 0 < 1 */
    ck_assert_int_eq(cv_store_parse_hex("00AA", 4, out, 1, 4, &n).err, CV_ERR_INTERNAL);         /* uppercase */
    ck_assert_int_eq(cv_store_parse_hex("\\x00", 4, out, 1, 4, &n).err, CV_ERR_INTERNAL);        /* escape form */
    ck_assert(cv_ok(cv_store_parse_hex("00ff", 4, out, 1, 4, &n)));
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(out[1], 0xff);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_values");
    TCase *tc = tcase_create("parsing");
    tcase_add_test(tc, numbers_strict);
    tcase_add_test(tc, text_never_truncated);
    tcase_add_test(tc, hex_lengths_exact);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
