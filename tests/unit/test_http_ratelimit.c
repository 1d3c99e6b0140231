/* Token buckets and the authentication-failure penalty (src/http/ratelimit.c),
 * with the clock passed in: hostile cases first (floods, key churn, a
 * stubborn address), then refills, classes and scopes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/ratelimit.h"

static struct cv_rate_limits limits(double per_s, double burst)
{
    struct cv_rate_limits l;
    memset(&l, 0, sizeof(l));
    for (int c = 0; c < CV_RATE__COUNT; c++) {
        l.token[c] = (struct cv_rate_rule){per_s, burst};
        l.address[c] = (struct cv_rate_rule){per_s * 4, burst * 4};
    }
    l.auth_failures = 3;
    l.auth_failure_s = 10;
    return l;
}

static struct cv_ratelimit *make(double per_s, double burst)
{
    struct cv_rate_limits l = limits(per_s, burst);
    struct cv_ratelimit *rl = NULL;
    ck_assert(cv_ok(cv_ratelimit_new(&l, &rl)));
    return rl;
}

START_TEST(a_burst_over_the_limit_waits_then_recovers)
{
    struct cv_ratelimit *rl = make(2, 5); /* 2 per second, 5 at once */
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t), 0);
    unsigned wait = cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t);
    ck_assert_uint_eq(wait, 1); /* half a second, rounded up */
    /* refused requests take nothing: after the wait one goes through */
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t + 499), 1);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t + 500), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t + 500), 1);
    /* a long pause refills to the burst, not beyond */
    t += 3600 * 1000;
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t), 0);
    ck_assert_uint_ne(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "tok", t), 0);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(retry_after_is_rounded_up_and_bounded)
{
    struct cv_ratelimit *rl = make(0.3, 1);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_WRITE, CV_RATE_TOKEN, "t", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_WRITE, CV_RATE_TOKEN, "t", 0), 4); /* 3.33 s */
    cv_ratelimit_free(rl);
    rl = make(0.0001, 1);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_WRITE, CV_RATE_TOKEN, "t", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_WRITE, CV_RATE_TOKEN, "t", 0), CV_RATE_PENALTY_MAX_S);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(classes_scopes_and_keys_are_separate)
{
    struct cv_ratelimit *rl = make(1, 1);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "a", 0), 0);
    ck_assert_uint_ne(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "a", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_WRITE, CV_RATE_TOKEN, "a", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_ADMIN, CV_RATE_TOKEN, "a", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "b", 0), 0);
    /* an address has its own (larger) bucket under the same name */
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_ADDRESS, "a", 0), 0);
    ck_assert_uint_ne(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_ADDRESS, "a", 0), 0);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(rate_zero_means_no_limit)
{
    struct cv_ratelimit *rl = make(0, 1);
    for (int i = 0; i < 10000; i++)
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, "t", 0), 0);
    cv_ratelimit_free(rl);
    /* and no limiter at all lets everything through */
    ck_assert_uint_eq(cv_ratelimit_take(NULL, CV_RATE_READ, CV_RATE_TOKEN, "t", 0), 0);
    ck_assert_uint_eq(cv_ratelimit_penalty(NULL, "1.2.3.4", "bad0", 0), 0);
}
END_TEST

START_TEST(failed_authentications_slow_an_address_down)
{
    struct cv_ratelimit *rl = make(100, 100); /* 3 failures at once, one forgiven per 10 s */
    const char *addr = "203.0.113.7";
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 0), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 0), 0);
        cv_ratelimit_auth_failed(rl, addr, "bad0", 0);
    }
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 0), 10);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 4000), 6);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 10000), 0);
    /* failing again at once: held back again; every further failure holds it longer */
    cv_ratelimit_auth_failed(rl, addr, "bad0", 10000);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 10000), 10);
    cv_ratelimit_auth_failed(rl, addr, "bad0", 10000);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 10000), 20);
    for (int i = 0; i < 1000; i++)
        cv_ratelimit_auth_failed(rl, addr, "bad0", 10000);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "bad0", 10000), CV_RATE_PENALTY_MAX_S);
    /* another address is not affected */
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, "198.51.100.1", "bad0", 10000), 0);
    /* nor another token from the same address (a proxy speaks for many clients) */
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, addr, "good", 10000), 0);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(token_prefix_of_a_header)
{
    char p[CV_RATE_TOKEN_PREFIX_BYTES + 1];
    cv_rate_token_prefix(NULL, p);
    ck_assert_str_eq(p, "-");
    cv_rate_token_prefix("Basic dXNlcjpwYXNz", p);
    ck_assert_str_eq(p, "-");
    cv_rate_token_prefix("Bearer ", p);
    ck_assert_str_eq(p, "-");
    /* a credvault token: the characters after "cvt_", never the whole token */
    cv_rate_token_prefix("Bearer cvt_0123456789abcdef0123456789abcdef", p);
    ck_assert_str_eq(p, "0123456789ab");
    cv_rate_token_prefix("bearer cvt_0123", p);
    ck_assert_str_eq(p, "0123");
    /* a JWT: its tail, since its head is the same for every token of an issuer */
    cv_rate_token_prefix("Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig-ABCDEFGHIJKL", p);
    ck_assert_str_eq(p, "ABCDEFGHIJKL");
    /* bytes outside the token alphabet are folded, so a key stays printable */
    cv_rate_token_prefix("Bearer cvt_ab\x01\xff\"cd", p);
    ck_assert_str_eq(p, "ab???cd");
}
END_TEST

