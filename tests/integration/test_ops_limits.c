/* Rate limits, the stale-credentials report and the access log, against the
 * real service with small limits: a burst over a token's limit gets 429 with
 * Retry-After and then recovers; reads and writes have separate buckets;
 * repeated failed authentications hold the address back; an address's own
 * bucket; the stale report lists the right servers, names and dates only;
 * every request's log line is one JSON object with its tenant. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_ops_fixture.h"
#include "credvault/json_alloc.h"

/* Made afresh for every case (fresh_actors): two tenants, and tokens whose
 * rate buckets no earlier case has touched. */
static char tenant_a[64], tenant_b[64];
static char tok_a[160], tok_a_auditor[160], tok_stale[160], tok_b[160];

#define BAD_TOKEN "cvt_4444444444444444444444444444444444444444444444444444444444444444"
#define OTHER_BAD_TOKEN "cvt_5555555555555555555555555555555555555555555555555555555555555555"
#define LIMITS                                                                                                         \
    "CREDVAULT_RATE_READ_PER_S=2", "CREDVAULT_RATE_READ_BURST=3", "CREDVAULT_RATE_WRITE_PER_S=1",                      \
        "CREDVAULT_RATE_WRITE_BURST=6", "CREDVAULT_RATE_ADMIN_PER_S=50", "CREDVAULT_RATE_ADMIN_BURST=200",             \
        "CREDVAULT_RATE_AUTH_FAILURES=3", "CREDVAULT_RATE_AUTH_FAILURE_S=2"

static const char *const default_env[] = {LIMITS, "CREDVAULT_RATE_ADDRESS_FACTOR=0", NULL};
static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int restart_after; /* the case left the limiters in a state of its own: restart before the next */

static void restart_service(const char *const *env)
{
    ck_assert_int_eq(cv_test_service_stop(&svc), 0);
    ck_assert_int_eq(cv_test_service_start(&svc, env), 0);
    cv_test_client_free(cl);
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
}

static void fresh_actors(void)
{
    cv_t_unique_id("acme", tenant_a, sizeof(tenant_a));
    cv_t_unique_id("beta", tenant_b, sizeof(tenant_b));
    cv_t_tenant_create(cl, svc.admin_token, tenant_a);
    cv_t_tenant_create(cl, svc.admin_token, tenant_b);
    cv_t_token_mint(cl, svc.admin_token, "alice@acme.example", "tenant-admin", tenant_a, NULL, tok_a, sizeof(tok_a));
    cv_t_token_mint(cl, svc.admin_token, "audit@acme.example", "auditor", tenant_a, NULL, tok_a_auditor,
                    sizeof(tok_a_auditor));
    cv_t_token_mint(cl, svc.admin_token, "stale@acme.example", "tenant-admin", tenant_a, NULL, tok_stale,
                    sizeof(tok_stale));
    cv_t_token_mint(cl, svc.admin_token, "bob@beta.example", "tenant-admin", tenant_b, NULL, tok_b, sizeof(tok_b));
}

/* The service as main() started it, for the next case. */
static void restore_service(void)
{
    if (!restart_after) return;
    restart_after = 0;
    restart_service(default_env);
}

static unsigned retry_after(struct cv_test_response *r)
{
    const char *v = cv_test_response_header(r, "Retry-After");
    ck_assert_ptr_nonnull(v);
    return (unsigned)atoi(v);
}

START_TEST(a_burst_over_the_limit_gets_429_then_recovers)
{
    /* the burst (3) goes through, then 429: drained until refused, since the
     * bucket refills (2 a second) while a slow machine answers */
    struct cv_test_response r;
    int served = 0;
    for (;;) {
        r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a, NULL);
        if (r.status != 200 || served == 40) break;
        served++;
        cv_test_response_free(&r);
    }
    ck_assert_int_ge(served, 3);
    cv_t_expect_status(&r, 429, "rate_limited");
    unsigned wait = retry_after(&r);
    ck_assert_uint_ge(wait, 1);
    ck_assert_uint_le(wait, 2);
    ck_assert_ptr_nonnull(strstr(r.body, "retry after"));
    cv_test_response_free(&r);
    /* another token has its own bucket */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL, 200, NULL);
    /* waiting as told is enough */
    sleep_ms((long)wait * 1000 + 50);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a, NULL, 200, NULL);
    ck_assert(metric(svc.admin_token, "credvault_rate_limited_total{class=\"read\",scope=\"token\"}") >= 1);
}
END_TEST

