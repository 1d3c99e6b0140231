/* Tenant id syntax (src/crypto/ids.c): refusals first. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

START_TEST(invalid_refused)
{
    static const char *const bad[] = {"", "-", "-acme", "Acme", "ACME", "ac_me", "ac me", " acme", "acme ",
                                      "ac/me", "acme/1", "ac.me", "ac:me", "caf\xc3\xa9", "acme\n", "\tacme",
                                      "ac%2fme", "..", "a\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!cv_tenant_id_valid(bad[i]), "accepted: %s", bad[i]);
    ck_assert(!cv_tenant_id_valid(NULL));
    char s[CV_TENANT_ID_MAX_BYTES + 2];
    memset(s, 'a', CV_TENANT_ID_MAX_BYTES + 1);
    s[CV_TENANT_ID_MAX_BYTES + 1] = '\0';
    ck_assert(!cv_tenant_id_valid(s)); /* 65 */
}
END_TEST

START_TEST(valid_accepted)
{
    static const char *const good[] = {"a", "0", "acme", "acme-corp", "a-", "0-0", "9lives", "a--b", "z9"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(cv_tenant_id_valid(good[i]), "refused: %s", good[i]);
    char s[CV_TENANT_ID_MAX_BYTES + 1];
    memset(s, 'a', CV_TENANT_ID_MAX_BYTES);
    s[CV_TENANT_ID_MAX_BYTES] = '\0';
    ck_assert(cv_tenant_id_valid(s)); /* 64 */
}
END_TEST

START_TEST(every_byte_classified)
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

int main(void)
{
    Suite *s = suite_create("crypto_ids");
    TCase *tc = tcase_create("tenant_id");
    tcase_add_test(tc, invalid_refused);
    tcase_add_test(tc, valid_accepted);
    tcase_add_test(tc, every_byte_classified);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
