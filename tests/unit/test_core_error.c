/* The thread-local last error (src/core/error.c). */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/result.h"

static cv_result fails_through_guard(void)
{
    CV_GUARD(cv_fail(CV_ERR_NOT_FOUND, "no such server"));
    return CV_OK;
}

static cv_result ensure(int cond)
{
    CV_ENSURE(cond, CV_ERR_INPUT, "condition %d", cond);
    return CV_OK;
}

START_TEST(none_is_not_a_failure_category)
{
    cv_result r = cv_fail(CV_ERR_NONE, "x");
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);
    r = cv_fail((cv_err)999, "x");
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);
    ck_assert_str_eq(cv_err_name((cv_err)999), "internal_error");
    ck_assert_str_eq(cv_err_name((cv_err)-1), "internal_error");
}
END_TEST

START_TEST(message_is_bounded)
{
    char big[1000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(cv_fail(CV_ERR_INPUT, "%s", big).err, CV_ERR_INPUT);
    ck_assert_uint_lt(strlen(cv_error_message()), 256);
    ck_assert(strncmp(cv_error_message(), "mmmm", 4) == 0);
}
END_TEST

START_TEST(guards_propagate)
{
    cv_error_clear();
    ck_assert_int_eq(cv_error_category(), CV_ERR_NONE);
    ck_assert_str_eq(cv_error_message(), "");
    ck_assert_int_eq(fails_through_guard().err, CV_ERR_NOT_FOUND);
    ck_assert_str_eq(cv_error_message(), "no such server");
    ck_assert_str_eq(cv_error_code(), "not_found");
    ck_assert(cv_ok(ensure(1)));
    ck_assert_int_eq(ensure(0).err, CV_ERR_INPUT);
    ck_assert_str_eq(cv_error_message(), "condition 0");
    ck_assert_int_eq(cv_fail_code(CV_ERR_INPUT, "invalid_json", "bad body").err, CV_ERR_INPUT);
    ck_assert_str_eq(cv_error_code(), "invalid_json");
    for (int e = 0; e < CV_ERR__COUNT; e++) ck_assert_ptr_nonnull(cv_err_name((cv_err)e));
}
END_TEST

static void *other_thread(void *arg)
{
    cv_result r = cv_fail(CV_ERR_AUTH, "other thread");
    *(cv_err *)arg = r.err;
    return NULL;
}

START_TEST(last_error_is_per_thread)
{
    ck_assert_int_eq(cv_fail(CV_ERR_CONFLICT, "this thread").err, CV_ERR_CONFLICT);
    pthread_t t;
    cv_err theirs = CV_ERR_NONE;
    ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &theirs), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(theirs, CV_ERR_AUTH);
    ck_assert_int_eq(cv_error_category(), CV_ERR_CONFLICT);
    ck_assert_str_eq(cv_error_message(), "this thread");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_error");
    TCase *tc = tcase_create("error");
    tcase_add_test(tc, none_is_not_a_failure_category);
    tcase_add_test(tc, message_is_bounded);
    tcase_add_test(tc, guards_propagate);
    tcase_add_test(tc, last_error_is_per_thread);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
