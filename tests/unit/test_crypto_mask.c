/* Masking (src/crypto/mask.c): invalid UTF-8 and boundaries first. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

#define B "\xe2\x80\xa2" /* U+2022 */
#define FULL B B B B B B B B
#define MID B B B B

static void assert_mask_len(const char *value, size_t len, const char *want)
{
    struct cv_buf out;
    cv_buf_init(&out, 4096);
    ck_assert(cv_ok(cv_mask_value(value, len, &out)));
    ck_assert_msg(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0, "mask of %zu bytes: got %.*s want %s",
                  len, (int)out.len, (const char *)out.data, want);
    cv_buf_free(&out);
}

static void assert_mask(const char *value, const char *want) { assert_mask_len(value, strlen(value), want); }

START_TEST(invalid_utf8_masked_fully)
{
    /* each bad sequence sits in a value long enough to show its ends */
    static const char *const bad[] = {
        "\xc0\xaf",         "\xc1\xbf",         /* overlong 2-byte */
        "\xe0\x80\xaf",     "\xe0\x9f\xbf",     /* overlong 3-byte */
        "\xf0\x80\x80\xaf", "\xf0\x8f\xbf\xbf", /* overlong 4-byte */
        "\xed\xa0\x80",     "\xed\xbf\xbf",     /* UTF-16 surrogates */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff",
        "\x80",             "\xbf",             /* lone continuation bytes */
        "\xc3",             "\xe2\x80",         "\xf0\x9f\x98", /* truncated */
        "\xc3\x28",         "\xe2\x28\xa1",     "\xf0\x9f\x28\x80", /* bad continuation */
    };
    char value[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]);
        /* at the start, in the hidden middle, and at the very end */
        memcpy(value, bad[i], n);
        memcpy(value + n, "abcdefghijklmnopqrst", 20);
        assert_mask_len(value, n + 20, FULL);
        memcpy(value, "abcdefghij", 10);
        memcpy(value + 10, bad[i], n);
        memcpy(value + 10 + n, "klmnopqrst", 10);
        assert_mask_len(value, n + 20, FULL);
        memcpy(value, "abcdefghijklmnopqrst", 20);
        memcpy(value + 20, bad[i], n);
        assert_mask_len(value, n + 20, FULL);
    }
}
END_TEST

START_TEST(null_refused)
{
    struct cv_buf out;
    cv_buf_init(&out, 64);
    ck_assert(cv_failed(cv_mask_value(NULL, 1, &out)));
    ck_assert(cv_failed(cv_mask_value("abc", 3, NULL)));
    ck_assert(cv_ok(cv_mask_value(NULL, 0, &out)));
    ck_assert_uint_eq(out.len, strlen(FULL));
    cv_buf_free(&out);
}
END_TEST

