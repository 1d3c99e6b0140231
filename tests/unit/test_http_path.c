/* Request path splitting and percent-decoding (src/http/path.c): refusals first. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

START_TEST(bad_escapes_refused)
{
    static const char *const bad[] = {"%", "%2", "%zz", "%g0", "a%", "%0", "%00", "%0a", "%0D", "%7f", "%1F",
                                      "a\tb", "a\nb", "\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[32];
        size_t n;
        ck_assert_msg(cv_failed(cv_http_percent_decode(bad[i], strlen(bad[i]), out, &n)), "accepted %s", bad[i]);
        ck_assert_int_eq(cv_error_category(), CV_ERR_INPUT);
    }
}
END_TEST

START_TEST(escapes_decoded)
{
    char out[64];
    size_t n;
    ck_assert(cv_ok(cv_http_percent_decode("a%20b%2Fc%2f%C3%A9+", 19, out, &n)));
    ck_assert_str_eq(out, "a b/c/\xc3\xa9+"); /* '+' is not a space in a path */
    ck_assert_uint_eq(n, strlen(out));
    ck_assert(cv_ok(cv_http_percent_decode("", 0, out, &n)));
    ck_assert_str_eq(out, "");
    /* length-bounded: the byte after n is not read */
    ck_assert(cv_ok(cv_http_percent_decode("ab%41", 2, out, &n)));
    ck_assert_str_eq(out, "ab");
}
END_TEST

START_TEST(bad_paths_refused)
{
    struct cv_http_path p;
    ck_assert_int_eq(cv_http_path_parse("", &p).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_http_path_parse("api", &p).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_http_path_parse("*", &p).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_http_path_parse("/a/%zz", &p).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_http_path_parse("/a/b%00", &p).err, CV_ERR_INPUT);
    char deep[3 * (CV_HTTP_MAX_SEGMENTS + 1) + 1] = "";
    for (int i = 0; i < CV_HTTP_MAX_SEGMENTS + 1; i++) strcat(deep, "/ab");
    ck_assert_int_eq(cv_http_path_parse(deep, &p).err, CV_ERR_INPUT);
    char long_seg[CV_HTTP_SEGMENT_MAX_BYTES + 3];
    long_seg[0] = '/';
    memset(long_seg + 1, 'x', CV_HTTP_SEGMENT_MAX_BYTES + 1);
    long_seg[CV_HTTP_SEGMENT_MAX_BYTES + 2] = '\0';
    ck_assert_int_eq(cv_http_path_parse(long_seg, &p).err, CV_ERR_TOO_LARGE);
    long_seg[CV_HTTP_SEGMENT_MAX_BYTES + 1] = '\0'; /* exactly the limit */
    ck_assert(cv_ok(cv_http_path_parse(long_seg, &p)));
    char long_path[CV_HTTP_PATH_MAX_BYTES + 2];
    for (size_t i = 0; i < sizeof(long_path) - 1; i++) long_path[i] = i % 8 == 0 ? '/' : 'a';
    long_path[sizeof(long_path) - 1] = '\0';
    ck_assert_int_eq(cv_http_path_parse(long_path, &p).err, CV_ERR_TOO_LARGE);
}
END_TEST

START_TEST(segments_split_before_decoding)
{
    struct cv_http_path p;
    ck_assert(cv_ok(cv_http_path_parse("/", &p)));
    ck_assert_uint_eq(p.n, 0);
    ck_assert(cv_ok(cv_http_path_parse("/api/mcp/servers/a%2Fb%20c/credentials", &p)));
    ck_assert_uint_eq(p.n, 5);
    ck_assert_str_eq(p.seg[0], "api");
    ck_assert_str_eq(p.seg[3], "a/b c");
    ck_assert_str_eq(p.seg[4], "credentials");
    ck_assert(cv_ok(cv_http_path_parse("/a//b/", &p)));
    ck_assert_uint_eq(p.n, 4);
    ck_assert_str_eq(p.seg[1], "");
    ck_assert_str_eq(p.seg[3], "");
    /* the longest path of all-escapes fits the storage */
    char path[CV_HTTP_PATH_MAX_BYTES + 1];
    size_t n = 0;
    for (int s = 0; s < CV_HTTP_MAX_SEGMENTS; s++) {
        path[n++] = '/';
        for (int k = 0; k < 21 && n + 3 <= CV_HTTP_PATH_MAX_BYTES; k++) {
            memcpy(path + n, "%41", 3);
            n += 3;
        }
    }
    path[n] = '\0';
    ck_assert(cv_ok(cv_http_path_parse(path, &p)));
    ck_assert_uint_eq(p.n, CV_HTTP_MAX_SEGMENTS);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_path");
    TCase *tc = tcase_create("path");
    tcase_add_test(tc, bad_escapes_refused);
    tcase_add_test(tc, escapes_decoded);
    tcase_add_test(tc, bad_paths_refused);
    tcase_add_test(tc, segments_split_before_decoding);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
