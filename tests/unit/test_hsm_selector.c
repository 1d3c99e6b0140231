/* Token selection: pkcs11: URIs (RFC 7512) and bare labels. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/result.h"
#include "hsm/selector.h"

static void pad(unsigned char *field, size_t n, const char *s)
{
    memset(field, ' ', n);
    memcpy(field, s, strlen(s));
}

static struct cv_hsm_slot_fields slot(const char *label, const char *serial)
{
    struct cv_hsm_slot_fields f;
    memset(&f, 0, sizeof(f));
    f.slot_id = 7;
    pad(f.library_manufacturer, sizeof(f.library_manufacturer), "SoftHSM");
    pad(f.library_description, sizeof(f.library_description), "Implementation of PKCS11");
    pad(f.slot_description, sizeof(f.slot_description), "SoftHSM slot ID 0x7");
    pad(f.slot_manufacturer, sizeof(f.slot_manufacturer), "SoftHSM project");
    pad(f.token_label, sizeof(f.token_label), label);
    pad(f.token_manufacturer, sizeof(f.token_manufacturer), "SoftHSM project");
    pad(f.token_model, sizeof(f.token_model), "SoftHSM v2");
    pad(f.token_serial, sizeof(f.token_serial), serial);
    return f;
}

static int matches(const char *text, const struct cv_hsm_slot_fields *f)
{
    struct cv_hsm_selector *sel = NULL;
    cv_result r = cv_hsm_selector_parse(text, &sel);
    ck_assert_msg(cv_ok(r), "%s: %s", text, cv_error_message());
    int m = cv_hsm_selector_matches(sel, f);
    cv_hsm_selector_free(sel);
    return m;
}

static cv_err parse_error(const char *text)
{
    struct cv_hsm_selector *sel = NULL;
    cv_result r = cv_hsm_selector_parse(text, &sel);
    ck_assert_ptr_null(sel);
    return r.err;
}

START_TEST(malformed_selectors_are_refused)
{
    ck_assert_int_eq(parse_error(""), CV_ERR_INPUT);
    ck_assert_int_eq(parse_error("a-label-that-is-longer-than-32-bytes"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_error("pkcs11:token=%zz"), CV_ERR_INPUT);
    /* An object attribute would otherwise match every token. */
    ck_assert_int_eq(parse_error("pkcs11:token=cv-test;object=master"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_error("pkcs11:token=cv-test;frobnicate=1"), CV_ERR_INPUT);
    /* PINs and modules come from their own settings. */
    ck_assert_int_eq(parse_error("pkcs11:token=cv-test?pin-value=1234"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_error("pkcs11:token=cv-test?pin-source=file:/etc/pin"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_error("pkcs11:token=cv-test?module-path=/tmp/evil.so"), CV_ERR_INPUT);
    ck_assert_str_eq(cv_error_code(), "invalid_request");
}
END_TEST

START_TEST(bare_label_matches_exactly)
{
    struct cv_hsm_slot_fields f = slot("cv-test", "0e993d4be395c43e");
    ck_assert_int_eq(matches("cv-test", &f), 1);
    ck_assert_int_eq(matches("cv-tes", &f), 0);   /* no prefix match */
    ck_assert_int_eq(matches("cv-test2", &f), 0);
    ck_assert_int_eq(matches("CV-TEST", &f), 0);  /* labels are case-sensitive */
    struct cv_hsm_slot_fields full = slot("abcdefghijklmnopqrstuvwxyz012345", "1");
    ck_assert_int_eq(matches("abcdefghijklmnopqrstuvwxyz012345", &full), 1);
}
END_TEST

START_TEST(uri_matches_token_serial_slot_and_library)
{
    struct cv_hsm_slot_fields f = slot("cv test", "0e993d4be395c43e");
    ck_assert_int_eq(matches("pkcs11:token=cv%20test", &f), 1);
    ck_assert_int_eq(matches("pkcs11:token=cv-test", &f), 0);
    ck_assert_int_eq(matches("pkcs11:token=cv%20test;serial=0e993d4be395c43e", &f), 1);
    ck_assert_int_eq(matches("pkcs11:token=cv%20test;serial=ffffffffffffffff", &f), 0);
    ck_assert_int_eq(matches("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project", &f), 1);
    ck_assert_int_eq(matches("pkcs11:slot-id=7", &f), 1);
    ck_assert_int_eq(matches("pkcs11:slot-id=8", &f), 0);
    ck_assert_int_eq(matches("pkcs11:library-manufacturer=SoftHSM", &f), 1);
    ck_assert_int_eq(matches("pkcs11:library-manufacturer=Thales", &f), 0);
    ck_assert_int_eq(matches("pkcs11:", &f), 1); /* matches all: the caller refuses ambiguity */
}
END_TEST

START_TEST(field_trim_drops_padding_only)
{
    unsigned char field[8];
    char out[16];
    pad(field, sizeof(field), "a b");
    cv_hsm_field_trim(field, sizeof(field), out, sizeof(out));
    ck_assert_str_eq(out, "a b");
    memcpy(field, "12345678", 8);
    cv_hsm_field_trim(field, sizeof(field), out, 5);
    ck_assert_str_eq(out, "1234"); /* bounded by the output */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hsm_selector");
    TCase *tc = tcase_create("selector");
    tcase_add_test(tc, malformed_selectors_are_refused);
    tcase_add_test(tc, bare_label_matches_exactly);
    tcase_add_test(tc, uri_matches_token_serial_slot_and_library);
    tcase_add_test(tc, field_trim_drops_padding_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
