/* Record codec (src/crypto/record.c): hostile inputs first, then round trips. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/json_alloc.h"

#define IV_HEX "000102030405060708090a0b"
#define TAG_HEX "00112233445566778899aabbccddeeff"
#define VALID "{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}"

/* A record text with one member's raw JSON value replaced (NULL keeps it). */
static char *record_text(const char *v, const char *alg, const char *kid, const char *iv, const char *enc,
                         const char *tag)
{
    size_t n = 256 + strlen(enc ? enc : "") + strlen(kid ? kid : "");
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    int k = snprintf(s, n, "{\"v\":%s,\"alg\":%s,\"kid\":%s,\"iv\":%s,\"encrypted\":%s,\"authTag\":%s}",
                     v ? v : "2", alg ? alg : "\"A256GCM\"", kid ? kid : "\"acme/1\"", iv ? iv : "\"" IV_HEX "\"",
                     enc ? enc : "\"deadbeef\"", tag ? tag : "\"" TAG_HEX "\"");
    ck_assert(k > 0 && (size_t)k < n);
    return s;
}

static cv_err decode_len(const char *text, size_t len)
{
    struct cv_record rec;
    cv_record_init(&rec);
    cv_result r = cv_record_decode(text, len, &rec);
    cv_record_wipe(&rec);
    return r.err;
}

static cv_err decode_str(const char *text) { return decode_len(text, strlen(text)); }

static void assert_refused(const char *text)
{
    cv_err e = decode_str(text);
    ck_assert_msg(e == CV_ERR_INPUT, "accepted or wrong error (%d) for: %.200s", (int)e, text);
}

static void assert_refused_owned(char *text)
{
    assert_refused(text);
    free(text);
}

static void assert_kid_refused(const char *kid)
{
    char quoted[512];
    snprintf(quoted, sizeof(quoted), "\"%s\"", kid);
    assert_refused_owned(record_text(NULL, NULL, quoted, NULL, NULL, NULL));
}

static char *hex_of_len(size_t n, char fill)
{
    char *s = malloc(n + 3);
    ck_assert_ptr_nonnull(s);
    s[0] = '"';
    memset(s + 1, fill, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

START_TEST(truncated_prefixes_refused)
{
    const char *valid = VALID;
    size_t n = strlen(valid);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(decode_len(valid, i), CV_ERR_INPUT);
    ck_assert_int_eq(decode_len(valid, n), CV_ERR_NONE);
}
END_TEST

START_TEST(null_and_empty_refused)
{
    struct cv_record rec;
    cv_record_init(&rec);
    ck_assert(cv_failed(cv_record_decode(NULL, 0, &rec)));
    ck_assert(cv_failed(cv_record_decode("", 0, &rec)));
    ck_assert(cv_failed(cv_record_decode(VALID, strlen(VALID), NULL)));
    cv_record_wipe(&rec);
}
END_TEST

START_TEST(oversize_refused)
{
    /* one byte over the plaintext limit */
    char *enc = hex_of_len(2 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES + 2, 'a');
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, enc, NULL));
    free(enc);
    /* a text far over the limit, even if it were only whitespace */
    size_t big = 4 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES;
    char *s = malloc(big + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, ' ', big);
    memcpy(s, VALID, strlen(VALID));
    s[big] = '\0';
    ck_assert_int_eq(decode_len(s, big), CV_ERR_INPUT);
    free(s);
}
END_TEST

START_TEST(bad_hex_refused)
{
    /* uppercase */
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"000102030405060708090A0B\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"DEADBEEF\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, NULL, "\"00112233445566778899AABBCCDDEEFF\""));
    /* odd length, empty, non-hex, a space, a sign */
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"deadbee\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"deadbeeg\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"dead beef\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"0xdeadbe\"", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"000102030405060708090a0g\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, NULL, "\"00112233445566778899aabbccddeef-\""));
    /* an escaped NUL inside the hex */
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "\"dead\\u0000eef\"", NULL));
    /* not a string */
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "12345678", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "[\"deadbeef\"]", NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, "null", NULL));
}
END_TEST

