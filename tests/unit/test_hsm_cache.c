/* The unwrapped-key LRU: bounded, exact-match lookups, and no handle handed
 * back for destruction while a thread still uses it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/cache.h"

static struct cv_key_ref ref(const char *tenant, uint32_t version, uint8_t fill)
{
    struct cv_key_ref r;
    memset(&r, 0, sizeof(r));
    snprintf(r.tenant_id, sizeof(r.tenant_id), "%s", tenant);
    r.version = version;
    r.master_version = 1;
    r.wrapped_len = 40;
    memset(r.wrapped, fill, r.wrapped_len);
    memset(r.binding, fill ^ 0x5a, sizeof(r.binding));
    return r;
}

static struct cv_hsm_cache *cache(unsigned cap)
{
    struct cv_hsm_cache *c = NULL;
    ck_assert(cv_ok(cv_hsm_cache_new(cap, &c)));
    return c;
}

static struct cv_hsm_cache_entry *put(struct cv_hsm_cache *c, const struct cv_key_ref *r, unsigned long h,
                                      struct cv_hsm_cache_doomed *doomed)
{
    struct cv_hsm_cache_entry *e = NULL;
    ck_assert(cv_ok(cv_hsm_cache_put(c, r, h, &e, doomed)));
    return e;
}

START_TEST(zero_capacity_is_refused)
{
    struct cv_hsm_cache *c = NULL;
    ck_assert_int_eq(cv_hsm_cache_new(0, &c).err, CV_ERR_INPUT);
}
END_TEST

START_TEST(changed_ref_never_meets_old_handle)
{
    struct cv_hsm_cache *c = cache(4);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a = ref("acme", 1, 0x11);
    cv_hsm_cache_unpin(c, put(c, &a, 100, &d));

    struct cv_key_ref b = a;
    b.wrapped[39] ^= 1; /* same tenant and versions, other bytes */
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    b = a;
    b.binding[0] ^= 1;
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    b = a;
    b.master_version = 2;
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    b = a;
    b.version = 2;
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    b = a;
    b.wrapped_len = 48;
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    b = ref("acme2", 1, 0x11);
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));

    struct cv_hsm_cache_entry *e = cv_hsm_cache_get(c, &a);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(cv_hsm_cache_handle(e), 100);
    ck_assert_uint_eq(cv_hsm_cache_unpin(c, e), 0);
    cv_hsm_cache_free(c);
}
END_TEST

START_TEST(evicts_least_recently_used)
{
    struct cv_hsm_cache *c = cache(2);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a = ref("a", 1, 1), b = ref("b", 1, 2), x = ref("x", 1, 3);
    cv_hsm_cache_unpin(c, put(c, &a, 10, &d));
    ck_assert_uint_eq(d.handle[0], 0);
    cv_hsm_cache_unpin(c, put(c, &b, 20, &d));
    ck_assert_uint_eq(d.handle[0], 0);
    cv_hsm_cache_unpin(c, cv_hsm_cache_get(c, &a)); /* a is now the most recent */
    cv_hsm_cache_unpin(c, put(c, &x, 30, &d));
    ck_assert_uint_eq(d.handle[0], 20); /* b goes, and its handle is handed back */
    ck_assert_uint_eq(cv_hsm_cache_count(c), 2);
    ck_assert_ptr_null(cv_hsm_cache_get(c, &b));
    cv_hsm_cache_free(c);
}
END_TEST

START_TEST(pinned_entry_is_destroyed_by_its_last_user)
{
    struct cv_hsm_cache *c = cache(1);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a = ref("a", 1, 1), b = ref("b", 1, 2);
    struct cv_hsm_cache_entry *ea = put(c, &a, 10, &d); /* stays pinned */
    struct cv_hsm_cache_entry *eb = put(c, &b, 20, &d);
    ck_assert_uint_eq(d.handle[0], 0);                 /* not while in use */
    ck_assert_ptr_null(cv_hsm_cache_get(c, &a));       /* but no longer found */
    ck_assert_uint_eq(cv_hsm_cache_handle(ea), 10);    /* still usable by its holder */
    ck_assert_uint_eq(cv_hsm_cache_unpin(c, ea), 10);  /* last user destroys it */
    ck_assert_uint_eq(cv_hsm_cache_unpin(c, eb), 0);
    cv_hsm_cache_free(c);
}
END_TEST

START_TEST(concurrent_unwrap_keeps_one_copy)
{
    struct cv_hsm_cache *c = cache(4);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a = ref("a", 1, 1);
    struct cv_hsm_cache_entry *first = put(c, &a, 10, &d);
    struct cv_hsm_cache_entry *second = put(c, &a, 11, &d);
    ck_assert_ptr_eq(first, second);
    ck_assert_uint_eq(d.handle[0], 11); /* the loser's copy is destroyed */
    ck_assert_uint_eq(cv_hsm_cache_count(c), 1);
    cv_hsm_cache_unpin(c, first);
    cv_hsm_cache_unpin(c, second);
    cv_hsm_cache_free(c);
}
END_TEST

START_TEST(detach_by_tenant)
{
    struct cv_hsm_cache *c = cache(8);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a1 = ref("a", 1, 1), a2 = ref("a", 2, 2), b = ref("b", 1, 3);
    cv_hsm_cache_unpin(c, put(c, &a1, 10, &d));
    struct cv_hsm_cache_entry *pinned = put(c, &a2, 20, &d);
    cv_hsm_cache_unpin(c, put(c, &b, 30, &d));
    unsigned long h, sum = 0;
    int n = 0;
    while (cv_hsm_cache_detach_next(c, "a", &h)) {
        sum += h;
        n++;
    }
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(sum, 10);                            /* the pinned one waits */
    ck_assert_uint_eq(cv_hsm_cache_unpin(c, pinned), 20);  /* … for its holder */
    ck_assert_uint_eq(cv_hsm_cache_count(c), 1);
    ck_assert_int_eq(cv_hsm_cache_detach_next(c, NULL, &h), 1);
    ck_assert_uint_eq(h, 30);
    ck_assert_int_eq(cv_hsm_cache_detach_next(c, NULL, &h), 0);
    cv_hsm_cache_free(c);
}
END_TEST

START_TEST(forget_returns_nothing)
{
    struct cv_hsm_cache *c = cache(2);
    struct cv_hsm_cache_doomed d;
    struct cv_key_ref a = ref("a", 1, 1);
    struct cv_hsm_cache_entry *e = put(c, &a, 10, &d);
    cv_hsm_cache_forget(c);
    ck_assert_uint_eq(cv_hsm_cache_count(c), 0);
    /* After re-initialisation the number may name a new object: never destroy it. */
    ck_assert_uint_eq(cv_hsm_cache_unpin(c, e), 0);
    cv_hsm_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hsm_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, zero_capacity_is_refused);
    tcase_add_test(tc, changed_ref_never_meets_old_handle);
    tcase_add_test(tc, evicts_least_recently_used);
    tcase_add_test(tc, pinned_entry_is_destroyed_by_its_last_user);
    tcase_add_test(tc, concurrent_unwrap_keeps_one_copy);
    tcase_add_test(tc, detach_by_tenant);
    tcase_add_test(tc, forget_returns_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
