/* AES-256-GCM in software (src/crypto/gcm.c), memory residency's cipher:
 * hostile cases first (flipped tag, AAD, IV and ciphertext bits, wrong key,
 * empty AAD, sizes out of range), then the published vectors the token's GCM
 * is checked against, and one context per thread. */
#include <check.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "cv_test_suite.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
    ck_assert_uint_eq(strlen(s), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static const uint8_t aad[] = "credvault.record|acme|server-1|1";
static const uint8_t msg[] = "{\"GITHUB_TOKEN\":\"ghp_0123456789abcdef\"}";

struct sealed {
    uint8_t key[CV_AES256_KEY_BYTES], iv[CV_GCM_IV_BYTES], ct[sizeof(msg)], tag[CV_GCM_TAG_BYTES];
};

static void seal(struct sealed *s)
{
    ck_assert(cv_ok(cv_crypto_random(s->key, sizeof(s->key))));
    ck_assert(cv_ok(cv_crypto_gcm_encrypt(s->key, aad, sizeof(aad), msg, sizeof(msg), s->iv, s->ct, s->tag)));
}

/* Opens with one byte of one part flipped: fails with the one message, and no plaintext is left. */
static void expect_refused(const struct sealed *orig, size_t at)
{
    struct sealed s = *orig;
    ((uint8_t *)&s)[at] ^= 0x01;
    uint8_t pt[sizeof(msg)];
    memset(pt, 0xAA, sizeof(pt));
    cv_result r = cv_crypto_gcm_decrypt(s.key, aad, sizeof(aad), s.iv, s.ct, sizeof(s.ct), s.tag, pt);
    ck_assert_int_eq(r.err, CV_ERR_CRYPTO);
    ck_assert_str_eq(cv_error_message(), "decryption failed");
    for (size_t i = 0; i < sizeof(pt); i++) ck_assert_uint_eq(pt[i], 0);
}

START_TEST(tampering_is_refused_and_releases_nothing)
{
    struct sealed s;
    seal(&s);
    expect_refused(&s, offsetof(struct sealed, tag) + 15);
    expect_refused(&s, offsetof(struct sealed, ct) + 3);
    expect_refused(&s, offsetof(struct sealed, iv) + 11);
    expect_refused(&s, offsetof(struct sealed, key));
    /* another AAD: the record moved to another tenant or server */
    uint8_t other[sizeof(aad)];
    memcpy(other, aad, sizeof(aad));
    other[17] ^= 0x01;
    uint8_t pt[sizeof(msg)];
    ck_assert_int_eq(cv_crypto_gcm_decrypt(s.key, other, sizeof(other), s.iv, s.ct, sizeof(s.ct), s.tag, pt).err,
                     CV_ERR_CRYPTO);
}
END_TEST

START_TEST(sizes_out_of_range_are_refused)
{
    struct sealed s;
    seal(&s);
    static uint8_t big[CV_HSM_GCM_MAX_BYTES + 1], out[CV_HSM_GCM_MAX_BYTES + 1], long_aad[1025];
    /* an empty AAD would bind the record to nothing; the token mishandles it too */
    ck_assert_int_eq(cv_crypto_gcm_encrypt(s.key, aad, 0, msg, sizeof(msg), s.iv, s.ct, s.tag).err, CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_crypto_gcm_encrypt(s.key, long_aad, sizeof(long_aad), msg, sizeof(msg), s.iv, s.ct, s.tag).err,
                     CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_crypto_gcm_encrypt(s.key, aad, sizeof(aad), msg, 0, s.iv, s.ct, s.tag).err, CV_ERR_INTERNAL);
    /* what the token could not open (CloudHSM's single-part limit) is never written */
    ck_assert_int_eq(cv_crypto_gcm_encrypt(s.key, aad, sizeof(aad), big, sizeof(big), s.iv, out, s.tag).err,
                     CV_ERR_INTERNAL);
    ck_assert_int_eq(cv_crypto_gcm_decrypt(s.key, aad, sizeof(aad), s.iv, big, sizeof(big), s.tag, out).err,
                     CV_ERR_INTERNAL);
    ck_assert(cv_ok(cv_crypto_gcm_encrypt(s.key, aad, sizeof(aad), big, sizeof(big) - 1, s.iv, out, s.tag)));
}
END_TEST

START_TEST(round_trip_with_fresh_ivs)
{
    struct sealed a, b;
    seal(&a);
    b = a;
    ck_assert(cv_ok(cv_crypto_gcm_encrypt(b.key, aad, sizeof(aad), msg, sizeof(msg), b.iv, b.ct, b.tag)));
    ck_assert_mem_ne(a.iv, b.iv, sizeof(a.iv)); /* 96 random bits each time */
    ck_assert_mem_ne(a.ct, b.ct, sizeof(a.ct));
    uint8_t pt[sizeof(msg)];
    ck_assert(cv_ok(cv_crypto_gcm_decrypt(a.key, aad, sizeof(aad), a.iv, a.ct, sizeof(a.ct), a.tag, pt)));
    ck_assert_mem_eq(pt, msg, sizeof(msg));
}
END_TEST

/* The vectors test_hsm_gcm runs through the token: the GCM specification's
 * test case 16 and NIST CAVP gcmEncryptExtIV256.rsp
 * [Keylen = 256][IVlen = 96][PTlen = 128][AADlen = 128][Taglen = 128] Count = 0. */
static const struct {
    const char *key, *iv, *pt, *aad, *ct, *tag;
} kats[] = {
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", "ac93a1a6145299bde902f21a",
     "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6", "8995ae2e6df3dbf96fac7b7137bae67f",
     "eca5aa77d51d4a0a14d9c51e1da474ab"},
};