START_TEST(writes_have_their_own_bucket)
{
    /* reads spent... */
    int reads_refused = 0;
    for (int i = 0; i < 40 && !reads_refused; i++) {
        struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a, NULL);
        reads_refused = r.status == 429;
        cv_test_response_free(&r);
    }
    ck_assert(reads_refused);
    /* ...writes still go through, up to their own burst (6, refilled at one a second) */
    char id[160] = "";
    int made = 0, limited = 0;
    long long t0 = mono_ms();
    for (int i = 0; i < 40 && !limited; i++) {
        struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/slack/deploy", tok_a,
                                                 "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-1-limits\"}}");
        if (r.status == 201) {
            made++;
            snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
        } else {
            cv_t_expect_status(&r, 429, "rate_limited");
            ck_assert_uint_ge(retry_after(&r), 1);
            limited = 1;
        }
        cv_test_response_free(&r);
    }
    ck_assert(limited);
    ck_assert_int_ge(made, 6);
    /* the burst, plus one a second for however long this machine took */
    ck_assert_int_le(made, 6 + (mono_ms() - t0) / 1000 + 1);
    ck_assert(metric(svc.admin_token, "credvault_rate_limited_total{class=\"write\",scope=\"token\"}") >= 1);
    /* validation is a read, not a write */
    sleep_ms(2100);
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    double reads_limited = metric(svc.admin_token, "credvault_rate_limited_total{class=\"read\",scope=\"token\"}");
    int validated = 0;
    limited = 0;
    for (int i = 0; i < 40 && !limited; i++) {
        struct cv_test_response r =
            cv_t_request(cl, "POST", path, tok_a, "{\"requiredKeys\":[\"SLACK_BOT_TOKEN\"]}");
        if (r.status == 200) {
            validated++;
        } else {
            cv_t_expect_status(&r, 429, "rate_limited");
            limited = 1;
        }
        cv_test_response_free(&r);
    }
    /* the read burst went through, then the read bucket said no */
    ck_assert(limited);
    ck_assert_int_ge(validated, 3);
    ck_assert(metric(svc.admin_token, "credvault_rate_limited_total{class=\"read\",scope=\"token\"}") >=
              reads_limited + 1);
    sleep_ms(2100);
}
END_TEST

