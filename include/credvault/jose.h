/* JWS verification for OIDC access tokens (src/crypto/jose.c, through cjose):
 * a key set parsed from a JWKS, and compact tokens checked against it. Only
 * RS256 and ES256 pass; the algorithm must match the key's type, so `none`
 * and an HMAC keyed with a public key never verify. No claim is judged
 * here: the caller gets the verified payload and decides. */
#ifndef CREDVAULT_JOSE_H
#define CREDVAULT_JOSE_H

#include <stddef.h>

#include "credvault/result.h"

#define CV_JWT_MAX_BYTES 16384         /* a compact token */
#define CV_JWKS_MAX_BYTES (256 * 1024) /* a JWKS document */
#define CV_JWKS_MAX_KEYS 64
#define CV_JWK_RSA_MIN_BITS 2048

struct cv_jwks;

/* Parses a JWKS ({"keys":[…]}). Signing keys of kty RSA (at least 2048 bits)
 * and EC P-256 with a kid are kept; others (enc keys, oct, OKP, other curves)
 * are skipped; a key holding private members is refused, as is a set with
 * no usable key. *skipped (may be NULL) counts what was left out. */
CV_RESULT cv_jwks_parse(const char *json, size_t len, struct cv_jwks **out, size_t *skipped);
void cv_jwks_free(struct cv_jwks *keys);
size_t cv_jwks_count(const struct cv_jwks *keys);

/* Verifies a compact JWS with the key its header's kid names. CV_ERR_NOT_FOUND
 * when the set has no key of that kid (the caller may reload the set);
 * CV_ERR_AUTH for everything else: malformed, alg not RS256/ES256, alg not
 * fitting the key, a signature that does not verify. On success *payload
 * (malloc'ed, NUL-terminated, *len bytes) is the verified claims text. */
CV_RESULT cv_jwt_verify(const struct cv_jwks *keys, const char *token, size_t token_len, char **payload,
                        size_t *len);

#endif