START_TEST(known_answers)
{
    for (size_t k = 0; k < sizeof(kats) / sizeof(kats[0]); k++) {
        uint8_t key[32], iv[12], a[64], pt[64], ct[64], tag[16], out[64], out_tag[16];
        size_t aad_len = strlen(kats[k].aad) / 2, pt_len = strlen(kats[k].pt) / 2;
        unhex(kats[k].key, key, sizeof(key));
        unhex(kats[k].iv, iv, sizeof(iv));
        unhex(kats[k].aad, a, aad_len);
        unhex(kats[k].pt, pt, pt_len);
        unhex(kats[k].ct, ct, pt_len);
        unhex(kats[k].tag, tag, sizeof(tag));
        ck_assert(cv_ok(cv_crypto_gcm_seal_iv(key, iv, a, aad_len, pt, pt_len, out, out_tag)));
        ck_assert_mem_eq(out, ct, pt_len);
        ck_assert_mem_eq(out_tag, tag, sizeof(tag));
        ck_assert(cv_ok(cv_crypto_gcm_decrypt(key, a, aad_len, iv, ct, pt_len, tag, out)));
        ck_assert_mem_eq(out, pt, pt_len);
    }
}
END_TEST

static void *worker(void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int i = 0; i < 2000 && *ok; i++) {
        struct sealed s;
        uint8_t pt[sizeof(msg)];
        *ok = cv_ok(cv_crypto_random(s.key, sizeof(s.key))) &&
              cv_ok(cv_crypto_gcm_encrypt(s.key, aad, sizeof(aad), msg, sizeof(msg), s.iv, s.ct, s.tag)) &&
              cv_ok(cv_crypto_gcm_decrypt(s.key, aad, sizeof(aad), s.iv, s.ct, sizeof(s.ct), s.tag, pt)) &&
              memcmp(pt, msg, sizeof(msg)) == 0;
    }
    return NULL;
}

START_TEST(threads_keep_their_own_context)
{
    pthread_t t[4];
    int ok[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert(ok[i]);
    }
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "crypto_gcm", .timeout_s = 60};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(tampering_is_refused_and_releases_nothing,
                                                sizes_out_of_range_are_refused, round_trip_with_fresh_ivs,
                                                known_answers, threads_keep_their_own_context));
    return cv_t_suite_run(s, CK_FORK) ? 1 : 0;
}
