/* Quirk profile choice: which wrap mechanism and who makes the GCM IV. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/result.h"
#include "hsm/quirks.h"

#define KEY_GEN 0x1080UL
#define GCM 0x1087UL
#define WRAP 0x2109UL
#define WRAP_PAD 0x210AUL
#define KWP 0x210BUL
#define GENERIC_GEN 0x0350UL
#define HMAC 0x0251UL
#define CLOUD_NO_PAD 0x80002109UL
#define CLOUD_PKCS5 0x8000210AUL
#define CLOUD_ZERO_PAD 0x8000216FUL

static const struct cv_hsm_identity softhsm = {"SoftHSM", "Implementation of PKCS11", "SoftHSM project",
                                               "SoftHSM v2"};
static const struct cv_hsm_identity unknown = {"Acme", "Acme PKCS#11", "Acme", "Box 9"};
static const struct cv_hsm_identity cloudhsm = {"Amazon", "CloudHSM PKCS#11", "Marvell Semiconductors, Inc.",
                                                "LS2"};
static const struct cv_hsm_identity luna = {"SafeNet", "Chrystoki", "Safenet, Inc.", "LunaSA 7"};

START_TEST(missing_mechanisms_are_named)
{
    struct cv_hsm_profile p;
    const unsigned long no_gcm[] = {KEY_GEN, WRAP_PAD, GENERIC_GEN, HMAC};
    cv_result r = cv_hsm_profile_pick(&softhsm, no_gcm, 4, &p);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "CKM_AES_GCM"));
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "CKR_MECHANISM_INVALID"));

    const unsigned long no_wrap[] = {KEY_GEN, GCM, WRAP, GENERIC_GEN, HMAC};
    r = cv_hsm_profile_pick(&softhsm, no_wrap, 5, &p);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "CKM_AES_KEY_WRAP_PAD"));
}
END_TEST

START_TEST(cloudhsm_never_uses_plain_key_wrap)
{
    /* CloudHSM lists the standard names too, but means other algorithms by them. */
    const unsigned long mechs[] = {KEY_GEN, GCM, WRAP, WRAP_PAD, CLOUD_NO_PAD, CLOUD_PKCS5, GENERIC_GEN, HMAC};
    struct cv_hsm_profile p;
    cv_result r = cv_hsm_profile_pick(&cloudhsm, mechs, 8, &p);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE); /* no ZERO_PAD: refuse, never fall back */
    const unsigned long full[] = {KEY_GEN, GCM, WRAP, WRAP_PAD, CLOUD_NO_PAD, CLOUD_PKCS5, CLOUD_ZERO_PAD,
                                  GENERIC_GEN, HMAC};
    ck_assert(cv_ok(cv_hsm_profile_pick(&cloudhsm, full, 9, &p)));
    ck_assert_str_eq(p.name, "cloudhsm");
    ck_assert_uint_eq(p.wrap_mechanism, CLOUD_ZERO_PAD);
    ck_assert_int_eq(p.iv_source, CV_HSM_IV_HSM_BUFFER);
    ck_assert_uint_eq(p.gcm_iv_bits_encrypt, 0);
    ck_assert_int_eq(p.general_error_is_bad_data, 0); /* its CKR_FUNCTION_FAILED is throttling */
    /* Recognised by its vendor mechanism even when the strings say nothing. */
    ck_assert(cv_ok(cv_hsm_profile_pick(&unknown, full, 9, &p)));
    ck_assert_str_eq(p.name, "cloudhsm");
}
END_TEST

START_TEST(softhsm_profile)
{
    const unsigned long mechs[] = {KEY_GEN, GCM, WRAP, WRAP_PAD, GENERIC_GEN, HMAC};
    struct cv_hsm_profile p;
    ck_assert(cv_ok(cv_hsm_profile_pick(&softhsm, mechs, 6, &p)));
    ck_assert_str_eq(p.name, "softhsm");
    ck_assert_uint_eq(p.wrap_mechanism, WRAP_PAD);
    ck_assert_int_eq(p.iv_source, CV_HSM_IV_CALLER);
    ck_assert_uint_eq(p.gcm_iv_bits_encrypt, 96);
    ck_assert_uint_eq(p.gcm_iv_bits_decrypt, 96);
    ck_assert_int_eq(p.general_error_is_bad_data, 1);
    ck_assert_str_eq(cv_hsm_iv_source_name(p.iv_source), "caller");
}
END_TEST

START_TEST(luna_and_generic_prefer_kwp)
{
    const unsigned long mechs[] = {KEY_GEN, GCM, WRAP, WRAP_PAD, KWP, GENERIC_GEN, HMAC};
    struct cv_hsm_profile p;
    ck_assert(cv_ok(cv_hsm_profile_pick(&luna, mechs, 7, &p)));
    ck_assert_str_eq(p.name, "luna");
    ck_assert_uint_eq(p.wrap_mechanism, KWP);
    ck_assert_int_eq(p.iv_source, CV_HSM_IV_HSM_APPENDED);
    ck_assert_uint_eq(p.gcm_iv_bits_decrypt, 96); /* Luna fails a decrypt with 0 */
    ck_assert(cv_ok(cv_hsm_profile_pick(&unknown, mechs, 7, &p)));
    ck_assert_str_eq(p.name, "generic");
    ck_assert_uint_eq(p.wrap_mechanism, KWP);
    ck_assert_int_eq(p.iv_source, CV_HSM_IV_CALLER);
    const unsigned long pad_only[] = {KEY_GEN, GCM, WRAP_PAD, GENERIC_GEN, HMAC};
    ck_assert(cv_ok(cv_hsm_profile_pick(&unknown, pad_only, 5, &p)));
    ck_assert_uint_eq(p.wrap_mechanism, WRAP_PAD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hsm_quirks");
    TCase *tc = tcase_create("quirks");
    tcase_add_test(tc, missing_mechanisms_are_named);
    tcase_add_test(tc, cloudhsm_never_uses_plain_key_wrap);
    tcase_add_test(tc, softhsm_profile);
    tcase_add_test(tc, luna_and_generic_prefer_kwp);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
