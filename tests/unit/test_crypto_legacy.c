/* GigaChad GRC's format (src/crypto/legacy*.c): the strict decoder's refusals
 * first, then scrypt against RFC 7914 and decryption of records written by
 * Node's crypto module. The two records below were made with
 *   MCP_ENCRYPTION_KEY='correct horse battery staple, 32+ characters long' \
 *     node tests/fixtures/make-legacy-records.js SPEC.json
 * with fixed IVs (and salt) in SPEC, so they are an independent implementation's output. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto_legacy.h"

#define PASS "correct horse battery staple, 32+ characters long"
#define IV1 "000102030405060708090a0b0c0d0e0f"
#define TAG1 "d7855c823a11ce170d159191f06fbca1"
#define ENC1                                                                                                     \
    "23140566bd77044380f674788c28d5889524a13bbb2f08c0aa3dd8235dcad79d1a7f709255eefde7eef00fef78d754de1c9471c92c70" \
    "4183c74aa4045179fe5eb11c8b3f80a6b5dba259ecfcdb398e3b7fc46bdf6a1bb422da5cc520234fa8b99683eb5c7097a0b61073c6b4" \
    "96e99d"
#define PT1 "{\"AWS_ACCESS_KEY_ID\":\"AKIAIOSFODNN7EXAMPLE\",\"AWS_SECRET_ACCESS_KEY\":\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}"
#define REC1 "{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}"
/* scrypt(PASS, "mcp-salt") by Node's crypto.scryptSync */
#define KEY1 "78a22daae0e7467f35ec1059f9c1f033dfc72601b299e7ef888b5d08fee16a5d"

#define SALT2 "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define REC2                                                                                                     \
    "{\"iv\":\"f0e0d0c0b0a090807060504030201000\",\"encrypted\":\"d4ca5acd3d82ad4b95617ecbb37fecd95acfab1f176cad45" \
    "7958bb02ebb3e0a84ea34ded93342e21af8ff2f07e\",\"authTag\":\"e19a8d1f8ce88224cf8b74362792f37a\",\"salt\":\"" SALT2 "\"}"
#define PT2 "{\"GITHUB_TOKEN\":\"ghp_\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9_0123456789\"}"

static cv_err decode(const char *text)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    cv_result r = cv_legacy_record_decode(text, strlen(text), &rec);
    cv_legacy_record_wipe(&rec);
    return r.err;
}

static void refused(const char *text)
{
    cv_err e = decode(text);
    ck_assert_msg(e == CV_ERR_INPUT, "accepted or wrong error (%d) for: %.200s", (int)e, text);
}

static void hex(const char *h, uint8_t *out, size_t n) { ck_assert(cv_ok(cv_hex_decode(h, strlen(h), out, n))); }

static void decrypt_record(const char *text, const char *pass, uint8_t *pt, size_t *pt_len, cv_err *err)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    ck_assert(cv_ok(cv_legacy_record_decode(text, strlen(text), &rec)));
    uint8_t key[CV_LEGACY_KEY_BYTES];
    if (rec.has_salt)
        ck_assert(cv_ok(cv_legacy_kdf((const uint8_t *)pass, strlen(pass), rec.salt, sizeof(rec.salt), key)));
    else
        ck_assert(cv_ok(cv_legacy_kdf((const uint8_t *)pass, strlen(pass), (const uint8_t *)CV_LEGACY_FIXED_SALT,
                                      strlen(CV_LEGACY_FIXED_SALT), key)));
    *err = cv_legacy_gcm_decrypt(key, rec.iv, rec.ct.data, rec.ct.len, rec.tag, pt).err;
    *pt_len = rec.ct.len;
    cv_legacy_record_wipe(&rec);
}

/* ---- hostile ---- */

START_TEST(truncated_tag_refused)
{
    /* Node's setAuthTag took 4..16 bytes and verified only those: a 12-byte
     * tag decrypted there. Here the tag is 16 bytes or the record is refused. */
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"d7855c823a11ce170d159191\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"d7855c82\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "00\"}");
}
END_TEST

