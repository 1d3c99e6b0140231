/* The metrics registry and its Prometheus rendering (src/core/metrics.c):
 * hostile label values first, then counting, bounds, histograms and threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/metrics.h"

static struct cv_metrics *reg;

static void fresh_registry(void)
{
    cv_metrics_free(reg);
    reg = NULL;
    ck_assert(cv_ok(cv_metrics_new(&reg)));
}

static char *render(void)
{
    struct cv_buf b;
    cv_buf_init(&b, CV_METRICS_RENDER_MAX_BYTES);
    ck_assert(cv_ok(cv_metrics_render(reg, &b)));
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    char *s = strdup((const char *)b.data);
    cv_buf_free(&b);
    return s;
}

/* Every line is a comment or `name{labels} value` with no raw newline or
 * unescaped quote inside the braces. */
static void assert_wellformed(const char *text)
{
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        if (*line != '#') {
            const char *brace = memchr(line, '{', (size_t)(nl - line));
            if (brace) {
                int in_string = 0;
                const char *p = brace + 1;
                for (; p < nl; p++) {
                    if (in_string && *p == '\\') {
                        p++;
                        continue;
                    }
                    if (*p == '"') in_string = !in_string;
                    if (!in_string && *p == '}') break;
                }
                ck_assert_msg(p < nl && !in_string, "malformed labels: %.*s", (int)(nl - line), line);
            }
            const char *space = memchr(line, ' ', (size_t)(nl - line));
            ck_assert_msg(space != NULL, "no value: %.*s", (int)(nl - line), line);
        }
        line = nl + 1;
    }
}

START_TEST(hostile_label_values_are_escaped)
{
    fresh_registry();
    cv_metric_inc_l(reg, CV_M_HTTP_REQUESTS, "GET", "/a\"b\\c\nd}{x=\"1\"", "200");
    cv_metric_inc_l(reg, CV_M_HTTP_REQUESTS, "GET", "/with\x1fseparator", "200");
    char *t = render();
    assert_wellformed(t);
    ck_assert_ptr_nonnull(strstr(t, "route=\"/a\\\"b\\\\c?d}{x=\\\"1\\\"\""));
    /* the separator byte cannot make a value look like two labels */
    ck_assert_ptr_nonnull(strstr(t, "route=\"/with?separator\""));
    free(t);
}
END_TEST

START_TEST(long_values_are_cut)
{
    fresh_registry();
    char big[500];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cv_metric_inc_l(reg, CV_M_HSM_ERRORS, big, NULL, NULL);
    char *t = render();
    ck_assert_ptr_null(strstr(t, big));
    char cut[CV_METRICS_LABEL_VALUE_MAX_BYTES + 8];
    snprintf(cut, sizeof(cut), "rv=\"%.*s\"", CV_METRICS_LABEL_VALUE_MAX_BYTES, big);
    ck_assert_ptr_nonnull(strstr(t, cut));
    free(t);
}
END_TEST

START_TEST(family_is_bounded)
{
    fresh_registry();
    /* credvault_hsm_errors_total holds 64 series, 6 of them made at 0 for the
     * return values the HSM alert names; the rest are dropped and counted */
    for (int i = 0; i < 100; i++) {
        char rv[32];
        snprintf(rv, sizeof(rv), "CKR_%d", i);
        cv_metric_inc_l(reg, CV_M_HSM_ERRORS, rv, NULL, NULL);
    }
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_METRICS_DROPPED, NULL, NULL, NULL), 42);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_HSM_ERRORS, "CKR_0", NULL, NULL), 1);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_HSM_ERRORS, "CKR_99", NULL, NULL), 0);
}
END_TEST

