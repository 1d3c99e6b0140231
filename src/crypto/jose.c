/* OIDC token signatures through cjose (Debian's libcjose, OpenSSL beneath):
 * JWKS parsing into signing keys, and compact JWS verification with an
 * algorithm allow-list checked against the key's type before cjose is asked.
 * No JOSE is parsed or computed by hand here, and no token byte reaches an
 * error message. */
#include <cjose/cjose.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/jose.h"

#define KID_MAX_BYTES 256

enum alg { ALG_RS256, ALG_ES256 };

struct key {
    char kid[KID_MAX_BYTES + 1];
    enum alg alg; /* the one algorithm this key may verify */
    cjose_jwk_t *jwk;
};

struct cv_jwks {
    struct key keys[CV_JWKS_MAX_KEYS];
    size_t n;
};

void cv_jwks_free(struct cv_jwks *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) cjose_jwk_release(k->keys[i].jwk);
    free(k);
}

size_t cv_jwks_count(const struct cv_jwks *k) { return k ? k->n : 0; }

static int has_private_member(json_t *jwk)
{
    static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (json_object_get(jwk, priv[i])) return 1;
    return 0;
}

/* 1: kept, 0: skipped (not a signing key this service verifies with). */
static cv_result add_key(struct cv_jwks *set, json_t *jwk, size_t index, int *kept)
{
    *kept = 0;
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *alg = json_string_value(json_object_get(jwk, "alg"));
    CV_ENSURE(json_is_object(jwk) && kty, CV_ERR_INPUT, "JWKS key %zu has no kty", index);
    if (use && strcmp(use, "sig") != 0) return CV_OK; /* an encryption key */
    int rsa = strcmp(kty, "RSA") == 0, ec = strcmp(kty, "EC") == 0;
    if (!rsa && !ec) return CV_OK; /* oct (HMAC) never; OKP (EdDSA): cjose 0.6 has no such keys */
    CV_ENSURE(!has_private_member(jwk), CV_ERR_INPUT,
              "JWKS key %zu holds private key material; publish only public keys", index);
    if (ec && !json_is_string(json_object_get(jwk, "crv"))) return CV_OK;
    if (ec && strcmp(json_string_value(json_object_get(jwk, "crv")), "P-256") != 0) return CV_OK;
    enum alg a = rsa ? ALG_RS256 : ALG_ES256;
    if (alg && strcmp(alg, rsa ? "RS256" : "ES256") != 0) return CV_OK; /* PS256, RS512, …: not allowed */
    CV_ENSURE(kid && *kid && strlen(kid) <= KID_MAX_BYTES, CV_ERR_INPUT, "JWKS key %zu needs a kid of 1 to %d bytes",
              index, KID_MAX_BYTES);
    for (size_t i = 0; i < set->n; i++)
        CV_ENSURE(strcmp(set->keys[i].kid, kid) != 0, CV_ERR_INPUT, "JWKS holds two signing keys with kid %.64s",
                  kid);
    CV_ENSURE(set->n < CV_JWKS_MAX_KEYS, CV_ERR_INPUT, "JWKS holds more than %d signing keys", CV_JWKS_MAX_KEYS);
    cjose_err err;
    cjose_jwk_t *k = cjose_jwk_import_json((cjose_header_t *)jwk, &err);
    CV_ENSURE(k != NULL, CV_ERR_INPUT, "JWKS key %.64s does not parse: %s", kid, err.message ? err.message : "?");
    int ok = rsa ? cjose_jwk_get_kty(k, &err) == CJOSE_JWK_KTY_RSA && cjose_jwk_get_keysize(k, &err) >= CV_JWK_RSA_MIN_BITS
                 : cjose_jwk_get_kty(k, &err) == CJOSE_JWK_KTY_EC && cjose_jwk_EC_get_curve(k, &err) == CJOSE_JWK_EC_P_256;
    if (!ok) {
        cjose_jwk_release(k);
        CV_BAIL(CV_ERR_INPUT, "JWKS key %.64s is too weak or not what it claims (RSA needs %d bits)", kid,
                CV_JWK_RSA_MIN_BITS);
    }
    struct key *slot = &set->keys[set->n++];
    snprintf(slot->kid, sizeof(slot->kid), "%s", kid);
    slot->alg = a;
    slot->jwk = k;
    *kept = 1;
    return CV_OK;
}

