/* The CK_RV name table and how return values are classified. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hsm/names.h"

START_TEST(unknown_values_still_print)
{
    ck_assert_ptr_null(cv_hsm_rv_name(0x4));   /* a hole in the standard's numbering */
    ck_assert_ptr_null(cv_hsm_rv_name(0x999)); /* past the end */
    ck_assert_str_eq(cv_hsm_rv_text(0x4).s, "CKR_0x4");
    ck_assert_str_eq(cv_hsm_rv_text(0x80000123UL).s, "CKR_VENDOR_DEFINED+0x123");
    ck_assert_str_eq(cv_hsm_rv_text(0xFFFFFFFFUL).s, "CKR_VENDOR_DEFINED+0x7fffffff");
}
END_TEST

START_TEST(table_is_sorted_and_every_entry_is_found)
{
    unsigned long prev = 0, rv = 0;
    const char *name;
    unsigned long i;
    for (i = 0; (name = cv_hsm_rv_name_at(i, &rv)) != NULL; i++) {
        if (i > 0) ck_assert_uint_gt(rv, prev);
        ck_assert_int_eq(strncmp(name, "CKR_", 4), 0);
        ck_assert_ptr_eq(cv_hsm_rv_name(rv), name);
        prev = rv;
    }
    ck_assert_uint_ge(i, 95); /* every code of 2.40 and the 3.0 additions */
}
END_TEST

START_TEST(standard_values_have_their_names)
{
    ck_assert_str_eq(cv_hsm_rv_name(0x0), "CKR_OK");
    ck_assert_str_eq(cv_hsm_rv_name(0x5), "CKR_GENERAL_ERROR");
    ck_assert_str_eq(cv_hsm_rv_name(0x30), "CKR_DEVICE_ERROR");
    ck_assert_str_eq(cv_hsm_rv_name(0xA0), "CKR_PIN_INCORRECT");
    ck_assert_str_eq(cv_hsm_rv_name(0xB3), "CKR_SESSION_HANDLE_INVALID");
    ck_assert_str_eq(cv_hsm_rv_name(0x100), "CKR_USER_ALREADY_LOGGED_IN");
    ck_assert_str_eq(cv_hsm_rv_name(0x190), "CKR_CRYPTOKI_NOT_INITIALIZED");
    /* The OASIS values, which some pkcs11.h copies get wrong. */
    ck_assert_str_eq(cv_hsm_rv_name(0x1B7), "CKR_LIBRARY_LOAD_FAILED");
    ck_assert_str_eq(cv_hsm_rv_name(0x1B9), "CKR_PUBLIC_KEY_INVALID");
    ck_assert_str_eq(cv_hsm_rv_name(0x200), "CKR_FUNCTION_REJECTED");
}
END_TEST

START_TEST(data_errors_are_never_retried)
{
    /* A wrong tag, signature or wrapped key must not look like an outage. */
    const unsigned long bad_data[] = {0x20, 0x21, 0x35, 0x40, 0x41, 0xC0, 0xC1, 0x110, 0x112};
    for (size_t i = 0; i < sizeof(bad_data) / sizeof(bad_data[0]); i++) {
        ck_assert_int_eq(cv_hsm_rv_bad_data(bad_data[i]), 1);
        ck_assert_int_eq(cv_hsm_rv_recoverable(bad_data[i]), 0);
    }
    /* Nor a refused PIN: retrying it would lock the token's user. */
    ck_assert_int_eq(cv_hsm_rv_recoverable(0xA0), 0);
    ck_assert_int_eq(cv_hsm_rv_recoverable(0xA4), 0);
    ck_assert_int_eq(cv_hsm_rv_recoverable(0x0), 0);
    ck_assert_int_eq(cv_hsm_rv_recoverable(0x70), 0); /* CKR_MECHANISM_INVALID */
}
END_TEST

START_TEST(session_and_device_errors_are_recovered)
{
    const unsigned long gone[] = {0xB3, 0xB0, 0x30, 0x32, 0xE0, 0x06, 0x05, 0x82, 0x60, 0x101, 0x190};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        ck_assert_int_eq(cv_hsm_rv_recoverable(gone[i]), 1);
        ck_assert_int_eq(cv_hsm_rv_bad_data(gone[i]), 0);
    }
}
END_TEST

START_TEST(each_outage_has_one_class)
{
    /* a recoverable value is never without a class */
    const unsigned long gone[] = {0xB3, 0xB0, 0x30, 0x32, 0xE0, 0x06, 0x05, 0x82, 0x60, 0x101, 0x190};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) ck_assert_int_ne(cv_hsm_rv_fault(gone[i]), CV_HSM_FAULT_NONE);
    ck_assert_int_eq(cv_hsm_rv_fault(0x30), CV_HSM_FAULT_TRANSIENT);    /* CKR_DEVICE_ERROR */
    ck_assert_int_eq(cv_hsm_rv_fault(0x06), CV_HSM_FAULT_TRANSIENT);    /* CKR_FUNCTION_FAILED */
    ck_assert_int_eq(cv_hsm_rv_fault(0xB3), CV_HSM_FAULT_SESSION);      /* CKR_SESSION_HANDLE_INVALID */
    ck_assert_int_eq(cv_hsm_rv_fault(0x190), CV_HSM_FAULT_SESSION);     /* CKR_CRYPTOKI_NOT_INITIALIZED */
    ck_assert_int_eq(cv_hsm_rv_fault(0xE0), CV_HSM_FAULT_ABSENT);       /* CKR_TOKEN_NOT_PRESENT */
    ck_assert_int_eq(cv_hsm_rv_fault(0x32), CV_HSM_FAULT_ABSENT);       /* CKR_DEVICE_REMOVED */
    ck_assert_int_eq(cv_hsm_rv_fault(0xA0), CV_HSM_FAULT_CREDENTIALS);  /* CKR_PIN_INCORRECT */
    ck_assert_int_eq(cv_hsm_rv_fault(0xA4), CV_HSM_FAULT_CREDENTIALS);  /* CKR_PIN_LOCKED */
    /* bad input is no outage */
    const unsigned long bad_data[] = {0x20, 0x21, 0x35, 0x40, 0x41, 0xC0, 0xC1, 0x110, 0x112, 0x70, 0x0};
    for (size_t i = 0; i < sizeof(bad_data) / sizeof(bad_data[0]); i++)
        ck_assert_int_eq(cv_hsm_rv_fault(bad_data[i]), CV_HSM_FAULT_NONE);
    ck_assert_str_eq(cv_hsm_fault_name(CV_HSM_FAULT_CREDENTIALS), "credentials_refused");
}
END_TEST

START_TEST(mechanism_names)
{
    ck_assert_str_eq(cv_hsm_mechanism_name(0x210A), "CKM_AES_KEY_WRAP_PAD");
    ck_assert_str_eq(cv_hsm_mechanism_name(0x8000216FUL), "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD");
    ck_assert_str_eq(cv_hsm_mechanism_name(0x1087), "CKM_AES_GCM");
    ck_assert_ptr_null(cv_hsm_mechanism_name(0x1));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hsm_names");
    TCase *tc = tcase_create("names");
    tcase_add_test(tc, unknown_values_still_print);
    tcase_add_test(tc, table_is_sorted_and_every_entry_is_found);
    tcase_add_test(tc, standard_values_have_their_names);
    tcase_add_test(tc, data_errors_are_never_retried);
    tcase_add_test(tc, session_and_device_errors_are_recovered);
    tcase_add_test(tc, each_outage_has_one_class);
    tcase_add_test(tc, mechanism_names);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