START_TEST(failed_authentications_hold_the_token_back_not_the_address)
{
    /* the failures counted from zero: an earlier case may have failed to authenticate */
    restart_service(default_env);
    restart_after = 1;
    long long before = cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'auth.failed'");
    for (int i = 0; i < 3; i++)
        cv_t_expect_call(cl, "GET", "/api/mcp/servers", BAD_TOKEN, NULL, 401, "unauthorized");
    /* from now on that token waits, and is not even looked up (nor audited)… */
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", BAD_TOKEN, NULL);
    cv_t_expect_status(&r, 429, "rate_limited");
    unsigned wait = retry_after(&r);
    ck_assert_uint_ge(wait, 1);
    ck_assert_uint_le(wait, 2);
    cv_test_response_free(&r);
    /* …while a valid token from the same address (behind the same proxy) is served */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL, 200, NULL);
    sleep_ms((long)wait * 1000 + 50);
    /* forgiven after the wait; one more failure right away holds it back again */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", BAD_TOKEN, NULL, 401, "unauthorized");
    r = cv_t_request(cl, "GET", "/api/mcp/servers", BAD_TOKEN, NULL);
    cv_t_expect_status(&r, 429, "rate_limited");
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL, 200, NULL);
    /* another bad token has its own allowance: looked up, 401, audited */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", OTHER_BAD_TOKEN, NULL, 401, "unauthorized");
    /* audited: the four failures of the first token and the one of the other; the 429s not */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'auth.failed'"), before + 5);
    ck_assert_int_eq(
        cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'auth.failed' AND actor = 'anonymous' "
                      "AND detail->>'client' = '127.0.0.1' AND tenant_id IS NULL"),
        before + 5);
    ck_assert(metric(svc.admin_token, "credvault_rate_limited_total{class=\"read\",scope=\"auth_failures\"}") >= 2);
    /* the log names the address, never the token tried */
    ck_assert(cv_test_service_log_contains(&svc, "\"event\":\"auth_failures_slowed\",\"client\":\"127.0.0.1\""));
    ck_assert(!cv_test_service_log_contains(&svc, BAD_TOKEN));
    /* no credential at all: 401 and counted, but not audited */
    double counted = metric(svc.admin_token, "credvault_auth_failures_total");
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", NULL, NULL, 401, "unauthorized");
    ck_assert(metric(svc.admin_token, "credvault_auth_failures_total") >= counted + 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'auth.failed'"), before + 5);
    sleep_ms(2100); /* the next case starts without a held-back token */
}
END_TEST

START_TEST(stale_report_lists_the_right_servers)
{
    char fresh[160], far[160], soon[160], expired[160], old[160], body[512], soon_at[32];
    time_t t = time(NULL) + 10 * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(soon_at, sizeof(soon_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cv_t_deploy(cl, tok_stale, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_fresh_0123456789abcdef\"}}", fresh,
                sizeof(fresh));
    cv_t_deploy(cl, tok_stale, "github",
                "{\"env\":{\"GITHUB_TOKEN\":\"ghp_far_0123456789abcdef\"},\"expiresAt\":\"2099-01-01T00:00:00Z\"}", far,
                sizeof(far));
    snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_TOKEN\":\"ghp_soon_0123456789abcdef\"},\"expiresAt\":\"%s\"}",
             soon_at);
    cv_t_deploy(cl, tok_stale, "github", body, soon, sizeof(soon));
    cv_t_deploy(cl, tok_stale, "github",
                "{\"env\":{\"GITHUB_TOKEN\":\"ghp_expired_0123456789abcdef\"},\"expiresAt\":\"2001-01-01T00:00:00Z\"}",
                expired, sizeof(expired));
    cv_t_deploy(cl, tok_stale, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_old_0123456789abcdef\"}}", old, sizeof(old));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET last_updated = now() - interval '100 days', "
             "created_at = now() - interval '100 days' WHERE server_id = '%s' RETURNING 1",
             old);
    free(cv_t_psql(sql));
    /* the other tenant's stale server is none of acme's business */
    char beta_old[160];
    cv_t_deploy(cl, tok_b, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_beta_0123456789abcdef\"}}", beta_old,
                sizeof(beta_old));
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET last_updated = now() - interval '400 days' WHERE "
             "server_id = '%s' RETURNING 1",
             beta_old);
    free(cv_t_psql(sql));

    struct cv_test_response r =
        cv_t_request(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=30", tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *d = cv_t_data(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "olderThanDays")), 30);
    json_t *servers = json_object_get(d, "servers");
    ck_assert_int_eq(json_array_size(servers), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "total")), 3);
    int seen_old = 0, seen_soon = 0, seen_expired = 0;
    size_t i;
    json_t *s;
    json_array_foreach (servers, i, s) {
        /* names and dates only */
        const char *keys[] = {"id", "name", "templateId", "lastUpdated", "expiresAt", "expired", "reasons"};
        ck_assert_int_eq(json_object_size(s), 7);
        for (size_t k = 0; k < 7; k++)
            ck_assert_ptr_nonnull(json_object_get(s, keys[k]));
        const char *id = json_string_value(json_object_get(s, "id"));
        const char *reason = json_string_value(json_array_get(json_object_get(s, "reasons"), 0));
        if (strcmp(id, old) == 0) {
            seen_old = 1;
            ck_assert_str_eq(reason, "age");
            ck_assert(json_is_null(json_object_get(s, "expiresAt")));
        } else if (strcmp(id, soon) == 0) {
            seen_soon = 1;
            ck_assert_str_eq(reason, "expiry");
            ck_assert(json_is_false(json_object_get(s, "expired")));
        } else if (strcmp(id, expired) == 0) {
            seen_expired = 1;
            ck_assert_str_eq(reason, "expiry");
            ck_assert(json_is_true(json_object_get(s, "expired")));
            ck_assert_str_eq(json_string_value(json_object_get(s, "expiresAt")), "2001-01-01T00:00:00.000Z");
        }
    }
    ck_assert(seen_old && seen_soon && seen_expired);
    ck_assert_ptr_null(strstr(r.body, fresh));
    ck_assert_ptr_null(strstr(r.body, far));
    ck_assert_ptr_null(strstr(r.body, beta_old));
    ck_assert_ptr_null(strstr(r.body, "ghp_"));
    cv_test_response_free(&r);

    /* a longer horizon: the 100-day-old one is no longer "old", the soon one still expires within it */
    r = cv_t_request(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=200", tok_stale, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_ptr_null(strstr(r.body, old));
    ck_assert_ptr_nonnull(strstr(r.body, soon));
    ck_assert_ptr_nonnull(strstr(r.body, expired));
    cv_test_response_free(&r);
    /* the default is 90 days; paging works */
    r = cv_t_request(cl, "GET", "/api/mcp/credentials/stale?limit=1", tok_stale, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "olderThanDays")), 90);
    ck_assert_int_eq(json_array_size(json_object_get(cv_t_data(&r), "servers")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "total")), 3);
    cv_test_response_free(&r);
    /* beta sees its own */
    r = cv_t_request(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=30", tok_b, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_ptr_nonnull(strstr(r.body, beta_old));
    ck_assert_ptr_null(strstr(r.body, old));
    cv_test_response_free(&r);
    /* refusals (after the read bucket refilled) */
    sleep_ms(2100);
    cv_t_expect_call(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=0", tok_stale, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=abc", tok_stale, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/credentials/stale?olderThanDays=3651", tok_stale, NULL, 400, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/credentials/stale", svc.admin_token, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "GET", "/api/mcp/credentials/stale", NULL, NULL, 401, "unauthorized");
    /* and the metric of credentials past their limit sees the expired one */
    ck_assert(metric(svc.admin_token, "credvault_credentials_expired") >= 1);
}
END_TEST

