/* GigaChad GRC's credential format, read only by `credvault import-legacy`:
 * the key is scrypt(N=16384, r=8, p=1) of the MCP_ENCRYPTION_KEY string's
 * UTF-8 bytes, the record AES-256-GCM with a 16-byte IV, a 16-byte tag and no
 * AAD, stored as {"iv","encrypted","authTag"[,"salt"]} in lowercase hex.
 * Decryption only: credvault never writes this format. */
#ifndef CREDVAULT_CRYPTO_LEGACY_H
#define CREDVAULT_CRYPTO_LEGACY_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/buf.h"
#include "credvault/result.h"

#define CV_LEGACY_KEY_BYTES 32
#define CV_LEGACY_IV_BYTES 16
#define CV_LEGACY_TAG_BYTES 16
#define CV_LEGACY_SALT_BYTES 16          /* the "salt" member, when present */
#define CV_LEGACY_FIXED_SALT "mcp-salt"  /* salt of records without one: 8 ASCII bytes */
#define CV_LEGACY_SCRYPT_N 16384u
#define CV_LEGACY_SCRYPT_R 8u
#define CV_LEGACY_SCRYPT_P 1u
#define CV_LEGACY_SCRYPT_MAXMEM_BYTES ((uint64_t)64 * 1024 * 1024) /* N=16384, r=8 needs 16 MiB */
#define CV_LEGACY_PASSPHRASE_MAX_BYTES 4096
#define CV_LEGACY_MAX_PLAINTEXT_BYTES (64 * 1024)
#define CV_LEGACY_RECORD_MAX_BYTES (2 * CV_LEGACY_MAX_PLAINTEXT_BYTES + 1024) /* the JSON text */

/* One parsed encrypted_env. Syntax only: nothing is authenticated here. */
struct cv_legacy_record {
    uint8_t iv[CV_LEGACY_IV_BYTES];
    uint8_t tag[CV_LEGACY_TAG_BYTES];
    uint8_t salt[CV_LEGACY_SALT_BYTES];
    int has_salt;       /* 0: the fixed salt "mcp-salt" */
    struct cv_buf ct;   /* ciphertext; the plaintext has the same length */
};
void cv_legacy_record_init(struct cv_legacy_record *rec);
void cv_legacy_record_wipe(struct cv_legacy_record *rec);

/* Strict where the original was lax: one JSON object with exactly "iv",
 * "encrypted" and "authTag" (and optionally "salt"), each once, each a
 * string of lowercase hex of the exact length (iv 16 bytes, authTag 16 bytes
 * — Node accepted truncated tags —, salt 16 bytes, encrypted 1 to
 * CV_LEGACY_MAX_PLAINTEXT_BYTES). Anything else is CV_ERR_INPUT with a
 * message that names the member but never quotes the input. `rec` must have
 * been set up by cv_legacy_record_init; it is filled only on success. */
CV_RESULT cv_legacy_record_decode(const char *text, size_t len, struct cv_legacy_record *rec);

/* scrypt(passphrase, salt, N=16384, r=8, p=1) to 32 bytes with
 * EVP_PBE_scrypt. The passphrase is used as the bytes given (the UTF-8 of
 * the environment string), never hex-decoded. About 60 ms and 16 MiB. */
CV_RESULT cv_legacy_kdf(const uint8_t *passphrase, size_t passphrase_len, const uint8_t *salt, size_t salt_len,
                        uint8_t key[CV_LEGACY_KEY_BYTES]);

/* AES-256-GCM decryption in software with a 16-byte IV, a 16-byte tag and no
 * AAD. `pt` must hold ct_len bytes. A tag that does not verify is
 * CV_ERR_CRYPTO and leaves `pt` wiped; nothing distinguishes a wrong key from
 * a changed record. */
CV_RESULT cv_legacy_gcm_decrypt(const uint8_t key[CV_LEGACY_KEY_BYTES], const uint8_t iv[CV_LEGACY_IV_BYTES],
                                const uint8_t *ct, size_t ct_len, const uint8_t tag[CV_LEGACY_TAG_BYTES],
                                uint8_t *pt);

#endif
