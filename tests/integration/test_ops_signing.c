/* The audit signing key in a real SoftHSM2 token (src/hsm/signing*.c): made
 * in the token and never extractable, signatures that the openssl command
 * line verifies, refusals of bad signatures, and libp11 sharing the module
 * with the raw layer: after the raw layer's recovery (sessions closed behind
 * its back, or the module finalized) signing works again, and libp11 never
 * takes the raw layer's sessions away. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/hsm_signing.h"
#include "cv_test_suite.h"
#include "test_hsm_fixture.h"

static const uint8_t msg[] = "credvault.audit.checkpoint.v1\nheads:1:1\n";

static void sign(struct cv_hsm *hsm, uint8_t *sig, size_t *len)
{
    cv_result r = cv_hsm_audit_sign(hsm, msg, sizeof(msg) - 1, sig, CV_HSM_SIGNATURE_MAX_BYTES, len);
    ck_assert_msg(cv_ok(r), "sign: %s", cv_error_message());
    ck_assert_uint_ge(*len, 8);
    ck_assert_uint_le(*len, 72);
    ck_assert_uint_eq(sig[0], 0x30); /* a DER SEQUENCE (r, s) */
}

/* A handle on a token that holds the audit key, whichever case made it. */
static struct cv_hsm *open_with_key(void)
{
    struct cv_hsm *hsm = fixture_open();
    cv_result r = cv_hsm_audit_key_create(hsm);
    ck_assert_msg(cv_ok(r) || r.err == CV_ERR_CONFLICT, "audit key: %s", cv_error_message());
    return hsm;
}

/* Destroys the audit key pair an earlier case made, through PKCS#11 itself. */
static void destroy_key(void)
{
    struct cv_hsm *hsm = fixture_open();
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(f->C_OpenSession(cv_hsm_testing_slot(hsm), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                      CKR_OK);
    const char *label = CV_HSM_AUDIT_KEY_LABEL;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjects(s, h, 8, &n), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjectsFinal(s), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++)
        ck_assert_uint_eq(f->C_DestroyObject(s, h[i]), CKR_OK);
    f->C_CloseSession(s);
    cv_hsm_close(hsm);
}