/* The log line of one request (by its id), parsed; NULL if it never came. */
static json_t *log_line_of(const char *request_id)
{
    for (int attempt = 0; attempt < 40; attempt++) {
        FILE *f = fopen(svc.log_file, "r");
        ck_assert_ptr_nonnull(f);
        char line[8192];
        json_t *found = NULL;
        while (!found && fgets(line, sizeof(line), f)) {
            if (!strstr(line, request_id) || !strstr(line, "\"http_request\"")) continue;
            found = json_loads(line, 0, NULL);
        }
        fclose(f);
        if (found) return found;
        sleep_ms(50);
    }
    return NULL;
}

START_TEST(every_request_has_one_json_log_line)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL);
    cv_t_expect_status(&r, 200, NULL);
    char rid[64];
    snprintf(rid, sizeof(rid), "%s", cv_test_response_header(&r, "X-Request-Id"));
    cv_test_response_free(&r);
    json_t *l = log_line_of(rid);
    ck_assert_ptr_nonnull(l);
    const char *fields[] = {"time",   "level",  "event",       "method",     "path",   "route",
                            "tenant", "status", "duration_ms", "request_id", "client", "outcome"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        ck_assert_msg(json_is_string(json_object_get(l, fields[i])), "field %s missing", fields[i]);
    ck_assert_str_eq(json_string_value(json_object_get(l, "level")), "info");
    ck_assert_str_eq(json_string_value(json_object_get(l, "tenant")), tenant_a);
    ck_assert_str_eq(json_string_value(json_object_get(l, "route")), "/api/mcp/servers");
    ck_assert_str_eq(json_string_value(json_object_get(l, "status")), "200");
    ck_assert(atof(json_string_value(json_object_get(l, "duration_ms"))) > 0);
    json_decref(l);
    /* an unauthenticated request belongs to no tenant */
    r = cv_t_request(cl, "GET", "/healthz", NULL, NULL);
    snprintf(rid, sizeof(rid), "%s", cv_test_response_header(&r, "X-Request-Id"));
    cv_test_response_free(&r);
    l = log_line_of(rid);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(json_string_value(json_object_get(l, "tenant")), "-");
    json_decref(l);
    /* a body is never logged; every line of the log is one JSON object */
    char id[160];
    sleep_ms(1100);
    cv_t_deploy(cl, tok_stale, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_log_never_0123456789abcdef\"}}", id,
                sizeof(id));
    sleep_ms(200);
    ck_assert(!cv_test_service_log_contains(&svc, "ghp_log_never"));
    ck_assert(!cv_test_service_log_contains(&svc, tok_a));
    FILE *f = fopen(svc.log_file, "r");
    char line[8192];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(json_is_object(j), "not a JSON line: %s", line);
        ck_assert(json_is_string(json_object_get(j, "time")) && json_is_string(json_object_get(j, "level")));
        json_decref(j);
        lines++;
    }
    fclose(f);
    ck_assert_int_gt(lines, 10);
}
END_TEST