START_TEST(wrong_iv_and_salt_length_refused)
{
    /* a 12-byte IV is credvault's own format, never GigaChad's */
    refused("{\"iv\":\"000102030405060708090a0b\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "00\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"6d63702d73616c74\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"mcp-salt\"}");
}
END_TEST

START_TEST(bad_hex_refused)
{
    refused("{\"iv\":\"000102030405060708090A0B0C0D0E0F\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"D7855C823A11CE170D159191F06FBCA1\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"23140566BD\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"2314056\",\"authTag\":\"" TAG1 "\"}"); /* odd */
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"0x2314\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"23 14\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"0001020304050607 8090a0b0c0d0e0f\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A\"}");
}
END_TEST

START_TEST(wrong_members_refused)
{
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\"}");
    refused("{\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"alg\":\"aes-256-gcm\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"tag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authtag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"" SALT2 "\",\"x\":1}");
    /* duplicates: the last one must not silently win */
    refused("{\"iv\":\"" IV1 "\",\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":\"" SALT2 "\",\"salt\":\"" SALT2 "\"}");
    /* types */
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":null}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":[\"" ENC1 "\"],\"authTag\":\"" TAG1 "\"}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":null}");
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\",\"salt\":12345}");
}
END_TEST

START_TEST(not_a_record_refused)
{
    refused("");
    refused("{}");
    refused("[]");
    refused("null");
    refused("\"" ENC1 "\"");
    refused(IV1 ":" TAG1 ":" ENC1); /* another product's colon format */
    refused(REC1 "x");
    refused(REC1 REC1);
    refused("{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"");
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    const char nul[] = "{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"" TAG1 "\"}\0";
    ck_assert_int_eq(cv_legacy_record_decode(nul, sizeof(nul), &rec).err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_legacy_record_decode(NULL, 0, &rec).err, CV_ERR_INPUT);
    cv_legacy_record_wipe(&rec);
}
END_TEST

START_TEST(oversize_refused)
{
    size_t n = 2 * (CV_LEGACY_MAX_PLAINTEXT_BYTES + 1);
    char *big = malloc(n + 256);
    ck_assert_ptr_nonnull(big);
    int k = snprintf(big, 256, "{\"iv\":\"%s\",\"authTag\":\"%s\",\"encrypted\":\"", IV1, TAG1);
    memset(big + k, 'a', n);
    strcpy(big + k + n, "\"}");
    refused(big);
    free(big);
}
END_TEST

START_TEST(message_never_quotes_input)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    const char *t = "{\"iv\":\"" IV1 "\",\"encrypted\":\"secretish\",\"authTag\":\"" TAG1 "\"}";
    ck_assert_int_eq(cv_legacy_record_decode(t, strlen(t), &rec).err, CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "secretish"));
    const char *u = "{\"iv\":\"" IV1 "\",\"encrypted\":\"ab\",\"authTag\":\"" TAG1 "\", garbage-secretish}";
    ck_assert_int_eq(cv_legacy_record_decode(u, strlen(u), &rec).err, CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "secretish"));
    cv_legacy_record_wipe(&rec);
}
END_TEST

