/* Shared by the operations tests (test_ops_*.c): the real `credvault serve`
 * over HTTPS (called through cv_test_api.h) and reading one sample out of
 * /metrics. Header-only: each test is its own program. */
#ifndef CV_TEST_OPS_FIXTURE_H
#define CV_TEST_OPS_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_test_api.h"
#include "cv_test_service.h"
#include "cv_test_suite.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;

/* each test program uses some of these */
#define OPS_HELPER static __attribute__((unused))

/* The value of one sample of a /metrics text ("name{labels}" exactly as
 * rendered, or a bare name), or -1 when absent. */
OPS_HELPER double metric_in(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

OPS_HELPER char *scrape(const char *token)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/metrics", token, NULL);
    ck_assert_msg(r.status == 200, "scrape: %ld %s", r.status, r.body);
    char *text = strdup(r.body);
    cv_test_response_free(&r);
    return text;
}

OPS_HELPER double metric(const char *token, const char *series)
{
    char *text = scrape(token);
    double v = metric_in(text, series);
    free(text);
    return v;
}

OPS_HELPER void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Runs `credvault <args>` and captures stdout (up to 64 KiB). */
OPS_HELPER int cli_out(const char *args, char *out, size_t out_len)
{
    return cv_test_cli(args, out, out_len);
}

#endif
