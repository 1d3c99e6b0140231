/* The one time parser (src/core/isotime.c): refusals first — dates that do
 * not exist, fields that are not all digits, other forms than the caller
 * allows — then values, the calendar against the C library's, round trips. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/isotime.h"

static int parses(const char *s, unsigned forms)
{
    int64_t ms = -42;
    cv_result r = cv_time_parse("expiresAt", s, forms, &ms);
    if (cv_failed(r)) {
        ck_assert_int_eq(r.err, CV_ERR_INPUT);
        ck_assert_int_eq(ms, -42); /* untouched on failure */
        /* the message names the field and never quotes the input */
        ck_assert_ptr_nonnull(strstr(cv_error_message(), "expiresAt"));
        if (s && strlen(s) > 4) ck_assert_ptr_null(strstr(cv_error_message(), s));
    }
    return cv_ok(r);
}

static int64_t value(const char *s, unsigned forms)
{
    int64_t ms = -1;
    cv_result r = cv_time_parse("t", s, forms, &ms);
    ck_assert_msg(cv_ok(r), "refused %s: %s", s, cv_error_message());
    return ms;
}

START_TEST(impossible_dates_refused)
{
    static const char *const bad[] = {
        "2026-02-31T00:00:00Z", "2026-02-29T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-06-31T00:00:00Z", "2026-09-31T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-01-32T00:00:00Z", "2026-00-10T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-00T00:00:00Z",
        "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z", "2026-01-01T99:99:99Z",
        "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!parses(bad[i], CV_TIME_STRICT), "accepted %s", bad[i]);
        ck_assert_msg(!parses(bad[i], CV_TIME_DATE | CV_TIME_OFFSET), "accepted %s in any form", bad[i]);
    }
}
END_TEST

START_TEST(malformed_refused)
{
    static const char *const bad[] = {
        "2026-+1-01T00:00:00Z", "2026--1-01T00:00:00Z", "2026- 1-01T00:00:00Z", "+026-01-01T00:00:00Z",
        "2026-1-01T00:00:00Z",  "2026-01-1T00:00:00Z",  "2026-01-01T0:00:00Z",  "2026-01-01T00:0:00Z",
        "2026-01-01T00:00:0Z",  "2026-01-01T+1:00:00Z", "2026-01-01T00:00:-1Z", " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z ", "2026-01-01T00:00:00Z\n", "2026-01-01T00:00:00ZZ", "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00:00.12a Z", "2026/01/01T00:00:00Z",
        "2026-01-01X00:00:00Z", "20260101T000000Z", "10000-01-01T00:00:00Z", "2026-01-01T00:00",
        "2026-01-01T", "2026", "", "2026-0a-01T00:00:00Z", "２026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.000000000000000000000000000000000000Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!parses(bad[i], CV_TIME_STRICT), "accepted %s", bad[i]);
        ck_assert_msg(!parses(bad[i], CV_TIME_DATE | CV_TIME_OFFSET), "accepted %s in any form", bad[i]);
    }
    ck_assert(!parses(NULL, CV_TIME_STRICT));
}
END_TEST

