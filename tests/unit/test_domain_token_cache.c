/* The token cache (src/domain/token_cache.c) alone and behind cv_auth_bearer
 * with the in-memory store: nothing served while not live, a stale put
 * dropped, expiry honoured, cleared by a revocation here, and a known token
 * answered without a store lookup. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "cv_test_suite.h"
#include "domain/domain.h"
#include "domain/token_cache.h"
#include "fakes.h"

static struct cv_app *app;
static struct cv_token_cache *cache;
static struct cv_principal alice;

static void setup(void)
{
    app = cv_fake_app_new();
    ck_assert(cv_ok(cv_token_cache_new(&cache)));
    app->token_cache = cache;
    alice = cv_fake_principal(CV_ROLE_TENANT_ADMIN, "acme", NULL);
    cv_fake_tenant(app, "acme");
    cv_fake_calls_clear();
}

static void teardown(void)
{
    app->token_cache = NULL;
    cv_token_cache_free(cache);
    cv_fake_app_free(app);
}

static void digest_of(const char *s, uint8_t d[CV_TOKEN_HASH_BYTES]) { cv_crypto_sha256(s, strlen(s), d); }

START_TEST(nothing_is_served_while_not_live)
{
    uint8_t d[CV_TOKEN_HASH_BYTES];
    digest_of("cvt_one", d);
    struct cv_principal p;
    cv_token_cache_put(cache, cv_token_cache_gen(cache), d, &alice, 0);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0); /* the put did nothing */
    cv_token_cache_set_live(cache, 1);
    cv_token_cache_put(cache, cv_token_cache_gen(cache), d, &alice, 0);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 1);
    ck_assert_str_eq(p.tenant_id, "acme");
    /* the listener lost: not served, and forgotten */
    cv_token_cache_set_live(cache, 0);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0);
    cv_token_cache_set_live(cache, 1);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0);
}
END_TEST

START_TEST(a_put_that_raced_a_clear_is_dropped)
{
    uint8_t d[CV_TOKEN_HASH_BYTES], other[CV_TOKEN_HASH_BYTES];
    digest_of("cvt_one", d);
    digest_of("cvt_two", other);
    struct cv_principal p;
    cv_token_cache_set_live(cache, 1);
    uint64_t gen = cv_token_cache_gen(cache); /* read before the lookup */
    cv_token_cache_clear(cache);             /* a revocation lands meanwhile */
    cv_token_cache_put(cache, gen, d, &alice, 0);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0);
    /* another digest is another token */
    cv_token_cache_put(cache, cv_token_cache_gen(cache), d, &alice, 0);
    ck_assert_int_eq(cv_token_cache_get(cache, other, &p), 0);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 1);
    cv_token_cache_clear(cache);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0);
}
END_TEST

START_TEST(an_expired_token_is_not_served)
{
    uint8_t d[CV_TOKEN_HASH_BYTES];
    digest_of("cvt_one", d);
    struct cv_principal p;
    cv_token_cache_set_live(cache, 1);
    cv_token_cache_put(cache, cv_token_cache_gen(cache), d, &alice, cv_time_now_ms() - 1);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 0);
    cv_token_cache_put(cache, cv_token_cache_gen(cache), d, &alice, cv_time_now_ms() + 60000);
    ck_assert_int_eq(cv_token_cache_get(cache, d, &p), 1);
}
END_TEST

START_TEST(a_known_token_needs_no_lookup_until_revoked)
{
    json_t *b = cv_fake_json("{\"name\":\"ci\",\"role\":\"auditor\",\"tenantId\":\"acme\"}"), *d = NULL;
    ck_assert(cv_ok(cv_token_mint(app, &alice, b, &d)));
    char header[200], id[CV_STORE_UUID_BYTES + 1];
    snprintf(header, sizeof(header), "Bearer %s", json_string_value(json_object_get(d, "token")));
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
    json_decref(b);
    json_decref(d);
    struct cv_principal p;
    cv_fake_calls_clear();
    /* not live: every request looks the token up */
    ck_assert(cv_ok(cv_auth_bearer(app, header, &p)));
    ck_assert(cv_ok(cv_auth_bearer(app, header, &p)));
    ck_assert_uint_eq(cv_fake_calls("cv_store_token_lookup"), 2);
    cv_token_cache_set_live(cache, 1);
    ck_assert(cv_ok(cv_auth_bearer(app, header, &p)));
    for (int i = 0; i < 5; i++) ck_assert(cv_ok(cv_auth_bearer(app, header, &p)));
    ck_assert_uint_eq(cv_fake_calls("cv_store_token_lookup"), 3);
    ck_assert_int_eq(p.role, CV_ROLE_AUDITOR);
    ck_assert_str_eq(p.tenant_id, "acme");
    ck_assert_str_eq(p.token_id, id);
    /* revoked through this instance: refused at once */
    ck_assert(cv_ok(cv_token_revoke(app, &alice, id)));
    cv_fake_expect_fail(cv_auth_bearer(app, header, &p), CV_ERR_AUTH, NULL);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "domain_token_cache", .setup = setup, .teardown = teardown};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(nothing_is_served_while_not_live, a_put_that_raced_a_clear_is_dropped,
                                                an_expired_token_is_not_served,
                                                a_known_token_needs_no_lookup_until_revoked));
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