START_TEST(flipped_bits_fail_authentication)
{
    uint8_t key[CV_LEGACY_KEY_BYTES], iv[CV_LEGACY_IV_BYTES], tag[CV_LEGACY_TAG_BYTES];
    uint8_t ct[sizeof(ENC1) / 2], pt[sizeof(ENC1) / 2];
    hex(KEY1, key, sizeof(key));
    hex(IV1, iv, sizeof(iv));
    hex(TAG1, tag, sizeof(tag));
    hex(ENC1, ct, sizeof(ct));
    ck_assert(cv_ok(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct), tag, pt)));
    ck_assert_int_eq(memcmp(pt, PT1, sizeof(pt)), 0);

    ct[0] ^= 1;
    memset(pt, 0x55, sizeof(pt));
    ck_assert_int_eq(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct), tag, pt).err, CV_ERR_CRYPTO);
    for (size_t i = 0; i < sizeof(pt); i++) ck_assert_int_eq(pt[i], 0); /* nothing of a failed decryption stays */
    ct[0] ^= 1;
    tag[15] ^= 0x80;
    ck_assert_int_eq(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct), tag, pt).err, CV_ERR_CRYPTO);
    tag[15] ^= 0x80;
    iv[0] ^= 1;
    ck_assert_int_eq(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct), tag, pt).err, CV_ERR_CRYPTO);
    iv[0] ^= 1;
    key[31] ^= 1;
    ck_assert_int_eq(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct), tag, pt).err, CV_ERR_CRYPTO);
    key[31] ^= 1;
    /* one byte short: a truncated ciphertext does not authenticate either */
    ck_assert_int_eq(cv_legacy_gcm_decrypt(key, iv, ct, sizeof(ct) - 1, tag, pt).err, CV_ERR_CRYPTO);
}
END_TEST

START_TEST(wrong_passphrase_fails_authentication)
{
    uint8_t pt[CV_LEGACY_MAX_PLAINTEXT_BYTES];
    size_t n;
    cv_err e;
    decrypt_record(REC1, PASS " ", pt, &n, &e);
    ck_assert_int_eq(e, CV_ERR_CRYPTO);
    /* the key string is UTF-8 bytes, never hex-decoded: its hex spelling is another key */
    decrypt_record(REC1, "636f727265637420686f727365", pt, &n, &e);
    ck_assert_int_eq(e, CV_ERR_CRYPTO);
    decrypt_record(REC2, "Correct horse battery staple, 32+ characters long", pt, &n, &e);
    ck_assert_int_eq(e, CV_ERR_CRYPTO);
}
END_TEST

START_TEST(kdf_refuses_empty_and_huge_passphrases)
{
    uint8_t key[CV_LEGACY_KEY_BYTES];
    const uint8_t salt[] = "mcp-salt";
    ck_assert_int_eq(cv_legacy_kdf((const uint8_t *)"", 0, salt, 8, key).err, CV_ERR_INPUT);
    uint8_t *big = calloc(1, CV_LEGACY_PASSPHRASE_MAX_BYTES + 1);
    ck_assert_int_eq(cv_legacy_kdf(big, CV_LEGACY_PASSPHRASE_MAX_BYTES + 1, salt, 8, key).err, CV_ERR_INPUT);
    free(big);
    ck_assert_int_eq(cv_legacy_kdf((const uint8_t *)"x", 1, salt, 0, key).err, CV_ERR_INPUT);
}
END_TEST

/* ---- valid ---- */

START_TEST(scrypt_rfc7914_vector)
{
    /* RFC 7914 §12, N=16384 r=8 p=1; a 32-byte output is the first half of the 64-byte one */
    uint8_t key[CV_LEGACY_KEY_BYTES], want[CV_LEGACY_KEY_BYTES];
    hex("7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2", want, sizeof(want));
    ck_assert(cv_ok(cv_legacy_kdf((const uint8_t *)"pleaseletmein", 13, (const uint8_t *)"SodiumChloride", 14, key)));
    ck_assert_int_eq(memcmp(key, want, sizeof(key)), 0);
    hex(KEY1, want, sizeof(want));
    ck_assert(cv_ok(cv_legacy_kdf((const uint8_t *)PASS, strlen(PASS), (const uint8_t *)"mcp-salt", 8, key)));
    ck_assert_int_eq(memcmp(key, want, sizeof(key)), 0);
}
END_TEST

