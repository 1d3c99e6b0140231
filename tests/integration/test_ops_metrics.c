/* GET /metrics against the real service: who may scrape it, that it is the
 * Prometheus text format, and that the numbers move as the service works:
 * requests by route and status, latency, authentication failures, a
 * tampered record's decrypt failure, the HSM and its key cache, database
 * errors during an outage, and the gauges read from the database. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_ops_fixture.h"
#include "credvault/json_alloc.h"

static char tok_a[160], tok_a_auditor[160], metrics_token[80];

#define SERVERS_200 "credvault_http_requests_total{method=\"GET\",route=\"/api/mcp/servers\",status=\"200\"}"

START_TEST(only_the_scrape_token_or_an_admin_may_scrape)
{
    cv_t_expect_call(cl, "GET", "/metrics", NULL, NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "GET", "/metrics", "cvt_2222222222222222222222222222222222222222222222222222222222222222",
                     NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "GET", "/metrics", "not-the-metrics-token", NULL, 401, "unauthorized");
    cv_t_expect_call(cl, "GET", "/metrics", tok_a, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "GET", "/metrics", tok_a_auditor, NULL, 403, "forbidden");
    struct cv_test_response r = cv_t_request(cl, "GET", "/metrics", metrics_token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert(strncmp(cv_test_response_header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) == 0);
    ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
    /* every family is announced, and no line is anything but a comment or a sample */
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE credvault_http_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE credvault_http_request_duration_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE credvault_hsm_up gauge\n"));
    for (const char *line = r.body; *line;) {
        const char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_msg(*line == '#' || (*line >= 'a' && *line <= 'z'), "odd line: %.*s", (int)(nl - line), line);
        line = nl + 1;
    }
    /* never a token or a secret */
    ck_assert_ptr_null(strstr(r.body, metrics_token));
    ck_assert_ptr_null(strstr(r.body, "cvt_"));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/metrics", svc.admin_token, NULL, 200, NULL);
}
END_TEST

START_TEST(requests_latency_and_auth_failures_move)
{
    double before = metric(metrics_token, SERVERS_200);
    double lat = metric(metrics_token, "credvault_http_request_duration_seconds_count{route=\"/api/mcp/servers\"}");
    double fails = metric(metrics_token, "credvault_auth_failures_total");
    ck_assert(fails >= 0);
    for (int i = 0; i < 5; i++)
        cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a, NULL, 200, NULL);
    for (int i = 0; i < 3; i++)
        cv_t_expect_call(cl, "GET", "/api/mcp/servers",
                         "cvt_3333333333333333333333333333333333333333333333333333333333333333", NULL, 401, NULL);
    /* the scrape's own request is counted once it completed, so compare with >= */
    ck_assert(metric(metrics_token, SERVERS_200) == (before < 0 ? 0 : before) + 5);
    ck_assert(metric(metrics_token, "credvault_http_request_duration_seconds_count{route=\"/api/mcp/servers\"}") >=
              (lat < 0 ? 0 : lat) + 8);
    ck_assert(metric(metrics_token, "credvault_auth_failures_total") == fails + 3);
    ck_assert(metric(metrics_token, "credvault_http_requests_total{method=\"GET\",route=\"/api/mcp/servers\","
                                    "status=\"401\"}") >= 3);
    /* unknown paths all share one label: a scanner cannot grow the series */
    cv_t_expect_call(cl, "GET", "/no/such/path/1", tok_a, NULL, 404, NULL);
    cv_t_expect_call(cl, "GET", "/no/such/path/2", tok_a, NULL, 404, NULL);
    char *text = scrape(metrics_token);
    ck_assert(metric_in(text, "credvault_http_requests_total{method=\"GET\",route=\"-\",status=\"404\"}") >= 2);
    ck_assert_ptr_null(strstr(text, "/no/such/path"));
    free(text);
    /* a method of the client's invention is "other" */
    struct cv_test_response r;
    const char *hdr[] = {NULL};
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(cv_test_request_raw(cl, "FROBNICATE", "/api/mcp/servers", hdr, NULL, 0, &r), 0);
    cv_test_response_free(&r);
    text = scrape(metrics_token);
    ck_assert_ptr_null(strstr(text, "FROBNICATE"));
    ck_assert_ptr_nonnull(strstr(text, "method=\"other\""));
    free(text);
}
END_TEST

START_TEST(a_tampered_record_raises_the_decrypt_failure_counter)
{
    char id[160], path[256];
    cv_t_deploy(cl, tok_a, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_metrics_tamper_0123456789\"}}", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 200, NULL);
    double before = metric(metrics_token, "credvault_decrypt_failures_total");
    ck_assert(before >= 0);
    cv_t_record_flip(id, "authTag");
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 500, "decrypt_failed");
    cv_t_expect_call(cl, "GET", path, tok_a_auditor, NULL, 500, "decrypt_failed");
    ck_assert(metric(metrics_token, "credvault_decrypt_failures_total") == before + 2);
    /* a bad tag is an answer about the data, not an HSM outage: no recovery */
    ck_assert(metric(metrics_token, "credvault_hsm_recoveries_total{result=\"ok\"}") <= 0);
    ck_assert(metric(metrics_token, "credvault_hsm_up") == 1);
}
END_TEST