START_TEST(counters_count_and_render)
{
    fresh_registry();
    char *t = render();
    /* unlabelled families are present at zero before the first event */
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_decrypt_failures_total 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE credvault_decrypt_failures_total counter\n"));
    free(t);
    cv_metric_inc(reg, CV_M_DECRYPT_FAILURES);
    cv_metric_add(reg, CV_M_DECRYPT_FAILURES, 4);
    cv_metric_inc_l(reg, CV_M_RATE_LIMITED, "read", "token", NULL);
    cv_metric_inc_l(reg, CV_M_RATE_LIMITED, "read", "token", NULL);
    cv_metric_inc_l(reg, CV_M_RATE_LIMITED, "write", "address", NULL);
    cv_metric_set(reg, CV_M_HSM_UP, 1);
    cv_metric_set(reg, CV_M_AUDIT_CHECKPOINT_TIME, -5);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_DECRYPT_FAILURES, NULL, NULL, NULL), 5);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_RATE_LIMITED, "read", "token", NULL), 2);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_RATE_LIMITED, "read", "address", NULL), 0);
    t = render();
    assert_wellformed(t);
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_decrypt_failures_total 5\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_rate_limited_total{class=\"read\",scope=\"token\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_rate_limited_total{class=\"write\",scope=\"address\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_hsm_up 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_audit_last_checkpoint_timestamp_seconds -5\n"));
    free(t);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
    fresh_registry();
    cv_metric_observe(reg, CV_M_HTTP_DURATION, "/r", 0.0001); /* first bucket */
    cv_metric_observe(reg, CV_M_HTTP_DURATION, "/r", 0.003);  /* le=0.005 */
    cv_metric_observe(reg, CV_M_HTTP_DURATION, "/r", 42.0);   /* beyond the last: +Inf only */
    cv_metric_observe(reg, CV_M_HTTP_DURATION, "/r", -1.0);   /* a clock step counts as zero */
    char *t = render();
    assert_wellformed(t);
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_bucket{route=\"/r\",le=\"0.0005\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_bucket{route=\"/r\",le=\"0.0025\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_bucket{route=\"/r\",le=\"0.005\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_bucket{route=\"/r\",le=\"10\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_bucket{route=\"/r\",le=\"+Inf\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_count{route=\"/r\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_http_request_duration_seconds_sum{route=\"/r\"} 42.0031"));
    /* an unlabelled histogram */
    cv_metric_observe(reg, CV_M_HSM_DURATION, NULL, 0.00001);
    free(t);
    t = render();
    ck_assert_ptr_nonnull(strstr(t, "credvault_hsm_operation_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "credvault_hsm_operation_duration_seconds_count 1\n"));
    free(t);
}
END_TEST

START_TEST(render_respects_the_buffer_limit)
{
    fresh_registry();
    cv_metric_inc_l(reg, CV_M_HTTP_REQUESTS, "GET", "/x", "200");
    struct cv_buf b;
    cv_buf_init(&b, 64);
    ck_assert_int_eq(cv_metrics_render(reg, &b).err, CV_ERR_TOO_LARGE);
    cv_buf_free(&b);
}
END_TEST

START_TEST(derived_samples)
{
    struct cv_buf b;
    cv_buf_init(&b, 4096);
    ck_assert(cv_ok(cv_metrics_write_family(&b, "credvault_x", "gauge", "a\nb")));
    const char *names[] = {"tenant", "version"};
    const char *values[] = {"ac\"me", "3"};
    ck_assert(cv_ok(cv_metrics_write_sample(&b, "credvault_x", names, values, 2, 12)));
    ck_assert(cv_ok(cv_metrics_write_sample(&b, "credvault_x", NULL, NULL, 0, 0.25)));
    ck_assert_int_eq(cv_metrics_write_sample(&b, "bad name", NULL, NULL, 0, 1).err, CV_ERR_INTERNAL);
    const char *bad[] = {"a-b"};
    ck_assert_int_eq(cv_metrics_write_sample(&b, "credvault_x", bad, values, 1, 1).err, CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_buf_terminate(&b)));
    ck_assert_str_eq((const char *)b.data, "# HELP credvault_x a\\nb\n# TYPE credvault_x gauge\n"
                                           "credvault_x{tenant=\"ac\\\"me\",version=\"3\"} 12\n"
                                           "credvault_x 0.25\n");
    cv_buf_free(&b);
}
END_TEST

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        char st[8];
        snprintf(st, sizeof(st), "%d", 200 + i % 5);
        cv_metric_inc_l(reg, CV_M_HTTP_REQUESTS, "GET", "/t", st);
        cv_metric_observe(reg, CV_M_HTTP_DURATION, "/t", 0.001);
    }
    return NULL;
}

START_TEST(concurrent_updates_are_not_lost)
{
    fresh_registry();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    uint64_t total = 0;
    for (int s = 200; s < 205; s++) {
        char st[8];
        snprintf(st, sizeof(st), "%d", s);
        total += cv_metric_value(reg, CV_M_HTTP_REQUESTS, "GET", "/t", st);
    }
    ck_assert_uint_eq(total, 80000);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_HTTP_DURATION, "/t", NULL, NULL), 80000);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_METRICS_DROPPED, NULL, NULL, NULL), 0);
}
END_TEST

