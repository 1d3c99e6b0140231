/* AES-256-GCM in the token: round trips with a key ref, tampering, limits,
 * and published known-answer vectors run through the token itself. */
#include "test_hsm_fixture.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
    ck_assert_uint_eq(strlen(s), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

struct kat {
    const char *name, *key, *iv, *pt, *aad, *ct, *tag;
};

/* Published AES-256-GCM vectors with a 96-bit IV and AAD (cross-checked
 * against OpenSSL): the GCM specification's test case 16 (McGrew & Viega,
 * the SP 800-38D reference), and NIST CAVP gcmEncryptExtIV256.rsp
 * [Keylen = 256][IVlen = 96][PTlen = 128][AADlen = 128][Taglen = 128] Count = 0. */
static const struct kat kats[] = {
    {"gcm-spec-tc16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"cavp-extiv256-96-128-128-count0", "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
     "ac93a1a6145299bde902f21a", "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
};

START_TEST(known_answers_through_the_token)
{
    struct cv_hsm *hsm = fixture_open();
    for (size_t k = 0; k < sizeof(kats) / sizeof(kats[0]); k++) {
        const struct kat *v = &kats[k];
        uint8_t key[32], iv[12], aad[64], pt[64], ct[64], tag[16], out[64], out_tag[16];
        size_t aad_len = strlen(v->aad) / 2, pt_len = strlen(v->pt) / 2;
        unhex(v->key, key, sizeof(key));
        unhex(v->iv, iv, sizeof(iv));
        unhex(v->aad, aad, aad_len);
        unhex(v->pt, pt, pt_len);
        unhex(v->ct, ct, pt_len);
        unhex(v->tag, tag, sizeof(tag));
        CK_OBJECT_HANDLE h;
        ck_assert_msg(cv_ok(cv_hsm_testing_import_aes(hsm, key, sizeof(key), &h)), "%s", cv_error_message());

        ck_assert_msg(cv_ok(cv_hsm_testing_gcm_encrypt(hsm, h, iv, aad, aad_len, pt, pt_len, out, out_tag)),
                      "%s: %s", v->name, cv_error_message());
        ck_assert_msg(memcmp(out, ct, pt_len) == 0, "%s: ciphertext differs", v->name);
        ck_assert_msg(memcmp(out_tag, tag, sizeof(tag)) == 0, "%s: tag differs", v->name);

        memset(out, 0, sizeof(out));
        ck_assert(cv_ok(cv_hsm_testing_gcm_decrypt(hsm, h, iv, aad, aad_len, ct, pt_len, tag, out)));
        ck_assert_msg(memcmp(out, pt, pt_len) == 0, "%s: plaintext differs", v->name);

        tag[15] ^= 0x01;
        ck_assert_int_eq(cv_hsm_testing_gcm_decrypt(hsm, h, iv, aad, aad_len, ct, pt_len, tag, out).err,
                         CV_ERR_CRYPTO);
        ck_assert(cv_ok(cv_hsm_testing_destroy(hsm, h)));
    }
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(round_trip_with_a_key_ref)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    uint8_t iv[CV_GCM_IV_BYTES], iv2[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], ct2[sizeof(fixture_pt)];
    uint8_t tag[CV_GCM_TAG_BYTES], tag2[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
    fixture_seal(hsm, &ref, iv, ct, tag);
    fixture_seal(hsm, &ref, iv2, ct2, tag2);
    ck_assert(memcmp(ct, fixture_pt, sizeof(ct)) != 0);
    ck_assert(memcmp(iv, iv2, sizeof(iv)) != 0); /* a fresh IV per record */
    ck_assert(memcmp(ct, ct2, sizeof(ct)) != 0);
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    ck_assert_int_eq(memcmp(pt, fixture_pt, sizeof(pt)), 0);
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv2, ct2, sizeof(ct2), tag2, pt)));
    ck_assert_int_eq(memcmp(pt, fixture_pt, sizeof(pt)), 0);
    cv_hsm_close(hsm);
}
END_TEST