cv_result cv_jwks_parse(const char *json, size_t len, struct cv_jwks **out, size_t *skipped)
{
    *out = NULL;
    if (skipped) *skipped = 0;
    CV_ENSURE(len <= CV_JWKS_MAX_BYTES, CV_ERR_INPUT, "JWKS is larger than %d bytes", CV_JWKS_MAX_BYTES);
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        json_decref(doc);
        CV_BAIL(CV_ERR_INPUT, "JWKS must be an object with a 'keys' array");
    }
    struct cv_jwks *set = calloc(1, sizeof(*set));
    cv_result r = set ? CV_OK : cv_fail(CV_ERR_MEMORY, "out of memory");
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (cv_failed(r)) break;
        int kept = 0;
        r = add_key(set, k, i, &kept);
        if (cv_ok(r) && !kept && skipped) (*skipped)++;
    }
    json_decref(doc);
    if (cv_ok(r) && set->n == 0) r = cv_fail(CV_ERR_INPUT, "JWKS holds no RS256 or ES256 signing key");
    if (cv_failed(r)) {
        cv_jwks_free(set);
        return r;
    }
    *out = set;
    return CV_OK;
}

/* Three base64url segments: refused before any parser sees the bytes. */
static int compact_shape(const char *t, size_t n)
{
    size_t dots = 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '.') dots++;
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return dots == 2;
}

cv_result cv_jwt_verify(const struct cv_jwks *keys, const char *token, size_t token_len, char **payload, size_t *len)
{
    *payload = NULL;
    *len = 0;
    CV_ENSURE(keys != NULL, CV_ERR_UNAVAILABLE, "no signing keys of the issuer are loaded");
    CV_ENSURE(token_len > 0 && token_len <= CV_JWT_MAX_BYTES && compact_shape(token, token_len), CV_ERR_AUTH,
              "not a compact JWS");
    cjose_err err;
    cjose_jws_t *jws = cjose_jws_import(token, token_len, &err);
    CV_ENSURE(jws != NULL, CV_ERR_AUTH, "the JWS does not parse");
    cv_result r = CV_OK;
    cjose_header_t *hdr = cjose_jws_get_protected(jws);
    const char *alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &err);
    const char *kid = cjose_header_get(hdr, CJOSE_HDR_KID, &err);
    enum alg a;
    if (alg && strcmp(alg, "RS256") == 0) a = ALG_RS256;
    else if (alg && strcmp(alg, "ES256") == 0) a = ALG_ES256;
    else {
        r = cv_fail(CV_ERR_AUTH, "algorithm %.16s is not accepted (RS256 and ES256 are)", alg ? alg : "(none)");
        goto out;
    }
    if (json_object_get((json_t *)hdr, "crit")) { /* RFC 7515 §4.1.11: extensions we do not know must fail */
        r = cv_fail(CV_ERR_AUTH, "the JWS names critical extensions");
        goto out;
    }
    if (!kid) {
        r = cv_fail(CV_ERR_AUTH, "the JWS names no kid");
        goto out;
    }
    const struct key *k = NULL;
    for (size_t i = 0; i < keys->n; i++)
        if (strcmp(keys->keys[i].kid, kid) == 0) k = &keys->keys[i];
    if (!k) {
        r = cv_fail(CV_ERR_NOT_FOUND, "no key with the token's kid");
        goto out;
    }
    if (k->alg != a) { /* an ES256 header on an RSA key, and the like */
        r = cv_fail(CV_ERR_AUTH, "the algorithm does not fit the key");
        goto out;
    }
    if (!cjose_jws_verify(jws, k->jwk, &err)) {
        r = cv_fail(CV_ERR_AUTH, "the signature does not verify");
        goto out;
    }
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    if (!cjose_jws_get_plaintext(jws, &pt, &pt_len, &err) || pt_len > CV_JWT_MAX_BYTES) {
        r = cv_fail(CV_ERR_AUTH, "the JWS has no usable payload");
        goto out;
    }
    *payload = malloc(pt_len + 1);
    if (!*payload) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    memcpy(*payload, pt, pt_len);
    (*payload)[pt_len] = '\0';
    *len = pt_len;
out:
    cjose_jws_release(jws);
    return r;
}
