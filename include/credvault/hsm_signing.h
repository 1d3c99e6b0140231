/* The audit signing key: an EC P-256 key pair generated inside the token
 * (the private half sensitive, never extractable, sign only), used through
 * libp11's EVP_PKEY with OpenSSL's EVP interface to sign audit checkpoints
 * (ECDSA with SHA-256, DER signatures, as `openssl dgst -verify` expects).
 * Like hsm.h: byte buffers and text only, no PKCS#11, libp11 or OpenSSL type. */
#ifndef CREDVAULT_HSM_SIGNING_H
#define CREDVAULT_HSM_SIGNING_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/hsm.h"
#include "credvault/result.h"

#define CV_HSM_SIGNATURE_MAX_BYTES 80       /* DER ECDSA P-256 is at most 72 */
#define CV_HSM_PUBLIC_KEY_PEM_MAX_BYTES 512 /* SubjectPublicKeyInfo, P-256: about 180 */
#define CV_HSM_SIGN_INPUT_MAX_BYTES (16 * 1024 * 1024)
#define CV_HSM_KEY_FINGERPRINT_BYTES 32 /* SHA-256 of the DER public key */

/* Generates the key pair in the token, labelled CV_HSM_AUDIT_KEY_LABEL.
 * CV_ERR_CONFLICT when a private key with that label exists. Makes token
 * objects: an operator's command (`credvault hsm init`), never a request. */
CV_RESULT cv_hsm_audit_key_create(struct cv_hsm *hsm);
/* Whether the private key exists (and is one we would have made). */
CV_RESULT cv_hsm_audit_key_exists(struct cv_hsm *hsm, int *exists);

/* ECDSA P-256 over SHA-256(data): OpenSSL hashes, the token signs. `sig`
 * gets the DER signature (cap at least CV_HSM_SIGNATURE_MAX_BYTES).
 * CV_ERR_NOT_FOUND when the key is missing ("run credvault hsm init"),
 * CV_ERR_UNAVAILABLE when the token does not answer. */
CV_RESULT cv_hsm_audit_sign(struct cv_hsm *hsm, const uint8_t *data, size_t len, uint8_t *sig, size_t cap,
                            size_t *sig_len);
/* Checks a DER signature over data with the token's public key (in
 * software). CV_ERR_CRYPTO "signature does not verify" on any mismatch. */
CV_RESULT cv_hsm_audit_verify(struct cv_hsm *hsm, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len);
/* The public key as PEM (NUL-terminated) and its fingerprint (may be NULL). */
CV_RESULT cv_hsm_audit_public_key(struct cv_hsm *hsm, char *pem, size_t cap,
                                  uint8_t fingerprint[CV_HSM_KEY_FINGERPRINT_BYTES]);

#endif
