/* Bursts of one failure (src/core/log.c): the first is logged, the rest
 * only counted, and the next success logs the recovery with the count;
 * the outage after it is logged again. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credvault/log.h"

/* stderr of `fn` (cv_log writes there), captured in a temporary file */
static char *captured(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp);
    if (n < 0) n = 0;
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    ck_assert_uint_eq(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static struct cv_log_burst burst;

static void outage_of_five(void)
{
    int first = 0;
    for (int i = 0; i < 5; i++)
        if (cv_log_burst_failed(&burst, "thing_failed")) {
            first++;
            cv_log(CV_LOG_WARN, "thing_failed", "attempt", "x", (char *)NULL);
        }
    ck_assert_int_eq(first, 1);
    cv_log_burst_ok(&burst, "thing_failed");
    cv_log_burst_ok(&burst, "thing_failed"); /* no second recovery */
}

START_TEST(one_line_per_outage_then_the_recovery)
{
    char *out = captured(outage_of_five);
    ck_assert_int_eq(count(out, "\"event\":\"thing_failed\""), 1);
    ck_assert_int_eq(count(out, "\"event\":\"thing_failed_recovered\""), 1);
    ck_assert_ptr_nonnull(strstr(out, "\"repeats\":\"4\""));
    free(out);
    /* the next outage is news again */
    out = captured(outage_of_five);
    ck_assert_int_eq(count(out, "\"event\":\"thing_failed\""), 1);
    ck_assert_int_eq(count(out, "\"event\":\"thing_failed_recovered\""), 1);
    free(out);
}
END_TEST

static void success_only(void)
{
    for (int i = 0; i < 3; i++) cv_log_burst_ok(&burst, "quiet");
}

START_TEST(success_without_failure_logs_nothing)
{
    char *out = captured(success_only);
    ck_assert_str_eq(out, "");
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_log_burst");
    TCase *tc = tcase_create("burst");
    tcase_add_test(tc, one_line_per_outage_then_the_recovery);
    tcase_add_test(tc, success_without_failure_logs_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
