/* Memory residency at the HSM boundary, on a real SoftHSM2 token: the key
 * read out of the token seals records the token opens and the other way,
 * byte for byte; no extractable object stays behind; drops wipe the copies;
 * and a master key marked hsm-only (CKA_UNWRAP_TEMPLATE) makes SoftHSM itself
 * refuse the readable unwrap, while hsm residency, rewraps and a master
 * rotation (which carries the mark) keep working. The cases share one token:
 * the first two use the unmarked master 1 only, the last makes marked masters
 * 2 and 3, so any order works. */
#include <check.h>
#include <string.h>

#include "credvault/crypto.h"
#include "test_hsm_fixture.h"

static unsigned memory_keys(struct cv_hsm *hsm)
{
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    return st.memory_keys;
}

START_TEST(memory_key_opens_token_records_and_the_other_way)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "mem-a", 1, 1);
    unsigned long before = fixture_session_keys(hsm);
    uint8_t key[CV_AES256_KEY_BYTES], again[CV_AES256_KEY_BYTES];
    ck_assert_msg(cv_ok(cv_hsm_tenant_key_read(hsm, &ref, key)), "%s", cv_error_message());
    /* the extractable copy was destroyed before the call returned */
    ck_assert_uint_eq(fixture_session_keys(hsm), before);
    ck_assert_uint_eq(memory_keys(hsm), 1);
    ck_assert(cv_ok(cv_hsm_tenant_key_read(hsm, &ref, again))); /* from the cache */
    ck_assert_mem_eq(key, again, sizeof(key));
    ck_assert_uint_eq(memory_keys(hsm), 1);

    /* sealed in the token, opened in software */
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
    fixture_seal(hsm, &ref, iv, ct, tag);
    ck_assert(cv_ok(cv_crypto_gcm_decrypt(key, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    ck_assert_mem_eq(pt, fixture_pt, sizeof(pt));
    /* sealed in software, opened in the token */
    ck_assert(cv_ok(cv_crypto_gcm_encrypt(key, fixture_aad, sizeof(fixture_aad), fixture_pt, sizeof(fixture_pt), iv,
                                          ct, tag)));
    memset(pt, 0, sizeof(pt));
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    ck_assert_mem_eq(pt, fixture_pt, sizeof(pt));
    /* and the same IV gives the token's bytes exactly */
    uint8_t ct2[sizeof(fixture_pt)], tag2[CV_GCM_TAG_BYTES];
    ck_assert(cv_ok(cv_crypto_gcm_seal_iv(key, iv, fixture_aad, sizeof(fixture_aad), pt, sizeof(pt), ct2, tag2)));
    ck_assert_mem_eq(ct2, ct, sizeof(ct));
    ck_assert_mem_eq(tag2, tag, sizeof(tag));
    /* a flipped tag bit fails in software as in the token */
    tag[0] ^= 1;
    cv_result r = cv_crypto_gcm_decrypt(key, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt);
    ck_assert_int_eq(r.err, CV_ERR_CRYPTO);

    /* a changed ref never meets the cached bytes */
    before = fixture_session_keys(hsm); /* now with the token's cached copy of ref */
    struct cv_key_ref bad = ref;
    bad.wrapped[3] ^= 1;
    r = cv_hsm_tenant_key_read(hsm, &bad, again);
    ck_assert_int_eq(r.err, CV_ERR_CRYPTO);
    ck_assert_uint_eq(fixture_session_keys(hsm), before);

    /* the drops the handle cache gets wipe the copies too */
    struct cv_key_ref other = fixture_ref(hsm, "mem-b", 1, 1);
    ck_assert(cv_ok(cv_hsm_tenant_key_read(hsm, &other, again)));
    ck_assert_uint_eq(memory_keys(hsm), 2);
    cv_hsm_cache_drop_tenant(hsm, "mem-a");
    ck_assert_uint_eq(memory_keys(hsm), 1);
    cv_hsm_cache_drop_all(hsm);
    ck_assert_uint_eq(memory_keys(hsm), 0);
    cv_wipe(key, sizeof(key));
    cv_wipe(again, sizeof(again));
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(memory_cache_is_bounded)
{
    struct cv_hsm_options o = fixture_options();
    o.key_cache_size = 2;
    struct cv_hsm *hsm = fixture_open_with(&o);
    fixture_keys(hsm);
    uint8_t key[CV_AES256_KEY_BYTES];
    for (int i = 0; i < 5; i++) {
        char t[32];
        snprintf(t, sizeof(t), "bound-%d", i);
        struct cv_key_ref ref = fixture_ref(hsm, t, 1, 1);
        ck_assert(cv_ok(cv_hsm_tenant_key_read(hsm, &ref, key)));
    }
    ck_assert_uint_eq(memory_keys(hsm), 2);
    cv_wipe(key, sizeof(key));
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(hsm_only_mark_is_honoured_by_the_token)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    ck_assert_msg(cv_ok(cv_hsm_master_create_hsm_only(hsm, 2)), "%s", cv_error_message());
    int marked = 0;
    ck_assert(cv_ok(cv_hsm_residency_hsm_only(hsm, &marked)));
    ck_assert_int_eq(marked, 1);
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_int_eq(st.residency_hsm_only, 1);

    /* the attribute itself, read back: CKA_SENSITIVE true, nothing else */
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    CK_OBJECT_HANDLE m2;
    ck_assert(cv_ok(cv_hsm_testing_key_handle(hsm, 2, &m2)));
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(f->C_OpenSession(cv_hsm_testing_slot(hsm), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                      CKR_OK);
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE inner = {CKA_SENSITIVE, &v, sizeof(v)};
    CK_ATTRIBUTE a = {CKA_UNWRAP_TEMPLATE, &inner, sizeof(inner)};
    ck_assert_uint_eq(f->C_GetAttributeValue(s, m2, &a, 1), CKR_OK);
    ck_assert_uint_eq(a.ulValueLen, sizeof(CK_ATTRIBUTE));
    ck_assert_uint_eq(inner.type, CKA_SENSITIVE);
    ck_assert_uint_eq(v, CK_TRUE);
    f->C_CloseSession(s);

    /* hsm residency under the marked master works as before */
    struct cv_key_ref ref = fixture_ref(hsm, "marked", 1, 2);
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
    fixture_seal(hsm, &ref, iv, ct, tag);
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &ref)));

    /* the token refuses the readable unwrap and leaves nothing behind */
    unsigned long before = fixture_session_keys(hsm);
    uint8_t key[CV_AES256_KEY_BYTES];
    cv_result r = cv_hsm_tenant_key_read(hsm, &ref, key);
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);
    ck_assert_msg(strstr(cv_error_message(), "hsm residency only") != NULL, "%s", cv_error_message());
    ck_assert_uint_eq(fixture_session_keys(hsm), before);
    ck_assert_uint_eq(memory_keys(hsm), 0);

    /* a master rotation: the new master carries the mark, the rewrap (an
     * extractable but sensitive temporary) still passes the template */
    ck_assert_msg(cv_ok(cv_hsm_master_create(hsm, 3)), "%s", cv_error_message());
    ck_assert(cv_ok(cv_hsm_residency_hsm_only(hsm, &marked)));
    ck_assert_int_eq(marked, 1);
    struct cv_key_ref moved;
    ck_assert_msg(cv_ok(cv_hsm_tenant_key_rewrap(hsm, &ref, 3, &moved)), "%s", cv_error_message());
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &moved, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    ck_assert_mem_eq(pt, fixture_pt, sizeof(pt));
    r = cv_hsm_tenant_key_read(hsm, &moved, key);
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);

    /* a key of the unmarked master 1 still reads: the mark is per master key */
    struct cv_key_ref old = fixture_ref(hsm, "unmarked", 1, 1);
    ck_assert_msg(cv_ok(cv_hsm_tenant_key_read(hsm, &old, key)), "%s", cv_error_message());
    cv_wipe(key, sizeof(key));
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_residency", .timeout_s = 60};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(memory_key_opens_token_records_and_the_other_way,
                                                memory_cache_is_bounded, hsm_only_mark_is_honoured_by_the_token));
    return fixture_run(s);
}