START_TEST(wrong_iv_and_tag_length_refused)
{
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"000102030405060708090a\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"000102030405060708090a0b0c\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"00010203040506070809\"", NULL, NULL)); /* 16-byte legacy IV is 32 */
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"000102030405060708090a0b0c0d0e0f\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, "\"\"", NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, NULL, "\"00112233445566778899aabbccddee\""));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, NULL, "\"00112233445566778899aabbccddeeff00\""));
    assert_refused_owned(record_text(NULL, NULL, NULL, NULL, NULL, "\"\""));
}
END_TEST

START_TEST(wrong_version_refused)
{
    static const char *const bad[] = {"1", "\"2\"", "2.0", "4", "0", "-2", "2e0", "20", "true", "null",
                                      "[2]", "{}", "02", "4294967298", "18446744073709551618"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused_owned(record_text(bad[i], NULL, NULL, NULL, NULL, NULL));
    /* missing v: five members, and six members with another name in its place */
    assert_refused("{\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}");
    assert_refused("{\"V\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}");
}
END_TEST

START_TEST(unknown_alg_refused)
{
    static const char *const bad[] = {"\"A128GCM\"", "\"a256gcm\"", "\"A256GCM \"", "\"\"", "\"A256GCMX\"",
                                      "\"A256GC\"", "\"dir\"", "null", "7", "\"A256GCM\\u0000\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_refused_owned(record_text(NULL, bad[i], NULL, NULL, NULL, NULL));
}
END_TEST

START_TEST(extra_member_refused)
{
    assert_refused("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\",\"x\":1}");
    assert_refused("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\",\"tag\":\"" TAG_HEX "\"}");
    /* six members, one of them unknown and one required missing */
    assert_refused("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"tag\":\"" TAG_HEX "\"}");
}
END_TEST

START_TEST(duplicate_member_refused)
{
    /* same value twice, and a later value that would silently win */
    assert_refused("{\"v\":2,\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}");
    assert_refused("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\",\"kid\":\"evil/1\"}");
    /* six members with a duplicate in place of a missing one */
    assert_refused("{\"v\":2,\"kid\":\"acme/1\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}");
    /* a duplicate spelled with an escape is the same name */
    assert_refused("{\"v\":2,\"\\u0076\":2,\"alg\":\"A256GCM\",\"kid\":\"acme/1\",\"iv\":\"" IV_HEX "\",\"encrypted\":\"deadbeef\",\"authTag\":\"" TAG_HEX "\"}");
}
END_TEST

START_TEST(bad_kid_refused)
{
    static const char *const bad[] = {
        "acme",           /* no slash */
        "acme1",          "/1",            "acme/",           "",
        "Acme/1",         /* uppercase tenant */
        "-acme/1",        /* tenant starts with '-' */
        "ac_me/1",        "ac me/1",       "acme\\u0000/1",   "acme/0", /* version 0 */
        "acme/01",        /* leading zero */
        "acme/00",        "acme/+1",       "acme/-1",         "acme/ 1",
        "acme/1 ",        "acme/1/2",      "acme//1",         "acme/1a",
        "acme/0x1",       "acme/1.0",      "acme/1e3",
        "acme/4294967296", /* 2^32 */
        "acme/9999999999", "acme/18446744073709551617", "acme/00000000001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_kid_refused(bad[i]);
    /* 65-character tenant */
    char kid[128];
    memset(kid, 'a', 65);
    strcpy(kid + 65, "/1");
    assert_kid_refused(kid);
    /* not a string */
    assert_refused_owned(record_text(NULL, NULL, "1", NULL, NULL, NULL));
    assert_refused_owned(record_text(NULL, NULL, "[\"acme\",1]", NULL, NULL, NULL));
}
END_TEST

START_TEST(not_an_object_refused)
{
    static const char *const bad[] = {"[]", "{}", "\"x\"", "2", "null", "true", "[" VALID "]", "{\"v\":2}",
                                      "{" VALID "}", "{\"r\":" VALID "}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_refused(bad[i]);
}
END_TEST

START_TEST(trailing_garbage_refused)
{
    assert_refused(VALID "x");
    assert_refused(VALID "{}");
    assert_refused(VALID VALID);
    assert_refused(VALID ",");
    assert_refused(VALID " 1");
    assert_refused("x" VALID);
    /* a comment is not JSON */
    assert_refused(VALID "//");
}
END_TEST

START_TEST(nul_byte_refused)
{
    const char *valid = VALID;
    size_t n = strlen(valid);
    char *s = malloc(n + 2);
    ck_assert_ptr_nonnull(s);
    /* a NUL after the object, and a NUL in place of each byte in turn */
    memcpy(s, valid, n + 1);
    ck_assert_int_eq(decode_len(s, n + 1), CV_ERR_INPUT);
    for (size_t i = 0; i < n; i++) {
        memcpy(s, valid, n + 1);
        s[i] = '\0';
        ck_assert_int_eq(decode_len(s, n), CV_ERR_INPUT);
    }
    free(s);
}
END_TEST

START_TEST(failed_decode_leaves_record_unchanged)
{
    struct cv_record rec;
    cv_record_init(&rec);
    ck_assert(cv_ok(cv_record_decode(VALID, strlen(VALID), &rec)));
    char *bad = record_text(NULL, NULL, "\"other/7\"", NULL, "\"deadbeeg\"", NULL);
    ck_assert_int_eq(cv_record_decode(bad, strlen(bad), &rec).err, CV_ERR_INPUT);
    free(bad);
    ck_assert_str_eq(rec.tenant_id, "acme");
    ck_assert_uint_eq(rec.key_version, 1);
    ck_assert_uint_eq(rec.ct.len, 4);
    ck_assert_mem_eq(rec.ct.data, "\xde\xad\xbe\xef", 4);
    cv_record_wipe(&rec);
}
END_TEST

START_TEST(flipped_tag_bit_decodes_to_other_tag)
{
    /* decode checks syntax only; the tag is checked by the decryption */
    struct cv_record a, b;
    cv_record_init(&a);
    cv_record_init(&b);
    char *flipped = record_text(NULL, NULL, NULL, NULL, NULL, "\"10112233445566778899aabbccddeeff\"");
    ck_assert(cv_ok(cv_record_decode(VALID, strlen(VALID), &a)));
    ck_assert(cv_ok(cv_record_decode(flipped, strlen(flipped), &b)));
    free(flipped);
    ck_assert_mem_ne(a.tag, b.tag, CV_GCM_TAG_BYTES);
    ck_assert_uint_eq(a.tag[0] ^ b.tag[0], 0x10);
    ck_assert_mem_eq(a.tag + 1, b.tag + 1, CV_GCM_TAG_BYTES - 1);
    ck_assert_mem_eq(a.iv, b.iv, CV_GCM_IV_BYTES);
    cv_record_wipe(&a);
    cv_record_wipe(&b);
}
END_TEST

static void fill_record(struct cv_record *rec, const char *tenant, uint32_t version, size_t ct_len)
{
    cv_record_init(rec);
    snprintf(rec->tenant_id, sizeof(rec->tenant_id), "%s", tenant);
    rec->key_version = version;
    for (size_t i = 0; i < CV_GCM_IV_BYTES; i++) rec->iv[i] = (uint8_t)i;
    for (size_t i = 0; i < CV_GCM_TAG_BYTES; i++) rec->tag[i] = (uint8_t)(0x11 * i);
    ck_assert(cv_ok(cv_buf_reserve(&rec->ct, ct_len)));
    for (size_t i = 0; i < ct_len; i++) rec->ct.data[i] = (uint8_t)(i * 7 + 3);
    rec->ct.len = ct_len;
}

START_TEST(encode_refuses_invalid_record)
{
    struct cv_record rec;
    struct cv_buf out;
    cv_buf_init(&out, 1 << 22);
    ck_assert(cv_ok(cv_buf_append_str(&out, "keep")));

    fill_record(&rec, "Acme", 1, 4);
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);
    fill_record(&rec, "", 1, 4);
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);
    fill_record(&rec, "acme", 0, 4);
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);
    fill_record(&rec, "acme", 1, 0);
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);
    fill_record(&rec, "acme", 1, 4);
    rec.v = 1;
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);
    fill_record(&rec, "acme", 1, 4);
    memset(rec.tenant_id, 'a', sizeof(rec.tenant_id)); /* no terminator */
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_INPUT);
    cv_record_wipe(&rec);

    ck_assert_uint_eq(out.len, 4);
    ck_assert_mem_eq(out.data, "keep", 4);
    cv_buf_free(&out);
}
END_TEST

