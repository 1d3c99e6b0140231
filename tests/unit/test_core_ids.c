/* Identifier syntax (src/core/ids.c): refusals first, then every byte, then
 * the limits at and one past the edge. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/ids.h"

START_TEST(tenant_invalid_refused)
{
    static const char *const bad[] = {"", "-", "-acme", "Acme", "ACME", "ac_me", "ac me", " acme", "acme ",
                                      "ac/me", "acme/1", "ac.me", "ac:me", "caf\xc3\xa9", "acme\n", "\tacme",
                                      "ac%2fme", "..", "a\x80", "a.b", "\xc3\xa4"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!cv_tenant_id_valid(bad[i]), "accepted: %s", bad[i]);
    ck_assert(!cv_tenant_id_valid(NULL));
    char s[CV_TENANT_ID_MAX_BYTES + 2];
    memset(s, 'a', CV_TENANT_ID_MAX_BYTES + 1);
    s[CV_TENANT_ID_MAX_BYTES + 1] = '\0';
    ck_assert(!cv_tenant_id_valid(s)); /* 65 */
}
END_TEST

START_TEST(tenant_valid_accepted)
{
    static const char *const good[] = {"a", "0", "acme", "acme-corp", "a-", "0-0", "9lives", "a--b", "z9", "0-acme-9"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(cv_tenant_id_valid(good[i]), "refused: %s", good[i]);
    char s[CV_TENANT_ID_MAX_BYTES + 1];
    memset(s, 'a', CV_TENANT_ID_MAX_BYTES);
    s[CV_TENANT_ID_MAX_BYTES] = '\0';
    ck_assert(cv_tenant_id_valid(s)); /* 64 */
}
END_TEST

START_TEST(tenant_every_byte_classified)
{
    for (int c = 1; c < 256; c++) {
        char s[3] = {'a', (char)c, '\0'};
        int want = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        ck_assert_int_eq(cv_tenant_id_valid(s), want);
        s[0] = (char)c;
        s[1] = '\0';
        ck_assert_int_eq(cv_tenant_id_valid(s), want && c != '-');
    }
}
END_TEST

START_TEST(server_and_template_invalid_refused)
{
    static const char *const bad[] = {"",        "-github", ".github", "_github", "git hub",   "git/hub", "../etc",
                                      "github\n", "git%2f",  "git:hub", "git\\hub", "caf\xc3\xa9", "a\x80",   "a?b",
                                      "a#b",     "a\"b",    "a'b",     "a<b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!cv_server_id_valid(bad[i]), "server accepted: %s", bad[i]);
        ck_assert_msg(!cv_template_id_valid(bad[i]), "template accepted: %s", bad[i]);
    }
    ck_assert(!cv_server_id_valid(NULL));
    ck_assert(!cv_template_id_valid(NULL));

    char s[CV_SERVER_ID_MAX_BYTES + 2];
    memset(s, 'a', CV_SERVER_ID_MAX_BYTES + 1);
    s[CV_SERVER_ID_MAX_BYTES + 1] = '\0';
    ck_assert(!cv_server_id_valid(s)); /* 129 */
    s[CV_SERVER_ID_MAX_BYTES] = '\0';
    ck_assert(cv_server_id_valid(s)); /* 128 */
    s[CV_TEMPLATE_ID_MAX_BYTES + 1] = '\0';
    ck_assert(!cv_template_id_valid(s)); /* 65 */
    s[CV_TEMPLATE_ID_MAX_BYTES] = '\0';
    ck_assert(cv_template_id_valid(s)); /* 64 */
}
END_TEST

START_TEST(server_and_template_valid_accepted)
{
    static const char *const good[] = {"github", "grc-evidence", "GitHub", "a", "0", "grc-evidence-1765222822162",
                                       "my_server.v2", "a-", "a.", "a_"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ck_assert_msg(cv_server_id_valid(good[i]), "server refused: %s", good[i]);
        ck_assert_msg(cv_template_id_valid(good[i]), "template refused: %s", good[i]);
    }
}
END_TEST

START_TEST(server_every_byte_classified)
{
    for (int c = 1; c < 256; c++) {
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        char s[3] = {'a', (char)c, '\0'};
        ck_assert_int_eq(cv_server_id_valid(s), alnum || c == '.' || c == '_' || c == '-');
        s[0] = (char)c;
        s[1] = '\0';
        ck_assert_int_eq(cv_server_id_valid(s), alnum);
    }
}
END_TEST

/* A server id is "<template id>-<13 digits>": it must always fit. */
START_TEST(generated_server_id_fits)
{
    ck_assert_int_ge(CV_SERVER_ID_MAX_BYTES, CV_TEMPLATE_ID_MAX_BYTES + 1 + 13);
}
END_TEST

static int parse(const char *s, char tenant[CV_TENANT_ID_MAX_BYTES + 1], uint32_t *v)
{
    return cv_ok(cv_key_id_parse(s, strlen(s), tenant, v));
}

START_TEST(key_id_invalid_refused)
{
    static const char *const bad[] = {"",          "acme",        "acme/",       "/1",          "acme/0",
                                      "acme/01",   "acme/+1",     "acme/-1",     "acme/ 1",     "acme/1 ",
                                      "acme/1/2",  "Acme/1",      "ac me/1",     "acme//1",     "acme/4294967296",
                                      "acme/99999999999", "acme/1x", "acme/0x10", "-acme/1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char tenant[CV_TENANT_ID_MAX_BYTES + 1] = "untouched";
        uint32_t v = 77;
        ck_assert_msg(!parse(bad[i], tenant, &v), "accepted: %s", bad[i]);
        ck_assert_str_eq(tenant, "untouched"); /* a failure leaves the outputs alone */
        ck_assert_uint_eq(v, 77);
    }
    /* a NUL inside the counted bytes is not a terminator */
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    uint32_t v;
    ck_assert(cv_failed(cv_key_id_parse("acme/1\0", 7, tenant, &v)));
    ck_assert(cv_failed(cv_key_id_parse("ac\0e/1", 6, tenant, &v)));
    ck_assert(cv_failed(cv_key_id_parse(NULL, 0, tenant, &v)));
    /* a tenant one byte too long */
    char kid[CV_TENANT_ID_MAX_BYTES + 8];
    memset(kid, 'a', CV_TENANT_ID_MAX_BYTES + 1);
    strcpy(kid + CV_TENANT_ID_MAX_BYTES + 1, "/1");
    ck_assert(!parse(kid, tenant, &v));
}
END_TEST

START_TEST(key_id_round_trip)
{
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    uint32_t v = 0;
    ck_assert(parse("acme/1", tenant, &v));
    ck_assert_str_eq(tenant, "acme");
    ck_assert_uint_eq(v, 1);
    ck_assert(parse("a-1/4294967295", tenant, &v));
    ck_assert_uint_eq(v, 4294967295u);
    /* only the counted bytes are read */
    ck_assert(cv_ok(cv_key_id_parse("acme/12trailing", 7, tenant, &v)));
    ck_assert_uint_eq(v, 12);

    char longest[CV_TENANT_ID_MAX_BYTES + 1];
    memset(longest, 'z', CV_TENANT_ID_MAX_BYTES);
    longest[CV_TENANT_ID_MAX_BYTES] = '\0';
    char out[CV_KEY_ID_MAX_BYTES + 1];
    size_t len = 0;
    ck_assert(cv_ok(cv_key_id_format(longest, UINT32_MAX, out, &len)));
    ck_assert_uint_eq(len, CV_KEY_ID_MAX_BYTES);
    ck_assert_uint_eq(strlen(out), CV_KEY_ID_MAX_BYTES);
    ck_assert(parse(out, tenant, &v));
    ck_assert_str_eq(tenant, longest);
    ck_assert_uint_eq(v, UINT32_MAX);

    ck_assert(cv_failed(cv_key_id_format("Acme", 1, out, NULL)));
    ck_assert(cv_failed(cv_key_id_format("acme", 0, out, NULL)));
    ck_assert(cv_failed(cv_key_id_format(NULL, 1, out, NULL)));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_ids");
    TCase *tc = tcase_create("tenant_id");
    tcase_add_test(tc, tenant_invalid_refused);
    tcase_add_test(tc, tenant_valid_accepted);
    tcase_add_test(tc, tenant_every_byte_classified);
    suite_add_tcase(s, tc);
    tc = tcase_create("server_template_id");
    tcase_add_test(tc, server_and_template_invalid_refused);
    tcase_add_test(tc, server_and_template_valid_accepted);
    tcase_add_test(tc, server_every_byte_classified);
    tcase_add_test(tc, generated_server_id_fits);
    suite_add_tcase(s, tc);
    tc = tcase_create("key_id");
    tcase_add_test(tc, key_id_invalid_refused);
    tcase_add_test(tc, key_id_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