START_TEST(forms_not_allowed_refused)
{
    /* strict: no date alone, no zone but Z, no space, no lowercase */
    static const char *const other[] = {"2026-01-31",
                                        "2026-01-01T00:00:00",
                                        "2026-01-01T00:00:00+00:00",
                                        "2026-01-01T00:00:00-05:00",
                                        "2026-01-01 00:00:00Z",
                                        "2026-01-01t00:00:00z",
                                        "2026-01-01T00:00:00z"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        ck_assert_msg(!parses(other[i], CV_TIME_STRICT), "strict accepted %s", other[i]);
    ck_assert(parses("2026-01-31", CV_TIME_DATE));
    ck_assert(!parses("2026-01-01T00:00:00+00:00", CV_TIME_DATE));
    ck_assert(!parses("2026-01-31", CV_TIME_OFFSET));
    /* offsets: bounded hours and minutes, digits only */
    ck_assert(!parses("2026-01-01T00:00:00+24:00", CV_TIME_OFFSET));
    ck_assert(!parses("2026-01-01T00:00:00+01:60", CV_TIME_OFFSET));
    ck_assert(!parses("2026-01-01T00:00:00+1:00", CV_TIME_OFFSET));
    ck_assert(!parses("2026-01-01T00:00:00+01:0", CV_TIME_OFFSET));
    ck_assert(!parses("2026-01-01T00:00:00+01:00Z", CV_TIME_OFFSET));
    ck_assert(!parses("2026-01-01T00:00:00+", CV_TIME_OFFSET));
    /* before the epoch once the offset is applied */
    ck_assert(!parses("1970-01-01T00:30:00+01:00", CV_TIME_OFFSET));
}
END_TEST

START_TEST(values)
{
    ck_assert_int_eq(value("1970-01-01T00:00:00Z", 0), 0);
    ck_assert_int_eq(value("2026-12-31T00:00:00Z", 0), INT64_C(1798675200000));
    ck_assert_int_eq(value("2024-02-29T12:00:00Z", 0), INT64_C(1709208000000));
    ck_assert_int_eq(value("2026-02-28T23:59:59.999Z", 0), INT64_C(1772323199999));
    ck_assert_int_eq(value("9999-12-31T23:59:59.999Z", 0), CV_TIME_MAX_MS);
    /* fractions: 1 to 9 digits, kept to the millisecond */
    ck_assert_int_eq(value("1970-01-01T00:00:00.5Z", 0), 500);
    ck_assert_int_eq(value("1970-01-01T00:00:00.25Z", 0), 250);
    ck_assert_int_eq(value("1970-01-01T00:00:00.123456789Z", 0), 123);
    ck_assert_int_eq(value("2000-02-29", CV_TIME_DATE), INT64_C(951782400000));
    /* database exports */
    ck_assert_int_eq(value("2025-12-08 19:40:22.162+00:00", CV_TIME_OFFSET), INT64_C(1765222822162));
    ck_assert_int_eq(value("2025-12-08T19:40:22.162", CV_TIME_OFFSET), INT64_C(1765222822162));
    ck_assert_int_eq(value("2025-12-08T20:40:22.162+01", CV_TIME_OFFSET), INT64_C(1765222822162));
    ck_assert_int_eq(value("2025-12-08T14:10:22.162-0530", CV_TIME_OFFSET), INT64_C(1765222822162));
    ck_assert_int_eq(value("2025-12-08T19:40:22.162Z", CV_TIME_OFFSET), INT64_C(1765222822162));
}
END_TEST

/* Every day of years that test the leap rules: accepted exactly when the C
 * library's calendar keeps the date as written, with the same value. */
START_TEST(calendar_agrees_with_libc)
{
    static const int years[] = {1970, 1999, 2000, 2023, 2024, 2026, 2100, 2400, 9999};
    for (size_t i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
        for (int m = 1; m <= 12; m++) {
            for (int d = 1; d <= 31; d++) {
                char s[32];
                snprintf(s, sizeof(s), "%04d-%02d-%02dT06:07:08Z", years[i], m, d);
                struct tm tm = {.tm_year = years[i] - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 6, .tm_min = 7,
                                .tm_sec = 8};
                time_t t = timegm(&tm);
                int exists = tm.tm_mday == d && tm.tm_mon == m - 1;
                int64_t ms = -1;
                cv_result r = cv_time_parse("t", s, CV_TIME_STRICT, &ms);
                ck_assert_msg(cv_ok(r) == exists, "%s: parser %d, libc %d", s, cv_ok(r), exists);
                if (exists) ck_assert_int_eq(ms, (int64_t)t * 1000);
            }
        }
    }
}
END_TEST

START_TEST(format_round_trips)
{
    char out[CV_TIME_TEXT_BYTES];
    cv_time_iso8601(0, out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    cv_time_iso8601(INT64_C(1765222822162), out);
    ck_assert_str_eq(out, "2025-12-08T19:40:22.162Z");
    cv_time_iso8601(CV_TIME_MAX_MS, out);
    ck_assert_str_eq(out, "9999-12-31T23:59:59.999Z");
    cv_time_iso8601(-5, out); /* clamped */
    ck_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    cv_time_iso8601(CV_TIME_MAX_MS + 1, out);
    ck_assert_str_eq(out, "9999-12-31T23:59:59.999Z");
    /* a spread of values, including every leap day edge on the way */
    for (int64_t ms = 0; ms < CV_TIME_MAX_MS; ms += INT64_C(86400000) * 29 + 3600123) {
        cv_time_iso8601(ms, out);
        ck_assert_int_eq(value(out, CV_TIME_STRICT), ms);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_isotime");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, impossible_dates_refused);
    tcase_add_test(tc, malformed_refused);
    tcase_add_test(tc, forms_not_allowed_refused);
    tcase_add_test(tc, values);
    tcase_add_test(tc, calendar_agrees_with_libc);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, format_round_trips);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