START_TEST(output_limit_leaves_output_unchanged)
{
    struct cv_buf out;
    cv_buf_init(&out, 20);
    ck_assert(cv_ok(cv_buf_append_str(&out, "keep")));
    ck_assert_int_eq(cv_mask_value("short", 5, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_mask_value("abcdefghijklmnopqrstuvwxyz", 26, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 4);
    ck_assert_mem_eq(out.data, "keep", 4);
    cv_buf_free(&out);
}
END_TEST

START_TEST(boundaries)
{
    assert_mask("", FULL);
    assert_mask("a", FULL);
    assert_mask("abcdefghijklmno", FULL);           /* 15 */
    assert_mask("abcdefghijklmnop", "abcd" MID "mnop"); /* 16 */
    assert_mask("abcdefghijklmnopq", "abcd" MID "nopq");
}
END_TEST

START_TEST(ascii_examples)
{
    assert_mask("AKIAIOSFODNN7EXAMPLE", "AKIA" MID "MPLE");
    assert_mask("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJal" MID "EKEY");
    assert_mask("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_" MID "xxxx");
}
END_TEST

START_TEST(multibyte_counts_code_points)
{
    /* 15 two-byte code points are 30 bytes, still under 16 characters */
    assert_mask("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                FULL);
    assert_mask("caf\xc3\xa9-0123456789-na\xc3\xafve", "caf\xc3\xa9" MID "a\xc3\xafve");
    /* CJK, three bytes each: 日本語のパスワードは秘密です (14) and with 2 more (16) */
    assert_mask("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc"
                "\xe3\x83\x89\xe3\x81\xaf\xe7\xa7\x98\xe5\xaf\x86\xe3\x81\xa7\xe3\x81\x99",
                FULL);
    assert_mask("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc"
                "\xe3\x83\x89\xe3\x81\xaf\xe7\xa7\x98\xe5\xaf\x86\xe3\x81\xa7\xe3\x81\x99XY",
                "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae" MID "\xe3\x81\xa7\xe3\x81\x99XY");
    /* edges of the valid ranges are shown as they are */
    assert_mask("\xc2\x80\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf" "0123456789ab" "\xf0\x90\x80\x80\xef\xbf\xbf\xdf\xbf\x7f",
                "\xc2\x80\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf" MID "\xf0\x90\x80\x80\xef\xbf\xbf\xdf\xbf\x7f");
}
END_TEST

#define GRIN "\xf0\x9f\x98\x80" /* U+1F600 */
#define ZWJ "\xe2\x80\x8d"
#define MAN "\xf0\x9f\x91\xa8"
#define WOMAN "\xf0\x9f\x91\xa9"
#define GIRL "\xf0\x9f\x91\xa7"
#define BOY "\xf0\x9f\x91\xa6"
#define FAMILY MAN ZWJ WOMAN ZWJ GIRL ZWJ BOY /* one glyph, seven code points */

START_TEST(emoji_count_code_points)
{
    assert_mask(GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN, FULL);
    assert_mask(GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN GRIN,
                GRIN GRIN GRIN GRIN MID GRIN GRIN GRIN GRIN);
    /* two families are 14 code points: masked fully; two more make 16 */
    assert_mask(FAMILY FAMILY, FULL);
    assert_mask(FAMILY FAMILY "ab", MAN ZWJ WOMAN ZWJ MID ZWJ BOY "ab");
    assert_mask("ab" FAMILY FAMILY, "ab" MAN ZWJ MID ZWJ GIRL ZWJ BOY);
}
END_TEST

START_TEST(appends)
{
    struct cv_buf out;
    cv_buf_init(&out, 4096);
    ck_assert(cv_ok(cv_buf_append_str(&out, "[")));
    ck_assert(cv_ok(cv_mask_value("abcdefghijklmnop", 16, &out)));
    ck_assert(cv_ok(cv_mask_value("x", 1, &out)));
    const char *want = "[abcd" MID "mnop" FULL;
    ck_assert_uint_eq(out.len, strlen(want));
    ck_assert_mem_eq(out.data, want, out.len);
    cv_buf_free(&out);
}
END_TEST

START_TEST(long_value_shows_only_ends)
{
    size_t n = 100000;
    char *v = malloc(n);
    ck_assert_ptr_nonnull(v);
    memset(v, 's', n);
    memcpy(v, "HEAD", 4);
    memcpy(v + n - 4, "TAIL", 4);
    assert_mask_len(v, n, "HEAD" MID "TAIL");
    free(v);
}
END_TEST

static Suite *mask_suite(void)
{
    Suite *s = suite_create("crypto_mask");
    TCase *neg = tcase_create("hostile");
    tcase_add_test(neg, invalid_utf8_masked_fully);
    tcase_add_test(neg, null_refused);
    tcase_add_test(neg, output_limit_leaves_output_unchanged);
    tcase_add_test(neg, boundaries);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_add_test(pos, ascii_examples);
    tcase_add_test(pos, multibyte_counts_code_points);
    tcase_add_test(pos, emoji_count_code_points);
    tcase_add_test(pos, appends);
    tcase_add_test(pos, long_value_shows_only_ends);
    suite_add_tcase(s, pos);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mask_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
