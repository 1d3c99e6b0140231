/* Record AAD (src/crypto/aad.c): refusals and collisions first, then exact bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

static cv_err aad_err(const char *tenant, const char *server, uint32_t key_version, uint32_t format)
{
    struct cv_buf out;
    cv_buf_init(&out, 1024);
    ck_assert(cv_ok(cv_buf_append_str(&out, "keep")));
    cv_result r = cv_record_aad(tenant, server, key_version, format, &out);
    if (cv_failed(r)) {
        ck_assert_uint_eq(out.len, 4); /* a refusal leaves the output as it was */
        ck_assert_mem_eq(out.data, "keep", 4);
    }
    cv_buf_free(&out);
    return r.err;
}

/* Returns the AAD bytes in a fresh buffer that the caller frees. */
static struct cv_buf aad_of(const char *tenant, const char *server, uint32_t key_version, uint32_t format)
{
    struct cv_buf out;
    cv_buf_init(&out, 1024);
    ck_assert(cv_ok(cv_record_aad_rev(tenant, server, key_version, format, 1, &out)));
    return out;
}

static int same_bytes(const struct cv_buf *a, const struct cv_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

START_TEST(empty_and_null_refused)
{
    ck_assert_int_eq(aad_err("", "srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", "", 1, 2), CV_ERR_INPUT);
    ck_assert_int_ne(aad_err(NULL, "srv", 1, 2), CV_ERR_NONE);
    ck_assert_int_ne(aad_err("acme", NULL, 1, 2), CV_ERR_NONE);
    ck_assert(cv_failed(cv_record_aad("acme", "srv", 1, 2, NULL)));
}
END_TEST

START_TEST(over_long_refused)
{
    char tenant[CV_TENANT_ID_MAX_BYTES + 2];
    char server[CV_SERVER_ID_MAX_BYTES + 2];
    memset(tenant, 'a', sizeof(tenant) - 1);
    tenant[sizeof(tenant) - 1] = '\0';
    memset(server, 's', sizeof(server) - 1);
    server[sizeof(server) - 1] = '\0';
    ck_assert_int_eq(aad_err(tenant, "srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", server, 1, 2), CV_ERR_INPUT);
    /* exactly at the limits */
    tenant[CV_TENANT_ID_MAX_BYTES] = '\0';
    server[CV_SERVER_ID_MAX_BYTES] = '\0';
    ck_assert_int_eq(aad_err(tenant, server, 1, 2), CV_ERR_NONE);
}
END_TEST

START_TEST(invalid_tenant_and_versions_refused)
{
    ck_assert_int_eq(aad_err("Acme", "srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("-acme", "srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("ac/me", "srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", "srv", 0, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", "srv", 1, 0), CV_ERR_INPUT);
    /* server ids follow the one syntax of credvault/ids.h */
    ck_assert_int_eq(aad_err("acme", "srv/1", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", "-srv", 1, 2), CV_ERR_INPUT);
    ck_assert_int_eq(aad_err("acme", "s rv", 1, 2), CV_ERR_INPUT);
}
END_TEST

START_TEST(output_limit_leaves_output_unchanged)
{
    struct cv_buf out;
    cv_buf_init(&out, 40);
    ck_assert(cv_ok(cv_buf_append_str(&out, "keep")));
    ck_assert_int_eq(cv_record_aad("acme", "a-server-id-that-is-long", 1, 2, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 4);
    cv_buf_free(&out);
}
END_TEST

START_TEST(concatenation_collisions_differ)
{
    struct cv_buf a = aad_of("ab", "c", 1, 2), b = aad_of("a", "bc", 1, 2);
    ck_assert(!same_bytes(&a, &b));
    cv_buf_free(&a);
    cv_buf_free(&b);
    /* the same total length with the boundary moved */
    a = aad_of("a", "b1", 1, 2);
    b = aad_of("a-b", "1", 1, 2);
    ck_assert(!same_bytes(&a, &b));
    cv_buf_free(&a);
    cv_buf_free(&b);
    /* tenant and server swapped */
    a = aad_of("x", "y", 1, 2);
    b = aad_of("y", "x", 1, 2);
    ck_assert(!same_bytes(&a, &b));
    cv_buf_free(&a);
    cv_buf_free(&b);
}
END_TEST

START_TEST(version_differences_differ)
{
    static const uint32_t versions[] = {1, 2, 255, 256, 65536, 16777216, 4294967295u};
    const size_t n = sizeof(versions) / sizeof(versions[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            struct cv_buf a = aad_of("acme", "srv", versions[i], 2), b = aad_of("acme", "srv", versions[j], 2);
            ck_assert_int_eq(same_bytes(&a, &b), i == j);
            cv_buf_free(&a);
            cv_buf_free(&b);
            /* key version and format version do not stand in for each other */
            a = aad_of("acme", "srv", versions[i], versions[j]);
            b = aad_of("acme", "srv", versions[j], versions[i]);
            ck_assert_int_eq(same_bytes(&a, &b), i == j);
            cv_buf_free(&a);
            cv_buf_free(&b);
        }
    }
}
END_TEST

START_TEST(exact_bytes)
{
    static const uint8_t want[] = "credvault.record"
                                  "\x00\x00\x00\x02"
                                  "\x00\x00\x00\x04" "acme"
                                  "\x00\x00\x00\x05" "srv-1"
                                  "\x00\x00\x01\x03";
    struct cv_buf out;
    cv_buf_init(&out, 1024);
    ck_assert(cv_ok(cv_buf_append_str(&out, ">")));
    ck_assert(cv_ok(cv_record_aad("acme", "srv-1", 259, 2, &out)));
    ck_assert_uint_eq(out.len, 1 + sizeof(want) - 1);
    ck_assert_mem_eq(out.data, ">", 1); /* appended */
    ck_assert_mem_eq(out.data + 1, want, sizeof(want) - 1);
    cv_buf_free(&out);
}
END_TEST

/* Format 3: the same fields, then the revision as a u64 */
START_TEST(exact_bytes_with_revision)
{
    static const uint8_t want[] = "credvault.record"
                                  "\x00\x00\x00\x03"
                                  "\x00\x00\x00\x04" "acme"
                                  "\x00\x00\x00\x05" "srv-1"
                                  "\x00\x00\x01\x03"
                                  "\x00\x00\x00\x01\x00\x00\x00\x07";
    struct cv_buf out;
    cv_buf_init(&out, 1024);
    ck_assert(cv_ok(cv_record_aad_rev("acme", "srv-1", 259, CV_RECORD_VERSION, 4294967303LL, &out)));
    ck_assert_uint_eq(out.len, sizeof(want) - 1);
    ck_assert_mem_eq(out.data, want, sizeof(want) - 1);
    cv_buf_free(&out);
    /* format 3 needs a revision; revisions give different bytes; format 2 ignores it */
    cv_buf_init(&out, 1024);
    ck_assert_int_eq(cv_record_aad_rev("acme", "srv-1", 1, 3, 0, &out).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_record_aad("acme", "srv-1", 1, 3, &out).err, CV_ERR_INPUT);
    ck_assert_uint_eq(out.len, 0);
    cv_buf_free(&out);
    struct cv_buf a, b;
    cv_buf_init(&a, 1024);
    cv_buf_init(&b, 1024);
    ck_assert(cv_ok(cv_record_aad_rev("acme", "srv-1", 1, 3, 1, &a)));
    ck_assert(cv_ok(cv_record_aad_rev("acme", "srv-1", 1, 3, 2, &b)));
    ck_assert(!same_bytes(&a, &b));
    cv_buf_reset(&a);
    cv_buf_reset(&b);
    ck_assert(cv_ok(cv_record_aad_rev("acme", "srv-1", 1, 2, 1, &a)));
    ck_assert(cv_ok(cv_record_aad_rev("acme", "srv-1", 1, 2, 2, &b)));
    ck_assert(same_bytes(&a, &b));
    cv_buf_free(&a);
    cv_buf_free(&b);
}
END_TEST

START_TEST(server_id_bytes_taken_as_they_are)
{
    /* server ids are opaque (UUIDs today); any bytes are bound exactly */
    struct cv_buf a = aad_of("acme", "0b7f6c1e-5a4d-4f3e-9b2a-1c0d9e8f7a6b", 1, 2);
    ck_assert_uint_eq(a.len, 16 + 4 + 4 + 4 + 4 + 36 + 4);
    ck_assert_mem_eq(a.data + 16 + 4 + 4 + 4 + 4, "0b7f6c1e-5a4d-4f3e-9b2a-1c0d9e8f7a6b", 36);
    cv_buf_free(&a);
}
END_TEST

static Suite *aad_suite(void)
{
    Suite *s = suite_create("crypto_aad");
    TCase *neg = tcase_create("hostile");
    tcase_add_test(neg, empty_and_null_refused);
    tcase_add_test(neg, over_long_refused);
    tcase_add_test(neg, invalid_tenant_and_versions_refused);
    tcase_add_test(neg, output_limit_leaves_output_unchanged);
    tcase_add_test(neg, concatenation_collisions_differ);
    tcase_add_test(neg, version_differences_differ);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_add_test(pos, exact_bytes);
    tcase_add_test(pos, exact_bytes_with_revision);
    tcase_add_test(pos, server_id_bytes_taken_as_they_are);
    suite_add_tcase(s, pos);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(aad_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
