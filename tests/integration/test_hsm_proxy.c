/* credvault through p11-kit's proxy module, which answers every
 * C_GetFunctionList with a module instance of its own: the raw layer and
 * libp11 (the checkpoint signer) each hold one, two handles hold two. Open,
 * key wrap and unwrap, GCM, signing and close work on each, and closing one
 * handle (which finalizes its instance) leaves the other working. */
#include "credvault/hsm_signing.h"
#include "test_hsm_fixture.h"

static void roundtrip(struct cv_hsm *hsm, const struct cv_key_ref *ref)
{
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
    fixture_seal(hsm, ref, iv, ct, tag);
    cv_result r = cv_hsm_gcm_decrypt(hsm, ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt);
    ck_assert_msg(cv_ok(r), "decrypt: %s", cv_error_message());
    ck_assert_mem_eq(pt, fixture_pt, sizeof(pt));
    tag[0] ^= 1; /* the token checks the tag */
    ck_assert_int_eq(cv_hsm_gcm_decrypt(hsm, ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt).err,
                     CV_ERR_CRYPTO);
}

static void sign_and_verify(struct cv_hsm *hsm)
{
    static const uint8_t data[] = "credvault.audit.checkpoint|1|abc";
    uint8_t sig[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t sig_len = 0;
    cv_result r = cv_hsm_audit_sign(hsm, data, sizeof(data) - 1, sig, sizeof(sig), &sig_len);
    ck_assert_msg(cv_ok(r), "sign: %s", cv_error_message());
    ck_assert(cv_ok(cv_hsm_audit_verify(hsm, data, sizeof(data) - 1, sig, sig_len)));
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, data, sizeof(data) - 2, sig, sig_len).err, CV_ERR_CRYPTO);
}

static void audit_key(struct cv_hsm *hsm)
{
    int exists = 0;
    ck_assert(cv_ok(cv_hsm_audit_key_exists(hsm, &exists)));
    if (!exists) ck_assert_msg(cv_ok(cv_hsm_audit_key_create(hsm)), "%s", cv_error_message());
}

START_TEST(open_wrap_gcm_sign_close_through_the_proxy)
{
    struct cv_hsm *hsm = fixture_open();
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_msg(strstr(st.module_path, "p11-kit-proxy") != NULL, "opened %s", st.module_path);
    ck_assert_msg(st.token_label[0] && strstr(fixture_env("CREDVAULT_PKCS11_TOKEN"), st.token_label), "token %s",
                  st.token_label);
    ck_assert_int_eq(st.logged_in, 1);
    fixture_keys(hsm);
    audit_key(hsm);
    struct cv_key_ref a = fixture_ref(hsm, "proxy-a", 1, 1); /* generated and wrapped in the token */
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &a)));     /* unwraps */
    roundtrip(hsm, &a);
    cv_hsm_cache_drop_all(hsm);
    roundtrip(hsm, &a);   /* unwrapped again */
    sign_and_verify(hsm); /* libp11 on its own proxy instance */
    roundtrip(hsm, &a);   /* the raw layer still works after libp11 initialized its instance */
    cv_hsm_close(hsm);

    /* a second open after the first one finalized its instances */
    hsm = fixture_open();
    roundtrip(hsm, &a);
    sign_and_verify(hsm);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(closing_one_handle_leaves_the_other_working)
{
    struct cv_hsm *one = fixture_open();
    fixture_keys(one);
    audit_key(one);
    struct cv_hsm *two = fixture_open();
    ck_assert_ptr_ne(cv_hsm_testing_functions(one), cv_hsm_testing_functions(two)); /* two instances */
    struct cv_key_ref a = fixture_ref(one, "proxy-b", 1, 1);
    roundtrip(one, &a);
    roundtrip(two, &a);
    sign_and_verify(one);
    sign_and_verify(two);
    ck_assert_uint_eq(fixture_session_keys(two), 2); /* each handle cached its unwrapped copy of a */
    cv_hsm_close(one); /* finalizes one's instances (raw and libp11), not the module under them */
    ck_assert(cv_ok(cv_hsm_ping(two)));
    ck_assert_uint_eq(fixture_session_keys(two), 1); /* one's copy destroyed, two's still there */
    roundtrip(two, &a);
    sign_and_verify(two);
    struct cv_key_ref b = fixture_ref(two, "proxy-c", 1, 1);
    roundtrip(two, &b);
    cv_hsm_close(two);
}
END_TEST

int main(void)
{
    setenv("CV_HSM_VIA_PROXY", "1", 1);
    static const struct cv_t_suite_spec spec = {.name = "hsm_proxy", .timeout_s = 120};
    Suite *s = cv_t_suite_new(
        &spec, CV_T_TESTS(open_wrap_gcm_sign_close_through_the_proxy, closing_one_handle_leaves_the_other_working));
    return fixture_run(s);
}
