/* check suites whose cases can run alone, in any order: one TCase per test,
 * named after the test, so CK_RUN_CASE=<test> runs exactly that one, and
 * CV_TEST_ORDER=reverse adds them last to first. A case makes what it
 * needs (or asks the suite's `once` fixture for it) and never relies on
 * what an earlier case left behind; scripts/test-order checks that. */
#ifndef CV_TEST_SUITE_H
#define CV_TEST_SUITE_H

#include <check.h>
#include <stddef.h>

/* per case, when a suite names none: a hang is cut, a slow machine is not */
#define CV_T_CASE_TIMEOUT_S 60

struct cv_t_suite_spec {
    const char *name;
    double timeout_s;       /* per case (fork mode only); 0 = CV_T_CASE_TIMEOUT_S */
    void (*once)(void);     /* shared fixture, made before the first case that runs, whichever it is */
    void (*setup)(void);    /* before every case */
    void (*teardown)(void); /* after every case, also when it failed */
};

/* With CV_TEST_LIST=1 in the environment, prints the case names one a line
 * and exits 0 at once: nothing else of the program runs, so build the suite
 * before any expensive fixture. */
Suite *cv_t_suite_new(const struct cv_t_suite_spec *spec, const TTest *const *tests, size_t n);

/* The arguments `tests, n` for cv_t_suite_new from a list of test names. */
#define CV_T_TESTS(...)                                                                                                \
    (const TTest *const[]){__VA_ARGS__}, sizeof((const TTest *const[]){__VA_ARGS__}) / sizeof(const TTest *)

/* Runs the suite (CK_RUN_CASE and CK_FORK are honoured) and frees it;
 * returns the number of failed cases. */
int cv_t_suite_run(Suite *s, enum fork_status fork);

#endif