START_TEST(no_key_until_created_and_never_twice)
{
    destroy_key(); /* as a fresh token has it, whatever ran before */
    struct cv_hsm *hsm = fixture_open();
    int exists = 1;
    ck_assert(cv_ok(cv_hsm_audit_key_exists(hsm, &exists)));
    ck_assert_int_eq(exists, 0);
    uint8_t sig[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t len = 0;
    ck_assert_int_eq(cv_hsm_audit_sign(hsm, msg, sizeof(msg) - 1, sig, sizeof(sig), &len).err, CV_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "credvault hsm init"));
    ck_assert(cv_ok(cv_hsm_audit_key_create(hsm)));
    ck_assert_int_eq(cv_hsm_audit_key_create(hsm).err, CV_ERR_CONFLICT);
    ck_assert(cv_ok(cv_hsm_audit_key_exists(hsm, &exists)));
    ck_assert_int_eq(exists, 1);
    /* small inputs are checked before the token is asked */
    ck_assert_int_eq(cv_hsm_audit_sign(hsm, msg, 0, sig, sizeof(sig), &len).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_hsm_audit_sign(hsm, msg, 1, sig, 10, &len).err, CV_ERR_INTERNAL);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(the_private_key_can_only_sign_and_never_leaves)
{
    struct cv_hsm *hsm = open_with_key();
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(f->C_OpenSession(cv_hsm_testing_slot(hsm), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                      CKR_OK);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    const char *label = CV_HSM_AUDIT_KEY_LABEL;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_FindObjectsInit(s, t, 2), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjects(s, h, 2, &n), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjectsFinal(s), CKR_OK);
    ck_assert_uint_eq(n, 1);
    CK_BBOOL sensitive = 0, extractable = 1, never = 0, signs = 0, decrypts = 1, derives = 1, unwraps = 1, mod = 1;
    CK_ATTRIBUTE a[] = {
        {CKA_SENSITIVE, &sensitive, 1}, {CKA_EXTRACTABLE, &extractable, 1}, {CKA_NEVER_EXTRACTABLE, &never, 1},
        {CKA_SIGN, &signs, 1},          {CKA_DECRYPT, &decrypts, 1},        {CKA_DERIVE, &derives, 1},
        {CKA_UNWRAP, &unwraps, 1},      {CKA_MODIFIABLE, &mod, 1},
    };
    ck_assert_uint_eq(f->C_GetAttributeValue(s, h[0], a, sizeof(a) / sizeof(a[0])), CKR_OK);
    ck_assert(sensitive && !extractable && never && signs && !decrypts && !derives && !unwraps && !mod);
    uint8_t value[128];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    ck_assert_uint_eq(f->C_GetAttributeValue(s, h[0], &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    f->C_CloseSession(s);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(signatures_verify_here_and_with_openssl)
{
    struct cv_hsm *hsm = open_with_key();
    uint8_t sig[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t len = 0;
    sign(hsm, sig, &len);
    ck_assert(cv_ok(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, len)));
    /* the hostile cases: another message, a flipped bit, a cut signature, junk */
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 2, sig, len).err, CV_ERR_CRYPTO);
    sig[len - 1] ^= 1;
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, len).err, CV_ERR_CRYPTO);
    sig[len - 1] ^= 1;
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, len - 1).err, CV_ERR_CRYPTO);
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, (const uint8_t *)"xxxxxxxx", 8).err, CV_ERR_CRYPTO);
    ck_assert_int_eq(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, 0).err, CV_ERR_CRYPTO);
    /* two signatures of one message differ (ECDSA draws a fresh nonce) and both verify */
    uint8_t sig2[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t len2 = 0;
    sign(hsm, sig2, &len2);
    ck_assert(len != len2 || memcmp(sig, sig2, len) != 0);
    ck_assert(cv_ok(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig2, len2)));

    char pem[CV_HSM_PUBLIC_KEY_PEM_MAX_BYTES];
    uint8_t fp[CV_HSM_KEY_FINGERPRINT_BYTES];
    ck_assert(cv_ok(cv_hsm_audit_public_key(hsm, pem, sizeof(pem), fp)));
    ck_assert(strncmp(pem, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
    char small[16];
    ck_assert_int_eq(cv_hsm_audit_public_key(hsm, small, sizeof(small), NULL).err, CV_ERR_INTERNAL);
    /* the openssl command line agrees, with nothing but these files */
    char path[512];
    const char *tmp = getenv("CV_TEST_TMP");
    snprintf(path, sizeof(path), "%s/key.pem", tmp);
    FILE *fk = fopen(path, "w");
    fputs(pem, fk);
    fclose(fk);
    snprintf(path, sizeof(path), "%s/msg.txt", tmp);
    FILE *fm = fopen(path, "wb");
    fwrite(msg, 1, sizeof(msg) - 1, fm);
    fclose(fm);
    snprintf(path, sizeof(path), "%s/msg.sig", tmp);
    FILE *fs = fopen(path, "wb");
    fwrite(sig, 1, len, fs);
    fclose(fs);
    ck_assert_int_eq(system("cd \"$CV_TEST_TMP\" && openssl dgst -sha256 -verify key.pem -signature msg.sig msg.txt "
                            "| grep -qx 'Verified OK'"),
                     0);
    ck_assert_int_ne(system("cd \"$CV_TEST_TMP\" && printf x >> msg.txt && "
                            "openssl dgst -sha256 -verify key.pem -signature msg.sig msg.txt >/dev/null 2>&1"),
                     0);
    /* the fingerprint is SHA-256 of the DER public key */
    char hex[2 * CV_HSM_KEY_FINGERPRINT_BYTES + 1], cmd[256];
    cv_hex_encode(fp, sizeof(fp), hex);
    snprintf(cmd, sizeof(cmd),
             "cd \"$CV_TEST_TMP\" && openssl pkey -pubin -in key.pem -outform DER | "
             "openssl dgst -sha256 -r | grep -q '^%s '",
             hex);
    ck_assert_int_eq(system(cmd), 0);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(signing_survives_the_raw_layers_recovery)
{
    struct cv_hsm *hsm = open_with_key();
    uint8_t sig[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t len = 0;
    sign(hsm, sig, &len);
    uint64_t gen = cv_hsm_testing_generation(hsm);
    /* every session of the application closed behind the layer's back */
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
    ck_assert(cv_ok(cv_hsm_ping(hsm)));
    ck_assert_uint_gt(cv_hsm_testing_generation(hsm), gen);
    sign(hsm, sig, &len);
    ck_assert(cv_ok(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, len)));
    /* the module finalized: the next signature itself triggers the recovery */
    gen = cv_hsm_testing_generation(hsm);
    ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
    sign(hsm, sig, &len);
    if (fixture_via_proxy()) {
        /* p11-kit's proxy: libp11 holds an instance of its own, which that
         * C_Finalize left alone, so the signature needed no recovery; the raw
         * layer's next call makes it */
        ck_assert_uint_eq(cv_hsm_testing_generation(hsm), gen);
        ck_assert(cv_ok(cv_hsm_ping(hsm)));
    }
    ck_assert_uint_gt(cv_hsm_testing_generation(hsm), gen);
    ck_assert(cv_ok(cv_hsm_audit_verify(hsm, msg, sizeof(msg) - 1, sig, len)));
    /* and libp11 left the raw layer's sessions alone: a tenant key still works */
    cv_result made = cv_hsm_master_create(hsm, 1);
    ck_assert(cv_ok(made) || made.err == CV_ERR_CONFLICT);
    made = cv_hsm_binding_key_create(hsm);
    ck_assert(cv_ok(made) || made.err == CV_ERR_CONFLICT);
    struct cv_key_ref ref;
    memset(&ref, 0, sizeof(ref));
    snprintf(ref.tenant_id, sizeof(ref.tenant_id), "acme");
    ref.version = 1;
    ref.master_version = 1;
    ck_assert(cv_ok(cv_hsm_tenant_key_generate(hsm, &ref)));
    uint8_t iv[CV_GCM_IV_BYTES], ct[5], tag[CV_GCM_TAG_BYTES], pt[5];
    ck_assert(
        cv_ok(cv_hsm_gcm_encrypt(hsm, &ref, (const uint8_t *)"aad", 3, (const uint8_t *)"hello", 5, iv, ct, tag)));
    sign(hsm, sig, &len);
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, (const uint8_t *)"aad", 3, iv, ct, 5, tag, pt)));
    ck_assert(memcmp(pt, "hello", 5) == 0);
    cv_hsm_close(hsm);
    /* a new handle after close loads libp11 again */
    hsm = fixture_open();
    sign(hsm, sig, &len);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "ops_signing", .timeout_s = 120};
    Suite *s = cv_t_suite_new(
        &spec, CV_T_TESTS(no_key_until_created_and_never_twice, the_private_key_can_only_sign_and_never_leaves,
                          signatures_verify_here_and_with_openssl, signing_survives_the_raw_layers_recovery));
    return cv_t_suite_run(s, CK_NOFORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}
