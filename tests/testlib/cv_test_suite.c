/* One TCase per test so that cases can be picked and reordered, and a
 * suite fixture made once by whichever case runs first. For tests only;
 * knows nothing of credvault. */
#include "cv_test_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one suite per test program: its `once` fixture and whether it was made */
static void (*once_fn)(void);
static int once_done;

static void run_once(void)
{
    if (once_done || !once_fn) return;
    once_fn(); /* a failed assertion leaves once_done 0: the next case tries again */
    once_done = 1;
}

Suite *cv_t_suite_new(const struct cv_t_suite_spec *spec, const TTest *const *tests, size_t n)
{
    const char *list = getenv("CV_TEST_LIST");
    if (list && strcmp(list, "1") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", tests[i]->name);
        fflush(stdout);
        exit(0);
    }
    const char *order = getenv("CV_TEST_ORDER");
    int reverse = order && strcmp(order, "reverse") == 0;
    if (order && !reverse && strcmp(order, "forward") != 0) {
        fprintf(stderr, "CV_TEST_ORDER must be forward or reverse, not '%s'\n", order);
        exit(2);
    }
    once_fn = spec->once;
    once_done = 0;
    Suite *s = suite_create(spec->name);
    for (size_t k = 0; k < n; k++) {
        const TTest *t = tests[reverse ? n - 1 - k : k];
        TCase *tc = tcase_create(t->name);
        /* check's own default (4 s) is shorter than making a token on a loaded
         * machine; a case that hangs is still cut here and by ctest's timeout */
        tcase_set_timeout(tc, spec->timeout_s > 0 ? spec->timeout_s : CV_T_CASE_TIMEOUT_S);
        if (spec->once) tcase_add_unchecked_fixture(tc, run_once, NULL);
        if (spec->setup || spec->teardown) tcase_add_checked_fixture(tc, spec->setup, spec->teardown);
        tcase_add_test(tc, t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int cv_t_suite_run(Suite *s, enum fork_status fork)
{
    SRunner *sr = srunner_create(s);
    /* CK_FORK in the environment wins, as check documents */
    if (!getenv("CK_FORK")) srunner_set_fork_status(sr, fork);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
