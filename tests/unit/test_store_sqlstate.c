/* SQLSTATE to category (src/store/sqlstate.c). */
#include <check.h>
#include <stdlib.h>

#include "store/internal.h"

START_TEST(connection_trouble_is_unavailable)
{
    const char *drops[] = {"08000", "08003", "08006", "08001", "57P01", "57P02", "57P03", "25006", "", "0800", NULL};
    for (size_t i = 0; drops[i]; i++) {
        ck_assert_msg(cv_store_sqlstate_drops(drops[i]), "%s should drop the connection", drops[i]);
        ck_assert_int_eq(cv_store_sqlstate_err(drops[i], CV_ERR_NONE), CV_ERR_UNAVAILABLE);
    }
    ck_assert(cv_store_sqlstate_drops(NULL));
    ck_assert(!cv_store_sqlstate_drops("23505"));
    ck_assert(!cv_store_sqlstate_drops("57014"));
    ck_assert_int_eq(cv_store_sqlstate_err("57014", CV_ERR_NONE), CV_ERR_UNAVAILABLE); /* statement timeout */
    ck_assert_int_eq(cv_store_sqlstate_err("53300", CV_ERR_NONE), CV_ERR_UNAVAILABLE); /* too many connections */
    ck_assert_int_eq(cv_store_sqlstate_err("40P01", CV_ERR_NONE), CV_ERR_UNAVAILABLE);
}
END_TEST

START_TEST(constraints_have_meaning)
{
    ck_assert_int_eq(cv_store_sqlstate_err("23505", CV_ERR_NONE), CV_ERR_CONFLICT);
    ck_assert_int_eq(cv_store_sqlstate_err("23503", CV_ERR_NONE), CV_ERR_NOT_FOUND);
    ck_assert_int_eq(cv_store_sqlstate_err("23503", CV_ERR_CONFLICT), CV_ERR_CONFLICT);
    ck_assert_int_eq(cv_store_sqlstate_err("23514", CV_ERR_NONE), CV_ERR_INPUT);
    ck_assert_int_eq(cv_store_sqlstate_err("22P02", CV_ERR_NONE), CV_ERR_INPUT);
    ck_assert_int_eq(cv_store_sqlstate_err("42501", CV_ERR_NONE), CV_ERR_INTERNAL); /* permission: a bug */
    ck_assert_int_eq(cv_store_sqlstate_err("42P01", CV_ERR_NONE), CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_store_sqlstate_err("XX000", CV_ERR_NONE), CV_ERR_INTERNAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_sqlstate");
    TCase *tc = tcase_create("mapping");
    tcase_add_test(tc, connection_trouble_is_unavailable);
    tcase_add_test(tc, constraints_have_meaning);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