START_TEST(encode_over_buffer_limit_leaves_output_unchanged)
{
    struct cv_record rec;
    struct cv_buf out;
    fill_record(&rec, "acme", 1, 64);
    cv_buf_init(&out, 100);
    ck_assert(cv_ok(cv_buf_append_str(&out, "keep")));
    ck_assert_int_eq(cv_record_encode(&rec, &out).err, CV_ERR_TOO_LARGE);
    ck_assert_uint_eq(out.len, 4);
    cv_buf_free(&out);
    cv_record_wipe(&rec);
}
END_TEST

START_TEST(encode_is_canonical)
{
    struct cv_record rec;
    struct cv_buf out;
    cv_record_init(&rec);
    strcpy(rec.tenant_id, "acme");
    rec.key_version = 1;
    memcpy(rec.iv, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", 12);
    memcpy(rec.tag, "\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff", 16);
    ck_assert(cv_ok(cv_buf_append(&rec.ct, "\xde\xad\xbe\xef", 4)));
    cv_buf_init(&out, 4096);
    ck_assert(cv_ok(cv_buf_append_str(&out, ">")));
    rec.v = 2; /* the format of VALID, still written by nothing but still read */
    ck_assert(cv_ok(cv_record_encode(&rec, &out)));
    ck_assert_str_eq((const char *)out.data, ">" VALID); /* appended and NUL-terminated */
    ck_assert_uint_eq(out.len, 1 + strlen(VALID));
    /* the current format differs in "v" only */
    cv_buf_reset(&out);
    rec.v = CV_RECORD_VERSION;
    ck_assert(cv_ok(cv_record_encode(&rec, &out)));
    ck_assert_uint_eq(CV_RECORD_VERSION, 3);
    ck_assert_ptr_nonnull(strstr((const char *)out.data, "{\"v\":3,\"alg\""));
    ck_assert_uint_eq(out.len, strlen(VALID));
    cv_buf_free(&out);
    cv_record_wipe(&rec);
}
END_TEST

static void round_trip(const char *tenant, uint32_t version, size_t ct_len)
{
    struct cv_record a, b;
    struct cv_buf text, again;
    fill_record(&a, tenant, version, ct_len);
    cv_buf_init(&text, 4 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES);
    cv_buf_init(&again, 4 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES);
    ck_assert(cv_ok(cv_record_encode(&a, &text)));
    cv_record_init(&b);
    ck_assert(cv_ok(cv_record_decode((const char *)text.data, text.len, &b)));
    ck_assert_uint_eq(b.v, CV_RECORD_VERSION);
    ck_assert_str_eq(b.tenant_id, tenant);
    ck_assert_uint_eq(b.key_version, version);
    ck_assert_mem_eq(b.iv, a.iv, CV_GCM_IV_BYTES);
    ck_assert_mem_eq(b.tag, a.tag, CV_GCM_TAG_BYTES);
    ck_assert_uint_eq(b.ct.len, ct_len);
    ck_assert(memcmp(b.ct.data, a.ct.data, ct_len) == 0);
    ck_assert(cv_ok(cv_record_encode(&b, &again)));
    ck_assert_uint_eq(again.len, text.len);
    ck_assert(memcmp(again.data, text.data, text.len) == 0);
    cv_buf_free(&text);
    cv_buf_free(&again);
    cv_record_wipe(&a);
    cv_record_wipe(&b);
}

START_TEST(round_trips)
{
    round_trip("acme", 1, 1);
    round_trip("a", 4294967295u, 2); /* largest version */
    round_trip("0-tenant-with-dashes-", 10, 1000);
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    memset(tenant, 'z', CV_TENANT_ID_MAX_BYTES);
    tenant[CV_TENANT_ID_MAX_BYTES] = '\0';
    round_trip(tenant, 7, 300); /* longest tenant */
    round_trip("acme", 2, CV_RECORD_MAX_PLAINTEXT_BYTES); /* largest ciphertext */
}
END_TEST

START_TEST(decode_reuses_record)
{
    struct cv_record rec;
    cv_record_init(&rec);
    ck_assert(cv_ok(cv_record_decode(VALID, strlen(VALID), &rec)));
    char *other = record_text(NULL, NULL, "\"other/42\"", NULL, "\"00\"", NULL);
    ck_assert(cv_ok(cv_record_decode(other, strlen(other), &rec)));
    free(other);
    ck_assert_str_eq(rec.tenant_id, "other");
    ck_assert_uint_eq(rec.key_version, 42);
    ck_assert_uint_eq(rec.ct.len, 1);
    ck_assert_uint_eq(rec.ct.data[0], 0);
    cv_record_wipe(&rec);
    cv_record_wipe(&rec); /* wipe twice is harmless */
}
END_TEST

START_TEST(any_member_order_and_spacing_accepted)
{
    /* as PostgreSQL jsonb prints it: its own order, spaces after ':' and ',' */
    const char *jsonb = " {\"v\": 2, \"iv\": \"" IV_HEX "\", \"alg\": \"A256GCM\", \"kid\": \"acme/1\", \"authTag\": \"" TAG_HEX
                        "\", \"encrypted\": \"deadbeef\"}\n";
    struct cv_record a, b;
    cv_record_init(&a);
    cv_record_init(&b);
    ck_assert(cv_ok(cv_record_decode(VALID, strlen(VALID), &a)));
    ck_assert(cv_ok(cv_record_decode(jsonb, strlen(jsonb), &b)));
    ck_assert_str_eq(a.tenant_id, b.tenant_id);
    ck_assert_uint_eq(a.key_version, b.key_version);
    ck_assert_mem_eq(a.iv, b.iv, CV_GCM_IV_BYTES);
    ck_assert_mem_eq(a.tag, b.tag, CV_GCM_TAG_BYTES);
    ck_assert_uint_eq(b.ct.len, 4);
    cv_record_wipe(&a);
    cv_record_wipe(&b);
}
END_TEST

START_TEST(kid_boundaries_accepted)
{
    struct cv_record rec;
    cv_record_init(&rec);
    char *t = record_text(NULL, NULL, "\"0/4294967295\"", NULL, NULL, NULL);
    ck_assert(cv_ok(cv_record_decode(t, strlen(t), &rec)));
    ck_assert_uint_eq(rec.key_version, 4294967295u);
    ck_assert_str_eq(rec.tenant_id, "0");
    free(t);
    char kid[80];
    kid[0] = '"';
    memset(kid + 1, 'b', CV_TENANT_ID_MAX_BYTES);
    strcpy(kid + 1 + CV_TENANT_ID_MAX_BYTES, "/10\"");
    t = record_text(NULL, NULL, kid, NULL, NULL, NULL);
    ck_assert(cv_ok(cv_record_decode(t, strlen(t), &rec)));
    ck_assert_uint_eq(strlen(rec.tenant_id), CV_TENANT_ID_MAX_BYTES);
    ck_assert_uint_eq(rec.key_version, 10);
    free(t);
    cv_record_wipe(&rec);
}
END_TEST

static Suite *record_suite(void)
{
    Suite *s = suite_create("crypto_record");
    TCase *neg = tcase_create("hostile");
    tcase_add_test(neg, truncated_prefixes_refused);
    tcase_add_test(neg, null_and_empty_refused);
    tcase_add_test(neg, oversize_refused);
    tcase_add_test(neg, bad_hex_refused);
    tcase_add_test(neg, wrong_iv_and_tag_length_refused);
    tcase_add_test(neg, wrong_version_refused);
    tcase_add_test(neg, unknown_alg_refused);
    tcase_add_test(neg, extra_member_refused);
    tcase_add_test(neg, duplicate_member_refused);
    tcase_add_test(neg, bad_kid_refused);
    tcase_add_test(neg, not_an_object_refused);
    tcase_add_test(neg, trailing_garbage_refused);
    tcase_add_test(neg, nul_byte_refused);
    tcase_add_test(neg, failed_decode_leaves_record_unchanged);
    tcase_add_test(neg, flipped_tag_bit_decodes_to_other_tag);
    tcase_add_test(neg, encode_refuses_invalid_record);
    tcase_add_test(neg, encode_over_buffer_limit_leaves_output_unchanged);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_add_test(pos, encode_is_canonical);
    tcase_add_test(pos, round_trips);
    tcase_add_test(pos, decode_reuses_record);
    tcase_add_test(pos, any_member_order_and_spacing_accepted);
    tcase_add_test(pos, kid_boundaries_accepted);
    suite_add_tcase(s, pos);
    return s;
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    SRunner *sr = srunner_create(record_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
