/* JWKS parsing and JWS verification (src/crypto/jose.c) without a server:
 * refused key sets and tokens first (weak, duplicate, private, unusable
 * keys; none, PS256, algorithm and key type disagreeing, tampered, oversize),
 * then tokens that verify. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/jose.h"

/* Fixtures made once with Debian's PyJWT and cryptography (an implementation
 * independent of cjose): public JWKs, and tokens signed by their private keys. */
#define RSA_JWK "{\"kty\":\"RSA\",\"key_ops\":[\"verify\"],\"n\":\"2sB5PmSb4V1nON-BX3GW0mb3yY9n2__OzHrFgx11SHwn8dXrRzyDkoLcmIpXaY1TuCbA-hlcaP30eUMTQo4CcCUzLHCgIEx8ZdBev8yv8Z_pG0VGyDWTL23s3-_yOsp1LwVLmepOsvjui-ORMzs5LCiZFKfkiBE1p5yZX9_7KMk1cmSB1ImkqLzIlahQnkT7LW-Nd7VTfxOYk77gHWfqd3yqxMmx5KQs_Kldy2wKEpQes-yVoo-xfPT1NHUYizwxXWa9aCdextIYvSkXX6q2mi6t0bdsu67LgWbEAA6EA91iYdXNAcaJgK4p591RbWH6KiFivvJmCnjzVmCM4tTdww\",\"e\":\"AQAB\",\"kid\":\"r1\"}"
#define RSA_1024_JWK "{\"kty\":\"RSA\",\"key_ops\":[\"verify\"],\"n\":\"9V4PJAGn0TYYhJPamO-AEuv6Ts91h2ERZ4u1tGXFQeYhef1OZWe9YHVByJn2kM7dotZ-g5bgIfUP3swG_qq4q1tXIIzL_Y-WL5oBh0FQSCVBmv4CJtcYD7iC9viYQ40d388GFWAKy68vAHlB3Lh5DXztO4JGaBZ8sjSFUsC7RWM\",\"e\":\"AQAB\",\"kid\":\"weak\"}"
#define EC_JWK "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"IZl9kN93Zb9N_2Gk-jRMJBXYAsrrZIU43Dp8p49Iz1o\",\"y\":\"ENgzU82rbkGv6oxFX6wCB_skIZ1MfWxio9qHt4FifZU\",\"kid\":\"e1\"}"
#define EC_P384_JWK "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"sg4SyfdMKR0t4ARZvLz091NJtbD1jXwMLvqZ08zDE9XTgiNIn53wbL0sU3SROPO4\",\"y\":\"9yFJTERvgGGmHXdzLEWE8XClK5ibuerGormji6WEMCIIepssgtl2zS5a3lijn4YB\",\"kid\":\"e384\"}"
#define RSA_PRIVATE_D "QZqAoggdQai36LQLAhs4PrB3toCmBrIAjI1zR5-hiVQGzL25els5IErTqoGutm6WgX9J15ecgbZLx8QodgjNzWEyqCy8sQMPOZ-UktPpnj61c6LCmA-NLSe75ur4i84k962QX0AISx9htx1P8fvcaRRh2HKDlJUIsNRDoR-0nKWxRtzP0g9MdDSC1MIDYhaL7fY_-1FSPckTw_scxuKZG3TYP8Ght8YbXiwIewMxTrPHRfx-dK80oVgZ3TFyICkssWg-tIvu7OCM5j3tt3yLkpzga8pQc2j5DbI9iSsfqq04V3-PEkXfqhqAoCZApReLbv6F2IQuKfOhQCbX5ivr-Q"
#define TOK_RS256 "eyJhbGciOiJSUzI1NiIsImtpZCI6InIxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwiZXhwIjoxODk2MjExNDkxfQ.mfB-sCYhvW4PDgXf3n9C8x9NHi5k25TyRrdazIqmeLrPhmj8wtZKdB9yFdlE8nC4YL_lI4-yNVFUI2I6FHU96Zhuv_azUw5yQJ3mZF022uVykGmS5H-ob4l0CSLf_HCGBA0BvAfqt266VrKe6JTnjRir3Go-J4z0cnYfWYMrz4fT1igYsgG9M7rjXxIekFXbcZ9-aSt8xkag9tIsbgfwTMmRzd7ON9epryqe2guesaQ9NR7Kj11MEMg2oOzHqE74xdL_JizOqwQU6fAtY0oLAQkMeOvaxeBU5wrIaHSO8GXCexlyEQGam_KyFM_CCkrhSeg_ufGppzCjr36_rvd5sw"
#define TOK_ES256 "eyJhbGciOiJFUzI1NiIsImtpZCI6ImUxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ5IiwiZXhwIjoxODk2MjExNDkxfQ.neeqClplmYesrwWqWXQQxl15TOf1kkkePQdfz_vGSWo5Sk60erg9m3SbkqtfjAJURJ1Bs_gP1cUIsMDqPjoqtA"
#define TOK_ES256_NAMING_RSA_KID "eyJhbGciOiJFUzI1NiIsImtpZCI6InIxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ6In0.PWg1K1ZxyAc81B5ui7wJhGhi_n_eBi8MB65oUY5dZu2zD3ziMeVAjMJ12U7n47K9J841De7OGUgRR4GD4CgGCQ"
#define TOK_NO_KID "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.g0Da4m7vC2zniIFj36xScyNnZHhIR8SKEY898KEocaM2jfPNo91nHcVD46hwUF3XzSV7eWee15uIRcBSi2fl9cuYJjtPaXJ3NMf5upQniDQuSiAH4W64GMYXxYuOR3oUe0-3w_vEN67qNbi6oehpyD8HTW8y2OGtclEsaLe_dqL1uS1Y8wKhnz76OLxGjuFx-PPgJOt7x_uVRjrsF6V3aIi04YdajIUqXOqSqVG5v-sfeaEuMlJAVC02Qx5UfYpacQSVIwoensX4M79ftmTIzuEOawInslt3wtLlYIdy2lD1qLAa5f7gnEFa8u-zfr5S7UUrPqoWGllvTjWSf5vTeQ"
#define TOK_PS256 "eyJhbGciOiJQUzI1NiIsImtpZCI6InIxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.VhWBchAuq01M29_rIBuf71V341IzWeS09F7GIeW5vZlEr4kuKA8zD-hAMuI5bW0KKIOjpmLVJrGUbEYl0S0MALJ50LgLtaoWLHs3lcaL-oVoPZ5w4NXznMhO9LvcMCwROGjUDOUQuP6UBnlEWj6ILkJ-HxFgh0usVtL5s79MJtziwT4Hz-nCgQcIntejGJ0_D0KDWF3FwMab4dK8NH4F_nxLrCNbi-7zAzdp-zcTW9aw4kYK-wx3e1EgR9P_F2QQnOHPkSX0AREkV80mX2PHK_1eZ4Ki8V29DbOhXNG_848vFHx8DykDLgFL3Sx2XBS5x9MDPyUnVogDjX9qBVe5sw"

