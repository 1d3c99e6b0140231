/* Opening the token: clear errors naming the CK_RV for a bad module, PIN or
 * token; selection by URI and label; status, ping and random. */
#include <time.h>

#include "test_hsm_fixture.h"

static cv_result try_open(const struct cv_hsm_options *o)
{
    struct cv_hsm *hsm = NULL;
    cv_result r = cv_hsm_open(o, &hsm);
    if (cv_ok(r)) cv_hsm_close(hsm);
    else ck_assert_ptr_null(hsm);
    return r;
}

#define ck_assert_message_has(s) \
    ck_assert_msg(strstr(cv_error_message(), (s)) != NULL, "message \"%s\" lacks \"%s\"", cv_error_message(), (s))

START_TEST(unreachable_module_is_named)
{
    struct cv_hsm_options o = fixture_options();
    o.module_path = "/nonexistent/libpkcs11-nope.so";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_UNAVAILABLE);
    ck_assert_message_has("/nonexistent/libpkcs11-nope.so");
    ck_assert_message_has("CKR_LIBRARY_LOAD_FAILED");
}
END_TEST

START_TEST(library_that_is_not_a_module)
{
    struct cv_hsm_options o = fixture_options();
    o.module_path = "libc.so.6";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_UNAVAILABLE);
    ck_assert_message_has("C_GetFunctionList");
    ck_assert_message_has("CKR_LIBRARY_LOAD_FAILED");
}
END_TEST

START_TEST(module_start_failure_names_the_module_and_its_settings)
{
    char saved[1024];
    snprintf(saved, sizeof(saved), "%s", fixture_env("SOFTHSM2_CONF"));
    setenv("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf", 1);
    struct cv_hsm_options o = fixture_options();
    cv_result r = try_open(&o);
    setenv("SOFTHSM2_CONF", saved, 1);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE);
    ck_assert_message_has("C_Initialize");
    ck_assert_message_has(o.module_path);
    ck_assert_message_has("SOFTHSM2_CONF=/nonexistent/softhsm2.conf");
}
END_TEST

START_TEST(wrong_pin_is_an_auth_error)
{
    struct cv_hsm_options o = fixture_options();
    o.pin = "not-the-pin";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_AUTH);
    ck_assert_message_has("CKR_PIN_INCORRECT");
    ck_assert(strstr(cv_error_message(), "not-the-pin") == NULL); /* never echo a PIN */
}
END_TEST

START_TEST(unknown_token_lists_what_is_there)
{
    struct cv_hsm_options o = fixture_options();
    o.token = "pkcs11:token=no-such-token";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_NOT_FOUND);
    ck_assert_message_has("CKR_TOKEN_NOT_PRESENT");
    ck_assert_message_has("'cv-test'");
    o.token = "no-such-token";
    /* a name that matches nothing is configuration: no retry, whatever the backoff */
    o.retries = 5;
    o.backoff_ms = 400;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(try_open(&o).err, CV_ERR_NOT_FOUND);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_msg(ms < 300, "an unknown token took %ld ms to refuse", ms);
}
END_TEST

START_TEST(bad_settings_are_refused_before_loading)
{
    struct cv_hsm_options o = fixture_options();
    o.token = "pkcs11:token=cv-test;object=x";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_INPUT);
    o = fixture_options();
    o.sessions = 0;
    ck_assert_int_eq(try_open(&o).err, CV_ERR_INPUT);
    o = fixture_options();
    o.key_cache_size = 0;
    ck_assert_int_eq(try_open(&o).err, CV_ERR_INPUT);
    o = fixture_options();
    o.module_path = NULL;
    ck_assert_int_eq(try_open(&o).err, CV_ERR_INPUT);
}
END_TEST

START_TEST(label_and_uri_select_the_same_token)
{
    struct cv_hsm *hsm = fixture_open();
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    cv_hsm_close(hsm);

    char uri[128];
    snprintf(uri, sizeof(uri), "pkcs11:token=cv-test;serial=%s", st.token_serial);
    struct cv_hsm_options o = fixture_options();
    o.token = uri;
    ck_assert_msg(cv_ok(try_open(&o)), "%s", cv_error_message());
    o.token = "cv-test";
    ck_assert_msg(cv_ok(try_open(&o)), "%s", cv_error_message());
    o.token = "pkcs11:token=cv-test;serial=0000000000000000";
    ck_assert_int_eq(try_open(&o).err, CV_ERR_NOT_FOUND);
}
END_TEST

START_TEST(status_reports_the_softhsm_profile)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_str_eq(st.token_label, "cv-test");
    ck_assert_str_eq(st.profile, "softhsm");
    ck_assert_str_eq(st.wrap_mechanism, "CKM_AES_KEY_WRAP_PAD");
    ck_assert_str_eq(st.gcm_iv_source, "caller");
    ck_assert_str_eq(st.manufacturer, "SoftHSM project");
    ck_assert_str_eq(st.module_path, fixture_options().module_path);
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_int_eq(st.binding_key_present, 1);
    ck_assert_uint_ge(st.master_versions_count, 1);
    ck_assert_uint_eq(st.master_versions[0], 1);
    int gcm = 0, cloud = 0;
    for (size_t i = 0; i < st.mechanisms_count; i++) {
        if (strcmp(st.mechanisms[i].name, "CKM_AES_GCM") == 0) gcm = st.mechanisms[i].present;
        if (strcmp(st.mechanisms[i].name, "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD") == 0)
            cloud = 1 + st.mechanisms[i].present;
    }
    ck_assert_int_eq(gcm, 1);
    ck_assert_int_eq(cloud, 1); /* listed, and absent on SoftHSM */
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(ping_and_random)
{
    struct cv_hsm *hsm = fixture_open();
    ck_assert(cv_ok(cv_hsm_ping(hsm)));
    uint8_t a[32], b[32];
    ck_assert(cv_ok(cv_hsm_random(hsm, a, sizeof(a))));
    ck_assert(cv_ok(cv_hsm_random(hsm, b, sizeof(b))));
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert(cv_ok(cv_hsm_random(hsm, NULL, 0)));
    ck_assert_int_eq(cv_hsm_random(hsm, a, (size_t)2 << 20).err, CV_ERR_TOO_LARGE);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_open", .timeout_s = 60};
    Suite *s = cv_t_suite_new(
        &spec, CV_T_TESTS(unreachable_module_is_named, library_that_is_not_a_module,
                          module_start_failure_names_the_module_and_its_settings, wrong_pin_is_an_auth_error,
                          unknown_token_lists_what_is_there, bad_settings_are_refused_before_loading,
                          label_and_uri_select_the_same_token, status_reports_the_softhsm_profile, ping_and_random));
    return fixture_run(s);
}