START_TEST(hsm_and_key_cache_numbers_move)
{
    char id[160], path[256];
    cv_t_deploy(cl, tok_a, "slack", "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-123456789012-metrics\"}}", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    double ops = metric(metrics_token, "credvault_hsm_operations_total{result=\"ok\"}");
    double hits = metric(metrics_token, "credvault_key_cache_hits_total");
    double misses = metric(metrics_token, "credvault_key_cache_misses_total");
    ck_assert(misses >= 1); /* the first use of acme's key unwrapped it */
    for (int i = 0; i < 4; i++)
        cv_t_expect_call(cl, "GET", path, tok_a, NULL, 200, NULL);
    ck_assert(metric(metrics_token, "credvault_hsm_operations_total{result=\"ok\"}") >= ops + 4);
    ck_assert(metric(metrics_token, "credvault_key_cache_hits_total") >= hits + 4);
    ck_assert(metric(metrics_token, "credvault_key_cache_misses_total") == misses);
    ck_assert(metric(metrics_token, "credvault_hsm_operation_duration_seconds_count") >= ops + 4);
    ck_assert(metric(metrics_token, "credvault_key_cache_evictions_total") >= 0);
}
END_TEST

START_TEST(gauges_from_the_database)
{
    char id[160];
    /* one credential map already past its expiry */
    cv_t_deploy(cl, tok_a, "github",
                "{\"env\":{\"GITHUB_TOKEN\":\"ghp_expired_0123456789abcdef\"},\"expiresAt\":\"2001-01-01T00:00:00Z\"}",
                id, sizeof(id));
    /* a read: its audit event is written without waiting for the disk */
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok_a, NULL, 200, NULL);
    char *text = scrape(metrics_token);
    ck_assert(metric_in(text, "credvault_db_up") == 1);
    ck_assert(metric_in(text, "credvault_credentials_expired") >= 1);
    long long stored = cv_t_psql_int("SELECT count(*) FROM mcp_credentials");
    ck_assert(metric_in(text, "credvault_credentials") == (double)stored);
    ck_assert(metric_in(text, "credvault_tenants") == 2);
    ck_assert(metric_in(text, "credvault_tenant_key_versions{state=\"active\"}") >= 2);
    long long acme = cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'acme'");
    ck_assert(metric_in(text, "credvault_key_encryptions{tenant=\"acme\",version=\"1\"}") >= (double)acme);
    ck_assert(metric_in(text, "credvault_key_max_encryptions") == 1000000000);
    ck_assert(metric_in(text, "credvault_key_usage_max_ratio") > 0);
    ck_assert(metric_in(text, "credvault_audit_events_total{durability=\"sync\"}") >= 1);
    ck_assert(metric_in(text, "credvault_audit_events_total{durability=\"async\"}") >= 1);
    free(text);
    /* credentials older than CREDVAULT_CREDENTIAL_MAX_AGE_DAYS (90) */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET last_updated = now() - interval '100 days' WHERE "
             "server_id = '%s' RETURNING 1",
             id);
    free(cv_t_psql(sql));
    ck_assert(metric(metrics_token, "credvault_credentials_over_age") >= 1);
}
END_TEST

static double db_errors(const char *text)
{
    double sum = 0;
    const char *kinds[] = {"connect", "connection_lost", "unavailable"};
    for (size_t i = 0; i < 3; i++) {
        char series[128];
        snprintf(series, sizeof(series), "credvault_db_errors_total{category=\"%s\"}", kinds[i]);
        double v = metric_in(text, series);
        if (v > 0) sum += v;
    }
    return sum;
}

START_TEST(database_errors_are_counted_and_the_scrape_survives_an_outage)
{
    char *text = scrape(metrics_token);
    double before = db_errors(text);
    free(text);
    ck_assert_int_eq(cv_test_sh("\"$CV_SOURCE_DIR/scripts/pg-cluster\" stop \"$CV_PG_DIR\" >/dev/null"), 0);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a, NULL, 503, NULL);
    /* the scrape still answers, with the database marked down */
    text = scrape(metrics_token);
    ck_assert(metric_in(text, "credvault_db_up") == 0);
    ck_assert(db_errors(text) >= before + 1);
    free(text);
    ck_assert_int_eq(cv_test_sh("\"$CV_SOURCE_DIR/scripts/pg-cluster\" start \"$CV_PG_DIR\" >/dev/null"), 0);
    cv_t_expect_recovery(cl, "GET", "/api/mcp/servers", tok_a, 200, 5000);
    ck_assert(metric(metrics_token, "credvault_db_up") == 1);
}
END_TEST

static Suite *ops_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "ops_metrics", .timeout_s = 120};
    return cv_t_suite_new(
        &spec, CV_T_TESTS(only_the_scrape_token_or_an_admin_may_scrape, requests_latency_and_auth_failures_move,
                          a_tampered_record_raises_the_decrypt_failure_counter, hsm_and_key_cache_numbers_move,
                          gauges_from_the_database, database_errors_are_counted_and_the_scrape_survives_an_outage));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = ops_suite();
    /* the scrape token, in a file as Prometheus' credentials_file would hold it */
    snprintf(metrics_token, sizeof(metrics_token), "scrape-%08x-%lx", (unsigned)getpid(), (long)time(NULL));
    char file[512], setting[600];
    snprintf(file, sizeof(file), "%s/metrics-token", getenv("CV_TEST_TMP"));
    FILE *f = fopen(file, "w");
    if (!f) return 1;
    fprintf(f, "%s\n", metrics_token);
    fclose(f);
    if (chmod(file, 0600) != 0) return 1; /* a secret file others may read is refused */
    snprintf(setting, sizeof(setting), "CREDVAULT_METRICS_TOKEN_FILE=%s", file);
    /* the failed authentications of these tests must not hold the address back */
    const char *env[] = {setting, "CREDVAULT_RATE_AUTH_FAILURES=1000", NULL};
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name audit@acme.example --role auditor --tenant acme", tok_a_auditor,
                    sizeof(tok_a_auditor)))
        return 1;

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
        failed++;
    }
    return failed ? 1 : 0;
}