static void assert_decrypt_fails(struct cv_hsm *hsm, const struct cv_key_ref *ref, const uint8_t *aad, size_t aad_len,
                                 const uint8_t *iv, const uint8_t *ct, size_t ct_len, const uint8_t *tag)
{
    uint8_t pt[sizeof(fixture_pt)];
    memset(pt, 0xAA, sizeof(pt));
    cv_result r = cv_hsm_gcm_decrypt(hsm, ref, aad, aad_len, iv, ct, ct_len, tag, pt);
    ck_assert_msg(r.err == CV_ERR_CRYPTO, "gave %s (%s)", cv_err_name(r.err), cv_error_message());
    ck_assert_str_eq(cv_error_message(), "decryption failed");
    for (size_t i = 0; i < sizeof(pt); i++) ck_assert_uint_eq(pt[i], 0xAA); /* nothing released */
}

START_TEST(tampering_fails_with_one_answer)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1), other = fixture_ref(hsm, "globex", 1, 1);
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    fixture_seal(hsm, &ref, iv, ct, tag);
    uint64_t generation = cv_hsm_testing_generation(hsm);

    uint8_t aad[sizeof(fixture_aad)];
    memcpy(aad, fixture_aad, sizeof(aad));
    aad[17] ^= 0x01;
    assert_decrypt_fails(hsm, &ref, aad, sizeof(aad), iv, ct, sizeof(ct), tag);              /* wrong AAD */
    assert_decrypt_fails(hsm, &ref, fixture_aad, sizeof(fixture_aad) - 1, iv, ct, sizeof(ct), tag);
    uint8_t bad[CV_GCM_TAG_BYTES];
    memcpy(bad, tag, sizeof(bad));
    bad[0] ^= 0x80;
    assert_decrypt_fails(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), bad); /* flipped tag */
    uint8_t ct_bad[sizeof(ct)];
    memcpy(ct_bad, ct, sizeof(ct));
    ct_bad[3] ^= 0x04;
    assert_decrypt_fails(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct_bad, sizeof(ct), tag);
    uint8_t iv_bad[CV_GCM_IV_BYTES];
    memcpy(iv_bad, iv, sizeof(iv));
    iv_bad[11] ^= 0x01;
    assert_decrypt_fails(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv_bad, ct, sizeof(ct), tag);
    assert_decrypt_fails(hsm, &other, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag); /* other key */
    assert_decrypt_fails(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct) - 1, tag);
    struct cv_key_ref broken = ref;
    broken.wrapped_len = 7;
    assert_decrypt_fails(hsm, &broken, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag);

    /* Bad input is not an outage: no recovery ran, and the sessions still work. */
    ck_assert_uint_eq(cv_hsm_testing_generation(hsm), generation);
    uint8_t pt[sizeof(fixture_pt)];
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt)));
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(limits)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    uint8_t iv[CV_GCM_IV_BYTES], tag[CV_GCM_TAG_BYTES];
    size_t max = CV_HSM_GCM_MAX_BYTES;
    uint8_t *pt = calloc(1, max + 1), *ct = calloc(1, max + 1), *back = calloc(1, max + 1);
    ck_assert(pt && ct && back);
    memset(pt, 'x', max + 1);

    /* An empty AAD is a caller bug: every record binds tenant, server and version. */
    ck_assert_int_eq(cv_hsm_gcm_encrypt(hsm, &ref, fixture_aad, 0, pt, 10, iv, ct, tag).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, 0, iv, ct, 10, tag, back).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_hsm_gcm_encrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), pt, max + 1, iv, ct, tag).err,
                     CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_hsm_gcm_encrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), pt, 0, iv, ct, tag).err,
                     CV_ERR_INPUT);
    ck_assert_msg(cv_ok(cv_hsm_gcm_encrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), pt, max, iv, ct, tag)), "%s",
                  cv_error_message());
    ck_assert(cv_ok(cv_hsm_gcm_decrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), iv, ct, max, tag, back)));
    ck_assert_int_eq(memcmp(back, pt, max), 0);
    free(pt);
    free(ct);
    free(back);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_gcm", .timeout_s = 60};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(known_answers_through_the_token, round_trip_with_a_key_ref,
                                                tampering_fails_with_one_answer, limits));
    return fixture_run(s);
}
