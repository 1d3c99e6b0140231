/* SHA-256 (src/crypto/hash.c) against FIPS 180-4 example vectors. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"

static void assert_digest(const void *data, size_t n, const char *want_hex)
{
    uint8_t md[CV_SHA256_BYTES];
    char hex[2 * CV_SHA256_BYTES + 1];
    cv_crypto_sha256(data, n, md);
    cv_hex_encode(md, sizeof(md), hex);
    ck_assert_str_eq(hex, want_hex);
}

START_TEST(vectors)
{
    assert_digest(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    size_t n = 1000000;
    char *a = malloc(n);
    ck_assert_ptr_nonnull(a);
    memset(a, 'a', n);
    assert_digest(a, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}
END_TEST

static void *hash_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) assert_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    return NULL;
}

START_TEST(concurrent_first_use)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, hash_many, NULL), 0);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crypto_hash");
    TCase *tc = tcase_create("sha256");
    /* first use from several threads at once, before anything else fetched the digest */
    tcase_add_test(tc, concurrent_first_use);
    tcase_add_test(tc, vectors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