static struct cv_jwks *parse(const char *json, cv_err want)
{
    struct cv_jwks *k = NULL;
    cv_result r = cv_jwks_parse(json, strlen(json), &k, NULL);
    ck_assert_msg(r.err == want, "%s: got %d", json, (int)r.err);
    if (want != CV_ERR_NONE) ck_assert_ptr_null(k);
    cv_error_clear();
    return k;
}

START_TEST(jwks_refusals)
{
    parse("", CV_ERR_INPUT);
    parse("[]", CV_ERR_INPUT);
    parse("{\"keys\":{}}", CV_ERR_INPUT);
    parse("{\"keys\":[]}", CV_ERR_INPUT);                       /* no usable key */
    parse("{\"keys\":[" RSA_1024_JWK "]}", CV_ERR_INPUT);       /* too weak */
    parse("{\"keys\":[" RSA_JWK "," RSA_JWK "]}", CV_ERR_INPUT); /* one kid twice */
    parse("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", CV_ERR_INPUT); /* no kid */
    /* private key material published: refused, not silently used */
    char priv[4096];
    snprintf(priv, sizeof(priv), "{\"keys\":[%.*s,\"d\":\"%s\"}]}", (int)strlen(RSA_JWK) - 1, RSA_JWK, RSA_PRIVATE_D);
    parse(priv, CV_ERR_INPUT);
    /* only HMAC, EdDSA, P-384 or encryption keys: nothing usable */
    parse("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}]}", CV_ERR_INPUT);
    parse("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}",
          CV_ERR_INPUT);
    parse("{\"keys\":[" EC_P384_JWK "]}", CV_ERR_INPUT);
    char enc[4096];
    snprintf(enc, sizeof(enc), "{\"keys\":[%.*s,\"use\":\"enc\"}]}", (int)strlen(RSA_JWK) - 1, RSA_JWK);
    parse(enc, CV_ERR_INPUT);
    /* skipped beside a usable key */
    size_t skipped = 0;
    struct cv_jwks *k = NULL;
    const char *mixed = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"c2VjcmV0\"}," EC_P384_JWK "," RSA_JWK "," EC_JWK "]}";
    ck_assert(cv_ok(cv_jwks_parse(mixed, strlen(mixed), &k, &skipped)));
    ck_assert_uint_eq(cv_jwks_count(k), 2);
    ck_assert_uint_eq(skipped, 2);
    cv_jwks_free(k);
}
END_TEST

