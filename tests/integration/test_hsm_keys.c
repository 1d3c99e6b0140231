/* Master, binding and tenant keys in a fresh SoftHSM2 token: attributes as
 * the token reports them, conflicts, and every way a wrapped key presented
 * under the wrong identity must be refused. */
#include "test_hsm_fixture.h"

struct attrs {
    CK_BBOOL token, private_, sensitive, always_sensitive, extractable, never_extractable, modifiable;
    CK_BBOOL encrypt, decrypt, wrap, unwrap, sign, verify, derive;
    CK_ULONG value_len;
    CK_KEY_TYPE key_type;
    char label[64];
    CK_ULONG label_len;
};

/* Reads attributes back through a session of our own, as an auditor would. */
static struct attrs read_attrs(struct cv_hsm *hsm, CK_OBJECT_HANDLE h)
{
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(f->C_OpenSession(cv_hsm_testing_slot(hsm), CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    struct attrs a;
    memset(&a, 0, sizeof(a));
    CK_ATTRIBUTE t[] = {
        {CKA_TOKEN, &a.token, 1},
        {CKA_PRIVATE, &a.private_, 1},
        {CKA_SENSITIVE, &a.sensitive, 1},
        {CKA_ALWAYS_SENSITIVE, &a.always_sensitive, 1},
        {CKA_EXTRACTABLE, &a.extractable, 1},
        {CKA_NEVER_EXTRACTABLE, &a.never_extractable, 1},
        {CKA_MODIFIABLE, &a.modifiable, 1},
        {CKA_ENCRYPT, &a.encrypt, 1},
        {CKA_DECRYPT, &a.decrypt, 1},
        {CKA_WRAP, &a.wrap, 1},
        {CKA_UNWRAP, &a.unwrap, 1},
        {CKA_SIGN, &a.sign, 1},
        {CKA_VERIFY, &a.verify, 1},
        {CKA_DERIVE, &a.derive, 1},
        {CKA_VALUE_LEN, &a.value_len, sizeof(a.value_len)},
        {CKA_KEY_TYPE, &a.key_type, sizeof(a.key_type)},
        {CKA_LABEL, a.label, sizeof(a.label) - 1},
    };
    ck_assert_uint_eq(f->C_GetAttributeValue(s, h, t, sizeof(t) / sizeof(t[0])), CKR_OK);
    a.label_len = t[16].ulValueLen;
    /* The key's value can never be read. */
    uint8_t value[64];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    ck_assert_uint_eq(f->C_GetAttributeValue(s, h, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    f->C_CloseSession(s);
    return a;
}

START_TEST(master_key_is_wrap_only_and_never_extractable)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    CK_OBJECT_HANDLE h;
    ck_assert(cv_ok(cv_hsm_testing_key_handle(hsm, 1, &h)));
    struct attrs a = read_attrs(hsm, h);
    ck_assert_int_eq(a.token, CK_TRUE);
    ck_assert_int_eq(a.private_, CK_TRUE);
    ck_assert_int_eq(a.sensitive, CK_TRUE);
    ck_assert_int_eq(a.always_sensitive, CK_TRUE);
    ck_assert_int_eq(a.extractable, CK_FALSE);
    ck_assert_int_eq(a.never_extractable, CK_TRUE);
    ck_assert_int_eq(a.modifiable, CK_FALSE);
    ck_assert_int_eq(a.wrap, CK_TRUE);
    ck_assert_int_eq(a.unwrap, CK_TRUE);
    ck_assert_int_eq(a.encrypt, CK_FALSE);
    ck_assert_int_eq(a.decrypt, CK_FALSE);
    ck_assert_int_eq(a.sign, CK_FALSE);
    ck_assert_int_eq(a.verify, CK_FALSE);
    ck_assert_int_eq(a.derive, CK_FALSE);
    ck_assert_uint_eq(a.key_type, CKK_AES);
    ck_assert_uint_eq(a.value_len, 32);
    ck_assert_uint_eq(a.label_len, strlen("credvault-master-1"));
    ck_assert_int_eq(memcmp(a.label, "credvault-master-1", a.label_len), 0);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(binding_key_signs_only)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    CK_OBJECT_HANDLE h;
    ck_assert(cv_ok(cv_hsm_testing_key_handle(hsm, 0, &h)));
    struct attrs a = read_attrs(hsm, h);
    ck_assert_int_eq(a.token, CK_TRUE);
    ck_assert_int_eq(a.sensitive, CK_TRUE);
    ck_assert_int_eq(a.extractable, CK_FALSE);
    ck_assert_int_eq(a.never_extractable, CK_TRUE);
    ck_assert_int_eq(a.sign, CK_TRUE);
    ck_assert_int_eq(a.verify, CK_TRUE);
    ck_assert_int_eq(a.encrypt, CK_FALSE);
    ck_assert_int_eq(a.decrypt, CK_FALSE);
    ck_assert_int_eq(a.wrap, CK_FALSE);
    ck_assert_int_eq(a.unwrap, CK_FALSE);
    ck_assert_int_eq(a.derive, CK_FALSE);
    ck_assert_uint_eq(a.key_type, CKK_GENERIC_SECRET);
    ck_assert_uint_eq(a.value_len, 32);
    ck_assert_int_eq(cv_hsm_binding_key_create(hsm).err, CV_ERR_CONFLICT);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(master_create_twice_conflicts_and_destroy_removes)
{
    struct cv_hsm *hsm = fixture_open();
    int exists = 1;
    ck_assert(cv_ok(cv_hsm_master_exists(hsm, 7, &exists)));
    ck_assert_int_eq(exists, 0);
    ck_assert_msg(cv_ok(cv_hsm_master_create(hsm, 7)), "%s", cv_error_message());
    ck_assert_int_eq(cv_hsm_master_create(hsm, 7).err, CV_ERR_CONFLICT);
    ck_assert(strstr(cv_error_message(), "credvault-master-7") != NULL);
    cv_hsm_close(hsm);

    /* A second process (here: a new handle) sees it, and its conflict too. */
    hsm = fixture_open();
    ck_assert(cv_ok(cv_hsm_master_exists(hsm, 7, &exists)));
    ck_assert_int_eq(exists, 1);
    ck_assert_int_eq(cv_hsm_master_create(hsm, 7).err, CV_ERR_CONFLICT);
    ck_assert(cv_ok(cv_hsm_master_destroy(hsm, 7)));
    ck_assert(cv_ok(cv_hsm_master_exists(hsm, 7, &exists)));
    ck_assert_int_eq(exists, 0);
    ck_assert_int_eq(cv_hsm_master_destroy(hsm, 7).err, CV_ERR_NOT_FOUND);
    ck_assert_int_eq(cv_hsm_master_create(hsm, 0).err, CV_ERR_INPUT);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(generate_leaves_no_key_behind)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    unsigned long before = fixture_session_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    ck_assert_uint_eq(ref.wrapped_len, 40); /* RFC 5649 of 32 bytes */
    ck_assert_uint_eq(fixture_session_keys(hsm), before);
    struct cv_key_ref other = fixture_ref(hsm, "acme", 1, 1);
    ck_assert(memcmp(ref.wrapped, other.wrapped, ref.wrapped_len) != 0); /* a fresh key each time */
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &ref)));
    ck_assert_uint_eq(fixture_session_keys(hsm), before);                  /* verify keeps nothing */

    struct cv_key_ref missing;
    memset(&missing, 0, sizeof(missing));
    snprintf(missing.tenant_id, sizeof(missing.tenant_id), "acme");
    missing.version = 1;
    missing.master_version = 99;
    ck_assert_int_eq(cv_hsm_tenant_key_generate(hsm, &missing).err, CV_ERR_NOT_FOUND);
    memset(missing.tenant_id, 0, sizeof(missing.tenant_id));
    missing.master_version = 1;
    ck_assert_int_eq(cv_hsm_tenant_key_generate(hsm, &missing).err, CV_ERR_INPUT);
    cv_hsm_close(hsm);
}
END_TEST

static void assert_refused(struct cv_hsm *hsm, const struct cv_key_ref *ref, const char *what)
{
    cv_result r = cv_hsm_tenant_key_verify(hsm, ref);
    ck_assert_msg(r.err == CV_ERR_CRYPTO, "%s: verify gave %s (%s)", what, cv_err_name(r.err), cv_error_message());
    ck_assert_str_eq(cv_error_message(), "decryption failed");
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    r = cv_hsm_gcm_encrypt(hsm, ref, fixture_aad, sizeof(fixture_aad), fixture_pt, sizeof(fixture_pt), iv, ct, tag);
    ck_assert_msg(r.err == CV_ERR_CRYPTO, "%s: encrypt gave %s", what, cv_err_name(r.err));
}

START_TEST(wrapped_key_under_another_identity_is_refused)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    ck_assert(cv_ok(cv_hsm_master_create(hsm, 2)) || cv_error_category() == CV_ERR_CONFLICT);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 3, 1);
    uint64_t generation = cv_hsm_testing_generation(hsm);
    /* Warm the cache with the genuine ref first: none of the forgeries may hit it. */
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    fixture_seal(hsm, &ref, iv, ct, tag);

    struct cv_key_ref bad = ref;
    snprintf(bad.tenant_id, sizeof(bad.tenant_id), "globex");
    assert_refused(hsm, &bad, "other tenant");
    bad = ref;
    bad.version = 4;
    assert_refused(hsm, &bad, "other version");
    bad = ref;
    bad.master_version = 2; /* exists, but did not wrap it */
    assert_refused(hsm, &bad, "other master version");
    bad = ref;
    bad.wrapped[17] ^= 0x01;
    assert_refused(hsm, &bad, "flipped wrapped byte");
    bad = ref;
    bad.binding[0] ^= 0x80;
    assert_refused(hsm, &bad, "flipped binding byte");

    /* Someone who could also forge the binding (only a test can: the
     * binding key never leaves the token) still meets the unwrap. */
    bad = ref;
    bad.master_version = 2;
    ck_assert(cv_ok(cv_hsm_testing_bind(hsm, &bad)));
    assert_refused(hsm, &bad, "forged binding, wrong master");
    bad = ref;
    bad.wrapped[5] ^= 0x40;
    ck_assert(cv_ok(cv_hsm_testing_bind(hsm, &bad)));
    assert_refused(hsm, &bad, "forged binding, damaged wrapped key");
    /* A wrong answer about data never looks like an outage. */
    ck_assert_uint_eq(cv_hsm_testing_generation(hsm), generation);
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &ref)));
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(rewrap_moves_a_key_to_a_new_master)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    ck_assert(cv_ok(cv_hsm_master_create(hsm, 5)));
    ck_assert(cv_ok(cv_hsm_master_create(hsm, 6)));
    struct cv_key_ref old = fixture_ref(hsm, "initech", 1, 5);
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    fixture_seal(hsm, &old, iv, ct, tag);
    unsigned long before = fixture_session_keys(hsm);

    struct cv_key_ref moved;
    ck_assert_msg(cv_ok(cv_hsm_tenant_key_rewrap(hsm, &old, 6, &moved)), "%s", cv_error_message());
    ck_assert_uint_eq(fixture_session_keys(hsm), before); /* the extractable temporary is gone */
    ck_assert_uint_eq(moved.master_version, 6);
    ck_assert_str_eq(moved.tenant_id, "initech");
    ck_assert_uint_eq(moved.version, 1);
    ck_assert(memcmp(moved.wrapped, old.wrapped, old.wrapped_len) != 0);
    ck_assert(memcmp(moved.binding, old.binding, sizeof(old.binding)) != 0);
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &moved)));

    /* Same key under the new master: old records still open. */
    uint8_t pt[sizeof(fixture_pt)];
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &moved, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    ck_assert_int_eq(memcmp(pt, fixture_pt, sizeof(pt)), 0);

    /* Once the old master is gone, only the moved ref works. */
    ck_assert(cv_ok(cv_hsm_master_destroy(hsm, 5)));
    cv_hsm_cache_drop_all(hsm);
    ck_assert_int_eq(cv_hsm_tenant_key_verify(hsm, &old).err, CV_ERR_NOT_FOUND);
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &moved, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));

    /* In place (out == in) works too, and a tampered input is refused. */
    struct cv_key_ref tampered = moved;
    tampered.wrapped[0] ^= 1;
    ck_assert_int_eq(cv_hsm_tenant_key_rewrap(hsm, &tampered, 1, &tampered).err, CV_ERR_CRYPTO);
    ck_assert(cv_ok(cv_hsm_tenant_key_rewrap(hsm, &moved, 1, &moved)));
    ck_assert_uint_eq(moved.master_version, 1);
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &moved, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_keys", .timeout_s = 60};
    Suite *s = cv_t_suite_new(
        &spec, CV_T_TESTS(master_key_is_wrap_only_and_never_extractable, binding_key_signs_only,
                          master_create_twice_conflicts_and_destroy_removes, generate_leaves_no_key_behind,
                          wrapped_key_under_another_identity_is_refused, rewrap_moves_a_key_to_a_new_master));
    return fixture_run(s);
}