START_TEST(penalty_off_when_configured_so)
{
    struct cv_rate_limits l = limits(1, 1);
    l.auth_failures = 0;
    struct cv_ratelimit *rl = NULL;
    ck_assert(cv_ok(cv_ratelimit_new(&l, &rl)));
    for (int i = 0; i < 100; i++)
        cv_ratelimit_auth_failed(rl, "a", "bad0", 0);
    ck_assert_uint_eq(cv_ratelimit_penalty(rl, "a", "bad0", 0), 0);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(key_churn_stays_bounded)
{
    struct cv_ratelimit *rl = make(1, 1);
    /* far more keys than buckets: the oldest make room, nothing grows */
    char key[32];
    for (int i = 0; i < 4 * CV_RATE_SHARDS * CV_RATE_SLOTS_PER_SHARD; i++) {
        snprintf(key, sizeof(key), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_ADDRESS, key, i), 0);
    }
    /* a key used just now keeps its bucket: 3 of its 4 are left, then it waits */
    int64_t now = 4 * CV_RATE_SHARDS * CV_RATE_SLOTS_PER_SHARD - 1;
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_ADDRESS, key, now), 0);
    ck_assert_uint_ne(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_ADDRESS, key, now), 0);
    /* a key longer than a bucket's name is cut, not overflowed */
    char big[500];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_uint_eq(cv_ratelimit_take(rl, CV_RATE_READ, CV_RATE_TOKEN, big, 0), 0);
    cv_ratelimit_free(rl);
}
END_TEST

START_TEST(bad_settings_are_refused)
{
    struct cv_rate_limits l = limits(1, 1);
    l.token[CV_RATE_WRITE].burst = 0;
    struct cv_ratelimit *rl = NULL;
    ck_assert_int_eq(cv_ratelimit_new(&l, &rl).err, CV_ERR_INPUT);
    l = limits(1, 1);
    l.address[CV_RATE_READ].per_s = -1;
    ck_assert_int_eq(cv_ratelimit_new(&l, &rl).err, CV_ERR_INPUT);
    l = limits(1, 1);
    l.auth_failure_s = 0;
    ck_assert_int_eq(cv_ratelimit_new(&l, &rl).err, CV_ERR_INPUT);
}
END_TEST

START_TEST(routes_fall_into_classes)
{
    ck_assert_int_eq(cv_rate_class_of("GET", "/api/mcp/servers/:serverId/credentials"), CV_RATE_READ);
    ck_assert_int_eq(cv_rate_class_of("GET", "/api/mcp/servers/:serverId/env"), CV_RATE_READ);
    ck_assert_int_eq(cv_rate_class_of("POST", "/api/mcp/servers/:serverId/credentials/validate"), CV_RATE_READ);
    ck_assert_int_eq(cv_rate_class_of("HEAD", "/api/mcp/servers"), CV_RATE_READ);
    ck_assert_int_eq(cv_rate_class_of("POST", "/api/mcp/templates/:templateId/deploy"), CV_RATE_WRITE);
    ck_assert_int_eq(cv_rate_class_of("PUT", "/api/mcp/servers/:serverId/credentials"), CV_RATE_WRITE);
    ck_assert_int_eq(cv_rate_class_of("DELETE", "/api/mcp/servers/:serverId"), CV_RATE_WRITE);
    ck_assert_int_eq(cv_rate_class_of("GET", "/api/tenants"), CV_RATE_ADMIN);
    ck_assert_int_eq(cv_rate_class_of("POST", "/api/tokens"), CV_RATE_ADMIN);
    ck_assert_int_eq(cv_rate_class_of("GET", "/api/audit"), CV_RATE_ADMIN);
    ck_assert_int_eq(cv_rate_class_of("GET", "/metrics"), CV_RATE_ADMIN);
    ck_assert_int_eq(cv_rate_class_of("GET", NULL), CV_RATE_ADMIN);
    ck_assert_str_eq(cv_rate_class_name(CV_RATE_WRITE), "write");
}
END_TEST

START_TEST(settings_map_to_limits)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    struct cv_rate_limits l;
    cv_rate_limits_from_config(&cfg, &l);
    ck_assert(l.token[CV_RATE_READ].per_s == cfg.rate_read_per_s);
    ck_assert(l.address[CV_RATE_WRITE].per_s == (double)cfg.rate_write_per_s * cfg.rate_address_factor);
    ck_assert(l.address[CV_RATE_ADMIN].burst == (double)cfg.rate_admin_burst * cfg.rate_address_factor);
    ck_assert_uint_eq(l.auth_failures, cfg.rate_auth_failures);
    cfg.rate_address_factor = 0; /* behind a proxy every request has one address */
    cv_rate_limits_from_config(&cfg, &l);
    ck_assert(l.address[CV_RATE_READ].per_s == 0);
    struct cv_ratelimit *rl = NULL;
    ck_assert(cv_ok(cv_ratelimit_new(&l, &rl)));
    cv_ratelimit_free(rl);
    cv_config_free(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_ratelimit");
    TCase *tc = tcase_create("ratelimit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_burst_over_the_limit_waits_then_recovers);
    tcase_add_test(tc, retry_after_is_rounded_up_and_bounded);
    tcase_add_test(tc, classes_scopes_and_keys_are_separate);
    tcase_add_test(tc, rate_zero_means_no_limit);
    tcase_add_test(tc, failed_authentications_slow_an_address_down);
    tcase_add_test(tc, token_prefix_of_a_header);
    tcase_add_test(tc, penalty_off_when_configured_so);
    tcase_add_test(tc, key_churn_stays_bounded);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, routes_fall_into_classes);
    tcase_add_test(tc, settings_map_to_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