static void verify(const struct cv_jwks *k, const char *tok, cv_err want)
{
    char *payload = NULL;
    size_t len = 0;
    cv_result r = cv_jwt_verify(k, tok, strlen(tok), &payload, &len);
    ck_assert_msg(r.err == want, "%.40s…: got %d (%s)", tok, (int)r.err, cv_error_message());
    if (want != CV_ERR_NONE) ck_assert_ptr_null(payload);
    free(payload);
    cv_error_clear();
}

START_TEST(jwt_verification)
{
    const char *jwks = "{\"keys\":[" RSA_JWK "," EC_JWK "]}";
    struct cv_jwks *k = parse(jwks, CV_ERR_NONE);
    /* hostile first */
    verify(k, "", CV_ERR_AUTH);
    verify(k, "a.b", CV_ERR_AUTH);
    verify(k, "a.b.c.d", CV_ERR_AUTH);
    verify(k, "a b.c.d", CV_ERR_AUTH);
    verify(k, "eyJhbGciOiJub25lIiwia2lkIjoicjEifQ.eyJzdWIiOiJ4In0.", CV_ERR_AUTH); /* alg none, kid r1 */
    verify(k, TOK_PS256, CV_ERR_AUTH);                    /* an algorithm not on the list */
    verify(k, TOK_NO_KID, CV_ERR_AUTH);
    verify(k, TOK_ES256_NAMING_RSA_KID, CV_ERR_AUTH);     /* algorithm and key type disagree */
    char tampered[4096];
    snprintf(tampered, sizeof(tampered), "%s", TOK_RS256);
    char *sig = strrchr(tampered, '.') + 5;
    *sig = *sig == 'A' ? 'B' : 'A';
    verify(k, tampered, CV_ERR_AUTH);
    char *big = malloc(CV_JWT_MAX_BYTES + 2);
    memset(big, 'a', CV_JWT_MAX_BYTES + 1);
    big[10] = '.';
    big[20] = '.';
    big[CV_JWT_MAX_BYTES + 1] = '\0';
    verify(k, big, CV_ERR_AUTH);
    free(big);
    verify(NULL, TOK_RS256, CV_ERR_UNAVAILABLE);
    /* a kid the set lacks: NOT_FOUND, so the caller may reload */
    struct cv_jwks *only_ec = parse("{\"keys\":[" EC_JWK "]}", CV_ERR_NONE);
    verify(only_ec, TOK_RS256, CV_ERR_NOT_FOUND);
    cv_jwks_free(only_ec);
    /* the good ones, with their payloads */
    char *payload = NULL;
    size_t len = 0;
    ck_assert(cv_ok(cv_jwt_verify(k, TOK_RS256, strlen(TOK_RS256), &payload, &len)));
    ck_assert_ptr_nonnull(strstr(payload, "\"sub\":\"x\""));
    ck_assert_uint_eq(strlen(payload), len);
    free(payload);
    ck_assert(cv_ok(cv_jwt_verify(k, TOK_ES256, strlen(TOK_ES256), &payload, &len)));
    ck_assert_ptr_nonnull(strstr(payload, "\"sub\":\"y\""));
    free(payload);
    cv_jwks_free(k);
}
END_TEST

static Suite *jose_suite(void)
{
    Suite *s = suite_create("crypto_jose");
    TCase *tc = tcase_create("jose");
    tcase_add_test(tc, jwks_refusals);
    tcase_add_test(tc, jwt_verification);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(jose_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