/* Two services in one process: what one counts, the other never sees. */
START_TEST(registries_share_nothing)
{
    fresh_registry();
    struct cv_metrics *other = NULL;
    ck_assert(cv_ok(cv_metrics_new(&other)));
    cv_metric_inc(reg, CV_M_DECRYPT_FAILURES);
    cv_metric_inc_l(other, CV_M_DB_ERRORS, "connect", NULL, NULL);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_DECRYPT_FAILURES, NULL, NULL, NULL), 1);
    ck_assert_uint_eq(cv_metric_value(other, CV_M_DECRYPT_FAILURES, NULL, NULL, NULL), 0);
    ck_assert_uint_eq(cv_metric_value(reg, CV_M_DB_ERRORS, "connect", NULL, NULL), 0);
    ck_assert_uint_eq(cv_metric_value(other, CV_M_DB_ERRORS, "connect", NULL, NULL), 1);
    /* no registry: updates are dropped, reads are zero, nothing crashes */
    cv_metric_inc(NULL, CV_M_DECRYPT_FAILURES);
    ck_assert_uint_eq(cv_metric_value(NULL, CV_M_DECRYPT_FAILURES, NULL, NULL, NULL), 0);
    cv_metrics_free(other);
}
END_TEST

/* rate() over a series that appears only with its first event misses that
 * event: the label values the alerts use are there at 0 from the start. */
START_TEST(alerted_series_exist_at_zero)
{
    fresh_registry();
    char *t = render();
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_rate_limited_total{class=\"read\",scope=\"auth_failures\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_rate_limited_total{class=\"admin\",scope=\"address\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_hsm_errors_total{rv=\"CKR_TOKEN_NOT_PRESENT\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_hsm_recoveries_total{result=\"failed\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_audit_events_total{durability=\"sync\"} 0\n"));
    free(t);
    /* a preset series counts like any other, once */
    cv_metric_inc_l(reg, CV_M_HSM_RECOVERIES, "failed", NULL, NULL);
    t = render();
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_hsm_recoveries_total{result=\"failed\"} 1\n"));
    ck_assert_ptr_null(strstr(t, "credvault_hsm_recoveries_total{result=\"failed\"} 0"));
    assert_wellformed(t);
    free(t);
}
END_TEST

START_TEST(build_info_and_process_families)
{
    fresh_registry();
    char *t = render();
    /* before the service sets it: the family with an unlabelled 1 */
    ck_assert_ptr_nonnull(strstr(t, "# TYPE credvault_build_info gauge\ncredvault_build_info 1\n"));
    free(t);
    const char *names[] = {"version", "commit"};
    const char *values[] = {"1.2.3", "abc\"def"};
    ck_assert(cv_ok(cv_metrics_set_build_info(reg, names, values, 2)));
    t = render();
    ck_assert_ptr_nonnull(strstr(t, "\ncredvault_build_info{version=\"1.2.3\",commit=\"abc\\\"def\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "\nprocess_cpu_seconds_total "));
    ck_assert_ptr_nonnull(strstr(t, "\nprocess_open_fds "));
    ck_assert_ptr_nonnull(strstr(t, "\nprocess_start_time_seconds "));
    const char *rss = strstr(t, "\nprocess_resident_memory_bytes ");
    ck_assert_ptr_nonnull(rss);
    ck_assert(strtod(rss + strlen("\nprocess_resident_memory_bytes "), NULL) > 100000.0);
    assert_wellformed(t);
    free(t);
    const char *too_many[CV_METRICS_INFO_MAX + 1] = {0};
    ck_assert(cv_failed(cv_metrics_set_build_info(reg, too_many, too_many, CV_METRICS_INFO_MAX + 1)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, hostile_label_values_are_escaped);
    tcase_add_test(tc, long_values_are_cut);
    tcase_add_test(tc, family_is_bounded);
    tcase_add_test(tc, counters_count_and_render);
    tcase_add_test(tc, histogram_buckets_are_cumulative);
    tcase_add_test(tc, render_respects_the_buffer_limit);
    tcase_add_test(tc, derived_samples);
    tcase_add_test(tc, concurrent_updates_are_not_lost);
    tcase_add_test(tc, registries_share_nothing);
    tcase_add_test(tc, alerted_series_exist_at_zero);
    tcase_add_test(tc, build_info_and_process_families);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    cv_metrics_free(reg);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