START_TEST(an_address_has_its_own_bucket)
{
    /* restarted with per-address limits equal to one token's, refilled once a
     * second: requests need only come faster than that */
    const char *env[] = {"CREDVAULT_RATE_READ_PER_S=1", "CREDVAULT_RATE_READ_BURST=3", "CREDVAULT_RATE_ADDRESS_FACTOR=1",
                         NULL};
    restart_after = 1;
    restart_service(env);
    static const char *const by_address = "credvault_rate_limited_total{class=\"read\",scope=\"address\"}";
    /* one token drains its bucket and the address's together (the address's
     * is asked first), however slowly this machine answers */
    int refused = 0;
    for (int i = 0; i < 40 && !refused; i++) {
        struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a, NULL);
        refused = r.status == 429;
        ck_assert_msg(r.status == 200 || refused, "status %ld", r.status);
        cv_test_response_free(&r);
    }
    ck_assert_msg(refused, "the read limit never answered 429");
    double before = metric(svc.admin_token, by_address);
    /* another token from the same address, its own bucket full, is held back
     * by the address's (asked before the token's): the refusal is the address's */
    refused = 0;
    for (int i = 0; i < 40 && !refused; i++) {
        struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL);
        if (r.status == 429) {
            cv_t_expect_status(&r, 429, "rate_limited");
            ck_assert_uint_ge(retry_after(&r), 1);
            refused = 1;
        } else {
            ck_assert_int_eq(r.status, 200);
        }
        cv_test_response_free(&r);
    }
    ck_assert_msg(refused, "a token was never held back by its address");
    ck_assert(metric(svc.admin_token, by_address) >= before + 1);
    sleep_ms(1100);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok_a_auditor, NULL, 200, NULL);
}
END_TEST

static Suite *ops_suite(void)
{
    static const struct cv_t_suite_spec spec = {
        .name = "ops_limits", .timeout_s = 120, .setup = fresh_actors, .teardown = restore_service};
    return cv_t_suite_new(&spec,
                          CV_T_TESTS(a_burst_over_the_limit_gets_429_then_recovers, writes_have_their_own_bucket,
                                     failed_authentications_hold_the_token_back_not_the_address, stale_report_lists_the_right_servers,
                                     every_request_has_one_json_log_line, an_address_has_its_own_bucket));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = ops_suite();
    if (cv_test_service_start(&svc, default_env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);

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
