/* The one category -> status table (src/http/status.c), checked against the
 * table written out independently here, and against out-of-range input. */
#include <check.h>
#include <stdlib.h>

#include "http/internal.h"

START_TEST(out_of_range_is_500)
{
    ck_assert_uint_eq(cv_http_status_for(CV_ERR_NONE), 500);
    ck_assert_uint_eq(cv_http_status_for(CV_ERR__COUNT), 500);
    ck_assert_uint_eq(cv_http_status_for((cv_err)-1), 500);
    ck_assert(cv_http_status_hides_detail(CV_ERR__COUNT));
    ck_assert_ptr_nonnull(cv_http_status_default_message((cv_err)1000));
}
END_TEST

START_TEST(every_category_mapped)
{
    static const struct {
        cv_err err;
        unsigned status;
        bool hidden;
    } want[] = {
        {CV_ERR_INPUT, 400, false},        {CV_ERR_TOO_LARGE, 413, false},   {CV_ERR_MEDIA, 415, false},
        {CV_ERR_AUTH, 401, false},         {CV_ERR_FORBIDDEN, 403, false},   {CV_ERR_NOT_FOUND, 404, false},
        {CV_ERR_CONFLICT, 409, false},     {CV_ERR_PRECONDITION, 412, false}, {CV_ERR_RATE_LIMITED, 429, false},
        {CV_ERR_UNAVAILABLE, 503, false},  {CV_ERR_CRYPTO, 500, true},       {CV_ERR_INTERNAL, 500, true},
        {CV_ERR_MEMORY, 500, true},
    };
    ck_assert_uint_eq(sizeof(want) / sizeof(want[0]), CV_ERR__COUNT - 1);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_uint_eq(cv_http_status_for(want[i].err), want[i].status);
        ck_assert_int_eq(cv_http_status_hides_detail(want[i].err), want[i].hidden);
        const char *m = cv_http_status_default_message(want[i].err);
        ck_assert(m != NULL && m[0] != '\0');
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_status");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, out_of_range_is_500);
    tcase_add_test(tc, every_category_mapped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
