/* The two primitives of GigaChad GRC's format, in software with OpenSSL:
 * scrypt (EVP_PBE_scrypt, N=16384, r=8, p=1) and AES-256-GCM decryption with
 * a 16-byte IV and no AAD. Used by the legacy import only; nothing here
 * encrypts. Derived keys and plaintext stay in the caller's buffers and are
 * wiped here on every failure; no failure says more than "failed". */
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "credvault/crypto_legacy.h"

static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher; /* fetched once, kept for the life of the process */

static void gcm_fetch(void) { gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL); }

cv_result cv_legacy_kdf(const uint8_t *passphrase, size_t passphrase_len, const uint8_t *salt, size_t salt_len,
                        uint8_t key[CV_LEGACY_KEY_BYTES])
{
    CV_ENSURE_REF(passphrase);
    CV_ENSURE_REF(salt);
    CV_ENSURE_REF(key);
    CV_ENSURE(passphrase_len >= 1 && passphrase_len <= CV_LEGACY_PASSPHRASE_MAX_BYTES, CV_ERR_INPUT,
              "the legacy key must be 1 to %d bytes", CV_LEGACY_PASSPHRASE_MAX_BYTES);
    CV_ENSURE(salt_len >= 1 && salt_len <= CV_LEGACY_SALT_BYTES, CV_ERR_INPUT, "legacy salt length out of range");
    if (EVP_PBE_scrypt((const char *)passphrase, passphrase_len, salt, salt_len, CV_LEGACY_SCRYPT_N,
                       CV_LEGACY_SCRYPT_R, CV_LEGACY_SCRYPT_P, CV_LEGACY_SCRYPT_MAXMEM_BYTES, key,
                       CV_LEGACY_KEY_BYTES) != 1) {
        ERR_clear_error();
        cv_wipe(key, CV_LEGACY_KEY_BYTES);
        CV_BAIL(CV_ERR_INTERNAL, "scrypt failed");
    }
    return CV_OK;
}

cv_result cv_legacy_gcm_decrypt(const uint8_t key[CV_LEGACY_KEY_BYTES], const uint8_t iv[CV_LEGACY_IV_BYTES],
                                const uint8_t *ct, size_t ct_len, const uint8_t tag[CV_LEGACY_TAG_BYTES],
                                uint8_t *pt)
{
    CV_ENSURE_REF(key);
    CV_ENSURE_REF(iv);
    CV_ENSURE_REF(tag);
    CV_ENSURE(ct_len >= 1 && ct_len <= CV_LEGACY_MAX_PLAINTEXT_BYTES && ct != NULL && pt != NULL, CV_ERR_INPUT,
              "legacy ciphertext length out of range");
    CV_ENSURE(pthread_once(&gcm_once, gcm_fetch) == 0 && gcm_cipher != NULL, CV_ERR_INTERNAL,
              "AES-256-GCM is not available");

    cv_result r = CV_OK;
    int n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    CV_ENSURE(ctx != NULL, CV_ERR_MEMORY, "out of memory");
    /* the IV length is set before the key and IV: GCM's default is 12 bytes,
     * and a 16-byte IV is hashed (GHASH) into the counter, unlike a 12-byte one */
    if (EVP_DecryptInit_ex2(ctx, gcm_cipher, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CV_LEGACY_IV_BYTES, NULL) != 1 ||
        EVP_DecryptInit_ex2(ctx, NULL, key, iv, NULL) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "AES-256-GCM setup failed");
        goto out;
    }
    /* no AAD: the original bound the ciphertext to nothing */
    if (EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ct_len) != 1 || (size_t)n != ct_len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CV_LEGACY_TAG_BYTES, (void *)tag) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "AES-256-GCM decryption failed");
        goto out;
    }
    if (EVP_DecryptFinal_ex(ctx, pt + n, &fin) != 1 || fin != 0) r = cv_fail(CV_ERR_CRYPTO, "decryption failed");
out:
    if (cv_failed(r)) {
        ERR_clear_error();
        cv_wipe(pt, ct_len);
    }
    EVP_CIPHER_CTX_free(ctx);
    return r;
}
