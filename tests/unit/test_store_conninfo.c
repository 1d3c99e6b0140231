/* Connection keywords (src/store/conninfo.c): what the URL may override and
 * what always wins, and that a malformed URL is refused with libpq's reason
 * but without its password. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/result.h"
#include "store/internal.h"

static size_t index_of(const struct cv_conninfo *ci, const char *key)
{
    for (size_t i = 0; i < ci->n; i++)
        if (strcmp(ci->keys[i], key) == 0) return i;
    return (size_t)-1;
}

START_TEST(malformed_url_refused_quietly)
{
    struct cv_conninfo ci;
    struct cv_store_params p = {.url = "host=x password=hunter2 'unterminated"};
    cv_result r = cv_store_conninfo_init(&ci, &p);
    ck_assert_int_eq(r.err, CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    p.url = "postgresql://u:hunter2@h/db?nonsense=1";
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    p.url = "";
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    p.url = NULL;
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    char *huge = malloc(CV_STORE_URL_MAX_BYTES + 2);
    memset(huge, 'a', CV_STORE_URL_MAX_BYTES + 1);
    huge[CV_STORE_URL_MAX_BYTES + 1] = '\0';
    p.url = huge;
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    free(huge);
}
END_TEST

/* libpq's own reason stays; whatever of the password it quotes does not */
START_TEST(malformed_url_keeps_libpq_reason)
{
    struct cv_conninfo ci;
    struct cv_store_params p = {.url = "host=x bogus=1 password=hunter2"};
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    ck_assert_msg(strstr(cv_error_message(), "invalid connection option \"bogus\""), "%s", cv_error_message());
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    /* the percent-encoded token libpq quotes is the password itself */
    p.url = "postgresql://u:hun%zzter2@h/db";
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    ck_assert_msg(strstr(cv_error_message(), "invalid percent-encoded token"), "%s", cv_error_message());
    ck_assert_ptr_null(strstr(cv_error_message(), "zzter"));
    p.url = "postgresql://u@h/db?password=hun%zzter2&sslmode=require";
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "zzter"));
    /* a bare word where an option belongs: maybe a password pasted alone */
    p.url = "host=x user=u Hunter2";
    ck_assert_int_eq(cv_store_conninfo_init(&ci, &p).err, CV_ERR_INPUT);
    ck_assert_msg(strstr(cv_error_message(), "missing \"=\" after"), "%s", cv_error_message());
    ck_assert_ptr_null(strstr(cv_error_message(), "Hunter2"));
}
END_TEST

START_TEST(reason_cuts_every_password_form)
{
    char out[256];
    /* keyword form, quoted with a space, the file's password, a URI's userinfo */
    cv_store_conninfo_reason("host=h password = 'a b c'", NULL, "x \"a b c\" y\n\tz\n", out, sizeof(out));
    ck_assert_str_eq(out, "x \"*****\" y z");
    cv_store_conninfo_reason("host=h", "s3cr3t-from-file", "FATAL: s3cr3t-from-file\n", out, sizeof(out));
    ck_assert_str_eq(out, "FATAL: ********");
    cv_store_conninfo_reason("postgres://user:pw@h:5432/db", NULL, "pw pw", out, sizeof(out));
    ck_assert_str_eq(out, "** **");
    /* a password of asterisks is not found again in its own mask */
    cv_store_conninfo_reason("password=**", NULL, "a ** b", out, sizeof(out));
    ck_assert_str_eq(out, "a ** b");
    /* what names no password passes untouched, on one line */
    cv_store_conninfo_reason("host=h port=1", NULL,
                             "connection to server at \"h\", port 1 failed: Connection refused\n\tIs the server running?\n",
                             out, sizeof(out));
    ck_assert_str_eq(out, "connection to server at \"h\", port 1 failed: Connection refused Is the server running?");
}
END_TEST

START_TEST(defaults_before_url_overrides_after)
{
    struct cv_conninfo ci;
    struct cv_store_params p = {.url = "postgresql:///credvault?host=/tmp/x", .statement_timeout_ms = 5000};
    ck_assert(cv_ok(cv_store_conninfo_init(&ci, &p)));
    size_t db = index_of(&ci, "dbname");
    ck_assert_uint_lt(index_of(&ci, "connect_timeout"), db); /* the URL may set its own */
    ck_assert_uint_lt(index_of(&ci, "application_name"), db);
    ck_assert_str_eq(cv_store_conninfo_get(&ci, "connect_timeout"), "3");
    ck_assert_uint_gt(index_of(&ci, "options"), db);
    ck_assert_str_eq(cv_store_conninfo_get(&ci, "options"), "-c statement_timeout=5000");
    ck_assert_ptr_null(cv_store_conninfo_get(&ci, "password"));
    ck_assert_ptr_null(ci.keys[ci.n]);
    cv_store_conninfo_free(&ci);
}
END_TEST

START_TEST(explicit_settings_win)
{
    struct cv_conninfo ci;
    struct cv_store_params p = {.url = "host=/tmp/x dbname=cv connect_timeout=30 options='-c work_mem=8MB'",
                                .password = "s3cret",
                                .connect_timeout_s = 7,
                                .statement_timeout_ms = 250,
                                .lock_timeout_ms = 100};
    ck_assert(cv_ok(cv_store_conninfo_init(&ci, &p)));
    size_t db = index_of(&ci, "dbname");
    ck_assert_uint_gt(index_of(&ci, "connect_timeout"), db);
    ck_assert_str_eq(cv_store_conninfo_get(&ci, "connect_timeout"), "7");
    ck_assert_uint_gt(index_of(&ci, "password"), db);
    /* the URL's options are kept; ours come last so they win */
    ck_assert_str_eq(cv_store_conninfo_get(&ci, "options"), "-c work_mem=8MB -c statement_timeout=250 -c lock_timeout=100");
    cv_store_conninfo_free(&ci);
}
END_TEST

START_TEST(no_timeouts_no_options)
{
    struct cv_conninfo ci;
    struct cv_store_params p = {.url = "dbname=cv"};
    ck_assert(cv_ok(cv_store_conninfo_init(&ci, &p)));
    ck_assert_ptr_null(cv_store_conninfo_get(&ci, "options"));
    cv_store_conninfo_free(&ci);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_conninfo");
    TCase *tc = tcase_create("keywords");
    tcase_add_test(tc, malformed_url_refused_quietly);
    tcase_add_test(tc, malformed_url_keeps_libpq_reason);
    tcase_add_test(tc, reason_cuts_every_password_form);
    tcase_add_test(tc, defaults_before_url_overrides_after);
    tcase_add_test(tc, explicit_settings_win);
    tcase_add_test(tc, no_timeouts_no_options);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