START_TEST(node_fixed_salt_record_decrypts)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    ck_assert(cv_ok(cv_legacy_record_decode(REC1, strlen(REC1), &rec)));
    ck_assert_int_eq(rec.has_salt, 0);
    ck_assert_uint_eq(rec.ct.len, strlen(PT1));
    cv_legacy_record_wipe(&rec);

    uint8_t pt[CV_LEGACY_MAX_PLAINTEXT_BYTES];
    size_t n;
    cv_err e;
    decrypt_record(REC1, PASS, pt, &n, &e);
    ck_assert_int_eq(e, CV_ERR_NONE);
    ck_assert_uint_eq(n, strlen(PT1));
    ck_assert_int_eq(memcmp(pt, PT1, n), 0);
}
END_TEST

START_TEST(node_salt_field_record_decrypts)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    ck_assert(cv_ok(cv_legacy_record_decode(REC2, strlen(REC2), &rec)));
    ck_assert_int_eq(rec.has_salt, 1);
    for (size_t i = 0; i < sizeof(rec.salt); i++) ck_assert_int_eq(rec.salt[i], 0x5a);
    cv_legacy_record_wipe(&rec);

    uint8_t pt[CV_LEGACY_MAX_PLAINTEXT_BYTES];
    size_t n;
    cv_err e;
    decrypt_record(REC2, PASS, pt, &n, &e);
    ck_assert_int_eq(e, CV_ERR_NONE);
    ck_assert_uint_eq(n, strlen(PT2));
    ck_assert_int_eq(memcmp(pt, PT2, n), 0);
}
END_TEST

START_TEST(any_member_order_and_spacing_accepted)
{
    const char *t = " {\n \"authTag\" : \"" TAG1 "\",\t\"encrypted\":\"" ENC1 "\", \"iv\":\"" IV1 "\" } ";
    ck_assert_int_eq(decode(t), CV_ERR_NONE);
    const char *u = "{\"salt\":\"" SALT2 "\",\"authTag\":\"" TAG1 "\",\"encrypted\":\"00\",\"iv\":\"" IV1 "\"}";
    ck_assert_int_eq(decode(u), CV_ERR_NONE);
}
END_TEST

START_TEST(failed_decode_leaves_record_unchanged)
{
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    ck_assert(cv_ok(cv_legacy_record_decode(REC2, strlen(REC2), &rec)));
    const char *bad = "{\"iv\":\"" IV1 "\",\"encrypted\":\"" ENC1 "\",\"authTag\":\"d7855c82\"}";
    ck_assert_int_eq(cv_legacy_record_decode(bad, strlen(bad), &rec).err, CV_ERR_INPUT);
    ck_assert_int_eq(rec.has_salt, 1);
    ck_assert_uint_eq(rec.ct.len, strlen(PT2));
    cv_legacy_record_wipe(&rec);
}
END_TEST

static Suite *legacy_suite(void)
{
    Suite *s = suite_create("crypto_legacy");
    TCase *neg = tcase_create("hostile");
    tcase_set_timeout(neg, 60);
    tcase_add_test(neg, truncated_tag_refused);
    tcase_add_test(neg, wrong_iv_and_salt_length_refused);
    tcase_add_test(neg, bad_hex_refused);
    tcase_add_test(neg, wrong_members_refused);
    tcase_add_test(neg, not_a_record_refused);
    tcase_add_test(neg, oversize_refused);
    tcase_add_test(neg, message_never_quotes_input);
    tcase_add_test(neg, flipped_bits_fail_authentication);
    tcase_add_test(neg, wrong_passphrase_fails_authentication);
    tcase_add_test(neg, kdf_refuses_empty_and_huge_passphrases);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_set_timeout(pos, 60);
    tcase_add_test(pos, scrypt_rfc7914_vector);
    tcase_add_test(pos, node_fixed_salt_record_decrypts);
    tcase_add_test(pos, node_salt_field_record_decrypts);
    tcase_add_test(pos, any_member_order_and_spacing_accepted);
    tcase_add_test(pos, failed_decode_leaves_record_unchanged);
    suite_add_tcase(s, pos);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(legacy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
