/* Software cryptography (OpenSSL lives behind this header only), the record
 * codec of DESIGN.md §2, the AAD encoding, and masking for display. */
#ifndef CREDVAULT_CRYPTO_H
#define CREDVAULT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/buf.h"
#include "credvault/hsm.h"
#include "credvault/ids.h"
#include "credvault/result.h"

#define CV_SHA256_BYTES 32
#define CV_RECORD_VERSION 3     /* the format written; 3 adds the revision to the AAD */
#define CV_RECORD_VERSION_MIN 2 /* the oldest still read (rewritten as 3 on the next write or rewrap) */
#define CV_RECORD_ALG "A256GCM"
#define CV_RECORD_MAX_PLAINTEXT_BYTES (1024 * 1024)

CV_RESULT cv_crypto_random(uint8_t *out, size_t n);
void cv_crypto_sha256(const void *data, size_t n, uint8_t out[CV_SHA256_BYTES]);

/* AES-256-GCM in software (memory residency), byte for byte the token's
 * records: 12-byte IV, 16-byte tag, ct as long as pt, AAD of 1 to 1024 bytes,
 * 1 to CV_HSM_GCM_MAX_BYTES of input. Encrypt draws the IV (96 random bits).
 * Any failed decrypt is CV_ERR_CRYPTO "decryption failed" with pt wiped. */
CV_RESULT cv_crypto_gcm_encrypt(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t *aad, size_t aad_len,
                                const uint8_t *pt, size_t pt_len, uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct,
                                uint8_t tag[CV_GCM_TAG_BYTES]);
/* Encrypt with a given IV: known-answer tests only (an IV must never repeat under a key). */
CV_RESULT cv_crypto_gcm_seal_iv(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t iv[CV_GCM_IV_BYTES],
                                const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
                                uint8_t tag[CV_GCM_TAG_BYTES]);
CV_RESULT cv_crypto_gcm_decrypt(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t *aad, size_t aad_len,
                                const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                                const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt);

/* One sealed record: what mcp_credentials.encrypted_env holds. */
struct cv_record {
    uint32_t v;                                  /* CV_RECORD_VERSION_MIN..CV_RECORD_VERSION */
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];  /* from kid */
    uint32_t key_version;                        /* from kid */
    uint8_t iv[CV_GCM_IV_BYTES];
    uint8_t tag[CV_GCM_TAG_BYTES];
    struct cv_buf ct;                            /* ciphertext, same length as plaintext */
};
void cv_record_init(struct cv_record *rec);
void cv_record_wipe(struct cv_record *rec);

/* {"v":3,"alg":"A256GCM","kid":"<tenant>/<version>","iv":"<24 hex>","encrypted":"<hex>","authTag":"<32 hex>"}
 * `out` is appended to and NUL-terminated. */
CV_RESULT cv_record_encode(const struct cv_record *rec, struct cv_buf *out);
/* Strict: exactly those six members once each, known v and alg, a kid of a
 * valid tenant id and decimal version, exact lowercase hex lengths. Anything
 * else is CV_ERR_INPUT (callers report it as a decrypt failure). Syntax only:
 * nothing is authenticated here. `rec` must have been set up by
 * cv_record_init; it is replaced only on success. */
CV_RESULT cv_record_decode(const char *text, size_t len, struct cv_record *rec);

/* AAD binding a record to (tenant, server, key version, format version):
 * "credvault.record" ‖ u32 format ‖ u32 len ‖ tenant ‖ u32 len ‖ server ‖ u32 key version,
 * big-endian lengths, so distinct tuples never give the same bytes. */
CV_RESULT cv_record_aad(const char *tenant_id, const char *server_id, uint32_t key_version,
                        uint32_t format_version, struct cv_buf *out);
/* The AAD of a record of `format_version`: format 2 as above (`revision`
 * unused), format 3 the same followed by u64 revision (>= 1), so a record
 * restored from an earlier revision of its row does not open as this one. */
CV_RESULT cv_record_aad_rev(const char *tenant_id, const char *server_id, uint32_t key_version,
                            uint32_t format_version, int64_t revision, struct cv_buf *out);

/* Masking for display: a value of at least 16 characters (code points) shows
 * its first 4 and last 4 around "••••"; a shorter one shows "••••••••". Never
 * splits a UTF-8 sequence. Invalid UTF-8 is masked fully. Appends to out. */
CV_RESULT cv_mask_value(const char *value, size_t len, struct cv_buf *out);

/* The run-time versions of OpenSSL ("OpenSSL 3.0.x 1 Nov 2022") and cjose. */
const char *cv_crypto_openssl_version(void);
const char *cv_crypto_cjose_version(void);

#endif
